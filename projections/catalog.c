/*
 * catalog.c — the "catalog" projection: the few lists the other projections fan out over
 * and the display text the domain state does not keep.
 *
 *   A account\0                        every account (support counters of new staff)
 *   gM account\0 user\0, gS user\0, gX user\0
 *                                      members of an account, staff, auditors: the groups
 *                                      that channel audiences and project viewers are made of
 *   p project\0 -> title               project titles (tracking rows)
 *   a account\0 project\0              the projects of an account (a new member's rows)
 *   t topic\0 -> ts(8) title           topic titles and creation times
 *   T project\0 seq(8) topic\0         a project's topics in creation order
 *
 * Everything here is set once by a creating event and never changes, so replay and live
 * application trivially agree.
 *
 * The groups are read for nearly every event (every message's audience, every history
 * entry's viewers), several times (unread, tracking, dashboard): a write transaction keeps
 * the groups it read (group_cache, the applier's state). Only apply_user changes a group, and
 * it forgets them; so do commit, abort and a replay's clearing of the databases. Queries,
 * in their own read transactions, never use it.
 */
#include "proj.h"

static const char catalog_name[] = "catalog";

static MDB_dbi cat_db(tl_log *log) { return tlp_dbi(log, catalog_name, 0); }

/* ---------------------------------------------------------------- the groups a write transaction read */

#define GROUP_CACHE_WAYS 16 /* an event needs at most three (its account's members, staff, auditors) */

typedef struct group_cache {
    struct group_way {
        bool used, whole;
        char which;
        char account[TL_IDBUF];
        tlp_users users;
    } way[GROUP_CACHE_WAYS];
    unsigned next; /* the way replaced next (round robin) */
} group_cache;

static void group_cache_forget(void *state) {
    group_cache *c = state;
    for (int i = 0; i < GROUP_CACHE_WAYS; i++) {
        c->way[i].used = false;
        c->way[i].users.n = 0; /* the array is kept for the next transaction */
    }
}

static int group_cache_flush(tl_wtxn *w, void *state) {
    (void)w;
    group_cache_forget(state);
    return 0;
}

static void group_cache_release(void *state) {
    group_cache *c = state;
    if (!c) return;
    for (int i = 0; i < GROUP_CACHE_WAYS; i++) tlp_users_free(&c->way[i].users);
    free(c);
}

typedef struct group_ctx {
    tlp_users *out;
    int role;
} group_ctx;

static int group_add(const char *id, void *ctx) {
    group_ctx *g = ctx;
    return tlp_users_add(g->out, id, g->role);
}

static group_cache *cache_of(tl_log *log) {
    for (unsigned i = 0; i < log->napplier; i++)
        if (log->appliers[i].name == catalog_name) return log->appliers[i].state;
    return NULL;
}

int tlp_catalog_group(tl_wtxn *w, char which, const char *account, const tlp_users **out) {
    group_cache *c = cache_of(w->log);
    if (!c) return tl_fail(TL_ECORRUPT, "the catalog projection is not registered");
    bool whole = !account; /* no account: the group's whole range (every account's members) */
    if (whole) account = "";
    for (int i = 0; i < GROUP_CACHE_WAYS; i++) {
        struct group_way *g = &c->way[i];
        if (g->used && g->which == which && g->whole == whole && strcmp(g->account, account) == 0) {
            *out = &g->users;
            return 0;
        }
    }
    size_t alen = strlen(account);
    if (alen >= TL_IDBUF) return tl_fail(TL_ECORRUPT, "account id too long");
    struct group_way *g = &c->way[c->next++ % GROUP_CACHE_WAYS];
    g->used = false;
    g->users.n = 0;
    tlp_key k;
    tlp_key_init(&k, 'g');
    tlp_key_u8(&k, (unsigned char)which);
    if (!whole) tlp_key_str(&k, account);
    group_ctx ctx = {&g->users, which == 'M' ? TL_ROLE_MEMBER : which == 'S' ? TL_ROLE_STAFF : TL_ROLE_AUDITOR};
    int rc = tlp_each_id(w->txn, cat_db(w->log), &k, group_add, &ctx);
    if (rc) return rc;
    g->which = which;
    g->whole = whole;
    memcpy(g->account, account, alen + 1);
    g->used = true;
    *out = &g->users;
    return 0;
}

/* ---------------------------------------------------------------- applying events */

static int put_empty(tl_wtxn *w, const tlp_key *k) { return tl_put(w, cat_db(w->log), k->b, k->n, "", 0, 0); }

static int apply_user(tl_wtxn *w, const tl_event *ev, group_cache *c) {
    group_cache_forget(c); /* a group grows */
    char id[TL_IDBUF], role[16], account[TL_IDBUF];
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tlp_ev_cstr(ev, "role", role, sizeof role);
    tlp_ev_cstr(ev, "account", account, sizeof account);
    if (!id[0]) return tl_fail(TL_ECORRUPT, "event %llu: user without id", (unsigned long long)ev->seq);
    tlp_key k;
    tlp_key_init(&k, 'g');
    switch (tl_role_parse(role)) {
    case TL_ROLE_MEMBER:
        tlp_key_u8(&k, 'M');
        tlp_key_str(&k, account);
        break;
    case TL_ROLE_STAFF: tlp_key_u8(&k, 'S'); break;
    case TL_ROLE_AUDITOR: tlp_key_u8(&k, 'X'); break;
    default: return 0; /* ambassadors are found through their projects */
    }
    tlp_key_str(&k, id);
    return put_empty(w, &k);
}

static int apply_project(tl_wtxn *w, const tl_event *ev) {
    char account[TL_IDBUF];
    tl_bytes title = {(const uint8_t *)"", 0};
    tlp_ev_cstr(ev, "account", account, sizeof account);
    tl_ev_str(ev, "title", &title);
    if (!ev->has_project) return tl_fail(TL_ECORRUPT, "event %llu: project without id", (unsigned long long)ev->seq);
    tlp_key k;
    tlp_key_init(&k, 'p');
    tlp_key_str(&k, ev->project);
    int rc = tl_put(w, cat_db(w->log), k.b, k.n, title.ptr, title.len, 0);
    if (rc) return rc;
    tlp_key_init(&k, 'a');
    tlp_key_str(&k, account);
    tlp_key_str(&k, ev->project);
    return put_empty(w, &k);
}

static int apply_topic(tl_wtxn *w, const tl_event *ev) {
    char id[TL_IDBUF];
    tl_bytes title = {(const uint8_t *)"", 0};
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tl_ev_str(ev, "title", &title);
    if (!id[0] || !ev->has_project || title.len > TL_TEXT_MAX)
        return tl_fail(TL_ECORRUPT, "event %llu: malformed topic", (unsigned long long)ev->seq);
    uint8_t val[8 + TL_TEXT_MAX];
    tl_seq_key(val, ev->ts);
    memcpy(val + 8, title.ptr, title.len);
    tlp_key k;
    tlp_key_init(&k, 't');
    tlp_key_str(&k, id);
    int rc = tl_put(w, cat_db(w->log), k.b, k.n, val, 8 + title.len, 0);
    if (rc) return rc;
    tlp_key_init(&k, 'T');
    tlp_key_str(&k, ev->project);
    tlp_key_u64(&k, ev->seq);
    tlp_key_str(&k, id);
    return put_empty(w, &k);
}

static int catalog_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    if (ev->kid == TL_K_ACCOUNT_CREATED) {
        char id[TL_IDBUF];
        tlp_ev_cstr(ev, "id", id, sizeof id);
        tlp_key key;
        tlp_key_init(&key, 'A');
        tlp_key_str(&key, id);
        return put_empty(w, &key);
    }
    if (ev->kid == TL_K_USER_CREATED) return apply_user(w, ev, state);
    if (ev->kid == TL_K_PROJECT_CREATED) return apply_project(w, ev);
    if (ev->kid == TL_K_TOPIC_CREATED) return apply_topic(w, ev);
    return 0;
}

int tlp_catalog_register(tl_log *log) {
    group_cache *c = calloc(1, sizeof *c);
    if (!c) return tl_fail(TL_ENOMEM, "out of memory");
    tl_applier a;
    memset(&a, 0, sizeof a);
    a.name = catalog_name;
    a.apply = catalog_apply;
    int rc = tl_db_open(log, catalog_name, 0, &a.dbs[0]);
    if (rc) {
        free(c);
        return rc;
    }
    a.db_names[0] = catalog_name;
    a.ndbs = 1;
    a.in_digest = true;
    a.state = c;
    a.flush = group_cache_flush;
    a.discard = group_cache_forget;
    a.release = group_cache_release;
    if ((rc = tl_log_register(log, &a)) != 0) free(c);
    return rc;
}

/* ---------------------------------------------------------------- lookups */

int tlp_each_project(MDB_txn *txn, tl_log *log, const char *account, tlp_id_fn fn, void *ctx) {
    tlp_key k;
    tlp_key_init(&k, account ? 'a' : 'p');
    if (account) tlp_key_str(&k, account);
    return tlp_each_id(txn, cat_db(log), &k, fn, ctx);
}

int tlp_each_account(MDB_txn *txn, tl_log *log, tlp_id_fn fn, void *ctx) {
    tlp_key k;
    tlp_key_init(&k, 'A');
    return tlp_each_id(txn, cat_db(log), &k, fn, ctx);
}

int tlp_each_topic(MDB_txn *txn, tl_log *log, const char *project, tlp_id_fn fn, void *ctx) {
    tlp_key prefix;
    tlp_key_init(&prefix, 'T');
    tlp_key_str(&prefix, project);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, cat_db(log), &cur);
    if (rc) return tl_fail_mdb(rc, "catalog cursor");
    MDB_val k = {prefix.n, prefix.b}, v;
    uint8_t prev[TLP_KEY_MAX * 2];
    MDB_val pk = {0, prev};
    int out = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > prefix.n + 8 && memcmp(k.mv_data, prefix.b, prefix.n) == 0) {
        if ((pk.mv_size && mdb_cmp(txn, cat_db(log), &k, &pk) <= 0) || k.mv_size > sizeof prev) {
            out = tl_fail(TL_ECORRUPT, "the catalog database is damaged (its keys do not increase)");
            break;
        }
        memcpy(prev, k.mv_data, k.mv_size);
        pk.mv_size = k.mv_size;
        const char *id = (const char *)k.mv_data + prefix.n + 8;
        size_t n = k.mv_size - prefix.n - 8;
        char buf[TL_IDBUF];
        if (n < 2 || n > sizeof buf || id[n - 1]) { out = tl_fail(TL_ECORRUPT, "catalog topic key is damaged"); break; }
        memcpy(buf, id, n);
        if ((out = fn(buf, ctx)) != 0) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND && !out) out = tl_fail_mdb(rc, "catalog topics");
    mdb_cursor_close(cur);
    return out;
}

int tlp_project_title(MDB_txn *txn, tl_log *log, const char *project, tl_bytes *title) {
    tlp_key k;
    tlp_key_init(&k, 'p');
    tlp_key_str(&k, project);
    MDB_val v;
    int rc = tl_get(txn, cat_db(log), k.b, k.n, &v);
    if (rc) return rc;
    title->ptr = v.mv_data;
    title->len = v.mv_size;
    return 0;
}

int tlp_topic_info(MDB_txn *txn, tl_log *log, const char *topic, tl_bytes *title, uint64_t *ts) {
    tlp_key k;
    tlp_key_init(&k, 't');
    tlp_key_str(&k, topic);
    MDB_val v;
    int rc = tl_get(txn, cat_db(log), k.b, k.n, &v);
    if (rc) return rc;
    if (v.mv_size < 8) return tl_fail(TL_ECORRUPT, "catalog topic record is damaged");
    *ts = tl_seq_from_key(v.mv_data);
    title->ptr = (const uint8_t *)v.mv_data + 8;
    title->len = v.mv_size - 8;
    return 0;
}
