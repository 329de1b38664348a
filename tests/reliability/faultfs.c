/*
 * faultfs.c — an LD_PRELOAD shim that makes the storage fail on cue, as SQLite's tests do:
 * the Nth write or sync of a file (and the next COUNT ones) fails with ENOSPC or EIO, as a
 * full disk or a failing device would make it fail in the middle of a commit.
 *
 *   TL_FAULT_MATCH=data.mdb  only files whose path ends so (default data.mdb)
 *   TL_FAULT_OPS=write|sync|meta|any  which calls count (default any): pwrite/pwritev/writev/write,
 *                                fsync/fdatasync/msync; meta: only positioned writes to the
 *                                file's first two pages (LMDB's meta pages: the write that
 *                                makes a commit current, whose failure marks the environment
 *                                fatal, MDB_PANIC)
 *   TL_FAULT_AFTER=N   let N matching calls through, then fail (default 0)
 *   TL_FAULT_COUNT=K   fail K calls, then let everything through again (default 1; -1: forever)
 *   TL_FAULT_ERRNO=ENOSPC|EIO  (default ENOSPC)
 * The first injected failure is reported on stderr ("faultfs: ...") so a test can tell that
 * the fault really happened; TL_FAULT_STATS=1 prints how many matching calls were seen at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long seen, failed;

static int fd_matches(int fd) {
    if (fd <= 2) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    const char *want = getenv("TL_FAULT_MATCH");
    if (!want || !*want) want = "data.mdb";
    size_t w = strlen(want);
    return (size_t)n >= w && strcmp(path + n - w, want) == 0;
}

/* 1 when this call must fail (errno set); off: where a positioned write writes, else -1 */
static int inject_at(int fd, const char *kind, const char *call, off_t off) {
    const char *ops = getenv("TL_FAULT_OPS");
    if (ops && !strcmp(ops, "meta")) {
        if (strcmp(kind, "write") || off < 0 || off >= 2 * sysconf(_SC_PAGESIZE)) return 0;
        kind = "meta";
    } else if (ops && strcmp(ops, "any") && strcmp(ops, kind)) {
        return 0;
    }
    if (fd >= 0 && !fd_matches(fd)) return 0;
    long after = getenv("TL_FAULT_AFTER") ? atol(getenv("TL_FAULT_AFTER")) : 0;
    long count = getenv("TL_FAULT_COUNT") ? atol(getenv("TL_FAULT_COUNT")) : 1;
    int err = getenv("TL_FAULT_ERRNO") && !strcmp(getenv("TL_FAULT_ERRNO"), "EIO") ? EIO : ENOSPC;
    pthread_mutex_lock(&mu);
    long n = seen++;
    int fail = n >= after && (count < 0 || failed < count);
    if (fail && failed++ == 0) {
        if (off >= 0)
            fprintf(stderr, "faultfs: %s call %ld (%s at offset %lld) fails with %s\n", kind, n, call, (long long)off,
                    strerror(err));
        else
            fprintf(stderr, "faultfs: %s call %ld (%s) fails with %s\n", kind, n, call, strerror(err));
    }
    pthread_mutex_unlock(&mu);
    if (fail) errno = err;
    return fail;
}

static int inject(int fd, const char *kind, const char *call) { return inject_at(fd, kind, call, -1); }

__attribute__((destructor)) static void stats(void) {
    if (getenv("TL_FAULT_STATS")) fprintf(stderr, "faultfs: %ld matching calls, %ld failed\n", seen, failed);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (inject_at(fd, "write", "pwrite", off)) return -1;
    return REAL(pwrite)(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    if (inject_at(fd, "write", "pwrite64", off)) return -1;
    return REAL(pwrite64)(fd, buf, n, off);
}
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    if (inject_at(fd, "write", "pwritev", off)) return -1;
    return REAL(pwritev)(fd, iov, cnt, off);
}
ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    if (inject(fd, "write", "writev")) return -1;
    return REAL(writev)(fd, iov, cnt);
}
ssize_t write(int fd, const void *buf, size_t n) {
    if (fd > 2 && inject(fd, "write", "write")) return -1;
    return REAL(write)(fd, buf, n);
}
int fsync(int fd) {
    if (inject(fd, "sync", "fsync")) return -1;
    return REAL(fsync)(fd);
}
int fdatasync(int fd) {
    if (inject(fd, "sync", "fdatasync")) return -1;
    return REAL(fdatasync)(fd);
}
