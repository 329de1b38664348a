/*
 * test_replica.c — a replica follows its source across key rotations: records are taken
 * as stored bytes, one call at a time, with no writer key on the replica's side; records out
 * of order or forged, commands and appends are refused there and leave it as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void append_x(tl_log *log, int n) {
    static const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01}; /* {"n":1} */
    for (int i = 0; i < n; i++) {
        tl_draft d = {"x.tick", "@operator", NULL, payload, sizeof payload};
        ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    }
}

/* Copy records [from, to] of src into the replica at dir, in one call; reopen each time. */
static int ship(tl_log *src, const char *dir, uint64_t from, uint64_t to) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_REPLICA;
    tl_log *rep;
    int rc = tl_log_open(&rep, dir, &o);
    ck_assert_msg(rc == 0, "open replica: %s", tl_errdetail());
    size_t n = (size_t)(to - from + 1);
    uint8_t **recs = calloc(n, sizeof *recs);
    size_t *lens = calloc(n, sizeof *lens);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(tl_log_record(src, from + i, &recs[i], &lens[i]), 0);
    rc = tl_log_append_records(rep, (const uint8_t *const *)recs, lens, n);
    for (size_t i = 0; i < n; i++) tl_free(recs[i]);
    free(recs);
    free(lens);
    tl_log_close(rep);
    return rc;
}

/* The replica starts as a copy of the source (closed for the copy, reopened into *src)
 * without its writer key, in rdir/r (its path into rep). */
static void make_replica(tl_log **src, const char *dir, const char *rdir, char *rep, size_t cap) {
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s/r' && rm '%s/r/writer.key'", dir, rdir, rdir);
    tl_log_close(*src);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(tl_log_open(src, dir, NULL), 0);
    snprintf(rep, cap, "%s/r", rdir);
}

/* Remove the replica's directory and the source log's (both made by the test). */
static void remove_dirs(char *rdir, char *dir) {
    tu_rmdir(rdir);
    free(rdir);
    char *base = strdup(dir);
    *strrchr(base, '/') = 0;
    tu_rmdir(base);
    free(base);
    free(dir);
}

START_TEST(replica_across_rotations) {
    char *dir;
    tl_log *src = tu_new_log(&dir);
    append_x(src, 3); /* seqs 2..4 */
    char *rdir = tu_tmpdir();
    char rep[4200];
    make_replica(&src, dir, rdir, rep, sizeof rep);

    append_x(src, 2);                              /* 5, 6 */
    ck_assert_int_eq(tl_log_rotate_key(src, NULL), 0); /* 7: key.rotated */
    append_x(src, 2);                              /* 8, 9 */
    ck_assert_int_eq(ship(src, rep, 5, 7), 0);     /* up to and including the rotation */
    ck_assert_int_eq(ship(src, rep, 8, 9), 0);     /* next call: signed by the new key */
    ck_assert_int_eq(tl_log_rotate_key(src, NULL), 0); /* 10 */
    append_x(src, 1);                              /* 11 */
    ck_assert_int_eq(ship(src, rep, 10, 11), 0);

    /* a record out of order or forged is still refused, and leaves the replica as it was */
    ck_assert_int_ne(ship(src, rep, 11, 11), 0); /* again */
    append_x(src, 2);                            /* 12, 13 */
    ck_assert_int_ne(ship(src, rep, 13, 13), 0); /* 12 skipped */
    {
        tl_open_options ro = TL_OPEN_OPTIONS_INIT;
        ro.flags = TL_OPEN_REPLICA;
        tl_log *rp;
        ck_assert_int_eq(tl_log_open(&rp, rep, &ro), 0);
        uint8_t *rec;
        size_t len;
        ck_assert_int_eq(tl_log_record(src, 12, &rec, &len), 0);
        rec[len - 1] ^= 1; /* the signature's last byte */
        const uint8_t *const one[] = {rec};
        ck_assert_int_ne(tl_log_append_records(rp, one, &len, 1), 0);
        rec[len - 1] ^= 1;
        rec[len - 70] ^= 1; /* a byte of the event: its signature no longer holds */
        ck_assert_int_ne(tl_log_append_records(rp, one, &len, 1), 0);
        tl_free(rec);
        tl_log_stats st;
        ck_assert_int_eq(tl_log_stats_get(rp, &st), 0);
        ck_assert_uint_eq(st.events, 11);
        tl_log_close(rp);
    }

    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *r;
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(r, NULL, &vr) == 0, "replica verify: %s", vr.reason);
    ck_assert_uint_eq(vr.events, 11);
    /* a replica never signs: commands are refused without touching the log */
    tl_log_close(r);
    o.flags = TL_OPEN_REPLICA;
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    ck_assert_int_eq(tl_log_rotate_key(r, NULL), TL_EKEY);
    tl_cmd *c = NULL;
    tl_result res;
    const char *line = "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}";
    ck_assert_int_eq(tl_cmd_parse(&c, line, strlen(line), &res), 0);
    ck_assert_int_ne(tl_cmd_exec(r, c, &res), 0);
    tl_cmd_free(c);
    static const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01};
    tl_draft d = {"x.tick", "@operator", NULL, payload, sizeof payload};
    ck_assert_int_ne(tl_log_append(r, &d, 1, NULL), 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(r, &st), 0);
    ck_assert_uint_eq(st.events, 11);
    tl_log_close(r);
    tl_log_close(src);
    remove_dirs(rdir, dir);
}
END_TEST

/* Records come without their content (bodies, uploads stay with the source): the replica
 * still verifies, since it recorded where it started taking records (meta replica_since). */
START_TEST(replica_without_content) {
    char *dir;
    tl_log *src = tu_new_log(&dir);
    char *rdir = tu_tmpdir();
    char rep[4200];
    make_replica(&src, dir, rdir, rep, sizeof rep);
    tu_exec_ok(src, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(src, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    tu_exec_ok(src, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    tu_exec_ok(src, "{\"op\":\"attachment.upload\",\"as\":\"al\",\"id\":\"f\",\"project\":\"p\",\"name\":\"f\",\"data\":\"YQ==\"}");
    tu_exec_ok(src, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n\",\"project\":\"p\",\"body\":\"a body\",\"attachments\":[\"f\"]}");
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    ck_assert_int_eq(ship(src, rep, 2, st.events), 0);
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *r;
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(r, NULL, &vr) == 0, "replica verify: %s", vr.reason);
    ck_assert_uint_eq(vr.events, st.events);
    ck_assert_uint_eq(vr.contents, 0); /* none came with the records */
    ck_assert_uint_eq(vr.replica_since, 2); /* and verify says from where */
    tl_log_close(r);
    /* an erasure of content the replica never had is taken: nothing to delete is no failure */
    tl_result er;
    ck_assert_int_eq(tl_erase(src, "n", "request", &er), 0);
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    ck_assert_msg(ship(src, rep, st.events, st.events) == 0, "the erasure: %s", tl_errdetail());
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    ck_assert_msg(tl_log_verify(r, NULL, &vr) == 0, "replica verify after the erasure: %s", vr.reason);
    ck_assert_uint_eq(vr.events, st.events);
    tl_log_close(r);
    tl_log_close(src);
    remove_dirs(rdir, dir);
}
END_TEST

static int keep_first_line(const char *line, size_t len, void *payload) {
    char **first = payload;
    if (!*first) *first = strndup(line, len);
    return 0;
}

/* The first record a replica took is itself without content (replica_since names it, not the
 * one after; mutation testing: ">" for ">=" passed every other test): here it is an upload. */
START_TEST(replica_since_includes_its_first_record) {
    char *dir;
    tl_log *src = tu_new_log(&dir);
    tu_exec_ok(src, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(src, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    tu_exec_ok(src, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    char *rdir = tu_tmpdir();
    char rep[4200];
    make_replica(&src, dir, rdir, rep, sizeof rep);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    uint64_t first = st.events + 1;
    tu_exec_ok(src, "{\"op\":\"attachment.upload\",\"as\":\"al\",\"id\":\"f\",\"project\":\"p\",\"name\":\"f\",\"data\":\"YQ==\"}");
    tu_exec_ok(src, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n\",\"project\":\"p\",\"body\":\"a body\",\"attachments\":[\"f\"]}");
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    /* in two calls: the first records replica_since, the second leaves it where it is */
    ck_assert_int_eq(ship(src, rep, first, first), 0);
    ck_assert_int_eq(ship(src, rep, first + 1, st.events), 0);
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *r;
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(r, NULL, &vr) == 0, "replica verify: %s at %llu", vr.reason,
                  (unsigned long long)vr.first_bad_seq);
    ck_assert_uint_eq(vr.replica_since, first);
    ck_assert_uint_eq(vr.contents, 0);
    /* the export's header says from where (EXPORT.md), and so does a verified replay of it */
    char *header = NULL, want[64];
    ck_assert_int_eq(tl_export(r, NULL, keep_first_line, &header), 0);
    snprintf(want, sizeof want, ",\"replica_since\":%llu}", (unsigned long long)first);
    ck_assert_msg(header && strstr(header, want), "export header: %s", header);
    free(header);
    char copy[4300];
    snprintf(copy, sizeof copy, "%s/copy", rdir);
    tl_replay_options ro = TL_REPLAY_OPTIONS_INIT;
    ro.into_dir = copy;
    ro.verify = 1;
    tl_replay_report rr;
    ck_assert_msg(tl_replay(r, &ro, &rr) == 0, "replay of the replica: %s", tl_errdetail());
    ck_assert_uint_eq(rr.verify.replica_since, first);
    ck_assert_uint_eq(rr.verify.contents, 0);
    tl_log_close(r);
    tl_log_close(src);
    remove_dirs(rdir, dir);
}
END_TEST

/* A replica that began as a copy of the source's directory holds the content stored then; an
 * erasure shipped later drops it there too (an erasure binds every copy). Before, the replica
 * kept serving the erased body. */
START_TEST(replica_drops_erased_content) {
    char *dir;
    tl_log *src = tu_new_log(&dir);
    tu_exec_ok(src, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    tu_exec_ok(src, "{\"op\":\"user.create\",\"id\":\"al\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Al\"}");
    tu_exec_ok(src, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"V\"}");
    tu_exec_ok(src, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n\",\"project\":\"p\",\"body\":\"a body to erase\"}");
    char *rdir = tu_tmpdir();
    char rep[4200];
    make_replica(&src, dir, rdir, rep, sizeof rep); /* holds the note's content */
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    uint64_t before = st.events;
    tl_result res;
    ck_assert_int_eq(tl_erase(src, "n", "request", &res), 0);
    ck_assert_int_eq(tl_log_stats_get(src, &st), 0);
    ck_assert_uint_eq(st.content_bytes, 0);
    ck_assert_int_eq(ship(src, rep, before + 1, st.events), 0);
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *r;
    ck_assert_int_eq(tl_log_open(&r, rep, &o), 0);
    tl_log_stats rs;
    ck_assert_int_eq(tl_log_stats_get(r, &rs), 0);
    ck_assert_uint_eq(rs.events, st.events);
    ck_assert_uint_eq(rs.content_bytes, 0); /* gone from the replica too */
    /* and from its data file: taking the erasure clears the file as `erase` does */
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", rep);
    size_t flen;
    char *file = tu_read_file(path, &flen);
    ck_assert_ptr_nonnull(file);
    ck_assert_ptr_null(memmem(file, flen, "a body to erase", 15));
    free(file);
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(r, NULL, &vr) == 0, "replica verify: %s", vr.reason);
    char dr[TL_PUBKEY_HEX_SIZE], ds[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(r, dr), 0);
    ck_assert_int_eq(tl_digest(src, ds), 0);
    ck_assert_str_eq(dr, ds); /* the same projections: the body shows as erased on both */
    tl_log_close(r);
    tl_log_close(src);
    remove_dirs(rdir, dir);
}
END_TEST

/* A handle opened as a replica never signs, even on a directory that holds the writer key
 * (threadlog.h, TL_OPEN_REPLICA): a raw append is refused (key) and the log is unchanged. */
START_TEST(replica_handle_never_signs) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    tl_log_close(log);
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_REPLICA;
    ck_assert_int_eq(tl_log_open(&log, dir, &o), 0);
    static const uint8_t empty_map[] = {0x80};
    tl_draft d = {"x.r", "@operator", NULL, empty_map, sizeof empty_map};
    uint64_t first = 77;
    ck_assert_int_eq(tl_log_append(log, &d, 1, &first), TL_EKEY);
    ck_assert_uint_eq(first, 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, 1);
    tl_log_close(log);
    *strrchr(dir, '/') = 0;
    tu_rmdir(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("replica");
    TCase *tc = tcase_create("records");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, replica_across_rotations);
    tcase_add_test(tc, replica_without_content);
    tcase_add_test(tc, replica_since_includes_its_first_record);
    tcase_add_test(tc, replica_drops_erased_content);
    tcase_add_test(tc, replica_handle_never_signs);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
