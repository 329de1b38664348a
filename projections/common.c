/*
 * common.c — the plumbing the projections share (see proj.h): registration, counters,
 * audience and viewer lists for fan-out, merged range scans, and query helpers.
 *
 * Fan-out lists come from the catalog's user groups (catalog.c), which this file reads by
 * key: "gM" account user (members), "gS" user (staff), "gX" user (auditors). The rule of who
 * is in which audience is SPEC §1's table; state.h's tl_state_in_audience answers the same
 * question for one user and the two must agree (the property test checks it).
 */
#include <stdio.h>
#include <stdlib.h>

#include "proj.h"

MDB_dbi tlp_dbi(tl_log *log, const char *applier, unsigned i) {
    /* called per row by queries: the same literal usually registered the applier, so the
     * pointers are compared before the strings */
    for (unsigned a = 0; a < log->napplier; a++)
        if (log->appliers[a].name == applier) return log->appliers[a].dbs[i];
    for (unsigned a = 0; a < log->napplier; a++)
        if (strcmp(log->appliers[a].name, applier) == 0) return log->appliers[a].dbs[i];
    return 0;
}

int tlp_register(tl_log *log, const char *name, int (*apply)(tl_wtxn *, const tl_event *, void *)) {
    tl_applier a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.apply = apply;
    int rc = tl_db_open(log, name, 0, &a.dbs[0]);
    if (rc) return rc;
    a.db_names[0] = name;
    a.ndbs = 1;
    a.in_digest = true;
    return tl_log_register(log, &a);
}

/* ---------------------------------------------------------------- counters */

int tlp_get_u64(MDB_txn *txn, MDB_dbi db, const tlp_key *k, uint64_t *out) {
    MDB_val v;
    *out = 0;
    int rc = tl_get(txn, db, k->b, k->n, &v);
    if (rc == TL_ENOTFOUND) return 0;
    if (rc) return rc;
    if (v.mv_size != 8) return tl_fail(TL_ECORRUPT, "projection counter is damaged");
    *out = tl_seq_from_key(v.mv_data);
    return 0;
}

int tlp_put_u64(tl_wtxn *w, MDB_dbi db, const tlp_key *k, uint64_t v) {
    if (v == 0) return tl_del(w, db, k->b, k->n);
    uint8_t b[8];
    tl_seq_key(b, v);
    return tl_put(w, db, k->b, k->n, b, 8, 0);
}

int tlp_add_u64(tl_wtxn *w, MDB_dbi db, const tlp_key *k, int64_t delta) {
    uint64_t cur;
    int rc = tlp_get_u64(w->txn, db, k, &cur);
    if (rc) return rc;
    uint64_t next = delta < 0 ? (cur > (uint64_t)-delta ? cur - (uint64_t)-delta : 0) : cur + (uint64_t)delta;
    if (next == cur) return 0;
    return tlp_put_u64(w, db, k, next);
}

/* ---------------------------------------------------------------- users */

int tlp_users_add(tlp_users *l, const char *id, int role) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        tlp_user *v = realloc(l->v, cap * sizeof *v);
        if (!v) return tl_fail(TL_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    size_t n = strnlen(id, sizeof l->v[l->n].id - 1);
    memcpy(l->v[l->n].id, id, n);
    l->v[l->n].id[n] = 0;
    l->v[l->n].role = (uint8_t)role;
    l->n++;
    return 0;
}

void tlp_users_free(tlp_users *l) {
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

void tlp_user_rec(tl_user_rec *u, int role, const char *account) {
    memset(u, 0, sizeof *u);
    u->role = (uint8_t)role;
    if (account) snprintf(u->account, sizeof u->account, "%s", account);
}

int tlp_each_id(MDB_txn *txn, MDB_dbi db, const tlp_key *prefix, tlp_id_fn fn, void *ctx) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc) return tl_fail_mdb(rc, "projection cursor");
    MDB_val k = {prefix->n, (void *)prefix->b}, v;
    uint8_t prev[TLP_KEY_MAX * 2];
    MDB_val pk = {0, prev};
    int out = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > prefix->n && memcmp(k.mv_data, prefix->b, prefix->n) == 0) {
        /* a damaged page can make a cursor walk in a cycle: keys must keep increasing */
        if ((pk.mv_size && mdb_cmp(txn, db, &k, &pk) <= 0) || k.mv_size > sizeof prev) {
            out = tl_fail(TL_ECORRUPT, "a projection database is damaged (its keys do not increase)");
            break;
        }
        memcpy(prev, k.mv_data, k.mv_size);
        pk.mv_size = k.mv_size;
        const char *id = (const char *)k.mv_data + prefix->n;
        size_t n = strnlen(id, k.mv_size - prefix->n);
        char buf[TL_IDBUF];
        if (n == 0 || n >= sizeof buf) { out = tl_fail(TL_ECORRUPT, "projection index key is damaged"); break; }
        memcpy(buf, id, n);
        buf[n] = 0;
        if ((out = fn(buf, ctx)) != 0) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND && !out) out = tl_fail_mdb(rc, "projection index");
    mdb_cursor_close(cur);
    return out;
}

/* Append the users of catalog group which (of account, for members) to out. */
static int group(tl_wtxn *w, char which, const char *account, tlp_users *out) {
    const tlp_users *g;
    int rc = tlp_catalog_group(w, which, account, &g);
    if (rc || !g->n) return rc;
    if (out->n + g->n > out->cap) {
        size_t cap = out->cap ? out->cap : 32;
        while (cap < out->n + g->n) cap *= 2;
        tlp_user *v = realloc(out->v, cap * sizeof *v);
        if (!v) return tl_fail(TL_ENOMEM, "out of memory");
        out->v = v;
        out->cap = cap;
    }
    memcpy(out->v + out->n, g->v, g->n * sizeof *g->v);
    out->n += g->n;
    return 0;
}

int tlp_audience(tl_wtxn *w, const tl_project_rec *p, const char *account, int ch, tlp_users *out) {
    if (!p && ch != TL_CH_SUPPORT) return 0;
    int rc = group(w, 'M', p ? p->account : account, out);
    if (!rc && (ch == TL_CH_CHAT || ch == TL_CH_SUPPORT)) rc = group(w, 'S', NULL, out);
    if (!rc && ch == TL_CH_AMBASSADOR && p->ambassador[0]) rc = tlp_users_add(out, p->ambassador, TL_ROLE_AMBASSADOR);
    return rc;
}

int tlp_class_viewers(tl_wtxn *w, const tl_project_rec *p, int cls, tlp_users *out) {
    int rc = group(w, 'M', p->account, out);
    if (!rc) rc = group(w, 'X', NULL, out);
    if (!rc && (cls == 0 || cls == TL_CH_CHAT)) rc = group(w, 'S', NULL, out);
    if (!rc && (cls == 0 || cls == TL_CH_AMBASSADOR) && p->ambassador[0])
        rc = tlp_users_add(out, p->ambassador, TL_ROLE_AMBASSADOR);
    return rc;
}

int tlp_event_class(const tl_project_rec *p, uint64_t seq) {
    for (int c = 0; c < 4; c++)
        if (p->last_seq[c] == seq) return c;
    return -1;
}

/* ---------------------------------------------------------------- events */

void tlp_ev_cstr(const tl_event *ev, const char *key, char *dst, size_t cap) {
    tl_bytes b;
    dst[0] = 0;
    if (tl_ev_str(ev, key, &b) == 0 && b.len < cap) tl_bytes_cstr(&b, dst, cap);
}

bool tlp_created_message(const tl_event *ev, char id[TL_IDBUF]) {
    if (ev->kid == TL_K_MESSAGE_SENT || ev->kid == TL_K_MESSAGE_REPLIED || ev->kid == TL_K_NOTE_ADDED)
        tlp_ev_cstr(ev, "id", id, TL_IDBUF);
    else if (ev->kid == TL_K_TOPIC_CREATED)
        tlp_ev_cstr(ev, "message_id", id, TL_IDBUF);
    else if (ev->kid == TL_K_PROJECT_CREATED)
        tlp_ev_cstr(ev, "ambassador_message_id", id, TL_IDBUF);
    else
        return false;
    return id[0] != 0;
}

int tlp_message_ctx(tl_wtxn *w, const char *id, tl_message_rec *m, tl_project_rec *p) {
    int rc = tl_wstate_message(w, id, m);
    if (rc) return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "an event names unknown message %s", id) : rc;
    memset(p, 0, sizeof *p);
    if (!m->project[0]) return 0;
    rc = tl_wstate_project(w, m->project, p);
    return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "message %s names unknown project %s", id, m->project) : rc;
}

/* ---------------------------------------------------------------- merged range scans */

static bool in_range(const tlp_merge *m, int i) {
    return m->k[i].mv_size >= m->prefix[i].n && memcmp(m->k[i].mv_data, m->prefix[i].b, m->prefix[i].n) == 0;
}

static int advance(tlp_merge *m, int i, MDB_cursor_op op) {
    int rc = mdb_cursor_get(m->cur[i], &m->k[i], &m->v[i], op);
    if (rc == MDB_NOTFOUND) { m->live[i] = false; return 0; }
    if (rc) return tl_fail_mdb(rc, "projection scan");
    m->live[i] = in_range(m, i);
    return 0;
}

int tlp_merge_open(tlp_merge *m, MDB_txn *txn, MDB_dbi db, const tlp_key *prefixes, int n, const uint8_t *after,
                   size_t after_len) {
    memset(m, 0, sizeof *m);
    if (n > TLP_MERGE_MAX) n = TLP_MERGE_MAX;
    for (int i = 0; i < n; i++) {
        m->prefix[i] = prefixes[i];
        int rc = mdb_cursor_open(txn, db, &m->cur[i]);
        if (rc) { tlp_merge_close(m); return tl_fail_mdb(rc, "projection cursor"); }
        m->n = i + 1;
        tlp_key start = prefixes[i];
        if (after) tlp_key_raw(&start, after, after_len);
        m->k[i].mv_size = start.n;
        m->k[i].mv_data = start.b;
        if ((rc = advance(m, i, MDB_SET_RANGE)) != 0) { tlp_merge_close(m); return rc; }
        /* strictly after: skip the cursor's own row */
        if (after && m->live[i] && m->k[i].mv_size == start.n && memcmp(m->k[i].mv_data, start.b, start.n) == 0 &&
            (rc = advance(m, i, MDB_NEXT)) != 0) {
            tlp_merge_close(m);
            return rc;
        }
    }
    return 0;
}

static int suffix_cmp(const tlp_merge *m, int a, int b) {
    const uint8_t *pa = (const uint8_t *)m->k[a].mv_data + m->prefix[a].n;
    const uint8_t *pb = (const uint8_t *)m->k[b].mv_data + m->prefix[b].n;
    size_t la = m->k[a].mv_size - m->prefix[a].n, lb = m->k[b].mv_size - m->prefix[b].n;
    int c = memcmp(pa, pb, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

int tlp_merge_next(tlp_merge *m, const uint8_t **suffix, size_t *suffix_len, MDB_val *val, int *which) {
    int best = -1;
    for (int i = 0; i < m->n; i++)
        if (m->live[i] && (best < 0 || suffix_cmp(m, i, best) < 0)) best = i;
    if (best < 0) return TL_ENOTFOUND;
    /* copy out before advancing: the suffix lives in the cursor's page */
    uint8_t *buf = m->out;
    size_t len = m->k[best].mv_size - m->prefix[best].n;
    memcpy(buf, (const uint8_t *)m->k[best].mv_data + m->prefix[best].n, len);
    if (val) *val = m->v[best];
    if (which) *which = best;
    *suffix = buf;
    *suffix_len = len;
    return advance(m, best, MDB_NEXT);
}

void tlp_merge_close(tlp_merge *m) {
    for (int i = 0; i < m->n; i++)
        if (m->cur[i]) mdb_cursor_close(m->cur[i]);
    m->n = 0;
}

/* ---------------------------------------------------------------- queries */

bool tlp_id_valid(const char *s) {
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-') || n >= TL_ID_MAX)
            return false;
    }
    return n > 0;
}

int tlp_viewer(MDB_txn *txn, tl_log *log, const tl_query *q, tl_user_rec *u) {
    if (!q || !q->as) return tl_fail(TL_EINVALID, "a query needs the viewing user (--as USER)");
    if (!tlp_id_valid(q->as)) return tl_fail(TL_EINVALID, "\"%.80s\" is not a valid user id", q->as);
    int rc = tl_state_user(txn, log, q->as, u);
    if (rc == TL_ENOTFOUND) return tl_fail(TL_ENOTFOUND, "unknown user %s", q->as);
    return rc;
}

int tlp_query_project(MDB_txn *txn, tl_log *log, const char *id, tl_project_rec *p) {
    if (!id) return tl_fail(TL_EINVALID, "this query needs a project (--project P)");
    if (!tlp_id_valid(id)) return tl_fail(TL_EINVALID, "\"%.80s\" is not a valid project id", id);
    int rc = tl_state_project(txn, log, id, p);
    if (rc == TL_ENOTFOUND) return tl_fail(TL_ENOTFOUND, "unknown project %s", id);
    return rc;
}

unsigned tlp_limit(const tl_query *q, unsigned dflt) {
    if (!q->limit) return dflt;
    return q->limit > TLP_PAGE_MAX ? TLP_PAGE_MAX : q->limit;
}

/* The hex of a cursor, unchecked but for its shape. */
static int cursor_unhex(const char *cursor, uint8_t *out, size_t cap, size_t *len) {
    size_t n = strlen(cursor);
    if (n == 0 || n % 2 || n / 2 > cap) return tl_fail(TL_EINVALID, "malformed cursor");
    for (size_t i = 0; i < n; i++) {
        char c = cursor[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return tl_fail(TL_EINVALID, "malformed cursor");
    }
    if (tl_unhex(out, n / 2, cursor)) return tl_fail(TL_EINVALID, "malformed cursor");
    *len = n / 2;
    return 0;
}

/*
 * Which list a cursor belongs to: the query's kind and every field that selects the list
 * (the viewer, project, account, channel, topic, type, order, "See more"), not the page
 * size. A cursor is the last item's key in that list followed by this tag, so a cursor
 * handed to another query, viewer or list is refused (invalid_input) rather than read as a
 * position in a list it never came from. The fields were validated before (ids of at most
 * 64 bytes, known names), so the buffer holds them.
 */
static void cursor_tag(uint8_t tag[TLP_CURSOR_TAG], char kind, const tl_query *q) {
    const char *fields[] = {q->as, q->project, q->account, q->channel, q->topic, q->type, q->sort ? q->sort : "activity"};
    char buf[640];
    size_t n = 0;
    buf[n++] = kind;
    buf[n++] = q->more ? '+' : '-';
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *f = fields[i] ? fields[i] : "\x1e"; /* absent: a byte no field holds */
        size_t len = strnlen(f, 80);
        buf[n++] = '\x1f';
        memcpy(buf + n, f, len);
        n += len;
    }
    uint8_t h[TL_HASH_BYTES];
    tl_hash(h, buf, n);
    memcpy(tag, h, TLP_CURSOR_TAG);
}

int tlp_cursor_decode(const tl_query *q, char kind, uint8_t *out, size_t cap, size_t *len) {
    uint8_t raw[TLP_KEY_MAX + TLP_CURSOR_TAG], tag[TLP_CURSOR_TAG];
    size_t n = 0;
    int rc = cursor_unhex(q->cursor, raw, sizeof raw, &n);
    if (rc) return rc;
    if (n <= TLP_CURSOR_TAG || n - TLP_CURSOR_TAG > cap) return tl_fail(TL_EINVALID, "malformed cursor");
    cursor_tag(tag, kind, q);
    if (memcmp(raw + n - TLP_CURSOR_TAG, tag, TLP_CURSOR_TAG) != 0)
        return tl_fail(TL_EINVALID, "the cursor belongs to another query (a cursor is good only for the query, user and "
                                    "list whose page gave it)");
    *len = n - TLP_CURSOR_TAG;
    memcpy(out, raw, *len);
    return 0;
}

void tlp_cursor_json(tl_strbuf *sb, const tl_query *q, char kind, const uint8_t *p, size_t n) {
    if (!p) { tl_sb_puts(sb, "\"next\":null"); return; }
    uint8_t tag[TLP_CURSOR_TAG];
    cursor_tag(tag, kind, q);
    tl_sb_puts(sb, "\"next\":\"");
    tl_sb_hex(sb, p, n);
    tl_sb_hex(sb, tag, TLP_CURSOR_TAG);
    tl_sb_puts(sb, "\"");
}

void tlp_json_str_or_null(tl_strbuf *sb, const char *s) {
    if (!s || !*s) tl_sb_puts(sb, "null");
    else tl_sb_json_str(sb, s, strlen(s));
}

int tlp_run_query(tl_log *log, const tl_query *q, tlp_query_fn fn, char **json) {
    if (!json) return tl_fail(TL_EUSAGE, "no output pointer");
    *json = NULL;
    if (!log || !q) return tl_fail(TL_EUSAGE, "no log or query");
    if (q->version != TL_QUERY_VERSION) return tl_fail(TL_EUSAGE, "unknown tl_query version %u", q->version);
    /* malformed input first: invalid_input precedes not_found and forbidden (SPEC) */
    if (!q->as) return tl_fail(TL_EINVALID, "a query needs the viewing user (--as USER)");
    const char *ids[][2] = {{"user", q->as}, {"project", q->project}, {"account", q->account}, {"topic", q->topic}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i][1] && !tlp_id_valid(ids[i][1]))
            return tl_fail(TL_EINVALID, "\"%.80s\" is not a valid %s id", ids[i][1], ids[i][0]);
    if (q->type && !tl_ptype_parse(q->type))
        return tl_fail(TL_EINVALID, "unknown type \"%.40s\" (application, order or video)", q->type);
    if (q->channel && !tl_channel_parse(q->channel))
        return tl_fail(TL_EINVALID, "unknown channel \"%.40s\" (notes, chat, ambassador or support)", q->channel);
    if (q->sort && strcmp(q->sort, "activity") && strcmp(q->sort, "unread"))
        return tl_fail(TL_EINVALID, "unknown sort \"%.40s\" (activity or unread)", q->sort);
    uint8_t cur[TLP_KEY_MAX + TLP_CURSOR_TAG];
    size_t clen;
    int rc = q->cursor ? cursor_unhex(q->cursor, cur, sizeof cur, &clen) : 0; /* its shape; its list: the query's */
    if (rc) return rc;
    if ((rc = tl_layout_check(log)) != 0) return rc;
    MDB_txn *txn;
    if ((rc = tl_rtxn_begin(log, &txn)) != 0) return rc;
    tl_strbuf sb = {0};
    rc = fn(txn, log, q, &sb);
    tl_rtxn_end(log, txn);
    if (rc) { free(sb.ptr); return rc; }
    *json = tl_sb_take(&sb);
    if (!*json) return tl_fail(TL_ENOMEM, "out of memory");
    return 0;
}
