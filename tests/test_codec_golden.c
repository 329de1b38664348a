/*
 * test_codec_golden.c — the byte format's golden vectors (docs/FORMAT.md §11): a fixed
 * ed25519 key (seed 00..1f), four fixed events encoded with tl_event_encode, their exact
 * bytes, BLAKE2b-256 hashes and signatures, a content commitment and a checkpoint signature.
 * The same hex strings (codec_fixture.h) are printed in docs/FORMAT.md, and a test checks
 * they are there, so a format change cannot be silent in the code or in the document. The
 * vectors also verify with plain libsodium straight from the hex, and decode to the fields
 * they were made of.
 */
#include <ctype.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_fixture.h"
#include "crypto.h"

/* ================================================================ helpers */

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

/* ================================================================ golden vectors */

/* The vectors themselves, as hex: codec_fixture.h. */

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

int main(void) {
    Suite *s = suite_create("codec_golden");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, golden_events);
    tcase_add_test(tc, golden_verify_from_hex);
    tcase_add_test(tc, golden_fields);
    tcase_add_test(tc, golden_commitment);
    tcase_add_test(tc, golden_checkpoint);
    tcase_add_test(tc, golden_in_format_doc);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
