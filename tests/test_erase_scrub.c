/*
 * test_erase_scrub.c — erased content leaves the data file (SPEC §2 "Erasable content";
 * engine/scrub.c): right after an erasure no byte of the body or of an attachment is in
 * data.mdb, not even in the pages LMDB freed; a page a reader's snapshot still holds is left
 * as it is until that reader is done, and erasing again then clears it; the log still
 * verifies and its projections still equal a replay.
 *
 * Each test makes its own log in a fresh temporary directory.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"

#define BODY "SCRUB-ME-body-7f3a91c2-the-erased-words"

/* A project with one chat topic whose first message is BODY, and an uploaded file whose
 * bytes are a run of 'Q' long enough to take overflow pages. */
static tl_log *world(char **dir) {
    tl_log *log = tu_new_log(dir);
    tu_exec_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    tu_exec_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"p1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"T\"}");
    tu_exec_ok(log, "{\"op\":\"topic.create\",\"as\":\"alice\",\"project\":\"p1\",\"id\":\"t1\",\"message_id\":\"m1\","
             "\"title\":\"Hello\",\"body\":\"" BODY "\"}");
    return log;
}

static void check_still_whole(tl_log *log) {
    tl_verify_report r;
    ck_assert_int_eq(tl_log_verify(log, NULL, &r), 0);
    ck_assert_uint_eq(r.first_bad_seq, 0);
}

START_TEST(an_erased_body_leaves_the_data_file_at_once) {
    char *dir;
    tl_log *log = world(&dir);
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    check_still_whole(log);
    /* and the log goes on: later commits reuse the cleared pages */
    for (int i = 0; i < 20; i++)
        tu_exec_ok(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"project\":\"p1\",\"channel\":\"chat\",\"topic\":\"t1\","
                 "\"body\":\"later words\"}");
    check_still_whole(log);
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(erased_attachment_bytes_leave_the_data_file) {
    char *dir;
    tl_log *log = world(&dir);
    /* 600 bytes of 'Q' (base64 "UVFR" x 200): more than fits beside other entries of a page */
    char json[2048];
    int at = snprintf(json, sizeof json, "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"project\":\"p1\",\"id\":\"a1\","
                                         "\"name\":\"q.bin\",\"data\":\"");
    for (int i = 0; i < 200; i++) at += snprintf(json + at, sizeof json - (size_t)at, "UVFR");
    snprintf(json + at, sizeof json - (size_t)at, "\"}");
    tu_exec_ok(log, json);
    char q[600];
    memset(q, 'Q', sizeof q);
    ck_assert_int_gt(tu_data_file_count(dir, q, sizeof q), 0);
    tl_result res;
    ck_assert_int_eq(tl_erase_kind(log, "attachment", "a1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert_int_eq(tu_data_file_count(dir, q, 64), 0);
    check_still_whole(log);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(a_page_a_reader_holds_is_cleared_by_erasing_again) {
    char *dir;
    tl_log *log = world(&dir);
    /* a reader's snapshot from before the erasure still reaches the body's pages (an
     * iterator holds one: LMDB's reader table has it, as another process's would be) */
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(it, &ev), 0); /* the snapshot is taken */
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert_int_gt(tu_data_file_count(dir, BODY, strlen(BODY)), 0); /* left for the reader */
    /* and said: the operator must know that a second erase is owed */
    ck_assert_msg(strstr(res.message, "erase again") != NULL, "no note of the held pages: \"%s\"", res.message);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);                /* which still reads */
    tl_iter_close(it);
    ck_assert_int_eq(tl_erase(log, "m1", "a person's request", &res), 0); /* a no-op that scrubs */
    ck_assert_int_eq(res.code, 0);
    ck_assert(res.noop);
    ck_assert_str_eq(res.message, ""); /* nothing held any more */
    ck_assert_int_eq(tu_data_file_count(dir, BODY, strlen(BODY)), 0);
    check_still_whole(log);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* A writer whose spare page buffers hold content another process erased, and which holds a
 * snapshot (taken after the erasure: it keeps nothing erased) while it goes on writing: its
 * environment cannot be reopened to drop those buffers, so each such write clears the pages'
 * free space after its commit. Before, all the erased bodies came back (a review's test). */
START_TEST(a_writer_that_cannot_drop_its_buffers_clears_after_itself) {
    char *dir;
    tl_log *log = world(&dir);
    char json[512], body[64];
    for (int i = 0; i < 20; i++) {
        snprintf(json, sizeof json, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s%d\",\"project\":\"p1\","
                 "\"channel\":\"chat\",\"topic\":\"t1\",\"body\":\"SCRUB-WRITER-%02d words\"}", i, i);
        tu_exec_ok(log, json);
    }
    ck_assert_int_gt(tu_data_file_count(dir, "SCRUB-WRITER-", 13), 0);
    /* another process erases them (this one keeps the log open, its buffers as they are) */
    for (int i = 0; i < 20; i++) {
        char *out = NULL;
        int rc = tu_run(&out, "%s -d '%s' erase s%d --reason r", TL_CLI, dir, i);
        ck_assert_msg(rc == 0, "erase s%d: %s", i, out ? out : "");
        free(out);
    }
    ck_assert_int_eq(tu_data_file_count(dir, "SCRUB-WRITER-", 13), 0);
    tl_iter *it; /* a snapshot after the erasures, held on the writing thread */
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "filler %d", i);
        snprintf(json, sizeof json, "{\"op\":\"message.send\",\"as\":\"alice\",\"project\":\"p1\",\"channel\":\"chat\","
                 "\"topic\":\"t1\",\"body\":\"%s\"}", body);
        tu_exec_ok(log, json);
        ck_assert_msg(tu_data_file_count(dir, "SCRUB-WRITER-", 13) == 0, "erased bodies back in data.mdb after write %d", i);
    }
    tl_iter_close(it);
    check_still_whole(log);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* An attachment is stored after its 32-byte salt, in a run of overflow pages whose first page
 * has a 16-byte header: the attachment's byte k * 4096 - 48 starts the run's page k. Bytes
 * there that look like a leaf page's header naming page 2k (page k of a run that starts at
 * page k: some k matches whatever page the run starts at) must not be taken for one while a
 * reader's snapshot still reads the run: its "free space" is the attachment's bytes. */
START_TEST(a_held_attachment_imitating_a_leaf_page_is_left_whole) {
    char *dir;
    tl_log *log = world(&dir);
    const size_t psize = 4096, pages = 160, len = pages * psize;
    uint8_t *raw = malloc(len);
    ck_assert_ptr_nonnull(raw);
    memset(raw, 'Z', len);
    for (size_t k = 1; k < pages - 1; k++) {
        uint8_t *h = raw + k * psize - 16 - 32;
        uint64_t pgno = 2 * k;
        uint16_t zero = 0, flags = 0x02 /* P_LEAF */, lower = 32, upper = 256;
        memcpy(h, &pgno, 8);
        memcpy(h + 8, &zero, 2);
        memcpy(h + 10, &flags, 2);
        memcpy(h + 12, &lower, 2);
        memcpy(h + 14, &upper, 2);
    }
    size_t b64len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *json = malloc(b64len + 256);
    ck_assert_ptr_nonnull(json);
    int at = sprintf(json, "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"project\":\"p1\",\"id\":\"a1\","
                           "\"name\":\"q.bin\",\"data\":\"");
    sodium_bin2base64(json + at, b64len, raw, len, sodium_base64_VARIANT_ORIGINAL);
    strcat(json, "\"}");
    tu_exec_ok(log, json);
    free(json);
    ck_assert_int_eq(tu_data_file_count(dir, raw, len), 1);
    tl_iter *it; /* a snapshot from before the erasure: the run is still its attachment */
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    tl_result res;
    ck_assert_int_eq(tl_erase_kind(log, "attachment", "a1", "a person's request", &res), 0);
    ck_assert_int_eq(res.code, 0);
    ck_assert_int_eq(tu_data_file_count(dir, raw, len), 1); /* untouched while the reader may read it */
    tl_iter_close(it);
    ck_assert_int_eq(tl_erase_kind(log, "attachment", "a1", "a person's request", &res), 0);
    ck_assert_int_eq(tu_data_file_count(dir, raw + psize, 64), 0); /* then gone */
    check_still_whole(log);
    free(raw);
    tl_log_close(log);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

/* A stale copy of a leaf in a free page names an overflow run that now holds a longer live
 * value (LMDB freed and reused the run; the stale leaf still gives the old, shorter length):
 * the clearing must not take that length for the live value's. It did: it zeroed the live
 * value's end (an audit: a free-list record of LMDB, rewritten longer in one transaction, lost
 * its last ids; `verify` then failed and every writer refused). Built page by page, as LMDB
 * lays them out: page 2 a live leaf naming run 4 (300 bytes), page 3 a free stale leaf naming
 * the same run with 100 bytes, page 4 the run. */
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void leaf_naming_run(uint8_t *page, uint64_t pgno, uint64_t run, uint32_t size) {
    memcpy(page, &pgno, 8);
    put16(page + 10, 0x02);            /* P_LEAF */
    put16(page + 12, 16 + 2);          /* lower: one node pointer */
    uint16_t at = 4096 - 32;
    put16(page + 14, at);              /* upper */
    put16(page + 16, at);              /* the node's offset */
    put16(page + at, (uint16_t)(size & 0xffff));
    put16(page + at + 2, (uint16_t)(size >> 16));
    put16(page + at + 4, 0x01);        /* F_BIGDATA */
    put16(page + at + 6, 3);           /* key size */
    memcpy(page + at + 8, "key", 3);
    memcpy(page + at + 11, &run, 8);   /* the run's first page */
}

START_TEST(a_stale_leaf_in_a_free_page_never_cuts_a_live_value) {
    const size_t psize = 4096, pages = 5;
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/pages", dir);
    uint8_t *file = calloc(pages, psize);
    ck_assert_ptr_nonnull(file);
    leaf_naming_run(file + 2 * psize, 2, 4, 300);
    leaf_naming_run(file + 3 * psize, 3, 4, 100);
    uint8_t *ov = file + 4 * psize;
    uint64_t four = 4;
    uint32_t one = 1;
    memcpy(ov, &four, 8);
    put16(ov + 10, 0x04); /* P_OVERFLOW */
    memcpy(ov + 12, &one, 4);
    memset(ov + 16, 'V', 300); /* the live value */
    memset(ov + 16 + 300, 'X', 64); /* leftover bytes past its end: cleared */
    ck_assert_int_eq(tu_write_file(path, file, pages * psize), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t *map = mmap(NULL, pages * psize, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    const size_t free_pages[] = {3};
    uint64_t cleared = 0;
    ck_assert_int_eq(tl_scrub_clear_pages(fd, map, psize, pages - 1, free_pages, 1, &cleared), 0);
    for (size_t i = 0; i < 300; i++) ck_assert_msg(map[4 * psize + 16 + i] == 'V', "the live value's byte %zu was cleared", i);
    for (size_t i = 300; i < 364; i++) ck_assert_msg(map[4 * psize + 16 + i] == 0, "a leftover byte %zu stayed", i);
    munmap(map, pages * psize);
    close(fd);
    free(file);
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("erase_scrub");
    TCase *tc = tcase_create("scrub");
    tcase_add_test(tc, an_erased_body_leaves_the_data_file_at_once);
    tcase_add_test(tc, erased_attachment_bytes_leave_the_data_file);
    tcase_add_test(tc, a_page_a_reader_holds_is_cleared_by_erasing_again);
    tcase_add_test(tc, a_writer_that_cannot_drop_its_buffers_clears_after_itself);
    tcase_add_test(tc, a_held_attachment_imitating_a_leaf_page_is_left_whole);
    tcase_add_test(tc, a_stale_leaf_in_a_free_page_never_cuts_a_live_value);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
