/*
 * rules.c — every rule of SPEC §1, decided inside the append's write transaction: the
 * collector, the shapes of commands, retries, the checks every command shares, and the entry
 * point. The commands themselves: rules_catalog.c (accounts, users, projects, statuses,
 * uploads) and rules_messages.c (topics, messages, notes, replies, read/unread/pin/unpin/
 * delete).
 *
 * A command is checked in three passes. (1) Its shape: op known, every field known, of the
 * right type and syntax, required ones present (`invalid_input`). (2) Every rule that can be
 * evaluated — lookups, roles, audiences, versions, message flags — records its violation in
 * a collector that keeps the one that comes first in the spec's precedence order
 * (invalid_input, too_large, not_found, exists, forbidden, conflict, deleted,
 * channel_unavailable, too_many_attachments, has_replies, already_pinned, not_pinned), so the
 * answer does not depend on the order of the checks in the code. (3) Only when nothing was
 * violated: content is stored, the event appended (appliers run), the result filled.
 * A refused command writes nothing; since it all happens inside the write transaction,
 * "delete only while there is no reply" cannot race a reply.
 *
 * Retries come first: a creating command whose id exists with the same fingerprint gets the
 * original result with "duplicate". The fingerprint is BLAKE2b-256 of the command's
 * canonical JSON (keys sorted, nulls dropped), keyed with the salt of the content it created
 * when there is one — so once that content is erased, the fingerprint reveals nothing.
 *
 * Choices where the spec is silent (pinned by tests/test_rules_table.c's rows, retries after
 * erasure and generated ids by tests/test_rules_ids.c):
 *  - a retry of a command whose content was erased since cannot be recognised: `exists`;
 *  - a retry is "equal as parsed JSON, null = absent" for unknown fields too, so a retry
 *    carrying an extra `"x":null` is still the duplicate (retries come before the shape);
 *  - `expect` on project.create is accepted: a new project is at version 0;
 *  - "a topic of another project" needs a project: with an unknown project the answer is
 *    not_found (the project's), whatever the topic;
 *  - titles and display names are 1-1024 bytes, attachment names 1-255, mime 1-127 bytes
 *    of type/subtype; generated ids are PREFIX:SEQ (m:10, t:10, a:10);
 *  - duplicate keys in a JSON line are `invalid_input` (command.c).
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rules.h"

/* ---------------------------------------------------------------- the collector */

void rules_violate(rctx *c, int code, const char *fmt, ...) {
    if (c->err && c->err >= code) return; /* codes run -1 (first) .. -12 (last) */
    c->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- shapes */

enum ftype { F_ID = 'i', F_TEXT = 's', F_STATUS = 't', F_BODY = 'b', F_INT = 'n', F_LIST = 'l', F_DATA = 'd', F_NAME = 'f', F_MIME = 'm' };

typedef struct fspec {
    const char *name;
    char type;
    bool required;
} fspec;

typedef struct opspec {
    const char *op;
    fspec fields[12];
} opspec;

static const opspec ops[] = {
    {"account.create", {{"id", F_ID, 1}, {"name", F_TEXT, 1}}},
    {"user.create", {{"id", F_ID, 1}, {"role", F_TEXT, 1}, {"name", F_TEXT, 1}, {"account", F_ID, 0}}},
    {"project.create",
     {{"as", F_ID, 1}, {"id", F_ID, 1}, {"account", F_ID, 1}, {"type", F_TEXT, 1}, {"title", F_TEXT, 1},
      {"status", F_STATUS, 0}, {"ambassador", F_ID, 0}, {"ambassador_message", F_BODY, 0},
      {"ambassador_message_id", F_ID, 0}, {"expect", F_INT, 0}}},
    {"project.status", {{"as", F_ID, 1}, {"project", F_ID, 1}, {"status", F_STATUS, 1}, {"expect", F_INT, 0}}},
    {"topic.create",
     {{"as", F_ID, 1}, {"project", F_ID, 1}, {"title", F_TEXT, 1}, {"body", F_BODY, 1}, {"id", F_ID, 0},
      {"message_id", F_ID, 0}, {"attachments", F_LIST, 0}, {"expect", F_INT, 0}}},
    {"message.send",
     {{"as", F_ID, 1}, {"channel", F_TEXT, 1}, {"body", F_BODY, 1}, {"project", F_ID, 0}, {"topic", F_ID, 0},
      {"account", F_ID, 0}, {"id", F_ID, 0}, {"attachments", F_LIST, 0}, {"expect", F_INT, 0}}},
    {"note.add",
     {{"as", F_ID, 1}, {"project", F_ID, 1}, {"body", F_BODY, 1}, {"id", F_ID, 0}, {"attachments", F_LIST, 0},
      {"expect", F_INT, 0}}},
    {"message.reply",
     {{"as", F_ID, 1}, {"message", F_ID, 1}, {"body", F_BODY, 1}, {"id", F_ID, 0}, {"attachments", F_LIST, 0},
      {"expect", F_INT, 0}}},
    {"message.read", {{"as", F_ID, 1}, {"message", F_ID, 1}, {"expect", F_INT, 0}}},
    {"message.unread", {{"as", F_ID, 1}, {"message", F_ID, 1}, {"expect", F_INT, 0}}},
    {"message.pin", {{"as", F_ID, 1}, {"message", F_ID, 1}, {"expect", F_INT, 0}}},
    {"message.unpin", {{"as", F_ID, 1}, {"message", F_ID, 1}, {"expect", F_INT, 0}}},
    {"message.delete", {{"as", F_ID, 1}, {"message", F_ID, 1}, {"expect", F_INT, 0}}},
    {"attachment.upload",
     {{"as", F_ID, 1}, {"name", F_NAME, 1}, {"data", F_DATA, 1}, {"project", F_ID, 0}, {"account", F_ID, 0},
      {"mime", F_MIME, 0}, {"id", F_ID, 0}, {"expect", F_INT, 0}}},
};

static const opspec *find_op(const char *op) {
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].op, op) == 0) return &ops[i];
    return NULL;
}

/* A field's string value, or NULL when absent or null (null means absent). */
const char *rules_str(const rctx *c, const char *name) {
    json_t *v = json_object_get(c->obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool rules_present(const rctx *c, const char *name) {
    json_t *v = json_object_get(c->obj, name);
    return v && !json_is_null(v);
}

static bool check_text(rctx *c, const char *name, json_t *v, size_t max) {
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        rules_violate(c, TL_EINVALID, "%s must be 1 to %zu bytes", name, max);
        return false;
    }
    if (strlen(json_string_value(v)) != n) { /* builder strings cannot hold NUL; lines cannot either */
        rules_violate(c, TL_EINVALID, "%s holds a NUL character", name);
        return false;
    }
    return true;
}

/* An id listed twice in `attachments` (all items valid ids). The list is sorted by (id,
 * position), not compared pairwise: more than 3 items is already an error, but the line may
 * hold millions of them (up to 4/3 of the attachment limit plus 1 MiB), and a quadratic
 * check held the write lock for hours. The repeat named is the first in list order. */
typedef struct list_item {
    const char *id;
    size_t at;
} list_item;

static int by_id_then_position(const void *a, const void *b) {
    const list_item *x = a, *y = b;
    int d = strcmp(x->id, y->id);
    return d ? d : (x->at > y->at) - (x->at < y->at);
}

static void check_repeats(rctx *c, json_t *list) {
    size_t n = json_array_size(list), first = SIZE_MAX;
    if (n < 2) return;
    list_item *items = malloc(n * sizeof *items);
    if (!items) { rules_violate(c, TL_ENOMEM, "out of memory (attachments)"); return; }
    for (size_t i = 0; i < n; i++) items[i] = (list_item){json_string_value(json_array_get(list, i)), i};
    qsort(items, n, sizeof *items, by_id_then_position);
    for (size_t i = 1; i < n; i++)
        if (strcmp(items[i].id, items[i - 1].id) == 0 && (first == SIZE_MAX || items[i].at < items[first].at)) first = i;
    if (first != SIZE_MAX) rules_violate(c, TL_EINVALID, "attachment %s is listed twice", items[first].id);
    free(items);
}

static void check_shape(rctx *c, const opspec *spec) {
    const char *key;
    json_t *v;
    json_object_foreach(c->obj, key, v) {
        if (strcmp(key, "op") == 0) continue;
        const fspec *f = NULL;
        for (int i = 0; i < 12 && spec->fields[i].name; i++)
            if (strcmp(spec->fields[i].name, key) == 0) f = &spec->fields[i];
        if (!f) { rules_violate(c, TL_EINVALID, "unknown field \"%.64s\" for %s", key, c->op); continue; }
        if (json_is_null(v)) {
            if (f->required) rules_violate(c, TL_EINVALID, "%s is required (null given)", key);
            continue;
        }
        switch (f->type) {
        case F_ID:
            if (!json_is_string(v) || !tl_id_valid(json_string_value(v)) || strlen(json_string_value(v)) != json_string_length(v))
                rules_violate(c, TL_EINVALID, "%s is not a valid id (1-64 bytes of A-Z a-z 0-9 . _ : -)", key);
            break;
        case F_TEXT:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_TEXT_MAX);
            break;
        case F_NAME:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_NAME_FIELD_MAX);
            break;
        case F_MIME:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a string", key);
            else if (check_text(c, key, v, TL_MIME_MAX) && !strchr(json_string_value(v), '/'))
                rules_violate(c, TL_EINVALID, "mime must look like type/subtype");
            break;
        case F_STATUS:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_STATUS_MAX);
            break;
        case F_BODY:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_BODY_MAX);
            break;
        case F_INT:
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                rules_violate(c, TL_EINVALID, "%s must be a non-negative integer", key);
            break;
        case F_DATA:
            if (!json_is_string(v)) rules_violate(c, TL_EINVALID, "%s must be a base64 string", key);
            break;
        case F_LIST: {
            if (!json_is_array(v)) { rules_violate(c, TL_EINVALID, "%s must be a list of ids", key); break; }
            size_t n = json_array_size(v), bad = 0;
            for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(v, i);
                if (!json_is_string(item) || !tl_id_valid(json_string_value(item)) ||
                    strlen(json_string_value(item)) != json_string_length(item)) {
                    rules_violate(c, TL_EINVALID, "%s[%zu] is not a valid id", key, i);
                    bad++;
                }
            }
            if (!bad) check_repeats(c, v);
            if (n > TL_ATTACH_MAX) c->too_many = true;
            break;
        }
        }
    }
    for (int i = 0; i < 12 && spec->fields[i].name; i++)
        if (spec->fields[i].required && !rules_present(c, spec->fields[i].name))
            rules_violate(c, TL_EINVALID, "%s is required for %s", spec->fields[i].name, c->op);
    json_t *e = json_object_get(c->obj, "expect");
    if (json_is_integer(e) && json_integer_value(e) >= 0) {
        c->has_expect = true;
        c->expect = json_integer_value(e);
    }
}

/* ---------------------------------------------------------------- fingerprints and ids */

static int fingerprint(const rctx *c, const uint8_t *salt, uint8_t out[TL_HASH_BYTES]) {
    json_t *copy = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(c->obj, key, v) if (!json_is_null(v)) json_object_set(copy, key, v);
    char *text = tl_json_dump(copy, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(copy);
    if (!text) return TL_ENOMEM;
    crypto_generichash(out, TL_HASH_BYTES, (const uint8_t *)text, strlen(text), salt, salt ? TL_SALT_BYTES : 0);
    free(text);
    return 0;
}

/*
 * Choose an id for what the caller did not name: PREFIX:SEQ (m:10), made unique if taken.
 * The colon keeps generated ids apart from the ids callers write by hand (m-10, msg10), so a
 * script that omits one id does not later collide with its own numbering.
 */
int rules_generate_id(rctx *c, char out[TL_IDBUF], const char *prefix, char kind) {
    uint64_t seq = c->w->head.seq + 1;
    for (unsigned n = 0;; n++) {
        if (n == 0) snprintf(out, TL_IDBUF, "%s:%llu", prefix, (unsigned long long)seq);
        else snprintf(out, TL_IDBUF, "%s:%llu.%u", prefix, (unsigned long long)seq, n);
        tl_message_rec m;
        tl_topic_rec t;
        tl_attachment_rec a;
        int rc = kind == 'm' ? tl_wstate_message(c->w, out, &m)
               : kind == 't' ? tl_state_topic(c->txn, c->log, out, &t)
                             : tl_state_attachment(c->txn, c->log, out, &a);
        if (rc == TL_ENOTFOUND) return 0;
        /* a lookup that failed is not an id taken: on a damaged state it failed for every
         * candidate, and the writer spun forever holding the write lock (an audit) */
        if (rc) {
            c->err = rc;
            snprintf(c->msg, sizeof c->msg, "%s", tl_errdetail());
            return rc;
        }
    }
}

/* The retry check: 1 when answered as a duplicate, 0 to go on. */
static int try_duplicate(rctx *c, tl_result *res) {
    const char *id = rules_str(c, "id");
    const char *op = c->op;
    tl_message_rec m;
    char topic_id[TL_IDBUF];
    /* A topic.create that named only its first message's id is retried by that id: the topic
     * is the one whose first message it is (a generated topic id is not the caller's). */
    const char *mid = rules_str(c, "message_id");
    if (!id && !strcmp(op, "topic.create") && mid && tl_id_valid(mid)) {
        if (tl_wstate_message(c->w, mid, &m) || !m.topic[0]) return 0;
        snprintf(topic_id, sizeof topic_id, "%s", m.topic);
        id = topic_id;
    }
    if (!id || !tl_id_valid(id)) return 0;
    uint8_t stored[TL_HASH_BYTES], salt[TL_SALT_BYTES], fp[TL_HASH_BYTES];
    const uint8_t *commit = NULL;
    uint64_t seq = 0;
    char message_id[TL_IDBUF] = "";
    bool salted = false;
    tl_account_rec a; tl_user_rec u; tl_project_rec p; tl_topic_rec t; tl_attachment_rec f;
    if (!strcmp(op, "account.create")) {
        if (tl_state_account(c->txn, c->log, id, &a)) return 0;
        memcpy(stored, a.request, sizeof stored); seq = a.seq;
    } else if (!strcmp(op, "user.create")) {
        if (tl_state_user(c->txn, c->log, id, &u)) return 0;
        memcpy(stored, u.request, sizeof stored); seq = u.seq;
    } else if (!strcmp(op, "project.create")) {
        if (tl_wstate_project(c->w, id, &p)) return 0;
        memcpy(stored, p.request, sizeof stored); seq = p.seq;
        if (p.ambassador_message[0] && tl_wstate_message(c->w, p.ambassador_message, &m) == 0) {
            commit = m.body_commit;
            salted = true;
        }
    } else if (!strcmp(op, "topic.create")) {
        if (tl_state_topic(c->txn, c->log, id, &t)) return 0;
        if (mid && strcmp(mid, t.message_id) != 0) return 0;
        memcpy(stored, t.request, sizeof stored); seq = t.seq;
        snprintf(message_id, sizeof message_id, "%s", t.message_id);
        if (tl_wstate_message(c->w, t.message_id, &m) == 0) commit = m.body_commit;
        salted = true;
    } else if (!strcmp(op, "message.send") || !strcmp(op, "message.reply") || !strcmp(op, "note.add")) {
        if (tl_wstate_message(c->w, id, &m)) return 0;
        memcpy(stored, m.request, sizeof stored); seq = m.seq;
        commit = m.body_commit;
        salted = true;
    } else if (!strcmp(op, "attachment.upload")) {
        if (tl_state_attachment(c->txn, c->log, id, &f)) return 0;
        memcpy(stored, f.request, sizeof stored); seq = f.seq;
        commit = f.data_commit;
        salted = true;
    } else {
        return 0;
    }
    if (salted && (!commit || tl_content_salt(c->txn, c->log, commit, salt) != 0)) return 0; /* erased: cannot match */
    if (fingerprint(c, salted ? salt : NULL, fp) != 0 || sodium_memcmp(fp, stored, sizeof fp) != 0) return 0;
    memset(res, 0, sizeof *res);
    res->seq = seq;
    res->duplicate = 1;
    snprintf(res->id, sizeof res->id, "%s", id);
    snprintf(res->message_id, sizeof res->message_id, "%s", message_id);
    return 1;
}

/* ---------------------------------------------------------------- shared checks */

bool rules_load_actor(rctx *c) {
    c->as = rules_str(c, "as");
    if (!c->as || !tl_id_valid(c->as)) return false;
    int rc = tl_state_user(c->txn, c->log, c->as, &c->user);
    if (rc == TL_ENOTFOUND) { rules_violate(c, TL_ENOTFOUND, "unknown user %s", c->as); return false; }
    if (rc) { rules_violate(c, rc, "%s", tl_errdetail()); return false; }
    c->user_ok = true;
    if (c->user.role == TL_ROLE_AUDITOR) rules_violate(c, TL_EFORBIDDEN, "auditors cannot act (%s is an auditor)", c->as);
    return true;
}

bool rules_load_project(rctx *c, const char *id, tl_project_rec *p) {
    if (!id || !tl_id_valid(id)) return false;
    int rc = tl_wstate_project(c->w, id, p);
    if (rc == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown project %s", id);
    else if (rc) rules_violate(c, rc, "%s", tl_errdetail());
    return rc == 0;
}

bool rules_load_message(rctx *c, const char *id, tl_message_rec *m) {
    if (!id || !tl_id_valid(id)) return false;
    int rc = tl_wstate_message(c->w, id, m);
    if (rc == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown message %s", id);
    else if (rc) rules_violate(c, rc, "%s", tl_errdetail());
    return rc == 0;
}

void rules_check_new_id(rctx *c, const char *field, char kind) {
    const char *id = rules_str(c, field);
    if (!id || !tl_id_valid(id)) return;
    tl_account_rec a; tl_user_rec u; tl_project_rec p; tl_topic_rec t; tl_message_rec m; tl_attachment_rec f;
    int rc = kind == 'a' ? tl_state_account(c->txn, c->log, id, &a)
           : kind == 'u' ? tl_state_user(c->txn, c->log, id, &u)
           : kind == 'p' ? tl_wstate_project(c->w, id, &p)
           : kind == 't' ? tl_state_topic(c->txn, c->log, id, &t)
           : kind == 'm' ? tl_wstate_message(c->w, id, &m)
                         : tl_state_attachment(c->txn, c->log, id, &f);
    if (rc == 0) rules_violate(c, TL_EEXISTS, "%s %s already exists", field, id);
}

/* Audience check for acting in channel ch of p (or support of account): writing, and also
 * reading, marking unread, pinning (so the message names the audience, not "write"). */
void rules_check_audience(rctx *c, const tl_project_rec *p, const char *account, int ch) {
    if (!c->user_ok || c->user.role == TL_ROLE_AUDITOR) return;
    if (!tl_state_in_audience(c->as, &c->user, p, account, ch))
        rules_violate(c, TL_EFORBIDDEN, "%s is not in the audience of the %s channel%s%s", c->as, tl_channel_name(ch),
                p ? " of this project" : " of this account", "");
}

void rules_check_expect(rctx *c, const tl_project_rec *p) {
    if (!c->has_expect || !c->user_ok || !p) return;
    uint64_t v = tl_state_version(c->as, &c->user, p);
    if ((uint64_t)c->expect != v)
        rules_violate(c, TL_ECONFLICT, "the project is at version %llu, not %lld", (unsigned long long)v, (long long)c->expect);
}

/*
 * Attachments listed on a new message by author, for project p (or support account). Checked
 * whether or not the project, account or parent message exists: an attachment used already
 * or uploaded by someone else is invalid_input, which comes before the target's not_found.
 * With neither project nor account (the project, account or parent message named is
 * unknown) "another project" is left to that not_found: a mistyped project is not_found,
 * whatever it carries.
 */
void rules_check_attachments(rctx *c, const char *project, const char *account) {
    json_t *list = json_object_get(c->obj, "attachments");
    if (!json_is_array(list)) return;
    /* invalid_input ranks first: once it is the answer, no lookup can change it */
    for (size_t i = 0; i < json_array_size(list) && c->err != TL_EINVALID; i++) {
        const char *id = json_string_value(json_array_get(list, i));
        if (!id || !tl_id_valid(id)) continue;
        tl_attachment_rec a;
        int rc = tl_state_attachment(c->txn, c->log, id, &a);
        if (rc == TL_ENOTFOUND) { rules_violate(c, TL_ENOTFOUND, "unknown attachment %s", id); continue; }
        if (rc) { rules_violate(c, rc, "%s", tl_errdetail()); continue; }
        if (c->as && strcmp(a.uploader, c->as) != 0)
            rules_violate(c, TL_EINVALID, "attachment %s was uploaded by someone else", id);
        else if ((project || account) &&
                 (strcmp(a.project, project ? project : "") != 0 || (!project && strcmp(a.account, account ? account : "") != 0)))
            rules_violate(c, TL_EINVALID, "attachment %s was uploaded to %s %s, not to this message's %s", id,
                          a.project[0] ? "project" : "the support conversation of account",
                          a.project[0] ? a.project : a.account, project ? "project" : "conversation");
        else if (a.used_by[0])
            rules_violate(c, TL_EINVALID, "attachment %s is already used by message %s", id, a.used_by);
    }
    if (c->too_many)
        rules_violate(c, TL_ETOOMANY, "a message carries at most %d attachments (%zu given)", TL_ATTACH_MAX, json_array_size(list));
}

/* ---------------------------------------------------------------- appending */

int rules_store_body(rctx *c, const char *field, body_ref *b) {
    const char *text = rules_str(c, field);
    b->size = strlen(text);
    return tl_content_put(c->w, text, b->size, b->commit, b->salt);
}

const char **rules_attachment_list(rctx *c, size_t *n) {
    static _Thread_local const char *items[TL_ATTACH_MAX];
    json_t *list = json_object_get(c->obj, "attachments");
    *n = json_is_array(list) ? json_array_size(list) : 0;
    for (size_t i = 0; i < *n && i < TL_ATTACH_MAX; i++) items[i] = json_string_value(json_array_get(list, i));
    return *n ? items : NULL;
}

int rules_append(rctx *c, const char *kind, const char *project, tl_payload *p, const uint8_t *salt,
                 bool with_request, tl_result *res) {
    uint8_t fp[TL_HASH_BYTES];
    if (with_request) {
        if (fingerprint(c, salt, fp)) return tl_result_fail(res, TL_ENOMEM, "out of memory");
        tl_payload_bin(p, "request", fp, sizeof fp);
    }
    const char *actor = c->as ? c->as : "@operator";
    tl_event ev;
    int rc = tl_wtxn_append(c->w, actor, kind, project, p, &ev);
    if (rc) return tl_result_fail(res, rc, "%s", tl_errdetail());
    res->seq = ev.seq;
    return 0;
}

/* ---------------------------------------------------------------- entry */

int tl_rules_exec(tl_wtxn *w, const tl_cmd *cmd, tl_result *res) {
    memset(res, 0, sizeof *res);
    rctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.txn = w->txn;
    c.log = w->log;
    c.obj = cmd->obj;
    c.cmd = cmd;
    json_t *op = json_object_get(cmd->obj, "op");
    if (!json_is_string(op)) return tl_result_fail(res, TL_EINVALID, "a command needs an \"op\" string");
    c.op = json_string_value(op);
    const opspec *spec = find_op(c.op);
    if (!spec) return tl_result_fail(res, TL_EINVALID, "unknown op \"%.64s\"", c.op);
    if (!cmd->data_unread && try_duplicate(&c, res)) return 0;
    check_shape(&c, spec);
    int rc;
    if (!strcmp(c.op, "account.create")) rc = rules_account(&c, res);
    else if (!strcmp(c.op, "user.create")) rc = rules_user(&c, res);
    else if (!strcmp(c.op, "project.create")) rc = rules_project(&c, res);
    else if (!strcmp(c.op, "project.status")) rc = rules_status(&c, res);
    else if (!strcmp(c.op, "topic.create")) rc = rules_topic(&c, res);
    else if (!strcmp(c.op, "message.send")) rc = rules_send(&c, res);
    else if (!strcmp(c.op, "note.add")) rc = rules_note(&c, res);
    else if (!strcmp(c.op, "message.reply")) rc = rules_reply(&c, res);
    else if (!strcmp(c.op, "attachment.upload")) rc = rules_upload(&c, res);
    else rc = rules_message_flag(&c, res);
    free(c.data);
    return rc;
}
