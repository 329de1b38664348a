/*
 * wtxn.c — write transactions: beginning one (the process's write mutex, then LMDB's), the
 * projections' puts and deletes, appending events (encode, chain, apply) and records of
 * another log, commit with the batch's signatures, abort; replay's transaction; content.
 *
 * Why signatures are computed at commit: the chain hashes event bytes only, so the events of
 * a batch can be encoded, chained and applied one after another (rules see the effects of
 * earlier commands of the same batch) while the expensive signatures wait until commit,
 * where they are spread over both cores.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "error.h"

#define TL_MAPFULL TL_EMAPFULL

/* ================================================================ writing */

/* need_key: events will be signed here (commands); records from another log bring their own
 * signatures and are checked against the head's key instead. */
/*
 * Another process rotated the key (the head names a key this process does not hold): take
 * the new key from the key file, or from the new key's file when that process has committed
 * the rotation but not yet renamed the file (append.c), as opening the log would. Called
 * holding write_mu, so no writer of this process signs meanwhile.
 */
static int adopt_rotated_key(tl_log *log, const uint8_t head_pk[TL_PUBKEY_BYTES]) {
    tl_keypair k;
    if (tl_keyfile_find(log->dir, head_pk, &k, NULL) != 0)
        return tl_fail(TL_EKEY, "the log's key was rotated by another process and no key file holds the new key; "
                                "reopen the log");
    pthread_mutex_lock(&log->key_mu);
    log->key = k;
    pthread_mutex_unlock(&log->key_mu);
    tl_keypair_wipe(&k);
    return 0;
}

/*
 * The process's write lock and an LMDB write transaction, with LMDB's spare page buffers free
 * of erased bytes: when the file's count of erasures moved since this process last dropped
 * them (META_ERASURES), the environment is reopened first (tl_env_refresh, engine/map.c, says
 * why). On success write_mu is held; on failure nothing is.
 */
static int begin_clean(tl_log *log, MDB_txn **txn, bool *stale) {
    bool skip = false; /* the reopen had to wait for this process's own transactions: later */
    *stale = false;
    tl_corrupt_forget(); /* a damaged page met by an earlier transaction is not this one's */
    for (int refreshes = 0;; refreshes++) {
        tl_write_lock(log);
        int rc = tl_txn_begin(log, 0, txn, true);
        if (rc) {
            tl_write_unlock(log);
            return rc;
        }
        uint64_t n = tl_erasures_read(*txn, log);
        if (n == log->erasures_seen || refreshes == 3) return 0; /* (3: erasing without pause) */
        if (skip) { /* write now; the commit clears what the old buffers may bring back */
            *stale = true;
            return 0;
        }
        mdb_txn_abort(*txn);
        tl_map_shared_end(log);
        *txn = NULL;
        int wait_s = log->erasures_waited == n ? 0 : 1; /* one wait per erasure count, then tries */
        tl_write_unlock(log);
        if ((rc = tl_env_refresh(log, wait_s)) < 0) return rc;
        if (rc > 0) {
            skip = true;
            tl_write_lock(log);
            log->erasures_waited = n;
            tl_write_unlock(log);
            continue;
        }
        tl_write_lock(log);
        log->erasures_seen = n;
        tl_write_unlock(log);
    }
}

static int wtxn_begin(tl_log *log, tl_wtxn **out, bool need_key) {
    *out = NULL;
    if (log->flags & TL_OPEN_READONLY) return tl_fail(TL_EREADONLY, "the log is open read-only");
    if (need_key && !log->have_key)
        return tl_fail(TL_EKEY, log->flags & TL_OPEN_REPLICA ? "a replica takes records only (tl_log_append_records)"
                                                             : "no writer key loaded");
    if (tl_write_held_by_me(log))
        return tl_fail(TL_EUSAGE, "this thread already holds the log's write transaction (an open batch): commit or "
                                  "abort it before writing through another call");
    int lrc = tl_layout_check(log); /* appliers would extend projections of another layout */
    if (lrc) return lrc;
    tl_wtxn *w = calloc(1, sizeof *w);
    if (!w) return tl_fail(TL_ENOMEM, "out of memory");
    w->log = log;
    msgpack_sbuffer_init(&w->buf);
    int rc = begin_clean(log, &w->txn, &w->stale_buffers);
    if (rc) {
        msgpack_sbuffer_destroy(&w->buf);
        free(w);
        return rc;
    }
    rc = tl_head_read(w->txn, log, &w->head);
    if (!rc) rc = tl_head_check(w->txn, log, &w->head); /* nothing is signed on a damaged head's word */
    if (!rc && need_key && memcmp(w->head.pk, log->key.pk, TL_PUBKEY_BYTES) != 0)
        rc = adopt_rotated_key(log, w->head.pk);
    if (rc) {
        if (w->txn) { mdb_txn_abort(w->txn); tl_map_shared_end(log); }
        tl_write_unlock(log);
        msgpack_sbuffer_destroy(&w->buf);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tl_wtxn_begin(tl_log *log, tl_wtxn **out) { return wtxn_begin(log, out, true); }

int tl_wtxn_begin_records(tl_log *log, tl_wtxn **out) { return wtxn_begin(log, out, false); }

/*
 * A failed write of the data file, said so that an operator knows what to do: the errno by
 * name, and whether the disk is full. LMDB reports a write that a full disk cut short as EIO
 * ("short write, filesystem full?"), not ENOSPC, so for EIO the room left on the file system
 * decides which it was. Other codes go through tl_fail_mdb unchanged.
 */
#define DISK_FULL_BELOW (1u << 20) /* less room than this after a failed write: the disk is full */

static int storage_fail(tl_log *log, int rc, const char *what) {
    int code = tl_fail_mdb(rc, what);
    if (code != TL_ESTORAGE || (rc != ENOSPC && rc != EDQUOT && rc != EIO)) return code;
    char why[200];
    snprintf(why, sizeof why, "%s", tl_errdetail());
    struct statvfs vfs;
    bool known = statvfs(log->dir, &vfs) == 0;
    /* root may use the blocks reserved for it, others only the available ones */
    uint64_t room = known ? (uint64_t)(geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * vfs.f_frsize : 0;
    if (rc == EDQUOT)
        return tl_fail(TL_ESTORAGE, "%s: the disk quota is used up; free space, then retry", why);
    if (rc == ENOSPC || (known && room < DISK_FULL_BELOW))
        return tl_fail(TL_ESTORAGE, "%s: the disk is full (%s%llu KiB free for %s); free space, then retry", why,
                       rc == ENOSPC ? "" : "no space left on device, ", (unsigned long long)(room >> 10), log->dir);
    if (known)
        return tl_fail(TL_ESTORAGE, "%s: the write failed with %llu MiB free for %s: the device failed it; check the device",
                       why, (unsigned long long)(room >> 20), log->dir);
    return tl_fail(TL_ESTORAGE, "%s: the write failed; check the disk holding %s", why, log->dir);
}

int tl_wtxn_fail_mdb(tl_wtxn *w, int rc, const char *what) {
    if (rc == MDB_MAP_FULL) {
        w->map_full = true;
        w->failed = TL_MAPFULL;
        tl_fail(TL_ESTORAGE, "%s: the map is full", what);
        return TL_ESTORAGE;
    }
    int code = storage_fail(w->log, rc, what);
    if (!w->failed) w->failed = code;
    return code;
}

bool tl_reserved(const MDB_val *v, size_t size) { return v->mv_data != NULL && v->mv_size == size; }

int tl_put(tl_wtxn *w, MDB_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen, unsigned flags) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
    int rc = mdb_put(w->txn, dbi, &key, &val, flags);
    if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE)) return TL_EEXISTS;
    if (rc) return tl_wtxn_fail_mdb(w, rc, "write");
    return 0;
}

int tl_del(tl_wtxn *w, MDB_dbi dbi, const void *k, size_t klen) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    MDB_val key = {klen, (void *)k};
    int rc = mdb_del(w->txn, dbi, &key, NULL);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return tl_wtxn_fail_mdb(w, rc, "delete");
    return 0;
}

static int pending_push(tl_wtxn *w, const uint8_t *bytes, size_t len, uint64_t seq, const uint8_t *sig) {
    if (w->npending == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        tl_pending *p = realloc(w->pending, cap * sizeof *p);
        if (!p) return w->failed = tl_fail(TL_ENOMEM, "out of memory");
        w->pending = p;
        w->cap = cap;
    }
    tl_pending *p = &w->pending[w->npending];
    memset(p, 0, sizeof *p);
    p->bytes = malloc(len);
    if (!p->bytes) return w->failed = tl_fail(TL_ENOMEM, "out of memory");
    memcpy(p->bytes, bytes, len);
    p->len = len;
    p->seq = seq;
    p->key = w->key_rotated ? &w->log->next_key : &w->log->key;
    if (sig) memcpy(p->sig, sig, TL_SIGNATURE_BYTES);
    w->npending++;
    return 0;
}

/* Chain, decode and apply the event now last in pending. */
static int apply_last(tl_wtxn *w, tl_event *ev_out) {
    tl_pending *p = &w->pending[w->npending - 1];
    tl_event ev;
    int rc = tl_event_decode(&ev, p->bytes, p->len);
    if (rc) return w->failed = rc;
    tl_hash(w->head.hash, p->bytes, p->len);
    w->head.seq = ev.seq;
    w->head.ts = ev.ts;
    for (unsigned i = 0; i < w->log->napplier; i++) {
        const tl_applier *a = &w->log->appliers[i];
        rc = a->apply(w, &ev, a->state);
        if (rc) {
            if (!w->failed) w->failed = rc;
            return rc == TL_MAPFULL ? TL_ESTORAGE : rc;
        }
    }
    if (ev_out) *ev_out = ev;
    return 0;
}

static void envelope_for(tl_wtxn *w, tl_envelope *env, const char *actor, const char *kind, const char *project) {
    memset(env, 0, sizeof *env);
    env->seq = w->head.seq + 1;
    uint64_t now = tl_now_us();
    /* Time strictly increases along the log: when the clock has not moved past the previous
     * event (two events in one microsecond, or the clock stepped back), the event takes the
     * previous time plus 1 µs. So "newest" by time and by sequence number always agree, and
     * an order by time (tracking's last_activity) never meets a tie (docs/DECISIONS.md). */
    env->ts = now > w->head.ts ? now : w->head.ts + 1;
    memcpy(env->prev, w->head.hash, TL_HASH_BYTES);
    env->actor = actor;
    env->kind = kind;
    env->schema = 1;
    env->project = project;
}

int tl_wtxn_append(tl_wtxn *w, const char *actor, const char *kind, const char *project,
                   const tl_payload *payload, tl_event *ev_out) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    tl_envelope env;
    envelope_for(w, &env, actor, kind, project);
    int rc = tl_event_encode(&w->buf, &env, payload);
    if (rc) return w->failed = rc;
    rc = pending_push(w, (const uint8_t *)w->buf.data, w->buf.size, env.seq, NULL);
    if (rc) return rc;
    return apply_last(w, ev_out);
}

int tl_wtxn_append_object(tl_wtxn *w, const char *actor, const char *kind, const char *project,
                          const msgpack_object *payload) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    tl_envelope env;
    envelope_for(w, &env, actor, kind, project);
    int rc = tl_event_encode_object(&w->buf, &env, payload);
    if (rc) return rc; /* a refused payload does not poison the batch: nothing was written */
    rc = pending_push(w, (const uint8_t *)w->buf.data, w->buf.size, env.seq, NULL);
    if (rc) return rc;
    return apply_last(w, NULL);
}

int tl_wtxn_append_record(tl_wtxn *w, const uint8_t *rec, size_t len) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    MDB_val v = {len, (void *)rec};
    const uint8_t *bytes, *sig;
    size_t blen;
    tl_event ev;
    int rc = tl_record_split(&v, &bytes, &blen, &sig);
    if (!rc) rc = tl_event_decode(&ev, bytes, blen);
    if (rc) return rc;
    if (ev.seq != w->head.seq + 1)
        return tl_fail(TL_ECONFLICT, "record %llu does not follow the head %llu", (unsigned long long)ev.seq,
                       (unsigned long long)w->head.seq);
    if (memcmp(ev.prev, w->head.hash, TL_HASH_BYTES) != 0)
        return tl_fail(TL_ECORRUPT, "record %llu does not chain to the head", (unsigned long long)ev.seq);
    if (ev.ts < w->head.ts) return tl_fail(TL_ECORRUPT, "record %llu goes back in time", (unsigned long long)ev.seq);
    if (tl_verify_sig(sig, bytes, blen, w->head.pk) != 0)
        return tl_fail(TL_ECORRUPT, "record %llu is not signed by the current key", (unsigned long long)ev.seq);
    if (ev.kid == TL_K_LOG_CREATED) return tl_fail(TL_ECORRUPT, "a second genesis event");
    rc = pending_push(w, bytes, blen, ev.seq, sig);
    if (rc) return rc;
    tl_pending *p = &w->pending[w->npending - 1];
    p->key = NULL; /* already signed */
    rc = apply_last(w, NULL);
    if (rc) return rc;
    if (ev.kid == TL_K_KEY_ROTATED) {
        tl_bytes pk;
        if (tl_ev_bin(&ev, "public_key", &pk) || pk.len != TL_PUBKEY_BYTES)
            return w->failed = tl_fail(TL_ECORRUPT, "key.rotated without a public key");
        memcpy(w->head.pk, pk.ptr, TL_PUBKEY_BYTES);
    }
    /* An erasure is an obligation for every copy: a log that holds the content (a copy of the
     * directory that became a replica) drops it with the record, as the source did. */
    if (ev.kid == TL_K_CONTENT_ERASED) {
        tl_bytes c;
        if (tl_ev_bin(&ev, "commitment", &c) || c.len != TL_HASH_BYTES)
            return w->failed = tl_fail(TL_ECORRUPT, "content.erased without a commitment");
        uint8_t commit[TL_HASH_BYTES];
        memcpy(commit, c.ptr, TL_HASH_BYTES);
        if ((rc = tl_content_erase(w, commit)) != 0) return rc;
    }
    return 0;
}

typedef struct sign_ctx {
    tl_pending *p;
} sign_ctx;

static void sign_one(size_t i, void *ctx) {
    tl_pending *p = &((sign_ctx *)ctx)->p[i];
    if (p->key) tl_sign(p->sig, p->bytes, p->len, p->key);
}

static void wtxn_free(tl_wtxn *w) {
    tl_rec_cache_free(w->recs);
    for (size_t i = 0; i < w->npending; i++) free(w->pending[i].bytes);
    free(w->pending);
    msgpack_sbuffer_destroy(&w->buf);
    free(w);
}

void tl_wtxn_abort(tl_wtxn *w) {
    if (!w) return;
    for (unsigned i = 0; i < w->log->napplier; i++)
        if (w->log->appliers[i].discard) w->log->appliers[i].discard(w->log->appliers[i].state);
    mdb_txn_abort(w->txn);
    tl_map_shared_end(w->log);
    tl_write_unlock(w->log);
    wtxn_free(w);
}

int tl_wtxn_commit(tl_wtxn *w) {
    tl_log *log = w->log;
    int rc = w->failed;
    /* appliers' buffered writes first: a full map here re-runs the batch like any other */
    for (unsigned i = 0; i < log->napplier && !rc; i++)
        if (log->appliers[i].prepare && log->appliers[i].prepare(w, log->appliers[i].state)) rc = w->failed ? w->failed : TL_ESTORAGE;
    for (unsigned i = 0; i < log->napplier && !rc; i++)
        if (log->appliers[i].flush && log->appliers[i].flush(w, log->appliers[i].state)) rc = w->failed ? w->failed : TL_ESTORAGE;
    if (!rc && w->npending) {
        sign_ctx ctx = {w->pending};
        tl_parallel_for(w->npending, w->npending >= 128 ? log->sign_threads : 1, sign_one, &ctx);
        for (size_t i = 0; i < w->npending && !rc; i++) {
            tl_pending *p = &w->pending[i];
            uint8_t key[8];
            tl_seq_key(key, p->seq);
            MDB_val k = {8, key}, v = {p->len + TL_SIGNATURE_BYTES, NULL};
            int mrc = mdb_put(w->txn, log->db_log, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (!mrc && !tl_reserved(&v, p->len + TL_SIGNATURE_BYTES)) mrc = MDB_CORRUPTED;
            if (mrc) {
                tl_wtxn_fail_mdb(w, mrc, "append record");
                rc = w->failed;
                break;
            }
            memcpy(v.mv_data, p->bytes, p->len);
            memcpy((uint8_t *)v.mv_data + p->len, p->sig, TL_SIGNATURE_BYTES);
        }
        if (!rc) rc = tl_head_write(w) ? w->failed : 0;
        for (unsigned i = 0; i < log->napplier && !rc; i++) {
            char name[80];
            snprintf(name, sizeof name, "applied/%s", log->appliers[i].name);
            uint8_t seq[8];
            tl_seq_key(seq, w->head.seq);
            if (tl_put(w, log->db_meta, name, strlen(name), seq, 8, 0)) rc = w->failed;
        }
    }
    if (rc) {
        tl_wtxn_abort(w);
        return rc;
    }
    int mrc = mdb_txn_commit(w->txn);
    bool rotated = w->key_rotated;
    if (!mrc && rotated) { /* before write_mu is let go: the next writer signs with the new key */
        pthread_mutex_lock(&log->key_mu);
        log->key = log->next_key;
        pthread_mutex_unlock(&log->key_mu);
        tl_keypair_wipe(&log->next_key);
    }
    tl_map_shared_end(log);
    tl_write_unlock(log);
    bool stale = w->stale_buffers;
    wtxn_free(w);
    /* written with buffers that may hold erased bytes (a snapshot of this process kept the
     * environment from being reopened): clear the pages' free space now. The commit stands
     * whatever happens here; a failure leaves it to the next erasure's scrub. */
    if (!mrc && stale) (void)tl_scrub_page_gaps(log);
    if (mrc == MDB_MAP_FULL) {
        tl_fail(TL_ESTORAGE, "commit: the map is full");
        return TL_MAPFULL;
    }
    /* MDB_PANIC here, or a failed meta page write that makes the next begin answer it: the
     * commit is lost (never acknowledged) and the next transaction reopens (env_reopen) */
    if (mrc) return storage_fail(log, mrc, "commit");
    return 0;
}


/* ================================================================ replay */

int tl_wtxn_begin_replay(tl_log *log, tl_wtxn **out) {
    *out = NULL;
    if (log->flags & TL_OPEN_READONLY) return tl_fail(TL_EREADONLY, "replay rewrites projections: open the log writable");
    if (tl_write_held_by_me(log))
        return tl_fail(TL_EUSAGE, "this thread already holds the log's write transaction (an open batch, or a replay "
                                  "whose callback this is): commit or abort it first");
    tl_wtxn *w = calloc(1, sizeof *w);
    if (!w) return tl_fail(TL_ENOMEM, "out of memory");
    w->log = log;
    w->replaying = true;
    msgpack_sbuffer_init(&w->buf);
    int rc = begin_clean(log, &w->txn, &w->stale_buffers);
    if (rc) {
        msgpack_sbuffer_destroy(&w->buf);
        free(w);
        return rc;
    }
    if ((rc = tl_head_read(w->txn, log, &w->head)) != 0) {
        mdb_txn_abort(w->txn);
        tl_map_shared_end(log);
        tl_write_unlock(log);
        msgpack_sbuffer_destroy(&w->buf);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tl_wtxn_reapply(tl_wtxn *w, const tl_event *ev, const uint8_t *hash) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    w->replaying = true;
    w->unhashed = hash ? NULL : ev->bytes;
    w->unhashed_len = hash ? 0 : ev->len;
    if (hash) memcpy(w->head.hash, hash, TL_HASH_BYTES);
    w->head.seq = ev->seq;
    w->head.ts = ev->ts;
    bool genesis = ev->kid == TL_K_LOG_CREATED;
    tl_bytes pk;
    if ((genesis || ev->kid == TL_K_KEY_ROTATED) && tl_ev_bin(ev, "public_key", &pk) == 0 &&
        pk.len == TL_PUBKEY_BYTES)
        memcpy(w->head.pk, pk.ptr, TL_PUBKEY_BYTES);
    if (genesis) return 0;
    int rc = 0;
    for (unsigned i = 0; i < w->log->napplier && !rc; i++) {
        const tl_applier *a = &w->log->appliers[i];
        rc = a->apply(w, ev, a->state);
    }
    if (rc) {
        if (!w->failed) w->failed = rc;
        return rc == TL_MAPFULL ? TL_ESTORAGE : rc;
    }
    return 0;
}

const uint8_t *tl_wtxn_head_hash(tl_wtxn *w) {
    if (w->unhashed) tl_hash(w->head.hash, w->unhashed, w->unhashed_len);
    w->unhashed = NULL;
    return w->head.hash;
}

int tl_wtxn_mark_applied(tl_wtxn *w) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    tl_wtxn_head_hash(w);
    int rc = tl_head_write(w);
    if (!rc) rc = tl_layout_write(w); /* every projection was rebuilt: this build's layout */
    for (unsigned i = 0; i < w->log->napplier && !rc; i++) {
        char name[80];
        uint8_t seq[8];
        snprintf(name, sizeof name, "applied/%s", w->log->appliers[i].name);
        tl_seq_key(seq, w->head.seq);
        rc = tl_put(w, w->log->db_meta, name, strlen(name), seq, 8, 0);
    }
    return rc;
}


/* ================================================================ content */

int tl_content_put(tl_wtxn *w, const void *content, size_t len, uint8_t commit[TL_HASH_BYTES],
                   uint8_t salt_out[TL_SALT_BYTES]) {
    if (w->failed) return w->failed == TL_MAPFULL ? TL_ESTORAGE : w->failed;
    uint8_t salt[TL_SALT_BYTES];
    tl_random(salt, sizeof salt);
    if (salt_out) memcpy(salt_out, salt, TL_SALT_BYTES);
    tl_commit(commit, salt, content, len);
    MDB_val k = {TL_HASH_BYTES, commit}, v = {TL_SALT_BYTES + len, NULL};
    int rc = mdb_put(w->txn, w->log->db_content, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (!rc && !tl_reserved(&v, TL_SALT_BYTES + len)) rc = MDB_CORRUPTED;
    if (rc) return tl_wtxn_fail_mdb(w, rc, "store content");
    memcpy(v.mv_data, salt, TL_SALT_BYTES);
    if (len) memcpy((uint8_t *)v.mv_data + TL_SALT_BYTES, content, len);
    return 0;
}

int tl_content_get(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES],
                   const uint8_t **content, size_t *len) {
    MDB_val v;
    int rc = tl_get(txn, log->db_content, commit, TL_HASH_BYTES, &v);
    if (rc) return rc;
    if (v.mv_size < TL_SALT_BYTES) return tl_fail(TL_ECORRUPT, "content record is damaged");
    uint8_t check[TL_HASH_BYTES];
    tl_commit(check, v.mv_data, (const uint8_t *)v.mv_data + TL_SALT_BYTES, v.mv_size - TL_SALT_BYTES);
    if (memcmp(check, commit, TL_HASH_BYTES) != 0)
        return tl_fail(TL_ECORRUPT, "stored content does not match its commitment");
    *content = (const uint8_t *)v.mv_data + TL_SALT_BYTES;
    *len = v.mv_size - TL_SALT_BYTES;
    return 0;
}

int tl_content_exists(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES]) {
    MDB_val v;
    return tl_get(txn, log->db_content, commit, TL_HASH_BYTES, &v);
}

int tl_content_salt(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES], uint8_t salt[TL_SALT_BYTES]) {
    const uint8_t *content = NULL;
    size_t len;
    int rc = tl_content_get(txn, log, commit, &content, &len);
    if (rc) return rc;
    memcpy(salt, content - TL_SALT_BYTES, TL_SALT_BYTES);
    return 0;
}

/* The content goes, and the file's count of erasures moves: every writer process drops its
 * spare page buffers, which may hold the content's bytes, before its next write (wtxn_begin).
 * The clearing of the file it owes is recorded too (META_SCRUB_OWED). */
int tl_content_erase(tl_wtxn *w, const uint8_t commit[TL_HASH_BYTES]) {
    int rc = tl_del(w, w->log->db_content, commit, TL_HASH_BYTES);
    if (rc) return rc;
    uint8_t n[8], txnid[8];
    tl_seq_key(n, tl_erasures_read(w->txn, w->log) + 1);
    rc = tl_put(w, w->log->db_meta, META_ERASURES, sizeof META_ERASURES - 1, n, 8, 0);
    /* durable with the erasure: a clearing killed before it finished is taken up again */
    tl_seq_key(txnid, mdb_txn_id(w->txn));
    if (!rc) rc = tl_put(w, w->log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1, txnid, 8, 0);
    if (!rc) w->erased = true;
    return rc;
}

