/*
 * zeropack.h — zero-run packing of fixed-size records (see zeropack.c for the code).
 */
#ifndef TL_ZEROPACK_H
#define TL_ZEROPACK_H

#include <stddef.h>
#include <stdint.h>

/** The most bytes tl_zeropack can write for n input bytes. */
#define TL_ZEROPACK_BOUND(n) ((n) + (n) / 128 + 2)

/** Pack n bytes of src into dst (at least TL_ZEROPACK_BOUND(n) bytes); returns the length. */
size_t tl_zeropack(uint8_t *dst, const uint8_t *src, size_t n);

/** Unpack src (len bytes) into exactly n bytes of dst: 0, or -1 when src is malformed or
 * does not make exactly n bytes. */
int tl_zerounpack(uint8_t *dst, size_t n, const uint8_t *src, size_t len);

#endif
