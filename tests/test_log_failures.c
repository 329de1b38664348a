/*
 * test_log_failures.c — the log under other processes and failing storage: following a log
 * another process appends to, two processes writing at once (batches never interleave); a
 * failed meta page write (MDB_PANIC) recovered in place while other threads read, a replay
 * into a directory right after one, a storage failure inside a batch reported to every
 * command; walks over a damaged file that stop with `corrupt`.
 *
 * Each test makes its own log in a fresh temporary directory (log_fixture.h). Whenever a test
 * edits the LMDB file directly it closes its tl_log first: LMDB forbids opening one
 * environment twice in a process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "log_fixture.h"

/* ================================================================ processes */

typedef struct follow_seen {
    uint64_t seqs[64];
    char kinds[64][16];
    int n;
    uint64_t until;
} follow_seen;

static int on_event(const tl_event_view *ev, void *payload) {
    follow_seen *s = payload;
    if (s->n < 64) {
        s->seqs[s->n] = ev->seq;
        snprintf(s->kinds[s->n], sizeof s->kinds[0], "%s", ev->kind);
        s->n++;
    }
    return ev->seq >= s->until;
}

static volatile int watchdog_stop;
/* Sets watchdog_stop after arg milliseconds (in steps of 10 ms), or earlier if set. */
static void *watchdog(void *arg) {
    long ms = (long)(intptr_t)arg;
    for (long i = 0; i < ms / 10 && !__atomic_load_n(&watchdog_stop, __ATOMIC_ACQUIRE); i++) usleep(10000);
    __atomic_store_n(&watchdog_stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

START_TEST(follow_sees_other_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 2, 0, 0);
    tl_log_close(log);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep(300000);
        tl_log *w;
        if (tl_log_open(&w, dir, NULL)) _exit(2);
        for (int b = 0; b < 3; b++) {
            uint8_t empty = 0x80;
            tl_draft d[2] = {{"x.from-child", "child", NULL, &empty, 1}, {"x.from-child", "child", "p-9", &empty, 1}};
            if (tl_log_append(w, d, 2, NULL)) _exit(3);
            usleep(100000);
        }
        tl_log_close(w);
        _exit(0);
    }
    log = open_log(dir, TL_OPEN_READONLY);
    follow_seen seen = {.until = 9};
    pthread_t t;
    __atomic_store_n(&watchdog_stop, 0, __ATOMIC_RELEASE);
    pthread_create(&t, NULL, watchdog, (void *)(intptr_t)30000); /* a safety net only */
    ck_assert_int_eq(tl_log_follow(log, 1, 20, &watchdog_stop, on_event, &seen), 0);
    __atomic_store_n(&watchdog_stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    ck_assert_int_eq(seen.n, 9);
    for (int i = 0; i < 9; i++) ck_assert_uint_eq(seen.seqs[i], (uint64_t)i + 1);
    ck_assert_str_eq(seen.kinds[0], "log.created");
    for (int i = 3; i < 9; i++) ck_assert_str_eq(seen.kinds[i], "x.from-child");

    /* from a later sequence, and stopped by the flag when nothing comes */
    follow_seen later = {.until = 1000};
    __atomic_store_n(&watchdog_stop, 0, __ATOMIC_RELEASE);
    pthread_create(&t, NULL, watchdog, (void *)(intptr_t)500);
    /* nothing more is appended: the stop flag ends it after half a second */
    ck_assert_int_eq(tl_log_follow(log, 8, 20, &watchdog_stop, on_event, &later), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(later.n, 2);
    ck_assert_uint_eq(later.seqs[0], 8);
    remove_log(log, dir);
}
END_TEST

START_TEST(two_writer_processes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_close(log);
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            tl_log *w;
            tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
            if (tl_log_open(&w, dir, &o)) _exit(2);
            for (int b = 0; b < 40; b++) {
                uint8_t empty = 0x80;
                tl_draft d[3] = {{"x.w", p ? "p1" : "p0", NULL, &empty, 1},
                                 {"x.w", p ? "p1" : "p0", NULL, &empty, 1},
                                 {"x.w", p ? "p1" : "p0", NULL, &empty, 1}};
                if (tl_log_append(w, d, 3, NULL)) _exit(3);
            }
            tl_log_close(w);
            _exit(0);
        }
    }
    for (int p = 0; p < 2; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed: %d", p, status);
    }
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, 1 + 2 * 40 * 3);
    /* each batch is contiguous: commits never interleave */
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 2, &it), 0);
    tl_event_view ev;
    for (int i = 0; i < 80; i++) {
        char who[8];
        ck_assert_int_eq(tl_iter_next(it, &ev), 0);
        snprintf(who, sizeof who, "%s", ev.actor);
        for (int k = 1; k < 3; k++) {
            ck_assert_int_eq(tl_iter_next(it, &ev), 0);
            ck_assert_str_eq(ev.actor, who);
        }
    }
    tl_iter_close(it);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ storage failures */

/*
 * The descriptor LMDB writes meta pages through. A synced environment opens data.mdb twice:
 * once for data pages, once with O_DSYNC for the meta pages (the write that makes a commit
 * current). -1 when there is no such descriptor.
 */
static int meta_fd(const char *dir) {
    char *data = path_in(dir, "data.mdb");
    char want[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(data, want));
    free(data);
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strcmp(target, want) != 0) continue;
        char info[300];
        snprintf(info, sizeof info, "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = fopen(info, "r");
        unsigned flags = 0;
        char line[128];
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "flags: %o", &flags) == 1) break;
        if (f) fclose(f);
        if (flags & O_DSYNC) found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

/* Make the next meta page write fail (EBADF): a read-only descriptor of the same file takes
 * the meta descriptor's number. The reopen closes it with the old environment. */
static void break_meta_writes(const char *dir) {
    int fd = meta_fd(dir);
    ck_assert_msg(fd >= 0, "no O_DSYNC descriptor of %s/data.mdb", dir);
    char *data = path_in(dir, "data.mdb");
    int ro = open(data, O_RDONLY);
    free(data);
    ck_assert_int_ge(ro, 0);
    ck_assert_int_eq(dup2(ro, fd), fd);
    close(ro);
}

typedef struct panic_reader {
    tl_log *log;
    volatile int *stop;
    uint64_t *acked; /* events acknowledged so far (__atomic) */
    unsigned reads;
    int failed;
    char why[300];
} panic_reader;

/* Read the whole log, the statistics and the digest until told to stop; every read must
 * work and hold at least every event acknowledged before it began. */
static void *panic_read(void *arg) {
    panic_reader *r = arg;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && !r->failed) {
        uint64_t floor = __atomic_load_n(r->acked, __ATOMIC_SEQ_CST);
        tl_iter *it;
        int rc = tl_iter_open(r->log, 1, &it);
        uint64_t n = 0;
        tl_event_view ev;
        if (!rc) {
            while ((rc = tl_iter_next(it, &ev)) == 0) n++;
            tl_iter_close(it);
            if (rc == TL_ENOTFOUND) rc = 0;
        }
        tl_log_stats st;
        char digest[TL_PUBKEY_HEX_SIZE];
        if (!rc) rc = tl_log_stats_get(r->log, &st);
        if (!rc) rc = tl_digest(r->log, digest);
        if (rc) {
            r->failed = rc;
            snprintf(r->why, sizeof r->why, "%s: %s", tl_strerror(rc), tl_errdetail());
        } else if (n < floor || st.events < floor) {
            r->failed = TL_ECORRUPT;
            snprintf(r->why, sizeof r->why, "read %llu events (head %llu), %llu were acknowledged", (unsigned long long)n,
                     (unsigned long long)st.events, (unsigned long long)floor);
        }
        r->reads++;
    }
    return NULL;
}

START_TEST(panic_reopens_in_place) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 20, 0, 100);
    uint64_t acked = head_seq(log);
    volatile int stop = 0;
    panic_reader readers[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        readers[i] = (panic_reader){.log = log, .stop = &stop, .acked = &acked};
        pthread_create(&t[i], NULL, panic_read, &readers[i]);
    }
    for (int round = 0; round < 4; round++) {
        usleep(20000);
        break_meta_writes(dir);
        uint8_t empty = 0x80;
        tl_draft d = {"x.lost", "alice", NULL, &empty, 1};
        int rc = tl_log_append(log, &d, 1, NULL);
        ck_assert_msg(rc == TL_ESTORAGE, "round %d: a failed meta write answered %s: %s", round, tl_strerror(rc),
                      tl_errdetail());
        ck_assert_msg(tl_errdetail()[0], "a storage failure without a detail");
        /* the environment is fatal now: in odd rounds the readers meet it first and reopen */
        if (round % 2) usleep(50000);
        uint64_t first = 0;
        tl_draft d2 = {"x.after", "bob", NULL, &empty, 1};
        rc = tl_log_append(log, &d2, 1, &first);
        ck_assert_msg(rc == 0, "round %d: writing after the failure: %s: %s", round, tl_strerror(rc), tl_errdetail());
        ck_assert_uint_eq(first, acked + 1); /* the failed event is not there */
        __atomic_store_n(&acked, first, __ATOMIC_SEQ_CST);
        ck_assert_uint_eq(head_seq(log), acked);
        verify_ok(log, acked);
    }
    /* a command through group commit (the projections' databases: handles kept) */
    tl_cmd *cmd;
    tl_result res;
    ck_assert_int_eq(tl_cmd_new(&cmd, "account.create"), 0);
    tl_cmd_set_str(cmd, "id", "acme");
    tl_cmd_set_str(cmd, "name", "Acme");
    break_meta_writes(dir);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), TL_ESTORAGE);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), 0);
    tl_cmd_free(cmd);
    __atomic_store_n(&acked, res.seq, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(!readers[i].failed, "reader %d: %s", i, readers[i].why);
        ck_assert_uint_gt(readers[i].reads, 0);
    }
    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    tl_log_close(log);
    /* a fresh process's view: the same events, verified */
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, acked);
    char again[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, again), 0);
    ck_assert_str_eq(live, again);
    remove_log(log, dir);
}
END_TEST

/* A replay into a directory right after a storage failure left the environment fatal: its
 * copy begins as every reader does (reopening the environment), instead of handing LMDB's
 * copy the fatal environment (storage) or, after a failed reopen, none at all (a crash). */
START_TEST(replay_into_after_panic) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 20, 0, 100);
    break_meta_writes(dir);
    uint8_t empty = 0x80;
    tl_draft d = {"x.lost", "alice", NULL, &empty, 1};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), TL_ESTORAGE);
    char *base = tu_tmpdir();
    char *into = path_in(base, "copy");
    tl_replay_options ro = TL_REPLAY_OPTIONS_INIT;
    ro.into_dir = into;
    tl_replay_report rr;
    int rc = tl_replay(log, &ro, &rr);
    ck_assert_msg(rc == 0, "replay into a directory after a storage failure: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_uint_eq(rr.events, head_seq(log));
    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    ck_assert_str_eq(rr.digest, live);
    tl_log *copy = open_log(into, TL_OPEN_READONLY);
    verify_ok(copy, head_seq(log));
    remove_log(copy, into);
    free(base);
    remove_log(log, dir);
}
END_TEST

/*
 * A storage failure while a command of a batch is written (not at commit: LMDB spilling dirty
 * pages of a very large batch onto a full disk) fails every command of the batch; each answer
 * must say why, with the first failure's detail, not a fixed sentence. An applier registered
 * by the test plays the failing write (the detail is storage_fail's own, for ENOSPC).
 */
static uint64_t fail_at_seq;

static int failing_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    (void)state;
    return ev->seq == fail_at_seq ? tl_wtxn_fail_mdb(w, ENOSPC, "write") : 0;
}

START_TEST(batch_failure_says_why) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_applier a = {.name = "test-fails", .apply = failing_apply};
    ck_assert_int_eq(tl_log_register(log, &a), 0);
    fail_at_seq = 3; /* 1 is the genesis event: the batch's second command fails */
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    enum { N = 4 };
    tl_cmd *cmd[N];
    tl_result res[N];
    for (int i = 0; i < N; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"op\":\"account.create\",\"id\":\"a%d\",\"name\":\"A\"}", i);
        ck_assert_int_eq(tl_cmd_parse(&cmd[i], line, strlen(line), &res[i]), 0);
        tl_batch_exec(b, cmd[i], &res[i]);
    }
    ck_assert_int_eq(res[0].code, 0);
    ck_assert_int_ne(tl_batch_commit(b), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(res[i].code, TL_ESTORAGE);
        ck_assert_msg(strstr(res[i].message, "the disk is full") && strstr(res[i].message, "ENOSPC"),
                      "command %d: %s", i, res[i].message);
        tl_cmd_free(cmd[i]);
    }
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1); /* nothing of the batch was stored */
    remove_log(log, dir);
}
END_TEST

/* ================================================================ damaged files */

/* The offset of needle in hay, or -1. */
static long find_in(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return (long)i;
    return -1;
}

static int count_line(const char *line, size_t len, void *payload) {
    (void)line, (void)len;
    ++*(size_t *)payload;
    return 0;
}

START_TEST(damaged_walks_stop) {
    enum { PAGE = 4096 };
    /* 1. the fuzzer's input that made `stats` loop forever (tests/fuzz/regressions/
     * fuzz_open-layout2/hang-stats-cursor-cycle): 6 bytes written at offset 8 of page 2056 mod
     * the page count of the template it was found with (open-template-layout2, fuzz_open's
     * until 2026-11-28), the header of a page the walk passes */
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log");
    free(base);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char *to = path_in(dir, "writer.key");
    copy_file(TL_SOURCE_DIR "/tests/fuzz/open-template-layout2/writer.key", to, 0600);
    free(to);
    size_t len;
    uint8_t *file = (uint8_t *)tu_read_file(TL_SOURCE_DIR "/tests/fuzz/open-template-layout2/data.mdb", &len);
    ck_assert_ptr_nonnull(file);
    static const uint8_t patch[] = {0x00, 0x00, 0x30, 0x00, 0x00, 0x00};
    memcpy(file + (2056 % (len / PAGE)) * PAGE + 8, patch, sizeof patch);
    to = path_in(dir, "data.mdb");
    ck_assert_int_eq(tu_write_file(to, file, len), 0);
    free(to);
    free(file);
    tl_log *log = open_log(dir, TL_OPEN_READONLY);
    tl_log_stats st;
    int rc = tl_log_stats_get(log, &st);
    ck_assert_msg(rc == TL_ECORRUPT, "stats on a damaged file: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_msg(strstr(tl_errdetail(), "damaged"), "detail: %s", tl_errdetail());
    remove_log(log, dir);

    /* 2. a log leaf page overwritten by an earlier one (all but its page number): a walk of the
     * log meets sequence numbers it has passed */
    log = tu_new_log(&dir);
    append_n(log, 300, 0, 200);
    size_t rlen[2];
    uint8_t *rec[2];
    ck_assert_int_eq(tl_log_record(log, 10, &rec[0], &rlen[0]), 0);
    ck_assert_int_eq(tl_log_record(log, 250, &rec[1], &rlen[1]), 0);
    tl_log_close(log);
    char *data = path_in(dir, "data.mdb");
    file = (uint8_t *)tu_read_file(data, &len);
    long at[2];
    for (int i = 0; i < 2; i++) {
        at[i] = find_in(file, len, rec[i], rlen[i]);
        ck_assert_int_ge(at[i], 0);
        free(rec[i]);
    }
    long early = at[0] / PAGE, late = at[1] / PAGE;
    ck_assert_int_ne(early, late);
    memcpy(file + late * PAGE + 8, file + early * PAGE + 8, PAGE - 8);
    ck_assert_int_eq(tu_write_file(data, file, len), 0);
    free(file);
    free(data);
    log = open_log(dir, TL_OPEN_READONLY);
    rc = tl_log_stats_get(log, &st);
    ck_assert_msg(rc == TL_ECORRUPT, "stats: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_msg(strstr(tl_errdetail(), "log database is damaged"), "detail: %s", tl_errdetail());
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    uint64_t last = 0, n = 0;
    while ((rc = tl_iter_next(it, &ev)) == 0) {
        ck_assert_uint_gt(ev.seq, last); /* never handed out backwards */
        last = ev.seq;
        n++;
    }
    tl_iter_close(it);
    ck_assert_msg(rc == TL_ECORRUPT, "iterating: %s: %s after %llu events", tl_strerror(rc), tl_errdetail(),
                  (unsigned long long)n);
    ck_assert_uint_lt(n, 301);
    /* the export's walks (engine/export.c) stop the same way, before a line goes out twice */
    tl_export_options xo = TL_EXPORT_OPTIONS_INIT;
    size_t lines = 0;
    rc = tl_export(log, &xo, count_line, &lines);
    ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "log database is damaged"), "export: %s: %s",
                  tl_strerror(rc), tl_errdetail());
    /* so does a replay cut at a time (engine/replay.c): its check of the whole copy, which
     * comes first, or its search for the last event before the time */
    base = tu_tmpdir();
    char *into = path_in(base, "copy");
    free(base);
    tl_replay_options ro = TL_REPLAY_OPTIONS_INIT;
    ro.into_dir = into;
    ro.until_ts = UINT64_C(1) << 62;
    tl_replay_report rr;
    rc = tl_replay(log, &ro, &rr);
    ck_assert_msg(rc == TL_ECORRUPT && (strstr(tl_errdetail(), "log database is damaged") || strstr(tl_errdetail(), "out of order")),
                  "replay --until-time: %s: %s", tl_strerror(rc), tl_errdetail());
    tu_rmdir(into); /* nothing of the failed copy is left; its temp directory goes too */
    free(into);
    tl_verify_report r;
    ck_assert_int_eq(tl_log_verify(log, NULL, &r), TL_ECORRUPT);
    remove_log(log, dir);
}
END_TEST

/* After a read of this transaction met a damaged page, LMDB refuses the rest of it with
 * MDB_BAD_TXN: that is `corrupt`, naming the damaged read, not `storage` ("free space, then
 * retry", a reliability audit saw it at the commit of a command on a damaged state page).
 * Without such a read in the transaction, MDB_BAD_TXN stays `storage`. */
START_TEST(a_bad_txn_after_a_damaged_page_is_corrupt) {
    tl_corrupt_forget();
    ck_assert_int_eq(tl_fail_mdb(MDB_BAD_TXN, "commit"), TL_ESTORAGE);
    ck_assert_int_eq(tl_fail_mdb(MDB_CORRUPTED, "read the state"), TL_ECORRUPT);
    ck_assert_int_eq(tl_fail_mdb(MDB_BAD_TXN, "commit"), TL_ECORRUPT);
    ck_assert_msg(strstr(tl_errdetail(), "read the state") && strstr(tl_errdetail(), "verify"), "%s", tl_errdetail());
    /* a write transaction's beginning forgets it: a later transaction's failure is its own */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    ck_assert_int_eq(tl_fail_mdb(MDB_BAD_TXN, "commit"), TL_ESTORAGE);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_failures");
    TCase *tc = tcase_create("processes");
    tcase_add_test(tc, follow_sees_other_process);
    tcase_add_test(tc, two_writer_processes);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_test(tc, panic_reopens_in_place);
    tcase_add_test(tc, replay_into_after_panic);
    tcase_add_test(tc, batch_failure_says_why);
    tcase_add_test(tc, damaged_walks_stop);
    tcase_add_test(tc, a_bad_txn_after_a_damaged_page_is_corrupt);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
