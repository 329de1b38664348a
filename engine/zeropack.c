/*
 * zeropack.c — the storage form of the state's fixed-size records: runs of zero bytes
 * squeezed out.
 *
 * Why: state records are C structs with id fields sized for the longest id (65 bytes) and
 * mostly empty; stored as they are, a message record took ~620 bytes for ~100 bytes of
 * content, and the state database was the largest file of a log. Zero runs are the whole of
 * the waste, so a byte-oriented run-length code of zeros recovers it without any per-field
 * code, and decoding stays a copy.
 *
 * The code: a sequence of tokens, each one byte t followed by its data:
 *   t in 0x00..0x7f   a literal run: the next t + 1 bytes, as they are
 *   t in 0x80..0xff   a zero run of t - 0x7f zero bytes (1..128), no data
 * Decoding refuses anything that does not produce exactly the record's size.
 */
#include "zeropack.h"

#include <stdbool.h>
#include <string.h>

/* Eight bytes at a time where possible: records are mostly zeros (id fields sized for the
 * longest id), and packing runs for every state write of every event. */
static uint64_t load64(const uint8_t *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static bool has_zero_byte(uint64_t x) { return ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) != 0; }

/* How many zero bytes start p, at most max. */
static size_t zero_run(const uint8_t *p, size_t max) {
    size_t r = 0;
    while (r + 8 <= max && load64(p + r) == 0) r += 8;
    while (r < max && p[r] == 0) r++;
    return r;
}

size_t tl_zeropack(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t o = 0, i = 0;
    while (i < n) {
        size_t max = n - i < 128 ? n - i : 128;
        size_t run = zero_run(src + i, max);
        if (run >= 2 || (run == 1 && i + 1 == n)) { /* a lone zero inside data stays literal */
            dst[o++] = (uint8_t)(0x7f + run);
            i += run;
            continue;
        }
        size_t lit = 0; /* up to the next run of two zeros (or a zero that ends the record) */
        while (lit < max) {
            if (lit + 8 <= max && !has_zero_byte(load64(src + i + lit))) { /* no zero: no run starts here */
                lit += 8;
                continue;
            }
            if (src[i + lit] == 0 && (i + lit + 1 == n || src[i + lit + 1] == 0)) break;
            lit++;
        }
        if (!lit) lit = 1;
        dst[o++] = (uint8_t)(lit - 1);
        memcpy(dst + o, src + i, lit);
        o += lit;
        i += lit;
    }
    return o;
}

int tl_zerounpack(uint8_t *dst, size_t n, const uint8_t *src, size_t len) {
    size_t o = 0, i = 0;
    while (i < len) {
        uint8_t t = src[i++];
        if (t < 0x80) {
            size_t lit = (size_t)t + 1;
            if (lit > len - i || lit > n - o) return -1;
            memcpy(dst + o, src + i, lit);
            i += lit;
            o += lit;
        } else {
            size_t run = (size_t)t - 0x7f;
            if (run > n - o) return -1;
            memset(dst + o, 0, run); /* only what the input proves: nothing past a refused end */
            o += run;
        }
    }
    return o == n ? 0 : -1;
}
