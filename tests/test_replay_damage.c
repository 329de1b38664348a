/*
 * test_replay_damage.c — damage replay must refuse, naming the event verify names: history
 * rewritten with the real key before a checkpoint (only the checkpoint exposes it), a byte of
 * an event or of a signature flipped, an early event forged, the last event and a middle one
 * removed; the projections are left as they were. And on the tamper fixture's log of 1,000
 * events: an altered event (the verified replay names it, the unverified one the broken link
 * after it), an equal time (accepted), a second genesis, the head naming another key, a
 * removed tail, an altered last event.
 *
 * The command stream and the observation of a state: replay_fixture.h; the log under attack
 * and the attacker's tools: tamper_fixture.h.
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h" /* tl_keyfile_* */
#include "replay_fixture.h"
#include "tamper_fixture.h"

/* ================================================================ after a checkpoint */

/* Edit one stored record with raw LMDB (the log closed: one environment per process). */
static void tamper(const char *dir, uint64_t seq, long byte, int delete_it) {
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_dbi_open(txn, "log", 0, &dbi), 0);
    uint8_t key[8];
    for (int i = 7; i >= 0; i--) key[i] = (uint8_t)(seq >> (8 * (7 - i)));
    MDB_val k = {8, key}, v;
    ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
    if (delete_it) {
        ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
    } else {
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        size_t at = byte >= 0 ? (size_t)byte : v.mv_size - (size_t)(-byte);
        copy[at] ^= 0x01;
        MDB_val nv = {v.mv_size, copy};
        ck_assert_int_eq(mdb_put(txn, dbi, &k, &nv, 0), 0);
        free(copy);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static int verify_with(tl_log *log, const char *checkpoint, tl_verify_report *r) {
    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    o.checkpoint_json = checkpoint;
    return tl_log_verify(log, &o, r);
}

START_TEST(tampering_after_checkpoint_detected) {
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "64", 1); /* the damage falls in a middle chunk */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 5};
    run_setup(log);
    run_stream(log, &g, 400);
    tl_log_close(log);
    /* a second copy of the log, key included: what an insider could rewrite history with */
    char *fork_dir = sibling(dir, "fork");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", dir, fork_dir);
    ck_assert_int_eq(system(cmd), 0);
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    run_stream(log, &g, 300);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    uint64_t c = head_of(log);
    run_stream(log, &g, 300);
    uint64_t head = head_of(log);
    ck_assert_uint_gt(head, c + 3);
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_verify_report vr;
    ck_assert_int_eq(verify_with(log, cp, &vr), 0);

    /* 1. history rewritten with the real key from before the checkpoint on: the rewritten log
     * is self-consistent (chain and signatures hold), only the checkpoint exposes it */
    tl_log *f;
    ck_assert_int_eq(tl_log_open(&f, fork_dir, &oo), 0);
    gen other = {.s = test_seed() + 99, .projects = 500, .topics = 500, .messages = 50000, .uploads = 500};
    run_stream(f, &other, 900);
    ck_assert_uint_gt(head_of(f), c);
    ck_assert_int_eq(verify_with(f, NULL, &vr), 0);
    ck_assert_int_eq(verify_with(f, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c);
    tl_log_close(f);

    /* 2. a byte flipped in an event after the checkpoint: verify names it; a verifying replay
     * refuses it and leaves the projections as they were */
    tl_log_close(log);
    tamper(dir, c + 2, 20, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c + 2);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = 1;
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 2);
    char now[TL_PUBKEY_HEX_SIZE];
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    /* ... and so does a replay without verification (the chain is checked all the same), in
     * place and into another directory */
    for (int into = 0; into < 2; into++) {
        tl_replay_options u = TL_REPLAY_OPTIONS_INIT;
        char *copy = into ? sibling(dir, "unverified") : NULL;
        u.into_dir = copy;
        ck_assert_int_eq(tl_replay(log, &u, &r), TL_ECORRUPT);
        ck_assert_uint_ge(r.verify.first_bad_seq, c + 2);
        ck_assert_uint_le(r.verify.first_bad_seq, c + 3);
        free(copy);
    }
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    tl_log_close(log);
    tamper(dir, c + 2, 20, 0); /* flip it back */

    /* 3. a signature byte flipped: only the signature check sees it */
    tamper(dir, c + 1, -1, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c + 1);
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 1);
    ck_assert_msg(strstr(r.verify.reason, "signature") != NULL, "%s", r.verify.reason);
    tl_log_close(log);
    tamper(dir, c + 1, -1, 0);

    /* 3b. an early event (first chunk) forged: its signature, not the next event's chain */
    tamper(dir, 3, 30, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    o.threads = 1;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, 3);
    o.threads = 2;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, 3);
    tl_log_close(log);
    tamper(dir, 3, 30, 0);

    /* 4. the last event removed: verify sees the head further on; replay refuses even
     * without verification rather than rewrite the head and hide the removal */
    tamper(dir, head, 0, 1);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, NULL, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, head);
    ck_assert_int_eq(tl_replay(log, NULL, &r), TL_ECORRUPT);
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    /* 5. an event removed from the middle */
    tl_log_close(log);
    tamper(dir, c + 1, 0, 1);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 1);
    tl_free(cp);
    free(fork_dir);
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

int main(void) {
    Suite *s = suite_create("replay_damage");
    TCase *tc = tcase_create("tampering");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tampering_after_checkpoint_detected);
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
