/*
 * test_replay_copies.c — replay into a separate directory: a copy as of a past sequence or
 * time is the state as it was then (every user's queries), a log of its own that verifies and
 * can never be appended to; content erased after the cut stays erased in it; a past state in
 * place, or a target that already holds a log, is refused. At the edges, on small hand-made
 * logs: cuts at the head, next to it and at an exact time; a verified cut checking the tail it
 * removes; an extension's payload in that tail; the copy compacted; a copy that fails leaving
 * nothing.
 *
 * The command stream, small logs and the observation of a state: replay_fixture.h.
 */
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h> /* memmem: the build defines _GNU_SOURCE */
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replay_fixture.h"

/* ================================================================ as of a sequence / a time */

/* Every applier's meta applied/NAME in the log at dir (read with LMDB itself) says seq: the
 * copy's projections are those of its head (FORMAT.md §2). Returns how many there are. */
static unsigned applied_all_at(const char *dir, uint64_t seq) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, meta, &cur), 0);
    MDB_val k = {8, "applied/"}, v;
    unsigned n = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 8 || memcmp(k.mv_data, "applied/", 8) != 0) break;
        const uint8_t *b = v.mv_data;
        uint64_t at = 0;
        for (size_t i = 0; i < v.mv_size && i < 8; i++) at = at << 8 | b[i];
        ck_assert_msg(v.mv_size == 8 && at == seq, "%.*s at %llu, the head at %llu", (int)k.mv_size, (char *)k.mv_data,
                      (unsigned long long)at, (unsigned long long)seq);
        n++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

START_TEST(replay_until_equals_state_then) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 2};
    run_setup(log);
    run_stream(log, &g, 3000);
    uint64_t n = head_of(log);
    unsigned projects_then = g.projects;
    char *then = observe(log, projects_then);
    /* the time of event n: later events are at least a millisecond later */
    tl_iter *it;
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_open(log, n, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    uint64_t ts_n = ev.ts;
    tl_iter_close(it);
    usleep(2000);
    run_stream(log, &g, 2000);
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_rotate_key(log, pk), 0);
    run_stream(log, &g, 500);
    ck_assert_uint_gt(head_of(log), n + 500);

    tl_replay_report r;
    char *at_seq = sibling(dir, "seq");
    replay_into(log, at_seq, n, 0, 1, &r);
    ck_assert_uint_eq(r.events, n);
    tl_log *c = open_ro(at_seq);
    ck_assert_uint_eq(head_of(c), n);
    char *seen = observe(c, projects_then);
    ck_assert_msg(strcmp(seen, then) == 0, "seed %llu: the copy as of %llu differs from the state captured then",
                  (unsigned long long)test_seed(), (unsigned long long)n);
    /* the copy is a log of its own: it verifies (head moved to n) and cannot be appended to */
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy verify: %s", vr.reason);
    tl_log_close(c);
    free(seen);
    ck_assert_uint_gt(applied_all_at(at_seq, n), 1); /* every applier, the first one too */
    tl_open_options wo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&c, at_seq, &wo), TL_EKEY); /* no writer key: it can never fork the log */

    char *at_time = sibling(dir, "time");
    replay_into(log, at_time, 0, ts_n, 0, &r);
    c = open_ro(at_time);
    ck_assert_uint_eq(head_of(c), n);
    seen = observe(c, projects_then);
    ck_assert_msg(strcmp(seen, then) == 0, "the copy as of time %llu differs", (unsigned long long)ts_n);
    tl_log_close(c);
    free(seen);

    /* in place, a past state is refused: the live projections must cover the whole log (the
     * CLI's preview replays into a temporary directory: tests/cli/replay_cli.sh) */
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.until_seq = n;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_EUSAGE);
    /* a target that already holds a log is refused */
    o.into_dir = at_seq;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_EEXISTS);
    free(at_seq);
    free(at_time);
    free(then);
    remove_all(log, dir);
}
END_TEST

/* Content erased after N stays erased in a copy as of N: an erasure is an obligation, not a
 * part of history that time travel brings back. Content created after N is not in the copy. */
START_TEST(replay_until_keeps_erasures) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    char lines[4][512];
    snprintf(lines[0], 512, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}");
    snprintf(lines[1], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n1\",\"project\":\"p0\",\"body\":\"secret one\"}");
    run_batch(log, lines, 2);
    uint64_t n = head_of(log);
    snprintf(lines[0], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n2\",\"project\":\"p0\",\"body\":\"later\"}");
    run_batch(log, lines, 1);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "n1", "right to erasure", &res), 0);
    char *copy = sibling(dir, "copy");
    tl_replay_report r;
    replay_into(log, copy, n, 0, 1, &r);
    tl_log *c = open_ro(copy);
    tl_query q = TL_QUERY_INIT;
    q.as = "aud";
    q.project = "p0";
    q.channel = "notes";
    char *json;
    ck_assert_int_eq(tl_messages_query(c, &q, &json), 0);
    ck_assert_msg(strstr(json, "\"id\":\"n1\"") && strstr(json, "\"erased\":true") && !strstr(json, "secret one"),
                  "n1 in the copy: %s", json);
    ck_assert_msg(!strstr(json, "n2"), "n2 is after the cut: %s", json);
    tl_free(json);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(c, &st), 0);
    ck_assert_uint_eq(st.content_bytes, 0); /* n1 erased, n2's content cut away with its event */
    /* the erasure itself was cut away with its event, yet the copy verifies: the cut recorded
     * it (content missing without an erasure is refused, test_tamper_content) */
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "the copy as of %llu: %s", (unsigned long long)n, vr.reason);
    ck_assert_msg(tl_log_verify(log, NULL, &vr) == 0, "the source: %s", vr.reason);
    tl_log_close(c);
    free(copy);
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

int main(void) {
    Suite *s = suite_create("replay_copies");
    TCase *tc = tcase_create("as_of");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_until_equals_state_then);
    tcase_add_test(tc, replay_until_keeps_erasures);
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
    return tu_main(s);
}
