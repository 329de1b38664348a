/*
 * tlrel.c — the reliability tests' helper: it generates command streams, checks what a log
 * holds against what was sent and acknowledged, and plays the parts of a process that the
 * shell cannot play (a reader frozen in a read transaction, a writer filling a disk).
 *
 * The checks use what an outside client sees: the JSON lines it sent to `threadlog apply`,
 * the result lines it got back (the acknowledgements) and `threadlog log --json`. A result
 * line counts as acknowledged only when it is complete (ends with a newline) and parses:
 * a process killed while writing it has acknowledged nothing.
 *
 *   tlrel gen --prefix P --lines N [--seed S] [--attach-bytes B] [--big-every K]
 *       a deterministic stream of N JSON lines: P's account, users, projects, topics,
 *       messages, replies, notes, reads, pins, deletes, uploads, retries of earlier lines,
 *       some bad lines and blank lines. Every creating command carries its id.
 *   tlrel count FILE      complete result lines of FILE (what was acknowledged)
 *   tlrel rest FILE K     FILE without its first K non-blank lines (the rest of the stream)
 *   tlrel check --events LOG.jsonl (--stream FILE (--run START:ACKS)...)... [options]
 *       --exactly-once    every non-blank line was answered exactly once, and every event
 *                         after the genesis was acknowledged by exactly one answer
 *       --allow ERR,...   error codes that may be answered (default: all but storage)
 *       --lost-ok         acknowledged events missing from the log are counted, not fatal
 *       --other-kind K    events of kind K come from elsewhere (e.g. key.rotated): not checked
 *       prints one JSON summary line; exits 1 on any violation (each named on stderr)
 *   tlrel snapshot FILE   a `log --json` output is the gap-free prefix 1..h; prints h
 *   tlrel reader --cli CLI --dir DIR --as U --project P --account A --seconds S [--stop-file F]
 *       a reader process beside writers: loops `log --json`, the tracking table and the
 *       project's chat as U sees them, then `log --json` again, and checks that what the
 *       queries show lies between the two snapshots (nothing shown that the log lacks,
 *       nothing missing that the log had); every snapshot is a gap-free prefix that only grows
 *   tlrel hold-read DIR   open DIR read-only, start reading, print "ready", sleep forever
 *   tlrel hold-write DIR  open DIR, begin a write transaction, print "ready", sleep forever
 *   tlrel locate DIR SEQ  "OFFSET LENGTH" of event SEQ's record (event bytes + signature)
 *                         in DIR/data.mdb, for damaging exactly one event: one line for each
 *                         place the file holds it (a page LMDB copied on a write keeps its
 *                         old copy until the page is reused, and that copy may come first)
 *   tlrel offset FILE NEEDLE   the offset of NEEDLE's bytes (a file) in FILE
 *   tlrel diskfull DIR --project P --as U --account A [--ballast FILE] [--bytes B]
 *       in one process: upload B-byte attachments until the disk is full (storage), then
 *       prove reads still work, delete the ballast, and prove writes resume
 *   tlrel faultprobe DIR STREAM --ack FILE --retry FILE --retry-ack FILE [--sync-every K] [--as U]
 *       `apply` played in one process (groups of K commands, K = 7 by default, one result
 *       line per non-blank line in --ack), meant to run under the fault shim. After every
 *       group whose commit failed, the same process must still read: the whole log (a
 *       gap-free prefix holding every acknowledged event), verify, the projection digest and
 *       U's tracking table. At the end the lines answered `storage` are written to --retry
 *       and sent again by the same process (answers in --retry-ack), then read once more.
 *       Prints one JSON summary line; exits 3 when a read failed after a failed commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "threadlog.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tlrel: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static char *xstrdup(const char *s) {
    char *p = strdup(s);
    if (!p) die("out of memory");
    return p;
}

/* The whole of a file (NUL-terminated); *len receives its size. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Lines of a text: each NUL-terminated in place; `complete` says whether it ended with \n. */
typedef struct lines {
    char **v;
    bool *complete;
    size_t n;
    char *text;
} lines;

static void lines_split(lines *l, char *text, size_t len) {
    memset(l, 0, sizeof *l);
    l->text = text;
    size_t cap = 0;
    for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            l->v = xrealloc(l->v, cap * sizeof *l->v);
            l->complete = xrealloc(l->complete, cap * sizeof *l->complete);
        }
        text[end] = 0;
        l->v[l->n] = text + i;
        l->complete[l->n++] = nl != NULL;
        i = end + 1;
    }
}

/* Read a file and split it into lines. */
static void lines_load(lines *l, const char *path) {
    size_t len;
    char *text = slurp(path, &len);
    lines_split(l, text, len);
}

static void lines_free(lines *l) {
    free(l->v);
    free(l->complete);
    free(l->text);
}

/* `apply`'s notion of blank: only spaces, tabs, CR, FF, VT. */
static bool blank(const char *s) {
    for (; *s; s++)
        if (!strchr(" \t\r\f\v", *s)) return false;
    return true;
}

/* ================================================================ gen */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}
static unsigned pick(unsigned n) { return n ? (unsigned)(rnd() % n) : 0; }
static bool chance(unsigned percent) { return pick(100) < percent; }

/* A growable JSON line. */
typedef struct jl {
    char *s;
    size_t n, cap;
} jl;

static void jl_put(jl *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void jl_puts(jl *b, const char *s) { jl_put(b, s, strlen(s)); }
static void jl_printf(jl *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jl_printf(jl *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) die("jl_printf overflow");
    jl_put(b, tmp, (size_t)n);
}
static void jl_str(jl *b, const char *s) {
    jl_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; jl_put(b, e, 2); }
        else if (c == '\n') jl_puts(b, "\\n");
        else if (c < 0x20) jl_printf(b, "\\u%04x", c);
        else jl_put(b, (const char *)&c, 1);
    }
    jl_puts(b, "\"");
}
/* Begin {"op":OP and add ,"key":"value" pairs. */
static void jl_op(jl *b, const char *op) {
    b->n = 0;
    jl_puts(b, "{\"op\":");
    jl_str(b, op);
}
static void jl_kv(jl *b, const char *k, const char *v) {
    jl_puts(b, ",");
    jl_str(b, k);
    jl_puts(b, ":");
    jl_str(b, v);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static void jl_base64(jl *b, size_t nbytes) {
    size_t out = (nbytes + 2) / 3 * 4;
    if (b->n + out + 8 > b->cap) {
        b->cap = b->n + out + 64;
        b->s = xrealloc(b->s, b->cap);
    }
    char *p = b->s + b->n;
    for (size_t i = 0; i < nbytes; i += 3) {
        uint32_t v = 0;
        size_t k = nbytes - i < 3 ? nbytes - i : 3;
        for (size_t j = 0; j < 3; j++) v = (v << 8) | (j < k ? (uint32_t)(rnd() & 0xff) : 0);
        *p++ = b64chars[(v >> 18) & 63];
        *p++ = b64chars[(v >> 12) & 63];
        *p++ = k > 1 ? b64chars[(v >> 6) & 63] : '=';
        *p++ = k > 2 ? b64chars[v & 63] : '=';
    }
    b->n = (size_t)(p - b->s);
    b->s[b->n] = 0;
}

static const char *const words[] = {"ship", "order", "size", "M", "please", "thanks", "video", "draft", "review",
                                    "café", "naïve", "日本", "😀", "\"quoted\"", "back\\slash", "line\nbreak",
                                    "ok", "tomorrow", "label", "stock"};

static void body_text(char *out, size_t cap) {
    size_t n = 0, want = chance(3) ? 2000 : 1 + pick(12);
    out[0] = 0;
    for (size_t i = 0; i < want; i++) {
        const char *w = words[pick(sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        if (n + wl + 2 >= cap) break;
        if (i) out[n++] = ' ';
        memcpy(out + n, w, wl);
        n += wl;
        out[n] = 0;
    }
}

enum { CH_CHAT, CH_AMB, CH_NOTES, CH_SUPPORT };
static const char *const channel_names[] = {"chat", "ambassador", "notes", "support"};

typedef struct gproject {
    char id[40];
    int amb;        /* ambassador index or -1 */
    bool amb_channel;
    int topics[64];
    unsigned ntopics;
} gproject;

typedef struct gmsg {
    char id[40];
    int project; /* -1 for support */
    int channel;
    int topic;
    int author; /* user index */
    unsigned live_replies;
    int parent;
    bool deleted, pinned;
} gmsg;

/* Users: 0..2 members, 3 staff, 4..5 ambassadors, 6 auditor. */
#define NUSERS 7
static const char *const user_suffix[NUSERS] = {"u1", "u2", "u3", "s1", "z1", "z2", "au"};
static const char *const user_role[NUSERS] = {"member", "member", "member", "staff", "ambassador", "ambassador", "auditor"};

typedef struct gen {
    const char *prefix;
    gproject *projects;
    size_t nprojects, capprojects;
    gmsg *msgs;
    size_t nmsgs, capmsgs;
    char **creates; /* earlier creating lines, for retries */
    size_t ncreates, capcreates;
    unsigned next_id;
    char pending_att[40]; /* an uploaded attachment waiting for its message */
    int pending_att_user;
    int pending_att_project;
    size_t attach_bytes;
    unsigned big_every;
    unsigned long line_no;
} gen;

static void uid(const gen *g, int u, char *out, size_t cap) { snprintf(out, cap, "%s-%s", g->prefix, user_suffix[u]); }

static bool in_audience(const gen *g, int u, const gmsg *m) {
    if (u == 6) return false; /* auditors never act */
    if (u <= 2) return true;
    if (u == 3) return m->channel == CH_CHAT || m->channel == CH_SUPPORT;
    return m->channel == CH_AMB && m->project >= 0 && g->projects[m->project].amb == u;
}

static int member(void) { return (int)pick(3); }
static int member_or_staff(void) { return (int)pick(4); }

static void add_create(gen *g, const jl *b) {
    if (g->ncreates == g->capcreates) {
        g->capcreates = g->capcreates ? g->capcreates * 2 : 256;
        g->creates = xrealloc(g->creates, g->capcreates * sizeof *g->creates);
    }
    /* uploads are kept out of retries: their lines are the big ones */
    g->creates[g->ncreates++] = xstrdup(b->s);
}

static gmsg *new_msg(gen *g, int project, int channel, int topic, int author, int parent) {
    if (g->nmsgs == g->capmsgs) {
        g->capmsgs = g->capmsgs ? g->capmsgs * 2 : 256;
        g->msgs = xrealloc(g->msgs, g->capmsgs * sizeof *g->msgs);
    }
    gmsg *m = &g->msgs[g->nmsgs++];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s-m%u", g->prefix, g->next_id++);
    m->project = project;
    m->channel = channel;
    m->topic = topic;
    m->author = author;
    m->parent = parent;
    return m;
}

static void emit(gen *g, const jl *b) {
    fputs(b->s, stdout);
    fputc('\n', stdout);
    g->line_no++;
}

/* Attach the pending upload to a message line when its author may. */
static void maybe_attach(gen *g, jl *b, int author, int project) {
    if (g->pending_att[0] && g->pending_att_user == author && g->pending_att_project == project) {
        jl_puts(b, ",\"attachments\":[");
        jl_str(b, g->pending_att);
        jl_puts(b, "]");
        g->pending_att[0] = 0;
    }
}

static void gen_project(gen *g, jl *b) {
    if (g->nprojects == g->capprojects) {
        g->capprojects = g->capprojects ? g->capprojects * 2 : 64;
        g->projects = xrealloc(g->projects, g->capprojects * sizeof *g->projects);
    }
    gproject *p = &g->projects[g->nprojects];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s-p%u", g->prefix, g->next_id++);
    static const char *const types[] = {"application", "order", "video"};
    const char *type = types[pick(3)];
    char as[80], acc[80], amb[80];
    int who = member();
    uid(g, who, as, sizeof as);
    snprintf(acc, sizeof acc, "%s", g->prefix);
    jl_op(b, "project.create");
    jl_kv(b, "as", as);
    jl_kv(b, "id", p->id);
    jl_kv(b, "account", acc);
    jl_kv(b, "type", type);
    jl_kv(b, "title", chance(50) ? "Order for the spring campaign" : "Vidéo 日本");
    p->amb = -1;
    if (chance(60)) {
        p->amb = 4 + (int)pick(2);
        uid(g, p->amb, amb, sizeof amb);
        jl_kv(b, "ambassador", amb);
        if (!strcmp(type, "order") && chance(70)) {
            char text[4096];
            body_text(text, sizeof text);
            jl_kv(b, "ambassador_message", text);
            gmsg *m = new_msg(g, (int)g->nprojects, CH_AMB, -1, p->amb, -1);
            jl_kv(b, "ambassador_message_id", m->id);
            p->amb_channel = true;
        }
    }
    jl_puts(b, "}");
    g->nprojects++;
    add_create(g, b);
    emit(g, b);
}

static void gen_topic(gen *g, jl *b, int pi) {
    gproject *p = &g->projects[pi];
    char as[80], tid[40], text[4096];
    int who = member_or_staff();
    uid(g, who, as, sizeof as);
    unsigned tnum = g->next_id++;
    snprintf(tid, sizeof tid, "%s-t%u", g->prefix, tnum);
    body_text(text, sizeof text);
    jl_op(b, "topic.create");
    jl_kv(b, "as", as);
    jl_kv(b, "id", tid);
    jl_kv(b, "project", p->id);
    jl_kv(b, "title", "Shipping");
    jl_kv(b, "body", text);
    if (p->ntopics < 64) p->topics[p->ntopics++] = (int)tnum;
    gmsg *m = new_msg(g, pi, CH_CHAT, (int)tnum, who, -1);
    jl_kv(b, "message_id", m->id);
    maybe_attach(g, b, who, pi);
    jl_puts(b, "}");
    add_create(g, b);
    emit(g, b);
}

static void gen_send(gen *g, jl *b, int pi, int channel) {
    char as[80], text[4096], topic[40];
    body_text(text, sizeof text);
    int who;
    if (channel == CH_SUPPORT) {
        who = member_or_staff();
        pi = -1;
    } else if (channel == CH_AMB) {
        gproject *p = &g->projects[pi];
        if (!p->amb_channel && !chance(10)) return;
        who = chance(50) && p->amb >= 0 ? p->amb : member();
    } else if (channel == CH_NOTES) {
        who = member();
    } else {
        if (!g->projects[pi].ntopics) { gen_topic(g, b, pi); return; }
        who = member_or_staff();
    }
    uid(g, who, as, sizeof as);
    int t = channel == CH_CHAT ? g->projects[pi].topics[pick(g->projects[pi].ntopics)] : -1;
    gmsg *m = new_msg(g, pi, channel, t, who, -1);
    jl_op(b, channel == CH_NOTES ? "note.add" : "message.send");
    jl_kv(b, "as", as);
    jl_kv(b, "id", m->id);
    if (channel != CH_NOTES) jl_kv(b, "channel", channel_names[channel]);
    if (pi >= 0) jl_kv(b, "project", g->projects[pi].id);
    else jl_kv(b, "account", g->prefix);
    if (t >= 0) {
        snprintf(topic, sizeof topic, "%s-t%d", g->prefix, t);
        jl_kv(b, "topic", topic);
    }
    jl_kv(b, "body", text);
    maybe_attach(g, b, who, pi);
    jl_puts(b, "}");
    add_create(g, b);
    emit(g, b);
}

static gmsg *some_msg(gen *g) {
    if (!g->nmsgs) return NULL;
    /* mostly recent messages: that is where the conversations are */
    size_t span = g->nmsgs < 40 ? g->nmsgs : 40;
    return &g->msgs[chance(80) ? g->nmsgs - 1 - pick((unsigned)span) : pick((unsigned)g->nmsgs)];
}

static int audience_member(const gen *g, const gmsg *m, int not_user) {
    int cand[NUSERS], n = 0;
    for (int u = 0; u < NUSERS; u++)
        if (u != not_user && in_audience(g, u, m)) cand[n++] = u;
    return n ? cand[pick((unsigned)n)] : -1;
}

static void gen_on_msg(gen *g, jl *b, const char *op) {
    gmsg *m = some_msg(g);
    if (!m) return;
    size_t mi = (size_t)(m - g->msgs);
    char as[80];
    int who;
    if (!strcmp(op, "message.delete")) who = m->author;
    else if (!strcmp(op, "message.read") || !strcmp(op, "message.unread")) who = audience_member(g, m, m->author);
    else who = audience_member(g, m, -1);
    if (who < 0) return;
    uid(g, who, as, sizeof as);
    if (!strcmp(op, "message.reply")) {
        char text[4096];
        body_text(text, sizeof text);
        int ch = m->channel, pi = m->project, t = m->topic;
        bool ok = !m->deleted;
        gmsg *r = new_msg(g, pi, ch, t, who, (int)mi);
        m = &g->msgs[mi]; /* new_msg may move the array */
        if (ok) m->live_replies++;
        jl_op(b, "message.reply");
        jl_kv(b, "as", as);
        jl_kv(b, "id", r->id);
        jl_kv(b, "message", m->id);
        jl_kv(b, "body", text);
        maybe_attach(g, b, who, pi);
        jl_puts(b, "}");
        add_create(g, b);
        emit(g, b);
        return;
    }
    jl_op(b, op);
    jl_kv(b, "as", as);
    jl_kv(b, "message", m->id);
    jl_puts(b, "}");
    if (!m->deleted) {
        if (!strcmp(op, "message.pin")) m->pinned = true;
        if (!strcmp(op, "message.unpin")) m->pinned = false;
        if (!strcmp(op, "message.delete") && !m->live_replies) {
            m->deleted = true;
            if (m->parent >= 0 && g->msgs[m->parent].live_replies) g->msgs[m->parent].live_replies--;
        }
    }
    emit(g, b);
}

static void gen_upload(gen *g, jl *b) {
    if (!g->nprojects) return;
    int pi = (int)pick((unsigned)g->nprojects);
    int who = member();
    char as[80], id[40];
    uid(g, who, as, sizeof as);
    snprintf(id, sizeof id, "%s-a%u", g->prefix, g->next_id++);
    size_t size = g->big_every && chance(100 / (g->big_every ? g->big_every : 1)) ? g->attach_bytes : pick(300);
    jl_op(b, "attachment.upload");
    jl_kv(b, "as", as);
    jl_kv(b, "id", id);
    jl_kv(b, "project", g->projects[pi].id);
    jl_kv(b, "name", "label.pdf");
    if (chance(50)) jl_kv(b, "mime", "application/pdf");
    jl_puts(b, ",\"data\":\"");
    jl_base64(b, size);
    jl_puts(b, "\"}");
    emit(g, b);
    snprintf(g->pending_att, sizeof g->pending_att, "%s", id);
    g->pending_att_user = who;
    g->pending_att_project = pi;
}

static void gen_bad(gen *g, jl *b) {
    char as[80];
    switch (pick(6)) {
    case 0: jl_op(b, "message.send"); jl_puts(b, ",\"as\":"); break; /* truncated JSON */
    case 1: jl_op(b, "message.teleport"); jl_puts(b, "}"); break;
    case 2: /* auditors never act */
        if (!g->nmsgs) return;
        uid(g, 6, as, sizeof as);
        jl_op(b, "message.read");
        jl_kv(b, "as", as);
        jl_kv(b, "message", g->msgs[pick((unsigned)g->nmsgs)].id);
        jl_puts(b, "}");
        break;
    case 3:
        uid(g, 0, as, sizeof as);
        jl_op(b, "message.pin");
        jl_kv(b, "as", as);
        jl_kv(b, "message", "no-such-message");
        jl_puts(b, "}");
        break;
    case 4: jl_op(b, "note.add"); jl_kv(b, "as", "bad id!"); jl_kv(b, "project", "x"); jl_kv(b, "body", ""); jl_puts(b, "}"); break;
    default: b->n = 0; jl_puts(b, "[1,2,3]"); break;
    }
    emit(g, b);
}

static int cmd_gen(int argc, char **argv) {
    gen g = {0};
    unsigned long want = 1000;
    uint64_t seed = 1;
    g.attach_bytes = 1 << 20;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) die("gen: %s needs a value", argv[i]);
        if (!strcmp(argv[i], "--prefix")) g.prefix = argv[++i];
        else if (!strcmp(argv[i], "--lines")) want = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--attach-bytes")) g.attach_bytes = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--big-every")) g.big_every = (unsigned)strtoul(argv[++i], NULL, 10);
        else die("gen: unknown option %s", argv[i]);
    }
    if (!g.prefix) die("gen: --prefix is required");
    rng_state ^= seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < 8; i++) rnd();
    jl b = {0};
    char id[80], acc[80];
    snprintf(acc, sizeof acc, "%s", g.prefix);
    jl_op(&b, "account.create");
    jl_kv(&b, "id", acc);
    jl_kv(&b, "name", "Acme Corp");
    jl_puts(&b, "}");
    emit(&g, &b);
    for (int u = 0; u < NUSERS; u++) {
        uid(&g, u, id, sizeof id);
        jl_op(&b, "user.create");
        jl_kv(&b, "id", id);
        jl_kv(&b, "role", user_role[u]);
        jl_kv(&b, "name", "Zoé");
        if (!strcmp(user_role[u], "member")) jl_kv(&b, "account", acc);
        jl_puts(&b, "}");
        add_create(&g, &b);
        emit(&g, &b);
    }
    gen_project(&g, &b);
    while (g.line_no < want) {
        unsigned r = pick(100);
        int pi = (int)pick((unsigned)g.nprojects);
        if (r < 4) gen_project(&g, &b);
        else if (r < 8) {
            char as[80];
            static const char *const statuses[] = {"pending", "accepted", "shipped", "delivered"};
            uid(&g, member_or_staff(), as, sizeof as);
            jl_op(&b, "project.status");
            jl_kv(&b, "as", as);
            jl_kv(&b, "project", g.projects[pi].id);
            jl_kv(&b, "status", statuses[pick(4)]);
            jl_puts(&b, "}");
            emit(&g, &b);
        } else if (r < 14) gen_topic(&g, &b, pi);
        else if (r < 30) gen_send(&g, &b, pi, CH_CHAT);
        else if (r < 35) gen_send(&g, &b, pi, CH_AMB);
        else if (r < 39) gen_send(&g, &b, pi, CH_SUPPORT);
        else if (r < 46) gen_send(&g, &b, pi, CH_NOTES);
        else if (r < 56) gen_on_msg(&g, &b, "message.reply");
        else if (r < 68) gen_on_msg(&g, &b, "message.read");
        else if (r < 73) gen_on_msg(&g, &b, "message.unread");
        else if (r < 79) gen_on_msg(&g, &b, "message.pin");
        else if (r < 83) gen_on_msg(&g, &b, "message.unpin");
        else if (r < 86) gen_on_msg(&g, &b, "message.delete");
        else if (r < 91) gen_upload(&g, &b);
        else if (r < 95) {
            if (g.ncreates) { b.n = 0; jl_puts(&b, g.creates[pick((unsigned)g.ncreates)]); emit(&g, &b); }
        } else if (r < 98) gen_bad(&g, &b);
        else { fputs(chance(50) ? "\n" : "   \n", stdout); } /* blank: no result, not counted */
    }
    for (size_t i = 0; i < g.ncreates; i++) free(g.creates[i]);
    free(g.creates);
    free(g.projects);
    free(g.msgs);
    free(b.s);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ================================================================ count, rest */

/* Complete lines of an acknowledgement file that parse as JSON objects. */
static size_t acked_lines(lines *l) {
    size_t n = 0;
    for (; n < l->n; n++) {
        if (!l->complete[n]) break;
        json_t *o = json_loads(l->v[n], 0, NULL);
        bool ok = json_is_object(o);
        json_decref(o);
        if (!ok) break;
    }
    return n;
}

static int cmd_count(int argc, char **argv) {
    if (argc != 3) die("count FILE");
    lines l;
    lines_load(&l, argv[2]);
    printf("%zu\n", acked_lines(&l));
    lines_free(&l);
    return 0;
}

static int cmd_rest(int argc, char **argv) {
    if (argc != 4) die("rest FILE K");
    size_t skip = strtoul(argv[3], NULL, 10), seen = 0;
    lines l;
    lines_load(&l, argv[2]);
    for (size_t i = 0; i < l.n; i++) {
        if (seen >= skip) printf("%s\n", l.v[i]);
        else if (!blank(l.v[i])) seen++;
    }
    lines_free(&l);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ================================================================ check */

static const struct { const char *op, *kind; } kinds[] = {
    {"account.create", "account.created"}, {"user.create", "user.created"},
    {"project.create", "project.created"}, {"project.status", "project.status_changed"},
    {"topic.create", "topic.created"},     {"message.send", "message.sent"},
    {"note.add", "note.added"},            {"message.reply", "message.replied"},
    {"message.read", "message.read"},      {"message.unread", "message.unread"},
    {"message.pin", "message.pinned"},     {"message.unpin", "message.unpinned"},
    {"message.delete", "message.deleted"}, {"attachment.upload", "attachment.uploaded"},
};

static const char *kind_of_op(const char *op) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].op, op)) return kinds[i].kind;
    return NULL;
}

static const char *jstr(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * The identity of what a command appends, and of an event: creating kinds by their id,
 * the others by kind, actor and target. A command's key equals the key of the event it
 * appended; an event whose key matches no line sent did not come from the client.
 */
static char *line_key(json_t *cmd) {
    const char *op = jstr(cmd, "op"), *kind = op ? kind_of_op(op) : NULL;
    if (!kind) return NULL;
    char buf[512];
    const char *id = jstr(cmd, "id"), *as = jstr(cmd, "as");
    if (id) snprintf(buf, sizeof buf, "%s|%s", kind, id);
    else if (!strcmp(op, "project.status"))
        snprintf(buf, sizeof buf, "%s|%s|%s|%s", kind, as ? as : "", jstr(cmd, "project") ? jstr(cmd, "project") : "",
                 jstr(cmd, "status") ? jstr(cmd, "status") : "");
    else snprintf(buf, sizeof buf, "%s|%s|%s", kind, as ? as : "", jstr(cmd, "message") ? jstr(cmd, "message") : "");
    return xstrdup(buf);
}

static char *event_key(json_t *ev) {
    const char *kind = jstr(ev, "kind"), *actor = jstr(ev, "actor");
    json_t *p = json_object_get(ev, "payload");
    if (!kind || !json_is_object(p)) return NULL;
    char buf[512];
    const char *id = jstr(p, "id");
    if (id) snprintf(buf, sizeof buf, "%s|%s", kind, id);
    else if (!strcmp(kind, "project.status_changed"))
        snprintf(buf, sizeof buf, "%s|%s|%s|%s", kind, actor ? actor : "", jstr(ev, "project") ? jstr(ev, "project") : "",
                 jstr(p, "status") ? jstr(p, "status") : "");
    else snprintf(buf, sizeof buf, "%s|%s|%s", kind, actor ? actor : "", jstr(p, "message") ? jstr(p, "message") : "");
    return xstrdup(buf);
}

/* A tiny string set/multiset. */
typedef struct sset {
    char **k;
    unsigned *count;
    size_t n, cap;
} sset;

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static unsigned *sset_slot(sset *s, const char *k, bool add) {
    if (add && (s->n + 1) * 2 > s->cap) {
        sset old = *s;
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->k = calloc(s->cap, sizeof *s->k);
        s->count = calloc(s->cap, sizeof *s->count);
        if (!s->k || !s->count) die("out of memory");
        s->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.k[i]) { *sset_slot(s, old.k[i], true) = old.count[i]; free(old.k[i]); }
        free(old.k);
        free(old.count);
    }
    if (!s->cap) return NULL;
    for (size_t i = fnv(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->k[i]) {
            if (!add) return NULL;
            s->k[i] = xstrdup(k);
            s->n++;
            return &s->count[i];
        }
        if (!strcmp(s->k[i], k)) return &s->count[i];
    }
}

static void sset_free(sset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->k[i]);
    free(s->k);
    free(s->count);
}

typedef struct checker {
    json_t **events; /* by seq; [0] unused */
    uint64_t head;
    sset sent;       /* keys of every line of every stream */
    sset unacked;    /* keys of lines sent but not acknowledged in some run */
    sset acked_seq;  /* seqs acknowledged as appended (not duplicates) */
    unsigned errors; /* violations */
    bool exactly_once, lost_ok;
    char allow[512];
    char other_kinds[512]; /* ",k1,k2," */
    /* totals */
    unsigned long lines, answers, appended, duplicates, noops, refused, lost, storage;
    json_t *by_error;
} checker;

static void violation(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(checker *c, const char *fmt, ...) {
    if (c->errors++ > 30) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tlrel check: VIOLATION: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void load_events(checker *c, const char *path) {
    lines l;
    lines_load(&l, path);
    c->events = xmalloc((l.n + 2) * sizeof *c->events);
    c->events[0] = NULL;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.complete[i]) die("%s: the last line is incomplete", path);
        json_error_t err;
        json_t *ev = json_loads(l.v[i], 0, &err);
        json_t *seq = json_object_get(ev, "seq");
        if (!json_is_integer(seq)) die("%s:%zu: not an event: %s", path, i + 1, err.text);
        if ((uint64_t)json_integer_value(seq) != i + 1) {
            violation(c, "the log jumps from seq %zu to %" JSON_INTEGER_FORMAT, i, json_integer_value(seq));
            json_decref(ev);
            break;
        }
        c->events[i + 1] = ev;
        c->head = i + 1;
    }
    lines_free(&l);
}

static bool allowed_error(const checker *c, const char *code) {
    if (!c->allow[0]) return strcmp(code, "storage") != 0;
    char pat[80];
    snprintf(pat, sizeof pat, ",%s,", code);
    char all[520];
    snprintf(all, sizeof all, ",%s,", c->allow);
    return strstr(all, pat) != NULL;
}

/* One run of apply: the lines from non-blank line `start` (0-based) answered by acks. */
static void check_run(checker *c, lines *stream, size_t *nonblank, size_t nnb, size_t start, const char *ack_path,
                      unsigned *answered) {
    lines acks;
    lines_load(&acks, ack_path);
    size_t n = acked_lines(&acks);
    if (n < acks.n && (acks.n - n > 1 || acks.complete[n]))
        violation(c, "%s: line %zu is not a result line", ack_path, n + 1);
    if (start + n > nnb) violation(c, "%s: %zu answers for %zu lines", ack_path, n, nnb - start);
    for (size_t i = 0; i < n && start + i < nnb; i++) {
        size_t li = nonblank[start + i];
        answered[start + i]++;
        c->answers++;
        json_t *cmd = json_loads(stream->v[li], JSON_DECODE_ANY, NULL);
        json_t *res = json_loads(acks.v[i], 0, NULL);
        json_t *ok = json_object_get(res, "ok");
        if (!json_is_boolean(ok)) violation(c, "%s:%zu: no \"ok\" in %s", ack_path, i + 1, acks.v[i]);
        if (json_is_false(ok)) {
            const char *code = jstr(res, "error");
            c->refused++;
            if (!code) code = "?";
            json_object_set_new(c->by_error, code, json_integer(json_integer_value(json_object_get(c->by_error, code)) + 1));
            if (!strcmp(code, "storage")) c->storage++;
            if (!allowed_error(c, code))
                violation(c, "%s:%zu: line %zu answered %s (%s)", ack_path, i + 1, li + 1, code,
                          jstr(res, "message") ? jstr(res, "message") : "");
        } else if (json_is_true(json_object_get(res, "noop"))) {
            c->noops++;
        } else if (json_is_true(ok)) {
            json_t *jseq = json_object_get(res, "seq");
            uint64_t seq = json_is_integer(jseq) ? (uint64_t)json_integer_value(jseq) : 0;
            bool dup = json_is_true(json_object_get(res, "duplicate"));
            char *want = json_is_object(cmd) ? line_key(cmd) : NULL;
            if (dup) c->duplicates++;
            else c->appended++;
            if (!seq || !want) {
                violation(c, "%s:%zu: an ok answer without seq, or to a line that cannot append: %s", ack_path, i + 1,
                          acks.v[i]);
            } else if (seq > c->head) {
                if (c->lost_ok) c->lost++;
                else violation(c, "%s:%zu: acknowledged seq %" PRIu64 " is not in the log (head %" PRIu64 ")", ack_path,
                               i + 1, seq, c->head);
            } else {
                char *have = event_key(c->events[seq]);
                if (!have || strcmp(have, want))
                    violation(c, "%s:%zu: seq %" PRIu64 " holds %s, the line (%zu) wanted %s", ack_path, i + 1, seq,
                              have ? have : "?", li + 1, want);
                const char *rid = jstr(res, "id");
                json_t *p = json_object_get(c->events[seq], "payload");
                if (rid && (!jstr(p, "id") || strcmp(rid, jstr(p, "id"))))
                    violation(c, "%s:%zu: answered id %s, event %" PRIu64 " has another", ack_path, i + 1, rid, seq);
                if (!dup) {
                    char k[32];
                    snprintf(k, sizeof k, "%" PRIu64, seq);
                    unsigned *slot = sset_slot(&c->acked_seq, k, true);
                    if ((*slot)++) violation(c, "seq %" PRIu64 " acknowledged twice as new", seq);
                }
                free(have);
            }
            free(want);
        }
        json_decref(cmd);
        json_decref(res);
    }
    /* the unanswered rest of this run: sent, maybe committed, never acknowledged */
    for (size_t i = start + n; i < nnb; i++) {
        json_t *cmd = json_loads(stream->v[nonblank[i]], JSON_DECODE_ANY, NULL);
        char *k = json_is_object(cmd) ? line_key(cmd) : NULL;
        if (k) (*sset_slot(&c->unacked, k, true))++;
        free(k);
        json_decref(cmd);
    }
    lines_free(&acks);
}

static int cmd_check(int argc, char **argv) {
    checker c = {0};
    c.by_error = json_object();
    const char *events = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) events = argv[++i];
        else if (!strcmp(argv[i], "--exactly-once")) c.exactly_once = true;
        else if (!strcmp(argv[i], "--lost-ok")) c.lost_ok = true;
        else if (!strcmp(argv[i], "--allow") && i + 1 < argc) snprintf(c.allow, sizeof c.allow, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--other-kind") && i + 1 < argc) {
            size_t n = strlen(c.other_kinds);
            snprintf(c.other_kinds + n, sizeof c.other_kinds - n, "%s%s,", n ? "" : ",", argv[++i]);
        }
    }
    if (!events) die("check: --events FILE is required");
    load_events(&c, events);
    /* streams and their runs, in order */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--stream") || i + 1 >= argc) continue;
        const char *spath = argv[++i];
        lines stream;
        lines_load(&stream, spath);
        size_t *nonblank = xmalloc(stream.n * sizeof *nonblank), nnb = 0;
        for (size_t j = 0; j < stream.n; j++) {
            if (blank(stream.v[j])) continue;
            nonblank[nnb++] = j;
            json_t *cmd = json_loads(stream.v[j], JSON_DECODE_ANY, NULL);
            char *k = json_is_object(cmd) ? line_key(cmd) : NULL;
            if (k) (*sset_slot(&c.sent, k, true))++;
            free(k);
            json_decref(cmd);
        }
        c.lines += nnb;
        unsigned *answered = calloc(nnb + 1, sizeof *answered);
        if (!answered) die("out of memory");
        for (; i + 2 < argc && !strcmp(argv[i + 1], "--run"); i += 2) {
            char *spec = argv[i + 2], *colon = strchr(spec, ':');
            if (!colon) die("--run START:ACKS");
            check_run(&c, &stream, nonblank, nnb, strtoul(spec, NULL, 10), colon + 1, answered);
        }
        for (size_t j = 0; j < nnb; j++) {
            if (answered[j] == 0) violation(&c, "%s: line %zu was never answered", spath, nonblank[j] + 1);
            else if (answered[j] > 1)
                violation(&c, "%s: line %zu was answered %u times", spath, nonblank[j] + 1, answered[j]);
        }
        free(answered);
        free(nonblank);
        lines_free(&stream);
    }
    /* every event after the genesis comes from a line sent; creations appear once */
    sset ids = {0};
    unsigned long unacked_events = 0;
    unsigned long other = 0;
    for (uint64_t s = 2; s <= c.head; s++) {
        const char *kind = jstr(c.events[s], "kind");
        char pat[80];
        snprintf(pat, sizeof pat, ",%s,", kind ? kind : "");
        if (kind && strstr(c.other_kinds, pat)) { other++; continue; }
        char *k = event_key(c.events[s]);
        if (!k) { violation(&c, "event %" PRIu64 " has no kind or payload", s); continue; }
        if (!sset_slot(&c.sent, k, false)) violation(&c, "event %" PRIu64 " (%s) matches no line that was sent", s, k);
        json_t *p = json_object_get(c.events[s], "payload");
        if (jstr(p, "id") && (*sset_slot(&ids, k, true))++)
            violation(&c, "event %" PRIu64 ": %s was created twice", s, k);
        char sk[32];
        snprintf(sk, sizeof sk, "%" PRIu64, s);
        if (!sset_slot(&c.acked_seq, sk, false)) {
            unacked_events++;
            if (c.exactly_once) violation(&c, "event %" PRIu64 " (%s) was never acknowledged", s, k);
            else if (!sset_slot(&c.unacked, k, false))
                violation(&c, "event %" PRIu64 " (%s) is unacknowledged but its line was acknowledged otherwise", s, k);
        }
        free(k);
    }
    json_t *sum = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:I}", "other_events", (json_int_t)other,
                            "events", (json_int_t)c.head,
                            "lines", (json_int_t)c.lines, "answers", (json_int_t)c.answers, "appended",
                            (json_int_t)c.appended, "duplicates", (json_int_t)c.duplicates, "noops",
                            (json_int_t)c.noops, "refused", (json_int_t)c.refused, "lost", (json_int_t)c.lost,
                            "storage", (json_int_t)c.storage, "unacked_events", (json_int_t)unacked_events,
                            "errors", c.by_error, "violations", (json_int_t)c.errors);
    if (!sum) die("check: cannot build the summary");
    char *s = json_dumps(sum, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
    json_decref(sum);
    json_decref(c.by_error);
    for (uint64_t i = 1; i <= c.head; i++) json_decref(c.events[i]);
    free(c.events);
    sset_free(&c.sent);
    sset_free(&c.unacked);
    sset_free(&c.acked_seq);
    sset_free(&ids);
    return c.errors ? 1 : 0;
}

/* ================================================================ snapshot */

static int cmd_snapshot(int argc, char **argv) {
    if (argc != 3) die("snapshot FILE");
    lines l;
    lines_load(&l, argv[2]);
    uint64_t expect = 1;
    for (size_t i = 0; i < l.n; i++) {
        json_t *ev = json_loads(l.v[i], 0, NULL);
        json_t *seq = json_object_get(ev, "seq");
        bool ok = l.complete[i] && json_is_integer(seq) && (uint64_t)json_integer_value(seq) == expect;
        json_decref(ev);
        if (!ok) {
            fprintf(stderr, "tlrel snapshot: %s line %zu is not event %" PRIu64 "\n", argv[2], i + 1, expect);
            lines_free(&l);
            return 1;
        }
        expect++;
    }
    lines_free(&l);
    printf("%" PRIu64 "\n", expect - 1);
    return expect > 1 ? 0 : 1;
}


/* ================================================================ reader */

/* Run a command, its whole stdout as a NUL-terminated string; *status its exit status. */
static char *run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) die("popen %s: %s", cmd, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return buf;
}

typedef struct snapshot {
    json_t **ev;
    char **text;
    uint64_t head;
} snapshot;

static void snapshot_free(snapshot *s) {
    for (uint64_t i = 1; i <= s->head; i++) { json_decref(s->ev[i]); free(s->text[i]); }
    free(s->ev);
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* `log --json` as a gap-free prefix 1..head; 0 or a violation message in why. */
static int snapshot_take(snapshot *s, const char *cli, const char *dir, char *why, size_t cap) {
    char cmd[4096];
    int status;
    snprintf(cmd, sizeof cmd, "'%s' -d '%s' log --json", cli, dir);
    char *out = run_capture(cmd, &status);
    if (status) { snprintf(why, cap, "log --json exited %d", status); free(out); return -1; }
    lines l;
    lines_split(&l, out, strlen(out));
    memset(s, 0, sizeof *s);
    s->ev = xmalloc((l.n + 2) * sizeof *s->ev);
    s->text = xmalloc((l.n + 2) * sizeof *s->text);
    for (size_t i = 0; i < l.n; i++) {
        json_t *ev = json_loads(l.v[i], 0, NULL);
        json_t *seq = json_object_get(ev, "seq");
        if (!l.complete[i] || !json_is_integer(seq) || (uint64_t)json_integer_value(seq) != i + 1) {
            snprintf(why, cap, "log --json line %zu is not event %zu: %.200s", i + 1, i + 1, l.v[i]);
            json_decref(ev);
            lines_free(&l);
            return -1;
        }
        s->ev[i + 1] = ev;
        s->text[i + 1] = xstrdup(l.v[i]);
        s->head = i + 1;
    }
    lines_free(&l);
    return 0;
}

/* Does the snapshot hold an event of this kind creating this id? */
static bool snapshot_has(const snapshot *s, const char *kind, const char *id) {
    for (uint64_t i = 1; i <= s->head; i++) {
        const char *k = jstr(s->ev[i], "kind"), *pid = jstr(json_object_get(s->ev[i], "payload"), "id");
        if (k && pid && !strcmp(k, kind) && !strcmp(pid, id)) return true;
    }
    return false;
}

/* Projects of account A (what a member of A sees) and chat messages of project P, live or all. */
static void snapshot_sets(const snapshot *s, const char *account, const char *project, sset *projects, sset *chat,
                          sset *deleted) {
    for (uint64_t i = 1; i <= s->head; i++) {
        json_t *ev = s->ev[i], *p = json_object_get(ev, "payload");
        const char *kind = jstr(ev, "kind"), *evp = jstr(ev, "project");
        if (!kind) continue;
        if (!strcmp(kind, "project.created") && jstr(p, "account") && !strcmp(jstr(p, "account"), account) && jstr(p, "id"))
            sset_slot(projects, jstr(p, "id"), true);
        if (!evp || strcmp(evp, project)) continue;
        if (!strcmp(kind, "topic.created") && jstr(p, "message_id")) sset_slot(chat, jstr(p, "message_id"), true);
        if ((!strcmp(kind, "message.sent") || !strcmp(kind, "message.replied")) && jstr(p, "channel") &&
            !strcmp(jstr(p, "channel"), "chat") && jstr(p, "id"))
            sset_slot(chat, jstr(p, "id"), true);
        if (!strcmp(kind, "message.deleted") && jstr(p, "message")) sset_slot(deleted, jstr(p, "message"), true);
    }
}

/* ids of a query's list ("rows"/"project" or "messages"/"id"), into out; -1 when refused. */
static int query_ids(const char *cmd, const char *list, const char *field, sset *out, char *why, size_t cap) {
    int status;
    char *text = run_capture(cmd, &status);
    json_t *o = json_loads(text, 0, NULL);
    json_t *arr = json_object_get(o, list);
    int rc = 0;
    if (status || !json_is_array(arr)) {
        snprintf(why, cap, "%s -> exit %d: %.300s", cmd, status, text);
        rc = -1;
    } else {
        if (!json_is_null(json_object_get(o, "next"))) {
            snprintf(why, cap, "%s: a second page although the limit is larger than the log", cmd);
            rc = -1;
        }
        size_t i;
        json_t *item;
        json_array_foreach(arr, i, item) {
            const char *id = jstr(item, field);
            if (id) sset_slot(out, id, true);
        }
    }
    json_decref(o);
    free(text);
    return rc;
}

static int cmd_reader(int argc, char **argv) {
    const char *cli = NULL, *dir = NULL, *as = NULL, *project = NULL, *account = NULL, *stop = NULL;
    double seconds = 10;
    unsigned verify_every = 5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cli")) cli = argv[i + 1];
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--as")) as = argv[i + 1];
        else if (!strcmp(argv[i], "--project")) project = argv[i + 1];
        else if (!strcmp(argv[i], "--account")) account = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--stop-file")) stop = argv[i + 1];
        else if (!strcmp(argv[i], "--verify-every")) verify_every = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else die("reader: unknown option %s", argv[i]);
    }
    if (!cli || !dir || !as || !project || !account) die("reader --cli CLI --dir DIR --as U --project P --account A");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long iterations = 0, queries = 0, verifies = 0, shown = 0;
    uint64_t last_head = 0;
    char why[1024], cmd[4096];
    int bad = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (el > seconds || (stop && access(stop, F_OK) == 0 && iterations > 0)) break;
        iterations++;
        snapshot a, b;
        if (snapshot_take(&a, cli, dir, why, sizeof why)) { fprintf(stderr, "tlrel reader: VIOLATION: %s\n", why); bad = 1; break; }
        if (a.head < last_head) {
            fprintf(stderr, "tlrel reader: VIOLATION: the log went back from %" PRIu64 " to %" PRIu64 " events\n", last_head, a.head);
            bad = 1;
        }
        sset q_projects = {0}, q_chat = {0};
        snprintf(cmd, sizeof cmd, "'%s' -d '%s' --json tracking --as '%s' --limit 1000000 2>&1", cli, dir, as);
        int have_tracking = query_ids(cmd, "rows", "project", &q_projects, why, sizeof why) == 0;
        /* refused is right only while the user does not exist yet */
        if (!have_tracking && snapshot_has(&a, "user.created", as)) { fprintf(stderr, "tlrel reader: VIOLATION: %s\n", why); bad = 1; }
        snprintf(cmd, sizeof cmd, "'%s' -d '%s' --json messages --as '%s' --project '%s' --channel chat --limit 1000000 2>&1",
                 cli, dir, as, project);
        int have_chat = query_ids(cmd, "messages", "id", &q_chat, why, sizeof why) == 0;
        if (!have_chat && snapshot_has(&a, "project.created", project)) { fprintf(stderr, "tlrel reader: VIOLATION: %s\n", why); bad = 1; }
        if (snapshot_take(&b, cli, dir, why, sizeof why)) { fprintf(stderr, "tlrel reader: VIOLATION: %s\n", why); bad = 1; snapshot_free(&a); break; }
        if (b.head < a.head) {
            fprintf(stderr, "tlrel reader: VIOLATION: the log went back from %" PRIu64 " to %" PRIu64 " events\n", a.head, b.head);
            bad = 1;
        }
        for (uint64_t i = 1; i <= a.head && i <= b.head; i++)
            if (strcmp(a.text[i], b.text[i])) {
                fprintf(stderr, "tlrel reader: VIOLATION: event %" PRIu64 " changed between two reads\n", i);
                bad = 1;
                break;
            }
        sset pa = {0}, ca = {0}, da = {0}, pb = {0}, cb = {0}, db = {0};
        snapshot_sets(&a, account, project, &pa, &ca, &da);
        snapshot_sets(&b, account, project, &pb, &cb, &db);
        /* lower bound: what the first snapshot had (and the second did not delete) is shown */
        for (size_t i = 0; have_tracking && i < pa.cap; i++)
            if (pa.k && pa.k[i] && !sset_slot(&q_projects, pa.k[i], false)) {
                fprintf(stderr, "tlrel reader: VIOLATION: project %s is in the log (seq <= %" PRIu64 ") but not in %s's tracking\n",
                        pa.k[i], a.head, as);
                bad = 1;
            }
        for (size_t i = 0; have_chat && i < ca.cap; i++)
            if (ca.k && ca.k[i] && !sset_slot(&db, ca.k[i], false) && !sset_slot(&q_chat, ca.k[i], false)) {
                fprintf(stderr, "tlrel reader: VIOLATION: chat message %s is in the log (seq <= %" PRIu64 ") but not in the messages query\n",
                        ca.k[i], a.head);
                bad = 1;
            }
        /* upper bound: nothing shown that the second snapshot lacks */
        for (size_t i = 0; have_tracking && i < q_projects.cap; i++)
            if (q_projects.k && q_projects.k[i] && !sset_slot(&pb, q_projects.k[i], false)) {
                fprintf(stderr, "tlrel reader: VIOLATION: tracking shows %s, which the log (seq <= %" PRIu64 ") lacks\n", q_projects.k[i], b.head);
                bad = 1;
            }
        for (size_t i = 0; have_chat && i < q_chat.cap; i++)
            if (q_chat.k && q_chat.k[i] && !sset_slot(&cb, q_chat.k[i], false)) {
                fprintf(stderr, "tlrel reader: VIOLATION: messages shows %s, which the log (seq <= %" PRIu64 ") lacks\n", q_chat.k[i], b.head);
                bad = 1;
            }
        queries += (unsigned long)have_tracking + (unsigned long)have_chat;
        shown += q_projects.n + q_chat.n;
        last_head = b.head;
        sset_free(&pa); sset_free(&ca); sset_free(&da); sset_free(&pb); sset_free(&cb); sset_free(&db);
        sset_free(&q_projects); sset_free(&q_chat);
        snapshot_free(&a);
        snapshot_free(&b);
        if (verify_every && iterations % verify_every == 0) {
            int status;
            snprintf(cmd, sizeof cmd, "'%s' -d '%s' --json verify 2>&1", cli, dir);
            char *out = run_capture(cmd, &status);
            if (status || !strstr(out, "\"ok\":true")) {
                fprintf(stderr, "tlrel reader: VIOLATION: verify while writers run: %.300s\n", out);
                bad = 1;
            }
            free(out);
            verifies++;
        }
        if (bad) break;
    }
    printf("{\"iterations\":%lu,\"queries_checked\":%lu,\"items_checked\":%lu,\"verifies\":%lu,\"last_head\":%" PRIu64
           ",\"violations\":%d}\n", iterations, queries, shown, verifies, last_head, bad);
    return bad;
}

/* ================================================================ hold-read */

static int cmd_hold_read(int argc, char **argv) {
    if (argc != 3) die("hold-read DIR");
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log;
    int rc = tl_log_open(&log, argv[2], &o);
    if (rc) die("open: %s: %s", tl_strerror(rc), tl_errdetail());
    tl_iter *it;
    tl_event_view ev;
    if ((rc = tl_iter_open(log, 1, &it)) != 0 || (rc = tl_iter_next(it, &ev)) != 0)
        die("read: %s: %s", tl_strerror(rc), tl_errdetail());
    printf("ready %" PRIu64 "\n", ev.seq);
    fflush(stdout);
    for (;;) pause(); /* the read transaction stays open until the process is killed */
}


/* ================================================================ hold-write, locate, offset */

static int cmd_hold_write(int argc, char **argv) {
    if (argc != 3) die("hold-write DIR");
    tl_log *log;
    int rc = tl_log_open(&log, argv[2], NULL);
    if (rc) die("open: %s: %s", tl_strerror(rc), tl_errdetail());
    tl_batch *b;
    if ((rc = tl_batch_begin(log, &b)) != 0) die("batch: %s: %s", tl_strerror(rc), tl_errdetail());
    tl_cmd *cmd;
    tl_result res;
    const char *line = "{\"op\":\"account.create\",\"id\":\"never-committed\",\"name\":\"X\"}";
    if (tl_cmd_parse(&cmd, line, strlen(line), &res) == 0) tl_batch_exec(b, cmd, &res);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause(); /* the write transaction (and LMDB's writer lock) stays held until killed */
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    if (!m || m > n) return NULL;
    for (const uint8_t *p = hay; (p = memchr(p, needle[0], n - (size_t)(p - hay) - m + 1)) != NULL; p++)
        if (!memcmp(p, needle, m)) return p;
    return NULL;
}

static int cmd_locate(int argc, char **argv) {
    if (argc != 4) die("locate DIR SEQ");
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    tl_log *log;
    int rc = tl_log_open(&log, argv[2], &o);
    if (rc) die("open: %s: %s", tl_strerror(rc), tl_errdetail());
    uint8_t *rec;
    size_t len;
    if ((rc = tl_log_record(log, strtoull(argv[3], NULL, 10), &rec, &len)) != 0) die("record: %s", tl_errdetail());
    tl_log_close(log);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", argv[2]);
    size_t n;
    uint8_t *file = (uint8_t *)slurp(path, &n);
    const uint8_t *at = find_bytes(file, n, rec, len);
    if (!at) die("record %s not found whole in %s (split across pages?)", argv[3], path);
    for (; at; at = find_bytes(at + 1, n - (size_t)(at + 1 - file), rec, len))
        printf("%zu %zu\n", (size_t)(at - file), len);
    free(file);
    tl_free(rec);
    return 0;
}

static int cmd_offset(int argc, char **argv) {
    if (argc != 4) die("offset FILE NEEDLE");
    size_t n, m;
    uint8_t *file = (uint8_t *)slurp(argv[2], &n), *needle = (uint8_t *)slurp(argv[3], &m);
    const uint8_t *at = find_bytes(file, n, needle, m);
    if (!at) die("not found");
    printf("%zu\n", (size_t)(at - file));
    free(file);
    free(needle);
    return 0;
}

/* ================================================================ diskfull */

static int upload(tl_log *log, const char *as, const char *project, const char *id, size_t bytes, tl_result *res) {
    tl_cmd *cmd;
    int rc = tl_cmd_new(&cmd, "attachment.upload");
    if (rc) die("cmd: %s", tl_errdetail());
    uint8_t *data = xmalloc(bytes);
    for (size_t i = 0; i < bytes; i++) data[i] = (uint8_t)rnd();
    tl_cmd_set_str(cmd, "as", as);
    tl_cmd_set_str(cmd, "project", project);
    tl_cmd_set_str(cmd, "id", id);
    tl_cmd_set_str(cmd, "name", "ballast.bin");
    tl_cmd_set_data(cmd, data, bytes);
    free(data);
    rc = tl_cmd_exec(log, cmd, res);
    tl_cmd_free(cmd);
    return rc;
}

/* Count events and check the chain from this process: reads must keep working. */
static int read_all(tl_log *log, uint64_t *events) {
    tl_iter *it;
    int rc = tl_iter_open(log, 1, &it);
    tl_event_view ev;
    uint64_t n = 0;
    while (!rc && (rc = tl_iter_next(it, &ev)) == 0) n++;
    tl_iter_close(it);
    *events = n;
    return rc == TL_ENOTFOUND ? 0 : rc;
}

static int cmd_diskfull(int argc, char **argv) {
    const char *dir = NULL, *as = NULL, *project = NULL, *ballast = NULL;
    size_t bytes = 1 << 20;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--as") && i + 1 < argc) as = argv[++i];
        else if (!strcmp(argv[i], "--project") && i + 1 < argc) project = argv[++i];
        else if (!strcmp(argv[i], "--ballast") && i + 1 < argc) ballast = argv[++i];
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) bytes = strtoul(argv[++i], NULL, 10);
        else if (!dir) dir = argv[i];
        else die("diskfull: unexpected %s", argv[i]);
    }
    if (!dir || !as || !project) die("diskfull DIR --as U --project P [--ballast FILE] [--bytes B]");
    tl_log *log;
    int rc = tl_log_open(&log, dir, NULL);
    if (rc) die("open: %s: %s", tl_strerror(rc), tl_errdetail());
    unsigned ok = 0, storage = 0;
    uint64_t last_seq = 0;
    tl_result res;
    char id[64];
    /* fill: a storage answer is the only acceptable failure */
    for (unsigned i = 0; i < 4096 && !storage; i++) {
        snprintf(id, sizeof id, "fill-%u", i);
        rc = upload(log, as, project, id, bytes, &res);
        if (rc == 0) { ok++; last_seq = res.seq; }
        else if (rc == TL_ESTORAGE) storage++;
        else die("upload %s: %s: %s", id, tl_strerror(rc), res.message);
    }
    if (!storage) die("the disk never filled");
    uint64_t events;
    /* the full disk must not stop this process from reading */
    if ((rc = read_all(log, &events)) != 0) die("reading on a full disk: %s: %s", tl_strerror(rc), tl_errdetail());
    if (events != last_seq) die("after the storage failure the log has %" PRIu64 " events, the last acknowledged was %" PRIu64, events, last_seq);
    tl_verify_report vr;
    if ((rc = tl_log_verify(log, NULL, &vr)) != 0) die("verify on a full disk: %s", vr.reason);
    /* a second failing write must fail the same clean way */
    snprintf(id, sizeof id, "fill-again");
    rc = upload(log, as, project, id, bytes, &res);
    if (rc != 0 && rc != TL_ESTORAGE) die("second write on a full disk: %s: %s", tl_strerror(rc), res.message);
    if (rc == 0) { ok++; last_seq = res.seq; }
    unsigned resumed = 0;
    if (ballast) {
        if (unlink(ballast) != 0) die("cannot delete the ballast %s: %s", ballast, strerror(errno));
        for (unsigned i = 0; i < 2; i++) {
            snprintf(id, sizeof id, "after-%u", i);
            rc = upload(log, as, project, id, bytes, &res);
            if (rc) die("writing after space was freed: %s: %s", tl_strerror(rc), res.message);
            last_seq = res.seq;
            resumed++;
        }
        if ((rc = read_all(log, &events)) != 0 || events != last_seq) die("after resuming: %" PRIu64 " events, wanted %" PRIu64, events, last_seq);
        if ((rc = tl_log_verify(log, NULL, &vr)) != 0) die("verify after resuming: %s", vr.reason);
    }
    printf("{\"uploads_ok\":%u,\"storage_failures\":%u,\"resumed\":%u,\"events\":%" PRIu64 "}\n", ok, storage, resumed, events);
    tl_log_close(log);
    return 0;
}

/* ================================================================ faultprobe */

typedef struct probe_item {
    const char *line;
    tl_cmd *cmd; /* NULL: answered at parse time */
    tl_result res;
} probe_item;

typedef struct probe {
    tl_log *log;
    const char *as;
    uint64_t last_acked;   /* the highest seq acknowledged so far */
    unsigned groups, failed_groups, reads_after_failure, groups_after_failure;
} probe;

/* Run one group as `apply` does (one batch, one commit); 1 when its commit failed. */
static int probe_group(probe *p, probe_item *items, size_t n, FILE *ack) {
    tl_batch *b = NULL;
    int failed = 0;
    char why[256] = "";
    bool any = false;
    for (size_t i = 0; i < n; i++) any |= items[i].cmd != NULL;
    if (any && tl_batch_begin(p->log, &b) != 0) {
        snprintf(why, sizeof why, "%s", tl_errdetail());
        failed = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!items[i].cmd) continue;
        if (b) tl_batch_exec(b, items[i].cmd, &items[i].res);
        else {
            items[i].res.code = TL_ESTORAGE;
            snprintf(items[i].res.message, sizeof items[i].res.message, "%s", why);
        }
    }
    if (b && tl_batch_commit(b) != 0) failed = 1;
    for (size_t i = 0; i < n; i++) {
        char *json;
        if (tl_result_json(&items[i].res, &json) != 0) die("faultprobe: a result does not render");
        fprintf(ack, "%s\n", json);
        tl_free(json);
        if (items[i].res.code == 0 && items[i].res.seq > p->last_acked) p->last_acked = items[i].res.seq;
    }
    fflush(ack);
    if (any) p->groups++;
    return failed;
}

/* The reads a client makes right after a failed commit, in the same process. */
static void probe_reads(probe *p, const char *when) {
    tl_log_stats st;
    int rc = tl_log_stats_get(p->log, &st);
    if (rc) { fprintf(stderr, "faultprobe: %s: stats: %s: %s\n", when, tl_strerror(rc), tl_errdetail()); exit(3); }
    tl_iter *it;
    rc = tl_iter_open(p->log, 1, &it);
    if (rc) { fprintf(stderr, "faultprobe: %s: reading the log: %s: %s\n", when, tl_strerror(rc), tl_errdetail()); exit(3); }
    tl_event_view ev;
    uint64_t n = 0;
    while ((rc = tl_iter_next(it, &ev)) == 0) {
        if (ev.seq != n + 1) { fprintf(stderr, "faultprobe: %s: event %" PRIu64 " after %" PRIu64 "\n", when, ev.seq, n); exit(3); }
        n++;
    }
    tl_iter_close(it);
    if (rc != TL_ENOTFOUND) { fprintf(stderr, "faultprobe: %s: reading the log: %s: %s\n", when, tl_strerror(rc), tl_errdetail()); exit(3); }
    if (n != st.events || n < p->last_acked) {
        fprintf(stderr, "faultprobe: %s: the log reads %" PRIu64 " events, its head says %" PRIu64 ", %" PRIu64 " were acknowledged\n",
                when, n, st.events, p->last_acked);
        exit(3);
    }
    tl_verify_report vr;
    if ((rc = tl_log_verify(p->log, NULL, &vr)) != 0) { fprintf(stderr, "faultprobe: %s: verify: %s: %s\n", when, tl_strerror(rc), vr.reason); exit(3); }
    char digest[TL_PUBKEY_HEX_SIZE];
    if ((rc = tl_digest(p->log, digest)) != 0) { fprintf(stderr, "faultprobe: %s: digest: %s: %s\n", when, tl_strerror(rc), tl_errdetail()); exit(3); }
    tl_query q = TL_QUERY_INIT;
    q.as = p->as;
    char *json = NULL;
    rc = tl_tracking_query(p->log, &q, &json);
    tl_free(json);
    /* an unknown user (its line failed) is an answer; a storage failure is not */
    if (rc == TL_ESTORAGE || rc == TL_ECORRUPT) {
        fprintf(stderr, "faultprobe: %s: tracking as %s: %s: %s\n", when, p->as, tl_strerror(rc), tl_errdetail());
        exit(3);
    }
}

/* Run lines in groups of k; failed lines' text goes to retry (when not NULL). */
static void probe_run(probe *p, lines *l, size_t k, FILE *ack, FILE *retry, bool count_failures) {
    probe_item *items = xmalloc(l->n * sizeof *items);
    size_t n = 0, cmds = 0, start = 0;
    bool seen_failure = false;
    for (size_t i = 0; i <= l->n; i++) {
        if (i < l->n) {
            if (blank(l->v[i])) continue;
            probe_item *it = &items[n++];
            memset(it, 0, sizeof *it);
            it->line = l->v[i];
            if (tl_cmd_parse(&it->cmd, it->line, strlen(it->line), &it->res) == 0) cmds++;
            else it->cmd = NULL;
            if (cmds < k) continue;
        }
        if (n == start) break;
        bool failed = probe_group(p, items + start, n - start, ack);
        if (count_failures && failed) {
            p->failed_groups++;
            char when[64];
            snprintf(when, sizeof when, "after the failed commit of group %u", p->groups);
            probe_reads(p, when);
            p->reads_after_failure++;
            seen_failure = true;
        } else if (count_failures && seen_failure && !failed) {
            p->groups_after_failure++;
        }
        for (size_t j = start; j < n; j++) {
            if (retry && items[j].res.code == TL_ESTORAGE) fprintf(retry, "%s\n", items[j].line);
            tl_cmd_free(items[j].cmd);
        }
        start = n;
        cmds = 0;
    }
    free(items);
}

static int cmd_faultprobe(int argc, char **argv) {
    const char *dir = NULL, *stream = NULL, *ack_path = NULL, *retry_path = NULL, *retry_ack_path = NULL, *as = "f-u1";
    size_t k = 7;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ack") && i + 1 < argc) ack_path = argv[++i];
        else if (!strcmp(argv[i], "--retry") && i + 1 < argc) retry_path = argv[++i];
        else if (!strcmp(argv[i], "--retry-ack") && i + 1 < argc) retry_ack_path = argv[++i];
        else if (!strcmp(argv[i], "--sync-every") && i + 1 < argc) k = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--as") && i + 1 < argc) as = argv[++i];
        else if (!dir) dir = argv[i];
        else if (!stream) stream = argv[i];
        else die("faultprobe: unexpected %s", argv[i]);
    }
    if (!dir || !stream || !ack_path || !retry_path || !retry_ack_path || !k)
        die("faultprobe DIR STREAM --ack FILE --retry FILE --retry-ack FILE [--sync-every K] [--as U]");
    probe p = {.as = as};
    int rc = tl_log_open(&p.log, dir, NULL);
    if (rc) die("faultprobe: open: %s: %s", tl_strerror(rc), tl_errdetail());
    lines l;
    lines_load(&l, stream);
    FILE *ack = fopen(ack_path, "w"), *retry = fopen(retry_path, "w");
    if (!ack || !retry) die("faultprobe: cannot write %s or %s", ack_path, retry_path);
    probe_run(&p, &l, k, ack, retry, true);
    fclose(ack);
    fclose(retry);
    lines_free(&l);
    /* the client sends again what failed, from the same process */
    lines r;
    lines_load(&r, retry_path);
    FILE *ack2 = fopen(retry_ack_path, "w");
    if (!ack2) die("faultprobe: cannot write %s", retry_ack_path);
    unsigned before = p.groups;
    probe p2 = p;
    probe_run(&p2, &r, k, ack2, NULL, false);
    fclose(ack2);
    size_t retried = 0;
    for (size_t i = 0; i < r.n; i++) retried += !blank(r.v[i]);
    lines_free(&r);
    probe_reads(&p2, "after the retry");
    printf("{\"groups\":%u,\"failed_groups\":%u,\"reads_after_failure\":%u,\"groups_after_failure\":%u,"
           "\"retried\":%zu,\"retry_groups\":%u}\n",
           p.groups, p.failed_groups, p.reads_after_failure, p.groups_after_failure, retried, p2.groups - before);
    tl_log_close(p.log);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: tlrel gen|count|rest|check|snapshot|hold-read|diskfull|faultprobe ...");
    const char *c = argv[1];
    if (!strcmp(c, "gen")) return cmd_gen(argc, argv);
    if (!strcmp(c, "count")) return cmd_count(argc, argv);
    if (!strcmp(c, "rest")) return cmd_rest(argc, argv);
    if (!strcmp(c, "check")) return cmd_check(argc, argv);
    if (!strcmp(c, "snapshot")) return cmd_snapshot(argc, argv);
    if (!strcmp(c, "hold-read")) return cmd_hold_read(argc, argv);
    if (!strcmp(c, "reader")) return cmd_reader(argc, argv);
    if (!strcmp(c, "hold-write")) return cmd_hold_write(argc, argv);
    if (!strcmp(c, "locate")) return cmd_locate(argc, argv);
    if (!strcmp(c, "offset")) return cmd_offset(argc, argv);
    if (!strcmp(c, "diskfull")) return cmd_diskfull(argc, argv);
    if (!strcmp(c, "faultprobe")) return cmd_faultprobe(argc, argv);
    die("unknown command %s", c);
}
