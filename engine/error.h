/*
 * error.h — setting the thread's error detail beside a returned code.
 *
 * Every failing path returns a TL_E... code; tl_fail() also records a one-line human detail
 * that tl_errdetail() returns, so callers can print "m-2 has a reply (m-3)" without the code
 * having to travel with its string through every layer.
 */
#ifndef TL_ERROR_H
#define TL_ERROR_H

#include "threadlog.h"

/** Record a detail for the calling thread and return code (for `return tl_fail(...)`). */
int tl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Translate an LMDB return code into a threadlog code, recording a detail. */
int tl_fail_mdb(int rc, const char *what);

/** Forget the damaged page an earlier transaction of this thread met (at a write transaction's
 *  beginning): an MDB_BAD_TXN is `corrupt` only after one in the same transaction. */
void tl_corrupt_forget(void);

/** Clear the thread's detail (called on success paths that report details to callers). */
void tl_clear_detail(void);

#endif
