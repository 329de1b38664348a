/*
 * digest.c — the projection digest: one BLAKE2b-256 over the content of every applier's
 * databases that are flagged in_digest, so an operator can check that a replayed state
 * equals the live one (SPEC §3).
 *
 * What is hashed, in this order: for each applier in registration order, for each of its
 * databases, the database name, then every key and value in LMDB's key order; each item
 * is preceded by its length (4 bytes big-endian) so that no two contents hash alike by
 * shifting bytes between items. One exception: a message record of the state is hashed with
 * its copy of a short body cleared (below). The projections store nothing that depends on the clock of
 * the applying process or on memory layout (records are serialized field by field, or
 * zeroed structs in the state), so a live log and its replay give the same digest.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>

#include "proj.h"
#include "zeropack.h"

static void hash_item(crypto_generichash_state *h, const void *p, size_t n) {
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_generichash_update(h, len, 4);
    if (n) crypto_generichash_update(h, p, n);
}

/* Where the data file is mapped: a damaged node can claim a size that runs past the end of
 * the file, and LMDB hands such a value out unchecked; hashing it would fault. */
typedef struct file_span {
    const uint8_t *lo, *hi;
} file_span;

/* LMDB does not say where its map starts; the kernel does: the mapping that holds a value
 * LMDB handed out of this transaction (anchor), cut to the pages the data file has. An empty
 * span (nothing found) disables the check. */
static file_span data_span(tl_log *log, const void *anchor) {
    file_span f = {NULL, NULL};
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(log->env, &info);
    mdb_env_stat(log->env, &st);
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return f;
    char line[512];
    uintptr_t a = (uintptr_t)anchor;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
            size_t file = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
            f.lo = (const uint8_t *)lo;
            f.hi = f.lo + (file < hi - lo ? file : hi - lo);
            break;
        }
    }
    fclose(maps);
    return f;
}

static bool in_file(const file_span *f, const MDB_val *v) {
    const uint8_t *p = v->mv_data;
    if (!f->lo || v->mv_size == 0) return true;
    return p >= f->lo && p <= f->hi && v->mv_size <= (size_t)(f->hi - p);
}

/*
 * A message record of the state ("m/" id) carries a copy of its body when the body is short
 * (TL_BODY_INLINE_MAX), in plain text. A digest over it would be an unsalted hash of every
 * short body: with a digest written down before an erasure and the log after it, a guess of
 * the erased body could be confirmed by putting it back and hashing again (found by an
 * audit). The body's salted commitment and its size are in the same record, so the copy is
 * hashed as cleared: the digest says nothing about a body that the log's commitments do not.
 */
static bool is_message_record(const MDB_val *k) {
    const char *p = k->mv_data;
    return k->mv_size > 2 && p[0] == 'm' && p[1] == '/' && !memchr(p + 2, '/', k->mv_size - 2);
}

static int hash_message_record(crypto_generichash_state *h, const MDB_val *v, const char *name) {
    tl_message_rec m;
    if (tl_zerounpack((uint8_t *)&m, sizeof m, v->mv_data, v->mv_size))
        return tl_fail(TL_ECORRUPT, "database %s is damaged (a message record does not unpack)", name);
    memset(m.body, 0, sizeof m.body);
    uint8_t packed[TL_ZEROPACK_BOUND(sizeof m)];
    hash_item(h, packed, tl_zeropack(packed, (const uint8_t *)&m, sizeof m));
    return 0;
}

static int hash_db(crypto_generichash_state *h, MDB_txn *txn, MDB_dbi db, const char *name, const file_span *f) {
    bool state = strcmp(name, "state") == 0;
    hash_item(h, name, strlen(name));
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc) return tl_fail_mdb(rc, "digest cursor");
    MDB_val k, v;
    uint8_t prev[TLP_KEY_MAX * 2];
    MDB_val pk = {0, prev};
    bool first = true;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* a damaged page can make a cursor walk in a cycle: keys must keep increasing */
        if ((!first && mdb_cmp(txn, db, &k, &pk) <= 0) || k.mv_size > sizeof prev) {
            mdb_cursor_close(cur);
            return tl_fail(TL_ECORRUPT, "database %s is damaged (its keys do not increase)", name);
        }
        if (!in_file(f, &k) || !in_file(f, &v)) {
            mdb_cursor_close(cur);
            return tl_fail(TL_ECORRUPT, "database %s is damaged (an entry points past the end of the data file)", name);
        }
        first = false;
        memcpy(prev, k.mv_data, k.mv_size);
        pk.mv_size = k.mv_size;
        hash_item(h, k.mv_data, k.mv_size);
        if (state && is_message_record(&k)) {
            if ((rc = hash_message_record(h, &v, name)) != 0) {
                mdb_cursor_close(cur);
                return rc;
            }
        } else {
            hash_item(h, v.mv_data, v.mv_size);
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : tl_fail_mdb(rc, "digest scan");
}

int tl_digest(tl_log *log, char digest_hex[TL_PUBKEY_HEX_SIZE]) {
    if (!log || !digest_hex) return tl_fail(TL_EUSAGE, "tl_digest needs a log and an output buffer");
    digest_hex[0] = 0;
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, TL_HASH_BYTES);
    /* the anchor: the head record in meta, read in this transaction */
    MDB_val hk = {4, (void *)"head"}, hv;
    file_span f = {NULL, NULL};
    if (mdb_get(txn, log->db_meta, &hk, &hv) == 0) f = data_span(log, hv.mv_data);
    for (unsigned a = 0; a < log->napplier && !rc; a++) {
        const tl_applier *ap = &log->appliers[a];
        if (!ap->in_digest) continue;
        for (unsigned i = 0; i < ap->ndbs && !rc; i++) rc = hash_db(&h, txn, ap->dbs[i], ap->db_names[i], &f);
    }
    tl_rtxn_end(log, txn);
    uint8_t out[TL_HASH_BYTES];
    crypto_generichash_final(&h, out, sizeof out);
    if (rc) return rc;
    tl_hex(digest_hex, out, TL_HASH_BYTES);
    return 0;
}
