/*
 * test_replay_live.c — replay rebuilds the state from the log alone, and it equals the live
 * one: the digest and every user's queries, after a seeded stream of 10,000 commands with
 * erasures and a key rotation, in place and into a copy, with and without verification, on
 * one to three threads across many chunk boundaries; a replay that must grow the map to fit;
 * and a log whose projections an earlier threadlog built, refused until a replay rebuilds them.
 * On small logs: every length around a chunk boundary replays to the live digest.
 *
 * The command stream and the observation of a state: replay_fixture.h.
 */
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "replay_fixture.h"

/* ================================================================ replay == live */

START_TEST(replay_digest_equals_live) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed()};
    run_setup(log);
    run_stream(log, &g, 5000);
    /* operator actions between the commands: erasures and a key rotation */
    for (unsigned i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, i % 4 ? "m%u" : "f%u", pick(&g, i % 4 ? g.messages : g.uploads + 1));
        tl_result res;
        tl_erase(log, id, "erasure request", &res);
    }
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_rotate_key(log, pk), 0);
    run_stream(log, &g, 5000);
    ck_assert_uint_gt(head_of(log), 3000); /* the stream is not all refusals */
    fprintf(stderr, "replay_digest_equals_live: seed %llu, 10,000 commands -> %llu events\n",
            (unsigned long long)test_seed(), (unsigned long long)head_of(log));

    char *live = observe(log, g.projects);
    char live_digest[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live_digest);

    /* in place, without and with verification */
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, NULL, &r) == 0, "replay: %s", tl_errdetail());
    ck_assert_uint_eq(r.events, head_of(log));
    ck_assert_msg(strcmp(r.digest, live_digest) == 0, "seed %llu: replay digest %s, live %s",
                  (unsigned long long)test_seed(), r.digest, live_digest);
    char *after = observe(log, g.projects);
    ck_assert_msg(strcmp(after, live) == 0, "seed %llu: queries differ after replay", (unsigned long long)test_seed());
    free(after);

    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = 1;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay --verify: %s", tl_errdetail());
    ck_assert_uint_eq(r.verify.events, head_of(log));
    ck_assert_uint_eq(r.verify.first_bad_seq, 0);
    ck_assert_str_eq(r.digest, live_digest);
    /* small chunks: the verify/apply pipeline crosses many chunk boundaries, on 1 to 3 threads */
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "97", 1);
    for (unsigned t = 1; t <= 3; t++) {
        o.threads = t;
        ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay --verify --threads %u: %s", t, tl_errdetail());
        ck_assert_uint_eq(r.verify.events, head_of(log));
        ck_assert_str_eq(r.digest, live_digest);
    }
    o.verify = 0;
    ck_assert_int_eq(tl_replay(log, &o, &r), 0);
    ck_assert_str_eq(r.digest, live_digest);
    unsetenv("THREADLOG_TEST_REPLAY_CHUNK");

    /* into a copy: the same state, and the copy verifies */
    char *copy = sibling(dir, "copy");
    replay_into(log, copy, 0, 0, 1, &r);
    ck_assert_str_eq(r.digest, live_digest);
    tl_log *c = open_ro(copy);
    char *seen = observe(c, g.projects);
    ck_assert_msg(strcmp(seen, live) == 0, "queries on the copy differ");
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy verify: %s", vr.reason);
    tl_log_close(c);
    free(seen);
    free(copy);
    free(live);
    remove_all(log, dir);
}
END_TEST

/* The map starts small: replay needs room for the old projections and the new ones at once
 * (readers may still use the old), so it meets a full map and must grow it and start over. */
START_TEST(replay_grows_the_map) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 1};
    run_setup(log);
    /* fill the map until replay cannot fit beside the live projections: the map only grows
     * on demand, so small steps bring the file within a few pages of the map's end (LMDB
     * extends the file only when no free page is left), and what remains then cannot hold a
     * second copy of the projections. (Stopping at 4/5 of the map, or even 9/10, was not
     * enough: under load the timestamps in the keys change page splits, and on one CI run
     * the replay fitted exactly.) */
    tl_log_stats before, after;
    bool full = false;
    for (int i = 0; i < 4000 && !full; i++) {
        run_stream(log, &g, 25);
        ck_assert_int_eq(tl_log_stats_get(log, &before), 0);
        full = before.map_bytes > 1048576 && before.file_bytes + 64 * 1024 > before.map_bytes;
    }
    ck_assert_msg(full, "the log never came near the end of its map (%llu of %llu bytes)",
                  (unsigned long long)before.file_bytes, (unsigned long long)before.map_bytes);
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, NULL, &r) == 0, "replay: %s", tl_errdetail());
    ck_assert_str_eq(r.digest, live);
    ck_assert_int_eq(tl_log_stats_get(log, &after), 0);
    ck_assert_msg(after.map_bytes > before.map_bytes, "the map did not have to grow (%llu bytes): the test proves nothing",
                  (unsigned long long)before.map_bytes);
    remove_all(log, dir);
}
END_TEST

/* A copy is rebuilt in its map (TL_OPEN_WRITEMAP, log.h: no other process opens it while it
 * is built): it equals the live state, grows its map when the rebuild needs it, verifies,
 * and holds no more blocks than its pages need, although LMDB set its length to the map's. */
START_TEST(a_copy_written_in_its_map_equals_live) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 7};
    run_setup(log);
    run_stream(log, &g, 1500);
    char *live = observe(log, g.projects);
    char live_digest[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live_digest);
    tl_log_stats src;
    ck_assert_int_eq(tl_log_stats_get(log, &src), 0);
    for (int verify = 0; verify <= 1; verify++) {
        char *copy = sibling(dir, verify ? "verified" : "plain");
        tl_replay_report r;
        replay_into(log, copy, 0, 0, verify, &r);
        ck_assert_str_eq(r.digest, live_digest);
        tl_log *c = open_ro(copy);
        char *seen = observe(c, g.projects);
        ck_assert_msg(strcmp(seen, live) == 0, "queries on the copy differ");
        free(seen);
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0 && vr.first_bad_seq == 0, "copy verify: %s", vr.reason);
        tl_log_stats st;
        ck_assert_int_eq(tl_log_stats_get(c, &st), 0);
        tl_log_close(c);
        ck_assert_msg(st.map_bytes > 1048576, "the copy's rebuild never grew its map: the growth is untested");
        /* written in the map: LMDB set the file's length to the map's size */
        char path[4200];
        snprintf(path, sizeof path, "%s/data.mdb", copy);
        struct stat sb;
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_msg((uint64_t)sb.st_size == st.map_bytes, "data.mdb is %lld bytes, the map %llu: not written in the map",
                      (long long)sb.st_size, (unsigned long long)st.map_bytes);
        /* ... sparse: its blocks are what the pages need (at most the old and the new
         * projections side by side), not the map */
        ck_assert_msg(st.file_bytes < 3 * src.file_bytes + (1u << 20), "the copy holds %llu bytes, the log %llu",
                      (unsigned long long)st.file_bytes, (unsigned long long)src.file_bytes);
        free(copy);
    }
    unsetenv("THREADLOG_TEST_MAP_BYTES");
    free(live);
    remove_all(log, dir);
}
END_TEST

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

/* ================================================================ an earlier layout */

/*
 * A log whose projections were built by an earlier threadlog (its meta has no "layout"
 * record, or another number) refuses queries and appends with TL_EVERSION, which would
 * read or extend projections of another layout, until a replay rebuilds them; the log's
 * own commands (verify) still work, and after the replay everything reads as before.
 */
START_TEST(an_earlier_layout_needs_a_replay) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    gen g = {.s = test_seed() + 7};
    run_stream(log, &g, 200);
    char *before = observe(log, 3);
    uint64_t head = head_of(log);
    tl_log_close(log);
    for (int variant = 0; variant < 2; variant++) {
        MDB_env *env;
        MDB_txn *txn = tu_raw_begin(dir, &env);
        MDB_dbi meta;
        ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        MDB_val k = {6, "layout"};
        if (variant == 0) {
            ck_assert_int_eq(mdb_del(txn, meta, &k, NULL), 0); /* built before the record */
        } else {
            uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
            MDB_val v = {8, one};
            ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0); /* layout 1 */
        }
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
        tl_query q = TL_QUERY_INIT;
        q.as = "al";
        char *json = NULL;
        ck_assert_int_eq(tl_tracking_query(log, &q, &json), TL_EVERSION);
        ck_assert_ptr_null(json);
        ck_assert_msg(strstr(tl_errdetail(), "threadlog replay") != NULL, "%s", tl_errdetail());
        tl_cmd *c;
        tl_result r;
        const char *line = "{\"op\":\"account.create\",\"id\":\"late\",\"name\":\"Late\"}";
        ck_assert_int_eq(tl_cmd_parse(&c, line, strlen(line), &r), 0);
        ck_assert_int_eq(tl_cmd_exec(log, c, &r), TL_EVERSION);
        tl_cmd_free(c);
        ck_assert_uint_eq(head_of(log), head); /* nothing appended */
        tl_verify_report vr;
        ck_assert_int_eq(tl_log_verify(log, NULL, &vr), 0);
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(log, NULL, &rr), 0);
        char *after = observe(log, 3);
        ck_assert_str_eq(after, before);
        free(after);
        tl_log_close(log);
        ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0); /* the replay recorded the layout */
        after = observe(log, 3);
        ck_assert_str_eq(after, before);
        free(after);
        tl_log_close(log);
    }
    free(before);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    remove_all(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("replay_live");
    TCase *tc = tcase_create("equals_live");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_digest_equals_live);
    tcase_add_test(tc, replay_grows_the_map);
    tcase_add_test(tc, a_copy_written_in_its_map_equals_live);
    suite_add_tcase(s, tc);
    tc = tcase_create("chunks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_log_length_across_chunk_boundaries);
    suite_add_tcase(s, tc);
    tc = tcase_create("layout");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, an_earlier_layout_needs_a_replay);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
