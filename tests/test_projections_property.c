/*
 * test_projections_property.c — a seeded random stream of thousands of commands (many of
 * them refused, as a real front end's would sometimes be), then every projection checked
 * against an independent model rebuilt from the raw log alone (tl_iter_*): every user's
 * unread counts (total, per type, per project channel), the whole tracking table in both
 * orders (an independent sort), each dashboard "See more" list, and every chat list. The
 * model shares no code with projections/: it reads the events and applies SPEC §1/§3.
 * Finally the live digest must equal the digest of an in-place replay.
 *
 * Seeds: PF_SEED=n runs one seed; by default three fixed seeds.
 */
#include "test_projections_fixture.h"

#include "codec.h"

#define MAXU 64
#define MAXP 256
#define MAXM 6000
#define MAXT 1024

/* ------------------------------------------------------------------ the model */

typedef struct { char id[65], account[65]; int role; } muser;
typedef struct { char id[65], account[65], amb[65]; int type; bool amb_channel; uint64_t la[4], ver[4]; } mproject;
typedef struct { char id[65], account[65], topic[65], author[65]; int project, channel; bool deleted, pinned; uint64_t seq, ts, pin_seq; } mmsg;

typedef struct model {
    muser u[MAXU];
    int nu;
    mproject p[MAXP];
    int np;
    mmsg m[MAXM];
    int nm;
    uint8_t read[MAXM][MAXU];
} model;

enum { R_MEMBER = 1, R_STAFF, R_AMB, R_AUDITOR };
enum { C_NOTES = 1, C_CHAT, C_AMB, C_SUPPORT };

static int find_user(model *md, const char *id) { for (int i = 0; i < md->nu; i++) if (!strcmp(md->u[i].id, id)) return i; return -1; }
static int find_project(model *md, const char *id) { for (int i = 0; i < md->np; i++) if (!strcmp(md->p[i].id, id)) return i; return -1; }
static int find_msg(model *md, const char *id) { for (int i = md->nm - 1; i >= 0; i--) if (!strcmp(md->m[i].id, id)) return i; return -1; }

static void pstr(const tl_event *ev, const char *key, char *out) {
    tl_bytes b;
    out[0] = 0;
    if (tl_ev_str(ev, key, &b) == 0 && b.len < 65) { memcpy(out, b.ptr, b.len); out[b.len] = 0; }
}

static int role_of(const char *s) {
    return !strcmp(s, "member") ? R_MEMBER : !strcmp(s, "staff") ? R_STAFF : !strcmp(s, "ambassador") ? R_AMB : R_AUDITOR;
}

static int channel_of(const char *s) {
    return !strcmp(s, "notes") ? C_NOTES : !strcmp(s, "chat") ? C_CHAT : !strcmp(s, "ambassador") ? C_AMB : C_SUPPORT;
}

/* may user u see class c (0 project level, else a channel) of project p? auditors included */
static bool sees(const model *md, int u, int p, int c) {
    const muser *x = &md->u[u];
    const mproject *y = &md->p[p];
    bool member = x->role == R_MEMBER && !strcmp(x->account, y->account);
    if (x->role == R_AUDITOR || member) return true;
    if (x->role == R_STAFF) return c == 0 || c == C_CHAT;
    if (x->role == R_AMB && !strcmp(y->amb, x->id)) return c == 0 || c == C_AMB;
    return false;
}

/* unread(U, m) straight from SPEC §3 */
static bool is_unread(const model *md, int u, int mi) {
    const mmsg *m = &md->m[mi];
    const muser *x = &md->u[u];
    if (x->role == R_AUDITOR || m->deleted || !strcmp(m->author, x->id) || md->read[mi][u]) return false;
    if (m->channel == C_SUPPORT) return (x->role == R_MEMBER && !strcmp(x->account, m->account)) || x->role == R_STAFF;
    return sees(md, u, m->project, m->channel);
}

static void add_message(model *md, const tl_event *ev, const char *id, int channel, const char *author, const char *topic) {
    ck_assert(md->nm < MAXM);
    mmsg *m = &md->m[md->nm++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->author, sizeof m->author, "%s", author);
    size_t tl = topic ? strnlen(topic, sizeof m->topic - 1) : 0;
    memmove(m->topic, topic ? topic : "", tl);
    m->topic[tl] = 0;
    m->channel = channel;
    m->seq = ev->seq;
    m->ts = ev->ts;
    m->project = ev->has_project ? find_project(md, ev->project) : -1;
    if (m->project >= 0) memcpy(m->account, md->p[m->project].account, sizeof m->account);
    else pstr(ev, "account", m->account);
}

/* an entry of class c at this event; activity moves last_activity too */
static void entry(model *md, const tl_event *ev, int c, bool activity) {
    int p = find_project(md, ev->project);
    ck_assert(p >= 0);
    md->p[p].ver[c] = ev->seq;
    if (activity) md->p[p].la[c] = ev->ts;
}

static void model_event(model *md, const tl_event *ev) {
    const char *k = ev->kind;
    char id[65], s[65], t[65];
    if (!strcmp(k, "user.created")) {
        muser *u = &md->u[md->nu++];
        pstr(ev, "id", u->id);
        pstr(ev, "role", s);
        u->role = role_of(s);
        pstr(ev, "account", u->account);
    } else if (!strcmp(k, "project.created")) {
        mproject *p = &md->p[md->np++];
        memset(p, 0, sizeof *p);
        snprintf(p->id, sizeof p->id, "%s", ev->project);
        pstr(ev, "account", p->account);
        pstr(ev, "ambassador", p->amb);
        pstr(ev, "type", s);
        p->type = !strcmp(s, "application") ? 1 : !strcmp(s, "order") ? 2 : 3;
        pstr(ev, "ambassador_message_id", id);
        p->amb_channel = id[0] != 0;
        if (id[0]) add_message(md, ev, id, C_AMB, p->amb, NULL);
        entry(md, ev, 0, true);
    } else if (!strcmp(k, "project.status_changed")) {
        entry(md, ev, 0, true);
    } else if (!strcmp(k, "topic.created")) {
        pstr(ev, "id", t);
        pstr(ev, "message_id", id);
        add_message(md, ev, id, C_CHAT, ev->actor, t);
        entry(md, ev, C_CHAT, true);
    } else if (!strcmp(k, "message.sent") || !strcmp(k, "note.added") || !strcmp(k, "message.replied")) {
        pstr(ev, "id", id);
        int ch = C_NOTES;
        t[0] = 0;
        if (!strcmp(k, "message.replied")) { /* replies stay in their parent's channel and topic */
            pstr(ev, "parent", s);
            int parent = find_msg(md, s);
            ck_assert(parent >= 0);
            ch = md->m[parent].channel;
            snprintf(t, sizeof t, "%s", md->m[parent].topic);
        } else if (!strcmp(k, "message.sent")) {
            pstr(ev, "channel", s);
            ch = channel_of(s);
            pstr(ev, "topic", t);
        }
        add_message(md, ev, id, ch, ev->actor, t);
        if (ev->has_project) entry(md, ev, ch, true);
    } else if (!strncmp(k, "message.", 8)) {
        pstr(ev, "message", id);
        int mi = find_msg(md, id), u = find_user(md, ev->actor);
        ck_assert(mi >= 0 && u >= 0);
        mmsg *m = &md->m[mi];
        if (!strcmp(k, "message.read")) md->read[mi][u] = 1;
        else if (!strcmp(k, "message.unread")) md->read[mi][u] = 0;
        else {
            if (!strcmp(k, "message.pinned")) { m->pinned = true; m->pin_seq = ev->seq; }
            else if (!strcmp(k, "message.unpinned")) m->pinned = false;
            else if (!strcmp(k, "message.deleted")) { m->deleted = true; m->pinned = false; }
            if (m->project >= 0) entry(md, ev, m->channel, false);
        }
    }
}

static void model_build(model *md, tl_log *log) {
    memset(md, 0, sizeof *md);
    tl_iter *it;
    ck_assert_int_eq(tl_iter_open(log, 1, &it), 0);
    tl_event_view v;
    int rc;
    while ((rc = tl_iter_next(it, &v)) == 0) {
        tl_event ev;
        ck_assert_int_eq(tl_event_decode(&ev, v.bytes, v.len), 0);
        model_event(md, &ev);
    }
    ck_assert_int_eq(rc, TL_ENOTFOUND);
    tl_iter_close(it);
}

/* ------------------------------------------------------------------ checks */

typedef struct trow { int p; uint64_t unread, la, ver; } trow;

static const model *sort_model; /* the model the comparators read project ids from */

static int by_id(const trow *x, const trow *y) { return strcmp(sort_model->p[x->p].id, sort_model->p[y->p].id); }
static int cmp_act(const void *a, const void *b) {
    const trow *x = a, *y = b;
    if (x->la != y->la) return x->la > y->la ? -1 : 1;
    return by_id(x, y);
}
static int cmp_unread(const void *a, const void *b) {
    const trow *x = a, *y = b;
    if (x->unread != y->unread) return x->unread > y->unread ? -1 : 1;
    return cmp_act(a, b);
}

/* Read the whole tracking table with pages of `limit` and compare with rows, in order. */
static void check_table(tl_log *log, const model *md, int u, const char *sort, trow *rows, int n, unsigned limit) {
    char cursor[512] = "";
    int at = 0;
    for (int pages = 0; pages < 1000; pages++) {
        tl_query q = pf_q(md->u[u].id);
        q.sort = sort;
        q.limit = limit;
        q.cursor = cursor[0] ? cursor : NULL;
        json_t *r = pf_query(log, tl_tracking_query, &q), *row;
        size_t i;
        json_array_foreach(json_object_get(r, "rows"), i, row) {
            ck_assert_msg(at < n, "%s: more rows than the model (%d)", md->u[u].id, n);
            const trow *e = &rows[at++];
            ck_assert_msg(!strcmp(pf_str(row, "project"), md->p[e->p].id), "%s %s row %d: %s, model %s", md->u[u].id,
                          sort, at - 1, pf_str(row, "project"), md->p[e->p].id);
            ck_assert_int_eq(pf_int(row, "unread"), (long long)e->unread);
            ck_assert_int_eq(pf_int(row, "last_activity"), (long long)e->la);
            ck_assert_int_eq(pf_int(row, "version"), (long long)e->ver);
        }
        const char *next = pf_str(r, "next");
        if (next) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(r);
        if (!next) break;
    }
    ck_assert_msg(at == n, "%s: %d rows, model %d", md->u[u].id, at, n);
}

static void check_user(tl_log *log, const model *md, int u, unsigned limit) {
    static trow rows[MAXP];
    uint64_t bucket[5] = {0}, total = 0, per[MAXP][4];
    memset(per, 0, sizeof per);
    for (int mi = 0; mi < md->nm; mi++) {
        if (!is_unread(md, u, mi)) continue;
        const mmsg *m = &md->m[mi];
        int b = m->project < 0 ? 4 : md->p[m->project].type;
        bucket[b]++;
        total++;
        if (m->project >= 0) per[m->project][m->channel]++;
    }
    tl_query q = pf_q(md->u[u].id);
    json_t *r = pf_query(log, tl_unread_query, &q);
    ck_assert_msg(pf_int(r, "total") == (long long)total, "%s: total %lld, model %llu", md->u[u].id, pf_int(r, "total"),
                  (unsigned long long)total);
    const char *names[] = {NULL, "application", "order", "video", "support"};
    for (int b = 1; b <= 4; b++) ck_assert_int_eq(pf_int(json_object_get(r, "by_type"), names[b]), (long long)bucket[b]);
    json_decref(r);

    int n = 0;
    for (int p = 0; p < md->np; p++) {
        if (!sees(md, u, p, 0)) continue;
        trow *t = &rows[n++];
        memset(t, 0, sizeof *t);
        t->p = p;
        for (int c = 0; c < 4; c++) {
            if (!sees(md, u, p, c)) continue;
            if (md->p[p].la[c] > t->la) t->la = md->p[p].la[c];
            if (md->p[p].ver[c] > t->ver) t->ver = md->p[p].ver[c];
            if (c) t->unread += per[p][c];
        }
        /* unread per channel of this project, with the channels left out as the spec says */
        q = pf_q(md->u[u].id);
        q.project = md->p[p].id;
        r = pf_query(log, tl_unread_query, &q);
        json_t *by = json_object_get(r, "by_channel");
        const char *chn[] = {NULL, "notes", "chat", "ambassador"};
        for (int c = 1; c <= 3; c++) {
            bool shown = md->u[u].role != R_AMB || c == C_AMB;
            shown = shown && sees(md, u, p, c) && (c != C_AMB || md->p[p].amb_channel);
            json_t *v = json_object_get(by, chn[c]);
            ck_assert_msg(shown == (v != NULL), "%s %s: channel %s shown %d", md->u[u].id, md->p[p].id, chn[c], v != NULL);
            if (v) ck_assert_int_eq(json_integer_value(v), (long long)per[p][c]);
        }
        json_decref(r);
    }
    sort_model = md;
    qsort(rows, (size_t)n, sizeof rows[0], cmp_act);
    check_table(log, md, u, NULL, rows, n, limit);
    qsort(rows, (size_t)n, sizeof rows[0], cmp_unread);
    check_table(log, md, u, "unread", rows, n, limit);

    /* dashboard "See more": the unread messages of each type, newest first */
    for (int type = 1; type <= 3; type++) {
        char cursor[64] = "";
        int mi = md->nm - 1, shown = 0;
        for (int pages = 0; pages < 1000; pages++) {
            tl_query d = pf_q(md->u[u].id);
            d.more = 1;
            d.type = names[type];
            d.limit = limit;
            d.cursor = cursor[0] ? cursor : NULL;
            r = pf_query(log, tl_dashboard_query, &d);
            ck_assert_int_eq(pf_int(r, "unread"), (long long)bucket[type]);
            json_t *m;
            size_t i;
            json_array_foreach(json_object_get(r, "messages"), i, m) {
                while (mi >= 0 && !(is_unread(md, u, mi) && md->m[mi].project >= 0 && md->p[md->m[mi].project].type == type)) mi--;
                ck_assert_msg(mi >= 0, "dashboard lists more than the model");
                ck_assert_str_eq(pf_str(m, "id"), md->m[mi].id);
                mi--;
                shown++;
            }
            const char *next = pf_str(r, "next");
            if (next) snprintf(cursor, sizeof cursor, "%s", next);
            json_decref(r);
            if (!next) break;
        }
        ck_assert_int_eq(shown, (long long)bucket[type]);
    }
}

/* A chat list as user u sees it: pinned (newest pin first), then the rest oldest first. */
static void check_chat(tl_log *log, const model *md, int u, int p, unsigned limit) {
    static int order[MAXM];
    int n = 0;
    bool auditor = md->u[u].role == R_AUDITOR;
    for (int pass = 0; pass < 2; pass++) {
        int start = n;
        for (int mi = 0; mi < md->nm; mi++) {
            const mmsg *m = &md->m[mi];
            if (m->project != p || m->channel != C_CHAT || (m->deleted && !auditor)) continue;
            if ((pass == 0) == m->pinned) order[n++] = mi;
        }
        if (pass == 0) /* most recently pinned first */
            for (int i = start; i < n; i++)
                for (int j = i + 1; j < n; j++)
                    if (md->m[order[j]].pin_seq > md->m[order[i]].pin_seq) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    }
    char cursor[64] = "";
    int at = 0;
    for (int pages = 0; pages < 1000; pages++) {
        tl_query q = pf_q(md->u[u].id);
        q.project = md->p[p].id;
        q.channel = "chat";
        q.limit = limit;
        q.cursor = cursor[0] ? cursor : NULL;
        json_t *r = pf_query(log, tl_messages_query, &q), *m;
        size_t i;
        json_array_foreach(json_object_get(r, "messages"), i, m) {
            ck_assert_msg(at < n, "chat of %s lists more than the model", md->p[p].id);
            ck_assert_str_eq(pf_str(m, "id"), md->m[order[at]].id);
            ck_assert(json_is_true(json_object_get(m, "unread")) == is_unread(md, u, order[at]));
            at++;
        }
        const char *next = pf_str(r, "next");
        if (next) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(r);
        if (!next) break;
    }
    ck_assert_int_eq(at, n);
}

/* ------------------------------------------------------------------ the stream */

static uint64_t rng;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static int pick(int n) { return n > 0 ? (int)(next_rand() % (uint64_t)n) : 0; }

static const char *rand_user(const model *md) { return md->u[pick(md->nu)].id; }

/* a user likely to be allowed in project p's channel c (sometimes anyone: refusals too) */
static const char *actor_for(const model *md, int p, int c) {
    for (int tries = 0; tries < 8 && pick(10) < 9; tries++) {
        int u = pick(md->nu);
        if (md->u[u].role != R_AUDITOR && sees(md, u, p, c)) return md->u[u].id;
    }
    return rand_user(md);
}

static void gen_command(const model *md, int *ids, char *line, size_t cap) {
    static const char *const types[] = {"application", "order", "video"};
    static const char *const accounts[] = {"acme", "beta", "gamma"};
    int id = ++*ids;
    int roll = pick(100);
    int p = md->np ? pick(md->np) : -1;
    int mi = md->nm ? md->nm - 1 - pick(md->nm < 60 ? md->nm : 60) : -1; /* recent messages mostly */
    if (mi >= 0 && pick(4) == 0) mi = pick(md->nm);
    const mmsg *m = mi >= 0 ? &md->m[mi] : NULL;
    if (p < 0 || roll < 3) {
        const char *acct = accounts[pick(3)], *amb = pick(3) ? md->u[6 + pick(3)].id : NULL;
        int type = pick(3);
        char creator[65];
        snprintf(creator, sizeof creator, "%s", amb && pick(3) == 0 ? amb : rand_user(md));
        snprintf(line, cap, "{\"op\":\"project.create\",\"as\":\"%s\",\"id\":\"p-%d\",\"account\":\"%s\",\"type\":\"%s\",\"title\":\"P %d\"%s%s%s%s}",
                 creator, id, acct, types[type], id, amb ? ",\"ambassador\":\"" : "", amb ? amb : "", amb ? "\"" : "",
                 amb && type == 1 && pick(2) ? ",\"ambassador_message\":\"hello\"" : "");
    } else if (roll < 10) {
        snprintf(line, cap, "{\"op\":\"project.status\",\"as\":\"%s\",\"project\":\"%s\",\"status\":\"s%d\"}",
                 actor_for(md, p, 0), md->p[p].id, pick(4));
    } else if (roll < 18) {
        snprintf(line, cap, "{\"op\":\"topic.create\",\"as\":\"%s\",\"id\":\"t-%d\",\"project\":\"%s\",\"title\":\"T\",\"body\":\"b\",\"message_id\":\"m-%d\"}",
                 actor_for(md, p, C_CHAT), id, md->p[p].id, id);
    } else if (roll < 32) {
        /* chat in an existing topic of p (the topic ids are those of topic messages) */
        const char *topic = NULL;
        for (int k = md->nm - 1; k >= 0 && !topic; k--)
            if (md->m[k].project == p && md->m[k].channel == C_CHAT && pick(3) == 0) topic = md->m[k].topic;
        if (!topic) topic = "t-0";
        snprintf(line, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m-%d\",\"project\":\"%s\",\"channel\":\"chat\",\"topic\":\"%s\",\"body\":\"c\"}",
                 actor_for(md, p, C_CHAT), id, md->p[p].id, topic);
    } else if (roll < 37) {
        snprintf(line, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m-%d\",\"project\":\"%s\",\"channel\":\"ambassador\",\"body\":\"a\"}",
                 actor_for(md, p, C_AMB), id, md->p[p].id);
    } else if (roll < 42) {
        snprintf(line, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m-%d\",\"account\":\"%s\",\"channel\":\"support\",\"body\":\"s\"}",
                 rand_user(md), id, accounts[pick(3)]);
    } else if (roll < 50) {
        snprintf(line, cap, "{\"op\":\"note.add\",\"as\":\"%s\",\"id\":\"m-%d\",\"project\":\"%s\",\"body\":\"n\"}",
                 actor_for(md, p, C_NOTES), id, md->p[p].id);
    } else if (!m) {
        snprintf(line, cap, "{\"op\":\"project.status\",\"as\":\"%s\",\"project\":\"%s\",\"status\":\"x\"}", rand_user(md), md->p[p].id);
    } else {
        const char *who = m->project >= 0 ? actor_for(md, m->project, m->channel) : rand_user(md);
        const char *op = roll < 57 ? "message.reply" : roll < 78 ? "message.read" : roll < 84 ? "message.unread"
                       : roll < 89 ? "message.pin" : roll < 92 ? "message.unpin" : roll < 98 ? "message.delete" : NULL;
        if (op && !strcmp(op, "message.delete") && pick(2)) who = m->author;
        if (!op && (md->nu >= 40 || pick(3))) op = "message.read"; /* late users: a few, not many */
        if (!op) {
            static const char *const roles[] = {"member", "staff"};
            int r = pick(2);
            snprintf(line, cap, "{\"op\":\"user.create\",\"id\":\"late-%d\",\"role\":\"%s\",\"name\":\"L\"%s%s%s}", id, roles[r],
                     r == 0 ? ",\"account\":\"" : "", r == 0 ? accounts[pick(3)] : "", r == 0 ? "\"" : "");
        } else if (!strcmp(op, "message.reply")) {
            snprintf(line, cap, "{\"op\":\"message.reply\",\"as\":\"%s\",\"id\":\"m-%d\",\"message\":\"%s\",\"body\":\"r\"}", who, id, m->id);
        } else {
            snprintf(line, cap, "{\"op\":\"%s\",\"as\":\"%s\",\"message\":\"%s\"}", op, who, m->id);
        }
    }
}

static void check_all(tl_log *log, model *md) {
    model_build(md, log);
    unsigned limit = 1 + (unsigned)pick(7);
    for (int u = 0; u < md->nu; u++) check_user(log, md, u, limit);
    for (int k = 0; k < 6 && md->np; k++) {
        int p = pick(md->np);
        for (int u = 0; u < md->nu; u++)
            if (sees(md, u, p, C_CHAT)) check_chat(log, md, u, p, 1 + (unsigned)pick(5));
    }
}

static void run_seed(uint64_t seed, int commands) {
    rng = seed * 2654435761u + 88172645463325252ull;
    char *base = tu_tmpdir(), dir[4200], pk[TL_PUBKEY_HEX_SIZE];
    snprintf(dir, sizeof dir, "%s/log", base);
    ck_assert_int_eq(tl_log_init(dir, NULL, pk), 0);
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    oo.flags = TL_OPEN_NOSYNC;
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    static const char *const cast[] = {
        "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"A\"}", "{\"op\":\"account.create\",\"id\":\"beta\",\"name\":\"B\"}",
        "{\"op\":\"account.create\",\"id\":\"gamma\",\"name\":\"G\"}",
        "{\"op\":\"user.create\",\"id\":\"a1\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"a2\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"b1\",\"role\":\"member\",\"account\":\"beta\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"g1\",\"role\":\"member\",\"account\":\"gamma\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"s1\",\"role\":\"staff\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"s2\",\"role\":\"staff\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"z1\",\"role\":\"ambassador\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"z2\",\"role\":\"ambassador\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"z3\",\"role\":\"ambassador\",\"name\":\"x\"}",
        "{\"op\":\"user.create\",\"id\":\"x1\",\"role\":\"auditor\",\"name\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof cast / sizeof cast[0]; i++) PF_OK(log, "%s", cast[i]);
    static model md;
    model_build(&md, log);
    ck_assert_int_eq(md.nu, 10); /* z1..z3 at indexes 6..8, as gen_command assumes */
    int ids = 0, ok = 0;
    for (int done = 0; done < commands;) {
        tl_batch *b;
        ck_assert_int_eq(tl_batch_begin(log, &b), 0);
        static tl_cmd *cmds[50];
        static tl_result res[50];
        int n = 0;
        for (; n < 50 && done < commands; n++, done++) {
            char line[1024];
            gen_command(&md, &ids, line, sizeof line);
            tl_result pr;
            ck_assert_msg(tl_cmd_parse(&cmds[n], line, strlen(line), &pr) == 0, "generator wrote a bad line: %s", line);
            tl_batch_exec(b, cmds[n], &res[n]);
        }
        ck_assert_int_eq(tl_batch_commit(b), 0);
        for (int i = 0; i < n; i++) { ok += res[i].code == 0; tl_cmd_free(cmds[i]); }
        model_build(&md, log); /* the generator draws from what really happened */
        if (done % 500 == 0 || done == commands) check_all(log, &md);
    }
    ck_assert_msg(ok > commands / 3, "too few commands succeeded (%d of %d): the stream tests little", ok, commands);
    if (getenv("PF_VERBOSE")) {
        int del = 0, pin = 0, reads = 0;
        for (int i = 0; i < md.nm; i++) {
            del += md.m[i].deleted;
            pin += md.m[i].pinned;
            for (int u = 0; u < md.nu; u++) reads += md.read[i][u];
        }
        fprintf(stderr, "seed %llu: %d of %d commands ok; %d users, %d projects, %d messages (%d deleted, %d pinned), %d read marks\n",
                (unsigned long long)seed, ok, commands, md.nu, md.np, md.nm, del, pin, reads);
    }
    /* the live projections equal a replay of the log */
    char live[TL_PUBKEY_HEX_SIZE], again[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_digest(log, live), 0);
    tl_replay_report rep;
    ck_assert_msg(tl_replay(log, NULL, &rep) == 0, "replay: %s", tl_errdetail());
    ck_assert_int_eq(tl_digest(log, again), 0);
    ck_assert_str_eq(rep.digest, live);
    ck_assert_str_eq(again, live);
    check_all(log, &md);
    tl_log_close(log);
    tu_rmdir(base);
    free(base);
}

START_TEST(random_streams_match_the_model) {
    const char *env = getenv("PF_SEED");
    if (env) {
        run_seed(strtoull(env, NULL, 10), 3000);
        return;
    }
    static const uint64_t seeds[] = {1, 42, 20260101};
    run_seed(seeds[_i], 2000);
}
END_TEST

int main(void) {
    Suite *s = suite_create("projections_property");
    TCase *tc = tcase_create("property");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, random_streams_match_the_model, 0, getenv("PF_SEED") ? 1 : 3);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
