/*
 * command.c — building, parsing and printing commands and their results.
 *
 * JSON lines are parsed with jansson (Debian's libjansson): it validates UTF-8, refuses NUL
 * characters (\u0000) and lone surrogate escapes, bounds nesting depth, and can refuse
 * duplicate keys — every malformed line becomes `invalid_input` with jansson's own
 * position-precise message. What a command means is checked later, in rules.c, for lines
 * and builder-made commands alike.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"

bool tl_id_valid(const char *s) {
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-'))
            return false;
        if (n >= TL_ID_MAX) return false;
    }
    return n >= 1;
}

void tl_utf8_trim(char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (p[i]) {
        unsigned char c = p[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) break;
        size_t k = 1;
        while (k < n && (p[i + k] & 0xc0) == 0x80) k++;
        if (k < n) break;
        if (n == 3) {
            unsigned cp = (c & 0x0fu) << 12 | (p[i + 1] & 0x3fu) << 6 | (p[i + 2] & 0x3fu);
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) break;
        } else if (n == 4) {
            unsigned cp = (c & 0x07u) << 18 | (p[i + 1] & 0x3fu) << 12 | (p[i + 2] & 0x3fu) << 6 | (p[i + 3] & 0x3fu);
            if (cp < 0x10000 || cp > 0x10ffff) break;
        }
        i += n;
    }
    s[i] = '\0';
}

int tl_result_fail(tl_result *res, int code, const char *fmt, ...) {
    char message[sizeof res->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* a message quoting the caller's text may have been cut inside a UTF-8 sequence; it
     * must stay printable as JSON, or its result line would be lost */
    tl_utf8_trim(message);
    if (res) {
        memset(res, 0, sizeof *res);
        res->code = code;
        memcpy(res->message, message, sizeof message);
    }
    return tl_fail(code, "%s", message); /* tl_errdetail() tells it too, res or not */
}

int tl_cmd_new(tl_cmd **out, const char *op) {
    if (!out) return tl_fail(TL_EUSAGE, "tl_cmd_new: out is NULL");
    *out = NULL;
    if (!op) return tl_fail(TL_EUSAGE, "tl_cmd_new: op is NULL");
    tl_cmd *c = calloc(1, sizeof *c);
    if (!c || !(c->obj = json_object())) { free(c); return tl_fail(TL_ENOMEM, "out of memory"); }
    if (json_object_set_new(c->obj, "op", json_string(op)) != 0) {
        tl_cmd_free(c);
        return tl_fail(TL_EINVALID, "op is not valid UTF-8");
    }
    *out = c;
    return 0;
}

/*
 * JSON has one kind of number: 19, 19.0 and 1.9e1 are the same value, and a command is
 * compared with its retry "as parsed JSON" (SPEC "Retries first"). jansson keeps integers and
 * reals apart, so a real with an integral value (within what a double holds exactly) becomes
 * the integer it equals, before any check or fingerprint sees it. 19.5 stays a real, and
 * stays refused where an integer is required.
 */
/* v, when it is a real of integral value, as that integer (a new reference); else NULL.
 * The range is checked first: converting a double beyond int64 is undefined. */
static json_t *as_integer(const json_t *v) {
    if (!json_is_real(v)) return NULL;
    double d = json_real_value(v);
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(json_int_t)d) return NULL;
    return json_integer((json_int_t)d);
}

static void integral_reals_to_integers(json_t *v) {
    if (json_is_object(v)) {
        const char *key;
        json_t *item, *n;
        json_object_foreach(v, key, item) {
            if ((n = as_integer(item)) != NULL) json_object_set_new(v, key, n);
            else integral_reals_to_integers(item);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *item = json_array_get(v, i), *n;
            if ((n = as_integer(item)) != NULL) json_array_set_new(v, i, n);
            else integral_reals_to_integers(item);
        }
    }
}

int tl_cmd_parse(tl_cmd **out, const char *text, size_t len, tl_result *res) {
    if (out) *out = NULL;
    if (!out || (!text && len)) return tl_result_fail(res, TL_EUSAGE, "tl_cmd_parse: out and text are required");
    json_error_t err;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!obj) {
        /* jansson's own words, except where they name its flags rather than the input */
        const char *why = err.text;
        switch (json_error_code(&err)) {
        case json_error_null_character: why = "a NUL character (\\u0000) in a string"; break;
        case json_error_null_byte_in_key: why = "a NUL character (\\u0000) in a key"; break;
        case json_error_duplicate_key: why = "a key given twice in one object"; break;
        case json_error_stack_overflow: why = "nested too deeply"; break;
        default: break;
        }
        return tl_result_fail(res, TL_EINVALID, "not JSON: %s (at byte %d of the line)", why, err.position);
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        return tl_result_fail(res, TL_EINVALID, "a command is a JSON object with an \"op\"");
    }
    integral_reals_to_integers(obj);
    tl_cmd *c = calloc(1, sizeof *c);
    if (!c) { json_decref(obj); return tl_result_fail(res, TL_ENOMEM, "out of memory"); }
    c->obj = obj;
    *out = c;
    return 0;
}

/* A field name must be UTF-8 to be a JSON key (jansson refuses it otherwise). */
static int field_ok(const tl_cmd *cmd, const char *field) {
    if (!cmd || !field) return tl_fail(TL_EUSAGE, "no command or field");
    if (!tl_utf8_valid((const uint8_t *)field, strlen(field))) return tl_fail(TL_EINVALID, "a field name is not valid UTF-8");
    return 0;
}

int tl_cmd_set_str(tl_cmd *cmd, const char *field, const char *value) {
    int rc = field_ok(cmd, field);
    if (rc) return rc;
    json_t *v = value ? json_string(value) : json_null();
    if (!v) return tl_fail(TL_EINVALID, "%s is not valid UTF-8", field);
    return json_object_set_new(cmd->obj, field, v) ? tl_fail(TL_ENOMEM, "out of memory") : 0;
}

int tl_cmd_set_int(tl_cmd *cmd, const char *field, int64_t value) {
    int rc = field_ok(cmd, field);
    if (rc) return rc;
    return json_object_set_new(cmd->obj, field, json_integer(value)) ? tl_fail(TL_ENOMEM, "out of memory") : 0;
}

int tl_cmd_add_str(tl_cmd *cmd, const char *field, const char *value) {
    if (!value) return tl_fail(TL_EUSAGE, "no value");
    int rc = field_ok(cmd, field);
    if (rc) return rc;
    json_t *list = json_object_get(cmd->obj, field);
    if (!json_is_array(list)) {
        list = json_array();
        if (!list || json_object_set_new(cmd->obj, field, list)) return tl_fail(TL_ENOMEM, "out of memory");
    }
    json_t *v = json_string(value);
    if (!v) return tl_fail(TL_EINVALID, "%s item is not valid UTF-8", field);
    return json_array_append_new(list, v) ? tl_fail(TL_ENOMEM, "out of memory") : 0;
}

int tl_cmd_set_data(tl_cmd *cmd, const void *bytes, size_t len) {
    if (!cmd || (!bytes && len)) return tl_fail(TL_EUSAGE, "no command or bytes");
    cmd->data_unread = false;
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap);
    if (!b64) return tl_fail(TL_ENOMEM, "out of memory");
    sodium_bin2base64(b64, cap, bytes, len, sodium_base64_VARIANT_ORIGINAL);
    int rc = tl_cmd_set_str(cmd, "data", b64);
    free(b64);
    return rc;
}

char *tl_json_dump(const json_t *j, size_t flags) {
    size_t n = json_dumpb(j, NULL, 0, flags);
    if (!n) return NULL;
    char *text = malloc(n + 1);
    if (!text) return NULL;
    if (json_dumpb(j, text, n, flags) != n) {
        free(text);
        return NULL;
    }
    text[n] = 0;
    return text;
}

int tl_cmd_set_data_size(tl_cmd *cmd, uint64_t len) {
    if (!cmd) return tl_fail(TL_EUSAGE, "no command");
    int rc = tl_cmd_set_str(cmd, "data", "");
    if (rc) return rc;
    cmd->data_unread = true;
    cmd->data_unread_size = len;
    return 0;
}

void tl_cmd_free(tl_cmd *cmd) {
    if (!cmd) return;
    json_decref(cmd->obj);
    free(cmd);
}

/* A message may quote input cut at a byte limit, possibly inside a UTF-8 sequence: replace
 * every byte that is not part of valid UTF-8 so the result line is always valid JSON. */
static void utf8_sanitize(char *dst, const char *src, size_t cap) {
    size_t n = strnlen(src, cap), o = 0; /* a caller's tl_result need not be terminated */
    for (size_t i = 0; i < n && o + 1 < cap;) {
        size_t k = 1;
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x80) {
            k = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (!k || i + k > n || !tl_utf8_valid((const uint8_t *)src + i, k) || o + k + 1 > cap) {
                dst[o++] = '?';
                i++;
                continue;
            }
        }
        memcpy(dst + o, src + i, k);
        o += k;
        i += k;
    }
    dst[o] = 0;
}

int tl_result_json(const tl_result *res, char **json) {
    if (json) *json = NULL;
    if (!res || !json) return tl_fail(TL_EUSAGE, "tl_result_json: result and json are required");
    json_t *o;
    if (res->code) {
        char msg[sizeof res->message];
        utf8_sanitize(msg, res->message[0] ? res->message : tl_strerror(res->code), sizeof msg);
        o = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", tl_strerror(res->code), "message", msg);
    } else if (res->noop) {
        o = json_pack("{s:b,s:b}", "ok", 1, "noop", 1);
    } else {
        o = json_pack("{s:b,s:I}", "ok", 1, "seq", (json_int_t)res->seq);
        if (o && res->id[0]) json_object_set_new(o, "id", json_stringn(res->id, strnlen(res->id, sizeof res->id)));
        if (o && res->message_id[0])
            json_object_set_new(o, "message_id", json_stringn(res->message_id, strnlen(res->message_id, sizeof res->message_id)));
        if (o && res->duplicate) json_object_set_new(o, "duplicate", json_true());
    }
    if (!o) return tl_fail(TL_ENOMEM, "out of memory");
    *json = tl_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return *json ? 0 : tl_fail(TL_ENOMEM, "out of memory");
}
