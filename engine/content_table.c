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
 * commitment, and a copy of the bytes when they are a short body's (at most
 * TL_CONTENT_TABLE_BODY_MAX). Copies, not pointers into the map: a page of the replay's
 * transaction may be spilled, its memory reused, before the event that needs it is applied.
 * Its memory is bounded (max_bytes); a content database that would not fit is not tabled,
 * and the replay looks each content up as before. A content the table does not hold (erased,
 * or not tabled) is looked up in the database by the caller, so a table that holds less than
 * it should only costs time.
 */
#include "content_table.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* commitments are BLAKE2b outputs: their first bytes are already uniform */
static size_t slot_of(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]) {
    uint64_t h;
    memcpy(&h, commit, sizeof h);
    return (size_t)h & (t->nslot - 1);
}

static int arena_add(tl_content_table *t, const void *p, size_t n, uint32_t *off) {
    if (t->used + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1u << 20;
        while (cap < t->used + n) cap *= 2;
        uint8_t *a = realloc(t->arena, cap);
        if (!a) return tl_fail(TL_ENOMEM, "out of memory (content table)");
        t->arena = a;
        t->cap = cap;
    }
    if (n) memcpy(t->arena + t->used, p, n);
    *off = (uint32_t)t->used;
    t->used += n;
    return 0;
}

/* One content record (key: commitment; value: salt || content). Keys arrive unique. */
static int add(tl_content_table *t, const MDB_val *k, const MDB_val *v, bool all) {
    if (k->mv_size != TL_HASH_BYTES) return 0; /* not a commitment: the database lookup judges it */
    bool damaged = v->mv_size < TL_SALT_BYTES;
    size_t len = damaged ? 0 : v->mv_size - TL_SALT_BYTES;
    bool body = len <= TL_CONTENT_TABLE_BODY_MAX;
    if (!all && !body) return 0; /* only short bodies are asked for without verification */
    const uint8_t *content = (const uint8_t *)v->mv_data + TL_SALT_BYTES;
    if (!damaged) {
        uint8_t check[TL_HASH_BYTES];
        tl_commit(check, v->mv_data, content, len);
        damaged = memcmp(check, k->mv_data, TL_HASH_BYTES) != 0;
    }
    size_t j = slot_of(t, k->mv_data);
    while (t->slots[j].state != TL_CONTENT_ABSENT) j = (j + 1) & (t->nslot - 1);
    tl_content_entry *e = &t->slots[j];
    memcpy(e->commit, k->mv_data, TL_HASH_BYTES);
    e->len = len;
    e->state = damaged ? TL_CONTENT_DAMAGED : body ? TL_CONTENT_BODY : TL_CONTENT_STORED;
    if (e->state == TL_CONTENT_BODY && arena_add(t, content, len, &e->off)) return TL_ENOMEM;
    t->n++;
    return 0;
}

int tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, size_t max_bytes) {
    memset(t, 0, sizeof *t);
    MDB_stat st;
    int mrc = mdb_stat(txn, log->db_content, &st);
    if (mrc) return tl_fail(TL_ESTORAGE, "content database: %s", mdb_strerror(mrc));
    if (!st.ms_entries) return 1;
    /* a bound before reading: two slots per content, and bytes no more than the leaf pages
     * hold (short bodies live on leaf pages; long content on overflow pages is not copied) */
    size_t nslot = 16;
    while (nslot < 2 * st.ms_entries) nslot *= 2;
    size_t bound = nslot * sizeof(tl_content_entry) + (size_t)st.ms_leaf_pages * st.ms_psize;
    if (bound > max_bytes || st.ms_leaf_pages * (size_t)st.ms_psize >= UINT32_MAX) return 1;
    t->slots = calloc(nslot, sizeof *t->slots);
    if (!t->slots) return 1; /* no memory for it: look each content up instead */
    t->nslot = nslot;
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
    for (size_t j = slot_of(t, commit); t->slots[j].state != TL_CONTENT_ABSENT; j = (j + 1) & (t->nslot - 1))
        if (memcmp(t->slots[j].commit, commit, TL_HASH_BYTES) == 0) return &t->slots[j];
    return NULL;
}

const uint8_t *tl_content_table_bytes(const tl_content_table *t, const tl_content_entry *e) {
    return t->arena ? t->arena + e->off : (const uint8_t *)""; /* no arena: only empty bodies */
}

void tl_content_table_free(tl_content_table *t) {
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof *t);
}
