/*
 * bench_queries.c — what the screens cost on a large log: the latency of a tracking page
 * (both orders, first page and a page reached by cursor), the dashboard, an unread count,
 * a message page and a history page.
 *
 * The log: 1,000 users (800 members over 100 accounts, 10 staff, 185 ambassadors, 5
 * auditors), 100,000 projects (a third each application / order / video; orders have an
 * ambassador, half of them an ambassador message) and 1,000,000 messages (chat topics and
 * replies, internal notes, ambassador and support messages), about 40% of them read by one
 * of their audience. It is built through the real command layer in unsynced bulk mode
 * (TL_OPEN_NOSYNC), 1,000 commands per commit, so every projection is maintained as in
 * production; the build rate is reported too. --quick: 10,000 projects, 100,000 messages.
 *
 *   bench_queries [--quick] [--runs N] [--log DIR]
 * --log DIR keeps the built log in DIR (or reuses it when DIR already holds one), so the
 * queries can be measured again without the build. JSON lines on stdout, as every bench.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "threadlog.h"

#define ACCOUNTS 100
#define MEMBERS_PER_ACCOUNT 8
#define STAFF 10
#define AMBASSADORS 185
#define AUDITORS 5
#define BATCH 1000

static void must(int rc, const char *what) {
    if (rc) bench_die("%s: %s %s", what, tl_strerror(rc), tl_errdetail());
}

/* The bytes of one named database's pages, from the library's statistics (a JSON array of
 * {"name","entries","pages","bytes"} in a fixed order: a scan for the name is enough here). */
static uint64_t db_bytes(tl_log *log, const char *name) {
    char *json = NULL, key[64];
    must(tl_log_db_stats_json(log, &json), "database statistics");
    snprintf(key, sizeof key, "{\"name\":\"%s\",", name);
    const char *at = strstr(json, key), *bytes = at ? strstr(at, "\"bytes\":") : NULL;
    if (!bytes) bench_die("database statistics: no \"%s\" database in %s", name, json);
    uint64_t v = strtoull(bytes + strlen("\"bytes\":"), NULL, 10);
    tl_free(json);
    return v;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static unsigned pick(unsigned n) { return (unsigned)(rnd() % n); }

static const char *const types[] = {"application", "order", "video"};

typedef struct project {
    unsigned account, ambassador; /* ambassador: index + 1, 0 = none */
    unsigned topic;               /* topic number + 1, 0 = none yet */
    unsigned last_chat;           /* message number + 1 of the newest chat message */
    unsigned char type, amb_channel;
} project;

typedef struct world {
    unsigned nprojects, nmessages;
    project *p;
} world;

static void member_id(char *out, unsigned account, unsigned k) { sprintf(out, "u%u-%u", account, k); }

/* --------------------------------------------------------------- building the log */

typedef struct batch {
    tl_log *log;
    tl_batch *b;
    tl_cmd *cmds[BATCH];
    tl_result res[BATCH];
    unsigned n;
    unsigned long long failed;
} batch;

static void flush(batch *b) {
    if (!b->b) return;
    must(tl_batch_commit(b->b), "commit");
    for (unsigned i = 0; i < b->n; i++) {
        if (b->res[i].code && !b->res[i].duplicate && b->failed++ < 5)
            fprintf(stderr, "bench_queries: a command was refused: %s %s\n", tl_strerror(b->res[i].code), b->res[i].message);
        tl_cmd_free(b->cmds[i]);
    }
    b->b = NULL;
    b->n = 0;
}

/* Queue a command built from key/value pairs (NULL-terminated). */
static void cmd(batch *b, const char *op, ...) {
    if (!b->b) must(tl_batch_begin(b->log, &b->b), "batch");
    tl_cmd *c;
    must(tl_cmd_new(&c, op), "command");
    va_list ap;
    va_start(ap, op);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) must(tl_cmd_set_str(c, k, va_arg(ap, const char *)), k);
    va_end(ap);
    b->cmds[b->n] = c;
    tl_batch_exec(b->b, c, &b->res[b->n]);
    if (++b->n == BATCH) flush(b);
}

/* One of the audience of project p's channel ch (0 notes, 1 chat, 2 ambassador) but `not`. */
static void reader(char *out, const world *w, unsigned p, int ch, const char *not) {
    for (int tries = 0; tries < 4; tries++) {
        unsigned r = pick(ch == 1 ? MEMBERS_PER_ACCOUNT + STAFF : ch == 2 ? MEMBERS_PER_ACCOUNT + 1 : MEMBERS_PER_ACCOUNT);
        if (r < MEMBERS_PER_ACCOUNT) member_id(out, w->p[p].account, r);
        else if (ch == 1) sprintf(out, "s%u", r - MEMBERS_PER_ACCOUNT);
        else sprintf(out, "z%u", w->p[p].ambassador - 1);
        if (strcmp(out, not)) return;
    }
    out[0] = 0;
}

static void build(tl_log *log, world *w) {
    batch b = {.log = log};
    char id[64], as[64], other[64], pid[64], tid[64], acct[64];
    uint64_t t0 = bench_now_ns();
    for (unsigned a = 0; a < ACCOUNTS; a++) {
        sprintf(acct, "acct%u", a);
        cmd(&b, "account.create", "id", acct, "name", acct, NULL);
        for (unsigned k = 0; k < MEMBERS_PER_ACCOUNT; k++) {
            member_id(id, a, k);
            cmd(&b, "user.create", "id", id, "role", "member", "account", acct, "name", id, NULL);
        }
    }
    for (unsigned i = 0; i < STAFF; i++) { sprintf(id, "s%u", i); cmd(&b, "user.create", "id", id, "role", "staff", "name", id, NULL); }
    for (unsigned i = 0; i < AMBASSADORS; i++) { sprintf(id, "z%u", i); cmd(&b, "user.create", "id", id, "role", "ambassador", "name", id, NULL); }
    for (unsigned i = 0; i < AUDITORS; i++) { sprintf(id, "x%u", i); cmd(&b, "user.create", "id", id, "role", "auditor", "name", id, NULL); }
    for (unsigned p = 0; p < w->nprojects; p++) {
        project *pr = &w->p[p];
        pr->account = p % ACCOUNTS;
        pr->type = (unsigned char)(p % 3);
        sprintf(pid, "p%u", p);
        sprintf(acct, "acct%u", pr->account);
        member_id(as, pr->account, pick(MEMBERS_PER_ACCOUNT));
        if (pr->type == 1) {
            pr->ambassador = 1 + pick(AMBASSADORS);
            pr->amb_channel = (unsigned char)pick(2);
            sprintf(other, "z%u", pr->ambassador - 1);
            if (pr->amb_channel)
                cmd(&b, "project.create", "as", other, "id", pid, "account", acct, "type", "order", "title", pid, "ambassador",
                    other, "ambassador_message", "Size M please", NULL);
            else
                cmd(&b, "project.create", "as", as, "id", pid, "account", acct, "type", "order", "title", pid, "ambassador",
                    other, NULL);
        } else {
            cmd(&b, "project.create", "as", as, "id", pid, "account", acct, "type", types[pr->type], "title", pid, NULL);
        }
    }
    flush(&b);
    fprintf(stderr, "bench_queries: %u users, %u projects in %.1f s\n", ACCOUNTS * MEMBERS_PER_ACCOUNT + STAFF + AMBASSADORS + AUDITORS,
            w->nprojects, bench_since_s(t0));
    uint64_t t1 = bench_now_ns();
    unsigned long long events = 0;
    for (unsigned m = 0; m < w->nmessages; m++) {
        unsigned p = pick(w->nprojects);
        project *pr = &w->p[p];
        unsigned kind = pick(100);
        int ch;
        sprintf(pid, "p%u", p);
        sprintf(id, "m%u", m);
        if (kind < 5) { /* support */
            sprintf(acct, "acct%u", pick(ACCOUNTS));
            if (pick(4)) member_id(as, (unsigned)atoi(acct + 4), pick(MEMBERS_PER_ACCOUNT));
            else sprintf(as, "s%u", pick(STAFF));
            cmd(&b, "message.send", "as", as, "id", id, "account", acct, "channel", "support", "body", "support question", NULL);
            events++;
            continue;
        }
        if (kind < 30) {
            ch = 0;
            member_id(as, pr->account, pick(MEMBERS_PER_ACCOUNT));
            cmd(&b, "note.add", "as", as, "id", id, "project", pid, "body", "internal note about this project", NULL);
        } else if (kind < 40 && pr->amb_channel) {
            ch = 2;
            if (pick(2)) sprintf(as, "z%u", pr->ambassador - 1);
            else member_id(as, pr->account, pick(MEMBERS_PER_ACCOUNT));
            cmd(&b, "message.send", "as", as, "id", id, "project", pid, "channel", "ambassador", "body", "about the order", NULL);
        } else {
            ch = 1;
            if (pick(10) < 7) member_id(as, pr->account, pick(MEMBERS_PER_ACCOUNT));
            else sprintf(as, "s%u", pick(STAFF));
            if (!pr->topic) {
                sprintf(tid, "t%u", m);
                pr->topic = m + 1;
                cmd(&b, "topic.create", "as", as, "id", tid, "project", pid, "title", "Shipping", "body", "When does it ship?",
                    "message_id", id, NULL);
            } else if (kind >= 85 && pr->last_chat) {
                sprintf(other, "m%u", pr->last_chat - 1);
                cmd(&b, "message.reply", "as", as, "id", id, "message", other, "body", "Thanks!", NULL);
            } else {
                sprintf(tid, "t%u", pr->topic - 1);
                cmd(&b, "message.send", "as", as, "id", id, "project", pid, "channel", "chat", "topic", tid, "body",
                    "Tomorrow morning", NULL);
            }
            pr->last_chat = m + 1;
        }
        events++;
        if (pick(10) < 4) { /* read by one of the audience */
            reader(other, w, p, ch, as);
            if (other[0]) { cmd(&b, "message.read", "as", other, "message", id, NULL); events++; }
        }
        if ((m + 1) % 100000 == 0)
            fprintf(stderr, "bench_queries: %u messages, %.0f events/s\n", m + 1, (double)events / bench_since_s(t1));
    }
    flush(&b);
    double s = bench_since_s(t1);
    if (b.failed) fprintf(stderr, "bench_queries: %llu commands refused\n", b.failed);
    bench_report("queries.build.events_per_s", (double)events / s, "events/s");
}

/* --------------------------------------------------------------- measuring */

typedef enum { Q_TRACK, Q_TRACK_UNREAD, Q_TRACK_PAGE2, Q_TRACK_TYPE, Q_DASH, Q_UNREAD, Q_MESSAGES, Q_HISTORY, Q_N } qkind;
static const char *const qnames[Q_N] = {"queries.tracking.activity",  "queries.tracking.unread",  "queries.tracking.page2",
                                        "queries.tracking.type",      "queries.dashboard",        "queries.unread",
                                        "queries.messages",           "queries.history"};

/* A viewer: mostly members; staff and auditors (100,000-row tables) and ambassadors too. */
static void viewer(char *out, const world *w, unsigned *project_out) {
    unsigned p = pick(w->nprojects), r = pick(10);
    *project_out = p;
    if (r < 6) member_id(out, w->p[p].account, pick(MEMBERS_PER_ACCOUNT));
    else if (r < 8) sprintf(out, "s%u", pick(STAFF));
    else if (r < 9) sprintf(out, "x%u", pick(AUDITORS));
    else sprintf(out, "z%u", pick(AMBASSADORS));
}

static void measure(tl_log *log, const world *w, int samples, bench_lat lat[Q_N]) {
    char as[64], pid[64], cursor[600];
    for (int i = 0; i < samples; i++) {
        for (int k = 0; k < Q_N; k++) {
            unsigned p;
            viewer(as, w, &p);
            tl_query q = TL_QUERY_INIT;
            q.as = as;
            int (*fn)(tl_log *, const tl_query *, char **) = tl_tracking_query;
            if (k == Q_TRACK_UNREAD) q.sort = "unread";
            if (k == Q_TRACK_TYPE) q.type = types[pick(3)];
            if (k == Q_DASH) fn = tl_dashboard_query;
            if (k == Q_UNREAD) fn = tl_unread_query;
            if (k == Q_MESSAGES || k == Q_HISTORY) { /* a member of the project's account */
                member_id(as, w->p[p].account, pick(MEMBERS_PER_ACCOUNT));
                sprintf(pid, "p%u", p);
                q.project = pid;
                q.channel = "chat";
                fn = k == Q_MESSAGES ? tl_messages_query : tl_history_query;
            }
            char *json = NULL;
            if (k == Q_TRACK_PAGE2) { /* the cursor comes from page 1 (not timed) */
                must(tl_tracking_query(log, &q, &json), "tracking");
                char *next = strstr(json, "\"next\":\"");
                if (!next) { tl_free(json); continue; }
                snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(next + 8, "\""), next + 8);
                tl_free(json);
                q.cursor = cursor;
            }
            uint64_t t = bench_now_ns();
            must(fn(log, &q, &json), qnames[k]);
            bench_lat_add(&lat[k], bench_now_ns() - t);
            tl_free(json);
        }
    }
}

int main(int argc, char **argv) {
    const char *keep = NULL;
    int n = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--log") && i + 1 < argc) keep = argv[++i];
        else argv[n++] = argv[i];
    }
    argc = n;
    bench_opts o;
    bench_parse_args(&o, argc, argv,
                     "  --log DIR         keep the built log in DIR, or reuse the one DIR holds\n", 0);
    world w = {o.quick ? 10000 : 100000, o.quick ? 100000 : 1000000, NULL};
    w.p = calloc(w.nprojects, sizeof *w.p);
    if (!w.p) bench_die("out of memory");

    char *tmp = NULL, path[4096];
    if (keep) snprintf(path, sizeof path, "%s", keep);
    else { tmp = bench_tmpdir_make("tl-bench-q."); snprintf(path, sizeof path, "%s/log", tmp); }
    char data[4200];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    struct stat st;
    bool reuse = keep && stat(data, &st) == 0;
    tl_log *log;
    if (!reuse) {
        must(tl_log_init(path, NULL, NULL), "init");
        tl_open_options oo = TL_OPEN_OPTIONS_INIT;
        oo.flags = TL_OPEN_NOSYNC;
        must(tl_log_open(&log, path, &oo), "open");
        build(log, &w);
        tl_log_close(log);
        /* the unsynced build leaves GBs of dirty pages: written back now, not by the kernel's
         * flusher while the queries are measured (it slowed a serving phase 3x, 2026-11-26) */
        int fd = open(data, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fdatasync(fd) != 0) bench_die("sync the built log: %s", strerror(errno));
        close(fd);
    } else { /* the same seed rebuilds the same world description without the log */
        for (unsigned p = 0; p < w.nprojects; p++) { w.p[p].account = p % ACCOUNTS; w.p[p].type = (unsigned char)(p % 3); }
        fprintf(stderr, "bench_queries: reusing the log in %s\n", path);
    }
    tl_log_stats stats;
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    must(tl_log_open(&log, path, &ro), "open read-only");
    must(tl_log_stats_get(log, &stats), "stats");
    fprintf(stderr, "bench_queries: %llu events, data file %.1f MiB\n", (unsigned long long)stats.events,
            (double)stats.file_bytes / 1048576.0);
    bench_report("queries.log.events", (double)stats.events, "events");
    bench_report("queries.log.file_mib", (double)stats.file_bytes / 1048576.0, "MiB");
    /* the disk ratio's baseline, from this same log: its signed events alone (bytes and signatures) */
    bench_report("queries.log.signed_bytes_per_event", stats.events ? (double)stats.log_bytes / (double)stats.events : 0, "bytes");
    /* the log alone on disk: the pages of its "log" database (records, their signatures and
     * LMDB's page overhead), without the content, the domain state or any projection */
    uint64_t log_db_bytes = db_bytes(log, "log");
    bench_report("queries.log.log_db_bytes_per_event", stats.events ? (double)log_db_bytes / (double)stats.events : 0, "bytes");

    /*
     * First, queries in a fresh process: each page a query meets for the first time costs a
     * page fault (several µs on this VM). Then the serving state: tl_log_warm maps the whole
     * file at once, as a long-running embedder does at start (docs/BENCHMARKS.md).
     */
    bench_lat cold[Q_N];
    for (int k = 0; k < Q_N; k++) cold[k] = (bench_lat)BENCH_LAT_INIT;
    measure(log, &w, o.quick ? 400 : 1000, cold);
    for (int k = 0; k < Q_N; k++) {
        char name[96];
        snprintf(name, sizeof name, "queries.cold.%s", qnames[k] + strlen("queries."));
        double p50 = bench_lat_pct_us(&cold[k], 50);
        bench_report_lat(name, bench_lat_rate(&cold[k]), "queries/s", p50, bench_lat_pct_us(&cold[k], 99));
        bench_lat_free(&cold[k]);
    }
    uint64_t mapped = 0, tw = bench_now_ns();
    must(tl_log_warm(log, &mapped), "warm");
    bench_report("queries.warm.seconds", bench_since_s(tw), "s");
    bench_report("queries.warm.mib", (double)mapped / 1048576.0, "MiB");
    /* warm the page cache a little, then pool every run's samples */
    bench_lat warm[Q_N], lat[Q_N];
    for (int k = 0; k < Q_N; k++) { warm[k] = (bench_lat)BENCH_LAT_INIT; lat[k] = (bench_lat)BENCH_LAT_INIT; }
    measure(log, &w, getenv("TL_WARM") ? atoi(getenv("TL_WARM")) : 200, warm);
    /* each run's own rate (its queries over their summed time) gives the spread; the latencies
     * are pooled */
    int runs = o.runs < 1 ? 1 : o.runs > 32 ? 32 : o.runs;
    double rates[Q_N][32];
    for (int r = 0; r < runs; r++) {
        bench_lat one[Q_N];
        for (int k = 0; k < Q_N; k++) one[k] = (bench_lat)BENCH_LAT_INIT;
        measure(log, &w, o.quick ? 400 : 1000, one);
        for (int k = 0; k < Q_N; k++) {
            for (size_t i = 0; i < one[k].n; i++) bench_lat_add(&lat[k], one[k].ns[i]);
            rates[k][r] = bench_lat_rate(&one[k]);
            bench_lat_free(&one[k]);
        }
    }
    for (int k = 0; k < Q_N; k++) {
        double p50 = bench_lat_pct_us(&lat[k], 50);
        bench_spread sp;
        bench_median_spread(rates[k], (size_t)runs, &sp);
        bench_report_lat_spread(qnames[k], bench_lat_rate(&lat[k]), "queries/s", p50, bench_lat_pct_us(&lat[k], 99), &sp);
        bench_lat_free(&lat[k]);
        bench_lat_free(&warm[k]);
    }
    tl_log_close(log);
    free(w.p);
    if (tmp) bench_tmpdir_remove(tmp);
    return 0;
}
