/*
 * test_log_key_leftovers.c — a step that fails in the middle of making or rotating a key
 * leaves no secret key file behind:
 *   - init publishes the writer key into DIR first, then the data file; when putting the
 *     data file there fails, init takes the key out again (else DIR would hold a secret key
 *     for a log that never came, and the next init would refuse DIR as not empty);
 *   - a rotation writes its new key to its own file before appending key.rotated; when that
 *     append fails (and the map is not the cause, so it is not tried again), the rotation
 *     removes its file at once, inside its transaction.
 * No real filesystem or log fails those steps on demand, so this suite is linked with
 * -Wl,--wrap=link and -Wl,--wrap=tl_event_encode (tests/CMakeLists.txt): the wrappers below
 * fail the armed call, and record what the directory held at that moment, so that a test
 * cannot pass without the failure having happened where it means to.
 * (Mutants I07 and A15 of docs/testing/MUTANTS-replay-export-writer-2026-11-27.md.)
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "error.h" /* tl_fail */
#include "log.h"   /* TL_DATA_FILE */
#include "log_fixture.h"

/* ---------------------------------------------------------------- the wrappers */

int __real_link(const char *from, const char *to);
int __wrap_link(const char *from, const char *to);
int __real_tl_event_encode(msgpack_sbuffer *buf, const tl_envelope *env, const tl_payload *payload);
int __wrap_tl_event_encode(msgpack_sbuffer *buf, const tl_envelope *env, const tl_payload *payload);

static const char *fail_link_to;  /* fail link() to a path ending in "/<this>" */
static int fail_link_errno;       /* with this errno */
static unsigned failed_links;     /* how many it failed */

static const char *fail_encode_kind; /* fail encoding the next event of this kind */
static unsigned failed_encodes;
static const char *watch_dir;        /* the directory whose files the failure records */
static char files_at_failure[4096];  /* its file names, space-separated, when it failed */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void record_files(void) {
    files_at_failure[0] = 0;
    DIR *d = watch_dir ? opendir(watch_dir) : NULL;
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t used = strlen(files_at_failure);
        snprintf(files_at_failure + used, sizeof files_at_failure - used, "%s ", e->d_name);
    }
    closedir(d);
}

int __wrap_link(const char *from, const char *to) {
    if (fail_link_to) {
        char suffix[256];
        snprintf(suffix, sizeof suffix, "/%s", fail_link_to);
        if (ends_with(to, suffix)) {
            failed_links++;
            record_files();
            errno = fail_link_errno;
            return -1;
        }
    }
    return __real_link(from, to);
}

int __wrap_tl_event_encode(msgpack_sbuffer *buf, const tl_envelope *env, const tl_payload *payload) {
    if (fail_encode_kind && env->kind && strcmp(env->kind, fail_encode_kind) == 0) {
        fail_encode_kind = NULL;
        failed_encodes++;
        record_files();
        return tl_fail(TL_ENOMEM, "out of memory (armed by the test)");
    }
    return __real_tl_event_encode(buf, env, payload);
}

/* ---------------------------------------------------------------- helpers */

/* The names in dir that are not hidden, space-separated (a static buffer). */
static const char *files_in(const char *dir) {
    static char names[4096];
    names[0] = 0;
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s ", e->d_name);
    }
    closedir(d);
    return names;
}

static bool holds_rotation_file(const char *names) { return strstr(names, TL_KEY_FILE_NEW ".") != NULL; }

/* ---------------------------------------------------------------- init */

/* Publishing data.mdb fails after the key was put in place: init fails with `storage`, and
 * DIR is left as it was found — here made by init, so gone; a second init then succeeds. */
START_TEST(init_whose_data_file_cannot_be_published_leaves_no_key) {
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log");
    watch_dir = dir;
    fail_link_to = TL_DATA_FILE;
    fail_link_errno = EIO;
    failed_links = 0;
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), TL_ESTORAGE);
    fail_link_to = NULL;
    ck_assert_uint_eq(failed_links, 1);
    /* the failure came after the key was published: the step this test is about */
    ck_assert_msg(strstr(files_at_failure, TL_KEY_FILE " ") != NULL, "no key in the directory when data.mdb failed: %s",
                  files_at_failure);
    ck_assert_msg(access(dir, F_OK) != 0, "init left %s behind, holding: %s", dir, files_in(dir));

    /* the same, in a directory that was there (empty) before: it stays, empty */
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    fail_link_to = TL_DATA_FILE;
    failed_links = 0;
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), TL_ESTORAGE);
    fail_link_to = NULL;
    ck_assert_uint_eq(failed_links, 1);
    ck_assert_str_eq(files_in(dir), "");

    /* nothing left that a new init would refuse */
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), 0);
    tl_log *log = open_log(dir, 0);
    verify_ok(log, 1);
    tl_log_close(log);
    watch_dir = NULL;
    tu_rmdir(base);
    free(dir);
    free(base);
}
END_TEST

/* Publishing the key itself fails: nothing is left either. */
START_TEST(init_whose_key_cannot_be_published_leaves_nothing) {
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    fail_link_to = TL_KEY_FILE;
    fail_link_errno = EIO;
    failed_links = 0;
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), TL_ESTORAGE);
    fail_link_to = NULL;
    ck_assert_uint_eq(failed_links, 1);
    ck_assert_str_eq(files_in(dir), "");
    tu_rmdir(base);
    free(dir);
    free(base);
}
END_TEST

/* A filesystem without hard links (link() answers EPERM): init moves the files instead, and
 * the log it makes opens and verifies. */
START_TEST(init_without_hard_links_moves_the_files) {
    char *base = tu_tmpdir();
    char *dir = path_in(base, "log");
    fail_link_to = TL_KEY_FILE;
    fail_link_errno = EPERM;
    failed_links = 0;
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), 0);
    fail_link_to = TL_DATA_FILE;
    ck_assert_uint_eq(failed_links, 1);
    tu_rmdir(dir);
    ck_assert_int_eq(tl_log_init(dir, NULL, NULL), 0);
    fail_link_to = NULL;
    ck_assert_uint_eq(failed_links, 2);
    char *key = path_in(dir, TL_KEY_FILE);
    ck_assert_int_eq(file_mode(key), 0600);
    free(key);
    tl_log *log = open_log(dir, 0);
    verify_ok(log, 1);
    tl_log_close(log);
    tu_rmdir(base);
    free(dir);
    free(base);
}
END_TEST

/* ---------------------------------------------------------------- rotation */

/* key.rotated cannot be appended (its encoding fails; the map is not full, so the rotation
 * is not tried again): the rotation fails, its key file is gone, the log keeps its key and
 * its head, and the next write and a later rotation work. */
START_TEST(a_rotation_whose_append_fails_leaves_no_key_file) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 3, 0, 0);
    uint64_t head = head_seq(log);
    char before[TL_PUBKEY_HEX_SIZE], after[TL_PUBKEY_HEX_SIZE], rotated[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, before), 0);

    watch_dir = dir;
    fail_encode_kind = "key.rotated";
    failed_encodes = 0;
    ck_assert_int_eq(tl_log_rotate_key(log, rotated), TL_ENOMEM);
    ck_assert_uint_eq(failed_encodes, 1);
    /* the rotation had written its key file when its append failed */
    ck_assert_msg(holds_rotation_file(files_at_failure), "no rotation key file when the append failed: %s",
                  files_at_failure);
    const char *now = files_in(dir);
    ck_assert_msg(!holds_rotation_file(now), "the failed rotation left its key file: %s", now);
    watch_dir = NULL;

    ck_assert_uint_eq(head_seq(log), head);
    ck_assert_int_eq(tl_log_pubkey(log, after), 0);
    ck_assert_str_eq(after, before);
    append_n(log, 1, 3, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, rotated), 0);
    ck_assert_str_ne(rotated, before);
    append_n(log, 1, 4, 0);
    verify_ok(log, head + 3);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_key_leftovers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, init_whose_data_file_cannot_be_published_leaves_no_key);
    tcase_add_test(tc, init_whose_key_cannot_be_published_leaves_nothing);
    tcase_add_test(tc, init_without_hard_links_moves_the_files);
    tcase_add_test(tc, a_rotation_whose_append_fails_leaves_no_key_file);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
