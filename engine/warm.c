/*
 * warm.c — tl_log_warm: mapping the whole data file into a serving process before it serves.
 *
 * Two costs sit between a query and the bytes it reads, and neither is LMDB's: the page fault
 * the first time a process meets a page, and, on every access, the translation of the page's
 * address. A 2.5 GB log in 4 KiB pages needs ~650,000 translations, far more than the TLB
 * holds, and on a virtual machine each miss walks two levels of page tables: perf put ~30% of
 * a message page in the first load of each B-tree page LMDB visits. So warm does two things:
 *
 *   1. it maps every used page now (MADV_POPULATE_READ), so queries no longer fault;
 *   2. where the kernel keeps the file's page cache in 2 MiB folios (ext4 does since Linux
 *      6.16, for pages read through a mapping marked MADV_HUGEPAGE), it maps the file with 2 MiB
 *      entries (smaps' FilePmdMapped): one TLB entry then covers 512 pages. Pages already
 *      cached in small folios (written by LMDB's pwrite, or read without the mark) stay small
 *      until they leave the page cache, so with THREADLOG_WARM_HUGE_PAGES=1 (off by default:
 *      see tl_log_warm) warm makes them leave: per chunk, it drops its own
 *      mapping of the chunk, asks the kernel to drop the chunk's clean cached pages
 *      (POSIX_FADV_DONTNEED: dirty pages, and pages another process maps, stay where they are)
 *      and maps the chunk again, now read in 2 MiB folios. This second pass runs only when the
 *      first left less than half of the file on 2 MiB entries and THP is not disabled; where
 *      the kernel cannot, the file is simply read again (from the host's cache here: 0.5 s for
 *      2.5 GB). Nothing of the data changes: the page cache only holds copies of the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* Bytes warmed per read transaction: a multiple of 2 MiB, so chunks hold whole huge pages. */
#define WARM_CHUNK (64u << 20)
#define HUGE_PAGE (2u << 20)

/*
 * Where LMDB mapped the data file in this process. LMDB reports the address only for
 * MDB_FIXEDMAP environments, so take a pointer that a read returns into the map (the head
 * record's value) and find the mapping of /proc/self/maps that holds it: that also picks the
 * right map when one process has the log open twice.
 */
static int map_range(MDB_txn *txn, tl_log *log, uintptr_t *lo, uintptr_t *hi) {
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, log->db_log, &cur);
    if (mrc) return tl_fail_mdb(mrc, "warm");
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    mdb_cursor_close(cur);
    if (mrc) return tl_fail_mdb(mrc, "warm");
    uintptr_t p = (uintptr_t)v.mv_data;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return tl_fail(TL_ESTORAGE, "warm: cannot read /proc/self/maps: %s", strerror(errno));
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= p && p < b) {
            *lo = a;
            *hi = b;
            found = true;
        }
    }
    fclose(maps);
    return found ? 0 : tl_fail(TL_ESTORAGE, "warm: the log's map is not in /proc/self/maps");
}

/* Bytes of the mapping that starts at lo mapped with 2 MiB entries (smaps' FilePmdMapped);
 * 0 when unknown. */
static uint64_t pmd_mapped(uintptr_t lo) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    char line[4600];
    bool here = false;
    uint64_t bytes = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        unsigned long long kib;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            if (here) break; /* past the mapping */
            here = a == lo;
        } else if (here && sscanf(line, "FilePmdMapped: %llu kB", &kib) == 1) {
            bytes = kib * 1024u;
        }
    }
    fclose(f);
    return bytes;
}

/* Whether transparent huge pages may be used at all ("never" in sysfs, or no THP: not). */
static bool thp_possible(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) && !strstr(line, "[never]");
    fclose(f);
    return ok;
}

typedef struct {
    uint64_t off, chunk; /* in: where, and at most how much */
    bool rebuild;        /* in: drop the chunk's cached pages first, to read them into huge folios */
    bool remap;          /* in: drop only this process's mapping of the chunk first */
    uint64_t len;        /* out: the used part's length (0 once off is past it) */
    uint64_t done;       /* out: bytes mapped */
    uintptr_t lo;        /* out: where the mapping starts */
} warm_step;

/* Drop this process's mapping of [base, base + n) and the clean cached pages of the file's
 * [off, off + n), so that mapping them again reads them into folios as large as the mapping
 * allows (MADV_HUGEPAGE, set on the whole mapping so that it is not split). */
static void drop_cached(unsigned char *lo, uint64_t map_len, int fd, unsigned char *base, uint64_t off, uint64_t n) {
#ifdef MADV_HUGEPAGE
    (void)madvise(lo, map_len, MADV_HUGEPAGE);
#endif
    (void)madvise(base, n, MADV_DONTNEED); /* a shared file mapping: only our page tables go */
    (void)posix_fadvise(fd, (off_t)off, (off_t)n, POSIX_FADV_DONTNEED);
}

/*
 * Map [off, off + chunk) of the used part of the map: pages 0..last_pgno of the newest
 * snapshot, but never past the file's end (a file shorter than its meta page claims would
 * turn a touch into SIGBUS) nor the mapping's. Under a read transaction, which holds map_lock
 * shared: the map cannot move meanwhile.
 */
static int warm_chunk(tl_log *log, warm_step *s) {
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat fst;
    uintptr_t lo = 0, hi = 0;
    if (mdb_env_info(log->env, &info) || mdb_env_stat(log->env, &st) || mdb_env_get_fd(log->env, &fd) || fstat(fd, &fst))
        rc = tl_fail(TL_ESTORAGE, "warm: cannot read the map's geometry");
    if (!rc) rc = map_range(txn, log, &lo, &hi);
    if (rc) {
        tl_rtxn_end(log, txn);
        return rc;
    }
    uint64_t psize = st.ms_psize, used = ((uint64_t)info.me_last_pgno + 1) * psize;
    uint64_t file = (uint64_t)fst.st_size / psize * psize;
    s->lo = lo;
    s->len = used < file ? used : file;
    if (s->len > hi - lo) s->len = hi - lo;
    uint64_t n = s->off < s->len ? s->len - s->off : 0;
    if (n > s->chunk) n = s->chunk;
    unsigned char *base = (unsigned char *)lo + s->off;
    if (n && s->rebuild) drop_cached((unsigned char *)lo, hi - lo, fd, base, s->off, n);
    else if (n && s->remap) (void)madvise(base, n, MADV_DONTNEED); /* a shared file mapping: the pages stay cached */
    int err = 0;
#ifdef MADV_POPULATE_READ
    if (n && madvise(base, n, MADV_POPULATE_READ) != 0) err = errno;
#else
    err = EINVAL;
#endif
    if (err == EINVAL || err == ENOSYS) { /* a kernel before 5.14: touch each page */
        volatile unsigned char sink = 0;
        for (uint64_t i = 0; i < n; i += psize) sink ^= base[i];
        (void)sink;
        err = 0;
    }
    tl_rtxn_end(log, txn);
    if (err) return tl_fail(TL_ESTORAGE, "warm: mapping the data file failed: %s", strerror(err));
    s->done = n;
    return 0;
}

/* One pass over the used part, in chunks, each under its own read transaction, so that a
 * writer that must grow the map (which waits for every transaction to end) waits for one
 * chunk at most; a chunk after a growth maps the new map from the same offset. */
static int warm_pass(tl_log *log, uint64_t chunk, bool rebuild, bool remap, uint64_t *mapped, uintptr_t *lo) {
    warm_step s = {.off = 0, .chunk = chunk, .rebuild = rebuild, .remap = remap};
    do {
        int rc = warm_chunk(log, &s);
        if (rc) return rc;
        s.off += s.done;
    } while (s.done && s.off < s.len);
    *mapped = s.off;
    *lo = s.lo;
    return 0;
}

int tl_log_warm(tl_log *log, uint64_t *mapped_bytes) {
    if (mapped_bytes) *mapped_bytes = 0;
    if (!log) return tl_fail(TL_EUSAGE, "no log");
    uint64_t chunk = WARM_CHUNK, mapped = 0;
    uintptr_t lo = 0;
    /* THREADLOG_TEST_WARM_CHUNK: smaller chunks, for the tests (a multiple of 4096) */
    const char *test_chunk = getenv("THREADLOG_TEST_WARM_CHUNK");
    if (test_chunk && strtoull(test_chunk, NULL, 10) >= 4096) chunk = strtoull(test_chunk, NULL, 10) / 4096 * 4096;
    int rc = warm_pass(log, chunk, false, false, &mapped, &lo);
    /* THREADLOG_WARM_HUGE_PAGES=1: rebuild the page cache in 2 MiB folios (the operator's
     * choice, off by default: on 2026-11-26's VM the rebuilt pages made this process's
     * queries 2-3x slower for a while, p50 25 -> 53-90 us, where on the 25th they had made
     * them faster; a later process found them fast either way) */
    const char *huge = getenv("THREADLOG_WARM_HUGE_PAGES");
    bool rebuild = huge && huge[0] && strcmp(huge, "0") != 0;
    if (!rc && rebuild && mapped >= 2 * (uint64_t)HUGE_PAGE && pmd_mapped(lo) < mapped / 2 && thp_possible()) {
        /* whole huge pages per chunk: round the chunk up to 2 MiB */
        uint64_t huge_chunk = (chunk + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        rc = warm_pass(log, huge_chunk, true, false, &mapped, &lo);
        /* then map the rebuilt folios afresh, as a new process would: mapped chunk by chunk
         * while they were read, queries in this process ran 3x slower than before warm (p50
         * 25 -> 90 us, 2026-11-26), and a later process found them fast */
        if (!rc) rc = warm_pass(log, huge_chunk, false, true, &mapped, &lo);
    }
    if (!rc && mapped_bytes) *mapped_bytes = mapped;
    return rc;
}
