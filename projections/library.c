/*
 * library.c — opening a log wires the engine to every applier: the domain state the rules
 * need (engine/) and the read models of projections/ (registry.c holds the list); the
 * engine sees appliers only as registered callbacks.
 */
#include <sys/stat.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "projections.h"

int tl_log_init(const char *dir, const tl_init_options *opts, char pubkey_hex[TL_PUBKEY_HEX_SIZE]) {
    if (!dir || !*dir) return tl_fail(TL_EUSAGE, "no log directory given");
    if (opts && opts->version != TL_INIT_OPTIONS_VERSION)
        return tl_fail(TL_EUSAGE, "unknown tl_init_options version %u", opts->version);
    uint64_t max = opts && opts->max_attachment ? opts->max_attachment : TL_DEFAULT_MAX_ATTACHMENT;
    if (max > TL_MAX_ATTACHMENT_LIMIT)
        return tl_fail(TL_EINVALID, "the attachment limit is at most %llu bytes (1 GiB), not %llu",
                       (unsigned long long)TL_MAX_ATTACHMENT_LIMIT, (unsigned long long)max);
    /* built whole in a staging directory inside dir, then published: a killed init leaves no
     * half-made log (init.c) */
    char staging[4200];
    bool made_dir;
    int lock_fd;
    int rc = tl_engine_init_stage(dir, staging, sizeof staging, &made_dir, &lock_fd);
    if (rc) return rc;
    tl_init_made made;
    rc = tl_engine_init(staging, max, pubkey_hex, &made); /* on failure, says it removed its files */
    bool said = rc != 0;
    /* open once writable so every applier creates its databases now, not at first use */
    tl_log *log;
    if (!rc && (rc = tl_log_open(&log, staging, NULL)) == 0) tl_log_close(log);
    if (!rc) rc = tl_engine_init_publish(dir, staging, lock_fd);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", tl_errdetail());
        tl_engine_init_abandon(dir, staging, made_dir, lock_fd);
        tl_fail(rc, "%s%s", why, said ? "" : " (what init made was removed)");
    }
    return rc;
}

int tl_log_open(tl_log **out, const char *dir, const tl_open_options *opts) {
    if (!out) return tl_fail(TL_EUSAGE, "tl_log_open: out is NULL");
    *out = NULL;
    if (!dir || !*dir) return tl_fail(TL_EUSAGE, "no log directory given");
    if (opts && opts->version != TL_OPEN_OPTIONS_VERSION)
        return tl_fail(TL_EUSAGE, "unknown tl_open_options version %u", opts->version);
    /* TL_OPEN_NOKEY and TL_OPEN_WRITEMAP (log.h): replay's copies, opened through here */
    if (opts && (opts->flags & ~(unsigned)(TL_OPEN_READONLY | TL_OPEN_NOSYNC | TL_OPEN_REPLICA | TL_OPEN_WRITEMAP | TL_OPEN_NOKEY)))
        return tl_fail(TL_EUSAGE, "unknown open flags 0x%x", opts->flags);
    tl_log *log;
    int rc = tl_engine_open(&log, dir, opts ? opts->flags : 0);
    if (rc) return rc;
    rc = tl_commands_attach(log);
    if (!rc) rc = tl_projections_register(log);
    if (rc) { tl_engine_close(log); return rc; }
    *out = log;
    return 0;
}

void tl_log_close(tl_log *log) { tl_engine_close(log); }
