/*
 * test_log_export.c — tl_export's lines as docs/EXPORT.md defines them, on a small log of two
 * accounts with a key rotation and an erasure: each scope holds exactly its events (Scopes),
 * the header's chain, keys and key events, every event line's key by the key chain, the
 * trailer's count and last sequence, an unknown scope refused with no line, and the CSV's
 * erased content and quoting. (tests/cli/export_verify.sh runs the independent verifier on
 * the CLI's exports; this suite pins what the verifier cannot know: which events a scope must
 * hold.)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "testutil.h"

typedef struct lines {
    char *l[64];
    size_t n;
} lines;

static int collect(const char *line, size_t len, void *payload) {
    lines *ls = payload;
    ck_assert_uint_lt(ls->n, 64);
    ls->l[ls->n] = malloc(len + 1);
    memcpy(ls->l[ls->n], line, len + 1);
    ls->n++;
    return 0;
}

static void lines_free(lines *ls) {
    for (size_t i = 0; i < ls->n; i++) free(ls->l[i]);
    ls->n = 0;
}

static int export_to(tl_log *log, const char *project, const char *account, int format, lines *ls) {
    tl_export_options o = TL_EXPORT_OPTIONS_INIT;
    o.project = project;
    o.account = account;
    o.format = format;
    lines_free(ls);
    return tl_export(log, &o, collect, ls);
}

/* The sequence numbers of the event lines, in order, as "2,4,7" (into out). */
static void event_seqs(const lines *ls, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < ls->n; i++) {
        unsigned long long s;
        if (sscanf(ls->l[i], "{\"type\":\"event\",\"seq\":%llu", &s) == 1)
            len += (size_t)snprintf(out + len, cap - len, "%s%llu", len ? "," : "", s);
    }
}

/* The event line of seq (NULL if none). */
static const char *event_line(const lines *ls, uint64_t seq) {
    char want[64];
    snprintf(want, sizeof want, "{\"type\":\"event\",\"seq\":%llu,", (unsigned long long)seq);
    for (size_t i = 0; i < ls->n; i++)
        if (strncmp(ls->l[i], want, strlen(want)) == 0) return ls->l[i];
    return NULL;
}

/* The 64 hex digits after `"name":"` in s (into out). */
static void hex_after(const char *s, const char *name, char out[65]) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(s, pat);
    ck_assert_msg(p, "no %s in %s", name, s);
    memcpy(out, p + strlen(pat), 64);
    out[64] = 0;
}

static void run_ok(tl_log *log, const char *line) {
    tl_cmd *cmd;
    tl_result r;
    ck_assert_msg(tl_cmd_parse(&cmd, line, strlen(line), &r) == 0, "parse %s: %s", line, r.message);
    ck_assert_msg(tl_cmd_exec(log, cmd, &r) == 0 && r.code == 0, "%s: %s", line, r.message);
    tl_cmd_free(cmd);
}

/*
 *  1 log.created            8 project.created o-2 (beta)
 *  2 account.created acme   9 message.sent support, account acme
 *  3 account.created beta  10 message.sent support, account beta
 *  4 user.created alice    11 note.added o-1
 *  5 user.created bob      12 key.rotated
 *  6 user.created sam      13 note.added o-1 (signed by the new key)
 *  7 project.created o-1   14 content.erased (note 13, project o-1)
 */
static tl_log *two_accounts(char **dir, char new_key[TL_PUBKEY_HEX_SIZE]) {
    tl_log *log = tu_new_log(dir);
    run_ok(log, "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}");
    run_ok(log, "{\"op\":\"account.create\",\"id\":\"beta\",\"name\":\"Beta\"}");
    run_ok(log, "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}");
    run_ok(log, "{\"op\":\"user.create\",\"id\":\"bob\",\"role\":\"member\",\"account\":\"beta\",\"name\":\"Bob\"}");
    run_ok(log, "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}");
    run_ok(log, "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O1\"}");
    run_ok(log, "{\"op\":\"project.create\",\"as\":\"bob\",\"id\":\"o-2\",\"account\":\"beta\",\"type\":\"order\",\"title\":\"O2\"}");
    run_ok(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"s-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"help \\\"quoted\\\"\"}");
    run_ok(log, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"s-2\",\"account\":\"beta\",\"channel\":\"support\",\"body\":\"beta help\"}");
    run_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"kept\"}");
    ck_assert_int_eq(tl_log_rotate_key(log, new_key), 0);
    run_ok(log, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-2\",\"project\":\"o-1\",\"body\":\"to be erased\"}");
    tl_result r;
    ck_assert_int_eq(tl_erase(log, "n-2", "request", &r), 0);
    return log;
}

static void remove_log(tl_log *log, char *dir) {
    tl_log_close(log);
    *strrchr(dir, '/') = 0;
    tu_rmdir(dir);
    free(dir);
}

/* Each scope holds exactly its events, its header names it and its chain, and its trailer
 * counts them (EXPORT.md, Scopes). */
START_TEST(scopes_hold_exactly_their_events) {
    char *dir, new_key[TL_PUBKEY_HEX_SIZE];
    tl_log *log = two_accounts(&dir, new_key);
    lines ls = {0};
    char seqs[256];

    ck_assert_int_eq(export_to(log, NULL, NULL, TL_EXPORT_JSONL, &ls), 0);
    event_seqs(&ls, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "1,2,3,4,5,6,7,8,9,10,11,12,13,14");
    ck_assert_msg(strstr(ls.l[0], "\"scope\":{\"log\":true},\"chain\":\"complete\""), "%s", ls.l[0]);
    ck_assert_str_eq(ls.l[ls.n - 1], "{\"type\":\"end\",\"events\":14,\"last_seq\":14}");

    ck_assert_int_eq(export_to(log, "o-1", NULL, TL_EXPORT_JSONL, &ls), 0);
    event_seqs(&ls, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "7,11,13,14"); /* the erasure carries its content's project */
    ck_assert_msg(strstr(ls.l[0], "\"scope\":{\"project\":\"o-1\"},\"chain\":\"per_event\""), "%s", ls.l[0]);
    ck_assert_str_eq(ls.l[ls.n - 1], "{\"type\":\"end\",\"events\":4,\"last_seq\":14}");

    /* acme: its creation, its member, its project's events, its support conversation */
    ck_assert_int_eq(export_to(log, NULL, "acme", TL_EXPORT_JSONL, &ls), 0);
    event_seqs(&ls, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "2,4,7,9,11,13,14");
    ck_assert_msg(strstr(ls.l[0], "\"scope\":{\"account\":\"acme\"},\"chain\":\"per_event\""), "%s", ls.l[0]);
    ck_assert_str_eq(ls.l[ls.n - 1], "{\"type\":\"end\",\"events\":7,\"last_seq\":14}");

    ck_assert_int_eq(export_to(log, NULL, "beta", TL_EXPORT_JSONL, &ls), 0);
    event_seqs(&ls, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "3,5,8,10");
    ck_assert_str_eq(ls.l[ls.n - 1], "{\"type\":\"end\",\"events\":4,\"last_seq\":10}");

    /* a scope with no event: a header and a trailer of 0 */
    run_ok(log, "{\"op\":\"account.create\",\"id\":\"gamma\",\"name\":\"Gamma\"}");
    run_ok(log, "{\"op\":\"user.create\",\"id\":\"gus\",\"role\":\"member\",\"account\":\"gamma\",\"name\":\"Gus\"}");
    run_ok(log, "{\"op\":\"project.create\",\"as\":\"gus\",\"id\":\"o-3\",\"account\":\"gamma\",\"type\":\"order\",\"title\":\"O3\"}");
    ck_assert_int_eq(export_to(log, "o-3", NULL, TL_EXPORT_JSONL, &ls), 0);
    event_seqs(&ls, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "17");

    /* an unknown scope is not_found, not an empty export: no line at all */
    ck_assert_int_eq(export_to(log, "o-9", NULL, TL_EXPORT_JSONL, &ls), TL_ENOTFOUND);
    ck_assert_uint_eq(ls.n, 0);
    ck_assert_int_eq(export_to(log, NULL, "nobody", TL_EXPORT_JSONL, &ls), TL_ENOTFOUND);
    ck_assert_uint_eq(ls.n, 0);
    ck_assert_int_eq(export_to(log, "o-1", "acme", TL_EXPORT_JSONL, &ls), TL_EUSAGE);
    ck_assert_uint_eq(ls.n, 0);
    ck_assert_int_eq(export_to(log, "bad!", NULL, TL_EXPORT_JSONL, &ls), TL_EINVALID);
    ck_assert_int_eq(export_to(log, NULL, "bad!", TL_EXPORT_JSONL, &ls), TL_EINVALID);
    ck_assert_uint_eq(ls.n, 0);
    lines_free(&ls);
    remove_log(log, dir);
}
END_TEST

/* The header's key chain (keys with from_seq and introduced_by, the key events, whole) and the
 * key of every event line: the rotation event by the key it replaces, the next by the new. */
START_TEST(key_chain_and_event_keys) {
    char *dir, new_key[TL_PUBKEY_HEX_SIZE];
    tl_log *log = two_accounts(&dir, new_key);
    lines ls = {0};
    for (int scope = 0; scope < 2; scope++) {
        ck_assert_int_eq(export_to(log, scope ? "o-1" : NULL, NULL, TL_EXPORT_JSONL, &ls), 0);
        const char *h = ls.l[0];
        char genesis[65], want[400];
        hex_after(h, "genesis_key", genesis);
        snprintf(want, sizeof want,
                 "\"keys\":[{\"public_key\":\"%s\",\"from_seq\":1,\"introduced_by\":1},{\"public_key\":\"%s\",\"from_seq\":13,"
                 "\"introduced_by\":12}],\"key_events\":[{\"type\":\"event\",\"seq\":1,",
                 genesis, new_key);
        ck_assert_msg(strstr(h, want), "header %s", h);
        ck_assert_msg(strstr(h, ",{\"type\":\"event\",\"seq\":12,") && strstr(h, "\"kind\":\"key.rotated\""), "key events: %s", h);
        ck_assert_msg(!strstr(h, "\"content\":"), "key events come without content: %s", h);
        if (!scope) {
            char key[65];
            hex_after(event_line(&ls, 12), "key", key);
            ck_assert_str_eq(key, genesis); /* signed by the key it replaces */
            hex_after(event_line(&ls, 11), "key", key);
            ck_assert_str_eq(key, genesis);
        }
        char key[65];
        hex_after(event_line(&ls, 13), "key", key);
        ck_assert_str_eq(key, new_key);
    }
    lines_free(&ls);
    remove_log(log, dir);
}
END_TEST

/* Content: as stored with its salt, or erased; the CSV shows bodies, [erased], doubled quotes. */
START_TEST(content_and_csv) {
    char *dir, new_key[TL_PUBKEY_HEX_SIZE];
    tl_log *log = two_accounts(&dir, new_key);
    lines ls = {0};
    ck_assert_int_eq(export_to(log, "o-1", NULL, TL_EXPORT_JSONL, &ls), 0);
    ck_assert_msg(strstr(event_line(&ls, 13), ",\"content\":{\"body_commit\":{\"erased\":true}}}"), "%s", event_line(&ls, 13));
    ck_assert_msg(strstr(event_line(&ls, 11), ",\"content\":{\"body_commit\":{\"salt\":\""), "%s", event_line(&ls, 11));
    /* an extension's payload is its own: a body_commit field there commits to nothing stored */
    uint8_t x[1 + 12 + 2 + 32] = {0x81, 0xab, 'b', 'o', 'd', 'y', '_', 'c', 'o', 'm', 'm', 'i', 't', 0xc4, 0x20};
    tl_draft d = {"x.ext", "@operator", "o-1", x, sizeof x};
    uint64_t xseq;
    ck_assert_int_eq(tl_log_append(log, &d, 1, &xseq), 0);
    ck_assert_int_eq(export_to(log, "o-1", NULL, TL_EXPORT_JSONL, &ls), 0);
    ck_assert_msg(event_line(&ls, xseq) && !strstr(event_line(&ls, xseq), "\"content\""), "%s", event_line(&ls, xseq));
    ck_assert_int_eq(export_to(log, NULL, "acme", TL_EXPORT_CSV, &ls), 0);
    ck_assert_str_eq(ls.l[0], "time,seq,who,channel,what");
    ck_assert_uint_eq(ls.n, 9); /* 7 events, the extension event of o-1 and the heading */
    bool erased = false, quoted = false;
    for (size_t i = 1; i < ls.n; i++) {
        if (strstr(ls.l[i], ",\"13\",\"alice\",\"notes\",\"note.added n-2: [erased]\"")) erased = true;
        if (strstr(ls.l[i], ",\"9\",\"alice\",\"support\",\"message.sent s-1: help \"\"quoted\"\"\"")) quoted = true;
    }
    ck_assert_msg(erased && quoted, "csv:\n%s\n%s", ls.l[5], ls.l[4]);
    lines_free(&ls);
    remove_log(log, dir);
}
END_TEST

/* The CSV's channel of an upload no message carries yet (EXPORT.md, CSV `channel`): the
 * support conversation's for an account's upload, none (a project-level event) for a
 * project's. */
START_TEST(csv_channel_of_an_unused_upload) {
    char *dir, new_key[TL_PUBKEY_HEX_SIZE];
    tl_log *log = two_accounts(&dir, new_key);
    run_ok(log, "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-s\",\"account\":\"acme\",\"name\":\"s.txt\",\"data\":\"aGk=\"}");
    run_ok(log, "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-p\",\"project\":\"o-1\",\"name\":\"p.txt\",\"data\":\"aGk=\"}");
    lines ls = {0};
    ck_assert_int_eq(export_to(log, NULL, "acme", TL_EXPORT_CSV, &ls), 0);
    bool support = false, project = false;
    for (size_t i = 1; i < ls.n; i++) {
        if (strstr(ls.l[i], ",\"15\",\"alice\",\"support\",\"attachment.uploaded")) support = true;
        if (strstr(ls.l[i], ",\"16\",\"alice\",\"\",\"attachment.uploaded")) project = true;
    }
    ck_assert_msg(support && project, "csv:\n%s\n%s", ls.l[ls.n - 2], ls.l[ls.n - 1]);
    lines_free(&ls);
    remove_log(log, dir);
}
END_TEST

/* The header's cut_erasures are the erasures a cut removed, each by an event beyond the head
 * (EXPORT.md, `cut_erasures`; FORMAT.md §2, meta erased/): a meta mark naming an event the
 * log still holds (here the head, 14, set by hand) is not one; a mark beyond it (15) is. */
START_TEST(cut_erasures_lie_beyond_the_head) {
    char *dir, new_key[TL_PUBKEY_HEX_SIZE];
    tl_log *log = two_accounts(&dir, new_key);
    tl_log_close(log);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_NOSYNC, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    for (int i = 0; i < 2; i++) {
        uint8_t key[7 + 32], seq[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)(14 + i)};
        memcpy(key, "erased/", 7);
        memset(key + 7, i ? 0xcd : 0xab, 32);
        MDB_val k = {sizeof key, key}, v = {sizeof seq, seq};
        ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ck_assert_int_eq(tl_log_open(&log, dir, NULL), 0);
    lines ls = {0};
    ck_assert_int_eq(export_to(log, NULL, NULL, TL_EXPORT_JSONL, &ls), 0);
    char want[160] = ",\"cut_erasures\":[{\"commitment\":\"";
    for (int i = 0; i < 32; i++) strcat(want, "cd");
    strcat(want, "\",\"seq\":15}]");
    ck_assert_msg(strstr(ls.l[0], want), "%s", ls.l[0]);
    lines_free(&ls);
    remove_log(log, dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("log_export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, scopes_hold_exactly_their_events);
    tcase_add_test(tc, key_chain_and_event_keys);
    tcase_add_test(tc, content_and_csv);
    tcase_add_test(tc, csv_channel_of_an_unused_upload);
    tcase_add_test(tc, cut_erasures_lie_beyond_the_head);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
