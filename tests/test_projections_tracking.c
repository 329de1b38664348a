/*
 * test_projections_tracking.c — the tracking table: which projects each role sees, both
 * orders with every tie-break (time ties made with a frozen clock), per-viewer
 * last_activity and version, the unread column, type filters, and paging with cursors
 * across page boundaries.
 */
#include "test_projections_fixture.h"

static json_t *track(tl_log *log, const char *user, const char *sort, const char *type, unsigned limit, const char *cursor) {
    tl_query q = pf_q(user);
    q.sort = sort;
    q.type = type;
    q.limit = limit;
    q.cursor = cursor;
    return pf_query(log, tl_tracking_query, &q);
}

/* The whole table, read page by page with `limit` rows a page: "p1,p2,..." */
static const char *order_of(tl_log *log, const char *user, const char *sort, const char *type, unsigned limit,
                            char *buf, size_t cap) {
    char cursor[512] = "";
    size_t n = 0;
    int pages = 0;
    buf[0] = 0;
    for (;;) {
        json_t *r = track(log, user, sort, type, limit, cursor[0] ? cursor : NULL);
        json_t *rows = json_object_get(r, "rows"), *row;
        size_t i;
        ck_assert_msg(json_array_size(rows) <= limit, "page larger than the limit");
        json_array_foreach(rows, i, row) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", pf_str(row, "project"));
        const char *next = pf_str(r, "next");
        ck_assert_msg(next || json_is_null(json_object_get(r, "next")), "next is neither a cursor nor null");
        if (next) {
            ck_assert_msg(json_array_size(rows) == limit, "a short page with a next cursor");
            snprintf(cursor, sizeof cursor, "%s", next);
        }
        json_decref(r);
        ck_assert(++pages < 100);
        if (!next) break;
    }
    return buf;
}

static json_t *find_row(json_t *root, const char *project) {
    json_t *rows = json_object_get(root, "rows"), *row;
    size_t i;
    json_array_foreach(rows, i, row) if (!strcmp(pf_str(row, "project"), project)) return row;
    return NULL;
}

/*
 * One row of user's table (the caller decrefs the returned root through *root). The two
 * orders keep a row's fields in different indexes (the group's A value, the user's B value):
 * the row must read the same in both.
 */
static json_t *row_of(tl_log *log, const char *user, const char *project, json_t **root) {
    *root = track(log, user, NULL, NULL, 100, NULL);
    json_t *row = find_row(*root, project), *other_root = track(log, user, "unread", NULL, 100, NULL);
    json_t *other = find_row(other_root, project);
    ck_assert_msg((row == NULL) == (other == NULL), "%s: %s is in one order only", user, project);
    if (row) {
        char *a = json_dumps(row, JSON_SORT_KEYS), *b = json_dumps(other, JSON_SORT_KEYS);
        ck_assert_msg(!strcmp(a, b), "%s: %s reads %s by activity but %s unread first", user, project, a, b);
        free(a);
        free(b);
    }
    json_decref(other_root);
    return row;
}

static void project(tl_log *log, const char *as, const char *id, const char *account, const char *type) {
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"%s\",\"id\":\"%s\",\"account\":\"%s\",\"type\":\"%s\",\"title\":\"T %s\"}",
          as, id, account, type, id);
}

START_TEST(rows_per_role) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    char buf[512];
    pf_freeze();
    pf_order(log, "o-1", "alice");
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\",\"ambassador\":\"zoe\"}");
    project(log, "bob", "v-1", "acme", "video");
    project(log, "carl", "b-1", "beta", "application");
    /* created while the clock stands still: each event one microsecond after the one before,
     * so newest first is the reverse of creation */
    ck_assert_str_eq(order_of(log, "alice", NULL, NULL, 50, buf, sizeof buf), "v-1,o-2,o-1");
    ck_assert_str_eq(order_of(log, "carl", NULL, NULL, 50, buf, sizeof buf), "b-1");
    /* an ambassador sees her projects, with or without an ambassador channel */
    ck_assert_str_eq(order_of(log, "zoe", NULL, NULL, 50, buf, sizeof buf), "o-2,o-1");
    ck_assert_str_eq(order_of(log, "yan", NULL, NULL, 50, buf, sizeof buf), "");
    ck_assert_str_eq(order_of(log, "sam", NULL, NULL, 50, buf, sizeof buf), "b-1,v-1,o-2,o-1");
    ck_assert_str_eq(order_of(log, "aud", NULL, NULL, 50, buf, sizeof buf), "b-1,v-1,o-2,o-1");
    ck_assert_str_eq(order_of(log, "sam", NULL, "order", 50, buf, sizeof buf), "o-2,o-1");
    ck_assert_str_eq(order_of(log, "sam", "unread", "video", 50, buf, sizeof buf), "v-1");
    /* a user created later gets rows for what they may see */
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"dan\",\"role\":\"member\",\"account\":\"beta\",\"name\":\"Dan\"}");
    PF_OK(log, "{\"op\":\"user.create\",\"id\":\"sol\",\"role\":\"staff\",\"name\":\"Sol\"}");
    ck_assert_str_eq(order_of(log, "dan", NULL, NULL, 50, buf, sizeof buf), "b-1");
    ck_assert_str_eq(order_of(log, "sol", NULL, NULL, 50, buf, sizeof buf), "b-1,v-1,o-2,o-1");
    json_t *root, *row = row_of(log, "alice", "o-1", &root);
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(pf_str(row, "type"), "order");
    ck_assert_str_eq(pf_str(row, "title"), "Order o-1");
    ck_assert_str_eq(pf_str(row, "status"), "new");
    ck_assert_int_eq(pf_int(row, "unread"), 1);
    ck_assert_int_eq(pf_int(row, "last_activity"), (long long)pf_frozen_at.tv_sec * 1000000 + pf_frozen_at.tv_nsec / 1000);
    json_decref(root);
    pf_thaw();
    pf_done(log, dir);
}
END_TEST

START_TEST(orders_and_tie_breaks) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    char buf[512];
    /* five projects created while the clock stands still: each event still gets its own time
     * (the previous one's plus 1 µs), so "newest" is by sequence number (SPEC "Time ties"),
     * not by project id */
    pf_freeze();
    project(log, "alice", "p-3", "acme", "video");
    project(log, "alice", "p-1", "acme", "order");
    project(log, "alice", "p-5", "acme", "video");
    project(log, "alice", "p-2", "acme", "application");
    project(log, "alice", "p-4", "acme", "order");
    ck_assert_str_eq(order_of(log, "bob", NULL, NULL, 50, buf, sizeof buf), "p-4,p-2,p-5,p-1,p-3");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-4,p-2,p-5,p-1,p-3");
    /* activity moves a project up: newest first */
    pf_frozen_at.tv_sec += 1;
    PF_OK(log, "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"p-4\",\"status\":\"shipped\"}");
    pf_frozen_at.tv_sec += 1;
    PF_OK(log, "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"p-2\",\"status\":\"shipped\"}");
    ck_assert_str_eq(order_of(log, "bob", NULL, NULL, 50, buf, sizeof buf), "p-2,p-4,p-5,p-1,p-3");
    /* unread first: p-5 gets 2 unread, p-3 and p-1 one each (p-1's note is the newer) */
    pf_frozen_at.tv_sec += 1;
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"p-5\",\"body\":\"a\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-2\",\"project\":\"p-5\",\"body\":\"b\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-3\",\"project\":\"p-3\",\"body\":\"c\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-4\",\"project\":\"p-1\",\"body\":\"d\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-5,p-1,p-3,p-2,p-4");
    ck_assert_str_eq(order_of(log, "bob", NULL, NULL, 50, buf, sizeof buf), "p-1,p-3,p-5,p-2,p-4");
    /* equal unread, different times: newest first */
    pf_frozen_at.tv_sec += 1;
    PF_OK(log, "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"p-3\",\"status\":\"late\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-5,p-3,p-1,p-2,p-4");
    /* the author has nothing unread: her unread-first order is the activity order */
    ck_assert_str_eq(order_of(log, "alice", "unread", NULL, 50, buf, sizeof buf), "p-3,p-1,p-5,p-2,p-4");
    /* a read moves a row down the unread order */
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"n-1\"}");
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"n-2\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-3,p-1,p-5,p-2,p-4");
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"bob\",\"message\":\"n-2\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-3,p-1,p-5,p-2,p-4");
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"bob\",\"message\":\"n-1\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-5,p-3,p-1,p-2,p-4");
    /* deleting a note takes it out of everyone's count */
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"n-3\"}");
    ck_assert_str_eq(order_of(log, "bob", "unread", NULL, 50, buf, sizeof buf), "p-5,p-1,p-3,p-2,p-4");
    /* type filters keep the order */
    ck_assert_str_eq(order_of(log, "bob", "unread", "video", 50, buf, sizeof buf), "p-5,p-3");
    ck_assert_str_eq(order_of(log, "bob", NULL, "order", 50, buf, sizeof buf), "p-1,p-4");
    ck_assert_str_eq(order_of(log, "bob", NULL, "application", 50, buf, sizeof buf), "p-2");
    pf_thaw();
    pf_done(log, dir);
}
END_TEST

START_TEST(per_viewer_activity_and_version) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    project(log, "alice", "v-1", "acme", "video");
    char buf[512];
    ck_assert_str_eq(order_of(log, "sam", NULL, NULL, 50, buf, sizeof buf), "v-1,o-1");
    /* a note on o-1: moves it for members and auditors, never for staff or the ambassador */
    tl_result r = pf_exec(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"x\"}");
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(order_of(log, "bob", NULL, NULL, 50, buf, sizeof buf), "o-1,v-1");
    ck_assert_str_eq(order_of(log, "aud", NULL, NULL, 50, buf, sizeof buf), "o-1,v-1");
    ck_assert_str_eq(order_of(log, "sam", NULL, NULL, 50, buf, sizeof buf), "v-1,o-1");
    json_t *root, *row = row_of(log, "bob", "o-1", &root);
    ck_assert_int_eq(pf_int(row, "version"), (long long)r.seq);
    json_decref(root);
    row = row_of(log, "sam", "o-1", &root);
    ck_assert_int_lt(pf_int(row, "version"), (long long)r.seq);
    long long sam_version = pf_int(row, "version"), sam_la = pf_int(row, "last_activity");
    json_decref(root);
    row = row_of(log, "zoe", "o-1", &root);
    ck_assert_int_eq(pf_int(row, "version"), sam_version);
    json_decref(root);
    /* a chat message moves it for staff; an ambassador message only for members and zoe */
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"b\",\"message_id\":\"m-1\"}");
    row = row_of(log, "sam", "o-1", &root);
    ck_assert_int_gt(pf_int(row, "last_activity"), sam_la);
    ck_assert_int_eq(pf_int(row, "unread"), 1);
    json_decref(root);
    r = pf_exec(log, "{\"op\":\"message.send\",\"as\":\"zoe\",\"id\":\"z-1\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"hi\"}");
    ck_assert_int_eq(r.code, 0);
    row = row_of(log, "zoe", "o-1", &root);
    ck_assert_int_eq(pf_int(row, "version"), (long long)r.seq);
    json_decref(root);
    row = row_of(log, "sam", "o-1", &root);
    ck_assert_int_lt(pf_int(row, "version"), (long long)r.seq);
    json_decref(root);
    /* a pin changes the version (a history entry) but not last_activity */
    row = row_of(log, "bob", "o-1", &root);
    long long la = pf_int(row, "last_activity");
    json_decref(root);
    r = pf_exec(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"z-1\"}");
    row = row_of(log, "bob", "o-1", &root);
    ck_assert_int_eq(pf_int(row, "version"), (long long)r.seq);
    ck_assert_int_eq(pf_int(row, "last_activity"), la);
    ck_assert_int_eq(pf_int(row, "unread"), 4); /* am-o-1, n-1, m-1, z-1 */
    json_decref(root);
    /* the version is what `expect` compares with */
    r = pf_exec(log, "{\"op\":\"project.status\",\"as\":\"sam\",\"project\":\"o-1\",\"status\":\"x\",\"expect\":%lld}", sam_version);
    ck_assert_int_eq(r.code, TL_ECONFLICT);
    row = row_of(log, "sam", "o-1", &root);
    r = pf_exec(log, "{\"op\":\"project.status\",\"as\":\"sam\",\"project\":\"o-1\",\"status\":\"x\",\"expect\":%lld}",
                pf_int(row, "version"));
    json_decref(root);
    ck_assert_int_eq(r.code, 0);
    pf_done(log, dir);
}
END_TEST

START_TEST(paging_across_boundaries) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    static const char *const types[] = {"order", "video", "application"};
    char id[16], full[1024], paged[1024];
    pf_freeze();
    for (int i = 0; i < 11; i++) {
        snprintf(id, sizeof id, "p-%02d", i);
        if (i % 4 == 0) pf_frozen_at.tv_sec += 1; /* groups of equal times */
        project(log, "alice", id, "acme", types[i % 3]);
        if (i % 3 == 1) PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"project\":\"%s\",\"body\":\"n\"}", id);
    }
    const char *sorts[] = {NULL, "unread"};
    const char *filters[] = {NULL, "order", "video"};
    for (int s = 0; s < 2; s++)
        for (int f = 0; f < 3; f++) {
            order_of(log, "bob", sorts[s], filters[f], 1000, full, sizeof full);
            for (unsigned limit = 1; limit <= 6; limit++) {
                order_of(log, "bob", sorts[s], filters[f], limit, paged, sizeof paged);
                ck_assert_msg(!strcmp(full, paged), "sort %s type %s limit %u: %s != %s", sorts[s] ? sorts[s] : "activity",
                              filters[f] ? filters[f] : "all", limit, paged, full);
            }
        }
    /* no limit: every row (11 here; the 50-row default itself: default_page_sizes, messages) */
    json_t *r = track(log, "bob", NULL, NULL, 0, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r, "rows")), 11);
    ck_assert(json_is_null(json_object_get(r, "next")));
    json_decref(r);
    pf_thaw();
    pf_done(log, dir);
}
END_TEST

/* The unread column of the default order, on pages small enough that the viewer's unread
 * projects are looked up row by row, and on pages large enough that they are read in one walk
 * of the unread-first index first (tracking.c, unread_set): the same counts either way. */
START_TEST(unread_column_on_every_page_size) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    static const char *const types[] = {"order", "video", "application"};
    char id[16];
    long long want[12];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "p-%02d", i);
        project(log, "alice", id, "acme", types[i % 3]);
        want[i] = 0;
        for (int k = 0; k < i % 4; k++) { /* 0..3 notes by alice: bob's unread count */
            PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-%d-%d\",\"project\":\"%s\",\"body\":\"n\"}", i, k, id);
            want[i]++;
        }
    }
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"n-7-1\"}");
    want[7]--;
    const char *filters[] = {NULL, "order"};
    for (int f = 0; f < 2; f++)
        for (unsigned limit = 1; limit <= 13; limit++) {
            char cursor[512] = "";
            int seen = 0;
            for (int pages = 0; pages < 20; pages++) {
                json_t *r = track(log, "bob", NULL, filters[f], limit, cursor[0] ? cursor : NULL);
                json_t *rows = json_object_get(r, "rows"), *row;
                size_t i;
                json_array_foreach(rows, i, row) {
                    int p = atoi(pf_str(row, "project") + 2);
                    ck_assert_msg(pf_int(row, "unread") == want[p], "limit %u: %s shows %lld unread, want %lld", limit,
                                  pf_str(row, "project"), pf_int(row, "unread"), want[p]);
                    seen++;
                }
                const char *next = pf_str(r, "next");
                if (next) snprintf(cursor, sizeof cursor, "%s", next);
                json_decref(r);
                if (!next) break;
            }
            ck_assert_int_eq(seen, filters[f] ? 4 : 12);
        }
    pf_done(log, dir);
}
END_TEST

/*
 * A group row lists its viewers' unread counts while they fit in TRK_LIST_MAX (512) bytes;
 * past that, a page reads the viewers left out from their own rows. 24 members with 40-byte
 * ids (42 bytes an entry) overflow the list: every member's count must still be right, in
 * both orders, as reads, unread marks and deletions move it, and after a replay.
 */
START_TEST(unread_column_past_the_group_list) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    PF_OK(log, "{\"op\":\"account.create\",\"id\":\"wide\",\"name\":\"Wide\"}");
    enum { MEMBERS = 24, NOTES = 6 };
    char ids[MEMBERS][48];
    for (int m = 0; m < MEMBERS; m++) {
        snprintf(ids[m], sizeof ids[m], "member-%02d-with-a-long-id-to-fill-a-lists", m);
        ck_assert_uint_eq(strlen(ids[m]), 40);
        PF_OK(log, "{\"op\":\"user.create\",\"id\":\"%s\",\"role\":\"member\",\"account\":\"wide\",\"name\":\"M\"}", ids[m]);
    }
    project(log, ids[0], "w-1", "wide", "video");
    project(log, ids[0], "w-2", "wide", "order");
    long long want[MEMBERS];
    for (int k = 0; k < NOTES; k++)
        PF_OK(log, "{\"op\":\"note.add\",\"as\":\"%s\",\"id\":\"n-%d\",\"project\":\"w-1\",\"body\":\"n\"}", ids[0], k);
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"%s\",\"id\":\"o-1\",\"project\":\"w-2\",\"body\":\"n\"}", ids[1]);
    for (int m = 0; m < MEMBERS; m++) {
        want[m] = m == 0 ? 0 : NOTES;
        for (int k = 0; m && k < m % 4; k++) { /* member m reads m % 4 notes */
            PF_OK(log, "{\"op\":\"message.read\",\"as\":\"%s\",\"message\":\"n-%d\"}", ids[m], k);
            want[m]--;
        }
    }
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"%s\",\"message\":\"n-0\"}", ids[5]); /* 5 read n-0 */
    want[5]++;
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"%s\",\"message\":\"n-5\"}", ids[0]);
    for (int m = 1; m < MEMBERS; m++) want[m]--; /* nobody had read n-5 */
    for (int pass = 0; pass < 2; pass++) {
        for (int m = 0; m < MEMBERS; m++)
            for (int by_unread = 0; by_unread < 2; by_unread++) {
                json_t *r = track(log, ids[m], by_unread ? "unread" : NULL, NULL, 10, NULL), *row;
                json_t *rows = json_object_get(r, "rows");
                size_t i;
                int seen = 0;
                json_array_foreach(rows, i, row) {
                    long long w = !strcmp(pf_str(row, "project"), "w-1") ? want[m] : m == 1 ? 0 : 1;
                    ck_assert_msg(pf_int(row, "unread") == w, "%s (%s order, %s): %s shows %lld unread, want %lld", ids[m],
                                  by_unread ? "unread" : "default", pass ? "replayed" : "live", pf_str(row, "project"),
                                  pf_int(row, "unread"), w);
                    seen++;
                }
                ck_assert_int_eq(seen, 2);
                json_decref(r);
            }
        if (pass == 0) {
            tl_replay_report rr;
            ck_assert_int_eq(tl_replay(log, NULL, &rr), 0);
        }
    }
    pf_done(log, dir);
}
END_TEST

/*
 * tracking.c coalesces row refreshes within a transaction (noted rows are refreshed before
 * other kinds of events, at a bound and at commit). The tables must not depend on where the
 * commits fall: the same commands, committed one by one in one log and as one batch in
 * another (same frozen clock, so the same times), give the same tables for every user and
 * order, and so does a replay (one transaction) of each.
 */
static const char *const mixed_commands[] = {
    "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"b\",\"message_id\":\"c-1\"}",
    "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"c-2\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"x\"}",
    "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"x\"}",
    "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"c-2\"}",
    /* kinds that touch no row between rows noted and their refresh */
    "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"f-1\",\"project\":\"o-1\",\"name\":\"f\",\"data\":\"Zg==\"}",
    "{\"op\":\"account.create\",\"id\":\"gamma\",\"name\":\"Gamma\"}",
    "{\"op\":\"message.reply\",\"as\":\"bob\",\"id\":\"c-3\",\"message\":\"c-2\",\"body\":\"y\",\"attachments\":[\"f-1\"]}",
    "{\"op\":\"message.send\",\"as\":\"zoe\",\"id\":\"z-1\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"hi\"}",
    "{\"op\":\"message.pin\",\"as\":\"alice\",\"message\":\"z-1\"}",
    /* a user created in the middle: an event of another kind runs the noted refreshes */
    "{\"op\":\"user.create\",\"id\":\"ann\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Ann\"}",
    "{\"op\":\"message.send\",\"as\":\"ann\",\"id\":\"c-4\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"z\"}",
    "{\"op\":\"message.unread\",\"as\":\"bob\",\"message\":\"c-2\"}",
    "{\"op\":\"message.delete\",\"as\":\"ann\",\"message\":\"c-4\"}",
    "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"o-1\",\"status\":\"shipped\"}",
    "{\"op\":\"project.create\",\"as\":\"carl\",\"id\":\"b-1\",\"account\":\"beta\",\"type\":\"video\",\"title\":\"B\"}",
    "{\"op\":\"note.add\",\"as\":\"carl\",\"id\":\"n-2\",\"project\":\"b-1\",\"body\":\"x\"}",
    "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"n-1\"}",
    "{\"op\":\"message.unpin\",\"as\":\"bob\",\"message\":\"z-1\"}",
    "{\"op\":\"note.add\",\"as\":\"carl\",\"id\":\"c-5\",\"project\":\"b-1\",\"body\":\"w\"}",
    "{\"op\":\"message.delete\",\"as\":\"bob\",\"message\":\"n-1\"}",
};

/* The two strings are equal (a short message where they part: Check's is bounded). */
static void same_text(const char *a, const char *b, const char *what) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    ck_assert_msg(a[i] == b[i], "%s differ at byte %zu: ...%.120s... against ...%.120s...", what, i, a + from, b + from);
}

/* Every user's whole table in both orders, as one string. */
static void all_tables(tl_log *log, char *out, size_t cap) {
    static const char *const users[] = {"alice", "bob", "carl", "ann", "sam", "sue", "zoe", "yan", "aud"};
    size_t n = 0;
    out[0] = 0;
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++)
        for (int by_unread = 0; by_unread < 2; by_unread++) {
            tl_query q = pf_q(users[u]);
            q.sort = by_unread ? "unread" : "activity";
            char *json = NULL;
            ck_assert_int_eq(tl_tracking_query(log, &q, &json), 0);
            n += (size_t)snprintf(out + n, cap - n, "%s/%d %s\n", users[u], by_unread, json);
            tl_free(json);
            ck_assert(n < cap);
        }
}

START_TEST(same_tables_whatever_the_commits) {
    size_t ncmd = sizeof mixed_commands / sizeof mixed_commands[0];
    char *dir1, *dir2;
    pf_freeze();
    tl_log *one = tu_new_log(&dir1), *batched = tu_new_log(&dir2);
    pf_cast(one);
    pf_cast(batched);
    pf_order(one, "o-1", "alice");
    pf_order(batched, "o-1", "alice");
    for (size_t i = 0; i < ncmd; i++) PF_OK(one, "%s", mixed_commands[i]);
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(batched, &b), 0);
    tl_cmd *cmds[32];
    tl_result res[32];
    for (size_t i = 0; i < ncmd; i++) {
        memset(&res[i], 0, sizeof res[i]);
        ck_assert_int_eq(tl_cmd_parse(&cmds[i], mixed_commands[i], strlen(mixed_commands[i]), &res[i]), 0);
        tl_batch_exec(b, cmds[i], &res[i]);
    }
    ck_assert_int_eq(tl_batch_commit(b), 0);
    for (size_t i = 0; i < ncmd; i++) {
        ck_assert_msg(res[i].code == 0, "batched command %zu: %s %s", i, tl_strerror(res[i].code), res[i].message);
        tl_cmd_free(cmds[i]);
    }
    pf_thaw();
    static char t1[1 << 16], t2[1 << 16];
    all_tables(one, t1, sizeof t1);
    all_tables(batched, t2, sizeof t2);
    same_text(t1, t2, "the tables of commands committed one by one and in one batch");
    ck_assert_msg(strstr(t1, "\"unread\":") != NULL, "the tables are not empty");
    /* and a replay, one transaction over everything, gives them again */
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(one, &o, &r), 0);
    all_tables(one, t2, sizeof t2);
    same_text(t1, t2, "the tables before and after a replay");
    pf_done(one, dir1);
    pf_done(batched, dir2);
}
END_TEST

START_TEST(refusals) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    tl_query q = pf_q("ghost");
    ck_assert_int_eq(pf_query_code(log, tl_tracking_query, &q), TL_ENOTFOUND);
    q = pf_q("alice");
    q.sort = "name";
    ck_assert_int_eq(pf_query_code(log, tl_tracking_query, &q), TL_EINVALID);
    q = pf_q("alice");
    q.type = "support";
    ck_assert_int_eq(pf_query_code(log, tl_tracking_query, &q), TL_EINVALID);
    q = pf_q("alice");
    q.cursor = "zz";
    ck_assert_int_eq(pf_query_code(log, tl_tracking_query, &q), TL_EINVALID);
    q.cursor = "00";
    ck_assert_int_eq(pf_query_code(log, tl_tracking_query, &q), TL_EINVALID);
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_tracking");
    TCase *tc = tcase_create("tracking");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rows_per_role);
    tcase_add_test(tc, orders_and_tie_breaks);
    tcase_add_test(tc, per_viewer_activity_and_version);
    tcase_add_test(tc, paging_across_boundaries);
    tcase_add_test(tc, unread_column_on_every_page_size);
    tcase_add_test(tc, unread_column_past_the_group_list);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, same_tables_whatever_the_commits);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
