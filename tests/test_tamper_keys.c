/*
 * test_tamper_keys.c — SPEC §5, signatures and keys: events signed by a stranger's key (at the
 * tail, in the middle, a forged key.rotated handing the log over to it), a second genesis
 * bringing in a key, a first event that is not a genesis, a genesis of another format, a
 * key.rotated with a short key, two bad signatures in one chunk (the first is named), and
 * meta's unsigned copies of the genesis (its key, the attachment limit) altered or missing.
 *
 * The log under attack and the attacker's tools: tamper_fixture.h.
 */
#include <lmdb.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "tamper_fixture.h"

/* ================================================================ inserted events */

START_TEST(insert_foreign_signed) {
    tl_keypair foreign;
    tl_keypair_generate(&foreign);
    raw r;
    size_t len;
    uint8_t h[32];
    uint64_t ts;

    /* at the tail, chained to the last event, with the head moved onto it */
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, EVENTS + 1, ts + 1, h, "x.tamper", "appended by mallory", NULL, &foreign);
    raw_set(&r, EVENTS + 1, f, fl);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a foreign event at the tail (head not moved)");
    /* replay refuses it too, verified or not: it would silently leave it out otherwise */
    replay_refuses(EVENTS + 1);
    raw_begin(&r);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a foreign event at the tail (head moved)");

    /* a key.rotated forged with the foreign key, handing over to it, and an event by it */
    uint8_t h2[32];
    uint64_t ts2;
    size_t fl2, fl3;
    uint8_t *rot = forge(&fl2, EVENTS + 1, ts + 1, h, "key.rotated", "take over", foreign.pk, &foreign);
    record_hash_ts(rot, fl2, h2, &ts2);
    uint8_t *after = forge(&fl3, EVENTS + 2, ts2, h2, "x.tamper", "mallory was here", NULL, &foreign);
    raw_begin(&r);
    raw_set(&r, EVENTS + 1, rot, fl2);
    raw_set(&r, EVENTS + 2, after, fl3);
    raw_set_head(&r, EVENTS + 2);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a forged key.rotated");
    raw_begin(&r);
    raw_del(&r, EVENTS + 1);
    raw_del(&r, EVENTS + 2);
    raw_set_head(&r, EVENTS);
    raw_end(&r);
    expect_good(NULL, "the tail removed again");

    /* in the middle: events 501.. move up by one, the foreign one chains onto 500 */
    raw_begin(&r);
    for (uint64_t s = EVENTS; s > ROTATION; s--) {
        size_t l;
        uint8_t *rec = raw_get(&r, s, &l);
        raw_set(&r, s + 1, rec, l);
        free(rec);
    }
    size_t l500;
    uint8_t *r500 = raw_get(&r, ROTATION, &l500);
    record_hash_ts(r500, l500, h, &ts);
    size_t fm;
    uint8_t *mid = forge(&fm, ROTATION + 1, ts, h, "x.tamper", "inserted by mallory", NULL, &foreign);
    raw_set(&r, ROTATION + 1, mid, fm);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, ROTATION + 1, "a foreign event inserted at 501");
    tl_keypair_wipe(&foreign);
    free(last), free(f), free(rot), free(after), free(r500), free(mid);
}
END_TEST

/* ================================================================ the genesis and its copies */

/* The genesis is first and only first: a second one cannot bring in a key. */
START_TEST(genesis_only_first) {
    tl_keypair kp, foreign;
    writer_key(&kp);
    tl_keypair_generate(&foreign);
    raw r;
    size_t len;
    uint8_t h[32], h2[32];
    uint64_t ts, ts2;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    size_t fl, fl2;
    /* signed by the writer key, naming a stranger's key, and an event signed by that key */
    uint8_t *g2 = forge(&fl, EVENTS + 1, ts, h, "log.created", "a new beginning", foreign.pk, &kp);
    record_hash_ts(g2, fl, h2, &ts2);
    uint8_t *after = forge(&fl2, EVENTS + 2, ts2, h2, "x.tamper", "signed by the stranger", NULL, &foreign);
    raw_set(&r, EVENTS + 1, g2, fl);
    raw_set(&r, EVENTS + 2, after, fl2);
    raw_set_head(&r, EVENTS + 2);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a second genesis");
    /* and the first event must be one */
    raw_begin(&r);
    raw_del(&r, EVENTS + 1);
    raw_del(&r, EVENTS + 2);
    raw_set_head(&r, EVENTS);
    size_t l1;
    uint8_t *g = raw_get(&r, 1, &l1), zero[32] = {0};
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, g, l1 - 64), 0);
    size_t fl3;
    uint8_t *not_genesis = forge(&fl3, 1, ev.ts, zero, "x.tamper", "I am first", NULL, &kp);
    raw_set(&r, 1, not_genesis, fl3);
    raw_end(&r);
    expect_bad(NULL, 1, "a first event that is not log.created");
    replay_refuses_when(1, true); /* no key is known before a genesis: never index past the list */
    tl_keypair_wipe(&kp);
    tl_keypair_wipe(&foreign);
    free(last), free(g2), free(after), free(g), free(not_genesis);
}
END_TEST

/* meta's copies of the genesis (its key, the attachment limit) are unsigned: verify reports a
 * copy that differs from the genesis event, and the rules enforce the genesis event's limit,
 * not meta's. */
START_TEST(meta_copies_of_genesis) {
    raw r;
    raw_begin(&r);
    MDB_val lk = {14, "max_attachment"}, gk = {11, "genesis_key"}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &lk, &v), 0);
    uint8_t limit[8];
    memcpy(limit, v.mv_data, 8);
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &gk, &v), 0);
    uint8_t key[32];
    memcpy(key, v.mv_data, 32);
    uint8_t zero[8] = {0};
    v = (MDB_val){8, zero};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's attachment limit set to 0");
    replay_refuses_when(1, false); /* replay --verify checks the genesis as verify does */
    uint64_t bad; /* a cut checks what its replay checks: the copies with --verify only */
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, 1);
    ck_assert_int_eq(cut_copy(10, false, &bad), 0);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.max_attachment, TL_DEFAULT_MAX_ATTACHMENT); /* the genesis event's */
    tl_log_close(log);

    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    raw_begin(&r);
    v = (MDB_val){8, limit};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    v = (MDB_val){32, other};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &gk, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's genesis key changed");
    replay_refuses_when(1, false);
    /* a copy missing: the log still opens (its limit is the genesis event's), verify names it */
    raw_begin(&r);
    v = (MDB_val){32, key};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &gk, &v, 0), 0);
    ck_assert_int_eq(mdb_del(r.txn, r.meta, &lk, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's attachment limit removed");
    raw_begin(&r);
    v = (MDB_val){8, limit};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    raw_end(&r);
    expect_good(NULL, "meta restored");
}
END_TEST

/* ================================================================ near misses
 * Found by mutation testing of verify (2026-11-27): each case below passed verify when one of
 * its checks was weakened (compared over fewer bytes, skipped, or its loop not stopped), and
 * no other test noticed. */

/* two bad signatures in one chunk: the first is named */
START_TEST(two_bad_signatures_first_named) {
    raw r;
    size_t l10, l20;
    raw_begin(&r);
    uint8_t *a = raw_get(&r, 10, &l10), *b = raw_get(&r, 20, &l20);
    a[l10 - 1] ^= 1;
    b[l20 - 1] ^= 1;
    raw_set(&r, 10, a, l10);
    raw_set(&r, 20, b, l20);
    raw_end(&r);
    expect_bad(NULL, 10, "signatures of 10 and 20 damaged");
    replay_refuses_when(10, false); /* signatures: the verified replay only */
    free(a), free(b);
}
END_TEST

static int no_line(const char *line, size_t len, void *payload) {
    (void)payload;
    ck_abort_msg("export wrote a line: %.*s", (int)(len < 200 ? len : 200), line);
    return 0;
}

/* a key.rotated whose public_key is 31 bytes, signed by the writer key */
START_TEST(rotated_key_too_short) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r69 = raw_get(&r, 69, &len);
    record_hash_ts(r69, len, h, &ts);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = 70, .ts = ts, .actor = "@operator", .kind = "key.rotated", .schema = 1};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "public_key", kp.pk, 31);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    size_t fl;
    uint8_t *f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_set(&r, 70, f, fl);
    raw_end(&r);
    expect_bad(NULL, 70, "key.rotated with a 31-byte key");
    replay_refuses_when(70, true);
    /* nor does the export put it in its key chain (it would read 32 bytes of a 31-byte key) */
    tl_log *log;
    tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
    ck_assert_int_eq(tl_log_open(&log, g_dir, &o), 0);
    ck_assert_int_eq(tl_export(log, NULL, no_line, NULL), TL_ECORRUPT);
    tl_log_close(log);
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(r69);
}
END_TEST

/* a one-event log whose genesis says format 2, re-signed by its key */
START_TEST(genesis_of_another_format) {
    char *base = tu_tmpdir();
    char *saved = g_dir;
    g_dir = malloc(strlen(base) + 8);
    sprintf(g_dir, "%s/log", base);
    free(base);
    ck_assert_int_eq(tl_log_init(g_dir, NULL, NULL), 0);
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *g = raw_get(&r, 1, &len);
    uint8_t *at = memmem(g, len - 64, "\xa6" "format\x01", 8);
    ck_assert_ptr_nonnull(at);
    at[7] = 2;
    size_t fl;
    uint8_t *f = sign_bytes(g, len - 64, &fl, &kp);
    raw_set(&r, 1, f, fl);
    raw_set_head(&r, 1);
    raw_end(&r);
    expect_bad(NULL, 1, "a genesis of format 2");
    replay_refuses_when(1, true);
    tl_keypair_wipe(&kp);
    free(g), free(f);
    teardown();
    g_dir = saved;
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_keys");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, insert_foreign_signed);
    tcase_add_test(tc, genesis_only_first);
    tcase_add_test(tc, two_bad_signatures_first_named);
    tcase_add_test(tc, rotated_key_too_short);
    tcase_add_test(tc, genesis_of_another_format);
    tcase_add_test(tc, meta_copies_of_genesis);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
