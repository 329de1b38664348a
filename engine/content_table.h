/*
 * content_table.h — the content database read once, in key order, for a replay
 * (content_table.c says why).
 */
#ifndef TL_CONTENT_TABLE_H
#define TL_CONTENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * the bytes are pointed to where LMDB keeps them (content_table.c says why that is safe), or
 * in the table's arena. */
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
    bool copy;               /* the transaction wrote the database: entries point into the arena */
    uint8_t *arena;          /* the copies; sized once, never moved */
    size_t used, cap;
    size_t copied;           /* keys and bodies copied (tests) */
} tl_content_table;

/**
 * Read txn's content database into t, checking each content against its commitment: every
 * content when all, else short bodies only. written: the transaction has written the content
 * database (its pages may move), so keys and bodies are copied. The transaction must not write
 * the content database while the table is in use (a replay does not). 0: built; 1: not built
 * (empty, larger than max_bytes would hold, out of memory, or a damaged database -- the caller
 * looks each content up instead, and a lookup names the damage); TL_ESTORAGE. t is always safe
 * to free.
 */
int tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, bool written, size_t max_bytes);
/** The entry of a commitment, or NULL (not stored, or not tabled: look it up). t may be NULL. */
const tl_content_entry *tl_content_table_find(const tl_content_table *t, const uint8_t commit[TL_HASH_BYTES]);
void tl_content_table_free(tl_content_table *t);

#endif
