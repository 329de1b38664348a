/*
 * bench_util.h - the little that every threadlog benchmark program shares.
 *
 * Benchmarks report figures as ratios to the machine's own limits measured in
 * the same run (SPEC §6), so every program must measure and print the same way:
 * a monotonic clock, latency samples reduced to p50/p99, the median of R runs
 * as the headline value, and one machine-readable line per measurement on
 * stdout (a human-readable twin goes to stderr).  Keeping this in one place is
 * what makes the figures of different programs comparable.
 *
 * Nothing here is threadlog API; it is only linked into the bench programs.
 */
#ifndef THREADLOG_BENCH_UTIL_H
#define THREADLOG_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall-clock time in nanoseconds (CLOCK_MONOTONIC). */
uint64_t bench_now_ns(void);

/* Seconds elapsed since a bench_now_ns() reading. */
double bench_since_s(uint64_t start_ns);

/*
 * A latency recorder: a growable array of samples in nanoseconds.  Samples
 * from several runs may be pooled into one recorder, which gives the p99 of
 * a few hundred synced commits more samples to stand on than one run would.
 */
typedef struct bench_lat {
    uint64_t *ns;
    size_t n;
    size_t cap;
    int sorted;
} bench_lat;

#define BENCH_LAT_INIT { NULL, 0, 0, 0 }

/* Records one sample; aborts the program if memory runs out. */
void bench_lat_add(bench_lat *lat, uint64_t ns);

/* The p-th percentile (0 <= p <= 100) in microseconds, nearest-rank;
 * 0 when there are no samples.  Sorts the samples in place. */
double bench_lat_pct_us(bench_lat *lat, double p);

/* Samples per second of their summed time: one client's measured throughput (the time of
 * every sample, not an estimate from a percentile); 0 when there are no samples. */
double bench_lat_rate(const bench_lat *lat);

/* Frees the samples; the recorder may be reused afterwards.  NULL is fine. */
void bench_lat_free(bench_lat *lat);

/* Median of n doubles (n >= 1); sorts v in place. */
double bench_median(double *v, size_t n);

/* The spread of a median: the lowest and highest of the runs it was taken from. */
typedef struct bench_spread {
    double lo, hi;
    size_t runs;
} bench_spread;

/* bench_median, also filling *s (which may be NULL). */
double bench_median_spread(double *v, size_t n, bench_spread *s);

/*
 * Creates a fresh directory "<$TMPDIR or /tmp>/<prefix>XXXXXX" and returns its
 * path (owned by the caller, free with bench_tmpdir_remove).  Every directory
 * made here is also removed at exit, so a benchmark that fails half-way does
 * not leave databases behind.  Aborts the program on failure.
 */
char *bench_tmpdir_make(const char *prefix);

/* Removes the directory recursively and frees path.  NULL is fine. */
void bench_tmpdir_remove(char *path);

/* Options shared by all bench programs. */
typedef struct bench_opts {
    int runs;            /* --runs N, default 5 */
    int quick;           /* --quick: smaller sizes */
    size_t record_bytes; /* --record-bytes N, default 200 */
    int threads;         /* --threads N, 0 when not given */
} bench_opts;

/*
 * Parses the common flags into opts; prints usage and exits on --help or an
 * unknown flag.  allow_threads says whether --threads is meaningful.
 */
void bench_parse_args(bench_opts *opts, int argc, char **argv,
                      const char *usage_extra, int allow_threads);

/*
 * Prints one measurement: {"what":..,"value":..,"unit":..} on stdout and a
 * human line on stderr.  bench_report_lat adds "p50_us"/"p99_us".
 */
void bench_report(const char *what, double value, const char *unit);
void bench_report_lat(const char *what, double value, const char *unit,
                      double p50_us, double p99_us);
/* The same with the runs' spread: adds "min", "max" and "runs" (s may be NULL). */
void bench_report_spread(const char *what, double value, const char *unit,
                         const bench_spread *s);
void bench_report_lat_spread(const char *what, double value, const char *unit,
                             double p50_us, double p99_us, const bench_spread *s);

/* Prints "fatal: <msg>" to stderr and exits (temp dirs are still removed). */
void bench_die(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

#endif /* THREADLOG_BENCH_UTIL_H */
