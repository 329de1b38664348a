/*
 * append.c — the public append entry points that are not domain commands: extension events,
 * records taken from another log, and key rotation. Each runs its batch again after growing
 * the map when LMDB reports it full, so callers never see MDB_MAP_FULL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

int tl_log_append(tl_log *log, const tl_draft *drafts, size_t n, uint64_t *first_seq) {
    if (!log || (!drafts && n)) return tl_fail(TL_EUSAGE, "tl_log_append: a log and its drafts are required");
    if (first_seq) *first_seq = 0;
    if (n == 0) return 0; /* nothing to append: no transaction, no seq */
    for (size_t i = 0; i < n; i++)
        if (!drafts[i].kind || strncmp(drafts[i].kind, "x.", 2) != 0 || !drafts[i].actor)
            return tl_fail(TL_EINVALID, "raw appends take extension kinds (\"x.*\") with an actor");
    msgpack_unpacked *objs = calloc(n ? n : 1, sizeof *objs);
    if (!objs) return tl_fail(TL_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        msgpack_unpacked_init(&objs[i]);
        size_t off = 0;
        if (tl_msgpack_check_input(drafts[i].payload_msgpack, drafts[i].payload_len) != 0 ||
            msgpack_unpack_next(&objs[i], (const char *)drafts[i].payload_msgpack, drafts[i].payload_len, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            off != drafts[i].payload_len)
            rc = tl_fail(TL_EINVALID, "draft %zu: payload is not one msgpack value", i);
    }
    for (;;) {
        if (rc) break;
        tl_wtxn *w;
        if ((rc = tl_wtxn_begin(log, &w)) != 0) break;
        if (first_seq) *first_seq = w->head.seq + 1;
        for (size_t i = 0; i < n && !rc; i++)
            rc = tl_wtxn_append_object(w, drafts[i].actor, drafts[i].kind, drafts[i].project, &objs[i].data);
        if (rc) { tl_wtxn_abort(w); break; }
        rc = tl_wtxn_commit(w);
        if (rc != TL_EMAPFULL) break;
        if ((rc = tl_log_grow_map(log)) != 0) break;
    }
    for (size_t i = 0; i < n; i++) msgpack_unpacked_destroy(&objs[i]);
    free(objs);
    return rc;
}

int tl_log_append_records(tl_log *log, const uint8_t *const *records, const size_t *lens, size_t n) {
    if (!log || (n && (!records || !lens))) return tl_fail(TL_EUSAGE, "tl_log_append_records: log, records and lens are required");
    for (;;) {
        tl_wtxn *w;
        int rc = tl_wtxn_begin_records(log, &w);
        if (rc) return rc;
        MDB_val since;
        if (n && tl_get(w->txn, log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, &since) == TL_ENOTFOUND) {
            uint8_t first[8];
            tl_seq_key(first, w->head.seq + 1);
            if (tl_put(w, log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, first, 8, 0)) rc = w->failed;
        }
        for (size_t i = 0; i < n && !rc; i++) {
            rc = tl_wtxn_append_record(w, records[i], lens[i]);
            if (rc) {
                /* tl_fail formats into the buffer tl_errdetail() points at: copy it first */
                char why[256];
                snprintf(why, sizeof why, "%s", tl_errdetail());
                rc = tl_fail(rc, "record %zu: %s", i, why);
            }
        }
        if (rc) { tl_wtxn_abort(w); return rc; }
        rc = tl_wtxn_commit(w);
        if (rc != TL_EMAPFULL) return rc;
        if ((rc = tl_log_grow_map(log)) != 0) return rc;
    }
}

/*
 * The new key's file, found inside the write transaction (LMDB's writer lock: no other
 * process is committing): the key of a rotation that committed but was not renamed yet
 * (its process is between the two, or died there) is put in place; any other is stale (a
 * rotation that never committed) and removed. Outside the transaction this could delete the
 * only copy of the log's current key.
 */
static void settle_new_key_file(const char *path, const char *path_new, const uint8_t head_pk[TL_PUBKEY_BYTES]) {
    tl_keypair k;
    if (tl_keyfile_read(path_new, &k) == 0) {
        bool current = memcmp(k.pk, head_pk, TL_PUBKEY_BYTES) == 0;
        tl_keypair_wipe(&k);
        if (current) {
            (void)rename(path_new, path);
            return;
        }
    }
    unlink(path_new);
}

int tl_log_rotate_key(tl_log *log, char new_pubkey_hex[TL_PUBKEY_HEX_SIZE]) {
    if (!log) return tl_fail(TL_EUSAGE, "tl_log_rotate_key: no log");
    char path[4096], path_new[4096];
    snprintf(path, sizeof path, "%s/%s", log->dir, TL_KEY_FILE);
    snprintf(path_new, sizeof path_new, "%s/%s", log->dir, TL_KEY_FILE_NEW);
    if (!log->have_key) return tl_fail(TL_EKEY, "no writer key loaded");
    tl_keypair next;
    memset(&next, 0, sizeof next);
    bool wrote = false; /* path_new holds this call's uncommitted key */
    int rc;
    for (;;) {
        tl_wtxn *w;
        if ((rc = tl_wtxn_begin(log, &w)) != 0) break;
        settle_new_key_file(path, path_new, w->head.pk);
        /* the new key is on disk before the log names it, so a crash never strands the log */
        tl_keypair_generate(&next);
        if ((rc = tl_keyfile_write(path_new, &next)) != 0) { tl_wtxn_abort(w); tl_keypair_wipe(&next); break; }
        wrote = true;
        log->next_key = next;
        tl_payload p = {0};
        tl_payload_bin(&p, "public_key", next.pk, TL_PUBKEY_BYTES);
        rc = tl_wtxn_append(w, "@operator", "key.rotated", NULL, &p, NULL);
        if (rc) { tl_wtxn_abort(w); break; }
        w->key_rotated = true;
        memcpy(w->head.pk, next.pk, TL_PUBKEY_BYTES);
        rc = tl_wtxn_commit(w);
        if (rc != TL_EMAPFULL) break;
        /* not committed: this key file is stale; the next round makes another */
        unlink(path_new);
        wrote = false;
        tl_keypair_wipe(&log->next_key);
        tl_keypair_wipe(&next);
        if ((rc = tl_log_grow_map(log)) != 0) return rc;
    }
    if (rc) {
        tl_keypair_wipe(&log->next_key);
        /* a commit that failed (it never names this key) leaves it stale; a failed commit's
         * outcome is unknown only after a crash, and then the open settles it from the head */
        if (wrote) unlink(path_new);
    } else if (rename(path_new, path) != 0) {
        /* another rotation's settle_new_key_file may have put it in place already */
        tl_keypair cur;
        bool placed = errno == ENOENT && tl_keyfile_read(path, &cur) == 0 && memcmp(cur.pk, next.pk, TL_PUBKEY_BYTES) == 0;
        if (placed) tl_keypair_wipe(&cur);
        else rc = tl_fail(TL_EKEY, "rotated, but cannot rename %s (it is picked up on the next open)", path_new);
    }
    if (!rc && new_pubkey_hex) tl_hex(new_pubkey_hex, next.pk, TL_PUBKEY_BYTES);
    tl_keypair_wipe(&next);
    return rc;
}
