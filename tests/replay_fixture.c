/*
 * replay_fixture.c — see replay_fixture.h.
 */
#include "replay_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ a seeded command stream */

static uint64_t rnd(gen *g) {
    /* xorshift64*: small, fast, and the same sequence everywhere */
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 2685821657736338717ull;
}
unsigned pick(gen *g, unsigned n) { return n ? (unsigned)(rnd(g) % n) : 0; }

uint64_t test_seed(void) {
    const char *s = getenv("TL_TEST_SEED");
    return s && *s ? strtoull(s, NULL, 10) : 20250301ull;
}

/* users[0..5] members (accounts 0 0 1 1 2 2), 6..7 staff, 8..10 ambassadors, 11 auditor */
static const char *const users[] = {"al", "bo", "cy", "di", "ed", "fe", "st1", "st2", "am1", "am2", "am3", "aud"};
#define U_STAFF 6
#define U_AMB 8
#define U_AUDITOR 11

/* The cast: accounts, users, in a fixed order. */
static int setup_lines(char out[][512], int max) {
    int n = 0;
    for (int a = 0; a < 3 && n < max; a++)
        snprintf(out[n++], 512, "{\"op\":\"account.create\",\"id\":\"a%d\",\"name\":\"Account %d\"}", a, a);
    for (int i = 0; i < 6; i++)
        snprintf(out[n++], 512, "{\"op\":\"user.create\",\"id\":\"%s\",\"role\":\"member\",\"account\":\"a%d\",\"name\":\"M %s\"}",
                 users[i], i / 2, users[i]);
    for (int i = U_STAFF; i < U_AMB; i++)
        snprintf(out[n++], 512, "{\"op\":\"user.create\",\"id\":\"%s\",\"role\":\"staff\",\"name\":\"S\"}", users[i]);
    for (int i = U_AMB; i < U_AUDITOR; i++)
        snprintf(out[n++], 512, "{\"op\":\"user.create\",\"id\":\"%s\",\"role\":\"ambassador\",\"name\":\"A\"}", users[i]);
    snprintf(out[n++], 512, "{\"op\":\"user.create\",\"id\":\"aud\",\"role\":\"auditor\",\"name\":\"Auditor\"}");
    return n;
}

/* Mostly someone in the audience of (account, channel, ambassador), now and then anyone:
 * the rules then refuse, as they would real traffic. */
static unsigned actor_for(gen *g, unsigned account, unsigned channel, unsigned amb) {
    unsigned r = pick(g, 20);
    if (r == 0) return pick(g, 12);
    if (channel == 2 && r < 6) return U_STAFF + pick(g, 2);
    if (channel == 4 && r < 5) return U_STAFF + pick(g, 2);
    if (channel == 3 && amb && r < 8) return amb - 1;
    return account * 2 + pick(g, 2);
}

static void remember(gen *g, const char *line) {
    if (g->nlines < 64) snprintf(g->lines[g->nlines++], 512, "%s", line);
    else snprintf(g->lines[pick(g, 64)], 512, "%s", line);
}

/* One random command line (JSON). */
void next_line(gen *g, char *line, size_t cap) {
    static const char *const types[] = {"application", "order", "video"};
    static const char *const statuses[] = {"pending", "accepted", "shipped", "delivered"};
    unsigned r = pick(g, 100);
    g->n++;
    if (r < 2 && g->nlines) { /* a client retry of an earlier creating command */
        snprintf(line, cap, "%s", g->lines[pick(g, g->nlines)]);
        return;
    }
    if (r < 3) { snprintf(line, cap, "{\"op\":\"message.send\",\"as\":\"al\",\"body\":\"\"}"); return; } /* invalid */
    unsigned pi = g->projects ? g->projects - 1 - pick(g, g->projects < 40 ? g->projects : 40) : 0;
    unsigned pa = g->p_account[pi % GEN_MAX], pamb = g->p_amb[pi % GEN_MAX];
    unsigned mi = g->messages ? g->messages - 1 - pick(g, g->messages < 200 ? g->messages : 200) : 0;
    gen_msg *m = &g->m[mi % GEN_MAX];
    if ((r < 8 || g->projects < 3) && g->projects < GEN_MAX) {
        unsigned type = pick(g, 3), acct = pick(g, 3), amb = U_AMB + pick(g, 3);
        char extra[200] = "";
        unsigned creator = acct * 2 + pick(g, 2);
        g->p_amb[g->projects] = 0;
        if (pick(g, 2)) {
            g->p_amb[g->projects] = (uint8_t)(amb + 1);
            if (type == 1 && pick(g, 2)) {
                snprintf(extra, sizeof extra, ",\"ambassador\":\"%s\",\"ambassador_message\":\"hello %u\",\"ambassador_message_id\":\"m%u\"",
                         users[amb], g->n, g->messages);
                g->m[g->messages % GEN_MAX] = (gen_msg){(uint16_t)(g->projects + 1), (uint8_t)acct, 3, (uint8_t)amb};
                g->messages++;
                if (pick(g, 3) == 0) creator = amb;
            } else {
                snprintf(extra, sizeof extra, ",\"ambassador\":\"%s\"", users[amb]);
            }
        }
        if (pick(g, 20) == 0) creator = pick(g, 12);
        g->p_account[g->projects] = (uint8_t)acct;
        snprintf(line, cap,
                 "{\"op\":\"project.create\",\"as\":\"%s\",\"id\":\"p%u\",\"account\":\"a%u\",\"type\":\"%s\",\"title\":\"Project %u\"%s}",
                 users[creator], g->projects, acct, types[type], g->projects, extra);
        g->projects++;
    } else if (r < 12) {
        snprintf(line, cap, "{\"op\":\"project.status\",\"as\":\"%s\",\"project\":\"p%u\",\"status\":\"%s\"}",
                 users[actor_for(g, pa, 2, pamb)], pi, statuses[pick(g, 4)]);
        return;
    } else if (r < 19 && g->topics < GEN_MAX) {
        snprintf(line, cap,
                 "{\"op\":\"topic.create\",\"as\":\"%s\",\"id\":\"t%u\",\"project\":\"p%u\",\"title\":\"Topic %u\",\"body\":\"first of t%u\",\"message_id\":\"m%u\"}",
                 users[actor_for(g, pa, 2, pamb)], g->topics, pi, g->topics, g->topics, g->messages);
        g->t_project[g->topics++] = (uint16_t)pi;
        g->m[g->messages % GEN_MAX] = (gen_msg){(uint16_t)(pi + 1), (uint8_t)pa, 2, 0};
        g->messages++;
    } else if (r < 40) {
        unsigned ch = 2 + pick(g, 3), author;
        if (ch == 2 && g->topics) {
            unsigned ti = g->topics - 1 - pick(g, g->topics < 30 ? g->topics : 30);
            pi = g->t_project[ti];
            pa = g->p_account[pi];
            author = actor_for(g, pa, 2, 0);
            snprintf(line, cap,
                     "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m%u\",\"project\":\"p%u\",\"channel\":\"chat\",\"topic\":\"t%u\",\"body\":\"chat %u \\\"quoted\\\", é\"}",
                     users[author], g->messages, pi, ti, g->messages);
        } else if (ch == 3) {
            author = actor_for(g, pa, 3, pamb);
            snprintf(line, cap,
                     "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m%u\",\"project\":\"p%u\",\"channel\":\"ambassador\",\"body\":\"amb %u\"}",
                     users[author], g->messages, pi, g->messages);
        } else {
            ch = 4;
            pa = pick(g, 3);
            pi = (unsigned)-1;
            author = actor_for(g, pa, 4, 0);
            snprintf(line, cap,
                     "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m%u\",\"account\":\"a%u\",\"channel\":\"support\",\"body\":\"help %u\"}",
                     users[author], g->messages, pa, g->messages);
        }
        g->m[g->messages % GEN_MAX] = (gen_msg){(uint16_t)(pi + 1), (uint8_t)pa, (uint8_t)ch, (uint8_t)author};
        g->messages++;
    } else if (r < 47) {
        unsigned author = actor_for(g, pa, 1, 0);
        snprintf(line, cap, "{\"op\":\"note.add\",\"as\":\"%s\",\"id\":\"m%u\",\"project\":\"p%u\",\"body\":\"note %u\"}",
                 users[author], g->messages, pi, g->messages);
        g->m[g->messages % GEN_MAX] = (gen_msg){(uint16_t)(pi + 1), (uint8_t)pa, 1, (uint8_t)author};
        g->messages++;
    } else if (r < 57) {
        unsigned author = actor_for(g, m->account, m->channel, m->project ? g->p_amb[m->project - 1] : 0);
        snprintf(line, cap, "{\"op\":\"message.reply\",\"as\":\"%s\",\"id\":\"m%u\",\"message\":\"m%u\",\"body\":\"re %u\"}",
                 users[author], g->messages, mi, g->messages);
        g->m[g->messages % GEN_MAX] = (gen_msg){m->project, m->account, m->channel, (uint8_t)author};
        g->messages++;
    } else if (r < 92) {
        static const char *const ops[] = {"message.read", "message.unread", "message.pin", "message.unpin", "message.delete"};
        unsigned op = r < 72 ? 0 : r < 76 ? 1 : r < 82 ? 2 : r < 86 ? 3 : 4;
        unsigned who = op == 4 && pick(g, 4) ? m->author
                                             : actor_for(g, m->account, m->channel, m->project ? g->p_amb[m->project - 1] : 0);
        snprintf(line, cap, "{\"op\":\"%s\",\"as\":\"%s\",\"message\":\"m%u\"}", ops[op], users[who], mi);
        return;
    } else if (r < 96 && g->uploads < GEN_MAX) {
        unsigned author = actor_for(g, pa, 2, pamb);
        snprintf(line, cap,
                 "{\"op\":\"attachment.upload\",\"as\":\"%s\",\"id\":\"f%u\",\"project\":\"p%u\",\"name\":\"f%u.txt\",\"data\":\"aGVsbG8gd29ybGQ=\"}",
                 users[author], g->uploads, pi, g->uploads);
        g->f_project[g->uploads] = (uint16_t)pi;
        g->f_author[g->uploads++] = (uint8_t)author;
    } else if (g->uploads && g->topics) {
        /* a chat message carrying a recent upload, by its uploader, in its project's topic */
        unsigned f = g->uploads - 1 - pick(g, g->uploads < 4 ? g->uploads : 4), ti = g->topics - 1;
        for (unsigned k = 0; k < 30 && k < g->topics; k++)
            if (g->t_project[g->topics - 1 - k] == g->f_project[f]) { ti = g->topics - 1 - k; break; }
        pi = g->t_project[ti];
        snprintf(line, cap,
                 "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m%u\",\"project\":\"p%u\",\"channel\":\"chat\",\"topic\":\"t%u\",\"body\":\"see file\",\"attachments\":[\"f%u\"]}",
                 users[g->f_author[f]], g->messages, pi, ti, f);
        g->m[g->messages % GEN_MAX] = (gen_msg){(uint16_t)(pi + 1), g->p_account[pi], 2, g->f_author[f]};
        g->messages++;
    } else {
        snprintf(line, cap, "{\"op\":\"message.read\",\"as\":\"aud\",\"message\":\"m0\"}");
        return;
    }
    remember(g, line);
}

/* Run lines through one batch; every command is answered, the commit succeeds. */
void run_batch(tl_log *log, char lines[][512], int n) {
    tl_batch *b;
    int rc = tl_batch_begin(log, &b);
    ck_assert_msg(rc == 0, "batch: %s", tl_errdetail());
    tl_cmd **cmds = calloc((size_t)n, sizeof *cmds);
    tl_result *res = calloc((size_t)n, sizeof *res);
    for (int i = 0; i < n; i++) {
        tl_result pr;
        if (tl_cmd_parse(&cmds[i], lines[i], strlen(lines[i]), &pr) != 0) continue;
        tl_batch_exec(b, cmds[i], &res[i]); /* provisional: a full map re-runs the batch at commit */
    }
    rc = tl_batch_commit(b);
    ck_assert_msg(rc == 0, "commit: %s %s", tl_strerror(rc), tl_errdetail());
    for (int i = 0; i < n; i++)
        ck_assert_msg(res[i].code != TL_ESTORAGE, "storage failure on %s: %s", lines[i], res[i].message);
    for (int i = 0; i < n; i++) tl_cmd_free(cmds[i]);
    free(cmds);
    free(res);
}

/* Append `count` random commands in batches of random sizes (1..300). */
void run_stream(tl_log *log, gen *g, unsigned count) {
    static char lines[300][512];
    while (count) {
        unsigned n = 1 + pick(g, 300);
        if (n > count) n = count;
        for (unsigned i = 0; i < n; i++) next_line(g, lines[i], sizeof lines[i]);
        run_batch(log, lines, (int)n);
        count -= n;
    }
}

void run_setup(tl_log *log) {
    char lines[32][512];
    int n = setup_lines(lines, 32);
    run_batch(log, lines, n);
}

/* ================================================================ observing a state */

uint64_t head_of(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

void digest_of(tl_log *log, char out[TL_PUBKEY_HEX_SIZE]) {
    int rc = tl_digest(log, out);
    ck_assert_msg(rc == 0, "digest: %s %s", tl_strerror(rc), tl_errdetail());
}

static void append_query(char **acc, size_t *len, const char *what, int rc, char *json) {
    char head[128];
    int n = snprintf(head, sizeof head, "\n%s rc=%d ", what, rc);
    size_t add = (size_t)n + (json ? strlen(json) : 0);
    *acc = realloc(*acc, *len + add + 1);
    memcpy(*acc + *len, head, (size_t)n);
    if (json) memcpy(*acc + *len + n, json, strlen(json));
    *len += add;
    (*acc)[*len] = 0;
    tl_free(json);
}

/* Everything a screen could show: the digest and the queries of every user (first pages of
 * a few projects). Two states that print the same are the same to every user. */
char *observe(tl_log *log, unsigned projects) {
    char *acc = NULL;
    size_t len = 0;
    char d[TL_PUBKEY_HEX_SIZE];
    digest_of(log, d);
    append_query(&acc, &len, "digest", 0, strdup(d));
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++) {
        tl_query q = TL_QUERY_INIT;
        q.as = users[u];
        char *json = NULL, what[160];
        int rc = tl_tracking_query(log, &q, &json);
        snprintf(what, sizeof what, "tracking %s", users[u]);
        append_query(&acc, &len, what, rc, json);
        q.sort = "unread";
        json = NULL;
        rc = tl_tracking_query(log, &q, &json);
        append_query(&acc, &len, "tracking unread-first", rc, json);
        q.sort = NULL;
        json = NULL;
        rc = tl_dashboard_query(log, &q, &json);
        append_query(&acc, &len, "dashboard", rc, json);
        json = NULL;
        rc = tl_unread_query(log, &q, &json);
        append_query(&acc, &len, "unread", rc, json);
        for (unsigned p = 0; p < projects && p < 6; p++) {
            char pid[16];
            snprintf(pid, sizeof pid, "p%u", p);
            q.project = pid;
            json = NULL;
            rc = tl_history_query(log, &q, &json);
            snprintf(what, sizeof what, "history %s %s", users[u], pid);
            append_query(&acc, &len, what, rc, json);
            q.channel = "chat";
            json = NULL;
            rc = tl_messages_query(log, &q, &json);
            append_query(&acc, &len, "messages chat", rc, json);
            q.channel = NULL;
            json = NULL;
            rc = tl_topics_query(log, &q, &json);
            append_query(&acc, &len, "topics", rc, json);
            q.project = NULL;
        }
    }
    return acc;
}

tl_log *open_ro(const char *dir) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log;
    int rc = tl_log_open(&log, dir, &o);
    ck_assert_msg(rc == 0, "open %s: %s %s", dir, tl_strerror(rc), tl_errdetail());
    return log;
}

char *sibling(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 8);
    sprintf(p, "%s.%s", dir, name);
    return p;
}

void replay_into(tl_log *log, const char *into, uint64_t until_seq, uint64_t until_ts, int verify,
                        tl_replay_report *r) {
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = until_seq;
    o.until_ts = until_ts;
    o.verify = verify;
    int rc = tl_replay(log, &o, r);
    ck_assert_msg(rc == 0, "replay into %s: %s %s", into, tl_strerror(rc), tl_errdetail());
}

void remove_all(tl_log *log, char *dir) {
    if (log) tl_log_close(log);
    char *base = strdup(dir);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    tu_rmdir(base); /* the log and its sibling copies live in one temp dir */
    free(base);
    free(dir);
}

/* ================================================================ small logs by hand */

void append_x(tl_log *log, int n) {
    static const uint8_t payload[] = {0x81, 0xa1, 'n', 0x01}; /* {"n":1} */
    for (int i = 0; i < n; i++) {
        tl_draft d = {"x.tick", "@operator", NULL, payload, sizeof payload};
        ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    }
}

/* Run command lines through one batch; each must be accepted. */
void run_ok(tl_log *log, const char *const *lines, int n) {
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(log, &b), 0);
    tl_cmd **cmds = calloc((size_t)n, sizeof *cmds);
    for (int i = 0; i < n; i++) {
        tl_result r;
        ck_assert_msg(tl_cmd_parse(&cmds[i], lines[i], strlen(lines[i]), &r) == 0, "parse %s: %s", lines[i], r.message);
        ck_assert_msg(tl_batch_exec(b, cmds[i], &r) == 0, "%s: %s", lines[i], r.message);
    }
    ck_assert_int_eq(tl_batch_commit(b), 0);
    for (int i = 0; i < n; i++) tl_cmd_free(cmds[i]);
    free(cmds);
}
