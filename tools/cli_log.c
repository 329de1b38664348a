/*
 * cli_log.c — the log's own commands: init, log (and --follow), verify, checkpoint,
 * key rotate, stats.
 */
#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* path's absolute form: realpath when it exists, else its parent's realpath and its last
 * name (init creates the directory, its parent must exist). NULL when neither resolves. */
static char *absolute_dir(const char *path) {
    char *real = realpath(path, NULL);
    if (real) return real;
    char *copy = strdup(path);
    if (!copy) return NULL;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = 0;
    char *slash = strrchr(copy, '/');
    const char *name = slash ? slash + 1 : copy;
    char *parent = slash ? (slash == copy ? realpath("/", NULL) : (*slash = 0, realpath(copy, NULL))) : realpath(".", NULL);
    char *out = NULL;
    if (parent && *name && strcmp(name, ".") && strcmp(name, "..") &&
        (out = malloc(strlen(parent) + strlen(name) + 2)) != NULL)
        sprintf(out, "%s/%s", strcmp(parent, "/") ? parent : "", name);
    free(parent);
    free(copy);
    return out;
}

/* Whether a and b name one directory, however written (C, ./C, C/, /abs/C). */
static bool same_directory(const char *a, const char *b) {
    char *ra = absolute_dir(a), *rb = absolute_dir(b);
    bool same = ra && rb ? strcmp(ra, rb) == 0 : strcmp(a, b) == 0;
    free(ra);
    free(rb);
    return same;
}

static int cmd_init(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    const char *dir = ctx->args.npos ? ctx->args.pos[0] : ctx->dir;
    if (!dir || !*dir) return cli_usage(ctx, "init needs a directory");
    /* as for -d, a word starting with '-' is never taken for the directory: `init -h` asked for
     * help, and made a log named "-h" (write ./-name for such a directory) */
    if (ctx->args.npos && dir[0] == '-') return cli_usage(ctx, "\"%s\" is not a directory (write ./%s)", dir, dir);
    /* `-d A init B`: which one was meant? (THREADLOG_DIR is only a default: DIR overrides it)
     * The same directory however written (C, ./C, C/) is one. */
    if (ctx->args.npos && ctx->dir_given && !same_directory(ctx->dir, dir))
        return cli_usage(ctx, "-d and init's DIR name two directories");
    unsigned long long max;
    if (!cli_flag_u64(ctx, "max-attachment", &max, TL_DEFAULT_MAX_ATTACHMENT)) return CLI_FAILED;
    /* 0 would be the library's "default": refused, not silently turned into 25 MiB */
    if (!max || max > TL_MAX_ATTACHMENT_LIMIT)
        return cli_usage(ctx, "--max-attachment takes 1 to %llu bytes (zero-byte files are always allowed)",
                         (unsigned long long)TL_MAX_ATTACHMENT_LIMIT);
    tl_init_options o = TL_INIT_OPTIONS_INIT;
    o.max_attachment = max;
    char pk[TL_PUBKEY_HEX_SIZE];
    int rc = tl_log_init(dir, &o, pk);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    if (ctx->json) {
        printf("{\"ok\":true,\"dir\":");
        cli_json_string(stdout, dir);
        /* the limit in force */
        printf(",\"public_key\":\"%s\",\"max_attachment\":%llu}\n", pk, (unsigned long long)o.max_attachment);
    } else {
        printf("%s\n", pk);
    }
    return CLI_OK;
}

/* One event, as a JSON line or a human line, to out; an error code (why in detail) if it
 * cannot be decoded. */
static int print_event(FILE *out, const tl_event_view *ev, const cli_ctx *ctx, char *detail, size_t cap) {
    char *json = NULL;
    int rc = tl_event_json(ev, &json);
    if (rc) {
        snprintf(detail, cap, "event %llu: %s", (unsigned long long)ev->seq, tl_errdetail());
        return rc;
    }
    if (ctx->json) {
        fprintf(out, "%s\n", json);
    } else {
        time_t secs = (time_t)(ev->ts / 1000000u);
        struct tm tm;
        char when[32];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        const char *payload_json = strstr(json, "\"payload\":");
        /* the payload as JSON after the envelope: readable and complete */
        int plen = payload_json ? (int)strlen(payload_json + 10) - 1 : 0; /* drop the closing brace */
        fprintf(out, "%6llu  %s.%06llu  %-16s %-22s %-12s %.*s\n", (unsigned long long)ev->seq, when,
               (unsigned long long)(ev->ts % 1000000u), ev->actor, ev->kind, ev->project ? ev->project : "-",
               plen, payload_json ? payload_json + 10 : "");
    }
    free(json);
    return 0;
}

typedef struct log_walk {
    cli_ctx *ctx;
    unsigned long long left;
    bool limited;
    FILE *out;
    int failed;       /* an event that could not be printed stops the walk: its code */
    char detail[512]; /* and why */
} log_walk;

static int walk_event(const tl_event_view *ev, void *payload) {
    log_walk *w = payload;
    if (w->limited && w->left == 0) return 1;
    if ((w->failed = print_event(w->out, ev, w->ctx, w->detail, sizeof w->detail)) != 0) return 1;
    if (w->out == stdout) fflush(stdout); /* a follower's reader sees each event as it comes */
    if (w->limited) w->left--;
    return w->limited && w->left == 0; /* done: --follow stops now, not at the next event */
}

/*
 * The events from `from` to the end, in batches: each batch is formatted into memory from a
 * read snapshot, and written out with the snapshot closed. A consumer that stalls the output (a
 * pager left open, a full pipe) must not hold a snapshot meanwhile: LMDB could not reuse any
 * page freed after it began, so every commit of other processes would take fresh pages and
 * the file would grow for as long as the output stalls (a review: 1.6 MB to 95 MB).
 */
#define LOG_BATCH_EVENTS 256
#define LOG_BATCH_BYTES (4u << 20)

static int print_to_end(tl_log *log, uint64_t from, log_walk *w, char *detail, size_t cap) {
    /* up to the head as it is now, as one snapshot would have shown: a busy writer must not
     * keep the command printing for ever */
    tl_log_stats st;
    int rc = tl_log_stats_get(log, &st);
    if (rc) {
        snprintf(detail, cap, "%s", tl_errdetail());
        return rc;
    }
    uint64_t next = from ? from : 1;
    while (next <= st.events) {
        tl_iter *it;
        rc = tl_iter_open(log, next, &it);
        if (rc) {
            snprintf(detail, cap, "%s", tl_errdetail());
            return rc;
        }
        char *buf = NULL;
        size_t size = 0;
        w->out = open_memstream(&buf, &size);
        if (!w->out) {
            tl_iter_close(it);
            snprintf(detail, cap, "out of memory");
            return TL_ENOMEM;
        }
        tl_event_view ev;
        unsigned n = 0;
        bool done = false;
        while ((rc = tl_iter_next(it, &ev)) == 0) {
            next = ev.seq + 1;
            if (walk_event(&ev, w) || ev.seq >= st.events) { done = true; break; }
            if (++n == LOG_BATCH_EVENTS || (size_t)ftell(w->out) >= LOG_BATCH_BYTES) break;
        }
        if (rc == TL_ENOTFOUND) { rc = 0; done = true; }
        else if (rc) done = true;
        if (rc) snprintf(detail, cap, "%s", tl_errdetail()); /* before closing, which may set another */
        tl_iter_close(it);
        fclose(w->out); /* the batch's bytes: buf, size */
        w->out = stdout;
        if (size && fwrite(buf, 1, size, stdout) != size) done = true; /* reported by the exit check */
        free(buf);
        fflush(stdout);
        if (rc || done) return rc;
    }
    return 0;
}

static volatile int follow_stop;
static void on_signal(int sig) { (void)sig; follow_stop = 1; }

static int cmd_log(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    unsigned long long from, limit;
    if (!cli_flag_u64(ctx, "from", &from, 1) || !cli_flag_u64(ctx, "limit", &limit, 0)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    /* --limit 0 means no limit, as 0 means the default page in the queries */
    log_walk w = {ctx, limit, limit > 0, stdout, 0, ""};
    char detail[512] = "";
    if (cli_switch(ctx, "follow")) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, on_signal);
        rc = tl_log_follow(log, from, 100, &follow_stop, walk_event, &w);
    } else {
        rc = print_to_end(log, from, &w, detail, sizeof detail);
    }
    if (!rc && w.failed) { /* the events before it are printed; the command still fails */
        rc = w.failed;
        snprintf(detail, sizeof detail, "%s", w.detail);
    }
    int out = rc ? cli_error(ctx, rc, detail[0] ? detail : tl_errdetail()) : CLI_OK;
    tl_log_close(log);
    return out;
}

static void verify_progress(uint64_t done, uint64_t total, void *payload) {
    (void)payload;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\rverified %llu/%llu events", (unsigned long long)done, (unsigned long long)total);
}

static char *read_file_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static int cmd_verify(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    uint8_t pinned[TL_PUBKEY_BYTES];
    const char *key = cli_flag(ctx, "key");
    if (key) {
        size_t n = strlen(key);
        if (n != 2 * TL_PUBKEY_BYTES) return cli_usage(ctx, "--key takes a 64-digit hex public key");
        /* sscanf("%2x") alone would take signs and blanks ("+f", " f") as digits */
        for (size_t i = 0; i < n; i++)
            if (!isxdigit((unsigned char)key[i])) return cli_usage(ctx, "--key takes a 64-digit hex public key");
        for (size_t i = 0; i < TL_PUBKEY_BYTES; i++) {
            unsigned v;
            if (sscanf(key + 2 * i, "%2x", &v) != 1) return cli_usage(ctx, "--key takes a 64-digit hex public key");
            pinned[i] = (uint8_t)v;
        }
        o.pinned_key = pinned;
    }
    unsigned long long threads;
    if (!cli_flag_u64(ctx, "threads", &threads, 2)) return CLI_FAILED;
    if (!threads || threads > 16) return cli_usage(ctx, "--threads takes 1 to 16");
    o.threads = (unsigned)threads;
    char *checkpoint = NULL;
    const char *cp_path = cli_flag(ctx, "checkpoint");
    if (cp_path && !(checkpoint = read_file_text(cp_path))) return cli_error(ctx, TL_ENOTFOUND, "cannot read the checkpoint file");
    o.checkpoint_json = checkpoint;
    o.progress = verify_progress;
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) { free(checkpoint); return rc; }
    tl_verify_report r;
    rc = tl_log_verify(log, &o, &r);
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\n");
    int out = CLI_OK;
    if (rc == TL_ECORRUPT && r.first_bad_seq) {
        if (ctx->json) {
            printf("{\"ok\":false,\"error\":\"corrupt\",\"first_bad_seq\":%llu,\"events\":%llu,\"message\":",
                   (unsigned long long)r.first_bad_seq, (unsigned long long)r.events);
            cli_json_string(stdout, r.reason);
            printf("}\n");
        } else {
            fprintf(stderr, "FAILED at event %llu: %s\n", (unsigned long long)r.first_bad_seq, r.reason);
        }
        out = CLI_FAILED;
    } else if (rc) {
        out = cli_error(ctx, rc, tl_errdetail());
    } else if (ctx->json) {
        printf("{\"ok\":true,\"events\":%llu,\"contents\":%llu,\"checkpoint\":%s", (unsigned long long)r.events,
               (unsigned long long)r.contents, checkpoint ? "true" : "false");
        if (r.replica_since) printf(",\"replica_since\":%llu", (unsigned long long)r.replica_since);
        printf("}\n");
    } else {
        printf("ok: %llu events verified (chain, signatures, key chain), %llu content commitments checked%s\n",
               (unsigned long long)r.events, (unsigned long long)r.contents,
               checkpoint ? ", the log extends the checkpoint" : "");
        if (r.replica_since)
            printf("note: a replica: the content of events from %llu on stays with the log they came from (not checked)\n",
                   (unsigned long long)r.replica_since);
    }
    free(checkpoint);
    tl_log_close(log);
    return out;
}

static int cmd_checkpoint(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, 0);
    if (rc) return rc;
    char *json;
    rc = tl_log_checkpoint(log, &json);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    printf("%s\n", json);
    tl_free(json);
    return CLI_OK;
}

static int cmd_key_rotate(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, 0);
    if (rc) return rc;
    char pk[TL_PUBKEY_HEX_SIZE];
    rc = tl_log_rotate_key(log, pk);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    if (ctx->json) printf("{\"ok\":true,\"public_key\":\"%s\"}\n", pk);
    else printf("%s\n", pk);
    return CLI_OK;
}

/* The databases' sizes as a table for people (the library gives them as JSON). */
static void print_db_table(const char *dbs_json) {
    json_t *dbs = json_loads(dbs_json, 0, NULL);
    printf("%-16s %12s %10s %14s\n", "database", "entries", "pages", "bytes");
    size_t i;
    json_t *db;
    json_array_foreach(dbs, i, db) {
        const char *name = json_string_value(json_object_get(db, "name"));
        printf("%-16s %12lld %10lld %14lld\n", name ? name : "?",
               (long long)json_integer_value(json_object_get(db, "entries")),
               (long long)json_integer_value(json_object_get(db, "pages")),
               (long long)json_integer_value(json_object_get(db, "bytes")));
    }
    json_decref(dbs);
}

static int cmd_stats(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    tl_log_stats st;
    char *dbs = NULL;
    rc = tl_log_stats_get(log, &st);
    if (!rc) rc = tl_log_db_stats_json(log, &dbs);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    double per = st.events ? (double)st.log_bytes / (double)st.events : 0;
    if (ctx->json) {
        printf("{\"events\":%llu,\"log_bytes\":%llu,\"bytes_per_event\":%.1f,\"content_bytes\":%llu,"
               "\"file_bytes\":%llu,\"map_bytes\":%llu,\"max_attachment\":%llu,\"databases\":%s}\n",
               (unsigned long long)st.events, (unsigned long long)st.log_bytes, per,
               (unsigned long long)st.content_bytes, (unsigned long long)st.file_bytes,
               (unsigned long long)st.map_bytes, (unsigned long long)st.max_attachment, dbs);
    } else {
        printf("events           %llu\nlog bytes        %llu (%.1f per event)\ncontent bytes    %llu\n"
               "file bytes       %llu\nmap bytes        %llu\nmax attachment   %llu\n",
               (unsigned long long)st.events, (unsigned long long)st.log_bytes, per,
               (unsigned long long)st.content_bytes, (unsigned long long)st.file_bytes,
               (unsigned long long)st.map_bytes, (unsigned long long)st.max_attachment);
        print_db_table(dbs);
    }
    tl_free(dbs);
    return CLI_OK;
}

const cli_command cli_log_commands[] = {
    {"init", cmd_init, "init [--max-attachment BYTES] DIR",
     "create a log and its writer key (mode 0600) in DIR; print the public key; the attachment limit\n"
     "                 is 1 byte to 1 GiB (default 25 MiB)"},
    {"log", cmd_log, "log [--from N] [--limit N] [--follow] [--json]",
     "print events from sequence N (default 1, the genesis) to the head as it was at the\n"
     "                 start, at most --limit N of them (0: all); --follow keeps printing new ones"},
    {"verify", cmd_verify, "verify [--checkpoint FILE] [--key PUBKEY] [--threads N] [--json]",
     "check sequence, chain, signatures, key chain and content; name the first bad event;\n"
     "                 --key PUBKEY (64 hex digits): a key you trust, which must also be in the log's key\n"
     "                 chain (the genesis key or a rotated one; else event 1 is named); --threads N (1 to 16,\n"
     "                 default 2) checks signatures on N threads"},
    {"checkpoint", cmd_checkpoint, "checkpoint", "print a signed checkpoint (seq, head hash, time) to keep"},
    {"key rotate", cmd_key_rotate, "key rotate [--json]", "rotate the writer key (key.rotated, signed by the old key)"},
    {"stats", cmd_stats, "stats [--json]", "events, bytes, bytes per event, databases' sizes"},
    {NULL, NULL, NULL, NULL},
};
