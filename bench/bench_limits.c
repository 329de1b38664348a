/*
 * bench_limits.c - the machine's own limits, measured in the same run as the
 * threadlog figures that are reported as ratios to them (SPEC §6).
 *
 * threadlog's append path is: encode an event (~136 bytes of msgpack), hash
 * it into the chain, sign it (64-byte ed25519 signature), and append the
 * ~200-byte record to LMDB under an 8-byte big-endian sequence key.  Its read
 * path scans the log and verifies.  So the ceilings that matter are:
 *
 *   - ed25519 sign and verify rates, on 1 and 2 threads (libsodium);
 *   - BLAKE2b-256 of one event;
 *   - raw LMDB appends of same-size records with MDB_APPEND: one synced
 *     transaction per record (the single-client commit latency), 1,000 per
 *     synced transaction (the batched ceiling), and 1,000 per transaction
 *     with MDB_NOSYNC (what the B-tree itself can take);
 *   - a raw cursor scan of the whole database, with and without hashing
 *     each value.
 *
 * Each figure is the median of --runs runs; latencies pool the samples of all
 * runs.  Loops that wait on the disk stop at a sample count or a time budget,
 * whichever comes first, because an fsync costs anything from 0.1 to 10+ ms
 * depending on the machine and the whole program must stay under about a
 * minute (--quick: about 15 s).  Every run works in a fresh temp directory
 * under $TMPDIR (default /tmp), removed at the end of the run; set TMPDIR to
 * the disk the threadlog figures use, or the ratios compare two disks.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The signature stored beside each event; the rest of a record is the
 * event itself, so --record-bytes 200 means a 136-byte event. */
#define SIG_BYTES crypto_sign_BYTES
#define HASH_BYTES 32            /* BLAKE2b-256, as the chain uses */
#define VERIFY_SET 64            /* distinct signed events cycled by verify */
#define MAP_SIZE ((size_t)1 << 30)
#define BATCH 1000

/* Sizes of one run.  Disk-bound loops also have a time budget. */
typedef struct sizes {
    double crypto_s;      /* seconds per sign / verify / hash measurement */
    size_t sync1_max;     /* batch-1 synced commits, at most */
    double sync1_budget;  /* ... or this many seconds */
    size_t sync1k_max;    /* batch-1,000 synced commits, at most */
    double sync1k_budget; /* ... or this many seconds */
    size_t nosync_bytes;  /* payload written unsynced, sets the scanned size */
    size_t nosync_max;    /* unsynced records, at most */
    double scan_min;      /* scan passes repeat until this many seconds */
} sizes;

static const sizes FULL = { 0.3, 500, 1.0, 40, 1.0, 64u << 20, 200000, 0.2 };
static const sizes QUICK = { 0.08, 60, 0.25, 10, 0.3, 16u << 20, 50000, 0.05 };

/* The medians are taken over one slot per run of each of these. */
enum {
    M_SIGN1, M_SIGN2, M_VERIFY1, M_VERIFY2, M_HASH,
    M_APPEND1, M_APPEND1K, M_APPEND_NOSYNC, M_SCAN, M_SCAN_HASH,
    M_COUNT
};

typedef struct state {
    bench_opts opts;
    sizes sz;
    size_t event_bytes;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char *verify_msgs; /* VERIFY_SET events of event_bytes */
    unsigned char *verify_sigs; /* and their signatures */
    unsigned char *record;      /* one record of record_bytes, reused */
    double *results[M_COUNT];   /* [metric][run] */
    bench_lat lat_append1;      /* per-commit latency, batch 1, synced */
    bench_lat lat_append1k;     /* per-commit latency, batch 1,000, synced */
} state;

/* A value the optimiser cannot prove unused, so scans really read. */
static volatile unsigned sink;

#define MDB_CHECK(call)                                                     \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != MDB_SUCCESS)                                             \
            bench_die("%s: %s", #call, mdb_strerror(rc_));                  \
    } while (0)

/* ---- ed25519 and BLAKE2b -------------------------------------------------- */

typedef struct worker {
    const state *st;
    uint64_t t0_ns;       /* common start, so stragglers count against us */
    uint64_t deadline_ns; /* stop starting new chunks after this */
    uint64_t end_ns;      /* when this worker finished its last chunk */
    size_t seed;          /* makes each worker's events distinct */
    size_t ops;
    int verify;
    int failed;
} worker;

/* Ops between clock reads: small against the run, large against the cost of
 * reading the clock (~20 ns against ~15-50 us per op). */
#define CHUNK 64

static void *crypto_worker(void *arg)
{
    worker *w = arg;
    const state *st = w->st;
    size_t eb = st->event_bytes;
    unsigned char msg[4096];
    unsigned char sig[SIG_BYTES];
    size_t k = w->seed;

    memcpy(msg, st->verify_msgs, eb);
    do {
        for (int i = 0; i < CHUNK; i++, k++) {
            if (w->verify) {
                size_t j = k % VERIFY_SET;
                if (crypto_sign_verify_detached(
                        st->verify_sigs + j * SIG_BYTES,
                        st->verify_msgs + j * eb, eb, st->pk) != 0)
                    w->failed = 1;
            } else {
                /* A different event each time, as in a real log. */
                memcpy(msg, &k, sizeof k);
                crypto_sign_detached(sig, NULL, msg, eb, st->sk);
            }
        }
        w->ops += CHUNK;
        w->end_ns = bench_now_ns();
    } while (w->end_ns < w->deadline_ns);
    return NULL;
}

/*
 * ops/s of signing (or verifying) on nthreads threads for the run's crypto
 * time.  Time-bounded rather than count-bounded so the run costs the same on
 * a fast and a slow machine; the rate is all ops over the time until the last
 * thread finished, so an unfairly scheduled thread lowers the figure, as it
 * would lower threadlog's.
 */
static double crypto_rate(const state *st, int nthreads, int verify)
{
    worker w[2];
    pthread_t tid[2];
    uint64_t t0 = bench_now_ns();
    uint64_t deadline = t0 + (uint64_t)(st->sz.crypto_s * 1e9);

    for (int t = 0; t < nthreads; t++)
        w[t] = (worker){ st, t0, deadline, t0, (size_t)t << 24, 0, verify, 0 };
    if (nthreads == 1) {
        crypto_worker(&w[0]);
    } else {
        for (int t = 0; t < nthreads; t++)
            if (pthread_create(&tid[t], NULL, crypto_worker, &w[t]) != 0)
                bench_die("pthread_create failed");
        for (int t = 0; t < nthreads; t++)
            pthread_join(tid[t], NULL);
    }

    size_t done = 0;
    uint64_t end = t0;
    for (int t = 0; t < nthreads; t++) {
        if (w[t].failed)
            bench_die("a signature failed to verify");
        done += w[t].ops;
        if (w[t].end_ns > end)
            end = w[t].end_ns;
    }
    return (double)done / ((double)(end - t0) / 1e9);
}

static double hash_rate(const state *st)
{
    unsigned char msg[4096];
    unsigned char out[HASH_BYTES];
    size_t k = 0;
    memcpy(msg, st->verify_msgs, st->event_bytes);

    uint64_t t0 = bench_now_ns();
    uint64_t deadline = t0 + (uint64_t)(st->sz.crypto_s * 1e9);
    uint64_t now;
    do {
        /* A hash is ~0.5 us, so a bigger chunk between clock reads. */
        for (int i = 0; i < 64 * CHUNK; i++, k++) {
            memcpy(msg, &k, sizeof k);
            crypto_generichash(out, sizeof out, msg, st->event_bytes, NULL, 0);
        }
        now = bench_now_ns();
    } while (now < deadline);
    sink ^= out[0];
    return (double)k / ((double)(now - t0) / 1e9);
}

/* ---- raw LMDB ------------------------------------------------------------- */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* Opens a fresh environment in its own subdirectory of dir, with a named
 * database as threadlog uses: a named DB's root lives in the main DB, which
 * each commit also rewrites, so a raw figure without one would flatter. */
static MDB_env *lmdb_open(const char *dir, const char *sub, unsigned flags,
                          MDB_dbi *dbi)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (mkdir(path, 0700) != 0)
        bench_die("mkdir %s: %s", path, strerror(errno));

    MDB_env *env;
    MDB_txn *txn;
    MDB_CHECK(mdb_env_create(&env));
    MDB_CHECK(mdb_env_set_maxdbs(env, 4));
    MDB_CHECK(mdb_env_set_mapsize(env, MAP_SIZE));
    MDB_CHECK(mdb_env_open(env, path, flags, 0600));
    /* Create the DB outside the timed region: only appends are measured. */
    MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
    MDB_CHECK(mdb_dbi_open(txn, "log", MDB_CREATE, dbi));
    MDB_CHECK(mdb_txn_commit(txn));
    return env;
}

/*
 * Appends records seq = 1, 2, ... in transactions of per_txn records until
 * max_txns transactions or budget_s seconds (at least min_txns), recording
 * each commit's latency in lat when given.  Returns records per second.
 */
static double lmdb_append(state *st, MDB_env *env, MDB_dbi dbi,
                          size_t per_txn, size_t max_txns, size_t min_txns,
                          double budget_s, bench_lat *lat, size_t *out_count)
{
    unsigned char key[8];
    MDB_val k = { sizeof key, key };
    MDB_val v = { st->opts.record_bytes, st->record };
    uint64_t seq = 0;
    size_t txns = 0;

    uint64_t t0 = bench_now_ns();
    while (txns < max_txns) {
        if (txns >= min_txns && bench_since_s(t0) >= budget_s)
            break;
        uint64_t c0 = bench_now_ns();
        MDB_txn *txn;
        MDB_CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        for (size_t i = 0; i < per_txn; i++) {
            seq++;
            put_be64(key, seq);
            memcpy(st->record, &seq, sizeof seq); /* values differ too */
            MDB_CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND));
        }
        MDB_CHECK(mdb_txn_commit(txn));
        if (lat)
            bench_lat_add(lat, bench_now_ns() - c0);
        txns++;
    }
    double s = bench_since_s(t0);
    if (out_count)
        *out_count = (size_t)seq;
    return (double)seq / s;
}

/*
 * Scans the whole DB with MDB_NEXT, pass after pass until min_s seconds have
 * gone by (one scan of an in-cache DB can take only milliseconds, too short
 * to time on a noisy machine).  Without hashing, one byte per 64-byte cache
 * line of each value is read, so the value is really brought in but the
 * figure stays the B-tree walk's, not a memory-bandwidth test.
 */
static double lmdb_scan(MDB_env *env, MDB_dbi dbi, int hash, double min_s)
{
    size_t seen = 0;
    unsigned acc = 0;
    unsigned char out[HASH_BYTES];

    uint64_t t0 = bench_now_ns();
    do {
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val k, v;
        MDB_CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
        MDB_CHECK(mdb_cursor_open(txn, dbi, &cur));
        int rc;
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
            const unsigned char *p = v.mv_data;
            if (hash) {
                crypto_generichash(out, sizeof out, p, v.mv_size, NULL, 0);
                acc ^= out[0];
            } else {
                for (size_t i = 0; i < v.mv_size; i += 64)
                    acc += p[i];
            }
            seen++;
        }
        if (rc != MDB_NOTFOUND)
            bench_die("mdb_cursor_get: %s", mdb_strerror(rc));
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
    } while (bench_since_s(t0) < min_s);
    double s = bench_since_s(t0);
    sink ^= acc;
    return (double)seen / s;
}

/* ---- one run -------------------------------------------------------------- */

static void run_once(state *st, int r)
{
    const sizes *sz = &st->sz;

    st->results[M_SIGN1][r] = crypto_rate(st, 1, 0);
    st->results[M_SIGN2][r] = crypto_rate(st, 2, 0);
    st->results[M_VERIFY1][r] = crypto_rate(st, 1, 1);
    st->results[M_VERIFY2][r] = crypto_rate(st, 2, 1);
    st->results[M_HASH][r] = hash_rate(st);

    char *dir = bench_tmpdir_make("tl-bench-limits-");
    MDB_env *env;
    MDB_dbi dbi;

    /* (a) one synced transaction per record: LMDB's default durability,
     * which syncs the data pages and then the meta page on every commit. */
    env = lmdb_open(dir, "sync1", 0, &dbi);
    st->results[M_APPEND1][r] =
        lmdb_append(st, env, dbi, 1, sz->sync1_max, 20, sz->sync1_budget,
                    &st->lat_append1, NULL);
    mdb_env_close(env);

    /* (b) 1,000 records per synced transaction. */
    env = lmdb_open(dir, "sync1k", 0, &dbi);
    st->results[M_APPEND1K][r] =
        lmdb_append(st, env, dbi, BATCH, sz->sync1k_max, 3, sz->sync1k_budget,
                    &st->lat_append1k, NULL);
    mdb_env_close(env);

    /* (c) 1,000 per transaction, no sync: the B-tree's own ceiling.  Its
     * DB, written in full regardless of time, is the one scanned below. */
    size_t n = sz->nosync_bytes / st->opts.record_bytes;
    if (n > sz->nosync_max)
        n = sz->nosync_max;
    size_t txns = (n + BATCH - 1) / BATCH;
    size_t count = 0;
    env = lmdb_open(dir, "nosync", MDB_NOSYNC, &dbi);
    st->results[M_APPEND_NOSYNC][r] =
        lmdb_append(st, env, dbi, BATCH, txns, txns, 0.0, NULL, &count);

    st->results[M_SCAN][r] = lmdb_scan(env, dbi, 0, sz->scan_min);
    st->results[M_SCAN_HASH][r] = lmdb_scan(env, dbi, 1, sz->scan_min);
    mdb_env_close(env);

    bench_tmpdir_remove(dir);
    fprintf(stderr, "  run %d/%d done (%zu records scanned per pass)\n", r + 1,
            st->opts.runs, count);
}

static bench_spread last_spread; /* of the latest median_of */

static double median_of(state *st, int m)
{
    return bench_median_spread(st->results[m], (size_t)st->opts.runs, &last_spread);
}

int main(int argc, char **argv)
{
    static state st; /* large-ish and zeroed; one per process */
    bench_parse_args(&st.opts, argc, argv, NULL, 0);
    st.sz = st.opts.quick ? QUICK : FULL;

    if (sodium_init() < 0)
        bench_die("sodium_init failed");

    /* The record is event + signature; a record too small to hold a
     * signature is all event. */
    size_t rb = st.opts.record_bytes;
    st.event_bytes = rb > SIG_BYTES + 16 ? rb - SIG_BYTES : rb;

    st.record = malloc(rb);
    st.verify_msgs = malloc(VERIFY_SET * st.event_bytes);
    st.verify_sigs = malloc(VERIFY_SET * SIG_BYTES);
    for (int m = 0; m < M_COUNT; m++)
        st.results[m] = calloc((size_t)st.opts.runs, sizeof(double));
    if (!st.record || !st.verify_msgs || !st.verify_sigs)
        bench_die("out of memory");
    for (int m = 0; m < M_COUNT; m++)
        if (!st.results[m])
            bench_die("out of memory");

    /* Random contents: nothing on the path compresses, but identical
     * records would still flatter caches and branch predictors. */
    randombytes_buf(st.record, rb);
    randombytes_buf(st.verify_msgs, VERIFY_SET * st.event_bytes);
    crypto_sign_keypair(st.pk, st.sk);
    for (size_t j = 0; j < VERIFY_SET; j++)
        crypto_sign_detached(st.verify_sigs + j * SIG_BYTES, NULL,
                             st.verify_msgs + j * st.event_bytes,
                             st.event_bytes, st.sk);

    fprintf(stderr,
            "bench_limits: %d run(s)%s, record %zu bytes, signed event %zu bytes, "
            "temp dirs under %s\n",
            st.opts.runs, st.opts.quick ? ", quick" : "", rb, st.event_bytes,
            getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");

    uint64_t t0 = bench_now_ns();
    for (int r = 0; r < st.opts.runs; r++)
        run_once(&st, r);

    bench_report_spread("limits.ed25519_sign.1t", median_of(&st, M_SIGN1), "ops/s", &last_spread);
    bench_report_spread("limits.ed25519_sign.2t", median_of(&st, M_SIGN2), "ops/s", &last_spread);
    bench_report_spread("limits.ed25519_verify.1t", median_of(&st, M_VERIFY1), "ops/s", &last_spread);
    bench_report_spread("limits.ed25519_verify.2t", median_of(&st, M_VERIFY2), "ops/s", &last_spread);
    bench_report_spread("limits.blake2b256", median_of(&st, M_HASH), "ops/s", &last_spread);
    bench_report_lat_spread("limits.lmdb_append.batch1.sync", median_of(&st, M_APPEND1), "records/s", bench_lat_pct_us(&st.lat_append1, 50), bench_lat_pct_us(&st.lat_append1, 99), &last_spread);
    bench_report_lat_spread("limits.lmdb_append.batch1000.sync", median_of(&st, M_APPEND1K), "records/s", bench_lat_pct_us(&st.lat_append1k, 50), bench_lat_pct_us(&st.lat_append1k, 99), &last_spread);
    bench_report_spread("limits.lmdb_append.batch1000.nosync", median_of(&st, M_APPEND_NOSYNC), "records/s", &last_spread);
    bench_report_spread("limits.lmdb_scan", median_of(&st, M_SCAN), "records/s", &last_spread);
    bench_report_spread("limits.lmdb_scan_hash", median_of(&st, M_SCAN_HASH), "records/s", &last_spread);
    /* The same samples as batch1.sync, stated as what one synced commit
     * costs, since that is the floor under any single-client append. */
    bench_report_lat("limits.lmdb_commit.sync",
                     bench_lat_pct_us(&st.lat_append1, 50), "us",
                     bench_lat_pct_us(&st.lat_append1, 50),
                     bench_lat_pct_us(&st.lat_append1, 99));
    fprintf(stderr, "bench_limits: %.1f s\n", bench_since_s(t0));

    sodium_memzero(st.sk, sizeof st.sk);
    bench_lat_free(&st.lat_append1);
    bench_lat_free(&st.lat_append1k);
    for (int m = 0; m < M_COUNT; m++)
        free(st.results[m]);
    free(st.record);
    free(st.verify_msgs);
    free(st.verify_sigs);
    return 0;
}
