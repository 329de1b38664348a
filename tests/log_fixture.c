/*
 * log_fixture.c — see log_fixture.h.
 */
#include "log_fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

void remove_log(tl_log *log, char *dir) {
    tl_log_close(log);
    char *base = strdup(dir);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    tu_rmdir(base);
    free(base);
    free(dir);
}

tl_log *open_log(const char *dir, unsigned flags) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = flags;
    tl_log *log = NULL;
    int rc = tl_log_open(&log, dir, &o);
    ck_assert_msg(rc == 0, "open %s: %s %s", dir, tl_strerror(rc), tl_errdetail());
    return log;
}

uint64_t head_seq(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

void verify_ok(tl_log *log, uint64_t events) {
    tl_verify_report r;
    int rc = tl_log_verify(log, NULL, &r);
    ck_assert_msg(rc == 0, "verify: %s at %llu: %s", tl_strerror(rc), (unsigned long long)r.first_bad_seq, r.reason);
    ck_assert_uint_eq(r.events, events);
    ck_assert_uint_eq(r.first_bad_seq, 0);
}

void x_payload(msgpack_sbuffer *buf, uint64_t i, const char *text, size_t pad) {
    msgpack_sbuffer_clear(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, pad ? 3 : 2);
    msgpack_pack_str_with_body(&pk, "i", 1);
    msgpack_pack_uint64(&pk, i);
    msgpack_pack_str_with_body(&pk, "note", 4);
    msgpack_pack_str_with_body(&pk, text, strlen(text));
    if (pad) {
        uint8_t *zeros = calloc(1, pad);
        msgpack_pack_str_with_body(&pk, "pad", 3);
        msgpack_pack_bin_with_body(&pk, zeros, pad);
        free(zeros);
    }
}

uint64_t append_n(tl_log *log, size_t n, uint64_t i0, size_t pad) {
    msgpack_sbuffer *bufs = calloc(n, sizeof *bufs);
    tl_draft *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_init(&bufs[i]);
        x_payload(&bufs[i], i0 + i, "hello", pad);
        d[i].kind = "x.test";
        d[i].actor = (i % 2) ? "bob" : "alice";
        d[i].project = (i % 3 == 0) ? "p-1" : NULL;
        d[i].payload_msgpack = (const uint8_t *)bufs[i].data;
        d[i].payload_len = bufs[i].size;
    }
    uint64_t first = 0;
    int rc = tl_log_append(log, d, n, &first);
    ck_assert_msg(rc == 0, "append: %s %s", tl_strerror(rc), tl_errdetail());
    for (size_t i = 0; i < n; i++) msgpack_sbuffer_destroy(&bufs[i]);
    free(bufs);
    free(d);
    return first;
}

void be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

mode_t file_mode(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 0777;
}

void copy_file(const char *from, const char *to, mode_t mode) {
    size_t n;
    char *data = tu_read_file(from, &n);
    ck_assert_ptr_nonnull(data);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    ck_assert_int_eq(chmod(to, mode), 0);
    free(data);
}

tl_event_view event_at(tl_log *log, uint64_t seq, tl_iter **it) {
    ck_assert_int_eq(tl_iter_open(log, seq, it), 0);
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_next(*it, &ev), 0);
    ck_assert_uint_eq(ev.seq, seq);
    return ev;
}
