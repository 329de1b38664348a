/*
 * history.c — the "history" projection: each project's timeline, oldest first, as each
 * user may see it.
 *
 *   h project\0 class(1) seq(8) -> ""
 * One stream per visibility class — 0 project level (created, status changes), then the
 * notes, chat and ambassador channels — so that a viewer's page is a merge of the streams
 * they may see (tlp_merge): O(log n + page) for staff however many notes the project has.
 * The class of an event is the one state.c recorded for it (its per-class newest entry), so
 * the timeline and the "version" of tracking/expect cannot disagree on what is an entry:
 * every event of the project except reads, unread marks and uploads; topic.created is chat;
 * pins, deletions and erasures belong to their message's channel; the erasure of an
 * attachment no message carries is a notes-class entry (members and auditors, state.c).
 *
 * An entry's value holds, for the three kinds that create an ordinary message (message.sent,
 * message.replied, note.added), the kind (1, 2, 3), the message's id and a copy of its state
 * record: everything such an entry shows (its ts and actor too, the message's ts and author)
 * is in that record, so the page neither looks the message up in the state (one descent of
 * a tree of every message and read mark, ~60% of a page's time before) nor reads the event.
 * The copy follows the record: the message's deletion and the erasure of its body (which
 * clears a short body's copy) write it again. Other entries have an empty value and are
 * rendered from the log.
 *
 * Entries are rendered from the log itself (the event at that seq) and the current state:
 * a message shows "deleted" (true or false) and a deleted one its body only to auditors; erased content
 * shows "body":null,"erased":true. Entry shapes (beyond "seq","ts","actor","kind"):
 *   project.created         "type","title","status","ambassador", and for the ambassador
 *                           channel's audience "ambassador_message":{"id","author","body"[,"erased"],
 *                           "deleted","attachments"}
 *   project.status_changed  "status","previous"
 *   topic.created, message.sent, message.replied, note.added
 *                           "channel","topic","message","parent","author","body"[,"erased"],
 *                           "deleted","attachments"; topic.created adds "title"
 *   message.pinned / unpinned / deleted   "channel","topic","message"
 *   content.erased          "channel","topic","message","target","target_kind","reason"
 *                           (channel, topic and message null for an attachment no message
 *                           carries)
 * A cursor is the hex of the last entry's seq.
 */
#include "proj.h"
#include "zeropack.h"

static MDB_dbi hist_db(tl_log *log) { return tlp_dbi(log, "history", 0); }

static tlp_key stream_prefix(const char *project, int cls) {
    tlp_key k;
    tlp_key_init(&k, 'h');
    tlp_key_str(&k, project);
    tlp_key_u8(&k, (unsigned)cls);
    return k;
}

/* The kinds whose entries are rendered from a copy of the message's record (see the top): 1..3. */
static const char *const message_kinds[] = {NULL, "message.sent", "message.replied", "note.added"};

static int message_kind_code(const char *kind) {
    for (int c = 1; c <= 3; c++)
        if (!strcmp(kind, message_kinds[c])) return c;
    return 0;
}

/* The largest entry value: kind, id length, id, the packed record. */
#define ENTRY_MAX (2 + TL_IDBUF + TL_ZEROPACK_BOUND(sizeof(tl_message_rec)))

/*
 * An entry's value for message m (kind code, id): the record as a history page shows it.
 * What no entry shows is cleared, so that the copy changes only with what it shows: the
 * retry fingerprint, the replies and the pin (a page shows neither), and a short body's
 * commitment (a page reads the copy of the body instead; once an erasure clears the copy,
 * the record has its commitment again).
 */
static size_t entry_value(uint8_t *v, int code, const char *id, const tl_message_rec *m) {
    tl_message_rec shown = *m;
    memset(shown.request, 0, sizeof shown.request);
    shown.replies = 0;
    shown.pinned = false;
    shown.pin_seq = 0;
    if (shown.body_inline) memset(shown.body_commit, 0, sizeof shown.body_commit);
    size_t idlen = strlen(id);
    v[0] = (uint8_t)code;
    v[1] = (uint8_t)idlen;
    memcpy(v + 2, id, idlen);
    return 2 + idlen + tl_zeropack(v + 2 + idlen, (const uint8_t *)&shown, sizeof shown);
}

/*
 * A deletion or an erasure of message id changes what its entry shows: the entry is written
 * again from the record the state applier has just changed. Messages created otherwise (a
 * topic's first message, the ambassador message) have entries rendered from the log, and
 * nothing to rewrite.
 */
static int refresh_entry(tl_wtxn *w, const char *id) {
    tl_message_rec m;
    int rc = tl_wstate_message(w, id, &m);
    if (rc) return rc == TL_ENOTFOUND ? 0 : rc;
    if (!m.project[0]) return 0; /* support: no history */
    tlp_key k = stream_prefix(m.project, m.channel);
    tlp_key_u64(&k, m.seq);
    MDB_val old;
    rc = tl_get(w->txn, hist_db(w->log), k.b, k.n, &old);
    if (rc) return rc == TL_ENOTFOUND ? 0 : rc;
    int code = old.mv_size ? *(const uint8_t *)old.mv_data : 0;
    if (code < 1 || code > 3) return 0; /* an entry rendered from the log */
    uint8_t v[ENTRY_MAX];
    size_t n = entry_value(v, code, id, &m);
    return tl_put(w, hist_db(w->log), k.b, k.n, v, n, 0);
}

static int history_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    (void)state;
    if (!ev->has_project || !strncmp(ev->kind, "x.", 2)) return 0;
    tl_project_rec p;
    int rc = tl_wstate_project(w, ev->project, &p);
    if (rc) return rc == TL_ENOTFOUND ? 0 : rc;
    int cls = tlp_event_class(&p, ev->seq);
    if (cls < 0) return 0;
    char id[TL_IDBUF];
    if (ev->kid == TL_K_MESSAGE_DELETED) {
        tlp_ev_cstr(ev, "message", id, sizeof id);
        if ((rc = refresh_entry(w, id)) != 0) return rc;
    } else if (ev->kid == TL_K_CONTENT_ERASED) {
        char kind[16];
        tlp_ev_cstr(ev, "target_kind", kind, sizeof kind);
        tlp_ev_cstr(ev, "target", id, sizeof id);
        if (!strcmp(kind, "message") && (rc = refresh_entry(w, id)) != 0) return rc;
    }
    tlp_key k = stream_prefix(ev->project, cls);
    tlp_key_u64(&k, ev->seq);
    uint8_t v[ENTRY_MAX];
    size_t n = 0;
    int code = message_kind_code(ev->kind);
    if (code) {
        tlp_ev_cstr(ev, "id", id, sizeof id);
        tl_message_rec m;
        rc = id[0] ? tl_wstate_message(w, id, &m) : TL_ENOTFOUND;
        if (rc && rc != TL_ENOTFOUND) return rc;
        if (!rc && m.seq == ev->seq) n = entry_value(v, code, id, &m);
    }
    return tl_put(w, hist_db(w->log), k.b, k.n, v, n, 0);
}

int tlp_history_register(tl_log *log) { return tlp_register(log, "history", history_apply); }

/* ---------------------------------------------------------------- rendering */

typedef struct viewer {
    const char *id;
    const tl_user_rec *u;
    const tl_project_rec *p;
} viewer;

/* ,"name": (names are ours: no escaping needed) */
static void field_name(tl_strbuf *sb, const char *name) {
    tl_sb_puts(sb, ",\"");
    tl_sb_puts(sb, name);
    tl_sb_puts(sb, "\":");
}

static void str_field(tl_strbuf *sb, const char *name, const char *value) {
    field_name(sb, name);
    tlp_json_str_or_null(sb, value);
}

static void payload_str(tl_strbuf *sb, const tl_event *ev, const char *name) {
    tl_bytes b;
    field_name(sb, name);
    if (tl_ev_str(ev, name, &b) == 0) tl_sb_json_str(sb, (const char *)b.ptr, b.len);
    else tl_sb_puts(sb, "null");
}

/* "author","body","attachments" and the deleted/erased marks of a message. A deleted
 * message's content is the auditors' alone: for everyone else its body is null and its
 * attachments (whose bytes only auditors may fetch) are not listed; erased content shows as
 * erased to every viewer, deleted or not. */
static int message_content(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const viewer *v, const tl_message_rec *m) {
    str_field(sb, "author", m->author);
    tl_sb_puts(sb, ",");
    int rc = 0;
    bool hidden = m->deleted && v->u->role != TL_ROLE_AUDITOR;
    if (hidden) {
        tl_sb_puts(sb, "\"body\":null");
        /* an erasure clears a short body's copy in the record too: the content store tells */
        rc = m->body_inline ? 0 : tl_content_exists(txn, log, m->body_commit);
        if (rc == TL_ENOTFOUND) tl_sb_puts(sb, ",\"erased\":true");
        if (rc == TL_ENOTFOUND) rc = 0;
    } else {
        rc = tlp_body_json(sb, txn, log, m);
    }
    tl_sb_puts(sb, m->deleted ? ",\"deleted\":true" : ",\"deleted\":false");
    tl_sb_puts(sb, ",\"attachments\":");
    if (!rc && hidden) tl_sb_puts(sb, "[]");
    else if (!rc) rc = tlp_attachments_json(sb, txn, log, m);
    return rc;
}

static void message_place(tl_strbuf *sb, const char *id, const tl_message_rec *m) {
    str_field(sb, "channel", tl_channel_name(m->channel));
    str_field(sb, "topic", m->channel == TL_CH_CHAT ? m->topic : NULL);
    str_field(sb, "message", id);
}

static int entry_body(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const viewer *v, const tl_event *ev) {
    char id[TL_IDBUF];
    tl_message_rec m;
    int rc;
    if (ev->kid == TL_K_PROJECT_CREATED) {
        payload_str(sb, ev, "type");
        payload_str(sb, ev, "title");
        payload_str(sb, ev, "status");
        payload_str(sb, ev, "ambassador");
        tlp_ev_cstr(ev, "ambassador_message_id", id, sizeof id);
        /* the ambassador message only for the ambassador channel's audience */
        if (!id[0] || !tl_state_in_audience(v->id, v->u, v->p, v->p->account, TL_CH_AMBASSADOR)) return 0;
        if ((rc = tl_state_message(txn, log, id, &m)) != 0) return rc;
        tl_sb_puts(sb, ",\"ambassador_message\":{\"id\":");
        tl_sb_json_str(sb, id, strlen(id));
        rc = message_content(sb, txn, log, v, &m);
        tl_sb_puts(sb, "}");
        return rc;
    }
    if (ev->kid == TL_K_PROJECT_STATUS_CHANGED) {
        payload_str(sb, ev, "status");
        payload_str(sb, ev, "previous");
        return 0;
    }
    if (tlp_created_message(ev, id)) {
        if ((rc = tl_state_message(txn, log, id, &m)) != 0) return rc;
        message_place(sb, id, &m);
        str_field(sb, "parent", m.parent);
        if (ev->kid == TL_K_TOPIC_CREATED) payload_str(sb, ev, "title");
        return message_content(sb, txn, log, v, &m);
    }
    if (ev->kid == TL_K_CONTENT_ERASED) {
        char kind[16];
        tlp_ev_cstr(ev, "target", id, sizeof id);
        tlp_ev_cstr(ev, "target_kind", kind, sizeof kind);
        bool placed = false;
        if (!strcmp(kind, "attachment")) {
            tl_attachment_rec a;
            /* placed only when carried at the time of the erasure: an erased attachment put on a
             * message later does not move the entry (its class was decided then, state.c) */
            if (tl_state_attachment(txn, log, id, &a) == 0 && a.used_by[0] &&
                tl_state_message(txn, log, a.used_by, &m) == 0 && m.seq < ev->seq) {
                message_place(sb, a.used_by, &m);
                placed = true;
            }
        } else if (tl_state_message(txn, log, id, &m) == 0) {
            message_place(sb, id, &m);
            placed = true;
        }
        if (!placed) { /* an attachment no message carries (yet): no channel, no message */
            str_field(sb, "channel", NULL);
            str_field(sb, "topic", NULL);
            str_field(sb, "message", NULL);
        }
        payload_str(sb, ev, "target");
        payload_str(sb, ev, "target_kind");
        payload_str(sb, ev, "reason");
        return 0;
    }
    /* message.pinned, message.unpinned, message.deleted */
    tlp_ev_cstr(ev, "message", id, sizeof id);
    if ((rc = tl_state_message(txn, log, id, &m)) != 0) return rc;
    message_place(sb, id, &m);
    return 0;
}

/* An entry that holds a copy of its message's record (see the top): rendered from that copy,
 * the same bytes as entry_json renders from the event and the state. */
static int message_entry_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const viewer *v, uint64_t seq,
                              const MDB_val *val) {
    const uint8_t *b = val->mv_data;
    char id[TL_IDBUF];
    tl_message_rec m;
    if (val->mv_size < 3 || b[0] < 1 || b[0] > 3 || b[1] == 0 || b[1] >= TL_IDBUF || val->mv_size < 2u + b[1] ||
        tl_zerounpack((uint8_t *)&m, sizeof m, b + 2 + b[1], val->mv_size - 2 - b[1]))
        return tl_fail(TL_ECORRUPT, "history entry %llu is damaged (replay rebuilds it)", (unsigned long long)seq);
    memcpy(id, b + 2, b[1]);
    id[b[1]] = 0;
    if (m.seq != seq) return tl_fail(TL_ECORRUPT, "history entry %llu holds message %s, created at %llu", (unsigned long long)seq, id, (unsigned long long)m.seq);
    /* strings from the copy are used as C strings: each field must end inside itself */
    if (!memchr(m.author, 0, sizeof m.author) || !memchr(m.topic, 0, sizeof m.topic) || !memchr(m.parent, 0, sizeof m.parent) ||
        m.nattach > TL_ATTACH_MAX)
        return tl_fail(TL_ECORRUPT, "history entry %llu is damaged (replay rebuilds it)", (unsigned long long)seq);
    for (unsigned i = 0; i < m.nattach; i++)
        if (!memchr(m.attachments[i], 0, sizeof m.attachments[i]))
            return tl_fail(TL_ECORRUPT, "history entry %llu is damaged (replay rebuilds it)", (unsigned long long)seq);
    tl_sb_puts(sb, "{\"seq\":");
    tl_sb_u64(sb, seq);
    tl_sb_puts(sb, ",\"ts\":");
    tl_sb_u64(sb, m.ts);
    str_field(sb, "actor", m.author);
    str_field(sb, "kind", message_kinds[b[0]]);
    message_place(sb, id, &m);
    str_field(sb, "parent", m.parent);
    int rc = message_content(sb, txn, log, v, &m);
    tl_sb_puts(sb, "}");
    return rc;
}

static int entry_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const viewer *v, uint64_t seq) {
    uint8_t key[8];
    tl_seq_key(key, seq);
    MDB_val rec;
    const uint8_t *bytes, *sig;
    size_t len;
    tl_event ev;
    int rc = tl_get(txn, log->db_log, key, 8, &rec);
    if (rc == TL_ENOTFOUND) return tl_fail(TL_ECORRUPT, "history names event %llu, which the log lacks", (unsigned long long)seq);
    if (!rc) rc = tl_record_split(&rec, &bytes, &len, &sig);
    if (!rc) rc = tl_event_decode(&ev, bytes, len);
    if (rc) return rc;
    tl_sb_puts(sb, "{\"seq\":");
    tl_sb_u64(sb, ev.seq);
    tl_sb_puts(sb, ",\"ts\":");
    tl_sb_u64(sb, ev.ts);
    str_field(sb, "actor", ev.actor);
    str_field(sb, "kind", ev.kind);
    rc = entry_body(sb, txn, log, v, &ev);
    tl_sb_puts(sb, "}");
    return rc;
}

static int history_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    tl_project_rec p;
    uint8_t cur[8];
    size_t clen = 0;
    int rc = 0;
    if (!q->project) return tl_fail(TL_EINVALID, "history needs a project (--project P)");
    if (q->cursor && ((rc = tlp_cursor_decode(q, 'h', cur, sizeof cur, &clen)) != 0 || clen != 8))
        return rc ? rc : tl_fail(TL_EINVALID, "malformed cursor");
    if (!rc) rc = tlp_viewer(txn, log, q, &u);
    if (!rc) rc = tlp_query_project(txn, log, q->project, &p);
    if (rc) return rc;
    if (!tl_state_sees_project(q->as, &u, &p))
        return tl_fail(TL_EFORBIDDEN, "%s may not see project %s", q->as, q->project);
    tlp_key pre[4];
    int npre = 0;
    for (int cls = 0; cls < 4; cls++)
        if (cls == 0 || tl_state_in_audience(q->as, &u, &p, p.account, cls)) pre[npre++] = stream_prefix(q->project, cls);
    tlp_merge mg;
    if ((rc = tlp_merge_open(&mg, txn, hist_db(log), pre, npre, clen ? cur : NULL, 8)) != 0) return rc;
    viewer v = {q->as, &u, &p};
    unsigned limit = tlp_limit(q, TLP_PAGE_DEFAULT), shown = 0;
    uint8_t last[8];
    bool more = false;
    const uint8_t *suf;
    size_t slen;
    tl_sb_puts(sb, "{\"entries\":[");
    MDB_val val;
    while ((rc = tlp_merge_next(&mg, &suf, &slen, &val, NULL)) == 0) {
        if (shown == limit) { more = true; break; }
        if (slen != 8) { rc = tl_fail(TL_ECORRUPT, "history key is damaged"); break; }
        memcpy(last, suf, 8);
        if (shown++) tl_sb_puts(sb, ",");
        uint64_t seq = tl_seq_from_key(last);
        rc = val.mv_size ? message_entry_json(sb, txn, log, &v, seq, &val) : entry_json(sb, txn, log, &v, seq);
        if (rc) break;
    }
    tlp_merge_close(&mg);
    if (rc && rc != TL_ENOTFOUND) return rc;
    tl_sb_puts(sb, "],");
    tlp_cursor_json(sb, q, 'h', more ? last : NULL, 8);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_history_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, history_body, json); }
