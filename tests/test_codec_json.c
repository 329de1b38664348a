/*
 * test_codec_json.c — JSON strings as threadlog prints them (tl_sb_json_str, RFC 8259):
 * quotes, backslashes and control bytes escaped, valid UTF-8 as it is, a byte that is not
 * part of valid UTF-8 as U+FFFD. The escaper skips eight bytes at a time, so every byte that
 * needs escaping is tried at every position, against a reference written a byte at a time
 * from the RFCs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "testutil.h"

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

int main(void) {
    Suite *s = suite_create("codec_json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, json_str_escapes_every_position);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
