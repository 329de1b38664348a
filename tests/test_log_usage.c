/*
 * test_log_usage.c — the API's arguments: a NULL handle, output or callback, an option struct
 * of another version and an unknown open flag are TL_EUSAGE wherever the public header takes
 * one, never a crash, and a refused call's outputs are NULL; an empty append is no error.
 *
 * The test makes its own log in a fresh temporary directory.
 */
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

int main(void) {
    Suite *s = suite_create("log_usage");
    TCase *tc = tcase_create("usage");
    tcase_add_test(tc, null_arguments_refused);
    tcase_add_test(tc, result_json_reads_within_the_struct);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
