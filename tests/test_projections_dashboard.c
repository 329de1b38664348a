/*
 * test_projections_dashboard.c — the dashboard panels (application, order, video), their
 * unread counts and newest-first unread messages (5 by default), "See more" paging, and how
 * reads, unread marks, deletions and late users change them.
 */
#include "test_projections_fixture.h"

static json_t *dashboard(tl_log *log, const char *as, unsigned limit) {
    tl_query q = pf_q(as);
    q.limit = limit;
    return pf_query(log, tl_dashboard_query, &q);
}

/* All of "See more" for one type, page by page. */
static const char *see_more(tl_log *log, const char *as, const char *type, unsigned limit, char *buf, size_t cap,
                            long long *unread) {
    char cursor[64] = "", part[1024];
    size_t n = 0;
    buf[0] = 0;
    for (int pages = 0; pages < 200; pages++) {
        tl_query q = pf_q(as);
        q.type = type;
        q.more = 1;
        q.limit = limit;
        q.cursor = cursor[0] ? cursor : NULL;
        json_t *r = pf_query(log, tl_dashboard_query, &q);
        ck_assert_str_eq(pf_str(r, "type"), type);
        *unread = pf_int(r, "unread");
        pf_ids(json_object_get(r, "messages"), "id", part, sizeof part);
        if (part[0]) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", part);
        const char *next = pf_str(r, "next");
        if (next) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(r);
        if (!next) break;
    }
    return buf;
}

static void note(tl_log *log, const char *as, const char *id, const char *project) {
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"%s\",\"id\":\"%s\",\"project\":\"%s\",\"body\":\"%s\"}", as, id, project, id);
}

START_TEST(panels) {
    char *dir, buf[1024];
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"v-1\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"a-1\",\"account\":\"acme\",\"type\":\"application\",\"title\":\"A\"}");
    pf_order(log, "o-1", "alice");
    for (int i = 1; i <= 7; i++) {
        char id[16];
        snprintf(id, sizeof id, "n-%d", i);
        note(log, "alice", id, i % 2 ? "v-1" : "a-1");
    }
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"help\"}");
    json_t *r = dashboard(log, "bob", 0);
    json_t *panels = json_object_get(r, "panels");
    ck_assert_str_eq(pf_ids(panels, "type", buf, sizeof buf), "application,order,video");
    json_t *app = json_array_get(panels, 0), *ord = json_array_get(panels, 1), *vid = json_array_get(panels, 2);
    ck_assert_int_eq(pf_int(app, "unread"), 3);
    ck_assert_int_eq(pf_int(ord, "unread"), 1);
    ck_assert_int_eq(pf_int(vid, "unread"), 4);
    ck_assert_str_eq(pf_ids(json_object_get(app, "messages"), "id", buf, sizeof buf), "n-6,n-4,n-2");
    ck_assert_str_eq(pf_ids(json_object_get(ord, "messages"), "id", buf, sizeof buf), "am-o-1");
    ck_assert_str_eq(pf_ids(json_object_get(vid, "messages"), "id", buf, sizeof buf), "n-7,n-5,n-3,n-1");
    json_t *m = json_array_get(json_object_get(vid, "messages"), 0);
    ck_assert_str_eq(pf_str(m, "project"), "v-1");
    ck_assert_str_eq(pf_str(m, "channel"), "notes");
    ck_assert(json_is_true(json_object_get(m, "unread")));
    json_decref(r);
    /* the author has nothing unread; staff see no notes; auditors never anything */
    r = dashboard(log, "alice", 0);
    ck_assert_int_eq(pf_int(json_array_get(json_object_get(r, "panels"), 2), "unread"), 0);
    json_decref(r);
    r = dashboard(log, "sam", 0);
    ck_assert_int_eq(pf_int(json_array_get(json_object_get(r, "panels"), 2), "unread"), 0);
    json_decref(r);
    r = dashboard(log, "aud", 0);
    ck_assert_int_eq(pf_int(json_array_get(json_object_get(r, "panels"), 1), "unread"), 0);
    json_decref(r);
    /* --limit sets the panel size */
    r = dashboard(log, "bob", 2);
    ck_assert_str_eq(pf_ids(json_object_get(json_array_get(json_object_get(r, "panels"), 2), "messages"), "id", buf, sizeof buf),
                     "n-7,n-5");
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

START_TEST(five_by_default_and_see_more) {
    char *dir, buf[2048];
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"v-1\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"v-2\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V2\"}");
    char expect[2048] = "";
    size_t n = 0;
    for (int i = 12; i >= 1; i--) n += (size_t)snprintf(expect + n, sizeof expect - n, "%sn-%02d", n ? "," : "", i);
    for (int i = 1; i <= 12; i++) {
        char id[16];
        snprintf(id, sizeof id, "n-%02d", i);
        note(log, "alice", id, i % 3 ? "v-1" : "v-2");
    }
    json_t *r = dashboard(log, "bob", 0);
    json_t *vid = json_array_get(json_object_get(r, "panels"), 2);
    ck_assert_int_eq(pf_int(vid, "unread"), 12);
    ck_assert_str_eq(pf_ids(json_object_get(vid, "messages"), "id", buf, sizeof buf), "n-12,n-11,n-10,n-09,n-08");
    json_decref(r);
    long long unread;
    for (unsigned limit = 1; limit <= 13; limit += 2) {
        ck_assert_str_eq(see_more(log, "bob", "video", limit, buf, sizeof buf, &unread), expect);
        ck_assert_int_eq(unread, 12);
    }
    ck_assert_str_eq(see_more(log, "bob", "order", 5, buf, sizeof buf, &unread), "");
    /* read, unread mark, delete */
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"n-12\"}");
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"n-05\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"n-10\"}");
    ck_assert_str_eq(see_more(log, "bob", "video", 4, buf, sizeof buf, &unread), "n-11,n-09,n-08,n-07,n-06,n-04,n-03,n-02,n-01");
    ck_assert_int_eq(unread, 9);
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"bob\",\"message\":\"n-12\"}");
    ck_assert_str_eq(see_more(log, "bob", "video", 50, buf, sizeof buf, &unread), "n-12,n-11,n-09,n-08,n-07,n-06,n-04,n-03,n-02,n-01");
    ck_assert_int_eq(unread, 10);
    /* a member created now has every live note unread */
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"dan\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Dan\"}");
    ck_assert_str_eq(see_more(log, "dan", "video", 3, buf, sizeof buf, &unread), "n-12,n-11,n-09,n-08,n-07,n-06,n-05,n-04,n-03,n-02,n-01");
    ck_assert_int_eq(unread, 11);
    /* refusals */
    tl_query q = pf_q("bob");
    q.more = 1;
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    q.type = "support";
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    q.type = "video";
    q.cursor = "abc";
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    /* a cursor of this very "See more" (its tag right) whose position lost a byte */
    q.limit = 2;
    q.cursor = NULL;
    json_t *page = pf_query(log, tl_dashboard_query, &q);
    char cut[128];
    ck_assert_ptr_nonnull(pf_str(page, "next"));
    snprintf(cut, sizeof cut, "%s", pf_str(page, "next") + 2);
    json_decref(page);
    q.cursor = cut;
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    q.limit = 0;
    q = pf_q("ghost");
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_ENOTFOUND);
    /* a type or a cursor without "See more" is refused, not ignored (before the unknown user) */
    q.type = "video";
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    q = pf_q("bob");
    q.cursor = "00";
    ck_assert_int_eq(pf_query_code(log, tl_dashboard_query, &q), TL_EINVALID);
    pf_done(log, dir);
}
END_TEST

START_TEST(chat_and_ambassador_panels) {
    char *dir, buf[1024];
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"sam\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"b\",\"message_id\":\"m-1\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"z-1\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"hi zoe\"}");
    long long unread;
    ck_assert_str_eq(see_more(log, "alice", "order", 50, buf, sizeof buf, &unread), "z-1,m-1,am-o-1");
    ck_assert_str_eq(see_more(log, "sue", "order", 50, buf, sizeof buf, &unread), "m-1");
    ck_assert_str_eq(see_more(log, "sam", "order", 50, buf, sizeof buf, &unread), "");
    ck_assert_str_eq(see_more(log, "zoe", "order", 50, buf, sizeof buf, &unread), "z-1");
    ck_assert_int_eq(unread, 1);
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_add_test(tc, panels);
    tcase_add_test(tc, five_by_default_and_see_more);
    tcase_add_test(tc, chat_and_ambassador_panels);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
