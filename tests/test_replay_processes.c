/*
 * test_replay_processes.c — replay and following beside other processes: copies taken and
 * in-place replays made while another process appends (each copy is the state as of its
 * snapshot, the live state maintained by two processes equals a fresh replay), and a
 * `log --follow` process seeing the events this process and a third one append after it
 * started.
 *
 * The command stream and the observation of a state: replay_fixture.h.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "replay_fixture.h"

/* ================================================================ concurrency */

/* At least `rounds` batches of 40 commands, then on until the file `stop` exists (at most
 * 2,000 batches): the parent decides when the appends have interleaved with its replays, so
 * a slow parent (valgrind) does not find the child already done. */
static void append_in_child(const char *dir, uint64_t seed, unsigned rounds, const char *stop) {
    tl_log *log;
    if (tl_log_open(&log, dir, NULL) != 0) _exit(3);
    gen g = {.s = seed};
    /* fresh ids: the parent's stream used p0.., so the child's projects come after */
    g.projects = 1000;
    g.topics = 1000;
    g.messages = 100000;
    g.uploads = 1000;
    for (unsigned i = 0; i < 2000 && (i < rounds || access(stop, F_OK) != 0); i++) {
        static char lines[40][512];
        for (int k = 0; k < 40; k++) next_line(&g, lines[k], sizeof lines[k]);
        tl_batch *b;
        if (tl_batch_begin(log, &b) != 0) _exit(4);
        tl_cmd *cmds[40] = {0};
        tl_result res[40];
        for (int k = 0; k < 40; k++)
            if (tl_cmd_parse(&cmds[k], lines[k], strlen(lines[k]), &res[k]) == 0) tl_batch_exec(b, cmds[k], &res[k]);
        if (tl_batch_commit(b) != 0) _exit(5);
        for (int k = 0; k < 40; k++) tl_cmd_free(cmds[k]);
        usleep(1000);
    }
    tl_log_close(log);
    _exit(0);
}

START_TEST(replay_while_another_process_appends) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 3};
    run_setup(log);
    run_stream(log, &g, 2000);
    tl_log_close(log); /* no LMDB environment may cross a fork */
    char *stop = sibling(dir, "stop");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) append_in_child(dir, test_seed() + 4, 150, stop);
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);

    enum { COPIES = 3 };
    char *copies[COPIES];
    uint64_t at[COPIES];
    char digests[COPIES][TL_PUBKEY_HEX_SIZE];
    for (int i = 0; i < COPIES; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        copies[i] = sibling(dir, name);
        tl_replay_report r;
        replay_into(log, copies[i], 0, 0, i == 1, &r);
        at[i] = r.events;
        memcpy(digests[i], r.digest, sizeof digests[i]);
        /* and in place, between the other process's commits (it waits for ours) */
        ck_assert_msg(tl_replay(log, NULL, &r) == 0, "in place: %s", tl_errdetail());
        usleep(30000);
    }
    /* the appends go on past the last copy (up to a minute: the child's batches are slow
     * under valgrind), then the child is told to stop */
    for (int waited = 0; head_of(log) <= at[COPIES - 1] && waited < 6000; waited++) usleep(10000);
    FILE *f = fopen(stop, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "appending child failed: %d", status);
    ck_assert_uint_gt(head_of(log), at[COPIES - 1]); /* the appends did interleave with the copies */

    /* each copy taken mid-stream is the state as of its snapshot: replaying the finished
     * log up to the same event gives the same digest */
    for (int i = 0; i < COPIES; i++) {
        char *check = sibling(copies[i], "check");
        tl_replay_report r;
        replay_into(log, check, at[i], 0, 0, &r);
        ck_assert_msg(strcmp(r.digest, digests[i]) == 0, "copy %d (as of %llu) differs", i, (unsigned long long)at[i]);
        tl_log *c = open_ro(copies[i]);
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy %d verify: %s", i, vr.reason);
        tl_log_close(c);
        free(check);
        free(copies[i]);
    }
    /* and the live state, maintained by two processes and replayed in place in between,
     * equals a fresh replay */
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(log, NULL, &r), 0);
    ck_assert_str_eq(r.digest, live);
    free(stop);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ following */

/* `threadlog log --follow --json` in its own process sees events that this process (and a
 * third one, `threadlog apply`) append after it started. */
START_TEST(follow_cli_sees_other_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    uint64_t start = head_of(log);
    tl_log_close(log);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed (killed) test leaves no follower behind */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(TL_CLI, TL_CLI, "-d", dir, "log", "--follow", "--json", "--from", "1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    usleep(200000); /* the follower has caught up and is waiting */
    char lines[2][512];
    snprintf(lines[0], 512, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"Live\"}");
    snprintf(lines[1], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n1\",\"project\":\"p0\",\"body\":\"pushed\"}");
    run_batch(log, lines, 2);
    char *file = sibling(dir, "cmds");
    const char *more = "{\"op\":\"project.status\",\"as\":\"al\",\"project\":\"p0\",\"status\":\"done\"}\n";
    ck_assert_int_eq(tu_write_file(file, more, strlen(more)), 0);
    ck_assert_int_eq(tu_run(NULL, "%s -d %s apply %s >/dev/null", TL_CLI, dir, file), 0);
    uint64_t want = head_of(log);
    ck_assert_uint_eq(want, start + 3);
    alarm(20); /* a follower that never sees them fails the test instead of hanging it */
    char buf[8192];
    uint64_t seen = 0, last = 0;
    bool saw_status = false;
    while (last < want && fgets(buf, sizeof buf, in)) {
        unsigned long long s;
        if (sscanf(buf, "{\"seq\":%llu", &s) != 1) continue;
        ck_assert_uint_eq(s, last + 1); /* in order, none skipped, none twice */
        last = s;
        seen++;
        if (strstr(buf, "\"kind\":\"project.status_changed\"")) saw_status = true;
    }
    alarm(0);
    ck_assert_uint_eq(last, want);
    ck_assert(saw_status);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the follower ended badly: %d", status);
    fclose(in);
    free(file);
    remove_all(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("replay_processes");
    TCase *tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_while_another_process_appends);
    tcase_add_test(tc, follow_cli_sees_other_process);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
