/*
 * dashboard.c — the "dashboard" projection: per user and project type, the messages the
 * user has not read, newest first, for the dashboard panels and their "See more" pages.
 *
 *   D user\0 type(1) ~seq(8) -> message id
 * One entry per unread message of a project (support has no panel): the same definition
 * as unread.c, kept by the same events — created (+ for the audience but the author),
 * read (-), unread mark (+), deleted (- for the whole audience), a new user (every message
 * of their audience that is not deleted). The panel's count is unread.c's per-type counter,
 * so no range is ever counted. A "See more" cursor is the hex of the last ~seq.
 */
#include "proj.h"

static MDB_dbi dash_db(tl_log *log) { return tlp_dbi(log, "dashboard", 0); }

static tlp_key entry_key(const char *user, int type, uint64_t seq) {
    tlp_key k;
    tlp_key_init(&k, 'D');
    tlp_key_str(&k, user);
    tlp_key_u8(&k, (unsigned)type);
    tlp_key_u64(&k, ~seq);
    return k;
}

/* absent: the entry is a new message's (its key holds the creating event's seq, so no
 * earlier event can have written it) */
static int put_entry(tl_wtxn *w, tlp_ovl *o, const char *user, int type, uint64_t seq, const char *id, bool absent) {
    tlp_key k = entry_key(user, type, seq);
    return absent ? tlp_ovl_put_absent(w, o, &k, id, strlen(id)) : tlp_ovl_put(w, o, &k, id, strlen(id));
}

static int del_entry(tl_wtxn *w, tlp_ovl *o, const char *user, int type, uint64_t seq) {
    tlp_key k = entry_key(user, type, seq);
    return tlp_ovl_del(w, o, &k);
}

/* created (+1) and deleted (-1): the whole audience of the message's channel */
static int fan_out(tl_wtxn *w, tlp_ovl *o, const char *id, bool add) {
    tl_message_rec m;
    tl_project_rec p;
    tlp_users aud = {0};
    int rc = tlp_message_ctx(w, id, &m, &p);
    if (rc || !m.project[0]) return rc;
    rc = tlp_audience(w, &p, p.account, m.channel, &aud);
    for (size_t i = 0; i < aud.n && !rc; i++) { /* announce the keys (tlp_ovl_prefetch) */
        tlp_key k = entry_key(aud.v[i].id, p.type, m.seq);
        tlp_ovl_prefetch(o, &k);
    }
    for (size_t i = 0; i < aud.n && !rc; i++) {
        if (strcmp(aud.v[i].id, m.author) == 0) continue;
        rc = add ? put_entry(w, o, aud.v[i].id, p.type, m.seq, id, true) : del_entry(w, o, aud.v[i].id, p.type, m.seq);
    }
    tlp_users_free(&aud);
    return rc;
}

static int on_mark(tl_wtxn *w, tlp_ovl *o, const tl_event *ev, bool unread) {
    char id[TL_IDBUF];
    tl_message_rec m;
    tl_project_rec p;
    tl_user_rec u;
    tlp_ev_cstr(ev, "message", id, sizeof id);
    int rc = tlp_message_ctx(w, id, &m, &p);
    if (rc || !m.project[0]) return rc;
    if (!unread) return del_entry(w, o, ev->actor, p.type, m.seq);
    if ((rc = tl_wstate_user(w, ev->actor, &u)) != 0) return rc == TL_ENOTFOUND ? 0 : rc;
    if (u.role == TL_ROLE_AUDITOR || m.deleted || !strcmp(m.author, ev->actor) ||
        !tl_state_in_audience(ev->actor, &u, &p, p.account, m.channel))
        return 0;
    return put_entry(w, o, ev->actor, p.type, m.seq, id, false);
}

typedef struct seed_ctx {
    tl_wtxn *w;
    tlp_ovl *o;
    const char *user;
    int role, type;
} seed_ctx;

static int seed_message(const char *id, uint64_t seq, void *ctxp) {
    seed_ctx *s = ctxp;
    return put_entry(s->w, s->o, s->user, s->type, seq, id, false);
}

static int seed_project(const char *project, void *ctxp) {
    seed_ctx *s = ctxp;
    tl_project_rec p;
    int rc = tl_wstate_project(s->w, project, &p);
    s->type = p.type;
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR && !rc; ch++) {
        if ((s->role == TL_ROLE_STAFF && ch != TL_CH_CHAT) || (ch == TL_CH_AMBASSADOR && !p.ambassador_channel)) continue;
        rc = tlp_each_channel_message(s->w->txn, s->w->log, project, ch, seed_message, s);
    }
    return rc;
}

static int on_user(tl_wtxn *w, tlp_ovl *o, const tl_event *ev) {
    char id[TL_IDBUF], role[16], account[TL_IDBUF];
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tlp_ev_cstr(ev, "role", role, sizeof role);
    tlp_ev_cstr(ev, "account", account, sizeof account);
    seed_ctx s = {w, o, id, tl_role_parse(role), 0};
    if (s.role == TL_ROLE_MEMBER) return tlp_each_project(w->txn, w->log, account, seed_project, &s);
    if (s.role == TL_ROLE_STAFF) return tlp_each_project(w->txn, w->log, NULL, seed_project, &s);
    return 0;
}

static int dashboard_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    tlp_ovl *o = state;
    char id[TL_IDBUF];
    int rc = tlp_ovl_bound(w, o);
    if (rc) return rc;
    if (tlp_created_message(ev, id)) return fan_out(w, o, id, true);
    if (ev->kid == TL_K_MESSAGE_READ) return on_mark(w, o, ev, false);
    if (ev->kid == TL_K_MESSAGE_UNREAD) return on_mark(w, o, ev, true);
    if (ev->kid == TL_K_MESSAGE_DELETED) {
        tlp_ev_cstr(ev, "message", id, sizeof id);
        return fan_out(w, o, id, false);
    }
    if (ev->kid == TL_K_USER_CREATED) return on_user(w, o, ev);
    return 0;
}

int tlp_dashboard_register(tl_log *log) { return tlp_register_buffered(log, "dashboard", dashboard_apply); }

/* ---------------------------------------------------------------- the query */

/* Up to limit messages of one panel after the cursor; *more tells whether others follow. */
static int panel(MDB_txn *txn, tl_log *log, const char *viewer, const tl_user_rec *u, int type, const uint8_t *after,
                 unsigned limit, tl_strbuf *sb, uint8_t last[8], bool *more) {
    tlp_key pre;
    tlp_key_init(&pre, 'D');
    tlp_key_str(&pre, viewer);
    tlp_key_u8(&pre, (unsigned)type);
    tlp_merge mg;
    int rc = tlp_merge_open(&mg, txn, dash_db(log), &pre, 1, after, 8);
    if (rc) return rc;
    unsigned shown = 0;
    const uint8_t *suf;
    size_t slen;
    MDB_val v;
    *more = false;
    tl_sb_puts(sb, "\"messages\":[");
    while ((rc = tlp_merge_next(&mg, &suf, &slen, &v, NULL)) == 0) {
        if (shown == limit) { *more = true; break; }
        char id[TL_IDBUF];
        tl_message_rec m;
        if (slen != 8 || v.mv_size == 0 || v.mv_size >= TL_IDBUF) { rc = tl_fail(TL_ECORRUPT, "dashboard entry is damaged"); break; }
        memcpy(last, suf, 8);
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = 0;
        if ((rc = tl_state_message(txn, log, id, &m)) != 0) break;
        if (shown++) tl_sb_puts(sb, ",");
        /* the dashboard holds an entry for each message unread by its viewer, and only those */
        static const bool unread = true;
        if ((rc = tlp_message_json(sb, txn, log, id, &m, viewer, u, &unread)) != 0) break;
    }
    tlp_merge_close(&mg);
    tl_sb_puts(sb, "]");
    return rc == TL_ENOTFOUND ? 0 : rc;
}

static int dashboard_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    int rc = 0;
    uint8_t last[8];
    bool more;
    uint64_t n;
    if (!q->more) {
        /* a type or a cursor belongs to "See more": refused, not ignored (which list was meant?) */
        if (q->type || q->cursor)
            return tl_fail(TL_EINVALID, "%s goes with \"See more\" (more: --type T --more)", q->type ? "a type" : "a cursor");
        if ((rc = tlp_viewer(txn, log, q, &u)) != 0) return rc;
        unsigned limit = tlp_limit(q, TLP_PANEL_DEFAULT);
        tl_sb_puts(sb, "{\"panels\":[");
        for (int t = 1; t <= 3 && !rc; t++) {
            if ((rc = tlp_unread_bucket(txn, log, q->as, t, &n)) != 0) break;
            tl_sb_printf(sb, "%s{\"type\":\"%s\",\"unread\":%llu,", t > 1 ? "," : "", tl_ptype_name(t), (unsigned long long)n);
            rc = panel(txn, log, q->as, &u, t, NULL, limit, sb, last, &more);
            tl_sb_puts(sb, "}");
        }
        tl_sb_puts(sb, "]}");
        return rc;
    }
    int type = q->type ? tl_ptype_parse(q->type) : 0;
    if (!q->type) return tl_fail(TL_EINVALID, "\"See more\" needs a type (--type application|order|video)");
    if (!type) return tl_fail(TL_EINVALID, "unknown type \"%.40s\" (application, order or video)", q->type);
    uint8_t cur[8];
    size_t clen = 0;
    if (q->cursor && ((rc = tlp_cursor_decode(q, 'd', cur, sizeof cur, &clen)) != 0 || clen != 8))
        return rc ? rc : tl_fail(TL_EINVALID, "malformed cursor");
    if ((rc = tlp_viewer(txn, log, q, &u)) != 0) return rc;
    if ((rc = tlp_unread_bucket(txn, log, q->as, type, &n)) != 0) return rc;
    tl_sb_printf(sb, "{\"type\":\"%s\",\"unread\":%llu,", tl_ptype_name(type), (unsigned long long)n);
    rc = panel(txn, log, q->as, &u, type, clen ? cur : NULL, tlp_limit(q, TLP_PAGE_DEFAULT), sb, last, &more);
    if (rc) return rc;
    tl_sb_puts(sb, ",");
    tlp_cursor_json(sb, q, 'd', more ? last : NULL, 8);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_dashboard_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, dashboard_body, json); }
