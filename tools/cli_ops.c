/*
 * cli_ops.c — the operator's and the auditor's long-running commands: replay (rebuild every
 * projection from the log, in place or into a copy as of a moment) and export (a project's,
 * an account's or the whole log's history, checkable without threadlog).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ---------------------------------------------------------------- replay */

typedef struct progress {
    struct timespec start;
    bool shown;
} progress;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* On a terminal only: done/total, the rate so far and the time left at that rate. */
static void replay_progress(uint64_t done, uint64_t total, void *payload) {
    progress *p = payload;
    double s = since(&p->start);
    double rate = s > 0 ? (double)done / s : 0;
    double left = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\rreplay: %llu/%llu events  %.0f events/s  about %.0f s left   ", (unsigned long long)done,
            (unsigned long long)total, rate, left);
    p->shown = true;
}

/* --until-time: integer microseconds since the epoch, or ISO 8601 UTC
 * (2025-03-01T12:00:00Z, optionally with .ffffff fractions). A time at or before the epoch is
 * valid, and 0: before any log. */
static bool parse_time(const char *s, uint64_t *out) {
    char *end;
    if (*s >= '0' && *s <= '9' && !strchr(s, '-') && !strchr(s, ':')) {
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end || errno == ERANGE) return false; /* not clamped to the largest value */
        *out = v;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return false;
    uint64_t micros = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 6) micros = micros * 10 + (uint64_t)(*p - '0');
        if (!digits) return false;
        for (; digits < 6; digits++) micros *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0) return false;
    struct tm asked = tm;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && tm.tm_year != 69) return false;
    /* timegm normalises (November 31st is December 1st, :60 the next minute): a date that
     * does not exist is refused, not moved */
    if (tm.tm_year != asked.tm_year || tm.tm_mon != asked.tm_mon || tm.tm_mday != asked.tm_mday ||
        tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min || tm.tm_sec != asked.tm_sec)
        return false;
    *out = t < 0 ? 0 : (uint64_t)t * 1000000u + micros;
    return true;
}

/* The report has no digest: ask again to show why (honestly, not a made-up value), on the
 * open log when the replay was in place (this process may hold one handle per log), else on
 * the copy in dir. */
static void print_digest_failure(cli_ctx *ctx, tl_log *open_log, const char *dir) {
    if (ctx->json) return; /* the JSON report says "digest":null; the reason is for people */
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log = open_log;
    char hex[TL_PUBKEY_HEX_SIZE];
    int rc = log ? 0 : tl_log_open(&log, dir, &o);
    if (!rc) {
        rc = tl_digest(log, hex);
        if (log != open_log) tl_log_close(log);
    }
    if (!ctx->json) fprintf(stderr, "digest: unavailable (%s: %s)\n", tl_strerror(rc), tl_errdetail());
}

/*
 * `replay --until-*` in place is a preview. The live projections must keep covering the whole
 * log (its later events are there, and the next append builds on them), so the state of that
 * moment is built in a temporary copy beside the log (LOG.until-XXXXXX, a replay --into), its
 * digest printed, and the copy removed: at the end, and on SIGINT, SIGTERM and SIGHUP, since
 * the copy holds message bodies that a later erasure in the live log would not reach.
 */
static char preview_dir[PATH_MAX], preview_data[PATH_MAX + 16], preview_lock[PATH_MAX + 16];
static char preview_build[PATH_MAX + 32], preview_build_data[PATH_MAX + 48], preview_build_lock[PATH_MAX + 48];

static bool preview_remove(void) {
    /* LMDB's two files (replay --into writes no other), in the copy's build subdirectory
     * (while it is being built) or in the copy itself */
    unlink(preview_build_data);
    unlink(preview_build_lock);
    rmdir(preview_build);
    unlink(preview_data);
    unlink(preview_lock);
    return rmdir(preview_dir) == 0 || errno == ENOENT;
}

static void preview_on_signal(int sig) {
    preview_remove(); /* unlink and rmdir are async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int preview_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void preview_guard(bool on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? preview_on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof preview_signals / sizeof preview_signals[0]; i++)
        sigaction(preview_signals[i], &sa, NULL);
}

/* Make LOG.until-XXXXXX beside the log's real path; 0, or the refusal already printed. */
static int preview_make(cli_ctx *ctx, tl_log *log) {
    char real[PATH_MAX];
    if (!realpath(ctx->dir, real)) return cli_error(ctx, TL_ESTORAGE, "cannot resolve the log's path");
    if (!strcmp(real, "/")) return cli_usage(ctx, "the log is at /: a preview has no room beside it; use --into DIR");
    if (strlen(real) + sizeof ".until-XXXXXX/lock.mdb" > sizeof preview_dir)
        return cli_usage(ctx, "the log's path is too long for a preview beside it; use --into DIR");
    /* The copy shares the live log's disk: the compacted copy and the projections it rebuilds
     * take up to twice the data file. Refused rather than fill the disk the live log appends
     * to (64 MiB of slack on top). */
    tl_log_stats st;
    struct statvfs fs;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", real);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = 0;
    else if (slash) *slash = 0;
    if (tl_log_stats_get(log, &st) == 0 && statvfs(parent, &fs) == 0) {
        unsigned long long need = 2ull * st.file_bytes + (64ull << 20), have = (unsigned long long)fs.f_bavail * fs.f_frsize;
        if (have < need) {
            char why[256];
            snprintf(why, sizeof why, "a preview needs about %llu MiB free beside the log, there are %llu MiB: use --into DIR on another disk",
                     need >> 20, have >> 20);
            return cli_error(ctx, TL_ESTORAGE, why);
        }
    }
    snprintf(preview_dir, sizeof preview_dir, "%s.until-XXXXXX", real);
    preview_guard(true); /* before the directory exists: no window where a signal leaves it */
    if (!mkdtemp(preview_dir)) {
        preview_guard(false);
        char why[PATH_MAX + 128];
        snprintf(why, sizeof why, "cannot create a temporary copy beside the log (%s): %s", preview_dir, strerror(errno));
        preview_dir[0] = 0;
        return cli_error(ctx, TL_ESTORAGE, why);
    }
    snprintf(preview_data, sizeof preview_data, "%s/data.mdb", preview_dir);
    snprintf(preview_lock, sizeof preview_lock, "%s/lock.mdb", preview_dir);
    snprintf(preview_build, sizeof preview_build, "%s/.threadlog-building.%ld", preview_dir, (long)getpid()); /* TL_COPY_BUILD.PID, replay_copy.c */
    snprintf(preview_build_data, sizeof preview_build_data, "%s/data.mdb", preview_build);
    snprintf(preview_build_lock, sizeof preview_build_lock, "%s/lock.mdb", preview_build);
    return 0;
}

static int cmd_replay(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    unsigned long long until_seq, threads;
    if (!cli_flag_u64(ctx, "until-seq", &until_seq, 0) || !cli_flag_u64(ctx, "threads", &threads, 2)) return CLI_FAILED;
    const char *until_time = cli_flag(ctx, "until-time");
    if (until_time && !parse_time(until_time, &o.until_ts))
        return cli_usage(ctx, "--until-time takes microseconds since the epoch or an ISO 8601 UTC time "
                              "(2025-03-01T12:00:00Z), not \"%s\"", until_time);
    if (until_time && !o.until_ts) return cli_usage(ctx, "--until-time is before the log was created");
    if (cli_flag(ctx, "until-seq") && !until_seq) return cli_usage(ctx, "--until-seq starts at 1 (the genesis)");
    if (!threads || threads > 16) return cli_usage(ctx, "--threads takes 1 to 16");
    o.until_seq = until_seq;
    o.into_dir = cli_flag(ctx, "into");
    if (o.into_dir && !*o.into_dir) return cli_usage(ctx, "--into needs a directory");
    /* as for -d, a word starting with '-' is never taken for the directory (`--into --verify`
     * made a copy named "--verify"): write ./-name */
    if (o.into_dir && o.into_dir[0] == '-')
        return cli_usage(ctx, "--into needs a directory, not \"%s\" (write ./%s)", o.into_dir, o.into_dir);
    o.verify = cli_switch(ctx, "verify");
    o.threads = (unsigned)threads;
    bool preview = !o.into_dir && (o.until_seq || o.until_ts);
    progress prog;
    clock_gettime(CLOCK_MONOTONIC, &prog.start);
    prog.shown = false;
    if (isatty(STDERR_FILENO)) {
        o.progress = replay_progress;
        o.progress_payload = &prog;
    }
    tl_log *log;
    /* a copy only reads the source: no writer key needed, writers are not held up */
    int rc = cli_open(ctx, &log, o.into_dir || preview ? TL_OPEN_READONLY : 0);
    if (rc) return rc;
    if (preview) {
        if ((rc = preview_make(ctx, log)) != 0) {
            tl_log_close(log);
            return rc;
        }
        o.into_dir = preview_dir;
    }
    tl_replay_report r;
    rc = tl_replay(log, &o, &r);
    if (prog.shown) fprintf(stderr, "\n");
    if (preview) {
        if (!preview_remove()) fprintf(stderr, "threadlog replay: could not remove the temporary copy %s: %s\n", preview_dir, strerror(errno));
        preview_guard(false);
        o.into_dir = NULL;
    }
    int out = CLI_OK;
    if (rc == TL_ECORRUPT && r.verify.first_bad_seq) {
        if (ctx->json) {
            printf("{\"ok\":false,\"error\":\"corrupt\",\"first_bad_seq\":%llu,\"message\":",
                   (unsigned long long)r.verify.first_bad_seq);
            cli_json_string(stdout, r.verify.reason);
            printf("}\n");
        } else
            fprintf(stderr, "FAILED at event %llu: %s (nothing was replaced)\n",
                    (unsigned long long)r.verify.first_bad_seq, r.verify.reason);
        out = CLI_FAILED;
    } else if (rc == TL_EUSAGE) {
        out = cli_usage(ctx, "%s", tl_errdetail());
    } else if (rc) {
        out = cli_error(ctx, rc, tl_errdetail());
    } else {
        double rate = r.seconds > 0 ? (double)r.events / r.seconds : 0;
        if (ctx->json) {
            printf("{\"ok\":true,\"events\":%llu,\"seconds\":%.3f,\"events_per_second\":%.0f,\"verified\":%s,"
                   "\"verified_events\":%llu,\"contents\":%llu,\"preview\":%s,\"into\":",
                   (unsigned long long)r.events, r.seconds, rate, o.verify ? "true" : "false",
                   (unsigned long long)r.verify.events, (unsigned long long)r.verify.contents, preview ? "true" : "false");
            if (o.into_dir) cli_json_string(stdout, o.into_dir);
            else printf("null");
            printf(",\"digest\":");
            if (r.digest[0]) printf("\"%s\"}\n", r.digest);
            else printf("null}\n");
        } else {
            printf("replayed %llu events%s%s in %.2f s (%.0f events/s)%s\n", (unsigned long long)r.events,
                   o.into_dir ? " into " : preview ? " in a temporary copy" : " in place", o.into_dir ? o.into_dir : "",
                   r.seconds, rate, o.verify ? ", chain, signatures and content verified" : "");
            if (preview)
                printf("the digest is the state's as of event %llu; the copy is removed and the live projections, "
                       "which cover the whole log, are unchanged\n",
                       (unsigned long long)r.events);
            if (r.digest[0]) printf("digest %s\n", r.digest);
        }
        if (!r.digest[0] && preview && !ctx->json) fprintf(stderr, "digest: unavailable (the copy is removed)\n");
        else if (!r.digest[0]) print_digest_failure(ctx, o.into_dir ? NULL : log, o.into_dir);
    }
    tl_log_close(log);
    return out;
}

/* ---------------------------------------------------------------- export */

typedef struct export_file {
    FILE *f;
    char *tmp;         /* the temporary file's path */
    bool write_failed; /* a line could not be written */
} export_file;

/* export's line callback; a failed write is noted, so the command can tell it from a failed
 * read of the log (both are TL_ESTORAGE from tl_export) */
static int write_line(const char *line, size_t len, void *payload) {
    export_file *x = payload;
    if (fwrite(line, 1, len, x->f) != len || fputc('\n', x->f) == EOF) {
        x->write_failed = true;
        return TL_ESTORAGE;
    }
    return 0;
}

/*
 * `export -o FILE` writes a hidden temporary file beside FILE (".FILE.partial-XXXXXX"),
 * syncs it, then gives it FILE's name without ever replacing a file (renameat2's
 * RENAME_NOREPLACE, or link() where that is not supported). So FILE appears only complete:
 * a failed or killed export never leaves a partial history under the name an auditor will
 * read, nor a file that makes the retry's -o refuse (a killed one leaves only the hidden
 * temporary file).
 */
static int export_file_open(export_file *x, const char *path, char *why, size_t whylen) {
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    x->f = NULL;
    x->tmp = malloc(dirlen + strlen(base) + 32);
    if (!x->tmp) return snprintf(why, whylen, "out of memory"), TL_ENOMEM;
    sprintf(x->tmp, "%.*s.%s.partial-XXXXXX", (int)dirlen, path, base);
    mode_t mask = umask(0);
    umask(mask);
    int fd = mkstemp(x->tmp);
    if (fd < 0) {
        snprintf(why, whylen, "cannot create a file beside %.400s: %s", path, strerror(errno));
        free(x->tmp);
        x->tmp = NULL;
        return TL_ESTORAGE;
    }
    (void)fchmod(fd, 0666 & ~mask); /* as a plain create would make it */
    x->f = fdopen(fd, "wb");
    if (!x->f) {
        close(fd);
        unlink(x->tmp);
        free(x->tmp);
        x->tmp = NULL;
        return snprintf(why, whylen, "out of memory"), TL_ENOMEM;
    }
    return 0;
}

/* Sync the temporary file and give it its name (0), or remove it (failed: rc given). */
static int export_file_finish(export_file *x, const char *path, int rc, char *why, size_t whylen) {
    if (!rc && (fflush(x->f) != 0 || fsync(fileno(x->f)) != 0)) {
        snprintf(why, whylen, "cannot write the export: %s", strerror(errno));
        rc = TL_ESTORAGE;
    }
    if (fclose(x->f) != 0 && !rc) {
        snprintf(why, whylen, "cannot write the export: %s", strerror(errno));
        rc = TL_ESTORAGE;
    }
    if (!rc) {
        int r = renameat2(AT_FDCWD, x->tmp, AT_FDCWD, path, RENAME_NOREPLACE);
        if (r != 0 && (errno == EINVAL || errno == ENOSYS)) { /* no RENAME_NOREPLACE here */
            r = link(x->tmp, path);
        }
        if (r != 0) {
            rc = errno == EEXIST ? TL_EEXISTS : TL_ESTORAGE;
            if (errno == EEXIST) snprintf(why, whylen, "%.400s already exists (the export never overwrites a file)", path);
            else snprintf(why, whylen, "cannot name the export %.400s: %s", path, strerror(errno));
        }
    }
    unlink(x->tmp); /* after a link, or on failure; after a rename it is gone already */
    free(x->tmp);
    x->tmp = NULL;
    return rc;
}

static int cmd_export(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_export_options o = TL_EXPORT_OPTIONS_INIT;
    o.project = cli_flag(ctx, "project");
    o.account = cli_flag(ctx, "account");
    const char *format = cli_flag(ctx, "format");
    if (o.project && o.account) return cli_usage(ctx, "give --project or --account, not both");
    if ((o.project && !*o.project) || (o.account && !*o.account)) return cli_usage(ctx, "--project/--account need an id");
    if (!format || strcmp(format, "jsonl") == 0) o.format = TL_EXPORT_JSONL;
    else if (strcmp(format, "csv") == 0) o.format = TL_EXPORT_CSV;
    else return cli_usage(ctx, "--format is jsonl or csv, not \"%s\"", format);
    const char *path = cli_flag(ctx, "o");
    if (path && !*path) return cli_usage(ctx, "-o needs a file name");
    /* nor for the file: `export -o --json` wrote the history to a file named "--json" */
    if (path && path[0] == '-') return cli_usage(ctx, "-o needs a file name, not \"%s\" (write ./%s)", path, path);
    char why[512];
    struct stat st;
    /* an existing file is never overwritten: the operator named the wrong one (checked again,
     * atomically, when the export is given its name) */
    if (path && lstat(path, &st) == 0) {
        snprintf(why, sizeof why, "%.400s already exists (the export never overwrites a file)", path);
        return cli_error(ctx, TL_EEXISTS, why);
    }
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    export_file x = {stdout, NULL, false};
    if (path && (rc = export_file_open(&x, path, why, sizeof why)) != 0) {
        tl_log_close(log);
        return cli_error(ctx, rc, why);
    }
    rc = tl_export(log, &o, write_line, &x);
    char detail[512];
    snprintf(detail, sizeof detail, "%s", rc ? tl_errdetail() : "");
    tl_log_close(log);
    if (path) {
        snprintf(why, sizeof why, "cannot write the export");
        int frc = export_file_finish(&x, path, rc, why, sizeof why);
        if (!rc && frc) return cli_error(ctx, frc, why);
    } else if (fflush(stdout) != 0 && !rc) {
        rc = TL_ESTORAGE;
    }
    if (rc == TL_ESTORAGE && (x.write_failed || !detail[0])) return cli_error(ctx, rc, "cannot write the export");
    if (rc) return cli_error(ctx, rc, detail);
    return CLI_OK;
}

const cli_command cli_ops_commands[] = {
    {"replay", cmd_replay, "replay [--verify] [--threads N] [--into DIR] [--until-seq N] [--until-time T] [--json]",
     "rebuild every projection from the log, in place or into DIR; as of event N / time T (in place, a\n"
     "                 preview: built in a temporary copy, the live projections unchanged; with both, the\n"
     "                 earlier); print the digest. Always checks sequence, chain, time, genesis, key chain\n"
     "                 and the head record; --verify adds signatures, content commitments and meta's\n"
     "                 genesis copies, as verify does; --threads N: 1 to 16, default 2"},
    {"export", cmd_export, "export [--project P | --account A] [--format jsonl|csv] [-o FILE]",
     "a project's, an account's or the whole log's history, checkable by tools/verify_export.py"},
    {NULL, NULL, NULL, NULL},
};
