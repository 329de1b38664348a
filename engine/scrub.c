/*
 * scrub.c — clearing the data file's free pages after an erasure, so that erased content does
 * not linger on disk (SPEC §2 "Erasable content": the content and its salt are deleted).
 *
 * Why: LMDB never overwrites a page in place. The erasing transaction writes new pages without
 * the content and frees the old ones, which keep their bytes until a later commit reuses them;
 * `grep` on data.mdb found an erased body right after `erase`, and for a few commits more.
 *
 * Which pages may be cleared: LMDB's free list records each free page under the transaction
 * that freed it. A page freed by transaction T still belongs to the snapshots before T, so it
 * may be cleared only when no reader holds such a snapshot; LMDB itself reuses a page only
 * when T is older than both the oldest reader and the last commit (the previous meta page
 * still points at the snapshot before it). This follows the same rule, under the writer lock
 * (no commit can happen meanwhile; a reader that starts now gets the newest snapshot):
 *
 *   1. a commit that changes nothing (the head rewritten as it is), so that the erasing
 *      transaction is no longer the last one and the pages it freed become reusable;
 *   2. in a write transaction that is then aborted: the oldest snapshot a reader holds
 *      (mdb_reader_list, after mdb_reader_check has cleared the slots of dead processes), the
 *      free pages of transactions before it (freelist.c), and, page run by page run, a hole
 *      punched in the file there (reads as zeros, gives the blocks back), or zeros written
 *      where the file system cannot punch holes; then fdatasync.
 *
 * A page still held by a reader's snapshot is left as it is and counted (*held): erasing again
 * once the reader has finished clears it (an erasure of erased content is a no-op that still
 * scrubs). No database reaches a free page, and LMDB writes a whole page when it reuses one,
 * so the hole is never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* mdb_reader_list's lines: "pid thread txnid" (txnid "-" for an idle slot), after a header. */
static int oldest_reader(const char *line, void *ctx) {
    size_t *oldest = ctx;
    unsigned long pid;
    char tid[32], txn[32];
    if (sscanf(line, "%lu %31s %31s", &pid, tid, txn) != 3 || txn[0] < '0' || txn[0] > '9') return 0;
    char *end;
    unsigned long long t = strtoull(txn, &end, 10);
    if (*end == '\0' && t < *oldest) *oldest = (size_t)t;
    return 0;
}

/* Zeros over [off, off + len): for whole pages a punched hole where the file system has them
 * (it also gives the blocks back), else written. */
static int clear_range(int fd, off_t off, off_t len, bool whole_pages) {
    if (whole_pages) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS) return -1;
    }
    static const char zeros[65536];
    while (len > 0) {
        size_t n = len < (off_t)sizeof zeros ? (size_t)len : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += w;
        len -= w;
    }
    return 0;
}

/* LMDB's page header (lmdb's mdb.c, struct MDB_page): page number, padding, flags, then the
 * offsets of the free space between the node pointers and the nodes, or an overflow run's
 * page count. */
#define PG_FLAGS 10
#define PG_LOWER 12
#define PG_UPPER 14
#define PG_HEADER 16
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define P_LEAF2 0x20
#define P_SUBP 0x40

/*
 * The free space inside pages in use. LMDB builds a page it writes in a buffer it reuses
 * without clearing (its list of spare page buffers), copying only the page's header, node
 * pointers and nodes into it: the free space between them keeps whatever the buffer held
 * before, bytes of another page of an earlier transaction of the same process, erased content
 * among them (seen: an attachment's bytes in the free space of a live leaf page). No reader
 * ever reads a page's free space, so zeros written there change nothing anyone sees, in the
 * pages of the newest snapshot or of an older one a reader holds. Pages are walked in order
 * (every page up to the last one in use; the free ones just cleared read as zeros), a run of
 * overflow pages, in use or held, skipped whole by its first page's count, and only a branch
 * or leaf page whose header names its own page number and whose offsets hold is touched, only
 * where its free space is not zeros.
 */
/*
 * The unused end of a value's overflow run. A value too large for a leaf page is stored in a
 * run of pages of its own, built in the same reused buffers: after the value's last byte, the
 * run's last page keeps whatever the buffer held (seen: a 2 KB attachment's page holding the
 * end of an erased one). The run's own header gives no value length, so it is found from the
 * leaf node that points to the run (F_BIGDATA: the value's size, then the run's first page
 * number), and only bytes past the value's end are cleared, only where they are not zeros.
 * Every offset is checked against the page and the file; anything that does not hold is left.
 */
/* Every page LMDB's free list names (sorted ascending): pages no tree of the last commit
 * reaches. Their bytes are an earlier version of some page: a leaf whose nodes name overflow
 * runs that were freed and reused since, for values of another length (seen: a stale copy of
 * the free list's own leaf, whose record had grown since, made the clearing zero the end of
 * the live record — a damaged free list, every writer refused). So the nodes of a free page
 * are never followed; its free space, which no reader reads, is still cleared. */
typedef struct free_set {
    const size_t *pages;
    size_t n;
} free_set;

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_free(const free_set *fs, size_t pg) {
    return fs->n && bsearch(&pg, fs->pages, fs->n, sizeof *fs->pages, cmp_size) != NULL;
}

#define NODE_HEADER 8 /* mn_lo, mn_hi (the data size), mn_flags, mn_ksize */
#define F_BIGDATA 0x01
static int clear_overflow_tails(int fd, const uint8_t *map, size_t psize, size_t last_pgno, const free_set *fs,
                                const uint8_t *leaf, uint16_t lower, uint16_t upper, uint64_t *cleared) {
    for (size_t k = 0; k < (size_t)(lower - PG_HEADER) / 2; k++) {
        uint16_t at, lo, hi, nflags, ksize;
        memcpy(&at, leaf + PG_HEADER + 2 * k, 2);
        if (at < upper || (size_t)at + NODE_HEADER > psize) continue;
        const uint8_t *node = leaf + at;
        memcpy(&lo, node, 2);
        memcpy(&hi, node + 2, 2);
        memcpy(&nflags, node + 4, 2);
        memcpy(&ksize, node + 6, 2);
        if (!(nflags & F_BIGDATA) || (size_t)at + NODE_HEADER + ksize + 8 > psize) continue;
        uint64_t first;
        memcpy(&first, node + NODE_HEADER + ksize, 8);
        size_t size = (size_t)lo | ((size_t)hi << 16);
        if (first < 2 || first > last_pgno || is_free(fs, first)) continue;
        const uint8_t *ov = map + first * psize;
        uint64_t ovno;
        uint16_t ovflags;
        uint32_t run;
        memcpy(&ovno, ov, 8);
        memcpy(&ovflags, ov + PG_FLAGS, 2);
        memcpy(&run, ov + PG_LOWER, 4);
        if (ovno != first || !(ovflags & P_OVERFLOW) || run == 0 || first + run - 1 > last_pgno ||
            PG_HEADER + size > (size_t)run * psize)
            continue;
        size_t from = PG_HEADER + size, to = (size_t)run * psize, j = from;
        while (j < to && ov[j] == 0) j++;
        if (j == to) continue;
        if (clear_range(fd, (off_t)(first * psize + from), (off_t)(to - from), false) != 0) return -1;
        (*cleared)++;
    }
    return 0;
}

static int clear_free_space(int fd, const uint8_t *map, size_t psize, size_t last_pgno, const free_set *fs,
                            uint64_t *cleared) {
    size_t next_free = 0; /* fs->pages[next_free] is the first free page >= pg */
    for (size_t pg = 2; pg <= last_pgno;) {
        while (next_free < fs->n && fs->pages[next_free] < pg) next_free++;
        bool free_page = next_free < fs->n && fs->pages[next_free] == pg; /* its nodes are not trusted */
        const uint8_t *p = map + pg * psize;
        uint64_t pgno;
        uint16_t flags, lower, upper;
        memcpy(&pgno, p, sizeof pgno);
        memcpy(&flags, p + PG_FLAGS, 2);
        memcpy(&lower, p + PG_LOWER, 2);
        memcpy(&upper, p + PG_UPPER, 2);
        if (pgno != pg) { pg++; continue; }
        /* a run skipped whole, a free one too: a free run whose first page still has its
         * header is one a reader's snapshot holds, or one the last commit freed (the others
         * were cleared above, headers and all), and its pages after the first hold a value's
         * bytes, which may look like a leaf page's header naming its own page number (seen:
         * zeros written into an attachment a reader was reading) */
        if (flags & P_OVERFLOW) {
            uint32_t run;
            memcpy(&run, p + PG_LOWER, 4);
            pg += run ? run : 1;
            continue;
        }
        pg++;
        if (!(flags & (P_BRANCH | P_LEAF)) || (flags & (P_META | P_LEAF2 | P_SUBP))) continue;
        if (lower < PG_HEADER || lower > upper || upper > psize) continue;
        size_t i = lower;
        while (i < upper && p[i] == 0) i++;
        if (i < upper) {
            if (clear_range(fd, (off_t)((pg - 1) * psize + lower), (off_t)(upper - lower), false) != 0)
                return tl_fail(TL_ESTORAGE, "clear the free space of page %zu: %s", pg - 1, strerror(errno));
            (*cleared)++;
        }
        if ((flags & P_LEAF) && !free_page && clear_overflow_tails(fd, map, psize, last_pgno, fs, p, lower, upper, cleared) != 0)
            return tl_fail(TL_ESTORAGE, "clear the unused end of an overflow page: %s", strerror(errno));
    }
    return 0;
}

/* Every page the free list of the last commit names (*fs->pages freed by the caller): in a
 * read transaction beside the caller's write transaction (LMDB reads its free list only in a
 * read transaction; with MDB_NOTLS one may sit beside the writer, and sees the last commit,
 * as the write transaction does). */
static int read_free_set(tl_log *log, free_set *fs) {
    fs->pages = NULL;
    fs->n = 0;
    MDB_txn *rtxn;
    int mrc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &rtxn);
    if (mrc) return tl_fail_mdb(mrc, "read the free-page list");
    size_t *pages = NULL, n = 0, none = 0;
    int rc = tl_freelist_reclaimable(rtxn, log->env, SIZE_MAX, &pages, &n, &none);
    mdb_txn_abort(rtxn);
    if (rc) return rc;
    fs->pages = pages;
    fs->n = n;
    return 0;
}

int tl_scrub_clear_pages(int fd, const uint8_t *map, size_t psize, size_t last_pgno, const size_t *free_pages,
                        size_t nfree, uint64_t *cleared) {
    free_set fs = {free_pages, nfree};
    return clear_free_space(fd, map, psize, last_pgno, &fs, cleared);
}

/* Step 1: a commit that changes nothing, so that the caller's last commit is not the last.
 * only_if_owed: unless no clearing is owed any more (another process's open paid it while
 * this one waited for the writer lock): then nothing is written and *nothing_owed is set. */
static int retire_last_commit(tl_log *log, bool only_if_owed, bool *nothing_owed) {
    *nothing_owed = false;
    for (int tries = 0;; tries++) {
        tl_wtxn *w;
        int rc = tl_wtxn_begin_records(log, &w); /* appends nothing: no writer key needed (a copy has none) */
        if (rc) return rc;
        MDB_val v;
        if (only_if_owed && tl_get(w->txn, log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1, &v) != 0) {
            tl_wtxn_abort(w);
            *nothing_owed = true;
            return 0;
        }
        rc = tl_head_write(w) ? w->failed : 0;
        if (rc) {
            tl_wtxn_abort(w);
            return rc;
        }
        rc = tl_wtxn_commit(w);
        if (rc != TL_EMAPFULL || tries > 0) return rc;
        if ((rc = tl_log_grow_map(log)) != 0) return rc;
    }
}

int tl_scrub_page_gaps(tl_log *log) {
    tl_write_lock(log);
    MDB_txn *txn; /* a write transaction: no other process writes a page meanwhile */
    int rc = tl_txn_begin(log, 0, &txn, true);
    if (rc) {
        tl_write_unlock(log);
        return rc;
    }
    int fd = -1;
    MDB_stat st;
    MDB_envinfo info;
    if (mdb_env_get_fd(log->env, &fd) != 0 || mdb_env_stat(log->env, &st) != 0 || mdb_env_info(log->env, &info) != 0)
        rc = tl_fail(TL_ESTORAGE, "cannot inspect the data file");
    uint64_t spaces = 0;
    free_set fs = {NULL, 0};
    if (!rc) rc = read_free_set(log, &fs);
    if (!rc) {
        size_t bytes = (info.me_last_pgno + 1) * st.ms_psize;
        void *map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) rc = tl_fail(TL_ESTORAGE, "map the data file: %s", strerror(errno));
        else {
            rc = clear_free_space(fd, map, st.ms_psize, info.me_last_pgno, &fs, &spaces);
            munmap(map, bytes);
        }
    }
    free((void *)fs.pages);
    if (!rc && spaces && fdatasync(fd) != 0) rc = tl_fail(TL_ESTORAGE, "sync the cleared pages: %s", strerror(errno));
    mdb_txn_abort(txn);
    tl_map_shared_end(log);
    tl_write_unlock(log);
    return rc;
}

static int scrub_free_pages(tl_log *log, bool only_if_owed, uint64_t *cleared, uint64_t *held) {
    *cleared = *held = 0;
    bool nothing_owed;
    int rc = retire_last_commit(log, only_if_owed, &nothing_owed);
    if (rc || nothing_owed) return rc;
    /* in the unsynced mode those commits are not on disk yet: a power cut after the clearing
     * would bring back an older snapshot whose pages are zeros. Durable first. */
    /* under the map lock: another thread's write may reopen the environment (tl_env_refresh) */
    tl_map_shared(log, true);
    int mrc0 = log->env ? mdb_env_sync(log->env, 1) : MDB_PANIC;
    tl_map_shared_end(log);
    if (mrc0) return tl_fail_mdb(mrc0, "sync before clearing free pages");
    tl_wtxn *w;
    if ((rc = tl_wtxn_begin_records(log, &w)) != 0) return rc;
    int dead;
    mdb_reader_check(log->env, &dead);
    size_t last = mdb_txn_id(w->txn) - 1, oldest = last;
    mdb_reader_list(log->env, oldest_reader, &oldest);
    MDB_val owed_v;
    bool owed = tl_get(w->txn, log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1, &owed_v) == 0 && owed_v.mv_size == 8;
    uint64_t owed_txn = owed ? tl_seq_from_key(owed_v.mv_data) : 0;
    /* LMDB reads its free list only in a read transaction: one beside the write transaction
     * (MDB_NOTLS), which sees the last commit, as the write transaction does */
    size_t *pages = NULL, n = 0, others = 0;
    MDB_txn *rtxn;
    int mrc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &rtxn);
    if (mrc) rc = tl_fail_mdb(mrc, "read the free-page list");
    else {
        rc = tl_freelist_reclaimable(rtxn, log->env, oldest, &pages, &n, &others);
        mdb_txn_abort(rtxn);
    }
    int fd = -1;
    if (!rc && mdb_env_get_fd(log->env, &fd) != 0) rc = tl_fail(TL_ESTORAGE, "no file handle for the data file");
    MDB_stat st;
    if (!rc && mdb_env_stat(log->env, &st) != 0) rc = tl_fail(TL_ESTORAGE, "cannot read the page size");
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i + 1;
        while (j < n && pages[j] == pages[j - 1] + 1) j++; /* one run of neighbouring pages */
        off_t off = (off_t)pages[i] * st.ms_psize, len = (off_t)(j - i) * st.ms_psize;
        if (clear_range(fd, off, len, true) != 0)
            rc = tl_fail(TL_ESTORAGE, "clear free pages %zu-%zu of the data file: %s", pages[i], pages[j - 1], strerror(errno));
        i = j;
    }
    /* the walk over the pages in use, in a snapshot of the last commit */
    uint64_t spaces = 0;
    MDB_envinfo info;
    free_set fs = {NULL, 0};
    if (!rc) rc = read_free_set(log, &fs);
    if (!rc && (mrc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &rtxn)) != 0) rc = tl_fail_mdb(mrc, "read the free-page list");
    else if (!rc) {
        if (mdb_env_info(log->env, &info) != 0) rc = tl_fail(TL_ESTORAGE, "cannot inspect the data file");
        if (!rc) { /* a view of our own: LMDB does not give its map's address (me_mapaddr is not it) */
            size_t bytes = (info.me_last_pgno + 1) * st.ms_psize;
            void *map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED) rc = tl_fail(TL_ESTORAGE, "map the data file: %s", strerror(errno));
            else {
                rc = clear_free_space(fd, map, st.ms_psize, info.me_last_pgno, &fs, &spaces);
                munmap(map, bytes);
            }
        }
        mdb_txn_abort(rtxn);
    }
    free((void *)fs.pages);
    if (!rc && (n || spaces) && fdatasync(fd) != 0) rc = tl_fail(TL_ESTORAGE, "sync the cleared pages: %s", strerror(errno));
    /* The pages the owed erasure freed were among those cleared (no snapshot older than its
     * transaction is left): the debt is paid. Failing to record that is harmless: the next
     * writable open clears again. */
    if (!rc && owed && owed_txn < oldest && tl_del(w, log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1) == 0)
        (void)tl_wtxn_commit(w);
    else
        tl_wtxn_abort(w);
    free(pages);
    if (!rc) {
        *cleared = n;
        /* the pages the retiring commit itself freed belong to the last snapshot and hold
         * nothing erased: only a reader's older snapshot keeps erased bytes */
        *held = oldest < last ? others : 0;
    }
    return rc;
}

int tl_scrub_if_owed(tl_log *log) {
    if (log->flags & TL_OPEN_READONLY) return 0;
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    MDB_val v;
    bool owed = tl_get(txn, log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1, &v) == 0 && v.mv_size == 8;
    uint64_t owed_txn = owed ? tl_seq_from_key(v.mv_data) : 0;
    tl_rtxn_end(log, txn);
    if (!owed) return 0;
    /* a reader still on a snapshot from before the erasure holds its pages: clearing now would
     * leave them again, at the cost of a read of every page header; a later open tries */
    int dead;
    mdb_reader_check(log->env, &dead);
    size_t oldest = SIZE_MAX;
    mdb_reader_list(log->env, oldest_reader, &oldest);
    if (oldest <= owed_txn) return 0;
    uint64_t cleared, held;
    return scrub_free_pages(log, true, &cleared, &held);
}

int tl_scrub_free_pages(tl_log *log, uint64_t *cleared, uint64_t *held) {
    return scrub_free_pages(log, false, cleared, held);
}
