/*
 * codec.h — the event envelope and its one canonical msgpack encoding (docs/FORMAT.md).
 *
 * An event is a msgpack array of nine items:
 *   [format, seq, ts, prev_hash, actor, kind, schema, project|nil, payload-map]
 * encoded canonically: smallest integer/length encodings, map keys strings in strictly
 * ascending byte order, no floats or extension types. The same event therefore always
 * yields the same bytes, and the decoder refuses anything else, so a verifier can hash and
 * check the stored bytes without re-encoding them.
 */
#ifndef TL_CODEC_H
#define TL_CODEC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "strbuf.h"
#include "threadlog.h"

#define TL_EVENT_MAX (1u << 20) /* an encoded event never exceeds 1 MiB */
#define TL_DEPTH_MAX 8          /* nesting of arrays/maps in an event */
#define TL_NAME_MAX 64          /* kind, actor and project strings */
#define TL_PAYLOAD_FIELDS_MAX 32

/* A borrowed byte string (not NUL-terminated). */
typedef struct tl_bytes {
    const uint8_t *ptr;
    size_t len;
} tl_bytes;

/* ----- building payloads ----- */
typedef enum { TLV_STR, TLV_UINT, TLV_BOOL, TLV_BIN, TLV_STRLIST, TLV_RAW } tl_vtype;

typedef struct tl_field {
    const char *key;
    tl_vtype type;
    const void *ptr; /* STR/BIN: bytes; STRLIST: const char *const *; RAW: msgpack_object * */
    size_t len;      /* STR/BIN: length; STRLIST: count */
    uint64_t u;      /* UINT, BOOL */
} tl_field;

typedef struct tl_payload {
    tl_field f[TL_PAYLOAD_FIELDS_MAX];
    size_t n;
} tl_payload;

/* Each adder skips a NULL value, so optional fields are simply absent (never nil). */
void tl_payload_str(tl_payload *p, const char *key, const char *s);
void tl_payload_strn(tl_payload *p, const char *key, const char *s, size_t len);
void tl_payload_uint(tl_payload *p, const char *key, uint64_t u);
void tl_payload_bool(tl_payload *p, const char *key, bool b);
void tl_payload_bin(tl_payload *p, const char *key, const void *ptr, size_t len);
void tl_payload_strlist(tl_payload *p, const char *key, const char *const *list, size_t n);

/* The envelope before encoding. */
typedef struct tl_envelope {
    uint64_t seq;
    uint64_t ts;
    uint8_t prev[TL_HASH_BYTES];
    const char *actor;
    const char *kind;
    uint64_t schema;
    const char *project; /* NULL: nil */
} tl_envelope;

/**
 * Encode env + payload canonically into buf (cleared first). Payload fields are sorted
 * by key here; duplicate keys are refused with TL_EINVALID.
 */
int tl_event_encode(msgpack_sbuffer *buf, const tl_envelope *env, const tl_payload *payload);

/** Encode env with a payload given as a msgpack object (a map; re-encoded canonically). */
int tl_event_encode_object(msgpack_sbuffer *buf, const tl_envelope *env,
                           const msgpack_object *payload);

/* ----- decoding ----- */
/* Every kind this build applies; anything else (an extension's "x." kinds) is TL_K_OTHER. */
typedef enum tl_kind {
    TL_K_OTHER = 0,
    TL_K_LOG_CREATED,
    TL_K_ACCOUNT_CREATED,
    TL_K_USER_CREATED,
    TL_K_PROJECT_CREATED,
    TL_K_PROJECT_STATUS_CHANGED,
    TL_K_TOPIC_CREATED,
    TL_K_MESSAGE_SENT,
    TL_K_MESSAGE_REPLIED,
    TL_K_MESSAGE_READ,
    TL_K_MESSAGE_UNREAD,
    TL_K_MESSAGE_PINNED,
    TL_K_MESSAGE_UNPINNED,
    TL_K_MESSAGE_DELETED,
    TL_K_NOTE_ADDED,
    TL_K_ATTACHMENT_UPLOADED,
    TL_K_KEY_ROTATED,
    TL_K_CONTENT_ERASED,
} tl_kind;

/** The number of a kind's name (TL_K_OTHER for a name this build does not apply). */
tl_kind tl_kind_of(const char *kind);

#define TL_EV_FIELDS_MAX 20
typedef struct tl_event {
    uint64_t format, seq, ts, schema;
    const uint8_t *prev; /* TL_HASH_BYTES inside bytes */
    char actor[TL_NAME_MAX + 1];
    char kind[TL_NAME_MAX + 1];
    char project[TL_NAME_MAX + 1]; /* "" when nil */
    bool has_project;
    const uint8_t *payload; /* the payload map's bytes inside `bytes` */
    size_t payload_len;
    const uint8_t *bytes; /* the whole canonical event */
    size_t len;
    tl_kind kid;          /* kind, as a number: appliers dispatch on it without comparing strings */
    /* The payload's top-level fields, indexed once by tl_event_decode: an applier looks up
     * a dozen fields of each event, and walking the map for each was 5% of a replay.
     * nfields == 0 with a non-empty map (more than TL_EV_FIELDS_MAX fields, or an event not
     * decoded here) means: walk the map. Left out of decode's clearing (fields[nfields..]
     * are never read). */
    unsigned nfields;
    struct tl_ev_field {
        const uint8_t *key; /* inside bytes */
        const uint8_t *val; /* the value's first byte */
        size_t klen;
    } fields[TL_EV_FIELDS_MAX];
} tl_event;

/** Strict UTF-8 (no overlongs, no surrogates). */
bool tl_utf8_valid(const uint8_t *s, size_t n);

/**
 * Check that bytes[0..len) is exactly one canonical value with every length, count and
 * depth in bounds (no trailing bytes). Returns 0 or TL_ECORRUPT with a detail.
 */
int tl_msgpack_check_canonical(const uint8_t *bytes, size_t len);

/**
 * Check a caller's payload before a general-purpose unpacker sees it (msgpack-c allocates
 * what the counts it reads announce): exactly one value in any encoding, every length and
 * count within the bytes present, nesting within TL_DEPTH_MAX counted as in an event (the
 * payload map is depth 2), no float or extension type. 0 or TL_EINVALID.
 */
int tl_msgpack_check_input(const uint8_t *bytes, size_t len);

/**
 * Decode an event strictly: canonical form, nine items, known format version, sane fields.
 * ev borrows from bytes. Returns 0, TL_ECORRUPT or TL_EVERSION (detail recorded).
 */
int tl_event_decode(tl_event *ev, const uint8_t *bytes, size_t len);

/* Payload accessors: 0 when found with the right type, TL_ENOTFOUND when absent,
 * TL_ECORRUPT when of another type. Results borrow from the event's bytes. */
int tl_ev_str(const tl_event *ev, const char *key, tl_bytes *out);
int tl_ev_uint(const tl_event *ev, const char *key, uint64_t *out);
int tl_ev_bool(const tl_event *ev, const char *key, bool *out);
int tl_ev_bin(const tl_event *ev, const char *key, tl_bytes *out);
/** A list of strings: *count items; item i read with tl_ev_list_item. */
int tl_ev_list(const tl_event *ev, const char *key, tl_bytes *list_bytes, size_t *count);
/** Iterate a list: *pos starts at 0 (opaque cursor into list_bytes). */
int tl_ev_list_next(const tl_bytes *list_bytes, size_t *pos, tl_bytes *item);

/** The canonical order of map keys: bytewise, a prefix first (encoder and decoder agree). */
static inline int tl_map_key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/** Copy a borrowed string into a NUL-terminated buffer of cap bytes (truncation refused). */
int tl_bytes_cstr(const tl_bytes *b, char *dst, size_t cap);
bool tl_bytes_eq(const tl_bytes *b, const char *s);

/**
 * Render a msgpack value (canonical, already checked) as JSON into a growable string
 * (strbuf.h): strings escaped, bin as lowercase hex. Used by `log --json` and exports.
 */
int tl_sb_msgpack_json(tl_strbuf *sb, const uint8_t *bytes, size_t len);

#endif
