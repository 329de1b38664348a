/*
 * content_audit.c — the content checks of a walk over the log, shared by verify and by
 * `replay --verify` (SPEC §4: both verify content commitments).
 *
 * Content still stored must match its commitment, at once. Content no longer stored is
 * noted with the event that committed to it: only a complete walk knows whether a
 * content.erased event (or a cut erasure recorded in meta, FORMAT.md) accounts for it; a
 * deletion behind the log's back does not. A replica's events from `replica_since` on came
 * without their content and are not asked for it.
 */
#include <stdlib.h>
#include <string.h>

#include "content_table.h"
#include "error.h"
#include "log.h"

static int commit_add(tl_commit_list *l, const uint8_t *commit, uint64_t seq) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->items, cap * sizeof *l->items);
        if (!p) return tl_fail(TL_ENOMEM, "out of memory");
        l->items = p;
        l->cap = cap;
    }
    memcpy(l->items[l->n].commit, commit, TL_HASH_BYTES);
    l->items[l->n++].seq = seq;
    return 0;
}

static int commit_cmp(const void *a, const void *b) {
    return memcmp(((const tl_commit_ref *)a)->commit, ((const tl_commit_ref *)b)->commit, TL_HASH_BYTES);
}

void tl_content_audit_init(tl_content_audit *a, MDB_txn *txn, tl_log *log) {
    memset(a, 0, sizeof *a);
    MDB_val since;
    if (tl_get(txn, log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, &since) == 0 && since.mv_size == 8)
        a->replica_since = tl_seq_from_key(since.mv_data);
}

int tl_content_audit_event(tl_content_audit *a, MDB_txn *txn, tl_log *log, const tl_event *ev) {
    /* an extension's payload is its own (FORMAT.md §9): a field named like a commitment there
     * committed to nothing threadlog stored */
    if (strncmp(ev->kind, "x.", 2) == 0) return 0;
    if (strcmp(ev->kind, "content.erased") == 0) {
        tl_bytes commit;
        if (tl_ev_bin(ev, "commitment", &commit) != 0 || commit.len != TL_HASH_BYTES) return -1;
        return commit_add(&a->erased, commit.ptr, ev->seq) ? TL_ENOMEM : 0;
    }
    /* every payload field "<x>_commit" (32 bytes) comes with "<x>_size" */
    static const char *const fields[][2] = {{"body_commit", "body_size"}, {"data_commit", "data_size"}};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        tl_bytes commit;
        if (tl_ev_bin(ev, fields[f][0], &commit) != 0) continue;
        if (commit.len != TL_HASH_BYTES) return -1;
        uint64_t size = 0;
        if (tl_ev_uint(ev, fields[f][1], &size) != 0) return -1;
        const tl_content_entry *e = tl_content_table_find(a->table, commit.ptr); /* checked when tabled */
        if (e) {
            if (e->state == TL_CONTENT_DAMAGED || e->len != size) return -1;
            a->contents++;
            continue;
        }
        const uint8_t *content;
        size_t len;
        int rc = tl_content_get(txn, log, commit.ptr, &content, &len);
        if (rc == TL_ENOTFOUND) { /* erased, if an erasure names it: the commitment stays */
            if (a->replica_since && ev->seq >= a->replica_since) continue; /* taken without content */
            if (commit_add(&a->missing, commit.ptr, ev->seq)) return TL_ENOMEM;
            continue;
        }
        if (rc || len != size) return -1;
        a->contents++;
    }
    return 0;
}

/* Erasures recorded in meta by the cut that made this log a copy (META_ERASED_PREFIX). */
static int cut_erasures(tl_content_audit *a, MDB_txn *txn, tl_log *log, uint64_t head_seq) {
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, log->db_meta, &cur)) return tl_fail(TL_ESTORAGE, "cannot open a cursor");
    size_t plen = sizeof META_ERASED_PREFIX - 1;
    MDB_val k = {plen, (void *)META_ERASED_PREFIX}, v;
    int rc = 0, mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && !rc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, META_ERASED_PREFIX, plen) != 0) break;
        /* an erasure the cut removed lies beyond this log's head; anything else is not ours */
        if (k.mv_size != plen + TL_HASH_BYTES || v.mv_size != 8 || tl_seq_from_key(v.mv_data) <= head_seq) continue;
        rc = commit_add(&a->erased, (const uint8_t *)k.mv_data + plen, tl_seq_from_key(v.mv_data));
    }
    mdb_cursor_close(cur);
    return rc;
}

int tl_content_audit_finish(tl_content_audit *a, MDB_txn *txn, tl_log *log, uint64_t head_seq, uint64_t *first_bad) {
    *first_bad = 0;
    if (!a->missing.n) return 0;
    int rc = cut_erasures(a, txn, log, head_seq);
    if (rc) return rc;
    if (a->erased.n) qsort(a->erased.items, a->erased.n, sizeof *a->erased.items, commit_cmp);
    for (size_t i = 0; i < a->missing.n; i++)
        if (!a->erased.n ||
            !bsearch(&a->missing.items[i], a->erased.items, a->erased.n, sizeof *a->erased.items, commit_cmp)) {
            *first_bad = a->missing.items[i].seq;
            break;
        }
    return 0;
}

void tl_content_audit_free(tl_content_audit *a) {
    free(a->missing.items);
    free(a->erased.items);
    memset(a, 0, sizeof *a);
}
