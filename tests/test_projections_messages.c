/*
 * test_projections_messages.c — channel lists and topics: pinned first (most recently
 * pinned first) then oldest first, unpinning, deletions (left out; auditors see them in
 * place), per-viewer unread flags, replies and parents, attachments, erased bodies, the
 * support conversation, paging across the pinned/unpinned boundary, and every refusal.
 */
#include <stdbool.h>

#include "test_projections_fixture.h"

#include "content_table.h"

static json_t *list(tl_log *log, const char *as, const char *project, const char *channel, const char *topic,
                    unsigned limit, const char *cursor) {
    tl_query q = pf_q(as);
    q.project = project;
    q.channel = channel;
    q.topic = topic;
    q.limit = limit;
    q.cursor = cursor;
    return pf_query(log, tl_messages_query, &q);
}

/* Every page of a list with `limit` per page, ids joined. */
static const char *ids_paged(tl_log *log, const char *as, const char *project, const char *channel, const char *topic,
                             unsigned limit, char *buf, size_t cap) {
    char cursor[128] = "", part[512];
    size_t n = 0;
    buf[0] = 0;
    for (int pages = 0; pages < 100; pages++) {
        json_t *r = list(log, as, project, channel, topic, limit, cursor[0] ? cursor : NULL);
        pf_ids(json_object_get(r, "messages"), "id", part, sizeof part);
        if (part[0]) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", part);
        const char *next = pf_str(r, "next");
        if (next) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(r);
        if (!next) break;
    }
    return buf;
}

static json_t *find(json_t *root, const char *id) {
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(root, "messages"), i, m) if (!strcmp(pf_str(m, "id"), id)) return m;
    return NULL;
}

/* Message `id` of topic `topic` in o-1's chat shows to `as` as erased. */
static void assert_erased(tl_log *log, const char *as, const char *topic, const char *id) {
    json_t *r = list(log, as, "o-1", "chat", topic, 50, NULL);
    json_t *m = find(r, id);
    ck_assert_msg(m != NULL, "%s is not listed", id);
    ck_assert(json_is_null(json_object_get(m, "body")));
    ck_assert(json_is_true(json_object_get(m, "erased")));
    json_decref(r);
}

static void chat(tl_log *log, const char *as, const char *id, const char *topic, const char *body) {
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"%s\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"%s\",\"body\":\"%s\"}",
          as, id, topic, body);
}

/* Empty the closed log's content database with LMDB directly (every body gone, as if erased
 * behind the log's back) and open the log again. */
static tl_log *reopen_without_content(const char *dir) {
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi content;
    ck_assert_int_eq(mdb_dbi_open(txn, "content", 0, &content), 0);
    ck_assert_int_eq(mdb_drop(txn, content, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    return log;
}

static void setup(tl_log *log) {
    pf_cast(log);
    pf_order(log, "o-1", "alice");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Ship\",\"body\":\"when?\",\"message_id\":\"m-1\"}");
    chat(log, "sam", "m-2", "t-1", "tomorrow");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"sam\",\"id\":\"t-2\",\"project\":\"o-1\",\"title\":\"Size\",\"body\":\"M?\",\"message_id\":\"m-3\"}");
    chat(log, "bob", "m-4", "t-1", "thanks");
    chat(log, "alice", "m-5", "t-2", "yes M");
}

START_TEST(pinned_first_then_oldest_first) {
    char *dir, buf[512];
    tl_log *log = tu_new_log(&dir);
    setup(log);
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-1,m-2,m-3,m-4,m-5");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", "t-1", 50, buf, sizeof buf), "m-1,m-2,m-4");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", "t-2", 50, buf, sizeof buf), "m-3,m-5");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"m-4\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"sam\",\"message\":\"m-2\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"alice\",\"message\":\"m-5\"}");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-5,m-2,m-4,m-1,m-3");
    ck_assert_str_eq(ids_paged(log, "sam", "o-1", "chat", "t-1", 50, buf, sizeof buf), "m-2,m-4,m-1");
    /* paging across the pinned / unpinned boundary, every page size */
    for (unsigned limit = 1; limit <= 5; limit++)
        ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, limit, buf, sizeof buf), "m-5,m-2,m-4,m-1,m-3");
    /* unpinning puts a message back in its chronological place */
    PF_OK(log, "{\"op\":\"message.unpin\",\"as\":\"bob\",\"message\":\"m-2\"}");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-5,m-4,m-1,m-2,m-3");
    /* pinned again: the most recently pinned comes first */
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"m-2\"}");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-2,m-5,m-4,m-1,m-3");
    json_t *r = list(log, "bob", "o-1", "chat", NULL, 50, NULL);
    ck_assert(json_is_true(json_object_get(find(r, "m-2"), "pinned")));
    ck_assert(json_is_false(json_object_get(find(r, "m-1"), "pinned")));
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

START_TEST(message_fields_and_unread_flags) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"a-1\",\"project\":\"o-1\",\"name\":\"label.pdf\",\"mime\":\"application/pdf\",\"data\":\"JVBERi0xLjQK\"}");
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"a-2\",\"project\":\"o-1\",\"name\":\"raw.bin\",\"data\":\"\"}");
    PF_OK(log, "{\"op\":\"message.reply\",\"as\":\"bob\",\"id\":\"r-1\",\"message\":\"m-2\",\"body\":\"ok\",\"attachments\":[\"a-1\",\"a-2\"]}");
    PF_OK(log, "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-2\"}");
    json_t *r = list(log, "alice", "o-1", "chat", "t-1", 50, NULL);
    json_t *m2 = find(r, "m-2"), *r1 = find(r, "r-1"), *m1 = find(r, "m-1");
    ck_assert_str_eq(pf_str(m2, "project"), "o-1");
    ck_assert_str_eq(pf_str(m2, "channel"), "chat");
    ck_assert_str_eq(pf_str(m2, "topic"), "t-1");
    ck_assert_str_eq(pf_str(m2, "author"), "sam");
    ck_assert_str_eq(pf_str(m2, "body"), "tomorrow");
    ck_assert(json_is_null(json_object_get(m2, "parent")));
    ck_assert_int_eq(pf_int(m2, "replies"), 1);
    ck_assert(json_is_false(json_object_get(m2, "unread"))); /* read */
    ck_assert(json_is_false(json_object_get(m1, "unread"))); /* her own */
    ck_assert(json_is_true(json_object_get(r1, "unread")));
    ck_assert_str_eq(pf_str(r1, "parent"), "m-2");
    ck_assert_int_gt(pf_int(r1, "ts"), 0);
    json_t *att = json_object_get(r1, "attachments");
    ck_assert_int_eq(json_array_size(att), 2);
    ck_assert_str_eq(pf_str(json_array_get(att, 0), "id"), "a-1");
    ck_assert_str_eq(pf_str(json_array_get(att, 0), "name"), "label.pdf");
    ck_assert_int_eq(pf_int(json_array_get(att, 0), "size"), 9);
    ck_assert_str_eq(pf_str(json_array_get(att, 0), "mime"), "application/pdf");
    ck_assert_str_eq(pf_str(json_array_get(att, 1), "mime"), "application/octet-stream");
    ck_assert_int_eq(pf_int(json_array_get(att, 1), "size"), 0);
    ck_assert(json_is_false(json_object_get(m2, "deleted"))); /* always there: false unless deleted */
    json_decref(r);
    /* auditors never have unread messages */
    r = list(log, "aud", "o-1", "chat", "t-1", 50, NULL);
    ck_assert(json_is_false(json_object_get(find(r, "r-1"), "unread")));
    json_decref(r);
    /* notes, the ambassador channel, support: topic and project null where they do not apply */
    PF_OK(log, "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"n\"}");
    r = list(log, "alice", "o-1", "notes", NULL, 50, NULL);
    ck_assert(json_is_null(json_object_get(find(r, "n-1"), "topic")));
    ck_assert_str_eq(pf_str(find(r, "n-1"), "channel"), "notes");
    json_decref(r);
    r = list(log, "zoe", "o-1", "ambassador", NULL, 50, NULL);
    ck_assert_str_eq(pf_str(find(r, "am-o-1"), "body"), "Size M");
    ck_assert(json_is_false(json_object_get(find(r, "am-o-1"), "unread")));
    json_decref(r);
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"help\"}");
    tl_query q = pf_q("sue");
    q.account = "acme";
    q.channel = "support";
    r = pf_query(log, tl_messages_query, &q);
    json_t *s1 = find(r, "s-1");
    ck_assert(json_is_null(json_object_get(s1, "project")));
    ck_assert(json_is_null(json_object_get(s1, "topic")));
    ck_assert_str_eq(pf_str(s1, "channel"), "support");
    ck_assert(json_is_true(json_object_get(s1, "unread")));
    json_decref(r);
    /* erased content shows as erased */
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-2", "GDPR request", &res), 0);
    assert_erased(log, "bob", "t-1", "m-2");
    /* an erased attachment too, wherever the message carrying it is shown: its list, the
     * dashboard, its history entry; the other attachment of the message is untouched */
    ck_assert_int_eq(tl_erase(log, "a-1", "GDPR request", &res), 0);
    for (int where = 0; where < 3; where++) {
        json_t *root, *msg = NULL;
        if (where == 0) {
            root = list(log, "alice", "o-1", "chat", "t-1", 50, NULL);
            msg = find(root, "r-1");
        } else {
            tl_query dq = pf_q("alice");
            if (where == 2) dq.project = "o-1";
            root = pf_query(log, where == 1 ? tl_dashboard_query : tl_history_query, &dq);
            json_t *items = where == 1 ? json_object_get(json_array_get(json_object_get(root, "panels"), 1), "messages")
                                       : json_object_get(root, "entries");
            json_t *it;
            size_t k;
            json_array_foreach(items, k, it) {
                const char *mid = json_string_value(json_object_get(it, where == 1 ? "id" : "message"));
                const char *kind = json_string_value(json_object_get(it, "kind"));
                if (mid && !strcmp(mid, "r-1") && (where == 1 || !strcmp(kind, "message.replied"))) msg = it;
            }
        }
        ck_assert_msg(msg != NULL, "r-1 not shown (view %d)", where);
        json_t *atts = json_object_get(msg, "attachments");
        ck_assert_int_eq(json_array_size(atts), 2);
        ck_assert_str_eq(pf_str(json_array_get(atts, 0), "id"), "a-1");
        ck_assert_msg(json_is_true(json_object_get(json_array_get(atts, 0), "erased")), "a-1 not erased (view %d)", where);
        ck_assert_str_eq(pf_str(json_array_get(atts, 0), "name"), "label.pdf");
        ck_assert_ptr_null(json_object_get(json_array_get(atts, 1), "erased"));
        json_decref(root);
    }
    pf_done(log, dir);
}
END_TEST

START_TEST(deleted_messages) {
    char *dir, buf[512];
    tl_log *log = tu_new_log(&dir);
    setup(log);
    PF_OK(log, "{\"op\":\"message.reply\",\"as\":\"bob\",\"id\":\"r-1\",\"message\":\"m-2\",\"body\":\"ok\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"r-1\"}");
    PF_OK(log, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"m-1\"}");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-1,r-1,m-2,m-3,m-4,m-5");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"bob\",\"message\":\"r-1\"}");
    PF_OK(log, "{\"op\":\"message.delete\",\"as\":\"bob\",\"message\":\"m-4\"}");
    ck_assert_str_eq(ids_paged(log, "bob", "o-1", "chat", NULL, 50, buf, sizeof buf), "m-1,m-2,m-3,m-5");
    ck_assert_str_eq(ids_paged(log, "sam", "o-1", "chat", "t-1", 50, buf, sizeof buf), "m-1,m-2");
    /* auditors: in place, deleted, not pinned, with the body */
    for (unsigned limit = 1; limit <= 7; limit++)
        ck_assert_str_eq(ids_paged(log, "aud", "o-1", "chat", NULL, limit, buf, sizeof buf), "m-1,m-2,m-3,m-4,m-5,r-1");
    json_t *r = list(log, "aud", "o-1", "chat", NULL, 50, NULL);
    json_t *r1 = find(r, "r-1");
    ck_assert(json_is_true(json_object_get(r1, "deleted")));
    ck_assert(json_is_false(json_object_get(r1, "pinned")));
    ck_assert_str_eq(pf_str(r1, "body"), "ok");
    ck_assert_int_eq(pf_int(find(r, "m-2"), "replies"), 0);
    json_decref(r);
    /* topics count messages that are not deleted */
    tl_query q = pf_q("sam");
    q.project = "o-1";
    r = pf_query(log, tl_topics_query, &q);
    json_t *topics = json_object_get(r, "topics");
    ck_assert_str_eq(pf_ids(topics, "id", buf, sizeof buf), "t-1,t-2");
    json_t *t1 = json_array_get(topics, 0);
    ck_assert_str_eq(pf_str(t1, "title"), "Ship");
    ck_assert_str_eq(pf_str(t1, "author"), "alice");
    ck_assert_int_eq(pf_int(t1, "messages"), 2);
    ck_assert_int_eq(pf_int(t1, "unread"), 1); /* m-1 (m-2 is his own) */
    ck_assert_int_eq(pf_int(json_array_get(topics, 1), "messages"), 2);
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

/*
 * A body of up to TL_BODY_INLINE_MAX (192) bytes is copied into its message's record, so a
 * page renders it without the content database; a longer one is read from there. Emptying
 * the content database with LMDB directly shows which is which: the short body still renders,
 * the long one reads as erased. An erasure must then still remove the record's copy, though
 * the content it would delete is already gone.
 */
START_TEST(short_bodies_render_from_their_record) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    char shortb[193], longb[194];
    memset(shortb, 's', 192);
    shortb[192] = 0;
    memset(longb, 'l', 193);
    longb[193] = 0;
    chat(log, "sam", "m-short", "t-1", shortb);
    chat(log, "sam", "m-long", "t-1", longb);
    tl_log_close(log);

    log = reopen_without_content(dir);
    json_t *r = list(log, "alice", "o-1", "chat", "t-1", 0, NULL);
    json_t *s = find(r, "m-short"), *l = find(r, "m-long"), *m2 = find(r, "m-2");
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(pf_str(s, "body"), shortb);
    ck_assert_ptr_null(json_object_get(s, "erased"));
    ck_assert_str_eq(pf_str(m2, "body"), "tomorrow");
    ck_assert(json_is_null(json_object_get(l, "body")));
    ck_assert(json_is_true(json_object_get(l, "erased")));
    json_decref(r);

    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-short", "request", &res), 0);
    ck_assert_int_eq(res.noop, 0);
    ck_assert_uint_gt(res.seq, 0);
    ck_assert_int_eq(tl_erase(log, "m-long", "request", &res), 0);
    ck_assert_int_eq(res.noop, 1); /* nothing of it left anywhere */
    assert_erased(log, "alice", "t-1", "m-short");
    pf_done(log, dir);
}
END_TEST

/* A page shows an attachment's name, size and whether its bytes were erased, and never reads
 * the bytes themselves (up to the attachment limit each): with the stored bytes damaged, the
 * page still renders, while fetching the attachment reports the damage. */
START_TEST(pages_do_not_read_attachment_bytes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    PF_OK(log, "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"a-9\",\"project\":\"o-1\",\"name\":\"f.txt\",\"data\":\"aGVsbG8=\"}");
    PF_OK(log, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"m-9\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"see\",\"attachments\":[\"a-9\"]}");
    tl_log_close(log);

    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi content;
    MDB_cursor *cur = tu_raw_cursor(txn, "content", &content);
    MDB_val k, v;
    int damaged = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 32 + 5 || memcmp((char *)v.mv_data + 32, "hello", 5) != 0) continue;
        char bytes[64];
        memcpy(bytes, v.mv_data, v.mv_size);
        bytes[32] = 'j';
        MDB_val nv = {v.mv_size, bytes};
        ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
        damaged++;
    }
    mdb_cursor_close(cur);
    ck_assert_int_eq(damaged, 1);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    json_t *r = list(log, "alice", "o-1", "chat", "t-1", 0, NULL);
    json_t *att = json_array_get(json_object_get(find(r, "m-9"), "attachments"), 0);
    ck_assert_str_eq(pf_str(att, "id"), "a-9");
    ck_assert_int_eq(pf_int(att, "size"), 5);
    ck_assert_ptr_null(json_object_get(att, "erased"));
    json_decref(r);
    uint8_t *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(tl_attachment_get(log, "a-9", "alice", &out, &len, NULL, NULL), TL_ECORRUPT);
    tl_free(out);
    pf_done(log, dir);
}
END_TEST

/* A short body whose stored content no longer matches its commitment (a damaged file): a
 * replay goes on without copying it, and a page showing the message reports the damage from
 * the content database, as it did before short bodies were copied. */
START_TEST(damaged_short_body_is_not_copied) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    chat(log, "sam", "m-6", "t-1", "size M please");
    tl_log_close(log);

    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi content;
    MDB_cursor *cur = tu_raw_cursor(txn, "content", &content);
    MDB_val k, v;
    int damaged = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 32 + strlen("size M please") || memcmp((char *)v.mv_data + 32, "size M please", 13) != 0) continue;
        char bytes[64];
        memcpy(bytes, v.mv_data, v.mv_size);
        bytes[32] = 'S'; /* "Size M please": another body than the one committed to */
        MDB_val nv = {v.mv_size, bytes};
        ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
        damaged++;
    }
    mdb_cursor_close(cur);
    ck_assert_int_eq(damaged, 1);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    tl_replay_report rr;
    ck_assert_msg(tl_replay(log, NULL, &rr) == 0, "replay: %s", tl_errdetail());
    tl_query q = pf_q("alice");
    q.project = "o-1";
    q.channel = "chat";
    q.topic = "t-1";
    char *json = NULL;
    ck_assert_int_eq(tl_messages_query(log, &q, &json), TL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(tl_errdetail(), "does not match its commitment"));
    tl_free(json);
    json_t *r = list(log, "alice", "o-1", "chat", "t-2", 0, NULL); /* another topic: untouched */
    ck_assert_str_eq(pf_str(find(r, "m-5"), "body"), "yes M");
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

/* Calls of tl_content_get from outside wtxn.c (the state's copy of a short body, the content
 * audit of a verifying replay, pages), counted: a replay takes its bodies from its table. */
int __real_tl_content_get(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES], const uint8_t **content,
                          size_t *len);
static unsigned content_gets;
int __wrap_tl_content_get(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES], const uint8_t **content,
                          size_t *len) {
    content_gets++;
    return __real_tl_content_get(txn, log, commit, content, len);
}

/*
 * A replay reads the content database once, in key order, into a table (content_table.c),
 * and takes bodies from there: the content audit of a verifying replay and the state's copy
 * of each short body look nothing up but what the table does not hold (here the erased body:
 * once by the audit, once by the state). The copies must be the bodies the appends copied,
 * for every length around the limit and across chunk boundaries (chunks of 16 events: a chunk
 * is applied while the next one is verified), with and without verification, on one and two
 * threads, and without the table (THREADLOG_TEST_NO_CONTENT_TABLE: a content database too
 * large for it): with the content database emptied afterwards, every short body still
 * renders, byte for byte, from its record. An erased body is never copied back.
 */
static void replays_copy_short_bodies(int verify, bool table) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    enum { N = 40 };
    char bodies[N][200];
    for (int i = 0; i < N; i++) { /* lengths 1..193 around the limit (192), each body its own */
        size_t len = i < 8 ? (size_t)(186 + i) : (size_t)(1 + i * 5);
        for (size_t j = 0; j < len; j++) bodies[i][j] = (char)('a' + (i + j) % 26);
        bodies[i][len] = 0;
        char id[16];
        snprintf(id, sizeof id, "m-b%d", i);
        chat(log, i % 2 ? "sam" : "bob", id, "t-1", bodies[i]);
    }
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-b9", "request", &res), 0);
    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "16", 1);
    if (!table) setenv("THREADLOG_TEST_NO_CONTENT_TABLE", "1", 1);
    for (unsigned threads = 1; threads <= 2; threads++) {
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = verify;
        o.threads = threads;
        tl_replay_report r;
        content_gets = 0;
        ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay: %s", tl_errdetail());
        ck_assert_str_eq(r.digest, live);
        /* N - 1 stored chat bodies, plus setup's 6 messages (with the ambassador's) */
        if (verify) ck_assert_uint_eq(r.verify.contents, N - 1 + 6);
        if (table) ck_assert_uint_eq(content_gets, verify ? 2 : 1);
        else ck_assert_uint_gt(content_gets, N / 2); /* each looked up: the table was not made */
    }
    unsetenv("THREADLOG_TEST_REPLAY_CHUNK");
    unsetenv("THREADLOG_TEST_NO_CONTENT_TABLE");
    tl_log_close(log);

    log = reopen_without_content(dir);
    json_t *r = list(log, "alice", "o-1", "chat", "t-1", 100, NULL);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "m-b%d", i);
        json_t *m = find(r, id);
        ck_assert_msg(m != NULL, "%s is not listed", id);
        if (i == 9 || strlen(bodies[i]) > 192) { /* erased, or never copied: gone with the database */
            ck_assert_msg(json_is_null(json_object_get(m, "body")), "%s renders a body", id);
            continue;
        }
        ck_assert_str_eq(pf_str(m, "body"), bodies[i]);
    }
    json_decref(r);
    pf_done(log, dir);
}

START_TEST(replays_copy_short_bodies_from_their_content_table) {
    replays_copy_short_bodies(0, true);
    replays_copy_short_bodies(1, true);
}
END_TEST

START_TEST(replays_copy_short_bodies_without_a_content_table) {
    replays_copy_short_bodies(0, false);
    replays_copy_short_bodies(1, false);
}
END_TEST

/* Whether each replay's table copies or points. */
int __real_tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, bool copy,
                                  size_t max_bytes);
static int table_copied = -1;
int __wrap_tl_content_table_build(tl_content_table *t, MDB_txn *txn, tl_log *log, bool all, bool copy,
                                  size_t max_bytes) {
    table_copied = copy;
    return __real_tl_content_table_build(t, txn, log, all, copy, max_bytes);
}

/* Every entry of t against the database: found by its commitment, the length and (a short
 * body) the bytes the content database holds; pointing at them (not a copy) when `pointed`. */
static void check_table(const tl_content_table *t, MDB_txn *txn, tl_log *log, bool pointed) {
    size_t seen = 0;
    for (size_t j = 0; j < t->nslot; j++) {
        const tl_content_entry *e = &t->slots[j];
        if (e->state == TL_CONTENT_ABSENT) continue;
        seen++;
        ck_assert_ptr_eq(tl_content_table_find(t, e->commit), e);
        const uint8_t *content;
        size_t len;
        ck_assert_int_eq(__real_tl_content_get(txn, log, e->commit, &content, &len), 0);
        ck_assert_uint_eq(e->len, len);
        ck_assert_int_eq(e->state, len <= TL_CONTENT_TABLE_BODY_MAX ? TL_CONTENT_BODY : TL_CONTENT_STORED);
        if (e->state != TL_CONTENT_BODY) continue;
        ck_assert_int_eq(memcmp(e->bytes, content, len), 0);
        if (pointed) ck_assert_ptr_eq(e->bytes, content);
    }
    ck_assert_uint_eq(seen, t->n);
}

/* The table test's i-th message: its id and a body of 1 + 7i bytes (1..204: short bodies and
 * a few longer ones). */
static void table_test_message(int i, char id[16], char body[220]) {
    size_t len = 1 + (size_t)i * 7;
    for (size_t j = 0; j < len; j++) body[j] = (char)('a' + (i + (int)j) % 26);
    body[len] = 0;
    snprintf(id, 16, "m-t%d", i);
}

/*
 * The table points at the contents where LMDB keeps them when that is a page of the map the
 * transaction has not written (it stays put until the transaction ends), and copies what lies
 * on a page the transaction wrote (LMDB's heap copy, which a spill may reuse): a copy's cut
 * deletes content before its replay builds the table (replay_copy.c). Replays ask for copies
 * in every case (faster, content_table.c).
 */
START_TEST(content_table_points_at_clean_pages_and_copies_written_ones) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    for (int i = 0; i < 30; i++) {
        char id[16], body[220];
        table_test_message(i, id, body);
        chat(log, "bob", id, "t-1", body);
    }
    tl_wtxn *w;
    ck_assert_int_eq(tl_wtxn_begin(log, &w), 0);
    tl_content_table t;
    ck_assert_int_eq(tl_content_table_build(&t, w->txn, log, true, false, (size_t)64 << 20), 0);
    ck_assert_uint_ge(t.n, 30 + 6);
    ck_assert_uint_eq(t.copied, 0); /* nothing written: every content pointed at */
    check_table(&t, w->txn, log, true);
    size_t all = t.n;
    tl_content_table_free(&t);

    uint8_t fresh[TL_HASH_BYTES];
    ck_assert_int_eq(tl_content_put(w, "fresh", 5, fresh, NULL), 0); /* its page is now the txn's copy */
    ck_assert_int_eq(tl_content_table_build(&t, w->txn, log, true, true, (size_t)64 << 20), 0);
    ck_assert_uint_eq(t.n, all + 1);
    ck_assert_uint_gt(t.copied, 0);
    check_table(&t, w->txn, log, false);
    const tl_content_entry *e = tl_content_table_find(&t, fresh);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->len, 5);
    ck_assert_int_eq(memcmp(e->bytes, "fresh", 5), 0);
    tl_content_table_free(&t);
    /* without the long contents (an unverified replay's table): short bodies only */
    ck_assert_int_eq(tl_content_table_build(&t, w->txn, log, false, true, (size_t)64 << 20), 0);
    ck_assert_uint_lt(t.n, all + 1);
    check_table(&t, w->txn, log, false);
    tl_content_table_free(&t);
    tl_wtxn_abort(w);

    /* replays copy, in place (faster than pointing, content_table.c) and in a copy cut before
     * the head (its cut deleted the later bodies, so pointing would be unsafe there); the cut
     * copy renders the bodies up to the cut */
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    tl_replay_report r;
    table_copied = -1;
    ck_assert_int_eq(tl_replay(log, &o, &r), 0);
    ck_assert_int_eq(table_copied, 1);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    char into[4200];
    snprintf(into, sizeof into, "%s.cut", dir);
    o.into_dir = into;
    o.until_seq = st.events - 2; /* m-t28 and m-t29 cut */
    table_copied = -1;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay --into: %s", tl_errdetail());
    ck_assert_int_eq(table_copied, 1);
    tl_log *copy;
    tl_open_options ro = TL_OPEN_OPTIONS_INIT;
    ro.flags = TL_OPEN_READONLY;
    ck_assert_int_eq(tl_log_open(&copy, into, &ro), 0);
    json_t *page = list(copy, "alice", "o-1", "chat", "t-1", 100, NULL);
    for (int i = 0; i < 28; i++) {
        char id[16], body[220];
        table_test_message(i, id, body);
        json_t *m = find(page, id);
        ck_assert_msg(m != NULL, "%s is not listed", id);
        ck_assert_str_eq(pf_str(m, "body"), body);
    }
    ck_assert_ptr_null(find(page, "m-t28"));
    json_decref(page);
    tl_log_close(copy);
    pf_done(log, dir);
}
END_TEST

START_TEST(refusals) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\",\"ambassador\":\"zoe\"}");
    PF_OK(log, "{\"op\":\"project.create\",\"as\":\"carl\",\"id\":\"b-1\",\"account\":\"beta\",\"type\":\"video\",\"title\":\"B\"}");
    PF_OK(log, "{\"op\":\"topic.create\",\"as\":\"carl\",\"id\":\"t-9\",\"project\":\"b-1\",\"title\":\"X\",\"body\":\"x\"}");
    struct { const char *as, *project, *account, *channel, *topic; int code; } cases[] = {
        {"ghost", "o-1", NULL, "chat", NULL, TL_ENOTFOUND},
        {"bob", "nope", NULL, "chat", NULL, TL_ENOTFOUND},
        {"bob", "o-1", NULL, "chatter", NULL, TL_EINVALID},
        {"bob", "o-1", NULL, NULL, NULL, TL_EINVALID},
        {"bob", NULL, NULL, "chat", NULL, TL_EINVALID},
        {"bob", "o-1", NULL, "notes", "t-1", TL_EINVALID},
        {"bob", "o-1", NULL, "chat", "t-404", TL_ENOTFOUND},
        {"bob", "o-1", NULL, "chat", "t-9", TL_EINVALID},
        {"sam", "o-1", NULL, "notes", NULL, TL_EFORBIDDEN},
        {"sam", "o-1", NULL, "ambassador", NULL, TL_EFORBIDDEN},
        {"carl", "o-1", NULL, "chat", NULL, TL_EFORBIDDEN},
        {"zoe", "o-1", NULL, "chat", NULL, TL_EFORBIDDEN},
        {"yan", "o-1", NULL, "ambassador", NULL, TL_EFORBIDDEN},
        {"bob", "o-2", NULL, "ambassador", NULL, TL_ECHANNEL},
        {"zoe", "o-2", NULL, "ambassador", NULL, TL_ECHANNEL},
        {"carl", NULL, "acme", "support", NULL, TL_EFORBIDDEN},
        {"zoe", NULL, "acme", "support", NULL, TL_EFORBIDDEN},
        {"bob", NULL, "nope", "support", NULL, TL_ENOTFOUND},
        {"bob", NULL, NULL, "support", NULL, TL_EINVALID},
        {"bob", "o-1", "acme", "support", NULL, TL_EINVALID},
        /* an account with a project's channel is refused, never ignored */
        {"bob", "o-1", "nope", "notes", NULL, TL_EINVALID},
        {"bob", "o-1", "acme", "chat", NULL, TL_EINVALID},
        {"sam", NULL, "acme", "support", NULL, 0},
        {"aud", "o-1", NULL, "notes", NULL, 0},
        {"aud", "o-2", NULL, "ambassador", NULL, TL_ECHANNEL},
        /* precedence: invalid_input before not_found before forbidden */
        {"ghost", "o-1", NULL, "notes", "t-1", TL_EINVALID},
        {"ghost", "nope", NULL, "chatter", NULL, TL_EINVALID},
        {"bad id", "o-1", NULL, "chat", NULL, TL_EINVALID},
        {"bob", "o 1", NULL, "chat", NULL, TL_EINVALID},
        {"ghost", "nope", NULL, "chat", NULL, TL_ENOTFOUND},
        {"carl", "nope", NULL, "notes", NULL, TL_ENOTFOUND},
        {"sam", "o-2", NULL, "ambassador", NULL, TL_EFORBIDDEN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_query q = pf_q(cases[i].as);
        q.project = cases[i].project;
        q.account = cases[i].account;
        q.channel = cases[i].channel;
        q.topic = cases[i].topic;
        int rc = pf_query_code(log, tl_messages_query, &q);
        ck_assert_msg(rc == cases[i].code, "case %zu: %s, expected %s", i, tl_strerror(rc), tl_strerror(cases[i].code));
    }
    tl_query q = pf_q("bob");
    q.project = "o-1";
    q.channel = "chat";
    q.cursor = "0200000000000000ff";
    ck_assert_int_eq(pf_query_code(log, tl_messages_query, &q), TL_EINVALID);
    /* a cursor of this very query (its tag right) naming a section that does not exist */
    q.limit = 1;
    q.cursor = NULL;
    json_t *page = pf_query(log, tl_messages_query, &q);
    char forged[256];
    ck_assert_ptr_nonnull(pf_str(page, "next"));
    snprintf(forged, sizeof forged, "02%s", pf_str(page, "next") + 2);
    json_decref(page);
    q.cursor = forged;
    ck_assert_int_eq(pf_query_code(log, tl_messages_query, &q), TL_EINVALID);
    q.limit = 0;
    q.cursor = NULL;
    q = pf_q("zoe");
    q.project = "o-1";
    ck_assert_int_eq(pf_query_code(log, tl_topics_query, &q), TL_EFORBIDDEN);
    q = pf_q("carl");
    q.project = "o-1";
    ck_assert_int_eq(pf_query_code(log, tl_topics_query, &q), TL_EFORBIDDEN);
    q = pf_q("aud");
    q.project = "o-1";
    ck_assert_int_eq(pf_query_code(log, tl_topics_query, &q), 0);
    pf_done(log, dir);
}
END_TEST

/* The number of items of a page's array, and whether it has a next cursor. */
static size_t page_size(tl_log *log, pf_query_fn fn, const tl_query *q, const char *array, bool *next) {
    json_t *r = pf_query(log, fn, q);
    size_t n = json_array_size(json_object_get(r, array));
    *next = json_is_string(json_object_get(r, "next"));
    json_decref(r);
    return n;
}

/*
 * SPEC "Default page sizes": 50 rows or messages or entries; 5 messages per dashboard panel.
 * 60 of each exist, so a default page must stop at 50 (with a cursor) or 5: any other
 * default fails here.
 */
START_TEST(default_page_sizes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    pf_cast(log);
    for (int i = 0; i < 60; i++)
        PF_OK(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p-%02d\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"P\"}", i);
    for (int i = 0; i < 60; i++)
        PF_OK(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-%02d\",\"project\":\"p-00\",\"body\":\"note %d\"}", i, i);
    bool next;
    tl_query q = pf_q("bob");
    ck_assert_uint_eq(page_size(log, tl_tracking_query, &q, "rows", &next), 50);
    ck_assert(next);
    q.project = "p-00";
    q.channel = "notes";
    ck_assert_uint_eq(page_size(log, tl_messages_query, &q, "messages", &next), 50);
    ck_assert(next);
    q = pf_q("bob");
    q.project = "p-00";
    ck_assert_uint_eq(page_size(log, tl_history_query, &q, "entries", &next), 50);
    ck_assert(next);
    q = pf_q("bob");
    q.type = "video";
    q.more = 1;
    ck_assert_uint_eq(page_size(log, tl_dashboard_query, &q, "messages", &next), 50);
    ck_assert(next);
    q = pf_q("bob");
    json_t *r = pf_query(log, tl_dashboard_query, &q);
    json_t *video = json_array_get(json_object_get(r, "panels"), 2);
    ck_assert_str_eq(pf_str(video, "type"), "video");
    ck_assert_int_eq(pf_int(video, "unread"), 60);
    ck_assert_uint_eq(json_array_size(json_object_get(video, "messages")), 5);
    json_decref(r);
    pf_done(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_messages");
    TCase *tc = tcase_create("messages");
    tcase_add_test(tc, pinned_first_then_oldest_first);
    tcase_add_test(tc, message_fields_and_unread_flags);
    tcase_add_test(tc, deleted_messages);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, short_bodies_render_from_their_record);
    tcase_add_test(tc, damaged_short_body_is_not_copied);
    tcase_add_test(tc, replays_copy_short_bodies_from_their_content_table);
    tcase_add_test(tc, replays_copy_short_bodies_without_a_content_table);
    tcase_add_test(tc, content_table_points_at_clean_pages_and_copies_written_ones);
    tcase_add_test(tc, pages_do_not_read_attachment_bytes);
    tcase_add_test(tc, default_page_sizes);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
