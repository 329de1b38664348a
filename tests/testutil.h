/*
 * testutil.h — fixtures shared by the Check suites: a fresh temporary log per test, running
 * the CLI, reading files.
 */
#ifndef TL_TESTUTIL_H
#define TL_TESTUTIL_H

#include <check.h>
#include <lmdb.h>
#include <stddef.h>

#include "threadlog.h"

/** A fresh temporary directory (removed by tu_rmdir). Returns a malloc'd path. */
char *tu_tmpdir(void);
void tu_rmdir(const char *dir);
/** init a log in a fresh temp dir and open it; *dir receives the path. */
tl_log *tu_new_log(char **dir);
/** Run a shell command, capture stdout (malloc'd) and return the exit status. */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Run the suite with forking, return 0 if all passed. */
int tu_main(Suite *s);
char *tu_read_file(const char *path, size_t *len);
/** Open the log in dir with LMDB itself (the log closed: one environment per process) and
 * begin a write transaction: for tests that damage or rewrite stored bytes. */
MDB_txn *tu_raw_begin(const char *dir, MDB_env **env);
/** A cursor on named database `name` in such a transaction (*dbi receives its handle). */
MDB_cursor *tu_raw_cursor(MDB_txn *txn, const char *name, MDB_dbi *dbi);
int tu_write_file(const char *path, const void *data, size_t len);
/** How many times needle occurs in the log's data file DIR/data.mdb (erased bytes must not). */
int tu_data_file_count(const char *dir, const void *needle, size_t n);
/** Parse and run one JSON command line; fails the test unless it succeeds. */
void tu_exec_ok(tl_log *log, const char *json);

#endif
