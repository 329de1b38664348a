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
/* The last damaged page this thread's transaction met (MDB_CORRUPTED, MDB_PAGE_NOTFOUND): LMDB
 * then refuses everything else of that transaction with MDB_BAD_TXN, which alone reads as a
 * storage failure ("free space, then retry") where the file is damaged (a reliability audit:
 * a damaged state page answered `storage` at the commit). Forgotten when a write transaction
 * begins (tl_corrupt_forget). */
static _Thread_local char corrupt_seen[200];

void tl_corrupt_forget(void) { corrupt_seen[0] = 0; }

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

/* The errno codes a storage call can meet, by name: an operator searches for "ENOSPC", and
 * "Input/output error" alone does not say which call or what to do. */
static const char *errno_name(int rc) {
    switch (rc) {
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    case EFBIG: return "EFBIG";
    case EROFS: return "EROFS";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENXIO: return "ENXIO";
    default: return NULL;
    }
}

int tl_fail_mdb(int rc, const char *what) {
    switch (rc) {
    case MDB_NOTFOUND:
        return tl_fail(TL_ENOTFOUND, "%s: not found", what);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        snprintf(corrupt_seen, sizeof corrupt_seen, "%s: %s", what, mdb_strerror(rc));
        return tl_fail(TL_ECORRUPT, "%s", corrupt_seen);
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return tl_fail(TL_ECORRUPT, "%s: %s", what, mdb_strerror(rc));
    case MDB_BAD_TXN:
        if (corrupt_seen[0])
            return tl_fail(TL_ECORRUPT, "%s: the transaction met a damaged page before (%s); `threadlog verify` names the "
                                        "damage", what, corrupt_seen);
        return tl_fail(TL_ESTORAGE, "%s: %s", what, mdb_strerror(rc));
    case ENOMEM:
        return tl_fail(TL_ENOMEM, "%s: out of memory", what);
    case EACCES:
        return tl_fail(TL_EREADONLY, "%s: %s", what, mdb_strerror(rc));
    case ENOSPC:
        return tl_fail(TL_ESTORAGE, "%s: no space left on device (ENOSPC)", what);
    case EDQUOT:
        return tl_fail(TL_ESTORAGE, "%s: disk quota exceeded (EDQUOT)", what);
    case EIO:
        return tl_fail(TL_ESTORAGE, "%s: input/output error (EIO)", what);
    case MDB_PANIC:
        return tl_fail(TL_ESTORAGE, "%s: a write of the data file failed earlier (MDB_PANIC)", what);
    default:
        if (rc > 0 && errno_name(rc))
            return tl_fail(TL_ESTORAGE, "%s: %s (%s)", what, strerror(rc), errno_name(rc));
        return tl_fail(TL_ESTORAGE, "%s: %s", what, mdb_strerror(rc));
    }
}
