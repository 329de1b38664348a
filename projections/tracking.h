/*
 * tracking.h — what the tracking applier (tracking.c) and its query (tracking_query.c) share:
 * the database and the keys of its rows (the layout is described at the top of tracking.c).
 */
#ifndef TL_PROJECTIONS_TRACKING_H
#define TL_PROJECTIONS_TRACKING_H

#include "proj.h"

static inline MDB_dbi trk_db(tl_log *log) { return tlp_dbi(log, "tracking", 0); }

/* A user's R row: unread(8) last_activity(8) type(1) version(8). */
#define TRK_ROW_BYTES 25
typedef struct row {
    uint64_t unread, la;
    uint8_t type;
    uint64_t version;
} row;

static inline int row_parse(const MDB_val *v, row *r) {
    if (v->mv_size != TRK_ROW_BYTES) return tl_fail(TL_ECORRUPT, "tracking row is damaged (replay rebuilds it)");
    const uint8_t *b = v->mv_data;
    r->unread = tl_seq_from_key(b);
    r->la = tl_seq_from_key(b + 8);
    r->type = b[16];
    r->version = tl_seq_from_key(b + 17);
    return 0;
}

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

/*
 * The value of an A row, and of a B row, starts with what a page shows of the row:
 * version(8) slen(1) status tlen(2, big-endian) title flags(1). Writes it; returns its length.
 */
static inline size_t trk_value_head(uint8_t *out, uint64_t version, const char *status, size_t slen, const tl_bytes *title) {
    tl_seq_key(out, version);
    out[8] = (uint8_t)slen;
    memcpy(out + 9, status, slen);
    size_t n = 9 + slen;
    out[n++] = (uint8_t)(title->len >> 8);
    out[n++] = (uint8_t)title->len;
    memcpy(out + n, title->ptr, title->len);
    n += title->len;
    out[n++] = 0; /* flags */
    return n;
}
#define TRK_HEAD_MAX (12 + TL_STATUS_MAX + TL_TEXT_MAX)

/*
 * A B row's value is the head alone (the viewer's version of the project, its status and
 * title), so an unread-first page reads one index range. An A row's head is followed by the
 * viewers' unread list: entries idlen(1) user unread(LEB128), one per member of the group
 * with unread messages in the project, in the group's order, while they fit in
 * TRK_LIST_MAX bytes. flags bit 0 (TRK_PARTIAL): some did not fit; a viewer not listed
 * must then be read from their R row. Otherwise a viewer not listed has no unread message.
 */
#define TRK_LIST_MAX 512
#define TRK_PARTIAL 1u

typedef struct trk_group_value {
    uint64_t version;
    const uint8_t *status, *title, *list;
    size_t slen, tlen, list_len;
    bool partial;
} trk_group_value;

static inline int trk_group_value_parse(const MDB_val *v, trk_group_value *g) {
    const uint8_t *a = v->mv_data;
    size_t n = v->mv_size;
    if (n < 12 || n < 12 + (size_t)a[8]) return tl_fail(TL_ECORRUPT, "tracking group row is damaged (replay rebuilds it)");
    g->version = tl_seq_from_key(a);
    g->slen = a[8];
    g->status = a + 9;
    const uint8_t *t = a + 9 + g->slen;
    g->tlen = (size_t)t[0] << 8 | t[1];
    if (n < 12 + g->slen + g->tlen) return tl_fail(TL_ECORRUPT, "tracking group row is damaged (replay rebuilds it)");
    g->title = t + 2;
    g->partial = (g->title[g->tlen] & TRK_PARTIAL) != 0;
    g->list = g->title + g->tlen + 1;
    g->list_len = n - (size_t)(g->list - a);
    return 0;
}

/* user's unread count from the list: 1 listed, 0 not listed, or TL_ECORRUPT. */
static inline int trk_list_find(const trk_group_value *g, const char *user, uint64_t *unread) {
    size_t ulen = strlen(user);
    for (size_t i = 0; i < g->list_len;) {
        size_t idlen = g->list[i++];
        if (idlen == 0 || i + idlen > g->list_len)
            return tl_fail(TL_ECORRUPT, "tracking group row is damaged (replay rebuilds it)");
        bool match = idlen == ulen && !memcmp(g->list + i, user, ulen);
        i += idlen;
        uint64_t x = 0;
        unsigned shift = 0;
        for (;;) {
            if (i >= g->list_len || shift > 63) return tl_fail(TL_ECORRUPT, "tracking group row is damaged (replay rebuilds it)");
            uint8_t b = g->list[i++];
            x |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
            shift += 7;
        }
        if (match) {
            *unread = x;
            return 1;
        }
    }
    *unread = 0;
    return 0;
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
    return rc ? rc : row_parse(&v, r);
}

#endif
