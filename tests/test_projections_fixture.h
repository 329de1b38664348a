/*
 * test_projections_fixture.h — what the projection suites share (header only: every
 * tests/test_*.c is its own program): a cast of users over two accounts, commands run
 * through the real command layer (tl_cmd_parse + tl_cmd_exec), queries parsed with
 * jansson, and a frozen clock so that time ties (and their tie-breaks) can be produced.
 */
#ifndef TEST_PROJECTIONS_FIXTURE_H
#define TEST_PROJECTIONS_FIXTURE_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "threadlog.h"

/*
 * The clock: the engine stamps events with clock_gettime(CLOCK_REALTIME). This program's
 * definition takes precedence over the C library's, so a test may freeze time and get
 * several events with the same timestamp (the log allows equal, never decreasing, times).
 */
static int pf_frozen;
static struct timespec pf_frozen_at;

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (pf_frozen && id == CLOCK_REALTIME) {
        *ts = pf_frozen_at;
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}

static inline void pf_freeze(void) {
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &pf_frozen_at);
    pf_frozen = 1;
}
static inline void pf_thaw(void) { pf_frozen = 0; }

/* Run one JSON command; return its result. */
static inline tl_result pf_exec(tl_log *log, const char *fmt, ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    tl_result res;
    memset(&res, 0, sizeof res);
    tl_cmd *cmd = NULL;
    int rc = tl_cmd_parse(&cmd, line, strlen(line), &res);
    if (rc == 0) {
        tl_cmd_exec(log, cmd, &res);
        tl_cmd_free(cmd);
    } else {
        res.code = rc;
    }
    return res;
}

/* Run a command that must succeed. */
#define PF_OK(log, ...)                                                                                 \
    do {                                                                                                \
        tl_result r_ = pf_exec(log, __VA_ARGS__);                                                       \
        ck_assert_msg(r_.code == 0, "command failed: %s %s", tl_strerror(r_.code), r_.message);         \
    } while (0)

/* The cast: accounts acme and beta; alice, bob (acme), carl (beta) members; sam, sue staff;
 * zoe, yan ambassadors; aud an auditor. */
static inline void pf_cast(tl_log *log) {
    PF_OK(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    PF_OK(log, "{\"op\":\"account.create\",\"id\":\"beta\",\"name\":\"Beta\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"bob\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Bob\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"carl\",\"role\":\"member\",\"account\":\"beta\",\"name\":\"Carl\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"sue\",\"role\":\"staff\",\"name\":\"Sue\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"zoe\",\"role\":\"ambassador\",\"name\":\"Zoe\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"yan\",\"role\":\"ambassador\",\"name\":\"Yan\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"aud\",\"role\":\"auditor\",\"name\":\"Audrey\"}");
}

/* An order of acme with zoe as ambassador and her message m-<id>. */
static inline void pf_order(tl_log *log, const char *id, const char *as) {
    PF_OK(log,
          "{\"op\":\"project.create\",\"as\":\"%s\",\"id\":\"%s\",\"account\":\"acme\",\"type\":\"order\","
          "\"title\":\"Order %s\",\"ambassador\":\"zoe\",\"ambassador_message\":\"Size M\","
          "\"ambassador_message_id\":\"am-%s\"}",
          as, id, id, id);
}

typedef int (*pf_query_fn)(tl_log *, const tl_query *, char **);

/* Run a query that must succeed; the parsed answer is the caller's (json_decref). */
static inline json_t *pf_query(tl_log *log, pf_query_fn fn, const tl_query *q) {
    char *out = NULL;
    int rc = fn(log, q, &out);
    ck_assert_msg(rc == 0, "query failed: %s %s", tl_strerror(rc), tl_errdetail());
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    ck_assert_msg(root != NULL, "query answered invalid JSON: %s (%s)", out, err.text);
    tl_free(out);
    return root;
}

/* The code a refused query returns (0 when it succeeded). */
static inline int pf_query_code(tl_log *log, pf_query_fn fn, const tl_query *q) {
    char *out = NULL;
    int rc = fn(log, q, &out);
    tl_free(out);
    return rc;
}

static inline tl_query pf_q(const char *as) {
    tl_query q = TL_QUERY_INIT;
    q.as = as;
    return q;
}

static inline long long pf_int(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "field %s is not an integer", key);
    return (long long)json_integer_value(v);
}

static inline const char *pf_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The ids of an array of objects, joined with commas ("m-1,m-2"). */
static inline const char *pf_ids(json_t *arr, const char *key, char *buf, size_t cap) {
    size_t i, n = 0;
    json_t *o;
    buf[0] = 0;
    json_array_foreach(arr, i, o) {
        const char *s = pf_str(o, key);
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "", s ? s : "?");
    }
    return buf;
}

static inline void pf_done(tl_log *log, char *dir) {
    tl_log_close(log);
    char *base = strdup(dir);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    tu_rmdir(base);
    free(base);
    free(dir);
}

#endif
