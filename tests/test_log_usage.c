/*
 * test_log_usage.c — the API's arguments: a NULL handle, output or callback, an option struct
 * of another version and an unknown open flag are TL_EUSAGE wherever the public header takes
 * one, never a crash, and a refused call's outputs are NULL; an empty append is no error.
 *
 * The test makes its own log in a fresh temporary directory.
 */
#include <pthread.h>

#include "log_fixture.h"

/* A NULL where a handle, an output or a callback is required is TL_EUSAGE, never a crash;
 * so is an option struct of another version or an unknown open flag. */
static int follow_noop(const tl_event_view *ev, void *p) { (void)ev, (void)p; return 1; }

/* A tl_result the caller filled in itself, its strings not terminated: tl_result_json reads
 * each string up to its array's size, never past it (ASan saw a stack over-read before). */
START_TEST(result_json_reads_within_the_struct) {
    struct {
        tl_result res;
        char after[512]; /* what an unbounded read would run into */
    } s;
    memset(&s, 'x', sizeof s);
    s.res.code = 0;
    s.res.seq = 7;
    s.res.noop = 0;
    s.res.duplicate = 0;
    memset(s.res.id, 'a', sizeof s.res.id);
    memset(s.res.message_id, 'b', sizeof s.res.message_id);
    char *json;
    ck_assert_int_eq(tl_result_json(&s.res, &json), 0);
    char want[400];
    snprintf(want, sizeof want, "{\"ok\":true,\"seq\":7,\"id\":\"%.*s\",\"message_id\":\"%.*s\"}", (int)sizeof s.res.id,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)sizeof s.res.message_id,
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    ck_assert_str_eq(json, want);
    tl_free(json);
    s.res.code = TL_ENOTFOUND;
    memset(s.res.message, 'm', sizeof s.res.message);
    ck_assert_int_eq(tl_result_json(&s.res, &json), 0);
    ck_assert_msg(strlen(json) < 64 + sizeof s.res.message, "%s", json);
    ck_assert_ptr_null(strchr(json, 'x'));
    tl_free(json);
}
END_TEST

START_TEST(null_arguments_refused) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    char hex[TL_PUBKEY_HEX_SIZE], *json;
    uint8_t *bytes;
    size_t len;
    tl_log_stats st;
    tl_iter *it;
    tl_event_view ev = {0};
    tl_cmd *cmd;
    tl_batch *b;
    tl_result res = {0};
    tl_verify_report vr;
    tl_draft d = {"x.t", "a", NULL, (const uint8_t *)"\x80", 1};
    ck_assert_int_eq(tl_log_open(NULL, dir, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_stats_get(NULL, &st), TL_EUSAGE);
    ck_assert_int_eq(tl_log_stats_get(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_db_stats_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_log_db_stats_json(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_pubkey(NULL, hex), TL_EUSAGE);
    ck_assert_int_eq(tl_log_pubkey(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_rotate_key(NULL, hex), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_open(NULL, 1, &it), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_open(log, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_iter_next(NULL, &ev), TL_EUSAGE);
    ck_assert_int_eq(tl_event_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_event_json(&ev, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_follow(NULL, 1, 1, NULL, follow_noop, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_follow(log, 1, 1, NULL, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(NULL, &d, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append(log, NULL, 1, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append_records(NULL, NULL, NULL, 0), TL_EUSAGE);
    ck_assert_int_eq(tl_log_append_records(log, NULL, NULL, 1), TL_EUSAGE);
    ck_assert_int_eq(tl_log_record(NULL, 1, &bytes, &len), TL_EUSAGE);
    ck_assert_int_eq(tl_log_record(log, 1, NULL, &len), TL_EUSAGE);
    ck_assert_int_eq(tl_log_verify(NULL, NULL, &vr), TL_EUSAGE);
    ck_assert_int_eq(tl_log_verify(log, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_log_checkpoint(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_log_checkpoint(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_cmd_new(NULL, "note.add"), TL_EUSAGE);
    ck_assert_int_eq(tl_cmd_new(&cmd, NULL), TL_EUSAGE);
    ck_assert_ptr_null(cmd);
    ck_assert_int_eq(tl_cmd_parse(NULL, "{}", 2, NULL), TL_EUSAGE);
    cmd = (tl_cmd *)&cmd; /* outputs are NULL after a refusal */
    ck_assert_int_eq(tl_cmd_parse(&cmd, NULL, 2, NULL), TL_EUSAGE);
    ck_assert_ptr_null(cmd);
    it = (tl_iter *)&it;
    ck_assert_int_eq(tl_iter_open(NULL, 1, &it), TL_EUSAGE);
    ck_assert_ptr_null(it);
    b = (tl_batch *)&b;
    ck_assert_int_eq(tl_batch_begin(NULL, &b), TL_EUSAGE);
    ck_assert_ptr_null(b);
    json = (char *)&json;
    ck_assert_int_eq(tl_log_checkpoint(NULL, &json), TL_EUSAGE);
    ck_assert_ptr_null(json);
    const uint8_t *no_record = NULL;
    size_t ten = 10;
    ck_assert_int_eq(tl_log_append_records(log, &no_record, &ten, 1), TL_EUSAGE);
    ck_assert_int_eq(tl_result_json(NULL, &json), TL_EUSAGE);
    ck_assert_int_eq(tl_result_json(&res, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_batch_begin(NULL, &b), TL_EUSAGE);
    ck_assert_int_eq(tl_batch_begin(log, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_erase(NULL, "m-1", "r", &res), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(NULL, "a", "b", &bytes, &len, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(log, "a", "b", NULL, &len, NULL, NULL), TL_EUSAGE);
    ck_assert_int_eq(tl_attachment_get(log, "a", "b", &bytes, NULL, NULL, NULL), TL_EUSAGE);
    /* versions and flags */
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    tl_log *other;
    oo.version = 99;
    ck_assert_int_eq(tl_log_open(&other, dir, &oo), TL_EUSAGE);
    oo.version = TL_OPEN_OPTIONS_VERSION;
    oo.flags = 1u << 20;
    ck_assert_int_eq(tl_log_open(&other, dir, &oo), TL_EUSAGE);
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.version = 0;
    ck_assert_int_eq(tl_log_verify(log, &vo, &vr), TL_EUSAGE);
    tl_init_options io = TL_INIT_OPTIONS_INIT;
    io.version = 7;
    ck_assert_int_eq(tl_log_init("/tmp/never-made-by-threadlog-test", &io, NULL), TL_EUSAGE);
    /* an empty append succeeds with nothing appended and first seq 0 */
    uint64_t first = 77;
    ck_assert_int_eq(tl_log_append(log, NULL, 0, &first), 0);
    ck_assert_uint_eq(first, 0);
    verify_ok(log, 1);
    remove_log(log, dir);
}
END_TEST

/* A refused tl_cmd_parse fills the caller's result too, as the header says (it was left as
 * the caller's garbage for NULL text); an iterator's end leaves its own words in
 * tl_errdetail(), not an earlier failure's. */
START_TEST(refusals_leave_their_own_words) {
    tl_result res;
    memset(&res, 0x5a, sizeof res);
    tl_cmd *cmd;
    ck_assert_int_eq(tl_cmd_parse(&cmd, NULL, 5, &res), TL_EUSAGE);
    ck_assert_ptr_null(cmd);
    ck_assert_int_eq(res.code, TL_EUSAGE);
    ck_assert_msg(memchr(res.message, 0, sizeof res.message) && strstr(res.message, "required"), "res.message not filled");
    char *dir;
    tl_log *log = tu_new_log(&dir);
    uint8_t *rec;
    size_t len;
    ck_assert_int_eq(tl_log_record(log, 42, &rec, &len), TL_ENOTFOUND); /* a failure with words of its own */
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), TL_ENOTFOUND);
    ck_assert_msg(strstr(tl_errdetail(), "42") == NULL, "the iterator's end says: %s", tl_errdetail());
    tl_iter_close(it);
    remove_log(log, dir);
}
END_TEST

/* Concurrent callers whose shared commit fails (here: a read-only handle, so its writer cannot
 * begin): each result says "the commit failed: " once, then the reason. The reason was read
 * from tl_errdetail()'s buffer while each result rewrote it: the prefix grew by one per
 * command of the group and the reason was cut off after about a dozen. */
#define CALLERS 16
static tl_log *shared_log;
static pthread_barrier_t callers_bar;
static void *call_send(void *arg) {
    tl_result *res = arg;
    tl_cmd *cmd;
    const char *line = "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"x\"}";
    if (tl_cmd_parse(&cmd, line, strlen(line), res) != 0) return NULL;
    pthread_barrier_wait(&callers_bar);
    (void)tl_cmd_exec(shared_log, cmd, res);
    tl_cmd_free(cmd);
    return NULL;
}

START_TEST(a_failed_shared_commit_says_why_once) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tl_log_close(log);
    shared_log = open_log(dir, TL_OPEN_READONLY);
    for (int round = 0; round < 20; round++) {
        pthread_barrier_init(&callers_bar, NULL, CALLERS);
        pthread_t t[CALLERS];
        tl_result res[CALLERS];
        memset(res, 0, sizeof res);
        for (int i = 0; i < CALLERS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, call_send, &res[i]), 0);
        for (int i = 0; i < CALLERS; i++) pthread_join(t[i], NULL);
        pthread_barrier_destroy(&callers_bar);
        for (int i = 0; i < CALLERS; i++) {
            ck_assert_int_eq(res[i].code, TL_EREADONLY);
            const char *after = strstr(res[i].message, "the commit failed: ");
            ck_assert_msg(after && !strstr(after + 1, "the commit failed") && strstr(res[i].message, "read-only"),
                          "round %d, caller %d: \"%s\"", round, i, res[i].message);
        }
    }
    remove_log(shared_log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_usage");
    TCase *tc = tcase_create("usage");
    tcase_add_test(tc, null_arguments_refused);
    tcase_add_test(tc, result_json_reads_within_the_struct);
    tcase_add_test(tc, refusals_leave_their_own_words);
    tcase_add_test(tc, a_failed_shared_commit_says_why_once);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
