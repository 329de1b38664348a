/*
 * test_projections_cli.c — the query commands of the real `threadlog` binary on a real log:
 * the spec's example lines applied, then each query's --json shape (SPEC §4 "Query results
 * with --json"), flags before and after the command, refusals printed as
 * {"ok":false,"error","message"} with exit status 1 (a malformed flag too), and the
 * human renderings (the tracking table marks unread rows), and cursors good only for the
 * query, viewer and list that gave them.
 */
#include "test_projections_fixture.h"

static char *logdir;

/* Run `threadlog -d LOG ARGS`; *out is parsed when it is one JSON object. */
static int cli(json_t **out, const char *fmt, ...) {
    char args[2048], *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int st = tu_run(&text, "%s -d %s %s 2>/dev/null", TL_CLI, logdir, args);
    if (out) {
        json_error_t err;
        *out = json_loads(text, JSON_DISABLE_EOF_CHECK, &err);
        ck_assert_msg(*out != NULL, "`%s` printed no JSON: %s", args, text);
    }
    free(text);
    return st;
}

static void teardown(void) {
    if (!logdir) return;
    char *slash = strrchr(logdir, '/');
    if (slash) *slash = 0;
    tu_rmdir(logdir);
    free(logdir);
    logdir = NULL;
}

static void has_keys(json_t *o, const char *const *keys) {
    for (int i = 0; keys[i]; i++) ck_assert_msg(json_object_get(o, keys[i]) != NULL, "missing \"%s\"", keys[i]);
}

static const char *const message_keys[] = {"id", "project", "channel", "topic", "author", "body", "ts", "parent",
                                           "replies", "pinned", "unread", "attachments", NULL};

static void setup(void) {
    char *base = tu_tmpdir();
    logdir = malloc(strlen(base) + 8);
    sprintf(logdir, "%s/log", base);
    free(base);
    ck_assert_int_eq(tu_run(NULL, "%s init %s >/dev/null", TL_CLI, logdir), 0);
    const char *lines =
        "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}\n"
        "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}\n"
        "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}\n"
        "{\"op\":\"user.create\",\"id\":\"zoe\",\"role\":\"ambassador\",\"name\":\"Zoe\"}\n"
        "{\"op\":\"project.create\",\"as\":\"zoe\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"Order #1\",\"ambassador\":\"zoe\",\"ambassador_message\":\"Size M please\"}\n"
        "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"o-1\",\"status\":\"shipped\"}\n"
        "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Shipping\",\"body\":\"When?\",\"message_id\":\"m-1\"}\n"
        "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"m-2\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"Tomorrow\"}\n"
        "{\"op\":\"message.send\",\"as\":\"alice\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"Help with export\"}\n"
        "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"Check stock\"}\n"
        "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-1\",\"project\":\"o-1\",\"name\":\"label.pdf\",\"mime\":\"application/pdf\",\"data\":\"JVBERi0xLjQK\"}\n"
        "{\"op\":\"message.reply\",\"as\":\"alice\",\"id\":\"m-3\",\"message\":\"m-2\",\"body\":\"Thanks\",\"attachments\":[\"a-1\"]}\n"
        "{\"op\":\"message.pin\",\"as\":\"alice\",\"message\":\"m-3\"}\n";
    char path[4200];
    snprintf(path, sizeof path, "%s.jsonl", logdir);
    ck_assert_int_eq(tu_write_file(path, lines, strlen(lines)), 0);
    char *out;
    ck_assert_int_eq(tu_run(&out, "%s -d %s apply %s", TL_CLI, logdir, path), 0);
    ck_assert_msg(!strstr(out, "\"ok\":false"), "a setup line failed: %s", out);
    free(out);
}

START_TEST(json_shapes) {
    setup();
    json_t *r;
    ck_assert_int_eq(cli(&r, "tracking --as alice --json"), 0);
    json_t *row = json_array_get(json_object_get(r, "rows"), 0);
    static const char *const row_keys[] = {"project", "type", "title", "status", "last_activity", "unread", "version", NULL};
    has_keys(row, row_keys);
    ck_assert_str_eq(pf_str(row, "status"), "shipped");
    ck_assert_int_eq(pf_int(row, "unread"), 2); /* the ambassador message and m-2 */
    ck_assert(json_is_null(json_object_get(r, "next")));
    json_decref(r);
    /* --json and -d before the command */
    int st = tu_run(NULL, "%s --json -d %s tracking --as sam --sort unread --type order --limit 1 >/dev/null", TL_CLI, logdir);
    ck_assert_int_eq(st, 0);

    ck_assert_int_eq(cli(&r, "dashboard --as sam --json"), 0);
    json_t *panels = json_object_get(r, "panels");
    ck_assert_int_eq(json_array_size(panels), 3);
    ck_assert_str_eq(pf_str(json_array_get(panels, 1), "type"), "order");
    json_t *m = json_array_get(json_object_get(json_array_get(panels, 1), "messages"), 0);
    has_keys(m, message_keys);
    ck_assert_str_eq(pf_str(m, "id"), "m-3");
    json_decref(r);
    ck_assert_int_eq(cli(&r, "dashboard --as sam --type order --more --limit 1 --json"), 0);
    ck_assert_str_eq(pf_str(r, "type"), "order");
    ck_assert_int_eq(pf_int(r, "unread"), 2);
    const char *next = pf_str(r, "next");
    ck_assert_ptr_nonnull(next);
    json_t *r2;
    ck_assert_int_eq(cli(&r2, "dashboard --as sam --type order --more --limit 1 --cursor %s --json", next), 0);
    ck_assert_str_eq(pf_str(json_array_get(json_object_get(r2, "messages"), 0), "id"), "m-1");
    json_decref(r2);
    json_decref(r);

    ck_assert_int_eq(cli(&r, "unread --as sam --json"), 0);
    ck_assert_int_eq(pf_int(r, "total"), 3);
    static const char *const types[] = {"application", "order", "video", "support", NULL};
    has_keys(json_object_get(r, "by_type"), types);
    json_decref(r);
    ck_assert_int_eq(cli(&r, "unread --as alice --project o-1 --json"), 0);
    ck_assert_str_eq(pf_str(r, "project"), "o-1");
    ck_assert_int_eq(json_object_size(json_object_get(r, "by_channel")), 3);
    json_decref(r);

    ck_assert_int_eq(cli(&r, "messages --as sam --project o-1 --channel chat --topic t-1 --json"), 0);
    json_t *msgs = json_object_get(r, "messages");
    ck_assert_int_eq(json_array_size(msgs), 3);
    m = json_array_get(msgs, 0);
    ck_assert_str_eq(pf_str(m, "id"), "m-3");
    ck_assert(json_is_true(json_object_get(m, "pinned")));
    static const char *const att_keys[] = {"id", "name", "size", "mime", NULL};
    has_keys(json_array_get(json_object_get(m, "attachments"), 0), att_keys);
    json_decref(r);
    ck_assert_int_eq(cli(&r, "messages --as sam --account acme --channel support --json"), 0);
    m = json_array_get(json_object_get(r, "messages"), 0);
    has_keys(m, message_keys);
    ck_assert(json_is_null(json_object_get(m, "project")));
    json_decref(r);

    ck_assert_int_eq(cli(&r, "history --as sam --project o-1 --limit 2 --json"), 0);
    json_t *e = json_array_get(json_object_get(r, "entries"), 0);
    static const char *const entry_keys[] = {"seq", "ts", "actor", "kind", NULL};
    has_keys(e, entry_keys);
    ck_assert_ptr_nonnull(pf_str(r, "next"));
    json_decref(r);

    ck_assert_int_eq(cli(&r, "topics --as alice --project o-1 --json"), 0);
    json_t *t = json_array_get(json_object_get(r, "topics"), 0);
    static const char *const topic_keys[] = {"id", "title", "author", "ts", "messages", "unread", NULL};
    has_keys(t, topic_keys);
    ck_assert_int_eq(pf_int(t, "messages"), 3);
    json_decref(r);

    ck_assert_int_eq(cli(&r, "digest --json"), 0);
    ck_assert_int_eq(strlen(pf_str(r, "digest")), 64);
    json_decref(r);
}
END_TEST

START_TEST(refusals_and_human_output) {
    setup();
    struct { const char *args, *error; } cases[] = {
        {"tracking --as ghost --json", "not_found"},
        {"tracking --json", "invalid_input"},
        {"tracking --as alice --sort name --json", "invalid_input"},
        {"messages --as sam --project o-1 --channel notes --json", "forbidden"},
        {"messages --as alice --project o-404 --channel chat --json", "not_found"},
        {"history --as zoe --project o-404 --json", "not_found"},
        {"topics --as zoe --project o-1 --json", "forbidden"},
        {"unread --as alice --project nope --json", "not_found"},
        {"dashboard --as alice --more --json", "invalid_input"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r;
        int st = cli(&r, "%s", cases[i].args);
        ck_assert_msg(st == 1, "`%s` exited %d", cases[i].args, st);
        ck_assert(json_is_false(json_object_get(r, "ok")));
        ck_assert_msg(!strcmp(pf_str(r, "error"), cases[i].error), "`%s`: %s", cases[i].args, pf_str(r, "error"));
        ck_assert_ptr_nonnull(pf_str(r, "message"));
        json_decref(r);
    }
    ck_assert_int_eq(cli(NULL, "tracking --as alice --colour red"), 1); /* a malformed flag is a refusal (SPEC: exits 1) */
    { /* with --json, a malformed flag prints the error object alone, as every refusal does:
       * stdout and stderr merged still parse as one JSON object */
        char *both;
        ck_assert_int_eq(tu_run(&both, "%s -d %s tracking --as alice --limit abc --json 2>&1", TL_CLI, logdir), 1);
        json_error_t err;
        json_t *o = json_loads(both, 0, &err);
        ck_assert_msg(o != NULL, "not one JSON object: %s", both);
        ck_assert_str_eq(pf_str(o, "error"), "invalid_input");
        json_decref(o);
        free(both);
    }
    char *out;
    ck_assert_int_eq(tu_run(&out, "%s -d %s tracking --as alice", TL_CLI, logdir), 0);
    ck_assert_ptr_nonnull(strstr(out, "● o-1"));
    ck_assert_ptr_nonnull(strstr(out, "Order #1"));
    free(out);
    ck_assert_int_eq(tu_run(&out, "%s -d %s messages --as sam --project o-1 --channel chat", TL_CLI, logdir), 0);
    ck_assert_ptr_nonnull(strstr(out, "Tomorrow"));
    free(out);
}
END_TEST

/* A cursor belongs to the query, viewer and list whose page gave it: handed to another one it
 * is invalid_input (it once read as a position in the other list: a page skipped or wrong). */
static char *next_of(const char *args) {
    json_t *r;
    ck_assert_int_eq(cli(&r, "%s --json", args), 0);
    const char *n = pf_str(r, "next");
    ck_assert_msg(n != NULL, "`%s` gave no cursor", args);
    char *copy = strdup(n);
    json_decref(r);
    return copy;
}

START_TEST(cursors_belong_to_their_query) {
    setup();
    char path[4200], *out;
    snprintf(path, sizeof path, "%s.more.jsonl", logdir);
    const char *more = "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"Order #2\"}\n"
                       "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-2\",\"project\":\"o-2\",\"body\":\"Later\"}\n"
                       "{\"op\":\"user.create\",\"id\":\"ann\",\"role\":\"auditor\",\"name\":\"Ann\"}\n";
    ck_assert_int_eq(tu_write_file(path, more, strlen(more)), 0);
    ck_assert_int_eq(tu_run(&out, "%s -d %s apply %s", TL_CLI, logdir, path), 0);
    ck_assert_msg(!strstr(out, "\"ok\":false"), "%s", out);
    free(out);
    char *h = next_of("history --as alice --project o-1 --limit 1");
    char *m = next_of("messages --as sam --project o-1 --channel chat --topic t-1 --limit 1");
    char *t = next_of("tracking --as alice --sort unread --limit 1");
    char *d = next_of("dashboard --as sam --type order --more --limit 1");
    char *a = next_of("tracking --as ann --sort unread --limit 1"); /* an auditor's: the default order */
    struct { const char *args, *cursor; int status; } cases[] = {
        {"history --as alice --project o-1 --limit 3", h, 0}, /* its own list, another page size */
        {"history --as alice --project o-2", h, 1},            /* another project */
        {"history --as sam --project o-1", h, 1},              /* another viewer */
        {"messages --as alice --project o-1 --channel notes", h, 1}, /* another query */
        {"messages --as sam --project o-1 --channel chat --topic t-1", m, 0},
        {"messages --as sam --project o-1 --channel chat", m, 1}, /* every topic: another list */
        {"tracking --as alice --sort unread", t, 0},
        {"tracking --as alice", t, 1},                          /* another order */
        {"tracking --as alice --sort unread --type video", t, 1},
        {"dashboard --as sam --type order --more", d, 0},
        {"dashboard --as sam --type application --more", d, 1},
        {"dashboard --as sam", d, 1},                /* the panels take no cursor: See more pages */
        {"dashboard --as sam --type order", d, 1},
        {"history --as sam --project o-1", d, 1},
        {"tracking --as ann", a, 0}, /* the same order, so the same list */
        {"tracking --as ann --sort activity", a, 0},
        {"tracking --as ann --sort unread", a, 0},
        /* invalid input comes before not_found and forbidden (SPEC "When several rules are
         * broken"): a foreign cursor with an unknown viewer, or one outside the audience */
        {"tracking --as nobody", h, 1},
        {"tracking --as nobody --sort unread", h, 1},
        {"messages --as nobody --project o-1 --channel notes", h, 1},
        {"messages --as sam --project o-1 --channel notes", h, 1}, /* staff: notes are forbidden */
        {"messages --as alice --project nope --channel notes", h, 1},
        {"history --as nobody --project o-1", t, 1},
        {"dashboard --as nobody --type order --more", h, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r;
        int st = cli(&r, "%s --cursor %s --json", cases[i].args, cases[i].cursor);
        ck_assert_msg(st == cases[i].status, "`%s` with its cursor exited %d", cases[i].args, st);
        if (st) ck_assert_str_eq(pf_str(r, "error"), "invalid_input");
        json_decref(r);
    }
    free(h);
    free(m);
    free(t);
    free(d);
    free(a);
}
END_TEST

/* --limit (SPEC "Query flags"): a page size larger than the list is the whole list, however
 * large (not wrapped to a small one, not cut to a few); a malformed one (negative, signed,
 * blank, trailing junk, past 2^64 - 1) is invalid_input, exit 1; --limit=N is --limit N. And a
 * --json answer is one line: the object and its newline. */
static size_t entries_of(const char *args, int *has_next) {
    json_t *r;
    ck_assert_int_eq(cli(&r, "%s --json", args), 0);
    size_t n = json_array_size(json_object_get(r, "entries"));
    *has_next = !json_is_null(json_object_get(r, "next"));
    json_decref(r);
    return n;
}

START_TEST(limits_and_json_lines) {
    setup();
    char path[4200], lines[4096] = "", *out;
    for (int i = 1; i <= 12; i++) {
        size_t len = strlen(lines);
        snprintf(lines + len, sizeof lines - len,
                 "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"nn-%d\",\"project\":\"o-1\",\"body\":\"more %d\"}\n", i, i);
    }
    snprintf(path, sizeof path, "%s.notes.jsonl", logdir);
    ck_assert_int_eq(tu_write_file(path, lines, strlen(lines)), 0);
    ck_assert_int_eq(tu_run(&out, "%s -d %s apply %s", TL_CLI, logdir, path), 0);
    ck_assert_msg(!strstr(out, "\"ok\":false"), "%s", out);
    free(out);
    int next;
    size_t all = entries_of("history --as alice --project o-1", &next);
    ck_assert_msg(all > 12 && all < 50 && !next, "%zu entries", all);
    static const char *const whole[] = {"100000", "100001", "4294967296", "4294967297", "18446744073709551615"};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        char args[128];
        snprintf(args, sizeof args, "history --as alice --project o-1 --limit %s", whole[i]);
        size_t n = entries_of(args, &next);
        ck_assert_msg(n == all && !next, "--limit %s gave %zu of %zu entries (next: %d)", whole[i], n, all, next);
    }
    ck_assert_int_eq(entries_of("history --as alice --project o-1 --limit=3", &next), 3);
    ck_assert(next);
    static const char *const bad[] = {"-1", "-0", "+5", "' 5'", "5x", "0x10", "''", "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r;
        int st = cli(&r, "history --as alice --project o-1 --limit %s --json", bad[i]);
        ck_assert_msg(st == 1, "--limit %s exited %d", bad[i], st);
        ck_assert_str_eq(pf_str(r, "error"), "invalid_input");
        json_decref(r);
    }
    /* one JSON object per line: every query's answer ends with its one newline */
    static const char *const queries[] = {"tracking --as alice", "dashboard --as sam", "dashboard --as sam --type order --more",
                                          "unread --as sam", "unread --as alice --project o-1",
                                          "messages --as sam --project o-1 --channel chat", "history --as sam --project o-1",
                                          "topics --as alice --project o-1", "digest", "history --as nobody --project o-1"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        tu_run(&out, "%s -d %s %s --json 2>/dev/null", TL_CLI, logdir, queries[i]);
        size_t len = strlen(out);
        ck_assert_msg(len > 2 && out[len - 1] == '\n' && !memchr(out, '\n', len - 1), "`%s --json`: not one line: [%s]",
                      queries[i], out);
        free(out);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, json_shapes);
    tcase_add_test(tc, refusals_and_human_output);
    tcase_add_test(tc, cursors_belong_to_their_query);
    tcase_add_test(tc, limits_and_json_lines);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
