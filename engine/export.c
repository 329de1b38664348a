/*
 * export.c — the history of one project, one account or the whole log, for an auditor who
 * must be able to check it without trusting threadlog (SPEC §4 `export`, docs/EXPORT.md).
 *
 * JSON lines: a header (scope, the log's head, and the key chain: the genesis event and every
 * key.rotated event, whole, so the verifier can check each hand-over), then one line per
 * event of the scope with its decoded fields, its exact stored bytes (base64), its
 * signature, the key that must have signed it, and each committed content with its salt (or
 * "erased"), then a trailer with the count. Every event line stands on its own: bytes +
 * signature + key prove it; the chain (prev = hash of the previous event's bytes) can be
 * checked only between consecutive events, i.e. across a whole-log export.
 *
 * CSV renders one scope as a readable timeline (time, seq, who, channel, what).
 *
 * Everything is read in one read transaction: the export is one consistent snapshot even
 * while writers append. The stored content is exported as it is stored (salt || content),
 * without checking it, so that the verifier, not this code, decides whether it holds.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "state.h"

typedef struct key_change {
    uint64_t from_seq; /* first event this key signs */
    uint8_t pk[TL_PUBKEY_BYTES];
} key_change;

typedef struct exporter {
    tl_log *log;
    MDB_txn *txn;
    const tl_export_options *o;
    tl_export_fn fn;
    void *payload;
    tl_strbuf sb;
    key_change *keys;
    size_t nkeys, capkeys;
    uint64_t *key_seqs; /* the genesis and key.rotated events */
    size_t nkey_seqs, capkey_seqs;
    char project_account[TL_IDBUF]; /* cache for account scope */
    char project_cached[TL_IDBUF];
    bool cached_in;
} exporter;

static const char *const commit_fields[] = {"body_commit", "data_commit"};
#define NCOMMIT (sizeof commit_fields / sizeof commit_fields[0])

static int emit(exporter *x) {
    if (x->sb.oom) return tl_fail(TL_ENOMEM, "out of memory");
    int rc = x->fn(x->sb.ptr ? x->sb.ptr : "", x->sb.len, x->payload);
    x->sb.len = 0;
    if (x->sb.ptr) x->sb.ptr[0] = 0;
    return rc;
}

static void put_b64(tl_strbuf *sb, const uint8_t *p, size_t n) {
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *tmp = malloc(cap);
    if (!tmp) { sb->oom = true; return; }
    sodium_bin2base64(tmp, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    tl_sb_put(sb, "\"", 1);
    tl_sb_puts(sb, tmp);
    tl_sb_put(sb, "\"", 1);
    free(tmp);
}

static void put_hex(tl_strbuf *sb, const uint8_t *p, size_t n) {
    tl_sb_put(sb, "\"", 1);
    tl_sb_hex(sb, p, n);
    tl_sb_put(sb, "\"", 1);
}

static void put_str(tl_strbuf *sb, const char *s) { tl_sb_json_str(sb, s, strlen(s)); }

/* The key that must have signed seq: the last key whose from_seq <= seq. */
static const uint8_t *key_for(const exporter *x, uint64_t seq) {
    const uint8_t *pk = x->nkeys ? x->keys[0].pk : NULL;
    for (size_t i = 0; i < x->nkeys && x->keys[i].from_seq <= seq; i++) pk = x->keys[i].pk;
    return pk;
}

static int push_key(exporter *x, uint64_t from_seq, const uint8_t *pk, uint64_t event_seq) {
    if (x->nkeys == x->capkeys) {
        size_t cap = x->capkeys ? x->capkeys * 2 : 4;
        void *p = realloc(x->keys, cap * sizeof *x->keys);
        if (!p) return tl_fail(TL_ENOMEM, "out of memory");
        x->keys = p;
        x->capkeys = cap;
    }
    x->keys[x->nkeys].from_seq = from_seq;
    memcpy(x->keys[x->nkeys++].pk, pk, TL_PUBKEY_BYTES);
    if (x->nkey_seqs == x->capkey_seqs) {
        size_t cap = x->capkey_seqs ? x->capkey_seqs * 2 : 4;
        void *p = realloc(x->key_seqs, cap * sizeof *x->key_seqs);
        if (!p) return tl_fail(TL_ENOMEM, "out of memory");
        x->key_seqs = p;
        x->capkey_seqs = cap;
    }
    x->key_seqs[x->nkey_seqs++] = event_seq;
    return 0;
}

/* Decode the record at the cursor; TL_ECORRUPT with the sequence in the detail. */
static int decode_record(const MDB_val *k, const MDB_val *v, tl_event *ev, const uint8_t **sig) {
    const uint8_t *bytes;
    size_t len;
    uint64_t seq = k->mv_size == 8 ? tl_seq_from_key(k->mv_data) : 0;
    int rc = tl_record_split(v, &bytes, &len, sig);
    if (!rc) rc = tl_event_decode(ev, bytes, len);
    if (rc) {
        char why[200];
        snprintf(why, sizeof why, "%s", tl_errdetail());
        return tl_fail(TL_ECORRUPT, "event %llu does not decode: %s", (unsigned long long)seq, why);
    }
    if (ev->seq != seq) return tl_fail(TL_ECORRUPT, "event stored at %llu says it is %llu", (unsigned long long)seq,
                                       (unsigned long long)ev->seq);
    return 0;
}

/* First pass: the key chain (genesis key, then every rotation). */
static int read_key_chain(exporter *x) {
    tl_walk walk;
    int rc = tl_walk_init(&walk, x->txn, x->log->db_log, "log");
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(x->txn, x->log->db_log, &cur);
    if (mrc) return tl_fail_mdb(mrc, "open the log");
    MDB_val k, v;
    while (!rc && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        tl_event ev;
        const uint8_t *sig;
        if ((rc = tl_walk_step(&walk, &k)) != 0 || (rc = decode_record(&k, &v, &ev, &sig)) != 0) break;
        bool genesis = strcmp(ev.kind, "log.created") == 0, rotated = strcmp(ev.kind, "key.rotated") == 0;
        if (!genesis && !rotated) continue;
        tl_bytes pk;
        if (tl_ev_bin(&ev, "public_key", &pk) || pk.len != TL_PUBKEY_BYTES) {
            rc = tl_fail(TL_ECORRUPT, "event %llu: %s without a public key", (unsigned long long)ev.seq, ev.kind);
            break;
        }
        rc = push_key(x, genesis ? ev.seq : ev.seq + 1, pk.ptr, ev.seq);
    }
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND) rc = tl_fail_mdb(mrc, "read the log");
    if (!rc && !x->nkeys) rc = tl_fail(TL_ECORRUPT, "the log has no genesis event");
    return rc;
}

/* ---------------------------------------------------------------- scope */

static bool payload_str_is(const tl_event *ev, const char *key, const char *want) {
    tl_bytes b;
    return tl_ev_str(ev, key, &b) == 0 && tl_bytes_eq(&b, want);
}

static bool in_scope(exporter *x, const tl_event *ev) {
    const tl_export_options *o = x->o;
    if (o->project) return ev->has_project && strcmp(ev->project, o->project) == 0;
    if (!o->account) return true;
    if (ev->has_project) {
        if (strcmp(ev->project, x->project_cached) != 0) {
            tl_project_rec p;
            snprintf(x->project_cached, sizeof x->project_cached, "%s", ev->project);
            x->cached_in = tl_state_project(x->txn, x->log, ev->project, &p) == 0 && strcmp(p.account, o->account) == 0;
        }
        return x->cached_in;
    }
    if (strcmp(ev->kind, "account.created") == 0) return payload_str_is(ev, "id", o->account);
    /* members' user.created and the support conversation's events name the account */
    return payload_str_is(ev, "account", o->account);
}

/* ---------------------------------------------------------------- JSON lines */

/* The stored content of a commitment, as stored: salt (32 bytes) || content. */
static void put_content(exporter *x, const uint8_t *commit) {
    tl_strbuf *sb = &x->sb;
    MDB_val v;
    int rc = tl_get(x->txn, x->log->db_content, commit, TL_HASH_BYTES, &v);
    if (rc == TL_ENOTFOUND) {
        tl_sb_puts(sb, "{\"erased\":true}");
        return;
    }
    if (rc) {
        tl_sb_puts(sb, "{\"unreadable\":true}");
        return;
    }
    size_t salt = v.mv_size < TL_SALT_BYTES ? v.mv_size : TL_SALT_BYTES;
    tl_sb_puts(sb, "{\"salt\":");
    put_hex(sb, v.mv_data, salt);
    tl_sb_puts(sb, ",\"data\":");
    put_b64(sb, (const uint8_t *)v.mv_data + salt, v.mv_size - salt);
    tl_sb_puts(sb, "}");
}

static int put_event(exporter *x, const tl_event *ev, const uint8_t *sig, bool with_content) {
    tl_strbuf *sb = &x->sb;
    uint8_t hash[TL_HASH_BYTES];
    tl_hash(hash, ev->bytes, ev->len);
    tl_sb_printf(sb, "{\"type\":\"event\",\"seq\":%llu,\"ts\":%llu,\"actor\":", (unsigned long long)ev->seq,
                 (unsigned long long)ev->ts);
    put_str(sb, ev->actor);
    tl_sb_puts(sb, ",\"kind\":");
    put_str(sb, ev->kind);
    tl_sb_puts(sb, ",\"project\":");
    if (ev->has_project) put_str(sb, ev->project);
    else tl_sb_puts(sb, "null");
    tl_sb_printf(sb, ",\"schema\":%llu,\"prev\":", (unsigned long long)ev->schema);
    put_hex(sb, ev->prev, TL_HASH_BYTES);
    tl_sb_puts(sb, ",\"hash\":");
    put_hex(sb, hash, TL_HASH_BYTES);
    tl_sb_puts(sb, ",\"payload\":");
    int rc = tl_sb_msgpack_json(sb, ev->payload, ev->payload_len);
    if (rc) return tl_fail(TL_ECORRUPT, "event %llu: payload cannot be rendered", (unsigned long long)ev->seq);
    tl_sb_puts(sb, ",\"bytes\":");
    put_b64(sb, ev->bytes, ev->len);
    tl_sb_puts(sb, ",\"signature\":");
    put_hex(sb, sig, TL_SIGNATURE_BYTES);
    tl_sb_puts(sb, ",\"key\":");
    put_hex(sb, key_for(x, ev->seq), TL_PUBKEY_BYTES);
    if (with_content && strncmp(ev->kind, "x.", 2) != 0) { /* an extension's payload commits to nothing stored */
        bool first = true;
        for (size_t f = 0; f < NCOMMIT; f++) {
            tl_bytes c;
            if (tl_ev_bin(ev, commit_fields[f], &c) != 0 || c.len != TL_HASH_BYTES) continue;
            tl_sb_puts(sb, first ? ",\"content\":{" : ",");
            first = false;
            put_str(sb, commit_fields[f]);
            tl_sb_puts(sb, ":");
            put_content(x, c.ptr);
        }
        if (!first) tl_sb_puts(sb, "}");
    }
    tl_sb_puts(sb, "}");
    return 0;
}

/* A copy cut at N (replay --until-*) keeps erased what was erased after N, and its meta says
 * by which removed event (FORMAT.md §2): the verifier needs it to tell such content from
 * content deleted without an erasure. Only in such a copy: "cut_erasures":[{commitment,seq}]. */
static int put_cut_erasures(exporter *x, const tl_head *head) {
    MDB_cursor *cur;
    if (mdb_cursor_open(x->txn, x->log->db_meta, &cur)) return tl_fail(TL_ESTORAGE, "cannot open a cursor");
    size_t plen = sizeof META_ERASED_PREFIX - 1, n = 0;
    MDB_val k = {plen, (void *)META_ERASED_PREFIX}, v;
    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, META_ERASED_PREFIX, plen) != 0) break;
        if (k.mv_size != plen + TL_HASH_BYTES || v.mv_size != 8 || tl_seq_from_key(v.mv_data) <= head->seq) continue;
        tl_sb_puts(&x->sb, n++ ? ",{\"commitment\":" : ",\"cut_erasures\":[{\"commitment\":");
        put_hex(&x->sb, (const uint8_t *)k.mv_data + plen, TL_HASH_BYTES);
        tl_sb_printf(&x->sb, ",\"seq\":%llu}", (unsigned long long)tl_seq_from_key(v.mv_data));
    }
    mdb_cursor_close(cur);
    if (n) tl_sb_puts(&x->sb, "]");
    /* a replica took its records from another log from this seq on, without their content */
    MDB_val since;
    if (tl_get(x->txn, x->log->db_meta, META_REPLICA_SINCE, sizeof META_REPLICA_SINCE - 1, &since) == 0 && since.mv_size == 8)
        tl_sb_printf(&x->sb, ",\"replica_since\":%llu", (unsigned long long)tl_seq_from_key(since.mv_data));
    return 0;
}

static int put_header(exporter *x, const tl_head *head) {
    tl_strbuf *sb = &x->sb;
    const tl_export_options *o = x->o;
    tl_sb_puts(sb, "{\"type\":\"header\",\"threadlog_export\":1,\"format\":");
    tl_sb_printf(sb, "%d,\"scope\":", TL_FORMAT_VERSION);
    if (o->project) { tl_sb_puts(sb, "{\"project\":"); put_str(sb, o->project); tl_sb_puts(sb, "}"); }
    else if (o->account) { tl_sb_puts(sb, "{\"account\":"); put_str(sb, o->account); tl_sb_puts(sb, "}"); }
    else tl_sb_puts(sb, "{\"log\":true}");
    tl_sb_printf(sb, ",\"chain\":\"%s\"", o->project || o->account ? "per_event" : "complete");
    tl_sb_printf(sb, ",\"head\":{\"seq\":%llu,\"hash\":", (unsigned long long)head->seq);
    put_hex(sb, head->hash, TL_HASH_BYTES);
    tl_sb_printf(sb, ",\"ts\":%llu}", (unsigned long long)head->ts);
    tl_sb_puts(sb, ",\"genesis_key\":");
    put_hex(sb, x->keys[0].pk, TL_PUBKEY_BYTES);
    tl_sb_puts(sb, ",\"keys\":[");
    for (size_t i = 0; i < x->nkeys; i++) {
        tl_sb_printf(sb, "%s{\"public_key\":", i ? "," : "");
        put_hex(sb, x->keys[i].pk, TL_PUBKEY_BYTES);
        tl_sb_printf(sb, ",\"from_seq\":%llu,\"introduced_by\":%llu}", (unsigned long long)x->keys[i].from_seq,
                     (unsigned long long)x->key_seqs[i]);
    }
    tl_sb_puts(sb, "],\"key_events\":[");
    /* the events themselves, so the verifier checks every hand-over's signature */
    for (size_t i = 0; i < x->nkey_seqs; i++) {
        uint8_t key[8];
        tl_seq_key(key, x->key_seqs[i]);
        MDB_val k = {8, key}, v;
        tl_event ev;
        const uint8_t *sig;
        int rc = tl_get(x->txn, x->log->db_log, key, 8, &v);
        if (!rc) rc = decode_record(&k, &v, &ev, &sig);
        if (!rc) {
            if (i) tl_sb_puts(sb, ",");
            rc = put_event(x, &ev, sig, false);
        }
        if (rc) return rc;
    }
    tl_sb_puts(sb, "]");
    int rc = put_cut_erasures(x, head);
    if (rc) return rc;
    tl_sb_puts(sb, "}");
    return emit(x);
}

/* ---------------------------------------------------------------- CSV */

static void csv_field(tl_strbuf *sb, const char *s, size_t n, bool last) {
    /* RFC 4180: every field quoted, quotes doubled; newlines stay inside the quotes */
    tl_sb_put(sb, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"') {
            tl_sb_put(sb, s + start, i + 1 - start);
            tl_sb_put(sb, "\"", 1);
            start = i + 1;
        }
    tl_sb_put(sb, s + start, n - start);
    tl_sb_put(sb, last ? "\"" : "\",", last ? 1 : 2);
}

static void iso_time(char out[40], uint64_t ts) {
    time_t secs = (time_t)(ts / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%06lluZ", base, (unsigned long long)(ts % 1000000u));
}

/* Append the text of a committed content: itself when stored, "[erased]" otherwise. */
static void csv_content(exporter *x, tl_strbuf *t, const tl_event *ev, const char *field) {
    tl_bytes c;
    if (tl_ev_bin(ev, field, &c) != 0 || c.len != TL_HASH_BYTES) return;
    const uint8_t *content;
    size_t len;
    int rc = tl_content_get(x->txn, x->log, c.ptr, &content, &len);
    if (rc == TL_ENOTFOUND) tl_sb_puts(t, ": [erased]");
    else if (rc) tl_sb_puts(t, ": [content does not match its commitment]");
    else if (strcmp(field, "body_commit") == 0) { tl_sb_puts(t, ": "); tl_sb_put(t, (const char *)content, len); }
}

static void csv_str(tl_strbuf *t, const tl_event *ev, const char *key, const char *before, const char *after) {
    tl_bytes b;
    if (tl_ev_str(ev, key, &b) != 0) return;
    tl_sb_puts(t, before);
    tl_sb_put(t, (const char *)b.ptr, b.len);
    tl_sb_puts(t, after);
}

/* The channel an event belongs to ("" for project-level and log-level events). */
static const char *csv_channel(exporter *x, const tl_event *ev) {
    const char *k = ev->kind;
    static const char *const names[] = {"", "notes", "chat", "ambassador", "support"};
    tl_bytes b;
    char id[TL_IDBUF];
    if (!strcmp(k, "note.added")) return "notes";
    if (!strcmp(k, "topic.created")) return "chat";
    if (!strcmp(k, "message.sent") || !strcmp(k, "message.replied")) {
        if (tl_ev_str(ev, "channel", &b) == 0)
            for (int i = 1; i <= 4; i++)
                if (tl_bytes_eq(&b, names[i])) return names[i];
        return "";
    }
    const char *key = !strcmp(k, "content.erased") ? "target" : !strncmp(k, "message.", 8) ? "message" : NULL;
    if (!strcmp(k, "attachment.uploaded")) key = "id";
    if (!key || tl_ev_str(ev, key, &b) != 0 || tl_bytes_cstr(&b, id, sizeof id) != 0) return "";
    /* ids are unique per kind: a message and an attachment may share one, so the event says
     * which it names */
    bool attachment = !strcmp(k, "attachment.uploaded");
    if (!strcmp(k, "content.erased"))
        attachment = tl_ev_str(ev, "target_kind", &b) == 0 && tl_bytes_eq(&b, "attachment");
    tl_attachment_rec a;
    if (attachment) {
        if (tl_state_attachment(x->txn, x->log, id, &a) != 0) return "";
        if (!a.used_by[0]) return a.project[0] ? "" : "support";
        memcpy(id, a.used_by, sizeof id);
    }
    tl_message_rec m;
    if (tl_state_message(x->txn, x->log, id, &m) == 0 && m.channel >= 1 && m.channel <= 4) return names[m.channel];
    return "";
}

static void csv_what(exporter *x, tl_strbuf *t, const tl_event *ev) {
    const char *k = ev->kind;
    tl_sb_puts(t, k);
    if (!strcmp(k, "project.created")) {
        csv_str(t, ev, "type", " ", "");
        csv_str(t, ev, "title", " \"", "\"");
        csv_str(t, ev, "status", ", status ", "");
        csv_str(t, ev, "ambassador", ", ambassador ", "");
        csv_str(t, ev, "ambassador_message_id", ", ambassador message ", "");
        csv_content(x, t, ev, "body_commit");
    } else if (!strcmp(k, "project.status_changed")) {
        csv_str(t, ev, "previous", ": ", " -> ");
        csv_str(t, ev, "status", "", "");
    } else if (!strcmp(k, "topic.created")) {
        csv_str(t, ev, "id", " ", "");
        csv_str(t, ev, "title", " \"", "\"");
        csv_str(t, ev, "message_id", ", first message ", "");
        csv_content(x, t, ev, "body_commit");
    } else if (!strcmp(k, "message.sent") || !strcmp(k, "message.replied") || !strcmp(k, "note.added")) {
        csv_str(t, ev, "id", " ", "");
        csv_str(t, ev, "parent", " (reply to ", ")");
        csv_str(t, ev, "topic", " in topic ", "");
        tl_bytes list, item;
        size_t n = 0, pos = 0;
        if (tl_ev_list(ev, "attachments", &list, &n) == 0 && n) {
            tl_sb_puts(t, " with ");
            for (size_t i = 0; i < n && tl_ev_list_next(&list, &pos, &item) == 0; i++) {
                if (i) tl_sb_puts(t, ", ");
                tl_sb_put(t, (const char *)item.ptr, item.len);
            }
        }
        csv_content(x, t, ev, "body_commit");
    } else if (!strcmp(k, "attachment.uploaded")) {
        uint64_t size = 0;
        csv_str(t, ev, "id", " ", "");
        csv_str(t, ev, "name", " \"", "\"");
        csv_str(t, ev, "mime", " (", "");
        tl_ev_uint(ev, "data_size", &size);
        tl_sb_printf(t, ", %llu bytes)", (unsigned long long)size);
        csv_content(x, t, ev, "data_commit");
    } else if (!strncmp(k, "message.", 8)) {
        csv_str(t, ev, "message", " ", "");
    } else if (!strcmp(k, "content.erased")) {
        csv_str(t, ev, "target_kind", " ", "");
        csv_str(t, ev, "target", " ", "");
        csv_str(t, ev, "reason", ": ", "");
    } else if (!strcmp(k, "account.created") || !strcmp(k, "user.created")) {
        csv_str(t, ev, "id", " ", "");
        csv_str(t, ev, "role", " (", ")");
        csv_str(t, ev, "name", " \"", "\"");
    }
}

static int put_csv_row(exporter *x, const tl_event *ev, tl_strbuf *what) {
    char when[40], seq[24];
    iso_time(when, ev->ts);
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)ev->seq);
    const char *ch = csv_channel(x, ev);
    what->len = 0;
    csv_what(x, what, ev);
    if (what->oom) return tl_fail(TL_ENOMEM, "out of memory");
    csv_field(&x->sb, when, strlen(when), false);
    csv_field(&x->sb, seq, strlen(seq), false);
    csv_field(&x->sb, ev->actor, strlen(ev->actor), false);
    csv_field(&x->sb, ch, strlen(ch), false);
    csv_field(&x->sb, what->ptr ? what->ptr : "", what->len, true);
    return emit(x);
}

/* ---------------------------------------------------------------- the walk */

int tl_export(tl_log *log, const tl_export_options *opts, tl_export_fn fn, void *payload) {
    tl_export_options defaults = TL_EXPORT_OPTIONS_INIT;
    if (!log || !fn) return tl_fail(TL_EUSAGE, "tl_export needs a log and a line callback");
    if (!opts) opts = &defaults;
    if (opts->version != TL_EXPORT_OPTIONS_VERSION)
        return tl_fail(TL_EUSAGE, "unknown tl_export_options version %u", opts->version);
    if (opts->project && opts->account) return tl_fail(TL_EUSAGE, "export one project or one account, not both");
    /* a syntactically bad id is invalid_input, before any lookup (SPEC "Ids") */
    if (opts->project && !tl_id_valid(opts->project))
        return tl_fail(TL_EINVALID, "\"%.80s\" is not a valid project id", opts->project);
    if (opts->account && !tl_id_valid(opts->account))
        return tl_fail(TL_EINVALID, "\"%.80s\" is not a valid account id", opts->account);
    if (opts->format != TL_EXPORT_JSONL && opts->format != TL_EXPORT_CSV)
        return tl_fail(TL_EUSAGE, "unknown export format %d", opts->format);

    exporter x;
    memset(&x, 0, sizeof x);
    x.log = log;
    x.o = opts;
    x.fn = fn;
    x.payload = payload;
    int rc = tl_rtxn_begin(log, &x.txn);
    if (rc) return rc;
    tl_head head;
    tl_strbuf what = {0};
    MDB_cursor *cur = NULL;
    if ((rc = tl_head_read(x.txn, log, &head)) != 0) goto out;
    /* an unknown scope is an error, not an empty export */
    if (opts->project) {
        tl_project_rec p;
        if ((rc = tl_state_project(x.txn, log, opts->project, &p)) != 0) {
            if (rc == TL_ENOTFOUND) rc = tl_fail(TL_ENOTFOUND, "unknown project %.80s", opts->project);
            goto out;
        }
    } else if (opts->account) {
        tl_account_rec a;
        if ((rc = tl_state_account(x.txn, log, opts->account, &a)) != 0) {
            if (rc == TL_ENOTFOUND) rc = tl_fail(TL_ENOTFOUND, "unknown account %.80s", opts->account);
            goto out;
        }
    }
    if ((rc = read_key_chain(&x)) != 0) goto out;
    if (opts->format == TL_EXPORT_JSONL) rc = put_header(&x, &head);
    else {
        tl_sb_puts(&x.sb, "time,seq,who,channel,what");
        rc = emit(&x);
    }
    if (rc) goto out;
    tl_walk walk; /* a damaged page must not send the export round in circles */
    if ((rc = tl_walk_init(&walk, x.txn, log->db_log, "log")) != 0) goto out;
    int mrc = mdb_cursor_open(x.txn, log->db_log, &cur);
    if (mrc) { rc = tl_fail_mdb(mrc, "open the log"); goto out; }
    MDB_val k, v;
    uint64_t count = 0, last = 0;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        tl_event ev;
        const uint8_t *sig;
        if ((rc = tl_walk_step(&walk, &k)) != 0 || (rc = decode_record(&k, &v, &ev, &sig)) != 0) goto out;
        if (!in_scope(&x, &ev)) continue;
        if (opts->format == TL_EXPORT_JSONL) {
            if ((rc = put_event(&x, &ev, sig, true)) != 0 || (rc = emit(&x)) != 0) goto out;
        } else if ((rc = put_csv_row(&x, &ev, &what)) != 0) {
            goto out;
        }
        count++;
        last = ev.seq;
    }
    if (mrc != MDB_NOTFOUND) { rc = tl_fail_mdb(mrc, "read the log"); goto out; }
    if (opts->format == TL_EXPORT_JSONL) {
        tl_sb_printf(&x.sb, "{\"type\":\"end\",\"events\":%llu,\"last_seq\":%llu}", (unsigned long long)count,
                     (unsigned long long)last);
        rc = emit(&x);
    }
out:
    if (cur) mdb_cursor_close(cur);
    tl_rtxn_end(log, x.txn);
    free(x.sb.ptr);
    free(what.ptr);
    free(x.keys);
    free(x.key_seqs);
    return rc;
}
