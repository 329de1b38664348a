/*
 * content_table.c — the content database read once, in key order, for a replay.
 *
 * Why: content is keyed by its commitment, a random 32 bytes, so the events of a log ask for
 * it in random order. A replay asks for every short body (the state copies it into its
 * message's record, state_apply.c) and, verifying, for every stored content (the content
 * audit): one random descent of a large tree each, most of it waiting for a page no earlier
 * lookup brought into the caches -- ~11% of an unverified replay of a million events, and the
 * second largest cost of a verifying one after the signatures. Read in key order instead, the
 * database is one sequential pass over its leaf pages; the replay then finds each content in
 * a hash table in memory. Each content is checked against its commitment once, in the pass.
 *
 * The table holds, per stored content: its commitment, its length, whether it matches its
 * commitment, and its bytes when they are a short body's (at most TL_CONTENT_TABLE_BODY_MAX).
 * Commitments and bytes are copied into the table's arena (copy), or pointed to where LMDB
 * keeps them. Pointing is safe only while the transaction has not written the content
 * database: a page it has not written is a page of LMDB's map, and stays where it is,
 * unchanged, until the transaction ends (LMDB copies a page before changing it, and frees no
 * page a snapshot can see); a page it wrote is LMDB's heap copy, whose memory a spill can
 * reuse (a copy's cut deletes content, replay_copy.c). A replay copies in every case since
 * 2026-11-28: each lookup's commitment lay on a random page of the map, and on this host
 * that miss (a TLB miss on a 4 KiB page of a file mapping) cost ~4 µs, 7-9% of an
 * unverified replay, which no prefetch shortens; the arena is heap memory (huge pages under
 * `threadlog replay`), where the replay's prefetches (content_table.h) do bring an entry in
 * ahead of its lookup. Measured: tl_content_table_find 7.5-9.5% of the replay's samples
 * pointing, 2.2-2.4% copying (perf, 1M events), and the replay's CPU time 6% lower in four
 * alternating pairs. (Pointing had measured 5.6% less CPU time on 2026-11-27, without the
 * prefetches, when the faulting-in of the copies cost more than the misses saved.) Its memory
 * is bounded (max_bytes); a content database that would not fit is not tabled, and the
 * replay looks each content up as before.
 * A content the table does not hold (erased, or not tabled) is looked up in the database by
 * the caller, so a table that holds less than it should only costs time.
 */
#include "content_table.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* commitments are BLAKE2b outputs: their first bytes are already uniform */
static size_t slot_of(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]) { /* as the prefetches (.h) */
    uint64_t h;
    memcpy(&h, commit, sizeof h);
    return (size_t)h & (t->nslot - 1);
}

static uint16_t tag_of(const uint8_t commit[TL_HASH_BYTES]) {
    return (uint16_t)(commit[8] | commit[9] << 8);
}

/* p[0, n) where LMDB keeps it, or (copy) copied into the
 * arena, which build sized for every key and leaf byte once, so it never moves. */
static const uint8_t *hold(tl_content_table *t, const void *p, size_t n) {
    if (!t->copy) return p;
    if (n > t->cap - t->used) return NULL; /* more than the leaf pages held: a damaged count */
    uint8_t *dst = t->arena + t->used;
    if (n) memcpy(dst, p, n);
    t->used += n;
    t->copied++;
    return dst;
}

/* One content record (key: commitment; value: salt || content). Keys arrive unique. */
static int add(tl_content_table *t, const MDB_val *k, const MDB_val *v, bool all) {
    if (k->mv_size != TL_HASH_BYTES) return 0; /* not a commitment: the database lookup judges it */
    bool damaged = v->mv_size < TL_SALT_BYTES || v->mv_size - TL_SALT_BYTES > UINT32_MAX;
    size_t len = damaged ? 0 : v->mv_size - TL_SALT_BYTES;
    bool body = len <= TL_CONTENT_TABLE_BODY_MAX;
    if (!all && !body) return 0; /* only short bodies are asked for without verification */
    const uint8_t *content = (const uint8_t *)v->mv_data + TL_SALT_BYTES;
    if (!damaged) {
        uint8_t check[TL_HASH_BYTES];
        tl_commit(check, v->mv_data, content, len);
        damaged = memcmp(check, k->mv_data, TL_HASH_BYTES) != 0;
    }
    tl_content_entry e = {.len = (uint32_t)len, .tag = tag_of(k->mv_data)};
    e.state = damaged ? TL_CONTENT_DAMAGED : body ? TL_CONTENT_BODY : TL_CONTENT_STORED;
    if (!(e.commit = hold(t, k->mv_data, TL_HASH_BYTES))) return 1;
    if (e.state == TL_CONTENT_BODY && !(e.bytes = hold(t, content, len))) return 1;
    size_t j = slot_of(t, k->mv_data);
    while (t->slots[j].state != TL_CONTENT_ABSENT) j = (j + 1) & (t->nslot - 1);
    t->slots[j] = e;
    t->n++;
    return 0;
}

int tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, bool copy, size_t max_bytes) {
    memset(t, 0, sizeof *t);
    MDB_stat st;
    int mrc = mdb_stat(txn, log->db_content, &st);
    if (mrc) return tl_fail(TL_ESTORAGE, "content database: %s", mdb_strerror(mrc));
    if (!st.ms_entries) return 1;
    /* a bound before reading: two slots per content, and copies no more than the keys and the
     * leaf pages hold (short bodies live on leaf pages; long content on overflow pages is not
     * copied) */
    size_t nslot = 16;
    while (nslot < 2 * st.ms_entries) nslot *= 2;
    size_t copies = copy ? (size_t)st.ms_leaf_pages * st.ms_psize + st.ms_entries * TL_HASH_BYTES : 0;
    if (nslot * sizeof(tl_content_entry) + copies > max_bytes) return 1;
    t->slots = calloc(nslot, sizeof *t->slots);
    t->arena = copies ? malloc(copies) : NULL; /* faulted in only as far as copies fill it */
    if (!t->slots || (copies && !t->arena)) { /* no memory for it: look each content up instead */
        tl_content_table_free(t);
        return 1;
    }
    t->nslot = nslot;
    t->copy = copy;
    t->cap = copies;
    MDB_cursor *cur;
    if ((mrc = mdb_cursor_open(txn, log->db_content, &cur)) != 0) {
        tl_content_table_free(t);
        return tl_fail(TL_ESTORAGE, "content database: %s", mdb_strerror(mrc));
    }
    MDB_val k, v, prev = {0, NULL};
    int rc = 0;
    size_t seen = 0;
    while (!rc && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        /* more entries than the database counts, or keys out of order: its pages are damaged,
         * and what a walk finds need not be what a lookup finds */
        if (++seen > st.ms_entries ||
            (prev.mv_data && (k.mv_size != prev.mv_size || memcmp(k.mv_data, prev.mv_data, k.mv_size) <= 0))) {
            rc = 1;
            break;
        }
        prev = k;
        rc = add(t, &k, &v, all);
    }
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND) rc = 1; /* a damaged page: the lookups will name it */
    if (rc) tl_content_table_free(t);
    return rc == TL_ENOMEM ? 1 : rc;
}

const tl_content_entry *tl_content_table_find(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]) {
    if (!t || !t->nslot) return NULL;
    uint16_t tag = tag_of(commit);
    for (size_t j = slot_of(t, commit); t->slots[j].state != TL_CONTENT_ABSENT; j = (j + 1) & (t->nslot - 1))
        if (t->slots[j].tag == tag && memcmp(t->slots[j].commit, commit, TL_HASH_BYTES) == 0) return &t->slots[j];
    return NULL;
}

void tl_content_table_free(tl_content_table *t) {
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof *t);
}
