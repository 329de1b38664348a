/*
 * strbuf.h — a growable string for the JSON the library prints (query pages, exports,
 * `log --json`): appends that never fail midway (an allocation failure sets oom, later
 * appends do nothing, and tl_sb_take returns NULL), with JSON string escaping and the number
 * and hex formatting the pages need.
 */
#ifndef TL_STRBUF_H
#define TL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tl_strbuf {
    char *ptr;
    size_t len, cap;
    bool oom;
} tl_strbuf;
/* The slow path of tl_sb_put: grow, then append. */
void tl_sb_put_grow(tl_strbuf *sb, const char *s, size_t n);
/* Append n bytes. Inline: a page of rows makes ~20 appends per row, and the call was a
 * quarter of a tracking page's time. */
static inline void tl_sb_put(tl_strbuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 <= sb->cap) {
        memcpy(sb->ptr + sb->len, s, n);
        sb->len += n;
        sb->ptr[sb->len] = 0;
        return;
    }
    tl_sb_put_grow(sb, s, n);
}
/* Append a C string. Inline, so that a literal's length is known when compiling: the pages
 * append dozens of literals per row, and strlen plus the call were ~9% of a history page's
 * instructions (callgrind, 2026-11-26). */
static inline void tl_sb_puts(tl_strbuf *sb, const char *s) { tl_sb_put(sb, s, strlen(s)); }
/** Append v in decimal (what "%llu" prints, without printf's cost). */
void tl_sb_u64(tl_strbuf *sb, uint64_t v);
void tl_sb_printf(tl_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_sb_json_str(tl_strbuf *sb, const char *s, size_t n);
void tl_sb_hex(tl_strbuf *sb, const uint8_t *p, size_t n);
/** Take the string (NUL-terminated) out of sb; NULL on OOM. */
char *tl_sb_take(tl_strbuf *sb);

#endif
