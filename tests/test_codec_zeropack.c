/*
 * test_codec_zeropack.c — zeropack, the zero-run packing of the projections' state records:
 * round trips at every run-length boundary and over random mixes, byte for byte the packing
 * of the reference written a byte at a time (live and replayed state are compared byte for
 * byte), empty id fields shrunk, and malformed packed records refused without writing past
 * the record.
 */
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "zeropack.h"

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

/* A packed record that would overflow the record is refused before a byte lands past its end:
 * the state decodes into fixed-size structs (the bytes after them are other fields). Each
 * input below runs over a 16-byte record by exactly one byte, as zeros or as a literal,
 * after a literal or a run that fills part of it. */
START_TEST(zeropack_writes_nothing_past_the_record) {
    static const uint8_t run_over[] = {0x80 + 16};                       /* 17 zeros */
    static const uint8_t run_over_after[] = {0x03, 'a', 'b', 'c', 'd', 0x80 + 12}; /* 4 + 13 */
    static const uint8_t lit_over[] = {0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}; /* 17 bytes */
    static const uint8_t lit_over_after[] = {0x80 + 9, 0x06, 1, 2, 3, 4, 5, 6, 7}; /* 10 zeros + 7 */
    const struct { const uint8_t *p; size_t n; } bad[] = {
        {run_over, sizeof run_over}, {run_over_after, sizeof run_over_after},
        {lit_over, sizeof lit_over}, {lit_over_after, sizeof lit_over_after},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        uint8_t out[16 + 8];
        memset(out, 0xa5, sizeof out);
        ck_assert_int_eq(tl_zerounpack(out, 16, bad[b].p, bad[b].n), -1);
        for (size_t i = 16; i < sizeof out; i++)
            ck_assert_msg(out[i] == 0xa5, "input %zu wrote byte %zu past the 16-byte record", b, i - 16);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("codec_zeropack");
    TCase *tc = tcase_create("zeropack");
    tcase_add_test(tc, zeropack_roundtrips);
    tcase_add_test(tc, zeropack_shrinks_empty_fields);
    tcase_add_test(tc, zeropack_refuses_malformed);
    tcase_add_test(tc, zeropack_writes_nothing_past_the_record);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
