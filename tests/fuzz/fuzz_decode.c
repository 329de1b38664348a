/*
 * fuzz_decode.c — the strict event decoder on arbitrary bytes (a damaged or hostile record).
 *
 * Properties checked beyond "no crash, no sanitizer report":
 *  - an event the decoder accepts re-encodes to exactly the same bytes (the canonical form
 *    is unique: what is hashed and signed has one spelling);
 *  - the payload accessors and the JSON rendering of `log --json` work on whatever it accepts;
 *  - the input checks (canonical, caller payload) never read past the bytes they are given
 *    (ASan sees the input in an exactly-sized heap buffer).
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "threadlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void accessors(const tl_event *ev) {
    static const char *const keys[] = {"id", "body_commit", "body_size", "attachments", "message", "status",
                                       "public_key", "format", "pinned", "channel", ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        tl_bytes b, list;
        uint64_t u;
        bool flag;
        size_t count;
        char buf[TL_NAME_MAX + 1];
        if (tl_ev_str(ev, keys[i], &b) == 0) {
            tl_bytes_cstr(&b, buf, sizeof buf);
            (void)tl_bytes_eq(&b, keys[i]);
        }
        (void)tl_ev_bin(ev, keys[i], &b);
        (void)tl_ev_uint(ev, keys[i], &u);
        (void)tl_ev_bool(ev, keys[i], &flag);
        if (tl_ev_list(ev, keys[i], &list, &count) == 0) {
            size_t pos = 0;
            for (size_t k = 0; k < count; k++) {
                tl_bytes item;
                if (tl_ev_list_next(&list, &pos, &item) != 0) break;
            }
        }
    }
}

static void reencode(const tl_event *ev) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, (const char *)ev->payload, ev->payload_len, &off) != MSGPACK_UNPACK_SUCCESS) {
        abort(); /* the decoder accepted a payload msgpack-c cannot read */
    }
    tl_envelope env = {.seq = ev->seq, .ts = ev->ts, .actor = ev->actor, .kind = ev->kind, .schema = ev->schema,
                       .project = ev->has_project ? ev->project : NULL};
    memcpy(env.prev, ev->prev, TL_HASH_BYTES);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (tl_event_encode_object(&buf, &env, &up.data) == 0) {
        if (buf.size != ev->len || memcmp(buf.data, ev->bytes, ev->len) != 0) abort(); /* two spellings */
    }
    msgpack_sbuffer_destroy(&buf);
    msgpack_unpacked_destroy(&up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exactly-sized copy, so that reading one byte too far is an ASan report */
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) return 0;
    if (size) memcpy(bytes, data, size);
    tl_event ev;
    if (tl_event_decode(&ev, bytes, size) == 0) {
        accessors(&ev);
        reencode(&ev);
        tl_event_view view = {.seq = ev.seq, .ts = ev.ts, .kind = ev.kind, .actor = ev.actor,
                              .project = ev.has_project ? ev.project : NULL, .bytes = bytes, .len = size};
        char *json = NULL;
        if (tl_event_json(&view, &json) == 0 && !json) abort();
        tl_free(json);
    }
    if (tl_msgpack_check_canonical(bytes, size) == 0) {
        tl_strbuf sb = {0};
        (void)tl_sb_msgpack_json(&sb, bytes, size);
        free(tl_sb_take(&sb));
    }
    (void)tl_msgpack_check_input(bytes, size);
    (void)tl_utf8_valid(bytes, size);
    free(bytes);
    return 0;
}
