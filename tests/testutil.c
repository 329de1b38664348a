/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/tltest.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void tu_rmdir(const char *dir) {
    if (!dir || strncmp(dir, "/", 1) != 0 || !strstr(dir, "tltest.")) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    /* a log made by tu_new_log lives in a tltest.* directory of its own: that goes too once
     * empty (rmdir refuses a directory that still holds a sibling copy or another log) */
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        const char *name = strrchr(parent, '/');
        if (name && strncmp(name + 1, "tltest.", 7) == 0) rmdir(parent);
    }
}

tl_log *tu_new_log(char **dirp) {
    char *base = tu_tmpdir();
    ck_assert_ptr_nonnull(base);
    char *dir = malloc(strlen(base) + 8);
    sprintf(dir, "%s/log", base);
    free(base);
    char pk[TL_PUBKEY_HEX_SIZE];
    int rc = tl_log_init(dir, NULL, pk);
    ck_assert_msg(rc == 0, "init: %s %s", tl_strerror(rc), tl_errdetail());
    tl_log *log;
    rc = tl_log_open(&log, dir, NULL);
    ck_assert_msg(rc == 0, "open: %s %s", tl_strerror(rc), tl_errdetail());
    *dirp = dir;
    return log;
}

int tu_run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tu_main(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

int tu_data_file_count(const char *dir, const void *needle, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t len;
    char *file = tu_read_file(path, &len);
    ck_assert_msg(file != NULL, "cannot read %s", path);
    int count = 0;
    for (const char *p = file; len >= n && (p = memmem(p, len - (size_t)(p - file), needle, n)) != NULL; p++) count++;
    free(file);
    return count;
}

void tu_exec_ok(tl_log *log, const char *json) {
    tl_cmd *cmd = NULL;
    tl_result res;
    ck_assert_msg(tl_cmd_parse(&cmd, json, strlen(json), &res) == 0, "%s: %s", json, res.message);
    int rc = tl_cmd_exec(log, cmd, &res);
    tl_cmd_free(cmd);
    ck_assert_msg(rc == 0 && res.code == 0, "%s: %s", json, res.message);
}

int tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    fclose(f);
    return w == len ? 0 : -1;
}

MDB_cursor *tu_raw_cursor(MDB_txn *txn, const char *name, MDB_dbi *dbi) {
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_dbi_open(txn, name, 0, dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, *dbi, &cur), 0);
    return cur;
}

MDB_txn *tu_raw_begin(const char *dir, MDB_env **env) {
    MDB_txn *txn;
    ck_assert_int_eq(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 64);
    mdb_env_set_mapsize(*env, 1ull << 30);
    ck_assert_int_eq(mdb_env_open(*env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(*env, NULL, 0, &txn), 0);
    return txn;
}
