/*
 * cli_query.c — the projections as commands: tracking, dashboard, unread, messages,
 * history, topics, and the projection digest.
 *
 * Each command fills a tl_query from its flags (SPEC §4 "Query flags"), asks the library,
 * and prints its JSON as is with --json. Human output is rendered from that same JSON
 * (parsed with jansson), so the two can never tell different stories: a table for
 * tracking that looks like the screen (unread rows marked with ●), panels for the
 * dashboard, one line per message or history entry, and "next: CURSOR" when there is more.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

typedef int (*query_fn)(tl_log *, const tl_query *, char **);

/* Refuse flags the command does not take: a typo must not silently widen a query. */
static bool flags_known(cli_ctx *ctx, const char *const *allowed) {
    for (int i = 0; i < ctx->args.nflags; i++) {
        const char *n = ctx->args.names[i];
        bool ok = !strcmp(n, "json") || !strcmp(n, "help");
        for (int j = 0; allowed[j] && !ok; j++) ok = !strcmp(n, allowed[j]);
        if (!ok) { cli_usage(ctx, "unknown flag --%s", n); return false; }
    }
    if (ctx->args.npos) { cli_usage(ctx, "unexpected argument \"%s\"", ctx->args.pos[0]); return false; }
    return true;
}

static bool build_query(cli_ctx *ctx, tl_query *q) {
    tl_query init = TL_QUERY_INIT;
    *q = init;
    q->as = cli_flag(ctx, "as");
    q->project = cli_flag(ctx, "project");
    q->account = cli_flag(ctx, "account");
    q->channel = cli_flag(ctx, "channel");
    q->topic = cli_flag(ctx, "topic");
    q->type = cli_flag(ctx, "type");
    q->sort = cli_flag(ctx, "sort");
    q->cursor = cli_flag(ctx, "cursor");
    q->more = cli_switch(ctx, "more");
    unsigned long long limit;
    if (!cli_flag_u64(ctx, "limit", &limit, 0)) return false;
    if (limit > 100000) limit = 100000;
    q->limit = (unsigned)limit;
    return true; /* a missing --as is the library's refusal (invalid_input), printed as such */
}

/* ---------------------------------------------------------------- human rendering */

static const char *s_of(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static long long n_of(json_t *o, const char *key) { return (long long)json_integer_value(json_object_get(o, key)); }

static void when(char out[32], long long us) {
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

/* A body on one line, cut to width. */
static void print_body(json_t *o, int width) {
    json_t *b = json_object_get(o, "body");
    if (json_is_true(json_object_get(o, "erased"))) { printf("(erased)"); return; }
    if (!json_is_string(b)) { printf(json_is_true(json_object_get(o, "deleted")) ? "(deleted)" : "-"); return; }
    const char *s = json_string_value(b);
    int n = 0;
    for (; s[n] && n < width; n++) putchar(s[n] == '\n' || s[n] == '\t' ? ' ' : s[n]);
    if (s[n]) printf("…");
}

static void print_message(json_t *m) {
    char t[32];
    when(t, n_of(m, "ts"));
    printf("%s%s %-14s %-12s %s  ", json_is_true(json_object_get(m, "unread")) ? "●" : " ",
           json_is_true(json_object_get(m, "pinned")) ? "📌" : "  ", s_of(m, "id"), s_of(m, "author"), t);
    if (json_is_string(json_object_get(m, "parent"))) printf("↳%s ", s_of(m, "parent"));
    print_body(m, 60);
    size_t na = json_array_size(json_object_get(m, "attachments"));
    if (na) printf("  [%zu attachment%s]", na, na > 1 ? "s" : "");
    if (json_is_true(json_object_get(m, "deleted"))) printf("  (deleted)");
    printf("\n");
}

static void print_next(json_t *root) {
    const char *next = json_string_value(json_object_get(root, "next"));
    if (next) printf("next: %s\n", next);
}

static void human_tracking(json_t *root) {
    json_t *rows = json_object_get(root, "rows"), *r;
    size_t i;
    printf("  %-16s %-12s %-14s %6s  %-19s  %s\n", "PROJECT", "TYPE", "STATUS", "UNREAD", "LAST ACTIVITY", "TITLE");
    json_array_foreach(rows, i, r) {
        char t[32];
        when(t, n_of(r, "last_activity"));
        long long unread = n_of(r, "unread");
        printf("%s %-16s %-12s %-14s %6lld  %-19s  %s\n", unread ? "●" : " ", s_of(r, "project"), s_of(r, "type"),
               s_of(r, "status"), unread, t, s_of(r, "title"));
    }
    if (!json_array_size(rows)) printf("  (no projects)\n");
    print_next(root);
}

static void human_messages(json_t *root) {
    json_t *msgs = json_object_get(root, "messages"), *m;
    size_t i;
    json_array_foreach(msgs, i, m) print_message(m);
    if (!json_array_size(msgs)) printf("(no messages)\n");
    print_next(root);
}

static void human_dashboard(json_t *root) {
    json_t *panels = json_object_get(root, "panels"), *p;
    size_t i;
    if (!panels) { /* See more */
        printf("%s — %lld unread\n", s_of(root, "type"), n_of(root, "unread"));
        human_messages(root);
        return;
    }
    json_array_foreach(panels, i, p) {
        printf("%s%s — %lld unread\n", i ? "\n" : "", s_of(p, "type"), n_of(p, "unread"));
        json_t *m;
        size_t j;
        json_array_foreach(json_object_get(p, "messages"), j, m) {
            printf("  %-10s ", s_of(m, "project"));
            print_message(m);
        }
    }
}

static void human_unread(json_t *root) {
    json_t *by = json_object_get(root, "by_type");
    const char *key;
    json_t *v;
    if (!by) {
        printf("%s: %lld unread\n", s_of(root, "project"), n_of(root, "total"));
        by = json_object_get(root, "by_channel");
    } else {
        printf("%lld unread\n", n_of(root, "total"));
    }
    json_object_foreach(by, key, v) printf("  %-12s %lld\n", key, (long long)json_integer_value(v));
}

static void human_history(json_t *root) {
    json_t *entries = json_object_get(root, "entries"), *e;
    size_t i;
    json_array_foreach(entries, i, e) {
        char t[32];
        when(t, n_of(e, "ts"));
        printf("%6lld  %s  %-12s %-22s", n_of(e, "seq"), t, s_of(e, "actor"), s_of(e, "kind"));
        if (json_object_get(e, "status")) printf(" %s", s_of(e, "status"));
        if (json_object_get(e, "title")) printf(" \"%s\"", s_of(e, "title"));
        if (json_object_get(e, "channel")) printf(" [%s] %s ", s_of(e, "channel"), s_of(e, "message"));
        if (json_object_get(e, "body") || json_object_get(e, "erased")) print_body(e, 50);
        if (json_object_get(e, "reason")) printf(" erased %s: %s", s_of(e, "target"), s_of(e, "reason"));
        json_t *am = json_object_get(e, "ambassador_message");
        if (am) {
            printf(" [ambassador] %s %s: ", s_of(am, "id"), s_of(am, "author"));
            print_body(am, 50);
        }
        printf("\n");
    }
    if (!json_array_size(entries)) printf("(no entries)\n");
    print_next(root);
}

static void human_topics(json_t *root) {
    json_t *topics = json_object_get(root, "topics"), *t;
    size_t i;
    printf("  %-16s %-12s %8s %6s  %s\n", "TOPIC", "AUTHOR", "MESSAGES", "UNREAD", "TITLE");
    json_array_foreach(topics, i, t) {
        long long unread = n_of(t, "unread");
        printf("%s %-16s %-12s %8lld %6lld  %s\n", unread ? "●" : " ", s_of(t, "id"), s_of(t, "author"),
               n_of(t, "messages"), unread, s_of(t, "title"));
    }
}

/* ---------------------------------------------------------------- commands */

static int run_query(cli_ctx *ctx, query_fn fn, const char *const *allowed, void (*human)(json_t *)) {
    tl_query q;
    if (!flags_known(ctx, allowed) || !build_query(ctx, &q)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    char *json = NULL;
    rc = fn(log, &q, &json);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    if (ctx->json) {
        printf("%s\n", json);
    } else {
        json_error_t err;
        json_t *root = json_loads(json, 0, &err);
        if (root) human(root);
        else printf("%s\n", json);
        json_decref(root);
    }
    tl_free(json);
    return CLI_OK;
}

static int cmd_tracking(cli_ctx *ctx) {
    static const char *const f[] = {"as", "type", "sort", "limit", "cursor", NULL};
    return run_query(ctx, tl_tracking_query, f, human_tracking);
}

static int cmd_dashboard(cli_ctx *ctx) {
    static const char *const f[] = {"as", "type", "more", "limit", "cursor", NULL};
    if (!cli_switch(ctx, "more") && cli_flag(ctx, "cursor"))
        return cli_usage(ctx, "--cursor pages \"See more\" (dashboard --type T --more)");
    return run_query(ctx, tl_dashboard_query, f, human_dashboard);
}

static int cmd_unread(cli_ctx *ctx) {
    static const char *const f[] = {"as", "project", NULL};
    return run_query(ctx, tl_unread_query, f, human_unread);
}

static int cmd_messages(cli_ctx *ctx) {
    static const char *const f[] = {"as", "project", "account", "channel", "topic", "limit", "cursor", NULL};
    return run_query(ctx, tl_messages_query, f, human_messages);
}

static int cmd_history(cli_ctx *ctx) {
    static const char *const f[] = {"as", "project", "limit", "cursor", NULL};
    return run_query(ctx, tl_history_query, f, human_history);
}

static int cmd_topics(cli_ctx *ctx) {
    static const char *const f[] = {"as", "project", NULL};
    return run_query(ctx, tl_topics_query, f, human_topics);
}

static int cmd_digest(cli_ctx *ctx) {
    static const char *const none[] = {NULL};
    if (!flags_known(ctx, none)) return CLI_FAILED;
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    char hex[TL_PUBKEY_HEX_SIZE];
    tl_log_stats st;
    rc = tl_digest(log, hex);
    if (!rc) rc = tl_log_stats_get(log, &st);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    if (ctx->json) printf("{\"digest\":\"%s\",\"seq\":%llu}\n", hex, (unsigned long long)st.events);
    else printf("%s\n", hex);
    return CLI_OK;
}

const cli_command cli_query_commands[] = {
    {"tracking", cmd_tracking, "tracking --as U [--type T] [--sort activity|unread] [--limit N] [--cursor C] [--json]",
     "the tracking table as U sees it (● marks projects with unread messages)"},
    {"dashboard", cmd_dashboard, "dashboard --as U [--limit N] | dashboard --as U --type T --more [--limit N] [--cursor C]",
     "U's unread messages per project type (newest first); --more pages one type (\"See more\")"},
    {"unread", cmd_unread, "unread --as U [--project P] [--json]",
     "U's unread counts: total and per type, or per channel of one project"},
    {"messages", cmd_messages,
     "messages --as U (--project P --channel notes|chat|ambassador [--topic T] | --account A --channel support) "
     "[--limit N] [--cursor C]",
     "a channel's messages as U sees them: pinned first, then oldest first (● unread)"},
    {"history", cmd_history, "history --as U --project P [--limit N] [--cursor C]",
     "a project's timeline, oldest first, with the entries U may see"},
    {"topics", cmd_topics, "topics --as U --project P", "a project's chat topics, oldest first"},
    {"digest", cmd_digest, "digest [--json]", "the projection digest of the live state (compare with replay)"},
    {NULL, NULL, NULL, NULL},
};
