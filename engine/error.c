/*
 * error.c — the error list's strings and the thread-local detail.
 *
 * The strings come from TL_ERROR_LIST in threadlog.h, so the enum, tl_strerror() and the
 * spec's error names can never drift apart. LMDB codes are translated here, at the
 * boundary, and never leak to callers.
 */
#include "error.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char detail[512];

const char *tl_strerror(int code) {
    switch (code) {
    case TL_OK:
        return "ok";
#define TL_ERROR_CASE_(name, value, str) \
    case name:                           \
        return str;
        TL_ERROR_LIST(TL_ERROR_CASE_)
#undef TL_ERROR_CASE_
    default:
        return "unknown";
    }
}

const char *tl_errdetail(void) { return detail[0] ? detail : ""; }

const char *tl_version(void) { return TL_VERSION_STRING; }

void tl_free(void *ptr) { free(ptr); }

void tl_clear_detail(void) { detail[0] = '\0'; }

int tl_fail(int code, const char *fmt, ...) {
    /* format aside first: an argument may be tl_errdetail() itself ("record 3: %s") */
    char buf[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(detail, buf, sizeof detail);
    return code;
}

int tl_fail_mdb(int rc, const char *what) {
    switch (rc) {
    case MDB_NOTFOUND:
        return tl_fail(TL_ENOTFOUND, "%s: not found", what);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return tl_fail(TL_ECORRUPT, "%s: %s", what, mdb_strerror(rc));
    case ENOMEM:
        return tl_fail(TL_ENOMEM, "%s: out of memory", what);
    case EACCES:
        return tl_fail(TL_EREADONLY, "%s: %s", what, mdb_strerror(rc));
    default:
        return tl_fail(TL_ESTORAGE, "%s: %s", what, mdb_strerror(rc));
    }
}
