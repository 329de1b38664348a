/*
 * test_codec.c — the byte format (docs/FORMAT.md) and the strict decoder.
 *
 * Golden vectors: a fixed ed25519 key (seed 00..1f), four fixed events encoded with
 * tl_event_encode, their exact bytes, BLAKE2b-256 hashes and signatures, a content
 * commitment and a checkpoint signature. The same hex strings are printed in
 * docs/FORMAT.md, and the test checks they are there, so a format change cannot be silent
 * in the code or in the document.
 *
 * The decoder is fed every way an event can be malformed (non-canonical encodings,
 * unsorted or duplicate keys, floats, ext, depth, absurd counts, truncations, bad UTF-8,
 * unknown versions) and must refuse each with TL_ECORRUPT or TL_EVERSION, never crash.
 */
#include <ctype.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "testutil.h"
#include "strbuf.h"
#include "zeropack.h"

/* ================================================================ helpers */

/* Parse hex (spaces ignored) into a malloc'd buffer. */
static uint8_t *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex);
    uint8_t *out = malloc(n / 2 + 1);
    size_t o = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)hex[i])) continue;
        int c = tolower((unsigned char)hex[i]);
        int v = c >= 'a' ? c - 'a' + 10 : c - '0';
        ck_assert_msg(isxdigit(c), "bad hex digit in test vector: %c", c);
        if (hi < 0) hi = v;
        else { out[o++] = (uint8_t)(hi << 4 | v); hi = -1; }
    }
    ck_assert_msg(hi < 0, "odd number of hex digits in test vector");
    *len = o;
    return out;
}

static char *tohex(const uint8_t *p, size_t n) {
    char *s = malloc(2 * n + 1);
    sodium_bin2hex(s, 2 * n + 1, p, n);
    return s;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want, const char *what) {
    char *g = tohex(got, n);
    size_t wl;
    uint8_t *w = unhex(want, &wl);
    char *wh = tohex(w, wl);
    ck_assert_msg(wl == n && strcmp(g, wh) == 0, "%s:\n  got  %s\n  want %s", what, g, wh);
    free(g);
    free(w);
    free(wh);
}

static int decode_hex(const char *hex) {
    size_t n;
    uint8_t *b = unhex(hex, &n);
    tl_event ev;
    int rc = tl_event_decode(&ev, b, n);
    free(b);
    return rc;
}

/* ================================================================ golden vectors */

/* The vectors (docs/FORMAT.md, "Golden vectors"). Key 1: seed 00 01 .. 1f; key 2: seed
 * 20 21 .. 3f. Event 1: genesis. Event 2: message.sent with a content commitment (salt
 * 80 81 .. 9f, content "Tomorrow"). Event 3: key.rotated to key 2, signed by key 1.
 * Event 4: message.read, signed by key 2. CP: a checkpoint of event 4 signed by key 2. */
#define K1_PUB "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define K2_PUB "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
#define G1_BYTES \
    "990101cf00060a24181e4000c420000000000000000000000000000000000000" \
    "0000000000000000000000000000a9406f70657261746f72ab6c6f672e637265" \
    "6174656401c084a6666f726d617401ae6d61785f6174746163686d656e74ce01" \
    "900000a86d61785f626f6479ce00010000aa7075626c69635f6b6579c42003a1" \
    "07bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define G1_HASH "5bfcbb25021a8765849305f1cbf8d77120ef281ebe91f24d465f816636b18a9f"
#define G1_SIG \
    "6ef15b54bbb0a51418d69074545d6013c0040d37f1301087c455cf998bc29d89" \
    "c9db15b539125cfe55d018509de2a0d0515d3e752ea2cb482369a204e719300b"
#define G2_BYTES \
    "990102cf00060a2418202240c4205bfcbb25021a8765849305f1cbf8d77120ef" \
    "281ebe91f24d465f816636b18a9fa373616dac6d6573736167652e73656e7401" \
    "a36f2d3187ab6174746163686d656e747391a3612d31ab626f64795f636f6d6d" \
    "6974c42085ad2f1436df4ded08c2d8a0e0af1e63abf85c4784d6cc36c17eba40" \
    "02857372a9626f64795f73697a6508a76368616e6e656ca463686174a26964a3" \
    "6d2d32a772657175657374c42052525252525252525252525252525252525252" \
    "52525252525252525252525252a5746f706963a3742d31"
#define G2_HASH "779befb6a8d5059ceb04fe878483031c324731dd567b6e9d877129426b1db9ea"
#define G2_SIG \
    "708a4c08f9e57477e2cdfe881e0ed506e8bf029287385be26c9f56eea3979bce" \
    "c50aa442ac3eb897ecc885db09cbab0cb76fd8df7e71d91409e9bdc327b45804"
#define G3_BYTES \
    "990103cf00060a2418214d40c420779befb6a8d5059ceb04fe878483031c3247" \
    "31dd567b6e9d877129426b1db9eaa9406f70657261746f72ab6b65792e726f74" \
    "6174656401c081aa7075626c69635f6b6579c42029acbae141bccaf0b22e1a94" \
    "d34d0bc7361e526d0bfe12c89794bc9322966dd7"
#define G3_HASH "19e416fcaee6e92667d09c9e419aa72e233e6ea920ff0b6f090e227dcf702a0c"
#define G3_SIG \
    "1c57116b6cf44556c5a888261249b8393589ca7b6cb37cea5fe7a1db0788d506" \
    "e643a4bc341cfd0548bb54a68e5f47f29c5835a0abf3b50632bc0eb398c6510a"
#define G4_BYTES \
    "990104cf00060a241822d3e0c42019e416fcaee6e92667d09c9e419aa72e233e" \
    "6ea920ff0b6f090e227dcf702a0ca5616c696365ac6d6573736167652e726561" \
    "6401a36f2d3181a76d657373616765a36d2d32"
#define G4_HASH "6b7722cdb603b29938a7d0c3ccdfaba3381c8ed67dcf595c402805228ef32371"
#define G4_SIG \
    "8b202efbb5ca6d5e5088838d78a810b2f73d176b7b7567b7438fc80e388ea29a" \
    "8183d53d039cfdf9491ca39030cecdfc775a818b6c3d4157db7b13271af44b02"
#define C_COMMIT "85ad2f1436df4ded08c2d8a0e0af1e63abf85c4784d6cc36c17eba4002857372"
#define CP_MSG \
    "7468726561646c6f672d636865636b706f696e742d763100000000000000046b" \
    "7722cdb603b29938a7d0c3ccdfaba3381c8ed67dcf595c402805228ef3237100" \
    "060a241822d3e0"
#define CP_SIG \
    "d6802089095d518081c34793451a8449e6c3729bfc04322bbf9d82a1442642d1" \
    "ab4174dd48cbdc8589059c5c33ff3709db9fc66bc2a9983732d221b738f0b80e"

#define TS0 1700000000000000ull

typedef struct vectors {
    tl_keypair k1, k2;
    uint8_t salt[TL_SALT_BYTES];
    uint8_t commit[TL_HASH_BYTES];
    uint8_t request[TL_HASH_BYTES];
    msgpack_sbuffer ev[4];
    uint8_t hash[4][TL_HASH_BYTES];
    uint8_t sig[4][TL_SIGNATURE_BYTES];
    uint8_t cp_msg[sizeof TL_CHECKPOINT_CONTEXT - 1 + 8 + TL_HASH_BYTES + 8];
    uint8_t cp_sig[TL_SIGNATURE_BYTES];
} vectors;

static void be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static void seeded_key(tl_keypair *kp, uint8_t first) {
    uint8_t seed[crypto_sign_SEEDBYTES];
    for (int i = 0; i < (int)sizeof seed; i++) seed[i] = (uint8_t)(first + i);
    ck_assert_int_eq(crypto_sign_seed_keypair(kp->pk, kp->sk, seed), 0);
}

static void build_one(vectors *v, int i, const tl_envelope *env, const tl_payload *p, const tl_keypair *signer) {
    msgpack_sbuffer_init(&v->ev[i]);
    int rc = tl_event_encode(&v->ev[i], env, p);
    ck_assert_msg(rc == 0, "encode event %d: %s", i + 1, tl_errdetail());
    tl_hash(v->hash[i], v->ev[i].data, v->ev[i].size);
    tl_sign(v->sig[i], (const uint8_t *)v->ev[i].data, v->ev[i].size, signer);
}

static void build_vectors(vectors *v) {
    ck_assert_int_eq(tl_crypto_init(), 0);
    memset(v, 0, sizeof *v);
    seeded_key(&v->k1, 0x00);
    seeded_key(&v->k2, 0x20);
    for (int i = 0; i < TL_SALT_BYTES; i++) v->salt[i] = (uint8_t)(0x80 + i);
    tl_commit(v->commit, v->salt, "Tomorrow", 8);
    memset(v->request, 0x52, sizeof v->request);

    tl_envelope e = {.seq = 1, .ts = TS0, .actor = "@operator", .kind = "log.created", .schema = 1};
    tl_payload p = {0};
    tl_payload_uint(&p, "format", 1);
    tl_payload_bin(&p, "public_key", v->k1.pk, TL_PUBKEY_BYTES);
    tl_payload_uint(&p, "max_attachment", TL_DEFAULT_MAX_ATTACHMENT);
    tl_payload_uint(&p, "max_body", TL_BODY_MAX);
    build_one(v, 0, &e, &p, &v->k1);

    static const char *const attachments[] = {"a-1"};
    e = (tl_envelope){.seq = 2, .ts = TS0 + 123456, .actor = "sam", .kind = "message.sent", .schema = 1, .project = "o-1"};
    memcpy(e.prev, v->hash[0], TL_HASH_BYTES);
    p = (tl_payload){0};
    tl_payload_str(&p, "id", "m-2");
    tl_payload_str(&p, "channel", "chat");
    tl_payload_str(&p, "topic", "t-1");
    tl_payload_bin(&p, "body_commit", v->commit, TL_HASH_BYTES);
    tl_payload_uint(&p, "body_size", 8);
    tl_payload_strlist(&p, "attachments", attachments, 1);
    tl_payload_bin(&p, "request", v->request, TL_HASH_BYTES);
    tl_payload_str(&p, "account", NULL); /* absent optional field: omitted, never nil */
    build_one(v, 1, &e, &p, &v->k1);

    e = (tl_envelope){.seq = 3, .ts = TS0 + 200000, .actor = "@operator", .kind = "key.rotated", .schema = 1};
    memcpy(e.prev, v->hash[1], TL_HASH_BYTES);
    p = (tl_payload){0};
    tl_payload_bin(&p, "public_key", v->k2.pk, TL_PUBKEY_BYTES);
    build_one(v, 2, &e, &p, &v->k1); /* the old key signs the rotation */

    e = (tl_envelope){.seq = 4, .ts = TS0 + 300000, .actor = "alice", .kind = "message.read", .schema = 1, .project = "o-1"};
    memcpy(e.prev, v->hash[2], TL_HASH_BYTES);
    p = (tl_payload){0};
    tl_payload_str(&p, "message", "m-2");
    build_one(v, 3, &e, &p, &v->k2); /* and the new key everything after it */

    size_t c = sizeof TL_CHECKPOINT_CONTEXT - 1;
    memcpy(v->cp_msg, TL_CHECKPOINT_CONTEXT, c);
    be64(v->cp_msg + c, 4);
    memcpy(v->cp_msg + c + 8, v->hash[3], TL_HASH_BYTES);
    be64(v->cp_msg + c + 8 + TL_HASH_BYTES, TS0 + 300000);
    tl_sign(v->cp_sig, v->cp_msg, sizeof v->cp_msg, &v->k2);
}

static void free_vectors(vectors *v) {
    for (int i = 0; i < 4; i++) msgpack_sbuffer_destroy(&v->ev[i]);
}

static const char *const golden_bytes[4] = {G1_BYTES, G2_BYTES, G3_BYTES, G4_BYTES};
static const char *const golden_hash[4] = {G1_HASH, G2_HASH, G3_HASH, G4_HASH};
static const char *const golden_sig[4] = {G1_SIG, G2_SIG, G3_SIG, G4_SIG};

START_TEST(golden_events) {
    vectors v;
    build_vectors(&v);
    assert_hex(v.k1.pk, TL_PUBKEY_BYTES, K1_PUB, "key 1 (seed 00..1f)");
    assert_hex(v.k2.pk, TL_PUBKEY_BYTES, K2_PUB, "key 2 (seed 20..3f)");
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "event %d bytes", i + 1);
        assert_hex((const uint8_t *)v.ev[i].data, v.ev[i].size, golden_bytes[i], what);
        snprintf(what, sizeof what, "event %d BLAKE2b-256", i + 1);
        assert_hex(v.hash[i], TL_HASH_BYTES, golden_hash[i], what);
        snprintf(what, sizeof what, "event %d ed25519 signature", i + 1);
        assert_hex(v.sig[i], TL_SIGNATURE_BYTES, golden_sig[i], what);
    }
    free_vectors(&v);
}
END_TEST

/* The vectors verify with plain libsodium, straight from the hex: hash chain and key chain. */
START_TEST(golden_verify_from_hex) {
    ck_assert_int_eq(sodium_init() < 0, 0);
    size_t pkl;
    uint8_t *pk1 = unhex(K1_PUB, &pkl), *pk2 = unhex(K2_PUB, &pkl);
    const uint8_t *signer[4] = {pk1, pk1, pk1, pk2};
    uint8_t prev[TL_HASH_BYTES] = {0};
    for (int i = 0; i < 4; i++) {
        size_t n, hn, sn;
        uint8_t *b = unhex(golden_bytes[i], &n), *h = unhex(golden_hash[i], &hn), *sg = unhex(golden_sig[i], &sn);
        uint8_t got[TL_HASH_BYTES];
        crypto_generichash(got, sizeof got, b, n, NULL, 0);
        ck_assert_mem_eq(got, h, TL_HASH_BYTES);
        ck_assert_int_eq(crypto_sign_verify_detached(sg, b, n, signer[i]), 0);
        tl_event ev;
        ck_assert_int_eq(tl_event_decode(&ev, b, n), 0);
        ck_assert_uint_eq(ev.seq, (uint64_t)i + 1);
        ck_assert_mem_eq(ev.prev, prev, TL_HASH_BYTES);
        memcpy(prev, h, TL_HASH_BYTES);
        /* and the other key does not verify it */
        ck_assert_int_ne(crypto_sign_verify_detached(sg, b, n, signer[i] == pk1 ? pk2 : pk1), 0);
        free(b), free(h), free(sg);
    }
    free(pk1), free(pk2);
}
END_TEST

START_TEST(golden_fields) {
    size_t n;
    uint8_t *b = unhex(G2_BYTES, &n);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, b, n), 0);
    ck_assert_uint_eq(ev.format, 1);
    ck_assert_uint_eq(ev.ts, TS0 + 123456);
    ck_assert_uint_eq(ev.schema, 1);
    ck_assert_str_eq(ev.actor, "sam");
    ck_assert_str_eq(ev.kind, "message.sent");
    ck_assert(ev.has_project);
    ck_assert_str_eq(ev.project, "o-1");
    tl_bytes t;
    ck_assert_int_eq(tl_ev_str(&ev, "channel", &t), 0);
    ck_assert(tl_bytes_eq(&t, "chat"));
    uint64_t size;
    ck_assert_int_eq(tl_ev_uint(&ev, "body_size", &size), 0);
    ck_assert_uint_eq(size, 8);
    ck_assert_int_eq(tl_ev_bin(&ev, "body_commit", &t), 0);
    ck_assert_uint_eq(t.len, 32);
    tl_bytes list;
    size_t count, pos = 0;
    ck_assert_int_eq(tl_ev_list(&ev, "attachments", &list, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(tl_ev_list_next(&list, &pos, &t), 0);
    ck_assert(tl_bytes_eq(&t, "a-1"));
    /* absent optional field: not there at all (never nil) */
    ck_assert_int_eq(tl_ev_str(&ev, "account", &t), TL_ENOTFOUND);
    ck_assert_ptr_null(memmem(b, n, "account", 7));
    /* wrong type */
    ck_assert_int_eq(tl_ev_uint(&ev, "channel", &size), TL_ECORRUPT);
    bool flag;
    ck_assert_int_eq(tl_ev_bool(&ev, "body_size", &flag), TL_ECORRUPT);
    char *json;
    tl_event_view view = {.seq = ev.seq, .bytes = b, .len = n};
    ck_assert_int_eq(tl_event_json(&view, &json), 0);
    ck_assert_str_eq(json, "{\"seq\":2,\"ts\":1700000000123456,\"actor\":\"sam\",\"kind\":\"message.sent\","
                           "\"project\":\"o-1\",\"payload\":{\"attachments\":[\"a-1\"],\"body_commit\":"
                           "\"85ad2f1436df4ded08c2d8a0e0af1e63abf85c4784d6cc36c17eba4002857372\",\"body_size\":8,"
                           "\"channel\":\"chat\",\"id\":\"m-2\",\"request\":"
                           "\"5252525252525252525252525252525252525252525252525252525252525252\",\"topic\":\"t-1\"}}");
    tl_free(json);
    free(b);
}
END_TEST

START_TEST(golden_commitment) {
    ck_assert_int_eq(tl_crypto_init(), 0);
    uint8_t salt[TL_SALT_BYTES], got[TL_HASH_BYTES], plain[TL_HASH_BYTES], buf[TL_SALT_BYTES + 8];
    for (int i = 0; i < TL_SALT_BYTES; i++) salt[i] = (uint8_t)(0x80 + i);
    tl_commit(got, salt, "Tomorrow", 8);
    assert_hex(got, TL_HASH_BYTES, C_COMMIT, "commitment BLAKE2b-256(salt || \"Tomorrow\")");
    /* it is the plain hash of the concatenation: nothing else goes in */
    memcpy(buf, salt, TL_SALT_BYTES);
    memcpy(buf + TL_SALT_BYTES, "Tomorrow", 8);
    crypto_generichash(plain, sizeof plain, buf, sizeof buf, NULL, 0);
    ck_assert_mem_eq(got, plain, TL_HASH_BYTES);
    /* another salt, same content: an unrelated commitment (nothing to guess from) */
    salt[0] ^= 1;
    tl_commit(plain, salt, "Tomorrow", 8);
    ck_assert(memcmp(got, plain, TL_HASH_BYTES) != 0);
}
END_TEST

START_TEST(golden_checkpoint) {
    vectors v;
    build_vectors(&v);
    assert_hex(v.cp_msg, sizeof v.cp_msg, CP_MSG, "checkpoint signed message");
    assert_hex(v.cp_sig, TL_SIGNATURE_BYTES, CP_SIG, "checkpoint signature");
    free_vectors(&v);
}
END_TEST

/* docs/FORMAT.md prints the same vectors: a format change must update the document. */
START_TEST(golden_in_format_doc) {
    char *doc = tu_read_file(TL_SOURCE_DIR "/docs/FORMAT.md", NULL);
    ck_assert_msg(doc != NULL, "docs/FORMAT.md is missing");
    size_t o = 0;
    for (size_t i = 0; doc[i]; i++)
        if (!isspace((unsigned char)doc[i])) doc[o++] = (char)tolower((unsigned char)doc[i]);
    doc[o] = 0;
    static const char *const all[][2] = {
        {"K1_PUB", K1_PUB},     {"K2_PUB", K2_PUB},     {"G1_BYTES", G1_BYTES}, {"G1_HASH", G1_HASH},
        {"G1_SIG", G1_SIG},     {"G2_BYTES", G2_BYTES}, {"G2_HASH", G2_HASH},   {"G2_SIG", G2_SIG},
        {"G3_BYTES", G3_BYTES}, {"G3_HASH", G3_HASH},   {"G3_SIG", G3_SIG},     {"G4_BYTES", G4_BYTES},
        {"G4_HASH", G4_HASH},   {"G4_SIG", G4_SIG},     {"C_COMMIT", C_COMMIT}, {"CP_MSG", CP_MSG},
        {"CP_SIG", CP_SIG},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_msg(strstr(doc, all[i][1]) != NULL, "docs/FORMAT.md does not show %s", all[i][0]);
    free(doc);
}
END_TEST

/* ================================================================ the strict decoder */

#define Z32 "0000000000000000000000000000000000000000000000000000000000000000"
#define PREV "c420" Z32
/* format 1, seq 1, ts 0, prev zeros, actor "a", kind "x.a", schema 1, project nil */
#define PRE "99 01 01 00 " PREV " a161 a3782e61 01 c0 "
#define A31 "61616161616161616161616161616161616161616161616161616161616161"
#define P1(v) PRE "81 a161 " v /* payload {"a": v} */

typedef struct dcase {
    const char *name;
    const char *hex;
    int want;
} dcase;

static const dcase bad_cases[] = {
    {"empty input", "", TL_ECORRUPT},
    {"trailing byte", PRE "80 00", TL_ECORRUPT},
    {"two events back to back", PRE "80 " PRE "80", TL_ECORRUPT},
    {"not an array", "81 a161 01", TL_ECORRUPT},
    {"array of 8", "98 01 01 00 " PREV " a161 a3782e61 01 c0", TL_ECORRUPT},
    {"array of 10", PRE "80 80", TL_ECORRUPT},
    {"empty array", "90", TL_ECORRUPT},
    /* non-canonical integers */
    {"uint8 for 5 (seq)", "99 01 cc05 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"uint8 for 1 (format)", "99 cc01 01 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"uint16 for 5 (ts)", "99 01 01 cd0005 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"uint8 for 127", P1("cc7f"), TL_ECORRUPT},
    {"uint16 for 255", P1("cd00ff"), TL_ECORRUPT},
    {"uint32 for 65535", P1("ce0000ffff"), TL_ECORRUPT},
    {"uint64 for 2^32-1", P1("cf00000000ffffffff"), TL_ECORRUPT},
    {"int8 for -1", P1("d0ff"), TL_ECORRUPT},
    {"int8 for -32", P1("d0e0"), TL_ECORRUPT},
    {"int8 for 5", P1("d005"), TL_ECORRUPT},
    {"int16 for -128", P1("d1ff80"), TL_ECORRUPT},
    {"int32 for -32768", P1("d2ffff8000"), TL_ECORRUPT},
    {"int64 for -2^31", P1("d3ffffffff80000000"), TL_ECORRUPT},
    {"int64 for 1", P1("d30000000000000001"), TL_ECORRUPT},
    /* non-canonical strings, bins, arrays, maps */
    {"str8 for a 3-byte string", "99 01 01 00 " PREV " a161 d903782e61 01 c0 80", TL_ECORRUPT},
    {"str8 for 31 bytes", P1("d91f" A31), TL_ECORRUPT},
    {"str16 for 3 bytes", P1("da0003616263"), TL_ECORRUPT},
    {"str32 for 3 bytes", P1("db00000003616263"), TL_ECORRUPT},
    {"bin16 for 32 bytes", "99 01 01 00 c50020" Z32 " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"bin32 for 1 byte", P1("c60000000100"), TL_ECORRUPT},
    {"array16 for 9 items", "dc0009 01 01 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"array32 for 1 item", P1("dd0000000101"), TL_ECORRUPT},
    {"array16 for 15 items", P1("dc000f 000000000000000000000000000000"), TL_ECORRUPT},
    {"map16 for an empty payload", PRE "de0000", TL_ECORRUPT},
    {"map32 for an empty payload", PRE "df00000000", TL_ECORRUPT},
    {"str8 key", PRE "81 d90161 01", TL_ECORRUPT},
    /* map keys */
    {"unsorted keys", PRE "82 a162 01 a161 02", TL_ECORRUPT},
    {"duplicate keys", PRE "82 a161 01 a161 02", TL_ECORRUPT},
    {"longer key before its prefix", PRE "82 a26162 01 a161 02", TL_ECORRUPT},
    {"unsorted keys in a nested map", P1("82 a162 01 a161 02"), TL_ECORRUPT},
    {"integer key", PRE "81 01 01", TL_ECORRUPT},
    {"bin key", PRE "81 c40161 01", TL_ECORRUPT},
    {"nil key", PRE "81 c0 01", TL_ECORRUPT},
    /* types the format has no use for */
    {"float32", P1("ca3f800000"), TL_ECORRUPT},
    {"float64", P1("cb3ff0000000000000"), TL_ECORRUPT},
    {"fixext1", P1("d40100"), TL_ECORRUPT},
    {"fixext16", P1("d801" "00000000000000000000000000000000"), TL_ECORRUPT},
    {"ext8", P1("c7010100"), TL_ECORRUPT},
    {"ext32", P1("c9000000010100"), TL_ECORRUPT},
    {"never-used byte c1", P1("c1"), TL_ECORRUPT},
    /* depth: the event array is level 1, the payload map 2; nothing deeper than 8 */
    {"a value at depth 9", P1("91 91 91 91 91 91 00"), TL_ECORRUPT},
    {"an empty array at depth 9", P1("91 91 91 91 91 91 90"), TL_ECORRUPT},
    {"maps nested to depth 9", P1("81a161 81a161 81a161 81a161 81a161 81a161 80"), TL_ECORRUPT},
    {"deep nesting (1,000 levels)", NULL, TL_ECORRUPT}, /* built in the test */
    /* absurd counts and lengths: bounded by the bytes present, never allocated or looped */
    {"array32 of 2^32-1 items with 2 bytes", P1("ddffffffff 0000"), TL_ECORRUPT},
    {"array16 of 65535 items with 2 bytes", P1("dcffff 0000"), TL_ECORRUPT},
    {"map32 of 2^32-1 pairs", P1("dfffffffff a16100"), TL_ECORRUPT},
    {"map16 of 65535 pairs", PRE "deffff a16100", TL_ECORRUPT},
    {"envelope of 2^32-1 items", "ddffffffff 01 01 00", TL_ECORRUPT},
    {"str32 of 4 GiB", P1("dbffffffff 61"), TL_ECORRUPT},
    {"bin32 of 4 GiB", P1("c6ffffffff 00"), TL_ECORRUPT},
    {"fixmap of 15 pairs with 2 bytes", P1("8f a161"), TL_ECORRUPT},
    {"fixstr longer than the bytes", P1("bf 6161"), TL_ECORRUPT},
    {"map with half a pair", P1("81 a162"), TL_ECORRUPT},
    /* envelope fields */
    {"format is a string", "99 a131 01 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"format is negative", "99 ff 01 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"seq 0", "99 01 00 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"seq negative", "99 01 ff 00 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"ts is nil", "99 01 01 c0 " PREV " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"prev of 31 bytes", "99 01 01 00 c41f" "00000000000000000000000000000000000000000000000000000000000000"
                         " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"prev of 33 bytes", "99 01 01 00 c421" Z32 "00 a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"prev is a string", "99 01 01 00 d920" Z32 " a161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"actor empty", "99 01 01 00 " PREV " a0 a3782e61 01 c0 80", TL_ECORRUPT},
    {"actor of 65 bytes", "99 01 01 00 " PREV " d941" A31 A31 "616161 a3782e61 01 c0 80", TL_ECORRUPT},
    {"actor with a NUL", "99 01 01 00 " PREV " a3610061 a3782e61 01 c0 80", TL_ECORRUPT},
    {"actor nil", "99 01 01 00 " PREV " c0 a3782e61 01 c0 80", TL_ECORRUPT},
    {"kind nil", "99 01 01 00 " PREV " a161 c0 01 c0 80", TL_ECORRUPT},
    {"kind is bin", "99 01 01 00 " PREV " a161 c403782e61 01 c0 80", TL_ECORRUPT},
    {"schema 0", "99 01 01 00 " PREV " a161 a3782e61 00 c0 80", TL_ECORRUPT},
    {"schema is a string", "99 01 01 00 " PREV " a161 a3782e61 a131 c0 80", TL_ECORRUPT},
    {"project empty", "99 01 01 00 " PREV " a161 a3782e61 01 a0 80", TL_ECORRUPT},
    {"project is an integer", "99 01 01 00 " PREV " a161 a3782e61 01 05 80", TL_ECORRUPT},
    {"project is false", "99 01 01 00 " PREV " a161 a3782e61 01 c2 80", TL_ECORRUPT},
    {"payload is an array", PRE "90", TL_ECORRUPT},
    {"payload is nil", PRE "c0", TL_ECORRUPT},
    {"payload is a string", PRE "a0", TL_ECORRUPT},
    /* UTF-8 */
    {"actor: overlong NUL c0 80", "99 01 01 00 " PREV " a2c080 a3782e61 01 c0 80", TL_ECORRUPT},
    {"kind: surrogate ed a0 80", "99 01 01 00 " PREV " a161 a3eda080 01 c0 80", TL_ECORRUPT},
    {"project: above U+10FFFF", "99 01 01 00 " PREV " a161 a3782e61 01 a4f4908080 80", TL_ECORRUPT},
    {"key: lone continuation byte", PRE "81 a180 01", TL_ECORRUPT},
    {"value: truncated sequence", P1("a2e282"), TL_ECORRUPT},
    {"value: truncated at the end", P1("a3e282e2"), TL_ECORRUPT},
    {"value: 5-byte form", P1("a5f888808080"), TL_ECORRUPT},
    {"value: byte ff", P1("a1ff"), TL_ECORRUPT},
    {"value: overlong 3-byte slash", P1("a3e080af"), TL_ECORRUPT},
    {"value: overlong 4-byte", P1("a4f08282ac"), TL_ECORRUPT},
    {"value: low surrogate", P1("a3edbfbf"), TL_ECORRUPT},
    {"string in a list", P1("92 a161 a1fe"), TL_ECORRUPT},
    /* versions: the first item decides, whatever follows */
    {"format 2", "99 02 01 00 " PREV " a161 a3782e61 01 c0 80", TL_EVERSION},
    {"format 0", "99 00 01 00 " PREV " a161 a3782e61 01 c0 80", TL_EVERSION},
    {"format 255", "99 ccff 01 00 " PREV " a161 a3782e61 01 c0 80", TL_EVERSION},
    {"format 2^32", "99 cf0000000100000000 01 00 " PREV " a161 a3782e61 01 c0 80", TL_EVERSION},
    {"format 2 with 10 items", "9a 02 01 00 " PREV " a161 a3782e61 01 c0 80 80", TL_EVERSION},
    {"format 2 with 2 items", "92 02 80", TL_EVERSION},
};

static const dcase good_cases[] = {
    {"minimal event", PRE "80", 0},
    {"with a project", "99 01 01 00 " PREV " a161 a3782e61 01 a36f2d31 80", 0},
    {"positive fixint 127", P1("7f"), 0},
    {"uint8 128", P1("cc80"), 0},
    {"uint8 255", P1("ccff"), 0},
    {"uint16 256", P1("cd0100"), 0},
    {"uint16 65535", P1("cdffff"), 0},
    {"uint32 65536", P1("ce00010000"), 0},
    {"uint32 2^32-1", P1("ceffffffff"), 0},
    {"uint64 2^32", P1("cf0000000100000000"), 0},
    {"uint64 max", P1("cfffffffffffffffff"), 0},
    {"negative fixint -1", P1("ff"), 0},
    {"negative fixint -32", P1("e0"), 0},
    {"int8 -33", P1("d0df"), 0},
    {"int8 -128", P1("d080"), 0},
    {"int16 -129", P1("d1ff7f"), 0},
    {"int16 -32768", P1("d18000"), 0},
    {"int32 -32769", P1("d2ffff7fff"), 0},
    {"int32 -2^31", P1("d280000000"), 0},
    {"int64 -2^31-1", P1("d3ffffffff7fffffff"), 0},
    {"int64 min", P1("d38000000000000000"), 0},
    {"nil value (extension payloads may hold it)", P1("c0"), 0},
    {"true", P1("c3"), 0},
    {"false", P1("c2"), 0},
    {"empty string", P1("a0"), 0},
    {"fixstr of 31", P1("bf" A31), 0},
    {"str8 of 32", P1("d920" A31 "61"), 0},
    {"bin8 of 0", P1("c400"), 0},
    {"bin8 of 3", P1("c403000102"), 0},
    {"empty array", P1("90"), 0},
    {"empty map", P1("80"), 0},
    {"array16 of 16", P1("dc0010 00000000000000000000000000000000"), 0},
    {"an empty array at depth 8", P1("91 91 91 91 91 90"), 0},
    {"a value at depth 8", P1("91 91 91 91 91 00"), 0},
    {"prefix key first", PRE "82 a161 01 a26162 02", 0},
    {"bytewise key order (B < a)", PRE "82 a142 01 a161 02", 0},
    {"UTF-8 e9 (2 bytes)", P1("a2c3a9"), 0},
    {"UTF-8 euro (3 bytes)", P1("a3e282ac"), 0},
    {"UTF-8 emoji (4 bytes)", P1("a4f09f9880"), 0},
    {"UTF-8 U+10FFFF", P1("a4f48fbfbf"), 0},
    {"UTF-8 U+FFFF", P1("a3efbfbf"), 0},
    {"NUL inside a payload string", P1("a3610062"), 0},
    {"UTF-8 actor", "99 01 01 00 " PREV " a5 5a6fc3a9 21 a3782e61 01 c0 80", 0},
};

START_TEST(decoder_refuses) {
    const dcase *c = &bad_cases[_i];
    int rc;
    if (c->hex) {
        rc = decode_hex(c->hex);
    } else {
        /* deep nesting: 1,000 arrays inside the payload */
        size_t pre_len;
        uint8_t *pre = unhex(PRE "81 a161", &pre_len);
        size_t n = pre_len + 1001;
        uint8_t *b = malloc(n);
        memcpy(b, pre, pre_len);
        memset(b + pre_len, 0x91, 1000);
        b[n - 1] = 0;
        tl_event ev;
        rc = tl_event_decode(&ev, b, n);
        free(pre);
        free(b);
    }
    ck_assert_msg(rc == c->want, "%s: got %d (%s), want %s", c->name, rc, tl_strerror(rc), tl_strerror(c->want));
    if (rc == TL_ECORRUPT || rc == TL_EVERSION) ck_assert_msg(*tl_errdetail(), "%s: no detail", c->name);
}
END_TEST

START_TEST(decoder_accepts) {
    const dcase *c = &good_cases[_i];
    int rc = decode_hex(c->hex);
    ck_assert_msg(rc == 0, "%s: got %s (%s)", c->name, tl_strerror(rc), tl_errdetail());
}
END_TEST

/* Every proper prefix of every golden event is refused as corrupt. */
START_TEST(decoder_truncated) {
    for (int i = 0; i < 4; i++) {
        size_t n;
        uint8_t *b = unhex(golden_bytes[i], &n);
        for (size_t len = 0; len < n; len++) {
            /* a fresh, exact-size copy so that reading past the end is caught by sanitizers */
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, b, len);
            tl_event ev;
            int rc = tl_event_decode(&ev, cut, len);
            ck_assert_msg(rc == TL_ECORRUPT, "event %d cut to %zu bytes: %s", i + 1, len, tl_strerror(rc));
            free(cut);
        }
        tl_event ev;
        ck_assert_int_eq(tl_event_decode(&ev, b, n), 0);
        free(b);
    }
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Damaged events never crash the decoder; it answers 0, corrupt or unsupported_version. */
START_TEST(decoder_mutations) {
    for (int i = 0; i < 4; i++) {
        size_t n;
        uint8_t *b = unhex(golden_bytes[i], &n);
        uint8_t *m = malloc(n);
        static const uint8_t repl[] = {0x00, 0x01, 0x7f, 0x80, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4,
                                       0xca, 0xcc, 0xcf, 0xd0, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
        for (size_t pos = 0; pos < n; pos++)
            for (size_t r = 0; r < sizeof repl; r++) {
                memcpy(m, b, n);
                m[pos] = repl[r];
                tl_event ev;
                int rc = tl_event_decode(&ev, m, n);
                ck_assert_msg(rc == 0 || rc == TL_ECORRUPT || rc == TL_EVERSION, "event %d byte %zu = %02x: %d", i + 1,
                              pos, repl[r], rc);
                if (rc == 0) ck_assert_ptr_eq(ev.bytes, m);
            }
        for (int k = 0; k < 20000; k++) {
            memcpy(m, b, n);
            int flips = 1 + (int)(rnd() % 4);
            for (int f = 0; f < flips; f++) m[rnd() % n] = (uint8_t)rnd();
            size_t len = rnd() % 8 == 0 ? rnd() % n : n;
            tl_event ev;
            int rc = tl_event_decode(&ev, m, len);
            ck_assert(rc == 0 || rc == TL_ECORRUPT || rc == TL_EVERSION);
        }
        free(m);
        free(b);
    }
    /* random bytes behind a plausible envelope start */
    uint8_t buf[96];
    for (int k = 0; k < 100000; k++) {
        size_t len = 2 + rnd() % (sizeof buf - 2);
        buf[0] = 0x99;
        buf[1] = 0x01;
        for (size_t j = 2; j < len; j++) buf[j] = (uint8_t)rnd();
        tl_event ev;
        int rc = tl_event_decode(&ev, buf, len);
        ck_assert(rc == 0 || rc == TL_ECORRUPT || rc == TL_EVERSION);
    }
}
END_TEST

START_TEST(decoder_size_limit) {
    /* one byte over 1 MiB, refused before anything is read */
    size_t n = TL_EVENT_MAX + 1;
    uint8_t *b = calloc(1, n);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, b, n), TL_ECORRUPT);
    free(b);
}
END_TEST

START_TEST(utf8_rules) {
    static const struct { const char *hex; bool ok; } cases[] = {
        {"", true},          {"41", true},         {"7f", true},         {"c280", true},      {"dfbf", true},
        {"e0a080", true},    {"efbfbf", true},     {"f0908080", true},   {"f48fbfbf", true},  {"c0af", false},
        {"c1bf", false},     {"e080af", false},    {"e09fbf", false},    {"eda080", false},   {"edbfbf", false},
        {"f08fbfbf", false}, {"f4908080", false},  {"f5808080", false},  {"80", false},       {"bf", false},
        {"c2", false},       {"e282", false},      {"f09f98", false},    {"c241", false},     {"f8888080", false},
        {"fe", false},       {"ff", false},        {"e282ac41", true},   {"41e282", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = unhex(cases[i].hex, &n);
        ck_assert_msg(tl_utf8_valid(b, n) == cases[i].ok, "utf8 %s", cases[i].hex);
        free(b);
    }
}
END_TEST

/* ================================================================ the encoder */

static tl_envelope test_env(void) {
    tl_envelope e = {.seq = 1, .ts = 0, .actor = "a", .kind = "x.a", .schema = 1};
    return e;
}

START_TEST(encoder_sorts_and_omits) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope e = test_env();
    tl_payload p = {0};
    tl_payload_uint(&p, "b", 300);
    tl_payload_str(&p, "ab", "x");
    tl_payload_bool(&p, "a", true);
    tl_payload_str(&p, "B", NULL);       /* omitted */
    tl_payload_bin(&p, "c", NULL, 0);    /* omitted */
    tl_payload_strlist(&p, "d", NULL, 0); /* omitted */
    tl_payload_bin(&p, "B", "\x01", 1);
    ck_assert_int_eq(tl_event_encode(&buf, &e, &p), 0);
    size_t n;
    uint8_t *want = unhex(PRE "84 a142 c40101 a161 c3 a26162 a178 a162 cd012c", &n);
    ck_assert_uint_eq(buf.size, n);
    ck_assert_mem_eq(buf.data, want, n);
    free(want);
    /* the smallest encodings, at each boundary */
    static const struct { uint64_t v; const char *hex; } ints[] = {
        {0, "00"},           {127, "7f"},           {128, "cc80"},         {255, "ccff"},
        {256, "cd0100"},     {65535, "cdffff"},     {65536, "ce00010000"}, {4294967295ull, "ceffffffff"},
        {4294967296ull, "cf0000000100000000"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        p = (tl_payload){0};
        tl_payload_uint(&p, "a", ints[i].v);
        ck_assert_int_eq(tl_event_encode(&buf, &e, &p), 0);
        char hex[128];
        snprintf(hex, sizeof hex, PRE "81 a161 %s", ints[i].hex);
        want = unhex(hex, &n);
        ck_assert_msg(buf.size == n && memcmp(buf.data, want, n) == 0, "uint %llu", (unsigned long long)ints[i].v);
        free(want);
        tl_event ev;
        ck_assert_int_eq(tl_event_decode(&ev, (const uint8_t *)buf.data, buf.size), 0);
    }
    /* string lengths 31 / 32 / 255 / 256 switch fixstr -> str8 -> str16 */
    static const struct { size_t len; uint8_t head[3]; size_t hlen; } strs[] = {
        {31, {0xbf}, 1}, {32, {0xd9, 32}, 2}, {255, {0xd9, 255}, 2}, {256, {0xda, 1, 0}, 3}, {65536, {0xdb}, 1},
    };
    char *text = malloc(65537);
    memset(text, 'q', 65536);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        p = (tl_payload){0};
        tl_payload_strn(&p, "a", text, strs[i].len);
        ck_assert_int_eq(tl_event_encode(&buf, &e, &p), 0);
        size_t at = buf.size - strs[i].len - (strs[i].len == 65536 ? 5 : strs[i].hlen);
        ck_assert_mem_eq((uint8_t *)buf.data + at, strs[i].head, strs[i].hlen);
        tl_event ev;
        ck_assert_int_eq(tl_event_decode(&ev, (const uint8_t *)buf.data, buf.size), 0);
    }
    free(text);
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

START_TEST(encoder_refuses) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope e = test_env();
    tl_payload p = {0};
    tl_payload_uint(&p, "a", 1);
    tl_payload_uint(&p, "a", 2);
    ck_assert_int_eq(tl_event_encode(&buf, &e, &p), TL_EINVALID); /* duplicate key */
    p = (tl_payload){0};
    char keys[TL_PAYLOAD_FIELDS_MAX + 1][8];
    for (int i = 0; i <= TL_PAYLOAD_FIELDS_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i);
        tl_payload_uint(&p, keys[i], (uint64_t)i);
    }
    ck_assert_int_eq(tl_event_encode(&buf, &e, &p), TL_EINVALID); /* 33 fields */
    p = (tl_payload){0};
    tl_envelope bad = e;
    bad.actor = "";
    ck_assert_int_eq(tl_event_encode(&buf, &bad, &p), TL_EINVALID);
    bad = e;
    bad.actor = NULL;
    ck_assert_int_eq(tl_event_encode(&buf, &bad, &p), TL_EINVALID);
    bad = e;
    bad.kind = "x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 65 bytes */
    ck_assert_int_eq(tl_event_encode(&buf, &bad, &p), TL_EINVALID);
    bad = e;
    bad.project = "";
    ck_assert_int_eq(tl_event_encode(&buf, &bad, &p), TL_EINVALID);
    /* over 1 MiB */
    uint8_t *big = calloc(1, TL_EVENT_MAX);
    tl_payload_bin(&p, "a", big, TL_EVENT_MAX);
    ck_assert_int_eq(tl_event_encode(&buf, &e, &p), TL_ETOOLARGE);
    /* just under the limit is fine */
    p = (tl_payload){0};
    tl_payload_bin(&p, "a", big, TL_EVENT_MAX - 64);
    ck_assert_int_eq(tl_event_encode(&buf, &e, &p), 0);
    tl_event ev;
    ck_assert_int_eq(tl_event_decode(&ev, (const uint8_t *)buf.data, buf.size), 0);
    free(big);
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

/* Unpack hex with msgpack-c (a caller's payload) and encode it as an event payload. */
static int encode_object_hex(msgpack_sbuffer *buf, const char *payload_hex) {
    size_t n, off = 0;
    uint8_t *b = unhex(payload_hex, &n);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, (const char *)b, n, &off), MSGPACK_UNPACK_SUCCESS);
    tl_envelope e = test_env();
    int rc = tl_event_encode_object(buf, &e, &u.data);
    msgpack_unpacked_destroy(&u);
    free(b);
    return rc;
}

START_TEST(encoder_object_canonicalises) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    /* unsorted keys, a uint32 for 5, a str8 for "hi", a nested unsorted map */
    ck_assert_int_eq(encode_object_hex(&buf, "83 a162 ce00000005 a161 d9026869 a163 82 a17a 01 a179 02"), 0);
    size_t n;
    uint8_t *want = unhex(PRE "83 a161 a26869 a162 05 a163 82 a179 02 a17a 01", &n);
    ck_assert_uint_eq(buf.size, n);
    ck_assert_mem_eq(buf.data, want, n);
    free(want);
    /* negative integers in their narrowest form */
    ck_assert_int_eq(encode_object_hex(&buf, "82 a161 d3ffffffffffffffff a162 d2ffffff00"), 0);
    want = unhex(PRE "82 a161 ff a162 d1ff00", &n);
    ck_assert_uint_eq(buf.size, n);
    ck_assert_mem_eq(buf.data, want, n);
    free(want);
    /* six arrays inside the payload: the deepest legal nesting */
    ck_assert_int_eq(encode_object_hex(&buf, "81 a161 91 91 91 91 91 90"), 0);
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

START_TEST(encoder_object_refuses) {
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    static const char *const bad[] = {
        "91 01",                          /* not a map */
        "81 a161 cb3ff0000000000000",     /* float */
        "81 a161 ca3f800000",             /* float32 */
        "81 a161 d40100",                 /* ext */
        "81 01 01",                       /* integer key */
        "82 a161 01 a161 02",             /* duplicate key */
        "81 a161 91 91 91 91 91 91 90",   /* seven arrays: an empty one at depth 9 */
        "81 a161 a2c080",                 /* overlong UTF-8 in a value */
        "81 a2c080 01",                   /* overlong UTF-8 in a key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = encode_object_hex(&buf, bad[i]);
        ck_assert_msg(rc == TL_EINVALID, "payload %s: %s (%s), want invalid_input", bad[i], tl_strerror(rc),
                      tl_errdetail());
    }
    /* the encoder counts depth as the decoder does: too deep is said as such */
    ck_assert_int_eq(encode_object_hex(&buf, "81 a161 91 91 91 91 91 91 90"), TL_EINVALID);
    ck_assert_msg(strstr(tl_errdetail(), "deep") != NULL, "detail: %s", tl_errdetail());
    msgpack_sbuffer_destroy(&buf);
}
END_TEST

START_TEST(input_check) {
    static const struct { const char *hex; int want; } cases[] = {
        {"80", 0},
        {"81 a161 ce00000005", 0},             /* non-canonical, but well formed */
        {"82 a162 01 a161 02", 0},             /* unsorted: the encoder sorts */
        {"81 a161 91 91 91 91 91 90", 0},
        {"", TL_EINVALID},
        {"80 00", TL_EINVALID},                /* trailing byte */
        {"81 a161", TL_EINVALID},              /* half a pair */
        {"81 a161 ddffffffff 00", TL_EINVALID},
        {"dfffffffff 00", TL_EINVALID},
        {"81 a161 dbffffffff 00", TL_EINVALID},
        {"81 a161 c6ffffffff 00", TL_EINVALID},
        {"81 a161 cb3ff0000000000000", TL_EINVALID},
        {"81 a161 c7010100", TL_EINVALID},
        {"81 a161 c1", TL_EINVALID},
        {"81 a161 91 91 91 91 91 91 90", TL_EINVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = unhex(cases[i].hex, &n);
        int rc = tl_msgpack_check_input(n ? b : NULL, n);
        ck_assert_msg(rc == cases[i].want, "%s: %s", cases[i].hex, tl_strerror(rc));
        free(b);
    }
}
END_TEST

/* ---------------------------------------------------------------- zeropack (state records) */

/* The code as first written, a byte at a time: the stored bytes of a record must not depend
 * on how fast the packer is (live and replayed state are compared byte for byte). */
static size_t zp_reference(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t o = 0, i = 0;
    while (i < n) {
        size_t run = 0;
        while (i + run < n && run < 128 && src[i + run] == 0) run++;
        if (run >= 2 || (run == 1 && i + 1 == n)) {
            dst[o++] = (uint8_t)(0x7f + run);
            i += run;
            continue;
        }
        size_t lit = 0;
        while (i + lit < n && lit < 128 && !(src[i + lit] == 0 && (i + lit + 1 == n || src[i + lit + 1] == 0))) lit++;
        if (!lit) lit = 1;
        dst[o++] = (uint8_t)(lit - 1);
        memcpy(dst + o, src + i, lit);
        o += lit;
        i += lit;
    }
    return o;
}

static void zp_roundtrip(const uint8_t *src, size_t n) {
    uint8_t packed[TL_ZEROPACK_BOUND(4096)], back[4096];
    ck_assert_uint_le(n, sizeof back);
    size_t len = tl_zeropack(packed, src, n);
    ck_assert_uint_le(len, TL_ZEROPACK_BOUND(n));
    uint8_t ref[TL_ZEROPACK_BOUND(4096)];
    size_t rlen = zp_reference(ref, src, n);
    ck_assert_uint_eq(len, rlen);
    ck_assert_mem_eq(packed, ref, len);
    memset(back, 0xaa, sizeof back);
    ck_assert_int_eq(tl_zerounpack(back, n, packed, len), 0);
    ck_assert_mem_eq(back, src, n);
    if (n) { /* the exact size is part of the code: one byte more or less is refused */
        ck_assert_int_eq(tl_zerounpack(back, n - 1, packed, len), -1);
        ck_assert_int_eq(tl_zerounpack(back, n + 1, packed, len), -1);
    }
}

/* ================================================================ JSON strings */

/* The length of the well-formed UTF-8 sequence at s (RFC 3629 §4's table of byte ranges), or
 * 0: written from the table, not like the library's decoder. */
static size_t utf8_table_len(const unsigned char *s, size_t avail) {
    static const struct { unsigned char lo0, hi0, lo1, hi1; size_t n; } rows[] = {
        {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
        {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lo0 || s[0] > rows[r].hi0) continue;
        if (avail < rows[r].n || s[1] < rows[r].lo1 || s[1] > rows[r].hi1) return 0;
        for (size_t i = 2; i < rows[r].n; i++)
            if (s[i] < 0x80 || s[i] > 0xbf) return 0;
        return rows[r].n;
    }
    return 0;
}

/* What tl_sb_json_str must print, one byte at a time (RFC 8259: '"', '\\' and control bytes
 * escaped; valid UTF-8 as it is; a byte that is not part of valid UTF-8, which only a damaged
 * projection could hold, as U+FFFD, so the output is always JSON). */
static size_t json_str_reference(char *out, const unsigned char *s, size_t n) {
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t len = utf8_table_len(s + i, n - i);
            if (!len) { o += (size_t)sprintf(out + o, "\\ufffd"); continue; }
            memcpy(out + o, s + i, len);
            o += len;
            i += len - 1;
            continue;
        }
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c == '\r') { out[o++] = '\\'; out[o++] = 'r'; }
        else if (c == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (c < 0x20) o += (size_t)sprintf(out + o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}

static void check_json_str(const unsigned char *s, size_t n) {
    char want[6 * 64 + 3];
    size_t wn = json_str_reference(want, s, n);
    tl_strbuf sb = {0};
    tl_sb_json_str(&sb, (const char *)s, n);
    ck_assert_uint_eq(sb.len, wn);
    ck_assert_msg(memcmp(sb.ptr, want, wn) == 0, "escaped \"%s\", expected \"%s\"", sb.ptr, want);
    free(sb.ptr);
}

/* The escaper skips eight bytes at a time while none needs escaping: every byte that does,
 * and its neighbours, at every position of the words and of the tail. */
START_TEST(json_str_escapes_every_position) {
    static const unsigned char specials[] = {0x00, 0x01, 0x08, 0x1f, '"', '\\', '\n', '\r', '\t',
                                             0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff};
    static const unsigned char fills[] = {'x', 0xc3, 0x23, 0x5d, 0xfe, 0xa9};
    unsigned char s[64];
    for (size_t f = 0; f < sizeof fills; f++)
        for (size_t n = 0; n <= 40; n++) {
            memset(s, fills[f], n);
            check_json_str(s, n);
            for (size_t pos = 0; pos < n; pos++)
                for (size_t k = 0; k < sizeof specials; k++) {
                    memset(s, fills[f], n);
                    s[pos] = specials[k];
                    check_json_str(s, n);
                    if (pos + 9 < n) { /* a second one in the next word */
                        s[pos + 9] = specials[(k + 5) % sizeof specials];
                        check_json_str(s, n);
                    }
                }
        }
    /* random bytes, mostly printable */
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)(r % 64);
        for (size_t i = 0; i < n; i++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            unsigned b = (unsigned)(r >> 24) & 0xff;
            s[i] = (unsigned char)((r & 7) ? 0x20 + b % 0x60 : b);
        }
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        check_json_str(s, n);
    }
    /* valid and invalid UTF-8 at every position: each sequence (and each of its prefixes,
     * which are invalid) inside ASCII and after another multi-byte character */
    static const char *const seqs[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\xaf",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\x80", "\xbf", "\xfe", "\xff",
    };
    for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++) {
        size_t len = strlen(seqs[q]);
        for (size_t cut = 1; cut <= len; cut++)
            for (size_t n = cut; n <= 40; n++)
                for (size_t pos = 0; pos + cut <= n; pos++) {
                    memset(s, 'a', n);
                    if (pos >= 2) memcpy(s + pos - 2, "\xc3\xa9", 2);
                    memcpy(s + pos, seqs[q], cut);
                    check_json_str(s, n);
                }
    }
}
END_TEST

START_TEST(zeropack_roundtrips) {
    uint8_t b[4096];
    /* run-length boundaries: 1, 2, 127, 128, 129, 256, 257 zeros and literals, at both ends */
    const size_t lens[] = {1, 2, 3, 127, 128, 129, 255, 256, 257};
    for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
        for (size_t z = 0; z < sizeof lens / sizeof lens[0]; z++) {
            size_t n = 0;
            for (size_t i = 0; i < lens[a]; i++) b[n++] = (uint8_t)(1 + i % 250);
            memset(b + n, 0, lens[z]);
            n += lens[z];
            for (size_t i = 0; i < lens[a]; i++) b[n++] = (uint8_t)(7 + i % 200);
            zp_roundtrip(b, n);
            zp_roundtrip(b + lens[a], n - lens[a]); /* starting with zeros */
        }
    zp_roundtrip(b, 0);
    /* lone zeros inside data, all zeros, and a seeded random mix */
    const uint8_t lone[] = {1, 0, 2, 0, 0, 3, 0};
    zp_roundtrip(lone, sizeof lone);
    uint8_t packed[16]; /* literal 1 0 2, two zeros, literal 3, the final zero */
    const uint8_t want[] = {0x02, 1, 0, 2, 0x81, 0x00, 3, 0x80};
    ck_assert_uint_eq(tl_zeropack(packed, lone, sizeof lone), sizeof want);
    ck_assert_mem_eq(packed, want, sizeof want);
    memset(b, 0, sizeof b);
    zp_roundtrip(b, sizeof b);
    uint64_t r = 88172645463325252ull;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(r % 4096);
        for (size_t i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            b[i] = (r % 3) ? 0 : (uint8_t)(r >> 24);
        }
        zp_roundtrip(b, n);
        for (size_t i = 0; i < n; i++) { /* mostly literal, zeros alone or in pairs */
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            b[i] = (r % 5) ? (uint8_t)(1 + (r >> 24) % 255) : 0;
        }
        zp_roundtrip(b, n);
    }
}
END_TEST

START_TEST(zeropack_shrinks_empty_fields) {
    /* a record shaped like the state's: 65-byte id fields holding short ids */
    uint8_t rec[6 * 65] = {0};
    for (int f = 0; f < 6; f++) memcpy(rec + f * 65, "p-000123", 8);
    uint8_t packed[TL_ZEROPACK_BOUND(sizeof rec)];
    ck_assert_uint_lt(tl_zeropack(packed, rec, sizeof rec), 6 * 11);
}
END_TEST

START_TEST(zeropack_refuses_malformed) {
    uint8_t out[16];
    const uint8_t truncated_literal[] = {0x03, 'a', 'b'};       /* 4 bytes announced, 2 present */
    const uint8_t too_long[] = {0x80 + 16};                      /* 17 zeros into 16 bytes */
    const uint8_t too_short[] = {0x01, 'a', 'b'};                /* 2 bytes into 16 */
    const uint8_t literal_overflow[] = {0x7f};                   /* 128 literal bytes, none present */
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, truncated_literal, sizeof truncated_literal), -1);
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, too_long, sizeof too_long), -1);
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, too_short, sizeof too_short), -1);
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, literal_overflow, sizeof literal_overflow), -1);
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, NULL, 0), -1);
    const uint8_t exact[] = {0x8f}; /* 16 zeros */
    ck_assert_int_eq(tl_zerounpack(out, sizeof out, exact, sizeof exact), 0);
}
END_TEST

/* ---- near misses of the decoder, found by mutation testing (2026-11-27): each case passed
 * when one bound or mask was weakened, and no other test noticed */
static int canon(const uint8_t *b, size_t n) { return tl_msgpack_check_canonical(b, n); }

START_TEST(wider_length_forms_refused) {
    uint8_t b[70000];
    memset(b, 'a', sizeof b);
    /* [str32 as da]  */
    b[0] = 0x91; b[1] = 0xda; b[2] = 0; b[3] = 32;
    ck_assert_msg(canon(b, 4 + 32) != 0, "32-byte str as da accepted");
    b[1] = 0xdb; b[2] = 0; b[3] = 0; b[4] = 1; b[5] = 0;
    ck_assert_msg(canon(b, 6 + 256) != 0, "256-byte str as db accepted");
    b[1] = 0xc6;
    ck_assert_msg(canon(b, 6 + 256) != 0, "256-byte bin as c6 accepted");
    uint8_t arr[5 + 16] = {0xdd, 0, 0, 0, 16};
    memset(arr + 5, 0, 16);
    ck_assert_msg(canon(arr, sizeof arr) != 0, "16-item array as dd accepted");
    uint8_t map[5 + 16 * 3] = {0xdf, 0, 0, 0, 16};
    for (int i = 0; i < 16; i++) { map[5 + 3 * i] = 0xa1; map[6 + 3 * i] = (uint8_t)('A' + i); map[7 + 3 * i] = 0; }
    ck_assert_msg(canon(map, sizeof map) != 0, "16-pair map as df accepted");
}
END_TEST

START_TEST(utf8_truncated_or_f8_refused) {
    const uint8_t trunc[] = {0x92, 0xa1, 0xc3, 0xa0}; /* ["\xc3", ""]: a truncated sequence */
    ck_assert_msg(canon(trunc, sizeof trunc) != 0, "truncated UTF-8 before a fixstr accepted");
    ck_assert_msg(!tl_utf8_valid((const uint8_t *)"\xf8\x90\x80\x80", 4), "lead byte f8 accepted");
}
END_TEST

START_TEST(event_shape_near_misses) {
    static uint8_t big[TL_EVENT_MAX + 1 + 5];
    big[0] = 0xc6; big[1] = 0; big[2] = 0x10; big[3] = 0; big[4] = 0; /* bin of 1 MiB */
    ck_assert_msg(canon(big, 5 + 0x100000) != 0, "a value over 1 MiB accepted");
    /* a valid event, then the same with a 10th item */
    uint8_t ev[80];
    size_t n = 0;
    ev[n++] = 0x99; ev[n++] = 1; ev[n++] = 1; ev[n++] = 0; ev[n++] = 0xc4; ev[n++] = 32;
    memset(ev + n, 0, 32); n += 32;
    ev[n++] = 0xa1; ev[n++] = 'm'; ev[n++] = 0xa3; ev[n++] = 'x'; ev[n++] = '.'; ev[n++] = 'a';
    ev[n++] = 1; ev[n++] = 0xc0; ev[n++] = 0x80;
    tl_event e;
    ck_assert_int_eq(tl_event_decode(&e, ev, n), 0);
    ev[0] = 0x9a; ev[n] = 0xc0;
    ck_assert_msg(tl_event_decode(&e, ev, n + 1) != 0, "a 10-item event accepted");
    /* prev as a 33-byte bin whose last byte reads as the actor's header */
    uint8_t p33[] = {0x99, 1, 1, 0, 0xc4, 33, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0xa2,
                     0xa1, 'm', 0xa3, 'x', '.', 'a', 1, 0xc0, 0x80};
    ck_assert_msg(tl_event_decode(&e, p33, sizeof p33) != 0, "a 33-byte prev accepted");
    /* payload {"public_keys": bin32}: no field "public_key" */
    uint8_t pk[128];
    memcpy(pk, ev, 46); /* up to and including project nil; then the payload */
    pk[0] = 0x99;
    size_t m = 46;
    pk[m++] = 0x81;
    pk[m++] = 0xab; memcpy(pk + m, "public_keys", 11); m += 11;
    pk[m++] = 0xc4; pk[m++] = 32; memset(pk + m, 7, 32); m += 32;
    ck_assert_int_eq(tl_event_decode(&e, pk, m), 0);
    tl_bytes out;
    ck_assert_msg(tl_ev_bin(&e, "public_key", &out) == TL_ENOTFOUND, "\"public_keys\" read as \"public_key\"");
}
END_TEST

int main(void) {
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, golden_events);
    tcase_add_test(tc, golden_verify_from_hex);
    tcase_add_test(tc, golden_fields);
    tcase_add_test(tc, golden_commitment);
    tcase_add_test(tc, golden_checkpoint);
    tcase_add_test(tc, golden_in_format_doc);
    suite_add_tcase(s, tc);

    tc = tcase_create("decoder");
    tcase_add_loop_test(tc, decoder_refuses, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_loop_test(tc, decoder_accepts, 0, (int)(sizeof good_cases / sizeof good_cases[0]));
    tcase_add_test(tc, decoder_truncated);
    tcase_add_test(tc, decoder_mutations);
    tcase_add_test(tc, decoder_size_limit);
    tcase_add_test(tc, utf8_rules);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, wider_length_forms_refused);
    tcase_add_test(tc, utf8_truncated_or_f8_refused);
    tcase_add_test(tc, event_shape_near_misses);
    suite_add_tcase(s, tc);

    tc = tcase_create("encoder");
    tcase_add_test(tc, encoder_sorts_and_omits);
    tcase_add_test(tc, encoder_refuses);
    tcase_add_test(tc, encoder_object_canonicalises);
    tcase_add_test(tc, encoder_object_refuses);
    tcase_add_test(tc, input_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("zeropack");
    tcase_add_test(tc, zeropack_roundtrips);
    tcase_add_test(tc, zeropack_shrinks_empty_fields);
    tcase_add_test(tc, zeropack_refuses_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, json_str_escapes_every_position);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
