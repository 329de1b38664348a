/*
 * tracking.c — the "tracking" projection: the Tracking tab, one row per project a user can
 * see, in two orders kept as sorted indexes so that a page costs O(log n + page).
 *
 *   R user\0 project\0                          -> unread(8) last_activity(8) type(1)
 *   A user\0 type(1) ~last_activity(8) project\0            default order
 *   B user\0 type(1) ~unread(8) ~last_activity(8) project\0  "unread first"
 * The type sits before the order so that a type filter is one range; the unfiltered table
 * merges the three type ranges (tlp_merge), which keeps one index entry per row and order.
 * A cursor is the hex of the last row's suffix (what follows the type).
 *
 * last_activity and version are per viewer (SPEC "Settled details"): state.c keeps, per
 * project, the newest entry and activity of each visibility class (project level, notes,
 * chat, ambassador), and tl_state_last_activity / tl_state_version take the max over the
 * classes a user sees, so a note never moves a project for staff. The row keeps the
 * last_activity its index keys were written with, so they can be found and replaced.
 *
 * Fan-out: an activity event re-keys the rows of exactly the viewers of its class (members
 * and auditors for notes; plus staff for chat; plus the ambassador for the ambassador
 * channel; everyone for project-level events); a read or unread mark, the reader's row; a
 * deletion, the rows of its channel's audience (their unread counts may drop). Pins and
 * erasures change only versions, which are read from the state at query time.
 */
#include "proj.h"

static MDB_dbi trk_db(tl_log *log) { return tlp_dbi(log, "tracking", 0); }

typedef struct row {
    uint64_t unread, la;
    uint8_t type;
} row;

static tlp_key row_key(const char *user, const char *project) {
    tlp_key k;
    tlp_key_init(&k, 'R');
    tlp_key_str(&k, user);
    tlp_key_str(&k, project);
    return k;
}

static tlp_key order_key(char tag, const char *user, const char *project, const row *r) {
    tlp_key k;
    tlp_key_init(&k, tag);
    tlp_key_str(&k, user);
    tlp_key_u8(&k, r->type);
    if (tag == 'B') tlp_key_u64(&k, ~r->unread);
    tlp_key_u64(&k, ~r->la);
    tlp_key_str(&k, project);
    return k;
}

static int row_get(MDB_txn *txn, tl_log *log, const char *user, const char *project, row *r) {
    tlp_key k = row_key(user, project);
    MDB_val v;
    int rc = tl_get(txn, trk_db(log), k.b, k.n, &v);
    if (rc) return rc;
    if (v.mv_size != 17) return tl_fail(TL_ECORRUPT, "tracking row is damaged");
    r->unread = tl_seq_from_key(v.mv_data);
    r->la = tl_seq_from_key((const uint8_t *)v.mv_data + 8);
    r->type = ((const uint8_t *)v.mv_data)[16];
    return 0;
}

/* Bring user's row of project p up to date: its unread count and last_activity as the
 * projections before this one and the state now say; re-key the indexes when they moved. */
static int refresh(tl_wtxn *w, const char *user, int role, const char *project, const tl_project_rec *p) {
    tl_user_rec ur;
    tlp_user_rec(&ur, role, role == TL_ROLE_MEMBER ? p->account : NULL);
    if (!tl_state_sees_project(user, &ur, p)) return 0;
    row now = {0, tl_state_last_activity(user, &ur, p), p->type}, old;
    int rc = 0;
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR && !rc && role != TL_ROLE_AUDITOR; ch++) {
        uint64_t n;
        rc = tlp_unread_channel(w->txn, w->log, user, project, ch, &n);
        now.unread += n;
    }
    if (rc) return rc;
    MDB_dbi db = trk_db(w->log);
    rc = row_get(w->txn, w->log, user, project, &old);
    if (rc && rc != TL_ENOTFOUND) return rc;
    bool had = rc == 0;
    if (had && old.unread == now.unread && old.la == now.la && old.type == now.type) return 0;
    tlp_key k;
    if (had) {
        k = order_key('A', user, project, &old);
        if ((rc = tl_del(w, db, k.b, k.n)) != 0) return rc;
        k = order_key('B', user, project, &old);
        if ((rc = tl_del(w, db, k.b, k.n)) != 0) return rc;
    }
    k = order_key('A', user, project, &now);
    if ((rc = tl_put(w, db, k.b, k.n, "", 0, 0)) != 0) return rc;
    k = order_key('B', user, project, &now);
    if ((rc = tl_put(w, db, k.b, k.n, "", 0, 0)) != 0) return rc;
    uint8_t v[17];
    tl_seq_key(v, now.unread);
    tl_seq_key(v + 8, now.la);
    v[16] = now.type;
    k = row_key(user, project);
    return tl_put(w, db, k.b, k.n, v, sizeof v, 0);
}

static int refresh_all(tl_wtxn *w, const tlp_users *l, const char *project, const tl_project_rec *p) {
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) rc = refresh(w, l->v[i].id, l->v[i].role, project, p);
    return rc;
}

typedef struct new_user {
    tl_wtxn *w;
    const char *user;
    int role;
} new_user;

static int new_user_row(const char *project, void *ctxp) {
    new_user *n = ctxp;
    tl_project_rec p;
    int rc = tl_state_project(n->w->txn, n->w->log, project, &p);
    return rc ? rc : refresh(n->w, n->user, n->role, project, &p);
}

static int on_user(tl_wtxn *w, const tl_event *ev) {
    char id[TL_IDBUF], role[16], account[TL_IDBUF];
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tlp_ev_cstr(ev, "role", role, sizeof role);
    tlp_ev_cstr(ev, "account", account, sizeof account);
    new_user n = {w, id, tl_role_parse(role)};
    if (n.role == TL_ROLE_MEMBER) return tlp_each_project(w->txn, w->log, account, new_user_row, &n);
    if (n.role == TL_ROLE_STAFF || n.role == TL_ROLE_AUDITOR) return tlp_each_project(w->txn, w->log, NULL, new_user_row, &n);
    return 0; /* an ambassador gets rows with the projects that name them */
}

static bool is_activity(const char *k) {
    return !strcmp(k, "project.created") || !strcmp(k, "project.status_changed") || !strcmp(k, "topic.created") ||
           !strcmp(k, "message.sent") || !strcmp(k, "message.replied") || !strcmp(k, "note.added");
}

static int tracking_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    (void)state;
    const char *k = ev->kind;
    if (!strcmp(k, "user.created")) return on_user(w, ev);
    if (!ev->has_project || !strncmp(k, "x.", 2)) return 0;
    tl_project_rec p;
    int rc = tl_state_project(w->txn, w->log, ev->project, &p);
    if (rc) return rc == TL_ENOTFOUND ? 0 : rc;
    tlp_users l = {0};
    int cls = tlp_event_class(&p, ev->seq);
    if (cls >= 0 && is_activity(k)) {
        rc = tlp_class_viewers(w->txn, w->log, &p, cls, &l);
    } else if (!strcmp(k, "message.read") || !strcmp(k, "message.unread")) {
        tl_user_rec u;
        rc = tl_state_user(w->txn, w->log, ev->actor, &u);
        if (!rc) rc = tlp_users_add(&l, ev->actor, u.role);
        else if (rc == TL_ENOTFOUND) rc = 0;
    } else if (!strcmp(k, "message.deleted")) {
        char id[TL_IDBUF];
        tl_message_rec m;
        tlp_ev_cstr(ev, "message", id, sizeof id);
        rc = tl_state_message(w->txn, w->log, id, &m);
        if (!rc) rc = tlp_audience(w->txn, w->log, &p, p.account, m.channel, &l);
    }
    if (!rc) rc = refresh_all(w, &l, ev->project, &p);
    tlp_users_free(&l);
    return rc;
}

int tlp_tracking_register(tl_log *log) { return tlp_register(log, "tracking", tracking_apply); }

/* ---------------------------------------------------------------- the query */

static int tracking_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    int rc = 0, type = 0;
    if (q->type && !(type = tl_ptype_parse(q->type)))
        return tl_fail(TL_EINVALID, "unknown type \"%.40s\" (application, order or video)", q->type);
    char tag;
    if (!q->sort || !strcmp(q->sort, "activity")) tag = 'A';
    else if (!strcmp(q->sort, "unread")) tag = 'B';
    else return tl_fail(TL_EINVALID, "unknown sort \"%.40s\" (activity or unread)", q->sort);
    size_t fixed = tag == 'B' ? 16 : 8;
    uint8_t cur[TLP_KEY_MAX];
    size_t clen = 0;
    if (q->cursor && ((rc = tlp_cursor_decode(q->cursor, cur, sizeof cur, &clen)) != 0 || clen < fixed + 2 ||
                      clen > fixed + TL_IDBUF || cur[clen - 1] != 0))
        return rc ? rc : tl_fail(TL_EINVALID, "malformed cursor");
    if ((rc = tlp_viewer(txn, log, q, &u)) != 0) return rc;
    tlp_key pre[3];
    int npre = 0;
    for (int t = 1; t <= 3; t++) {
        if (type && t != type) continue;
        tlp_key_init(&pre[npre], tag);
        tlp_key_str(&pre[npre], q->as);
        tlp_key_u8(&pre[npre], (unsigned)t);
        npre++;
    }
    tlp_merge mg;
    if ((rc = tlp_merge_open(&mg, txn, trk_db(log), pre, npre, clen ? cur : NULL, clen)) != 0) return rc;
    unsigned limit = tlp_limit(q, TLP_PAGE_DEFAULT), shown = 0;
    uint8_t last[TLP_KEY_MAX];
    size_t last_len = 0;
    bool more = false;
    const uint8_t *suf;
    size_t slen;
    tl_sb_puts(sb, "{\"rows\":[");
    while ((rc = tlp_merge_next(&mg, &suf, &slen, NULL, NULL)) == 0) {
        if (shown == limit) { more = true; break; }
        if (slen < fixed + 2 || slen > sizeof last) { rc = tl_fail(TL_ECORRUPT, "tracking index key is damaged"); break; }
        memcpy(last, suf, slen);
        last_len = slen;
        const char *project = (const char *)last + fixed;
        row r;
        tl_project_rec p;
        tl_bytes title;
        if ((rc = row_get(txn, log, q->as, project, &r)) != 0 || (rc = tl_state_project(txn, log, project, &p)) != 0 ||
            (rc = tlp_project_title(txn, log, project, &title)) != 0) {
            if (rc == TL_ENOTFOUND) rc = tl_fail(TL_ECORRUPT, "tracking row of %s has no project", project);
            break;
        }
        tl_sb_puts(sb, shown++ ? ",{\"project\":" : "{\"project\":");
        tl_sb_json_str(sb, project, strlen(project));
        tl_sb_printf(sb, ",\"type\":\"%s\",\"title\":", tl_ptype_name(p.type) ? tl_ptype_name(p.type) : "");
        tl_sb_json_str(sb, (const char *)title.ptr, title.len);
        tl_sb_puts(sb, ",\"status\":");
        tl_sb_json_str(sb, p.status, strlen(p.status));
        tl_sb_printf(sb, ",\"last_activity\":%llu,\"unread\":%llu,\"version\":%llu}", (unsigned long long)r.la,
                     (unsigned long long)r.unread, (unsigned long long)tl_state_version(q->as, &u, &p));
    }
    tlp_merge_close(&mg);
    if (rc && rc != TL_ENOTFOUND) return rc;
    tl_sb_puts(sb, "],");
    tlp_cursor_json(sb, more ? last : NULL, last_len);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_tracking_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, tracking_body, json); }
