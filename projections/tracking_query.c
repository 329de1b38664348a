/*
 * tracking_query.c — the Tracking tab's query: a page of the viewer's table in either order,
 * read from the indexes tracking.c keeps (their layout is described at the top of it).
 */
#include "tracking.h"

static int tracking_body(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb) {
    tl_user_rec u;
    int rc = 0, type = 0;
    if (q->type && !(type = tl_ptype_parse(q->type)))
        return tl_fail(TL_EINVALID, "unknown type \"%.40s\" (application, order or video)", q->type);
    bool by_unread;
    if (!q->sort || !strcmp(q->sort, "activity")) by_unread = false;
    else if (!strcmp(q->sort, "unread")) by_unread = true;
    else return tl_fail(TL_EINVALID, "unknown sort \"%.40s\" (activity or unread)", q->sort);
    /* A cursor is checked before the viewer is looked up: invalid input comes before
     * not_found (SPEC "When several rules are broken"). Which of the two orders it must carry
     * depends on the viewer's role (below), so here it must carry one of them. */
    if (q->cursor) {
        tl_query plain = *q;
        plain.sort = NULL;
        uint8_t probe[TLP_KEY_MAX];
        size_t plen;
        if (tlp_cursor_decode(q, 't', probe, sizeof probe, &plen) != 0 &&
            (!by_unread || tlp_cursor_decode(&plain, 't', probe, sizeof probe, &plen) != 0))
            return tlp_cursor_decode(q, 't', probe, sizeof probe, &plen);
    }
    if ((rc = tlp_viewer(txn, log, q, &u)) != 0) return rc;
    /* auditors never have unread messages: their unread-first table is the default one */
    if (u.role == TL_ROLE_AUDITOR) by_unread = false;
    /* the cursor's tag names the order the page has, not the --sort given: an auditor's
     * "unread first" table is the default one, and its cursors serve both */
    tl_query tagged = *q;
    tagged.sort = by_unread ? "unread" : NULL;
    q = &tagged;
    size_t fixed = by_unread ? 16 : 8;
    uint8_t cur[TLP_KEY_MAX];
    size_t clen = 0;
    if (q->cursor && ((rc = tlp_cursor_decode(q, 't', cur, sizeof cur, &clen)) != 0 || clen < fixed + 2 ||
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
    unsigned limit = tlp_limit(q, TLP_PAGE_DEFAULT), shown = 0;
    tlp_merge mg;
    if ((rc = tlp_merge_open(&mg, txn, trk_db(log), pre, npre, clen ? cur : NULL, clen)) != 0) return rc;
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
        /* the B value (unread-first order) and the A value (default order) both start with
         * what the page shows of the row (tracking.h) */
        MDB_val av = iv;
        if (by_unread) unread = ~tl_seq_from_key(last);
        trk_group_value g = {0};
        if ((rc = trk_group_value_parse(&av, &g)) != 0) break;
        /* default order: the viewer's count from the group row's list (tracking.h), or,
         * when the list could not hold every viewer with unread messages, their R row */
        if (!by_unread && u.role != TL_ROLE_AUDITOR) {
            if ((rc = trk_list_find(&g, q->as, &unread)) < 0) break;
            if (rc == 0 && g.partial) {
                row r = {0, 0, 0, 0};
                if ((rc = row_get(txn, log, q->as, project, &r)) == 0) unread = r.unread;
                else if (rc != TL_ENOTFOUND) break;
            }
            rc = 0;
        }
        tl_sb_puts(sb, shown++ ? ",{\"project\":" : "{\"project\":");
        tl_sb_json_str(sb, project, strlen(project));
        tl_sb_puts(sb, ",\"type\":\"");
        tl_sb_puts(sb, tl_ptype_name(t) ? tl_ptype_name(t) : "");
        tl_sb_puts(sb, "\",\"title\":");
        tl_sb_json_str(sb, (const char *)g.title, g.tlen);
        tl_sb_puts(sb, ",\"status\":");
        tl_sb_json_str(sb, (const char *)g.status, g.slen);
        tl_sb_puts(sb, ",\"last_activity\":");
        tl_sb_u64(sb, la);
        tl_sb_puts(sb, ",\"unread\":");
        tl_sb_u64(sb, unread);
        tl_sb_puts(sb, ",\"version\":");
        tl_sb_u64(sb, g.version);
        tl_sb_puts(sb, "}");
    }
    tlp_merge_close(&mg);
    if (rc && rc != TL_ENOTFOUND) return rc;
    tl_sb_puts(sb, "],");
    tlp_cursor_json(sb, q, 't', more ? last : NULL, last_len);
    tl_sb_puts(sb, "}");
    return 0;
}

int tl_tracking_query(tl_log *log, const tl_query *q, char **json) { return tlp_run_query(log, q, tracking_body, json); }
