/*
 * bench_commands.c — single durable commands: one client, then many concurrent clients.
 *
 * What an embedding back office does under load: each request executes one command with
 * tl_cmd_exec and waits for its own synced commit. With one client the rate is bounded by the
 * disk's synced-commit rate (compare with bench_limits' limits.lmdb_append.batch1.sync); with
 * many clients the engine groups concurrent callers into one commit, so throughput should grow
 * with clients while each caller still waits for its own durable commit (compare with
 * bench_sqlite --threads N).
 *
 *   bench_commands [--quick] [--runs N]
 * prints JSON lines: threadlog.cmd.single, threadlog.cmd.concurrent16, threadlog.cmd.concurrent64.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "threadlog.h"

#define MAX_THREADS 64

static void must(int rc, const char *what) {
    if (rc) bench_die("%s: %s %s", what, tl_strerror(rc), tl_errdetail());
}

static void exec_json(tl_log *log, const char *line) {
    tl_cmd *cmd;
    tl_result res;
    must(tl_cmd_parse(&cmd, line, strlen(line), &res), "parse");
    tl_cmd_exec(log, cmd, &res);
    tl_cmd_free(cmd);
    if (res.code) bench_die("setup command failed: %s %s", tl_strerror(res.code), res.message);
}

#define ACCOUNTS 8
#define MEMBERS 8  /* per account: ACCOUNTS * MEMBERS = MAX_THREADS clients */
#define PROJECTS 8 /* per account */

/* The log described at the top, or (wide) one account of 64 members with 8 projects. */
static tl_log *setup(char **dir, bool wide) {
    *dir = bench_tmpdir_make("tl-bench-cmd.");
    char path[4096];
    snprintf(path, sizeof path, "%s/log", *dir);
    must(tl_log_init(path, NULL, NULL), "init");
    tl_log *log;
    must(tl_log_open(&log, path, NULL), "open");
    char line[512];
    int accounts = wide ? 1 : ACCOUNTS, members = wide ? MAX_THREADS : MEMBERS;
    for (int s = 0; s < 2; s++) {
        snprintf(line, sizeof line, "{\"op\":\"user.create\",\"id\":\"s%d\",\"role\":\"staff\",\"name\":\"S%d\"}", s, s);
        exec_json(log, line);
    }
    for (int a = 0; a < accounts; a++) {
        snprintf(line, sizeof line, "{\"op\":\"account.create\",\"id\":\"a%d\",\"name\":\"A%d\"}", a, a);
        exec_json(log, line);
        for (int i = 0; i < members; i++) {
            snprintf(line, sizeof line, "{\"op\":\"user.create\",\"id\":\"u%d\",\"role\":\"member\",\"account\":\"a%d\",\"name\":\"U%d\"}",
                     a * members + i, a, i);
            exec_json(log, line);
        }
        for (int p = 0; p < PROJECTS; p++) {
            snprintf(line, sizeof line, "{\"op\":\"project.create\",\"as\":\"u%d\",\"id\":\"p%d-%d\",\"account\":\"a%d\",\"type\":\"order\",\"title\":\"P%d\"}",
                     a * members, a, p, a, p);
            exec_json(log, line);
            snprintf(line, sizeof line, "{\"op\":\"topic.create\",\"as\":\"u%d\",\"id\":\"t%d-%d\",\"project\":\"p%d-%d\",\"title\":\"T\",\"body\":\"first\"}",
                     a * members, a, p, a, p);
            exec_json(log, line);
        }
    }
    return log;
}

typedef struct worker {
    tl_log *log;
    int id, count, members; /* members per account */
    bench_lat *lat;
    pthread_mutex_t *mu;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    char line[512];
    for (int i = 0; i < w->count; i++) {
        int a = w->id / w->members, p = (w->id + i) % PROJECTS;
        snprintf(line, sizeof line,
                 "{\"op\":\"message.send\",\"as\":\"u%d\",\"project\":\"p%d-%d\",\"channel\":\"chat\",\"topic\":\"t%d-%d\","
                 "\"body\":\"Message %d from client %d: the parcel leaves the warehouse tomorrow morning.\"}",
                 w->id, a, p, a, p, i, w->id);
        tl_cmd *cmd;
        tl_result res;
        if (tl_cmd_parse(&cmd, line, strlen(line), &res)) bench_die("parse");
        uint64_t t0 = bench_now_ns();
        tl_cmd_exec(w->log, cmd, &res);
        uint64_t dt = bench_now_ns() - t0;
        tl_cmd_free(cmd);
        if (res.code) bench_die("send failed: %s %s", tl_strerror(res.code), res.message);
        pthread_mutex_lock(w->mu);
        bench_lat_add(w->lat, dt);
        pthread_mutex_unlock(w->mu);
    }
    return NULL;
}

/* One run with `threads` clients of `per` commands each; returns commands/s. */
static double run_clients(tl_log *log, int threads, int per, int members, bench_lat *lat) {
    pthread_t tids[MAX_THREADS];
    worker ws[MAX_THREADS];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < threads; t++) {
        ws[t] = (worker){log, t, per, members, lat, &mu};
        if (pthread_create(&tids[t], NULL, run_worker, &ws[t])) bench_die("pthread_create");
    }
    for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    return (double)threads * per / bench_since_s(t0);
}

static void measure(tl_log *log, const char *what, int threads, int per, int members, int runs) {
    double rates[32];
    bench_lat lat = BENCH_LAT_INIT;
    for (int r = 0; r < runs && r < 32; r++) rates[r] = run_clients(log, threads, per, members, &lat);
    bench_spread sp;
    double med = bench_median_spread(rates, (size_t)(runs < 32 ? runs : 32), &sp);
    bench_report_lat_spread(what, med, "commands/s", bench_lat_pct_us(&lat, 50), bench_lat_pct_us(&lat, 99), &sp);
    bench_lat_free(&lat);
}

int main(int argc, char **argv) {
    bench_opts o;
    bench_parse_args(&o, argc, argv, "", 0);
    char *dir;
    tl_log *log = setup(&dir, false);
    int single = o.quick ? 100 : 400;
    measure(log, "threadlog.cmd.single", 1, single, MEMBERS, o.runs);
    measure(log, "threadlog.cmd.concurrent16", 16, o.quick ? 20 : 50, MEMBERS, o.runs);
    measure(log, "threadlog.cmd.concurrent64", 64, o.quick ? 10 : 25, MEMBERS, o.runs);
    tl_log_close(log);
    bench_tmpdir_remove(dir);
    log = setup(&dir, true);
    measure(log, "threadlog.cmd.single_wide64", 1, single, MAX_THREADS, o.runs);
    tl_log_close(log);
    bench_tmpdir_remove(dir);
    return 0;
}
