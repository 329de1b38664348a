/*
 * test_log_map.c — the LMDB environment behind a log handle: the map growing past its end
 * (another process growing it, readers taking turns that must not starve the growth, an
 * append inside its own read snapshot refused), warming the file into memory (small pages
 * kept, or 2 MiB entries on request), one handle per log per process (a forked child, a fork
 * handler, an open during another thread's close) and writes refused inside the thread's own
 * batch.
 *
 * Each test makes its own log in a fresh temporary directory (log_fixture.h).
 */
#include <fcntl.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log_fixture.h"

/* ================================================================ map growth */

/* The log of map_grows, kept reachable: its child _exits without closing the parent's log
 * (an LMDB environment is not used across fork), and valgrind's leak check at that exit
 * would otherwise count the handle as lost when no register holds it any more. */
static tl_log *volatile map_grows_log; /* volatile: a static never read would be optimised away */

START_TEST(map_grows) {
    /* THREADLOG_TEST_MAP_BYTES starts the map at 1 MiB instead of 1 GiB, so a few MiB of
     * events cross it (this test runs in its own forked process: the variable dies with it) */
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = map_grows_log = tu_new_log(&dir);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.map_bytes, 1048576);
    /* 48 events of 64 KiB in batches of 4: 3 MiB */
    for (int b = 0; b < 12; b++) append_n(log, 4, (uint64_t)b * 4, 65536);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 49);
    ck_assert_uint_gt(st.map_bytes, 1048576);
    ck_assert_uint_gt(st.log_bytes, 3u << 20);
    uint64_t map1 = st.map_bytes;
    /* one event of nearly 1 MiB, in a map with less room left than that */
    append_n(log, 1, 48, TL_EVENT_MAX - 4096);
    /* another process grows the map while this one holds the log open */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tl_log *child;
        if (tl_log_open(&child, dir, NULL)) _exit(2);
        for (int b = 0; b < 12; b++) {
            uint8_t *pad = calloc(1, 200000);
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str_with_body(&pk, "pad", 3);
            msgpack_pack_bin_with_body(&pk, pad, 200000);
            tl_draft d = {"x.child", "child", NULL, (const uint8_t *)buf.data, buf.size};
            tl_draft ds[4] = {d, d, d, d};
            if (tl_log_append(child, ds, 4, NULL)) _exit(3);
            msgpack_sbuffer_destroy(&buf);
            free(pad);
        }
        tl_log_close(child);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    /* this process adopts the bigger map and goes on reading and writing */
    append_n(log, 2, 100, 1000);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 50 + 48 + 2);
    ck_assert_uint_gt(st.map_bytes, map1);
    ck_assert_uint_gt(st.file_bytes, 12u << 20);
    verify_ok(log, 100);
    tl_log_close(log);
    map_grows_log = NULL;
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, 100);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

/* A batch that meets the end of the map: from that command on tl_batch_exec answers
 * TL_ESTORAGE saying that the commit grows the map and runs the batch again (not LMDB's word
 * for a transaction that must abort), and tl_batch_commit does, with every result final. */
static void parse_ok(tl_log *log, const char *json) {
    tl_cmd *c;
    tl_result res;
    ck_assert_int_eq(tl_cmd_parse(&c, json, strlen(json), &res), 0);
    ck_assert_msg(tl_cmd_exec(log, c, &res) == 0, "%s: %s", json, res.message);
    tl_cmd_free(c);
}

START_TEST(batch_meets_the_end_of_the_map) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1); /* its own forked process, as map_grows */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    parse_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    parse_ok(log, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    parse_ok(log, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    enum { N = 12 };
    static uint8_t bytes[150000];
    tl_cmd *cmds[N];
    tl_result res[N];
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    int first_full = -1;
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i);
        ck_assert_int_eq(tl_cmd_new(&cmds[i], "attachment.upload"), 0);
        ck_assert_int_eq(tl_cmd_set_str(cmds[i], "as", "al"), 0);
        ck_assert_int_eq(tl_cmd_set_str(cmds[i], "id", id), 0);
        ck_assert_int_eq(tl_cmd_set_str(cmds[i], "project", "p1"), 0);
        ck_assert_int_eq(tl_cmd_set_str(cmds[i], "name", "f.bin"), 0);
        bytes[0] = (uint8_t)i;
        ck_assert_int_eq(tl_cmd_set_data(cmds[i], bytes, sizeof bytes), 0);
        int rc = tl_batch_exec(b, cmds[i], &res[i]);
        if (rc && first_full < 0) first_full = i;
        if (first_full >= 0) {
            ck_assert_int_eq(rc, TL_ESTORAGE);
            ck_assert_msg(strstr(res[i].message, "tl_batch_commit grows it") != NULL, "command %d: %s", i, res[i].message);
        } else {
            ck_assert_int_eq(rc, 0);
        }
    }
    ck_assert_msg(first_full > 0, "the batch never met the end of the 1 MiB map");
    ck_assert_int_eq(tl_batch_commit(b), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(res[i].code == 0 && res[i].seq == 5 + (uint64_t)i, "command %d: %d %s", i, res[i].code, res[i].message);
        tl_cmd_free(cmds[i]);
    }
    verify_ok(log, 4 + N);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES");
}
END_TEST

/* The sum of one smaps field (in bytes) over every mapping of a file whose path ends in
 * `suffix` (/proc/self/smaps). */
static uint64_t smaps_bytes(const char *suffix, const char *field) {
    FILE *f = fopen("/proc/self/smaps", "r");
    ck_assert_ptr_nonnull(f);
    char line[4600], want[64];
    snprintf(want, sizeof want, "%s: %%llu kB", field);
    bool in_file = false;
    uint64_t bytes = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        unsigned long long kib;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            size_t n = strcspn(line, "\n"), m = strlen(suffix);
            in_file = n >= m && memcmp(line + n - m, suffix, m) == 0;
        } else if (in_file && sscanf(line, want, &kib) == 1) {
            bytes += kib * 1024;
        }
    }
    fclose(f);
    return bytes;
}

static uint64_t data_map_rss(void) { return smaps_bytes("/data.mdb", "Rss"); }

/* Two reader threads whose read transactions overlap without a gap: each holds one for
 * 60 ms, the second 30 ms behind the first, until told to stop or 6 s have passed. */
typedef struct overlap_reader {
    tl_log *log;
    volatile int *stop;
    unsigned delay_ms;
    int failed;
    unsigned txns;
} overlap_reader;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *overlap_read(void *arg) {
    overlap_reader *r = arg;
    usleep(r->delay_ms * 1000);
    double until = mono_s() + 6;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && mono_s() < until) {
        tl_iter *it;
        if (tl_iter_open(r->log, 1, &it) != 0) { r->failed = 1; break; }
        usleep(60000);
        tl_iter_close(it);
        r->txns++;
    }
    return NULL;
}

/* Growing the map waits for the transactions of the process to end; readers taking turns
 * must not keep it out (glibc's rwlock lets readers in while a writer waits: without the gate
 * of log.c, these appends wait until the readers give up, 6 s). */
START_TEST(map_growth_not_starved_by_readers) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    volatile int stop = 0;
    overlap_reader rd[2] = {{log, &stop, 0, 0, 0}, {log, &stop, 30, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, overlap_read, &rd[i]);
    usleep(100000); /* both readers running */
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    uint64_t map0 = st.map_bytes;
    double t0 = mono_s();
    for (int b = 0; b < 8; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 2 MiB: the map grows */
    double took = mono_s() - t0;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_gt(st.map_bytes, map0);
    ck_assert_msg(!rd[0].failed && !rd[1].failed, "a reader failed");
    ck_assert_uint_gt(rd[0].txns + rd[1].txns, 2);
    ck_assert_msg(took < 3.0, "8 appends that grow the map took %.2f s while readers took turns", took);
    verify_ok(log, 33);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

/* A thread that holds a read snapshot (an open iterator, a follow callback) and appends
 * across the map's end would wait for itself for ever: the append is refused at once
 * (storage, retry), the log unchanged; once the snapshot ends, the same append grows the map. */
START_TEST(map_growth_refused_inside_own_snapshot) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    msgpack_sbuffer buf[4];
    tl_draft d[4];
    for (int i = 0; i < 4; i++) {
        msgpack_sbuffer_init(&buf[i]);
        x_payload(&buf[i], (uint64_t)i, "hello", 65536);
        d[i] = (tl_draft){"x.test", "alice", NULL, (const uint8_t *)buf[i].data, buf[i].size};
    }
    double t0 = mono_s();
    int rc = 0;
    uint64_t appended = 0;
    for (int b = 0; b < 16 && rc == 0; b++) /* 4 MiB at most: the map (1 MiB) must grow */
        if ((rc = tl_log_append(log, d, 4, NULL)) == 0) appended += 4;
    ck_assert_int_eq(rc, TL_ESTORAGE);
    ck_assert_msg(strstr(tl_errdetail(), "read snapshot") != NULL, "%s", tl_errdetail());
    ck_assert_msg(mono_s() - t0 < 5.0, "the refusal took %.2f s", mono_s() - t0);
    /* a snapshot of this log does not hold another log's map: that one grows (a replica
     * written from an iterator on its source) */
    char *dir2;
    tl_log *other = tu_new_log(&dir2);
    for (int b = 0; b < 16; b++) ck_assert_int_eq(tl_log_append(other, d, 4, NULL), 0);
    tl_log_stats st2;
    ck_assert_int_eq(tl_log_stats_get(other, &st2), 0);
    ck_assert_uint_gt(st2.map_bytes, 1048576);
    remove_log(other, dir2);
    tl_iter_close(it);
    ck_assert_int_eq(tl_log_append(log, d, 4, NULL), 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1 + appended + 4);
    ck_assert_uint_gt(st.map_bytes, 1048576);
    for (int i = 0; i < 4; i++) msgpack_sbuffer_destroy(&buf[i]);
    verify_ok(log, 1 + appended + 4);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

/* ================================================================ warm */

START_TEST(warm_maps_the_file) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    for (int b = 0; b < 12; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 3 MiB */
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    /* a fresh handle: its own map, of which an open touches only the first pages (one handle
     * per log per process: the writer's is closed first) */
    tl_log_close(log);
    tl_log *reader = open_log(dir, TL_OPEN_READONLY);
    uint64_t before = data_map_rss(), mapped = 0;
    ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
    uint64_t after = data_map_rss();
    ck_assert_uint_ge(mapped, st.log_bytes);
    ck_assert_uint_le(mapped, st.file_bytes + 4096);
    ck_assert_msg(after - before >= mapped - mapped / 10, "warm mapped %llu bytes but resident memory grew by %llu",
                  (unsigned long long)mapped, (unsigned long long)(after - before));
    /* reads go on as before */
    verify_ok(reader, 49);
    tl_log_close(reader);
    /* in chunks of 64 KiB (each under its own read transaction): the same bytes, mapped */
    setenv("THREADLOG_TEST_WARM_CHUNK", "65536", 1);
    reader = open_log(dir, TL_OPEN_READONLY);
    uint64_t chunked = 0;
    before = data_map_rss();
    ck_assert_int_eq(tl_log_warm(reader, &chunked), 0);
    after = data_map_rss();
    unsetenv("THREADLOG_TEST_WARM_CHUNK");
    ck_assert_uint_eq(chunked, mapped);
    ck_assert_msg(after - before >= mapped - mapped / 10, "warm in chunks mapped %llu bytes but resident memory grew by %llu",
                  (unsigned long long)mapped, (unsigned long long)(after - before));
    tl_log_close(reader);
    ck_assert_int_eq(tl_log_warm(NULL, &mapped), TL_EUSAGE);
    ck_assert_uint_eq(mapped, 0);
    remove_log(open_log(dir, 0), dir);
}
END_TEST

/* Drop the file's clean cached pages, then read it back page by page without readahead:
 * the page cache then holds it in 4 KiB folios, as LMDB's own writes leave it. */
static void cache_in_small_pages(const char *path) {
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    char page[4096];
    for (off_t off = 0; pread(fd, page, sizeof page, off) > 0; off += (off_t)sizeof page) {}
    close(fd);
}

/* Whether this kernel reads a file mapped with MADV_HUGEPAGE into 2 MiB folios and maps
 * them with 2 MiB entries (ext4 on Linux 6.16 and later, THP not disabled). */
static bool kernel_maps_files_huge(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/huge-probe", dir);
    size_t len = 8u << 20;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    char *buf = calloc(1, len);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    free(buf);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    bool huge = false;
#if defined(MADV_HUGEPAGE) && defined(MADV_POPULATE_READ)
    if (madvise(map, len, MADV_HUGEPAGE) == 0 && madvise(map, len, MADV_POPULATE_READ) == 0)
        huge = smaps_bytes("/huge-probe", "FilePmdMapped") > 0;
#endif
    munmap(map, len);
    close(fd);
    unlink(path);
    return huge;
}

/* By default warm keeps the page cache as it is (small pages stay small); with
 * THREADLOG_WARM_HUGE_PAGES=1, where the kernel can, it leaves the data file mapped with 2 MiB
 * entries even when the page cache held it in small pages. */
START_TEST(warm_maps_huge_pages) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    for (int b = 0; b < 48; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 12 MiB */
    tl_log_close(log);
    char data[4200];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (!kernel_maps_files_huge(dir)) {
        /* nothing to measure on this kernel (or under valgrind, which places mappings itself):
         * say so, and still run the rebuild (it finds no 2 MiB entries): reads stay right */
        fprintf(stderr, "warm_maps_huge_pages: this kernel does not map files with 2 MiB entries; only reads checked\n");
        cache_in_small_pages(data);
        tl_log *reader = open_log(dir, TL_OPEN_READONLY);
        uint64_t mapped = 0;
        ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
        ck_assert_uint_ge(data_map_rss(), mapped - mapped / 10);
        verify_ok(reader, 193);
        remove_log(reader, dir);
        return;
    }
    for (int keep = 1; keep >= 0; keep--) {
        cache_in_small_pages(data);
        if (!keep) setenv("THREADLOG_WARM_HUGE_PAGES", "1", 1);
        tl_log *reader = open_log(dir, TL_OPEN_READONLY);
        uint64_t mapped = 0;
        ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
        unsetenv("THREADLOG_WARM_HUGE_PAGES");
        uint64_t huge = smaps_bytes("/data.mdb", "FilePmdMapped");
        if (keep) ck_assert_msg(huge < mapped / 2, "kept small pages, yet %llu of %llu bytes on 2 MiB entries",
                                (unsigned long long)huge, (unsigned long long)mapped);
        else ck_assert_msg(huge >= mapped / 2, "warm left %llu of %llu bytes on 2 MiB entries",
                           (unsigned long long)huge, (unsigned long long)mapped);
        ck_assert_uint_ge(data_map_rss(), mapped - mapped / 10);
        verify_ok(reader, 193); /* the bytes read through huge pages are the same */
        tl_log_close(reader);
    }
    remove_log(open_log(dir, TL_OPEN_READONLY), dir);
}
END_TEST

/* ================================================================ handles */

/* One handle per log per process (tl_log_open): LMDB's locks belong to the process, so a
 * second environment on the same file, once closed, would drop the first one's locks. */
START_TEST(one_handle_per_log_per_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 3, 0, 16);
    tl_log *second = (tl_log *)&second;
    ck_assert_int_eq(tl_log_open(&second, dir, NULL), TL_EUSAGE);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(tl_errdetail(), "already open in this process") != NULL, "%s", tl_errdetail());
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    ck_assert_int_eq(tl_log_open(&second, dir, &ro), TL_EUSAGE);
    char *other_path = malloc(strlen(dir) + 3); /* the same file by another path */
    sprintf(other_path, "%s/.", dir);
    ck_assert_int_eq(tl_log_open(&second, other_path, &ro), TL_EUSAGE);
    /* a child of fork() may open it anew (it must not use the handle it inherited) */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tl_log *mine = NULL;
        int rc = tl_log_open(&mine, dir, &ro);
        tl_log_stats st;
        if (rc || tl_log_stats_get(mine, &st) || st.events != 4) _exit(3);
        tl_log_close(mine);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not open the log: %d", status);
    /* once the first is closed, the log opens again, by either path */
    tl_log_close(log);
    log = open_log(other_path, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_open(&second, dir, NULL), TL_EUSAGE);
    tl_log_close(log);
    log = open_log(dir, 0);
    verify_ok(log, 4);
    free(other_path);
    remove_log(log, dir);
}
END_TEST

/* A log stays listed as open until its environment is closed: an open tried while another
 * thread is closing it is refused, or that close would drop the new environment's locks. */
typedef struct closer { tl_log *log; } closer;
static void *close_slowly(void *p) {
    tl_log_close(((closer *)p)->log);
    return NULL;
}

START_TEST(open_during_close_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setenv("THREADLOG_TEST_CLOSE_PAUSE_MS", "600", 1);
    closer c = {log};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, close_slowly, &c), 0);
    usleep(200000); /* inside the close's pause, before its environment closes */
    tl_log *second = NULL;
    int rc = tl_log_open(&second, dir, NULL);
    pthread_join(t, NULL);
    unsetenv("THREADLOG_TEST_CLOSE_PAUSE_MS");
    if (second) tl_log_close(second);
    ck_assert_msg(rc == TL_EUSAGE, "an open during another thread's close answered %s", tl_strerror(rc));
    remove_log(open_log(dir, 0), dir);
}
END_TEST

/* A child of fork() may open a log, even from a fork handler the embedder registered before
 * its first tl_log_open: the library's own handlers (which guard its list of open logs) are
 * registered when it is loaded, so they wrap the embedder's. */
static const char *atfork_dir;
static volatile int atfork_rc = 1;
static void child_opens_log(void) {
    if (!atfork_dir) return;
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    tl_log *l = NULL;
    atfork_rc = tl_log_open(&l, atfork_dir, &ro);
    if (!atfork_rc) tl_log_close(l);
}

START_TEST(fork_handler_may_open_a_log) {
    ck_assert_int_eq(pthread_atfork(NULL, NULL, child_opens_log), 0); /* before any open */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    atfork_dir = dir;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(atfork_rc == 0 ? 0 : 3);
    int status = 0, waited = 0;
    while (waitpid(pid, &status, WNOHANG) == 0 && waited++ < 100) usleep(50000);
    if (waited > 100) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    atfork_dir = NULL;
    ck_assert_msg(waited <= 100, "the child hung in its fork handler's tl_log_open");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's handler could not open the log");
    remove_log(log, dir);
}
END_TEST

/* An open batch holds the process's write lock: a second write from its own thread would
 * wait for that thread for ever, so it is refused at once. */
START_TEST(writes_inside_own_batch_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_batch *b, *b2 = (tl_batch *)&b2;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    ck_assert_int_eq(tl_batch_begin(log, &b2), TL_EUSAGE);
    ck_assert_ptr_null(b2);
    tl_cmd *cmd;
    tl_result res = {0};
    ck_assert_int_eq(tl_cmd_new(&cmd, "account.create"), 0);
    ck_assert_int_eq(tl_cmd_set_str(cmd, "id", "acme"), 0);
    ck_assert_int_eq(tl_cmd_set_str(cmd, "name", "Acme"), 0);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), TL_EUSAGE);
    ck_assert_int_eq(res.code, TL_EUSAGE);
    uint8_t empty = 0x80;
    tl_draft d = {"x.a", "alice", NULL, &empty, 1};
    uint64_t first = 77;
    ck_assert_int_eq(tl_log_append(log, &d, 1, &first), TL_EUSAGE);
    ck_assert_uint_eq(first, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_erase(log, "m-1", "r", &res), TL_EUSAGE);
    tl_replay_report rr;
    ck_assert_int_eq(tl_replay(log, NULL, &rr), TL_EUSAGE);
    /* the batch itself still works, and after it everything does */
    ck_assert_int_eq(tl_batch_exec(b, cmd, &res), 0);
    ck_assert_int_eq(tl_batch_commit(b), 0);
    ck_assert_int_eq(tl_batch_commit(NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(log, &d, 1, &first), 0);
    ck_assert_uint_eq(first, 3);
    tl_cmd_free(cmd);
    verify_ok(log, 3);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_map");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, map_grows);
    tcase_add_test(tc, batch_meets_the_end_of_the_map);
    tcase_add_test(tc, map_growth_not_starved_by_readers);
    tcase_add_test(tc, map_growth_refused_inside_own_snapshot);
    tcase_add_test(tc, warm_maps_the_file);
    tcase_add_test(tc, warm_maps_huge_pages);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("handles");
    tcase_add_test(tc, one_handle_per_log_per_process);
    tcase_add_test(tc, writes_inside_own_batch_refused);
    tcase_add_test(tc, fork_handler_may_open_a_log);
    tcase_add_test(tc, open_during_close_refused);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
