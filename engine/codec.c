/*
 * codec.c — the strict decoder of events (the encoder is encode.c).
 *
 * Decoding does not trust the bytes: a cursor walks them once, bounding every length and
 * count by the bytes left and the depth by TL_DEPTH_MAX, and refuses any encoding the packer
 * would not have produced. Accessors then read fields straight out of the checked bytes,
 * with no allocation. The same walk renders a value as JSON (tl_sb_msgpack_json).
 */
#include "codec.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "error.h"

/* ================================================================ reading */

enum mtype { MT_NIL, MT_BOOL, MT_UINT, MT_INT, MT_STR, MT_BIN, MT_ARR, MT_MAP };

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint64_t be_read(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/*
 * Read one header. For STR/BIN the body is checked to fit and skipped past is left to the
 * caller (r->p points at the body). For ARR/MAP *val is the count. When `canonical`, any
 * encoding longer than the smallest one is refused.
 */
static int rd_head(reader *r, int *type, uint64_t *val, bool canonical) {
    if (r->p >= r->end) return -1;
    uint8_t b = *r->p++;
    size_t left = (size_t)(r->end - r->p);
    int width = 0;
    uint64_t min = 0;
    if (b <= 0x7f) { *type = MT_UINT; *val = b; return 0; }
    if (b >= 0xe0) { *type = MT_INT; *val = (uint64_t)(int64_t)(int8_t)b; return 0; }
    if ((b & 0xe0) == 0xa0) { *type = MT_STR; *val = b & 0x1f; goto body; }
    if ((b & 0xf0) == 0x90) { *type = MT_ARR; *val = b & 0x0f; goto count; }
    if ((b & 0xf0) == 0x80) { *type = MT_MAP; *val = b & 0x0f; goto count; }
    switch (b) {
    case 0xc0: *type = MT_NIL; *val = 0; return 0;
    case 0xc2: *type = MT_BOOL; *val = 0; return 0;
    case 0xc3: *type = MT_BOOL; *val = 1; return 0;
    case 0xcc: width = 1; min = 0x80; goto uint;
    case 0xcd: width = 2; min = 0x100; goto uint;
    case 0xce: width = 4; min = 0x10000; goto uint;
    case 0xcf: width = 8; min = 0x100000000ull; goto uint;
    case 0xd0: width = 1; goto sint;
    case 0xd1: width = 2; goto sint;
    case 0xd2: width = 4; goto sint;
    case 0xd3: width = 8; goto sint;
    case 0xd9: *type = MT_STR; width = 1; min = 32; goto len;
    case 0xda: *type = MT_STR; width = 2; min = 0x100; goto len;
    case 0xdb: *type = MT_STR; width = 4; min = 0x10000; goto len;
    case 0xc4: *type = MT_BIN; width = 1; min = 0; goto len;
    case 0xc5: *type = MT_BIN; width = 2; min = 0x100; goto len;
    case 0xc6: *type = MT_BIN; width = 4; min = 0x10000; goto len;
    case 0xdc: *type = MT_ARR; width = 2; min = 16; goto clen;
    case 0xdd: *type = MT_ARR; width = 4; min = 0x10000; goto clen;
    case 0xde: *type = MT_MAP; width = 2; min = 16; goto clen;
    case 0xdf: *type = MT_MAP; width = 4; min = 0x10000; goto clen;
    default: return -1; /* floats, ext, never-used */
    }
uint:
    if (left < (size_t)width) return -1;
    *type = MT_UINT;
    *val = be_read(r->p, width);
    r->p += width;
    if (canonical && *val < min) return -1;
    return 0;
sint: {
    if (left < (size_t)width) return -1;
    uint64_t raw = be_read(r->p, width);
    r->p += width;
    int64_t v;
    if (width == 1) v = (int8_t)raw;
    else if (width == 2) v = (int16_t)raw;
    else if (width == 4) v = (int32_t)raw;
    else v = (int64_t)raw;
    *type = MT_INT;
    *val = (uint64_t)v;
    if (canonical) {
        /* the packer writes non-negative values as uints and each negative in the
         * narrowest signed width */
        int64_t lo = width == 1 ? -32 : width == 2 ? -128 : width == 4 ? -32768 : -2147483648LL;
        if (v >= lo) return -1;
    }
    return 0;
}
len:
    if (left < (size_t)width) return -1;
    *val = be_read(r->p, width);
    r->p += width;
    if (canonical && *val < min) return -1;
body:
    if (*val > (uint64_t)(r->end - r->p)) return -1;
    return 0;
clen:
    if (left < (size_t)width) return -1;
    *val = be_read(r->p, width);
    r->p += width;
    if (canonical && *val < min) return -1;
count:
    /* every element takes at least one byte: bounds absurd counts before any loop */
    if (*val > (uint64_t)(r->end - r->p) || (*type == MT_MAP && *val * 2 > (uint64_t)(r->end - r->p)))
        return -1;
    return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; }
        else return false;
        if (n - i - 1 < k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

bool tl_utf8_valid(const uint8_t *s, size_t n) { return utf8_valid(s, n); }

/* Walk one value, checking it completely; *nils counts the nils met. */
static int check_value(reader *r, int depth, unsigned *nils) {
    int type;
    uint64_t val;
    if (depth > TL_DEPTH_MAX) return -1;
    if (rd_head(r, &type, &val, true)) return -1;
    switch (type) {
    case MT_NIL:
        (*nils)++;
        return 0;
    case MT_STR:
        if (!utf8_valid(r->p, (size_t)val)) return -1;
        r->p += val;
        return 0;
    case MT_BIN:
        r->p += val;
        return 0;
    case MT_ARR:
        for (uint64_t i = 0; i < val; i++)
            if (check_value(r, depth + 1, nils)) return -1;
        return 0;
    case MT_MAP: {
        const uint8_t *prev = NULL;
        size_t prev_len = 0;
        for (uint64_t i = 0; i < val; i++) {
            int kt;
            uint64_t klen;
            if (rd_head(r, &kt, &klen, true) || kt != MT_STR) return -1;
            const uint8_t *k = r->p;
            if (!utf8_valid(k, (size_t)klen)) return -1;
            r->p += klen;
            if (prev && tl_map_key_cmp((const char *)prev, prev_len, (const char *)k, (size_t)klen) >= 0)
                return -1; /* keys strictly ascending: sorted and unique */
            prev = k;
            prev_len = (size_t)klen;
            if (check_value(r, depth + 1, nils)) return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int check_canonical(const uint8_t *bytes, size_t len, unsigned *nils) {
    *nils = 0;
    if (len == 0 || len > TL_EVENT_MAX) return tl_fail(TL_ECORRUPT, "event of %zu bytes", len);
    reader r = {bytes, bytes + len};
    if (check_value(&r, 1, nils)) return tl_fail(TL_ECORRUPT, "event bytes are not canonical msgpack");
    if (r.p != r.end) return tl_fail(TL_ECORRUPT, "%zu trailing bytes after the event", (size_t)(r.end - r.p));
    return 0;
}

int tl_msgpack_check_canonical(const uint8_t *bytes, size_t len) {
    unsigned nils;
    return check_canonical(bytes, len, &nils);
}

/* Walk one value of any encoding: lengths and counts bounded by the bytes left, depth by
 * TL_DEPTH_MAX. rd_head already refuses floats, extension types and unused bytes. */
static int check_input_value(reader *r, int depth) {
    int type;
    uint64_t val;
    if (depth > TL_DEPTH_MAX || rd_head(r, &type, &val, false)) return -1;
    if (type == MT_STR || type == MT_BIN) r->p += val;
    else if (type == MT_ARR || type == MT_MAP)
        for (uint64_t i = 0; i < (type == MT_MAP ? 2 * val : val); i++)
            if (check_input_value(r, depth + 1)) return -1;
    return 0;
}

int tl_msgpack_check_input(const uint8_t *bytes, size_t len) {
    if (!bytes || len == 0 || len > TL_EVENT_MAX) return tl_fail(TL_EINVALID, "payload of %zu bytes", len);
    reader r = {bytes, bytes + len};
    /* a payload map is at depth 2 of its event */
    if (check_input_value(&r, 2) || r.p != r.end)
        return tl_fail(TL_EINVALID, "payload is not one well-formed msgpack value (no float or ext, "
                                    "nesting within %d levels)", TL_DEPTH_MAX);
    return 0;
}

/* Skip one value already known to be well formed. */
static void skip_value(reader *r) {
    int type;
    uint64_t val;
    if (rd_head(r, &type, &val, false)) { r->p = r->end; return; }
    if (type == MT_STR || type == MT_BIN) r->p += val;
    else if (type == MT_ARR) for (uint64_t i = 0; i < val; i++) skip_value(r);
    else if (type == MT_MAP) for (uint64_t i = 0; i < 2 * val; i++) skip_value(r);
}

static int rd_name(reader *r, char *dst, bool allow_nil, bool *is_nil) {
    int type;
    uint64_t n;
    if (rd_head(r, &type, &n, true)) return -1;
    if (type == MT_NIL && allow_nil) { *is_nil = true; dst[0] = 0; return 0; }
    if (type != MT_STR || n == 0 || n > TL_NAME_MAX) return -1;
    memcpy(dst, r->p, n);
    dst[n] = 0;
    if (memchr(dst, 0, n)) return -1;
    r->p += n;
    if (is_nil) *is_nil = false;
    return 0;
}

tl_kind tl_kind_of(const char *kind) {
    static const char *const names[] = {
        [TL_K_LOG_CREATED] = "log.created",
        [TL_K_ACCOUNT_CREATED] = "account.created",
        [TL_K_USER_CREATED] = "user.created",
        [TL_K_PROJECT_CREATED] = "project.created",
        [TL_K_PROJECT_STATUS_CHANGED] = "project.status_changed",
        [TL_K_TOPIC_CREATED] = "topic.created",
        [TL_K_MESSAGE_SENT] = "message.sent",
        [TL_K_MESSAGE_REPLIED] = "message.replied",
        [TL_K_MESSAGE_READ] = "message.read",
        [TL_K_MESSAGE_UNREAD] = "message.unread",
        [TL_K_MESSAGE_PINNED] = "message.pinned",
        [TL_K_MESSAGE_UNPINNED] = "message.unpinned",
        [TL_K_MESSAGE_DELETED] = "message.deleted",
        [TL_K_NOTE_ADDED] = "note.added",
        [TL_K_ATTACHMENT_UPLOADED] = "attachment.uploaded",
        [TL_K_KEY_ROTATED] = "key.rotated",
        [TL_K_CONTENT_ERASED] = "content.erased",
    };
    for (size_t k = 1; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(kind, names[k]) == 0) return (tl_kind)k;
    return TL_K_OTHER;
}

/* Index the payload map's top-level fields (the bytes are canonical: checked already). */
static void index_fields(tl_event *ev) {
    reader r = {ev->payload, ev->payload + ev->payload_len};
    int type;
    uint64_t n;
    ev->nfields = 0;
    if (rd_head(&r, &type, &n, false) || type != MT_MAP || n > TL_EV_FIELDS_MAX) return;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t klen;
        if (rd_head(&r, &type, &klen, false) || type != MT_STR) { ev->nfields = 0; return; }
        struct tl_ev_field *f = &ev->fields[i];
        f->key = r.p;
        f->klen = (size_t)klen;
        r.p += klen;
        f->val = r.p;
        skip_value(&r);
    }
    ev->nfields = (unsigned)n;
}

int tl_event_decode(tl_event *ev, const uint8_t *bytes, size_t len) {
    memset(ev, 0, offsetof(tl_event, fields));
    unsigned nils;
    int rc = check_canonical(bytes, len, &nils);
    if (rc) return rc;
    reader r = {bytes, bytes + len};
    int type;
    uint64_t val;
    /* The format version is the first item whatever the version: it is read before the
     * item count, so that an event of a later format (which may have other items) is
     * "unsupported_version", not "corrupt". */
    if (rd_head(&r, &type, &val, true) || type != MT_ARR || val == 0)
        return tl_fail(TL_ECORRUPT, "event is not an array of 9 items");
    uint64_t items = val;
    if (rd_head(&r, &type, &ev->format, true) || type != MT_UINT)
        return tl_fail(TL_ECORRUPT, "event format is not an integer");
    if (ev->format != TL_FORMAT_VERSION)
        return tl_fail(TL_EVERSION, "event format version %llu is unknown", (unsigned long long)ev->format);
    if (items != 9) return tl_fail(TL_ECORRUPT, "event is not an array of 9 items");
    if (rd_head(&r, &type, &ev->seq, true) || type != MT_UINT || ev->seq == 0)
        return tl_fail(TL_ECORRUPT, "event sequence is not a positive integer");
    if (rd_head(&r, &type, &ev->ts, true) || type != MT_UINT)
        return tl_fail(TL_ECORRUPT, "event time is not an integer");
    if (rd_head(&r, &type, &val, true) || type != MT_BIN || val != TL_HASH_BYTES)
        return tl_fail(TL_ECORRUPT, "event previous hash is not 32 bytes");
    ev->prev = r.p;
    r.p += TL_HASH_BYTES;
    if (rd_name(&r, ev->actor, false, NULL)) return tl_fail(TL_ECORRUPT, "event actor is malformed");
    if (rd_name(&r, ev->kind, false, NULL)) return tl_fail(TL_ECORRUPT, "event kind is malformed");
    if (rd_head(&r, &type, &ev->schema, true) || type != MT_UINT || ev->schema == 0)
        return tl_fail(TL_ECORRUPT, "event schema is not a positive integer");
    bool nil = true;
    if (rd_name(&r, ev->project, true, &nil)) return tl_fail(TL_ECORRUPT, "event project is malformed");
    ev->has_project = !nil;
    /* canonical rule 7 (FORMAT.md §3): a domain event's only nil is the envelope's project */
    if (nils > (nil ? 1u : 0u) && strncmp(ev->kind, "x.", 2) != 0)
        return tl_fail(TL_ECORRUPT, "a %s event carries nil in its payload (absent fields are omitted)", ev->kind);
    ev->payload = r.p;
    if (rd_head(&r, &type, &val, true) || type != MT_MAP)
        return tl_fail(TL_ECORRUPT, "event payload is not a map");
    ev->payload_len = (size_t)(r.end - ev->payload);
    ev->bytes = bytes;
    ev->len = len;
    ev->kid = tl_kind_of(ev->kind);
    index_fields(ev);
    return 0;
}

/* Find key in the payload map; r is left at its value. */
static int find_field(const tl_event *ev, const char *key, reader *r) {
    r->p = ev->payload;
    r->end = ev->payload + ev->payload_len;
    size_t klen = strlen(key);
    if (ev->nfields) {
        for (unsigned i = 0; i < ev->nfields; i++) {
            const struct tl_ev_field *f = &ev->fields[i];
            if (f->klen == klen && memcmp(f->key, key, klen) == 0) {
                r->p = f->val;
                return 0;
            }
        }
        return TL_ENOTFOUND;
    }
    int type;
    uint64_t n;
    if (rd_head(r, &type, &n, false) || type != MT_MAP) return TL_ECORRUPT;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (rd_head(r, &type, &len, false) || type != MT_STR) return TL_ECORRUPT;
        bool match = len == klen && memcmp(r->p, key, klen) == 0;
        r->p += len;
        if (match) return 0;
        skip_value(r);
    }
    return TL_ENOTFOUND;
}

static int field_of_type(const tl_event *ev, const char *key, int want, uint64_t *val, reader *r) {
    int rc = find_field(ev, key, r);
    if (rc) return rc;
    int type;
    if (rd_head(r, &type, val, false) || type != want) return TL_ECORRUPT;
    return 0;
}

int tl_ev_str(const tl_event *ev, const char *key, tl_bytes *out) {
    reader r;
    uint64_t n;
    int rc = field_of_type(ev, key, MT_STR, &n, &r);
    if (rc) return rc;
    out->ptr = r.p;
    out->len = (size_t)n;
    return 0;
}

int tl_ev_bin(const tl_event *ev, const char *key, tl_bytes *out) {
    reader r;
    uint64_t n;
    int rc = field_of_type(ev, key, MT_BIN, &n, &r);
    if (rc) return rc;
    out->ptr = r.p;
    out->len = (size_t)n;
    return 0;
}

int tl_ev_uint(const tl_event *ev, const char *key, uint64_t *out) {
    reader r;
    return field_of_type(ev, key, MT_UINT, out, &r);
}

int tl_ev_bool(const tl_event *ev, const char *key, bool *out) {
    reader r;
    uint64_t v;
    int rc = field_of_type(ev, key, MT_BOOL, &v, &r);
    if (!rc) *out = v != 0;
    return rc;
}

int tl_ev_list(const tl_event *ev, const char *key, tl_bytes *list_bytes, size_t *count) {
    reader r;
    uint64_t n;
    int rc = field_of_type(ev, key, MT_ARR, &n, &r);
    if (rc) return rc;
    list_bytes->ptr = r.p;
    list_bytes->len = (size_t)(ev->payload + ev->payload_len - r.p);
    *count = (size_t)n;
    return 0;
}

int tl_ev_list_next(const tl_bytes *list_bytes, size_t *pos, tl_bytes *item) {
    reader r = {list_bytes->ptr + *pos, list_bytes->ptr + list_bytes->len};
    int type;
    uint64_t n;
    if (rd_head(&r, &type, &n, false) || type != MT_STR) return TL_ECORRUPT;
    item->ptr = r.p;
    item->len = (size_t)n;
    r.p += n;
    *pos = (size_t)(r.p - list_bytes->ptr);
    return 0;
}

int tl_bytes_cstr(const tl_bytes *b, char *dst, size_t cap) {
    if (b->len + 1 > cap) return TL_ECORRUPT;
    memcpy(dst, b->ptr, b->len);
    dst[b->len] = 0;
    return 0;
}

bool tl_bytes_eq(const tl_bytes *b, const char *s) {
    size_t n = strlen(s);
    return b->len == n && memcmp(b->ptr, s, n) == 0;
}

/* ================================================================ msgpack as JSON */

static int json_value(tl_strbuf *sb, reader *r, int depth) {
    int type;
    uint64_t val;
    if (depth > TL_DEPTH_MAX || rd_head(r, &type, &val, false)) return TL_ECORRUPT;
    switch (type) {
    case MT_NIL: tl_sb_puts(sb, "null"); break;
    case MT_BOOL: tl_sb_puts(sb, val ? "true" : "false"); break;
    case MT_UINT: tl_sb_u64(sb, val); break;
    case MT_INT: tl_sb_printf(sb, "%lld", (long long)(int64_t)val); break;
    case MT_STR: tl_sb_json_str(sb, (const char *)r->p, (size_t)val); r->p += val; break;
    case MT_BIN: tl_sb_put(sb, "\"", 1); tl_sb_hex(sb, r->p, (size_t)val); tl_sb_put(sb, "\"", 1); r->p += val; break;
    case MT_ARR:
        tl_sb_put(sb, "[", 1);
        for (uint64_t i = 0; i < val; i++) {
            if (i) tl_sb_put(sb, ",", 1);
            if (json_value(sb, r, depth + 1)) return TL_ECORRUPT;
        }
        tl_sb_put(sb, "]", 1);
        break;
    case MT_MAP:
        tl_sb_put(sb, "{", 1);
        for (uint64_t i = 0; i < val; i++) {
            if (i) tl_sb_put(sb, ",", 1);
            if (json_value(sb, r, depth + 1)) return TL_ECORRUPT;
            tl_sb_put(sb, ":", 1);
            if (json_value(sb, r, depth + 1)) return TL_ECORRUPT;
        }
        tl_sb_put(sb, "}", 1);
        break;
    }
    return 0;
}

int tl_sb_msgpack_json(tl_strbuf *sb, const uint8_t *bytes, size_t len) {
    reader r = {bytes, bytes + len};
    return json_value(sb, &r, 1);
}
