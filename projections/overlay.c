/*
 * overlay.c — a write-back buffer in front of one projection database, for the duration of
 * one write transaction.
 *
 * Why: the fan-out projections (unread, tracking, dashboard) write a few keys per viewer of
 * every event, scattered over their B-trees. Written straight into LMDB, each of those is a
 * descent through a large transaction's dirty pages, a copy-on-write of pages it has not
 * touched yet and a page search; the profile showed most of `apply` inside those writes.
 * Within a batch many writes hit the same keys (a user's per-type counter, a row's re-keys),
 * and the rest can be written far more cheaply in key order. So the appliers write here: a
 * hash table of the keys the transaction changed (value, or deleted), read through to LMDB
 * for keys it has not seen; at commit (the applier's flush hook) the entries are sorted and
 * written with one cursor walking the tree left to right; on abort they are dropped.
 *
 * Only point operations exist: no applier scans these databases while applying (queries
 * read them in their own read transactions, after the commit). A transaction that buffers
 * more than OVL_MAX_ENTRIES (OVL_REPLAY_MAX_ENTRIES in a replay, one transaction over the
 * whole log) flushes early, at
 * the start of an event, so memory stays bounded and no borrowed value is ever invalidated
 * inside an applier's call.
 */
#include <stdlib.h>

#include "proj.h"

/* How many keys a transaction buffers before writing them out early. Measured, not derived:
 * an in-place replay (one transaction over the whole log) ran ~30% faster with 32k than with
 * 512k — its table's random probes stay in the caches — while the query bench's build
 * (batches of 1,000 commands with wide audiences) ran ~20% slower with 32k or 128k, its hot
 * keys (staff counters, group rows) being written out several times a batch
 * (docs/PROJECTIONS.md). */
#define OVL_MAX_ENTRIES (1u << 19)
#define OVL_REPLAY_MAX_ENTRIES (1u << 15)

typedef struct ovl_entry {
    size_t koff, voff; /* into the arena */
    uint32_t vlen;
    uint16_t klen;
    uint8_t deleted;
    uint8_t absent; /* the database is known not to hold the key: a deletion needs no write */
    uint32_t slot; /* where the hash table points at it */
    uint32_t hlo;  /* the hash's low 32 bits (the slot holds the high ones): growing needs no rehash */
} ovl_entry;

struct tlp_ovl {
    MDB_dbi db;
    MDB_cursor *cur; /* on the current write transaction; closed at flush and discard */
    ovl_entry *e;
    size_t n, cap;
    uint64_t *slot; /* open addressing: 0 empty, else (hash's top 32 bits << 32) | (entry index + 1) */
    size_t nslot;   /* a power of two, at least twice n */
    uint8_t *arena;
    size_t used, acap;
    tlp_ovl_deferred deferred; /* the applier's work done just before the commit's write-out */
};

static uint64_t mix(uint64_t h) { /* splitmix64's finaliser */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static uint64_t hash_key(const uint8_t *p, size_t n) { /* eight bytes at a time */
    uint64_t h = n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        h = mix(h ^ x);
    }
    uint64_t x = 0;
    memcpy(&x, p + i, n - i);
    return mix(h ^ x);
}

static int arena_add(tlp_ovl *o, const void *p, size_t n, size_t *off) {
    if (o->used + n > o->acap) {
        size_t cap = o->acap ? o->acap : 1u << 20;
        while (cap < o->used + n) cap *= 2;
        uint8_t *a = realloc(o->arena, cap);
        if (!a) return tl_fail(TL_ENOMEM, "out of memory (projection buffer)");
        o->arena = a;
        o->acap = cap;
    }
    if (n) memcpy(o->arena + o->used, p, n);
    *off = o->used;
    o->used += n;
    return 0;
}

static int grow_slots(tlp_ovl *o) {
    size_t nslot = o->nslot ? o->nslot * 2 : 1u << 12;
    uint64_t *s = calloc(nslot, sizeof *s);
    if (!s) return tl_fail(TL_ENOMEM, "out of memory (projection buffer)");
    for (size_t i = 0; i < o->n; i++) {
        uint64_t h = (o->slot[o->e[i].slot] & 0xffffffff00000000ull) | o->e[i].hlo;
        size_t j = h & (nslot - 1);
        while (s[j]) j = (j + 1) & (nslot - 1);
        s[j] = (h & 0xffffffff00000000ull) | (i + 1);
        o->e[i].slot = (uint32_t)j;
    }
    free(o->slot);
    o->slot = s;
    o->nslot = nslot;
    return 0;
}

/* The entry of key k (hash h), or NULL; *slot_out receives the slot where it is or would go. */
static ovl_entry *find(tlp_ovl *o, const tlp_key *k, uint64_t h, size_t *slot_out) {
    if (!o->nslot) return NULL;
    size_t j = h & (o->nslot - 1);
    uint64_t tag = h & 0xffffffff00000000ull;
    for (; o->slot[j]; j = (j + 1) & (o->nslot - 1)) {
        if ((o->slot[j] & 0xffffffff00000000ull) != tag) continue;
        ovl_entry *e = &o->e[(o->slot[j] & 0xffffffffu) - 1];
        if (e->klen == k->n && memcmp(o->arena + e->koff, k->b, k->n) == 0) {
            *slot_out = j;
            return e;
        }
    }
    *slot_out = j;
    return NULL;
}

static int cursor(tl_wtxn *w, tlp_ovl *o) {
    if (o->cur) return 0;
    int rc = mdb_cursor_open(w->txn, o->db, &o->cur);
    if (rc) {
        o->cur = NULL;
        return tl_wtxn_fail_mdb(w, rc, "projection cursor");
    }
    return 0;
}

/* A new entry for k (hash h, found absent at slot j). NULL when memory ran out (w failed). */
static ovl_entry *insert(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, uint64_t h, size_t j) {
    if ((o->n + 1) * 2 > o->nslot) {
        if (grow_slots(o)) {
            w->failed = TL_ENOMEM;
            return NULL;
        }
        find(o, k, h, &j);
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        ovl_entry *ne = realloc(o->e, cap * sizeof *ne);
        if (!ne) {
            w->failed = tl_fail(TL_ENOMEM, "out of memory (projection buffer)");
            return NULL;
        }
        o->e = ne;
        o->cap = cap;
    }
    ovl_entry *e = &o->e[o->n];
    memset(e, 0, sizeof *e);
    if (arena_add(o, k->b, k->n, &e->koff)) {
        w->failed = TL_ENOMEM;
        return NULL;
    }
    e->klen = (uint16_t)k->n;
    e->slot = (uint32_t)j;
    e->hlo = (uint32_t)h;
    o->slot[j] = (h & 0xffffffff00000000ull) | ++o->n;
    return e;
}

/* Give e the value v (n bytes), or mark it deleted. */
static int assign(tl_wtxn *w, tlp_ovl *o, ovl_entry *e, const void *v, size_t n, bool deleted) {
    e->deleted = deleted;
    if (deleted) {
        e->vlen = 0;
        return 0;
    }
    if (n <= e->vlen) { /* overwrite in place: a counter or a row keeps its size */
        memcpy(o->arena + e->voff, v, n);
        e->vlen = (uint32_t)n;
        return 0;
    }
    if (arena_add(o, v, n, &e->voff)) return w->failed = TL_ENOMEM;
    e->vlen = (uint32_t)n;
    return 0;
}

void tlp_ovl_prefetch(const tlp_ovl *o, const tlp_key *k) {
    if (!o->nslot) return;
    uint64_t h = hash_key(k->b, k->n);
    __builtin_prefetch(&o->slot[h & (o->nslot - 1)]);
}

/* Set k's entry: value v (n bytes), or deleted. absent: the caller knows the database does
 * not hold k unless the buffer has an entry for it (a new entry is marked so). */
static int set(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, const void *v, size_t n, bool deleted, bool absent) {
    size_t j = 0;
    uint64_t h = hash_key(k->b, k->n);
    ovl_entry *e = find(o, k, h, &j);
    if (!e) {
        if (!(e = insert(w, o, k, h, j))) return w->failed;
        e->absent = absent;
    }
    return assign(w, o, e, v, n, deleted);
}

int tlp_ovl_get(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, MDB_val *v) {
    size_t j = 0;
    ovl_entry *e = find(o, k, hash_key(k->b, k->n), &j);
    if (e) {
        if (e->deleted) return TL_ENOTFOUND;
        v->mv_size = e->vlen;
        v->mv_data = o->arena + e->voff;
        return 0;
    }
    int rc = cursor(w, o);
    if (rc) return rc;
    MDB_val key = {k->n, (void *)k->b};
    rc = mdb_cursor_get(o->cur, &key, v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) return TL_ENOTFOUND;
    if (rc) return tl_wtxn_fail_mdb(w, rc, "read");
    return 0;
}

int tlp_ovl_put(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, const void *v, size_t n) {
    if (w->failed) return w->failed == TL_EMAPFULL ? TL_ESTORAGE : w->failed;
    return set(w, o, k, v, n, false, false);
}

int tlp_ovl_put_absent(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, const void *v, size_t n) {
    if (w->failed) return w->failed == TL_EMAPFULL ? TL_ESTORAGE : w->failed;
    return set(w, o, k, v, n, false, true);
}

int tlp_ovl_del(tl_wtxn *w, tlp_ovl *o, const tlp_key *k) {
    if (w->failed) return w->failed == TL_EMAPFULL ? TL_ESTORAGE : w->failed;
    return set(w, o, k, NULL, 0, true, false);
}

/* One hash lookup for the read and the write: counters are the buffer's hottest keys. */
int tlp_ovl_add_u64(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, int64_t delta) {
    if (w->failed) return w->failed == TL_EMAPFULL ? TL_ESTORAGE : w->failed;
    size_t j = 0;
    uint64_t h = hash_key(k->b, k->n), cur = 0;
    bool in_db = false;
    ovl_entry *e = find(o, k, h, &j);
    if (e && !e->deleted) {
        if (e->vlen != 8) return tl_fail(TL_ECORRUPT, "projection counter is damaged");
        cur = tl_seq_from_key(o->arena + e->voff);
    } else if (!e) {
        int rc = cursor(w, o);
        if (rc) return rc;
        MDB_val key = {k->n, (void *)k->b}, v;
        rc = mdb_cursor_get(o->cur, &key, &v, MDB_SET_KEY);
        if (rc && rc != MDB_NOTFOUND) return tl_wtxn_fail_mdb(w, rc, "read");
        if (!rc) {
            if (v.mv_size != 8) return tl_fail(TL_ECORRUPT, "projection counter is damaged");
            cur = tl_seq_from_key(v.mv_data);
            in_db = true;
        }
    }
    uint64_t next = delta < 0 ? (cur > (uint64_t)-delta ? cur - (uint64_t)-delta : 0) : cur + (uint64_t)delta;
    if (next == cur) return 0;
    if (!e) { /* the database was just read: an absent counter is known absent */
        if (!(e = insert(w, o, k, h, j))) return w->failed;
        e->absent = !in_db;
    }
    uint8_t b[8];
    tl_seq_key(b, next);
    return assign(w, o, e, b, 8, next == 0); /* zero counters are absent (live == replayed) */
}

/* ---------------------------------------------------------------- flush, discard */

/* Sorting: the first 16 key bytes as two big-endian numbers decide most comparisons without
 * touching the arena (keys share a one-byte tag and often an id's first bytes). */
typedef struct sort_item {
    uint64_t hi, lo;
    const ovl_entry *e;
} sort_item;

static uint64_t load_be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) v = v << 8 | (i < n ? p[i] : 0);
    return v;
}

/* x < y in LMDB's default order (mdb_cmp_memn: bytes, then length). */
static inline bool item_less(const uint8_t *arena, const sort_item *x, const sort_item *y) {
    if (x->hi != y->hi) return x->hi < y->hi;
    if (x->lo != y->lo) return x->lo < y->lo;
    size_t n = x->e->klen < y->e->klen ? x->e->klen : y->e->klen;
    int c = n > 16 ? memcmp(arena + x->e->koff + 16, arena + y->e->koff + 16, n - 16) : 0;
    return c ? c < 0 : x->e->klen < y->e->klen;
}

static inline void item_swap(sort_item *a, sort_item *b) {
    sort_item t = *a;
    *a = *b;
    *b = t;
}

static void sift_down(const uint8_t *arena, sort_item *a, size_t root, size_t n) {
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && item_less(arena, &a[child], &a[child + 1])) child++;
        if (!item_less(arena, &a[root], &a[child])) return;
        item_swap(&a[root], &a[child]);
    }
}

/* Introsort with the comparison inlined: qsort's call per comparison through a pointer was
 * ~10% of a replay. Keys are unique, so no three-way partition is needed; past a depth of
 * 2 log2 n (an unlucky order) a range is heapsorted, which bounds the time at n log n. */
static void sort_items(const uint8_t *arena, sort_item *a, size_t n, unsigned depth) {
    while (n > 16) {
        if (depth-- == 0) {
            for (size_t i = n / 2; i-- > 0;) sift_down(arena, a, i, n);
            for (size_t i = n - 1; i > 0; i--) {
                item_swap(&a[0], &a[i]);
                sift_down(arena, a, 0, i);
            }
            return;
        }
        size_t mid = n / 2; /* median of three to a[0] */
        if (item_less(arena, &a[mid], &a[0])) item_swap(&a[mid], &a[0]);
        if (item_less(arena, &a[n - 1], &a[0])) item_swap(&a[n - 1], &a[0]);
        if (item_less(arena, &a[n - 1], &a[mid])) item_swap(&a[n - 1], &a[mid]);
        item_swap(&a[0], &a[mid]); /* pivot in a[0], a[n-1] >= pivot as a sentinel */
        size_t i = 0, j = n;
        for (;;) {
            do i++; while (item_less(arena, &a[i], &a[0]));
            do j--; while (item_less(arena, &a[0], &a[j]));
            if (i >= j) break;
            item_swap(&a[i], &a[j]);
        }
        item_swap(&a[0], &a[j]);
        /* recurse into the smaller side, loop on the larger: the stack stays O(log n) */
        if (j < n - j - 1) {
            sort_items(arena, a, j, depth);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_items(arena, a + j + 1, n - j - 1, depth);
            n = j;
        }
    }
    for (size_t i = 1; i < n; i++) /* insertion sort of the short ranges */
        for (size_t k = i; k > 0 && item_less(arena, &a[k], &a[k - 1]); k--) item_swap(&a[k], &a[k - 1]);
}

static unsigned depth_for(size_t n) {
    unsigned depth = 0;
    for (; n; n >>= 1) depth += 2;
    return depth;
}

/*
 * Sort a[0, n) by key: an LSD radix sort on each key's first eight bytes (hi), which splits
 * the buffer into one run per leading tag and id prefix; the runs (a user's or a project's
 * entries) are then sorted by the whole comparison. A radix pass moves each item once; the
 * comparison sort alone was 12% of a replay's instructions. tmp has room for n items.
 */
static void radix_sort_items(const uint8_t *arena, sort_item *a, sort_item *tmp, size_t n) {
    if (n < 256) {
        sort_items(arena, a, n, depth_for(n));
        return;
    }
    size_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) count[b][(a[i].hi >> (8 * b)) & 0xff]++;
    sort_item *src = a, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        if (count[b][(src[0].hi >> (8 * b)) & 0xff] == n) continue; /* every key has this byte */
        size_t off[256], sum = 0;
        for (int v = 0; v < 256; v++) {
            off[v] = sum;
            sum += count[b][v];
        }
        for (size_t i = 0; i < n; i++) dst[off[(src[i].hi >> (8 * b)) & 0xff]++] = src[i];
        sort_item *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
    for (size_t i = 0, j; i < n; i = j) { /* runs of equal hi: the rest of the key decides */
        for (j = i + 1; j < n && a[j].hi == a[i].hi; j++) {
        }
        if (j - i > 1) sort_items(arena, a + i, j - i, depth_for(j - i));
    }
}

/* Empty the buffer. The table keeps its size (a replay's or a big batch's), so a small commit
 * clears only the slots its entries used instead of the whole table. */
static void clear(tlp_ovl *o) {
    if (o->n * 8 < o->nslot)
        for (size_t i = 0; i < o->n; i++) o->slot[o->e[i].slot] = 0;
    else if (o->n)
        memset(o->slot, 0, o->nslot * sizeof *o->slot);
    o->n = 0;
    o->used = 0;
}

static void forget_cursor(tlp_ovl *o) {
    if (o->cur) mdb_cursor_close(o->cur);
    o->cur = NULL;
}

/* Write every entry into the transaction, in key order, and empty the buffer. */
static int write_out(tl_wtxn *w, tlp_ovl *o) {
    int rc = w->failed;
    if (!rc && o->n) {
        sort_item *items = malloc(2 * o->n * sizeof *items); /* the second half: the radix sort's room */
        if (!items) {
            rc = w->failed = tl_fail(TL_ENOMEM, "out of memory (projection buffer)");
            goto out;
        }
        size_t n = 0;
        for (size_t i = 0; i < o->n; i++) {
            const ovl_entry *e = &o->e[i];
            if (e->deleted && e->absent) continue; /* put and deleted again within the buffer */
            const uint8_t *k = o->arena + e->koff;
            items[n++] = (sort_item){load_be(k, e->klen), e->klen > 8 ? load_be(k + 8, e->klen - 8) : 0, e};
        }
        radix_sort_items(o->arena, items, items + o->n, n);
        rc = cursor(w, o);
        /* Keys past the database's last one are appended: LMDB then fills its rightmost page
         * instead of searching the tree and splitting pages half full. A replay writes into
         * emptied databases, so its first write-out is all appends. */
        MDB_val last_key = {0, NULL}, last_val;
        int lrc = rc ? 0 : mdb_cursor_get(o->cur, &last_key, &last_val, MDB_LAST);
        if (lrc && lrc != MDB_NOTFOUND) rc = tl_wtxn_fail_mdb(w, lrc, "read a projection");
        size_t first_append = lrc == MDB_NOTFOUND ? 0 : n; /* the first key past the last one */
        if (!rc && !lrc) { /* binary search: the sorted keys are compared with the last one */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const ovl_entry *e = items[mid].e;
                size_t m = last_key.mv_size < e->klen ? last_key.mv_size : e->klen;
                int c = memcmp(o->arena + e->koff, last_key.mv_data, m);
                if (c > 0 || (c == 0 && e->klen > last_key.mv_size)) hi = mid;
                else lo = mid + 1;
            }
            first_append = lo;
        }
        for (size_t i = 0; i < n && !rc; i++) {
            const ovl_entry *e = items[i].e;
            MDB_val key = {e->klen, o->arena + e->koff}, val = {e->vlen, o->arena + e->voff};
            int mrc = 0;
            if (i >= first_append) {
                if (!e->deleted) mrc = mdb_cursor_put(o->cur, &key, &val, MDB_APPEND);
            } else if (!e->deleted) {
                mrc = mdb_cursor_put(o->cur, &key, &val, 0);
            } else { /* deleted: it may or may not be in the database below */
                MDB_val old;
                mrc = mdb_cursor_get(o->cur, &key, &old, MDB_SET);
                if (mrc == 0) mrc = mdb_cursor_del(o->cur, 0);
                else if (mrc == MDB_NOTFOUND) mrc = 0;
            }
            if (mrc) rc = tl_wtxn_fail_mdb(w, mrc, "write a projection");
        }
        free(items);
    }
out:
    clear(o);
    forget_cursor(o);
    return rc;
}

/* After a transaction that buffered far more than a batch does (an in-place replay), give
 * the memory back instead of holding it for the rest of the log handle's life. */
#define OVL_KEEP_ENTRIES (1u << 16)

static void shrink(tlp_ovl *o) {
    if (o->cap <= OVL_KEEP_ENTRIES) return;
    free(o->e);
    free(o->slot);
    free(o->arena);
    o->e = NULL;
    o->slot = NULL;
    o->arena = NULL;
    o->cap = o->nslot = o->acap = 0;
}

/* Before any buffer is written out: deferred work may read other projections' buffers. */
int tlp_ovl_prepare(tl_wtxn *w, void *state) {
    tlp_ovl *o = state;
    int rc = o->deferred.run ? o->deferred.run(w, o, o->deferred.ctx) : 0;
    if (rc && !w->failed) w->failed = rc;
    return rc;
}

int tlp_ovl_flush(tl_wtxn *w, void *state) {
    int rc = write_out(w, state);
    shrink(state);
    return rc;
}

void tlp_ovl_discard(void *state) {
    tlp_ovl *o = state;
    if (o->deferred.forget) o->deferred.forget(o->deferred.ctx);
    clear(o);
    forget_cursor(o);
    shrink(o);
}

void tlp_ovl_release(void *state) {
    tlp_ovl *o = state;
    if (!o) return;
    if (o->deferred.release) o->deferred.release(o->deferred.ctx);
    free(o->e);
    free(o->slot);
    free(o->arena);
    free(o);
}

int tlp_ovl_write_out(tl_wtxn *w, tlp_ovl *o) { return write_out(w, o); }

int tlp_ovl_bound(tl_wtxn *w, tlp_ovl *o) {
    return o->n >= (w->replaying ? OVL_REPLAY_MAX_ENTRIES : OVL_MAX_ENTRIES) ? write_out(w, o) : 0;
}

/* ---------------------------------------------------------------- registration */

int tlp_register_buffered(tl_log *log, const char *name, int (*apply)(tl_wtxn *, const tl_event *, void *)) {
    tlp_ovl *o = calloc(1, sizeof *o);
    if (!o) return tl_fail(TL_ENOMEM, "out of memory");
    tl_applier a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.apply = apply;
    int rc = tl_db_open(log, name, 0, &a.dbs[0]);
    if (rc) {
        free(o);
        return rc;
    }
    o->db = a.dbs[0];
    a.db_names[0] = name;
    a.ndbs = 1;
    a.in_digest = true;
    a.state = o;
    a.prepare = tlp_ovl_prepare;
    a.flush = tlp_ovl_flush;
    a.discard = tlp_ovl_discard;
    a.release = tlp_ovl_release;
    if ((rc = tl_log_register(log, &a)) != 0) free(o);
    return rc;
}

void tlp_ovl_set_deferred(tlp_ovl *o, const tlp_ovl_deferred *d) { o->deferred = *d; }

void *tlp_ovl_deferred_ctx(const tlp_ovl *o) { return o->deferred.ctx; }

tlp_ovl *tlp_ovl_of(tl_log *log, const char *applier) {
    for (unsigned i = 0; i < log->napplier; i++)
        if (log->appliers[i].flush == tlp_ovl_flush && strcmp(log->appliers[i].name, applier) == 0)
            return log->appliers[i].state;
    return NULL;
}
