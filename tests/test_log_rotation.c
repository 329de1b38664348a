/*
 * test_log_rotation.c — key rotation: the key.rotated event (signed by the old key, naming the
 * new one), later events signed by the new key, pinned keys, a stale or unfinished rotation
 * file settled by the next rotation, a crashed rotation finished on open; and rotations beside
 * writers: while threads append, by another process (this process's next write and next
 * checkpoint take the new key from its file), in two processes at once.
 *
 * Each test makes its own log in a fresh temporary directory (log_fixture.h).
 */
#include <dirent.h>
#include <msgpack.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "log.h" /* tl_keyfile_* */
#include "log_fixture.h"

/* ================================================================ a rotation */

START_TEST(rotate_then_verify) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 5, 0, 0);
    char *keypath = path_in(dir, "writer.key"), *newpath = path_in(dir, "writer.key.new");
    size_t oldlen;
    char *oldkey = tu_read_file(keypath, &oldlen);
    char k1[TL_PUBKEY_HEX_SIZE], k2[TL_PUBKEY_HEX_SIZE], cur[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_pubkey(log, k1), 0);
    /* a rotation file for a key the head does not name: a rotation that never committed, which
     * the next rotation removes inside its transaction (FORMAT.md §1) */
    tl_keypair stale;
    tl_keypair_generate(&stale);
    char *stalepath = tl_keyfile_rotation_path(dir, stale.pk);
    ck_assert_int_eq(tl_keyfile_write(stalepath, &stale), 0);
    ck_assert_int_eq(tl_log_rotate_key(log, k2), 0);
    ck_assert_str_ne(k1, k2);
    ck_assert_msg(access(stalepath, F_OK) != 0, "a stale rotation file was left: %s", stalepath);
    free(stalepath);
    tl_keypair_wipe(&stale);
    ck_assert_int_eq(tl_log_pubkey(log, cur), 0);
    ck_assert_str_eq(cur, k2);
    /* the key file now holds the new key, still 0600; no .new file is left */
    tl_keypair kp;
    ck_assert_int_eq(tl_keyfile_read(keypath, &kp), 0);
    char hex[TL_PUBKEY_HEX_SIZE];
    tl_hex(hex, kp.pk, 32);
    ck_assert_str_eq(hex, k2);
    ck_assert_int_eq(file_mode(keypath), 0600);
    ck_assert_int_ne(access(newpath, F_OK), 0);
    /* key.rotated at 7 names the new key and is signed by the old one */
    uint8_t pk1[32], pk2[32];
    ck_assert_int_eq(tl_unhex(pk1, 32, k1), 0);
    ck_assert_int_eq(tl_unhex(pk2, 32, k2), 0);
    tl_iter *it;
    tl_event_view ev = event_at(log, 7, &it);
    ck_assert_str_eq(ev.kind, "key.rotated");
    ck_assert_str_eq(ev.actor, "@operator");
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, ev.bytes, ev.len), 0);
    tl_bytes b;
    ck_assert_int_eq(tl_ev_bin(&e, "public_key", &b), 0);
    ck_assert_mem_eq(b.ptr, pk2, 32);
    ck_assert_int_eq(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk1), 0);
    ck_assert_int_ne(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk2), 0);
    tl_iter_close(it);
    /* later events are signed by the new key */
    append_n(log, 5, 5, 0);
    ev = event_at(log, 10, &it);
    ck_assert_int_eq(crypto_sign_verify_detached(ev.signature, ev.bytes, ev.len, pk2), 0);
    tl_iter_close(it);
    verify_ok(log, 12);

    /* pinned keys: the genesis key, the new key; a key the log never had fails */
    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    tl_verify_report r;
    o.pinned_key = pk1;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    o.pinned_key = pk2;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), 0);
    uint8_t stranger[32];
    memset(stranger, 0x42, sizeof stranger);
    o.pinned_key = stranger;
    ck_assert_int_eq(tl_log_verify(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.first_bad_seq, 1);

    /* a second rotation, the first one left as if caught between its commit and its rename
     * (the new key in its rotation file, the old one in writer.key): the rotation puts the
     * head's key in place first (FORMAT.md §1), so no rotation file is left; the log reopens
     * with the current key file */
    char rot2[4300], k3[TL_PUBKEY_HEX_SIZE];
    snprintf(rot2, sizeof rot2, "%s/writer.key.new.%s", dir, k2);
    ck_assert_int_eq(rename(keypath, rot2), 0);
    ck_assert_int_eq(tu_write_file(keypath, oldkey, oldlen), 0);
    ck_assert_int_eq(chmod(keypath, 0600), 0);
    ck_assert_int_eq(tl_log_rotate_key(log, k3), 0);
    ck_assert_msg(access(rot2, F_OK) != 0, "the first rotation's file was left: %s", rot2);
    append_n(log, 2, 10, 0);
    verify_ok(log, 15);
    size_t newlen;
    char *key3 = tu_read_file(keypath, &newlen);
    tl_log_close(log);
    log = open_log(dir, 0);
    append_n(log, 1, 12, 0);
    verify_ok(log, 16);
    tl_log_close(log);

    /* the old key file no longer opens the log for writing */
    ck_assert_int_eq(tu_write_file(keypath, oldkey, oldlen), 0);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), TL_EKEY);
    /* a rotation that crashed before the rename: old key in writer.key, the new one in
     * writer.key.new -> open finishes it */
    copy_file(keypath, newpath, 0600);
    ck_assert_int_eq(tu_write_file(newpath, key3, newlen), 0);
    log = open_log(dir, 0);
    ck_assert_int_ne(access(newpath, F_OK), 0);
    size_t l;
    char *now = tu_read_file(keypath, &l);
    ck_assert_uint_eq(l, newlen);
    ck_assert_mem_eq(now, key3, l);
    append_n(log, 1, 13, 0);
    verify_ok(log, 17);
    free(now), free(key3), free(oldkey), free(keypath), free(newpath);
    tl_keypair_wipe(&kp);
    remove_log(log, dir);
}
END_TEST

/* ================================================================ rotations beside writers */

/* Threads appending while another rotates the key: the new key is the log's before the next
 * writer begins, so no append is refused as "rotated by another process", and every
 * checkpoint taken meanwhile is signed by a key of the chain. */
typedef struct rot_appender {
    tl_log *log;
    volatile int *stop;
    int failures, appended;
    char why[200];
} rot_appender;

static void *rot_append(void *arg) {
    rot_appender *a = arg;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    x_payload(&buf, 1, "hello", 0);
    tl_draft d = {"x.test", "alice", NULL, (const uint8_t *)buf.data, buf.size};
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        int rc = tl_log_append(a->log, &d, 1, NULL);
        if (!rc) a->appended++;
        else if (!a->failures++) snprintf(a->why, sizeof a->why, "%s: %s", tl_strerror(rc), tl_errdetail());
    }
    msgpack_sbuffer_destroy(&buf);
    return NULL;
}

START_TEST(rotation_while_appending) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    volatile int stop = 0;
    rot_appender a[3] = {{log, &stop, 0, 0, ""}, {log, &stop, 0, 0, ""}, {log, &stop, 0, 0, ""}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, rot_append, &a[i]);
    for (int r = 0; r < 40; r++) {
        ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
        char *cp = NULL;
        ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
        tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
        vo.checkpoint_json = cp;
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(log, &vo, &vr) == 0, "checkpoint %d: %s", r, vr.reason);
        tl_free(cp);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE); /* the threads read it with atomic loads */
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) ck_assert_msg(a[i].failures == 0, "appender %d: %d refused (%s)", i, a[i].failures, a[i].why);
    verify_ok(log, 1 + (uint64_t)(a[0].appended + a[1].appended + a[2].appended) + 40);
    remove_log(log, dir);
}
END_TEST

/* Another process rotates the key while this one holds the log open: this process's next
 * write takes the new key from the key file (or from the new key's file, when the rotation is
 * committed but its file not yet renamed) instead of refusing every write until reopened. */
START_TEST(rotation_by_another_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    char key[4096], key_new[4096], old_copy[4096];
    snprintf(key, sizeof key, "%s/writer.key", dir);
    snprintf(key_new, sizeof key_new, "%s/writer.key.new", dir);
    snprintf(old_copy, sizeof old_copy, "%s.old-key", dir);
    for (int round = 0; round < 3; round++) {
        copy_file(key, old_copy, 0600);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tl_log *other;
            if (tl_log_open(&other, dir, NULL) || tl_log_rotate_key(other, NULL)) _exit(3);
            tl_log_close(other);
            _exit(0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (round >= 1) { /* as if caught between the rotation's commit and its rename: the new
                           * key in its rotation file (round 1), or in the older versions'
                           * writer.key.new (round 2) */
            char hex[TL_PUBKEY_HEX_SIZE], rot[4200];
            ck_assert_int_eq(tl_log_pubkey(log, hex), 0);
            snprintf(rot, sizeof rot, "%s/writer.key.new.%s", dir, hex);
            ck_assert_int_eq(rename(key, round == 1 ? rot : key_new), 0);
            copy_file(old_copy, key, 0600);
        }
        uint64_t before = head_seq(log);
        append_n(log, 2, 10 + (uint64_t)round * 2, 0); /* asserts success */
        ck_assert_uint_eq(head_seq(log), before + 2);
        char *cp = NULL;
        ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
        tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
        vo.checkpoint_json = cp;
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(log, &vo, &vr) == 0, "round %d: %s", round, vr.reason);
        tl_free(cp);
        unlink(old_copy);
    }
    /* left as the other process's rotation left it between commit and rename: a rotation
     * here puts that key in place first (inside its write transaction), then rotates; a
     * fresh open finds the key file current */
    ck_assert_int_eq(access(key_new, F_OK), 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
    ck_assert_int_ne(access(key_new, F_OK), 0);
    uint64_t n = head_seq(log);
    tl_log_close(log);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    append_n(log, 1, 20, 0);
    verify_ok(log, n + 1);
    remove_log(log, dir);
}
END_TEST

/* A checkpoint signs the head with the key the head names: after another process rotated the
 * key, this process's handle takes the new key from its file, as a write would (it answered
 * TL_EKEY "not current" until this process wrote). */
START_TEST(checkpoint_after_another_process_rotated) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_free(cp);
    ck_assert_int_eq(tu_run(NULL, "%s -d %s key rotate > /dev/null", TL_CLI, dir), 0);
    ck_assert_msg(tl_log_checkpoint(log, &cp) == 0, "checkpoint: %s", tl_errdetail());
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.checkpoint_json = cp;
    tl_verify_report r;
    ck_assert_msg(tl_log_verify(log, &vo, &r) == 0, "verify: %s", r.reason);
    tl_free(cp);
    /* it takes no writer lock: a thread with an open batch may take one (Check's timeout
     * would end a deadlock) */
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_free(cp);
    tl_batch_abort(b);
    remove_log(log, dir);
}
END_TEST

/* Two processes rotating the key and appending at once (each rotation writes its key file
 * inside its write transaction and renames only its own file afterwards, keyfiles.c): no
 * rotation or append fails, no interleaving loses the key the head names, and the next
 * rotation settles every leftover rotation file. */
START_TEST(rotations_in_two_processes) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    append_n(log, 1, 0, 0);
    uint64_t start = head_seq(log);
    tl_log_close(log);
    enum { ROUNDS = 25 };
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) {
            tl_log *mine;
            if (tl_log_open(&mine, dir, NULL)) _exit(2);
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            x_payload(&buf, 1, "hello", 0);
            tl_draft d = {"x.test", c ? "bob" : "alice", NULL, (const uint8_t *)buf.data, buf.size};
            for (int r = 0; r < ROUNDS; r++) {
                if (tl_log_rotate_key(mine, NULL)) _exit(3);
                if (tl_log_append(mine, &d, 1, NULL)) _exit(4);
            }
            msgpack_sbuffer_destroy(&buf);
            tl_log_close(mine);
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status;
        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: status %d", c, status);
    }
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0); /* finds the head's key */
    ck_assert_uint_eq(head_seq(log), start + 2 * 2 * ROUNDS);
    append_n(log, 1, 1, 0);
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0); /* settles the key files */
    DIR *dd = opendir(dir);
    ck_assert_ptr_nonnull(dd);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        ck_assert_msg(strncmp(e->d_name, "writer.key.new", 14) != 0, "left behind: %s", e->d_name);
    closedir(dd);
    uint64_t n = head_seq(log);
    tl_log_close(log);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    append_n(log, 1, 2, 0);
    verify_ok(log, n + 1);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_rotation");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, rotate_then_verify);
    suite_add_tcase(s, tc);

    tc = tcase_create("rotation");
    tcase_add_test(tc, rotation_while_appending);
    tcase_add_test(tc, rotation_by_another_process);
    tcase_add_test(tc, rotations_in_two_processes);
    tcase_add_test(tc, checkpoint_after_another_process_rotated);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
