/*
 * test_log.c — the log itself: init and open (key file, versions), raw appends and
 * iteration, the on-disk layout of docs/FORMAT.md read back with raw LMDB, map growth,
 * record exchange between logs, key rotation, checkpoints, following from another process
 * and two processes writing at once; a failed meta page write (MDB_PANIC) recovered in place
 * while other threads read; walks over a damaged file that stop with `corrupt`.
 *
 * Each test makes its own log in a fresh temporary directory. Whenever a test edits the
 * LMDB file directly it closes its tl_log first: LMDB forbids opening one environment twice
 * in a process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "log.h"
#include "testutil.h"

/* ================================================================ helpers */

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void remove_log(tl_log *log, char *dir) {
    tl_log_close(log);
    char *base = strdup(dir);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    tu_rmdir(base);
    free(base);
    free(dir);
}

static tl_log *open_log(const char *dir, unsigned flags) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = flags;
    tl_log *log = NULL;
    int rc = tl_log_open(&log, dir, &o);
    ck_assert_msg(rc == 0, "open %s: %s %s", dir, tl_strerror(rc), tl_errdetail());
    return log;
}

static uint64_t head_seq(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

static void verify_ok(tl_log *log, uint64_t events) {
    tl_verify_report r;
    int rc = tl_log_verify(log, NULL, &r);
    ck_assert_msg(rc == 0, "verify: %s at %llu: %s", tl_strerror(rc), (unsigned long long)r.first_bad_seq, r.reason);
    ck_assert_uint_eq(r.events, events);
    ck_assert_uint_eq(r.first_bad_seq, 0);
}

/* A small extension payload {"i": i, "note": text, "pad": bin(pad)}. */
static void x_payload(msgpack_sbuffer *buf, uint64_t i, const char *text, size_t pad) {
    msgpack_sbuffer_clear(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, pad ? 3 : 2);
    msgpack_pack_str_with_body(&pk, "i", 1);
    msgpack_pack_uint64(&pk, i);
    msgpack_pack_str_with_body(&pk, "note", 4);
    msgpack_pack_str_with_body(&pk, text, strlen(text));
    if (pad) {
        uint8_t *zeros = calloc(1, pad);
        msgpack_pack_str_with_body(&pk, "pad", 3);
        msgpack_pack_bin_with_body(&pk, zeros, pad);
        free(zeros);
    }
}

/* Append n extension events in one batch, numbered from i0, each carrying pad bytes. */
static uint64_t append_n(tl_log *log, size_t n, uint64_t i0, size_t pad) {
    msgpack_sbuffer *bufs = calloc(n, sizeof *bufs);
    tl_draft *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_init(&bufs[i]);
        x_payload(&bufs[i], i0 + i, "hello", pad);
        d[i].kind = "x.test";
        d[i].actor = (i % 2) ? "bob" : "alice";
        d[i].project = (i % 3 == 0) ? "p-1" : NULL;
        d[i].payload_msgpack = (const uint8_t *)bufs[i].data;
        d[i].payload_len = bufs[i].size;
    }
    uint64_t first = 0;
    int rc = tl_log_append(log, d, n, &first);
    ck_assert_msg(rc == 0, "append: %s %s", tl_strerror(rc), tl_errdetail());
    for (size_t i = 0; i < n; i++) msgpack_sbuffer_destroy(&bufs[i]);
    free(bufs);
    free(d);
    return first;
}

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

static void be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static mode_t file_mode(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static void copy_file(const char *from, const char *to, mode_t mode) {
    size_t n;
    char *data = tu_read_file(from, &n);
    ck_assert_ptr_nonnull(data);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    ck_assert_int_eq(chmod(to, mode), 0);
    free(data);
}

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

static tl_event_view event_at(tl_log *log, uint64_t seq, tl_iter **it) {
    ck_assert_int_eq(tl_iter_open(log, seq, it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(*it, &ev), 0);
    ck_assert_uint_eq(ev.seq, seq);
    return ev;
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

/* One handle per log per process (tl_log_open): LMDB's locks belong to the process, so a
 * second environment on the same file, once closed, would drop the first one's locks. */
START_TEST(one_handle_per_log_per_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 3, 0, 16);
    tl_log *second = (tl_log *)&second;
    ck_assert_int_eq(tl_log_open(&second, dir, NULL), TL_EUSAGE);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(tl_errdetail(), "already open in this process") != NULL, "%s", tl_errdetail());
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    ck_assert_int_eq(tl_log_open(&second, dir, &ro), TL_EUSAGE);
    char *other_path = malloc(strlen(dir) + 3); /* the same file by another path */
    sprintf(other_path, "%s/.", dir);
    ck_assert_int_eq(tl_log_open(&second, other_path, &ro), TL_EUSAGE);
    /* a child of fork() may open it anew (it must not use the handle it inherited) */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tl_log *mine = NULL;
        int rc = tl_log_open(&mine, dir, &ro);
        tl_log_stats st;
        if (rc || tl_log_stats_get(mine, &st) || st.events != 4) _exit(3);
        tl_log_close(mine);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not open the log: %d", status);
    /* once the first is closed, the log opens again, by either path */
    tl_log_close(log);
    log = open_log(other_path, TL_OPEN_READONLY);
    ck_assert_int_eq(tl_log_open(&second, dir, NULL), TL_EUSAGE);
    tl_log_close(log);
    log = open_log(dir, 0);
    verify_ok(log, 4);
    free(other_path);
    remove_log(log, dir);
}
END_TEST

/* A log stays listed as open until its environment is closed: an open tried while another
 * thread is closing it is refused, or that close would drop the new environment's locks. */
typedef struct closer { tl_log *log; } closer;
static void *close_slowly(void *p) {
    tl_log_close(((closer *)p)->log);
    return NULL;
}

START_TEST(open_during_close_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setenv("THREADLOG_TEST_CLOSE_PAUSE_MS", "600", 1);
    closer c = {log};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, close_slowly, &c), 0);
    usleep(200000); /* inside the close's pause, before its environment closes */
    tl_log *second = NULL;
    int rc = tl_log_open(&second, dir, NULL);
    pthread_join(t, NULL);
    unsetenv("THREADLOG_TEST_CLOSE_PAUSE_MS");
    if (second) tl_log_close(second);
    ck_assert_msg(rc == TL_EUSAGE, "an open during another thread's close answered %s", tl_strerror(rc));
    remove_log(open_log(dir, 0), dir);
}
END_TEST

/* A child of fork() may open a log, even from a fork handler the embedder registered before
 * its first tl_log_open: the library's own handlers (which guard its list of open logs) are
 * registered when it is loaded, so they wrap the embedder's. */
static const char *atfork_dir;
static volatile int atfork_rc = 1;
static void child_opens_log(void) {
    if (!atfork_dir) return;
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    tl_log *l = NULL;
    atfork_rc = tl_log_open(&l, atfork_dir, &ro);
    if (!atfork_rc) tl_log_close(l);
}

START_TEST(fork_handler_may_open_a_log) {
    ck_assert_int_eq(pthread_atfork(NULL, NULL, child_opens_log), 0); /* before any open */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    atfork_dir = dir;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(atfork_rc == 0 ? 0 : 3);
    int status = 0, waited = 0;
    while (waitpid(pid, &status, WNOHANG) == 0 && waited++ < 100) usleep(50000);
    if (waited > 100) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    atfork_dir = NULL;
    ck_assert_msg(waited <= 100, "the child hung in its fork handler's tl_log_open");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's handler could not open the log");
    remove_log(log, dir);
}
END_TEST

/* An open batch holds the process's write lock: a second write from its own thread would
 * wait for that thread for ever, so it is refused at once. */
START_TEST(writes_inside_own_batch_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_batch *b, *b2 = (tl_batch *)&b2;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    ck_assert_int_eq(tl_batch_begin(log, &b2), TL_EUSAGE);
    ck_assert_ptr_null(b2);
    tl_cmd *cmd;
    tl_result res = {0};
    ck_assert_int_eq(tl_cmd_new(&cmd, "account.create"), 0);
    ck_assert_int_eq(tl_cmd_set_str(cmd, "id", "acme"), 0);
    ck_assert_int_eq(tl_cmd_set_str(cmd, "name", "Acme"), 0);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), TL_EUSAGE);
    ck_assert_int_eq(res.code, TL_EUSAGE);
    uint8_t empty = 0x80;
    tl_draft d = {"x.a", "alice", NULL, &empty, 1};
    uint64_t first = 77;
    ck_assert_int_eq(tl_log_append(log, &d, 1, &first), TL_EUSAGE);
    ck_assert_uint_eq(first, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_erase(log, "m-1", "r", &res), TL_EUSAGE);
    tl_replay_report rr;
    ck_assert_int_eq(tl_replay(log, NULL, &rr), TL_EUSAGE);
    /* the batch itself still works, and after it everything does */
    ck_assert_int_eq(tl_batch_exec(b, cmd, &res), 0);
    ck_assert_int_eq(tl_batch_commit(b), 0);
    ck_assert_int_eq(tl_batch_commit(NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(log, &d, 1, &first), 0);
    ck_assert_uint_eq(first, 3);
    tl_cmd_free(cmd);
    verify_ok(log, 3);
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
    raw_close(&r, false);
    remove_log(NULL, dir);
}
END_TEST

/* ================================================================ map growth */

/* The log of map_grows, kept reachable: its child _exits without closing the parent's log
 * (an LMDB environment is not used across fork), and valgrind's leak check at that exit
 * would otherwise count the handle as lost when no register holds it any more. */
static tl_log *volatile map_grows_log; /* volatile: a static never read would be optimised away */

START_TEST(map_grows) {
    /* THREADLOG_TEST_MAP_BYTES starts the map at 1 MiB instead of 1 GiB, so a few MiB of
     * events cross it (this test runs in its own forked process: the variable dies with it) */
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = map_grows_log = tu_new_log(&dir);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.map_bytes, 1048576);
    /* 48 events of 64 KiB in batches of 4: 3 MiB */
    for (int b = 0; b < 12; b++) append_n(log, 4, (uint64_t)b * 4, 65536);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 49);
    ck_assert_uint_gt(st.map_bytes, 1048576);
    ck_assert_uint_gt(st.log_bytes, 3u << 20);
    uint64_t map1 = st.map_bytes;
    /* one event of nearly 1 MiB, in a map with less room left than that */
    append_n(log, 1, 48, TL_EVENT_MAX - 4096);
    /* another process grows the map while this one holds the log open */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tl_log *child;
        if (tl_log_open(&child, dir, NULL)) _exit(2);
        for (int b = 0; b < 12; b++) {
            uint8_t *pad = calloc(1, 200000);
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str_with_body(&pk, "pad", 3);
            msgpack_pack_bin_with_body(&pk, pad, 200000);
            tl_draft d = {"x.child", "child", NULL, (const uint8_t *)buf.data, buf.size};
            tl_draft ds[4] = {d, d, d, d};
            if (tl_log_append(child, ds, 4, NULL)) _exit(3);
            msgpack_sbuffer_destroy(&buf);
            free(pad);
        }
        tl_log_close(child);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    /* this process adopts the bigger map and goes on reading and writing */
    append_n(log, 2, 100, 1000);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 50 + 48 + 2);
    ck_assert_uint_gt(st.map_bytes, map1);
    ck_assert_uint_gt(st.file_bytes, 12u << 20);
    verify_ok(log, 100);
    tl_log_close(log);
    map_grows_log = NULL;
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, 100);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

/* The sum of one smaps field (in bytes) over every mapping of a file whose path ends in
 * `suffix` (/proc/self/smaps). */
static uint64_t smaps_bytes(const char *suffix, const char *field) {
    FILE *f = fopen("/proc/self/smaps", "r");
    ck_assert_ptr_nonnull(f);
    char line[4600], want[64];
    snprintf(want, sizeof want, "%s: %%llu kB", field);
    bool in_file = false;
    uint64_t bytes = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        unsigned long long kib;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            size_t n = strcspn(line, "\n"), m = strlen(suffix);
            in_file = n >= m && memcmp(line + n - m, suffix, m) == 0;
        } else if (in_file && sscanf(line, want, &kib) == 1) {
            bytes += kib * 1024;
        }
    }
    fclose(f);
    return bytes;
}

static uint64_t data_map_rss(void) { return smaps_bytes("/data.mdb", "Rss"); }

/* Two reader threads whose read transactions overlap without a gap: each holds one for
 * 60 ms, the second 30 ms behind the first, until told to stop or 6 s have passed. */
typedef struct overlap_reader {
    tl_log *log;
    volatile int *stop;
    unsigned delay_ms;
    int failed;
    unsigned txns;
} overlap_reader;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *overlap_read(void *arg) {
    overlap_reader *r = arg;
    usleep(r->delay_ms * 1000);
    double until = mono_s() + 6;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && mono_s() < until) {
        tl_iter *it;
        if (tl_iter_open(r->log, 1, &it) != 0) { r->failed = 1; break; }
        usleep(60000);
        tl_iter_close(it);
        r->txns++;
    }
    return NULL;
}

/* Growing the map waits for the transactions of the process to end; readers taking turns
 * must not keep it out (glibc's rwlock lets readers in while a writer waits: without the gate
 * of log.c, these appends wait until the readers give up, 6 s). */
START_TEST(map_growth_not_starved_by_readers) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    volatile int stop = 0;
    overlap_reader rd[2] = {{log, &stop, 0, 0, 0}, {log, &stop, 30, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, overlap_read, &rd[i]);
    usleep(100000); /* both readers running */
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    uint64_t map0 = st.map_bytes;
    double t0 = mono_s();
    for (int b = 0; b < 8; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 2 MiB: the map grows */
    double took = mono_s() - t0;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_gt(st.map_bytes, map0);
    ck_assert_msg(!rd[0].failed && !rd[1].failed, "a reader failed");
    ck_assert_uint_gt(rd[0].txns + rd[1].txns, 2);
    ck_assert_msg(took < 3.0, "8 appends that grow the map took %.2f s while readers took turns", took);
    verify_ok(log, 33);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

/* A thread that holds a read snapshot (an open iterator, a follow callback) and appends
 * across the map's end would wait for itself for ever: the append is refused at once
 * (storage, retry), the log unchanged; once the snapshot ends, the same append grows the map. */
START_TEST(map_growth_refused_inside_own_snapshot) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    msgpack_sbuffer buf[4];
    tl_draft d[4];
    for (int i = 0; i < 4; i++) {
        msgpack_sbuffer_init(&buf[i]);
        x_payload(&buf[i], (uint64_t)i, "hello", 65536);
        d[i] = (tl_draft){"x.test", "alice", NULL, (const uint8_t *)buf[i].data, buf[i].size};
    }
    double t0 = mono_s();
    int rc = 0;
    uint64_t appended = 0;
    for (int b = 0; b < 16 && rc == 0; b++) /* 4 MiB at most: the map (1 MiB) must grow */
        if ((rc = tl_log_append(log, d, 4, NULL)) == 0) appended += 4;
    ck_assert_int_eq(rc, TL_ESTORAGE);
    ck_assert_msg(strstr(tl_errdetail(), "read snapshot") != NULL, "%s", tl_errdetail());
    ck_assert_msg(mono_s() - t0 < 5.0, "the refusal took %.2f s", mono_s() - t0);
    /* a snapshot of this log does not hold another log's map: that one grows (a replica
     * written from an iterator on its source) */
    char *dir2;
    tl_log *other = tu_new_log(&dir2);
    for (int b = 0; b < 16; b++) ck_assert_int_eq(tl_log_append(other, d, 4, NULL), 0);
    tl_log_stats st2;
    ck_assert_int_eq(tl_log_stats_get(other, &st2), 0);
    ck_assert_uint_gt(st2.map_bytes, 1048576);
    remove_log(other, dir2);
    tl_iter_close(it);
    ck_assert_int_eq(tl_log_append(log, d, 4, NULL), 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1 + appended + 4);
    ck_assert_uint_gt(st.map_bytes, 1048576);
    for (int i = 0; i < 4; i++) msgpack_sbuffer_destroy(&buf[i]);
    verify_ok(log, 1 + appended + 4);
    remove_log(log, dir);
    unsetenv("THREADLOG_TEST_MAP_BYTES"); /* for CK_FORK=no runs */
}
END_TEST

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

START_TEST(warm_maps_the_file) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    for (int b = 0; b < 12; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 3 MiB */
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    /* a fresh handle: its own map, of which an open touches only the first pages (one handle
     * per log per process: the writer's is closed first) */
    tl_log_close(log);
    tl_log *reader = open_log(dir, TL_OPEN_READONLY);
    uint64_t before = data_map_rss(), mapped = 0;
    ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
    uint64_t after = data_map_rss();
    ck_assert_uint_ge(mapped, st.log_bytes);
    ck_assert_uint_le(mapped, st.file_bytes + 4096);
    ck_assert_msg(after - before >= mapped - mapped / 10, "warm mapped %llu bytes but resident memory grew by %llu",
                  (unsigned long long)mapped, (unsigned long long)(after - before));
    /* reads go on as before */
    verify_ok(reader, 49);
    tl_log_close(reader);
    /* in chunks of 64 KiB (each under its own read transaction): the same bytes, mapped */
    setenv("THREADLOG_TEST_WARM_CHUNK", "65536", 1);
    reader = open_log(dir, TL_OPEN_READONLY);
    uint64_t chunked = 0;
    before = data_map_rss();
    ck_assert_int_eq(tl_log_warm(reader, &chunked), 0);
    after = data_map_rss();
    unsetenv("THREADLOG_TEST_WARM_CHUNK");
    ck_assert_uint_eq(chunked, mapped);
    ck_assert_msg(after - before >= mapped - mapped / 10, "warm in chunks mapped %llu bytes but resident memory grew by %llu",
                  (unsigned long long)mapped, (unsigned long long)(after - before));
    tl_log_close(reader);
    ck_assert_int_eq(tl_log_warm(NULL, &mapped), TL_EUSAGE);
    ck_assert_uint_eq(mapped, 0);
    remove_log(open_log(dir, 0), dir);
}
END_TEST

/* Drop the file's clean cached pages, then read it back page by page without readahead:
 * the page cache then holds it in 4 KiB folios, as LMDB's own writes leave it. */
static void cache_in_small_pages(const char *path) {
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    char page[4096];
    for (off_t off = 0; pread(fd, page, sizeof page, off) > 0; off += (off_t)sizeof page) {}
    close(fd);
}

/* Whether this kernel reads a file mapped with MADV_HUGEPAGE into 2 MiB folios and maps
 * them with 2 MiB entries (ext4 on Linux 6.16 and later, THP not disabled). */
static bool kernel_maps_files_huge(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/huge-probe", dir);
    size_t len = 8u << 20;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    char *buf = calloc(1, len);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    free(buf);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    bool huge = false;
#if defined(MADV_HUGEPAGE) && defined(MADV_POPULATE_READ)
    if (madvise(map, len, MADV_HUGEPAGE) == 0 && madvise(map, len, MADV_POPULATE_READ) == 0)
        huge = smaps_bytes("/huge-probe", "FilePmdMapped") > 0;
#endif
    munmap(map, len);
    close(fd);
    unlink(path);
    return huge;
}

/* By default warm keeps the page cache as it is (small pages stay small); with
 * THREADLOG_WARM_HUGE_PAGES=1, where the kernel can, it leaves the data file mapped with 2 MiB
 * entries even when the page cache held it in small pages. */
START_TEST(warm_maps_huge_pages) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    for (int b = 0; b < 48; b++) append_n(log, 4, (uint64_t)b * 4, 65536); /* 12 MiB */
    tl_log_close(log);
    char data[4200];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (!kernel_maps_files_huge(dir)) {
        /* nothing to measure on this kernel (or under valgrind, which places mappings itself):
         * say so, and still run the rebuild (it finds no 2 MiB entries): reads stay right */
        fprintf(stderr, "warm_maps_huge_pages: this kernel does not map files with 2 MiB entries; only reads checked\n");
        cache_in_small_pages(data);
        tl_log *reader = open_log(dir, TL_OPEN_READONLY);
        uint64_t mapped = 0;
        ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
        ck_assert_uint_ge(data_map_rss(), mapped - mapped / 10);
        verify_ok(reader, 193);
        remove_log(reader, dir);
        return;
    }
    for (int keep = 1; keep >= 0; keep--) {
        cache_in_small_pages(data);
        if (!keep) setenv("THREADLOG_WARM_HUGE_PAGES", "1", 1);
        tl_log *reader = open_log(dir, TL_OPEN_READONLY);
        uint64_t mapped = 0;
        ck_assert_int_eq(tl_log_warm(reader, &mapped), 0);
        unsetenv("THREADLOG_WARM_HUGE_PAGES");
        uint64_t huge = smaps_bytes("/data.mdb", "FilePmdMapped");
        if (keep) ck_assert_msg(huge < mapped / 2, "kept small pages, yet %llu of %llu bytes on 2 MiB entries",
                                (unsigned long long)huge, (unsigned long long)mapped);
        else ck_assert_msg(huge >= mapped / 2, "warm left %llu of %llu bytes on 2 MiB entries",
                           (unsigned long long)huge, (unsigned long long)mapped);
        ck_assert_uint_ge(data_map_rss(), mapped - mapped / 10);
        verify_ok(reader, 193); /* the bytes read through huge pages are the same */
        tl_log_close(reader);
    }
    remove_log(open_log(dir, TL_OPEN_READONLY), dir);
}
END_TEST

/* ================================================================ record exchange */

static uint8_t *record_of(tl_log *log, uint64_t seq, size_t *len) {
    uint8_t *rec;
    ck_assert_int_eq(tl_log_record(log, seq, &rec, len), 0);
    return rec;
}

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

static void head_of(tl_log *log, uint64_t seq, uint8_t hash[32], uint64_t *ts) {
    size_t len;
    uint8_t *rec = record_of(log, seq, &len);
    crypto_generichash(hash, 32, rec, len - 64, NULL, 0);
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, rec, len - 64), 0);
    *ts = e.ts;
    free(rec);
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
    /* the same records again: they no longer follow the head */
    ck_assert_int_eq(tl_log_append_records(b, recs, lens, 1), TL_ECORRUPT);
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
    struct { const char *name; uint8_t *rec; size_t len; } bad[10];
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
    for (int i = 0; i < nb; i++) {
        const uint8_t *one[1] = {bad[i].rec};
        int rc = tl_log_append_records(b, one, &bad[i].len, 1);
        ck_assert_msg(rc == TL_ECORRUPT, "%s: %s", bad[i].name, tl_strerror(rc));
        /* and at the end of a batch of good ones: all or nothing */
        const uint8_t *three[3] = {good32, good33, bad[i].rec};
        size_t l3[3] = {n1, n2, bad[i].len};
        if (i < 5) { /* the ones made for seq 32 do not fit at 34 anyway */
            rc = tl_log_append_records(b, three, l3, 3);
            ck_assert_msg(rc == TL_ECORRUPT, "%s in a batch: %s", bad[i].name, tl_strerror(rc));
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

/* ================================================================ key rotation */

/* Threads appending while another rotates the key: the new key is the log's before the next
 * writer begins, so no append is refused as "rotated by another process", and every
 * checkpoint taken meanwhile is signed by a key of the chain. */
typedef struct rot_appender {
    tl_log *log;
    volatile int *stop;
    int failures, appended;
    char why[200];
} rot_appender;

static void *rot_append(void *arg) {
    rot_appender *a = arg;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    x_payload(&buf, 1, "hello", 0);
    tl_draft d = {"x.test", "alice", NULL, (const uint8_t *)buf.data, buf.size};
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        int rc = tl_log_append(a->log, &d, 1, NULL);
        if (!rc) a->appended++;
        else if (!a->failures++) snprintf(a->why, sizeof a->why, "%s: %s", tl_strerror(rc), tl_errdetail());
    }
    msgpack_sbuffer_destroy(&buf);
    return NULL;
}

START_TEST(rotation_while_appending) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    volatile int stop = 0;
    rot_appender a[3] = {{log, &stop, 0, 0, ""}, {log, &stop, 0, 0, ""}, {log, &stop, 0, 0, ""}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, rot_append, &a[i]);
    for (int r = 0; r < 40; r++) {
        ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
        char *cp = NULL;
        ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
        tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
        vo.checkpoint_json = cp;
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(log, &vo, &vr) == 0, "checkpoint %d: %s", r, vr.reason);
        tl_free(cp);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) ck_assert_msg(a[i].failures == 0, "appender %d: %d refused (%s)", i, a[i].failures, a[i].why);
    verify_ok(log, 1 + (uint64_t)(a[0].appended + a[1].appended + a[2].appended) + 40);
    remove_log(log, dir);
}
END_TEST

/* Another process rotates the key while this one holds the log open: this process's next
 * write takes the new key from the key file (or from the new key's file, when the rotation is
 * committed but its file not yet renamed) instead of refusing every write until reopened. */
START_TEST(rotation_by_another_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    char key[4096], key_new[4096], old_copy[4096];
    snprintf(key, sizeof key, "%s/writer.key", dir);
    snprintf(key_new, sizeof key_new, "%s/writer.key.new", dir);
    snprintf(old_copy, sizeof old_copy, "%s.old-key", dir);
    for (int round = 0; round < 3; round++) {
        copy_file(key, old_copy, 0600);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tl_log *other;
            if (tl_log_open(&other, dir, NULL) || tl_log_rotate_key(other, NULL)) _exit(3);
            tl_log_close(other);
            _exit(0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (round >= 1) { /* as if caught between the rotation's commit and its rename: the new
                           * key in its rotation file (round 1), or in the older versions'
                           * writer.key.new (round 2) */
            char hex[TL_PUBKEY_HEX_SIZE], rot[4200];
            ck_assert_int_eq(tl_log_pubkey(log, hex), 0);
            snprintf(rot, sizeof rot, "%s/writer.key.new.%s", dir, hex);
            ck_assert_int_eq(rename(key, round == 1 ? rot : key_new), 0);
            copy_file(old_copy, key, 0600);
        }
        uint64_t before = head_seq(log);
        append_n(log, 2, 10 + (uint64_t)round * 2, 0); /* asserts success */
        ck_assert_uint_eq(head_seq(log), before + 2);
        char *cp = NULL;
        ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
        tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
        vo.checkpoint_json = cp;
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(log, &vo, &vr) == 0, "round %d: %s", round, vr.reason);
        tl_free(cp);
        unlink(old_copy);
    }
    /* left as the other process's rotation left it between commit and rename: a rotation
     * here puts that key in place first (inside its write transaction), then rotates; a
     * fresh open finds the key file current */
    ck_assert_int_eq(access(key_new, F_OK), 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
    ck_assert_int_ne(access(key_new, F_OK), 0);
    uint64_t n = head_seq(log);
    tl_log_close(log);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    append_n(log, 1, 20, 0);
    verify_ok(log, n + 1);
    remove_log(log, dir);
}
END_TEST

/* Two processes rotating the key and appending at once (each rotation writes its key file
 * inside its write transaction and renames only its own file afterwards, keyfiles.c): no
 * rotation or append fails, no interleaving loses the key the head names, and the next
 * rotation settles every leftover rotation file. */
/* A checkpoint signs the head with the key the head names: after another process rotated the
 * key, this process's handle takes the new key from its file, as a write would (it answered
 * TL_EKEY "not current" until this process wrote). */
START_TEST(checkpoint_after_another_process_rotated) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_free(cp);
    ck_assert_int_eq(tu_run(NULL, "%s -d %s key rotate > /dev/null", TL_CLI, dir), 0);
    ck_assert_msg(tl_log_checkpoint(log, &cp) == 0, "checkpoint: %s", tl_errdetail());
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.checkpoint_json = cp;
    tl_verify_report r;
    ck_assert_msg(tl_log_verify(log, &vo, &r) == 0, "verify: %s", r.reason);
    tl_free(cp);
    /* it takes no writer lock: a thread with an open batch may take one (Check's timeout
     * would end a deadlock) */
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_free(cp);
    tl_batch_abort(b);
    remove_log(log, dir);
}
END_TEST

START_TEST(rotations_in_two_processes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    uint64_t start = head_seq(log);
    tl_log_close(log);
    enum { ROUNDS = 25 };
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) {
            tl_log *mine;
            if (tl_log_open(&mine, dir, NULL)) _exit(2);
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            x_payload(&buf, 1, "hello", 0);
            tl_draft d = {"x.test", c ? "bob" : "alice", NULL, (const uint8_t *)buf.data, buf.size};
            for (int r = 0; r < ROUNDS; r++) {
                if (tl_log_rotate_key(mine, NULL)) _exit(3);
                if (tl_log_append(mine, &d, 1, NULL)) _exit(4);
            }
            msgpack_sbuffer_destroy(&buf);
            tl_log_close(mine);
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status;
        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: status %d", c, status);
    }
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0); /* finds the head's key */
    ck_assert_uint_eq(head_seq(log), start + 2 * 2 * ROUNDS);
    append_n(log, 1, 1, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0); /* settles the key files */
    DIR *dd = opendir(dir);
    ck_assert_ptr_nonnull(dd);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        ck_assert_msg(strncmp(e->d_name, "writer.key.new", 14) != 0, "left behind: %s", e->d_name);
    closedir(dd);
    uint64_t n = head_seq(log);
    tl_log_close(log);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    append_n(log, 1, 2, 0);
    verify_ok(log, n + 1);
    remove_log(log, dir);
}
END_TEST

START_TEST(rotate_then_verify) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 5, 0, 0);
    char *keypath = path_in(dir, "writer.key"), *newpath = path_in(dir, "writer.key.new");
    size_t oldlen;
    char *oldkey = tu_read_file(keypath, &oldlen);
    char k1[TL_PUBKEY_HEX_SIZE], k2[TL_PUBKEY_HEX_SIZE], cur[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, k1), 0);
    ck_assert_int_eq(tl_log_rotate_key(log, k2), 0);
    ck_assert_str_ne(k1, k2);
    ck_assert_int_eq(tl_log_pubkey(log, cur), 0);
    ck_assert_str_eq(cur, k2);
    /* the key file now holds the new key, still 0600; no .new file is left */
    tl_keypair kp;
    ck_assert_int_eq(tl_keyfile_read(keypath, &kp), 0);
    char hex[TL_PUBKEY_HEX_SIZE];
    tl_hex(hex, kp.pk, 32);
    ck_assert_str_eq(hex, k2);
    ck_assert_int_eq(file_mode(keypath), 0600);
    ck_assert_int_ne(access(newpath, F_OK), 0);
    /* key.rotated at 7 names the new key and is signed by the old one */
    uint8_t pk1[32], pk2[32];
    ck_assert_int_eq(tl_unhex(pk1, 32, k1), 0);
    ck_assert_int_eq(tl_unhex(pk2, 32, k2), 0);
    tl_iter *it;
    tl_event_view ev = event_at(log, 7, &it);
    ck_assert_str_eq(ev.kind, "key.rotated");
    ck_assert_str_eq(ev.actor, "@operator");
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
    tl_bytes b;
    ck_assert_int_eq(tl_ev_bin(&e, "public_key", &b), 0);
    ck_assert_mem_eq(b.ptr, pk2, 32);
    ck_assert_int_eq(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk1), 0);
    ck_assert_int_ne(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk2), 0);
    tl_iter_close(it);
    /* later events are signed by the new key */
    append_n(log, 5, 5, 0);
    ev = event_at(log, 10, &it);
    ck_assert_int_eq(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk2), 0);
    tl_iter_close(it);
    verify_ok(log, 12);

    /* pinned keys: the genesis key, the new key; a key the log never had fails */
    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    tl_verify_report r;
    o.pinned_key = pk1;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    o.pinned_key = pk2;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    uint8_t stranger[32];
    memset(stranger, 0x42, sizeof stranger);
    o.pinned_key = stranger;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.first_bad_seq, 1);

    /* a second rotation; the log reopens with the current key file */
    char k3[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_rotate_key(log, k3), 0);
    append_n(log, 2, 10, 0);
    verify_ok(log, 15);
    size_t newlen;
    char *key3 = tu_read_file(keypath, &newlen);
    tl_log_close(log);
    log = open_log(dir, 0);
    append_n(log, 1, 12, 0);
    verify_ok(log, 16);
    tl_log_close(log);

    /* the old key file no longer opens the log for writing */
    ck_assert_int_eq(tu_write_file(keypath, oldkey, oldlen), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    /* a rotation that crashed before the rename: old key in writer.key, the new one in
     * writer.key.new -> open finishes it */
    copy_file(keypath, newpath, 0600);
    ck_assert_int_eq(tu_write_file(newpath, key3, newlen), 0);
    log = open_log(dir, 0);
    ck_assert_int_ne(access(newpath, F_OK), 0);
    size_t l;
    char *now = tu_read_file(keypath, &l);
    ck_assert_uint_eq(l, newlen);
    ck_assert_mem_eq(now, key3, l);
    append_n(log, 1, 13, 0);
    verify_ok(log, 17);
    free(now), free(key3), free(oldkey), free(keypath), free(newpath);
    tl_keypair_wipe(&kp);
    remove_log(log, dir);
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

/* ================================================================ processes */

typedef struct follow_seen {
    uint64_t seqs[64];
    char kinds[64][16];
    int n;
    uint64_t until;
} follow_seen;

static int on_event(const tl_event_view *ev, void *payload) {
    follow_seen *s = payload;
    if (s->n < 64) {
        s->seqs[s->n] = ev->seq;
        snprintf(s->kinds[s->n], sizeof s->kinds[0], "%s", ev->kind);
        s->n++;
    }
    return ev->seq >= s->until;
}

static volatile int watchdog_stop;
/* Sets watchdog_stop after arg milliseconds (in steps of 10 ms), or earlier if set. */
static void *watchdog(void *arg) {
    long ms = (long)(intptr_t)arg;
    for (long i = 0; i < ms / 10 && !__atomic_load_n(&watchdog_stop, __ATOMIC_ACQUIRE); i++) usleep(10000);
    __atomic_store_n(&watchdog_stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

START_TEST(follow_sees_other_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 2, 0, 0);
    tl_log_close(log);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep(300000);
        tl_log *w;
        if (tl_log_open(&w, dir, NULL)) _exit(2);
        for (int b = 0; b < 3; b++) {
            uint8_t empty = 0x80;
            tl_draft d[2] = {{"x.from-child", "child", NULL, &empty, 1}, {"x.from-child", "child", "p-9", &empty, 1}};
            if (tl_log_append(w, d, 2, NULL)) _exit(3);
            usleep(100000);
        }
        tl_log_close(w);
        _exit(0);
    }
    log = open_log(dir, TL_OPEN_READONLY);
    follow_seen seen = {.until = 9};
    pthread_t t;
    __atomic_store_n(&watchdog_stop, 0, __ATOMIC_RELEASE);
    pthread_create(&t, NULL, watchdog, (void *)(intptr_t)30000); /* a safety net only */
    ck_assert_int_eq(tl_log_follow(log, 1, 20, &watchdog_stop, on_event, &seen), 0);
    __atomic_store_n(&watchdog_stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    ck_assert_int_eq(seen.n, 9);
    for (int i = 0; i < 9; i++) ck_assert_uint_eq(seen.seqs[i], (uint64_t)i + 1);
    ck_assert_str_eq(seen.kinds[0], "log.created");
    for (int i = 3; i < 9; i++) ck_assert_str_eq(seen.kinds[i], "x.from-child");

    /* from a later sequence, and stopped by the flag when nothing comes */
    follow_seen later = {.until = 1000};
    __atomic_store_n(&watchdog_stop, 0, __ATOMIC_RELEASE);
    pthread_create(&t, NULL, watchdog, (void *)(intptr_t)500);
    /* nothing more is appended: the stop flag ends it after half a second */
    ck_assert_int_eq(tl_log_follow(log, 8, 20, &watchdog_stop, on_event, &later), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(later.n, 2);
    ck_assert_uint_eq(later.seqs[0], 8);
    remove_log(log, dir);
}
END_TEST

START_TEST(two_writer_processes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_close(log);
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            tl_log *w;
            tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
            if (tl_log_open(&w, dir, &o)) _exit(2);
            for (int b = 0; b < 40; b++) {
                uint8_t empty = 0x80;
                tl_draft d[3] = {{"x.w", p ? "p1" : "p0", NULL, &empty, 1},
                                 {"x.w", p ? "p1" : "p0", NULL, &empty, 1},
                                 {"x.w", p ? "p1" : "p0", NULL, &empty, 1}};
                if (tl_log_append(w, d, 3, NULL)) _exit(3);
            }
            tl_log_close(w);
            _exit(0);
        }
    }
    for (int p = 0; p < 2; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed: %d", p, status);
    }
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, 1 + 2 * 40 * 3);
    /* each batch is contiguous: commits never interleave */
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 2, &it), 0);
    tl_event_view ev;
    for (int i = 0; i < 80; i++) {
        char who[8];
        ck_assert_int_eq(tl_iter_next(it, &ev), 0);
        snprintf(who, sizeof who, "%s", ev.actor);
        for (int k = 1; k < 3; k++) {
            ck_assert_int_eq(tl_iter_next(it, &ev), 0);
            ck_assert_str_eq(ev.actor, who);
        }
    }
    tl_iter_close(it);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ storage failures */

/*
 * The descriptor LMDB writes meta pages through. A synced environment opens data.mdb twice:
 * once for data pages, once with O_DSYNC for the meta pages (the write that makes a commit
 * current). -1 when there is no such descriptor.
 */
static int meta_fd(const char *dir) {
    char *data = path_in(dir, "data.mdb");
    char want[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(data, want));
    free(data);
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        char link[300], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strcmp(target, want) != 0) continue;
        char info[300];
        snprintf(info, sizeof info, "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = fopen(info, "r");
        unsigned flags = 0;
        char line[128];
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "flags: %o", &flags) == 1) break;
        if (f) fclose(f);
        if (flags & O_DSYNC) found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

/* Make the next meta page write fail (EBADF): a read-only descriptor of the same file takes
 * the meta descriptor's number. The reopen closes it with the old environment. */
static void break_meta_writes(const char *dir) {
    int fd = meta_fd(dir);
    ck_assert_msg(fd >= 0, "no O_DSYNC descriptor of %s/data.mdb", dir);
    char *data = path_in(dir, "data.mdb");
    int ro = open(data, O_RDONLY);
    free(data);
    ck_assert_int_ge(ro, 0);
    ck_assert_int_eq(dup2(ro, fd), fd);
    close(ro);
}

typedef struct panic_reader {
    tl_log *log;
    volatile int *stop;
    uint64_t *acked; /* events acknowledged so far (__atomic) */
    unsigned reads;
    int failed;
    char why[300];
} panic_reader;

/* Read the whole log, the statistics and the digest until told to stop; every read must
 * work and hold at least every event acknowledged before it began. */
static void *panic_read(void *arg) {
    panic_reader *r = arg;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && !r->failed) {
        uint64_t floor = __atomic_load_n(r->acked, __ATOMIC_SEQ_CST);
        tl_iter *it;
        int rc = tl_iter_open(r->log, 1, &it);
        uint64_t n = 0;
        tl_event_view ev;
        if (!rc) {
            while ((rc = tl_iter_next(it, &ev)) == 0) n++;
            tl_iter_close(it);
            if (rc == TL_ENOTFOUND) rc = 0;
        }
        tl_log_stats st;
        char digest[TL_PUBKEY_HEX_SIZE];
        if (!rc) rc = tl_log_stats_get(r->log, &st);
        if (!rc) rc = tl_digest(r->log, digest);
        if (rc) {
            r->failed = rc;
            snprintf(r->why, sizeof r->why, "%s: %s", tl_strerror(rc), tl_errdetail());
        } else if (n < floor || st.events < floor) {
            r->failed = TL_ECORRUPT;
            snprintf(r->why, sizeof r->why, "read %llu events (head %llu), %llu were acknowledged", (unsigned long long)n,
                     (unsigned long long)st.events, (unsigned long long)floor);
        }
        r->reads++;
    }
    return NULL;
}

START_TEST(panic_reopens_in_place) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 20, 0, 100);
    uint64_t acked = head_seq(log);
    volatile int stop = 0;
    panic_reader readers[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        readers[i] = (panic_reader){.log = log, .stop = &stop, .acked = &acked};
        pthread_create(&t[i], NULL, panic_read, &readers[i]);
    }
    for (int round = 0; round < 4; round++) {
        usleep(20000);
        break_meta_writes(dir);
        uint8_t empty = 0x80;
        tl_draft d = {"x.lost", "alice", NULL, &empty, 1};
        int rc = tl_log_append(log, &d, 1, NULL);
        ck_assert_msg(rc == TL_ESTORAGE, "round %d: a failed meta write answered %s: %s", round, tl_strerror(rc),
                      tl_errdetail());
        ck_assert_msg(tl_errdetail()[0], "a storage failure without a detail");
        /* the environment is fatal now: in odd rounds the readers meet it first and reopen */
        if (round % 2) usleep(50000);
        uint64_t first = 0;
        tl_draft d2 = {"x.after", "bob", NULL, &empty, 1};
        rc = tl_log_append(log, &d2, 1, &first);
        ck_assert_msg(rc == 0, "round %d: writing after the failure: %s: %s", round, tl_strerror(rc), tl_errdetail());
        ck_assert_uint_eq(first, acked + 1); /* the failed event is not there */
        __atomic_store_n(&acked, first, __ATOMIC_SEQ_CST);
        ck_assert_uint_eq(head_seq(log), acked);
        verify_ok(log, acked);
    }
    /* a command through group commit (the projections' databases: handles kept) */
    tl_cmd *cmd;
    tl_result res;
    ck_assert_int_eq(tl_cmd_new(&cmd, "account.create"), 0);
    tl_cmd_set_str(cmd, "id", "acme");
    tl_cmd_set_str(cmd, "name", "Acme");
    break_meta_writes(dir);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), TL_ESTORAGE);
    ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), 0);
    tl_cmd_free(cmd);
    __atomic_store_n(&acked, res.seq, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(!readers[i].failed, "reader %d: %s", i, readers[i].why);
        ck_assert_uint_gt(readers[i].reads, 0);
    }
    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    tl_log_close(log);
    /* a fresh process's view: the same events, verified */
    log = open_log(dir, TL_OPEN_READONLY);
    verify_ok(log, acked);
    char again[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, again), 0);
    ck_assert_str_eq(live, again);
    remove_log(log, dir);
}
END_TEST

/* A replay into a directory right after a storage failure left the environment fatal: its
 * copy begins as every reader does (reopening the environment), instead of handing LMDB's
 * copy the fatal environment (storage) or, after a failed reopen, none at all (a crash). */
START_TEST(replay_into_after_panic) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 20, 0, 100);
    break_meta_writes(dir);
    uint8_t empty = 0x80;
    tl_draft d = {"x.lost", "alice", NULL, &empty, 1};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), TL_ESTORAGE);
    char *base = tu_tmpdir();
    char *into = path_in(base, "copy");
    tl_replay_options ro = TL_REPLAY_OPTIONS_INIT;
    ro.into_dir = into;
    tl_replay_report rr;
    int rc = tl_replay(log, &ro, &rr);
    ck_assert_msg(rc == 0, "replay into a directory after a storage failure: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_uint_eq(rr.events, head_seq(log));
    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    ck_assert_str_eq(rr.digest, live);
    tl_log *copy = open_log(into, TL_OPEN_READONLY);
    verify_ok(copy, head_seq(log));
    remove_log(copy, into);
    free(base);
    remove_log(log, dir);
}
END_TEST

/*
 * A storage failure while a command of a batch is written (not at commit: LMDB spilling dirty
 * pages of a very large batch onto a full disk) fails every command of the batch; each answer
 * must say why, with the first failure's detail, not a fixed sentence. An applier registered
 * by the test plays the failing write (the detail is storage_fail's own, for ENOSPC).
 */
static uint64_t fail_at_seq;

static int failing_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    (void)state;
    return ev->seq == fail_at_seq ? tl_wtxn_fail_mdb(w, ENOSPC, "write") : 0;
}

START_TEST(batch_failure_says_why) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_applier a = {.name = "test-fails", .apply = failing_apply};
    ck_assert_int_eq(tl_log_register(log, &a), 0);
    fail_at_seq = 3; /* 1 is the genesis event: the batch's second command fails */
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    enum { N = 4 };
    tl_cmd *cmd[N];
    tl_result res[N];
    for (int i = 0; i < N; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"op\":\"account.create\",\"id\":\"a%d\",\"name\":\"A\"}", i);
        ck_assert_int_eq(tl_cmd_parse(&cmd[i], line, strlen(line), &res[i]), 0);
        tl_batch_exec(b, cmd[i], &res[i]);
    }
    ck_assert_int_eq(res[0].code, 0);
    ck_assert_int_ne(tl_batch_commit(b), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(res[i].code, TL_ESTORAGE);
        ck_assert_msg(strstr(res[i].message, "the disk is full") && strstr(res[i].message, "ENOSPC"),
                      "command %d: %s", i, res[i].message);
        tl_cmd_free(cmd[i]);
    }
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1); /* nothing of the batch was stored */
    remove_log(log, dir);
}
END_TEST

/* ================================================================ damaged files */

/* The offset of needle in hay, or -1. */
static long find_in(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return (long)i;
    return -1;
}

static int count_line(const char *line, size_t len, void *payload) {
    (void)line, (void)len;
    ++*(size_t *)payload;
    return 0;
}

START_TEST(damaged_walks_stop) {
    enum { PAGE = 4096 };
    /* 1. the fuzzer's input that made `stats` loop forever (tests/fuzz/regressions/fuzz_open/
     * hang-stats-cursor-cycle): 6 bytes written at offset 8 of page 2056 mod the page count of
     * the committed template, the header of a page the walk passes */
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log");
    free(base);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char *to = path_in(dir, "writer.key");
    copy_file(TL_SOURCE_DIR "/tests/fuzz/open-template/writer.key", to, 0600);
    free(to);
    size_t len;
    uint8_t *file = (uint8_t *)tu_read_file(TL_SOURCE_DIR "/tests/fuzz/open-template/data.mdb", &len);
    ck_assert_ptr_nonnull(file);
    static const uint8_t patch[] = {0x00, 0x00, 0x30, 0x00, 0x00, 0x00};
    memcpy(file + (2056 % (len / PAGE)) * PAGE + 8, patch, sizeof patch);
    to = path_in(dir, "data.mdb");
    ck_assert_int_eq(tu_write_file(to, file, len), 0);
    free(to);
    free(file);
    tl_log *log = open_log(dir, TL_OPEN_READONLY);
    tl_log_stats st;
    int rc = tl_log_stats_get(log, &st);
    ck_assert_msg(rc == TL_ECORRUPT, "stats on a damaged file: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_msg(strstr(tl_errdetail(), "damaged"), "detail: %s", tl_errdetail());
    remove_log(log, dir);

    /* 2. a log leaf page overwritten by an earlier one (all but its page number): a walk of the
     * log meets sequence numbers it has passed */
    log = tu_new_log(&dir);
    append_n(log, 300, 0, 200);
    size_t rlen[2];
    uint8_t *rec[2];
    ck_assert_int_eq(tl_log_record(log, 10, &rec[0], &rlen[0]), 0);
    ck_assert_int_eq(tl_log_record(log, 250, &rec[1], &rlen[1]), 0);
    tl_log_close(log);
    char *data = path_in(dir, "data.mdb");
    file = (uint8_t *)tu_read_file(data, &len);
    long at[2];
    for (int i = 0; i < 2; i++) {
        at[i] = find_in(file, len, rec[i], rlen[i]);
        ck_assert_int_ge(at[i], 0);
        free(rec[i]);
    }
    long early = at[0] / PAGE, late = at[1] / PAGE;
    ck_assert_int_ne(early, late);
    memcpy(file + late * PAGE + 8, file + early * PAGE + 8, PAGE - 8);
    ck_assert_int_eq(tu_write_file(data, file, len), 0);
    free(file);
    free(data);
    log = open_log(dir, TL_OPEN_READONLY);
    rc = tl_log_stats_get(log, &st);
    ck_assert_msg(rc == TL_ECORRUPT, "stats: %s: %s", tl_strerror(rc), tl_errdetail());
    ck_assert_msg(strstr(tl_errdetail(), "log database is damaged"), "detail: %s", tl_errdetail());
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    uint64_t last = 0, n = 0;
    while ((rc = tl_iter_next(it, &ev)) == 0) {
        ck_assert_uint_gt(ev.seq, last); /* never handed out backwards */
        last = ev.seq;
        n++;
    }
    tl_iter_close(it);
    ck_assert_msg(rc == TL_ECORRUPT, "iterating: %s: %s after %llu events", tl_strerror(rc), tl_errdetail(),
                  (unsigned long long)n);
    ck_assert_uint_lt(n, 301);
    /* the export's walks (engine/export.c) stop the same way, before a line goes out twice */
    tl_export_options xo = TL_EXPORT_OPTIONS_INIT;
    size_t lines = 0;
    rc = tl_export(log, &xo, count_line, &lines);
    ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "log database is damaged"), "export: %s: %s",
                  tl_strerror(rc), tl_errdetail());
    /* so does a replay cut at a time (engine/replay.c): its check of the whole copy, which
     * comes first, or its search for the last event before the time */
    base = tu_tmpdir();
    char *into = path_in(base, "copy");
    free(base);
    tl_replay_options ro = TL_REPLAY_OPTIONS_INIT;
    ro.into_dir = into;
    ro.until_ts = UINT64_C(1) << 62;
    tl_replay_report rr;
    rc = tl_replay(log, &ro, &rr);
    ck_assert_msg(rc == TL_ECORRUPT && (strstr(tl_errdetail(), "log database is damaged") || strstr(tl_errdetail(), "out of order")),
                  "replay --until-time: %s: %s", tl_strerror(rc), tl_errdetail());
    free(into);
    tl_verify_report r;
    ck_assert_int_eq(tl_log_verify(log, NULL, &r), TL_ECORRUPT);
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
    tcase_add_test(tc, one_handle_per_log_per_process);
    tcase_add_test(tc, writes_inside_own_batch_refused);
    tcase_add_test(tc, fork_handler_may_open_a_log);
    tcase_add_test(tc, open_during_close_refused);
    tcase_add_test(tc, layout_matches_format_doc);
    tcase_add_test(tc, map_grows);
    tcase_add_test(tc, map_growth_not_starved_by_readers);
    tcase_add_test(tc, map_growth_refused_inside_own_snapshot);
    tcase_add_test(tc, rotation_while_appending);
    tcase_add_test(tc, null_arguments_refused);
    tcase_add_test(tc, rotation_by_another_process);
    tcase_add_test(tc, rotations_in_two_processes);
    tcase_add_test(tc, checkpoint_after_another_process_rotated);
    tcase_add_test(tc, warm_maps_the_file);
    tcase_add_test(tc, warm_maps_huge_pages);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("exchange");
    tcase_add_test(tc, records_exchange);
    tcase_add_test(tc, records_other_genesis);
    tcase_add_test(tc, records_with_rotation);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, rotate_then_verify);
    tcase_add_test(tc, checkpoint_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("processes");
    tcase_add_test(tc, follow_sees_other_process);
    tcase_add_test(tc, two_writer_processes);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_test(tc, panic_reopens_in_place);
    tcase_add_test(tc, replay_into_after_panic);
    tcase_add_test(tc, batch_failure_says_why);
    tcase_add_test(tc, damaged_walks_stop);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
