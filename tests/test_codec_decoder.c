/*
 * test_codec_decoder.c — the strict decoder (docs/FORMAT.md §3, the canonical form). It is
 * fed every way an event can be malformed (non-canonical encodings, unsorted or duplicate
 * keys, floats, ext, depth, absurd counts, truncations, bad UTF-8, unknown versions) and must
 * refuse each with TL_ECORRUPT or TL_EVERSION, never crash: a table of bad and good events,
 * every prefix of the golden events, random damage to them, the size limit, the UTF-8 rules,
 * and the near misses mutation testing found.
 */
#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_fixture.h"

/* ================================================================ helpers */

static int decode_hex(const char *hex) {
    size_t n;
    uint8_t *b = unhex(hex, &n);
    tl_event ev;
    int rc = tl_event_decode(&ev, b, n);
    free(b);
    return rc;
}

/* ================================================================ the strict decoder */

/* The hex building blocks of the events below (PRE, PREV, P1, ...): codec_fixture.h. */

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
    Suite *s = suite_create("codec_decoder");
    TCase *tc = tcase_create("decoder");
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
    return tu_main(s);
}
