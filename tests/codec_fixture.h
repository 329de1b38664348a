/*
 * codec_fixture.h — what the codec suites share (test_codec_golden, test_codec_decoder,
 * test_codec_encoder): the golden vectors as hex, which docs/FORMAT.md §11 prints too
 * (test_codec_golden checks that the C encoder makes them and that the document shows them;
 * the decoder's tests cut and damage the events), the hex building blocks of a test event
 * (an envelope with a payload of the test's choosing), and unhex to read them.
 */
#ifndef TL_CODEC_FIXTURE_H
#define TL_CODEC_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "testutil.h"

/** Parse hex (spaces ignored) into a malloc'd buffer; a character that is not a hex digit,
 * or an odd number of digits, fails the test. */
uint8_t *unhex(const char *hex, size_t *len);

/* ---------------------------------------------------------------- golden vectors */

/* The vectors (docs/FORMAT.md, "Golden vectors"). Key 1: seed 00 01 .. 1f; key 2: seed
 * 20 21 .. 3f. Event 1: genesis. Event 2: message.sent with a content commitment (salt
 * 80 81 .. 9f, content "Tomorrow"). Event 3: key.rotated to key 2, signed by key 1.
 * Event 4: message.read, signed by key 2. CP: a checkpoint of event 4 signed by key 2. */
#define K1_PUB "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define K2_PUB "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
#define G1_BYTES \
    "990101cf00060a24181e4000c420000000000000000000000000000000000000" \
    "0000000000000000000000000000a9406f70657261746f72ab6c6f672e637265" \
    "6174656401c084a6666f726d617401ae6d61785f6174746163686d656e74ce01" \
    "900000a86d61785f626f6479ce00010000aa7075626c69635f6b6579c42003a1" \
    "07bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define G1_HASH "5bfcbb25021a8765849305f1cbf8d77120ef281ebe91f24d465f816636b18a9f"
#define G1_SIG \
    "6ef15b54bbb0a51418d69074545d6013c0040d37f1301087c455cf998bc29d89" \
    "c9db15b539125cfe55d018509de2a0d0515d3e752ea2cb482369a204e719300b"
#define G2_BYTES \
    "990102cf00060a2418202240c4205bfcbb25021a8765849305f1cbf8d77120ef" \
    "281ebe91f24d465f816636b18a9fa373616dac6d6573736167652e73656e7401" \
    "a36f2d3187ab6174746163686d656e747391a3612d31ab626f64795f636f6d6d" \
    "6974c42085ad2f1436df4ded08c2d8a0e0af1e63abf85c4784d6cc36c17eba40" \
    "02857372a9626f64795f73697a6508a76368616e6e656ca463686174a26964a3" \
    "6d2d32a772657175657374c42052525252525252525252525252525252525252" \
    "52525252525252525252525252a5746f706963a3742d31"
#define G2_HASH "779befb6a8d5059ceb04fe878483031c324731dd567b6e9d877129426b1db9ea"
#define G2_SIG \
    "708a4c08f9e57477e2cdfe881e0ed506e8bf029287385be26c9f56eea3979bce" \
    "c50aa442ac3eb897ecc885db09cbab0cb76fd8df7e71d91409e9bdc327b45804"
#define G3_BYTES \
    "990103cf00060a2418214d40c420779befb6a8d5059ceb04fe878483031c3247" \
    "31dd567b6e9d877129426b1db9eaa9406f70657261746f72ab6b65792e726f74" \
    "6174656401c081aa7075626c69635f6b6579c42029acbae141bccaf0b22e1a94" \
    "d34d0bc7361e526d0bfe12c89794bc9322966dd7"
#define G3_HASH "19e416fcaee6e92667d09c9e419aa72e233e6ea920ff0b6f090e227dcf702a0c"
#define G3_SIG \
    "1c57116b6cf44556c5a888261249b8393589ca7b6cb37cea5fe7a1db0788d506" \
    "e643a4bc341cfd0548bb54a68e5f47f29c5835a0abf3b50632bc0eb398c6510a"
#define G4_BYTES \
    "990104cf00060a241822d3e0c42019e416fcaee6e92667d09c9e419aa72e233e" \
    "6ea920ff0b6f090e227dcf702a0ca5616c696365ac6d6573736167652e726561" \
    "6401a36f2d3181a76d657373616765a36d2d32"
#define G4_HASH "6b7722cdb603b29938a7d0c3ccdfaba3381c8ed67dcf595c402805228ef32371"
#define G4_SIG \
    "8b202efbb5ca6d5e5088838d78a810b2f73d176b7b7567b7438fc80e388ea29a" \
    "8183d53d039cfdf9491ca39030cecdfc775a818b6c3d4157db7b13271af44b02"
#define C_COMMIT "85ad2f1436df4ded08c2d8a0e0af1e63abf85c4784d6cc36c17eba4002857372"
#define CP_MSG \
    "7468726561646c6f672d636865636b706f696e742d763100000000000000046b" \
    "7722cdb603b29938a7d0c3ccdfaba3381c8ed67dcf595c402805228ef3237100" \
    "060a241822d3e0"
#define CP_SIG \
    "d6802089095d518081c34793451a8449e6c3729bfc04322bbf9d82a1442642d1" \
    "ab4174dd48cbdc8589059c5c33ff3709db9fc66bc2a9983732d221b738f0b80e"

/** The four golden events' bytes (G1_BYTES .. G4_BYTES). */
extern const char *const golden_bytes[4];

/* ---------------------------------------------------------------- test events, as hex */

#define Z32 "0000000000000000000000000000000000000000000000000000000000000000"
#define PREV "c420" Z32
/* format 1, seq 1, ts 0, prev zeros, actor "a", kind "x.a", schema 1, project nil */
#define PRE "99 01 01 00 " PREV " a161 a3782e61 01 c0 "
#define A31 "61616161616161616161616161616161616161616161616161616161616161"
#define P1(v) PRE "81 a161 " v /* payload {"a": v} */

#endif
