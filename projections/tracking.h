/*
 * tracking.h — what the tracking applier (tracking.c) and its query (tracking_query.c) share:
 * the database and the keys of its rows (the layout is described at the top of tracking.c).
 */
#ifndef TL_PROJECTIONS_TRACKING_H
#define TL_PROJECTIONS_TRACKING_H

#include "proj.h"

static inline MDB_dbi trk_db(tl_log *log) { return tlp_dbi(log, "tracking", 0); }

typedef struct row {
    uint64_t unread, la;
    uint8_t type;
} row;

/* ---------------------------------------------------------------- group rows (default order) */

static inline tlp_key group_key(char tag, char kind, const char *name) {
    tlp_key k;
    tlp_key_init(&k, tag);
    tlp_key_u8(&k, (unsigned char)kind);
    tlp_key_str(&k, name);
    return k;
}

/* The group a viewer's default order lives in. */
static inline tlp_key viewer_group(const char *user, const tl_user_rec *u) {
    switch (u->role) {
    case TL_ROLE_MEMBER: return group_key('A', 'M', u->account);
    case TL_ROLE_STAFF: return group_key('A', 'S', "");
    case TL_ROLE_AUDITOR: return group_key('A', 'X', "");
    default: return group_key('A', 'Z', user);
    }
}

static inline tlp_key row_key(const char *user, const char *project) {
    tlp_key k;
    tlp_key_init(&k, 'R');
    tlp_key_str(&k, project); /* project first: an event's rows share pages (point gets only) */
    tlp_key_str(&k, user);
    return k;
}

static inline int row_get(MDB_txn *txn, tl_log *log, const char *user, const char *project, row *r) {
    tlp_key k = row_key(user, project);
    MDB_val v;
    int rc = tl_get(txn, trk_db(log), k.b, k.n, &v);
    if (rc) return rc;
    if (v.mv_size != 17) return tl_fail(TL_ECORRUPT, "tracking row is damaged");
    r->unread = tl_seq_from_key(v.mv_data);
    r->la = tl_seq_from_key((const uint8_t *)v.mv_data + 8);
    r->type = ((const uint8_t *)v.mv_data)[16];
    return 0;
}

#endif
