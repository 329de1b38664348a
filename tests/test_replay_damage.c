/*
 * test_replay_damage.c — damage replay must refuse, naming the event verify names: history
 * rewritten with the real key before a checkpoint (only the checkpoint exposes it), a byte of
 * an event or of a signature flipped, an early event forged, the last event and a middle one
 * removed; the projections are left as they were.
 *
 * The command stream and the observation of a state: replay_fixture.h.
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_fixture.h"

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

int main(void) {
    Suite *s = suite_create("replay_damage");
    TCase *tc = tcase_create("tampering");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tampering_after_checkpoint_detected);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
