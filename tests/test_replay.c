/*
 * test_replay.c — replay: the state rebuilt from the log alone equals the live one (digest
 * and queries), as of a past sequence or time in a separate copy, while another process
 * appends; verification while replaying; tampering detected after a checkpoint; and a
 * `log --follow` process seeing events appended by another process.
 *
 * The command stream is random but seeded (TL_TEST_SEED overrides the seed, printed on
 * failure) and goes through the public command API (tl_cmd_parse, tl_batch_*), so the live
 * state is whatever the rules and appliers made of it, refusals included.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* ================================================================ a seeded command stream */

#define GEN_MAX 8192 /* projects, topics, messages and uploads remembered for targeting */

typedef struct gen_msg {
    uint16_t project; /* index + 1; 0 for support */
    uint8_t account, channel; /* channel: 1 notes, 2 chat, 3 ambassador, 4 support */
    uint8_t author;   /* index into users[] */
} gen_msg;

typedef struct gen {
    uint64_t s;
    unsigned projects, topics, messages, uploads;
    unsigned n; /* commands produced */
    uint8_t p_account[GEN_MAX], p_amb[GEN_MAX]; /* p_amb: ambassador index + 1, 0 none */
    uint16_t t_project[GEN_MAX];
    gen_msg m[GEN_MAX];
    uint16_t f_project[GEN_MAX];
    uint8_t f_author[GEN_MAX];
    char lines[64][512]; /* creating lines, replayed now and then as client retries */
    unsigned nlines;
} gen;

static uint64_t rnd(gen *g) {
    /* xorshift64*: small, fast, and the same sequence everywhere */
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 2685821657736338717ull;
}
static unsigned pick(gen *g, unsigned n) { return n ? (unsigned)(rnd(g) % n) : 0; }

static uint64_t test_seed(void) {
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
static void next_line(gen *g, char *line, size_t cap) {
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
static void run_batch(tl_log *log, char lines[][512], int n) {
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
static void run_stream(tl_log *log, gen *g, unsigned count) {
    static char lines[300][512];
    while (count) {
        unsigned n = 1 + pick(g, 300);
        if (n > count) n = count;
        for (unsigned i = 0; i < n; i++) next_line(g, lines[i], sizeof lines[i]);
        run_batch(log, lines, (int)n);
        count -= n;
    }
}

static void run_setup(tl_log *log) {
    char lines[32][512];
    int n = setup_lines(lines, 32);
    run_batch(log, lines, n);
}

/* ================================================================ observing a state */

static uint64_t head_of(tl_log *log) {
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    return st.events;
}

static void digest_of(tl_log *log, char out[TL_PUBKEY_HEX_SIZE]) {
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
static char *observe(tl_log *log, unsigned projects) {
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

static tl_log *open_ro(const char *dir) {
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log;
    int rc = tl_log_open(&log, dir, &o);
    ck_assert_msg(rc == 0, "open %s: %s %s", dir, tl_strerror(rc), tl_errdetail());
    return log;
}

static char *sibling(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 8);
    sprintf(p, "%s.%s", dir, name);
    return p;
}

static void replay_into(tl_log *log, const char *into, uint64_t until_seq, uint64_t until_ts, int verify,
                        tl_replay_report *r) {
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = until_seq;
    o.until_ts = until_ts;
    o.verify = verify;
    int rc = tl_replay(log, &o, r);
    ck_assert_msg(rc == 0, "replay into %s: %s %s", into, tl_strerror(rc), tl_errdetail());
}

static void remove_all(tl_log *log, char *dir) {
    if (log) tl_log_close(log);
    char *base = strdup(dir);
    char *slash = strrchr(base, '/');
    if (slash) *slash = 0;
    tu_rmdir(base); /* the log and its sibling copies live in one temp dir */
    free(base);
    free(dir);
}

/* ================================================================ replay == live */

START_TEST(replay_digest_equals_live) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed()};
    run_setup(log);
    run_stream(log, &g, 5000);
    /* operator actions between the commands: erasures and a key rotation */
    for (unsigned i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, i % 4 ? "m%u" : "f%u", pick(&g, i % 4 ? g.messages : g.uploads + 1));
        tl_result res;
        tl_erase(log, id, "erasure request", &res);
    }
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_rotate_key(log, pk), 0);
    run_stream(log, &g, 5000);
    ck_assert_uint_gt(head_of(log), 3000); /* the stream is not all refusals */
    fprintf(stderr, "replay_digest_equals_live: seed %llu, 10,000 commands -> %llu events\n",
            (unsigned long long)test_seed(), (unsigned long long)head_of(log));

    char *live = observe(log, g.projects);
    char live_digest[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live_digest);

    /* in place, without and with verification */
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, NULL, &r) == 0, "replay: %s", tl_errdetail());
    ck_assert_uint_eq(r.events, head_of(log));
    ck_assert_msg(strcmp(r.digest, live_digest) == 0, "seed %llu: replay digest %s, live %s",
                  (unsigned long long)test_seed(), r.digest, live_digest);
    char *after = observe(log, g.projects);
    ck_assert_msg(strcmp(after, live) == 0, "seed %llu: queries differ after replay", (unsigned long long)test_seed());
    free(after);

    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = 1;
    ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay --verify: %s", tl_errdetail());
    ck_assert_uint_eq(r.verify.events, head_of(log));
    ck_assert_uint_eq(r.verify.first_bad_seq, 0);
    ck_assert_str_eq(r.digest, live_digest);
    /* small chunks: the verify/apply pipeline crosses many chunk boundaries, on 1 to 3 threads */
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "97", 1);
    for (unsigned t = 1; t <= 3; t++) {
        o.threads = t;
        ck_assert_msg(tl_replay(log, &o, &r) == 0, "replay --verify --threads %u: %s", t, tl_errdetail());
        ck_assert_uint_eq(r.verify.events, head_of(log));
        ck_assert_str_eq(r.digest, live_digest);
    }
    o.verify = 0;
    ck_assert_int_eq(tl_replay(log, &o, &r), 0);
    ck_assert_str_eq(r.digest, live_digest);
    unsetenv("THREADLOG_TEST_REPLAY_CHUNK");

    /* into a copy: the same state, and the copy verifies */
    char *copy = sibling(dir, "copy");
    replay_into(log, copy, 0, 0, 1, &r);
    ck_assert_str_eq(r.digest, live_digest);
    tl_log *c = open_ro(copy);
    char *seen = observe(c, g.projects);
    ck_assert_msg(strcmp(seen, live) == 0, "queries on the copy differ");
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy verify: %s", vr.reason);
    tl_log_close(c);
    free(seen);
    free(copy);
    free(live);
    remove_all(log, dir);
}
END_TEST

/* The map starts small: replay needs room for the old projections and the new ones at once
 * (readers may still use the old), so it meets a full map and must grow it and start over. */
START_TEST(replay_grows_the_map) {
    setenv("THREADLOG_TEST_MAP_BYTES", "1048576", 1);
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 1};
    run_setup(log);
    /* fill the map until replay cannot fit beside the live projections: the map only grows
     * on demand, so small steps bring the file within a few pages of the map's end (LMDB
     * extends the file only when no free page is left), and what remains then cannot hold a
     * second copy of the projections. (Stopping at 4/5 of the map, or even 9/10, was not
     * enough: under load the timestamps in the keys change page splits, and on one CI run
     * the replay fitted exactly.) */
    tl_log_stats before, after;
    bool full = false;
    for (int i = 0; i < 4000 && !full; i++) {
        run_stream(log, &g, 25);
        ck_assert_int_eq(tl_log_stats_get(log, &before), 0);
        full = before.map_bytes > 1048576 && before.file_bytes + 64 * 1024 > before.map_bytes;
    }
    ck_assert_msg(full, "the log never came near the end of its map (%llu of %llu bytes)",
                  (unsigned long long)before.file_bytes, (unsigned long long)before.map_bytes);
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_replay_report r;
    ck_assert_msg(tl_replay(log, NULL, &r) == 0, "replay: %s", tl_errdetail());
    ck_assert_str_eq(r.digest, live);
    ck_assert_int_eq(tl_log_stats_get(log, &after), 0);
    ck_assert_msg(after.map_bytes > before.map_bytes, "the map did not have to grow (%llu bytes): the test proves nothing",
                  (unsigned long long)before.map_bytes);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ as of a sequence / a time */

START_TEST(replay_until_equals_state_then) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 2};
    run_setup(log);
    run_stream(log, &g, 3000);
    uint64_t n = head_of(log);
    unsigned projects_then = g.projects;
    char *then = observe(log, projects_then);
    /* the time of event n: later events are at least a millisecond later */
    tl_iter *it;
    tl_event_view ev;
    ck_assert_int_eq(tl_iter_open(log, n, &it), 0);
    ck_assert_int_eq(tl_iter_next(it, &ev), 0);
    uint64_t ts_n = ev.ts;
    tl_iter_close(it);
    usleep(2000);
    run_stream(log, &g, 2000);
    char pk[TL_PUBKEY_HEX_SIZE];
    ck_assert_int_eq(tl_log_rotate_key(log, pk), 0);
    run_stream(log, &g, 500);
    ck_assert_uint_gt(head_of(log), n + 500);

    tl_replay_report r;
    char *at_seq = sibling(dir, "seq");
    replay_into(log, at_seq, n, 0, 1, &r);
    ck_assert_uint_eq(r.events, n);
    tl_log *c = open_ro(at_seq);
    ck_assert_uint_eq(head_of(c), n);
    char *seen = observe(c, projects_then);
    ck_assert_msg(strcmp(seen, then) == 0, "seed %llu: the copy as of %llu differs from the state captured then",
                  (unsigned long long)test_seed(), (unsigned long long)n);
    /* the copy is a log of its own: it verifies (head moved to n) and cannot be appended to */
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy verify: %s", vr.reason);
    tl_log_close(c);
    free(seen);
    tl_open_options wo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&c, at_seq, &wo), TL_EKEY); /* no writer key: it can never fork the log */

    char *at_time = sibling(dir, "time");
    replay_into(log, at_time, 0, ts_n, 0, &r);
    c = open_ro(at_time);
    ck_assert_uint_eq(head_of(c), n);
    seen = observe(c, projects_then);
    ck_assert_msg(strcmp(seen, then) == 0, "the copy as of time %llu differs", (unsigned long long)ts_n);
    tl_log_close(c);
    free(seen);

    /* in place, a past state is refused: the live projections must cover the whole log (the
     * CLI's preview replays into a temporary directory: tests/cli/replay_cli.sh) */
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.until_seq = n;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_EUSAGE);
    /* a target that already holds a log is refused */
    o.into_dir = at_seq;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_EEXISTS);
    free(at_seq);
    free(at_time);
    free(then);
    remove_all(log, dir);
}
END_TEST

/* Content erased after N stays erased in a copy as of N: an erasure is an obligation, not a
 * part of history that time travel brings back. Content created after N is not in the copy. */
START_TEST(replay_until_keeps_erasures) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    char lines[4][512];
    snprintf(lines[0], 512, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"V\"}");
    snprintf(lines[1], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n1\",\"project\":\"p0\",\"body\":\"secret one\"}");
    run_batch(log, lines, 2);
    uint64_t n = head_of(log);
    snprintf(lines[0], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n2\",\"project\":\"p0\",\"body\":\"later\"}");
    run_batch(log, lines, 1);
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "n1", "right to erasure", &res), 0);
    char *copy = sibling(dir, "copy");
    tl_replay_report r;
    replay_into(log, copy, n, 0, 1, &r);
    tl_log *c = open_ro(copy);
    tl_query q = TL_QUERY_INIT;
    q.as = "aud";
    q.project = "p0";
    q.channel = "notes";
    char *json;
    ck_assert_int_eq(tl_messages_query(c, &q, &json), 0);
    ck_assert_msg(strstr(json, "\"id\":\"n1\"") && strstr(json, "\"erased\":true") && !strstr(json, "secret one"),
                  "n1 in the copy: %s", json);
    ck_assert_msg(!strstr(json, "n2"), "n2 is after the cut: %s", json);
    tl_free(json);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(c, &st), 0);
    ck_assert_uint_eq(st.content_bytes, 0); /* n1 erased, n2's content cut away with its event */
    /* the erasure itself was cut away with its event, yet the copy verifies: the cut recorded
     * it (content missing without an erasure is refused, test_tamper_content) */
    tl_verify_report vr;
    ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "the copy as of %llu: %s", (unsigned long long)n, vr.reason);
    ck_assert_msg(tl_log_verify(log, NULL, &vr) == 0, "the source: %s", vr.reason);
    tl_log_close(c);
    free(copy);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ concurrency */

static void append_in_child(const char *dir, uint64_t seed, unsigned rounds) {
    tl_log *log;
    if (tl_log_open(&log, dir, NULL) != 0) _exit(3);
    gen g = {.s = seed};
    /* fresh ids: the parent's stream used p0.., so the child's projects come after */
    g.projects = 1000;
    g.topics = 1000;
    g.messages = 100000;
    g.uploads = 1000;
    for (unsigned i = 0; i < rounds; i++) {
        static char lines[40][512];
        for (int k = 0; k < 40; k++) next_line(&g, lines[k], sizeof lines[k]);
        tl_batch *b;
        if (tl_batch_begin(log, &b) != 0) _exit(4);
        tl_cmd *cmds[40] = {0};
        tl_result res[40];
        for (int k = 0; k < 40; k++)
            if (tl_cmd_parse(&cmds[k], lines[k], strlen(lines[k]), &res[k]) == 0) tl_batch_exec(b, cmds[k], &res[k]);
        if (tl_batch_commit(b) != 0) _exit(5);
        for (int k = 0; k < 40; k++) tl_cmd_free(cmds[k]);
        usleep(1000);
    }
    tl_log_close(log);
    _exit(0);
}

START_TEST(replay_while_another_process_appends) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 3};
    run_setup(log);
    run_stream(log, &g, 2000);
    tl_log_close(log); /* no LMDB environment may cross a fork */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) append_in_child(dir, test_seed() + 4, 150);
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);

    enum { COPIES = 3 };
    char *copies[COPIES];
    uint64_t at[COPIES];
    char digests[COPIES][TL_PUBKEY_HEX_SIZE];
    for (int i = 0; i < COPIES; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        copies[i] = sibling(dir, name);
        tl_replay_report r;
        replay_into(log, copies[i], 0, 0, i == 1, &r);
        at[i] = r.events;
        memcpy(digests[i], r.digest, sizeof digests[i]);
        /* and in place, between the other process's commits (it waits for ours) */
        ck_assert_msg(tl_replay(log, NULL, &r) == 0, "in place: %s", tl_errdetail());
        usleep(30000);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "appending child failed: %d", status);
    ck_assert_uint_gt(head_of(log), at[COPIES - 1]); /* the appends did interleave with the copies */

    /* each copy taken mid-stream is the state as of its snapshot: replaying the finished
     * log up to the same event gives the same digest */
    for (int i = 0; i < COPIES; i++) {
        char *check = sibling(copies[i], "check");
        tl_replay_report r;
        replay_into(log, check, at[i], 0, 0, &r);
        ck_assert_msg(strcmp(r.digest, digests[i]) == 0, "copy %d (as of %llu) differs", i, (unsigned long long)at[i]);
        tl_log *c = open_ro(copies[i]);
        tl_verify_report vr;
        ck_assert_msg(tl_log_verify(c, NULL, &vr) == 0, "copy %d verify: %s", i, vr.reason);
        tl_log_close(c);
        free(check);
        free(copies[i]);
    }
    /* and the live state, maintained by two processes and replayed in place in between,
     * equals a fresh replay */
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(log, NULL, &r), 0);
    ck_assert_str_eq(r.digest, live);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ tampering */

/*
 * A log whose projections were built by an earlier threadlog (its meta has no "layout"
 * record, or another number) refuses queries and appends with TL_EVERSION, which would
 * read or extend projections of another layout, until a replay rebuilds them; the log's
 * own commands (verify) still work, and after the replay everything reads as before.
 */
START_TEST(an_earlier_layout_needs_a_replay) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    gen g = {.s = test_seed() + 7};
    run_stream(log, &g, 200);
    char *before = observe(log, 3);
    uint64_t head = head_of(log);
    tl_log_close(log);
    for (int variant = 0; variant < 2; variant++) {
        MDB_env *env;
        MDB_txn *txn = tu_raw_begin(dir, &env);
        MDB_dbi meta;
        ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        MDB_val k = {6, "layout"};
        if (variant == 0) {
            ck_assert_int_eq(mdb_del(txn, meta, &k, NULL), 0); /* built before the record */
        } else {
            uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
            MDB_val v = {8, one};
            ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0); /* layout 1 */
        }
        ck_assert_int_eq(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
        tl_query q = TL_QUERY_INIT;
        q.as = "al";
        char *json = NULL;
        ck_assert_int_eq(tl_tracking_query(log, &q, &json), TL_EVERSION);
        ck_assert_ptr_null(json);
        ck_assert_msg(strstr(tl_errdetail(), "threadlog replay") != NULL, "%s", tl_errdetail());
        tl_cmd *c;
        tl_result r;
        const char *line = "{\"op\":\"account.create\",\"id\":\"late\",\"name\":\"Late\"}";
        ck_assert_int_eq(tl_cmd_parse(&c, line, strlen(line), &r), 0);
        ck_assert_int_eq(tl_cmd_exec(log, c, &r), TL_EVERSION);
        tl_cmd_free(c);
        ck_assert_uint_eq(head_of(log), head); /* nothing appended */
        tl_verify_report vr;
        ck_assert_int_eq(tl_log_verify(log, NULL, &vr), 0);
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(log, NULL, &rr), 0);
        char *after = observe(log, 3);
        ck_assert_str_eq(after, before);
        free(after);
        tl_log_close(log);
        ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0); /* the replay recorded the layout */
        after = observe(log, 3);
        ck_assert_str_eq(after, before);
        free(after);
        tl_log_close(log);
    }
    free(before);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    remove_all(log, dir);
}
END_TEST

/* Edit one stored record with raw LMDB (the log closed: one environment per process). */
static void tamper(const char *dir, uint64_t seq, long byte, int delete_it) {
    MDB_env *env;
    MDB_txn *txn = tu_raw_begin(dir, &env);
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_dbi_open(txn, "log", 0, &dbi), 0);
    uint8_t key[8];
    for (int i = 7; i >= 0; i--) key[i] = (uint8_t)(seq >> (8 * (7 - i)));
    MDB_val k = {8, key}, v;
    ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
    if (delete_it) {
        ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
    } else {
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        size_t at = byte >= 0 ? (size_t)byte : v.mv_size - (size_t)(-byte);
        copy[at] ^= 0x01;
        MDB_val nv = {v.mv_size, copy};
        ck_assert_int_eq(mdb_put(txn, dbi, &k, &nv, 0), 0);
        free(copy);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static int verify_with(tl_log *log, const char *checkpoint, tl_verify_report *r) {
    tl_verify_options o = TL_VERIFY_OPTIONS_INIT;
    o.checkpoint_json = checkpoint;
    return tl_log_verify(log, &o, r);
}

START_TEST(tampering_after_checkpoint_detected) {
    setenv("THREADLOG_TEST_REPLAY_CHUNK", "64", 1); /* the damage falls in a middle chunk */
    char *dir;
    tl_log *log = tu_new_log(&dir);
    gen g = {.s = test_seed() + 5};
    run_setup(log);
    run_stream(log, &g, 400);
    tl_log_close(log);
    /* a second copy of the log, key included: what an insider could rewrite history with */
    char *fork_dir = sibling(dir, "fork");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", dir, fork_dir);
    ck_assert_int_eq(system(cmd), 0);
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    run_stream(log, &g, 300);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    uint64_t c = head_of(log);
    run_stream(log, &g, 300);
    uint64_t head = head_of(log);
    ck_assert_uint_gt(head, c + 3);
    char live[TL_PUBKEY_HEX_SIZE];
    digest_of(log, live);
    tl_verify_report vr;
    ck_assert_int_eq(verify_with(log, cp, &vr), 0);

    /* 1. history rewritten with the real key from before the checkpoint on: the rewritten log
     * is self-consistent (chain and signatures hold), only the checkpoint exposes it */
    tl_log *f;
    ck_assert_int_eq(tl_log_open(&f, fork_dir, &oo), 0);
    gen other = {.s = test_seed() + 99, .projects = 500, .topics = 500, .messages = 50000, .uploads = 500};
    run_stream(f, &other, 900);
    ck_assert_uint_gt(head_of(f), c);
    ck_assert_int_eq(verify_with(f, NULL, &vr), 0);
    ck_assert_int_eq(verify_with(f, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c);
    tl_log_close(f);

    /* 2. a byte flipped in an event after the checkpoint: verify names it; a verifying replay
     * refuses it and leaves the projections as they were */
    tl_log_close(log);
    tamper(dir, c + 2, 20, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c + 2);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = 1;
    tl_replay_report r;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 2);
    char now[TL_PUBKEY_HEX_SIZE];
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    /* ... and so does a replay without verification (the chain is checked all the same), in
     * place and into another directory */
    for (int into = 0; into < 2; into++) {
        tl_replay_options u = TL_REPLAY_OPTIONS_INIT;
        char *copy = into ? sibling(dir, "unverified") : NULL;
        u.into_dir = copy;
        ck_assert_int_eq(tl_replay(log, &u, &r), TL_ECORRUPT);
        ck_assert_uint_ge(r.verify.first_bad_seq, c + 2);
        ck_assert_uint_le(r.verify.first_bad_seq, c + 3);
        free(copy);
    }
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    tl_log_close(log);
    tamper(dir, c + 2, 20, 0); /* flip it back */

    /* 3. a signature byte flipped: only the signature check sees it */
    tamper(dir, c + 1, -1, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, cp, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, c + 1);
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 1);
    ck_assert_msg(strstr(r.verify.reason, "signature") != NULL, "%s", r.verify.reason);
    tl_log_close(log);
    tamper(dir, c + 1, -1, 0);

    /* 3b. an early event (first chunk) forged: its signature, not the next event's chain */
    tamper(dir, 3, 30, 0);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    o.threads = 1;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, 3);
    o.threads = 2;
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, 3);
    tl_log_close(log);
    tamper(dir, 3, 30, 0);

    /* 4. the last event removed: verify sees the head further on; replay refuses even
     * without verification rather than rewrite the head and hide the removal */
    tamper(dir, head, 0, 1);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(verify_with(log, NULL, &vr), TL_ECORRUPT);
    ck_assert_uint_eq(vr.first_bad_seq, head);
    ck_assert_int_eq(tl_replay(log, NULL, &r), TL_ECORRUPT);
    digest_of(log, now);
    ck_assert_str_eq(now, live);
    /* 5. an event removed from the middle */
    tl_log_close(log);
    tamper(dir, c + 1, 0, 1);
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    ck_assert_int_eq(tl_replay(log, &o, &r), TL_ECORRUPT);
    ck_assert_uint_eq(r.verify.first_bad_seq, c + 1);
    tl_free(cp);
    free(fork_dir);
    remove_all(log, dir);
}
END_TEST

/* ================================================================ following */

/* `threadlog log --follow --json` in its own process sees events that this process (and a
 * third one, `threadlog apply`) append after it started. */
START_TEST(follow_cli_sees_other_process) {
    char *dir;
    tl_log *log = tu_new_log(&dir);
    run_setup(log);
    uint64_t start = head_of(log);
    tl_log_close(log);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed (killed) test leaves no follower behind */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(TL_CLI, TL_CLI, "-d", dir, "log", "--follow", "--json", "--from", "1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    ck_assert_int_eq(tl_log_open(&log, dir, &oo), 0);
    usleep(200000); /* the follower has caught up and is waiting */
    char lines[2][512];
    snprintf(lines[0], 512, "{\"op\":\"project.create\",\"as\":\"al\",\"id\":\"p0\",\"account\":\"a0\",\"type\":\"video\",\"title\":\"Live\"}");
    snprintf(lines[1], 512, "{\"op\":\"note.add\",\"as\":\"al\",\"id\":\"n1\",\"project\":\"p0\",\"body\":\"pushed\"}");
    run_batch(log, lines, 2);
    char *file = sibling(dir, "cmds");
    const char *more = "{\"op\":\"project.status\",\"as\":\"al\",\"project\":\"p0\",\"status\":\"done\"}\n";
    ck_assert_int_eq(tu_write_file(file, more, strlen(more)), 0);
    ck_assert_int_eq(tu_run(NULL, "%s -d %s apply %s >/dev/null", TL_CLI, dir, file), 0);
    uint64_t want = head_of(log);
    ck_assert_uint_eq(want, start + 3);
    alarm(20); /* a follower that never sees them fails the test instead of hanging it */
    char buf[8192];
    uint64_t seen = 0, last = 0;
    bool saw_status = false;
    while (last < want && fgets(buf, sizeof buf, in)) {
        unsigned long long s;
        if (sscanf(buf, "{\"seq\":%llu", &s) != 1) continue;
        ck_assert_uint_eq(s, last + 1); /* in order, none skipped, none twice */
        last = s;
        seen++;
        if (strstr(buf, "\"kind\":\"project.status_changed\"")) saw_status = true;
    }
    alarm(0);
    ck_assert_uint_eq(last, want);
    ck_assert(saw_status);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the follower ended badly: %d", status);
    fclose(in);
    free(file);
    remove_all(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("equals_live");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_digest_equals_live);
    tcase_add_test(tc, replay_grows_the_map);
    suite_add_tcase(s, tc);
    tc = tcase_create("as_of");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_until_equals_state_then);
    tcase_add_test(tc, replay_until_keeps_erasures);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, replay_while_another_process_appends);
    tcase_add_test(tc, follow_cli_sees_other_process);
    suite_add_tcase(s, tc);
    tc = tcase_create("tampering");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tampering_after_checkpoint_detected);
    tcase_add_test(tc, an_earlier_layout_needs_a_replay);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
