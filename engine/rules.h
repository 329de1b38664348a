/*
 * rules.h — what the files of the command rules share (rules.c: the collector, shapes,
 * retries and the checks every command uses; rules_catalog.c: accounts, users, projects,
 * statuses and uploads; rules_messages.c: topics, messages, notes, replies and the flags of a
 * message). Private to the engine: nothing here is API.
 */
#ifndef TL_RULES_H
#define TL_RULES_H

#include "command.h"

typedef struct rctx {
    tl_wtxn *w;
    MDB_txn *txn;
    tl_log *log;
    json_t *obj;
    const char *op;
    int err;
    char msg[256];
    bool too_many;          /* more than 3 attachments (decided at its precedence) */
    const char *as;
    tl_user_rec user;
    bool user_ok;
    bool has_expect;
    json_int_t expect;
    uint8_t *data;          /* decoded attachment bytes */
    size_t data_len;
    const tl_cmd *cmd;
} rctx;

/* Record a violation; the collector keeps the one first in the spec's precedence order. */
void rules_violate(rctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A field's string value, or NULL when absent or null (null means absent). */
const char *rules_str(const rctx *c, const char *name);
bool rules_present(const rctx *c, const char *name);

/* Choose an id for what the caller did not name (kind 'm' message, 't' topic, 'f' attachment). */
/* 0, or the failure of a state lookup (its code and words in c->err, c->msg). */
int rules_generate_id(rctx *c, char out[TL_IDBUF], const char *prefix, char kind);

/* Lookups that record not_found (or a storage failure) as a violation; true when found. */
bool rules_load_actor(rctx *c);
bool rules_load_project(rctx *c, const char *id, tl_project_rec *p);
bool rules_load_message(rctx *c, const char *id, tl_message_rec *m);

/* exists, when the id in `field` is taken (kind: a u p t m f). */
void rules_check_new_id(rctx *c, const char *field, char kind);
/* forbidden, when the actor may not act in channel ch of p (or account's support). */
void rules_check_audience(rctx *c, const tl_project_rec *p, const char *account, int ch);
/* conflict, when "expect" differs from the actor's version of p. */
void rules_check_expect(rctx *c, const tl_project_rec *p);
/* The "attachments" of a new message by the actor, for project (or support account). */
void rules_check_attachments(rctx *c, const char *project, const char *account);

typedef struct body_ref {
    uint8_t commit[TL_HASH_BYTES];
    uint8_t salt[TL_SALT_BYTES];
    size_t size;
} body_ref;

/* Store the text of `field` as erasable content. */
int rules_store_body(rctx *c, const char *field, body_ref *b);
/* The "attachments" list (NULL when none); valid until the next call on this thread. */
const char **rules_attachment_list(rctx *c, size_t *n);
/* Append the event (with the retry fingerprint when with_request), fill res->seq. */
int rules_append(rctx *c, const char *kind, const char *project, tl_payload *p, const uint8_t *salt,
                 bool with_request, tl_result *res);

/* The commands: check every rule, append the event or nothing, fill res. */
int rules_account(rctx *c, tl_result *res);
int rules_user(rctx *c, tl_result *res);
int rules_project(rctx *c, tl_result *res);
int rules_status(rctx *c, tl_result *res);
int rules_upload(rctx *c, tl_result *res);
int rules_topic(rctx *c, tl_result *res);
int rules_send(rctx *c, tl_result *res);
int rules_note(rctx *c, tl_result *res);
int rules_reply(rctx *c, tl_result *res);
int rules_message_flag(rctx *c, tl_result *res);

#endif
