/*
 * test_log_commit_full.c — a full map met by the commit itself (LMDB's MDB_MAP_FULL from
 * mdb_txn_commit, when saving the free list needs pages past the map's end), not by a write:
 * every writer grows the map and runs its transaction again, so the caller sees success and
 * each event is appended once. A single command, a batch, drafts, a key rotation, an erasure
 * and an in-place replay each meet it once.
 *
 * No log reaches that state on demand, so this suite is linked with
 * -Wl,--wrap=mdb_txn_commit (tests/CMakeLists.txt): the wrapper below answers MDB_MAP_FULL,
 * after aborting the transaction as LMDB's failed commit does, for the next `fail_commits`
 * commits. Only write transactions commit once a log is open (read transactions end with
 * mdb_txn_abort), so the commits it fails are the writers'.
 */
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int __real_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_commit(MDB_txn *txn);

static unsigned fail_commits; /* the next commits to answer fail_with */
static unsigned failed_commits; /* how many it answered so */
static int fail_with = MDB_MAP_FULL;

int __wrap_mdb_txn_commit(MDB_txn *txn) {
    if (fail_commits) {
        fail_commits--;
        failed_commits++;
        mdb_txn_abort(txn); /* a failed commit has ended the transaction */
        return fail_with;
    }
    return __real_mdb_txn_commit(txn);
}

static uint64_t head_of(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

static uint64_t map_of(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.map_bytes;
}

static void exec_ok(tl_log *log, const char *json) {
    tl_cmd *cmd;
    tl_result res;
    ck_assert_msg(tl_cmd_parse(&cmd, json, strlen(json), &res) == 0, "parse %s: %s", json, res.message);
    ck_assert_msg(tl_cmd_exec(log, cmd, &res) == 0 && res.code == 0, "%s: %s", json, res.message);
    tl_cmd_free(cmd);
}

/* Arm one failing commit before `what`; check that it was met and that the map grew. */
typedef struct armed {
    uint64_t map;
} armed;
static armed arm(tl_log *log) {
    fail_commits = 1;
    failed_commits = 0;
    return (armed){map_of(log)};
}
static void met(tl_log *log, armed a, const char *what) {
    ck_assert_msg(failed_commits == 1 && fail_commits == 0, "%s: the failing commit was not met", what);
    ck_assert_msg(map_of(log) > a.map, "%s: the map did not grow (%llu bytes)", what, (unsigned long long)a.map);
}

static void setup(tl_log *log) {
    exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    exec_ok(log, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    exec_ok(log, "{\"op\":\"user.create\",\"id\":\"bo\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Bo\"}");
    exec_ok(log, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
}

START_TEST(a_single_command) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    uint64_t head = head_of(log);
    armed a = arm(log);
    exec_ok(log, "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"once\"}");
    met(log, a, "note.add");
    ck_assert_uint_eq(head_of(log), head + 1);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(a_batch) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    uint64_t head = head_of(log);
    static const char *const lines[] = {
        "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"one\"}",
        "{\"op\":\"note.add\",\"as\":\"bo\",\"project\":\"p1\",\"body\":\"two\"}",
        "{\"op\":\"project.status\",\"as\":\"al\",\"project\":\"p1\",\"status\":\"shipped\"}",
    };
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    tl_cmd *cmds[3];
    tl_result res[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tl_cmd_parse(&cmds[i], lines[i], strlen(lines[i]), &res[i]), 0);
        ck_assert_msg(tl_batch_exec(b, cmds[i], &res[i]) == 0, "%s: %s", lines[i], res[i].message);
    }
    armed a = arm(log);
    ck_assert_msg(tl_batch_commit(b) == 0, "batch commit: %s", tl_errdetail());
    met(log, a, "batch");
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(res[i].code == 0 && res[i].seq == head + 1 + (uint64_t)i, "%s: code %d seq %llu", lines[i], res[i].code,
                      (unsigned long long)res[i].seq);
        tl_cmd_free(cmds[i]);
    }
    ck_assert_uint_eq(head_of(log), head + 3);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* A batch whose commit fails for good (an I/O error, not a full map): every command gets the
 * reason once, after one "the commit failed: ", whole; and so does tl_errdetail(). (The
 * group commit of concurrent callers once repeated the prefix per command, the reason read
 * from the buffer each result rewrote: test_log_usage has that case; this is the batch's.) */
START_TEST(a_failed_batch_commit_says_why_to_every_command) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    uint64_t head = head_of(log);
    enum { N = 20 };
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    tl_cmd *cmds[N];
    tl_result res[N];
    for (int i = 0; i < N; i++) {
        char line[160];
        snprintf(line, sizeof line, "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"note %d\"}", i);
        ck_assert_int_eq(tl_cmd_parse(&cmds[i], line, strlen(line), &res[i]), 0);
        ck_assert_msg(tl_batch_exec(b, cmds[i], &res[i]) == 0, "%s: %s", line, res[i].message);
    }
    fail_commits = 1;
    failed_commits = 0;
    fail_with = EIO;
    int rc = tl_batch_commit(b);
    fail_with = MDB_MAP_FULL;
    ck_assert_uint_eq(failed_commits, 1);
    ck_assert_int_eq(rc, TL_ESTORAGE);
    const char *reason = "input/output error"; /* storage_fail's words for EIO */
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(res[i].code, TL_ESTORAGE);
        ck_assert_msg(strncmp(res[i].message, "the commit failed: ", 19) == 0 && !strstr(res[i].message + 19, "the commit failed") &&
                          strstr(res[i].message, reason),
                      "command %d: \"%s\"", i, res[i].message);
        ck_assert_str_eq(res[i].message, res[0].message);
        tl_cmd_free(cmds[i]);
    }
    ck_assert_msg(strstr(tl_errdetail(), reason) != NULL, "tl_errdetail(): \"%s\"", tl_errdetail());
    ck_assert_uint_eq(head_of(log), head); /* nothing of the batch was appended */
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* A commit that meets a damaged page answers its commands `corrupt`, not `storage` (which
 * sends the operator to free disk space): a reliability audit saw a damaged state page answered
 * "storage: ... MDB_CORRUPTED". */
START_TEST(a_commit_meeting_a_damaged_page_is_corrupt) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    tl_cmd *cmd;
    tl_result res;
    const char *line = "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"x\"}";
    ck_assert_int_eq(tl_cmd_parse(&cmd, line, strlen(line), &res), 0);
    ck_assert_int_eq(tl_batch_exec(b, cmd, &res), 0);
    fail_commits = 1;
    failed_commits = 0;
    fail_with = MDB_CORRUPTED;
    int rc = tl_batch_commit(b);
    fail_with = MDB_MAP_FULL;
    ck_assert_uint_eq(failed_commits, 1);
    ck_assert_int_eq(rc, TL_ECORRUPT);
    ck_assert_msg(res.code == TL_ECORRUPT, "%s: %s", tl_strerror(res.code), res.message);
    tl_cmd_free(cmd);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(drafts_a_rotation_an_erasure_and_a_replay) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    setup(log);
    exec_ok(log, "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"id\":\"n1\",\"body\":\"to erase\"}");

    uint64_t head = head_of(log), first = 0;
    static const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01}; /* {"n":1} */
    tl_draft d = {"x.test", "@operator", NULL, payload, sizeof payload};
    armed a = arm(log);
    ck_assert_msg(tl_log_append(log, &d, 1, &first) == 0, "append: %s", tl_errdetail());
    met(log, a, "tl_log_append");
    ck_assert_uint_eq(first, head + 1);
    ck_assert_uint_eq(head_of(log), head + 1);

    char before[TL_PUBKEY_HEX_SIZE], rotated[TL_PUBKEY_HEX_SIZE], now[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, before), 0);
    a = arm(log);
    ck_assert_msg(tl_log_rotate_key(log, rotated) == 0, "rotate: %s", tl_errdetail());
    met(log, a, "rotation");
    ck_assert_int_eq(tl_log_pubkey(log, now), 0);
    ck_assert_str_eq(now, rotated);
    ck_assert_str_ne(now, before);
    ck_assert_uint_eq(head_of(log), head + 2);
    /* the failed attempt's key file is gone: only the log's own files remain */
    DIR *dd = opendir(dir);
    ck_assert_ptr_nonnull(dd);
    for (struct dirent *e; (e = readdir(dd)) != NULL;)
        ck_assert_msg(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "data.mdb") ||
                          !strcmp(e->d_name, "lock.mdb") || !strcmp(e->d_name, "writer.key"),
                      "left in the log's directory: %s", e->d_name);
    closedir(dd);

    tl_result res;
    a = arm(log);
    ck_assert_msg(tl_erase(log, "n1", "request", &res) == 0 && res.code == 0, "erase: %s", res.message);
    met(log, a, "erasure");
    ck_assert_uint_eq(head_of(log), head + 3);

    char live[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    tl_replay_report r;
    a = arm(log);
    ck_assert_msg(tl_replay(log, NULL, &r) == 0, "replay: %s", tl_errdetail());
    met(log, a, "replay");
    ck_assert_str_eq(r.digest, live);

    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(log, NULL, &vr) == 0 && vr.first_bad_seq == 0, "verify: %s", vr.reason);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_commit_full");
    TCase *tc = tcase_create("commit_full");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_single_command);
    tcase_add_test(tc, a_batch);
    tcase_add_test(tc, a_failed_batch_commit_says_why_to_every_command);
    tcase_add_test(tc, a_commit_meeting_a_damaged_page_is_corrupt);
    tcase_add_test(tc, drafts_a_rotation_an_erasure_and_a_replay);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
