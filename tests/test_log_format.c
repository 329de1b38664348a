/*
 * test_log_format.c — the log's on-disk format as docs/FORMAT.md gives it: the format version
 * in meta that open checks (another version refused, a damaged or missing record corrupt), and
 * the whole layout (meta's records, the log's keys and records, the head, the applied marks)
 * read back with raw LMDB and msgpack-c alone.
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

#include "crypto.h"
#include "log_fixture.h"

/* ================================================================ helpers */

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

/* ================================================================ the format version */

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

int main(void) {
    Suite *s = suite_create("log_format");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, open_format_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("layout");
    tcase_add_test(tc, layout_matches_format_doc);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
