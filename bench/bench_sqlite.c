/*
 * bench_sqlite.c - the peer: what a careful application gets from SQLite for
 * the same job threadlog does, measured in the same run.
 *
 * The setup is the one a reasonable engineer would pick for a durable event
 * log in SQLite: WAL journal, PRAGMA synchronous=FULL (the WAL is synced on
 * every commit, so a committed row survives power loss, as a threadlog append
 * does), and a table events(seq INTEGER PRIMARY KEY, rec BLOB) holding
 * records of the same size as threadlog's (--record-bytes, default 200: a
 * ~136-byte event plus its 64-byte signature).  The peer neither encodes nor
 * signs: it is the storage half only, the figure to beat.
 *
 * Default mode, each the median of --runs runs:
 *   - batch 1: one transaction per row, rows/s and per-commit p50/p99;
 *   - batch 1,000: rows per second with 1,000 rows per transaction;
 *   - read back: SELECT in seq order over the batch-1,000 table, rows/s.
 * --threads N mode (the peer of threadlog's concurrent-client figure):
 *   N threads, each on its own connection with a busy timeout, each inserting
 *   single rows in their own transactions; total rows/s and p50/p99 of one
 *   insert including its wait for the write lock.
 *
 * Loops that wait on the disk stop at a row count or a time budget, whichever
 * comes first, so the program stays bounded on a slow disk.  Every run works
 * in a fresh temp directory under $TMPDIR (default /tmp), removed at the end
 * of the run.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000
#define BUSY_TIMEOUT_MS 10000 /* far above any wait a healthy run sees */

typedef struct sizes {
    size_t b1_max;      /* batch-1 commits, at most */
    double b1_budget;   /* ... or this many seconds */
    size_t b1k_max;     /* batch-1,000 transactions, at most */
    double b1k_budget;  /* ... or this many seconds */
    double read_min;    /* read passes repeat until this many seconds */
    size_t conc_max;    /* concurrent mode: total rows, at most */
    double conc_budget; /* ... or this many seconds */
} sizes;

static const sizes FULL = { 500, 1.0, 40, 1.0, 0.2, 1000, 2.0 };
static const sizes QUICK = { 60, 0.25, 10, 0.3, 0.05, 150, 0.5 };

static bench_opts opts;
static sizes sz;
static unsigned char *record_template; /* random bytes, record_bytes long */

/* A value the optimiser cannot prove unused, so reads really read. */
static volatile unsigned sink;

/* ---- connection helpers --------------------------------------------------- */

static void check(sqlite3 *db, int rc, int want, const char *what)
{
    if (rc != want)
        bench_die("%s: %s (%d)", what, db ? sqlite3_errmsg(db) : "?", rc);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        bench_die("%s: %s", sql, err ? err : "?");
}

/*
 * Opens a connection configured as the peer is defined: WAL, synchronous=FULL
 * and a busy timeout.  NOMUTEX because each connection is used by one thread
 * only; SQLite's own locking between connections still applies.
 */
static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    check(db, rc, SQLITE_OK, "sqlite3_open_v2");
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);

    /* journal_mode answers with the mode really in force; a filesystem
     * without shared memory would silently keep a rollback journal. */
    sqlite3_stmt *st;
    check(db, sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL),
          SQLITE_OK, "prepare journal_mode");
    check(db, sqlite3_step(st), SQLITE_ROW, "PRAGMA journal_mode");
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0)
        bench_die("journal_mode is %s, not wal", mode ? mode : "?");
    sqlite3_finalize(st);

    exec(db, "PRAGMA synchronous=FULL");
    exec(db, "CREATE TABLE IF NOT EXISTS events"
             "(seq INTEGER PRIMARY KEY, rec BLOB)");
    return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, sql);
    return st;
}

/* Inserts one row with the prepared INSERT; seq 0 lets SQLite pick the
 * rowid (max + 1), as concurrent clients that share a table must. */
static void insert_row(sqlite3 *db, sqlite3_stmt *ins, unsigned char *rec,
                       uint64_t seq)
{
    memcpy(rec, &seq, sizeof seq); /* rows differ, as events do */
    if (seq)
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)seq);
    else
        sqlite3_bind_null(ins, 1);
    sqlite3_bind_blob(ins, 2, rec, (int)opts.record_bytes, SQLITE_STATIC);
    check(db, sqlite3_step(ins), SQLITE_DONE, "INSERT");
    sqlite3_reset(ins);
}

static unsigned char *new_record(void)
{
    unsigned char *rec = malloc(opts.record_bytes);
    if (!rec)
        bench_die("out of memory");
    memcpy(rec, record_template, opts.record_bytes);
    return rec;
}

/* ---- single connection ---------------------------------------------------- */

/*
 * Inserts rows seq = 1, 2, ... in transactions of per_txn rows until max_txns
 * transactions or budget_s seconds (at least min_txns), recording each
 * transaction's latency in lat when given.  Returns rows per second.  A
 * batch of one is a plain autocommit INSERT: that is one transaction, and
 * what an application writing one event at a time would issue.
 */
static double insert_rows(sqlite3 *db, size_t per_txn, size_t max_txns,
                          size_t min_txns, double budget_s, bench_lat *lat)
{
    sqlite3_stmt *ins = prepare(db, "INSERT INTO events(seq, rec) VALUES(?,?)");
    sqlite3_stmt *begin = prepare(db, "BEGIN IMMEDIATE");
    sqlite3_stmt *commit = prepare(db, "COMMIT");
    unsigned char *rec = new_record();
    uint64_t seq = 0;
    size_t txns = 0;

    uint64_t t0 = bench_now_ns();
    while (txns < max_txns) {
        if (txns >= min_txns && bench_since_s(t0) >= budget_s)
            break;
        uint64_t c0 = bench_now_ns();
        if (per_txn > 1) {
            check(db, sqlite3_step(begin), SQLITE_DONE, "BEGIN");
            sqlite3_reset(begin);
        }
        for (size_t i = 0; i < per_txn; i++)
            insert_row(db, ins, rec, ++seq);
        if (per_txn > 1) {
            check(db, sqlite3_step(commit), SQLITE_DONE, "COMMIT");
            sqlite3_reset(commit);
        }
        if (lat)
            bench_lat_add(lat, bench_now_ns() - c0);
        txns++;
    }
    double s = bench_since_s(t0);

    free(rec);
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    return (double)seq / s;
}

/*
 * Reads every row back in seq order, pass after pass until min_s seconds (one
 * pass over an in-cache table can be too short to time).  One byte per
 * 64-byte cache line of each blob is read, so the blob is really fetched.
 */
static double read_rows(sqlite3 *db, double min_s, size_t *out_rows)
{
    sqlite3_stmt *sel = prepare(db, "SELECT seq, rec FROM events ORDER BY seq");
    size_t seen = 0, per_pass = 0;
    unsigned acc = 0;
    int rc;

    uint64_t t0 = bench_now_ns();
    do {
        per_pass = 0;
        while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
            const unsigned char *p = sqlite3_column_blob(sel, 1);
            int n = sqlite3_column_bytes(sel, 1);
            acc += (unsigned)sqlite3_column_int64(sel, 0);
            for (int i = 0; i < n; i += 64)
                acc += p[i];
            per_pass++;
        }
        check(db, rc, SQLITE_DONE, "SELECT");
        sqlite3_reset(sel);
        seen += per_pass;
    } while (bench_since_s(t0) < min_s);
    double s = bench_since_s(t0);

    sink ^= acc;
    sqlite3_finalize(sel);
    *out_rows = per_pass;
    return (double)seen / s;
}

/* ---- concurrent clients --------------------------------------------------- */

typedef struct client {
    const char *path;
    atomic_size_t *left;  /* rows still to insert, shared by all clients */
    uint64_t deadline_ns; /* no new row after this */
    size_t rows;
    bench_lat lat;
    uint64_t end_ns;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    /* Each client opens its own connection, as separate processes would;
     * opening is outside the timed inserts' latency but inside the wall
     * time, which starts before the threads do. */
    sqlite3 *db = db_open(c->path);
    sqlite3_stmt *ins = prepare(db, "INSERT INTO events(seq, rec) VALUES(?,?)");
    unsigned char *rec = new_record();

    for (;;) {
        /* Claim one row of the shared quota; stop when it is spent. */
        size_t left = atomic_load(c->left);
        while (left > 0 && !atomic_compare_exchange_weak(c->left, &left,
                                                         left - 1))
            ;
        if (left == 0 || bench_now_ns() >= c->deadline_ns)
            break;
        uint64_t t = bench_now_ns();
        insert_row(db, ins, rec, 0);
        bench_lat_add(&c->lat, bench_now_ns() - t);
        c->rows++;
    }
    c->end_ns = bench_now_ns();

    free(rec);
    sqlite3_finalize(ins);
    check(db, sqlite3_close(db), SQLITE_OK, "sqlite3_close");
    return NULL;
}

static double concurrent_run(const char *path, int nthreads, bench_lat *all)
{
    /* Create the table and switch to WAL once, before the clock starts, so
     * the clients do not race on schema creation. */
    sqlite3 *db = db_open(path);
    check(db, sqlite3_close(db), SQLITE_OK, "sqlite3_close");

    client *cs = calloc((size_t)nthreads, sizeof *cs);
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    if (!cs || !tid)
        bench_die("out of memory");
    atomic_size_t left;
    atomic_init(&left, sz.conc_max);

    uint64_t t0 = bench_now_ns();
    uint64_t deadline = t0 + (uint64_t)(sz.conc_budget * 1e9);
    for (int t = 0; t < nthreads; t++) {
        cs[t] = (client){ path, &left, deadline, 0, (bench_lat)BENCH_LAT_INIT,
                          t0 };
        if (pthread_create(&tid[t], NULL, client_main, &cs[t]) != 0)
            bench_die("pthread_create failed");
    }
    size_t rows = 0;
    uint64_t end = t0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(tid[t], NULL);
        rows += cs[t].rows;
        if (cs[t].end_ns > end)
            end = cs[t].end_ns;
        for (size_t i = 0; i < cs[t].lat.n; i++)
            bench_lat_add(all, cs[t].lat.ns[i]);
        bench_lat_free(&cs[t].lat);
    }
    free(cs);
    free(tid);
    return (double)rows / ((double)(end - t0) / 1e9);
}

/* ---- main ----------------------------------------------------------------- */

static void db_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

int main(int argc, char **argv)
{
    bench_parse_args(&opts, argc, argv,
                     "  --threads N       concurrent-clients mode: N threads,"
                     " one connection each\n",
                     1);
    sz = opts.quick ? QUICK : FULL;

    record_template = malloc(opts.record_bytes);
    double *r1 = calloc((size_t)opts.runs, sizeof *r1);
    double *r1k = calloc((size_t)opts.runs, sizeof *r1k);
    double *rread = calloc((size_t)opts.runs, sizeof *rread);
    if (!record_template || !r1 || !r1k || !rread)
        bench_die("out of memory");
    /* Random bytes, not zeros: nothing on the path compresses, but the
     * record should still look like a signed event to every layer. */
    srand(12345);
    for (size_t i = 0; i < opts.record_bytes; i++)
        record_template[i] = (unsigned char)(rand() >> 7);

    fprintf(stderr,
            "bench_sqlite: SQLite %s, WAL, synchronous=FULL, %d run(s)%s, "
            "record %zu bytes, ",
            sqlite3_libversion(), opts.runs, opts.quick ? ", quick" : "",
            opts.record_bytes);
    if (opts.threads)
        fprintf(stderr, "%d concurrent clients, ", opts.threads);
    fprintf(stderr, "temp dirs under %s\n",
            getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");

    bench_lat lat1 = BENCH_LAT_INIT, lat1k = BENCH_LAT_INIT;
    char path[4096];
    uint64_t t0 = bench_now_ns();

    for (int r = 0; r < opts.runs; r++) {
        char *dir = bench_tmpdir_make("tl-bench-sqlite-");
        if (opts.threads) {
            db_path(path, sizeof path, dir, "conc.db");
            r1[r] = concurrent_run(path, opts.threads, &lat1);
            fprintf(stderr, "  run %d/%d done\n", r + 1, opts.runs);
        } else {
            sqlite3 *db;
            size_t rows = 0;

            db_path(path, sizeof path, dir, "b1.db");
            db = db_open(path);
            r1[r] = insert_rows(db, 1, sz.b1_max, 20, sz.b1_budget, &lat1);
            check(db, sqlite3_close(db), SQLITE_OK, "sqlite3_close");

            db_path(path, sizeof path, dir, "b1k.db");
            db = db_open(path);
            r1k[r] = insert_rows(db, BATCH, sz.b1k_max, 3, sz.b1k_budget,
                                 &lat1k);
            rread[r] = read_rows(db, sz.read_min, &rows);
            check(db, sqlite3_close(db), SQLITE_OK, "sqlite3_close");
            fprintf(stderr, "  run %d/%d done (%zu rows read per pass)\n",
                    r + 1, opts.runs, rows);
        }
        bench_tmpdir_remove(dir);
    }

    if (opts.threads) {
        char what[64];
        snprintf(what, sizeof what, "sqlite.insert.concurrent.%dt",
                 opts.threads);
        bench_spread sp;
        double med = bench_median_spread(r1, (size_t)opts.runs, &sp);
        bench_report_lat_spread(what, med, "rows/s", bench_lat_pct_us(&lat1, 50),
                                bench_lat_pct_us(&lat1, 99), &sp);
    } else {
        bench_spread sp;
        double med = bench_median_spread(r1, (size_t)opts.runs, &sp);
        bench_report_lat_spread("sqlite.insert.batch1", med, "rows/s",
                                bench_lat_pct_us(&lat1, 50),
                                bench_lat_pct_us(&lat1, 99), &sp);
        med = bench_median_spread(r1k, (size_t)opts.runs, &sp);
        bench_report_lat_spread("sqlite.insert.batch1000", med, "rows/s",
                                bench_lat_pct_us(&lat1k, 50),
                                bench_lat_pct_us(&lat1k, 99), &sp);
        med = bench_median_spread(rread, (size_t)opts.runs, &sp);
        bench_report_spread("sqlite.read_seq", med, "rows/s", &sp);
    }
    fprintf(stderr, "bench_sqlite: %.1f s\n", bench_since_s(t0));

    bench_lat_free(&lat1);
    bench_lat_free(&lat1k);
    free(r1);
    free(r1k);
    free(rread);
    free(record_template);
    return 0;
}
