/*
 * test_log_append.c — the times this writer gives events and the times it takes from another
 * log (FORMAT.md §3, field 2): it makes them strictly increase, even for a batch of events
 * encoded within one microsecond; it accepts a record repeating its predecessor's time, as
 * verify accepts one in any log (logs written before 2026-11-26 repeat some).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "log_fixture.h"

/* 2,000 events in one call: most are encoded within the microsecond of the one before, and
 * each still takes a later time than its predecessor. */
START_TEST(times_strictly_increase_within_a_batch) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    uint64_t first = append_n(log, 2000, 0, 0);
    tl_iter *it;
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    uint64_t prev = 0, n = 0;
    while (tl_iter_next(it, &ev) == 0) {
        ck_assert_msg(ev.ts > prev, "event %llu at %llu, its predecessor at %llu", (unsigned long long)ev.seq,
                      (unsigned long long)ev.ts, (unsigned long long)prev);
        prev = ev.ts;
        n++;
    }
    tl_iter_close(it);
    ck_assert_uint_eq(n, first + 1999);
    remove_log(log, dir);
}
END_TEST

/* A record from another log at its predecessor's time: taken, and the log still verifies. */
START_TEST(a_record_at_its_predecessors_time_is_taken) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_keypair kp;
    char *keypath = path_in(dir, "writer.key");
    ck_assert_int_eq(tl_keyfile_read(keypath, &kp), 0);
    free(keypath);
    uint8_t *genesis;
    size_t glen;
    ck_assert_int_eq(tl_log_record(log, 1, &genesis, &glen), 0);
    tl_event g;
    ck_assert_int_eq(tl_event_decode(&g, genesis, glen - 64), 0);
    tl_envelope env = {.seq = 2, .ts = g.ts, .actor = "@operator", .kind = "x.same_time", .schema = 1};
    tl_hash(env.prev, genesis, glen - 64);
    tl_payload p = {0};
    tl_payload_str(&p, "note", "the genesis's microsecond");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    size_t len = buf.size + 64;
    uint8_t *rec = malloc(len);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, &kp);
    const uint8_t *recs[1] = {rec};
    int rc = tl_log_append_records(log, recs, &len, 1);
    ck_assert_msg(rc == 0, "a record at its predecessor's time: %s", tl_errdetail());
    verify_ok(log, 2);
    msgpack_sbuffer_destroy(&buf);
    free(rec);
    tl_free(genesis);
    tl_keypair_wipe(&kp);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_append");
    TCase *tc = tcase_create("times");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, times_strictly_increase_within_a_batch);
    tcase_add_test(tc, a_record_at_its_predecessors_time_is_taken);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
