/*
 * replay_copy.c — what a replay into another directory needs besides the rebuild itself
 * (replay.c): the directory (new or empty, never over a log), a compacted copy of a read
 * snapshot of the source's environment, and the cut of that copy after sequence N (the
 * records after N and their content deleted; their erasures kept as meta's erased/ marks,
 * docs/FORMAT.md), or after the last event at or before a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/*
 * The copy is built in a subdirectory of dir (TL_COPY_BUILD.PID) and linked into dir only
 * once it is complete (tl_copy_dir_finish): a replay killed half-way must not leave dir
 * holding a log that passes verify yet is not the copy asked for (a whole log where a cut was
 * asked, say). The directory is locked (flock) from the start to the end, so a second replay
 * into it answers exists at once, and a build directory seen while holding the lock is a
 * killed replay's: removed.
 */
static void build_remove(const char *build) {
    char path[4096 + 16]; /* build (under 4096) and a file name: never truncated */
    snprintf(path, sizeof path, "%s/%s", build, TL_DATA_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", build);
    unlink(path);
    rmdir(build);
}

int tl_copy_dir_prepare(const char *dir, bool *created, char *build, size_t cap, int *lock_fd) {
    *created = false;
    *lock_fd = -1;
    if (mkdir(dir, 0700) == 0) *created = true;
    else if (errno != EEXIST) return tl_fail(TL_ESTORAGE, "cannot create %s: %s", dir, strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !tl_dir_lock(fd)) {
        int e = errno;
        if (fd >= 0) close(fd);
        if (*created) rmdir(dir);
        if (e == EWOULDBLOCK) return tl_fail(TL_EEXISTS, "another replay is building a copy in %s", dir);
        if (e == ENOTDIR) return tl_fail(TL_EINVALID, "%s is not a directory", dir); /* the operator's slip */
        return tl_fail(TL_ESTORAGE, "cannot open %s: %s", dir, strerror(e));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TL_DATA_FILE);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) == 0) rc = tl_fail(TL_EEXISTS, "%s already holds a log", dir);
    DIR *d = rc ? NULL : opendir(dir);
    if (!rc && !d) rc = tl_fail(TL_ESTORAGE, "cannot open %s: %s", dir, strerror(errno));
    if (d) {
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (strncmp(e->d_name, TL_COPY_BUILD, sizeof TL_COPY_BUILD - 1) != 0) empty = false;
        }
        if (!empty) rc = tl_fail(TL_EINVALID, "%s is not empty", dir);
        rewinddir(d);
        while (!rc && (e = readdir(d)) != NULL) /* a killed replay's: nobody else holds the lock */
            if (!strncmp(e->d_name, TL_COPY_BUILD, sizeof TL_COPY_BUILD - 1)) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                build_remove(path);
            }
        closedir(d);
    }
    if (!rc && (snprintf(build, cap, "%s/%s.%ld", dir, TL_COPY_BUILD, (long)getpid()) >= (int)cap || mkdir(build, 0700) != 0))
        rc = tl_fail(TL_ESTORAGE, "cannot create the build directory in %s: %s", dir, strerror(errno));
    if (rc) {
        close(fd);
        if (*created) rmdir(dir);
        return rc;
    }
    *lock_fd = fd;
    return 0;
}

void tl_copy_dir_remove(const char *dir, const char *build, bool created, int lock_fd) {
    build_remove(build);
    if (created) rmdir(dir);
    if (lock_fd >= 0) close(lock_fd);
}

int tl_copy_dir_finish(const char *dir, const char *build) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", build, TL_DATA_FILE);
    snprintf(to, sizeof to, "%s/%s", dir, TL_DATA_FILE);
    /* a link never replaces a file; a rename where the filesystem has no hard links (the
     * directory is locked and was checked empty) */
    if (link(from, to) != 0 && !((errno == EPERM || errno == EXDEV || errno == ENOTSUP || errno == EMLINK) && rename(from, to) == 0))
        return tl_fail(errno == EEXIST ? TL_EEXISTS : TL_ESTORAGE, "cannot move the copy into %s: %s", dir, strerror(errno));
    build_remove(build); /* its second name of the data file, its lock file, the subdirectory */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the new name, durable */
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

/* A compacted copy of a read snapshot of log's environment, written to dir/data.mdb (0600). */
/* *page_for_page: the copy holds the source's free pages too (the fallback below): its
 * caller clears them, as they may hold erased bytes the source still keeps for a reader. */
int tl_copy_env(tl_log *log, const char *dir, bool *page_for_page) {
    *page_for_page = false;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TL_DATA_FILE);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return tl_fail(TL_ESTORAGE, "cannot create %s: %s", path, strerror(errno));
    /* Through a read transaction of ours, as every reader: it holds the map lock shared (the
     * map may not move), adopts a map another process grew, and reopens an environment that
     * a storage failure left fatal — or closed, when a reopen failed (log->env NULL). LMDB's
     * copy then takes its own snapshot beside it (MDB_NOTLS). */
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) {
        close(fd);
        return rc;
    }
    int mrc = mdb_env_copyfd2(mdb_txn_env(txn), fd, MDB_CP_COMPACT);
    /* The compacting copy checks that the pages it walked plus the free ones (the free list's
     * records and the free tree's page counts in the meta page) add up to the file; damaged
     * counts (which nothing else reads, verify included) make it answer MDB_INCOMPATIBLE.
     * A page-for-page copy does not depend on them: take that one instead. */
    if (mrc == MDB_INCOMPATIBLE) {
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) mrc = errno;
        else {
            mrc = mdb_env_copyfd2(mdb_txn_env(txn), fd, 0);
            *page_for_page = true;
        }
    }
    tl_rtxn_end(log, txn);
    /* damage met while walking the trees is a damaged file, not a failing disk */
    if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INCOMPATIBLE)
        rc = tl_fail(TL_ECORRUPT, "copy the log: %s: the data file is damaged (run verify)", mdb_strerror(mrc));
    else rc = mrc ? tl_fail_mdb(mrc, "copy the log") : 0;
    if (!rc && fsync(fd) != 0) rc = tl_fail(TL_ESTORAGE, "cannot sync %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* Payload fields that hold content commitments (docs/FORMAT.md). */
static const char *const commit_fields[] = {"body_commit", "data_commit"};

/*
 * Cut the log after `until` (a copy being built): delete later records and the content
 * they committed to. Content erased by a later event stays erased; the erasure's commitment
 * and sequence go to meta ("erased/..."), so that verify of the copy can tell it from content
 * deleted behind the log's back. The head is set by the walk and written by
 * tl_wtxn_mark_applied.
 */
int tl_replay_cut(tl_wtxn *w, uint64_t until) {
    /* bounded (tl_walk): deleting never brings a key back, so keys still increase strictly */
    tl_walk walk;
    int rc = tl_walk_init(&walk, w->txn, w->log->db_log, "log");
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(w->txn, w->log->db_log, &cur);
    if (mrc) return tl_wtxn_fail_mdb(w, mrc, "open the log");
    uint8_t key[8];
    tl_seq_key(key, until + 1);
    MDB_val k = {8, key}, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if ((rc = tl_walk_step(&walk, &k)) != 0) break;
        const uint8_t *bytes, *sig;
        size_t len;
        tl_event ev;
        if (tl_record_split(&v, &bytes, &len, &sig) == 0 && tl_event_decode(&ev, bytes, len) == 0 &&
            strncmp(ev.kind, "x.", 2) != 0) { /* an extension's payload commits to nothing stored */
            tl_bytes c;
            if (strcmp(ev.kind, "content.erased") == 0 && tl_ev_bin(&ev, "commitment", &c) == 0 && c.len == TL_HASH_BYTES) {
                uint8_t mkey[sizeof META_ERASED_PREFIX - 1 + TL_HASH_BYTES], mval[8];
                memcpy(mkey, META_ERASED_PREFIX, sizeof META_ERASED_PREFIX - 1);
                memcpy(mkey + sizeof META_ERASED_PREFIX - 1, c.ptr, TL_HASH_BYTES);
                tl_seq_key(mval, ev.seq);
                rc = tl_put(w, w->log->db_meta, mkey, sizeof mkey, mval, sizeof mval, 0);
            }
            for (size_t f = 0; f < sizeof commit_fields / sizeof commit_fields[0] && !rc; f++) {
                tl_bytes c;
                uint8_t commit[TL_HASH_BYTES];
                if (tl_ev_bin(&ev, commit_fields[f], &c) != 0 || c.len != TL_HASH_BYTES) continue;
                memcpy(commit, c.ptr, TL_HASH_BYTES);
                rc = tl_content_erase(w, commit);
            }
        }
        if (rc) break;
        if ((mrc = mdb_cursor_del(cur, 0)) != 0) break;
    }
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = tl_wtxn_fail_mdb(w, mrc, "cut the log");
    return rc;
}

/* The last sequence whose time is <= ts (times never decrease along the log); 0 if none. */
int tl_replay_seq_at_time(tl_wtxn *w, uint64_t ts, uint64_t *out) {
    *out = 0;
    tl_walk walk; /* bounded: a damaged page must not send the search round in circles */
    int rc = tl_walk_init(&walk, w->txn, w->log->db_log, "log");
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(w->txn, w->log->db_log, &cur);
    if (mrc) return tl_wtxn_fail_mdb(w, mrc, "open the log");
    MDB_val k, v;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if ((rc = tl_walk_step(&walk, &k)) != 0) break;
        const uint8_t *bytes, *sig;
        size_t len;
        tl_event ev;
        if (k.mv_size != 8) {
            rc = tl_fail(TL_ECORRUPT, "the log database is damaged: a key of %zu bytes", k.mv_size);
            break;
        }
        if (tl_record_split(&v, &bytes, &len, &sig) || tl_event_decode(&ev, bytes, len)) {
            rc = tl_fail(TL_ECORRUPT, "event %llu does not decode", (unsigned long long)tl_seq_from_key(k.mv_data));
            break;
        }
        if (ev.ts > ts) break;
        *out = ev.seq;
    }
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = tl_wtxn_fail_mdb(w, mrc, "read the log");
    return rc;
}
