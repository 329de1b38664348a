/*
 * test_lost_database.c — a database of the state or of a projection lost from the data file
 * (SPEC §7: a log directory on disk is input, never trusted; projections always equal a fresh
 * replay): no command appends and no query answers until `replay` has rebuilt them, and after
 * the replay the state is the one the log holds. Before, the first writable open created the
 * database empty and went on: an existing account was created a second time, and a lost
 * projection gave a live digest that no replay gives.
 *
 * Everything runs through the CLI (a process per command, as an operator meets it); the
 * damage is done with raw LMDB, the log closed.
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* A log with an account, a member, a project and a note; its digest into digest. */
static char *make_log(char digest[TL_PUBKEY_HEX_SIZE]) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n1\",\"project\":\"p1\",\"body\":\"hello\"}");
    ck_assert_int_eq(tl_digest(log, digest), 0);
    tl_log_close(log);
    return dir;
}

/* Remove database `name` from the data file, as damage would. */
static void lose(const char *dir, const char *name) {
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
    ck_assert_int_eq(mdb_drop(txn, dbi, 1), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Run a CLI command (--json); its exit status, and its output in *out (malloc'd). */
static int cli(char **out, const char *dir, const char *args) {
    return tu_run(out, "%s -d '%s' --json %s 2>/dev/null", TL_CLI, dir, args);
}

static int events(const char *dir) {
    char *out = NULL;
    ck_assert_int_eq(cli(&out, dir, "log"), 0);
    int n = 0;
    for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++) n++;
    free(out);
    return n;
}

static void check_refused_until_replay(const char *name) {
    char digest[TL_PUBKEY_HEX_SIZE];
    char *dir = make_log(digest);
    int before = events(dir);
    lose(dir, name);
    char *out = NULL;
    /* a query, read-only: it creates nothing and names the damage */
    ck_assert_int_eq(cli(&out, dir, "tracking --as alice"), 1);
    ck_assert_msg(strstr(out, "\"error\":\"corrupt\"") && strstr(out, "replay"), "%s lost, tracking: %s", name, out);
    free(out);
    /* a writer: refused, nothing appended — also by the next one (the mark is in the file) */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(cli(&out, dir, "account --id acme --name Acme"), 1);
        ck_assert_msg(strstr(out, "\"error\":\"corrupt\"") && strstr(out, "replay"), "%s lost, account: %s", name, out);
        free(out);
        ck_assert_int_eq(cli(&out, dir, "note --as alice --project p1 --body again"), 1);
        ck_assert_msg(strstr(out, "\"error\":\"corrupt\""), "%s lost, note: %s", name, out);
        free(out);
    }
    ck_assert_int_eq(events(dir), before);
    ck_assert_int_eq(cli(&out, dir, "tracking --as alice"), 1);
    free(out);
    /* the log itself is whole: verify passes, and replay rebuilds what was lost */
    ck_assert_int_eq(cli(&out, dir, "verify"), 0);
    free(out);
    ck_assert_int_eq(cli(&out, dir, "replay"), 0);
    ck_assert_msg(strstr(out, digest) != NULL, "%s lost: the replay's digest is not the log's own (%s): %s", name, digest, out);
    free(out);
    ck_assert_int_eq(cli(&out, dir, "digest"), 0);
    ck_assert_msg(strstr(out, digest) != NULL, "%s lost: digest after replay %s", name, out);
    free(out);
    ck_assert_int_eq(cli(&out, dir, "account --id acme --name Acme"), 0); /* a retry, answered as such */
    ck_assert_msg(strstr(out, "\"duplicate\":true"), "%s lost: after replay, account retried: %s", name, out);
    free(out);
    ck_assert_int_eq(cli(&out, dir, "account --id acme --name Other"), 1);
    ck_assert_msg(strstr(out, "\"error\":\"exists\""), "%s lost: after replay, account: %s", name, out);
    free(out);
    ck_assert_int_eq(cli(&out, dir, "tracking --as alice"), 0);
    ck_assert_msg(strstr(out, "\"project\":\"p1\""), "%s lost: after replay, tracking: %s", name, out);
    free(out);
    ck_assert_int_eq(events(dir), before);
    tu_rmdir(dir);
    free(dir);
}

START_TEST(a_lost_state_database_stops_writers_until_replay) { check_refused_until_replay("state"); }
END_TEST

START_TEST(a_lost_projection_database_stops_queries_until_replay) { check_refused_until_replay("tracking"); }
END_TEST

START_TEST(a_lost_history_database_stops_queries_until_replay) { check_refused_until_replay("history"); }
END_TEST

int main(void) {
    Suite *s = suite_create("lost_database");
    TCase *tc = tcase_create("lost");
    tcase_add_test(tc, a_lost_state_database_stops_writers_until_replay);
    tcase_add_test(tc, a_lost_projection_database_stops_queries_until_replay);
    tcase_add_test(tc, a_lost_history_database_stops_queries_until_replay);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
