/*
 * rules.c — every rule of SPEC §1, decided inside the append's write transaction.
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
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"

/* ---------------------------------------------------------------- the collector */

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
} rctx;

static void violate(rctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void violate(rctx *c, int code, const char *fmt, ...) {
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
static const char *str(const rctx *c, const char *name) {
    json_t *v = json_object_get(c->obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool present(const rctx *c, const char *name) {
    json_t *v = json_object_get(c->obj, name);
    return v && !json_is_null(v);
}

static bool check_text(rctx *c, const char *name, json_t *v, size_t max) {
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        violate(c, TL_EINVALID, "%s must be 1 to %zu bytes", name, max);
        return false;
    }
    if (strlen(json_string_value(v)) != n) { /* builder strings cannot hold NUL; lines cannot either */
        violate(c, TL_EINVALID, "%s holds a NUL character", name);
        return false;
    }
    return true;
}

static void check_shape(rctx *c, const opspec *spec) {
    const char *key;
    json_t *v;
    json_object_foreach(c->obj, key, v) {
        if (strcmp(key, "op") == 0) continue;
        const fspec *f = NULL;
        for (int i = 0; i < 12 && spec->fields[i].name; i++)
            if (strcmp(spec->fields[i].name, key) == 0) f = &spec->fields[i];
        if (!f) { violate(c, TL_EINVALID, "unknown field \"%.64s\" for %s", key, c->op); continue; }
        if (json_is_null(v)) {
            if (f->required) violate(c, TL_EINVALID, "%s is required (null given)", key);
            continue;
        }
        switch (f->type) {
        case F_ID:
            if (!json_is_string(v) || !tl_id_valid(json_string_value(v)) || strlen(json_string_value(v)) != json_string_length(v))
                violate(c, TL_EINVALID, "%s is not a valid id (1-64 bytes of A-Z a-z 0-9 . _ : -)", key);
            break;
        case F_TEXT:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_TEXT_MAX);
            break;
        case F_NAME:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_NAME_FIELD_MAX);
            break;
        case F_MIME:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a string", key);
            else if (check_text(c, key, v, TL_MIME_MAX) && !strchr(json_string_value(v), '/'))
                violate(c, TL_EINVALID, "mime must look like type/subtype");
            break;
        case F_STATUS:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_STATUS_MAX);
            break;
        case F_BODY:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a string", key);
            else check_text(c, key, v, TL_BODY_MAX);
            break;
        case F_INT:
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                violate(c, TL_EINVALID, "%s must be a non-negative integer", key);
            break;
        case F_DATA:
            if (!json_is_string(v)) violate(c, TL_EINVALID, "%s must be a base64 string", key);
            break;
        case F_LIST: {
            if (!json_is_array(v)) { violate(c, TL_EINVALID, "%s must be a list of ids", key); break; }
            size_t n = json_array_size(v);
            for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(v, i);
                if (!json_is_string(item) || !tl_id_valid(json_string_value(item)) ||
                    strlen(json_string_value(item)) != json_string_length(item)) {
                    violate(c, TL_EINVALID, "%s[%zu] is not a valid id", key, i);
                    continue;
                }
                for (size_t j = 0; j < i; j++)
                    if (json_equal(item, json_array_get(v, j)))
                        violate(c, TL_EINVALID, "attachment %s is listed twice", json_string_value(item));
            }
            if (n > TL_ATTACH_MAX) c->too_many = true;
            break;
        }
        }
    }
    for (int i = 0; i < 12 && spec->fields[i].name; i++)
        if (spec->fields[i].required && !present(c, spec->fields[i].name))
            violate(c, TL_EINVALID, "%s is required for %s", spec->fields[i].name, c->op);
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
    char *text = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(copy);
    if (!text) return TL_ENOMEM;
    crypto_generichash(out, TL_HASH_BYTES, (const uint8_t *)text, strlen(text), salt, salt ? TL_SALT_BYTES : 0);
    free(text);
    return 0;
}

/* Choose an id for what the caller did not name: PREFIX-SEQ, made unique if taken. */
static void generate_id(rctx *c, char out[TL_IDBUF], const char *prefix, char kind) {
    uint64_t seq = c->w->head.seq + 1;
    for (unsigned n = 0;; n++) {
        if (n == 0) snprintf(out, TL_IDBUF, "%s-%llu", prefix, (unsigned long long)seq);
        else snprintf(out, TL_IDBUF, "%s-%llu.%u", prefix, (unsigned long long)seq, n);
        tl_message_rec m;
        tl_topic_rec t;
        tl_attachment_rec a;
        int rc = kind == 'm' ? tl_state_message(c->txn, c->log, out, &m)
               : kind == 't' ? tl_state_topic(c->txn, c->log, out, &t)
                             : tl_state_attachment(c->txn, c->log, out, &a);
        if (rc == TL_ENOTFOUND) return;
    }
}

/* The retry check: 1 when answered as a duplicate, 0 to go on. */
static int try_duplicate(rctx *c, tl_result *res) {
    const char *id = str(c, "id");
    if (!id || !tl_id_valid(id)) return 0;
    const char *op = c->op;
    uint8_t stored[TL_HASH_BYTES], salt[TL_SALT_BYTES], fp[TL_HASH_BYTES];
    const uint8_t *commit = NULL;
    uint64_t seq = 0;
    char message_id[TL_IDBUF] = "";
    bool salted = false;
    tl_account_rec a; tl_user_rec u; tl_project_rec p; tl_topic_rec t; tl_message_rec m; tl_attachment_rec f;
    if (!strcmp(op, "account.create")) {
        if (tl_state_account(c->txn, c->log, id, &a)) return 0;
        memcpy(stored, a.request, sizeof stored); seq = a.seq;
    } else if (!strcmp(op, "user.create")) {
        if (tl_state_user(c->txn, c->log, id, &u)) return 0;
        memcpy(stored, u.request, sizeof stored); seq = u.seq;
    } else if (!strcmp(op, "project.create")) {
        if (tl_state_project(c->txn, c->log, id, &p)) return 0;
        memcpy(stored, p.request, sizeof stored); seq = p.seq;
        if (p.ambassador_message[0] && tl_state_message(c->txn, c->log, p.ambassador_message, &m) == 0) {
            commit = m.body_commit;
            salted = true;
        }
    } else if (!strcmp(op, "topic.create")) {
        if (tl_state_topic(c->txn, c->log, id, &t)) return 0;
        memcpy(stored, t.request, sizeof stored); seq = t.seq;
        snprintf(message_id, sizeof message_id, "%s", t.message_id);
        if (tl_state_message(c->txn, c->log, t.message_id, &m) == 0) commit = m.body_commit;
        salted = true;
    } else if (!strcmp(op, "message.send") || !strcmp(op, "message.reply") || !strcmp(op, "note.add")) {
        if (tl_state_message(c->txn, c->log, id, &m)) return 0;
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

static bool load_actor(rctx *c) {
    c->as = str(c, "as");
    if (!c->as || !tl_id_valid(c->as)) return false;
    int rc = tl_state_user(c->txn, c->log, c->as, &c->user);
    if (rc == TL_ENOTFOUND) { violate(c, TL_ENOTFOUND, "unknown user %s", c->as); return false; }
    if (rc) { violate(c, rc, "%s", tl_errdetail()); return false; }
    c->user_ok = true;
    if (c->user.role == TL_ROLE_AUDITOR) violate(c, TL_EFORBIDDEN, "auditors cannot act (%s is an auditor)", c->as);
    return true;
}

static bool load_project(rctx *c, const char *id, tl_project_rec *p) {
    if (!id || !tl_id_valid(id)) return false;
    int rc = tl_state_project(c->txn, c->log, id, p);
    if (rc == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown project %s", id);
    else if (rc) violate(c, rc, "%s", tl_errdetail());
    return rc == 0;
}

static bool load_message(rctx *c, const char *id, tl_message_rec *m) {
    if (!id || !tl_id_valid(id)) return false;
    int rc = tl_state_message(c->txn, c->log, id, m);
    if (rc == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown message %s", id);
    else if (rc) violate(c, rc, "%s", tl_errdetail());
    return rc == 0;
}

static void check_new_id(rctx *c, const char *field, char kind) {
    const char *id = str(c, field);
    if (!id || !tl_id_valid(id)) return;
    tl_account_rec a; tl_user_rec u; tl_project_rec p; tl_topic_rec t; tl_message_rec m; tl_attachment_rec f;
    int rc = kind == 'a' ? tl_state_account(c->txn, c->log, id, &a)
           : kind == 'u' ? tl_state_user(c->txn, c->log, id, &u)
           : kind == 'p' ? tl_state_project(c->txn, c->log, id, &p)
           : kind == 't' ? tl_state_topic(c->txn, c->log, id, &t)
           : kind == 'm' ? tl_state_message(c->txn, c->log, id, &m)
                         : tl_state_attachment(c->txn, c->log, id, &f);
    if (rc == 0) violate(c, TL_EEXISTS, "%s %s already exists", field, id);
}

/* Audience check for acting in channel ch of p (or support of account). */
static void check_audience(rctx *c, const tl_project_rec *p, const char *account, int ch) {
    if (!c->user_ok || c->user.role == TL_ROLE_AUDITOR) return;
    if (!tl_state_in_audience(c->as, &c->user, p, account, ch))
        violate(c, TL_EFORBIDDEN, "%s may not write in the %s channel%s%s", c->as, tl_channel_name(ch),
                p ? " of this project" : " of this account", "");
}

static void check_expect(rctx *c, const tl_project_rec *p) {
    if (!c->has_expect || !c->user_ok || !p) return;
    uint64_t v = tl_state_version(c->as, &c->user, p);
    if ((uint64_t)c->expect != v)
        violate(c, TL_ECONFLICT, "the project is at version %llu, not %lld", (unsigned long long)v, (long long)c->expect);
}

/* Attachments listed on a new message by author, for project p (or support account). */
static void check_attachments(rctx *c, const char *project, const char *account) {
    json_t *list = json_object_get(c->obj, "attachments");
    if (!json_is_array(list)) return;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *id = json_string_value(json_array_get(list, i));
        if (!id || !tl_id_valid(id)) continue;
        tl_attachment_rec a;
        int rc = tl_state_attachment(c->txn, c->log, id, &a);
        if (rc == TL_ENOTFOUND) { violate(c, TL_ENOTFOUND, "unknown attachment %s", id); continue; }
        if (rc) { violate(c, rc, "%s", tl_errdetail()); continue; }
        if (c->as && strcmp(a.uploader, c->as) != 0)
            violate(c, TL_EINVALID, "attachment %s was uploaded by someone else", id);
        else if (strcmp(a.project, project ? project : "") != 0 || (!project && strcmp(a.account, account ? account : "") != 0))
            violate(c, TL_EINVALID, "attachment %s belongs to another %s", id, project ? "project" : "conversation");
        else if (a.used_by[0])
            violate(c, TL_EINVALID, "attachment %s is already used by message %s", id, a.used_by);
    }
    if (c->too_many)
        violate(c, TL_ETOOMANY, "a message carries at most %d attachments (%zu given)", TL_ATTACH_MAX, json_array_size(list));
}

/* ---------------------------------------------------------------- appending */

typedef struct body_ref {
    uint8_t commit[TL_HASH_BYTES];
    uint8_t salt[TL_SALT_BYTES];
    size_t size;
} body_ref;

static int store_body(rctx *c, const char *field, body_ref *b) {
    const char *text = str(c, field);
    b->size = strlen(text);
    return tl_content_put(c->w, text, b->size, b->commit, b->salt);
}

static const char **attachment_list(rctx *c, size_t *n) {
    static _Thread_local const char *items[TL_ATTACH_MAX];
    json_t *list = json_object_get(c->obj, "attachments");
    *n = json_is_array(list) ? json_array_size(list) : 0;
    for (size_t i = 0; i < *n && i < TL_ATTACH_MAX; i++) items[i] = json_string_value(json_array_get(list, i));
    return *n ? items : NULL;
}

static int append(rctx *c, const char *kind, const char *project, tl_payload *p, const uint8_t *salt,
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

/* ---------------------------------------------------------------- the commands */

static int do_account(rctx *c, tl_result *res) {
    check_new_id(c, "id", 'a');
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    tl_payload p = {0};
    tl_payload_str(&p, "id", str(c, "id"));
    tl_payload_str(&p, "name", str(c, "name"));
    snprintf(res->id, sizeof res->id, "%s", str(c, "id"));
    return append(c, "account.created", NULL, &p, NULL, true, res);
}

static int do_user(rctx *c, tl_result *res) {
    const char *role = str(c, "role"), *account = str(c, "account");
    int r = tl_role_parse(role);
    if (role && !r) violate(c, TL_EINVALID, "role must be member, staff, ambassador or auditor");
    if (r == TL_ROLE_MEMBER && !present(c, "account")) violate(c, TL_EINVALID, "account is required for a member");
    if (r && r != TL_ROLE_MEMBER && present(c, "account")) violate(c, TL_EINVALID, "unknown field \"account\" for a %s", role);
    tl_account_rec a;
    if (r == TL_ROLE_MEMBER && account && tl_id_valid(account) && tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND)
        violate(c, TL_ENOTFOUND, "unknown account %s", account);
    check_new_id(c, "id", 'u');
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    tl_payload p = {0};
    tl_payload_str(&p, "id", str(c, "id"));
    tl_payload_str(&p, "role", role);
    tl_payload_str(&p, "name", str(c, "name"));
    if (r == TL_ROLE_MEMBER) tl_payload_str(&p, "account", account);
    snprintf(res->id, sizeof res->id, "%s", str(c, "id"));
    return append(c, "user.created", NULL, &p, NULL, true, res);
}

static int do_project(rctx *c, tl_result *res) {
    const char *id = str(c, "id"), *account = str(c, "account"), *type = str(c, "type");
    const char *amb = str(c, "ambassador"), *amb_msg = str(c, "ambassador_message");
    int t = tl_ptype_parse(type);
    if (type && !t) violate(c, TL_EINVALID, "type must be application, order or video");
    if (present(c, "ambassador_message_id") && !present(c, "ambassador_message"))
        violate(c, TL_EINVALID, "unknown field \"ambassador_message_id\" without ambassador_message");
    if (present(c, "ambassador_message") && (t != TL_TYPE_ORDER || !present(c, "ambassador")))
        violate(c, TL_EINVALID, "ambassador_message is only for an order that names its ambassador");
    load_actor(c);
    tl_account_rec a;
    if (account && tl_id_valid(account) && tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND)
        violate(c, TL_ENOTFOUND, "unknown account %s", account);
    tl_user_rec amb_user;
    if (amb && tl_id_valid(amb)) {
        int rc = tl_state_user(c->txn, c->log, amb, &amb_user);
        if (rc == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown user %s", amb);
        else if (!rc && amb_user.role != TL_ROLE_AMBASSADOR) violate(c, TL_EINVALID, "%s is not an ambassador", amb);
    }
    check_new_id(c, "id", 'p');
    if (amb_msg) check_new_id(c, "ambassador_message_id", 'm');
    if (c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
        bool member = c->user.role == TL_ROLE_MEMBER && account && strcmp(c->user.account, account) == 0;
        bool ambassador = c->user.role == TL_ROLE_AMBASSADOR && amb && strcmp(amb, c->as) == 0;
        if (!member && c->user.role != TL_ROLE_STAFF && !ambassador)
            violate(c, TL_EFORBIDDEN, "%s may not create a project of account %s", c->as, account ? account : "?");
    }
    if (c->has_expect && c->expect != 0) violate(c, TL_ECONFLICT, "a new project is at version 0");
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);

    char msg_id[TL_IDBUF] = "";
    body_ref body;
    tl_payload p = {0};
    tl_payload_str(&p, "id", id);
    tl_payload_str(&p, "account", account);
    tl_payload_str(&p, "type", type);
    tl_payload_str(&p, "title", str(c, "title"));
    tl_payload_str(&p, "status", present(c, "status") ? str(c, "status") : "new");
    tl_payload_str(&p, "ambassador", amb);
    if (amb_msg) {
        if (present(c, "ambassador_message_id")) snprintf(msg_id, sizeof msg_id, "%s", str(c, "ambassador_message_id"));
        else generate_id(c, msg_id, "m", 'm');
        if (store_body(c, "ambassador_message", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
        tl_payload_str(&p, "ambassador_message_id", msg_id);
        tl_payload_bin(&p, "body_commit", body.commit, TL_HASH_BYTES);
        tl_payload_uint(&p, "body_size", body.size);
    }
    snprintf(res->id, sizeof res->id, "%s", id);
    return append(c, "project.created", id, &p, amb_msg ? body.salt : NULL, true, res);
}

static int do_status(rctx *c, tl_result *res) {
    tl_project_rec p;
    load_actor(c);
    bool have = load_project(c, str(c, "project"), &p);
    if (have && c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
        bool member = c->user.role == TL_ROLE_MEMBER && strcmp(c->user.account, p.account) == 0;
        if (!member && c->user.role != TL_ROLE_STAFF)
            violate(c, TL_EFORBIDDEN, "%s may not change the status of project %s", c->as, str(c, "project"));
    }
    if (have) check_expect(c, &p);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    if (strcmp(p.status, str(c, "status")) == 0) {
        res->noop = 1;
        return 0;
    }
    tl_payload pl = {0};
    tl_payload_str(&pl, "status", str(c, "status"));
    tl_payload_str(&pl, "previous", p.status);
    return append(c, "project.status_changed", str(c, "project"), &pl, NULL, false, res);
}

/* A new message: topic.create's first message, message.send, note.add, message.reply. */
static int new_message(rctx *c, tl_result *res, const char *kind, const char *project, const char *account,
                       const char *channel, const char *topic, const char *parent) {
    char id[TL_IDBUF];
    if (present(c, "id")) snprintf(id, sizeof id, "%s", str(c, "id"));
    else generate_id(c, id, "m", 'm');
    body_ref body;
    if (store_body(c, "body", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    size_t n;
    const char **att = attachment_list(c, &n);
    tl_payload p = {0};
    tl_payload_str(&p, "id", id);
    if (strcmp(kind, "note.added") != 0) tl_payload_str(&p, "channel", channel);
    tl_payload_str(&p, "topic", topic);
    tl_payload_str(&p, "parent", parent);
    if (!project) tl_payload_str(&p, "account", account);
    tl_payload_bin(&p, "body_commit", body.commit, TL_HASH_BYTES);
    tl_payload_uint(&p, "body_size", body.size);
    if (att) tl_payload_strlist(&p, "attachments", att, n);
    snprintf(res->id, sizeof res->id, "%s", id);
    return append(c, kind, project, &p, body.salt, true, res);
}

static int do_topic(rctx *c, tl_result *res) {
    tl_project_rec p;
    load_actor(c);
    const char *project = str(c, "project");
    bool have = load_project(c, project, &p);
    check_new_id(c, "id", 't');
    check_new_id(c, "message_id", 'm');
    if (have) {
        check_audience(c, &p, NULL, TL_CH_CHAT);
        check_expect(c, &p);
        check_attachments(c, project, NULL);
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    char tid[TL_IDBUF], mid[TL_IDBUF];
    if (present(c, "id")) snprintf(tid, sizeof tid, "%s", str(c, "id"));
    else generate_id(c, tid, "t", 't');
    if (present(c, "message_id")) snprintf(mid, sizeof mid, "%s", str(c, "message_id"));
    else generate_id(c, mid, "m", 'm');
    body_ref body;
    if (store_body(c, "body", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    size_t n;
    const char **att = attachment_list(c, &n);
    tl_payload pl = {0};
    tl_payload_str(&pl, "id", tid);
    tl_payload_str(&pl, "title", str(c, "title"));
    tl_payload_str(&pl, "message_id", mid);
    tl_payload_bin(&pl, "body_commit", body.commit, TL_HASH_BYTES);
    tl_payload_uint(&pl, "body_size", body.size);
    if (att) tl_payload_strlist(&pl, "attachments", att, n);
    snprintf(res->id, sizeof res->id, "%s", tid);
    snprintf(res->message_id, sizeof res->message_id, "%s", mid);
    return append(c, "topic.created", project, &pl, body.salt, true, res);
}

static int do_send(rctx *c, tl_result *res) {
    const char *channel = str(c, "channel"), *project = str(c, "project"), *topic = str(c, "topic");
    const char *account = str(c, "account");
    int ch = tl_channel_parse(channel);
    if (channel && (!ch || ch == TL_CH_NOTES))
        violate(c, TL_EINVALID, ch == TL_CH_NOTES ? "internal notes are written with note.add"
                                                  : "channel must be chat, ambassador or support");
    if (ch == TL_CH_SUPPORT) {
        if (present(c, "project")) violate(c, TL_EINVALID, "unknown field \"project\" for a support message");
        if (present(c, "topic")) violate(c, TL_EINVALID, "a topic on the support conversation");
        if (!present(c, "account")) violate(c, TL_EINVALID, "account is required for a support message");
        if (present(c, "expect")) violate(c, TL_EINVALID, "expect names a project; support messages have none");
    } else if (ch) {
        if (present(c, "account")) violate(c, TL_EINVALID, "unknown field \"account\" for a project message");
        if (!present(c, "project")) violate(c, TL_EINVALID, "project is required for a %s message", channel);
        if (ch == TL_CH_CHAT && !present(c, "topic")) violate(c, TL_EINVALID, "a chat message needs a topic");
        if (ch != TL_CH_CHAT && present(c, "topic")) violate(c, TL_EINVALID, "a topic on the %s channel", channel);
    }
    load_actor(c);
    check_new_id(c, "id", 'm');
    tl_project_rec p;
    bool have = false;
    if (ch == TL_CH_SUPPORT) {
        tl_account_rec a;
        if (account && tl_id_valid(account)) {
            if (tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown account %s", account);
            else check_audience(c, NULL, account, TL_CH_SUPPORT);
        }
        check_attachments(c, NULL, account);
    } else if (ch) {
        have = load_project(c, project, &p);
        /* "a topic of another project" needs a project: with an unknown one, the
         * answer is its not_found (and the topic's, if unknown too) */
        if (have && ch == TL_CH_CHAT && topic && tl_id_valid(topic)) {
            tl_topic_rec t;
            int rc = tl_state_topic(c->txn, c->log, topic, &t);
            if (rc == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown topic %s", topic);
            else if (rc) violate(c, rc, "%s", tl_errdetail());
            else if (strcmp(t.project, project) != 0)
                violate(c, TL_EINVALID, "topic %s belongs to another project (%s)", topic, t.project);
        }
        if (have) {
            check_audience(c, &p, NULL, ch);
            check_expect(c, &p);
            if (ch == TL_CH_AMBASSADOR && !p.ambassador_channel)
                violate(c, TL_ECHANNEL, "project %s has no ambassador channel (its ambassador wrote nothing at creation)", project);
            check_attachments(c, project, NULL);
        }
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "message.sent", ch == TL_CH_SUPPORT ? NULL : project, account, channel,
                       ch == TL_CH_CHAT ? topic : NULL, NULL);
}

static int do_note(rctx *c, tl_result *res) {
    tl_project_rec p;
    load_actor(c);
    const char *project = str(c, "project");
    bool have = load_project(c, project, &p);
    check_new_id(c, "id", 'm');
    if (have) {
        check_audience(c, &p, NULL, TL_CH_NOTES);
        check_expect(c, &p);
        check_attachments(c, project, NULL);
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "note.added", project, NULL, "notes", NULL, NULL);
}

/* Loads the message named by "message" and its project; checks audience/expect/deleted. */
static bool on_message(rctx *c, tl_message_rec *m, tl_project_rec *p, bool *has_project) {
    load_actor(c);
    *has_project = false;
    if (!load_message(c, str(c, "message"), m)) return false;
    if (m->project[0]) {
        if (tl_state_project(c->txn, c->log, m->project, p) != 0) {
            violate(c, TL_ECORRUPT, "message %s names a missing project", str(c, "message"));
            return false;
        }
        *has_project = true;
    } else if (present(c, "expect")) {
        violate(c, TL_EINVALID, "expect names a project; support messages have none");
    }
    check_audience(c, *has_project ? p : NULL, m->account, m->channel);
    if (*has_project) check_expect(c, p);
    if (m->deleted) violate(c, TL_EDELETED, "message %s is deleted", str(c, "message"));
    return true;
}

static int do_reply(rctx *c, tl_result *res) {
    tl_message_rec m;
    tl_project_rec p;
    bool hp;
    bool have = on_message(c, &m, &p, &hp);
    check_new_id(c, "id", 'm');
    if (have) check_attachments(c, hp ? m.project : NULL, m.account);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "message.replied", hp ? m.project : NULL, m.account, tl_channel_name(m.channel),
                       m.topic[0] ? m.topic : NULL, str(c, "message"));
}

static int do_message_flag(rctx *c, tl_result *res) {
    tl_message_rec m;
    tl_project_rec p;
    bool hp;
    const char *op = c->op, *id = str(c, "message");
    bool have = on_message(c, &m, &p, &hp);
    const char *kind = NULL;
    bool noop = false;
    if (!strcmp(op, "message.delete")) {
        kind = "message.deleted";
        if (have && c->user_ok && c->user.role != TL_ROLE_AUDITOR && strcmp(m.author, c->as) != 0)
            violate(c, TL_EFORBIDDEN, "only its author (%s) may delete message %s", m.author, id);
        char reply[TL_IDBUF];
        if (have && !m.deleted && tl_state_live_reply(c->txn, c->log, id, reply) == 0)
            violate(c, TL_EHASREPLIES, "%s has a reply (%s) and cannot be deleted", id, reply);
    } else if (!strcmp(op, "message.pin")) {
        kind = "message.pinned";
        if (have && m.pinned) violate(c, TL_EPINNED, "message %s is already pinned", id);
    } else if (!strcmp(op, "message.unpin")) {
        kind = "message.unpinned";
        if (have && !m.pinned) violate(c, TL_ENOTPINNED, "message %s is not pinned", id);
    } else if (!strcmp(op, "message.read")) {
        kind = "message.read";
        noop = have && c->as && (strcmp(m.author, c->as) == 0 || tl_state_has_read(c->txn, c->log, c->as, id));
    } else {
        kind = "message.unread";
        noop = have && c->as && (strcmp(m.author, c->as) == 0 || !tl_state_has_read(c->txn, c->log, c->as, id));
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    if (noop) {
        res->noop = 1;
        return 0;
    }
    tl_payload pl = {0};
    tl_payload_str(&pl, "message", id);
    if (!hp) tl_payload_str(&pl, "account", m.account);
    return append(c, kind, hp ? m.project : NULL, &pl, NULL, false, res);
}

static int do_upload(rctx *c, tl_result *res) {
    const char *project = str(c, "project"), *account = str(c, "account"), *data = str(c, "data");
    if (present(c, "project") == present(c, "account"))
        violate(c, TL_EINVALID, "an upload names exactly one of project or account (support)");
    if (present(c, "account") && present(c, "expect"))
        violate(c, TL_EINVALID, "expect names a project; support uploads have none");
    if (data) {
        size_t n = strlen(data), cap = n / 4 * 3 + 3;
        const char *end = NULL;
        c->data = malloc(cap ? cap : 1);
        if (!c->data) return tl_result_fail(res, TL_ENOMEM, "out of memory");
        if (n % 4 != 0 || sodium_base642bin(c->data, cap, data, n, NULL, &c->data_len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != data + n)
            violate(c, TL_EINVALID, "data is not standard base64 with padding");
        else if (c->data_len > c->log->max_attachment)
            violate(c, TL_ETOOLARGE, "attachment of %zu bytes is over the log's limit of %llu", c->data_len,
                    (unsigned long long)c->log->max_attachment);
    }
    load_actor(c);
    check_new_id(c, "id", 'f');
    tl_project_rec p;
    if (project && !account) {
        if (load_project(c, project, &p) && c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
            bool may = false;
            for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR; ch++)
                if (tl_state_in_audience(c->as, &c->user, &p, p.account, ch) && (ch != TL_CH_AMBASSADOR || p.ambassador_channel))
                    may = true;
            if (!may) violate(c, TL_EFORBIDDEN, "%s may not write in project %s, so may not upload to it", c->as, project);
            check_expect(c, &p);
        }
    } else if (account && !project && tl_id_valid(account)) {
        tl_account_rec a;
        if (tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND) violate(c, TL_ENOTFOUND, "unknown account %s", account);
        else check_audience(c, NULL, account, TL_CH_SUPPORT);
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    char id[TL_IDBUF];
    if (present(c, "id")) snprintf(id, sizeof id, "%s", str(c, "id"));
    else generate_id(c, id, "a", 'f');
    uint8_t commit[TL_HASH_BYTES], salt[TL_SALT_BYTES];
    if (tl_content_put(c->w, c->data, c->data_len, commit, salt)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    tl_payload pl = {0};
    tl_payload_str(&pl, "id", id);
    tl_payload_str(&pl, "name", str(c, "name"));
    tl_payload_str(&pl, "mime", present(c, "mime") ? str(c, "mime") : "application/octet-stream");
    tl_payload_bin(&pl, "data_commit", commit, TL_HASH_BYTES);
    tl_payload_uint(&pl, "data_size", c->data_len);
    if (!project) tl_payload_str(&pl, "account", account);
    snprintf(res->id, sizeof res->id, "%s", id);
    return append(c, "attachment.uploaded", project, &pl, salt, true, res);
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
    json_t *op = json_object_get(cmd->obj, "op");
    if (!json_is_string(op)) return tl_result_fail(res, TL_EINVALID, "a command needs an \"op\" string");
    c.op = json_string_value(op);
    const opspec *spec = find_op(c.op);
    if (!spec) return tl_result_fail(res, TL_EINVALID, "unknown op \"%.64s\"", c.op);
    if (try_duplicate(&c, res)) return 0;
    check_shape(&c, spec);
    int rc;
    if (!strcmp(c.op, "account.create")) rc = do_account(&c, res);
    else if (!strcmp(c.op, "user.create")) rc = do_user(&c, res);
    else if (!strcmp(c.op, "project.create")) rc = do_project(&c, res);
    else if (!strcmp(c.op, "project.status")) rc = do_status(&c, res);
    else if (!strcmp(c.op, "topic.create")) rc = do_topic(&c, res);
    else if (!strcmp(c.op, "message.send")) rc = do_send(&c, res);
    else if (!strcmp(c.op, "note.add")) rc = do_note(&c, res);
    else if (!strcmp(c.op, "message.reply")) rc = do_reply(&c, res);
    else if (!strcmp(c.op, "attachment.upload")) rc = do_upload(&c, res);
    else rc = do_message_flag(&c, res);
    free(c.data);
    return rc;
}
