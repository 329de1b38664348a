/*
 * test_tamper_content.c — SPEC §5, what an event's payload commits to and holds: content
 * still stored is checked against its commitment (a byte of salt or content changed, content
 * cut, content deleted without an erasure), the fields beside a commitment (its size, an
 * erasure's 32-byte commitment), the first content deleted behind the log's back named, an
 * erasure excusing its own commitment only; an extension's commitment-like fields commit to
 * nothing (only kinds "x." are an extension's), and a domain payload carries no nil.
 *
 * The log under attack and the attacker's tools: tamper_fixture.h; domain events are added
 * with JSON commands (run_commands).
 */
#include <lmdb.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "tamper_fixture.h"

/* ================================================================ content */

/* Run JSON command lines on the test log, each in its own commit. */
static void run_commands(const char *const *lines) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    for (size_t i = 0; lines[i]; i++) {
        tl_cmd *cmd;
        tl_result res;
        ck_assert_int_eq(tl_cmd_parse(&cmd, lines[i], strlen(lines[i]), &res), 0);
        ck_assert_msg(tl_cmd_exec(log, cmd, &res) == 0 && res.code == 0, "%s: %s", lines[i], res.message);
        tl_cmd_free(cmd);
    }
    tl_log_close(log);
}

static const char *const one_message[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-1\",\"project\":\"o-1\",\"body\":\"Tomorrow\"}",
    NULL};

/* Verify checks content still stored against its commitment; erasure leaves it valid. */
START_TEST(content_commitment) {
    /* a message (event EVENTS + 4) whose body threadlog stored with its salt */
    run_commands(one_message);
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, EVENTS + 4, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    ck_assert_uint_eq(c.len, 32);
    uint8_t commit[32], value[40];
    memcpy(commit, c.ptr, 32);
    MDB_val k = {32, commit}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.content, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 40); /* salt (32) || "Tomorrow" */
    memcpy(value, v.mv_data, 40);
    raw_end(&r);
    free(rec);
    tl_verify_report rep;
    ck_assert_int_eq(verify(NULL, &rep), 0);
    ck_assert_uint_eq(rep.contents, 1);
    { /* a verified replay checks it too */
        tl_log *rl;
        ck_assert_int_eq(tl_log_open(&rl, g_dir, NULL), 0);
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = true;
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(rl, &o, &rr), 0);
        ck_assert_uint_eq(rr.verify.contents, 1);
        tl_log_close(rl);
    }
    /* a byte of the salt or of the content changed (each one is a verify of the log) */
    static const size_t positions[] = {0, 1, 17, 31, 32, 35, 39};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        size_t pos = positions[i];
        uint8_t bad[40];
        memcpy(bad, value, 40);
        bad[pos] ^= 0x01;
        v = (MDB_val){40, bad};
        raw_begin(&r);
        ck_assert_int_eq(mdb_put(r.txn, r.content, &k, &v, 0), 0);
        raw_end(&r);
        expect_bad(NULL, EVENTS + 4, "content changed");
        if (i == 0 || i == 4) replay_refuses_when(EVENTS + 4, false); /* the salt, the content */
    }
    /* content of another size */
    v = (MDB_val){39, value};
    raw_begin(&r);
    ck_assert_int_eq(mdb_put(r.txn, r.content, &k, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 4, "content cut");
    replay_refuses_when(EVENTS + 4, false);
    /* deleted behind the log's back (no content.erased event names it): not an erasure */
    raw_begin(&r);
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 4, "content deleted without an erasure");
    replay_refuses_when(EVENTS + 4, false);
}
END_TEST

/* The fields beside a commitment are checked as FORMAT.md §6 (checks 7 and 9) says, even
 * when the key holder signed them: a size other than the content's (its hash still
 * matching), a size missing, an erasure whose commitment is not 32 bytes (mutation testing:
 * each passed when its check was dropped). */
START_TEST(commitment_fields_checked) {
    run_commands(one_message);
    const uint64_t note = EVENTS + 4;
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, note, &len);
    raw_end(&r);
    size_t n = len - 64;
    const uint8_t *at = memmem(rec, n, "\xa9" "body_size\x08", 11); /* "Tomorrow": 8 bytes */
    ck_assert_ptr_nonnull(at);
    size_t size_at = (size_t)(at - rec);
    uint8_t *ed = malloc(n);
    /* the size one more than the content's */
    memcpy(ed, rec, n);
    ed[size_at + 10] = 9;
    uint8_t *f = sign_bytes(ed, n, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_bad(NULL, note, "a body_size one more than the content's");
    replay_refuses_when(note, false); /* replay --verify checks it too, from its content table */
    free(f);
    /* the size missing: the pair cut out of the payload map */
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, n), 0);
    size_t map_at = (size_t)(ev.payload - rec);
    ck_assert_uint_eq(rec[map_at] & 0xf0, 0x80);
    memcpy(ed, rec, n);
    ed[map_at]--;
    memmove(ed + size_at, ed + size_at + 11, n - size_at - 11);
    f = sign_bytes(ed, n - 11, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_bad(NULL, note, "a body_commit without its body_size");
    free(f);
    raw_begin(&r);
    raw_set(&r, note, rec, len);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_good(NULL, "restored");
    /* the size missing once the content is erased: checked all the same (the note is no longer
     * the last event, so the chain breaks at the erasure after it: only the size check names
     * the note) */
    {
        tl_log *log;
        ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
        tl_result res;
        ck_assert_int_eq(tl_erase(log, "m-1", "a request", &res), 0);
        ck_assert_uint_eq(res.seq, note + 1);
        tl_log_close(log);
    }
    memcpy(ed, rec, n);
    ed[map_at]--;
    memmove(ed + size_at, ed + size_at + 11, n - size_at - 11);
    f = sign_bytes(ed, n - 11, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_end(&r);
    expect_bad(NULL, note, "an erased body's commitment without its body_size");
    free(f);
    raw_begin(&r);
    raw_set(&r, note, rec, len);
    uint8_t *erasure = raw_get(&r, note + 1, &len);
    raw_end(&r);
    expect_good(NULL, "restored, with the erasure");
    /* an erasure naming a 31-byte commitment */
    uint8_t h[32], c31[31] = {0};
    uint64_t ts;
    record_hash_ts(erasure, len, h, &ts);
    free(erasure);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = note + 2, .ts = ts, .actor = "@operator", .kind = "content.erased", .schema = 1,
                       .project = "o-1"};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "commitment", c31, sizeof c31);
    tl_payload_str(&p, "reason", "a request");
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note + 2, f, fl);
    raw_set_head(&r, note + 2);
    raw_end(&r);
    expect_bad(NULL, note + 2, "an erasure naming a 31-byte commitment");
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(ed), free(rec);
}
END_TEST

static const char *const two_notes[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-1\",\"project\":\"o-1\",\"body\":\"first\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-2\",\"project\":\"o-1\",\"body\":\"second\"}",
    NULL};

/* The commitment of event seq's body. */
static void body_commit_of(raw *r, uint64_t seq, uint8_t commit[32]) {
    size_t len;
    uint8_t *rec = raw_get(r, seq, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    memcpy(commit, c.ptr, 32);
    free(rec);
}

/* Content deleted behind the log's back: the first such event is named, and a meta mark
 * claiming an erasure at or before the head does not excuse it (only a cut copy's marks of
 * erasures beyond its head do; mutation testing: both passed when their checks were
 * weakened). */
START_TEST(content_deleted_first_named) {
    run_commands(two_notes);
    const uint64_t first = EVENTS + 4, second = EVENTS + 5;
    raw r;
    uint8_t c1[32], c2[32];
    raw_begin(&r);
    body_commit_of(&r, first, c1);
    body_commit_of(&r, second, c2);
    MDB_val k1 = {32, c1}, k2 = {32, c2};
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k1, NULL), 0);
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k2, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, first, "two contents deleted");
    /* a mark for the first, naming an erasure at sequence 1: not beyond the head, not ours */
    uint8_t key[7 + 32], seq1[8];
    memcpy(key, "erased/", 7);
    memcpy(key + 7, c1, 32);
    be64(seq1, 1);
    MDB_val mk = {sizeof key, key}, mv = {8, seq1};
    raw_begin(&r);
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &mk, &mv, 0), 0);
    raw_end(&r);
    expect_bad(NULL, first, "a meta mark naming an erasure before the head");
}
END_TEST

/* The commitment of a record's body (rec as tl_log_record gives it). */
static void body_commit_in(const uint8_t *rec, size_t len, uint8_t commit[32]) {
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    memcpy(commit, c.ptr, 32);
}

/* An erasure excuses the content of its own commitment only, compared whole: a deleted
 * content whose commitment merely begins like an erased one's is still named (mutation
 * testing: a comparison of the first byte passed). Commitments are salted, so notes are
 * added until one begins with the erased note's first byte. */
START_TEST(erasure_matches_whole_commitment) {
    run_commands(one_message);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    uint8_t *rec, ca[32], cb[32];
    size_t len;
    ck_assert_int_eq(tl_log_record(log, EVENTS + 4, &rec, &len), 0);
    body_commit_in(rec, len, ca);
    tl_free(rec);
    uint64_t twin = 0;
    for (int i = 0; i < 4096 && !twin; i++) {
        char line[160];
        snprintf(line, sizeof line, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-%d\",\"project\":\"o-1\",\"body\":\"note %d\"}", i, i);
        tl_cmd *cmd;
        tl_result res;
        ck_assert_int_eq(tl_cmd_parse(&cmd, line, strlen(line), &res), 0);
        ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), 0);
        tl_cmd_free(cmd);
        ck_assert_int_eq(tl_log_record(log, res.seq, &rec, &len), 0);
        body_commit_in(rec, len, cb);
        tl_free(rec);
        if (cb[0] == ca[0] && memcmp(ca, cb, 32) != 0) twin = res.seq;
    }
    ck_assert_msg(twin, "no note's commitment began like m-1's in 4,096 tries");
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-1", "a request", &res), 0);
    tl_log_close(log);
    expect_good(NULL, "m-1 erased");
    raw r;
    raw_begin(&r);
    MDB_val k = {32, cb};
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, twin, "a content deleted whose commitment begins like an erased one's");
}
END_TEST

/* Only kinds "x." and on are an extension's (whose commitment-like fields commit to nothing
 * threadlog stores): a kind that merely begins with "x" has its commitments checked
 * (mutation testing: a one-character prefix passed). A signed "xmsg" event committing to
 * content that was never stored is named. */
START_TEST(extension_kinds_need_the_dot) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32], commit[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    randombytes_buf(commit, sizeof commit);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = EVENTS + 1, .ts = ts, .actor = "alice", .kind = "xmsg", .schema = 1};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "body_commit", commit, sizeof commit);
    tl_payload_uint(&p, "body_size", 5);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    uint8_t *f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_set(&r, EVENTS + 1, f, fl);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "an \"xmsg\" event committing to content never stored");
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(last);
}
END_TEST

/* tl_export callback: counts the x.commit line, which must carry no "content" member. */
static int x_line_has_no_content(const char *line, size_t len, void *payload) {
    (void)len;
    if (!strstr(line, "\"kind\":\"x.commit\"") || strstr(line, "\"type\":\"header\"")) return 0;
    ck_assert_msg(!strstr(line, "\"content\""), "an x.* line with content: %s", line);
    (*(int *)payload)++;
    return 0;
}

/* An extension's payload is its own (FORMAT.md §9): fields named like a commitment there
 * commit to nothing threadlog stored, so verify, a verified replay and a cut copy accept them
 * (an embedder's x.* event once made its own log fail verify for ever). */
START_TEST(extension_fields_named_like_commitments) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    uint8_t commit[32];
    memset(commit, 0x5a, sizeof commit);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "body_commit", 11);
    msgpack_pack_bin_with_body(&pk, commit, 32);
    msgpack_pack_str_with_body(&pk, "body_size", 9);
    msgpack_pack_uint64(&pk, 3);
    msgpack_pack_str_with_body(&pk, "data_commit", 11);
    msgpack_pack_bin_with_body(&pk, commit, 31);
    msgpack_pack_str_with_body(&pk, "data_size", 9);
    msgpack_pack_nil(&pk); /* nil is an extension's to use, too */
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_draft d = {"x.commit", "alice", NULL, (const uint8_t *)buf.data, buf.size};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    tl_log_close(log);
    msgpack_sbuffer_destroy(&buf);
    tl_verify_report rep;
    ck_assert_msg(verify(NULL, &rep) == 0, "verify: %s", rep.reason);
    ck_assert_uint_eq(rep.contents, 0);
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = true;
    tl_replay_report rr;
    ck_assert_msg(tl_replay(log, &o, &rr) == 0, "replay --verify: %s", tl_errdetail());
    tl_log_close(log);
    /* the export lists no content for it (its verifier would look for an erasure) */
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_export_options eo = TL_EXPORT_OPTIONS_INIT;
    int x_lines = 0;
    ck_assert_int_eq(tl_export(log, &eo, x_line_has_no_content, &x_lines), 0);
    ck_assert_int_eq(x_lines, 1);
    tl_log_close(log);
    uint64_t bad = 0;
    ck_assert_int_eq(cut_copy(EVENTS, true, &bad), 0); /* the cut deletes no content for it */
    ck_assert_uint_eq(bad, 0);
}
END_TEST

/* Canonical rule 7 (FORMAT.md §3): a domain event carries no nil but the envelope's project.
 * One re-signed by the key holder with "account": nil (and the head moved to it) is corrupt. */
START_TEST(nil_in_a_domain_payload) {
    run_commands(one_message);
    const uint64_t last = EVENTS + 4;
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *prev = raw_get(&r, last - 1, &len);
    uint8_t ph[32];
    uint64_t ts;
    record_hash_ts(prev, len, ph, &ts);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, last);
    msgpack_pack_uint64(&pk, ts + 1);
    msgpack_pack_bin_with_body(&pk, ph, 32);
    msgpack_pack_str_with_body(&pk, "alice", 5);
    msgpack_pack_str_with_body(&pk, "message.read", 12);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str_with_body(&pk, "o-1", 3);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "account", 7);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, "m-1", 3);
    size_t rl = buf.size + 64;
    uint8_t *rec = malloc(rl);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, &kp);
    raw_set(&r, last, rec, rl);
    raw_end(&r);
    uint8_t head[80]; /* the head moved to it, by hand: the event does not decode */
    head_get(head);
    be64(head, last);
    crypto_generichash(head + 8, 32, rec, rl - 64, NULL, 0);
    be64(head + 40, ts + 1);
    head_put(head);
    tl_verify_report rep;
    ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
    ck_assert_uint_eq(rep.first_bad_seq, last);
    ck_assert_msg(strstr(rep.reason, "nil"), "reason: %s", rep.reason);
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(rec);
    free(prev);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_content");
    TCase *tc = tcase_create("content");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, content_commitment);
    tcase_add_test(tc, commitment_fields_checked);
    tcase_add_test(tc, content_deleted_first_named);
    tcase_add_test(tc, erasure_matches_whole_commitment);
    tcase_add_test(tc, extension_kinds_need_the_dot);
    tcase_add_test(tc, extension_fields_named_like_commitments);
    tcase_add_test(tc, nil_in_a_domain_payload);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
