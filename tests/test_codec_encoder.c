/*
 * test_codec_encoder.c — the canonical encoder (docs/FORMAT.md §3): payload keys sorted and
 * absent fields omitted, integers and strings in their smallest encodings at each boundary,
 * what it refuses (duplicate keys, too many fields, bad envelopes, over 1 MiB), a caller's
 * msgpack object canonicalised or refused (floats, ext, depth, bad UTF-8), and the check of
 * a caller's msgpack input before it is encoded.
 */
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_fixture.h"

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

int main(void) {
    Suite *s = suite_create("codec_encoder");
    TCase *tc = tcase_create("encoder");
    tcase_add_test(tc, encoder_sorts_and_omits);
    tcase_add_test(tc, encoder_refuses);
    tcase_add_test(tc, encoder_object_canonicalises);
    tcase_add_test(tc, encoder_object_refuses);
    tcase_add_test(tc, input_check);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
