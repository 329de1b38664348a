/*
 * state.c — the domain state: what the rules need to decide, kept in the named database
 * "state" and rebuilt from the log by replay like any projection. This file stores and reads
 * the records (and a write transaction's cache of them) and answers audience questions; the
 * applier that turns each event into record changes is state_apply.c.
 *
 * Keys are a one-letter kind, '/', and the id (ids never contain '/'):
 *   a/ACCOUNT  u/USER  p/PROJECT  t/TOPIC  m/MESSAGE  f/ATTACHMENT    records (state.h)
 *   m/MESSAGE/USER      USER has read MESSAGE (kept only while it is read): beside the
 *                       message's record, so that a page showing the message and whether
 *                       its viewer read it finds both on one leaf page
 *   R/MESSAGE/REPLY     REPLY is a direct reply of MESSAGE that is not deleted
 *   M/ACCOUNT/USER      USER is a member of ACCOUNT
 *   S/USER, X/USER      USER is staff / an auditor
 * The indexes give a channel's audience without scanning users.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "state_store.h"
#include "zeropack.h"

/* The state database's handle, found in the applier list (registered first). */
static MDB_dbi state_dbi(tl_log *log) {
    for (unsigned i = 0; i < log->napplier; i++)
        if (strcmp(log->appliers[i].name, "state") == 0) return log->appliers[i].dbs[0];
    return 0;
}

static const char *const roles[] = {NULL, "member", "staff", "ambassador", "auditor"};
static const char *const types[] = {NULL, "application", "order", "video"};
static const char *const channels[] = {NULL, "notes", "chat", "ambassador", "support"};

static int parse_name(const char *const *names, int n, const char *s) {
    if (!s) return 0;
    for (int i = 1; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return 0;
}
const char *tl_role_name(int r) { return r >= 1 && r <= 4 ? roles[r] : NULL; }
int tl_role_parse(const char *s) { return parse_name(roles, 5, s); }
const char *tl_ptype_name(int t) { return t >= 1 && t <= 3 ? types[t] : NULL; }
int tl_ptype_parse(const char *s) { return parse_name(types, 4, s); }
const char *tl_channel_name(int c) { return c >= 1 && c <= 4 ? channels[c] : NULL; }
int tl_channel_parse(const char *s) { return parse_name(channels, 5, s); }

/* ---------------------------------------------------------------- keys and records */

/* snprintf(dst, cap, "%s", src) without printf: several fields of every record written. */
static void copy_cstr(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* "kind/a" or "kind/a/b"; 0 when it does not fit. Without printf: a key is built for every
 * record read, several per event. */
static size_t make_key(char *buf, size_t cap, char kind, const char *a, const char *b) {
    size_t na = strlen(a), nb = b ? strlen(b) : 0, n = 2 + na + (b ? 1 + nb : 0);
    if (n >= cap) return 0;
    buf[0] = kind;
    buf[1] = '/';
    memcpy(buf + 2, a, na);
    if (b) {
        buf[2 + na] = '/';
        memcpy(buf + 3 + na, b, nb);
    }
    buf[n] = 0;
    return n;
}

static int get_rec(MDB_txn *txn, tl_log *log, char kind, const char *id, void *out, size_t size) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, kind, id, NULL);
    if (!klen || !*id) return TL_ENOTFOUND;
    MDB_val v;
    int rc = tl_get(txn, state_dbi(log), key, klen, &v);
    if (rc) return rc;
    if (tl_zerounpack(out, size, v.mv_data, v.mv_size)) return tl_fail(TL_ECORRUPT, "state record %s is damaged", key);
    return 0;
}

/* ---------------------------------------------------------------- a write transaction's record cache */

#define REC_CACHE_WAYS 4 /* a reply touches its parent too; a few more for neighbouring events */
#define USER_CACHE_SLOTS 64 /* direct-mapped: users are few, read by every read mark's appliers */

struct tl_rec_cache {
    char pid[REC_CACHE_WAYS][TL_IDBUF], mid[REC_CACHE_WAYS][TL_IDBUF]; /* "" = empty way */
    tl_project_rec p[REC_CACHE_WAYS];
    bool pdirty[REC_CACHE_WAYS]; /* a project record written here and not yet to LMDB */
    tl_message_rec m[REC_CACHE_WAYS];
    unsigned pnext, mnext; /* the way replaced next (round robin) */
    char uid[USER_CACHE_SLOTS][TL_IDBUF];
    tl_user_rec u[USER_CACHE_SLOTS];
};

void tl_rec_cache_free(struct tl_rec_cache *c) { free(c); }

void tl_rec_cache_clear(tl_wtxn *w) {
    if (w->recs) memset(w->recs, 0, sizeof *w->recs);
}

static unsigned user_slot(const char *id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++) h = (h ^ (uint8_t)*id) * 16777619u;
    return h % USER_CACHE_SLOTS;
}

/* The way of (kind, id) in w's cache, or -1; ids/recs/next of that kind through the pointers. */
static int cache_find(struct tl_rec_cache *c, char kind, const char *id, char (**ids)[TL_IDBUF], unsigned **next) {
    if (kind == 'u') {
        unsigned slot = user_slot(id);
        *ids = c->uid;
        *next = NULL;
        return c->uid[slot][0] && strcmp(c->uid[slot], id) == 0 ? (int)slot : -1;
    }
    *ids = kind == 'p' ? c->pid : c->mid;
    *next = kind == 'p' ? &c->pnext : &c->mnext;
    for (int i = 0; i < REC_CACHE_WAYS; i++)
        if ((*ids)[i][0] && strcmp((*ids)[i], id) == 0) return i;
    return -1;
}

static void *cache_rec(struct tl_rec_cache *c, char kind, int way) {
    return kind == 'p' ? (void *)&c->p[way] : kind == 'm' ? (void *)&c->m[way] : (void *)&c->u[way];
}

/* Records are stored zero-packed (zeropack.c): their id fields are mostly empty. */
static int write_rec(tl_wtxn *w, char kind, const char *id, const void *rec, size_t size) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, kind, id, NULL);
    uint8_t packed[TL_ZEROPACK_BOUND(sizeof(tl_attachment_rec) + sizeof(tl_message_rec))];
    if (size > sizeof(tl_attachment_rec) + sizeof(tl_message_rec)) return w->failed = tl_fail(TL_EUSAGE, "state record too large");
    return tl_put(w, state_dbi(w->log), key, klen, packed, tl_zeropack(packed, rec, size), 0);
}

/* Write project way i to LMDB if it holds a newer record than LMDB does. */
static int write_back(tl_wtxn *w, int i) {
    struct tl_rec_cache *c = w->recs;
    if (!c->pdirty[i]) return 0;
    c->pdirty[i] = false;
    return write_rec(w, 'p', c->pid[i], &c->p[i], sizeof c->p[i]);
}

/* Every project record still only in the cache, into LMDB: at commit (the state applier's
 * flush hook). */
static int state_flush(tl_wtxn *w, void *state) {
    (void)state;
    int rc = 0;
    for (int i = 0; w->recs && i < REC_CACHE_WAYS && !rc; i++) rc = write_back(w, i);
    return rc;
}

/* Remember rec as (kind, id)'s current record. Only projects, messages and users are
 * cached. dirty: a project record written by the state applier, kept here until its way is
 * reused or the transaction commits (a project's record changes with every event of it;
 * every reader inside a write transaction reads through this cache). Returns a failure to
 * write back the record it replaced, or TL_ENOMEM when a dirty record cannot be cached (the
 * caller then writes it itself). */
static int cache_store(tl_wtxn *w, char kind, const char *id, const void *rec, size_t size, bool dirty) {
    if ((kind != 'p' && kind != 'm' && kind != 'u') || strlen(id) >= TL_IDBUF) return dirty ? TL_ENOMEM : 0;
    if (!w->recs && !(w->recs = calloc(1, sizeof *w->recs))) return dirty ? TL_ENOMEM : 0;
    char(*ids)[TL_IDBUF];
    unsigned *next;
    int way = cache_find(w->recs, kind, id, &ids, &next);
    if (way < 0) {
        way = kind == 'u' ? (int)user_slot(id) : (int)(*next % REC_CACHE_WAYS);
        if (kind == 'p') {
            int rc = write_back(w, way);
            if (rc) return rc;
        }
        if (next) *next += 1;
        strcpy(ids[way], id);
    }
    memcpy(cache_rec(w->recs, kind, way), rec, size);
    if (kind == 'p') w->recs->pdirty[way] = dirty || w->recs->pdirty[way];
    return 0;
}

static int wget_rec(tl_wtxn *w, char kind, const char *id, void *out, size_t size) {
    if (w->recs) {
        char(*ids)[TL_IDBUF];
        unsigned *next;
        int way = cache_find(w->recs, kind, id, &ids, &next);
        if (way >= 0) {
            memcpy(out, cache_rec(w->recs, kind, way), size);
            return 0;
        }
    }
    int rc = get_rec(w->txn, w->log, kind, id, out, size);
    if (!rc) rc = cache_store(w, kind, id, out, size, false);
    return rc;
}

int tl_wstate_project(tl_wtxn *w, const char *id, tl_project_rec *o) { return wget_rec(w, 'p', id, o, sizeof *o); }
int tl_wstate_message(tl_wtxn *w, const char *id, tl_message_rec *o) { return wget_rec(w, 'm', id, o, sizeof *o); }
int tl_wstate_user(tl_wtxn *w, const char *id, tl_user_rec *o) { return wget_rec(w, 'u', id, o, sizeof *o); }

/* A record write. Project records are written back (cache_store); the others through. */
static int put_rec(tl_wtxn *w, MDB_dbi db, char kind, const char *id, const void *rec, size_t size) {
    (void)db;
    if (kind == 'p') {
        int rc = cache_store(w, kind, id, rec, size, true);
        return rc == TL_ENOMEM ? write_rec(w, kind, id, rec, size) : rc;
    }
    int rc = write_rec(w, kind, id, rec, size);
    if (!rc) rc = cache_store(w, kind, id, rec, size, false);
    return rc;
}

static int put_mark(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, kind, a, b);
    return tl_put(w, db, key, klen, "", 0, 0);
}

static int del_mark(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, kind, a, b);
    return tl_del(w, db, key, klen);
}

int tl_state_account(MDB_txn *t, tl_log *l, const char *id, tl_account_rec *o) { return get_rec(t, l, 'a', id, o, sizeof *o); }
int tl_state_user(MDB_txn *t, tl_log *l, const char *id, tl_user_rec *o) { return get_rec(t, l, 'u', id, o, sizeof *o); }
int tl_state_project(MDB_txn *t, tl_log *l, const char *id, tl_project_rec *o) { return get_rec(t, l, 'p', id, o, sizeof *o); }
int tl_state_topic(MDB_txn *t, tl_log *l, const char *id, tl_topic_rec *o) { return get_rec(t, l, 't', id, o, sizeof *o); }
int tl_state_message(MDB_txn *t, tl_log *l, const char *id, tl_message_rec *o) { return get_rec(t, l, 'm', id, o, sizeof *o); }
int tl_state_attachment(MDB_txn *t, tl_log *l, const char *id, tl_attachment_rec *o) { return get_rec(t, l, 'f', id, o, sizeof *o); }

bool tl_state_has_read(MDB_txn *txn, tl_log *log, const char *user, const char *message) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, READ_MARK, message, user);
    MDB_val v;
    return klen && tl_get(txn, state_dbi(log), key, klen, &v) == 0;
}

int tl_state_cursor(MDB_txn *txn, tl_log *log, MDB_cursor **cur) {
    int rc = mdb_cursor_open(txn, state_dbi(log), cur);
    return rc ? tl_fail_mdb(rc, "state cursor") : 0;
}

/*
 * The message page's pair of lookups through one cursor. A read mark's key ('m/MESSAGE/USER')
 * sorts right after its message's record ('m/MESSAGE': '/' sorts before every character an
 * id may hold), so once the cursor stands on the record, LMDB finds the mark on the same
 * page without a descent from the root (mdb_cursor_set checks the current page first):
 * each lookup was ~2,700 instructions of a ~12,000-instruction message (callgrind).
 */
int tl_state_message_at(MDB_cursor *cur, const char *id, tl_message_rec *out) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, 'm', id, NULL);
    if (!klen || !*id) return TL_ENOTFOUND;
    MDB_val k = {klen, key}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return TL_ENOTFOUND;
    if (rc) return tl_fail_mdb(rc, "read");
    if (tl_zerounpack((void *)out, sizeof *out, v.mv_data, v.mv_size))
        return tl_fail(TL_ECORRUPT, "state record %s is damaged", key);
    return 0;
}

bool tl_state_has_read_at(MDB_cursor *cur, const char *user, const char *message) {
    char key[2 * TL_IDBUF + 8];
    size_t klen = make_key(key, sizeof key, READ_MARK, message, user);
    MDB_val k = {klen, key}, v;
    return klen && mdb_cursor_get(cur, &k, &v, MDB_SET) == 0;
}

static int first_id(const char *id, void *ctx) {
    copy_cstr(ctx, TL_IDBUF, id);
    return 1;
}

/* ---------------------------------------------------------------- audiences */

bool tl_state_sees_project(const char *user, const tl_user_rec *u, const tl_project_rec *p) {
    switch (u->role) {
    case TL_ROLE_MEMBER: return strcmp(u->account, p->account) == 0;
    case TL_ROLE_STAFF:
    case TL_ROLE_AUDITOR: return true;
    case TL_ROLE_AMBASSADOR: return strcmp(p->ambassador, user) == 0;
    default: return false;
    }
}

bool tl_state_in_audience(const char *user, const tl_user_rec *u, const tl_project_rec *p, const char *account, int ch) {
    if (u->role == TL_ROLE_AUDITOR) return true; /* sees everything (acting is refused elsewhere) */
    if (ch == TL_CH_SUPPORT)
        return !p && ((u->role == TL_ROLE_MEMBER && strcmp(u->account, account) == 0) || u->role == TL_ROLE_STAFF);
    if (!p) return false;
    bool member = u->role == TL_ROLE_MEMBER && strcmp(u->account, p->account) == 0;
    switch (ch) {
    case TL_CH_NOTES: return member;
    case TL_CH_CHAT: return member || u->role == TL_ROLE_STAFF;
    case TL_CH_AMBASSADOR:
        return member || (u->role == TL_ROLE_AMBASSADOR && strcmp(p->ambassador, user) == 0);
    default: return false;
    }
}

/* Which visibility classes (0 = project level, then channels) user sees in p. */
static void visible_classes(const char *user, const tl_user_rec *u, const tl_project_rec *p, bool vis[4]) {
    vis[0] = tl_state_sees_project(user, u, p);
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR; ch++)
        vis[ch] = vis[0] && tl_state_in_audience(user, u, p, p->account, ch);
}

uint64_t tl_state_version(const char *user, const tl_user_rec *u, const tl_project_rec *p) {
    bool vis[4];
    visible_classes(user, u, p, vis);
    uint64_t v = 0;
    for (int i = 0; i < 4; i++)
        if (vis[i] && p->last_seq[i] > v) v = p->last_seq[i];
    return v;
}

uint64_t tl_state_last_activity(const char *user, const tl_user_rec *u, const tl_project_rec *p) {
    bool vis[4];
    visible_classes(user, u, p, vis);
    uint64_t v = 0;
    for (int i = 0; i < 4; i++)
        if (vis[i] && p->last_ts[i] > v) v = p->last_ts[i];
    return v;
}

/*
 * Call fn for every key with the given prefix, passing what follows the prefix. The walk is
 * bounded (tl_walk): on a damaged page that leads back to keys already seen, a rule or an
 * applier gets `corrupt` instead of an endless audience.
 */
static int each_with_prefix(MDB_txn *txn, MDB_dbi db, const char *prefix, tl_user_fn fn, void *ctx) {
    tl_walk walk;
    int out = tl_walk_init(&walk, txn, db, "state");
    if (out) return out;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc) return tl_fail_mdb(rc, "state cursor");
    size_t plen = strlen(prefix);
    MDB_val k = {plen, (void *)prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
        if ((out = tl_walk_step(&walk, &k)) != 0) break;
        char id[TL_IDBUF];
        size_t n = k.mv_size - plen;
        if (n >= sizeof id) { out = tl_fail(TL_ECORRUPT, "state index key too long"); break; }
        memcpy(id, (const char *)k.mv_data + plen, n);
        id[n] = 0;
        if ((out = fn(id, ctx)) != 0) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND && !out) out = tl_fail_mdb(rc, "state index");
    mdb_cursor_close(cur);
    return out;
}

int tl_state_live_reply(MDB_txn *txn, tl_log *log, const char *message, char reply[TL_IDBUF]) {
    char prefix[TL_IDBUF + 4];
    snprintf(prefix, sizeof prefix, "R/%s/", message);
    reply[0] = 0;
    int rc = each_with_prefix(txn, state_dbi(log), prefix, first_id, reply);
    if (rc < 0) return rc;
    return reply[0] ? 0 : TL_ENOTFOUND;
}

int tl_state_audience_each(MDB_txn *txn, tl_log *log, const tl_project_rec *p, const char *account, int ch,
                           tl_user_fn fn, void *ctx) {
    MDB_dbi db = state_dbi(log);
    char prefix[TL_IDBUF + 4];
    const char *acct = p ? p->account : account;
    int rc = 0;
    if (ch != TL_CH_SUPPORT && !p) return 0;
    /* members are in every channel's audience */
    snprintf(prefix, sizeof prefix, "M/%s/", acct);
    if ((rc = each_with_prefix(txn, db, prefix, fn, ctx)) != 0) return rc;
    if (ch == TL_CH_CHAT || ch == TL_CH_SUPPORT) rc = each_with_prefix(txn, db, "S/", fn, ctx);
    else if (ch == TL_CH_AMBASSADOR && p->ambassador[0]) rc = fn(p->ambassador, ctx);
    return rc;
}

int tl_state_viewers_each(MDB_txn *txn, tl_log *log, const tl_project_rec *p, tl_user_fn fn, void *ctx) {
    MDB_dbi db = state_dbi(log);
    char prefix[TL_IDBUF + 4];
    snprintf(prefix, sizeof prefix, "M/%s/", p->account);
    int rc = each_with_prefix(txn, db, prefix, fn, ctx);
    if (!rc && p->ambassador[0]) rc = fn(p->ambassador, ctx);
    if (!rc) rc = each_with_prefix(txn, db, "S/", fn, ctx);
    if (!rc) rc = each_with_prefix(txn, db, "X/", fn, ctx);
    return rc;
}

/* ---------------------------------------------------------------- for the applier (state_store.h) */

int tl_srec_get(MDB_txn *txn, tl_log *log, char kind, const char *id, void *out, size_t size) {
    return get_rec(txn, log, kind, id, out, size);
}
int tl_srec_wget(tl_wtxn *w, char kind, const char *id, void *out, size_t size) { return wget_rec(w, kind, id, out, size); }
int tl_srec_put(tl_wtxn *w, MDB_dbi db, char kind, const char *id, const void *rec, size_t size) {
    return put_rec(w, db, kind, id, rec, size);
}
int tl_smark_put(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b) { return put_mark(w, db, kind, a, b); }
int tl_smark_del(tl_wtxn *w, MDB_dbi db, char kind, const char *a, const char *b) { return del_mark(w, db, kind, a, b); }
int tl_state_cache_flush(tl_wtxn *w, void *state) { return state_flush(w, state); }
void tl_copy_cstr(char *dst, size_t cap, const char *src) { copy_cstr(dst, cap, src); }
