/*
 * test_log_exchange.c — what this log hands to another party, signed by the writer's key, and
 * how it is checked there: records exchanged between logs (stored unchanged, refused when they
 * do not belong, a rotation travelling with its events) and signed checkpoints (their shape,
 * a log that grows past one, damaged, foreign and malformed ones).
 *
 * Each test makes its own log in a fresh temporary directory (log_fixture.h).
 */
#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "crypto.h"
#include "log.h" /* tl_keyfile_read */
#include "log_fixture.h"

/* ================================================================ helpers */

/* Copy a closed log directory (data and key; LMDB rebuilds lock.mdb). */
static char *copy_log(const char *dir) {
    char *base = tu_tmpdir();
    char *copy = path_in(base, "log");
    free(base);
    ck_assert_int_eq(mkdir(copy, 0700), 0);
    char *a = path_in(dir, "data.mdb"), *b = path_in(copy, "data.mdb");
    copy_file(a, b, 0600);
    free(a), free(b);
    a = path_in(dir, "writer.key"), b = path_in(copy, "writer.key");
    copy_file(a, b, 0600);
    free(a), free(b);
    return copy;
}

static uint8_t *record_of(tl_log *log, uint64_t seq, size_t *len) {
    uint8_t *rec;
    ck_assert_int_eq(tl_log_record(log, seq, &rec, len), 0);
    return rec;
}

static void head_of(tl_log *log, uint64_t seq, uint8_t hash[32], uint64_t *ts) {
    size_t len;
    uint8_t *rec = record_of(log, seq, &len);
    crypto_generichash(hash, 32, rec, len - 64, NULL, 0);
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, rec, len - 64), 0);
    *ts = e.ts;
    free(rec);
}

/* ================================================================ record exchange */

/* Build a record: an event encoded with the codec, chained to prev, signed by kp. */
static uint8_t *forge(size_t *len, uint64_t seq, uint64_t ts, const uint8_t prev[32], const char *kind,
                      const tl_keypair *kp) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = seq, .ts = ts, .actor = "mallory", .kind = kind, .schema = 1};
    memcpy(env.prev, prev, 32);
    tl_payload p = {0};
    tl_payload_str(&p, "note", "forged");
    if (strcmp(kind, "log.created") == 0) {
        tl_payload_uint(&p, "format", 1);
        tl_payload_bin(&p, "public_key", kp->pk, 32);
    }
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    *len = buf.size + 64;
    uint8_t *rec = malloc(*len);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, kp);
    msgpack_sbuffer_destroy(&buf);
    return rec;
}

START_TEST(records_exchange) {
    char *dir_a;
    tl_log *a = tu_new_log(&dir_a);
    tl_log_close(a);
    char *dir_b = copy_log(dir_a); /* a replica: same genesis, same writer key */
    a = open_log(dir_a, 0);
    append_n(a, 10, 0, 0);
    append_n(a, 20, 10, 100);
    tl_log *b = open_log(dir_b, 0);
    ck_assert_uint_eq(head_seq(b), 1);

    /* records 2..31 go over in two calls and are stored unchanged */
    const uint8_t *recs[40];
    size_t lens[40];
    for (uint64_t s = 2; s <= 31; s++) recs[s - 2] = record_of(a, s, &lens[s - 2]);
    ck_assert_int_eq(tl_log_append_records(b, recs, lens, 10), 0);
    ck_assert_uint_eq(head_seq(b), 11);
    ck_assert_int_eq(tl_log_append_records(b, recs + 10, lens + 10, 20), 0);
    ck_assert_uint_eq(head_seq(b), 31);
    for (uint64_t s = 2; s <= 31; s++) {
        size_t len;
        uint8_t *got = record_of(b, s, &len);
        ck_assert_uint_eq(len, lens[s - 2]);
        ck_assert_mem_eq(got, recs[s - 2], len);
        free(got);
    }
    verify_ok(b, 31);
    /* b took them as a writer, not as a replica (TL_OPEN_REPLICA): no replica_since, which only
     * a replica records (FORMAT.md §2), so verify still asks these events for their content */
    tl_verify_report vr;
    ck_assert_int_eq(tl_log_verify(b, NULL, &vr), 0);
    ck_assert_uint_eq(vr.replica_since, 0);
    /* the same records again (a replicator retrying after a lost answer): they no longer
     * follow the head, a conflict with it, not damage */
    ck_assert_int_eq(tl_log_append_records(b, recs, lens, 1), TL_ECONFLICT);
    ck_assert_int_eq(tl_log_append_records(b, recs + 29, lens + 29, 1), TL_ECONFLICT);
    for (int i = 0; i < 30; i++) free((void *)recs[i]);

    /* records that do not belong are refused, and nothing of their batch is appended */
    char *keypath = path_in(dir_a, "writer.key");
    tl_keypair real, foreign;
    ck_assert_int_eq(tl_keyfile_read(keypath, &real), 0);
    tl_keypair_generate(&foreign);
    uint8_t hash[32], zero[32] = {0};
    uint64_t ts;
    head_of(b, 31, hash, &ts);
    size_t n1, n2;
    uint8_t *good32 = forge(&n1, 32, ts + 1, hash, "x.ok", &real);
    uint8_t h32[32];
    crypto_generichash(h32, 32, good32, n1 - 64, NULL, 0);
    uint8_t *good33 = forge(&n2, 33, ts + 2, h32, "x.ok", &real);
    struct { const char *name; uint8_t *rec; size_t len; int code; } bad[10];
    int nb = 0;
    bad[nb].name = "signed by another key";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "x.bad", &foreign), nb++;
    bad[nb].name = "not chained";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, zero, "x.bad", &real), nb++;
    bad[nb].name = "skips a sequence number";
    bad[nb].rec = forge(&bad[nb].len, 33, ts + 1, hash, "x.bad", &real), nb++;
    bad[nb].name = "back in time";
    bad[nb].rec = forge(&bad[nb].len, 32, ts - 1, hash, "x.bad", &real), nb++;
    bad[nb].name = "a second genesis";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "log.created", &real), nb++;
    bad[nb].name = "a flipped signature byte";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "x.bad", &real);
    bad[nb].rec[bad[nb].len - 10] ^= 1, nb++;
    bad[nb].name = "a flipped event byte";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "x.bad", &real);
    bad[nb].rec[bad[nb].len - 70] ^= 1, nb++;
    bad[nb].name = "too short to hold a signature";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "x.bad", &real);
    bad[nb].len = 64, nb++;
    bad[nb].name = "the signature cut off";
    bad[nb].rec = forge(&bad[nb].len, 32, ts + 1, hash, "x.bad", &real);
    bad[nb].len -= 64, nb++;
    for (int i = 0; i < nb; i++) bad[i].code = TL_ECORRUPT;
    bad[2].code = TL_ECONFLICT; /* a gap: the head is not where the sender thinks */
    for (int i = 0; i < nb; i++) {
        const uint8_t *one[1] = {bad[i].rec};
        int rc = tl_log_append_records(b, one, &bad[i].len, 1);
        ck_assert_msg(rc == bad[i].code, "%s: %s", bad[i].name, tl_strerror(rc));
        /* and at the end of a batch of good ones: all or nothing */
        const uint8_t *three[3] = {good32, good33, bad[i].rec};
        size_t l3[3] = {n1, n2, bad[i].len};
        if (i < 5) { /* the ones made for seq 32 do not fit at 34 anyway */
            rc = tl_log_append_records(b, three, l3, 3);
            ck_assert_msg(rc == TL_ECONFLICT, "%s in a batch: %s", bad[i].name, tl_strerror(rc)); /* at 34: the sequence first */
        }
        ck_assert_uint_eq(head_seq(b), 31);
    }
    /* the detail names the record, readably */
    const uint8_t *one[1] = {bad[0].rec};
    ck_assert_int_eq(tl_log_append_records(b, one, &bad[0].len, 1), TL_ECORRUPT);
    ck_assert_str_eq(tl_errdetail(), "record 0: record 32 is not signed by the current key");
    const uint8_t *two[2] = {good32, good33};
    size_t l2[2] = {n1, n2};
    ck_assert_int_eq(tl_log_append_records(b, two, l2, 2), 0);
    ck_assert_uint_eq(head_seq(b), 33);
    verify_ok(b, 33);

    for (int i = 0; i < nb; i++) free(bad[i].rec);
    free(good32), free(good33), free(keypath);
    tl_keypair_wipe(&real);
    tl_keypair_wipe(&foreign);
    remove_log(b, dir_b);
    remove_log(a, dir_a);
}
END_TEST

/* A replica at the genesis refuses the records of a log with another genesis. */
START_TEST(records_other_genesis) {
    char *dir_a, *dir_c;
    tl_log *a = tu_new_log(&dir_a);
    tl_log *c = tu_new_log(&dir_c);
    append_n(c, 3, 0, 0);
    size_t len;
    uint8_t *rec = record_of(c, 2, &len);
    const uint8_t *one[1] = {rec};
    ck_assert_int_eq(tl_log_append_records(a, one, &len, 1), TL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(tl_errdetail(), "does not chain"));
    ck_assert_uint_eq(head_seq(a), 1);
    free(rec);
    remove_log(a, dir_a);
    remove_log(c, dir_c);
}
END_TEST

/* A rotation travels with the events signed by the new key, in one batch. */
START_TEST(records_with_rotation) {
    char *dir_a;
    tl_log *a = tu_new_log(&dir_a);
    tl_log_close(a);
    char *dir_b = copy_log(dir_a);
    a = open_log(dir_a, 0);
    append_n(a, 3, 0, 0);
    ck_assert_int_eq(tl_log_rotate_key(a, NULL), 0);
    append_n(a, 3, 3, 0);
    uint64_t n = head_seq(a);
    ck_assert_uint_eq(n, 8);
    const uint8_t *recs[8];
    size_t lens[8];
    for (uint64_t s = 2; s <= n; s++) recs[s - 2] = record_of(a, s, &lens[s - 2]);
    tl_log *b = open_log(dir_b, 0);
    ck_assert_int_eq(tl_log_append_records(b, recs, lens, (size_t)(n - 1)), 0);
    verify_ok(b, n);
    char pa[TL_PUBKEY_HEX_SIZE], pb[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(a, pa), 0);
    ck_assert_int_eq(tl_log_pubkey(b, pb), 0);
    ck_assert_str_eq(pa, pb);
    for (uint64_t s = 2; s <= n; s++) free((void *)recs[s - 2]);
    remove_log(b, dir_b);
    remove_log(a, dir_a);
}
END_TEST

/* ================================================================ checkpoints */

START_TEST(checkpoint_round_trip) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 9, 0, 0);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    /* the documented shape and signed message */
    json_error_t jerr;
    json_t *j = json_loads(cp, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_object_size(j), 5);
    json_int_t seq = json_integer_value(json_object_get(j, "seq"));
    json_int_t ts = json_integer_value(json_object_get(j, "ts"));
    ck_assert_int_eq(seq, 10);
    uint8_t hash[32], key[32], sig[64];
    ck_assert_int_eq(tl_unhex(hash, 32, json_string_value(json_object_get(j, "hash"))), 0);
    ck_assert_int_eq(tl_unhex(key, 32, json_string_value(json_object_get(j, "key"))), 0);
    ck_assert_int_eq(tl_unhex(sig, 64, json_string_value(json_object_get(j, "signature"))), 0);
    json_decref(j);
    uint8_t msg[23 + 8 + 32 + 8];
    memcpy(msg, "threadlog-checkpoint-v1", 23);
    be64(msg + 23, (uint64_t)seq);
    memcpy(msg + 31, hash, 32);
    be64(msg + 63, (uint64_t)ts);
    ck_assert_int_eq(crypto_sign_verify_detached(sig, msg, sizeof msg, key), 0);
    uint8_t last[32];
    uint64_t last_ts;
    head_of(log, 10, last, &last_ts);
    ck_assert_mem_eq(hash, last, 32);
    ck_assert_uint_eq((uint64_t)ts, last_ts);

    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    tl_verify_report r;
    o.checkpoint_json = cp;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    /* the log grows (and rotates): it still extends the checkpoint */
    append_n(log, 5, 9, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
    append_n(log, 5, 14, 0);
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    char *cp2;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp2), 0);
    o.checkpoint_json = cp2;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);

    /* a damaged signature */
    char *bad = strdup(cp);
    char *s = strstr(bad, "\"signature\":\"") + 13;
    *s = *s == '0' ? '1' : '0';
    o.checkpoint_json = bad;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.first_bad_seq, 10);
    free(bad);
    /* a checkpoint of another log (another key, another chain) */
    char *odir;
    tl_log *other = tu_new_log(&odir);
    append_n(other, 3, 0, 0);
    char *ocp;
    ck_assert_int_eq(tl_log_checkpoint(other, &ocp), 0);
    o.checkpoint_json = ocp;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.first_bad_seq, 4);
    /* malformed checkpoints are the caller's mistake */
    static const char *const malformed[] = {
        "", "{}", "[]", "{\"seq\":1}", "not json",
        "{\"seq\":0,\"hash\":\"00\",\"ts\":1,\"key\":\"00\",\"signature\":\"00\"}",
        "{\"seq\":1,\"hash\":\"zz\",\"ts\":1,\"key\":\"00\",\"signature\":\"00\"}",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        o.checkpoint_json = malformed[i];
        ck_assert_msg(tl_log_verify(log, &o, &r) == TL_EINVALID, "checkpoint '%s' accepted", malformed[i]);
    }
    tl_free(cp), tl_free(cp2), tl_free(ocp);
    remove_log(other, odir);
    tl_log_close(log);
    /* a read-only log cannot sign a checkpoint */
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), TL_EKEY);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_exchange");
    TCase *tc = tcase_create("exchange");
    tcase_add_test(tc, records_exchange);
    tcase_add_test(tc, records_other_genesis);
    tcase_add_test(tc, records_with_rotation);
    suite_add_tcase(s, tc);

    tc = tcase_create("checkpoints");
    tcase_add_test(tc, checkpoint_round_trip);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
