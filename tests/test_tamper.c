/*
 * test_tamper.c — SPEC §5: flipping any byte of any stored event, removing or reordering
 * events, or rewriting a suffix after a checkpoint is detected by verify, which names the
 * first bad event.
 *
 * The log under attack has 1,000 events: the genesis, 498 extension events, a key rotation
 * at 500 and 500 more events signed by the new key. The attacker edits the LMDB file
 * directly (raw LMDB, with the tl_log closed: LMDB forbids opening one environment twice
 * in a process) and, for the rewrites, holds the writer key.
 */
#include <lmdb.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "codec.h"
#include "crypto.h"
#include "testutil.h"

/* The log's shape: EVENTS events, the key rotated at ROTATION. The per-byte tests also use
 * a 100-event log of the same shape (see flip_every_byte). */
static uint64_t EVENTS = 1000, ROTATION = 500;

/* ================================================================ fixture */

static char *g_dir;

static void be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static void append_batch(tl_log *log, uint64_t i0, size_t n) {
    msgpack_sbuffer *bufs = calloc(n, sizeof *bufs);
    tl_draft *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_init(&bufs[i]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &bufs[i], msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "i", 1);
        msgpack_pack_uint64(&pk, i0 + i);
        msgpack_pack_str_with_body(&pk, "note", 4);
        msgpack_pack_str_with_body(&pk, "an event worth keeping as it was", 32);
        d[i] = (tl_draft){"x.tamper", (i % 2) ? "bob" : "alice", (i % 3) ? "p-1" : NULL,
                          (const uint8_t *)bufs[i].data, bufs[i].size};
    }
    int rc = tl_log_append(log, d, n, NULL);
    ck_assert_msg(rc == 0, "append: %s", tl_errdetail());
    for (size_t i = 0; i < n; i++) msgpack_sbuffer_destroy(&bufs[i]);
    free(bufs);
    free(d);
}

/* A fresh log for each test (the tests run in forked processes). */
static void setup(void) {
    char *base = tu_tmpdir();
    ck_assert_ptr_nonnull(base);
    g_dir = malloc(strlen(base) + 8);
    sprintf(g_dir, "%s/log", base);
    free(base);
    tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
    ck_assert_int_eq(tl_log_init(g_dir, NULL, NULL), 0);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, &o), 0);
    uint64_t next = 2;
    while (next < ROTATION) {
        size_t n = ROTATION - next < 200 ? ROTATION - next : 200;
        append_batch(log, next, n);
        next += n;
    }
    ck_assert_int_eq(tl_log_rotate_key(log, NULL), 0);
    next++;
    while (next <= EVENTS) {
        size_t n = EVENTS + 1 - next < 200 ? EVENTS + 1 - next : 200;
        append_batch(log, next, n);
        next += n;
    }
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.events, EVENTS);
    tl_log_close(log);
}

static void setup_small(void) {
    EVENTS = 100;
    ROTATION = 50;
    setup();
}

static void teardown(void) {
    char *slash = strrchr(g_dir, '/');
    *slash = 0;
    tu_rmdir(g_dir);
    free(g_dir);
}

/* Verify the log (opened read-only for the occasion); returns the code, fills r. */
static int verify(const char *checkpoint, tl_verify_report *r) {
    tl_log *log;
    tl_open_options o = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
    int rc = tl_log_open(&log, g_dir, &o);
    ck_assert_msg(rc == 0, "open: %s", tl_errdetail());
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.threads = 2;
    vo.checkpoint_json = checkpoint;
    rc = tl_log_verify(log, &vo, r);
    tl_log_close(log);
    return rc;
}

static void expect_bad(const char *checkpoint, uint64_t seq, const char *what) {
    tl_verify_report r;
    int rc = verify(checkpoint, &r);
    ck_assert_msg(rc == TL_ECORRUPT, "%s: verify said %s", what, tl_strerror(rc));
    ck_assert_msg(r.first_bad_seq == seq, "%s: first bad %llu, want %llu (%s)", what,
                  (unsigned long long)r.first_bad_seq, (unsigned long long)seq, r.reason);
}

static void expect_good(const char *checkpoint, const char *what) {
    tl_verify_report r;
    int rc = verify(checkpoint, &r);
    ck_assert_msg(rc == 0, "%s: %s at %llu: %s", what, tl_strerror(rc), (unsigned long long)r.first_bad_seq,
                  r.reason);
}

static void replay_refuses_when(uint64_t seq, bool unverified_too);
static void replay_refuses(uint64_t seq);

static char *checkpoint_now(void) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    char *cp;
    ck_assert_int_eq(tl_log_checkpoint(log, &cp), 0);
    tl_log_close(log);
    return cp;
}

/* ---- raw LMDB, as an attacker with the file would edit it ---- */

typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta, content;
} raw;

static void raw_begin(raw *r) {
    ck_assert_int_eq(mdb_env_create(&r->env), 0);
    mdb_env_set_maxdbs(r->env, 64);
    ck_assert_int_eq(mdb_env_open(r->env, g_dir, MDB_NOSYNC, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "log", 0, &r->log), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "meta", 0, &r->meta), 0);
    ck_assert_int_eq(mdb_dbi_open(r->txn, "content", 0, &r->content), 0);
}

static void raw_end(raw *r) {
    ck_assert_int_eq(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

/* A malloc'd copy of the stored record of seq. */
static uint8_t *raw_get(raw *r, uint64_t seq, size_t *len) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8}, v;
    ck_assert_int_eq(mdb_get(r->txn, r->log, &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    *len = v.mv_size;
    return copy;
}

static void raw_set(raw *r, uint64_t seq, const uint8_t *rec, size_t len) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8}, v = {len, (void *)rec};
    ck_assert_int_eq(mdb_put(r->txn, r->log, &k, &v, 0), 0);
}

static void raw_del(raw *r, uint64_t seq) {
    uint8_t k8[8];
    be64(k8, seq);
    MDB_val k = {8, k8};
    ck_assert_int_eq(mdb_del(r->txn, r->log, &k, NULL), 0);
}

/* Point the meta head at seq (hash and time of its event), keeping the current key. */
static void raw_set_head(raw *r, uint64_t seq) {
    size_t len;
    uint8_t *rec = raw_get(r, seq, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    MDB_val k = {4, "head"}, v;
    ck_assert_int_eq(mdb_get(r->txn, r->meta, &k, &v), 0);
    uint8_t head[80];
    memcpy(head, v.mv_data, 80);
    be64(head, seq);
    crypto_generichash(head + 8, 32, rec, len - 64, NULL, 0);
    be64(head + 40, ev.ts);
    v = (MDB_val){80, head};
    ck_assert_int_eq(mdb_put(r->txn, r->meta, &k, &v, 0), 0);
    free(rec);
}

/* An event chained to prev, signed by kp, as a record. */
static uint8_t *forge(size_t *len, uint64_t seq, uint64_t ts, const uint8_t prev[32], const char *kind,
                      const char *note, const uint8_t *new_key, const tl_keypair *kp) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = seq, .ts = ts, .actor = "mallory", .kind = kind, .schema = 1};
    memcpy(env.prev, prev, 32);
    tl_payload p = {0};
    tl_payload_str(&p, "note", note);
    if (new_key) tl_payload_bin(&p, "public_key", new_key, 32);
    if (strcmp(kind, "log.created") == 0) tl_payload_uint(&p, "format", 1);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    *len = buf.size + 64;
    uint8_t *rec = malloc(*len);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, kp);
    msgpack_sbuffer_destroy(&buf);
    return rec;
}

static void record_hash_ts(const uint8_t *rec, size_t len, uint8_t hash[32], uint64_t *ts) {
    crypto_generichash(hash, 32, rec, len - 64, NULL, 0);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    *ts = ev.ts;
}

static void writer_key(tl_keypair *kp) {
    char path[4200];
    snprintf(path, sizeof path, "%s/writer.key", g_dir);
    ck_assert_int_eq(tl_keyfile_read(path, kp), 0);
}

/* ================================================================ every byte */

/*
 * Every byte of a stored record (event bytes and signature) is flipped, one at a time, and
 * verify must name that event: six events spread over the 1,000-event log, ~1,100 flips,
 * each a verify of the whole log (up to 1,000 ed25519 checks on two threads). That is
 * ~40 s of this suite's ~50 s on a two-core machine with a load of 4 (~70 s at a load of 6).
 * THREADLOG_TAMPER_QUICK=1, for busy machines, flips every byte of the two ends of the
 * 1,000-event log (the genesis: no predecessor, carries the first key; the last: no
 * successor to break the chain, only its signature and the head record) and of the six
 * spread events of a 100-event log of the same shape (~15 s).
 */
static bool quick_run(void) {
    const char *v = getenv("THREADLOG_TAMPER_QUICK");
    return v && *v && strcmp(v, "0") != 0;
}

/* genesis, an early event, the rotation, the first event by the new key, a late one, the last */
static uint64_t sample_at(int i) {
    uint64_t spread[] = {1, EVENTS / 5, ROTATION, ROTATION + 1, EVENTS * 4 / 5, EVENTS};
    uint64_t ends[] = {1, EVENTS};
    return (EVENTS == 1000 && quick_run()) ? ends[i] : spread[i];
}

START_TEST(flip_every_byte) {
    uint64_t seq = sample_at(_i);
    expect_good(NULL, "the untouched log");
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *orig = raw_get(&r, seq, &len);
    raw_end(&r);
    uint8_t *bad = malloc(len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(bad, orig, len);
        /* the lowest bit of even bytes, the highest of odd ones */
        bad[pos] ^= (pos % 2) ? 0x80 : 0x01;
        raw_begin(&r);
        raw_set(&r, seq, bad, len);
        raw_end(&r);
        tl_verify_report rep;
        int rc = verify(NULL, &rep);
        ck_assert_msg(rc == TL_ECORRUPT && rep.first_bad_seq == seq,
                      "event %llu, byte %zu of %zu (%s): verify said %s, first bad %llu (%s)",
                      (unsigned long long)seq, pos, len, pos < len - 64 ? "event" : "signature", tl_strerror(rc),
                      (unsigned long long)rep.first_bad_seq, rep.reason);
    }
    raw_begin(&r);
    raw_set(&r, seq, orig, len);
    raw_end(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "event %llu of %llu: %zu bytes flipped one at a time, each detected (%.1f s)\n",
            (unsigned long long)seq, (unsigned long long)EVENTS, len,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    expect_good(NULL, "the restored log");
    free(orig);
    free(bad);
}
END_TEST

/* The stored head record (meta "head", 80 bytes), read and written as an attacker would. */
static void head_get(uint8_t head[80]) {
    raw r;
    raw_begin(&r);
    MDB_val k = {4, "head"}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &k, &v), 0);
    memcpy(head, v.mv_data, 80);
    raw_end(&r);
}

static void head_put_len(const uint8_t head[80], size_t len) {
    raw r;
    raw_begin(&r);
    MDB_val k = {4, "head"}, v = {len, (void *)head};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &k, &v, 0), 0);
    raw_end(&r);
}

static void head_put(const uint8_t head[80]) { head_put_len(head, 80); }

/* The stored head record (meta) agrees with the last event. */
START_TEST(flip_head_record) {
    uint8_t head[80];
    head_get(head);
    /* the sequence and the hash: a flip names the head's event or the one after; the time and
     * the key (which the writer trusts for the next event) name the head's event */
    static const size_t late[] = {40, 43, 47, 48, 55, 63, 72, 79}; /* time and key: a sample */
    for (size_t i = 0; i < 40 + sizeof late / sizeof late[0]; i++) {
        size_t pos = i < 40 ? i : late[i - 40];
        uint8_t bad[80];
        memcpy(bad, head, 80);
        bad[pos] ^= 0x01;
        head_put(bad);
        tl_verify_report rep;
        ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
        uint64_t said = rd64(bad);
        if (pos >= 40) ck_assert_uint_eq(rep.first_bad_seq, EVENTS);
        else ck_assert_uint_eq(rep.first_bad_seq, said < EVENTS ? said + 1 : said > EVENTS ? EVENTS + 1 : EVENTS);
    }
    /* cut short or grown (no longer the record's size): still a finding about the events,
     * naming the last one (the event the head names) */
    static const size_t lens[] = {0, 1, 8, 79, 80 + 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t longer[81] = {0};
        memcpy(longer, head, 80);
        head_put_len(longer, lens[i]);
        tl_verify_report rep;
        ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
        ck_assert_msg(rep.first_bad_seq == EVENTS, "a head record of %zu bytes: first bad %llu", lens[i],
                      (unsigned long long)rep.first_bad_seq);
    }
    head_put(head);
    expect_good(NULL, "the restored head");
}
END_TEST

/* A replay rewrites the head record, so it checks it first as verify does (its time too):
 * a tampered head must not vanish into a rebuilt one. */
START_TEST(replay_keeps_head_evidence) {
    uint8_t head[80];
    head_get(head);
    /* the time's last byte and a byte in its middle (an altered key is refused sooner: the
     * log does not open for writing, no key file holding the key the head names) */
    static const size_t positions[] = {47, 44};
    for (size_t i = 0; i < 2; i++) {
        uint8_t bad[80];
        memcpy(bad, head, 80);
        bad[positions[i]] ^= 0x01;
        head_put(bad);
        expect_bad(NULL, EVENTS, "head record altered");
        replay_refuses(EVENTS);
        expect_bad(NULL, EVENTS, "head record altered, after the refused replays");
    }
    head_put(head);
    expect_good(NULL, "the restored head");
}
END_TEST

/* A copy cut at N (replay --into DIR --until-seq N) reads the records after N and moves the
 * head back to N: the tail is checked first, so a damaged tail is refused rather than cut
 * away unseen (and a forged erasure there never becomes the copy's erased/ mark). */
static int cut_copy(uint64_t n, bool verified, uint64_t *first_bad) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    char into[4200];
    snprintf(into, sizeof into, "%s.cut", g_dir);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.into_dir = into;
    o.until_seq = n;
    o.verify = verified;
    tl_replay_report rr;
    int rc = tl_replay(log, &o, &rr);
    *first_bad = rr.verify.first_bad_seq;
    tl_log_close(log);
    if (rc == 0) tu_rmdir(into);
    else ck_assert_int_ne(access(into, F_OK), 0); /* a refused cut leaves no copy */
    return rc;
}

START_TEST(cut_copy_checks_tail) {
    uint64_t bad;
    ck_assert_int_eq(cut_copy(10, true, &bad), 0);
    raw r;
    size_t len;
    /* a signature in the tail: refused with verification, not without (signatures only) */
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, EVENTS - 5, &len);
    rec[len - 1] ^= 0x01;
    raw_set(&r, EVENTS - 5, rec, len);
    raw_end(&r);
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 5);
    ck_assert_int_eq(cut_copy(10, false, &bad), 0);
    /* an event's bytes in the tail: the next link breaks, refused either way */
    rec[len - 1] ^= 0x01;
    rec[len - 65] ^= 0x01; /* the event's last byte (a payload byte): it still decodes */
    raw_begin(&r);
    raw_set(&r, EVENTS - 5, rec, len);
    raw_end(&r);
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 5);
    ck_assert_int_eq(cut_copy(10, false, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, EVENTS - 4);
    free(rec);
}
END_TEST

/* Every record gone and the head record at 0 (its key kept, so the log still opens): replay
 * must not take that for an empty, valid log. */
START_TEST(replay_refuses_an_emptied_log) {
    raw r;
    raw_begin(&r);
    for (uint64_t s = 1; s <= EVENTS; s++) raw_del(&r, s);
    raw_end(&r);
    uint8_t head[80];
    head_get(head);
    memset(head, 0, 48); /* seq, hash, time */
    head_put(head);
    expect_bad(NULL, 1, "every event deleted");
    replay_refuses(1);
}
END_TEST

/* ================================================================ removing and reordering */

START_TEST(delete_events) {
    raw r;
    size_t len;
    /* the middle */
    raw_begin(&r);
    uint8_t *mid = raw_get(&r, 500, &len);
    raw_del(&r, 500);
    raw_end(&r);
    expect_bad(NULL, 500, "event 500 deleted");
    raw_begin(&r);
    raw_set(&r, 500, mid, len);
    raw_end(&r);
    expect_good(NULL, "event 500 put back");
    /* the genesis */
    size_t glen;
    raw_begin(&r);
    uint8_t *genesis = raw_get(&r, 1, &glen);
    raw_del(&r, 1);
    raw_end(&r);
    expect_bad(NULL, 1, "the genesis deleted");
    raw_begin(&r);
    raw_set(&r, 1, genesis, glen);
    raw_end(&r);
    /* a run in the middle */
    raw_begin(&r);
    for (uint64_t s = 300; s < 310; s++) raw_del(&r, s);
    raw_end(&r);
    expect_bad(NULL, 300, "events 300-309 deleted");
    free(mid);
    free(genesis);
}
END_TEST

START_TEST(delete_last) {
    raw r;
    raw_begin(&r);
    raw_del(&r, EVENTS);
    raw_end(&r);
    /* the head record still names event 1,000 */
    expect_bad(NULL, EVENTS, "the last event deleted");
    replay_refuses_when(EVENTS, true);
}
END_TEST

START_TEST(swap_events) {
    const uint64_t pairs[][2] = {{400, 401}, {300, 700}, {1, 2}, {999, 1000}, {ROTATION, ROTATION + 1}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint64_t a = pairs[i][0], b = pairs[i][1];
        raw r;
        size_t la, lb;
        raw_begin(&r);
        uint8_t *ra = raw_get(&r, a, &la), *rb = raw_get(&r, b, &lb);
        raw_set(&r, a, rb, lb);
        raw_set(&r, b, ra, la);
        raw_end(&r);
        char what[64];
        snprintf(what, sizeof what, "events %llu and %llu swapped", (unsigned long long)a, (unsigned long long)b);
        expect_bad(NULL, a, what);
        raw_begin(&r);
        raw_set(&r, a, ra, la);
        raw_set(&r, b, rb, lb);
        raw_end(&r);
        free(ra);
        free(rb);
    }
    expect_good(NULL, "swapped back");
}
END_TEST

/* The value of one event stored under another's key: the event says another sequence. */
static int count_export_line(const char *line, size_t len, void *payload) {
    (void)line, (void)len, (void)payload;
    return 0;
}

START_TEST(record_with_other_seq) {
    raw r;
    size_t len, l2;
    raw_begin(&r);
    uint8_t *r600 = raw_get(&r, 600, &len), *r601 = raw_get(&r, 601, &l2);
    raw_set(&r, 601, r600, len);
    raw_end(&r);
    expect_bad(NULL, 601, "event 600 duplicated at 601");
    /* a well-signed, well-chained event that claims to be 777, stored at 601 */
    tl_keypair kp;
    writer_key(&kp);
    uint8_t h[32];
    uint64_t ts;
    record_hash_ts(r600, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, 777, ts, h, "x.tamper", "I am 777", NULL, &kp);
    raw_begin(&r);
    raw_set(&r, 601, f, fl);
    raw_end(&r);
    expect_bad(NULL, 601, "an event saying 777 at 601");
    replay_refuses_when(601, true);
    { /* an export refuses it too: its lines would name an event the log does not hold */
        tl_log *log;
        ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
        tl_export_options eo = TL_EXPORT_OPTIONS_INIT;
        ck_assert_int_eq(tl_export(log, &eo, count_export_line, NULL), TL_ECORRUPT);
        tl_log_close(log);
    }
    raw_begin(&r);
    raw_set(&r, 601, r601, l2);
    raw_end(&r);
    expect_good(NULL, "restored");
    tl_keypair_wipe(&kp);
    free(f), free(r600), free(r601);
}
END_TEST

/* An in-place replay of the log refuses it, naming event `seq`: verified, and also
 * unverified unless the damage is one only verification sees (content, signatures). */
static void replay_refuses_when(uint64_t seq, bool unverified_too) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    for (int verified = unverified_too ? 0 : 1; verified < 2; verified++) {
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = verified;
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(log, &o, &rr), TL_ECORRUPT);
        ck_assert_uint_eq(rr.verify.first_bad_seq, seq);
    }
    tl_log_close(log);
}

static void replay_refuses(uint64_t seq) { replay_refuses_when(seq, true); }

/* ================================================================ inserted events */

START_TEST(insert_foreign_signed) {
    tl_keypair foreign;
    tl_keypair_generate(&foreign);
    raw r;
    size_t len;
    uint8_t h[32];
    uint64_t ts;

    /* at the tail, chained to the last event, with the head moved onto it */
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, EVENTS + 1, ts + 1, h, "x.tamper", "appended by mallory", NULL, &foreign);
    raw_set(&r, EVENTS + 1, f, fl);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a foreign event at the tail (head not moved)");
    /* replay refuses it too, verified or not: it would silently leave it out otherwise */
    replay_refuses(EVENTS + 1);
    raw_begin(&r);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a foreign event at the tail (head moved)");

    /* a key.rotated forged with the foreign key, handing over to it, and an event by it */
    uint8_t h2[32];
    uint64_t ts2;
    size_t fl2, fl3;
    uint8_t *rot = forge(&fl2, EVENTS + 1, ts + 1, h, "key.rotated", "take over", foreign.pk, &foreign);
    record_hash_ts(rot, fl2, h2, &ts2);
    uint8_t *after = forge(&fl3, EVENTS + 2, ts2, h2, "x.tamper", "mallory was here", NULL, &foreign);
    raw_begin(&r);
    raw_set(&r, EVENTS + 1, rot, fl2);
    raw_set(&r, EVENTS + 2, after, fl3);
    raw_set_head(&r, EVENTS + 2);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a forged key.rotated");
    raw_begin(&r);
    raw_del(&r, EVENTS + 1);
    raw_del(&r, EVENTS + 2);
    raw_set_head(&r, EVENTS);
    raw_end(&r);
    expect_good(NULL, "the tail removed again");

    /* in the middle: events 501.. move up by one, the foreign one chains onto 500 */
    raw_begin(&r);
    for (uint64_t s = EVENTS; s > ROTATION; s--) {
        size_t l;
        uint8_t *rec = raw_get(&r, s, &l);
        raw_set(&r, s + 1, rec, l);
        free(rec);
    }
    size_t l500;
    uint8_t *r500 = raw_get(&r, ROTATION, &l500);
    record_hash_ts(r500, l500, h, &ts);
    size_t fm;
    uint8_t *mid = forge(&fm, ROTATION + 1, ts, h, "x.tamper", "inserted by mallory", NULL, &foreign);
    raw_set(&r, ROTATION + 1, mid, fm);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, ROTATION + 1, "a foreign event inserted at 501");
    tl_keypair_wipe(&foreign);
    free(last), free(f), free(rot), free(after), free(r500), free(mid);
}
END_TEST

/* ================================================================ rewrites by the key holder */

/* Re-sign events from..to with new content, chained, with the real (current) key, drop any
 * event after `to` and move the head: a consistent log that is not the one the writer wrote. */
static void rewrite_tail(uint64_t from, uint64_t to) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *prev = raw_get(&r, from - 1, &len);
    uint8_t h[32];
    uint64_t ts;
    record_hash_ts(prev, len, h, &ts);
    free(prev);
    for (uint64_t s = from; s <= to; s++) {
        size_t fl;
        uint8_t *f = forge(&fl, s, ts, h, "x.tamper", "history as mallory tells it", NULL, &kp);
        raw_set(&r, s, f, fl);
        record_hash_ts(f, fl, h, &ts);
        free(f);
    }
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_cursor_open(r.txn, r.log, &cur), 0);
    uint8_t k8[8];
    be64(k8, to + 1);
    MDB_val k = {8, k8}, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
    raw_set_head(&r, to);
    raw_end(&r);
    tl_keypair_wipe(&kp);
}

/* The genesis is first and only first: a second one cannot bring in a key. */
START_TEST(genesis_only_first) {
    tl_keypair kp, foreign;
    writer_key(&kp);
    tl_keypair_generate(&foreign);
    raw r;
    size_t len;
    uint8_t h[32], h2[32];
    uint64_t ts, ts2;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    size_t fl, fl2;
    /* signed by the writer key, naming a stranger's key, and an event signed by that key */
    uint8_t *g2 = forge(&fl, EVENTS + 1, ts, h, "log.created", "a new beginning", foreign.pk, &kp);
    record_hash_ts(g2, fl, h2, &ts2);
    uint8_t *after = forge(&fl2, EVENTS + 2, ts2, h2, "x.tamper", "signed by the stranger", NULL, &foreign);
    raw_set(&r, EVENTS + 1, g2, fl);
    raw_set(&r, EVENTS + 2, after, fl2);
    raw_set_head(&r, EVENTS + 2);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "a second genesis");
    /* and the first event must be one */
    raw_begin(&r);
    raw_del(&r, EVENTS + 1);
    raw_del(&r, EVENTS + 2);
    raw_set_head(&r, EVENTS);
    size_t l1;
    uint8_t *g = raw_get(&r, 1, &l1), zero[32] = {0};
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, g, l1 - 64), 0);
    size_t fl3;
    uint8_t *not_genesis = forge(&fl3, 1, ev.ts, zero, "x.tamper", "I am first", NULL, &kp);
    raw_set(&r, 1, not_genesis, fl3);
    raw_end(&r);
    expect_bad(NULL, 1, "a first event that is not log.created");
    replay_refuses_when(1, true); /* no key is known before a genesis: never index past the list */
    tl_keypair_wipe(&kp);
    tl_keypair_wipe(&foreign);
    free(last), free(g2), free(after), free(g), free(not_genesis);
}
END_TEST

/* One event rewritten and re-signed by the key holder: its own signature holds, so only the
 * chain (the next event's prev) or, for the last event, the head record can tell. */
START_TEST(resigned_event) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, l700;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r699 = raw_get(&r, 699, &len), *r700 = raw_get(&r, 700, &l700);
    record_hash_ts(r699, len, h, &ts);
    size_t fl;
    uint8_t *f = forge(&fl, 700, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, 700, f, fl);
    raw_end(&r);
    expect_bad(NULL, 701, "event 700 re-signed with the writer key");
    raw_begin(&r);
    raw_set(&r, 700, r700, l700);
    uint8_t *r999 = raw_get(&r, EVENTS - 1, &len);
    record_hash_ts(r999, len, h, &ts);
    free(f);
    f = forge(&fl, EVENTS, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, EVENTS, f, fl);
    raw_end(&r);
    expect_bad(NULL, EVENTS, "the last event re-signed with the writer key");
    tl_keypair_wipe(&kp);
    free(f), free(r699), free(r700), free(r999);
}
END_TEST

START_TEST(checkpoint_detects_rewritten_tail) {
    char *cp = checkpoint_now(); /* at 1,000 */
    expect_good(cp, "the log extends its checkpoint");
    rewrite_tail(700, EVENTS);
    /* signed by the writer key and chained: on its own the log looks fine */
    expect_good(NULL, "a tail rewritten with the writer key, without a checkpoint");
    expect_bad(cp, EVENTS, "a tail rewritten with the writer key, against the checkpoint");
    tl_free(cp);
}
END_TEST

START_TEST(checkpoint_detects_rewrite_before_it) {
    /* checkpoint at 1,000; the rewrite starts before it and ends before it too */
    char *cp = checkpoint_now();
    rewrite_tail(ROTATION + 10, EVENTS);
    expect_bad(cp, EVENTS, "rewritten from 510");
    tl_free(cp);
}
END_TEST

START_TEST(checkpoint_detects_truncated_tail) {
    char *cp = checkpoint_now(); /* at 1,000 */
    raw r;
    raw_begin(&r);
    for (uint64_t s = 901; s <= EVENTS; s++) raw_del(&r, s);
    raw_set_head(&r, 900);
    raw_end(&r);
    /* a clean cut with a consistent head: only the checkpoint can tell */
    expect_good(NULL, "a truncated log with a consistent head, without a checkpoint");
    expect_bad(cp, 901, "a truncated log, against the checkpoint");
    tl_free(cp);
}
END_TEST

/* A checkpoint of event seq made by hand, as docs/FORMAT.md describes it, naming the event's
 * time plus dts (0: a true checkpoint). */
static char *checkpoint_signed(uint64_t seq, uint64_t dts) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *rec = raw_get(&r, seq, &len);
    raw_end(&r);
    uint8_t msg[23 + 8 + 32 + 8], sig[64];
    uint64_t ts;
    memcpy(msg, "threadlog-checkpoint-v1", 23);
    be64(msg + 23, seq);
    record_hash_ts(rec, len, msg + 31, &ts);
    ts += dts;
    be64(msg + 63, ts);
    tl_sign(sig, msg, sizeof msg, &kp);
    char hash[65], key[65], sighex[129];
    tl_hex(hash, msg + 31, 32);
    tl_hex(key, kp.pk, 32);
    tl_hex(sighex, sig, 64);
    char *json = malloc(512);
    snprintf(json, 512, "{\"seq\":%llu,\"hash\":\"%s\",\"ts\":%llu,\"key\":\"%s\",\"signature\":\"%s\"}",
             (unsigned long long)seq, hash, (unsigned long long)ts, key, sighex);
    tl_keypair_wipe(&kp);
    free(rec);
    return json;
}

static char *checkpoint_at(uint64_t seq) { return checkpoint_signed(seq, 0); }

START_TEST(checkpoint_covers_what_it_names) {
    /* a checkpoint covers the events up to its own, not what came after: a log that grew
     * since, or whose later events were rewritten, still extends it */
    char *cp800 = checkpoint_at(800);
    expect_good(cp800, "a checkpoint at 800");
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    append_batch(log, EVENTS + 1, 10);
    tl_log_close(log);
    expect_good(cp800, "a log that grew after its checkpoint");
    rewrite_tail(900, EVENTS + 10);
    expect_good(cp800, "rewritten after the checkpoint (beyond what it covers)");
    rewrite_tail(700, EVENTS);
    expect_bad(cp800, 800, "rewritten from 700, before the checkpoint at 800");
    free(cp800);
}
END_TEST

/* ================================================================ content */

/* Run JSON command lines on the test log, each in its own commit. */
static void run_commands(const char *const *lines) {
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    for (size_t i = 0; lines[i]; i++) {
        tl_cmd *cmd;
        tl_result res;
        ck_assert_int_eq(tl_cmd_parse(&cmd, lines[i], strlen(lines[i]), &res), 0);
        ck_assert_msg(tl_cmd_exec(log, cmd, &res) == 0 && res.code == 0, "%s: %s", lines[i], res.message);
        tl_cmd_free(cmd);
    }
    tl_log_close(log);
}

static const char *const one_message[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-1\",\"project\":\"o-1\",\"body\":\"Tomorrow\"}",
    NULL};

/* Verify checks content still stored against its commitment; erasure leaves it valid. */
START_TEST(content_commitment) {
    /* a message (event EVENTS + 4) whose body threadlog stored with its salt */
    run_commands(one_message);
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, EVENTS + 4, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    ck_assert_uint_eq(c.len, 32);
    uint8_t commit[32], value[40];
    memcpy(commit, c.ptr, 32);
    MDB_val k = {32, commit}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.content, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, 40); /* salt (32) || "Tomorrow" */
    memcpy(value, v.mv_data, 40);
    raw_end(&r);
    free(rec);
    tl_verify_report rep;
    ck_assert_int_eq(verify(NULL, &rep), 0);
    ck_assert_uint_eq(rep.contents, 1);
    { /* a verified replay checks it too */
        tl_log *rl;
        ck_assert_int_eq(tl_log_open(&rl, g_dir, NULL), 0);
        tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
        o.verify = true;
        tl_replay_report rr;
        ck_assert_int_eq(tl_replay(rl, &o, &rr), 0);
        ck_assert_uint_eq(rr.verify.contents, 1);
        tl_log_close(rl);
    }
    /* a byte of the salt or of the content changed (each one is a verify of the log) */
    static const size_t positions[] = {0, 1, 17, 31, 32, 35, 39};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        size_t pos = positions[i];
        uint8_t bad[40];
        memcpy(bad, value, 40);
        bad[pos] ^= 0x01;
        v = (MDB_val){40, bad};
        raw_begin(&r);
        ck_assert_int_eq(mdb_put(r.txn, r.content, &k, &v, 0), 0);
        raw_end(&r);
        expect_bad(NULL, EVENTS + 4, "content changed");
        if (i == 0 || i == 4) replay_refuses_when(EVENTS + 4, false); /* the salt, the content */
    }
    /* content of another size */
    v = (MDB_val){39, value};
    raw_begin(&r);
    ck_assert_int_eq(mdb_put(r.txn, r.content, &k, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 4, "content cut");
    replay_refuses_when(EVENTS + 4, false);
    /* deleted behind the log's back (no content.erased event names it): not an erasure */
    raw_begin(&r);
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 4, "content deleted without an erasure");
    replay_refuses_when(EVENTS + 4, false);
}
END_TEST

/* meta's copies of the genesis (its key, the attachment limit) are unsigned: verify reports a
 * copy that differs from the genesis event, and the rules enforce the genesis event's limit,
 * not meta's. */
/* LMDB's free-page list (its database 0) is trusted by LMDB: a page number damaged there
 * makes the next write transaction reuse a page still in use (a review: one flipped bit
 * passed verify, and the next append destroyed twelve events). verify reports it, a writer
 * refuses to open, readers still read; restored, all is well again. */
/* Up to max free-list records of at least min_count pages: their file offsets (where the
 * count word is, the page numbers after it) and counts. */
static size_t free_list_records(long *offs, size_t *counts, size_t max, size_t min_count) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    ck_assert_int_eq(mdb_env_open(env, g_dir, MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, 0, &cur), 0);
    /* where LMDB mapped the file (mdb_env_info's address is only set for MDB_FIXEDMAP) */
    char path[4200], line[4600];
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    uintptr_t base = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(maps);
    while (!base && fgets(line, sizeof line, maps)) {
        unsigned long lo, fileoff;
        char *name = strchr(line, '/');
        if (name && sscanf(line, "%lx-%*x %*s %lx", &lo, &fileoff) == 2 && fileoff == 0 &&
            strncmp(name, path, strlen(path)) == 0 && name[strlen(path)] == '\n')
            base = lo;
    }
    fclose(maps);
    ck_assert_msg(base != 0, "data.mdb is not in /proc/self/maps");
    MDB_val k, v;
    size_t n = 0;
    while (n < max && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        memcpy(&counts[n], v.mv_data, sizeof counts[n]);
        if (counts[n] >= min_count) offs[n++] = (long)((uintptr_t)v.mv_data - base);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* The file offset of the first free-list record of 3 pages or more (its count in *count). */
static long free_list_offset(size_t *count) {
    long off;
    return free_list_records(&off, count, 1, 3) ? off : -1;
}

static void file_rw(long off, void *buf, size_t n, bool write) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
    ck_assert_uint_eq(write ? fwrite(buf, 1, n, f) : fread(buf, 1, n, f), n);
    fclose(f);
}

START_TEST(damaged_free_list) {
    /* more commits, so the free list holds records of several pages */
    tl_log *log;
    tl_open_options wo = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_NOSYNC};
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    for (int i = 0; i < 20; i++) append_batch(log, EVENTS + 1 + (uint64_t)i * 50, 50);
    tl_log_close(log);
    uint64_t events = EVENTS + 20 * 50;
    expect_good(NULL, "before");
    size_t count;
    long off = free_list_offset(&count);
    ck_assert_msg(off > 0, "no free-list record of 3 pages or more");
    /* the record: count, then page numbers in descending order */
    size_t ids[3], orig[3];
    file_rw(off + (long)sizeof(size_t), orig, sizeof orig, false);
    const struct { const char *what; size_t delta[3]; } cases[] = {
        {"a page number grown past its predecessor", {0, 0x4000, 0}},
        {"a page number past the file's end", {(size_t)1 << 40, 0, 0}},
        {"a meta page listed", {0, 0, (size_t)-1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int i = 0; i < 3; i++) ids[i] = orig[i] + cases[c].delta[i];
        if (cases[c].delta[2] == (size_t)-1) ids[2] = 1;
        file_rw(off + (long)sizeof(size_t), ids, sizeof ids, true);
        tl_verify_report r;
        int rc = verify(NULL, &r);
        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "free-page list"), "%s: verify said %s (%s)",
                      cases[c].what, tl_strerror(rc), tl_errdetail());
        rc = tl_log_open(&log, g_dir, &wo);
        ck_assert_msg(rc == TL_ECORRUPT, "%s: opened for writing (%s)", cases[c].what, tl_strerror(rc));
        tl_open_options ro = {TL_OPEN_OPTIONS_VERSION, TL_OPEN_READONLY};
        ck_assert_int_eq(tl_log_open(&log, g_dir, &ro), 0);
        tl_log_close(log);
    }
    file_rw(off + (long)sizeof(size_t), orig, sizeof orig, true);
    expect_good(NULL, "restored");
    /* the bounds themselves: the first page past the file's end (the record's first, largest
     * number), page 1 (a meta page) where the order still holds (its last), and a count one
     * larger than the record's room (its next word is not one of its pages) */
    MDB_envinfo info;
    {
        raw r;
        raw_begin(&r);
        ck_assert_int_eq(mdb_env_info(r.env, &info), 0);
        raw_end(&r);
    }
    size_t past_end = info.me_last_pgno + 1, one = 1, more = count + 1, last_id;
    long last_id_off = off + (long)(sizeof(size_t) * count);
    file_rw(last_id_off, &last_id, sizeof last_id, false);
    struct { const char *what; long at; size_t *value; size_t restore; } bounds[] = {
        {"the first page past the file's end", off + (long)sizeof(size_t), &past_end, orig[0]},
        {"page 1 as the record's last", last_id_off, &one, last_id},
        {"a count one past the record's room", off, &more, count},
    };
    for (size_t c = 0; c < sizeof bounds / sizeof bounds[0]; c++) {
        file_rw(bounds[c].at, bounds[c].value, sizeof(size_t), true);
        tl_verify_report r;
        int rc = verify(NULL, &r);
        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "free-page list"), "%s: verify said %s (%s)",
                      bounds[c].what, tl_strerror(rc), tl_errdetail());
        file_rw(bounds[c].at, &bounds[c].restore, sizeof(size_t), true); /* restore is a copy: writable */
    }
    expect_good(NULL, "restored again");
    /* a page listed in two records (each in order on its own): only the check across records
     * sees it. Record B's smallest page is replaced by one of record A's pages that is smaller
     * than B's next one. */
    {
        long offs[16];
        size_t counts[16];
        size_t nrec = free_list_records(offs, counts, 16, 2);
        bool done = false;
        for (size_t a = 0; a < nrec && !done; a++)
            for (size_t b = 0; b < nrec && !done; b++) {
                if (a == b) continue;
                size_t *pa = malloc(counts[a] * sizeof *pa), *pb = malloc(counts[b] * sizeof *pb);
                file_rw(offs[a] + (long)sizeof(size_t), pa, counts[a] * sizeof *pa, false);
                file_rw(offs[b] + (long)sizeof(size_t), pb, counts[b] * sizeof *pb, false);
                size_t nb = counts[b];
                for (size_t i = 0; i < counts[a] && !done; i++)
                    if (pa[i] < pb[nb - 2] && pa[i] != pb[nb - 1]) {
                        long at = offs[b] + (long)(sizeof(size_t) * nb);
                        file_rw(at, &pa[i], sizeof pa[i], true);
                        tl_verify_report r;
                        int rc = verify(NULL, &r);
                        ck_assert_msg(rc == TL_ECORRUPT && strstr(tl_errdetail(), "listed twice"),
                                      "a page in two records: verify said %s (%s)", tl_strerror(rc), tl_errdetail());
                        file_rw(at, &pb[nb - 1], sizeof pb[nb - 1], true);
                        done = true;
                    }
                free(pa), free(pb);
            }
        ck_assert_msg(done, "no two free-list records to list a page twice in (%zu records)", nrec);
        expect_good(NULL, "restored once more");
    }
    /* a record with room beyond its count is healthy: LMDB reserves free-list records before
     * filling them, and one reserved beyond the need keeps a smaller count (0 included) and
     * unwritten words after it (here: the last page dropped from the count, and a word of
     * garbage where it was) */
    size_t fewer = count - 1, junk = 1, last;
    long last_off = off + (long)(sizeof(size_t) * count);
    file_rw(last_off, &last, sizeof last, false);
    file_rw(off, &fewer, sizeof fewer, true);
    file_rw(last_off, &junk, sizeof junk, true);
    expect_good(NULL, "a record with room beyond its count");
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    tl_log_close(log);
    file_rw(off, &count, sizeof count, true);
    file_rw(last_off, &last, sizeof last, true);
    ck_assert_int_eq(tl_log_open(&log, g_dir, &wo), 0);
    append_batch(log, events + 1, 10);
    tl_log_close(log);
    expect_good(NULL, "after another append");
}
END_TEST

START_TEST(meta_copies_of_genesis) {
    raw r;
    raw_begin(&r);
    MDB_val lk = {14, "max_attachment"}, gk = {11, "genesis_key"}, v;
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &lk, &v), 0);
    uint8_t limit[8];
    memcpy(limit, v.mv_data, 8);
    ck_assert_int_eq(mdb_get(r.txn, r.meta, &gk, &v), 0);
    uint8_t key[32];
    memcpy(key, v.mv_data, 32);
    uint8_t zero[8] = {0};
    v = (MDB_val){8, zero};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's attachment limit set to 0");
    replay_refuses_when(1, false); /* replay --verify checks the genesis as verify does */
    uint64_t bad; /* a cut checks what its replay checks: the copies with --verify only */
    ck_assert_int_eq(cut_copy(10, true, &bad), TL_ECORRUPT);
    ck_assert_uint_eq(bad, 1);
    ck_assert_int_eq(cut_copy(10, false, &bad), 0);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_log_stats st;
    ck_assert_int_eq(tl_log_stats_get(log, &st), 0);
    ck_assert_uint_eq(st.max_attachment, TL_DEFAULT_MAX_ATTACHMENT); /* the genesis event's */
    tl_log_close(log);

    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    raw_begin(&r);
    v = (MDB_val){8, limit};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    v = (MDB_val){32, other};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &gk, &v, 0), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's genesis key changed");
    replay_refuses_when(1, false);
    /* a copy missing: the log still opens (its limit is the genesis event's), verify names it */
    raw_begin(&r);
    v = (MDB_val){32, key};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &gk, &v, 0), 0);
    ck_assert_int_eq(mdb_del(r.txn, r.meta, &lk, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, 1, "meta's attachment limit removed");
    raw_begin(&r);
    v = (MDB_val){8, limit};
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &lk, &v, 0), 0);
    raw_end(&r);
    expect_good(NULL, "meta restored");
}
END_TEST

/* The last event re-signed with the writer key and a time before its predecessor's (the chain
 * and the head record made to match): only the rule "time never decreases" is broken. verify
 * names it, and a replay refuses it with and without verification. */
START_TEST(time_goes_back) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *before = raw_get(&r, EVENTS - 1, &len);
    record_hash_ts(before, len, h, &ts);
    uint8_t *f = forge(&fl, EVENTS, ts - 1, h, "x.tamper", "back to the future", NULL, &kp);
    raw_set(&r, EVENTS, f, fl);
    raw_set_head(&r, EVENTS);
    raw_end(&r);
    expect_bad(NULL, EVENTS, "the last event going back in time");
    tl_verify_report vr;
    verify(NULL, &vr);
    ck_assert_msg(strstr(vr.reason, "back in time") != NULL, "%s", vr.reason);
    replay_refuses(EVENTS);
    tl_keypair_wipe(&kp);
    free(f), free(before);
}
END_TEST

/* tl_export callback: counts the x.commit line, which must carry no "content" member. */
static int x_line_has_no_content(const char *line, size_t len, void *payload) {
    (void)len;
    if (!strstr(line, "\"kind\":\"x.commit\"") || strstr(line, "\"type\":\"header\"")) return 0;
    ck_assert_msg(!strstr(line, "\"content\""), "an x.* line with content: %s", line);
    (*(int *)payload)++;
    return 0;
}

/* An extension's payload is its own (FORMAT.md §9): fields named like a commitment there
 * commit to nothing threadlog stored, so verify, a verified replay and a cut copy accept them
 * (an embedder's x.* event once made its own log fail verify for ever). */
START_TEST(extension_fields_named_like_commitments) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    uint8_t commit[32];
    memset(commit, 0x5a, sizeof commit);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "body_commit", 11);
    msgpack_pack_bin_with_body(&pk, commit, 32);
    msgpack_pack_str_with_body(&pk, "body_size", 9);
    msgpack_pack_uint64(&pk, 3);
    msgpack_pack_str_with_body(&pk, "data_commit", 11);
    msgpack_pack_bin_with_body(&pk, commit, 31);
    msgpack_pack_str_with_body(&pk, "data_size", 9);
    msgpack_pack_nil(&pk); /* nil is an extension's to use, too */
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_draft d = {"x.commit", "alice", NULL, (const uint8_t *)buf.data, buf.size};
    ck_assert_int_eq(tl_log_append(log, &d, 1, NULL), 0);
    tl_log_close(log);
    msgpack_sbuffer_destroy(&buf);
    tl_verify_report rep;
    ck_assert_msg(verify(NULL, &rep) == 0, "verify: %s", rep.reason);
    ck_assert_uint_eq(rep.contents, 0);
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_replay_options o = TL_REPLAY_OPTIONS_INIT;
    o.verify = true;
    tl_replay_report rr;
    ck_assert_msg(tl_replay(log, &o, &rr) == 0, "replay --verify: %s", tl_errdetail());
    tl_log_close(log);
    /* the export lists no content for it (its verifier would look for an erasure) */
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    tl_export_options eo = TL_EXPORT_OPTIONS_INIT;
    int x_lines = 0;
    ck_assert_int_eq(tl_export(log, &eo, x_line_has_no_content, &x_lines), 0);
    ck_assert_int_eq(x_lines, 1);
    tl_log_close(log);
    uint64_t bad = 0;
    ck_assert_int_eq(cut_copy(EVENTS, true, &bad), 0); /* the cut deletes no content for it */
    ck_assert_uint_eq(bad, 0);
}
END_TEST

/* Canonical rule 7 (FORMAT.md §3): a domain event carries no nil but the envelope's project.
 * One re-signed by the key holder with "account": nil (and the head moved to it) is corrupt. */
START_TEST(nil_in_a_domain_payload) {
    run_commands(one_message);
    const uint64_t last = EVENTS + 4;
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len;
    raw_begin(&r);
    uint8_t *prev = raw_get(&r, last - 1, &len);
    uint8_t ph[32];
    uint64_t ts;
    record_hash_ts(prev, len, ph, &ts);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, last);
    msgpack_pack_uint64(&pk, ts + 1);
    msgpack_pack_bin_with_body(&pk, ph, 32);
    msgpack_pack_str_with_body(&pk, "alice", 5);
    msgpack_pack_str_with_body(&pk, "message.read", 12);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str_with_body(&pk, "o-1", 3);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "account", 7);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, "m-1", 3);
    size_t rl = buf.size + 64;
    uint8_t *rec = malloc(rl);
    memcpy(rec, buf.data, buf.size);
    tl_sign(rec + buf.size, rec, buf.size, &kp);
    raw_set(&r, last, rec, rl);
    raw_end(&r);
    uint8_t head[80]; /* the head moved to it, by hand: the event does not decode */
    head_get(head);
    be64(head, last);
    crypto_generichash(head + 8, 32, rec, rl - 64, NULL, 0);
    be64(head + 40, ts + 1);
    head_put(head);
    tl_verify_report rep;
    ck_assert_int_eq(verify(NULL, &rep), TL_ECORRUPT);
    ck_assert_uint_eq(rep.first_bad_seq, last);
    ck_assert_msg(strstr(rep.reason, "nil"), "reason: %s", rep.reason);
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(rec);
    free(prev);
}
END_TEST

/* A checkpoint names its event's time: one signed by the key holder with another time for
 * the right event and hash is refused. */
START_TEST(checkpoint_time_must_match) {
    char *cp = checkpoint_signed(800, 0), *moved = checkpoint_signed(800, 5);
    expect_good(cp, "a checkpoint at 800");
    expect_bad(moved, 800, "a checkpoint with another time");
    free(moved);
    free(cp);
}
END_TEST

/* ================================================================ near misses
 * Found by mutation testing of verify (2026-11-27): each case below passed verify when one of
 * its checks was weakened (compared over fewer bytes, skipped, or its loop not stopped), and
 * no other test noticed. */

static uint8_t *sign_bytes(const uint8_t *bytes, size_t n, size_t *len, const tl_keypair *kp) {
    uint8_t *rec = malloc(n + 64);
    memcpy(rec, bytes, n);
    tl_sign(rec + n, rec, n, kp);
    *len = n + 64;
    return rec;
}

/* an event whose prev differs from the true hash only in its last byte, re-signed */
START_TEST(prev_differs_in_last_byte) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r69 = raw_get(&r, 69, &len);
    record_hash_ts(r69, len, h, &ts);
    h[31] ^= 1;
    uint8_t *f = forge(&fl, 70, ts, h, "x.tamper", "a quiet edit", NULL, &kp);
    raw_set(&r, 70, f, fl);
    raw_end(&r);
    expect_bad(NULL, 70, "event 70's prev differs in its last byte");
    replay_refuses_when(70, true); /* the chain is checked without verification too */
    tl_keypair_wipe(&kp);
    free(f), free(r69);
}
END_TEST

/* two bad signatures in one chunk: the first is named */
START_TEST(two_bad_signatures_first_named) {
    raw r;
    size_t l10, l20;
    raw_begin(&r);
    uint8_t *a = raw_get(&r, 10, &l10), *b = raw_get(&r, 20, &l20);
    a[l10 - 1] ^= 1;
    b[l20 - 1] ^= 1;
    raw_set(&r, 10, a, l10);
    raw_set(&r, 20, b, l20);
    raw_end(&r);
    expect_bad(NULL, 10, "signatures of 10 and 20 damaged");
    replay_refuses_when(10, false); /* signatures: the verified replay only */
    free(a), free(b);
}
END_TEST

/* a key.rotated whose public_key is 31 bytes, signed by the writer key */
START_TEST(rotated_key_too_short) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len;
    uint8_t h[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *r69 = raw_get(&r, 69, &len);
    record_hash_ts(r69, len, h, &ts);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = 70, .ts = ts, .actor = "@operator", .kind = "key.rotated", .schema = 1};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "public_key", kp.pk, 31);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    size_t fl;
    uint8_t *f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_set(&r, 70, f, fl);
    raw_end(&r);
    expect_bad(NULL, 70, "key.rotated with a 31-byte key");
    replay_refuses_when(70, true);
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(r69);
}
END_TEST

static char *checkpoint_custom(uint64_t seq, int flip_hash_byte, bool foreign_key) {
    tl_keypair kp;
    if (foreign_key) tl_keypair_generate(&kp);
    else writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *rec = raw_get(&r, seq, &len);
    raw_end(&r);
    uint8_t msg[23 + 8 + 32 + 8], sig[64];
    uint64_t ts;
    memcpy(msg, "threadlog-checkpoint-v1", 23);
    be64(msg + 23, seq);
    record_hash_ts(rec, len, msg + 31, &ts);
    if (flip_hash_byte >= 0) msg[31 + flip_hash_byte] ^= 1;
    be64(msg + 63, ts);
    tl_sign(sig, msg, sizeof msg, &kp);
    char hash[65], key[65], sighex[129];
    tl_hex(hash, msg + 31, 32);
    tl_hex(key, kp.pk, 32);
    tl_hex(sighex, sig, 64);
    char *json = malloc(512);
    snprintf(json, 512, "{\"seq\":%llu,\"hash\":\"%s\",\"ts\":%llu,\"key\":\"%s\",\"signature\":\"%s\"}",
             (unsigned long long)seq, hash, (unsigned long long)ts, key, sighex);
    tl_keypair_wipe(&kp);
    free(rec);
    return json;
}

/* a checkpoint signed by a key the log never used */
START_TEST(checkpoint_signed_by_a_stranger) {
    char *cp = checkpoint_custom(80, -1, true);
    expect_bad(cp, 80, "a checkpoint signed by a stranger");
    free(cp);
}
END_TEST

/* a checkpoint whose hash differs in its last byte only; one at sequence 0 */
START_TEST(checkpoint_hash_differs_in_last_byte) {
    char *cp = checkpoint_custom(80, 31, false);
    expect_bad(cp, 80, "a checkpoint naming another hash (last byte)");
    free(cp);
    tl_verify_report r;
    const char *zero = "{\"seq\":0,\"hash\":\"00\",\"ts\":0,\"key\":\"00\",\"signature\":\"00\"}";
    ck_assert_int_eq(verify(zero, &r), TL_EINVALID);
}
END_TEST

/* a one-event log whose genesis says format 2, re-signed by its key */
START_TEST(genesis_of_another_format) {
    char *base = tu_tmpdir();
    char *saved = g_dir;
    g_dir = malloc(strlen(base) + 8);
    sprintf(g_dir, "%s/log", base);
    free(base);
    ck_assert_int_eq(tl_log_init(g_dir, NULL, NULL), 0);
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    raw_begin(&r);
    size_t len;
    uint8_t *g = raw_get(&r, 1, &len);
    uint8_t *at = memmem(g, len - 64, "\xa6" "format\x01", 8);
    ck_assert_ptr_nonnull(at);
    at[7] = 2;
    size_t fl;
    uint8_t *f = sign_bytes(g, len - 64, &fl, &kp);
    raw_set(&r, 1, f, fl);
    raw_set_head(&r, 1);
    raw_end(&r);
    expect_bad(NULL, 1, "a genesis of format 2");
    replay_refuses_when(1, true);
    tl_keypair_wipe(&kp);
    free(g), free(f);
    teardown();
    g_dir = saved;
}
END_TEST

/* The fields beside a commitment are checked as FORMAT.md §6 (checks 7 and 9) says, even
 * when the key holder signed them: a size other than the content's (its hash still
 * matching), a size missing, an erasure whose commitment is not 32 bytes (mutation testing:
 * each passed when its check was dropped). */
START_TEST(commitment_fields_checked) {
    run_commands(one_message);
    const uint64_t note = EVENTS + 4;
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    raw_begin(&r);
    uint8_t *rec = raw_get(&r, note, &len);
    raw_end(&r);
    size_t n = len - 64;
    const uint8_t *at = memmem(rec, n, "\xa9" "body_size\x08", 11); /* "Tomorrow": 8 bytes */
    ck_assert_ptr_nonnull(at);
    size_t size_at = (size_t)(at - rec);
    uint8_t *ed = malloc(n);
    /* the size one more than the content's */
    memcpy(ed, rec, n);
    ed[size_at + 10] = 9;
    uint8_t *f = sign_bytes(ed, n, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_bad(NULL, note, "a body_size one more than the content's");
    free(f);
    /* the size missing: the pair cut out of the payload map */
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, n), 0);
    size_t map_at = (size_t)(ev.payload - rec);
    ck_assert_uint_eq(rec[map_at] & 0xf0, 0x80);
    memcpy(ed, rec, n);
    ed[map_at]--;
    memmove(ed + size_at, ed + size_at + 11, n - size_at - 11);
    f = sign_bytes(ed, n - 11, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_bad(NULL, note, "a body_commit without its body_size");
    free(f);
    raw_begin(&r);
    raw_set(&r, note, rec, len);
    raw_set_head(&r, note);
    raw_end(&r);
    expect_good(NULL, "restored");
    /* the size missing once the content is erased: checked all the same (the note is no longer
     * the last event, so the chain breaks at the erasure after it: only the size check names
     * the note) */
    {
        tl_log *log;
        ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
        tl_result res;
        ck_assert_int_eq(tl_erase(log, "m-1", "a request", &res), 0);
        ck_assert_uint_eq(res.seq, note + 1);
        tl_log_close(log);
    }
    memcpy(ed, rec, n);
    ed[map_at]--;
    memmove(ed + size_at, ed + size_at + 11, n - size_at - 11);
    f = sign_bytes(ed, n - 11, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note, f, fl);
    raw_end(&r);
    expect_bad(NULL, note, "an erased body's commitment without its body_size");
    free(f);
    raw_begin(&r);
    raw_set(&r, note, rec, len);
    uint8_t *erasure = raw_get(&r, note + 1, &len);
    raw_end(&r);
    expect_good(NULL, "restored, with the erasure");
    /* an erasure naming a 31-byte commitment */
    uint8_t h[32], c31[31] = {0};
    uint64_t ts;
    record_hash_ts(erasure, len, h, &ts);
    free(erasure);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = note + 2, .ts = ts, .actor = "@operator", .kind = "content.erased", .schema = 1,
                       .project = "o-1"};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "commitment", c31, sizeof c31);
    tl_payload_str(&p, "reason", "a request");
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_begin(&r);
    raw_set(&r, note + 2, f, fl);
    raw_set_head(&r, note + 2);
    raw_end(&r);
    expect_bad(NULL, note + 2, "an erasure naming a 31-byte commitment");
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(ed), free(rec);
}
END_TEST

static const char *const two_notes[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-1\",\"project\":\"o-1\",\"body\":\"first\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"m-2\",\"project\":\"o-1\",\"body\":\"second\"}",
    NULL};

/* The commitment of event seq's body. */
static void body_commit_of(raw *r, uint64_t seq, uint8_t commit[32]) {
    size_t len;
    uint8_t *rec = raw_get(r, seq, &len);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    memcpy(commit, c.ptr, 32);
    free(rec);
}

/* Content deleted behind the log's back: the first such event is named, and a meta mark
 * claiming an erasure at or before the head does not excuse it (only a cut copy's marks of
 * erasures beyond its head do; mutation testing: both passed when their checks were
 * weakened). */
START_TEST(content_deleted_first_named) {
    run_commands(two_notes);
    const uint64_t first = EVENTS + 4, second = EVENTS + 5;
    raw r;
    uint8_t c1[32], c2[32];
    raw_begin(&r);
    body_commit_of(&r, first, c1);
    body_commit_of(&r, second, c2);
    MDB_val k1 = {32, c1}, k2 = {32, c2};
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k1, NULL), 0);
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k2, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, first, "two contents deleted");
    /* a mark for the first, naming an erasure at sequence 1: not beyond the head, not ours */
    uint8_t key[7 + 32], seq1[8];
    memcpy(key, "erased/", 7);
    memcpy(key + 7, c1, 32);
    be64(seq1, 1);
    MDB_val mk = {sizeof key, key}, mv = {8, seq1};
    raw_begin(&r);
    ck_assert_int_eq(mdb_put(r.txn, r.meta, &mk, &mv, 0), 0);
    raw_end(&r);
    expect_bad(NULL, first, "a meta mark naming an erasure before the head");
}
END_TEST

/* The commitment of a record's body (rec as tl_log_record gives it). */
static void body_commit_in(const uint8_t *rec, size_t len, uint8_t commit[32]) {
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, rec, len - 64), 0);
    tl_bytes c;
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &c), 0);
    memcpy(commit, c.ptr, 32);
}

/* An erasure excuses the content of its own commitment only, compared whole: a deleted
 * content whose commitment merely begins like an erased one's is still named (mutation
 * testing: a comparison of the first byte passed). Commitments are salted, so notes are
 * added until one begins with the erased note's first byte. */
START_TEST(erasure_matches_whole_commitment) {
    run_commands(one_message);
    tl_log *log;
    ck_assert_int_eq(tl_log_open(&log, g_dir, NULL), 0);
    uint8_t *rec, ca[32], cb[32];
    size_t len;
    ck_assert_int_eq(tl_log_record(log, EVENTS + 4, &rec, &len), 0);
    body_commit_in(rec, len, ca);
    tl_free(rec);
    uint64_t twin = 0;
    for (int i = 0; i < 4096 && !twin; i++) {
        char line[160];
        snprintf(line, sizeof line, "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-%d\",\"project\":\"o-1\",\"body\":\"note %d\"}", i, i);
        tl_cmd *cmd;
        tl_result res;
        ck_assert_int_eq(tl_cmd_parse(&cmd, line, strlen(line), &res), 0);
        ck_assert_int_eq(tl_cmd_exec(log, cmd, &res), 0);
        tl_cmd_free(cmd);
        ck_assert_int_eq(tl_log_record(log, res.seq, &rec, &len), 0);
        body_commit_in(rec, len, cb);
        tl_free(rec);
        if (cb[0] == ca[0] && memcmp(ca, cb, 32) != 0) twin = res.seq;
    }
    ck_assert_msg(twin, "no note's commitment began like m-1's in 4,096 tries");
    tl_result res;
    ck_assert_int_eq(tl_erase(log, "m-1", "a request", &res), 0);
    tl_log_close(log);
    expect_good(NULL, "m-1 erased");
    raw r;
    raw_begin(&r);
    MDB_val k = {32, cb};
    ck_assert_int_eq(mdb_del(r.txn, r.content, &k, NULL), 0);
    raw_end(&r);
    expect_bad(NULL, twin, "a content deleted whose commitment begins like an erased one's");
}
END_TEST

/* Only kinds "x." and on are an extension's (whose commitment-like fields commit to nothing
 * threadlog stores): a kind that merely begins with "x" has its commitments checked
 * (mutation testing: a one-character prefix passed). A signed "xmsg" event committing to
 * content that was never stored is named. */
START_TEST(extension_kinds_need_the_dot) {
    tl_keypair kp;
    writer_key(&kp);
    raw r;
    size_t len, fl;
    uint8_t h[32], commit[32];
    uint64_t ts;
    raw_begin(&r);
    uint8_t *last = raw_get(&r, EVENTS, &len);
    record_hash_ts(last, len, h, &ts);
    randombytes_buf(commit, sizeof commit);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env = {.seq = EVENTS + 1, .ts = ts, .actor = "alice", .kind = "xmsg", .schema = 1};
    memcpy(env.prev, h, 32);
    tl_payload p = {0};
    tl_payload_bin(&p, "body_commit", commit, sizeof commit);
    tl_payload_uint(&p, "body_size", 5);
    ck_assert_int_eq(tl_event_encode(&buf, &env, &p), 0);
    uint8_t *f = sign_bytes((const uint8_t *)buf.data, buf.size, &fl, &kp);
    raw_set(&r, EVENTS + 1, f, fl);
    raw_set_head(&r, EVENTS + 1);
    raw_end(&r);
    expect_bad(NULL, EVENTS + 1, "an \"xmsg\" event committing to content never stored");
    msgpack_sbuffer_destroy(&buf);
    tl_keypair_wipe(&kp);
    free(f), free(last);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tamper");
    TCase *tc = tcase_create("bytes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, flip_every_byte, 0, quick_run() ? 2 : 6);
    tcase_add_test(tc, flip_head_record);
    tcase_add_test(tc, replay_keeps_head_evidence);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    if (quick_run()) {
        tc = tcase_create("bytes-100");
        tcase_add_checked_fixture(tc, setup_small, teardown);
        tcase_add_loop_test(tc, flip_every_byte, 0, 6);
        tcase_set_timeout(tc, 300);
        suite_add_tcase(s, tc);
    }

    tc = tcase_create("order");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, delete_events);
    tcase_add_test(tc, delete_last);
    tcase_add_test(tc, swap_events);
    tcase_add_test(tc, record_with_other_seq);
    tcase_add_test(tc, insert_foreign_signed);
    tcase_add_test(tc, resigned_event);
    tcase_add_test(tc, time_goes_back);
    tcase_add_test(tc, genesis_only_first);
    tcase_add_test(tc, prev_differs_in_last_byte);
    tcase_add_test(tc, two_bad_signatures_first_named);
    tcase_add_test(tc, rotated_key_too_short);
    tcase_add_test(tc, genesis_of_another_format);
    tcase_add_test(tc, cut_copy_checks_tail);
    tcase_add_test(tc, replay_refuses_an_emptied_log);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, checkpoint_detects_rewritten_tail);
    tcase_add_test(tc, checkpoint_detects_rewrite_before_it);
    tcase_add_test(tc, checkpoint_detects_truncated_tail);
    tcase_add_test(tc, checkpoint_covers_what_it_names);
    tcase_add_test(tc, content_commitment);
    tcase_add_test(tc, commitment_fields_checked);
    tcase_add_test(tc, content_deleted_first_named);
    tcase_add_test(tc, erasure_matches_whole_commitment);
    tcase_add_test(tc, extension_kinds_need_the_dot);
    tcase_add_test(tc, extension_fields_named_like_commitments);
    tcase_add_test(tc, nil_in_a_domain_payload);
    tcase_add_test(tc, checkpoint_time_must_match);
    tcase_add_test(tc, checkpoint_signed_by_a_stranger);
    tcase_add_test(tc, checkpoint_hash_differs_in_last_byte);
    tcase_add_test(tc, meta_copies_of_genesis);
    tcase_add_test(tc, damaged_free_list);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
