/*
 * test_erase_owed.c — the clearing an erasure owes survives its process (engine/scrub.c,
 * META_SCRUB_OWED): an `erase` whose clearing never ran (killed between its commit and the
 * clearing, or the clearing failed) leaves a record in the erasing transaction itself, and the
 * next writable open clears the file; a read-only open writes nothing; a reader still on a
 * snapshot from before the erasure keeps the record until a later open.
 *
 * The clearing is made to fail on demand: the suite is linked with
 * --wrap=tl_scrub_free_pages (tests/CMakeLists.txt), and while `fail_scrubs` is set the
 * erase's call answers as a clearing cut short would leave things: nothing cleared. The
 * clearing at open is scrub.c's own call, which the wrapper does not reach.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "testutil.h"

#define BODY "OWED-body-5c1e08aa-the-erased-words"

int __real_tl_scrub_free_pages(tl_log *log, uint64_t *cleared, uint64_t *held);

static int fail_scrubs;

int __wrap_tl_scrub_free_pages(tl_log *log, uint64_t *cleared, uint64_t *held) {
    if (fail_scrubs) {
        *cleared = *held = 0;
        return tl_fail(TL_ESTORAGE, "the test cut this clearing short");
    }
    return __real_tl_scrub_free_pages(log, cleared, held);
}

/* Whether meta records a clearing owed. */
static bool owed(tl_log *log) {
    MDB_txn *txn;
    ck_assert_int_eq(tl_rtxn_begin(log, &txn), 0);
    MDB_val v;
    bool found = tl_get(txn, log->db_meta, META_SCRUB_OWED, sizeof META_SCRUB_OWED - 1, &v) == 0;
    tl_rtxn_end(log, txn);
    return found;
}

static tl_log *open_log(const char *dir, unsigned flags) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = flags;
    tl_log *log;
    ck_assert_msg(tl_log_open(&log, dir, &o) == 0, "open: %s", tl_errdetail());
    return log;
}

/* A note whose body is BODY, erased with its clearing cut short: the record stays owed and
 * the body stays in the file (checked: else the test could not fail). */
static tl_log *erased_uncleared(char **dir) {
    tl_log *log = tu_new_log(dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n1\",\"project\":\"p1\",\"body\":\"" BODY "\"}");
    ck_assert(!owed(log));
    fail_scrubs = 1;
    tl_result res;
    int rc = tl_erase(log, "n1", "a person's request", &res);
    fail_scrubs = 0;
    ck_assert_int_eq(rc, TL_ESTORAGE);
    ck_assert_msg(strstr(res.message, "erase again") != NULL, "%s", res.message);
    ck_assert(owed(log));
    ck_assert_int_gt(tu_data_file_count(*dir, BODY, strlen(BODY)), 0);
    return log;
}

START_TEST(a_writable_open_pays_a_clearing_cut_short) {
    char *dir;
    tl_log *log = erased_uncleared(&dir);
    tl_log_close(log);
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    log = open_log(dir, 0);
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    ck_assert(!owed(log));
    tl_verify_report r;
    ck_assert_int_eq(tl_log_verify(log, NULL, &r), 0);
    ck_assert_uint_eq(r.first_bad_seq, 0);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(a_read_only_open_leaves_the_file_as_it_is) {
    char *dir;
    tl_log *log = erased_uncleared(&dir);
    tl_log_close(log);
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    ck_assert(owed(log));
    tl_log_close(log);
    log = open_log(dir, 0);
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* A snapshot from before the erasure (an iterator of the first handle) still reaches the
 * body's pages: an open meanwhile leaves them and the record; one after it clears them. */
START_TEST(an_open_while_a_reader_holds_the_pages_leaves_the_record) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n1\",\"project\":\"p1\",\"body\":\"" BODY "\"}");
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(it, &ev), 0); /* the snapshot is taken */
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "n1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert(owed(log)); /* the held pages keep the debt open */
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    /* a second process's open, in a child: it must not clear under the reader */
    char *out = NULL;
    ck_assert_int_eq(tu_run(&out, "%s -d '%s' --json stats", TL_CLI, dir), 0);
    free(out);
    ck_assert_int_eq(tu_run(&out, "%s -d '%s' --json user --id bob --role staff --name Bob", TL_CLI, dir), 0);
    free(out);
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    ck_assert(owed(log));
    tl_iter_close(it);
    tl_log_close(log);
    ck_assert_int_eq(tu_run(&out, "%s -d '%s' --json user --id carol --role staff --name Carol", TL_CLI, dir), 0);
    free(out);
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    log = open_log(dir, TL_OPEN_READONLY);
    ck_assert(!owed(log));
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* The erase that clears in full pays its own debt: no record is left behind. */
START_TEST(a_full_clearing_leaves_no_record) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n1\",\"project\":\"p1\",\"body\":\"" BODY "\"}");
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "n1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert(!owed(log));
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("erase_owed");
    TCase *tc = tcase_create("owed");
    tcase_add_test(tc, a_writable_open_pays_a_clearing_cut_short);
    tcase_add_test(tc, a_read_only_open_leaves_the_file_as_it_is);
    tcase_add_test(tc, an_open_while_a_reader_holds_the_pages_leaves_the_record);
    tcase_add_test(tc, a_full_clearing_leaves_no_record);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
