/*
 * encode.c — canonical msgpack encoding of events (docs/FORMAT.md).
 *
 * Encoding goes through msgpack-c's packer, which already picks the smallest encoding of
 * every integer and length; this file adds the rest of the canonical form (fixed envelope
 * order, payload keys sorted, no nil fields), and checks what it produced with the decoder's
 * own canonical check (codec.c), so that nothing is appended that a verifier would refuse.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ================================================================ building payloads */

static tl_field *payload_slot(tl_payload *p, const char *key, tl_vtype type) {
    if (p->n >= TL_PAYLOAD_FIELDS_MAX) {
        p->n = TL_PAYLOAD_FIELDS_MAX + 1; /* poisoned: encode refuses it */
        return NULL;
    }
    tl_field *f = &p->f[p->n++];
    memset(f, 0, sizeof *f);
    f->key = key;
    f->type = type;
    return f;
}

void tl_payload_strn(tl_payload *p, const char *key, const char *s, size_t len) {
    if (!s) return;
    tl_field *f = payload_slot(p, key, TLV_STR);
    if (f) { f->ptr = s; f->len = len; }
}
void tl_payload_str(tl_payload *p, const char *key, const char *s) {
    if (s) tl_payload_strn(p, key, s, strlen(s));
}
void tl_payload_uint(tl_payload *p, const char *key, uint64_t u) {
    tl_field *f = payload_slot(p, key, TLV_UINT);
    if (f) f->u = u;
}
void tl_payload_bool(tl_payload *p, const char *key, bool b) {
    tl_field *f = payload_slot(p, key, TLV_BOOL);
    if (f) f->u = b;
}
void tl_payload_bin(tl_payload *p, const char *key, const void *ptr, size_t len) {
    if (!ptr) return;
    tl_field *f = payload_slot(p, key, TLV_BIN);
    if (f) { f->ptr = ptr; f->len = len; }
}
void tl_payload_strlist(tl_payload *p, const char *key, const char *const *list, size_t n) {
    if (!list) return;
    tl_field *f = payload_slot(p, key, TLV_STRLIST);
    if (f) { f->ptr = list; f->len = n; }
}

/* ================================================================ encoding */

static int field_cmp(const void *a, const void *b) {
    const tl_field *x = a, *y = b;
    return tl_map_key_cmp(x->key, strlen(x->key), y->key, strlen(y->key));
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int pack_envelope_head(msgpack_packer *pk, const tl_envelope *env) {
    if (!env->actor || !env->kind || !*env->actor || !*env->kind ||
        strlen(env->actor) > TL_NAME_MAX || strlen(env->kind) > TL_NAME_MAX ||
        (env->project && (!*env->project || strlen(env->project) > TL_NAME_MAX)))
        return tl_fail(TL_EINVALID, "event envelope: bad actor, kind or project");
    msgpack_pack_array(pk, 9);
    msgpack_pack_uint64(pk, TL_FORMAT_VERSION);
    msgpack_pack_uint64(pk, env->seq);
    msgpack_pack_uint64(pk, env->ts);
    msgpack_pack_bin(pk, TL_HASH_BYTES);
    msgpack_pack_bin_body(pk, env->prev, TL_HASH_BYTES);
    pack_cstr(pk, env->actor, strlen(env->actor));
    pack_cstr(pk, env->kind, strlen(env->kind));
    msgpack_pack_uint64(pk, env->schema);
    if (env->project)
        pack_cstr(pk, env->project, strlen(env->project));
    else
        msgpack_pack_nil(pk);
    return 0;
}

int tl_event_encode(msgpack_sbuffer *buf, const tl_envelope *env, const tl_payload *payload) {
    if (payload->n > TL_PAYLOAD_FIELDS_MAX)
        return tl_fail(TL_EINVALID, "event payload: too many fields");
    tl_field sorted[TL_PAYLOAD_FIELDS_MAX];
    memcpy(sorted, payload->f, payload->n * sizeof *sorted);
    qsort(sorted, payload->n, sizeof *sorted, field_cmp);
    for (size_t i = 1; i < payload->n; i++)
        if (field_cmp(&sorted[i - 1], &sorted[i]) == 0)
            return tl_fail(TL_EINVALID, "event payload: duplicate field %s", sorted[i].key);

    msgpack_sbuffer_clear(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int rc = pack_envelope_head(&pk, env);
    if (rc) return rc;
    msgpack_pack_map(&pk, payload->n);
    for (size_t i = 0; i < payload->n; i++) {
        const tl_field *f = &sorted[i];
        pack_cstr(&pk, f->key, strlen(f->key));
        switch (f->type) {
        case TLV_STR:
            pack_cstr(&pk, f->ptr, f->len);
            break;
        case TLV_UINT:
            msgpack_pack_uint64(&pk, f->u);
            break;
        case TLV_BOOL:
            if (f->u) msgpack_pack_true(&pk); else msgpack_pack_false(&pk);
            break;
        case TLV_BIN:
            msgpack_pack_bin(&pk, f->len);
            msgpack_pack_bin_body(&pk, f->ptr, f->len);
            break;
        case TLV_STRLIST: {
            const char *const *list = f->ptr;
            msgpack_pack_array(&pk, f->len);
            for (size_t j = 0; j < f->len; j++) pack_cstr(&pk, list[j], strlen(list[j]));
            break;
        }
        case TLV_RAW:
            return tl_fail(TL_EINVALID, "event payload: raw fields are not encodable");
        }
    }
    if (buf->size > TL_EVENT_MAX) return tl_fail(TL_ETOOLARGE, "event over %u bytes", TL_EVENT_MAX);
    return 0;
}

typedef struct kv_ref {
    const msgpack_object_kv *kv;
} kv_ref;

static int kv_cmp(const void *a, const void *b) {
    const msgpack_object_kv *x = ((const kv_ref *)a)->kv, *y = ((const kv_ref *)b)->kv;
    return tl_map_key_cmp(x->key.via.str.ptr, x->key.via.str.size, y->key.via.str.ptr, y->key.via.str.size);
}

static int pack_object_canonical(msgpack_packer *pk, const msgpack_object *o, int depth) {
    if (depth > TL_DEPTH_MAX) return tl_fail(TL_EINVALID, "payload nested too deeply");
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return msgpack_pack_nil(pk), 0;
    case MSGPACK_OBJECT_BOOLEAN:
        return (o->via.boolean ? msgpack_pack_true(pk) : msgpack_pack_false(pk)), 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return msgpack_pack_uint64(pk, o->via.u64), 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return msgpack_pack_int64(pk, o->via.i64), 0;
    case MSGPACK_OBJECT_STR:
        pack_cstr(pk, o->via.str.ptr, o->via.str.size);
        return 0;
    case MSGPACK_OBJECT_BIN:
        msgpack_pack_bin(pk, o->via.bin.size);
        msgpack_pack_bin_body(pk, o->via.bin.ptr, o->via.bin.size);
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        msgpack_pack_array(pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int rc = pack_object_canonical(pk, &o->via.array.ptr[i], depth + 1);
            if (rc) return rc;
        }
        return 0;
    case MSGPACK_OBJECT_MAP: {
        uint32_t n = o->via.map.size;
        kv_ref *refs = calloc(n ? n : 1, sizeof *refs);
        if (!refs) return tl_fail(TL_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < n; i++) {
            refs[i].kv = &o->via.map.ptr[i];
            if (refs[i].kv->key.type != MSGPACK_OBJECT_STR) {
                free(refs);
                return tl_fail(TL_EINVALID, "payload map keys must be strings");
            }
        }
        qsort(refs, n, sizeof *refs, kv_cmp);
        for (uint32_t i = 1; i < n; i++)
            if (kv_cmp(&refs[i - 1], &refs[i]) == 0) {
                free(refs);
                return tl_fail(TL_EINVALID, "payload map has a duplicate key");
            }
        msgpack_pack_map(pk, n);
        int rc = 0;
        for (uint32_t i = 0; i < n && !rc; i++) {
            pack_cstr(pk, refs[i].kv->key.via.str.ptr, refs[i].kv->key.via.str.size);
            rc = pack_object_canonical(pk, &refs[i].kv->val, depth + 1);
        }
        free(refs);
        return rc;
    }
    default:
        return tl_fail(TL_EINVALID, "payload holds a float or extension type");
    }
}

int tl_event_encode_object(msgpack_sbuffer *buf, const tl_envelope *env,
                           const msgpack_object *payload) {
    if (payload->type != MSGPACK_OBJECT_MAP) return tl_fail(TL_EINVALID, "payload must be a map");
    msgpack_sbuffer_clear(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int rc = pack_envelope_head(&pk, env);
    /* the payload map sits at depth 2 of the event (the envelope array is depth 1), the
     * depth the decoder counts from: a payload the packer accepts is never refused later */
    if (!rc) rc = pack_object_canonical(&pk, payload, 2);
    if (!rc && buf->size > TL_EVENT_MAX) rc = tl_fail(TL_ETOOLARGE, "event over %u bytes", TL_EVENT_MAX);
    /* what is left to refuse here (a string that is not UTF-8) is the caller's input, not a
     * damaged log: invalid_input, not corrupt */
    if (!rc && tl_msgpack_check_canonical((const uint8_t *)buf->data, buf->size) != 0)
        rc = tl_fail(TL_EINVALID, "payload is not valid: strings must be UTF-8");
    return rc;
}
