/*
 * domain_fixture.h — the scenario shared by the domain suites (test_rules_* through
 * rules_fixture.h, test_authz, test_malformed): a fresh log (small attachment limit, so
 * too_large is cheap to reach), a common cast of accounts, users, projects, channels and
 * messages built with real commands in one batch, and a tiny template language for command
 * lines:
 *
 *   @SEQ(label)   the sequence number of the scenario command labelled `label`
 *   @X(n)         n bytes of 'x'              @E(n)   n times 'é' (2n bytes of UTF-8)
 *   @B64(n)       base64 of n bytes           @ID(n)  an id of n characters
 *
 * Header-only (static functions) because each tests/test_*.c is its own executable.
 *
 * The cast (see fx_scenario for every line):
 *   accounts acme, beta
 *   members alice, bob (acme), carl (beta); staff sam, sue; ambassadors zoe, amy, noa;
 *   auditor aud
 *   o-1 acme order, ambassador zoe, ambassador message am-1 (channel exists), status shipped
 *   o-2 acme order, ambassador zoe, no message (no ambassador channel)
 *   o-3 acme order, ambassador amy, message am-3;  v-1 acme video;  b-1 beta application
 *   t-1 (o-1, first message m-1 by alice), t-2 (b-1, m-b1), t-3 (v-1, m-v1)
 *   m-2 sam in t-1, replied by m-3 (alice, live)   m-4 alice, deleted
 *   m-5 alice, pinned by bob                        m-6 bob, its reply m-7 deleted
 *   m-8 alice with attachment a-2                    am-2 zoe in o-1's ambassador channel
 *   s-1 alice in acme's support, s-b1 carl in beta's support
 *   uploads: a-1 a-5 a-6 a-7 (alice, o-1, unused), a-3 (bob, o-1), a-4 (alice, v-1),
 *            a-s (alice, acme support), a-8 a-9 a-10 a-11 (alice, o-2, unused)
 *   n-1 bob's note on o-1 — the newest history entry of o-1 for members; staff's newest
 *   is m-8 (notes are invisible to them), zoe's is am-2. Reads come last (no entries).
 */
#ifndef TL_DOMAIN_FIXTURE_H
#define TL_DOMAIN_FIXTURE_H

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "threadlog.h"

#define FX_UNUSED __attribute__((unused))
#define FX_MAX_ATTACHMENT 1024
#define FX_MAX_LABELS 128

typedef struct fx {
    tl_log *log;
    char *base; /* the temp dir (removed at close) */
    char *dir;  /* the log dir inside it */
    size_t n;
    char labels[FX_MAX_LABELS][40];
    uint64_t seqs[FX_MAX_LABELS];
} fx;

typedef struct fx_line {
    const char *label; /* NULL: not recorded */
    const char *json;
} fx_line;

static const fx_line fx_cast[] = {
    {"acme", "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}"},
    {"beta", "{\"op\":\"account.create\",\"id\":\"beta\",\"name\":\"Beta\"}"},
    {"alice", "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}"},
    {"bob", "{\"op\":\"user.create\",\"id\":\"bob\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Bob\"}"},
    {"carl", "{\"op\":\"user.create\",\"id\":\"carl\",\"role\":\"member\",\"account\":\"beta\",\"name\":\"Carl\"}"},
    {"sam", "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}"},
    {"sue", "{\"op\":\"user.create\",\"id\":\"sue\",\"role\":\"staff\",\"name\":\"Sue\"}"},
    {"zoe", "{\"op\":\"user.create\",\"id\":\"zoe\",\"role\":\"ambassador\",\"name\":\"Zo\\u00e9\"}"},
    {"amy", "{\"op\":\"user.create\",\"id\":\"amy\",\"role\":\"ambassador\",\"name\":\"Amy\"}"},
    {"noa", "{\"op\":\"user.create\",\"id\":\"noa\",\"role\":\"ambassador\",\"name\":\"Noa\"}"},
    {"aud", "{\"op\":\"user.create\",\"id\":\"aud\",\"role\":\"auditor\",\"name\":\"Audrey\"}"},
    {"o-1", "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\","
            "\"title\":\"Order 1\",\"ambassador\":\"zoe\",\"ambassador_message\":\"Size M please\","
            "\"ambassador_message_id\":\"am-1\"}"},
    {"o-2", "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-2\",\"account\":\"acme\",\"type\":\"order\","
            "\"title\":\"Order 2\",\"ambassador\":\"zoe\"}"},
    {"o-3", "{\"op\":\"project.create\",\"as\":\"amy\",\"id\":\"o-3\",\"account\":\"acme\",\"type\":\"order\","
            "\"title\":\"Order 3\",\"ambassador\":\"amy\",\"ambassador_message\":\"Hello\",\"ambassador_message_id\":\"am-3\"}"},
    {"v-1", "{\"op\":\"project.create\",\"as\":\"sam\",\"id\":\"v-1\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"Video 1\"}"},
    {"b-1", "{\"op\":\"project.create\",\"as\":\"carl\",\"id\":\"b-1\",\"account\":\"beta\",\"type\":\"application\",\"title\":\"Beta app\"}"},
    {"status-o-1", "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"o-1\",\"status\":\"shipped\"}"},
    {"t-1", "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Shipping\",\"body\":\"When?\",\"message_id\":\"m-1\"}"},
    {"t-2", "{\"op\":\"topic.create\",\"as\":\"carl\",\"id\":\"t-2\",\"project\":\"b-1\",\"title\":\"Beta topic\",\"body\":\"Hello\",\"message_id\":\"m-b1\"}"},
    {"t-3", "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-3\",\"project\":\"v-1\",\"title\":\"Cut\",\"body\":\"Cut?\",\"message_id\":\"m-v1\"}"},
    {"m-2", "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"m-2\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"Tomorrow\"}"},
    {"m-3", "{\"op\":\"message.reply\",\"as\":\"alice\",\"id\":\"m-3\",\"message\":\"m-2\",\"body\":\"Thanks\"}"},
    {"m-4", "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-4\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"oops\"}"},
    {"del-m-4", "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"m-4\"}"},
    {"m-5", "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-5\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"pin me\"}"},
    {"pin-m-5", "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"m-5\"}"},
    {"m-6", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"m-6\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"from bob\"}"},
    {"m-7", "{\"op\":\"message.reply\",\"as\":\"alice\",\"id\":\"m-7\",\"message\":\"m-6\",\"body\":\"gone soon\"}"},
    {"del-m-7", "{\"op\":\"message.delete\",\"as\":\"alice\",\"message\":\"m-7\"}"},
    {"am-2", "{\"op\":\"message.send\",\"as\":\"zoe\",\"id\":\"am-2\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"Thanks!\"}"},
    {"s-1", "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"Help\"}"},
    {"s-b1", "{\"op\":\"message.send\",\"as\":\"carl\",\"id\":\"s-b1\",\"account\":\"beta\",\"channel\":\"support\",\"body\":\"Help beta\"}"},
    {"a-1", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-1\",\"project\":\"o-1\",\"name\":\"a.txt\",\"data\":\"YQ==\"}"},
    {"a-2", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-2\",\"project\":\"o-1\",\"name\":\"b.txt\",\"mime\":\"text/plain\",\"data\":\"Yg==\"}"},
    {"m-8", "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-8\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"see b.txt\",\"attachments\":[\"a-2\"]}"},
    {"a-3", "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"a-3\",\"project\":\"o-1\",\"name\":\"c.txt\",\"data\":\"Yw==\"}"},
    {"a-4", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-4\",\"project\":\"v-1\",\"name\":\"d.txt\",\"data\":\"ZA==\"}"},
    {"a-5", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-5\",\"project\":\"o-1\",\"name\":\"e.txt\",\"data\":\"\"}"},
    {"a-6", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-6\",\"project\":\"o-1\",\"name\":\"f.txt\",\"data\":\"Zg==\"}"},
    {"a-7", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-7\",\"project\":\"o-1\",\"name\":\"g.txt\",\"data\":\"Zw==\"}"},
    {"a-s", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-s\",\"account\":\"acme\",\"name\":\"s.txt\",\"data\":\"cw==\"}"},
    {"a-8", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-8\",\"project\":\"o-2\",\"name\":\"h.txt\",\"data\":\"aA==\"}"},
    {"a-9", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-9\",\"project\":\"o-2\",\"name\":\"i.txt\",\"data\":\"aQ==\"}"},
    {"a-10", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-10\",\"project\":\"o-2\",\"name\":\"j.txt\",\"data\":\"ag==\"}"},
    {"a-11", "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-11\",\"project\":\"o-2\",\"name\":\"k.txt\",\"data\":\"aw==\"}"},
    {"n-1", "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"Check stock\"}"},
    {"read-bob-m-2", "{\"op\":\"message.read\",\"as\":\"bob\",\"message\":\"m-2\"}"},
    {"read-alice-m-2", "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-2\"}"},
};

static FX_UNUSED uint64_t fx_events(fx *f) {
    tl_log_stats st;
    int rc = tl_log_stats_get(f->log, &st);
    ck_assert_msg(rc == 0, "stats: %s", tl_errdetail());
    return st.events;
}

static FX_UNUSED void fx_open(fx *f, uint64_t max_attachment) {
    memset(f, 0, sizeof *f);
    f->base = tu_tmpdir();
    ck_assert_ptr_nonnull(f->base);
    f->dir = malloc(strlen(f->base) + 8);
    sprintf(f->dir, "%s/log", f->base);
    tl_init_options o = TL_INIT_OPTIONS_INIT;
    o.max_attachment = max_attachment;
    char pk[TL_PUBKEY_HEX_SIZE];
    int rc = tl_log_init(f->dir, &o, pk);
    ck_assert_msg(rc == 0, "init: %s %s", tl_strerror(rc), tl_errdetail());
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    oo.flags = TL_OPEN_NOSYNC; /* what is tested here is decisions, not durability */
    rc = tl_log_open(&f->log, f->dir, &oo);
    ck_assert_msg(rc == 0, "open: %s %s", tl_strerror(rc), tl_errdetail());
}

static FX_UNUSED void fx_close(fx *f) {
    tl_log_close(f->log);
    tu_rmdir(f->base);
    free(f->base);
    free(f->dir);
    memset(f, 0, sizeof *f);
}

static FX_UNUSED uint64_t fx_seq(const fx *f, const char *label) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->labels[i], label) == 0) return f->seqs[i];
    ck_abort_msg("no scenario label %s", label);
    return 0;
}

static FX_UNUSED void fx_record(fx *f, const char *label, uint64_t seq) {
    ck_assert_uint_lt(f->n, FX_MAX_LABELS);
    snprintf(f->labels[f->n], sizeof f->labels[0], "%s", label);
    f->seqs[f->n++] = seq;
}

/* Expand the template language of the header comment; malloc'd. */
static FX_UNUSED char *fx_expand(const fx *f, const char *t) {
    size_t cap = strlen(t) + 64, len = 0;
    char *out = malloc(cap);
#define FX_PUT(p, n)                                                     \
    do {                                                                 \
        size_t n_ = (n);                                                 \
        while (len + n_ + 1 > cap) out = realloc(out, cap *= 2);          \
        memcpy(out + len, (p), n_);                                      \
        len += n_;                                                       \
    } while (0)
    while (*t) {
        if (*t != '@' || !strchr(t, '(')) { FX_PUT(t, 1); t++; continue; }
        const char *open = strchr(t, '('), *close = strchr(open, ')');
        char name[8] = "", arg[64] = "";
        size_t nl = (size_t)(open - t - 1), al = close ? (size_t)(close - open - 1) : 0;
        if (!close || nl >= sizeof name || al >= sizeof arg) { FX_PUT(t, 1); t++; continue; }
        memcpy(name, t + 1, nl);
        memcpy(arg, open + 1, al);
        long n = strtol(arg, NULL, 10);
        if (!strcmp(name, "SEQ")) {
            char num[32];
            snprintf(num, sizeof num, "%llu", (unsigned long long)fx_seq(f, arg));
            FX_PUT(num, strlen(num));
        } else if (!strcmp(name, "X") || !strcmp(name, "ID")) {
            for (long i = 0; i < n; i++) FX_PUT(name[0] == 'X' ? "x" : "i", 1);
        } else if (!strcmp(name, "E")) {
            for (long i = 0; i < n; i++) FX_PUT("\xc3\xa9", 2);
        } else if (!strcmp(name, "B64")) {
            unsigned char *raw = calloc(1, (size_t)n + 1);
            size_t bl = sodium_base64_encoded_len((size_t)n, sodium_base64_VARIANT_ORIGINAL);
            char *b = malloc(bl);
            sodium_bin2base64(b, bl, raw, (size_t)n, sodium_base64_VARIANT_ORIGINAL);
            FX_PUT(b, strlen(b));
            free(b);
            free(raw);
        } else {
            FX_PUT(t, 1);
            t++;
            continue;
        }
        t = close + 1;
    }
    out[len] = 0;
#undef FX_PUT
    return out;
}

/* Parse and execute one JSON line (after expansion) in its own commit. */
static FX_UNUSED int fx_cmd(fx *f, const char *tmpl, tl_result *res) {
    char *line = fx_expand(f, tmpl);
    tl_cmd *cmd;
    int rc = tl_cmd_parse(&cmd, line, strlen(line), res);
    free(line);
    if (rc) return rc;
    rc = tl_cmd_exec(f->log, cmd, res);
    tl_cmd_free(cmd);
    return rc;
}

/* Execute a line that must succeed (and append); returns its seq. */
static FX_UNUSED uint64_t fx_ok(fx *f, const char *tmpl) {
    tl_result res;
    int rc = fx_cmd(f, tmpl, &res);
    ck_assert_msg(rc == 0 && !res.noop && res.seq, "setup line failed: %s\n  %s: %s", tmpl, tl_strerror(rc),
                  res.message);
    return res.seq;
}

/* Run lines in one batch (one commit), each required to append; labels recorded. */
static FX_UNUSED void fx_run(fx *f, const fx_line *lines, size_t n) {
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(f->log, &b), 0);
    tl_cmd **cmds = calloc(n, sizeof *cmds);
    tl_result *res = calloc(n, sizeof *res);
    for (size_t i = 0; i < n; i++) {
        char *line = fx_expand(f, lines[i].json);
        int rc = tl_cmd_parse(&cmds[i], line, strlen(line), &res[i]);
        ck_assert_msg(rc == 0, "scenario line %zu does not parse: %s", i, res[i].message);
        free(line);
        tl_batch_exec(b, cmds[i], &res[i]);
    }
    ck_assert_msg(tl_batch_commit(b) == 0, "scenario commit: %s", tl_errdetail());
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(res[i].code == 0 && !res[i].noop && res[i].seq, "scenario line %zu (%s) failed: %s: %s", i,
                      lines[i].label ? lines[i].label : "?", tl_strerror(res[i].code), res[i].message);
        if (lines[i].label) fx_record(f, lines[i].label, res[i].seq);
        tl_cmd_free(cmds[i]);
    }
    free(cmds);
    free(res);
}

/*
 * A template of the scenario, built once by main() before the (forking) runner starts, so
 * each test copies two small files instead of creating a key and replaying the cast.
 */
static fx fx_tmpl;
static bool fx_tmpl_ready;

static FX_UNUSED int fx_copy_file(const char *from, const char *to) {
    size_t len;
    char *data = tu_read_file(from, &len);
    if (!data) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    return rc;
}

/* Build the template: the cast, then `more` lines (may be NULL). Call from main(). */
static FX_UNUSED void fx_template(const fx_line *more, size_t n) {
    fx_open(&fx_tmpl, FX_MAX_ATTACHMENT);
    fx_run(&fx_tmpl, fx_cast, sizeof fx_cast / sizeof fx_cast[0]);
    if (more) fx_run(&fx_tmpl, more, n);
    tl_log_close(fx_tmpl.log);
    fx_tmpl.log = NULL;
    fx_tmpl_ready = true;
}

static FX_UNUSED void fx_template_remove(void) {
    if (!fx_tmpl_ready) return;
    tu_rmdir(fx_tmpl.base);
    free(fx_tmpl.base);
    free(fx_tmpl.dir);
    fx_tmpl_ready = false;
}

/* A fresh log holding the whole cast (a copy of the template when there is one). */
static FX_UNUSED void fx_scenario(fx *f) {
    if (!fx_tmpl_ready) {
        fx_open(f, FX_MAX_ATTACHMENT);
        fx_run(f, fx_cast, sizeof fx_cast / sizeof fx_cast[0]);
        return;
    }
    *f = fx_tmpl;
    f->base = tu_tmpdir();
    ck_assert_ptr_nonnull(f->base);
    f->dir = malloc(strlen(f->base) + 8);
    sprintf(f->dir, "%s/log", f->base);
    char from[4200], to[4200];
    ck_assert_int_eq(mkdir(f->dir, 0700), 0);
    static const char *const files[] = {"data.mdb", "writer.key"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", fx_tmpl.dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", f->dir, files[i]);
        ck_assert_msg(fx_copy_file(from, to) == 0, "copying %s", from);
        chmod(to, 0600);
    }
    tl_open_options oo = TL_OPEN_OPTIONS_INIT;
    oo.flags = TL_OPEN_NOSYNC;
    int rc = tl_log_open(&f->log, f->dir, &oo);
    ck_assert_msg(rc == 0, "open copy: %s %s", tl_strerror(rc), tl_errdetail());
}

#endif
