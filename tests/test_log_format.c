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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ================================================================ damaged pages and records */

/* Run JSON command lines on an open log; returns the last one's answer code. */
static int run_lines(tl_log *log, const char *const *lines) {
    int code = 0;
    for (size_t i = 0; lines[i]; i++) {
        tl_cmd *cmd;
        tl_result res;
        ck_assert_int_eq(tl_cmd_parse(&cmd, lines[i], strlen(lines[i]), &res), 0);
        tl_cmd_exec(log, cmd, &res);
        code = res.code;
        tl_cmd_free(cmd);
    }
    return code;
}

static const char *const a_note[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-1\",\"project\":\"o-1\",\"body\":\"Tomorrow\"}",
    NULL};

/* The named database's record (LMDB's MDB_db: pad u32, flags u16, depth u16, branch, leaf
 * and overflow page counts, entries, root page), read with raw LMDB. */
static void db_record(const char *dir, const char *name, uint8_t rec[48]) {
    raw r;
    raw_open(&r, dir, false);
    MDB_dbi main_db;
    ck_assert_int_eq(mdb_dbi_open(r.txn, NULL, 0, &main_db), 0);
    MDB_val k = {strlen(name), (void *)name}, v;
    ck_assert_int_eq(mdb_get(r.txn, main_db, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 48);
    memcpy(rec, v.mv_data, 48);
    raw_close(&r, false);
}

/* Replace every copy of from[0, n) in dir's data file by to[0, n) (older copies of a page
 * may lie on free pages too); returns how many. */
static int patch_every(const char *dir, const uint8_t *from, const uint8_t *to, size_t n) {
    char *path = path_in(dir, "data.mdb");
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    uint8_t *data = malloc((size_t)size);
    ck_assert_ptr_nonnull(data);
    rewind(f);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    int found = 0;
    for (long at = 0; at + (long)n <= size; at++)
        if (memcmp(data + at, from, n) == 0) {
            ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
            ck_assert_uint_eq(fwrite(to, 1, n, f), n);
            found++;
        }
    free(data);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
    return found;
}

static void patch_file(const char *dir, size_t at, const void *bytes, size_t n) {
    char *path = path_in(dir, "data.mdb");
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, (long)at, SEEK_SET), 0);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

/*
 * LMDB takes a database's flags from its record in the file when it opens it, and follows
 * them: a damaged record claiming sorted duplicates (flags no database of ours has) is
 * refused at open as corrupt, naming the database, read-only and writable alike.
 */
START_TEST(database_flags_damaged) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    ck_assert_int_eq(run_lines(log, a_note), 0);
    tl_log_close(log);
    uint8_t rec[48], damaged[48];
    db_record(dir, "content", rec);
    ck_assert_uint_eq(rec[4] | rec[5] << 8, 0); /* md_flags */
    memcpy(damaged, rec, 48);
    damaged[4] = MDB_DUPSORT;
    ck_assert_int_ge(patch_every(dir, rec, damaged, 48), 1);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(tl_errdetail(), "database content is damaged"));
    tl_open_options ro = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
    ck_assert_int_eq(tl_log_open(&log, dir, &ro), TL_ECORRUPT);
    ck_assert_int_ge(patch_every(dir, damaged, rec, 48), 1); /* restored: opens and verifies again */
    log = open_log(dir, 0);
    verify_ok(log, 5);
    remove_log(log, dir);
}
END_TEST

/*
 * A page's header flags damaged to another kind of leaf (LMDB's P_LEAF2, the fixed-size keys
 * of sorted duplicates): LMDB then "reserves" a value without returning room for it, and the
 * append that stores a body used to write through a NULL pointer (found by fuzz_open). Now
 * the append answers corrupt and the process lives on.
 */
START_TEST(content_page_of_another_kind) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    ck_assert_int_eq(run_lines(log, a_note), 0);
    tl_log_close(log);
    uint8_t rec[48];
    db_record(dir, "content", rec);
    ck_assert_uint_eq(rec[6] | rec[7] << 8, 1); /* md_depth: the root is the only leaf */
    uint64_t root = 0;
    for (int i = 7; i >= 0; i--) root = root << 8 | rec[40 + i];
    uint8_t flags[2];
    char *path = path_in(dir, "data.mdb");
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, (long)(root * 4096 + 10), SEEK_SET), 0); /* mp_flags */
    ck_assert_uint_eq(fread(flags, 1, 2, f), 2);
    fclose(f);
    free(path);
    ck_assert_uint_eq(flags[0] & 0x02, 0x02); /* P_LEAF */
    flags[0] |= 0x20;                          /* P_LEAF2 */
    patch_file(dir, root * 4096 + 10, flags, 2);
    log = open_log(dir, 0);
    static const char *const another[] = {
        "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-2\",\"project\":\"o-1\",\"body\":\"After the damage\"}", NULL};
    int code = run_lines(log, another);
    ck_assert_msg(code == TL_ECORRUPT || code == TL_ESTORAGE, "the append answered %d: %s", code, tl_errdetail());
    remove_log(log, dir);
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

    tc = tcase_create("damage");
    tcase_add_test(tc, database_flags_damaged);
    tcase_add_test(tc, content_page_of_another_kind);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
