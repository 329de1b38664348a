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

#include "command.h"
#include "error.h"
#include "log.h"

int tl_log_append(tl_log *log, const tl_draft *drafts, size_t n, uint64_t *first_seq) {
    if (!log || (!drafts && n)) return tl_fail(TL_EUSAGE, "tl_log_append: a log and its drafts are required");
    if (first_seq) *first_seq = 0;
    if (n == 0) return 0; /* nothing to append: no transaction, no seq */
    for (size_t i = 0; i < n; i++) {
        if (!drafts[i].kind || strncmp(drafts[i].kind, "x.", 2) != 0 || !drafts[i].actor)
            return tl_fail(TL_EINVALID, "raw appends take extension kinds (\"x.*\") with an actor");
        /* ids are checked for their form, as everywhere (SPEC: a bad id anywhere is
         * invalid_input); whether they name an existing user or project is the extension's
         * own business: projections ignore x.* events */
        if (strcmp(drafts[i].actor, "@operator") != 0 && !tl_id_valid(drafts[i].actor))
            return tl_fail(TL_EINVALID, "draft %zu: the actor is not an id (1-64 bytes of A-Z a-z 0-9 . _ : -) nor @operator", i);
        if (drafts[i].project && !tl_id_valid(drafts[i].project))
            return tl_fail(TL_EINVALID, "draft %zu: the project is not an id (1-64 bytes of A-Z a-z 0-9 . _ : -)", i);
    }
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
    if (rc && first_seq) *first_seq = 0; /* nothing was appended */
    return rc;
}

int tl_log_append_records(tl_log *log, const uint8_t *const *records, const size_t *lens, size_t n) {
    if (!log || (n && (!records || !lens))) return tl_fail(TL_EUSAGE, "tl_log_append_records: log, records and lens are required");
    for (size_t i = 0; i < n; i++)
        if (!records[i] && lens[i]) return tl_fail(TL_EUSAGE, "tl_log_append_records: record %zu is NULL", i);
    for (;;) {
        tl_wtxn *w;
        int rc = tl_wtxn_begin_records(log, &w);
        if (rc) return rc;
        /* a replica (TL_OPEN_REPLICA) notes where it began taking records, which come without
         * their content (verify then does not ask those events for it) */
        MDB_val since;
        if (n && (log->flags & TL_OPEN_REPLICA) &&
            tl_get(w->txn, log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, &since) == TL_ENOTFOUND) {
            uint8_t first[8];
            tl_seq_key(first, w->head.seq + 1);
            rc = tl_put(w, log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, first, 8, 0);
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
        bool grow = rc && w->map_full; /* a write met the map's end: grow it, take them again */
        bool erased = w->erased;
        if (rc) tl_wtxn_abort(w);
        if (rc && !grow) return rc;
        if (!grow && (rc = tl_wtxn_commit(w)) != TL_EMAPFULL) {
            /* a content.erased taken from the source deleted this copy's content: clear the
             * file as `erase` does (a failure stays recorded for the next open) */
            if (rc == 0 && erased) {
                uint64_t cleared, held;
                (void)tl_scrub_free_pages(log, &cleared, &held);
            }
            return rc;
        }
        if ((rc = tl_log_grow_map(log)) != 0) return rc;
    }
}

/*
 * A rotation (keyfiles.c): inside its write transaction it settles the key files (a
 * committed rotation's file put in place, files of rotations that never committed removed),
 * writes its new key to a file named by that key, appends key.rotated and commits; then it
 * renames its file over writer.key. Key files are removed only inside the transaction, and
 * the rename moves only this rotation's own file, so no interleaving of rotations (threads
 * or processes) can remove or replace the key the log's head names.
 */
int tl_log_rotate_key(tl_log *log, char new_pubkey_hex[TL_PUBKEY_HEX_SIZE]) {
    if (!log) return tl_fail(TL_EUSAGE, "tl_log_rotate_key: no log");
    if (log->flags & TL_OPEN_READONLY) return tl_fail(TL_EREADONLY, "the log is open read-only");
    if (!log->have_key) return tl_fail(TL_EKEY, "no writer key loaded");
    char *path = tl_path_join(log->dir, TL_KEY_FILE), *path_new = NULL;
    if (!path) return tl_fail(TL_ENOMEM, "out of memory");
    tl_keypair next;
    memset(&next, 0, sizeof next);
    int rc;
    for (;;) {
        tl_wtxn *w;
        if ((rc = tl_wtxn_begin(log, &w)) != 0) break;
        tl_keyfile_settle(log->dir, w->head.pk);
        tl_keypair_generate(&next);
        free(path_new);
        path_new = tl_keyfile_rotation_path(log->dir, next.pk);
        /* the new key is on disk before the log names it, so a crash never strands the log */
        if (!path_new) rc = tl_fail(TL_ENOMEM, "out of memory");
        else rc = tl_keyfile_write(path_new, &next);
        if (rc) { tl_wtxn_abort(w); break; }
        log->next_key = next;
        tl_payload p = {0};
        tl_payload_bin(&p, "public_key", next.pk, TL_PUBKEY_BYTES);
        rc = tl_wtxn_append(w, "@operator", "key.rotated", NULL, &p, NULL);
        if (rc) {
            bool grow = w->map_full; /* the event met the map's end: grow it, rotate again */
            unlink(path_new); /* still inside the transaction */
            tl_keypair_wipe(&log->next_key);
            tl_wtxn_abort(w);
            tl_keypair_wipe(&next);
            if (!grow || (rc = tl_log_grow_map(log)) != 0) break;
            continue;
        }
        w->key_rotated = true;
        memcpy(w->head.pk, next.pk, TL_PUBKEY_BYTES);
        rc = tl_wtxn_commit(w); /* on success it installed the key and wiped next_key */
        if (rc == 0) break;
        /* not committed: this rotation's file is stale and the next transaction's settle
         * removes it; its key leaves log->next_key under write_mu (a rotation on another
         * thread may be using next_key by now: only ours is wiped) */
        tl_write_lock(log);
        if (memcmp(log->next_key.pk, next.pk, TL_PUBKEY_BYTES) == 0) tl_keypair_wipe(&log->next_key);
        tl_write_unlock(log);
        if (rc != TL_EMAPFULL) break;
        tl_keypair_wipe(&next);
        if ((rc = tl_log_grow_map(log)) != 0) break;
    }
    /* ENOENT: the next write transaction's settle put it in place first (only a transaction
     * after this commit can touch this rotation's file) */
    if (!rc && rename(path_new, path) != 0 && errno != ENOENT)
        rc = tl_fail(TL_EKEY, "rotated, but cannot rename %s (it is picked up on the next open)", path_new);
    if (!rc && new_pubkey_hex) tl_hex(new_pubkey_hex, next.pk, TL_PUBKEY_BYTES);
    tl_keypair_wipe(&next);
    free(path);
    free(path_new);
    return rc;
}
