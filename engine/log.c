/*
 * log.c — an open log's records, keys and head: sequence keys, splitting a record into its
 * event bytes and signature, bounded walks, reading, checking and writing the head, the count
 * of erasures. Opening and closing a log and its named databases are in open.c; creating one
 * (`init`) in init.c; the map that grows, the map lock, reopening after MDB_PANIC and
 * beginning transactions in map.c; write transactions (appending, commit, replay's
 * transaction, content) in wtxn.c.
 *
 * Layout (docs/FORMAT.md): one environment per directory; the named database "log" maps an
 * 8-byte big-endian sequence number to a record (canonical event bytes followed by the
 * 64-byte ed25519 signature), written with MDB_APPEND; "meta" holds the format version, the
 * head (sequence, hash, time, current key) and each applier's last applied sequence;
 * "content" holds erasable content by commitment. Appliers' own databases live beside them.
 *
 */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#define TL_MAP_INITIAL (1ull << 30)  /* virtual space only: the file grows as pages are used */

/* The first map size. THREADLOG_TEST_MAP_BYTES (a test-only knob, 64 KiB..1 GiB) lowers it
 * so that tests reach map growth without writing a gigabyte. */
size_t tl_map_initial(void) {
    const char *s = getenv("THREADLOG_TEST_MAP_BYTES");
    if (s && *s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*end && v >= 65536 && v <= TL_MAP_INITIAL) return (size_t)((v + 4095) & ~4095ull);
    }
    return TL_MAP_INITIAL;
}

uint64_t tl_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void tl_seq_key(uint8_t key[8], uint64_t seq) {
    for (int i = 7; i >= 0; i--) { key[i] = (uint8_t)seq; seq >>= 8; }
}

uint64_t tl_seq_from_key(const void *key) {
    const uint8_t *k = key;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | k[i];
    return v;
}

int tl_record_split(const MDB_val *v, const uint8_t **bytes, size_t *len, const uint8_t **sig) {
    if (v->mv_size <= TL_SIGNATURE_BYTES || v->mv_size > TL_EVENT_MAX + TL_SIGNATURE_BYTES)
        return tl_fail(TL_ECORRUPT, "record of %zu bytes", v->mv_size);
    *bytes = v->mv_data;
    *len = v->mv_size - TL_SIGNATURE_BYTES;
    *sig = (const uint8_t *)v->mv_data + *len;
    return 0;
}

/* ================================================================ bounded walks */

int tl_walk_init(tl_walk *walk, MDB_txn *txn, MDB_dbi dbi, const char *name) {
    memset(walk, 0, sizeof *walk);
    walk->txn = txn;
    walk->dbi = dbi;
    walk->name = name;
    MDB_stat st;
    int rc = mdb_stat(txn, dbi, &st);
    if (rc) return tl_fail_mdb(rc, name);
    walk->limit = st.ms_entries + 1;
    return 0;
}

int tl_walk_step(tl_walk *walk, const MDB_val *key) {
    if (key->mv_size > sizeof walk->prev)
        return tl_fail(TL_ECORRUPT, "the %s database is damaged: a key of %zu bytes (LMDB's keys have at most %zu)",
                       walk->name, key->mv_size, sizeof walk->prev - 1);
    if (walk->have_prev) {
        MDB_val prev = {walk->prev_len, walk->prev};
        if (mdb_cmp(walk->txn, walk->dbi, key, &prev) <= 0)
            return tl_fail(TL_ECORRUPT, "the %s database is damaged: after %zu keys a key does not follow the one before "
                                        "(a damaged page sends the walk back); run verify",
                           walk->name, walk->seen);
    }
    if (++walk->seen > walk->limit)
        return tl_fail(TL_ECORRUPT, "the %s database is damaged: a walk meets more keys than the %zu it holds; run verify",
                       walk->name, walk->limit - 1);
    memcpy(walk->prev, key->mv_data, key->mv_size);
    walk->prev_len = key->mv_size;
    walk->have_prev = true;
    return 0;
}

/* ================================================================ environment */

bool tl_dir_lock(int fd) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    /* a filesystem without flock (some network ones): go on unlocked, as before locks were
     * taken, rather than refuse to work there; only another holder is a refusal */
    return errno != EWOULDBLOCK;
}

char *tl_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int tl_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, MDB_val *v) {
    MDB_val key = {klen, (void *)k};
    int rc = mdb_get(txn, dbi, &key, v);
    if (rc == MDB_NOTFOUND) return TL_ENOTFOUND;
    if (rc) return tl_fail_mdb(rc, "read");
    return 0;
}

int tl_head_read(MDB_txn *txn, tl_log *log, tl_head *head) {
    MDB_val v;
    int rc = tl_get(txn, log->db_meta, META_HEAD, sizeof META_HEAD - 1, &v);
    if (rc == TL_ENOTFOUND) {
        memset(head, 0, sizeof *head);
        return 0;
    }
    if (rc) return rc;
    if (v.mv_size != 8 + TL_HASH_BYTES + 8 + TL_PUBKEY_BYTES)
        return tl_fail(TL_ECORRUPT, "log head record is damaged");
    const uint8_t *p = v.mv_data;
    head->seq = tl_seq_from_key(p);
    memcpy(head->hash, p + 8, TL_HASH_BYTES);
    head->ts = tl_seq_from_key(p + 8 + TL_HASH_BYTES);
    memcpy(head->pk, p + 16 + TL_HASH_BYTES, TL_PUBKEY_BYTES);
    return 0;
}

/*
 * The head record is not signed (FORMAT.md §2). Before anything is signed on its word — an
 * event chained to it, a checkpoint of it — it must name the last stored record: its
 * sequence, the hash of its event bytes and its time. Otherwise one damaged byte of it would
 * become signed history (an event chained to a hash no event has, dated by a time no event
 * had, numbered after a gap) that verify might no longer even notice. verify and replay make
 * the same checks over the whole log; this one costs a lookup and a hash per transaction.
 */
int tl_head_check(MDB_txn *txn, tl_log *log, const tl_head *head) {
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, log->db_log, &cur);
    if (mrc) return tl_fail_mdb(mrc, "read the log's last record");
    MDB_val k, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND) {
        if (head->seq == 0) return 0;
        return tl_fail(TL_ECORRUPT, "the log's head record names event %llu, but the log holds no event: refused, "
                                    "nothing was written (verify names the damage)", (unsigned long long)head->seq);
    }
    if (mrc) return tl_fail_mdb(mrc, "read the log's last record");
    const uint8_t *bytes = NULL, *sig;
    size_t len = 0;
    uint64_t last = k.mv_size == 8 ? tl_seq_from_key(k.mv_data) : 0;
    const char *why = NULL;
    tl_event ev;
    if (last != head->seq) why = "names another event than the last one";
    else if (tl_record_split(&v, &bytes, &len, &sig) || tl_event_decode(&ev, bytes, len)) why = "names an event that does not decode";
    if (!why) {
        uint8_t hash[TL_HASH_BYTES];
        tl_hash(hash, bytes, len);
        if (memcmp(hash, head->hash, TL_HASH_BYTES) != 0) why = "names another hash than its event's";
        else if (ev.ts != head->ts) why = "names another time than its event's";
    }
    if (!why) return 0;
    return tl_fail(TL_ECORRUPT, "the log's head record %s (event %llu, last record %llu): refused, nothing was written "
                                "(verify names the damage)", why, (unsigned long long)head->seq, (unsigned long long)last);
}

uint64_t tl_erasures_read(MDB_txn *txn, tl_log *log) {
    MDB_val v;
    if (tl_get(txn, log->db_meta, META_ERASURES, sizeof META_ERASURES - 1, &v) != 0 || v.mv_size != 8) return 0;
    return tl_seq_from_key(v.mv_data);
}

int tl_head_write(tl_wtxn *w) {
    uint8_t buf[8 + TL_HASH_BYTES + 8 + TL_PUBKEY_BYTES];
    tl_seq_key(buf, w->head.seq);
    memcpy(buf + 8, w->head.hash, TL_HASH_BYTES);
    tl_seq_key(buf + 8 + TL_HASH_BYTES, w->head.ts);
    memcpy(buf + 16 + TL_HASH_BYTES, w->head.pk, TL_PUBKEY_BYTES);
    return tl_put(w, w->log->db_meta, META_HEAD, sizeof META_HEAD - 1, buf, sizeof buf, 0);
}
