/*
 * tracking.c — the "tracking" projection: the Tracking tab, one row per project a user can
 * see, in two orders kept as sorted indexes so that a page costs O(log n + page).
 *
 * Visibility groups. last_activity is per viewer but depends only on which classes of the
 * project the viewer sees (SPEC "Settled details"; state.c keeps each class's newest
 * activity), and the set of projects a viewer sees is shared too. So the default order is
 * kept once per group of viewers who share both, not once per user:
 *   'M' account   the account's members (every class of the account's projects)
 *   'S'           all staff (project level + chat of every project)
 *   'X'           all auditors (everything; they never have unread messages)
 *   'Z' user      one ambassador (project level + ambassador channel of their projects)
 * The unread-first order depends on each user's unread counts, so it is per user:
 *
 *   G kind name\0 project\0                     -> last_activity(8) type(1)   group rows
 *   A kind name\0 type ~last_activity project\0 -> version(8) status title flags list
 *                                          default order, per group (value: tracking.h)
 *   R project\0 user\0                          -> unread(8) last_activity(8) type(1) version(8)
 *   B user\0 type ~unread ~last_activity project\0 -> version(8) status title flags
 *                                                            unread first, per user
 * Auditors have no R or B rows: their unread-first table is their default one. The type sits
 * before the order so a type filter is one range; the unfiltered table merges the three type
 * ranges (tlp_merge). A cursor is the hex of the last row's suffix (what follows the type).
 *
 * An A row's value holds what a page shows of the row: the group's version of the project
 * (tl_state_version, the same function `expect` compares with), its status and title, and
 * the unread counts of the group's viewers who have unread messages there (a list, up to
 * TRK_LIST_MAX bytes), so a default-order page reads one index range and nothing per row
 * (a viewer left out of a partial list reads their R row). A B row's value holds the same
 * fields as the viewer sees them (their version), so an unread-first page is one range too.
 *
 * Fan-out of a history entry: one A rewrite per group of its class (members, auditors; +
 * staff for chat; + the ambassador for the ambassador channel; all four for project-level
 * events), a re-key when last_activity moved; and one B rewrite per viewer of its class who
 * can have unread messages (their version moved; a re-key when last_activity or unread did); a read or unread mark: the reader's B row and their
 * group's A row (its list); a deletion: the B rows of its channel's audience and their
 * groups' A rows. Any R row whose unread count moves notes its group's A row. Within a transaction these refreshes are
 * coalesced: each touched row is refreshed once (see "coalesced refreshes" below).
 *
 * This file keeps the indexes; tracking_query.c reads a page of them; tracking.h holds the
 * keys both use.
 */
#include "tracking.h"

/* ---------------------------------------------------------------- group rows (default order) */

/* A representative viewer of group kind (the audience helpers of state.h take one). */
static void group_viewer(char kind, const tl_project_rec *p, tl_user_rec *u) {
    int role = kind == 'M' ? TL_ROLE_MEMBER : kind == 'S' ? TL_ROLE_STAFF : kind == 'X' ? TL_ROLE_AUDITOR : TL_ROLE_AMBASSADOR;
    tlp_user_rec(u, role, kind == 'M' ? p->account : NULL);
}

/*
 * The group's viewers with unread messages in project, from their R rows (refreshed before
 * the group row: see noted_run), as an A value's list (tracking.h): what lets a default-order
 * page show each row's unread count without a point read per row.
 */
static int unread_list(tl_wtxn *w, tlp_ovl *o, char kind, const char *name, const char *project, uint8_t *out,
                       size_t *len, bool *partial) {
    *len = 0;
    *partial = false;
    if (kind == 'X') return 0; /* auditors never have unread messages */
    const tlp_users *g = NULL;
    tlp_users one = {0};
    tlp_user amb = {0};
    if (kind == 'Z') {
        snprintf(amb.id, sizeof amb.id, "%s", name);
        amb.role = TL_ROLE_AMBASSADOR;
        one.v = &amb;
        one.n = 1;
        g = &one;
    } else {
        int rc = tlp_catalog_group(w, kind, kind == 'M' ? name : NULL, &g);
        if (rc) return rc;
    }
    for (size_t i = 0; i < g->n; i++) {
        tlp_key rk = row_key(g->v[i].id, project);
        MDB_val v;
        int rc = tlp_ovl_get(w, o, &rk, &v);
        if (rc == TL_ENOTFOUND) continue;
        if (rc) return rc;
        row r = {0, 0, 0, 0};
        if ((rc = row_parse(&v, &r)) != 0) return rc;
        uint64_t unread = r.unread;
        if (!unread) continue;
        size_t idlen = strlen(g->v[i].id);
        uint8_t num[10];
        size_t nn = 0;
        for (uint64_t x = unread; ; x >>= 7) {
            num[nn++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            if (x <= 0x7f) break;
        }
        if (*len + 1 + idlen + nn > TRK_LIST_MAX) {
            *partial = true;
            break;
        }
        out[(*len)++] = (uint8_t)idlen;
        memcpy(out + *len, g->v[i].id, idlen);
        *len += idlen;
        memcpy(out + *len, num, nn);
        *len += nn;
    }
    return 0;
}

static int group_refresh(tl_wtxn *w, tlp_ovl *o, char kind, const char *name, const char *project,
                         const tl_project_rec *p) {
    tl_user_rec u;
    group_viewer(kind, p, &u);
    uint64_t la = tl_state_last_activity(name, &u, p);
    tlp_key gk = group_key('G', kind, name);
    tlp_key_str(&gk, project);
    MDB_val v;
    int rc = tlp_ovl_get(w, o, &gk, &v);
    if (rc && rc != TL_ENOTFOUND) return rc;
    if (!rc && v.mv_size != 9) return tl_fail(TL_ECORRUPT, "tracking group row is damaged");
    bool had = rc == 0;
    uint64_t old = had ? tl_seq_from_key(v.mv_data) : 0;
    tlp_key ak;
    if (had && old != la) {
        ak = group_key('A', kind, name);
        tlp_key_u8(&ak, p->type);
        tlp_key_u64(&ak, ~old);
        tlp_key_str(&ak, project);
        if ((rc = tlp_ovl_del(w, o, &ak)) != 0) return rc;
    }
    ak = group_key('A', kind, name);
    tlp_key_u8(&ak, p->type);
    tlp_key_u64(&ak, ~la);
    tlp_key_str(&ak, project);
    /* the value: what a page shows of the row (see tracking.h) */
    tl_bytes title = {(const uint8_t *)"", 0};
    if ((rc = tlp_project_title(w->txn, w->log, project, &title)) != 0 && rc != TL_ENOTFOUND) return rc;
    size_t slen = strnlen(p->status, sizeof p->status);
    if (slen > TL_STATUS_MAX || title.len > TL_TEXT_MAX)
        return tl_fail(TL_ECORRUPT, "project %s: status or title too long", project);
    uint8_t av[TRK_HEAD_MAX + TRK_LIST_MAX];
    size_t n = trk_value_head(av, tl_state_version(name, &u, p), p->status, slen, &title), flags = n - 1;
    size_t list_len = 0;
    bool partial = false;
    if ((rc = unread_list(w, o, kind, name, project, av + n, &list_len, &partial)) != 0) return rc;
    av[flags] = partial ? TRK_PARTIAL : 0;
    if ((rc = tlp_ovl_put(w, o, &ak, av, n + list_len)) != 0) return rc;
    if (had && old == la) return 0; /* the G row is unchanged */
    uint8_t val[9];
    tl_seq_key(val, la);
    val[8] = p->type;
    return tlp_ovl_put(w, o, &gk, val, sizeof val);
}

/* The groups that see history class cls of p (0 = project level, then the channels). */
static int groups_refresh(tl_wtxn *w, tlp_ovl *o, int cls, const char *project, const tl_project_rec *p) {
    int rc = group_refresh(w, o, 'M', p->account, project, p);
    if (!rc) rc = group_refresh(w, o, 'X', "", project, p);
    if (!rc && (cls == 0 || cls == TL_CH_CHAT)) rc = group_refresh(w, o, 'S', "", project, p);
    if (!rc && (cls == 0 || cls == TL_CH_AMBASSADOR) && p->ambassador[0])
        rc = group_refresh(w, o, 'Z', p->ambassador, project, p);
    return rc;
}

/* ---------------------------------------------------------------- user rows (unread first) */

typedef struct noted noted;
static int note_group(noted *d, char kind, const char *name, const char *project);

static tlp_key order_key(const char *user, const char *project, const row *r) {
    tlp_key k;
    tlp_key_init(&k, 'B');
    tlp_key_str(&k, user);
    tlp_key_u8(&k, r->type);
    tlp_key_u64(&k, ~r->unread);
    tlp_key_u64(&k, ~r->la);
    tlp_key_str(&k, project);
    return k;
}

/* Bring user's row of project p up to date: its unread count (from unread.c, applied before
 * this), last_activity and version (from the state); re-key the B index when the order
 * moved, rewrite its value (what an unread-first page shows: tracking.h) when the version
 * did. title is p's (the callers read it once per project). */
static int refresh(tl_wtxn *w, tlp_ovl *o, const char *user, int role, const char *project, const tl_project_rec *p,
                   const tl_bytes *title) {
    if (role == TL_ROLE_AUDITOR) return 0; /* the 'X' group holds everything auditors need */
    tl_user_rec ur;
    tlp_user_rec(&ur, role, role == TL_ROLE_MEMBER ? p->account : NULL);
    if (!tl_state_sees_project(user, &ur, p)) return 0;
    row now = {0, tl_state_last_activity(user, &ur, p), p->type, tl_state_version(user, &ur, p)}, old = {0, 0, 0, 0};
    int rc = tlp_unread_project_sum(w, user, &ur, project, p, &now.unread);
    if (rc) return rc;
    tlp_key rk = row_key(user, project);
    MDB_val v;
    rc = tlp_ovl_get(w, o, &rk, &v);
    if (rc && rc != TL_ENOTFOUND) return rc;
    bool had = rc == 0;
    if (had) {
        if ((rc = row_parse(&v, &old)) != 0) return rc;
        if (old.unread == now.unread && old.la == now.la && old.type == now.type && old.version == now.version) return 0;
    }
    /* the user's group row lists its viewers' unread counts: refresh it after the rows */
    if (had ? old.unread != now.unread : now.unread != 0) {
        char kind = role == TL_ROLE_MEMBER ? 'M' : role == TL_ROLE_STAFF ? 'S' : 'Z';
        const char *name = kind == 'M' ? p->account : kind == 'S' ? "" : user;
        if ((rc = note_group(tlp_ovl_deferred_ctx(o), kind, name, project)) != 0) return rc;
    }
    size_t slen = strnlen(p->status, sizeof p->status);
    if (slen > TL_STATUS_MAX || title->len > TL_TEXT_MAX)
        return tl_fail(TL_ECORRUPT, "project %s: status or title too long", project);
    uint8_t bv[TRK_HEAD_MAX];
    size_t bn = trk_value_head(bv, now.version, p->status, slen, title);
    tlp_key k = order_key(user, project, &now), ok;
    tlp_ovl_prefetch(o, &k);
    bool moved = !had || old.unread != now.unread || old.la != now.la || old.type != now.type;
    if (moved && had) {
        ok = order_key(user, project, &old);
        tlp_ovl_prefetch(o, &ok);
        if ((rc = tlp_ovl_del(w, o, &ok)) != 0) return rc;
    }
    /* absent: R and B rows are written together and never deleted, so the only B key of
     * (user, project) is the one R describes, and a moved key differs from it */
    if ((rc = moved ? tlp_ovl_put_absent(w, o, &k, bv, bn) : tlp_ovl_put(w, o, &k, bv, bn)) != 0) return rc;
    uint8_t val[TRK_ROW_BYTES];
    tl_seq_key(val, now.unread);
    tl_seq_key(val + 8, now.la);
    val[16] = now.type;
    tl_seq_key(val + 17, now.version);
    return tlp_ovl_put(w, o, &rk, val, sizeof val);
}

/* p's title, for the rows of its viewers: copied to buf, since the rows are written after
 * other reads and writes of the transaction, which may move the page it was read from. */
static int title_of(tl_wtxn *w, const char *project, uint8_t buf[TL_TEXT_MAX], tl_bytes *title) {
    tl_bytes t = {(const uint8_t *)"", 0};
    int rc = tlp_project_title(w->txn, w->log, project, &t);
    if (rc && rc != TL_ENOTFOUND) return rc;
    if (t.len > TL_TEXT_MAX) return tl_fail(TL_ECORRUPT, "project %s: title too long", project);
    memcpy(buf, t.ptr, t.len);
    *title = (tl_bytes){buf, t.len};
    return 0;
}

static int refresh_all(tl_wtxn *w, tlp_ovl *o, const tlp_users *l, const char *project, const tl_project_rec *p) {
    int rc = 0;
    for (size_t i = 0; i < l->n; i++) { /* announce the rows (tlp_ovl_prefetch) */
        tlp_key rk = row_key(l->v[i].id, project);
        tlp_ovl_prefetch(o, &rk);
    }
    uint8_t buf[TL_TEXT_MAX];
    tl_bytes title;
    if (l->n && (rc = title_of(w, project, buf, &title)) != 0) return rc;
    for (size_t i = 0; i < l->n && !rc; i++) rc = refresh(w, o, l->v[i].id, l->v[i].role, project, p, &title);
    return rc;
}

typedef struct new_user {
    tl_wtxn *w;
    tlp_ovl *o;
    const char *user;
    int role;
} new_user;

static int new_user_row(const char *project, void *ctxp) {
    new_user *n = ctxp;
    tl_project_rec p;
    uint8_t buf[TL_TEXT_MAX];
    tl_bytes title;
    int rc = tl_wstate_project(n->w, project, &p);
    if (!rc) rc = title_of(n->w, project, buf, &title);
    return rc ? rc : refresh(n->w, n->o, n->user, n->role, project, &p, &title);
}

static int on_user(tl_wtxn *w, tlp_ovl *o, const tl_event *ev) {
    char id[TL_IDBUF], role[16], account[TL_IDBUF];
    tlp_ev_cstr(ev, "id", id, sizeof id);
    tlp_ev_cstr(ev, "role", role, sizeof role);
    tlp_ev_cstr(ev, "account", account, sizeof account);
    new_user n = {w, o, id, tl_role_parse(role)};
    /* the group indexes exist already; only the per-user unread-first rows are new;
     * auditors share the 'X' group; an ambassador gets rows with the projects naming them */
    if (n.role != TL_ROLE_MEMBER && n.role != TL_ROLE_STAFF) return 0;
    return tlp_each_project(w->txn, w->log, n.role == TL_ROLE_MEMBER ? account : NULL, new_user_row, &n);
}


/* ---------------------------------------------------------------- coalesced refreshes */

/*
 * Why: in a conversation every message refreshes the same rows again (each viewer's R and B
 * rows, each group's G and A rows of the project) and the transaction keeps only the last
 * result: 40 messages of one project to 8 viewers were 320 row refreshes where 8 suffice. So
 * the events of DEFERRABLE kinds only note the rows they touch (a set, each row once); the
 * noted rows are refreshed from the state as it is then, when the set has grown to
 * NOTED_MAX, before an event of any other kind, and at commit before the buffer is written
 * out (the buffer's deferred hook).
 *
 * Why the result is the same as refreshing after every event, wherever the flushes fall (a
 * live batch commits every 1,000 commands, a replay once): a row is a function of the state
 * (the user's unread counters of the project, the project's record, its title, who sees
 * it). Among the deferrable kinds every change to a row's inputs comes with an event that
 * touches that row (the new message's audience, the reader, the deleted message's audience,
 * the groups of the event's class: what refreshing after every event relies on too), and
 * none changes who sees a project (uploads, new accounts and key rotations touch no row at
 * all). So the state at the flush gives every noted row what its last touching event gave
 * it. The other kinds (a user or project created, content erased) run the noted refreshes
 * first and are then applied at once, as before.
 */
#define NOTED_MAX 4096

typedef struct noted_row {
    uint32_t off; /* into the arena: tag(1) kind or role(1) name\0 project\0 */
    uint16_t len;
    uint32_t hash;
} noted_row;

typedef struct noted {
    noted_row *v;
    size_t n, cap;
    uint32_t *slot; /* open addressing: 0 empty, else index + 1; nslot a power of two > 2 n */
    size_t nslot;
    uint8_t *arena;
    size_t used, acap;
} noted;

static uint32_t bytes_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int noted_grow(noted *d) {
    size_t cap = d->cap ? d->cap * 2 : 1024, nslot = cap * 4;
    noted_row *v = realloc(d->v, cap * sizeof *v);
    if (!v) return tl_fail(TL_ENOMEM, "out of memory (tracking)");
    d->v = v;
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot) return tl_fail(TL_ENOMEM, "out of memory (tracking)");
    for (size_t i = 0; i < d->n; i++) {
        size_t j = d->v[i].hash & (nslot - 1);
        while (slot[j]) j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(d->slot);
    d->slot = slot;
    d->nslot = nslot;
    d->cap = cap;
    return 0;
}

/* Note row k (once). */
static int noted_add(noted *d, const tlp_key *k) {
    if (d->n == d->cap && noted_grow(d) != 0) return TL_ENOMEM;
    uint32_t h = bytes_hash(k->b, k->n);
    size_t j = h & (d->nslot - 1);
    for (; d->slot[j]; j = (j + 1) & (d->nslot - 1)) {
        const noted_row *r = &d->v[d->slot[j] - 1];
        if (r->hash == h && r->len == k->n && !memcmp(d->arena + r->off, k->b, k->n)) return 0;
    }
    if (d->used + k->n > d->acap) {
        size_t cap = d->acap ? d->acap * 2 : 1u << 16;
        while (cap < d->used + k->n) cap *= 2;
        uint8_t *a = realloc(d->arena, cap);
        if (!a) return tl_fail(TL_ENOMEM, "out of memory (tracking)");
        d->arena = a;
        d->acap = cap;
    }
    memcpy(d->arena + d->used, k->b, k->n);
    d->v[d->n] = (noted_row){(uint32_t)d->used, (uint16_t)k->n, h};
    d->used += k->n;
    d->slot[j] = (uint32_t)++d->n;
    return 0;
}

static void noted_clear(void *ctx) {
    noted *d = ctx;
    if (d->n) memset(d->slot, 0, d->nslot * sizeof *d->slot);
    d->n = d->used = 0;
}

static void noted_release(void *ctx) {
    noted *d = ctx;
    if (!d) return;
    free(d->v);
    free(d->slot);
    free(d->arena);
    free(d);
}

/* 'G' kind name\0 project\0: group `kind name`'s rows of project; 'R' role user\0 project\0. */
static int note_group(noted *d, char kind, const char *name, const char *project) {
    tlp_key k;
    tlp_key_init(&k, 'G');
    tlp_key_u8(&k, (unsigned char)kind);
    tlp_key_str(&k, name);
    tlp_key_str(&k, project);
    return noted_add(d, &k);
}

static int note_groups(noted *d, int cls, const char *project, const tl_project_rec *p) {
    int rc = note_group(d, 'M', p->account, project);
    if (!rc) rc = note_group(d, 'X', "", project);
    if (!rc && (cls == 0 || cls == TL_CH_CHAT)) rc = note_group(d, 'S', "", project);
    if (!rc && (cls == 0 || cls == TL_CH_AMBASSADOR) && p->ambassador[0]) rc = note_group(d, 'Z', p->ambassador, project);
    return rc;
}

static int note_rows(noted *d, const tlp_users *l, const char *project) {
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        if (l->v[i].role == TL_ROLE_AUDITOR) continue; /* refresh() would do nothing */
        tlp_key k;
        tlp_key_init(&k, 'R');
        tlp_key_u8(&k, l->v[i].role);
        tlp_key_str(&k, l->v[i].id);
        tlp_key_str(&k, project);
        rc = noted_add(d, &k);
    }
    return rc;
}

/*
 * Refresh every noted row from the state as it is now, and forget them: the users' rows
 * first, then the groups' (whose unread lists are read from the users' rows). A user row
 * whose unread count moves notes its group (refresh), which the second pass then sees. The
 * names are copied out of the arena, which such a note may move.
 */
static int noted_run(tl_wtxn *w, tlp_ovl *o, void *ctx) {
    noted *d = ctx;
    int rc = 0;
    char cached[TL_IDBUF] = "";
    tl_project_rec p;
    uint8_t buf[TL_TEXT_MAX];
    tl_bytes title = {buf, 0};
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < d->n && !rc; i++) {
            const uint8_t *b = d->arena + d->v[i].off;
            if ((b[0] == 'G') != (pass == 1)) continue;
            char tag = (char)b[1], name[TL_IDBUF], project[TL_IDBUF];
            size_t nlen = strlen((const char *)b + 2), plen = strlen((const char *)b + 3 + nlen);
            if (nlen >= sizeof name || plen >= sizeof project) { rc = tl_fail(TL_ECORRUPT, "tracking: a noted row is too long"); break; }
            memcpy(name, b + 2, nlen + 1);
            memcpy(project, b + 3 + nlen, plen + 1);
            if (strcmp(project, cached) != 0) { /* rows are noted project by project */
                if ((rc = tl_wstate_project(w, project, &p)) != 0 || (rc = title_of(w, project, buf, &title)) != 0) break;
                memcpy(cached, project, plen + 1);
            }
            if (pass == 1) rc = group_refresh(w, o, tag, name, project, &p);
            else rc = refresh(w, o, name, (uint8_t)tag, project, &p, &title);
        }
    }
    noted_clear(d);
    return rc;
}

/* The kinds whose refreshes may be coalesced (see above). An upload, a new account and a key
 * rotation touch no row and change no row's inputs (an attachment shows with the message
 * that carries it; a new account has no projects yet), so they are among them: before, the
 * uploads of `apply`'s mix each ran the noted refreshes (14% of its profile). */
static bool deferrable(const tl_event *ev) {
    return !strncmp(ev->kind, "message.", 8) || ev->kid == TL_K_NOTE_ADDED || ev->kid == TL_K_TOPIC_CREATED ||
           ev->kid == TL_K_PROJECT_STATUS_CHANGED || ev->kid == TL_K_ATTACHMENT_UPLOADED ||
           ev->kid == TL_K_ACCOUNT_CREATED || ev->kid == TL_K_KEY_ROTATED;
}

static int tracking_apply(tl_wtxn *w, const tl_event *ev, void *state) {
    tlp_ovl *o = state;
    noted *d = tlp_ovl_deferred_ctx(o);
    const char *k = ev->kind;
    int rc = tlp_ovl_bound(w, o);
    if (rc) return rc;
    bool defer = deferrable(ev);
    if (!defer && d->n && (rc = noted_run(w, o, d)) != 0) return rc;
    if (ev->kid == TL_K_USER_CREATED) return (rc = on_user(w, o, ev)) == 0 && d->n ? noted_run(w, o, d) : rc;
    if (!ev->has_project || !strncmp(k, "x.", 2)) return 0;
    tl_project_rec p;
    rc = tl_wstate_project(w, ev->project, &p);
    if (rc) return rc == TL_ENOTFOUND ? 0 : rc;
    tlp_users l = {0};
    int cls = tlp_event_class(&p, ev->seq);
    /* every history entry moves the groups' versions; activity also their last_activity */
    if (cls >= 0) rc = defer ? note_groups(d, cls, ev->project, &p) : groups_refresh(w, o, cls, ev->project, &p);
    if (rc) return rc;
    /* every history entry moves its viewers' versions (their B values); activity also
     * their last_activity */
    if (cls >= 0) {
        rc = tlp_class_viewers(w, &p, cls, &l);
    } else if (ev->kid == TL_K_MESSAGE_READ || ev->kid == TL_K_MESSAGE_UNREAD) {
        tl_user_rec u;
        rc = tl_wstate_user(w, ev->actor, &u);
        if (!rc) rc = tlp_users_add(&l, ev->actor, u.role);
        else if (rc == TL_ENOTFOUND) rc = 0;
    } else if (ev->kid == TL_K_MESSAGE_DELETED) {
        char id[TL_IDBUF];
        tl_message_rec m;
        tlp_ev_cstr(ev, "message", id, sizeof id);
        rc = tl_wstate_message(w, id, &m);
        if (!rc) rc = tlp_audience(w, &p, p.account, m.channel, &l);
    }
    if (!rc) rc = defer ? note_rows(d, &l, ev->project) : refresh_all(w, o, &l, ev->project, &p);
    tlp_users_free(&l);
    /* an event applied at once: the groups its rows noted (refresh) are refreshed now too */
    if (!rc && (d->n >= NOTED_MAX || (!defer && d->n))) rc = noted_run(w, o, d);
    return rc;
}

int tlp_tracking_register(tl_log *log) {
    noted *d = calloc(1, sizeof *d);
    if (!d) return tl_fail(TL_ENOMEM, "out of memory");
    int rc = tlp_register_buffered(log, "tracking", tracking_apply);
    if (rc) {
        free(d);
        return rc;
    }
    tlp_ovl_deferred hooks = {noted_run, noted_clear, noted_release, d};
    tlp_ovl_set_deferred(tlp_ovl_of(log, "tracking"), &hooks);
    return 0;
}
