/*
 * test_log.c — the log itself: init and open (key file, versions), raw appends and their
 * iteration, canonical payloads and the appends refused, the on-disk layout of docs/FORMAT.md
 * read back with raw LMDB and msgpack-c, and a NULL or a foreign option struct refused
 * wherever the API takes one. The log's other suites: test_log_map (the map and the handle),
 * test_log_keys (record exchange, key rotation, checkpoints), test_log_failures (other
 * processes, storage failures, damaged files); their shared helpers are log_fixture.c's.
 *
 * Each test makes its own log in a fresh temporary directory. Whenever a test edits the
 * LMDB file directly it closes its tl_log first: LMDB forbids opening one environment twice
 * in a process.
 */
#include <lmdb.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "log_fixture.h"

/* ================================================================ helpers */

static int append_raw(tl_log *log, const char *kind, const char *actor, const char *project, const char *hex) {
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &b[i]);
    tl_draft d = {kind, actor, project, b, n};
    int rc = tl_log_append(log, &d, 1, NULL);
    free(b);
    return rc;
}

/* Raw LMDB access to a closed log (a test's only way to damage or inspect it). */
typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta, content;
} raw;

static void raw_open(raw *r, const char *dir, bool write) {
    ck_assert_int_eq(mdb_env_create(&r->env), 0);
    mdb_env_set_maxdbs(r->env, 64);
    ck_assert_int_eq(mdb_env_open(r->env, dir, write ? MDB_NOSYNC : MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(r->env, NULL, write ? 0 : MDB_RDONLY, &r->txn), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "log", 0, &r->log), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "meta", 0, &r->meta), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "content", 0, &r->content), 0);
}

static void raw_close(raw *r, bool commit) {
    if (commit) ck_assert_int_eq(mdb_txn_commit(r->txn), 0);
    else mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
}

static void raw_put(raw *r, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl) {
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    ck_assert_int_eq(mdb_put(r->txn, dbi, &key, &val, 0), 0);
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* ================================================================ init and open */

START_TEST(init_creates_log) {
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log"); /* missing: init creates it */
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_init(dir, NULL, pk), 0);
    ck_assert_uint_eq(strlen(pk), 64);
    char *key = path_in(dir, "writer.key");
    ck_assert_int_eq(file_mode(key), 0600);
    size_t klen;
    free(tu_read_file(key, &klen));
    ck_assert_uint_eq(klen, 64);
    ck_assert_int_eq(file_mode(dir) & 077, 0);

    tl_log *log = open_log(dir, 0);
    char cur[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, cur), 0);
    ck_assert_str_eq(cur, pk);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1);
    ck_assert_uint_eq(st.max_attachment, TL_DEFAULT_MAX_ATTACHMENT);
    /* the genesis: seq 1, @operator, log.created, no project, the public key in its payload */
    tl_iter *it;
    tl_event_view ev = event_at(log, 1, &it);
    ck_assert_str_eq(ev.kind, "log.created");
    ck_assert_str_eq(ev.actor, "@operator");
    ck_assert_ptr_null(ev.project);
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
    tl_bytes b;
    ck_assert_int_eq(tl_ev_bin(&e, "public_key", &b), 0);
    char hex[TL_PUBKEY_HEX_SIZE];
    tl_hex(hex, b.ptr, b.len);
    ck_assert_str_eq(hex, pk);
    uint64_t u;
    ck_assert_int_eq(tl_ev_uint(&e, "format", &u), 0);
    ck_assert_uint_eq(u, TL_FORMAT_VERSION);
    ck_assert_int_eq(tl_ev_uint(&e, "max_attachment", &u), 0);
    ck_assert_uint_eq(u, TL_DEFAULT_MAX_ATTACHMENT);
    const uint8_t zero[TL_HASH_BYTES] = {0};
    ck_assert_mem_eq(e.prev, zero, TL_HASH_BYTES);
    tl_event_view next;
    ck_assert_int_eq(tl_iter_next(it, &next), TL_ENOTFOUND);
    tl_iter_close(it);
    verify_ok(log, 1);
    free(key);
    tl_log_close(log);
    tu_rmdir(base);
    free(base);
    free(dir);

    /* a chosen attachment limit is in the genesis and in the stats */
    base = tu_tmpdir();
    dir = path_in(base, "log");
    tl_init_options o = TL_INIT_OPTIONS_INIT;
    o.max_attachment = 1000;
    ck_assert_int_eq(tl_log_init(dir, &o, NULL), 0);
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.max_attachment, 1000);
    ev = event_at(log, 1, &it);
    ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
    ck_assert_int_eq(tl_ev_uint(&e, "max_attachment", &u), 0);
    ck_assert_uint_eq(u, 1000);
    tl_iter_close(it);
    tl_log_close(log);
    tu_rmdir(base);
    free(base);
    free(dir);
}
END_TEST

START_TEST(init_refuses) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 3, 0, 0);
    tl_log_close(log);
    char *key = path_in(dir, "writer.key");
    size_t klen;
    char *before = tu_read_file(key, &klen);

    /* an existing log: exists, and nothing changes */
    char pk[TL_PUBKEY_HEX_SIZE] = "";
    ck_assert_int_eq(tl_log_init(dir, NULL, pk), TL_EEXISTS);
    ck_assert_str_eq(pk, "");
    size_t klen2;
    char *after = tu_read_file(key, &klen2);
    ck_assert_uint_eq(klen, klen2);
    ck_assert_mem_eq(before, after, klen);
    free(after);
    log = open_log(dir, 0);
    ck_assert_uint_eq(head_seq(log), 4);
    verify_ok(log, 4);
    tl_log_close(log);

    /* a non-empty directory that is not a log: refused, nothing written */
    char *base = tu_tmpdir();
    char *notes = path_in(base, "notes.txt");
    ck_assert_int_eq(tu_write_file(notes, "mine", 4), 0);
    ck_assert_int_eq(tl_log_init(base, NULL, NULL), TL_EINVALID);
    char *k2 = path_in(base, "writer.key"), *d2 = path_in(base, "data.mdb");
    ck_assert_int_ne(access(k2, F_OK), 0);
    ck_assert_int_ne(access(d2, F_OK), 0);
    /* and it is not a log to open */
    ck_assert_int_eq(tl_log_open(&log, base, NULL), TL_ENOTFOUND);
    ck_assert_ptr_null(log);
    ck_assert_int_eq(tl_log_init(NULL, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_init("", NULL, NULL), TL_EUSAGE);

    free(k2), free(d2), free(notes), free(key), free(before);
    tu_rmdir(base);
    free(base);
    remove_log(NULL, dir);
}
END_TEST

START_TEST(open_key_file_mode) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_close(log);
    char *key = path_in(dir, "writer.key");
    static const mode_t refused[] = {0644, 0640, 0604, 0660, 0606, 0700 | 0004};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_int_eq(chmod(key, refused[i]), 0);
        log = (tl_log *)1;
        ck_assert_msg(tl_log_open(&log, dir, NULL) == TL_EKEY, "mode %o accepted", refused[i]);
        ck_assert_ptr_null(log);
        /* reading needs no key: a read-only open still works */
        log = open_log(dir, TL_OPEN_READONLY);
        verify_ok(log, 1);
        tl_log_close(log);
    }
    ck_assert_int_eq(chmod(key, 0400), 0);
    log = open_log(dir, 0);
    tl_log_close(log);
    ck_assert_int_eq(chmod(key, 0600), 0);

    /* a key of the wrong size, a missing key, a symlink, another log's key */
    size_t n;
    char *good = tu_read_file(key, &n);
    ck_assert_int_eq(tu_write_file(key, good, 63), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    ck_assert_int_eq(tu_write_file(key, "0123456789012345678901234567890123456789012345678901234567890123X", 65), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    ck_assert_int_eq(unlink(key), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    char *elsewhere = path_in(dir, "elsewhere.key");
    ck_assert_int_eq(tu_write_file(elsewhere, good, n), 0);
    ck_assert_int_eq(chmod(elsewhere, 0600), 0);
    ck_assert_int_eq(symlink(elsewhere, key), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY); /* O_NOFOLLOW */
    ck_assert_int_eq(unlink(key), 0);
    char *other;
    tl_log *olog = tu_new_log(&other);
    tl_log_close(olog);
    char *okey = path_in(other, "writer.key");
    copy_file(okey, key, 0600);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    ck_assert_ptr_null(log);
    copy_file(elsewhere, key, 0600);
    log = open_log(dir, 0);
    tl_log_close(log);

    free(okey), free(elsewhere), free(good), free(key);
    remove_log(NULL, other);
    remove_log(NULL, dir);
}
END_TEST

START_TEST(open_format_version) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_close(log);
    raw r;
    uint8_t v[8];
    be64(v, 2);
    raw_open(&r, dir, true);
    raw_put(&r, r.meta, "format", 6, v, 8);
    raw_close(&r, true);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EVERSION);
    ck_assert_ptr_null(log);
    tl_open_options ro = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
    ck_assert_int_eq(tl_log_open(&log, dir, &ro), TL_EVERSION);
    be64(v, 0);
    raw_open(&r, dir, true);
    raw_put(&r, r.meta, "format", 6, v, 8);
    raw_close(&r, true);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EVERSION);
    /* a damaged or missing format record is corruption, not a version */
    raw_open(&r, dir, true);
    raw_put(&r, r.meta, "format", 6, v, 4);
    raw_close(&r, true);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_ECORRUPT);
    raw_open(&r, dir, true);
    MDB_val k = {6, "format"};
    ck_assert_int_eq(mdb_del(r.txn, r.meta, &k, NULL), 0);
    raw_close(&r, true);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_ECORRUPT);
    /* restored: opens again */
    be64(v, 1);
    raw_open(&r, dir, true);
    raw_put(&r, r.meta, "format", 6, v, 8);
    raw_close(&r, true);
    log = open_log(dir, 0);
    verify_ok(log, 1);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ appends and iteration */

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
    ck_assert_uint_eq(head_seq(log), 5);
    tl_log_close(log);
    /* a read-only log refuses writes, a key rotation too */
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_append(log, batch, 1, NULL), TL_EREADONLY);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), TL_EREADONLY);
    verify_ok(log, 5);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ the layout on disk */

/* Read the file with raw LMDB and msgpack-c only, as docs/FORMAT.md describes it. */
START_TEST(layout_matches_format_doc) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 4, 0, 0);
    char pkhex[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, pkhex), 0);
    tl_log_close(log);
    uint8_t pk[TL_PUBKEY_BYTES];
    ck_assert_int_eq(tl_unhex(pk, sizeof pk, pkhex), 0);

    raw r;
    raw_open(&r, dir, false);
    MDB_val k, v;
    /* meta: format = u64 BE 1; genesis_key = 32 bytes; max_attachment = u64 BE */
    k = (MDB_val){6, "format"};
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 8);
    ck_assert_uint_eq(rd64(v.mv_data), 1);
    k = (MDB_val){11, "genesis_key"};
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 32);
    ck_assert_mem_eq(v.mv_data, pk, 32);
    k = (MDB_val){14, "max_attachment"};
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 8);
    ck_assert_uint_eq(rd64(v.mv_data), TL_DEFAULT_MAX_ATTACHMENT);

    /* log: key = u64 BE seq; value = event bytes || 64-byte signature */
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_cursor_open(r.txn, r.log, &cur), 0);
    uint64_t seq = 0, last_ts = 0;
    uint8_t prev[32] = {0};
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        seq++;
        ck_assert_uint_eq(k.mv_size, 8);
        ck_assert_uint_eq(rd64(k.mv_data), seq);
        size_t len = v.mv_size - 64;
        const uint8_t *bytes = v.mv_data, *sig = bytes + len;
        ck_assert_int_eq(crypto_sign_verify_detached(sig, bytes, len, pk), 0);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        ck_assert_int_eq(msgpack_unpack_next(&u, (const char *)bytes, len, &off), MSGPACK_UNPACK_SUCCESS);
        ck_assert_uint_eq(off, len);
        msgpack_object *a = u.data.via.array.ptr;
        ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_ARRAY);
        ck_assert_uint_eq(u.data.via.array.size, 9);
        ck_assert_uint_eq(a[0].via.u64, 1);   /* format */
        ck_assert_uint_eq(a[1].via.u64, seq); /* seq */
        ck_assert_uint_ge(a[2].via.u64, last_ts);
        last_ts = a[2].via.u64;
        ck_assert_int_eq(a[3].type, MSGPACK_OBJECT_BIN);
        ck_assert_uint_eq(a[3].via.bin.size, 32);
        ck_assert_mem_eq(a[3].via.bin.ptr, prev, 32);
        ck_assert_int_eq(a[4].type, MSGPACK_OBJECT_STR); /* actor */
        ck_assert_int_eq(a[5].type, MSGPACK_OBJECT_STR); /* kind */
        ck_assert_uint_eq(a[6].via.u64, 1);              /* schema */
        ck_assert(a[7].type == MSGPACK_OBJECT_NIL || a[7].type == MSGPACK_OBJECT_STR);
        ck_assert_int_eq(a[8].type, MSGPACK_OBJECT_MAP);
        msgpack_unpacked_destroy(&u);
        crypto_generichash(prev, 32, bytes, len, NULL, 0);
    }
    mdb_cursor_close(cur);
    ck_assert_uint_eq(seq, 5);
    /* meta head = seq u64 BE || hash of the last event's bytes || its ts u64 BE || current key */
    k = (MDB_val){4, "head"};
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 80);
    const uint8_t *h = v.mv_data;
    ck_assert_uint_eq(rd64(h), 5);
    ck_assert_mem_eq(h + 8, prev, 32);
    ck_assert_uint_eq(rd64(h + 40), last_ts);
    ck_assert_mem_eq(h + 48, pk, 32);
    /* meta applied/NAME = u64 BE of the last sequence each applier applied: the head's */
    k = (MDB_val){13, "applied/state"};
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 8);
    ck_assert_uint_eq(rd64(v.mv_data), 5);
    raw_close(&r, false);
    remove_log(NULL, dir);
}
END_TEST

/* ================================================================ null arguments */

/* A NULL where a handle, an output or a callback is required is TL_EUSAGE, never a crash;
 * so is an option struct of another version or an unknown open flag. */
static int follow_noop(const tl_event_view *ev, void *p) { (void)ev, (void)p; return 1; }

START_TEST(null_arguments_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    char hex[TL_PUBKEY_HEX_SIZE], *json;
    uint8_t *bytes;
    size_t len;
    tl_log_stats st;
    tl_iter *it;
    tl_event_view ev = {0};
    tl_cmd *cmd;
    tl_batch *b;
    tl_result res = {0};
    tl_verify_report vr;
    tl_draft d = {"x.t", "a", NULL, (const uint8_t *)"\x80", 1};
    ck_assert_int_eq(tl_log_open(NULL, dir, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_stats_get(NULL, &st), TL_EUSAGE);
    ck_assert_int_eq(tl_log_stats_get(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_db_stats_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_log_db_stats_json(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_pubkey(NULL, hex), TL_EUSAGE);
    ck_assert_int_eq(tl_log_pubkey(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_rotate_key(NULL, hex), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_open(NULL, 1, &it), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_open(log, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_next(NULL, &ev), TL_EUSAGE);
    ck_assert_int_eq(tl_event_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_event_json(&ev, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_follow(NULL, 1, 1, NULL, follow_noop, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_follow(log, 1, 1, NULL, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(NULL, &d, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(log, NULL, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append_records(NULL, NULL, NULL, 0), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append_records(log, NULL, NULL, 1), TL_EUSAGE);
    ck_assert_int_eq(tl_log_record(NULL, 1, &bytes, &len), TL_EUSAGE);
    ck_assert_int_eq(tl_log_record(log, 1, NULL, &len), TL_EUSAGE);
    ck_assert_int_eq(tl_log_verify(NULL, NULL, &vr), TL_EUSAGE);
    ck_assert_int_eq(tl_log_verify(log, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_checkpoint(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_log_checkpoint(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_cmd_new(NULL, "note.add"), TL_EUSAGE);
    ck_assert_int_eq(tl_cmd_new(&cmd, NULL), TL_EUSAGE);
    ck_assert_ptr_null(cmd);
    ck_assert_int_eq(tl_cmd_parse(NULL, "{}", 2, NULL), TL_EUSAGE);
    cmd = (tl_cmd *)&cmd; /* outputs are NULL after a refusal */
    ck_assert_int_eq(tl_cmd_parse(&cmd, NULL, 2, NULL), TL_EUSAGE);
    ck_assert_ptr_null(cmd);
    it = (tl_iter *)&it;
    ck_assert_int_eq(tl_iter_open(NULL, 1, &it), TL_EUSAGE);
    ck_assert_ptr_null(it);
    b = (tl_batch *)&b;
    ck_assert_int_eq(tl_batch_begin(NULL, &b), TL_EUSAGE);
    ck_assert_ptr_null(b);
    json = (char *)&json;
    ck_assert_int_eq(tl_log_checkpoint(NULL, &json), TL_EUSAGE);
    ck_assert_ptr_null(json);
    const uint8_t *no_record = NULL;
    size_t ten = 10;
    ck_assert_int_eq(tl_log_append_records(log, &no_record, &ten, 1), TL_EUSAGE);
    ck_assert_int_eq(tl_result_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_result_json(&res, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_batch_begin(NULL, &b), TL_EUSAGE);
    ck_assert_int_eq(tl_batch_begin(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_erase(NULL, "m-1", "r", &res), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(NULL, "a", "b", &bytes, &len, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(log, "a", "b", NULL, &len, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(log, "a", "b", &bytes, NULL, NULL, NULL), TL_EUSAGE);
    /* versions and flags */
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    tl_log *other;
    oo.version = 99;
    ck_assert_int_eq(tl_log_open(&other, dir, &oo), TL_EUSAGE);
    oo.version = TL_OPEN_OPTIONS_VERSION;
    oo.flags = 1u << 20;
    ck_assert_int_eq(tl_log_open(&other, dir, &oo), TL_EUSAGE);
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.version = 0;
    ck_assert_int_eq(tl_log_verify(log, &vo, &vr), TL_EUSAGE);
    tl_init_options io = TL_INIT_OPTIONS_INIT;
    io.version = 7;
    ck_assert_int_eq(tl_log_init("/tmp/never-made-by-threadlog-test", &io, NULL), TL_EUSAGE);
    /* an empty append succeeds with nothing appended and first seq 0 */
    uint64_t first = 77;
    ck_assert_int_eq(tl_log_append(log, NULL, 0, &first), 0);
    ck_assert_uint_eq(first, 0);
    verify_ok(log, 1);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, init_creates_log);
    tcase_add_test(tc, init_refuses);
    tcase_add_test(tc, open_key_file_mode);
    tcase_add_test(tc, open_format_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("append");
    tcase_add_test(tc, append_and_iterate);
    tcase_add_test(tc, append_canonicalises);
    tcase_add_test(tc, append_refuses);
    tcase_add_test(tc, layout_matches_format_doc);
    tcase_add_test(tc, null_arguments_refused);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
