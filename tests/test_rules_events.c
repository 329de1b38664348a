/*
 * test_rules_events.c — a support conversation belongs to its account: an attachment uploaded
 * to one account's support cannot go on another's, and what users do to a support message is
 * an event naming the account, in its export and no other; and the payloads commands write
 * are the ones docs/FORMAT.md documents (a reply names its parent's channel and topic, a note
 * no channel).
 *
 * Each test runs on a fresh copy of the common scenario (domain_fixture.h).
 */
#include <jansson.h>

#include "rules_fixture.h"

/* An attachment uploaded to one account's support conversation cannot go on another
 * account's: staff may write in both, so only the account tells them apart. */
START_TEST(support_attachment_of_another_account) {
    fx f;
    fx_scenario(&f);
    tl_result res;
    char *up = dq(UPLOAD("sam", "'account':'beta','id':'a-sb'", ""));
    ck_assert_int_eq(fx_cmd(&f, up, &res), 0);
    free(up);
    uint64_t before = fx_events(&f);
    char *cmd = dq("{'op':'message.send','as':'sam','account':'acme','channel':'support','body':'x','attachments':['a-sb']}");
    ck_assert_msg(fx_cmd(&f, cmd, &res) == TL_EINVALID, "beta's attachment on acme's support: %s (%s)",
                  tl_strerror(res.code), res.message);
    free(cmd);
    cmd = dq("{'op':'message.reply','as':'sam','message':'s-1','body':'x','attachments':['a-sb']}");
    ck_assert_msg(fx_cmd(&f, cmd, &res) == TL_EINVALID, "beta's attachment on a reply in acme's support: %s (%s)",
                  tl_strerror(res.code), res.message);
    free(cmd);
    ck_assert_uint_eq(fx_events(&f), before);
    cmd = dq("{'op':'message.send','as':'sam','account':'beta','channel':'support','body':'x','attachments':['a-sb']}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0);
    free(cmd);
    fx_close(&f);
}
END_TEST

/* Collects the seqs of an export's event lines. */
typedef struct seqs {
    uint64_t v[256];
    size_t n;
} seqs;

static int collect_seq(const char *line, size_t len, void *payload) {
    seqs *s = payload;
    json_t *o = json_loadb(line, len, 0, NULL);
    json_t *seq = json_object_get(o, "seq");
    if (json_is_integer(seq) && s->n < sizeof s->v / sizeof s->v[0]) s->v[s->n++] = (uint64_t)json_integer_value(seq);
    json_decref(o);
    return 0;
}

static bool has_seq(const seqs *s, uint64_t seq) {
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == seq) return true;
    return false;
}

/* What users do to a support message (no project) is an event of the account's support
 * conversation: it names the account, so the account's export holds it, and another
 * account's does not. */
START_TEST(support_message_events_name_their_account) {
    fx f;
    fx_scenario(&f);
    static const char *const cmds[] = {
        "{'op':'message.read','as':'sam','message':'s-1'}",
        "{'op':'message.pin','as':'sam','message':'s-1'}",
        "{'op':'message.unpin','as':'bob','message':'s-1'}",
        "{'op':'message.unread','as':'sam','message':'s-1'}",
        "{'op':'message.delete','as':'alice','message':'s-1'}",
    };
    uint64_t seq[5];
    for (int i = 0; i < 5; i++) {
        char *cmd = dq(cmds[i]);
        seq[i] = fx_ok(&f, cmd);
        free(cmd);
    }
    tl_export_options xo = TL_EXPORT_OPTIONS_INIT;
    xo.account = "acme";
    seqs acme = {.n = 0}, beta = {.n = 0};
    ck_assert_int_eq(tl_export(f.log, &xo, collect_seq, &acme), 0);
    xo.account = "beta";
    ck_assert_int_eq(tl_export(f.log, &xo, collect_seq, &beta), 0);
    ck_assert(has_seq(&acme, fx_seq(&f, "s-1")));
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(has_seq(&acme, seq[i]), "acme's export lacks %s (seq %llu)", cmds[i], (unsigned long long)seq[i]);
        ck_assert_msg(!has_seq(&beta, seq[i]), "beta's export holds %s", cmds[i]);
    }
    fx_close(&f);
}
END_TEST

/* The payload of the event at seq, as `log --json` shows it (json_decref). */
static json_t *event_payload(fx *f, uint64_t seq) {
    tl_iter *it;
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_open(f->log, seq, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    char *line;
    ck_assert_int_eq(tl_event_json(&ev, &line), 0);
    tl_iter_close(it);
    json_t *o = json_loads(line, 0, NULL);
    tl_free(line);
    ck_assert_ptr_nonnull(o);
    json_t *p = json_incref(json_object_get(o, "payload"));
    json_decref(o);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* docs/FORMAT.md's payloads: a reply names its parent's channel and topic (replies stay in
 * their parent's channel and topic); a note names no channel (note.added is the notes). */
START_TEST(message_payloads_as_documented) {
    fx f;
    fx_scenario(&f);
    json_t *p = event_payload(&f, fx_seq(&f, "m-3")); /* alice's reply to m-2, in t-1 */
    ck_assert_str_eq(json_string_value(json_object_get(p, "parent")), "m-2");
    ck_assert_str_eq(json_string_value(json_object_get(p, "channel")), "chat");
    ck_assert_msg(json_is_string(json_object_get(p, "topic")), "a reply in a chat topic names no topic");
    ck_assert_str_eq(json_string_value(json_object_get(p, "topic")), "t-1");
    json_decref(p);
    p = event_payload(&f, fx_seq(&f, "n-1"));
    ck_assert_str_eq(json_string_value(json_object_get(p, "id")), "n-1");
    ck_assert_msg(!json_object_get(p, "channel") && !json_object_get(p, "topic"), "note.added names a channel or topic");
    json_decref(p);
    fx_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_events");
    TCase *tb = tcase_create("more");
    tcase_set_timeout(tb, 120);
    tcase_add_unchecked_fixture(tb, template_up, fx_template_remove);
    tcase_add_test(tb, support_attachment_of_another_account);
    tcase_add_test(tb, support_message_events_name_their_account);
    tcase_add_test(tb, message_payloads_as_documented);
    suite_add_tcase(s, tb);
    return tu_main(s);
}
