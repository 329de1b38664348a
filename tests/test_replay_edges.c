/*
 * test_replay_edges.c — replay at its edges, on small hand-made logs (test_replay_live.c,
 * _copies.c, _processes.c and _damage.c cover replay on large seeded streams): logs ending
 * anywhere around a chunk boundary; cuts at the head, next to it and at an exact time; a verified cut checking the tail it removes; an
 * extension's payload in that tail; the copy compacted; a copy that fails leaving nothing;
 * and damage replay must refuse and name as verify does (the tamper fixture's log): an
 * altered event, an equal time (accepted), a second genesis, the head naming another key, a
 * removed tail, an altered last event. And the digest's other half: states that differ in one
 * projection byte, key, entry, order or database give different digests.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h> /* memmem: the build defines _GNU_SOURCE */
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h" /* tl_keyfile_* */
#include "tamper_fixture.h"
#include "testutil.h"

static void append_x(tl_log *log, int n) {
    static const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01}; /* {"n":1} */
    for (int i = 0; i < n; i++) {
        tl_draft d = {"x.tick", "@operator", NULL, payload, sizeof payload};
        ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    }
}

static uint64_t head_of(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

/* Run command lines through one batch; each must be accepted. */
static void run_ok(tl_log *log, const char *const *lines, int n) {
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    tl_cmd **cmds = calloc((size_t)n, sizeof *cmds);
    for (int i = 0; i < n; i++) {
        tl_result r;
        ck_assert_msg(tl_cmd_parse(&cmds[i], lines[i], strlen(lines[i]), &r) == 0, "parse %s: %s", lines[i], r.message);
        ck_assert_msg(tl_batch_exec(b, cmds[i], &r) == 0, "%s: %s", lines[i], r.message);
    }
    ck_assert_int_eq(tl_batch_commit(b), 0);
    for (int i = 0; i < n; i++) tl_cmd_free(cmds[i]);
    free(cmds);
}

static char *sibling(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 8);
    sprintf(p, "%s.%s", dir, name);
    return p;
}

static void remove_all(tl_log *log, char *dir) {
    if (log) tl_log_close(log);
    char *base = strdup(dir);
    *strrchr(base, '/') = 0;
    tu_rmdir(base); /* the log and its sibling copies live in one temp dir */
    free(base);
    free(dir);
}

static tl_log *open_ro(const char *dir) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log;
    int rc = tl_log_open(&log, dir, &o);
    ck_assert_msg(rc == 0, "open %s: %s %s", dir, tl_strerror(rc), tl_errdetail());
    return log;
}

/* ================================================================ chunks */

/* Chunks of 16: logs of 15 to 34 events end with a full chunk, with one event alone in the
 * last chunk (17, 33) and everything between. Every length replays, with and without
 * verification, on one and two threads, every event applied and checked. */
START_TEST(every_log_length_across_chunk_boundaries) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "16", 1);
    append_x(log, 13); /* 14 events */
    for (uint64_t len = 15; len <= 34; len++) {
        append_x(log, 1);
        ck_assert_uint_eq(head_of(log), len);
        char live[TL_PUBKEY_HEX_SIZE];
        ck_assert_int_eq(tl_digest(log, live), 0);
        for (int verify = 0; verify <= 1; verify++)
            for (unsigned threads = 1; threads <= 2; threads++) {
                tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
                o.verify = verify;
                o.threads = threads;
                tl_replay_report r;
                int rc = tl_replay(log, &o, &r);
                ck_assert_msg(rc == 0, "%llu events, verify %d, %u threads: %s", (unsigned long long)len, verify, threads,
                              tl_errdetail());
                ck_assert_uint_eq(r.events, len);
                ck_assert_uint_eq(r.verify.events, verify ? len : 0);
                ck_assert_str_eq(r.digest, live);
            }
    }
    unsetenv("THREADLOG_TEST_REPLAY_CHUNK");
    remove_all(log, dir);
}
END_TEST

/* ================================================================ cuts */

static uint64_t ts_of(tl_log *log, uint64_t seq) {
    tl_iter *it;
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_open(log, seq, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    uint64_t ts = ev.ts;
    tl_iter_close(it);
    return ts;
}

/* Replay into `name` beside dir; returns the code; on success *head is the copy's head and
 * the copy is checked by verify, then removed. A refusal leaves no directory. */
static int cut(tl_log *log, const char *dir, const char *name, uint64_t seq, uint64_t ts, uint64_t *head) {
    char *into = sibling(dir, name);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = seq;
    o.until_ts = ts;
    tl_replay_report r;
    int rc = tl_replay(log, &o, &r);
    *head = 0;
    if (rc == 0) {
        tl_log *c = open_ro(into);
        *head = head_of(c);
        ck_assert_uint_eq(r.events, *head);
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "the copy %s: %s", name, vr.reason);
        tl_log_close(c);
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", into);
        ck_assert_int_eq(system(cmd), 0);
    } else {
        struct stat st;
        ck_assert_msg(stat(into, &st) != 0, "a refused replay left %s", into);
    }
    free(into);
    return rc;
}

/* A cut after N keeps 1..N exactly: at the head itself, one before it, after the last event at
 * or before an exact time (its own time, one microsecond earlier); with both bounds, the
 * earlier one. Past the head or before the genesis: usage, and no copy. */
START_TEST(cuts_at_their_edges) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *setup[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
    };
    run_ok(log, setup, 3);
    for (int i = 0; i < 6; i++) {
        char line[200];
        snprintf(line, sizeof line, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n%d\",\"project\":\"p0\",\"body\":\"note %d\"}", i, i);
        const char *l = line;
        run_ok(log, &l, 1);
    }
    uint64_t h = head_of(log), got;
    ck_assert_uint_eq(h, 10);
    ck_assert_int_eq(cut(log, dir, "at-head", h, 0, &got), 0);
    ck_assert_uint_eq(got, h);
    ck_assert_int_eq(cut(log, dir, "before-head", h - 1, 0, &got), 0);
    ck_assert_uint_eq(got, h - 1);
    ck_assert_int_eq(cut(log, dir, "at-1", 1, 0, &got), 0);
    ck_assert_uint_eq(got, 1);
    ck_assert_int_eq(cut(log, dir, "past-head", h + 1, 0, &got), TL_EUSAGE);
    uint64_t t7 = ts_of(log, 7);
    ck_assert_uint_gt(t7, ts_of(log, 6));
    ck_assert_int_eq(cut(log, dir, "time-7", 0, t7, &got), 0);
    ck_assert_uint_eq(got, 7);
    ck_assert_int_eq(cut(log, dir, "time-before-7", 0, t7 - 1, &got), 0);
    ck_assert_uint_eq(got, 6);
    ck_assert_int_eq(cut(log, dir, "time-last", 0, ts_of(log, h), &got), 0);
    ck_assert_uint_eq(got, h);
    ck_assert_int_eq(cut(log, dir, "time-before-log", 0, ts_of(log, 1) - 1, &got), TL_EUSAGE);
    ck_assert_int_eq(cut(log, dir, "seq-first", 5, t7, &got), 0);
    ck_assert_uint_eq(got, 5);
    ck_assert_int_eq(cut(log, dir, "time-first", 9, t7, &got), 0);
    ck_assert_uint_eq(got, 7);
    remove_all(log, dir);
}
END_TEST

/* A cut reads the records after N and deletes their content: a verified cut checks that tail
 * as verify would first, so content deleted behind the log's back after N is refused, not cut
 * away unseen into a copy that verifies. */
START_TEST(a_verified_cut_checks_the_tail_content) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *lines[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
        "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n0\",\"project\":\"p0\",\"body\":\"kept\"}",
        "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n1\",\"project\":\"p0\",\"body\":\"deleted behind the log's back\"}",
    };
    run_ok(log, lines, 4);
    uint64_t n = head_of(log);
    run_ok(log, lines + 4, 1);
    tl_log_close(log);
    /* delete n1's content: the content record that is not n0's (n0's body is "kept") */
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi dbi;
    MDB_cursor *cur = tu_raw_cursor(txn, "content", &dbi);
    MDB_val k, v;
    int deleted = 0;
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
        if (v.mv_size != 32 + 4) {
            ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
            deleted++;
        }
    ck_assert_int_eq(deleted, 1);
    mdb_cursor_close(cur);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    tl_verify_report vr;
    ck_assert_int_eq(tl_log_verify(log, NULL, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, n + 1);
    char *into = sibling(dir, "cut");
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = n;
    o.verify = 1;
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, n + 1);
    struct stat st;
    ck_assert_msg(stat(into, &st) != 0, "a refused cut left %s", into);
    free(into);
    remove_all(log, dir);
}
END_TEST

static int find_note_commit(const char *line, size_t len, void *payload) {
    (void)len;
    const char *p = strstr(line, "\"kind\":\"note.added\"") ? strstr(line, "\"body_commit\":\"") : NULL;
    if (p) memcpy(payload, p + 15, 64);
    return 0;
}

/* An extension's payload commits to nothing stored (FORMAT.md): a cut deletes the content the
 * removed events committed to, but an extension event after N whose payload happens to hold a
 * body_commit naming a kept note's content leaves that content alone. */
START_TEST(a_cut_ignores_extension_payloads) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *lines[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
        "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n0\",\"project\":\"p0\",\"body\":\"kept before the cut\"}",
    };
    run_ok(log, lines, 4);
    uint64_t n = head_of(log);
    char hex[65] = {0};
    ck_assert_int_eq(tl_export(log, NULL, find_note_commit, hex), 0);
    uint8_t x[1 + 12 + 2 + 32] = {0x81, 0xab, 'b', 'o', 'd', 'y', '_', 'c', 'o', 'm', 'm', 'i', 't', 0xc4, 0x20};
    for (int i = 0; i < 32; i++) {
        unsigned b;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &b), 1);
        x[15 + i] = (uint8_t)b;
    }
    tl_draft d = {"x.ext", "@operator", NULL, x, sizeof x};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    char *into = sibling(dir, "cut");
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = n;
    o.verify = 1;
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "cut: %s", tl_errdetail());
    tl_log *c = open_ro(into);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "the copy: %s", vr.reason);
    tl_query q = TL_QUERY_INIT;
    q.as = "al";
    q.project = "p0";
    q.channel = "notes";
    char *json;
    ck_assert_int_eq(tl_messages_query(c, &q, &json), 0);
    ck_assert_msg(strstr(json, "kept before the cut"), "n0 in the copy: %s", json);
    tl_free(json);
    tl_log_close(c);
    free(into);
    remove_all(log, dir);
}
END_TEST

static bool file_holds(const char *path, const char *marker) {
    size_t len;
    char *data = tu_read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    bool found = memmem(data, len, marker, strlen(marker)) != NULL;
    free(data);
    return found;
}

/* The copy is compacted (only live pages): erased content that the live file may still hold
 * in freed pages is not in a copy made right after the erasure (docs/OPERATIONS.md). */
START_TEST(a_copy_holds_no_freed_page) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *setup[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
    };
    run_ok(log, setup, 3);
    /* 24 KiB of "ERASED-MARKER-..." (base64 of 18,000 bytes): overflow pages of their own */
    size_t raw_len = 18000, b64_len = raw_len / 3 * 4;
    char *raw = malloc(raw_len), *line = malloc(b64_len + 300);
    for (size_t i = 0; i < raw_len; i++) raw[i] = "ERASED-MARKER-"[i % 14];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int n = sprintf(line, "{\"op\":\"attachment.upload\",\"as\":\"al\",\"id\":\"f0\",\"project\":\"p0\",\"name\":\"f\",\"data\":\"");
    for (size_t i = 0; i < raw_len; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)raw[i] << 16 | (uint32_t)(uint8_t)raw[i + 1] << 8 | (uint8_t)raw[i + 2];
        line[n++] = b64[v >> 18], line[n++] = b64[(v >> 12) & 63], line[n++] = b64[(v >> 6) & 63], line[n++] = b64[v & 63];
    }
    strcpy(line + n, "\"}");
    const char *l = line;
    run_ok(log, &l, 1);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "f0", "request", &res), 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (!file_holds(path, "ERASED-MARKER-ERASED-MARKER-")) fprintf(stderr, "a_copy_holds_no_freed_page: the live file reused the pages\n");
    char *into = sibling(dir, "copy");
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "copy: %s", tl_errdetail());
    snprintf(path, sizeof path, "%s/data.mdb", into);
    ck_assert_msg(!file_holds(path, "ERASED-MARKER-ERASED-MARKER-"), "the erased upload's bytes are in the copy");
    free(raw);
    free(line);
    free(into);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ failures */

/* A replay into a directory that fails while copying (here the file size limit cuts the copy
 * short, as a full disk would) changes nothing: a directory it created is gone, an empty one
 * it was given stays empty, and the next replay into it succeeds. */
START_TEST(a_failed_copy_leaves_nothing) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_x(log, 400);
    char *made = sibling(dir, "made"), *given = sibling(dir, "given");
    ck_assert_int_eq(mkdir(given, 0700), 0);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead */
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 16 * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int i = 0; i < 2; i++) {
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.into_dir = i ? given : made;
        tl_replay_report r;
        int rc = tl_replay(log, &o, &r);
        ck_assert_msg(rc != 0, "a copy of %llu events fitted in 16 KiB", (unsigned long long)head_of(log));
    }
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    struct stat st;
    ck_assert_msg(stat(made, &st) != 0, "a failed replay left the directory it created");
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", given);
    ck_assert_msg(system(cmd) == 0, "a failed replay left files in the directory it was given");
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = given;
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "the next replay: %s", tl_errdetail());
    free(made);
    free(given);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ damage (the tamper fixture's log) */

/* An event whose bytes were altered breaks the next event's link: the unverified replay names
 * that next event, the verified one the altered event itself, whose signature no longer holds
 * (the first bad event, as verify names it) -- though the walk stopped at the broken link. */
START_TEST(altered_event_named_by_the_verified_replay) {
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, 300, &len);
    rec[len - 64 - 5] ^= 1; /* a letter of the payload's note: the event still decodes */
    raw_set(&r, 300, rec, len);
    raw_end(&r);
    free(rec);
    expect_bad(NULL, 300, "a byte of event 300 altered");
    replay_refuses_when(300, false);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_replay_report rr;
    ck_assert_int_eq(tl_replay(log, NULL, &rr), TL_ECORRUPT);
    ck_assert_uint_eq(rr.verify.first_bad_seq, 301); /* unverified: the link that broke */
    tl_log_close(log);
}
END_TEST

/* Times never decrease along a log; they may repeat (logs written before this writer made them
 * strictly increase repeat some, FORMAT.md §3 field 2): verify accepts an equal time, and so
 * does replay, verified or not, in place and into a copy cut there. */
START_TEST(an_equal_time_replays) {
    raw r;
    size_t len, flen;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len), hash[32];
    uint64_t ts;
    record_hash_ts(last, len, hash, &ts);
    tl_keypair kp;
    writer_key(&kp);
    uint8_t *rec = forge(&flen, EVENTS + 1, ts, hash, "x.tamper", "the same microsecond", NULL, &kp);
    raw_set(&r, EVENTS + 1, rec, flen);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    free(last);
    free(rec);
    expect_good(NULL, "an event at its predecessor's time");
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    for (int verified = 0; verified < 2; verified++) {
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = verified;
        tl_replay_report rr;
        ck_assert_msg(tl_replay(log, &o, &rr) == 0, "verify %d: %s", verified, tl_errdetail());
        ck_assert_uint_eq(rr.events, EVENTS + 1);
    }
    tl_log_close(log);
    uint64_t bad = 0;
    ck_assert_int_eq(cut_copy(EVENTS, true, &bad), 0);
}
END_TEST

/* The genesis is first and only first, for replay as for verify: a second one, signed by the
 * writer key and naming a stranger's key, cannot hand the log over to that key (events
 * signed by the stranger after it), verified or not. */
START_TEST(a_second_genesis_is_refused) {
    tl_keypair kp, foreign;
    writer_key(&kp);
    tl_keypair_generate(&foreign);
    raw r;
    size_t len, fl, fl2;
    uint8_t h[32], h2[32];
    uint64_t ts, ts2;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    uint8_t *g2 = forge(&fl, EVENTS + 1, ts, h, "log.created", "a new beginning", foreign.pk, &kp);
    record_hash_ts(g2, fl, h2, &ts2);
    uint8_t *after = forge(&fl2, EVENTS + 2, ts2, h2, "x.tamper", "signed by the stranger", NULL, &foreign);
    raw_set(&r, EVENTS + 1, g2, fl);
    raw_set(&r, EVENTS + 2, after, fl2);
    raw_set_head(&r, EVENTS + 2);
    raw_end(&r);
    uint8_t head[80];
    head_get(head);
    memcpy(head + 48, foreign.pk, 32); /* the head names the stranger's key, as that genesis would */
    head_put(head);
    char *kf = tl_keyfile_rotation_path(g_dir, foreign.pk); /* and the stranger's key is there to open it */
    ck_assert_int_eq(tl_keyfile_write(kf, &foreign), 0);
    free(kf);
    expect_bad(NULL, EVENTS + 1, "a second genesis");
    replay_refuses(EVENTS + 1);
    tl_keypair_wipe(&kp);
    tl_keypair_wipe(&foreign);
    free(last), free(g2), free(after);
}
END_TEST

/* The last event has no next link to break: its altered bytes show against the head's
 * hash, which replay checks before it rewrites the head, verified or not. */
START_TEST(altered_last_event_refused) {
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, EVENTS, &len);
    rec[len - 64 - 5] ^= 1;
    raw_set(&r, EVENTS, rec, len);
    raw_end(&r);
    free(rec);
    expect_bad(NULL, EVENTS, "a byte of the last event altered");
    replay_refuses(EVENTS);
    expect_bad(NULL, EVENTS, "after the refused replays");
}
END_TEST

/* A head record naming another key than the key chain's (a stranger's, whose key file is
 * there so that the log opens for writing): replay refuses rather than rewrite the head with
 * the chain's key and hide it. */
START_TEST(head_naming_another_key_refused) {
    tl_keypair foreign;
    tl_keypair_generate(&foreign);
    char *kf = tl_keyfile_rotation_path(g_dir, foreign.pk);
    ck_assert_int_eq(tl_keyfile_write(kf, &foreign), 0);
    free(kf);
    uint8_t head[80];
    head_get(head);
    memcpy(head + 48, foreign.pk, 32);
    head_put(head);
    expect_bad(NULL, EVENTS, "the head names a stranger's key");
    replay_refuses(EVENTS);
    expect_bad(NULL, EVENTS, "after the refused replays");
    tl_keypair_wipe(&foreign);
}
END_TEST

/* A removed tail, the head left as it was: replay names the first missing event, as verify
 * does, not merely the head that no longer matches. */
START_TEST(a_removed_tail_names_its_first_event) {
    raw r;
    raw_begin(&r);
    for (uint64_t s = EVENTS - 2; s <= EVENTS; s++) raw_del(&r, s);
    raw_end(&r);
    expect_bad(NULL, EVENTS - 2, "the last three events removed");
    replay_refuses(EVENTS - 2);
}
END_TEST

/* ================================================================ the digest */

/* The digest must tell apart any two projection states (SPEC §3): the tests above only show
 * that equal states give equal digests, which a digest of nothing would also do. So the
 * projection databases are edited here with raw LMDB writes on the open log's environment
 * (each tl_digest reads in a transaction of its own, after them) and every edit must move the
 * digest, and undoing it must bring the digest back. */
static void proj_put(tl_log *log, MDB_dbi db, const void *k, size_t kn, const void *v, size_t vn) {
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, 0, &t), 0);
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    ck_assert_int_eq(mdb_put(t, db, &key, &val, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static void proj_del(tl_log *log, MDB_dbi db, const void *k, size_t kn) {
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, 0, &t), 0);
    MDB_val key = {kn, (void *)k};
    ck_assert_int_eq(mdb_del(t, db, &key, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static size_t proj_count(tl_log *log, MDB_dbi db) {
    MDB_txn *t;
    MDB_stat st;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, MDB_RDONLY, &t), 0);
    ck_assert_int_eq(mdb_stat(t, db, &st), 0);
    mdb_txn_abort(t);
    return st.ms_entries;
}

static void digest_now(tl_log *log, char out[TL_PUBKEY_HEX_SIZE]) {
    int rc = tl_digest(log, out);
    ck_assert_msg(rc == 0, "digest: %s %s", tl_strerror(rc), tl_errdetail());
}

/* The digest differs from `base` now (what: the edit), and `seen` (n digests) holds none of it. */
static void expect_moved(tl_log *log, const char *base, char seen[][TL_PUBKEY_HEX_SIZE], int *n, const char *db,
                         const char *what) {
    char d[TL_PUBKEY_HEX_SIZE];
    digest_now(log, d);
    ck_assert_msg(strcmp(d, base) != 0, "%s: %s leaves the digest as it was", db, what);
    for (int i = 0; i < *n; i++) ck_assert_msg(strcmp(d, seen[i]) != 0, "%s: %s gives an earlier edit's digest", db, what);
    memcpy(seen[(*n)++], d, TL_PUBKEY_HEX_SIZE);
}

static void expect_back(tl_log *log, const char *base, const char *db, const char *what) {
    char d[TL_PUBKEY_HEX_SIZE];
    digest_now(log, d);
    ck_assert_msg(strcmp(d, base) == 0, "%s: undoing %s does not give the digest back", db, what);
}

/* Every database of every projection, at its first entry, its second and its last: one value
 * byte (the last), a key with its value, two values swapped between keys, a byte moved from a
 * value to its key, an entry removed. Three probe entries are added to each database first
 * (keys 00 'd' 00, 00 'd' 01 before any projection key, ff 'd' 02 after them), so that each
 * database, empty or not, has a known first, second and last entry. */
START_TEST(the_digest_sees_every_projection_byte) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *setup[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
        "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n0\",\"project\":\"p0\",\"body\":\"note 0\"}",
    };
    run_ok(log, setup, 4);
    static const uint8_t k0[] = {0x00, 'd', 0}, k1[] = {0x00, 'd', 1}, k2[] = {0xff, 'd', 2}, k3[] = {0xff, 'd', 3};
    static const uint8_t v0[] = "probe value 0", v1[] = "probe value 1", v2[] = "probe value 2";
    int ndb = 0;
    for (unsigned a = 0; a < log->napplier; a++) {
        const tl_applier *ap = &log->appliers[a];
        if (!ap->in_digest) continue;
        for (unsigned i = 0; i < ap->ndbs; i++, ndb++) {
            MDB_dbi db = ap->dbs[i];
            const char *name = ap->db_names[i];
            char before[TL_PUBKEY_HEX_SIZE], base[TL_PUBKEY_HEX_SIZE], seen[16][TL_PUBKEY_HEX_SIZE];
            int n = 0;
            digest_now(log, before);
            memcpy(seen[n++], before, TL_PUBKEY_HEX_SIZE);
            proj_put(log, db, k0, sizeof k0, v0, sizeof v0);
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            digest_now(log, base);
            ck_assert_msg(strcmp(base, before) != 0, "%s: three more entries leave the digest as it was", name);

            const uint8_t *ks[3] = {k0, k1, k2}, *vs[3] = {v0, v1, v2};
            static const char *const which[3] = {"the first entry's", "the second entry's", "the last entry's"};
            for (int e = 0; e < 3; e++) { /* the last byte of one value */
                uint8_t v[sizeof v0];
                memcpy(v, vs[e], sizeof v);
                v[sizeof v - 1] ^= 0x01;
                char what[64];
                snprintf(what, sizeof what, "%s last value byte", which[e]);
                proj_put(log, db, ks[e], 3, v, sizeof v);
                expect_moved(log, base, seen, &n, name, what);
                proj_put(log, db, ks[e], 3, vs[e], sizeof v);
                expect_back(log, base, name, what);
            }
            /* the last entry under another key, the same value */
            proj_del(log, db, k2, sizeof k2);
            proj_put(log, db, k3, sizeof k3, v2, sizeof v2);
            expect_moved(log, base, seen, &n, name, "a key changed");
            proj_del(log, db, k3, sizeof k3);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            expect_back(log, base, name, "a key changed");
            /* the first two values swapped: the same entries' bytes, in another order */
            proj_put(log, db, k0, sizeof k0, v1, sizeof v1);
            proj_put(log, db, k1, sizeof k1, v0, sizeof v0);
            expect_moved(log, base, seen, &n, name, "two values swapped");
            proj_put(log, db, k0, sizeof k0, v0, sizeof v0);
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            expect_back(log, base, name, "two values swapped");
            /* the value's first byte moved to the end of its key: the same bytes, split otherwise */
            uint8_t kk[4] = {k2[0], k2[1], k2[2], v2[0]};
            proj_del(log, db, k2, sizeof k2);
            proj_put(log, db, kk, sizeof kk, v2 + 1, sizeof v2 - 1);
            expect_moved(log, base, seen, &n, name, "a byte moved from a value to its key");
            proj_del(log, db, kk, sizeof kk);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            expect_back(log, base, name, "a byte moved from a value to its key");
            /* an entry fewer */
            proj_del(log, db, k1, sizeof k1);
            expect_moved(log, base, seen, &n, name, "the second entry removed");
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            expect_back(log, base, name, "the second entry removed");

            proj_del(log, db, k0, sizeof k0);
            proj_del(log, db, k1, sizeof k1);
            proj_del(log, db, k2, sizeof k2);
            expect_back(log, before, name, "the probes");
        }
    }
    ck_assert_int_ge(ndb, 7); /* the state and the six projections */
    remove_all(log, dir);
}
END_TEST

/* The same entry in one projection database or in the next is another state: the digest
 * hashes each database's name. On a log of one event most projection databases are empty;
 * every two neighbours that both are take the entry in turn. */
START_TEST(the_digest_sees_which_database_holds_an_entry) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    MDB_dbi dbs[64];
    const char *names[64];
    int ndb = 0;
    for (unsigned a = 0; a < log->napplier; a++)
        for (unsigned i = 0; log->appliers[a].in_digest && i < log->appliers[a].ndbs && ndb < 64; i++) {
            dbs[ndb] = log->appliers[a].dbs[i];
            names[ndb++] = log->appliers[a].db_names[i];
        }
    static const uint8_t k[] = {0x7f, 'd'}, v[] = "probe";
    int pairs = 0;
    for (int i = 0; i + 1 < ndb; i++) {
        if (proj_count(log, dbs[i]) || proj_count(log, dbs[i + 1])) continue;
        char in_first[TL_PUBKEY_HEX_SIZE], in_second[TL_PUBKEY_HEX_SIZE];
        proj_put(log, dbs[i], k, sizeof k, v, sizeof v);
        digest_now(log, in_first);
        proj_del(log, dbs[i], k, sizeof k);
        proj_put(log, dbs[i + 1], k, sizeof k, v, sizeof v);
        digest_now(log, in_second);
        proj_del(log, dbs[i + 1], k, sizeof k);
        ck_assert_msg(strcmp(in_first, in_second) != 0, "an entry in %s or in %s gives one digest", names[i], names[i + 1]);
        pairs++;
    }
    ck_assert_int_gt(pairs, 0);
    remove_all(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("replay_edges");
    TCase *tc = tcase_create("chunks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_log_length_across_chunk_boundaries);
    suite_add_tcase(s, tc);
    tc = tcase_create("cuts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cuts_at_their_edges);
    tcase_add_test(tc, a_verified_cut_checks_the_tail_content);
    tcase_add_test(tc, a_cut_ignores_extension_payloads);
    tcase_add_test(tc, a_copy_holds_no_freed_page);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_failed_copy_leaves_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("digest");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_digest_sees_every_projection_byte);
    tcase_add_test(tc, the_digest_sees_which_database_holds_an_entry);
    suite_add_tcase(s, tc);
    tc = tcase_create("damage");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, altered_event_named_by_the_verified_replay);
    tcase_add_test(tc, an_equal_time_replays);
    tcase_add_test(tc, a_second_genesis_is_refused);
    tcase_add_test(tc, a_removed_tail_names_its_first_event);
    tcase_add_test(tc, altered_last_event_refused);
    tcase_add_test(tc, head_naming_another_key_refused);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
