/*
 * state_apply.c — the domain state applier: each event's effect on the records and indexes
 * state.c stores (the key layout is described at the top of state.c), in the same write
 * transaction as the append, and again by replay.
 */
#include <stdlib.h>
#include <string.h>

#include "content_table.h"
#include "error.h"
#include "state.h"
#include "state_store.h"

static void copy_str(char *dst, size_t cap, const tl_event *ev, const char *key) {
    tl_bytes b;
    dst[0] = 0;
    if (tl_ev_str(ev, key, &b) == 0 && b.len < cap) tl_bytes_cstr(&b, dst, cap);
}

static void copy_request(uint8_t out[TL_HASH_BYTES], const tl_event *ev) {
    tl_bytes b;
    memset(out, 0, TL_HASH_BYTES);
    if (tl_ev_bin(ev, "request", &b) == 0 && b.len == TL_HASH_BYTES) memcpy(out, b.ptr, TL_HASH_BYTES);
}

/* Mark each listed attachment as used by message `id`. */
static int use_attachments(tl_wtxn *w, MDB_dbi db, const tl_event *ev, tl_message_rec *m, const char *id) {
    tl_bytes list, item;
    size_t n = 0, pos = 0;
    if (tl_ev_list(ev, "attachments", &list, &n) != 0) return 0;
    for (size_t i = 0; i < n && i < TL_ATTACH_MAX; i++) {
        if (tl_ev_list_next(&list, &pos, &item) || tl_bytes_cstr(&item, m->attachments[i], TL_IDBUF))
            return tl_fail(TL_ECORRUPT, "attachments list is malformed");
        tl_attachment_rec a;
        int rc = tl_srec_get(w->txn, w->log, 'f', m->attachments[i], &a, sizeof a);
        if (rc) return rc;
        tl_copy_cstr(a.used_by, sizeof a.used_by, id);
        if ((rc = tl_srec_put(w, db, 'f', m->attachments[i], &a, sizeof a)) != 0) return rc;
        m->nattach++;
    }
    return 0;
}

/* A short body into its record (state.h: body_inline). The content is read as queries read
 * it, checked against its commitment. Content missing (erased before a replay) is no copy;
 * so is content that fails the check (a damaged file): the replay goes on, and a page showing
 * the message reports it as before, from the content database. */
_Static_assert(TL_BODY_INLINE_MAX <= TL_CONTENT_TABLE_BODY_MAX, "a replay's content table copies every short body");

static int copy_short_body(tl_wtxn *w, tl_message_rec *m) {
    if (m->body_size > TL_BODY_INLINE_MAX) return 0;
    const uint8_t *body;
    size_t len;
    const tl_content_entry *e = tl_content_table_find(w->contents, m->body_commit); /* a replay's, checked */
    if (e) {
        if (e->state != TL_CONTENT_BODY || e->len != m->body_size) return 0; /* damaged: as below */
        memcpy(m->body, e->bytes, e->len);
        m->body_inline = true;
        return 0;
    }
    int rc = tl_content_get(w->txn, w->log, m->body_commit, &body, &len);
    if (rc == TL_ENOTFOUND || rc == TL_ECORRUPT || (!rc && len != m->body_size)) return 0;
    if (rc) return rc;
    memcpy(m->body, body, len);
    m->body_inline = true;
    return 0;
}

/* content.erased of a message: the copy of its body goes with the content. */
static int erase_short_body(tl_wtxn *w, MDB_dbi db, const tl_event *ev) {
    char id[TL_IDBUF], kind[16];
    copy_str(id, sizeof id, ev, "target");
    copy_str(kind, sizeof kind, ev, "target_kind");
    if (strcmp(kind, "message") != 0) return 0;
    tl_message_rec m;
    int rc = tl_srec_wget(w, 'm', id, &m, sizeof m);
    if (rc) return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "event %llu erases unknown message %s", (unsigned long long)ev->seq, id) : rc;
    if (!m.body_inline) return 0;
    m.body_inline = false;
    memset(m.body, 0, sizeof m.body);
    return tl_srec_put(w, db, 'm', id, &m, sizeof m);
}

/* message.sent, message.replied, note.added, topic.created, and the ambassador message */
static int add_message(tl_wtxn *w, MDB_dbi db, const tl_event *ev, const char *id, int channel, const char *author) {
    tl_message_rec m;
    memset(&m, 0, sizeof m);
    tl_copy_cstr(m.author, sizeof m.author, author);
    m.channel = (uint8_t)channel;
    m.seq = ev->seq;
    m.ts = ev->ts;
    copy_request(m.request, ev);
    if (ev->has_project) {
        tl_project_rec p;
        int rc = tl_srec_wget(w, 'p', ev->project, &p, sizeof p);
        if (rc) return rc;
        tl_copy_cstr(m.project, sizeof m.project, ev->project);
        tl_copy_cstr(m.account, sizeof m.account, p.account);
    } else {
        copy_str(m.account, sizeof m.account, ev, "account");
    }
    tl_bytes b;
    if (tl_ev_bin(ev, "body_commit", &b) == 0 && b.len == TL_HASH_BYTES) memcpy(m.body_commit, b.ptr, TL_HASH_BYTES);
    uint64_t size = 0;
    tl_ev_uint(ev, "body_size", &size);
    m.body_size = (uint32_t)size;
    int rc = copy_short_body(w, &m);
    if (rc) return rc;
    if (ev->kid == TL_K_MESSAGE_REPLIED) {
        copy_str(m.parent, sizeof m.parent, ev, "parent");
        tl_message_rec parent;
        if ((rc = tl_srec_wget(w, 'm', m.parent, &parent, sizeof parent)) != 0) return rc;
        /* replies stay in their parent's channel and topic */
        m.channel = parent.channel;
        memcpy(m.topic, parent.topic, sizeof m.topic);
        parent.replies++;
        if ((rc = tl_srec_put(w, db, 'm', m.parent, &parent, sizeof parent)) != 0) return rc;
        if ((rc = tl_smark_put(w, db, 'R', m.parent, id)) != 0) return rc;
    } else if (ev->kid == TL_K_TOPIC_CREATED) {
        copy_str(m.topic, sizeof m.topic, ev, "id");
    } else {
        copy_str(m.topic, sizeof m.topic, ev, "topic");
    }
    if ((rc = use_attachments(w, db, ev, &m, id)) != 0) return rc;
    return tl_srec_put(w, db, 'm', id, &m, sizeof m);
}

static int apply_user(tl_wtxn *w, MDB_dbi db, const tl_event *ev) {
    tl_user_rec u;
    char id[TL_IDBUF], role[16];
    memset(&u, 0, sizeof u);
    copy_str(id, sizeof id, ev, "id");
    copy_str(role, sizeof role, ev, "role");
    copy_str(u.account, sizeof u.account, ev, "account");
    u.role = (uint8_t)tl_role_parse(role);
    u.seq = ev->seq;
    copy_request(u.request, ev);
    if (!u.role || !id[0]) return tl_fail(TL_ECORRUPT, "event %llu: malformed user", (unsigned long long)ev->seq);
    int rc = tl_srec_put(w, db, 'u', id, &u, sizeof u);
    if (rc) return rc;
    if (u.role == TL_ROLE_MEMBER) return tl_smark_put(w, db, 'M', u.account, id);
    if (u.role == TL_ROLE_STAFF) return tl_smark_put(w, db, 'S', id, NULL);
    if (u.role == TL_ROLE_AUDITOR) return tl_smark_put(w, db, 'X', id, NULL);
    return 0;
}

static int apply_project(tl_wtxn *w, MDB_dbi db, const tl_event *ev) {
    tl_project_rec p;
    char type[16], amb_msg[TL_IDBUF] = {0}; /* copied whole into the record: no stack bytes may reach the digest */
    memset(&p, 0, sizeof p);
    copy_str(p.account, sizeof p.account, ev, "account");
    copy_str(type, sizeof type, ev, "type");
    copy_str(p.status, sizeof p.status, ev, "status");
    copy_str(p.ambassador, sizeof p.ambassador, ev, "ambassador");
    copy_str(amb_msg, sizeof amb_msg, ev, "ambassador_message_id");
    p.type = (uint8_t)tl_ptype_parse(type);
    p.ambassador_channel = amb_msg[0] != 0;
    memcpy(p.ambassador_message, amb_msg, sizeof p.ambassador_message);
    p.seq = ev->seq;
    copy_request(p.request, ev);
    if (!ev->has_project || !p.type) return tl_fail(TL_ECORRUPT, "event %llu: malformed project", (unsigned long long)ev->seq);
    int rc = tl_srec_put(w, db, 'p', ev->project, &p, sizeof p);
    if (!rc && amb_msg[0]) rc = add_message(w, db, ev, amb_msg, TL_CH_AMBASSADOR, p.ambassador);
    return rc;
}

static int update_message(tl_wtxn *w, MDB_dbi db, const tl_event *ev) {
    char id[TL_IDBUF];
    copy_str(id, sizeof id, ev, "message");
    tl_message_rec m;
    int rc = tl_srec_wget(w, 'm', id, &m, sizeof m);
    if (rc) return rc == TL_ENOTFOUND ? tl_fail(TL_ECORRUPT, "event %llu names unknown message %s", (unsigned long long)ev->seq, id) : rc;
    if (ev->kid == TL_K_MESSAGE_READ) return tl_smark_put(w, db, READ_MARK, id, ev->actor);
    if (ev->kid == TL_K_MESSAGE_UNREAD) return tl_smark_del(w, db, READ_MARK, id, ev->actor);
    if (ev->kid == TL_K_MESSAGE_PINNED) { m.pinned = true; m.pin_seq = ev->seq; }
    else if (ev->kid == TL_K_MESSAGE_UNPINNED) m.pinned = false;
    else if (ev->kid == TL_K_MESSAGE_DELETED) {
        m.deleted = true;
        m.pinned = false;
        if (m.parent[0]) {
            tl_message_rec parent;
            if ((rc = tl_srec_wget(w, 'm', m.parent, &parent, sizeof parent)) != 0) return rc;
            if (parent.replies) parent.replies--;
            if ((rc = tl_srec_put(w, db, 'm', m.parent, &parent, sizeof parent)) != 0) return rc;
            if ((rc = tl_smark_del(w, db, 'R', m.parent, id)) != 0) return rc;
        }
    }
    return tl_srec_put(w, db, 'm', id, &m, sizeof m);
}

/*
 * Which visibility class an event of a project belongs to in its history, and whether it
 * counts as activity (SPEC: last_activity kinds). Returns -1 for events that are not
 * history entries (reads, unread marks, uploads) or have no project.
 */
static int history_class(tl_wtxn *w, const tl_event *ev, bool *activity) {
    *activity = false;
    if (!ev->has_project) return -1;
    if (ev->kid == TL_K_PROJECT_CREATED || ev->kid == TL_K_PROJECT_STATUS_CHANGED) { *activity = true; return 0; }
    if (ev->kid == TL_K_TOPIC_CREATED) { *activity = true; return TL_CH_CHAT; }
    if (ev->kid == TL_K_NOTE_ADDED) { *activity = true; return TL_CH_NOTES; }
    char id[TL_IDBUF];
    if (ev->kid == TL_K_MESSAGE_SENT || ev->kid == TL_K_MESSAGE_REPLIED) {
        *activity = true;
        copy_str(id, sizeof id, ev, "id");
    } else if (ev->kid == TL_K_MESSAGE_PINNED || ev->kid == TL_K_MESSAGE_UNPINNED || ev->kid == TL_K_MESSAGE_DELETED) {
        copy_str(id, sizeof id, ev, "message");
    } else if (ev->kid == TL_K_CONTENT_ERASED) {
        char kind[16];
        copy_str(id, sizeof id, ev, "target");
        copy_str(kind, sizeof kind, ev, "target_kind");
        if (!strcmp(kind, "attachment")) {
            tl_attachment_rec a;
            if (tl_srec_get(w->txn, w->log, 'f', id, &a, sizeof a)) return -1;
            /* An attachment no message carries belongs to no channel; its erasure is still
             * an event of the project (SPEC §3: only reads, unread marks and uploads are
             * not entries). It goes to the notes class, i.e. to the account's members and
             * auditors: members are in every channel's audience, so wherever the file was
             * meant to go they could have seen it; staff and the ambassador see only their
             * channel's entries and learn nothing of uploads they never saw. */
            if (!a.used_by[0]) return TL_CH_NOTES;
            memcpy(id, a.used_by, sizeof id);
        }
    } else {
        return -1;
    }
    tl_message_rec m;
    if (tl_srec_wget(w, 'm', id, &m, sizeof m)) return -1;
    return m.channel >= TL_CH_NOTES && m.channel <= TL_CH_AMBASSADOR ? m.channel : -1;
}

static int apply_kind(tl_wtxn *w, const tl_event *ev, MDB_dbi db);

static int state_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    MDB_dbi db = *(const MDB_dbi *)state;
    int rc = apply_kind(w, ev, db);
    if (rc) return rc;
    bool activity;
    int cls = history_class(w, ev, &activity);
    if (cls < 0) return 0;
    tl_project_rec p;
    if ((rc = tl_srec_wget(w, 'p', ev->project, &p, sizeof p)) != 0) return rc;
    p.last_seq[cls] = ev->seq;
    if (activity) p.last_ts[cls] = ev->ts;
    return tl_srec_put(w, db, 'p', ev->project, &p, sizeof p);
}

static int apply_kind(tl_wtxn *w, const tl_event *ev, MDB_dbi db) {
    const char *k = ev->kind;
    char id[TL_IDBUF];
    if (ev->kid == TL_K_ACCOUNT_CREATED) {
        tl_account_rec a = {.seq = ev->seq};
        copy_request(a.request, ev);
        copy_str(id, sizeof id, ev, "id");
        return tl_srec_put(w, db, 'a', id, &a, sizeof a);
    }
    if (ev->kid == TL_K_USER_CREATED) return apply_user(w, db, ev);
    if (ev->kid == TL_K_PROJECT_CREATED) return apply_project(w, db, ev);
    if (ev->kid == TL_K_PROJECT_STATUS_CHANGED) {
        tl_project_rec p;
        int rc = tl_srec_wget(w, 'p', ev->project, &p, sizeof p);
        if (rc) return rc;
        copy_str(p.status, sizeof p.status, ev, "status");
        return tl_srec_put(w, db, 'p', ev->project, &p, sizeof p);
    }
    if (ev->kid == TL_K_TOPIC_CREATED) {
        tl_topic_rec t;
        memset(&t, 0, sizeof t);
        copy_str(id, sizeof id, ev, "id");
        tl_copy_cstr(t.project, sizeof t.project, ev->project);
        tl_copy_cstr(t.author, sizeof t.author, ev->actor);
        copy_str(t.message_id, sizeof t.message_id, ev, "message_id");
        t.seq = ev->seq;
        copy_request(t.request, ev);
        int rc = tl_srec_put(w, db, 't', id, &t, sizeof t);
        return rc ? rc : add_message(w, db, ev, t.message_id, TL_CH_CHAT, ev->actor);
    }
    if (ev->kid == TL_K_MESSAGE_SENT || ev->kid == TL_K_MESSAGE_REPLIED) {
        char ch[16];
        copy_str(id, sizeof id, ev, "id");
        copy_str(ch, sizeof ch, ev, "channel");
        return add_message(w, db, ev, id, tl_channel_parse(ch), ev->actor);
    }
    if (ev->kid == TL_K_NOTE_ADDED) {
        copy_str(id, sizeof id, ev, "id");
        return add_message(w, db, ev, id, TL_CH_NOTES, ev->actor);
    }
    if (strncmp(k, "message.", 8) == 0) return update_message(w, db, ev);
    if (ev->kid == TL_K_ATTACHMENT_UPLOADED) {
        tl_attachment_rec a;
        memset(&a, 0, sizeof a);
        copy_str(id, sizeof id, ev, "id");
        if (ev->has_project) {
            tl_project_rec p;
            int rc = tl_srec_wget(w, 'p', ev->project, &p, sizeof p);
            if (rc) return rc;
            tl_copy_cstr(a.project, sizeof a.project, ev->project);
            tl_copy_cstr(a.account, sizeof a.account, p.account);
        } else {
            copy_str(a.account, sizeof a.account, ev, "account");
        }
        tl_copy_cstr(a.uploader, sizeof a.uploader, ev->actor);
        copy_str(a.name, sizeof a.name, ev, "name");
        copy_str(a.mime, sizeof a.mime, ev, "mime");
        tl_ev_uint(ev, "data_size", &a.size);
        tl_bytes b;
        if (tl_ev_bin(ev, "data_commit", &b) == 0 && b.len == TL_HASH_BYTES) memcpy(a.data_commit, b.ptr, TL_HASH_BYTES);
        a.seq = ev->seq;
        copy_request(a.request, ev);
        return tl_srec_put(w, db, 'f', id, &a, sizeof a);
    }
    if (ev->kid == TL_K_CONTENT_ERASED) return erase_short_body(w, db, ev);
    return 0; /* log.created, key.rotated, extensions: nothing to keep */
}

int tl_state_register(tl_log *log) {
    tl_applier a;
    memset(&a, 0, sizeof a);
    a.name = "state";
    a.apply = state_apply;
    int rc = tl_db_open(log, "state", 0, &a.dbs[0]);
    if (rc) return rc;
    a.db_names[0] = "state";
    a.ndbs = 1;
    a.in_digest = true;
    a.flush = tl_state_cache_flush;
    /* the applier's state (its dbi) must outlive registration: point into the log's copy */
    rc = tl_log_register(log, &a);
    if (rc) return rc;
    tl_applier *reg = &log->appliers[log->napplier - 1];
    reg->state = &reg->dbs[0];
    return 0;
}
