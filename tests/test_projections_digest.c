/*
 * test_projections_digest.c — the projections' digest as a proof (SPEC §3): equal states give
 * equal digests (test_replay_live), and here the other half: states that differ in one
 * projection byte, key, entry, order or database give different digests. And a damaged
 * database is refused rather than digested: an entry that runs past the end of the data file,
 * a scan that fails in the middle.
 *
 * Small logs made by hand: replay_fixture.h. The projection databases are edited with raw
 * LMDB writes on the open log's environment (log.h: the tl_log's internals).
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h> /* memmem: the build defines _GNU_SOURCE */

#include "log.h"
#include "replay_fixture.h"
#include "state.h"
#include "zeropack.h"

/* ================================================================ the digest */

/* The digest must tell apart any two projection states (SPEC §3): the replay tests only show
 * that equal states give equal digests, which a digest of nothing would also do. So the
 * projection databases are edited here with raw LMDB writes on the open log's environment
 * (each tl_digest reads in a transaction of its own, after them) and every edit must move the
 * digest, and undoing it must bring the digest back. */
static void proj_put(tl_log *log, MDB_dbi db, const void *k, size_t kn, const void *v, size_t vn) {
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, 0, &t), 0);
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    ck_assert_int_eq(mdb_put(t, db, &key, &val, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static void proj_del(tl_log *log, MDB_dbi db, const void *k, size_t kn) {
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, 0, &t), 0);
    MDB_val key = {kn, (void *)k};
    ck_assert_int_eq(mdb_del(t, db, &key, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static size_t proj_count(tl_log *log, MDB_dbi db) {
    MDB_txn *t;
    MDB_stat st;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, MDB_RDONLY, &t), 0);
    ck_assert_int_eq(mdb_stat(t, db, &st), 0);
    mdb_txn_abort(t);
    return st.ms_entries;
}

/* The digest now: replay_fixture.h's digest_of, under the name these tests use. */
static void digest_now(tl_log *log, char out[TL_PUBKEY_HEX_SIZE]) { digest_of(log, out); }

/* The digest differs from `base` now (what: the edit), and `seen` (n digests) holds none of it. */
static void expect_moved(tl_log *log, const char *base, char seen[][TL_PUBKEY_HEX_SIZE], int *n, const char *db,
                         const char *what) {
    char d[TL_PUBKEY_HEX_SIZE];
    digest_now(log, d);
    ck_assert_msg(strcmp(d, base) != 0, "%s: %s leaves the digest as it was", db, what);
    for (int i = 0; i < *n; i++) ck_assert_msg(strcmp(d, seen[i]) != 0, "%s: %s gives an earlier edit's digest", db, what);
    memcpy(seen[(*n)++], d, TL_PUBKEY_HEX_SIZE);
}

static void expect_back(tl_log *log, const char *base, const char *db, const char *what) {
    char d[TL_PUBKEY_HEX_SIZE];
    digest_now(log, d);
    ck_assert_msg(strcmp(d, base) == 0, "%s: undoing %s does not give the digest back", db, what);
}

/* Every database of every projection, at its first entry, its second and its last: one value
 * byte (the last), a key with its value, two values swapped between keys, a byte moved from a
 * value to its key, an entry removed. Three probe entries are added to each database first
 * (keys 00 'd' 00, 00 'd' 01 before any projection key, ff 'd' 02 after them), so that each
 * database, empty or not, has a known first, second and last entry. */
START_TEST(the_digest_sees_every_projection_byte) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    const char *setup[] = {
        "{\"op\":\"account.create\",\"id\":\"a0\",\"name\":\"A\"}",
        "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"a0\",\"name\":\"Al\"}",
        "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}",
        "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n0\",\"project\":\"p0\",\"body\":\"note 0\"}",
    };
    run_ok(log, setup, 4);
    static const uint8_t k0[] = {0x00, 'd', 0}, k1[] = {0x00, 'd', 1}, k2[] = {0xff, 'd', 2}, k3[] = {0xff, 'd', 3};
    static const uint8_t v0[] = "probe value 0", v1[] = "probe value 1", v2[] = "probe value 2";
    int ndb = 0;
    for (unsigned a = 0; a < log->napplier; a++) {
        const tl_applier *ap = &log->appliers[a];
        if (!ap->in_digest) continue;
        for (unsigned i = 0; i < ap->ndbs; i++, ndb++) {
            MDB_dbi db = ap->dbs[i];
            const char *name = ap->db_names[i];
            char before[TL_PUBKEY_HEX_SIZE], base[TL_PUBKEY_HEX_SIZE], seen[16][TL_PUBKEY_HEX_SIZE];
            int n = 0;
            digest_now(log, before);
            memcpy(seen[n++], before, TL_PUBKEY_HEX_SIZE);
            proj_put(log, db, k0, sizeof k0, v0, sizeof v0);
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            digest_now(log, base);
            ck_assert_msg(strcmp(base, before) != 0, "%s: three more entries leave the digest as it was", name);

            const uint8_t *ks[3] = {k0, k1, k2}, *vs[3] = {v0, v1, v2};
            static const char *const which[3] = {"the first entry's", "the second entry's", "the last entry's"};
            for (int e = 0; e < 3; e++) { /* the last byte of one value */
                uint8_t v[sizeof v0];
                memcpy(v, vs[e], sizeof v);
                v[sizeof v - 1] ^= 0x01;
                char what[64];
                snprintf(what, sizeof what, "%s last value byte", which[e]);
                proj_put(log, db, ks[e], 3, v, sizeof v);
                expect_moved(log, base, seen, &n, name, what);
                proj_put(log, db, ks[e], 3, vs[e], sizeof v);
                expect_back(log, base, name, what);
            }
            /* the last entry under another key, the same value */
            proj_del(log, db, k2, sizeof k2);
            proj_put(log, db, k3, sizeof k3, v2, sizeof v2);
            expect_moved(log, base, seen, &n, name, "a key changed");
            proj_del(log, db, k3, sizeof k3);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            expect_back(log, base, name, "a key changed");
            /* the first two values swapped: the same entries' bytes, in another order */
            proj_put(log, db, k0, sizeof k0, v1, sizeof v1);
            proj_put(log, db, k1, sizeof k1, v0, sizeof v0);
            expect_moved(log, base, seen, &n, name, "two values swapped");
            proj_put(log, db, k0, sizeof k0, v0, sizeof v0);
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            expect_back(log, base, name, "two values swapped");
            /* the value's first byte moved to the end of its key: the same bytes, split otherwise */
            uint8_t kk[4] = {k2[0], k2[1], k2[2], v2[0]};
            proj_del(log, db, k2, sizeof k2);
            proj_put(log, db, kk, sizeof kk, v2 + 1, sizeof v2 - 1);
            expect_moved(log, base, seen, &n, name, "a byte moved from a value to its key");
            proj_del(log, db, kk, sizeof kk);
            proj_put(log, db, k2, sizeof k2, v2, sizeof v2);
            expect_back(log, base, name, "a byte moved from a value to its key");
            /* an entry fewer */
            proj_del(log, db, k1, sizeof k1);
            expect_moved(log, base, seen, &n, name, "the second entry removed");
            proj_put(log, db, k1, sizeof k1, v1, sizeof v1);
            expect_back(log, base, name, "the second entry removed");

            proj_del(log, db, k0, sizeof k0);
            proj_del(log, db, k1, sizeof k1);
            proj_del(log, db, k2, sizeof k2);
            expect_back(log, before, name, "the probes");
        }
    }
    ck_assert_int_ge(ndb, 7); /* the state and the six projections */
    remove_all(log, dir);
}
END_TEST

/* The same entry in one projection database or in the next is another state: the digest
 * hashes each database's name. On a log of one event most projection databases are empty;
 * every two neighbours that both are take the entry in turn. */
START_TEST(the_digest_sees_which_database_holds_an_entry) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    MDB_dbi dbs[64];
    const char *names[64];
    int ndb = 0;
    for (unsigned a = 0; a < log->napplier; a++)
        for (unsigned i = 0; log->appliers[a].in_digest && i < log->appliers[a].ndbs && ndb < 64; i++) {
            dbs[ndb] = log->appliers[a].dbs[i];
            names[ndb++] = log->appliers[a].db_names[i];
        }
    static const uint8_t k[] = {0x7f, 'd'}, v[] = "probe";
    int pairs = 0;
    for (int i = 0; i + 1 < ndb; i++) {
        if (proj_count(log, dbs[i]) || proj_count(log, dbs[i + 1])) continue;
        char in_first[TL_PUBKEY_HEX_SIZE], in_second[TL_PUBKEY_HEX_SIZE];
        proj_put(log, dbs[i], k, sizeof k, v, sizeof v);
        digest_now(log, in_first);
        proj_del(log, dbs[i], k, sizeof k);
        proj_put(log, dbs[i + 1], k, sizeof k, v, sizeof v);
        digest_now(log, in_second);
        proj_del(log, dbs[i + 1], k, sizeof k);
        ck_assert_msg(strcmp(in_first, in_second) != 0, "an entry in %s or in %s gives one digest", names[i], names[i + 1]);
        pairs++;
    }
    ck_assert_int_gt(pairs, 0);
    remove_all(log, dir);
}
END_TEST

/* A message record's copy of a short body is hashed as cleared: a digest written down before
 * an erasure must not confirm a guess of the erased body (put the guess back, hash again).
 * The rest of the record still counts: its body size, say. */
START_TEST(the_digest_does_not_hash_short_bodies) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    static const char *const lines[] = {
        "{\"op\":\"account.create\",\"id\":\"dg\",\"name\":\"D\"}",
        "{\"op\":\"user.create\",\"id\":\"dgu\",\"role\":\"member\",\"account\":\"dg\",\"name\":\"U\"}",
        "{\"op\":\"project.create\",\"as\":\"dgu\",\"id\":\"dgp\",\"account\":\"dg\",\"type\":\"order\",\"title\":\"P\"}",
        "{\"op\":\"note.add\",\"as\":\"dgu\",\"id\":\"dgn\",\"project\":\"dgp\",\"body\":\"a short secret\"}",
    };
    run_ok(log, lines, 4);
    MDB_dbi state = 0;
    for (unsigned a = 0; a < log->napplier; a++)
        for (unsigned i = 0; i < log->appliers[a].ndbs; i++)
            if (!strcmp(log->appliers[a].db_names[i], "state")) state = log->appliers[a].dbs[i];
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, MDB_RDONLY, &t), 0);
    MDB_val k = {5, (void *)"m/dgn"}, v;
    ck_assert_int_eq(mdb_get(t, state, &k, &v), 0);
    tl_message_rec m;
    ck_assert_int_eq(tl_zerounpack((uint8_t *)&m, sizeof m, v.mv_data, v.mv_size), 0);
    mdb_txn_abort(t);
    ck_assert(m.body_inline);
    ck_assert_str_eq(m.body, "a short secret");
    char before[TL_PUBKEY_HEX_SIZE], guessed[TL_PUBKEY_HEX_SIZE], resized[TL_PUBKEY_HEX_SIZE];
    digest_now(log, before);
    uint8_t packed[TL_ZEROPACK_BOUND(sizeof m)];
    snprintf(m.body, sizeof m.body, "a wrong guess!");
    proj_put(log, state, k.mv_data, k.mv_size, packed, tl_zeropack(packed, (const uint8_t *)&m, sizeof m));
    digest_now(log, guessed);
    ck_assert_str_eq(guessed, before);
    m.body_size++;
    proj_put(log, state, k.mv_data, k.mv_size, packed, tl_zeropack(packed, (const uint8_t *)&m, sizeof m));
    digest_now(log, resized);
    ck_assert_str_ne(resized, before);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ a damaged database */

/* The digest reads what LMDB hands out of a damaged database without trusting it: a scan
 * that fails is an error, not the digest of what was read before it, and an entry whose size
 * runs past the end of the data file is refused before it is hashed (hashing it would read
 * past the file's pages and fault). The damage is one leaf node of a probe entry, put last in
 * the last database the digest reads (so that nothing read after it could fail instead) and
 * edited in the closed data file: LMDB keeps no checksum, and it reads a node's size and its
 * overflow page number as they are. */

/* A log after 300 commands of the replay fixture's seeded stream and, last in the key order of
 * the digest's last database (its name in db_name), the probe key with a value of vn bytes
 * (over 2 KiB: an overflow page of its own); closed. */
static char *log_with_probe(const uint8_t *key, size_t kn, size_t vn, char db_name[32]) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    gen g = {.s = test_seed()};
    run_stream(log, &g, 300);
    MDB_dbi db = 0;
    for (unsigned a = 0; a < log->napplier; a++)
        if (log->appliers[a].in_digest && log->appliers[a].ndbs) {
            db = log->appliers[a].dbs[log->appliers[a].ndbs - 1];
            snprintf(db_name, 32, "%s", log->appliers[a].db_names[log->appliers[a].ndbs - 1]);
        }
    ck_assert_uint_gt(proj_count(log, db), 0); /* the probe is not alone: the scan has begun */
    uint8_t *v = malloc(vn);
    memset(v, 'v', vn);
    proj_put(log, db, key, kn, v, vn);
    free(v);
    char d[TL_PUBKEY_HEX_SIZE];
    digest_now(log, d); /* the undamaged database digests */
    tl_log_close(log);
    return dir;
}

/* LMDB's leaf node (mdb.c, MDB_node, on a little-endian machine): the data size in two
 * 16-bit halves, the flags, the key size, the key, then the data, or for F_BIGDATA the
 * number of the first overflow page holding it. */
enum { NODE_HEAD = 8, F_BIGDATA = 0x01 };

typedef void (*node_edit)(uint8_t *node, size_t kn);

/* Apply edit to every leaf node in dir's data file whose key is key (an old copy of its page
 * may still be in the file, free); returns how many there were. */
static int edit_probe_nodes(const char *dir, const uint8_t *key, size_t kn, node_edit edit) {
    ck_assert_msg(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the node layout here is little-endian");
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t len;
    uint8_t *file = (uint8_t *)tu_read_file(path, &len);
    ck_assert_ptr_nonnull(file);
    int n = 0;
    for (uint8_t *at = file + NODE_HEAD; (at = memmem(at, len - (size_t)(at - file), key, kn)) != NULL; at += kn) {
        uint16_t ksize;
        memcpy(&ksize, at - 2, 2);
        if (ksize != kn) continue;
        edit(at - NODE_HEAD, kn);
        n++;
    }
    ck_assert_int_eq(tu_write_file(path, file, len), 0);
    free(file);
    return n;
}

/* The value's size, as the node says it: 2 GiB, far past the data file's end. */
static void claim_two_gib(uint8_t *node, size_t kn) {
    (void)kn;
    uint16_t flags;
    memcpy(&flags, node + 4, 2);
    ck_assert_msg(!(flags & F_BIGDATA), "the probe's small value is on an overflow page");
    static const uint16_t size[2] = {0x0000, 0x8000}; /* lo, hi */
    memcpy(node, size, 4);
}

/* The value's overflow page: a page number far past the last page of the file. */
static void lose_the_overflow_page(uint8_t *node, size_t kn) {
    uint16_t flags;
    memcpy(&flags, node + 4, 2);
    ck_assert_msg(flags & F_BIGDATA, "the probe's large value is not on an overflow page");
    uint64_t far = 0x00ffffffffffull;
    memcpy(node + NODE_HEAD + kn, &far, 8);
}

/* A damaged node whose value runs past the end of the data file: the digest refuses it,
 * naming the database, and writes no digest. */
START_TEST(the_digest_refuses_an_entry_past_the_end) {
    static const uint8_t key[] = "\xff" "digest probe: past the end";
    char db[32], want[128];
    char *dir = log_with_probe(key, sizeof key - 1, 16, db);
    ck_assert_int_ge(edit_probe_nodes(dir, key, sizeof key - 1, claim_two_gib), 1);
    tl_log *log = open_ro(dir);
    char d[TL_PUBKEY_HEX_SIZE] = "unchanged";
    int rc = tl_digest(log, d);
    ck_assert_msg(rc == TL_ECORRUPT, "digest of a 2 GiB value in a small file: %s (%s)", tl_strerror(rc), tl_errdetail());
    snprintf(want, sizeof want, "database %s is damaged (an entry points past the end of the data file)", db);
    ck_assert_msg(strcmp(tl_errdetail(), want) == 0, "%s", tl_errdetail());
    ck_assert_str_eq(d, "");
    remove_all(log, dir);
}
END_TEST

/* A scan that fails in the middle (the probe's overflow page is not in the file, and LMDB
 * says so when the cursor reaches it): the digest is that error, not a digest of the entries
 * read before it. */
START_TEST(the_digest_refuses_a_scan_that_fails) {
    static const uint8_t key[] = "\xff" "digest probe: a lost overflow page";
    char db[32];
    char *dir = log_with_probe(key, sizeof key - 1, 3000, db);
    ck_assert_int_ge(edit_probe_nodes(dir, key, sizeof key - 1, lose_the_overflow_page), 1);
    tl_log *log = open_ro(dir);
    char d[TL_PUBKEY_HEX_SIZE] = "unchanged";
    int rc = tl_digest(log, d);
    ck_assert_msg(rc == TL_ECORRUPT, "digest with a lost overflow page: %s (%s)", tl_strerror(rc), tl_errdetail());
    ck_assert_msg(strstr(tl_errdetail(), "digest scan: ") == tl_errdetail(), "%s", tl_errdetail());
    ck_assert_str_eq(d, "");
    remove_all(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_digest");
    TCase *tc = tcase_create("digest");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_digest_sees_every_projection_byte);
    tcase_add_test(tc, the_digest_sees_which_database_holds_an_entry);
    tcase_add_test(tc, the_digest_does_not_hash_short_bodies);
    suite_add_tcase(s, tc);
    tc = tcase_create("damage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_digest_refuses_an_entry_past_the_end);
    tcase_add_test(tc, the_digest_refuses_a_scan_that_fails);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
