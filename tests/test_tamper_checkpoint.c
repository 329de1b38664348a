/*
 * test_tamper_checkpoint.c — SPEC §5, checkpoints: a tail rewritten by the key holder (signed
 * and chained, so the log alone looks fine) or cut short with a consistent head is caught
 * against a checkpoint, which covers the events up to its own and not what came after; a
 * checkpoint naming another time, signed by a stranger or by a key not current at its
 * sequence (one the rotation retired, or one not yet made current), or naming a hash that
 * differs in its last byte is refused.
 *
 * The log under attack and the attacker's tools: tamper_fixture.h; checkpoints made by hand
 * as docs/FORMAT.md describes them (checkpoint_signed, checkpoint_custom).
 */
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tamper_fixture.h"

/* A checkpoint of the log as it is now, signed by the writer (tl_log_checkpoint). */
static char *checkpoint_now(void) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_log_close(log);
    return cp;
}

/* ================================================================ rewrites by the key holder */

/* Re-sign events from..to with new content, chained, with the real (current) key, drop any
 * event after `to` and move the head: a consistent log that is not the one the writer wrote. */
static void rewrite_tail(uint64_t from, uint64_t to) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *prev = raw_get(&r, from - 1, &len);
    uint8_t h[32];
    uint64_t ts;
    record_hash_ts(prev, len, h, &ts);
    free(prev);
    for (uint64_t s = from; s <= to; s++) {
        size_t fl;
        uint8_t *f = forge(&fl, s, ts, h, "x.tamper", "history as mallory tells it", NULL, &kp);
        raw_set(&r, s, f, fl);
        record_hash_ts(f, fl, h, &ts);
        free(f);
    }
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_cursor_open(r.txn, r.log, &cur), 0);
    uint8_t k8[8];
    be64(k8, to + 1);
    MDB_val k = {8, k8}, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
    raw_set_head(&r, to);
    raw_end(&r);
    tl_keypair_wipe(&kp);
}

START_TEST(checkpoint_detects_rewritten_tail) {
    char *cp = checkpoint_now(); /* at 1,000 */
    expect_good(cp, "the log extends its checkpoint");
    rewrite_tail(700, EVENTS);
    /* signed by the writer key and chained: on its own the log looks fine */
    expect_good(NULL, "a tail rewritten with the writer key, without a checkpoint");
    expect_bad(cp, EVENTS, "a tail rewritten with the writer key, against the checkpoint");
    tl_free(cp);
}
END_TEST

START_TEST(checkpoint_detects_rewrite_before_it) {
    /* checkpoint at 1,000; the rewrite starts before it and ends before it too */
    char *cp = checkpoint_now();
    rewrite_tail(ROTATION + 10, EVENTS);
    expect_bad(cp, EVENTS, "rewritten from 510");
    tl_free(cp);
}
END_TEST

START_TEST(checkpoint_detects_truncated_tail) {
    char *cp = checkpoint_now(); /* at 1,000 */
    raw r;
    raw_begin(&r);
    for (uint64_t s = 901; s <= EVENTS; s++) raw_del(&r, s);
    raw_set_head(&r, 900);
    raw_end(&r);
    /* a clean cut with a consistent head: only the checkpoint can tell */
    expect_good(NULL, "a truncated log with a consistent head, without a checkpoint");
    expect_bad(cp, 901, "a truncated log, against the checkpoint");
    tl_free(cp);
}
END_TEST

/* A checkpoint of event seq made by hand, as docs/FORMAT.md describes it, signed by kp,
 * naming the event's time plus dts (0: its own) and its hash with byte flip_hash_byte
 * flipped (-1: none). */
static char *checkpoint_by(uint64_t seq, uint64_t dts, int flip_hash_byte, const tl_keypair *kp) {
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *rec = raw_get(&r, seq, &len);
    raw_end(&r);
    uint8_t msg[23 + 8 + 32 + 8], sig[64];
    uint64_t ts;
    memcpy(msg, "threadlog-checkpoint-v1", 23);
    be64(msg + 23, seq);
    record_hash_ts(rec, len, msg + 31, &ts);
    if (flip_hash_byte >= 0) msg[31 + flip_hash_byte] ^= 1;
    ts += dts;
    be64(msg + 63, ts);
    tl_sign(sig, msg, sizeof msg, kp);
    char hash[65], key[65], sighex[129];
    tl_hex(hash, msg + 31, 32);
    tl_hex(key, kp->pk, 32);
    tl_hex(sighex, sig, 64);
    char *json = malloc(512);
    snprintf(json, 512, "{\"seq\":%llu,\"hash\":\"%s\",\"ts\":%llu,\"key\":\"%s\",\"signature\":\"%s\"}",
             (unsigned long long)seq, hash, (unsigned long long)ts, key, sighex);
    free(rec);
    return json;
}

/* The key current at seq in the fixture's log: the first key up to ROTATION - 1, the new one
 * from ROTATION on (the head at ROTATION names the key it hands over to). */
static void key_of(uint64_t seq, tl_keypair *kp) {
    if (seq < ROTATION) retired_key(kp);
    else writer_key(kp);
}

/* A true checkpoint of event seq, naming its time plus dts, by the key current then. */
static char *checkpoint_signed(uint64_t seq, uint64_t dts) {
    tl_keypair kp;
    key_of(seq, &kp);
    char *json = checkpoint_by(seq, dts, -1, &kp);
    tl_keypair_wipe(&kp);
    return json;
}

static char *checkpoint_at(uint64_t seq) { return checkpoint_signed(seq, 0); }

START_TEST(checkpoint_covers_what_it_names) {
    /* a checkpoint covers the events up to its own, not what came after: a log that grew
     * since, or whose later events were rewritten, still extends it */
    char *cp800 = checkpoint_at(800);
    expect_good(cp800, "a checkpoint at 800");
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    append_batch(log, EVENTS + 1, 10);
    tl_log_close(log);
    expect_good(cp800, "a log that grew after its checkpoint");
    rewrite_tail(900, EVENTS + 10);
    expect_good(cp800, "rewritten after the checkpoint (beyond what it covers)");
    rewrite_tail(700, EVENTS);
    expect_bad(cp800, 800, "rewritten from 700, before the checkpoint at 800");
    free(cp800);
}
END_TEST

/* A checkpoint names its event's time: one signed by the key holder with another time for
 * the right event and hash is refused. */
START_TEST(checkpoint_time_must_match) {
    char *cp = checkpoint_signed(800, 0), *moved = checkpoint_signed(800, 5);
    expect_good(cp, "a checkpoint at 800");
    expect_bad(moved, 800, "a checkpoint with another time");
    free(moved);
    free(cp);
}
END_TEST

/* ================================================================ near misses
 * Found by mutation testing of verify (2026-11-27): each case below passed verify when one of
 * its checks was weakened (compared over fewer bytes, skipped, or its loop not stopped), and
 * no other test noticed. */

static char *checkpoint_custom(uint64_t seq, int flip_hash_byte, bool foreign_key) {
    tl_keypair kp;
    if (foreign_key) tl_keypair_generate(&kp);
    else key_of(seq, &kp);
    char *json = checkpoint_by(seq, 0, flip_hash_byte, &kp);
    tl_keypair_wipe(&kp);
    return json;
}

/* a checkpoint signed by a key the log never used */
START_TEST(checkpoint_signed_by_a_stranger) {
    char *cp = checkpoint_custom(80, -1, true);
    expect_bad(cp, 80, "a checkpoint signed by a stranger");
    free(cp);
}
END_TEST

/* a checkpoint whose hash differs in its last byte only; one at sequence 0 */
START_TEST(checkpoint_hash_differs_in_last_byte) {
    char *cp = checkpoint_custom(80, 31, false);
    expect_bad(cp, 80, "a checkpoint naming another hash (last byte)");
    free(cp);
    tl_verify_report r;
    const char *zero = "{\"seq\":0,\"hash\":\"00\",\"ts\":0,\"key\":\"00\",\"signature\":\"00\"}";
    ck_assert_int_eq(verify(zero, &r), TL_EINVALID);
}
END_TEST

/* A checkpoint is signed by the key current at its sequence (docs/FORMAT.md §7): the key
 * the rotation at ROTATION retired (leaked, say) cannot vouch for an event after it, nor the
 * new key for one before it was current; at ROTATION the new key is current. */
START_TEST(checkpoint_signed_by_the_key_of_its_sequence) {
    tl_keypair old, cur;
    retired_key(&old);
    writer_key(&cur);
    struct {
        uint64_t seq;
        const tl_keypair *kp;
        bool good;
        const char *what;
    } cases[] = {
        {ROTATION - 1, &old, true, "before the rotation, by the key current then"},
        {ROTATION, &cur, true, "at the rotation, by the key it hands over to"},
        {EVENTS, &cur, true, "at the head, by the current key"},
        {ROTATION, &old, false, "at the rotation, by the key it retires"},
        {ROTATION + 1, &old, false, "after the rotation, by the retired key"},
        {EVENTS, &old, false, "at the head, by the retired key"},
        {ROTATION - 1, &cur, false, "before the rotation, by the key not yet current"},
        {1, &cur, false, "at the genesis, by the key not yet current"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cp = checkpoint_by(cases[i].seq, 0, -1, cases[i].kp);
        if (cases[i].good) expect_good(cp, cases[i].what);
        else expect_bad(cp, cases[i].seq, cases[i].what);
        free(cp);
    }
    tl_keypair_wipe(&old);
    tl_keypair_wipe(&cur);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, checkpoint_detects_rewritten_tail);
    tcase_add_test(tc, checkpoint_detects_rewrite_before_it);
    tcase_add_test(tc, checkpoint_detects_truncated_tail);
    tcase_add_test(tc, checkpoint_covers_what_it_names);
    tcase_add_test(tc, checkpoint_time_must_match);
    tcase_add_test(tc, checkpoint_signed_by_a_stranger);
    tcase_add_test(tc, checkpoint_hash_differs_in_last_byte);
    tcase_add_test(tc, checkpoint_signed_by_the_key_of_its_sequence);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
