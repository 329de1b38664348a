/*
 * content_table.h — the content database read once, in key order, for a replay
 * (content_table.c says why).
 */
#ifndef TL_CONTENT_TABLE_H
#define TL_CONTENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

/* The longest body the table copies: the state's short bodies (state.h, TL_BODY_INLINE_MAX). */
#define TL_CONTENT_TABLE_BODY_MAX 192

enum {
    TL_CONTENT_ABSENT = 0, /* an empty slot */
    TL_CONTENT_BODY,       /* stored, matches its commitment, bytes held (a short body) */
    TL_CONTENT_STORED,     /* stored, matches its commitment, longer: bytes not held */
    TL_CONTENT_DAMAGED,    /* stored, but does not match its commitment */
};

/* 24 bytes, so that the table of a million contents is small to fault in: the commitment and
 * the bytes are pointed to in the table's arena, or where LMDB keeps them (content_table.c
 * says when that is safe). */
typedef struct tl_content_entry {
    const uint8_t *commit; /* NULL: an empty slot */
    const uint8_t *bytes;  /* TL_CONTENT_BODY: the content */
    uint32_t len;          /* the content's length (without its salt) */
    uint16_t tag;          /* commit's bytes 8-9, so that a probe rarely follows a pointer in vain */
    uint8_t state;
} tl_content_entry;

typedef struct tl_content_table {
    tl_content_entry *slots; /* open addressing, a power of two, at most half full */
    size_t nslot, n;
    bool copy;               /* entries point into the arena (else into LMDB's map) */
    uint8_t *arena;          /* the copies; sized once, never moved */
    size_t used, cap;
    size_t copied;           /* keys and bodies copied (tests) */
} tl_content_table;

/**
 * Read txn's content database into t, checking each content against its commitment: every
 * content when all, else short bodies only. copy: keys and bodies are copied into the table's
 * arena, else pointed to in LMDB's map (only when the transaction has not written the content
 * database: the pages it wrote may move; a replay always copies, content_table.c says why).
 * The transaction must not write
 * the content database while the table is in use (a replay does not). 0: built; 1: not built
 * (empty, larger than max_bytes would hold, out of memory, or a damaged database -- the caller
 * looks each content up instead, and a lookup names the damage); TL_ESTORAGE. t is always safe
 * to free.
 */
int tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, bool copy, size_t max_bytes);
/** The entry of a commitment, or NULL (not stored, or not tabled: look it up). t may be NULL. */
const tl_content_entry *tl_content_table_find(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]);
void tl_content_table_free(tl_content_table *t);

/*
 * Prefetching, for a caller that knows which commitments it will look up a few events ahead
 * (a replay's chunk): each lookup is two dependent misses -- the slot, then the commitment
 * and bytes it points at, on a random page of LMDB's map -- ~9% of an unverified replay's
 * time without them (perf, 2026-11-28). Stage 1 brings the commitment's first slot in; stage
 * 2, some events later, reads that slot (in the caches by then) and brings in what it points
 * at. Neither changes anything or may fault: a slot is read only when the table has slots,
 * and a prefetch of any address is harmless.
 */
static inline void tl_content_table_prefetch_slot(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]) {
    if (!t || !t->nslot) return;
    uint64_t h;
    memcpy(&h, commit, sizeof h);
    __builtin_prefetch(&t->slots[(size_t)h & (t->nslot - 1)]);
}

static inline void tl_content_table_prefetch_entry(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]) {
    if (!t || !t->nslot) return;
    uint64_t h;
    memcpy(&h, commit, sizeof h);
    const tl_content_entry *e = &t->slots[(size_t)h & (t->nslot - 1)];
    if (e->commit) __builtin_prefetch(e->commit);
    if (e->bytes) __builtin_prefetch(e->bytes);
}

#endif
