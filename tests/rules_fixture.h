/*
 * rules_fixture.h — what the rules suites share (test_rules_table, test_rules_ids,
 * test_rules_api, test_rules_events) on top of domain_fixture.h's scenario: command lines
 * written with ' for " (dq turns them into JSON; no line needs an apostrophe), shorthands for
 * the most common shapes, and template_up, which builds the scenario's template (the cast
 * alone) before the forking runner starts.
 *
 * Header-only (static functions), as domain_fixture.h is: the template lives in each
 * program's own statics, and each tests/test_*.c is its own executable.
 */
#ifndef TL_RULES_FIXTURE_H
#define TL_RULES_FIXTURE_H

#include "domain_fixture.h"

/* Shorthands for the most common shapes. */
#define SEND_CHAT(as, extra) "{'op':'message.send','as':'" as "','project':'o-1','channel':'chat','topic':'t-1','body':'hi'" extra "}"
#define NOTE(as, extra) "{'op':'note.add','as':'" as "','project':'o-1','body':'hi'" extra "}"
#define ON_MSG(op, as, msg, extra) "{'op':'message." op "','as':'" as "','message':'" msg "'" extra "}"
#define NEWP(as, extra) "{'op':'project.create','as':'" as "','id':'p-new','account':'acme','type':'order','title':'New'" extra "}"
#define UPLOAD(as, where, extra) "{'op':'attachment.upload','as':'" as "'," where ",'name':'x.bin','data':'YQ=='" extra "}"
#define ATT4 ",'attachments':['a-1','a-5','a-6','a-7']"

/* ' -> " (the rows' quoting) */
static FX_UNUSED char *dq(const char *s) {
    char *o = strdup(s);
    for (char *p = o; *p; p++)
        if (*p == '\'') *p = '"';
    return o;
}

/* The scenario's template, for tcase_add_unchecked_fixture (with fx_template_remove). */
static FX_UNUSED void template_up(void) { fx_template(NULL, 0); }

#endif
