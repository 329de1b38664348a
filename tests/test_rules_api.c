/*
 * test_rules_api.c — commands reaching the rules other than as one JSON line at a time: the
 * builder (tl_cmd_new, tl_cmd_set_*) meets the same rules, an upload declared by its size
 * alone is checked against the limit, an embedding program's own jansson allocator changes
 * nothing, and concurrent callers of tl_cmd_exec share commits, each with its own answer.
 *
 * Each test runs on a fresh copy of the common scenario (domain_fixture.h).
 */
#include <jansson.h>
#include <pthread.h>

#include "rules_fixture.h"

/* An embedding program may give jansson its own allocator: what the library hands out is
 * still freed with tl_free (the result line, and the fingerprint it computes inside). */
static void *offset_malloc(size_t n) {
    char *p = malloc(n + 16);
    return p ? p + 16 : NULL;
}

static void offset_free(void *p) {
    if (p) free((char *)p - 16);
}

START_TEST(own_jansson_allocator) {
    fx f;
    fx_scenario(&f);
    json_set_alloc_funcs(offset_malloc, offset_free);
    tl_result res;
    char *cmd = dq("{'op':'note.add','as':'alice','project':'o-1','body':'with another allocator'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0);
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0); /* no id: a second note, not a retry */
    free(cmd);
    char *line = NULL;
    ck_assert_int_eq(tl_result_json(&res, &line), 0);
    ck_assert_msg(strstr(line, "\"ok\":true") != NULL, "%s", line);
    tl_free(line);
    fx_close(&f);
    json_set_alloc_funcs(malloc, free);
}
END_TEST

/* The builder meets the same rules as JSON lines. */
START_TEST(builder_path) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    tl_cmd *c;
    tl_result res;
    /* invalid UTF-8 cannot even be set */
    ck_assert_int_eq(tl_cmd_new(&c, "note.add"), 0);
    ck_assert_int_eq(tl_cmd_set_str(c, "body", "a\xff"), TL_EINVALID);
    ck_assert_int_eq(tl_cmd_set_str(c, "bo\xff" "dy", "a"), TL_EINVALID);
    ck_assert_int_eq(tl_cmd_set_int(c, "\xc0", 1), TL_EINVALID);
    ck_assert_int_eq(tl_cmd_add_str(c, "attachments", "\xff"), TL_EINVALID);
    tl_cmd_free(c);
    /* an unknown op, a missing field, a bad id, an int where a string belongs */
    ck_assert_int_eq(tl_cmd_new(&c, "message.edit"), 0);
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), TL_EINVALID);
    tl_cmd_free(c);
    ck_assert_int_eq(tl_cmd_new(&c, "note.add"), 0);
    tl_cmd_set_str(c, "as", "alice");
    tl_cmd_set_str(c, "project", "o-1");
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), TL_EINVALID); /* no body */
    tl_cmd_set_int(c, "body", 5);
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), TL_EINVALID);
    tl_cmd_set_str(c, "body", "hello");
    tl_cmd_set_str(c, "id", "not an id");
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), TL_EINVALID);
    tl_cmd_set_str(c, "id", NULL); /* null = absent */
    for (int i = 0; i < 4; i++) tl_cmd_add_str(c, "attachments", (const char *[]){"a-1", "a-5", "a-6", "a-7"}[i]);
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), TL_ETOOMANY);
    ck_assert_uint_eq(fx_events(&f), before);
    tl_cmd_free(c);
    /* and a good one, with raw data */
    ck_assert_int_eq(tl_cmd_new(&c, "attachment.upload"), 0);
    tl_cmd_set_str(c, "as", "alice");
    tl_cmd_set_str(c, "project", "o-1");
    tl_cmd_set_str(c, "name", "raw.bin");
    ck_assert_int_eq(tl_cmd_set_data(c, "\0\1\2", 3), 0);
    ck_assert_int_eq(tl_cmd_exec(f.log, c, &res), 0);
    ck_assert_uint_eq(res.seq, before + 1);
    uint8_t *bytes;
    size_t len;
    char *mime;
    ck_assert_int_eq(tl_attachment_get(f.log, res.id, "alice", &bytes, &len, NULL, &mime), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(bytes, "\0\1\2", 3) == 0);
    ck_assert_str_eq(mime, "application/octet-stream");
    tl_free(bytes);
    tl_free(mime);
    tl_cmd_free(c);
    fx_close(&f);
}
END_TEST

/* tl_cmd_set_data_size (an upload declared by its size alone): too_large only when the
 * size is over the log's limit; at the limit it is within it, so the missing bytes are
 * invalid_input (threadlog.h). Never accepted either way. */
START_TEST(data_size_at_the_limit) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    for (uint64_t size = FX_MAX_ATTACHMENT - 1; size <= FX_MAX_ATTACHMENT + 1; size++) {
        tl_cmd *c;
        tl_result res;
        ck_assert_int_eq(tl_cmd_new(&c, "attachment.upload"), 0);
        tl_cmd_set_str(c, "as", "alice");
        tl_cmd_set_str(c, "project", "o-1");
        tl_cmd_set_str(c, "name", "big.bin");
        ck_assert_int_eq(tl_cmd_set_data_size(c, size), 0);
        int want = size > FX_MAX_ATTACHMENT ? TL_ETOOLARGE : TL_EINVALID;
        int rc = tl_cmd_exec(f.log, c, &res);
        ck_assert_msg(rc == want, "%llu bytes declared (limit %d): want %s, got %s (%s)", (unsigned long long)size,
                      FX_MAX_ATTACHMENT, tl_strerror(want), tl_strerror(rc), res.message);
        tl_cmd_free(c);
    }
    ck_assert_uint_eq(fx_events(&f), before);
    fx_close(&f);
}
END_TEST

/* Concurrent callers of tl_cmd_exec share commits (group commit): every command is decided
 * once, each caller gets its own answer, and the log holds exactly the accepted ones. */
typedef struct worker {
    fx *f;
    int id;
    uint64_t seqs[50];
    int failures;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char line[256];
        tl_result res;
        /* every 10th is refused (an unknown topic); reads of one message race between workers */
        if (i % 10 == 9)
            snprintf(line, sizeof line, "{\"op\":\"message.send\",\"as\":\"alice\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"nope\",\"body\":\"x\"}");
        else
            snprintf(line, sizeof line, "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"w%d-%d\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"n%d\"}",
                     w->id % 2 ? "sam" : "bob", w->id, i, i);
        tl_cmd *cmd;
        if (tl_cmd_parse(&cmd, line, strlen(line), &res) != 0) { w->failures++; continue; }
        int rc = tl_cmd_exec(w->f->log, cmd, &res);
        tl_cmd_free(cmd);
        if (i % 10 == 9) {
            if (rc != TL_ENOTFOUND || res.seq) w->failures++;
            w->seqs[i] = 0;
        } else {
            if (rc != 0 || !res.seq) w->failures++;
            w->seqs[i] = res.seq;
        }
    }
    return NULL;
}

START_TEST(concurrent_exec) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    enum { N = 8 };
    pthread_t t[N];
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.f = &f, .id = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    uint64_t after = fx_events(&f);
    ck_assert_uint_eq(after, before + N * 45);
    /* every accepted command has its own seq, all within the new range */
    static uint8_t seen[N * 50 + 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(w[i].failures, 0);
        for (int k = 0; k < 50; k++) {
            if (!w[i].seqs[k]) continue;
            ck_assert(w[i].seqs[k] > before && w[i].seqs[k] <= after);
            ck_assert(!seen[w[i].seqs[k] - before]);
            seen[w[i].seqs[k] - before] = 1;
        }
    }
    tl_verify_report rep;
    ck_assert_int_eq(tl_log_verify(f.log, NULL, &rep), 0);
    fx_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_api");
    TCase *tb = tcase_create("more");
    tcase_set_timeout(tb, 120);
    tcase_add_unchecked_fixture(tb, template_up, fx_template_remove);
    tcase_add_test(tb, own_jansson_allocator);
    tcase_add_test(tb, builder_path);
    tcase_add_test(tb, data_size_at_the_limit);
    tcase_add_test(tb, concurrent_exec);
    suite_add_tcase(s, tb);
    return tu_main(s);
}
