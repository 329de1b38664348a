/*
 * freelist.c — a sanity check of LMDB's free-page list (its database 0), which LMDB trusts.
 *
 * Why: a damaged entry that names a page still in use makes the next write transaction take
 * that page and overwrite live data. A review found it: one bit flipped in the free list
 * passed `verify`, and the next `apply` answered ok and left events 33–44 unreadable. So
 * `verify` checks the list, and a log opened for writing refuses to write over a damaged one.
 *
 * What can be checked from outside LMDB: each record is a transaction id and an ID list (a
 * count, then that many page numbers in descending order: LMDB's midl.h, and
 * mdb_freelist_save, whose reserved records may hold room beyond the count), every page past
 * the two meta pages and no further than the file's last page, no page listed twice. A damaged
 * page number that stays in order and in range passes: only a walk of every tree's pages
 * could tell, which LMDB's API does not offer. `mdb_copy -c` rebuilds a file from its trees,
 * leaving the old free list behind.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

static int cmp_pgno(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Walk every record of the list, checking each as above; the pages of records of transactions
 * before `before` go into *pages (the caller frees it), the others are counted in *others.
 * 0, TL_ECORRUPT (damage: why and the record's transaction in *why, *bad_txnid), or an
 * LMDB/memory failure.
 */
static int walk(MDB_txn *txn, MDB_env *env, size_t before, size_t **pages_out, size_t *n_out, size_t *others,
                const char **why_out, size_t *bad_txnid) {
    MDB_envinfo info;
    *pages_out = NULL;
    *n_out = 0;
    *others = 0;
    *why_out = NULL;
    if (mdb_env_info(env, &info) != 0) return tl_fail(TL_ESTORAGE, "cannot inspect the data file");
    size_t last_pgno = info.me_last_pgno;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, 0, &cur); /* database 0: the free list (as mdb_stat -f reads it) */
    if (rc) return tl_fail_mdb(rc, "open the free-page list");
    size_t *pages = NULL, n = 0, cap = 0, txnid = 0;
    const char *why = NULL;
    MDB_val k, v;
    int mrc;
    while (!why && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const size_t word = sizeof(size_t);
        if (k.mv_size != word || v.mv_size < word || v.mv_size % word != 0) { why = "a record of the wrong size"; break; }
        memcpy(&txnid, k.mv_data, word);
        size_t count;
        memcpy(&count, v.mv_data, word);
        /* at most the record's room: LMDB reserves records before it fills them, and a record
         * reserved beyond what the list needed keeps a count of 0 (or fewer pages than its
         * room) with unwritten words after them, which are not pages */
        if (count > v.mv_size / word - 1) { why = "a page count larger than its record"; break; }
        bool keep = txnid < before;
        if (keep && n + count > cap) {
            size_t ncap = (n + count) * 2;
            size_t *p = realloc(pages, ncap * sizeof *p);
            if (!p) {
                free(pages);
                mdb_cursor_close(cur);
                return tl_fail(TL_ENOMEM, "out of memory (free-page list)");
            }
            pages = p;
            cap = ncap;
        }
        const unsigned char *ids = (const unsigned char *)v.mv_data + word;
        size_t prev = (size_t)-1;
        for (size_t i = 0; i < count; i++) {
            size_t pg;
            memcpy(&pg, ids + i * word, word);
            if (pg < 2 || pg > last_pgno) { why = "a page outside the file"; break; }
            if (pg >= prev) { why = "pages out of order"; break; }
            prev = pg;
            if (keep) pages[n++] = pg;
            else (*others)++;
        }
    }
    mdb_cursor_close(cur);
    if (!why && mrc != MDB_NOTFOUND) {
        free(pages);
        return tl_fail_mdb(mrc, "read the free-page list");
    }
    if (!why && n > 1) {
        qsort(pages, n, sizeof *pages, cmp_pgno);
        for (size_t i = 1; i < n && !why; i++)
            if (pages[i] == pages[i - 1]) why = "a page listed twice";
    }
    if (why) {
        free(pages);
        *why_out = why;
        *bad_txnid = txnid;
        return TL_ECORRUPT;
    }
    *pages_out = pages;
    *n_out = n;
    return 0;
}

static int damaged(const char *why, size_t txnid) {
    return tl_fail(TL_ECORRUPT,
                   "the data file's free-page list is damaged (%s, near the record of transaction %zu): a write "
                   "would overwrite pages in use, so none is made. Rebuild the file from its trees "
                   "(`mdb_copy -c DIR NEWDIR`), then verify the copy",
                   why, txnid);
}

int tl_freelist_check(MDB_txn *txn, MDB_env *env) {
    size_t *pages, n, others, bad_txnid = 0;
    const char *why;
    int rc = walk(txn, env, (size_t)-1, &pages, &n, &others, &why, &bad_txnid);
    if (rc == TL_ECORRUPT && why) return damaged(why, bad_txnid);
    if (rc) return rc;
    free(pages);
    return 0;
}

int tl_freelist_reclaimable(MDB_txn *txn, MDB_env *env, size_t before, size_t **pages, size_t *n, size_t *held) {
    size_t bad_txnid = 0;
    const char *why;
    int rc = walk(txn, env, before, pages, n, held, &why, &bad_txnid);
    if (rc == TL_ECORRUPT && why) return damaged(why, bad_txnid);
    return rc;
}
