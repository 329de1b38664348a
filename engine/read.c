/*
 * read.c — reading the log: iterators over a read snapshot, one record, the `log --json`
 * rendering of an event, following new appends, and statistics (warming the map: warm.c).
 *
 * Every walk here is bounded (tl_walk, log.h): on a damaged file LMDB's MDB_NEXT can lead
 * back to keys already seen, and a walk that stops only at MDB_NOTFOUND would never end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

struct tl_iter {
    tl_log *log;
    MDB_txn *txn;
    MDB_cursor *cur;
    uint64_t from;
    bool started;
    tl_walk walk; /* keys must increase, no more of them than the log holds */
    tl_event ev;
};

int tl_iter_open(tl_log *log, uint64_t from, tl_iter **out) {
    if (out) *out = NULL;
    if (!log || !out) return tl_fail(TL_EUSAGE, "tl_iter_open: log and out are required");
    tl_iter *it = calloc(1, sizeof *it);
    if (!it) return tl_fail(TL_ENOMEM, "out of memory");
    it->log = log;
    it->from = from ? from : 1;
    int rc = tl_rtxn_begin(log, &it->txn);
    if (rc) { free(it); return rc; }
    if ((rc = tl_walk_init(&it->walk, it->txn, log->db_log, "log")) != 0) {
        tl_rtxn_end(log, it->txn);
        free(it);
        return rc;
    }
    int mrc = mdb_cursor_open(it->txn, log->db_log, &it->cur);
    if (mrc) { tl_rtxn_end(log, it->txn); free(it); return tl_fail_mdb(mrc, "open cursor"); }
    *out = it;
    return 0;
}

/* Fill a view from a stored record; keys and sequence numbers must agree. */
static int view_from(tl_event *ev, tl_event_view *view, const MDB_val *k, const MDB_val *v) {
    const uint8_t *bytes, *sig;
    size_t len;
    int rc = tl_record_split(v, &bytes, &len, &sig);
    if (rc) return rc;
    if (k->mv_size != 8) return tl_fail(TL_ECORRUPT, "log key of %zu bytes", k->mv_size);
    uint64_t seq = tl_seq_from_key(k->mv_data);
    rc = tl_event_decode(ev, bytes, len);
    if (rc) {
        /* tl_fail formats into the buffer tl_errdetail() points at: copy it first */
        char why[256];
        snprintf(why, sizeof why, "%s", tl_errdetail());
        return tl_fail(rc, "event %llu: %s", (unsigned long long)seq, why);
    }
    if (ev->seq != seq)
        return tl_fail(TL_ECORRUPT, "event stored at %llu says it is %llu", (unsigned long long)seq,
                       (unsigned long long)ev->seq);
    view->seq = ev->seq;
    view->ts = ev->ts;
    view->kind = ev->kind;
    view->actor = ev->actor;
    view->project = ev->has_project ? ev->project : NULL;
    view->bytes = bytes;
    view->len = len;
    view->signature = sig;
    return 0;
}

int tl_iter_next(tl_iter *it, tl_event_view *view) {
    if (!it || !view) return tl_fail(TL_EUSAGE, "tl_iter_next: iterator and view are required");
    MDB_val k, v;
    int mrc;
    if (!it->started) {
        uint8_t key[8];
        tl_seq_key(key, it->from);
        k.mv_size = 8;
        k.mv_data = key;
        mrc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
        it->started = true;
    } else {
        mrc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND) return tl_fail(TL_ENOTFOUND, "no more events in this snapshot"); /* not an earlier failure's words */
    if (mrc) return tl_fail_mdb(mrc, "read log");
    int rc = tl_walk_step(&it->walk, &k);
    if (rc) return rc;
    return view_from(&it->ev, view, &k, &v);
}

void tl_iter_close(tl_iter *it) {
    if (!it) return;
    mdb_cursor_close(it->cur);
    tl_rtxn_end(it->log, it->txn);
    free(it);
}

int tl_event_json(const tl_event_view *view, char **json) {
    if (json) *json = NULL;
    if (!view || !json || (!view->bytes && view->len)) return tl_fail(TL_EUSAGE, "tl_event_json: view and json are required");
    tl_event ev;
    int rc = tl_event_decode(&ev, view->bytes, view->len);
    if (rc) return rc;
    tl_strbuf sb = {0};
    tl_sb_printf(&sb, "{\"seq\":%llu,\"ts\":%llu,\"actor\":", (unsigned long long)ev.seq, (unsigned long long)ev.ts);
    tl_sb_json_str(&sb, ev.actor, strlen(ev.actor));
    tl_sb_puts(&sb, ",\"kind\":");
    tl_sb_json_str(&sb, ev.kind, strlen(ev.kind));
    if (ev.has_project) {
        tl_sb_puts(&sb, ",\"project\":");
        tl_sb_json_str(&sb, ev.project, strlen(ev.project));
    }
    tl_sb_puts(&sb, ",\"payload\":");
    rc = tl_sb_msgpack_json(&sb, ev.payload, ev.payload_len);
    tl_sb_puts(&sb, "}");
    *json = tl_sb_take(&sb);
    if (rc) { free(*json); *json = NULL; return rc; }
    if (!*json) return tl_fail(TL_ENOMEM, "out of memory");
    return 0;
}

int tl_log_record(tl_log *log, uint64_t seq, uint8_t **rec, size_t *len) {
    if (!log || !rec || !len) return tl_fail(TL_EUSAGE, "tl_log_record: log, rec and len are required");
    *rec = NULL;
    *len = 0;
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    uint8_t key[8];
    tl_seq_key(key, seq);
    MDB_val v;
    rc = tl_get(txn, log->db_log, key, 8, &v);
    if (rc == TL_ENOTFOUND) rc = tl_fail(TL_ENOTFOUND, "no event %llu", (unsigned long long)seq);
    if (!rc) {
        *rec = malloc(v.mv_size);
        if (!*rec) rc = tl_fail(TL_ENOMEM, "out of memory");
        else { memcpy(*rec, v.mv_data, v.mv_size); *len = v.mv_size; }
    }
    tl_rtxn_end(log, txn);
    return rc;
}

/*
 * Following: events are copied out of the snapshot in batches and fn is called with the
 * snapshot closed, so a callback that appends (reacting to an event with a command) holds no
 * read transaction: the map may grow under it (a thread's own snapshot would otherwise keep
 * its own write from growing the map, log.c).
 */
#define FOLLOW_BATCH 256
#define FOLLOW_BYTES (4u << 20)

/* *stop is read with an atomic load: a thread that sets it with an atomic store (or a signal
 * handler) and this loop then share it without a data race (a plain volatile read is one). */
static bool stop_requested(volatile int *stop) { return stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0; }

int tl_log_follow(tl_log *log, uint64_t from, unsigned poll_ms, volatile int *stop,
                  tl_follow_fn fn, void *payload) {
    if (!log || !fn) return tl_fail(TL_EUSAGE, "tl_log_follow: log and fn are required");
    uint64_t next = from ? from : 1;
    if (!poll_ms) poll_ms = 100;
    struct timespec pause = {(time_t)(poll_ms / 1000u), (long)(poll_ms % 1000u) * 1000000L};
    uint8_t *buf = NULL;
    size_t cap = 0, off[FOLLOW_BATCH], len[FOLLOW_BATCH];
    uint64_t seqs[FOLLOW_BATCH];
    int rc = 0;
    while (!stop_requested(stop)) {
        tl_iter *it;
        if ((rc = tl_iter_open(log, next, &it)) != 0) break;
        size_t n = 0, used = 0;
        tl_event_view ev;
        int irc = 0;
        while (n < FOLLOW_BATCH && used < FOLLOW_BYTES && (irc = tl_iter_next(it, &ev)) == 0) {
            size_t rl = ev.len + TL_SIGNATURE_BYTES; /* the record: event bytes || signature */
            if (used + rl > cap) {
                size_t ncap = cap ? cap : 65536;
                while (ncap < used + rl) ncap *= 2;
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) { irc = tl_fail(TL_ENOMEM, "out of memory"); break; }
                buf = nb;
                cap = ncap;
            }
            memcpy(buf + used, ev.bytes, rl);
            seqs[n] = ev.seq;
            off[n] = used;
            len[n++] = rl;
            used += rl;
        }
        tl_iter_close(it);
        /* the events copied before a bad record are delivered first */
        for (size_t i = 0; i < n && !rc; i++) {
            uint8_t key[8];
            tl_seq_key(key, seqs[i]);
            MDB_val k = {8, key}, v = {len[i], buf + off[i]};
            tl_event e;
            tl_event_view view;
            if ((rc = view_from(&e, &view, &k, &v)) != 0) break;
            next = view.seq + 1;
            if (fn(&view, payload)) { free(buf); return 0; }
            if (stop_requested(stop)) break;
        }
        if (rc) break;
        if (irc && irc != TL_ENOTFOUND) { rc = irc; break; }
        if (irc == 0) continue; /* a full batch: there may be more at once */
        /* LMDB has no change notification across processes: poll the snapshot */
        nanosleep(&pause, NULL);
    }
    free(buf);
    return rc;
}

/* Sum the value sizes of a whole database, walking it boundedly. */
static int db_value_bytes(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *bytes) {
    tl_walk walk;
    int rc = tl_walk_init(&walk, txn, dbi, name);
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) return tl_fail_mdb(mrc, name);
    MDB_val k, v;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if ((rc = tl_walk_step(&walk, &k)) != 0) break;
        *bytes += v.mv_size;
    }
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND) rc = tl_fail_mdb(mrc, name);
    return rc;
}

int tl_log_stats_get(tl_log *log, tl_log_stats *out) {
    if (!log || !out) return tl_fail(TL_EUSAGE, "tl_log_stats_get: log and out are required");
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    tl_head head;
    rc = tl_head_read(txn, log, &head);
    out->events = head.seq;
    if (!rc) rc = db_value_bytes(txn, log->db_log, "log", &out->log_bytes);
    if (!rc) rc = db_value_bytes(txn, log->db_content, "content", &out->content_bytes);
    MDB_envinfo info;
    mdb_env_info(log->env, &info);
    out->map_bytes = info.me_mapsize;
    out->max_attachment = log->max_attachment;
    tl_rtxn_end(log, txn);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", log->dir, TL_DATA_FILE);
    struct stat st;
    if (stat(path, &st) == 0) out->file_bytes = (uint64_t)st.st_blocks * 512u;
    return rc;
}

static void db_stat_json(tl_strbuf *sb, MDB_txn *txn, MDB_dbi dbi, const char *name, bool *first) {
    MDB_stat st;
    if (mdb_stat(txn, dbi, &st)) return;
    tl_sb_puts(sb, *first ? "" : ",");
    *first = false;
    tl_sb_puts(sb, "{\"name\":");
    tl_sb_json_str(sb, name, strlen(name));
    tl_sb_printf(sb, ",\"entries\":%zu,\"pages\":%zu,\"bytes\":%zu}", st.ms_entries,
                 st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages,
                 (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize);
}

int tl_log_db_stats_json(tl_log *log, char **json) {
    if (json) *json = NULL;
    if (!log || !json) return tl_fail(TL_EUSAGE, "tl_log_db_stats_json: log and json are required");
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    tl_strbuf sb = {0};
    bool first = true;
    tl_sb_puts(&sb, "[");
    db_stat_json(&sb, txn, log->db_log, "log", &first);
    db_stat_json(&sb, txn, log->db_meta, "meta", &first);
    db_stat_json(&sb, txn, log->db_content, "content", &first);
    for (unsigned i = 0; i < log->napplier; i++)
        for (unsigned d = 0; d < log->appliers[i].ndbs; d++)
            db_stat_json(&sb, txn, log->appliers[i].dbs[d], log->appliers[i].db_names[d], &first);
    tl_sb_puts(&sb, "]");
    tl_rtxn_end(log, txn);
    *json = tl_sb_take(&sb);
    return *json ? 0 : tl_fail(TL_ENOMEM, "out of memory");
}

int tl_log_pubkey(tl_log *log, char pubkey_hex[TL_PUBKEY_HEX_SIZE]) {
    if (!log || !pubkey_hex) return tl_fail(TL_EUSAGE, "tl_log_pubkey: log and pubkey_hex are required");
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    tl_head head;
    rc = tl_head_read(txn, log, &head);
    tl_rtxn_end(log, txn);
    if (!rc) tl_hex(pubkey_hex, head.pk, TL_PUBKEY_BYTES);
    return rc;
}
