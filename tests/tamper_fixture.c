/*
 * tamper_fixture.c — see tamper_fixture.h.
 */
#include "tamper_fixture.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"

uint64_t EVENTS = 1000, ROTATION = 500;

char *g_dir;

void append_batch(tl_log *log, uint64_t i0, size_t n) {
    msgpack_sbuffer *bufs = calloc(n, sizeof *bufs);
    tl_draft *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_init(&bufs[i]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &bufs[i], msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "i", 1);
        msgpack_pack_uint64(&pk, i0 + i);
        msgpack_pack_str_with_body(&pk, "note", 4);
        msgpack_pack_str_with_body(&pk, "an event worth keeping as it was", 32);
        d[i] = (tl_draft){"x.tamper", (i % 2) ? "bob" : "alice", (i % 3) ? "p-1" : NULL,
                          (const uint8_t *)bufs[i].data, bufs[i].size};
    }
    int rc = tl_log_append(log, d, n, NULL);
    ck_assert_msg(rc == 0, "append: %s", tl_errdetail());
    for (size_t i = 0; i < n; i++) msgpack_sbuffer_destroy(&bufs[i]);
    free(bufs);
    free(d);
}

static const char *retired_key_path(void);

void setup(void) {
    char *base = tu_tmpdir();
    ck_assert_ptr_nonnull(base);
    g_dir = malloc(strlen(base) + 8);
    sprintf(g_dir, "%s/log", base);
    free(base);
    tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
    ck_assert_int_eq(tl_log_init(g_dir, NULL, NULL), 0);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, &o), 0);
    uint64_t next = 2;
    while (next < ROTATION) {
        size_t n = ROTATION - next < 200 ? ROTATION - next : 200;
        append_batch(log, next, n);
        next += n;
    }
    tl_keypair first; /* kept beside the log: the key retired at ROTATION (retired_key) */
    writer_key(&first);
    ck_assert_int_eq(tl_keyfile_write(retired_key_path(), &first), 0);
    tl_keypair_wipe(&first);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
    next++;
    while (next <= EVENTS) {
        size_t n = EVENTS + 1 - next < 200 ? EVENTS + 1 - next : 200;
        append_batch(log, next, n);
        next += n;
    }
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, EVENTS);
    tl_log_close(log);
}

void teardown(void) {
    char *slash = strrchr(g_dir, '/');
    *slash = 0;
    tu_rmdir(g_dir);
    free(g_dir);
}

int verify(const char *checkpoint, tl_verify_report *r) {
    tl_log *log;
    tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
    int rc = tl_log_open(&log, g_dir, &o);
    ck_assert_msg(rc == 0, "open: %s", tl_errdetail());
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.threads = 2;
    vo.checkpoint_json = checkpoint;
    rc = tl_log_verify(log, &vo, r);
    tl_log_close(log);
    return rc;
}

void expect_bad(const char *checkpoint, uint64_t seq, const char *what) {
    tl_verify_report r;
    int rc = verify(checkpoint, &r);
    ck_assert_msg(rc == TL_ECORRUPT, "%s: verify said %s", what, tl_strerror(rc));
    ck_assert_msg(r.first_bad_seq == seq, "%s: first bad %llu, want %llu (%s)", what,
                  (unsigned long long)r.first_bad_seq, (unsigned long long)seq, r.reason);
}

void expect_good(const char *checkpoint, const char *what) {
    tl_verify_report r;
    int rc = verify(checkpoint, &r);
    ck_assert_msg(rc == 0, "%s: %s at %llu: %s", what, tl_strerror(rc), (unsigned long long)r.first_bad_seq,
                  r.reason);
}

void replay_refuses_when(uint64_t seq, bool unverified_too) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    for (int verified = unverified_too ? 0 : 1; verified < 2; verified++) {
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = verified;
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(log, &o, &rr), TL_ECORRUPT);
        ck_assert_uint_eq(rr.verify.first_bad_seq, seq);
    }
    tl_log_close(log);
}

void replay_refuses(uint64_t seq) { replay_refuses_when(seq, true); }

int cut_copy(uint64_t n, bool verified, uint64_t *first_bad) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    char into[4200];
    snprintf(into, sizeof into, "%s.cut", g_dir);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = n;
    o.verify = verified;
    tl_replay_report rr;
    int rc = tl_replay(log, &o, &rr);
    *first_bad = rr.verify.first_bad_seq;
    tl_log_close(log);
    if (rc == 0) tu_rmdir(into);
    else ck_assert_int_ne(access(into, F_OK), 0); /* a refused cut leaves no copy */
    return rc;
}

void raw_begin(raw *r) {
    ck_assert_int_eq(mdb_env_create(&r->env), 0);
    mdb_env_set_maxdbs(r->env, 64);
    ck_assert_int_eq(mdb_env_open(r->env, g_dir, MDB_NOSYNC, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "log", 0, &r->log), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "meta", 0, &r->meta), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "content", 0, &r->content), 0);
}

void raw_end(raw *r) {
    ck_assert_int_eq(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

uint8_t *raw_get(raw *r, uint64_t seq, size_t *len) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8}, v;
    ck_assert_int_eq(mdb_get(r->txn, r->log, &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    *len = v.mv_size;
    return copy;
}

void raw_set(raw *r, uint64_t seq, const uint8_t *rec, size_t len) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8}, v = {len, (void *)rec};
    ck_assert_int_eq(mdb_put(r->txn, r->log, &k, &v, 0), 0);
}

void raw_del(raw *r, uint64_t seq) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8};
    ck_assert_int_eq(mdb_del(r->txn, r->log, &k, NULL), 0);
}

void raw_set_head(raw *r, uint64_t seq) {
    size_t len;
    uint8_t *rec = raw_get(r, seq, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    MDB_val k = {4, "head"}, v;
    ck_assert_int_eq(mdb_get(r->txn, r->meta, &k, &v), 0);
    uint8_t head[80];
    memcpy(head, v.mv_data, 80);
    be64(head, seq);
    crypto_generichash(head + 8, 32, rec, len - 64, NULL, 0);
    be64(head + 40, ev.ts);
    v = (MDB_val){80, head};
    ck_assert_int_eq(mdb_put(r->txn, r->meta, &k, &v, 0), 0);
    free(rec);
}

void head_get(uint8_t head[80]) {
    raw r;
    raw_begin(&r);
    MDB_val k = {4, "head"}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    memcpy(head, v.mv_data, 80);
    raw_end(&r);
}

void head_put_len(const uint8_t head[80], size_t len) {
    raw r;
    raw_begin(&r);
    MDB_val k = {4, "head"}, v = {len, (void *)head};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &k, &v, 0), 0);
    raw_end(&r);
}

void head_put(const uint8_t head[80]) { head_put_len(head, 80); }

uint8_t *forge(size_t *len, uint64_t seq, uint64_t ts, const uint8_t prev[32], const char *kind, const char *note,
               const uint8_t *new_key, const tl_keypair *kp) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = seq, .ts = ts, .actor = "mallory", .kind = kind, .schema = 1};
    memcpy(env.prev, prev, 32);
    tl_payload p = {0};
    tl_payload_str(&p, "note", note);
    if (new_key) tl_payload_bin(&p, "public_key", new_key, 32);
    if (strcmp(kind, "log.created") == 0) tl_payload_uint(&p, "format", 1);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    *len = buf.size + 64;
    uint8_t *rec = malloc(*len);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, kp);
    msgpack_sbuffer_destroy(&buf);
    return rec;
}

void record_hash_ts(const uint8_t *rec, size_t len, uint8_t hash[32], uint64_t *ts) {
    crypto_generichash(hash, 32, rec, len - 64, NULL, 0);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    *ts = ev.ts;
}

static const char *retired_key_path(void) {
    static char path[4200];
    snprintf(path, sizeof path, "%s.retired.key", g_dir);
    return path;
}

void retired_key(tl_keypair *kp) { ck_assert_int_eq(tl_keyfile_read(retired_key_path(), kp), 0); }

void writer_key(tl_keypair *kp) {
    char path[4200];
    snprintf(path, sizeof path, "%s/writer.key", g_dir);
    ck_assert_int_eq(tl_keyfile_read(path, kp), 0);
}

uint8_t *sign_bytes(const uint8_t *bytes, size_t n, size_t *len, const tl_keypair *kp) {
    uint8_t *rec = malloc(n + 64);
    memcpy(rec, bytes, n);
    tl_sign(rec + n, rec, n, kp);
    *len = n + 64;
    return rec;
}
