/*
 * strbuf.c — the growable string of strbuf.h.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void sb_grow(tl_strbuf *sb, size_t extra) {
    if (sb->oom) return;
    if (sb->len + extra + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) cap *= 2;
    char *p = realloc(sb->ptr, cap);
    if (!p) { sb->oom = true; return; }
    sb->ptr = p;
    sb->cap = cap;
}

void tl_sb_put_grow(tl_strbuf *sb, const char *s, size_t n) {
    sb_grow(sb, n);
    if (sb->oom) return;
    memcpy(sb->ptr + sb->len, s, n);
    sb->len += n;
    sb->ptr[sb->len] = 0;
}

void tl_sb_u64(tl_strbuf *sb, uint64_t v) {
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    tl_sb_put(sb, tmp + i, sizeof tmp - i);
}

void tl_sb_printf(tl_strbuf *sb, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { tl_sb_put(sb, tmp, (size_t)n); return; }
    sb_grow(sb, (size_t)n);
    if (sb->oom) return;
    va_start(ap, fmt);
    vsnprintf(sb->ptr + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* The length of the valid UTF-8 sequence at s, of at most avail bytes (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n <= 1) return n;
    if (n > avail) return 0;
    uint32_t cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/* Strings reach here from the log's own records, checked as UTF-8 when they came in; a byte
 * that is not part of valid UTF-8 (a damaged projection on disk) still becomes U+FFFD, so
 * the output is always valid JSON. */
void tl_sb_json_str(tl_strbuf *sb, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    tl_sb_put(sb, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        /* eight bytes at a time while none of them needs escaping (a control byte, '"' or
         * '\\'): bodies and titles rarely hold one, and the byte loop was ~8% of a history page */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
            uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
            /* (v - ones) & ~v & high is non-zero exactly when a byte of v is zero (for x - 0x20:
             * below 0x20); it may mark bytes after the first such one too, which only sends
             * this word to the byte loop */
            uint64_t hit = ((x - ones * 0x20) & ~x & high) | ((quote - ones) & ~quote & high) |
                           ((bslash - ones) & ~bslash & high) | (x & high); /* non-ASCII: checked below */
            if (hit) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = utf8_seq_len((const unsigned char *)s + i, n - i);
            if (len) { i += len - 1; continue; }
            tl_sb_put(sb, s + start, i - start);
            start = i + 1;
            tl_sb_put(sb, "\\ufffd", 6);
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        tl_sb_put(sb, s + start, i - start);
        start = i + 1;
        char esc[7];
        switch (c) {
        case '"': tl_sb_put(sb, "\\\"", 2); break;
        case '\\': tl_sb_put(sb, "\\\\", 2); break;
        case '\n': tl_sb_put(sb, "\\n", 2); break;
        case '\r': tl_sb_put(sb, "\\r", 2); break;
        case '\t': tl_sb_put(sb, "\\t", 2); break;
        default:
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; esc[6] = 0;
            tl_sb_put(sb, esc, 6);
        }
    }
    tl_sb_put(sb, s + start, n - start);
    tl_sb_put(sb, "\"", 1);
}

void tl_sb_hex(tl_strbuf *sb, const uint8_t *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_grow(sb, n * 2);
    if (sb->oom) return;
    for (size_t i = 0; i < n; i++) {
        sb->ptr[sb->len++] = hex[p[i] >> 4];
        sb->ptr[sb->len++] = hex[p[i] & 15];
    }
    sb->ptr[sb->len] = 0;
}

char *tl_sb_take(tl_strbuf *sb) {
    if (sb->oom) { free(sb->ptr); sb->ptr = NULL; sb->len = sb->cap = 0; return NULL; }
    if (!sb->ptr) tl_sb_put(sb, "", 0);
    char *p = sb->ptr;
    sb->ptr = NULL;
    sb->len = sb->cap = 0;
    return p;
}
