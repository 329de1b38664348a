/*
 * test_tamper_order.c — SPEC §5, the hash chain and the order of events: events deleted (one,
 * the genesis, a run, the last), swapped, stored under another event's key or claiming
 * another sequence, re-signed by the key holder (only the chain or the head record can tell),
 * going back in time, or with a prev that differs from the true hash in its last byte. verify
 * names the first bad event; replays (and an export) refuse what verify refuses.
 *
 * The log under attack and the attacker's tools: tamper_fixture.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tamper_fixture.h"

/* ================================================================ removing and reordering */

START_TEST(delete_events) {
    raw r;
    size_t len;
    /* the middle */
    raw_begin(&r);
    uint8_t *mid = raw_get(&r, 500, &len);
    raw_del(&r, 500);
    raw_end(&r);
    expect_bad(NULL, 500, "event 500 deleted");
    raw_begin(&r);
    raw_set(&r, 500, mid, len);
    raw_end(&r);
    expect_good(NULL, "event 500 put back");
    /* the genesis */
    size_t glen;
    raw_begin(&r);
    uint8_t *genesis = raw_get(&r, 1, &glen);
    raw_del(&r, 1);
    raw_end(&r);
    expect_bad(NULL, 1, "the genesis deleted");
    raw_begin(&r);
    raw_set(&r, 1, genesis, glen);
    raw_end(&r);
    /* a run in the middle */
    raw_begin(&r);
    for (uint64_t s = 300; s < 310; s++) raw_del(&r, s);
    raw_end(&r);
    expect_bad(NULL, 300, "events 300-309 deleted");
    free(mid);
    free(genesis);
}
END_TEST

START_TEST(delete_last) {
    raw r;
    raw_begin(&r);
    raw_del(&r, EVENTS);
    raw_end(&r);
    /* the head record still names event 1,000 */
    expect_bad(NULL, EVENTS, "the last event deleted");
    replay_refuses_when(EVENTS, true);
}
END_TEST

START_TEST(swap_events) {
    const uint64_t pairs[][2] = {{400, 401}, {300, 700}, {1, 2}, {999, 1000}, {ROTATION, ROTATION + 1}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint64_t a = pairs[i][0], b = pairs[i][1];
        raw r;
        size_t la, lb;
        raw_begin(&r);
        uint8_t *ra = raw_get(&r, a, &la), *rb = raw_get(&r, b, &lb);
        raw_set(&r, a, rb, lb);
        raw_set(&r, b, ra, la);
        raw_end(&r);
        char what[64];
        snprintf(what, sizeof what, "events %llu and %llu swapped", (unsigned long long)a, (unsigned long long)b);
        expect_bad(NULL, a, what);
        raw_begin(&r);
        raw_set(&r, a, ra, la);
        raw_set(&r, b, rb, lb);
        raw_end(&r);
        free(ra);
        free(rb);
    }
    expect_good(NULL, "swapped back");
}
END_TEST

/* The value of one event stored under another's key: the event says another sequence. */
static int count_export_line(const char *line, size_t len, void *payload) {
    (void)line, (void)len, (void)payload;
    return 0;
}

START_TEST(record_with_other_seq) {
    raw r;
    size_t len, l2;
    raw_begin(&r);
    uint8_t *r600 = raw_get(&r, 600, &len), *r601 = raw_get(&r, 601, &l2);
    raw_set(&r, 601, r600, len);
    raw_end(&r);
    expect_bad(NULL, 601, "event 600 duplicated at 601");
    /* a well-signed, well-chained event that claims to be 777, stored at 601 */
    tl_keypair kp;
    writer_key(&kp);
    uint8_t h[32];
    uint64_t ts;
    record_hash_ts(r600, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, 777, ts, h, "x.tamper", "I am 777", NULL, &kp);
    raw_begin(&r);
    raw_set(&r, 601, f, fl);
    raw_end(&r);
    expect_bad(NULL, 601, "an event saying 777 at 601");
    replay_refuses_when(601, true);
    { /* an export refuses it too: its lines would name an event the log does not hold */
        tl_log *log;
        ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
        tl_export_options eo = TL_EXPORT_OPTIONS_INIT;
        ck_assert_int_eq(tl_export(log, &eo, count_export_line, NULL), TL_ECORRUPT);
        tl_log_close(log);
    }
    raw_begin(&r);
    raw_set(&r, 601, r601, l2);
    raw_end(&r);
    expect_good(NULL, "restored");
    tl_keypair_wipe(&kp);
    free(f), free(r600), free(r601);
}
END_TEST

/* One event rewritten and re-signed by the key holder: its own signature holds, so only the
 * chain (the next event's prev) or, for the last event, the head record can tell. */
START_TEST(resigned_event) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, l700;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r699 = raw_get(&r, 699, &len), *r700 = raw_get(&r, 700, &l700);
    record_hash_ts(r699, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, 700, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, 700, f, fl);
    raw_end(&r);
    expect_bad(NULL, 701, "event 700 re-signed with the writer key");
    raw_begin(&r);
    raw_set(&r, 700, r700, l700);
    uint8_t *r999 = raw_get(&r, EVENTS - 1, &len);
    record_hash_ts(r999, len, h, &ts);
    free(f);
    f = forge(&fl, EVENTS, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, EVENTS, f, fl);
    raw_end(&r);
    expect_bad(NULL, EVENTS, "the last event re-signed with the writer key");
    tl_keypair_wipe(&kp);
    free(f), free(r699), free(r700), free(r999);
}
END_TEST

/* The last event re-signed with the writer key and a time before its predecessor's (the chain
 * and the head record made to match): only the rule "time never decreases" is broken. verify
 * names it, and a replay refuses it with and without verification. */
START_TEST(time_goes_back) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *before = raw_get(&r, EVENTS - 1, &len);
    record_hash_ts(before, len, h, &ts);
    uint8_t *f = forge(&fl, EVENTS, ts - 1, h, "x.tamper", "back to the future", NULL, &kp);
    raw_set(&r, EVENTS, f, fl);
    raw_set_head(&r, EVENTS);
    raw_end(&r);
    expect_bad(NULL, EVENTS, "the last event going back in time");
    tl_verify_report vr;
    verify(NULL, &vr);
    ck_assert_msg(strstr(vr.reason, "back in time") != NULL, "%s", vr.reason);
    replay_refuses(EVENTS);
    tl_keypair_wipe(&kp);
    free(f), free(before);
}
END_TEST

/* ================================================================ near misses
 * Found by mutation testing of verify (2026-11-27): each case below passed verify when one of
 * its checks was weakened (compared over fewer bytes, skipped, or its loop not stopped), and
 * no other test noticed. */

/* an event whose prev differs from the true hash only in its last byte, re-signed */
START_TEST(prev_differs_in_last_byte) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r69 = raw_get(&r, 69, &len);
    record_hash_ts(r69, len, h, &ts);
    h[31] ^= 1;
    uint8_t *f = forge(&fl, 70, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, 70, f, fl);
    raw_end(&r);
    expect_bad(NULL, 70, "event 70's prev differs in its last byte");
    replay_refuses_when(70, true); /* the chain is checked without verification too */
    tl_keypair_wipe(&kp);
    free(f), free(r69);
}
END_TEST

/* a head record naming seq 0, as if the whole log, genesis included, were gone: the replays
 * refuse it and name the genesis (replay.c: "event 1 (genesis) is missing") */
START_TEST(head_at_zero) {
    uint8_t head[80];
    head_get(head);
    memset(head, 0, 8);
    head_put(head);
    replay_refuses_when(1, true);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_order");
    TCase *tc = tcase_create("order");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, delete_events);
    tcase_add_test(tc, delete_last);
    tcase_add_test(tc, swap_events);
    tcase_add_test(tc, record_with_other_seq);
    tcase_add_test(tc, resigned_event);
    tcase_add_test(tc, time_goes_back);
    tcase_add_test(tc, prev_differs_in_last_byte);
    tcase_add_test(tc, head_at_zero);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
