/*
 * test_projections_history.c — the project timeline: which entries each role sees
 * (project-level to all, channel entries to the channel's audience, the ambassador message
 * of project.created only to the ambassador channel's audience), what is never an entry
 * (reads, unread marks, uploads), deleted and erased messages, paging oldest first, and the
 * agreement of a user's tracking version with their newest visible entry.
 */
#include "test_projections_fixture.h"

static json_t *history(tl_log *log, const char *as, const char *project, unsigned limit, const char *cursor) {
    tl_query q = pf_q(as);
    q.project = project;
    q.limit = limit;
    q.cursor = cursor;
    return pf_query(log, tl_history_query, &q);
}

/* "kind:message" of every entry (message or "-"), read with `limit` per page. */
static const char *timeline(tl_log *log, const char *as, const char *project, unsigned limit, char *buf, size_t cap,
                            long long *last_seq) {
    char cursor[64] = "";
    size_t n = 0;
    long long prev = 0;
    buf[0] = 0;
    for (int pages = 0; pages < 200; pages++) {
        json_t *r = history(log, as, project, limit, cursor[0] ? cursor : NULL);
        json_t *e;
        size_t i;
        json_array_foreach(json_object_get(r, "entries"), i, e) {
            ck_assert_int_gt(pf_int(e, "seq"), prev); /* oldest first */
            prev = pf_int(e, "seq");
            ck_assert_int_gt(pf_int(e, "ts"), 0);
            ck_assert_ptr_nonnull(pf_str(e, "actor"));
            const char *kind = pf_str(e, "kind") + (strncmp(pf_str(e, "kind"), "message.", 8) ? 0 : 8);
            const char *msg = pf_str(e, "message");
            n += (size_t)snprintf(buf + n, cap - n, "%s%s:%s", n ? "," : "", kind, msg ? msg : "-");
        }
        const char *next = pf_str(r, "next");
        if (next) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(r);
        if (!next) break;
    }
    if (last_seq) *last_seq = prev;
    return buf;
}

static json_t *entry(json_t *root, const char *kind, const char *message) {
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(root, "entries"), i, e) {
        const char *m = pf_str(e, "message");
        if (!strcmp(pf_str(e, "kind"), kind) && (!message || (m && !strcmp(m, message)))) return e;
    }
    return NULL;
}

static void scenario(tl_log *log) {
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    PF_OK(log, "{\"op\":\"project.status\",\"as\":\"sam\",\"project\":\"o-1\",\"status\":\"accepted\"}");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Ship\",\"body\":\"when?\",\"message_id\":\"m-1\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"secret\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"zoe\",\"id\":\"z-1\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"hello\"}");
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"sam\",\"id\":\"a-1\",\"project\":\"o-1\",\"name\":\"f.txt\",\"data\":\"aGk=\"}");
    PF_OK(log, "{\"op\":\"message.reply\",\"as\":\"sam\",\"id\":\"m-2\",\"message\":\"m-1\",\"body\":\"soon\",\"attachments\":[\"a-1\"]}");
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-2\"}");
    PF_OK(log, "{\"op\":\"message.unread\",\"as\":\"alice\",\"message\":\"m-2\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"n-1\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"sue\",\"message\":\"m-2\"}");
    PF_OK(log, "{\"op\":\"message.unpin\",\"as\":\"sue\",\"message\":\"m-2\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"zoe\",\"message\":\"z-1\"}");
}

/* Each user's tracking version of o-1 is the seq of their newest visible entry. */
static void assert_versions_are_newest_entries(tl_log *log) {
    static const char *const users[] = {"alice", "bob", "sam", "sue", "zoe", "aud"};
    char buf[2048];
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        long long last;
        timeline(log, users[i], "o-1", 50, buf, sizeof buf, &last);
        tl_query q = pf_q(users[i]);
        json_t *t = pf_query(log, tl_tracking_query, &q);
        ck_assert_int_eq(pf_int(json_array_get(json_object_get(t, "rows"), 0), "version"), last);
        json_decref(t);
    }
}

START_TEST(visibility_per_role) {
    char *dir, buf[2048];
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    const char *all = "project.created:-,project.status_changed:-,topic.created:m-1,note.added:n-1,sent:z-1,replied:m-2,"
                      "pinned:n-1,pinned:m-2,unpinned:m-2,deleted:z-1";
    ck_assert_str_eq(timeline(log, "bob", "o-1", 50, buf, sizeof buf, NULL), all);
    ck_assert_str_eq(timeline(log, "aud", "o-1", 50, buf, sizeof buf, NULL), all);
    ck_assert_str_eq(timeline(log, "sam", "o-1", 50, buf, sizeof buf, NULL),
                     "project.created:-,project.status_changed:-,topic.created:m-1,replied:m-2,pinned:m-2,unpinned:m-2");
    ck_assert_str_eq(timeline(log, "zoe", "o-1", 50, buf, sizeof buf, NULL),
                     "project.created:-,project.status_changed:-,sent:z-1,deleted:z-1");
    /* paging: the same timeline whatever the page size */
    for (unsigned limit = 1; limit <= 11; limit++) {
        ck_assert_str_eq(timeline(log, "bob", "o-1", limit, buf, sizeof buf, NULL), all);
        ck_assert_str_eq(timeline(log, "sam", "o-1", limit, buf, sizeof buf, NULL),
                         "project.created:-,project.status_changed:-,topic.created:m-1,replied:m-2,pinned:m-2,unpinned:m-2");
    }
    assert_versions_are_newest_entries(log);
    pf_done(log, dir);
}
END_TEST

/*
 * Erasing an attachment no message carries is an event of the project, so it is an entry:
 * with no channel, for the account's members and auditors only (members could have seen the
 * file in any channel; staff and the ambassador never saw an unused upload). It moves their
 * versions and no one else's.
 */
START_TEST(unused_attachment_erasure) {
    char *dir, buf[2048];
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"sam\",\"id\":\"a-9\",\"project\":\"o-1\",\"name\":\"x.txt\",\"data\":\"aGk=\"}");
    long long before[2];
    timeline(log, "sam", "o-1", 50, buf, sizeof buf, &before[0]);
    timeline(log, "zoe", "o-1", 50, buf, sizeof buf, &before[1]);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "a-9", "request", &res), 0);
    const char *all = "project.created:-,project.status_changed:-,topic.created:m-1,note.added:n-1,sent:z-1,replied:m-2,"
                      "pinned:n-1,pinned:m-2,unpinned:m-2,deleted:z-1,content.erased:-";
    ck_assert_str_eq(timeline(log, "bob", "o-1", 50, buf, sizeof buf, NULL), all);
    ck_assert_str_eq(timeline(log, "aud", "o-1", 50, buf, sizeof buf, NULL), all);
    long long after;
    ck_assert_str_eq(timeline(log, "sam", "o-1", 50, buf, sizeof buf, &after),
                     "project.created:-,project.status_changed:-,topic.created:m-1,replied:m-2,pinned:m-2,unpinned:m-2");
    ck_assert_int_eq(after, before[0]);
    ck_assert_str_eq(timeline(log, "zoe", "o-1", 50, buf, sizeof buf, &after),
                     "project.created:-,project.status_changed:-,sent:z-1,deleted:z-1");
    ck_assert_int_eq(after, before[1]);
    json_t *r = history(log, "alice", "o-1", 50, NULL);
    json_t *er = entry(r, "content.erased", NULL);
    ck_assert_ptr_nonnull(er);
    ck_assert_int_eq(pf_int(er, "seq"), (long long)res.seq);
    ck_assert_str_eq(pf_str(er, "target"), "a-9");
    ck_assert_str_eq(pf_str(er, "target_kind"), "attachment");
    ck_assert_str_eq(pf_str(er, "actor"), "@operator");
    for (const char *f = "channel"; f; f = !strcmp(f, "channel") ? "topic" : !strcmp(f, "topic") ? "message" : NULL) {
        ck_assert_ptr_nonnull(json_object_get(er, f));
        ck_assert(json_is_null(json_object_get(er, f)));
    }
    json_decref(r);
    assert_versions_are_newest_entries(log);
    /* put on a message afterwards, the attachment does not move the erasure's entry */
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"m-9\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"f\",\"attachments\":[\"a-9\"]}");
    r = history(log, "bob", "o-1", 50, NULL);
    er = entry(r, "content.erased", NULL);
    ck_assert(json_is_null(json_object_get(er, "channel")));
    ck_assert(json_is_null(json_object_get(er, "message")));
    json_decref(r);
    r = history(log, "sam", "o-1", 50, NULL);
    ck_assert_ptr_null(entry(r, "content.erased", NULL));
    json_decref(r);
    assert_versions_are_newest_entries(log);
    pf_done(log, dir);
}
END_TEST

/*
 * Erasing an attachment that a message carries is an entry of that message's channel: the
 * reply m-2 in the chat carries a-1, so the erasure shows to the chat's audience (members,
 * staff, auditors) placed on m-2, moves their versions, and stays hidden from the ambassador.
 */
START_TEST(carried_attachment_erasure) {
    char *dir, buf[2048];
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    long long zoe_before;
    timeline(log, "zoe", "o-1", 50, buf, sizeof buf, &zoe_before);
    tl_result res;
    ck_assert_int_eq(tl_erase_kind(log, "attachment", "a-1", "request", &res), 0);
    ck_assert(!res.noop);
    const char *all = "project.created:-,project.status_changed:-,topic.created:m-1,note.added:n-1,sent:z-1,replied:m-2,"
                      "pinned:n-1,pinned:m-2,unpinned:m-2,deleted:z-1,content.erased:m-2";
    ck_assert_str_eq(timeline(log, "bob", "o-1", 50, buf, sizeof buf, NULL), all);
    ck_assert_str_eq(timeline(log, "aud", "o-1", 50, buf, sizeof buf, NULL), all);
    long long last;
    ck_assert_str_eq(timeline(log, "sam", "o-1", 50, buf, sizeof buf, &last),
                     "project.created:-,project.status_changed:-,topic.created:m-1,replied:m-2,pinned:m-2,unpinned:m-2,"
                     "content.erased:m-2");
    ck_assert_int_eq(last, (long long)res.seq);
    ck_assert_str_eq(timeline(log, "zoe", "o-1", 50, buf, sizeof buf, &last),
                     "project.created:-,project.status_changed:-,sent:z-1,deleted:z-1");
    ck_assert_int_eq(last, zoe_before);
    json_t *r = history(log, "sue", "o-1", 50, NULL);
    json_t *er = entry(r, "content.erased", "m-2");
    ck_assert_ptr_nonnull(er);
    ck_assert_str_eq(pf_str(er, "channel"), "chat");
    ck_assert_str_eq(pf_str(er, "target"), "a-1");
    ck_assert_str_eq(pf_str(er, "target_kind"), "attachment");
    json_decref(r);
    assert_versions_are_newest_entries(log);
    pf_done(log, dir);
}
END_TEST

START_TEST(entry_contents) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    /* project.created: the ambassador message only for its channel's audience */
    json_t *r = history(log, "sam", "o-1", 50, NULL);
    json_t *created = entry(r, "project.created", NULL);
    ck_assert_str_eq(pf_str(created, "type"), "order");
    ck_assert_str_eq(pf_str(created, "title"), "Order o-1");
    ck_assert_str_eq(pf_str(created, "ambassador"), "zoe");
    ck_assert_str_eq(pf_str(created, "actor"), "alice");
    ck_assert_ptr_null(json_object_get(created, "ambassador_message"));
    ck_assert_str_eq(pf_str(entry(r, "project.status_changed", NULL), "status"), "accepted");
    ck_assert_str_eq(pf_str(entry(r, "project.status_changed", NULL), "previous"), "new");
    json_t *reply = entry(r, "message.replied", "m-2");
    ck_assert_str_eq(pf_str(reply, "channel"), "chat");
    ck_assert_str_eq(pf_str(reply, "topic"), "t-1");
    ck_assert_str_eq(pf_str(reply, "parent"), "m-1");
    ck_assert_str_eq(pf_str(reply, "body"), "soon");
    ck_assert_str_eq(pf_str(json_array_get(json_object_get(reply, "attachments"), 0), "name"), "f.txt");
    ck_assert_str_eq(pf_str(entry(r, "topic.created", "m-1"), "title"), "Ship");
    json_decref(r);
    const char *amb_audience[] = {"alice", "zoe", "aud"};
    for (int i = 0; i < 3; i++) {
        r = history(log, amb_audience[i], "o-1", 50, NULL);
        json_t *am = json_object_get(entry(r, "project.created", NULL), "ambassador_message");
        ck_assert_msg(am != NULL, "%s should see the ambassador message", amb_audience[i]);
        ck_assert_str_eq(pf_str(am, "body"), "Size M");
        ck_assert_str_eq(pf_str(am, "author"), "zoe");
        ck_assert(json_is_false(json_object_get(am, "deleted"))); /* always there */
        json_decref(r);
    }
    /* a deleted message: marked deleted, its body only for auditors */
    r = history(log, "bob", "o-1", 50, NULL);
    json_t *z = entry(r, "message.sent", "z-1");
    ck_assert(json_is_true(json_object_get(z, "deleted")));
    ck_assert(json_is_null(json_object_get(z, "body")));
    json_decref(r);
    r = history(log, "aud", "o-1", 50, NULL);
    z = entry(r, "message.sent", "z-1");
    ck_assert(json_is_true(json_object_get(z, "deleted")));
    ck_assert_str_eq(pf_str(z, "body"), "hello");
    json_decref(r);
    /* erased content: shown as erased; the erasure is an entry of the message's channel */
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "n-1", "request", &res), 0);
    r = history(log, "alice", "o-1", 50, NULL);
    json_t *n1 = entry(r, "note.added", "n-1");
    ck_assert(json_is_null(json_object_get(n1, "body")));
    ck_assert(json_is_true(json_object_get(n1, "erased")));
    json_t *er = entry(r, "content.erased", "n-1");
    ck_assert_ptr_nonnull(er);
    ck_assert_str_eq(pf_str(er, "reason"), "request");
    ck_assert_str_eq(pf_str(er, "actor"), "@operator");
    json_decref(r);
    r = history(log, "sam", "o-1", 50, NULL);
    ck_assert_ptr_null(entry(r, "content.erased", NULL));
    json_decref(r);
    /* a deleted message's content is the auditors' alone: for others no body and no
     * attachments (whose bytes only auditors may fetch); erased content shows as erased to
     * every viewer, deleted or not */
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-9\",\"project\":\"o-1\",\"name\":\"scan.jpg\",\"data\":\"aGk=\"}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-9\",\"project\":\"o-1\",\"body\":\"secret\",\"attachments\":[\"a-9\"]}");
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-8\",\"project\":\"o-1\",\"body\":\"gone\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"n-9\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"n-8\"}");
    ck_assert_int_eq(tl_erase(log, "n-8", "request", &res), 0);
    r = history(log, "bob", "o-1", 50, NULL);
    json_t *n9 = entry(r, "note.added", "n-9"), *n8 = entry(r, "note.added", "n-8");
    ck_assert(json_is_null(json_object_get(n9, "body")));
    ck_assert_ptr_null(json_object_get(n9, "erased"));
    ck_assert_uint_eq(json_array_size(json_object_get(n9, "attachments")), 0);
    ck_assert(json_is_null(json_object_get(n8, "body")));
    ck_assert(json_is_true(json_object_get(n8, "erased")));
    ck_assert(json_is_true(json_object_get(n8, "deleted")));
    json_decref(r);
    r = history(log, "aud", "o-1", 50, NULL);
    n9 = entry(r, "note.added", "n-9"), n8 = entry(r, "note.added", "n-8");
    ck_assert_str_eq(pf_str(n9, "body"), "secret");
    ck_assert_str_eq(pf_str(json_array_get(json_object_get(n9, "attachments"), 0), "name"), "scan.jpg");
    ck_assert(json_is_true(json_object_get(n8, "erased")));
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

/* Every user's whole timeline of o-1, one page of 50, as one string. */
static char *all_timelines(tl_log *log) {
    static const char *const users[] = {"alice", "bob", "sam", "sue", "zoe", "aud"};
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    out[0] = 0;
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        tl_query q = pf_q(users[i]);
        q.project = "o-1";
        char *json = NULL;
        ck_assert_int_eq(tl_history_query(log, &q, &json), 0);
        n += (size_t)snprintf(out + n, cap - n, "%s %s\n", users[i], json);
        ck_assert(n < cap);
        tl_free(json);
    }
    return out;
}

/*
 * The entries of sent, replied and added messages are rendered from the message's record
 * (their history value names it); every other entry from the event in the log. Both must
 * give the same bytes: empty every history value with LMDB directly (an entry then renders
 * from the log, as every entry did before) and the timelines must not change — for deleted,
 * erased and attached-to messages too.
 */
START_TEST(message_entries_match_the_log) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-1", "request", &res), 0);
    char *before = all_timelines(log);
    tl_log_close(log);
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi dbi;
    MDB_cursor *cur = tu_raw_cursor(txn, "history", &dbi);
    MDB_val k, v;
    int named = 0;
    uint8_t keys[16][128];
    size_t klen[16];
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!v.mv_size) continue;
        ck_assert(named < 16 && k.mv_size <= sizeof keys[0]);
        memcpy(keys[named], k.mv_data, k.mv_size);
        klen[named++] = k.mv_size;
    }
    mdb_cursor_close(cur);
    for (int i = 0; i < named; i++) {
        MDB_val key = {klen[i], keys[i]}, empty = {0, ""};
        ck_assert_int_eq(mdb_put(txn, dbi, &key, &empty, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ck_assert_int_eq(named, 3); /* n-1 (a note), z-1 (sent, then deleted), m-2 (a reply with an attachment) */
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    ck_assert_int_eq(tl_log_open(&log, dir, &o), 0);
    char *after = all_timelines(log);
    size_t i = 0;
    while (before[i] && before[i] == after[i]) i++;
    ck_assert_msg(before[i] == after[i], "rendered from the record: ...%.200s\nfrom the log: ...%.200s",
                  before + (i > 80 ? i - 80 : 0), after + (i > 80 ? i - 80 : 0));
    free(before);
    free(after);
    pf_done(log, dir);
}
END_TEST

START_TEST(refusals) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\",\"ambassador\":\"zoe\"}");
    tl_query q = pf_q("carl");
    q.project = "o-1";
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_EFORBIDDEN);
    q.as = "yan";
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_EFORBIDDEN);
    q.as = "ghost";
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_ENOTFOUND);
    q.as = "bob";
    q.project = "o-404";
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_ENOTFOUND);
    q.project = NULL;
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_EINVALID);
    q.project = "o-1";
    q.cursor = "01";
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_EINVALID);
    /* a cursor of this very query (its tag right) whose position lost a byte: malformed */
    json_t *page = history(log, "bob", "o-1", 2, NULL);
    char cut[128];
    ck_assert_ptr_nonnull(pf_str(page, "next"));
    snprintf(cut, sizeof cut, "%s", pf_str(page, "next") + 2);
    json_decref(page);
    q = pf_q("bob");
    q.project = "o-1";
    q.limit = 2;
    q.cursor = cut;
    ck_assert_int_eq(pf_query_code(log, tl_history_query, &q), TL_EINVALID);
    /* an ambassador sees a project without ambassador channel: its project-level entries */
    char buf[256];
    ck_assert_str_eq(timeline(log, "zoe", "o-2", 50, buf, sizeof buf, NULL), "project.created:-");
    pf_done(log, dir);
}
END_TEST

/* The clock set an hour back (NTP, a VM restored): events appended then still carry times
 * that increase along the log (the head's time plus 1 µs), the timeline stays in order, and
 * the log verifies. */
START_TEST(clock_going_back) {
    char buf[2048];
    char *dir;
    tl_log *log = tu_new_log(&dir);
    scenario(log);
    pf_freeze();
    pf_frozen_at.tv_sec -= 3600;
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-back\",\"project\":\"o-1\",\"body\":\"an hour ago?\"}");
    PF_OK(log, "{\"op\":\"project.status\",\"as\":\"bob\",\"project\":\"o-1\",\"status\":\"late\"}");
    pf_thaw();
    long long prev_ts = 0;
    json_t *r = history(log, "aud", "o-1", 100, NULL);
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(r, "entries"), i, e) {
        ck_assert_int_gt(pf_int(e, "ts"), prev_ts);
        prev_ts = pf_int(e, "ts");
    }
    ck_assert_ptr_nonnull(entry(r, "note.added", "n-back"));
    json_decref(r);
    ck_assert_str_eq(timeline(log, "bob", "o-1", 50, buf, sizeof buf, NULL),
                     "project.created:-,project.status_changed:-,topic.created:m-1,note.added:n-1,sent:z-1,replied:m-2,"
                     "pinned:n-1,pinned:m-2,unpinned:m-2,deleted:z-1,note.added:n-back,project.status_changed:-");
    tl_verify_report vr;
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    ck_assert_msg(tl_log_verify(log, &vo, &vr) == 0, "%s", vr.reason);
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_history");
    TCase *tc = tcase_create("history");
    tcase_add_test(tc, visibility_per_role);
    tcase_add_test(tc, entry_contents);
    tcase_add_test(tc, unused_attachment_erasure);
    tcase_add_test(tc, carried_attachment_erasure);
    tcase_add_test(tc, clock_going_back);
    tcase_add_test(tc, message_entries_match_the_log);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
