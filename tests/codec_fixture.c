/*
 * codec_fixture.c — see codec_fixture.h.
 */
#include "codec_fixture.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

uint8_t *unhex(const char *hex, size_t *len) {
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

const char *const golden_bytes[4] = {G1_BYTES, G2_BYTES, G3_BYTES, G4_BYTES};
