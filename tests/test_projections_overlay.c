/*
 * test_projections_overlay.c — the write-back buffer in front of a projection database
 * (projections/overlay.c), driven directly on a fresh log's unread database and checked
 * against a plain model of the database: a map from key to value, changed by each put, delete
 * and counter step as LMDB would be. Keys with a tag no projection uses (0xf0), of 1 to 40
 * bytes, many sharing their first 8 or 16 bytes or being prefixes of one another; values that
 * grow, shrink and come back after a delete. Three transactions: the first writes into the
 * empty database (all appends, more than 256 keys), the second changes it in the middle and
 * past its end, the third starts by writing the key the second buffered last. After each
 * commit the database must hold exactly the model.
 */
#include "test_projections_fixture.h"

#include "log.h"
#include "proj.h"

#define OV_KEYS 700

typedef struct { uint8_t k[40]; size_t kn; uint8_t v[64]; size_t vn; bool in; } ov_slot;

static void ov_key(tlp_key *k, const ov_slot *e) { memcpy(k->b, e->k, e->kn); k->n = e->kn; }

static void ov_put(tl_wtxn *w, tlp_ovl *o, ov_slot *e, const uint8_t *v, size_t n, bool absent) {
    tlp_key k;
    ov_key(&k, e);
    ck_assert_int_eq(absent ? tlp_ovl_put_absent(w, o, &k, v, n) : tlp_ovl_put(w, o, &k, v, n), 0);
    memcpy(e->v, v, n);
    e->vn = n;
    e->in = true;
}

static void ov_del(tl_wtxn *w, tlp_ovl *o, ov_slot *e) {
    tlp_key k;
    ov_key(&k, e);
    ck_assert_int_eq(tlp_ovl_del(w, o, &k), 0);
    e->in = false;
}

static void ov_add(tl_wtxn *w, tlp_ovl *o, ov_slot *e, int64_t d) {
    tlp_key k;
    ov_key(&k, e);
    uint64_t cur = e->in ? tl_seq_from_key(e->v) : 0;
    ck_assert_msg(!e->in || e->vn == 8, "a counter key holds another value");
    ck_assert_int_eq(tlp_ovl_add_u64(w, o, &k, d), 0);
    uint64_t next = d < 0 ? (cur > (uint64_t)-d ? cur - (uint64_t)-d : 0) : cur + (uint64_t)d;
    e->in = next != 0; /* zero counters are absent */
    e->vn = 8;
    tl_seq_key(e->v, next);
}

/* What the buffer reads for e is what the model holds. */
static void ov_expect_get(tl_wtxn *w, tlp_ovl *o, const ov_slot *e) {
    tlp_key k;
    ov_key(&k, e);
    MDB_val v;
    int rc = tlp_ovl_get(w, o, &k, &v);
    if (!e->in) {
        ck_assert_msg(rc == TL_ENOTFOUND, "a deleted key reads back (rc %d)", rc);
        return;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(v.mv_size, e->vn);
    ck_assert_msg(memcmp(v.mv_data, e->v, e->vn) == 0, "a buffered value reads back changed");
}

static int ov_cmp(const void *a, const void *b) {
    const ov_slot *x = *(ov_slot *const *)a, *y = *(ov_slot *const *)b;
    size_t n = x->kn < y->kn ? x->kn : y->kn;
    int c = memcmp(x->k, y->k, n);
    return c ? c : (x->kn > y->kn) - (x->kn < y->kn);
}

/* The database holds exactly the model's keys present, in order, with their values. */
static void ov_expect_db(tl_log *log, MDB_dbi db, ov_slot *m, int n, const char *when) {
    ov_slot *sorted[OV_KEYS];
    int ns = 0;
    for (int i = 0; i < n; i++)
        if (m[i].in) sorted[ns++] = &m[i];
    qsort(sorted, (size_t)ns, sizeof *sorted, ov_cmp);
    MDB_txn *t;
    MDB_cursor *c;
    ck_assert_int_eq(mdb_txn_begin(log->env, NULL, MDB_RDONLY, &t), 0);
    ck_assert_int_eq(mdb_cursor_open(t, db, &c), 0);
    MDB_val k, v;
    int i = 0, rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), i++) {
        ck_assert_msg(i < ns, "%s: the database holds more than %d keys", when, ns);
        const ov_slot *e = sorted[i];
        ck_assert_msg(k.mv_size == e->kn && memcmp(k.mv_data, e->k, e->kn) == 0, "%s: key %d differs", when, i);
        ck_assert_msg(v.mv_size == e->vn && memcmp(v.mv_data, e->v, e->vn) == 0, "%s: the value of key %d differs", when, i);
    }
    ck_assert_int_eq(rc, MDB_NOTFOUND);
    ck_assert_msg(i == ns, "%s: the database holds %d keys, the model %d", when, i, ns);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
}

START_TEST(the_buffer_writes_what_the_model_holds) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tlp_ovl *o = tlp_ovl_of(log, "unread");
    ck_assert_ptr_nonnull(o);
    MDB_dbi db = 0;
    for (unsigned a = 0; a < log->napplier; a++)
        if (strcmp(log->appliers[a].name, "unread") == 0) db = log->appliers[a].dbs[0];
    static ov_slot m[OV_KEYS];
    memset(m, 0, sizeof m);
    uint64_t r = 0x9e3779b97f4a7c15ull;
#define OV_RAND() (r ^= r << 13, r ^= r >> 7, r ^= r << 17, r)
    for (int i = 0; i < OV_KEYS; i++) { /* keys: groups sharing 8 or 16 bytes, prefixes of each other */
        ov_slot *e = &m[i];
        e->k[0] = 0xf0;
        for (int b = 1; b < 40; b++) e->k[b] = (uint8_t)(b < 8 ? (i / 100) : b < 16 ? (i / 10) % 4 : (int)(OV_RAND() % 3));
        bool longer = i % 7 == 0 && i && m[i - 1].kn < 40;
        e->kn = longer ? m[i - 1].kn + 1 : 1 + OV_RAND() % 40;
        if (longer) memcpy(e->k, m[i - 1].k, m[i - 1].kn); /* the previous key and one byte more */
        for (int j = 0; j < i; j++)
            if (m[j].kn == e->kn && memcmp(m[j].k, e->k, e->kn) == 0) { /* no two alike */
                e->k[e->kn - 1]++;
                j = -1;
            }
    }
    uint8_t v[64];
    for (int t = 0; t < 3; t++) {
        tl_wtxn *w;
        ck_assert_int_eq(tl_wtxn_begin(log, &w), 0);
        if (t == 2) { /* the key the last transaction buffered last, first */
            for (size_t b = 0; b < sizeof v; b++) v[b] = (uint8_t)(0x30 + b);
            ov_put(w, o, &m[OV_KEYS - 1], v, 20, false);
        }
        int from = t == 0 ? 0 : t == 1 ? OV_KEYS / 2 : 0, to = t == 1 ? OV_KEYS : OV_KEYS - 1;
        for (int i = from; i < to; i++) {
            ov_slot *e = &m[i];
            if (i % 5 == 4) { /* a counter */
                if (e->in && e->vn != 8) ov_del(w, o, e);
                if (i % 3 == 0 && t > 0) { /* read from the database, to zero: gone from it */
                    ov_add(w, o, e, -1000);
                    ov_expect_get(w, o, e);
                    continue;
                }
                ov_add(w, o, e, 3);
                ov_add(w, o, e, -1);
                if (i % 3 == 1) ov_add(w, o, e, -1000); /* to zero within the buffer */
                if (i % 3 == 1 && i % 2) ov_add(w, o, e, 1); /* back from a deleted entry */
                ov_expect_get(w, o, e);
                continue;
            }
            size_t n = 1 + OV_RAND() % 60;
            for (size_t b = 0; b < n; b++) v[b] = (uint8_t)OV_RAND();
            switch ((i + t) % 6) {
            case 0: /* put, then a shorter value: the length shrinks */
                ov_put(w, o, e, v, n, false);
                ov_put(w, o, e, v + 1, n > 1 ? n - 1 : 1, false);
                break;
            case 1: /* put, then a longer one */
                ov_put(w, o, e, v, n / 2 + 1, !e->in);
                ov_put(w, o, e, v, n, false);
                break;
            case 2: /* put and deleted again */
                ov_put(w, o, e, v, n, !e->in);
                ov_del(w, o, e);
                break;
            case 3: /* deleted, then put again */
                ov_del(w, o, e);
                ov_expect_get(w, o, e);
                ov_put(w, o, e, v, n, false);
                break;
            case 4: /* deleted (it may not be there) */
                ov_del(w, o, e);
                break;
            default: /* a value of the same length, changed */
                ov_put(w, o, e, v, n, false);
                v[n - 1] ^= 0xff;
                ov_put(w, o, e, v, n, false);
                break;
            }
            ov_expect_get(w, o, e);
        }
        if (t == 1) { /* buffered last: a key not yet in the database */
            for (size_t b = 0; b < sizeof v; b++) v[b] = (uint8_t)(0x60 + b);
            ov_put(w, o, &m[OV_KEYS - 1], v, 10, !m[OV_KEYS - 1].in);
        }
        for (int i = 0; i < OV_KEYS; i += 13) ov_expect_get(w, o, &m[i]); /* buffered or read through */
        ck_assert_msg(tl_wtxn_commit(w) == 0, "commit %d: %s", t, tl_errdetail());
        char when[32];
        snprintf(when, sizeof when, "transaction %d", t);
        ov_expect_db(log, db, m, OV_KEYS, when);
    }
#undef OV_RAND
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_overlay");
    TCase *tc = tcase_create("buffer");
    tcase_add_test(tc, the_buffer_writes_what_the_model_holds);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
