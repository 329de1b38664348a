/*
 * verify.c — proving the log was not altered, and signed checkpoints.
 *
 * verify walks the records in order and checks, for each: the key is the next sequence
 * number; the record decodes strictly; the event says it is that sequence; it carries the
 * BLAKE2b-256 of the previous event's bytes; time does not go back; the genesis is first and
 * only first; the signature holds for the key current at that point of the key chain
 * (key.rotated hands over to the next key); content still stored matches its commitment, and
 * content no longer stored was erased by a content.erased event naming its commitment (a
 * deletion behind the log's back is not an erasure); the head record names the key current
 * at its event.
 * Cheap checks run in order; signatures are gathered in chunks and checked on several
 * threads, and the first bad sequence over both kinds of check is reported.
 */
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

#define CHUNK 8192

typedef struct sig_item {
    const uint8_t *bytes;
    size_t len;
    const uint8_t *sig;
    uint64_t seq;
    unsigned key;
    bool bad;
} sig_item;

typedef struct verify_state {
    uint8_t (*keys)[TL_PUBKEY_BYTES];
    uint64_t *key_from; /* the event that made keys[i] current: 1 (genesis) or its key.rotated */
    size_t nkeys, capkeys;
    sig_item *items;
    size_t nitems;
    bool no_signatures; /* tl_verify_chain: everything but the signatures */
    tl_content_audit content;
} verify_state;

bool tl_genesis_meta_agrees(MDB_txn *txn, tl_log *log, const tl_event *genesis, const uint8_t *pk) {
    MDB_val v;
    uint64_t limit;
    if (tl_get(txn, log->db_meta, META_GENESIS_KEY, sizeof META_GENESIS_KEY - 1, &v) != 0 ||
        v.mv_size != TL_PUBKEY_BYTES || memcmp(v.mv_data, pk, TL_PUBKEY_BYTES) != 0)
        return false;
    if (tl_get(txn, log->db_meta, META_MAX_ATTACHMENT, sizeof META_MAX_ATTACHMENT - 1, &v) != 0 || v.mv_size != 8 ||
        tl_ev_uint(genesis, "max_attachment", &limit) != 0 || tl_seq_from_key(v.mv_data) != limit)
        return false;
    return true;
}

static void check_sig(size_t i, void *ctx) {
    verify_state *vs = ctx;
    sig_item *it = &vs->items[i];
    it->bad = tl_verify_sig(it->sig, it->bytes, it->len, vs->keys[it->key]) != 0;
}

static int add_key(verify_state *vs, const uint8_t *pk, uint64_t from) {
    if (vs->nkeys == vs->capkeys) {
        size_t cap = vs->capkeys ? vs->capkeys * 2 : 4;
        void *p = realloc(vs->keys, cap * TL_PUBKEY_BYTES);
        if (!p) return tl_fail(TL_ENOMEM, "out of memory");
        vs->keys = p;
        uint64_t *f = realloc(vs->key_from, cap * sizeof *f);
        if (!f) return tl_fail(TL_ENOMEM, "out of memory");
        vs->key_from = f;
        vs->capkeys = cap;
    }
    vs->key_from[vs->nkeys] = from;
    memcpy(vs->keys[vs->nkeys++], pk, TL_PUBKEY_BYTES);
    return 0;
}

/* The key current once event seq is in the log (the one the head names at seq, and so the
 * one a checkpoint of seq is signed with): the last key made current at or before seq. */
static const uint8_t *key_at(const verify_state *vs, uint64_t seq) {
    const uint8_t *k = NULL;
    for (size_t i = 0; i < vs->nkeys && vs->key_from[i] <= seq; i++) k = vs->keys[i];
    return k;
}

/* Verify the gathered signatures; returns the seq of the first bad one, or 0. */
static uint64_t flush_sigs(verify_state *vs, unsigned threads) {
    if (vs->no_signatures) {
        vs->nitems = 0;
        return 0;
    }
    tl_parallel_for(vs->nitems, threads, check_sig, vs);
    uint64_t bad = 0;
    for (size_t i = 0; i < vs->nitems; i++)
        if (vs->items[i].bad) { bad = vs->items[i].seq; break; }
    vs->nitems = 0;
    return bad;
}

static void report_bad(tl_verify_report *r, uint64_t seq, const char *fmt, const char *detail) {
    if (r->first_bad_seq && r->first_bad_seq <= seq) return;
    r->first_bad_seq = seq;
    snprintf(r->reason, sizeof r->reason, fmt, (unsigned long long)seq, detail ? detail : "");
}

static int checkpoint_check(MDB_txn *txn, tl_log *log, const char *json, verify_state *vs,
                            uint64_t last_seq, tl_verify_report *r);

static int verify_walk(tl_log *log, const tl_verify_options *opts, tl_verify_report *r, bool signatures);

int tl_log_verify(tl_log *log, const tl_verify_options *opts, tl_verify_report *r) {
    if (!log || !r) return tl_fail(TL_EUSAGE, "tl_log_verify: log and report are required");
    tl_verify_options defaults = TL_VERIFY_OPTIONS_INIT;
    if (!opts) opts = &defaults;
    if (opts->version != TL_VERIFY_OPTIONS_VERSION)
        return tl_fail(TL_EUSAGE, "unknown tl_verify_options version %u", opts->version);
    return verify_walk(log, opts, r, true);
}

int tl_verify_chain(tl_log *log, const tl_verify_options *opts, tl_verify_report *r) {
    return verify_walk(log, opts, r, false);
}

static int verify_walk(tl_log *log, const tl_verify_options *opts, tl_verify_report *r, bool signatures) {
    memset(r, 0, sizeof *r);
    unsigned threads = opts->threads ? opts->threads : 2;
    verify_state vs = {0};
    vs.no_signatures = !signatures;
    vs.items = malloc(CHUNK * sizeof *vs.items);
    if (!vs.items) return tl_fail(TL_ENOMEM, "out of memory");

    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) { free(vs.items); return rc; }
    tl_head head;
    rc = tl_head_read(txn, log, &head);
    /* a damaged head record is a finding about the log, like any other: the events are
     * still walked, and the report names the last one (the event the head should name) */
    bool head_damaged = rc == TL_ECORRUPT;
    if (head_damaged) {
        memset(&head, 0, sizeof head);
        rc = 0;
    }
    if (!rc) rc = tl_freelist_check(txn, log->env); /* the next write would trust it */
    MDB_cursor *cur = NULL;
    if (!rc) tl_content_audit_init(&vs.content, txn, log);
    r->replica_since = vs.content.replica_since;
    if (!rc && mdb_cursor_open(txn, log->db_log, &cur)) rc = tl_fail(TL_ESTORAGE, "cannot open a cursor");
    if (rc) { tl_rtxn_end(log, txn); free(vs.items); return rc; }

    uint8_t prev_hash[TL_HASH_BYTES] = {0};
    uint64_t expect = 1, prev_ts = 0;
    bool pinned_seen = opts->pinned_key == NULL;
    MDB_val k, v;
    int mrc;
    while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint64_t seq = k.mv_size == 8 ? tl_seq_from_key(k.mv_data) : 0;
        if (seq != expect) {
            report_bad(r, expect, seq > expect ? "event %llu is missing%s" : "event %llu is out of order%s", "");
            break;
        }
        const uint8_t *bytes, *sig;
        size_t len;
        tl_event ev;
        if (tl_record_split(&v, &bytes, &len, &sig) || tl_event_decode(&ev, bytes, len)) {
            report_bad(r, seq, "event %llu does not decode: %s", tl_errdetail());
            break;
        }
        if (ev.seq != seq) { report_bad(r, seq, "event %llu carries another sequence number%s", ""); break; }
        if (memcmp(ev.prev, prev_hash, TL_HASH_BYTES) != 0) {
            report_bad(r, seq, "event %llu does not chain to the previous event%s", "");
            break;
        }
        if (ev.ts < prev_ts) { report_bad(r, seq, "event %llu goes back in time%s", ""); break; }
        bool genesis = strcmp(ev.kind, "log.created") == 0;
        if (genesis != (seq == 1)) {
            report_bad(r, seq, "event %llu: the genesis event must be first and only first%s", "");
            break;
        }
        if (genesis) {
            tl_bytes pk;
            uint64_t fmt;
            if (tl_ev_bin(&ev, "public_key", &pk) || pk.len != TL_PUBKEY_BYTES || tl_ev_uint(&ev, "format", &fmt) ||
                fmt != TL_FORMAT_VERSION) {
                report_bad(r, seq, "event %llu: genesis without a public key or format%s", "");
                break;
            }
            if (add_key(&vs, pk.ptr, seq)) { rc = TL_ENOMEM; break; }
            /* meta's unsigned copies of the genesis (FORMAT.md) must say what it says */
            if (!vs.no_signatures && !tl_genesis_meta_agrees(txn, log, &ev, pk.ptr)) { /* with the signatures, as replay --verify */
                report_bad(r, seq, "event %llu: the log's meta records another genesis key or attachment limit than "
                                   "the genesis event%s", "");
                break;
            }
        }
        if (opts->pinned_key && !pinned_seen && memcmp(vs.keys[vs.nkeys - 1], opts->pinned_key, TL_PUBKEY_BYTES) == 0)
            pinned_seen = true;
        sig_item *it = &vs.items[vs.nitems++];
        it->bytes = bytes;
        it->len = len;
        it->sig = sig;
        it->seq = seq;
        it->key = (unsigned)vs.nkeys - 1;
        if (strcmp(ev.kind, "key.rotated") == 0) {
            tl_bytes pk;
            if (tl_ev_bin(&ev, "public_key", &pk) || pk.len != TL_PUBKEY_BYTES) {
                report_bad(r, seq, "event %llu: key.rotated without a public key%s", "");
                break;
            }
            if (add_key(&vs, pk.ptr, seq)) { rc = TL_ENOMEM; break; }
            if (opts->pinned_key && memcmp(pk.ptr, opts->pinned_key, TL_PUBKEY_BYTES) == 0) pinned_seen = true;
        }
        int crc = opts->check_content ? tl_content_audit_event(&vs.content, txn, log, &ev) : 0;
        if (crc == TL_ENOMEM) { rc = crc; break; }
        if (crc) {
            report_bad(r, seq, "event %llu: stored content does not match its commitment%s", "");
            break;
        }
        tl_hash(prev_hash, bytes, len);
        prev_ts = ev.ts;
        r->events++;
        expect++;
        if (vs.nitems == CHUNK) {
            uint64_t bad = flush_sigs(&vs, threads);
            if (bad) { report_bad(r, bad, "event %llu: bad signature%s", ""); break; }
            if (opts->progress) opts->progress(r->events, head.seq, opts->progress_payload);
        }
    }
    if (!rc && vs.nitems) {
        uint64_t bad = flush_sigs(&vs, threads);
        if (bad) report_bad(r, bad, "event %llu: bad signature%s", "");
    }
    if (mrc && mrc != MDB_NOTFOUND && !r->first_bad_seq) report_bad(r, expect, "event %llu cannot be read: %s", mdb_strerror(mrc));
    if (!rc && !r->first_bad_seq) {
        /* a removed tail leaves the head record pointing past the last event; an event
         * added behind the writer's back lies beyond it */
        if (head_damaged)
            report_bad(r, expect > 1 ? expect - 1 : 1, "event %llu: the log's head record, which names it, is damaged%s", "");
        else if (expect - 1 < head.seq)
            report_bad(r, expect, "event %llu is missing (the log's head is further on)%s", "");
        else if (expect - 1 > head.seq)
            report_bad(r, head.seq + 1, "event %llu lies beyond the head the log recorded%s", "");
        else if (head.seq && memcmp(head.hash, prev_hash, TL_HASH_BYTES) != 0)
            report_bad(r, head.seq, "event %llu is not the head the log recorded%s", "");
        else if (expect == 1)
            report_bad(r, 1, "event %llu (genesis) is missing%s", "");
        else if (head.seq && head.ts != prev_ts)
            report_bad(r, head.seq, "event %llu: the log's head record names another time%s", "");
        else if (memcmp(head.pk, vs.keys[vs.nkeys - 1], TL_PUBKEY_BYTES) != 0)
            report_bad(r, head.seq, "event %llu: the log's head record names another key than the key chain's%s", "");
    }
    if (!rc && !r->first_bad_seq) {
        /* only a complete walk has seen every erasure that could account for missing content */
        uint64_t bad;
        rc = tl_content_audit_finish(&vs.content, txn, log, head.seq, &bad);
        if (!rc && bad) report_bad(r, bad, "event %llu: its content is gone, yet no content.erased event erased it%s", "");
    }
    r->contents = vs.content.contents;
    if (!rc && !r->first_bad_seq && !pinned_seen)
        report_bad(r, 1, "event %llu: the pinned key is neither the genesis key nor a rotated key%s", "");
    if (!rc && !r->first_bad_seq && opts->checkpoint_json)
        rc = checkpoint_check(txn, log, opts->checkpoint_json, &vs, expect - 1, r);
    if (opts->progress && !rc) opts->progress(r->events, head.seq, opts->progress_payload);
    mdb_cursor_close(cur);
    tl_rtxn_end(log, txn);
    free(vs.items);
    free(vs.keys);
    free(vs.key_from);
    tl_content_audit_free(&vs.content);
    if (rc) return rc;
    if (r->first_bad_seq) return tl_fail(TL_ECORRUPT, "%s", r->reason);
    return 0;
}

/* ================================================================ checkpoints */

/* The signed message: context || seq (8 bytes BE) || hash (32) || ts (8 bytes BE). */
static void checkpoint_message(uint8_t *msg, uint64_t seq, const uint8_t *hash, uint64_t ts) {
    size_t c = sizeof TL_CHECKPOINT_CONTEXT - 1;
    memcpy(msg, TL_CHECKPOINT_CONTEXT, c);
    tl_seq_key(msg + c, seq);
    memcpy(msg + c + 8, hash, TL_HASH_BYTES);
    tl_seq_key(msg + c + 8 + TL_HASH_BYTES, ts);
}
#define CHECKPOINT_MSG_BYTES (sizeof TL_CHECKPOINT_CONTEXT - 1 + 8 + TL_HASH_BYTES + 8)

int tl_log_checkpoint(tl_log *log, char **json) {
    if (json) *json = NULL;
    if (!log || !json) return tl_fail(TL_EUSAGE, "tl_log_checkpoint: log and json are required");
    if (!log->have_key) return tl_fail(TL_EKEY, "a checkpoint is signed with the writer key: open the log writable");
    /* The head and the key must belong together. The head is read in a snapshot and the key
     * under key_mu, which can straddle a rotation of this process (committed, its key not yet
     * installed) or follow one by another process (this one installs the new key only when it
     * next writes): then the key the head names is taken from its key file, as a writer of
     * this process would, and a few tries settle an in-process rotation. No writer lock: a
     * thread with an open batch, or a callback, may take a checkpoint. */
    tl_head head;
    tl_keypair key;
    int rc = 0;
    bool matched = false;
    for (int attempt = 0; attempt < 5 && !matched && !rc; attempt++) {
        MDB_txn *txn;
        if ((rc = tl_rtxn_begin(log, &txn)) != 0) break;
        rc = tl_head_read(txn, log, &head);
        if (!rc) rc = tl_head_check(txn, log, &head); /* a checkpoint is signed on the head's word */
        tl_rtxn_end(log, txn);
        if (rc) break;
        pthread_mutex_lock(&log->key_mu);
        key = log->key;
        pthread_mutex_unlock(&log->key_mu);
        matched = memcmp(head.pk, key.pk, TL_PUBKEY_BYTES) == 0;
        if (!matched) {
            tl_keypair_wipe(&key);
            matched = tl_keyfile_find(log->dir, head.pk, &key, NULL) == 0;
        }
        if (!matched) sched_yield();
    }
    if (rc) return rc;
    if (!matched) return tl_fail(TL_EKEY, "the writer key of the log's head is in no key file of %s", log->dir);
    uint8_t msg[CHECKPOINT_MSG_BYTES], sig[TL_SIGNATURE_BYTES];
    checkpoint_message(msg, head.seq, head.hash, head.ts);
    tl_sign(sig, msg, sizeof msg, &key);
    tl_keypair_wipe(&key);
    char hash_hex[2 * TL_HASH_BYTES + 1], key_hex[TL_PUBKEY_HEX_SIZE], sig_hex[2 * TL_SIGNATURE_BYTES + 1];
    tl_hex(hash_hex, head.hash, TL_HASH_BYTES);
    tl_hex(key_hex, head.pk, TL_PUBKEY_BYTES);
    tl_hex(sig_hex, sig, TL_SIGNATURE_BYTES);
    tl_strbuf sb = {0};
    tl_sb_printf(&sb, "{\"seq\":%llu,\"hash\":\"%s\",\"ts\":%llu,\"key\":\"%s\",\"signature\":\"%s\"}",
                 (unsigned long long)head.seq, hash_hex, (unsigned long long)head.ts, key_hex, sig_hex);
    *json = tl_sb_take(&sb);
    return *json ? 0 : tl_fail(TL_ENOMEM, "out of memory");
}

static int checkpoint_check(MDB_txn *txn, tl_log *log, const char *text, verify_state *vs,
                            uint64_t last_seq, tl_verify_report *r) {
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_int_t seq = 0, ts = 0;
    const char *hash_hex = NULL, *key_hex = NULL, *sig_hex = NULL;
    if (!root || json_unpack(root, "{s:I,s:s,s:I,s:s,s:s}", "seq", &seq, "hash", &hash_hex, "ts", &ts, "key",
                             &key_hex, "signature", &sig_hex) != 0 || seq < 1 || ts < 0) {
        json_decref(root);
        return tl_fail(TL_EINVALID, "the checkpoint is not {\"seq\",\"hash\",\"ts\",\"key\",\"signature\"}");
    }
    uint8_t hash[TL_HASH_BYTES], key[TL_PUBKEY_BYTES], sig[TL_SIGNATURE_BYTES];
    if (tl_unhex(hash, sizeof hash, hash_hex) || tl_unhex(key, sizeof key, key_hex) ||
        tl_unhex(sig, sizeof sig, sig_hex)) {
        json_decref(root);
        return tl_fail(TL_EINVALID, "the checkpoint has a malformed hex field");
    }
    json_decref(root);
    uint8_t msg[CHECKPOINT_MSG_BYTES];
    checkpoint_message(msg, (uint64_t)seq, hash, (uint64_t)ts);
    if (tl_verify_sig(sig, msg, sizeof msg, key) != 0) {
        report_bad(r, (uint64_t)seq, "checkpoint at %llu: its signature is not valid%s", "");
        return 0;
    }
    bool known = false;
    for (size_t i = 0; i < vs->nkeys && !known; i++) known = memcmp(vs->keys[i], key, TL_PUBKEY_BYTES) == 0;
    if (!known) {
        report_bad(r, (uint64_t)seq, "checkpoint at %llu is signed by a key the log never used%s", "");
        return 0;
    }
    if ((uint64_t)seq > last_seq) {
        report_bad(r, last_seq + 1, "event %llu is missing: the log ends before the checkpoint%s", "");
        return 0;
    }
    /* a key retired before seq (or made current only after it) says nothing about seq: a
     * leaked old key must not be able to vouch for a history it no longer signs */
    const uint8_t *current = key_at(vs, (uint64_t)seq);
    if (!current || memcmp(current, key, TL_PUBKEY_BYTES) != 0) {
        report_bad(r, (uint64_t)seq, "checkpoint at %llu is not signed by the key current at its sequence%s", "");
        return 0;
    }
    uint8_t k8[8];
    tl_seq_key(k8, (uint64_t)seq);
    MDB_val v;
    const uint8_t *bytes, *s;
    size_t len;
    uint8_t got[TL_HASH_BYTES];
    if (tl_get(txn, log->db_log, k8, 8, &v) || tl_record_split(&v, &bytes, &len, &s)) {
        report_bad(r, (uint64_t)seq, "event %llu (the checkpoint's) cannot be read%s", "");
        return 0;
    }
    tl_hash(got, bytes, len);
    tl_event ev;
    if (memcmp(got, hash, TL_HASH_BYTES) != 0)
        report_bad(r, (uint64_t)seq, "event %llu differs from the checkpoint: the log was rewritten%s", "");
    else if (tl_event_decode(&ev, bytes, len) != 0 || ev.ts != (uint64_t)ts) /* signed, yet not that event's time */
        report_bad(r, (uint64_t)seq, "event %llu's time differs from the checkpoint's%s", "");
    return 0;
}
