/*
 * test_tamper_free_list.c — SPEC §5, LMDB's free-page list, the one part of the file that
 * LMDB trusts and no signature covers: page numbers damaged there (out of order, past the
 * file's end, a meta page, a page listed in two records, a count past the record's room) are
 * reported by verify and refused by a writer, while readers still read; a record with room
 * beyond its count is healthy.
 *
 * The log under attack: tamper_fixture.h. The damage is written into data.mdb at the file
 * offsets where LMDB keeps the records (free_list_records).
 */
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tamper_fixture.h"

/* Up to max free-list records of at least min_count pages: their file offsets (where the
 * count word is, the page numbers after it) and counts. */
static size_t free_list_records(long *offs, size_t *counts, size_t max, size_t min_count) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    ck_assert_int_eq(mdb_env_open(env, g_dir, MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, 0, &cur), 0);
    /* where LMDB mapped the file (mdb_env_info's address is only set for MDB_FIXEDMAP) */
    char path[4200], line[4600];
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    uintptr_t base = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(maps);
    while (!base && fgets(line, sizeof line, maps)) {
        unsigned long lo, fileoff;
        char *name = strchr(line, '/');
        if (name && sscanf(line, "%lx-%*x %*s %lx", &lo, &fileoff) == 2 && fileoff == 0 &&
            strncmp(name, path, strlen(path)) == 0 && name[strlen(path)] == '\n')
            base = lo;
    }
    fclose(maps);
    ck_assert_msg(base != 0, "data.mdb is not in /proc/self/maps");
    MDB_val k, v;
    size_t n = 0;
    while (n < max && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        memcpy(&counts[n], v.mv_data, sizeof counts[n]);
        if (counts[n] >= min_count) offs[n++] = (long)((uintptr_t)v.mv_data - base);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* The file offset of the first free-list record of 3 pages or more (its count in *count). */
static long free_list_offset(size_t *count) {
    long off;
    return free_list_records(&off, count, 1, 3) ? off : -1;
}

static void file_rw(long off, void *buf, size_t n, bool write) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    ck_assert_uint_eq(write ? fwrite(buf, 1, n, f) : fread(buf, 1, n, f), n);
    fclose(f);
}

/* LMDB's free-page list (its database 0) is trusted by LMDB: a page number damaged there
 * makes the next write transaction reuse a page still in use (a review: one flipped bit
 * passed verify, and the next append destroyed twelve events). verify reports it, a writer
 * refuses to open, readers still read; restored, all is well again. */
START_TEST(damaged_free_list) {
    /* more commits, so the free list holds records of several pages */
    tl_log *log;
    tl_open_options wo = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    for (int i = 0; i < 20; i++) append_batch(log, EVENTS + 1 + (uint64_t)i * 50, 50);
    tl_log_close(log);
    uint64_t events = EVENTS + 20 * 50;
    expect_good(NULL, "before");
    size_t count;
    long off = free_list_offset(&count);
    ck_assert_msg(off > 0, "no free-list record of 3 pages or more");
    /* the record: count, then page numbers in descending order */
    size_t ids[3], orig[3];
    file_rw(off + (long)sizeof(size_t), orig, sizeof orig, false);
    const struct { const char *what; size_t delta[3]; } cases[] = {
        {"a page number grown past its predecessor", {0, 0x4000, 0}},
        {"a page number past the file's end", {(size_t)1 << 40, 0, 0}},
        {"a meta page listed", {0, 0, (size_t)-1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int i = 0; i < 3; i++) ids[i] = orig[i] + cases[c].delta[i];
        if (cases[c].delta[2] == (size_t)-1) ids[2] = 1;
        file_rw(off + (long)sizeof(size_t), ids, sizeof ids, true);
        tl_verify_report r;
        int rc = verify(NULL, &r);
        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "free-page list"), "%s: verify said %s (%s)",
                      cases[c].what, tl_strerror(rc), tl_errdetail());
        rc = tl_log_open(&log, g_dir, &wo);
        ck_assert_msg(rc == TL_ECORRUPT, "%s: opened for writing (%s)", cases[c].what, tl_strerror(rc));
        tl_open_options ro = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
        ck_assert_int_eq(tl_log_open(&log, g_dir, &ro), 0);
        tl_log_close(log);
    }
    file_rw(off + (long)sizeof(size_t), orig, sizeof orig, true);
    expect_good(NULL, "restored");
    /* the bounds themselves: the first page past the file's end (the record's first, largest
     * number), page 1 (a meta page) where the order still holds (its last), and a count one
     * larger than the record's room (its next word is not one of its pages) */
    MDB_envinfo info;
    {
        raw r;
        raw_begin(&r);
        ck_assert_int_eq(mdb_env_info(r.env, &info), 0);
        raw_end(&r);
    }
    size_t past_end = info.me_last_pgno + 1, one = 1, more = count + 1, last_id;
    long last_id_off = off + (long)(sizeof(size_t) * count);
    file_rw(last_id_off, &last_id, sizeof last_id, false);
    struct { const char *what; long at; size_t *value; size_t restore; } bounds[] = {
        {"the first page past the file's end", off + (long)sizeof(size_t), &past_end, orig[0]},
        {"page 1 as the record's last", last_id_off, &one, last_id},
        {"a count one past the record's room", off, &more, count},
    };
    for (size_t c = 0; c < sizeof bounds / sizeof bounds[0]; c++) {
        file_rw(bounds[c].at, bounds[c].value, sizeof(size_t), true);
        tl_verify_report r;
        int rc = verify(NULL, &r);
        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "free-page list"), "%s: verify said %s (%s)",
                      bounds[c].what, tl_strerror(rc), tl_errdetail());
        file_rw(bounds[c].at, &bounds[c].restore, sizeof(size_t), true); /* restore is a copy: writable */
    }
    expect_good(NULL, "restored again");
    /* a page listed in two records (each in order on its own): only the check across records
     * sees it. Record B's smallest page is replaced by one of record A's pages that is smaller
     * than B's next one. */
    {
        long offs[16];
        size_t counts[16];
        size_t nrec = free_list_records(offs, counts, 16, 2);
        bool done = false;
        for (size_t a = 0; a < nrec && !done; a++)
            for (size_t b = 0; b < nrec && !done; b++) {
                if (a == b) continue;
                size_t *pa = malloc(counts[a] * sizeof *pa), *pb = malloc(counts[b] * sizeof *pb);
                file_rw(offs[a] + (long)sizeof(size_t), pa, counts[a] * sizeof *pa, false);
                file_rw(offs[b] + (long)sizeof(size_t), pb, counts[b] * sizeof *pb, false);
                size_t nb = counts[b];
                for (size_t i = 0; i < counts[a] && !done; i++)
                    if (pa[i] < pb[nb - 2] && pa[i] != pb[nb - 1]) {
                        long at = offs[b] + (long)(sizeof(size_t) * nb);
                        file_rw(at, &pa[i], sizeof pa[i], true);
                        tl_verify_report r;
                        int rc = verify(NULL, &r);
                        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "listed twice"),
                                      "a page in two records: verify said %s (%s)", tl_strerror(rc), tl_errdetail());
                        file_rw(at, &pb[nb - 1], sizeof pb[nb - 1], true);
                        done = true;
                    }
                free(pa), free(pb);
            }
        ck_assert_msg(done, "no two free-list records to list a page twice in (%zu records)", nrec);
        expect_good(NULL, "restored once more");
    }
    /* a record with room beyond its count is healthy: LMDB reserves free-list records before
     * filling them, and one reserved beyond the need keeps a smaller count (0 included) and
     * unwritten words after it (here: the last page dropped from the count, and a word of
     * garbage where it was) */
    size_t fewer = count - 1, junk = 1, last;
    long last_off = off + (long)(sizeof(size_t) * count);
    file_rw(last_off, &last, sizeof last, false);
    file_rw(off, &fewer, sizeof fewer, true);
    file_rw(last_off, &junk, sizeof junk, true);
    expect_good(NULL, "a record with room beyond its count");
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    tl_log_close(log);
    file_rw(off, &count, sizeof count, true);
    file_rw(last_off, &last, sizeof last, true);
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    append_batch(log, events + 1, 10);
    tl_log_close(log);
    expect_good(NULL, "after another append");
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper_free_list");
    TCase *tc = tcase_create("free_list");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, damaged_free_list);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
