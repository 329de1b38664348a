/*
 * unread.c — the "unread" projection: how many messages each user has not read.
 *
 * unread(U, m) holds when U is in m's audience, U is not its author, m is not deleted and U
 * has not read it (SPEC §3). The counts are kept incrementally, never recounted:
 *   c project\0 user\0 channel(1)   per user × project × channel
 *   t user\0 bucket(1)              per user × project type (1..3), 4 = support
 *   k topic\0 user\0                per user × chat topic (the topics list)
 * A user's total is the sum of its four buckets. Zero counters are deleted.
 *
 * The state applier has already applied the current event when this one runs, so each
 * event is read as a change of the definition's terms:
 *   a message created     +1 for its audience but the author;
 *   message.read          -1 for the reader (the command layer appends it only when the
 *                         message was unread for them); message.unread +1 likewise;
 *   message.deleted       -1 for every audience member but the author who has no read
 *                         mark on it (the marks outlive the deletion);
 *   user.created          a new user starts with every message of their audience unread:
 *                         the per-channel and per-topic counts of messages.c seed them.
 * Auditors never have unread messages.
 */
#include "proj.h"

static MDB_dbi unread_db(tl_log *log) { return tlp_dbi(log, "unread", 0); }

/* project (topic) first: one event's fan-out to its audience writes neighbouring keys,
 * a few pages instead of one page per user (the counters are only ever read by point gets) */
static tlp_key channel_key(const char *user, const char *project, int ch) {
    tlp_key k;
    tlp_key_init(&k, 'c');
    tlp_key_str(&k, project);
    tlp_key_str(&k, user);
    tlp_key_u8(&k, (unsigned)ch);
    return k;
}

static tlp_key bucket_key(const char *user, int bucket) {
    tlp_key k;
    tlp_key_init(&k, 't');
    tlp_key_str(&k, user);
    tlp_key_u8(&k, (unsigned)bucket);
    return k;
}

static tlp_key topic_key(const char *user, const char *topic) {
    tlp_key k;
    tlp_key_init(&k, 'k');
    tlp_key_str(&k, topic);
    tlp_key_str(&k, user);
    return k;
}

/* Move every counter of message m by delta for user. */
static int bump(tl_wtxn *w, tlp_ovl *o, const char *user, const tl_message_rec *m, const tl_project_rec *p, int delta) {
    tlp_key k;
    int rc = 0;
    if (m->project[0]) {
        k = channel_key(user, m->project, m->channel);
        rc = tlp_ovl_add_u64(w, o, &k, delta);
    }
    k = bucket_key(user, tlp_bucket(m, p));
    if (!rc) rc = tlp_ovl_add_u64(w, o, &k, delta);
    if (!rc && m->channel == TL_CH_CHAT && m->topic[0]) {
        k = topic_key(user, m->topic);
        rc = tlp_ovl_add_u64(w, o, &k, delta);
    }
    return rc;
}

/* The keys bump() will touch, announced (tlp_ovl_prefetch). */
static void prefetch_bump(const tlp_ovl *o, const char *user, const tl_message_rec *m, const tl_project_rec *p) {
    tlp_key k;
    if (m->project[0]) {
        k = channel_key(user, m->project, m->channel);
        tlp_ovl_prefetch(o, &k);
    }
    k = bucket_key(user, tlp_bucket(m, p));
    tlp_ovl_prefetch(o, &k);
    if (m->channel == TL_CH_CHAT && m->topic[0]) {
        k = topic_key(user, m->topic);
        tlp_ovl_prefetch(o, &k);
    }
}

static int on_created(tl_wtxn *w, tlp_ovl *o, const char *id) {
    tl_message_rec m;
    tl_project_rec p;
    tlp_users aud = {0};
    int rc = tlp_message_ctx(w, id, &m, &p);
    if (!rc) rc = tlp_audience(w, m.project[0] ? &p : NULL, m.account, m.channel, &aud);
    for (size_t i = 0; i < aud.n && !rc; i++) prefetch_bump(o, aud.v[i].id, &m, &p);
    for (size_t i = 0; i < aud.n && !rc; i++)
        if (strcmp(aud.v[i].id, m.author) != 0) rc = bump(w, o, aud.v[i].id, &m, &p, 1);
    tlp_users_free(&aud);
    return rc;
}

/* message.read / message.unread by the actor: only an audience member who is not the author
 * (and not an auditor) has the message counted at all. */
static int on_mark(tl_wtxn *w, tlp_ovl *o, const tl_event *ev, int delta) {
    char id[TL_IDBUF];
    tl_message_rec m;
    tl_project_rec p;
    tl_user_rec u;
    tlp_ev_cstr(ev, "message", id, sizeof id);
    int rc = tlp_message_ctx(w, id, &m, &p);
    if (rc) return rc;
    if ((rc = tl_wstate_user(w, ev->actor, &u)) != 0) return rc == TL_ENOTFOUND ? 0 : rc;
    if (u.role == TL_ROLE_AUDITOR || m.deleted || !strcmp(m.author, ev->actor) ||
        !tl_state_in_audience(ev->actor, &u, m.project[0] ? &p : NULL, m.account, m.channel))
        return 0;
    return bump(w, o, ev->actor, &m, &p, delta);
}

static int on_deleted(tl_wtxn *w, tlp_ovl *o, const tl_event *ev) {
    char id[TL_IDBUF];
    tl_message_rec m;
    tl_project_rec p;
    tlp_users aud = {0};
    tlp_ev_cstr(ev, "message", id, sizeof id);
    int rc = tlp_message_ctx(w, id, &m, &p);
    if (!rc) rc = tlp_audience(w, m.project[0] ? &p : NULL, m.account, m.channel, &aud);
    for (size_t i = 0; i < aud.n && !rc; i++)
        if (strcmp(aud.v[i].id, m.author) != 0 && !tl_state_has_read(w->txn, w->log, aud.v[i].id, id))
            rc = bump(w, o, aud.v[i].id, &m, &p, -1);
    tlp_users_free(&aud);
    return rc;
}

/* ---------------------------------------------------------------- a new user */

/* A seeded counter: zero counters are absent, as tlp_add_u64 keeps them. */
static int put_count(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, uint64_t n) {
    if (!n) return tlp_ovl_del(w, o, k);
    uint8_t b[8];
    tl_seq_key(b, n);
    return tlp_ovl_put(w, o, k, b, 8);
}

typedef struct seed_ctx {
    tl_wtxn *w;
    tlp_ovl *o;
    const char *user;
    int role;
    uint64_t bucket[5];
} seed_ctx;

static int seed_topic(const char *topic, void *ctxp) {
    seed_ctx *s = ctxp;
    uint64_t n;
    int rc = tlp_count_topic(s->w->txn, s->w->log, topic, &n);
    tlp_key k = topic_key(s->user, topic);
    return rc ? rc : put_count(s->w, s->o, &k, n);
}

static int seed_project(const char *project, void *ctxp) {
    seed_ctx *s = ctxp;
    tl_project_rec p;
    int rc = tl_wstate_project(s->w, project, &p);
    if (rc) return rc;
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR && !rc; ch++) {
        if (s->role == TL_ROLE_STAFF && ch != TL_CH_CHAT) continue;
        if (ch == TL_CH_AMBASSADOR && !p.ambassador_channel) continue;
        uint64_t n;
        if ((rc = tlp_count_channel(s->w->txn, s->w->log, project, ch, &n)) != 0) break;
        tlp_key k = channel_key(s->user, project, ch);
        rc = put_count(s->w, s->o, &k, n);
        if (p.type >= 1 && p.type <= 3) s->bucket[p.type] += n;
    }
    return rc ? rc : tlp_each_topic(s->w->txn, s->w->log, project, seed_topic, s);
}

static int seed_support(const char *account, void *ctxp) {
    seed_ctx *s = ctxp;
    uint64_t n;
    int rc = tlp_count_support(s->w->txn, s->w->log, account, &n);
    s->bucket[4] += n;
    return rc;
}

static int on_user(tl_wtxn *w, tlp_ovl *o, const tl_event *ev) {
    char id[TL_IDBUF], role[16], account[TL_IDBUF];
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tlp_ev_cstr(ev, "role", role, sizeof role);
    tlp_ev_cstr(ev, "account", account, sizeof account);
    seed_ctx s = {w, o, id, tl_role_parse(role), {0}};
    int rc = 0;
    if (s.role == TL_ROLE_MEMBER) {
        rc = tlp_each_project(w->txn, w->log, account, seed_project, &s);
        if (!rc) rc = seed_support(account, &s);
    } else if (s.role == TL_ROLE_STAFF) {
        rc = tlp_each_project(w->txn, w->log, NULL, seed_project, &s);
        if (!rc) rc = tlp_each_account(w->txn, w->log, seed_support, &s);
    } else {
        return 0; /* ambassadors have no project yet; auditors never have unread messages */
    }
    for (int b = 1; b <= 4 && !rc; b++) {
        tlp_key k = bucket_key(id, b);
        rc = put_count(w, o, &k, s.bucket[b]);
    }
    return rc;
}

static int unread_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    tlp_ovl *o = state;
    char id[TL_IDBUF];
    int rc = tlp_ovl_bound(w, o);
    if (rc) return rc;
    if (tlp_created_message(ev, id)) return on_created(w, o, id);
    if (ev->kid == TL_K_MESSAGE_READ) return on_mark(w, o, ev, -1);
    if (ev->kid == TL_K_MESSAGE_UNREAD) return on_mark(w, o, ev, 1);
    if (ev->kid == TL_K_MESSAGE_DELETED) return on_deleted(w, o, ev);
    if (ev->kid == TL_K_USER_CREATED) return on_user(w, o, ev);
    return 0;
}

int tlp_unread_register(tl_log *log) { return tlp_register_buffered(log, "unread", unread_apply); }

int tlp_unread_project_sum(tl_wtxn *w, const char *user, const tl_user_rec *u, const char *project,
                           const tl_project_rec *p, uint64_t *out) {
    tlp_ovl *o = tlp_ovl_of(w->log, "unread");
    *out = 0;
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR; ch++) {
        /* counters exist only where the user is in the audience: skip the other lookups */
        if (!tl_state_in_audience(user, u, p, p->account, ch)) continue;
        tlp_key k = channel_key(user, project, ch);
        MDB_val v;
        int rc = tlp_ovl_get(w, o, &k, &v);
        if (rc == TL_ENOTFOUND) continue;
        if (rc) return rc;
        if (v.mv_size != 8) return tl_fail(TL_ECORRUPT, "projection counter is damaged");
        *out += tl_seq_from_key(v.mv_data);
    }
    return 0;
}

/* ---------------------------------------------------------------- reading */

int tlp_unread_channel(MDB_txn *txn, tl_log *log, const char *user, const char *project, int ch, uint64_t *n) {
    tlp_key k = channel_key(user, project, ch);
    return tlp_get_u64(txn, unread_db(log), &k, n);
}

int tlp_unread_bucket(MDB_txn *txn, tl_log *log, const char *user, int bucket, uint64_t *n) {
    tlp_key k = bucket_key(user, bucket);
    return tlp_get_u64(txn, unread_db(log), &k, n);
}

int tlp_unread_topic(MDB_txn *txn, tl_log *log, const char *user, const char *topic, uint64_t *n) {
    tlp_key k = topic_key(user, topic);
    return tlp_get_u64(txn, unread_db(log), &k, n);
}

static int unread_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    int rc = tlp_viewer(txn, log, q, &u);
    if (rc) return rc;
    uint64_t n[5] = {0}, total = 0;
    if (!q->project) {
        for (int b = 1; b <= 4 && !rc; b++) {
            rc = tlp_unread_bucket(txn, log, q->as, b, &n[b]);
            total += n[b];
        }
        if (rc) return rc;
        tl_sb_printf(sb, "{\"total\":%llu,\"by_type\":{\"application\":%llu,\"order\":%llu,\"video\":%llu,\"support\":%llu}}",
                     (unsigned long long)total, (unsigned long long)n[1], (unsigned long long)n[2],
                     (unsigned long long)n[3], (unsigned long long)n[4]);
        return 0;
    }
    tl_project_rec p;
    if ((rc = tlp_query_project(txn, log, q->project, &p)) != 0) return rc;
    if (!tl_state_sees_project(q->as, &u, &p))
        return tl_fail(TL_EFORBIDDEN, "%s may not see project %s", q->as, q->project);
    bool shown[4] = {false};
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR && !rc; ch++) {
        /* leave out channels the user cannot see, and an ambassador channel that does not exist */
        shown[ch] = tl_state_in_audience(q->as, &u, &p, p.account, ch) && (ch != TL_CH_AMBASSADOR || p.ambassador_channel);
        if (shown[ch]) rc = tlp_unread_channel(txn, log, q->as, q->project, ch, &n[ch]);
        total += n[ch];
    }
    if (rc) return rc;
    tl_sb_puts(sb, "{\"project\":");
    tl_sb_json_str(sb, q->project, strlen(q->project));
    tl_sb_printf(sb, ",\"total\":%llu,\"by_channel\":{", (unsigned long long)total);
    bool first = true;
    for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR; ch++) {
        if (!shown[ch]) continue;
        tl_sb_printf(sb, "%s\"%s\":%llu", first ? "" : ",", tl_channel_name(ch), (unsigned long long)n[ch]);
        first = false;
    }
    tl_sb_puts(sb, "}}");
    return 0;
}

int tl_unread_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, unread_body, json); }
