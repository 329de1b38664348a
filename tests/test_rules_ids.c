/*
 * test_rules_ids.c — the rules about ids beyond single rows: a retry is recognised by its
 * whole fingerprint (a thousand different names for one account id are all `exists`), and by
 * a topic's first message id; once a body is erased its retry is `exists`; erasure by an id
 * that a message and an attachment share must name the kind; absent ids are generated,
 * unique and reported.
 *
 * Each test runs on a fresh copy of the common scenario (domain_fixture.h).
 */
#include "rules_fixture.h"

/* Once a message's body is erased, a retry cannot be recognised (the fingerprint is keyed
 * with the erased salt): the same id is then `exists`, and nothing is appended. */
START_TEST(retry_after_erasure) {
    fx f;
    fx_scenario(&f);
    tl_result res;
    ck_assert_int_eq(tl_erase(f.log, "n-1", "GDPR request", &res), 0);
    uint64_t before = fx_events(&f);
    char *cmd = dq("{'op':'note.add','as':'bob','id':'n-1','project':'o-1','body':'Check stock'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), TL_EEXISTS);
    ck_assert_uint_eq(fx_events(&f), before);
    free(cmd);
    /* erasing twice is a no-op */
    ck_assert_int_eq(tl_erase(f.log, "n-1", "again", &res), 0);
    ck_assert(res.noop);
    ck_assert_uint_eq(fx_events(&f), before);
    ck_assert_int_eq(tl_erase(f.log, "nope", "x", &res), TL_ENOTFOUND);
    ck_assert_int_eq(tl_erase(f.log, "bad id", "x", &res), TL_EINVALID);
    ck_assert_int_eq(tl_erase(f.log, "m-2", "", &res), TL_EINVALID);
    ck_assert_uint_eq(fx_events(&f), before);
    fx_close(&f);
}
END_TEST

/* A topic.create that names only its first message's id (the topic's id generated) is
 * retried by that id: the original result, both ids, nothing appended; other content is
 * `exists`. */
START_TEST(topic_retry_by_message_id) {
    fx f;
    fx_scenario(&f);
    tl_result first, res;
    char *cmd = dq("{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'b','message_id':'m-55'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &first), 0);
    ck_assert(!first.duplicate);
    uint64_t before = fx_events(&f);
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0);
    ck_assert_msg(res.duplicate, "a retry by message_id was not answered as a duplicate (%s)", res.message);
    ck_assert_uint_eq(res.seq, first.seq);
    ck_assert_str_eq(res.id, first.id);
    ck_assert_str_eq(res.message_id, "m-55");
    ck_assert_uint_eq(fx_events(&f), before);
    free(cmd);
    cmd = dq("{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'other','message_id':'m-55'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), TL_EEXISTS);
    free(cmd);
    /* m-2 is a message of topic t-1 but not its first one: not a retry of t-1 */
    cmd = dq("{'op':'topic.create','as':'alice','project':'o-1','title':'Shipping','body':'When?','message_id':'m-2'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), TL_EEXISTS);
    free(cmd);
    ck_assert_uint_eq(fx_events(&f), before);
    fx_close(&f);
}
END_TEST

/* A message and an attachment may share an id (ids are unique per kind): erasing by that id
 * alone is refused as ambiguous, and naming the kind erases the one named. */
START_TEST(erase_shared_id) {
    fx f;
    fx_scenario(&f);
    tl_result res;
    char *cmd = dq("{'op':'attachment.upload','as':'alice','id':'dup','project':'o-1','name':'d.txt','data':'ZGF0YQ=='}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0);
    free(cmd);
    cmd = dq("{'op':'note.add','as':'alice','id':'dup','project':'o-1','body':'a note'}");
    ck_assert_int_eq(fx_cmd(&f, cmd, &res), 0);
    free(cmd);
    uint64_t before = fx_events(&f);
    ck_assert_int_eq(tl_erase(f.log, "dup", "request", &res), TL_EINVALID);
    ck_assert_int_eq(tl_erase_kind(f.log, "video", "dup", "request", &res), TL_EINVALID);
    ck_assert_int_eq(tl_erase_kind(f.log, "message", "a-1", "request", &res), TL_ENOTFOUND);
    ck_assert_uint_eq(fx_events(&f), before);
    ck_assert_int_eq(tl_erase_kind(f.log, "attachment", "dup", "request", &res), 0);
    ck_assert(!res.noop);
    ck_assert_uint_eq(fx_events(&f), before + 1);
    uint8_t *bytes;
    size_t len;
    ck_assert_int_ne(tl_attachment_get(f.log, "dup", "alice", &bytes, &len, NULL, NULL), 0);
    ck_assert_int_eq(tl_erase_kind(f.log, "attachment", "dup", "again", &res), 0);
    ck_assert(res.noop);
    ck_assert_int_eq(tl_erase_kind(f.log, "message", "dup", "request", &res), 0);
    ck_assert(!res.noop);
    ck_assert_uint_eq(fx_events(&f), before + 2);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(f.log, NULL, &vr) == 0, "%s", vr.reason);
    fx_close(&f);
}
END_TEST

/* Generated ids: absent ids are chosen by the engine, unique, and reported. */
START_TEST(generated_ids) {
    fx f;
    fx_scenario(&f);
    tl_result r1, r2, r3;
    char *a = dq("{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'x'}");
    char *b = dq(NOTE("alice", ""));
    ck_assert_int_eq(fx_cmd(&f, a, &r1), 0);
    ck_assert_int_eq(fx_cmd(&f, b, &r2), 0);
    ck_assert_int_eq(fx_cmd(&f, b, &r3), 0);
    ck_assert(r1.id[0] && r1.message_id[0] && r2.id[0] && r3.id[0]);
    ck_assert_str_ne(r2.id, r3.id);
    ck_assert_str_ne(r1.message_id, r2.id);
    free(a);
    free(b);
    fx_close(&f);
}
END_TEST

/* "The same id with different content is exists", however the contents differ: no two of
 * a thousand different names for account acme are taken for the original (account.create
 * has no content salt, so this is the same every run). */
START_TEST(retry_needs_the_whole_fingerprint) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    for (int i = 0; i < 1000; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme %d\"}", i);
        tl_result res;
        int rc = fx_cmd(&f, line, &res);
        ck_assert_msg(rc == TL_EEXISTS && !res.duplicate, "%s: want exists, got %s%s", line, tl_strerror(rc),
                      res.duplicate ? " (a duplicate)" : "");
    }
    ck_assert_uint_eq(fx_events(&f), before);
    fx_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_ids");
    TCase *tb = tcase_create("more");
    tcase_set_timeout(tb, 120);
    tcase_add_unchecked_fixture(tb, template_up, fx_template_remove);
    tcase_add_test(tb, retry_after_erasure);
    tcase_add_test(tb, topic_retry_by_message_id);
    tcase_add_test(tb, erase_shared_id);
    tcase_add_test(tb, generated_ids);
    tcase_add_test(tb, retry_needs_the_whole_fingerprint);
    suite_add_tcase(s, tb);
    return tu_main(s);
}
