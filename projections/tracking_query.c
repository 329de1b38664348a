/*
 * tracking_query.c — the Tracking tab's query: a page of the viewer's table in either order,
 * read from the indexes tracking.c keeps (their layout is described at the top of it).
 */
#include "tracking.h"

/*
 * The viewer's projects with unread messages, read from the front of their B ranges (where
 * ~unread sorts them first), so that a default-order page needs no R-row lookup per row.
 * A walk step costs a fraction of a lookup (a B-tree descent to a page of its own), so the
 * walk may take UNREAD_SET_PER_ROW steps per row of the page; a viewer with more unread
 * projects (a staff member who never reads) is not helped, and the page reads R rows one by
 * one as before (complete = false). The names point into the map, valid for the query's read
 * transaction.
 */
#define UNREAD_SET_PER_ROW 4

typedef struct unread_set {
    bool complete;
    unsigned n, max;
    size_t nslot; /* a power of two, at least twice max */
    struct us_slot { const char *project; uint64_t unread; } *slot;
} unread_set;

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static bool unread_find(const unread_set *us, const char *project, uint64_t *unread) {
    for (size_t j = name_hash(project) & (us->nslot - 1);; j = (j + 1) & (us->nslot - 1)) {
        if (!us->slot[j].project) return false;
        if (!strcmp(us->slot[j].project, project)) {
            *unread = us->slot[j].unread;
            return true;
        }
    }
}

static int unread_set_load(MDB_txn *txn, MDB_dbi db, const char *user, int type, unsigned rows, unread_set *us) {
    us->n = 0;
    us->complete = false;
    us->max = rows * UNREAD_SET_PER_ROW;
    for (us->nslot = 16; us->nslot < 2 * (size_t)us->max; us->nslot *= 2) {}
    if (!(us->slot = calloc(us->nslot, sizeof *us->slot))) return tl_fail(TL_ENOMEM, "out of memory");
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc) return tl_fail(TL_ESTORAGE, "tracking: %s", mdb_strerror(rc));
    for (int t = 1; t <= 3 && !rc; t++) {
        if (type && t != type) continue;
        tlp_key pre;
        tlp_key_init(&pre, 'B');
        tlp_key_str(&pre, user);
        tlp_key_u8(&pre, (unsigned)t);
        MDB_val k = {pre.n, pre.b}, v;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const uint8_t *kb = k.mv_data;
            if (k.mv_size < pre.n + 16 + 2 || memcmp(kb, pre.b, pre.n) != 0) break; /* the range ended */
            uint64_t unread = ~tl_seq_from_key(kb + pre.n);
            if (!unread) break; /* the rest of this type's range has none */
            const char *project = (const char *)kb + pre.n + 16;
            size_t plen = k.mv_size - pre.n - 16 - 1;
            if (kb[k.mv_size - 1] != 0 || plen == 0 || plen >= TL_IDBUF) {
                rc = tl_fail(TL_ECORRUPT, "tracking index key is damaged");
                break;
            }
            if (us->n == us->max) { /* too many: rows are looked up one by one */
                mdb_cursor_close(cur);
                return 0;
            }
            us->n++;
            size_t j = name_hash(project) & (us->nslot - 1);
            while (us->slot[j].project) j = (j + 1) & (us->nslot - 1);
            us->slot[j].project = project;
            us->slot[j].unread = unread;
        }
        if (!rc && mrc && mrc != MDB_NOTFOUND) rc = tl_fail(TL_ESTORAGE, "tracking: %s", mdb_strerror(mrc));
    }
    mdb_cursor_close(cur);
    us->complete = rc == 0;
    return rc;
}

static int tracking_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    int rc = 0, type = 0;
    if (q->type && !(type = tl_ptype_parse(q->type)))
        return tl_fail(TL_EINVALID, "unknown type \"%.40s\" (application, order or video)", q->type);
    bool by_unread;
    if (!q->sort || !strcmp(q->sort, "activity")) by_unread = false;
    else if (!strcmp(q->sort, "unread")) by_unread = true;
    else return tl_fail(TL_EINVALID, "unknown sort \"%.40s\" (activity or unread)", q->sort);
    if ((rc = tlp_viewer(txn, log, q, &u)) != 0) return rc;
    /* auditors never have unread messages: their unread-first table is the default one */
    if (u.role == TL_ROLE_AUDITOR) by_unread = false;
    size_t fixed = by_unread ? 16 : 8;
    uint8_t cur[TLP_KEY_MAX];
    size_t clen = 0;
    if (q->cursor && ((rc = tlp_cursor_decode(q->cursor, cur, sizeof cur, &clen)) != 0 || clen < fixed + 2 ||
                      clen > fixed + TL_IDBUF || cur[clen - 1] != 0))
        return rc ? rc : tl_fail(TL_EINVALID, "malformed cursor");
    tlp_key pre[3];
    int npre = 0;
    for (int t = 1; t <= 3; t++) {
        if (type && t != type) continue;
        if (by_unread) {
            tlp_key_init(&pre[npre], 'B');
            tlp_key_str(&pre[npre], q->as);
        } else {
            pre[npre] = viewer_group(q->as, &u);
        }
        tlp_key_u8(&pre[npre], (unsigned)t);
        npre++;
    }
    /* default order: the viewer's unread counts come from one short walk (see unread_set) */
    unsigned limit = tlp_limit(q, TLP_PAGE_DEFAULT), shown = 0;
    unread_set set = {0}, *us = NULL;
    if (!by_unread && u.role != TL_ROLE_AUDITOR) {
        us = &set;
        if ((rc = unread_set_load(txn, trk_db(log), q->as, type, limit, us)) != 0) {
            free(us->slot);
            return rc;
        }
    }
    tlp_merge mg;
    if ((rc = tlp_merge_open(&mg, txn, trk_db(log), pre, npre, clen ? cur : NULL, clen)) != 0) {
        free(set.slot);
        return rc;
    }
    uint8_t last[TLP_KEY_MAX];
    size_t last_len = 0;
    bool more = false;
    const uint8_t *suf;
    size_t slen;
    int which = 0;
    tl_sb_puts(sb, "{\"rows\":[");
    MDB_val iv;
    while ((rc = tlp_merge_next(&mg, &suf, &slen, &iv, &which)) == 0) {
        if (shown == limit) { more = true; break; }
        if (slen < fixed + 2 || slen > sizeof last) { rc = tl_fail(TL_ECORRUPT, "tracking index key is damaged"); break; }
        memcpy(last, suf, slen);
        last_len = slen;
        const char *project = (const char *)last + fixed;
        uint64_t la = ~tl_seq_from_key(last + fixed - 8), unread = 0;
        int t = pre[which].b[pre[which].n - 1];
        MDB_val av = iv;
        if (by_unread) {
            /* the B key gives the group's A key: the viewer's last_activity is the group's */
            unread = ~tl_seq_from_key(last);
            tlp_key ak = viewer_group(q->as, &u);
            tlp_key_u8(&ak, (unsigned)t);
            tlp_key_u64(&ak, ~la);
            tlp_key_str(&ak, project);
            if ((rc = tl_get(txn, trk_db(log), ak.b, ak.n, &av)) != 0) {
                if (rc == TL_ENOTFOUND) rc = tl_fail(TL_ECORRUPT, "tracking row of %s has no group row", project);
                break;
            }
        } else if (us && us->complete) {
            if (!unread_find(us, project, &unread)) unread = 0;
        } else if (u.role != TL_ROLE_AUDITOR) {
            row r = {0, 0, 0};
            if ((rc = row_get(txn, log, q->as, project, &r)) == 0) unread = r.unread;
            else if (rc != TL_ENOTFOUND) break;
            rc = 0;
        }
        const uint8_t *a = av.mv_data;
        if (av.mv_size < 9 || av.mv_size < 9 + (size_t)a[8]) {
            rc = tl_fail(TL_ECORRUPT, "tracking group row of %s is damaged (replay rebuilds it)", project);
            break;
        }
        size_t stlen = a[8];
        tl_sb_puts(sb, shown++ ? ",{\"project\":" : "{\"project\":");
        tl_sb_json_str(sb, project, strlen(project));
        tl_sb_puts(sb, ",\"type\":\"");
        tl_sb_puts(sb, tl_ptype_name(t) ? tl_ptype_name(t) : "");
        tl_sb_puts(sb, "\",\"title\":");
        tl_sb_json_str(sb, (const char *)a + 9 + stlen, av.mv_size - 9 - stlen);
        tl_sb_puts(sb, ",\"status\":");
        tl_sb_json_str(sb, (const char *)a + 9, stlen);
        tl_sb_puts(sb, ",\"last_activity\":");
        tl_sb_u64(sb, la);
        tl_sb_puts(sb, ",\"unread\":");
        tl_sb_u64(sb, unread);
        tl_sb_puts(sb, ",\"version\":");
        tl_sb_u64(sb, tl_seq_from_key(a));
        tl_sb_puts(sb, "}");
    }
    tlp_merge_close(&mg);
    free(set.slot);
    if (rc && rc != TL_ENOTFOUND) return rc;
    tl_sb_puts(sb, "],");
    tlp_cursor_json(sb, more ? last : NULL, last_len);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_tracking_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, tracking_body, json); }
