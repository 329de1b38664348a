/*
 * test_tamper_bytes.c — SPEC §5, damaged bytes: every byte of a stored record (its event
 * bytes and its signature) flipped one at a time, in six events sampled over the 1,000-event
 * log, is caught by verify, which names that event; so is every byte of the stored head record
 * (and a head record of another size). A replay keeps the evidence of a tampered head instead
 * of rebuilding it, a copy cut by replay checks the tail it cuts away, and a log emptied of
 * every record is not taken for an empty, valid one.
 *
 * The log under attack and the attacker's tools: tamper_fixture.h. THREADLOG_TAMPER_QUICK=1
 * shortens the per-byte sweep for busy machines (see flip_every_byte).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tamper_fixture.h"

/* The per-byte tests also use a 100-event log of the same shape (see flip_every_byte). */
static void setup_small(void) {
    EVENTS = 100;
    ROTATION = 50;
    setup();
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* ================================================================ every byte */

/*
 * Every byte of a stored record (event bytes and signature) is flipped, one at a time, and
 * verify must name that event: six events spread over the 1,000-event log, ~1,100 flips,
 * each a verify of the whole log (up to 1,000 ed25519 checks on two threads). That is
 * ~40 s on a two-core machine with a load of 4 (~70 s at a load of 6), most of the tamper
 * suites' time.
 * THREADLOG_TAMPER_QUICK=1, for busy machines, flips every byte of the two ends of the
 * 1,000-event log (the genesis: no predecessor, carries the first key; the last: no
 * successor to break the chain, only its signature and the head record) and of the six
 * spread events of a 100-event log of the same shape (~15 s).
 */
static bool quick_run(void) {
    const char *v = getenv("THREADLOG_TAMPER_QUICK");
    return v && *v && strcmp(v, "0") != 0;
}

/* genesis, an early event, the rotation, the first event by the new key, a late one, the last */
static uint64_t sample_at(int i) {
    uint64_t spread[] = {1, EVENTS / 5, ROTATION, ROTATION + 1, EVENTS * 4 / 5, EVENTS};
    uint64_t ends[] = {1, EVENTS};
    return (EVENTS == 1000 && quick_run()) ? ends[i] : spread[i];
}

START_TEST(flip_every_byte) {
    uint64_t seq = sample_at(_i);
    expect_good(NULL, "the untouched log");
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *orig = raw_get(&r, seq, &len);
    raw_end(&r);
    uint8_t *bad = malloc(len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(bad, orig, len);
        /* the lowest bit of even bytes, the highest of odd ones */
        bad[pos] ^= (pos % 2) ? 0x80 : 0x01;
        raw_begin(&r);
        raw_set(&r, seq, bad, len);
        raw_end(&r);
        tl_verify_report rep;
        int rc = verify(NULL, &rep);
        ck_assert_msg(rc == TL_ECORRUPT && rep.first_bad_seq == seq,
                      "event %llu, byte %zu of %zu (%s): verify said %s, first bad %llu (%s)",
                      (unsigned long long)seq, pos, len, pos < len - 64 ? "event" : "signature", tl_strerror(rc),
                      (unsigned long long)rep.first_bad_seq, rep.reason);
    }
    raw_begin(&r);
    raw_set(&r, seq, orig, len);
    raw_end(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "event %llu of %llu: %zu bytes flipped one at a time, each detected (%.1f s)\n",
            (unsigned long long)seq, (unsigned long long)EVENTS, len,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    expect_good(NULL, "the restored log");
    free(orig);
    free(bad);
}
END_TEST

/* The stored head record (meta) agrees with the last event. */
START_TEST(flip_head_record) {
    uint8_t head[80];
    head_get(head);
    /* the sequence and the hash: a flip names the head's event or the one after; the time and
     * the key (which the writer trusts for the next event) name the head's event */
    static const size_t late[] = {40, 43, 47, 48, 55, 63, 72, 79}; /* time and key: a sample */
    for (size_t i = 0; i < 40 + sizeof late / sizeof late[0]; i++) {
        size_t pos = i < 40 ? i : late[i - 40];
        uint8_t bad[80];
        memcpy(bad, head, 80);
        bad[pos] ^= 0x01;
        head_put(bad);
        tl_verify_report rep;
        ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
        uint64_t said = rd64(bad);
        if (pos >= 40) ck_assert_uint_eq(rep.first_bad_seq, EVENTS);
        else ck_assert_uint_eq(rep.first_bad_seq, said < EVENTS ? said + 1 : said > EVENTS ? EVENTS + 1 : EVENTS);
    }
    /* cut short or grown (no longer the record's size): still a finding about the events,
     * naming the last one (the event the head names) */
    static const size_t lens[] = {0, 1, 8, 79, 80 + 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t longer[81] = {0};
        memcpy(longer, head, 80);
        head_put_len(longer, lens[i]);
        tl_verify_report rep;
        ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
        ck_assert_msg(rep.first_bad_seq == EVENTS, "a head record of %zu bytes: first bad %llu", lens[i],
                      (unsigned long long)rep.first_bad_seq);
    }
    head_put(head);
    expect_good(NULL, "the restored head");
}
END_TEST

/* A replay rewrites the head record, so it checks it first as verify does (its time too):
 * a tampered head must not vanish into a rebuilt one. */
START_TEST(replay_keeps_head_evidence) {
    uint8_t head[80];
    head_get(head);
    /* the time's last byte and a byte in its middle (an altered key is refused sooner: the
     * log does not open for writing, no key file holding the key the head names) */
    static const size_t positions[] = {47, 44};
    for (size_t i = 0; i < 2; i++) {
        uint8_t bad[80];
        memcpy(bad, head, 80);
        bad[positions[i]] ^= 0x01;
        head_put(bad);
        expect_bad(NULL, EVENTS, "head record altered");
        replay_refuses(EVENTS);
        expect_bad(NULL, EVENTS, "head record altered, after the refused replays");
    }
    head_put(head);
    expect_good(NULL, "the restored head");
}
END_TEST

/* ================================================================ replays of a damaged log */

/* A damaged tail is refused by a cut copy (cut_copy: replay --into --until-seq) rather than
 * cut away unseen: a bad signature with verification, a broken link either way. */
START_TEST(cut_copy_checks_tail) {
    uint64_t bad;
    ck_assert_int_eq(cut_copy(10, true, &bad), 0);
    raw r;
    size_t len;
    /* a signature in the tail: refused with verification, not without (signatures only) */
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, EVENTS - 5, &len);
    rec[len - 1] ^= 0x01;
    raw_set(&r, EVENTS - 5, rec, len);
    raw_end(&r);
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 5);
    ck_assert_int_eq(cut_copy(10, false, &bad), 0);
    /* an event's bytes in the tail: the next link breaks, refused either way */
    rec[len - 1] ^= 0x01;
    rec[len - 65] ^= 0x01; /* the event's last byte (a payload byte): it still decodes */
    raw_begin(&r);
    raw_set(&r, EVENTS - 5, rec, len);
    raw_end(&r);
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 5);
    ck_assert_int_eq(cut_copy(10, false, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 4);
    free(rec);
}
END_TEST

/* Every record gone and the head record at 0 (its key kept, so the log still opens): replay
 * must not take that for an empty, valid log. */
START_TEST(replay_refuses_an_emptied_log) {
    raw r;
    raw_begin(&r);
    for (uint64_t s = 1; s <= EVENTS; s++) raw_del(&r, s);
    raw_end(&r);
    uint8_t head[80];
    head_get(head);
    memset(head, 0, 48); /* seq, hash, time */
    head_put(head);
    expect_bad(NULL, 1, "every event deleted");
    replay_refuses(1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_bytes");
    TCase *tc = tcase_create("bytes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, flip_every_byte, 0, quick_run() ? 2 : 6);
    tcase_add_test(tc, flip_head_record);
    tcase_add_test(tc, replay_keeps_head_evidence);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    if (quick_run()) {
        tc = tcase_create("bytes-100");
        tcase_add_checked_fixture(tc, setup_small, teardown);
        tcase_add_loop_test(tc, flip_every_byte, 0, 6);
        tcase_set_timeout(tc, 300);
        suite_add_tcase(s, tc);
    }

    tc = tcase_create("replay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cut_copy_checks_tail);
    tcase_add_test(tc, replay_refuses_an_emptied_log);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
