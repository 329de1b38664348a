/*
 * test_malformed.c — malformed JSON lines through the real `threadlog apply`.
 *
 * The corpus is tests/data/bad_lines/ (see its README): NAME.line holds one line's bytes,
 * NAME.expect the code and a piece of the message it must get. A few cases too big to keep
 * as files are generated here (a huge string, lines at and over the too_large threshold).
 *
 * Each run interleaves: a good line, then for every case a bad line followed by a good
 * one, with blank and white-space-only lines scattered between. What must hold: exactly one
 * result line per non-blank input line, in order; the bad ones refused with their code and
 * a message; every good one after a bad one still runs (its seq proves it); exit status 0.
 * It runs from a file, from a pipe (the "input pauses" path) with small groups, and each
 * case also through the library.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "testutil.h"

#define MAX_ATT 1024
/* 4/3 x 1024 + 1 MiB = 1049941.33: longer than this many bytes is too_large */
#define THRESHOLD (MAX_ATT * 4 / 3 + (1 << 20))

typedef struct bad {
    char name[128];
    char *line;
    size_t len;
    char code[32];
    char want[128]; /* a piece of the message */
    int cli_only;   /* too_large is a rule of apply's line reader, not of the library */
} bad;

static bad cases[256];
static size_t ncases, nfiles;

static int by_name(const void *a, const void *b) { return strcmp(((const bad *)a)->name, ((const bad *)b)->name); }

static void add_case(const char *name, char *line, size_t len, const char *code, const char *want, int cli_only) {
    ck_assert_uint_lt(ncases, sizeof cases / sizeof cases[0]);
    bad *c = &cases[ncases++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->line = line;
    c->len = len;
    snprintf(c->code, sizeof c->code, "%s", code);
    snprintf(c->want, sizeof c->want, "%s", want);
    c->cli_only = cli_only;
}

/* A line of exactly len bytes: a note whose body fills what the envelope leaves. */
static char *sized_line(size_t len) {
    const char *head = "{\"op\":\"note.add\",\"as\":\"alice\",\"project\":\"o-1\",\"body\":\"", *tail = "\"}";
    size_t h = strlen(head), t = strlen(tail);
    char *s = malloc(len + 1);
    memcpy(s, head, h);
    memset(s + h, 'x', len - h - t);
    memcpy(s + len - t, tail, t);
    s[len] = 0;
    return s;
}

static void load_corpus(void) {
    if (ncases) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/data/bad_lines", TL_SOURCE_DIR);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no corpus at %s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".line") != 0) continue;
        char path[4400], name[128];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *line = tu_read_file(path, &len);
        ck_assert_ptr_nonnull(line);
        ck_assert_msg(!memchr(line, '\n', len), "%s holds a newline", name);
        snprintf(path, sizeof path, "%s/%s.expect", dir, name);
        char *exp = tu_read_file(path, NULL);
        ck_assert_msg(exp != NULL, "%s has no .expect", name);
        exp[strcspn(exp, "\n")] = 0;
        char *sp = strchr(exp, ' ');
        ck_assert_msg(sp != NULL, "%s.expect: CODE TEXT", name);
        *sp = 0;
        add_case(name, line, len, exp, sp + 1, 0);
        free(exp);
    }
    closedir(d);
    nfiles = ncases;
    qsort(cases, ncases, sizeof cases[0], by_name);

    /* generated */
    char *huge = malloc(1000100);
    int h = sprintf(huge, "{\"op\":\"account.create\",\"id\":\"a\",\"name\":\"");
    memset(huge + h, 'n', 1000000);
    strcpy(huge + h + 1000000, "\"}");
    add_case("gen-huge-name", huge, strlen(huge), "invalid_input", "name must be 1 to", 0);
    add_case("gen-line-at-threshold", sized_line(THRESHOLD), THRESHOLD, "invalid_input", "body must be 1 to", 0);
    add_case("gen-line-over-threshold", sized_line(THRESHOLD + 1), THRESHOLD + 1, "too_large", "longer than", 1);
    char *garbage = malloc(3u << 20);
    memset(garbage, '[', 3u << 20);
    add_case("gen-3MiB-line", garbage, 3u << 20, "too_large", "not decoded", 1);
    /* the newline is not counted, nor the CR of a CRLF newline: at the threshold, decoded */
    char *crlf = sized_line(THRESHOLD + 1), *at = sized_line(THRESHOLD);
    memcpy(crlf, at, THRESHOLD);
    free(at);
    crlf[THRESHOLD] = '\r';
    add_case("gen-line-at-threshold-crlf", crlf, THRESHOLD + 1, "invalid_input", "body must be 1 to", 0);
    /* white space past the threshold, then one character: not blank, too_large */
    char *spaced = malloc(THRESHOLD + 6);
    memset(spaced, ' ', THRESHOLD + 5);
    spaced[THRESHOLD + 5] = 'x';
    add_case("gen-space-then-x-over-threshold", spaced, THRESHOLD + 6, "too_large", "not decoded", 1);
}

/* ---------------------------------------------------------------- running apply */

static char *new_log(char **base) {
    *base = tu_tmpdir();
    char *dir = malloc(strlen(*base) + 8);
    sprintf(dir, "%s/log", *base);
    char *out;
    int st = tu_run(&out, "'%s' init --max-attachment %d '%s' 2>&1", TL_CLI, MAX_ATT, dir);
    ck_assert_msg(st == 0, "init: %s", out);
    free(out);
    return dir;
}

static const char *const blanks[] = {"", "   ", "\t", " \t \r", "\r", "\f\v "};

/* The input: probe 0, then per case: maybe a blank, the bad line, probe k+1. Ends with the
 * last probe and, when tail is set, an over-long line with no newline at all. */
static void write_input(const char *path, size_t from, size_t to, int tail) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"op\":\"account.create\",\"id\":\"probe-0\",\"name\":\"P\"}\n");
    /* a line of only white space is blank however long (SPEC "Odd input"): no result */
    for (size_t i = 0; i < THRESHOLD + 5000; i++) fputc(i % 7 ? ' ' : '\t', f);
    fputc('\n', f);
    for (size_t k = from; k < to; k++) {
        fprintf(f, "%s\n", blanks[k % 6]);
        fwrite(cases[k].line, 1, cases[k].len, f);
        fprintf(f, "\n{\"op\":\"account.create\",\"id\":\"probe-%zu\",\"name\":\"P\"}\n", k - from + 1);
    }
    if (tail) {
        fputs("\n  \n", f);
        for (size_t i = 0; i < THRESHOLD + 10; i++) fputc('x', f);
    }
    fclose(f);
}

static void check_output(const char *out, size_t from, size_t to, int tail) {
    const char *p = out;
    size_t lineno = 0, nprobe = 0, want_lines = 1 + 2 * (to - from) + (tail ? 1 : 0);
    while (*p) {
        const char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "result line %zu has no newline", lineno);
        json_error_t e;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &e);
        ck_assert_msg(o != NULL, "result line %zu is not JSON: %.*s", lineno, (int)(nl - p), p);
        ck_assert_msg(lineno < want_lines, "more result lines than non-blank input lines");
        bool probe = lineno % 2 == 0 && lineno < want_lines - (tail ? 1 : 0);
        if (probe) {
            ck_assert_msg(json_is_true(json_object_get(o, "ok")), "probe %zu (after %s) failed: %.*s", nprobe,
                          nprobe ? cases[from + nprobe - 1].name : "-", (int)(nl - p), p);
            ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), (json_int_t)(nprobe + 2));
            nprobe++;
        } else {
            const bad *c = tail && lineno == want_lines - 1 ? NULL : &cases[from + lineno / 2];
            const char *code = c ? c->code : "too_large", *want = c ? c->want : "not decoded";
            const char *err = json_string_value(json_object_get(o, "error"));
            const char *msg = json_string_value(json_object_get(o, "message"));
            ck_assert_msg(json_is_false(json_object_get(o, "ok")) && err && strcmp(err, code) == 0,
                          "%s: want %s, got %.*s", c ? c->name : "tail", code, (int)(nl - p), p);
            ck_assert_msg(msg && strstr(msg, want), "%s: message \"%s\" lacks \"%s\"", c ? c->name : "tail",
                          msg ? msg : "", want);
            ck_assert_int_eq(json_object_size(o), 3);
        }
        json_decref(o);
        lineno++;
        p = nl + 1;
    }
    ck_assert_msg(lineno == want_lines, "%zu result lines for %zu non-blank input lines", lineno, want_lines);
}

enum how { FROM_FILE, FROM_PIPE, FROM_STDIN };

static void run_apply(enum how how, const char *flags, int tail) {
    load_corpus();
    char *base, *dir = new_log(&base);
    char input[4200];
    snprintf(input, sizeof input, "%s/input.jsonl", base);
    write_input(input, 0, ncases, tail);
    char *out;
    int st = how == FROM_FILE ? tu_run(&out, "'%s' -d '%s' apply %s '%s' 2>/dev/null", TL_CLI, dir, flags, input)
           : how == FROM_PIPE ? tu_run(&out, "cat '%s' | '%s' -d '%s' apply %s 2>/dev/null", input, TL_CLI, dir, flags)
                              : tu_run(&out, "'%s' -d '%s' apply %s < '%s' 2>/dev/null", TL_CLI, dir, flags, input);
    ck_assert_msg(st == 0, "apply exited %d", st);
    check_output(out, 0, ncases, tail);
    free(out);
    /* the log that took all this still verifies */
    st = tu_run(&out, "'%s' -d '%s' verify 2>&1", TL_CLI, dir);
    ck_assert_msg(st == 0, "verify: %s", out);
    free(out);
    tu_rmdir(base);
    free(dir);
    free(base);
}

START_TEST(corpus_from_a_file) { run_apply(FROM_FILE, "", 0); }
END_TEST

START_TEST(corpus_from_a_pipe_small_groups) { run_apply(FROM_PIPE, "--sync-every 3", 0); }
END_TEST

START_TEST(corpus_from_stdin_one_per_commit_with_an_overlong_tail) {
    run_apply(FROM_STDIN, "--sync-every 1", 1);
}
END_TEST

/* Each case through the library: the same code (too_large of a line is apply's rule). */
START_TEST(corpus_through_the_library) {
    load_corpus();
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_stats st0, st1;
    tl_log_stats_get(log, &st0);
    for (size_t k = 0; k < ncases; k++) {
        if (cases[k].cli_only) continue;
        tl_cmd *cmd;
        tl_result res;
        int rc = tl_cmd_parse(&cmd, cases[k].line, cases[k].len, &res);
        if (rc == 0) {
            rc = tl_cmd_exec(log, cmd, &res);
            tl_cmd_free(cmd);
        } else {
            ck_assert_ptr_null(cmd);
        }
        ck_assert_msg(strcmp(tl_strerror(rc), cases[k].code) == 0, "%s: want %s, got %s (%s)", cases[k].name,
                      cases[k].code, tl_strerror(rc), res.message);
        ck_assert_msg(strstr(res.message, cases[k].want), "%s: message \"%s\" lacks \"%s\"", cases[k].name, res.message,
                      cases[k].want);
    }
    tl_log_stats_get(log, &st1);
    ck_assert_uint_eq(st0.events, st1.events);
    tl_log_close(log);
    *strrchr(dir, '/') = 0; /* the temp dir holding the log */
    tu_rmdir(dir);
    free(dir);
    fprintf(stderr, "test_malformed: %zu corpus files + %zu generated cases\n", nfiles, ncases - nfiles);
}
END_TEST

/* Blank input: no result lines at all, exit 0, nothing appended. */
START_TEST(only_blank_lines) {
    char *base, *dir = new_log(&base);
    char input[4200];
    snprintf(input, sizeof input, "%s/blank.jsonl", base);
    const char *blank = "\n \n\t\n\r\n \f\v\r\n\n   ";
    ck_assert_int_eq(tu_write_file(input, blank, strlen(blank)), 0);
    char *out;
    int st = tu_run(&out, "'%s' -d '%s' apply '%s'", TL_CLI, dir, input);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(out, "");
    free(out);
    st = tu_run(&out, "printf '' | '%s' -d '%s' apply", TL_CLI, dir);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(out, "");
    free(out);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    tl_log_stats stats;
    ck_assert_int_eq(tl_log_stats_get(log, &stats), 0);
    ck_assert_uint_eq(stats.events, 1); /* the genesis alone */
    tl_log_close(log);
    tu_rmdir(base);
    free(dir);
    free(base);
}
END_TEST

/* A log whose attachment limit makes the line threshold saturate (one made before init bounded
 * the limit, or a crafted one): lines that cross the reader's 64 KiB reads are still read
 * whole, never refused as too_large (the threshold test must not compute "limit + 1"). */
START_TEST(saturated_threshold_reads_long_lines) {
    char *base = tu_tmpdir();
    char dir[4200], input[4200];
    snprintf(dir, sizeof dir, "%s/log", base);
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_engine_init(dir, UINT64_MAX, pk, NULL), 0);
    snprintf(input, sizeof input, "%s/long.jsonl", base);
    FILE *f = fopen(input, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("{\"op\":\"account.create\",\"id\":\"a1\",\"name\":\"", f);
    for (int i = 0; i < 200000; i++) fputc('n', f); /* too long a name: invalid_input */
    fputs("\"}\n{\"op\":\"account.create\",\"id\":\"a2\",\"name\":\"A\"}\n", f);
    fclose(f);
    char *out;
    int st = tu_run(&out, "'%s' -d '%s' apply '%s' 2>/dev/null", TL_CLI, dir, input);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(strstr(out, "\"error\":\"invalid_input\"") && strstr(out, "\"id\":\"a2\"") && !strstr(out, "too_large"),
                  "%s", out);
    free(out);
    st = tu_run(&out, "cat '%s' | '%s' -d '%s' apply 2>/dev/null", input, TL_CLI, dir);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(!strstr(out, "too_large"), "%s", out);
    free(out);
    tu_rmdir(base);
    free(base);
}
END_TEST

/* The last line may lack its newline, and CRLF line ends are tolerated (the CR is white space). */
START_TEST(line_ends) {
    char *base, *dir = new_log(&base);
    char input[4200];
    snprintf(input, sizeof input, "%s/ends.jsonl", base);
    const char *text = "{\"op\":\"account.create\",\"id\":\"a1\",\"name\":\"A\"}\r\n"
                       "{\"op\":\"account.create\",\"id\":\"a2\",\"name\":\"A\"}";
    ck_assert_int_eq(tu_write_file(input, text, strlen(text)), 0);
    char *out;
    int st = tu_run(&out, "'%s' -d '%s' apply '%s'", TL_CLI, dir, input);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"seq\":2,\"id\":\"a1\"}\n{\"ok\":true,\"seq\":3,\"id\":\"a2\"}\n");
    free(out);
    tu_rmdir(base);
    free(dir);
    free(base);
}
END_TEST

int main(void) {
    Suite *s = suite_create("malformed");
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, corpus_through_the_library);
    tcase_add_test(tc, corpus_from_a_file);
    tcase_add_test(tc, corpus_from_a_pipe_small_groups);
    tcase_add_test(tc, corpus_from_stdin_one_per_commit_with_an_overlong_tail);
    tcase_add_test(tc, only_blank_lines);
    tcase_add_test(tc, line_ends);
    tcase_add_test(tc, saturated_threshold_reads_long_lines);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
