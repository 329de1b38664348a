/*
 * test_log_append.c — appending events: raw appends and their iteration (sequence numbers,
 * chain, signatures, the stored records, the JSON line), payloads stored canonically, the
 * appends refused (kinds, ids, malformed or oversized payloads, a batch with one bad draft,
 * a read-only log); and the times this writer gives events and the times it takes from
 * another log (FORMAT.md §3, field 2): it makes them strictly increase, even for a batch of
 * events encoded within one microsecond; it accepts a record repeating its predecessor's
 * time, as verify accepts one in any log (logs written before 2026-11-26 repeat some).
 *
 * Each test makes its own log in a fresh temporary directory.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "log.h"
#include "log_fixture.h"

/* ================================================================ appends and iteration */

static int append_raw(tl_log *log, const char *kind, const char *actor, const char *project, const char *hex) {
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &b[i]);
    tl_draft d = {kind, actor, project, b, n};
    int rc = tl_log_append(log, &d, 1, NULL);
    free(b);
    return rc;
}

START_TEST(append_and_iterate) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    char pkhex[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, pkhex), 0);
    uint8_t pk[TL_PUBKEY_BYTES];
    ck_assert_int_eq(tl_unhex(pk, sizeof pk, pkhex), 0);
    ck_assert_uint_eq(append_n(log, 10, 0, 0), 2);
    ck_assert_uint_eq(append_n(log, 5, 10, 0), 12);
    ck_assert_uint_eq(append_n(log, 1, 15, 0), 17);
    ck_assert_uint_eq(head_seq(log), 17);
    tl_log_close(log);
    log = open_log(dir, TL_OPEN_READONLY); /* durable and readable without the key */

    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    uint64_t want = 1, prev_ts = 0;
    uint8_t prev[TL_HASH_BYTES] = {0};
    int rc;
    while ((rc = tl_iter_next(it, &ev)) == 0) {
        ck_assert_uint_eq(ev.seq, want);
        ck_assert_uint_ge(ev.ts, prev_ts);
        tl_event e;
        ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
        ck_assert_mem_eq(e.prev, prev, TL_HASH_BYTES);
        ck_assert_int_eq(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk), 0);
        if (want > 1) {
            uint64_t i = want - 2;
            ck_assert_str_eq(ev.kind, "x.test");
            uint64_t j = i < 10 ? i : i < 15 ? i - 10 : i - 15; /* index in its batch */
            ck_assert_str_eq(ev.actor, j % 2 ? "bob" : "alice");
            if (j % 3 == 0) ck_assert_str_eq(ev.project, "p-1");
            else ck_assert_ptr_null(ev.project);
            uint64_t got;
            ck_assert_int_eq(tl_ev_uint(&e, "i", &got), 0);
            ck_assert_uint_eq(got, i);
        }
        /* the stored record is the event bytes followed by the signature */
        uint8_t *rec;
        size_t len;
        ck_assert_int_eq(tl_log_record(log, ev.seq, &rec, &len), 0);
        ck_assert_uint_eq(len, ev.len + TL_SIGNATURE_BYTES);
        ck_assert_mem_eq(rec, ev.bytes, ev.len);
        ck_assert_mem_eq(rec + ev.len, ev.signature, TL_SIGNATURE_BYTES);
        tl_free(rec);
        crypto_generichash(prev, TL_HASH_BYTES, ev.bytes, ev.len, NULL, 0);
        prev_ts = ev.ts;
        want++;
    }
    ck_assert_int_eq(rc, TL_ENOTFOUND);
    ck_assert_uint_eq(want, 18);
    tl_iter_close(it);

    /* projects, actors and the JSON line */
    ck_assert_int_eq(tl_iter_open(log, 12, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    ck_assert_uint_eq(ev.seq, 12);
    ck_assert_str_eq(ev.actor, "alice");
    ck_assert_str_eq(ev.project, "p-1");
    char *json;
    ck_assert_int_eq(tl_event_json(&ev, &json), 0);
    char expect[256];
    snprintf(expect, sizeof expect,
             "{\"seq\":12,\"ts\":%llu,\"actor\":\"alice\",\"kind\":\"x.test\",\"project\":\"p-1\","
             "\"payload\":{\"i\":10,\"note\":\"hello\"}}",
             (unsigned long long)ev.ts);
    ck_assert_str_eq(json, expect);
    tl_free(json);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    ck_assert_str_eq(ev.actor, "bob");
    ck_assert_ptr_null(ev.project);
    int n = 2;
    while (tl_iter_next(it, &ev) == 0) n++;
    ck_assert_int_eq(n, 6);
    tl_iter_close(it);
    ck_assert_int_eq(tl_iter_open(log, 18, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), TL_ENOTFOUND);
    tl_iter_close(it);
    uint8_t *rec = (uint8_t *)1;
    size_t len;
    ck_assert_int_eq(tl_log_record(log, 18, &rec, &len), TL_ENOTFOUND);
    ck_assert_ptr_null(rec);
    tl_iter_close(NULL);
    tl_free(NULL);
    verify_ok(log, 17);
    remove_log(log, dir);
}
END_TEST

START_TEST(append_canonicalises) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    /* unsorted keys, uint32 for 5, str8 for "hi", nested unsorted map, a negative int */
    ck_assert_int_eq(append_raw(log, "x.c", "alice", NULL, "84a162ce00000005a161d9026869a16382a17a01a17902a164d0df"), 0);
    tl_iter *it;
    tl_event_view ev = event_at(log, 2, &it);
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
    static const uint8_t want[] = {0x84, 0xa1, 'a', 0xa2, 'h', 'i', 0xa1, 'b', 0x05, 0xa1, 'c', 0x82,
                                   0xa1, 'y',  0x02, 0xa1, 'z', 0x01, 0xa1, 'd', 0xd0, 0xdf};
    ck_assert_uint_eq(e.payload_len, sizeof want);
    ck_assert_mem_eq(e.payload, want, sizeof want);
    tl_iter_close(it);
    verify_ok(log, 2);
    remove_log(log, dir);
}
END_TEST

START_TEST(append_refuses) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    static const struct { const char *kind, *actor, *project, *hex; } bad[] = {
        {"message.sent", "alice", NULL, "80"},          /* domain kinds only through commands */
        {"log.created", "alice", NULL, "80"},
        {"y.test", "alice", NULL, "80"},
        {NULL, "alice", NULL, "80"},
        {"x.t", NULL, NULL, "80"},
        {"x.t", "", NULL, "80"},
        {"x.t", "alice", "", "80"},
        {"x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "alice", NULL, "80"},
        {"x.t", "alice", NULL, "9101"},                 /* not a map */
        {"x.t", "alice", NULL, "a161"},
        {"x.t", "alice", NULL, ""},                     /* nothing */
        {"x.t", "alice", NULL, "8000"},                 /* trailing byte */
        {"x.t", "alice", NULL, "81a161cb3ff0000000000000"}, /* float */
        {"x.t", "alice", NULL, "81a161d40100"},         /* ext */
        {"x.t", "alice", NULL, "810101"},               /* integer key */
        {"x.t", "alice", NULL, "82a16101a16102"},       /* duplicate key */
        {"x.t", "alice", NULL, "81a161a2c080"},         /* not UTF-8 */
        {"x.t", "alice", NULL, "81a16191919191919190"}, /* too deep */
        {"x.t", "alice", NULL, "81a161ddffffffff0000"}, /* absurd count */
        {"x.t", "alice", NULL, "dfffffffff"},
        {"x.t", "alice", NULL, "81a161dbffffffff61"},   /* absurd length */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = append_raw(log, bad[i].kind, bad[i].actor, bad[i].project, bad[i].hex);
        ck_assert_msg(rc == TL_EINVALID, "case %zu (%s %s): %s (%s)", i, bad[i].kind ? bad[i].kind : "NULL",
                      bad[i].hex, tl_strerror(rc), tl_errdetail());
        ck_assert_uint_eq(head_seq(log), 1);
    }
    /* an event over 1 MiB */
    size_t big = TL_EVENT_MAX + 16;
    uint8_t *p = malloc(big);
    p[0] = 0x81, p[1] = 0xa1, p[2] = 'a', p[3] = 0xc6;
    uint32_t blen = (uint32_t)(big - 8);
    p[4] = (uint8_t)(blen >> 24), p[5] = (uint8_t)(blen >> 16), p[6] = (uint8_t)(blen >> 8), p[7] = (uint8_t)blen;
    memset(p + 8, 7, blen);
    tl_draft d = {"x.big", "alice", NULL, p, big};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), TL_EINVALID);
    d.payload_len = big - 64;
    blen = (uint32_t)(d.payload_len - 8);
    p[4] = (uint8_t)(blen >> 24), p[5] = (uint8_t)(blen >> 16), p[6] = (uint8_t)(blen >> 8), p[7] = (uint8_t)blen;
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), TL_ETOOLARGE);
    free(p);
    ck_assert_uint_eq(head_seq(log), 1);

    /* all or nothing: a batch with one bad draft appends none */
    uint8_t ok[] = {0x80}, notmap[] = {0x01};
    tl_draft batch[3] = {{"x.a", "alice", NULL, ok, 1}, {"x.a", "alice", NULL, ok, 1}, {"x.a", "alice", NULL, notmap, 1}};
    ck_assert_int_eq(tl_log_append(log, batch, 3, NULL), TL_EINVALID);
    batch[2].kind = "note.added";
    batch[2].payload_msgpack = ok;
    ck_assert_int_eq(tl_log_append(log, batch, 3, NULL), TL_EINVALID);
    ck_assert_uint_eq(head_seq(log), 1);
    batch[2].kind = "x.a";
    uint64_t first = 0;
    ck_assert_int_eq(tl_log_append(log, batch, 3, &first), 0);
    ck_assert_uint_eq(first, 2);
    /* an empty batch appends nothing and succeeds */
    ck_assert_int_eq(tl_log_append(log, batch, 0, NULL), 0);
    ck_assert_uint_eq(head_seq(log), 4);
    /* ids are checked for their form, as everywhere: actor "@operator" or an id, project an
     * id; *first_seq says 0 when nothing was appended */
    tl_draft named = {"x.a", "@operator", "p-1", ok, 1};
    ck_assert_int_eq(tl_log_append(log, &named, 1, &first), 0);
    ck_assert_uint_eq(first, 5);
    const char *bad_actors[] = {"", "@other", "bad id", "nope!!"};
    for (size_t i = 0; i < 4; i++) {
        named = (tl_draft){"x.a", bad_actors[i], NULL, ok, 1};
        first = 77;
        ck_assert_int_eq(tl_log_append(log, &named, 1, &first), TL_EINVALID);
        ck_assert_uint_eq(first, 0);
    }
    named = (tl_draft){"x.a", "alice", "nope!!", ok, 1};
    ck_assert_int_eq(tl_log_append(log, &named, 1, &first), TL_EINVALID);
    named.project = "";
    ck_assert_int_eq(tl_log_append(log, &named, 1, &first), TL_EINVALID);
    /* a payload is one msgpack value: one followed by more bytes is refused, not cut short;
     * one that is not a map is refused inside the write transaction, after *first_seq was
     * given the next seq, and *first_seq still says 0 */
    static const uint8_t two_maps[] = {0x80, 0x80}, array[] = {0x90};
    named = (tl_draft){"x.a", "@operator", NULL, two_maps, sizeof two_maps};
    first = 77;
    ck_assert_int_eq(tl_log_append(log, &named, 1, &first), TL_EINVALID);
    ck_assert_uint_eq(first, 0);
    named = (tl_draft){"x.a", "@operator", NULL, array, sizeof array};
    first = 77;
    ck_assert_int_eq(tl_log_append(log, &named, 1, &first), TL_EINVALID);
    ck_assert_uint_eq(first, 0);
    ck_assert_uint_eq(head_seq(log), 5);
    tl_log_close(log);
    /* a read-only log refuses writes, a key rotation too */
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_append(log, batch, 1, NULL), TL_EREADONLY);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), TL_EREADONLY);
    tl_replay_report rr; /* and an in-place replay, which rewrites the projections */
    ck_assert_int_eq(tl_replay(log, NULL, &rr), TL_EREADONLY);
    verify_ok(log, 5);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ times */

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
    TCase *tc = tcase_create("append");
    tcase_add_test(tc, append_and_iterate);
    tcase_add_test(tc, append_canonicalises);
    tcase_add_test(tc, append_refuses);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("times");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, times_strictly_increase_within_a_batch);
    tcase_add_test(tc, a_record_at_its_predecessors_time_is_taken);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
