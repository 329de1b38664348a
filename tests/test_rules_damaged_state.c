/*
 * test_rules_damaged_state.c — a command whose id the log generates, on a state that cannot
 * be read (a damaged page): the lookup's failure is the command's answer (`corrupt`), at once,
 * and nothing is appended. The id generator took every failed lookup for "id taken" and
 * tried the next one forever, holding the write lock: every writer of the log hung (an audit
 * zeroed 150 pages one at a time; one of them did it).
 *
 * The damage is made on demand: the suite is linked with --wrap=tl_wstate_message and
 * --wrap=tl_state_topic (tests/CMakeLists.txt); while `damaged` is set, a lookup of a
 * generated id ("m:..." or "t:...") fails as a damaged page's does.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "state.h"
#include "testutil.h"

int __real_tl_wstate_message(tl_wtxn *w, const char *id, tl_message_rec *out);
int __real_tl_state_topic(MDB_txn *txn, tl_log *log, const char *id, tl_topic_rec *out);

static int damaged;

int __wrap_tl_wstate_message(tl_wtxn *w, const char *id, tl_message_rec *out) {
    if (damaged && !strncmp(id, "m:", 2)) return tl_fail(TL_ECORRUPT, "state: page 77 is damaged (the test's)");
    return __real_tl_wstate_message(w, id, out);
}

int __wrap_tl_state_topic(MDB_txn *txn, tl_log *log, const char *id, tl_topic_rec *out) {
    if (damaged && !strncmp(id, "t:", 2)) return tl_fail(TL_ECORRUPT, "state: page 78 is damaged (the test's)");
    return __real_tl_state_topic(txn, log, id, out);
}

static uint64_t events(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

static void refused_as_corrupt(tl_log *log, const char *json) {
    tl_cmd *cmd;
    tl_result res;
    ck_assert_int_eq(tl_cmd_parse(&cmd, json, strlen(json), &res), 0);
    uint64_t before = events(log);
    damaged = 1;
    (void)tl_cmd_exec(log, cmd, &res);
    damaged = 0;
    tl_cmd_free(cmd);
    ck_assert_msg(res.code == TL_ECORRUPT && strstr(res.message, "damaged"), "%s: %d %s", json, res.code, res.message);
    ck_assert_uint_eq(events(log), before);
}

START_TEST(a_generated_id_on_a_damaged_state_is_refused_at_once) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"topic.create\",\"as\":\"al\",\"id\":\"t1\",\"message_id\":\"m1\",\"project\":\"p1\",\"title\":\"T\",\"body\":\"b\"}");
    refused_as_corrupt(log, "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"x\"}");
    refused_as_corrupt(log, "{\"op\":\"message.send\",\"as\":\"al\",\"project\":\"p1\",\"channel\":\"chat\",\"topic\":\"t1\",\"body\":\"x\"}");
    refused_as_corrupt(log, "{\"op\":\"message.reply\",\"as\":\"al\",\"message\":\"m1\",\"body\":\"x\"}");
    refused_as_corrupt(log, "{\"op\":\"topic.create\",\"as\":\"al\",\"message_id\":\"m9\",\"project\":\"p1\",\"title\":\"T\",\"body\":\"b\"}");
    /* and the log goes on once the state reads again */
    tu_exec_ok(log, "{\"op\":\"note.add\",\"as\":\"al\",\"project\":\"p1\",\"body\":\"x\"}");
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_damaged_state");
    TCase *tc = tcase_create("damaged");
    tcase_set_timeout(tc, 20); /* the failure this guards against is a loop without end */
    tcase_add_test(tc, a_generated_id_on_a_damaged_state_is_refused_at_once);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
