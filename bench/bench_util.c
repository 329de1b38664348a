/*
 * bench_util.c - clock, latency percentiles, medians, temp dirs and result
 * lines shared by the bench programs (see bench_util.h for the contracts).
 *
 * The temp-dir registry exists because a benchmark that fails half-way (a
 * failed LMDB or SQLite call ends in bench_die -> exit) should still not
 * leave tens of megabytes of databases under /tmp: every directory made here
 * is remembered and removed again by an atexit hook unless it was already
 * removed explicitly.  A kill by signal skips atexit; no handler is installed
 * because recursive removal is not async-signal-safe.  The registry is only
 * touched from the main thread.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_since_s(uint64_t start_ns)
{
    return (double)(bench_now_ns() - start_ns) / 1e9;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    fputs("fatal: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2); /* runs the atexit hook, which removes temp dirs */
}

/* ---- latency recorder ---------------------------------------------------- */

void bench_lat_add(bench_lat *lat, uint64_t ns)
{
    if (lat->n == lat->cap) {
        size_t cap = lat->cap ? lat->cap * 2 : 1024;
        uint64_t *p = realloc(lat->ns, cap * sizeof *p);
        if (!p)
            bench_die("out of memory for latency samples");
        lat->ns = p;
        lat->cap = cap;
    }
    lat->ns[lat->n++] = ns;
    lat->sorted = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double bench_lat_rate(const bench_lat *lat)
{
    uint64_t total = 0;
    for (size_t i = 0; i < lat->n; i++)
        total += lat->ns[i];
    return total ? (double)lat->n * 1e9 / (double)total : 0.0;
}

double bench_lat_pct_us(bench_lat *lat, double p)
{
    if (lat->n == 0)
        return 0.0;
    if (!lat->sorted) {
        qsort(lat->ns, lat->n, sizeof lat->ns[0], cmp_u64);
        lat->sorted = 1;
    }
    /* Nearest rank: the smallest sample with at least p% of samples <= it.
     * No interpolation, so a p99 is always a latency that really happened. */
    size_t rank = (size_t)((p / 100.0) * (double)lat->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > lat->n)
        rank = lat->n;
    return (double)lat->ns[rank - 1] / 1000.0;
}

void bench_lat_free(bench_lat *lat)
{
    if (!lat)
        return;
    free(lat->ns);
    lat->ns = NULL;
    lat->n = lat->cap = 0;
    lat->sorted = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp_double);
    if (n % 2)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double bench_median_spread(double *v, size_t n, bench_spread *s)
{
    double m = bench_median(v, n);
    if (s) {
        s->lo = v[0];
        s->hi = v[n - 1];
        s->runs = n;
    }
    return m;
}

/* ---- temp dirs ----------------------------------------------------------- */

#define MAX_TMPDIRS 64

static char *tmpdirs[MAX_TMPDIRS];
static int atexit_armed;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "warning: cannot remove %s: %s\n", path,
                strerror(errno));
    return 0; /* keep going: remove as much as possible */
}

static void rm_tree(const char *path)
{
    /* FTW_DEPTH visits children before their directory; FTW_PHYS never
     * follows a symlink out of the tree. */
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_all_tmpdirs(void)
{
    for (int i = 0; i < MAX_TMPDIRS; i++) {
        if (tmpdirs[i]) {
            rm_tree(tmpdirs[i]);
            free(tmpdirs[i]);
            tmpdirs[i] = NULL;
        }
    }
}

char *bench_tmpdir_make(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t len = strlen(base) + 1 + strlen(prefix) + 6 + 1;
    char *path = malloc(len);
    if (!path)
        bench_die("out of memory");
    snprintf(path, len, "%s/%sXXXXXX", base, prefix);
    if (!mkdtemp(path))
        bench_die("mkdtemp %s: %s", path, strerror(errno));

    if (!atexit_armed) {
        atexit(remove_all_tmpdirs);
        atexit_armed = 1;
    }
    int slot = -1;
    for (int i = 0; i < MAX_TMPDIRS && slot < 0; i++)
        if (!tmpdirs[i])
            slot = i;
    if (slot < 0) {
        rm_tree(path);
        bench_die("too many temp dirs at once");
    }
    tmpdirs[slot] = strdup(path);
    if (!tmpdirs[slot]) {
        rm_tree(path);
        bench_die("out of memory");
    }
    return path;
}

void bench_tmpdir_remove(char *path)
{
    if (!path)
        return;
    rm_tree(path);
    for (int i = 0; i < MAX_TMPDIRS; i++) {
        if (tmpdirs[i] && strcmp(tmpdirs[i], path) == 0) {
            free(tmpdirs[i]);
            tmpdirs[i] = NULL;
            break;
        }
    }
    free(path);
}

/* ---- options --------------------------------------------------------------- */

static void usage(FILE *out, const char *prog, const char *extra,
                  int allow_threads)
{
    fprintf(out,
            "usage: %s [--runs N] [--quick] [--record-bytes N]%s\n"
            "  --runs N          runs per measurement, median reported (default 5)\n"
            "  --quick           smaller sizes, for a fast check\n"
            "  --record-bytes N  record size in bytes (default 200)\n"
            "%s"
            "Results: one JSON object per line on stdout, human text on stderr.\n"
            "Temp databases go under $TMPDIR (default /tmp): point it at the\n"
            "disk you want measured.\n",
            prog, allow_threads ? " [--threads N]" : "",
            extra ? extra : "");
}

static long parse_long(const char *prog, const char *flag, const char *s,
                       long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s ? s : "", &end, 10);
    if (!s || errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "%s: %s wants an integer in [%ld, %ld]\n", prog, flag,
                min, max);
        exit(2);
    }
    return v;
}

void bench_parse_args(bench_opts *opts, int argc, char **argv,
                      const char *usage_extra, int allow_threads)
{
    const char *prog = argc > 0 ? argv[0] : "bench";
    opts->runs = 5;
    opts->quick = 0;
    opts->record_bytes = 200;
    opts->threads = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--runs") == 0) {
            opts->runs = (int)parse_long(prog, a, next, 1, 1000);
            i++;
        } else if (strcmp(a, "--quick") == 0) {
            opts->quick = 1;
        } else if (strcmp(a, "--record-bytes") == 0) {
            /* >= 16 so a record always holds its sequence number and some
             * payload; <= 4096 so a 1,000-record batch stays a few MB. */
            opts->record_bytes = (size_t)parse_long(prog, a, next, 16, 4096);
            i++;
        } else if (allow_threads && strcmp(a, "--threads") == 0) {
            opts->threads = (int)parse_long(prog, a, next, 1, 256);
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, prog, usage_extra, allow_threads);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", prog, a);
            usage(stderr, prog, usage_extra, allow_threads);
            exit(2);
        }
    }
}

/* ---- result lines ---------------------------------------------------------- */

static void put_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

/* A JSON number, or null for a figure that is not finite (a run of zero length). */
static void put_json_number(double v)
{
    if (isfinite(v))
        printf("%.10g", v);
    else
        fputs("null", stdout);
}

static void report(const char *what, double value, const char *unit,
                   int with_lat, double p50_us, double p99_us,
                   const bench_spread *s)
{
    /* ten significant digits: one decimal place lost most of a ratio (0.764 became 0.8) */
    fputs("{\"what\":", stdout);
    put_json_string(what);
    fputs(",\"value\":", stdout);
    put_json_number(value);
    fputs(",\"unit\":", stdout);
    put_json_string(unit);
    if (with_lat) {
        fputs(",\"p50_us\":", stdout);
        put_json_number(p50_us);
        fputs(",\"p99_us\":", stdout);
        put_json_number(p99_us);
    }
    if (s) {
        fputs(",\"min\":", stdout);
        put_json_number(s->lo);
        fputs(",\"max\":", stdout);
        put_json_number(s->hi);
        printf(",\"runs\":%zu", s->runs);
    }
    fputs("}\n", stdout);
    /* Flushed per line so a driver reading a pipe sees each figure as soon
     * as it exists, and a crash later does not lose the earlier ones. */
    fflush(stdout);

    if (with_lat)
        fprintf(stderr, "  %-40s %14.1f %-10s p50 %9.1f us  p99 %9.1f us",
                what, value, unit, p50_us, p99_us);
    else
        fprintf(stderr, value < 10 ? "  %-40s %14.3f %s" : "  %-40s %14.1f %s", what, value, unit);
    if (s)
        fprintf(stderr, value < 10 ? "  (runs %zu: %.3f .. %.3f)" : "  (runs %zu: %.1f .. %.1f)", s->runs, s->lo, s->hi);
    fputc('\n', stderr);
}

void bench_report(const char *what, double value, const char *unit)
{
    report(what, value, unit, 0, 0.0, 0.0, NULL);
}

void bench_report_lat(const char *what, double value, const char *unit,
                      double p50_us, double p99_us)
{
    report(what, value, unit, 1, p50_us, p99_us, NULL);
}

void bench_report_spread(const char *what, double value, const char *unit,
                         const bench_spread *s)
{
    report(what, value, unit, 0, 0.0, 0.0, s);
}

void bench_report_lat_spread(const char *what, double value, const char *unit,
                             double p50_us, double p99_us, const bench_spread *s)
{
    report(what, value, unit, 1, p50_us, p99_us, s);
}
