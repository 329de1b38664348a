/*
 * messages.c — the "messages" projection: each channel's message list as the screen shows
 * it (pinned first, most recently pinned first; then the others oldest first), the counts of
 * messages that are not deleted, and the MESSAGE object every query renders.
 *
 * A message lives in one or two scopes: its project channel ('C' project\0 channel), for
 * chat also its topic ('P' topic\0), for support its account ('S' account\0). Per scope:
 *   L scope seq(8)          -> id          not deleted, not pinned (chronological)
 *   Q scope ~pin_seq(8)     -> seq(8) id   pinned, most recently pinned first
 *   X scope seq(8)          -> id          deleted (only auditors see them, in place)
 *   n scope                 -> count       messages not deleted (topics, new users' unread)
 *   q id\0                  -> pin_seq(8)  where a pinned message sits in Q
 * A page is therefore a range scan: Q, then L (auditors: L and X merged by seq).
 *
 * Writes go through the write-back buffer (overlay.c), like the fan-out projections': a busy
 * channel's count is rewritten once per transaction, not once per message. The buffer is
 * written out before a user.created event's seeds read and scan this database.
 *
 * Bodies are not copied here: a short one is in the message's state record (state.h:
 * body_inline, cleared by its erasure), a longer one is read from the content store by the
 * message's commitment when rendered; an erased one shows as "body":null,"erased":true.
 */
#include <stdlib.h>

#include "proj.h"

static MDB_dbi msg_db(tl_log *log) { return tlp_dbi(log, "messages", 0); }

/* The scopes of message m, written without their tag. */
static int scopes_of(const tl_message_rec *m, tlp_key out[2]) {
    if (!m->project[0]) {
        tlp_key_init(&out[0], 'S');
        tlp_key_str(&out[0], m->account);
        return 1;
    }
    tlp_key_init(&out[0], 'C');
    tlp_key_str(&out[0], m->project);
    tlp_key_u8(&out[0], m->channel);
    if (m->channel != TL_CH_CHAT || !m->topic[0]) return 1;
    tlp_key_init(&out[1], 'P');
    tlp_key_str(&out[1], m->topic);
    return 2;
}

/* tag + scope [+ number] */
static tlp_key scoped(char tag, const tlp_key *scope) {
    tlp_key k;
    tlp_key_init(&k, tag);
    tlp_key_raw(&k, scope->b, scope->n);
    return k;
}

/* A list entry: new keys (a new message's entries, a pin's or a deletion's new place) are
 * known to be absent from the database (tlp_ovl_put_absent). */
static int put_list(tl_wtxn *w, tlp_ovl *o, char tag, const tlp_key *scope, uint64_t order, const void *v, size_t vlen,
                    bool is_new) {
    tlp_key k = scoped(tag, scope);
    tlp_key_u64(&k, order);
    return is_new ? tlp_ovl_put_absent(w, o, &k, v, vlen) : tlp_ovl_put(w, o, &k, v, vlen);
}

static int del_list(tl_wtxn *w, tlp_ovl *o, char tag, const tlp_key *scope, uint64_t order) {
    tlp_key k = scoped(tag, scope);
    tlp_key_u64(&k, order);
    return tlp_ovl_del(w, o, &k);
}

static tlp_key pin_key(const char *id) {
    tlp_key k;
    tlp_key_init(&k, 'q');
    tlp_key_str(&k, id);
    return k;
}

static int apply_message(tl_wtxn *w, tlp_ovl *o, const tl_event *ev, const char *id, bool created) {
    tl_message_rec m;
    int rc = tl_wstate_message(w, id, &m);
    if (rc) return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "event %llu names unknown message %s", (unsigned long long)ev->seq, id) : rc;
    tlp_key sc[2];
    int ns = scopes_of(&m, sc);
    size_t idlen = strlen(id);
    uint8_t pinval[8 + TL_IDBUF];
    tl_seq_key(pinval, m.seq);
    memcpy(pinval + 8, id, idlen);
    tlp_key pk = pin_key(id);
    uint64_t pinned_at = 0;
    if (!created) {
        MDB_val v;
        rc = tlp_ovl_get(w, o, &pk, &v);
        if (rc && rc != TL_ENOTFOUND) return rc;
        if (!rc && v.mv_size != 8) return tl_fail(TL_ECORRUPT, "message pin entry is damaged");
        if (!rc) pinned_at = tl_seq_from_key(v.mv_data);
        rc = 0;
    }

    for (int i = 0; i < ns && !rc; i++) {
        tlp_key n = scoped('n', &sc[i]);
        if (created) {
            rc = put_list(w, o, 'L', &sc[i], m.seq, id, idlen, true);
            if (!rc) rc = tlp_ovl_add_u64(w, o, &n, 1);
        } else if (ev->kid == TL_K_MESSAGE_PINNED) {
            rc = del_list(w, o, 'L', &sc[i], m.seq);
            if (!rc) rc = put_list(w, o, 'Q', &sc[i], ~ev->seq, pinval, 8 + idlen, true);
        } else if (ev->kid == TL_K_MESSAGE_UNPINNED) {
            if (pinned_at) rc = del_list(w, o, 'Q', &sc[i], ~pinned_at);
            if (!rc) rc = put_list(w, o, 'L', &sc[i], m.seq, id, idlen, false);
        } else { /* message.deleted: out of the live lists, into the auditors' one */
            rc = pinned_at ? del_list(w, o, 'Q', &sc[i], ~pinned_at) : del_list(w, o, 'L', &sc[i], m.seq);
            if (!rc) rc = put_list(w, o, 'X', &sc[i], m.seq, id, idlen, true);
            if (!rc) rc = tlp_ovl_add_u64(w, o, &n, -1);
        }
    }
    if (rc || created) return rc;
    if (ev->kid == TL_K_MESSAGE_PINNED) {
        uint8_t v[8];
        tl_seq_key(v, ev->seq);
        return tlp_ovl_put(w, o, &pk, v, sizeof v);
    }
    return tlp_ovl_del(w, o, &pk);
}

static int messages_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    tlp_ovl *o = state;
    char id[TL_IDBUF];
    int rc = tlp_ovl_bound(w, o);
    if (rc) return rc;
    const char *k = ev->kind;
    /* a new user's unread counts and dashboard are seeded by reading (and scanning) this
     * database, after this applier: write the buffer out for them first */
    if (ev->kid == TL_K_USER_CREATED) return tlp_ovl_write_out(w, o);
    if (tlp_created_message(ev, id)) return apply_message(w, o, ev, id, true);
    if (strcmp(k, "message.pinned") && strcmp(k, "message.unpinned") && strcmp(k, "message.deleted")) return 0;
    tlp_ev_cstr(ev, "message", id, sizeof id);
    return apply_message(w, o, ev, id, false);
}

int tlp_messages_register(tl_log *log) { return tlp_register_buffered(log, "messages", messages_apply); }

/* ---------------------------------------------------------------- counts and lists */

static int count(MDB_txn *txn, tl_log *log, const tlp_key *scope, uint64_t *n) {
    tlp_key k = scoped('n', scope);
    return tlp_get_u64(txn, msg_db(log), &k, n);
}

static tlp_key channel_scope(const char *project, int ch) {
    tlp_key s;
    tlp_key_init(&s, 'C');
    tlp_key_str(&s, project);
    tlp_key_u8(&s, (unsigned)ch);
    return s;
}

static tlp_key id_scope(char tag, const char *id) {
    tlp_key s;
    tlp_key_init(&s, tag);
    tlp_key_str(&s, id);
    return s;
}

int tlp_count_channel(MDB_txn *txn, tl_log *log, const char *project, int ch, uint64_t *n) {
    tlp_key s = channel_scope(project, ch);
    return count(txn, log, &s, n);
}

int tlp_count_topic(MDB_txn *txn, tl_log *log, const char *topic, uint64_t *n) {
    tlp_key s = id_scope('P', topic);
    return count(txn, log, &s, n);
}

int tlp_count_support(MDB_txn *txn, tl_log *log, const char *account, uint64_t *n) {
    tlp_key s = id_scope('S', account);
    return count(txn, log, &s, n);
}

static int value_id(const MDB_val *v, size_t skip, char id[TL_IDBUF]) {
    if (v->mv_size <= skip || v->mv_size - skip >= TL_IDBUF) return tl_fail(TL_ECORRUPT, "message list entry is damaged");
    memcpy(id, (const char *)v->mv_data + skip, v->mv_size - skip);
    id[v->mv_size - skip] = 0;
    return 0;
}

int tlp_each_channel_message(MDB_txn *txn, tl_log *log, const char *project, int ch, tlp_msg_fn fn, void *ctx) {
    tlp_key s = channel_scope(project, ch);
    tlp_key pre[2] = {scoped('Q', &s), scoped('L', &s)};
    int rc = 0;
    for (int part = 0; part < 2 && !rc; part++) {
        tlp_merge mg;
        if ((rc = tlp_merge_open(&mg, txn, msg_db(log), &pre[part], 1, NULL, 0)) != 0) break;
        const uint8_t *suf;
        size_t slen;
        MDB_val v;
        while (!rc && (rc = tlp_merge_next(&mg, &suf, &slen, &v, NULL)) == 0) {
            char id[TL_IDBUF];
            uint64_t seq = part == 0 ? (v.mv_size > 8 ? tl_seq_from_key(v.mv_data) : 0) : tl_seq_from_key(suf);
            rc = value_id(&v, part == 0 ? 8 : 0, id);
            if (!rc) rc = fn(id, seq, ctx);
        }
        if (rc == TL_ENOTFOUND) rc = 0;
        tlp_merge_close(&mg);
    }
    return rc;
}

/* ---------------------------------------------------------------- rendering */

int tlp_body_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const tl_message_rec *m) {
    if (m->body_inline && m->body_size <= TL_BODY_INLINE_MAX) { /* a short body: its record's copy */
        tl_sb_puts(sb, "\"body\":");
        tl_sb_json_str(sb, m->body, m->body_size);
        return 0;
    }
    const uint8_t *body;
    size_t len;
    int rc = tl_content_get(txn, log, m->body_commit, &body, &len);
    if (rc == TL_ENOTFOUND) { tl_sb_puts(sb, "\"body\":null,\"erased\":true"); return 0; }
    if (rc) return rc;
    tl_sb_puts(sb, "\"body\":");
    tl_sb_json_str(sb, (const char *)body, len);
    return 0;
}

int tlp_attachments_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const tl_message_rec *m) {
    tl_sb_puts(sb, "[");
    for (unsigned i = 0; i < m->nattach && i < TL_ATTACH_MAX; i++) {
        tl_attachment_rec a;
        int rc = tl_state_attachment(txn, log, m->attachments[i], &a);
        if (rc) return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "unknown attachment %s", m->attachments[i]) : rc;
        if (i) tl_sb_puts(sb, ",");
        tl_sb_puts(sb, "{\"id\":");
        tlp_json_str_or_null(sb, m->attachments[i]);
        tl_sb_puts(sb, ",\"name\":");
        tl_sb_json_str(sb, a.name, strlen(a.name));
        tl_sb_printf(sb, ",\"size\":%llu,\"mime\":", (unsigned long long)a.size);
        const char *mime = a.mime[0] ? a.mime : "application/octet-stream";
        tl_sb_json_str(sb, mime, strlen(mime));
        /* erased content appears as erased (SPEC §3): the bytes are gone from the content
         * store, the name and size stay, as the event that uploaded them does. A lookup of
         * the key only: the bytes (up to the attachment limit) are neither read nor hashed. */
        rc = tl_content_exists(txn, log, a.data_commit);
        if (rc == TL_ENOTFOUND) tl_sb_puts(sb, ",\"erased\":true");
        else if (rc) return rc;
        tl_sb_puts(sb, "}");
    }
    tl_sb_puts(sb, "]");
    return 0;
}

int tlp_message_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const char *id, const tl_message_rec *m,
                     const char *viewer, const tl_user_rec *u, const bool *known_unread) {
    bool auditor = u->role == TL_ROLE_AUDITOR;
    bool unread = known_unread ? *known_unread
                               : !auditor && !m->deleted && strcmp(m->author, viewer) != 0 &&
                                     !tl_state_has_read(txn, log, viewer, id);
    const char *ch = tl_channel_name(m->channel);
    tl_sb_puts(sb, "{\"id\":");
    tl_sb_json_str(sb, id, strlen(id));
    tl_sb_puts(sb, ",\"project\":");
    tlp_json_str_or_null(sb, m->project);
    tl_sb_puts(sb, ",\"channel\":");
    tlp_json_str_or_null(sb, ch);
    tl_sb_puts(sb, ",\"topic\":");
    tlp_json_str_or_null(sb, m->channel == TL_CH_CHAT ? m->topic : NULL);
    tl_sb_puts(sb, ",\"author\":");
    tlp_json_str_or_null(sb, m->author);
    tl_sb_puts(sb, ",");
    int rc = 0;
    if (m->deleted && !auditor) tl_sb_puts(sb, "\"body\":null"); /* never reached by lists; a guard */
    else rc = tlp_body_json(sb, txn, log, m);
    if (rc) return rc;
    tl_sb_puts(sb, ",\"ts\":");
    tl_sb_u64(sb, m->ts);
    tl_sb_puts(sb, ",\"parent\":");
    tlp_json_str_or_null(sb, m->parent);
    tl_sb_puts(sb, ",\"replies\":");
    tl_sb_u64(sb, m->replies);
    tl_sb_puts(sb, m->pinned && !m->deleted ? ",\"pinned\":true" : ",\"pinned\":false");
    tl_sb_puts(sb, unread ? ",\"unread\":true" : ",\"unread\":false");
    /* always there, so a list that holds deleted messages (an auditor's) reads the same way
     * for each of its items */
    tl_sb_puts(sb, m->deleted ? ",\"deleted\":true" : ",\"deleted\":false");
    tl_sb_puts(sb, ",\"attachments\":");
    rc = tlp_attachments_json(sb, txn, log, m);
    tl_sb_puts(sb, "}");
    return rc;
}

/* ---------------------------------------------------------------- queries */

/* The shape of a list request, checked before any lookup (invalid_input comes first). */
static int scope_shape(const tl_query *q, int *ch) {
    *ch = q->channel ? tl_channel_parse(q->channel) : 0;
    if (!q->channel) return tl_fail(TL_EINVALID, "messages needs a channel (--channel notes|chat|ambassador|support)");
    if (!*ch) return tl_fail(TL_EINVALID, "unknown channel \"%.40s\"", q->channel);
    if (q->topic && *ch != TL_CH_CHAT) return tl_fail(TL_EINVALID, "topics exist in the chat channel only");
    if (*ch == TL_CH_SUPPORT && q->project)
        return tl_fail(TL_EINVALID, "the support conversation belongs to an account, not a project");
    if (*ch == TL_CH_SUPPORT && !q->account) return tl_fail(TL_EINVALID, "the support conversation needs --account A");
    if (*ch != TL_CH_SUPPORT && !q->project) return tl_fail(TL_EINVALID, "this channel needs a project (--project P)");
    if (*ch != TL_CH_SUPPORT && q->account) /* refused, never ignored (as "account" on a project message) */
        return tl_fail(TL_EINVALID, "--account names a support conversation; the %s channel belongs to a project", q->channel);
    return 0;
}

/* Which list to show: the lookups and refusals in the spec's precedence order. */
static int resolve_scope(MDB_txn *txn, tl_log *log, const tl_query *q, const tl_user_rec *u, int ch, tlp_key *scope) {
    if (ch == TL_CH_SUPPORT) {
        tl_account_rec a;
        int rc = tl_state_account(txn, log, q->account, &a);
        if (rc == TL_ENOTFOUND) return tl_fail(TL_ENOTFOUND, "unknown account %.80s", q->account);
        if (rc) return rc;
        if (!tl_state_in_audience(q->as, u, NULL, q->account, TL_CH_SUPPORT))
            return tl_fail(TL_EFORBIDDEN, "%s may not read the support conversation of %s", q->as, q->account);
        *scope = id_scope('S', q->account);
        return 0;
    }
    tl_project_rec p;
    int rc = tlp_query_project(txn, log, q->project, &p);
    if (rc) return rc;
    if (q->topic) {
        tl_topic_rec t;
        rc = tl_state_topic(txn, log, q->topic, &t);
        if (rc == TL_ENOTFOUND) return tl_fail(TL_ENOTFOUND, "unknown topic %.80s", q->topic);
        if (rc) return rc;
        if (strcmp(t.project, q->project) != 0)
            return tl_fail(TL_EINVALID, "topic %s belongs to another project", q->topic);
    }
    if (!tl_state_sees_project(q->as, u, &p) || !tl_state_in_audience(q->as, u, &p, p.account, ch))
        return tl_fail(TL_EFORBIDDEN, "%s may not read the %s channel of %s", q->as, q->channel, q->project);
    if (ch == TL_CH_AMBASSADOR && !p.ambassador_channel)
        return tl_fail(TL_ECHANNEL, "project %s has no ambassador channel", q->project);
    *scope = q->topic ? id_scope('P', q->topic) : channel_scope(q->project, ch);
    return 0;
}

static int messages_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    tlp_key scope;
    int ch;
    int rc = scope_shape(q, &ch);
    if (rc) return rc;
    /* cursor: section (0 pinned, 1 the rest) and the 8-byte order of the last message. A
     * malformed cursor is invalid input, which comes before not_found and forbidden (SPEC
     * "When several rules are broken"), so it is checked before the viewer and the scope. */
    uint8_t cur[9];
    size_t clen = 0;
    if (q->cursor && ((rc = tlp_cursor_decode(q, 'm', cur, sizeof cur, &clen)) != 0 || clen != 9 || cur[0] > 1))
        return rc ? rc : tl_fail(TL_EINVALID, "malformed cursor");
    if (!rc) rc = tlp_viewer(txn, log, q, &u);
    if (!rc) rc = resolve_scope(txn, log, q, &u, ch, &scope);
    if (rc) return rc;
    unsigned limit = tlp_limit(q, TLP_PAGE_DEFAULT), shown = 0;
    bool auditor = u.role == TL_ROLE_AUDITOR, more = false;
    uint8_t last[9];
    MDB_cursor *sc; /* the state database: each message's record, then its read mark */
    if ((rc = tl_state_cursor(txn, log, &sc)) != 0) return rc;
    tl_sb_puts(sb, "{\"messages\":[");
    for (int section = clen ? cur[0] : 0; section < 2 && !rc && !more; section++) {
        tlp_key pre[2] = {scoped(section ? 'L' : 'Q', &scope), scoped('X', &scope)};
        bool resume = clen && cur[0] == section;
        tlp_merge mg;
        rc = tlp_merge_open(&mg, txn, msg_db(log), pre, section && auditor ? 2 : 1, resume ? cur + 1 : NULL, 8);
        const uint8_t *suf;
        size_t slen;
        MDB_val v;
        while (!rc && (rc = tlp_merge_next(&mg, &suf, &slen, &v, NULL)) == 0) {
            if (shown == limit) { more = true; break; }
            char id[TL_IDBUF];
            tl_message_rec m;
            last[0] = (uint8_t)section;
            memcpy(last + 1, suf, 8);
            if ((rc = value_id(&v, section ? 0 : 8, id)) != 0) break;
            if ((rc = tl_state_message_at(sc, id, &m)) != 0) break;
            bool unread = !auditor && !m.deleted && strcmp(m.author, q->as) != 0 && !tl_state_has_read_at(sc, q->as, id);
            if (shown++) tl_sb_puts(sb, ",");
            rc = tlp_message_json(sb, txn, log, id, &m, q->as, &u, &unread);
        }
        if (rc == TL_ENOTFOUND) rc = 0;
        tlp_merge_close(&mg);
    }
    mdb_cursor_close(sc);
    if (rc) return rc;
    tl_sb_puts(sb, "],");
    tlp_cursor_json(sb, q, 'm', more ? last : NULL, 9);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_messages_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, messages_body, json); }

typedef struct topics_ctx {
    MDB_txn *txn;
    tl_log *log;
    const char *viewer;
    tl_strbuf *sb;
    unsigned n;
} topics_ctx;

static int topic_row(const char *id, void *ctxp) {
    topics_ctx *c = ctxp;
    tl_topic_rec t;
    tl_bytes title;
    uint64_t ts, msgs, unread;
    int rc = tl_state_topic(c->txn, c->log, id, &t);
    if (!rc) rc = tlp_topic_info(c->txn, c->log, id, &title, &ts);
    if (!rc) rc = tlp_count_topic(c->txn, c->log, id, &msgs);
    if (!rc) rc = tlp_unread_topic(c->txn, c->log, c->viewer, id, &unread);
    if (rc) return rc;
    tl_sb_puts(c->sb, c->n++ ? ",{\"id\":" : "{\"id\":");
    tl_sb_json_str(c->sb, id, strlen(id));
    tl_sb_puts(c->sb, ",\"title\":");
    tl_sb_json_str(c->sb, (const char *)title.ptr, title.len);
    tl_sb_puts(c->sb, ",\"author\":");
    tl_sb_json_str(c->sb, t.author, strlen(t.author));
    tl_sb_printf(c->sb, ",\"ts\":%llu,\"messages\":%llu,\"unread\":%llu}", (unsigned long long)ts,
                 (unsigned long long)msgs, (unsigned long long)unread);
    return 0;
}

static int topics_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    tl_project_rec p;
    if (!q->project) return tl_fail(TL_EINVALID, "topics needs a project (--project P)");
    int rc = tlp_viewer(txn, log, q, &u);
    if (!rc) rc = tlp_query_project(txn, log, q->project, &p);
    if (rc) return rc;
    if (!tl_state_sees_project(q->as, &u, &p) || !tl_state_in_audience(q->as, &u, &p, p.account, TL_CH_CHAT))
        return tl_fail(TL_EFORBIDDEN, "%s may not read the chat of %s", q->as, q->project);
    topics_ctx c = {txn, log, q->as, sb, 0};
    tl_sb_puts(sb, "{\"topics\":[");
    rc = tlp_each_topic(txn, log, q->project, topic_row, &c);
    tl_sb_puts(sb, "]}");
    return rc;
}

int tl_topics_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, topics_body, json); }
