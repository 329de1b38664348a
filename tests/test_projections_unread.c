/*
 * test_projections_unread.c — the unread projection: who counts a message as unread
 * (audience but the author, never auditors), how reads, unread marks, replies, deletions
 * and users created late move the counts, and the query's shapes and refusals.
 */
#include "test_projections_fixture.h"

/* unread --as U: total and one bucket */
static void expect_total(tl_log *log, const char *user, long long total, const char *bucket, long long n) {
    tl_query q = pf_q(user);
    json_t *r = pf_query(log, tl_unread_query, &q);
    ck_assert_msg(pf_int(r, "total") == total, "%s: total %lld, expected %lld", user, pf_int(r, "total"), total);
    if (bucket) {
        long long got = pf_int(json_object_get(r, "by_type"), bucket);
        ck_assert_msg(got == n, "%s: %s %lld, expected %lld", user, bucket, got, n);
    }
    json_decref(r);
}

/* unread --as U --project P: one channel's count, or -1 when the channel is left out */
static long long channel_count(tl_log *log, const char *user, const char *project, const char *channel) {
    tl_query q = pf_q(user);
    q.project = project;
    json_t *r = pf_query(log, tl_unread_query, &q);
    json_t *v = json_object_get(json_object_get(r, "by_channel"), channel);
    long long n = v ? (long long)json_integer_value(v) : -1;
    json_decref(r);
    return n;
}

START_TEST(audience_counts_but_author_and_auditors) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    /* the ambassador message: unread for acme's members, not for zoe (author), staff or beta */
    expect_total(log, "alice", 1, "order", 1);
    expect_total(log, "bob", 1, "order", 1);
    expect_total(log, "zoe", 0, "order", 0);
    expect_total(log, "sam", 0, NULL, 0);
    expect_total(log, "carl", 0, NULL, 0);
    expect_total(log, "aud", 0, NULL, 0);
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Ship\",\"body\":\"When?\",\"message_id\":\"m-1\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"stock?\"}");
    /* chat: members but the author, and every staff; the note: members but the author */
    expect_total(log, "alice", 2, "order", 2);
    expect_total(log, "bob", 2, "order", 2);
    expect_total(log, "sam", 1, "order", 1);
    expect_total(log, "sue", 1, "order", 1);
    expect_total(log, "zoe", 0, NULL, 0);
    expect_total(log, "aud", 0, NULL, 0);
    ck_assert_int_eq(channel_count(log, "bob", "o-1", "chat"), 1);
    ck_assert_int_eq(channel_count(log, "bob", "o-1", "notes"), 0);
    ck_assert_int_eq(channel_count(log, "bob", "o-1", "ambassador"), 1);
    ck_assert_int_eq(channel_count(log, "alice", "o-1", "notes"), 1);
    /* staff see only chat; the ambassador only her channel; auditors every channel at zero */
    ck_assert_int_eq(channel_count(log, "sam", "o-1", "notes"), -1);
    ck_assert_int_eq(channel_count(log, "sam", "o-1", "ambassador"), -1);
    ck_assert_int_eq(channel_count(log, "sam", "o-1", "chat"), 1);
    ck_assert_int_eq(channel_count(log, "zoe", "o-1", "chat"), -1);
    ck_assert_int_eq(channel_count(log, "zoe", "o-1", "ambassador"), 0);
    ck_assert_int_eq(channel_count(log, "aud", "o-1", "notes"), 0);
    /* support: the account's members and all staff */
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"carl\",\"id\":\"s-1\",\"account\":\"beta\",\"channel\":\"support\",\"body\":\"help\"}");
    expect_total(log, "sam", 2, "support", 1);
    expect_total(log, "carl", 0, "support", 0);
    expect_total(log, "alice", 2, "support", 0);
    pf_done(log, dir);
}
END_TEST

START_TEST(reads_marks_replies_and_deletes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"v-1\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"v-1\",\"title\":\"T\",\"body\":\"hi\",\"message_id\":\"m-1\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"m-2\",\"project\":\"v-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"yo\"}");
    expect_total(log, "bob", 2, "video", 2);
    expect_total(log, "alice", 1, "video", 1);
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"m-1\"}");
    expect_total(log, "bob", 1, "video", 1);
    /* reading twice and reading one's own message change nothing */
    tl_result r = pf_exec(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"m-1\"}");
    ck_assert(r.code == 0 && r.noop);
    r = pf_exec(log, "{\"op\":\"message.read\",\"as\":\"sam\",\"message\":\"m-2\"}");
    ck_assert(r.code == 0 && r.noop);
    expect_total(log, "bob", 1, "video", 1);
    expect_total(log, "sam", 1, "video", 1);
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"bob\",\"message\":\"m-1\"}");
    expect_total(log, "bob", 2, "video", 2);
    /* a reply is a message of its own */
    PF_OK(log, "{\"op\":\"message.reply\",\"as\":\"bob\",\"id\":\"m-3\",\"message\":\"m-2\",\"body\":\"ok\"}");
    expect_total(log, "alice", 2, "video", 2);
    expect_total(log, "sam", 2, "video", 2);
    expect_total(log, "sue", 3, "video", 3);
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"sue\",\"message\":\"m-3\"}");
    /* deleting m-3: gone for alice and sam who had it unread; sue had read it */
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"bob\",\"message\":\"m-3\"}");
    expect_total(log, "alice", 1, "video", 1);
    expect_total(log, "sam", 1, "video", 1);
    expect_total(log, "sue", 2, "video", 2);
    expect_total(log, "bob", 2, "video", 2);
    /* reading a deleted message is refused and counts nothing */
    r = pf_exec(log, "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-3\"}");
    ck_assert_int_eq(r.code, TL_EDELETED);
    /* pins move nothing */
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"alice\",\"message\":\"m-2\"}");
    expect_total(log, "alice", 1, "video", 1);
    tl_query q = pf_q("sue");
    q.project = "v-1";
    json_t *t = pf_query(log, tl_topics_query, &q);
    json_t *t1 = json_array_get(json_object_get(t, "topics"), 0);
    ck_assert_int_eq(pf_int(t1, "messages"), 2);
    ck_assert_int_eq(pf_int(t1, "unread"), 2);
    json_decref(t);
    pf_done(log, dir);
}
END_TEST

START_TEST(users_created_late_start_with_everything_unread) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    pf_order(log, "o-1", "zoe");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"hi\",\"message_id\":\"m-1\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"x\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-2\",\"project\":\"o-1\",\"body\":\"y\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"n-2\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"help\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"carl\",\"id\":\"s-2\",\"account\":\"beta\",\"channel\":\"support\",\"body\":\"help\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"dan\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Dan\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"sol\",\"role\":\"staff\",\"name\":\"Sol\"}");
    /* dan: ambassador message, topic message, n-1 (n-2 is deleted), acme's support */
    expect_total(log, "dan", 4, "order", 3);
    expect_total(log, "dan", 4, "support", 1);
    ck_assert_int_eq(channel_count(log, "dan", "o-1", "notes"), 1);
    /* sol: the chat message and both accounts' support */
    expect_total(log, "sol", 3, "support", 2);
    tl_query q = pf_q("dan");
    q.project = "o-1";
    json_t *t = pf_query(log, tl_topics_query, &q);
    ck_assert_int_eq(pf_int(json_array_get(json_object_get(t, "topics"), 0), "unread"), 1);
    json_decref(t);
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"dan\",\"message\":\"n-1\"}");
    expect_total(log, "dan", 3, "order", 2);
    pf_done(log, dir);
}
END_TEST

START_TEST(refusals) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"carl\",\"id\":\"b-1\",\"account\":\"beta\",\"type\":\"video\",\"title\":\"B\"}");
    tl_query q = pf_q("nobody");
    ck_assert_int_eq(pf_query_code(log, tl_unread_query, &q), TL_ENOTFOUND);
    q = pf_q(NULL);
    ck_assert_int_eq(pf_query_code(log, tl_unread_query, &q), TL_EINVALID);
    q = pf_q("alice");
    q.project = "nope";
    ck_assert_int_eq(pf_query_code(log, tl_unread_query, &q), TL_ENOTFOUND);
    q.project = "b-1";
    ck_assert_int_eq(pf_query_code(log, tl_unread_query, &q), TL_EFORBIDDEN);
    q = pf_q("yan");
    q.project = "o-1";
    ck_assert_int_eq(pf_query_code(log, tl_unread_query, &q), TL_EFORBIDDEN);
    q = pf_q("zoe");
    q.project = "o-1";
    json_t *r = pf_query(log, tl_unread_query, &q);
    ck_assert_str_eq(pf_str(r, "project"), "o-1");
    ck_assert_int_eq(json_object_size(json_object_get(r, "by_channel")), 1);
    json_decref(r);
    /* an order without ambassador message: the ambassador channel is left out */
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O2\",\"ambassador\":\"zoe\"}");
    ck_assert_int_eq(channel_count(log, "alice", "o-2", "ambassador"), -1);
    ck_assert_int_eq(channel_count(log, "alice", "o-2", "notes"), 0);
    q = pf_q("zoe");
    q.project = "o-2";
    r = pf_query(log, tl_unread_query, &q);
    ck_assert_int_eq(json_object_size(json_object_get(r, "by_channel")), 0);
    ck_assert_int_eq(pf_int(r, "total"), 0);
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_unread");
    TCase *tc = tcase_create("unread");
    tcase_add_test(tc, audience_counts_but_author_and_auditors);
    tcase_add_test(tc, reads_marks_replies_and_deletes);
    tcase_add_test(tc, users_created_late_start_with_everything_unread);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
