/*
 * test_replay_copies.c — replay into a separate directory: a copy as of a past sequence or
 * time is the state as it was then (every user's queries), a log of its own that verifies and
 * can never be appended to; content erased after the cut stays erased in it; a past state in
 * place, or a target that already holds a log, is refused.
 *
 * The command stream and the observation of a state: replay_fixture.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay_fixture.h"

/* ================================================================ as of a sequence / a time */

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

int main(void) {
    Suite *s = suite_create("replay_copies");
    TCase *tc = tcase_create("as_of");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_until_equals_state_then);
    tcase_add_test(tc, replay_until_keeps_erasures);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
