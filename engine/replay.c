/*
 * replay.c — rebuilding every applier's databases (the domain state and the projections)
 * from the log alone (SPEC §4 `replay`).
 *
 * In place: ONE write transaction clears every registered applier's databases, walks the
 * records in order, runs every applier for each event exactly as the append that stored it
 * did (tl_wtxn_reapply), rewrites "applied/<name>" and commits. Readers keep the old
 * projections until the commit swaps the new ones in; writers wait for the commit (LMDB has
 * one writer at a time, across processes). The head is never rewritten in place: a log whose
 * records do not end at the recorded head is refused, so replay can never hide a removed tail.
 *
 * Into a directory: a compacted copy of a read snapshot of the environment is written to the
 * new directory (the source keeps serving readers and writers meanwhile), opened without a
 * writer key (TL_OPEN_NOKEY: the copy can never be appended to, so it can never fork the
 * log), optionally cut after sequence N — records after N and the content they committed to
 * deleted, the head moved to N with N's hash, time and the key current then — and replayed
 * in place there. Queries on the copy then answer as of N. Content erased after N stays
 * erased in the copy: an erasure is a legal obligation, not part of the history to restore.
 * The copy's directory, the copy itself and the cut are replay_copy.c's.
 *
 * The walk checks sequence, chain, time order, the genesis and the key chain in order, with
 * or without verification: an event whose bytes were altered breaks the next one's link (or,
 * the last one, the recorded head), so an unverified replay refuses it too. With
 * verification, it also checks content commitments as verify does (content_audit.c), gathers
 * events in chunks, checks the chunk's signatures on several threads and only then applies
 * the chunk. The first bad event aborts the transaction, so
 * nothing of a damaged log is swapped in.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "content_table.h"
#include "error.h"
#include "log.h"

#define CHUNK 8192

/* Events per chunk. THREADLOG_TEST_REPLAY_CHUNK (a test-only knob, 16..8192) makes small
 * logs cross many chunk boundaries, so tests reach every state of the pipeline. */
static size_t chunk_size(void) {
    const char *s = getenv("THREADLOG_TEST_REPLAY_CHUNK");
    if (s && *s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (!*end && v >= 16 && v <= CHUNK) return v;
    }
    return CHUNK;
}

typedef struct chunk_item {
    tl_event ev;
    const uint8_t *sig;
    unsigned key; /* index into the keys: the key that must have signed the event */
    bool bad;
    bool hashed;  /* hash holds H(event bytes), computed by the walk's chain check */
    uint8_t hash[TL_HASH_BYTES];
    const uint8_t *body_commit; /* the event's body commitment, if any: prefetched before it is applied */
} chunk_item;

/*
 * Signature checks of one chunk, shared between helper threads started when the chunk is
 * full and the main thread, which joins in once it has applied the chunk before. Keys are
 * copied: the main thread may meet a rotation (and grow its list) meanwhile.
 */
typedef struct sig_job {
    chunk_item *items; /* NULL: no job */
    size_t n;
    uint8_t (*keys)[TL_PUBKEY_BYTES];
    atomic_size_t next;
    pthread_t tids[15];
    unsigned nthreads;
} sig_job;

typedef struct replay_state {
    tl_wtxn *w;
    const tl_replay_options *o;
    unsigned threads;
    uint64_t until;       /* last sequence to apply */
    bool cut;             /* the copy was cut after `until`: its file still holds the tail's bytes */
    uint64_t total;       /* for progress */
    size_t chunk;         /* events per chunk */
    chunk_item *bufs[2];  /* bufs[fill] is being gathered; bufs[1 - fill] is verified by job */
    size_t nbuf[2];
    int fill;
    bool pending;         /* bufs[1 - fill] holds a gathered chunk not applied yet */
    sig_job job;
    uint8_t (*keys)[TL_PUBKEY_BYTES];
    size_t nkeys, capkeys;
    uint8_t prev_hash[TL_HASH_BYTES];
    uint64_t prev_ts;
    uint64_t done;
    tl_verify_report *vr;
    tl_content_audit content; /* with verification: content commitments, as verify checks them */
    tl_content_table table;   /* the content database, read once for the walk (content_table.c) */
} replay_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report_bad(tl_verify_report *r, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report_bad(tl_verify_report *r, uint64_t seq, const char *fmt, ...) {
    if (r->first_bad_seq && r->first_bad_seq <= seq) return;
    r->first_bad_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static int add_key(replay_state *rs, const uint8_t *pk) {
    if (rs->nkeys == rs->capkeys) {
        size_t cap = rs->capkeys ? rs->capkeys * 2 : 4;
        void *p = realloc(rs->keys, cap * TL_PUBKEY_BYTES);
        if (!p) return tl_fail(TL_ENOMEM, "out of memory");
        rs->keys = p;
        rs->capkeys = cap;
    }
    memcpy(rs->keys[rs->nkeys++], pk, TL_PUBKEY_BYTES);
    return 0;
}

static void *sig_worker(void *arg) {
    sig_job *j = arg;
    for (;;) {
        size_t start = atomic_fetch_add(&j->next, 32);
        if (start >= j->n) break;
        size_t end = start + 32 < j->n ? start + 32 : j->n;
        for (size_t i = start; i < end; i++) {
            chunk_item *it = &j->items[i];
            it->bad = tl_verify_sig(it->sig, it->ev.bytes, it->ev.len, j->keys[it->key]) != 0;
        }
    }
    return NULL;
}

/* Start checking items[0, n) on `helpers` threads besides the caller's. */
static int sig_start(replay_state *rs, chunk_item *items, size_t n, unsigned helpers) {
    sig_job *j = &rs->job;
    j->keys = malloc(rs->nkeys * TL_PUBKEY_BYTES + 1);
    if (!j->keys) return tl_fail(TL_ENOMEM, "out of memory");
    if (rs->nkeys) memcpy(j->keys, rs->keys, rs->nkeys * TL_PUBKEY_BYTES);
    j->items = items;
    j->n = n;
    atomic_init(&j->next, 0);
    j->nthreads = 0;
    if (helpers > 15) helpers = 15;
    for (unsigned t = 0; t < helpers && n >= 16; t++)
        if (pthread_create(&j->tids[j->nthreads], NULL, sig_worker, j) == 0) j->nthreads++;
    return 0;
}

/* Join in until every signature of the job is checked; false (reported) if one is bad. */
static bool sig_finish(replay_state *rs) {
    sig_job *j = &rs->job;
    if (!j->items) return true;
    sig_worker(j);
    for (unsigned t = 0; t < j->nthreads; t++) pthread_join(j->tids[t], NULL);
    bool ok = true;
    for (size_t i = 0; i < j->n; i++)
        if (j->items[i].bad) {
            report_bad(rs->vr, j->items[i].ev.seq, "event %llu: bad signature", (unsigned long long)j->items[i].ev.seq);
            ok = false;
            break;
        }
    free(j->keys);
    memset(j, 0, sizeof *j);
    return ok;
}

/* How many events ahead apply_items brings a body's table slot in (stage 1), and what the slot
 * points at (stage 2): a few events' work (~10 µs each) is ample time for a miss, and little
 * enough that the lines are still in the caches when the event is applied. */
#define PREFETCH_SLOT_AHEAD 8
#define PREFETCH_ENTRY_AHEAD 4

/* Run every applier for items[0, n), in order. */
static int apply_items(replay_state *rs, chunk_item *items, size_t n) {
    const tl_content_table *t = rs->w->contents;
    for (size_t i = 0; i < n && i < PREFETCH_SLOT_AHEAD; i++)
        if (items[i].body_commit) tl_content_table_prefetch_slot(t, items[i].body_commit);
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_SLOT_AHEAD < n && items[i + PREFETCH_SLOT_AHEAD].body_commit)
            tl_content_table_prefetch_slot(t, items[i + PREFETCH_SLOT_AHEAD].body_commit);
        if (i + PREFETCH_ENTRY_AHEAD < n && items[i + PREFETCH_ENTRY_AHEAD].body_commit)
            tl_content_table_prefetch_entry(t, items[i + PREFETCH_ENTRY_AHEAD].body_commit);
        int rc = tl_wtxn_reapply(rs->w, &items[i].ev, items[i].hashed ? items[i].hash : NULL);
        if (rc) {
            if (rs->w->map_full) return rc;
            char why[200];
            snprintf(why, sizeof why, "%s", tl_errdetail());
            return tl_fail(rc, "event %llu: %s", (unsigned long long)items[i].ev.seq, why);
        }
    }
    rs->done += n;
    if (rs->o->verify) rs->vr->events += n;
    if (rs->o->progress) rs->o->progress(rs->done, rs->total, rs->o->progress_payload);
    return 0;
}

/*
 * The gathered chunk is complete. Without verification: apply it. With: a pipeline of two
 * chunks -- finish checking the previous chunk's signatures, start checking this one's on
 * helper threads, apply the previous one meanwhile (so an event is never applied before its
 * signature holds, and both cores stay busy), then gather the next into the freed buffer.
 */
static int advance(replay_state *rs) {
    int f = rs->fill, prev = 1 - f;
    if (!rs->o->verify) {
        int rc = apply_items(rs, rs->bufs[f], rs->nbuf[f]);
        rs->nbuf[f] = 0;
        return rc;
    }
    if (rs->pending && !sig_finish(rs)) return tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
    int rc = sig_start(rs, rs->bufs[f], rs->nbuf[f], rs->threads - 1);
    if (!rc && rs->pending) rc = apply_items(rs, rs->bufs[prev], rs->nbuf[prev]);
    if (rc) {
        sig_finish(rs);
        return rc;
    }
    rs->pending = rs->nbuf[f] > 0;
    rs->fill = prev;
    rs->nbuf[prev] = 0;
    return 0;
}

/* The end of the walk: the partial chunk and the pending one. */
static int drain(replay_state *rs) {
    int rc = rs->nbuf[rs->fill] ? advance(rs) : 0;
    if (!rc && rs->pending) {
        if (!sig_finish(rs)) return tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
        rc = apply_items(rs, rs->bufs[1 - rs->fill], rs->nbuf[1 - rs->fill]);
        rs->pending = false;
    }
    return rc;
}

/* A walk stopped by a damaged event: an earlier forged event shows first as the next one's
 * broken chain, so check every signature gathered so far; the earliest bad event wins. */
static void check_gathered(replay_state *rs) {
    sig_finish(rs);
    if (rs->nbuf[rs->fill] && sig_start(rs, rs->bufs[rs->fill], rs->nbuf[rs->fill], rs->threads - 1) == 0)
        sig_finish(rs);
}

/* The sequence-order checks verification makes before an event joins a chunk. */
static int check_order(replay_state *rs, uint64_t seq, const tl_event *ev) {
    tl_verify_report *r = rs->vr;
    if (memcmp(ev->prev, rs->prev_hash, TL_HASH_BYTES) != 0) {
        report_bad(r, seq, "event %llu does not chain to the previous event", (unsigned long long)seq);
        return TL_ECORRUPT;
    }
    if (ev->ts < rs->prev_ts) {
        report_bad(r, seq, "event %llu goes back in time", (unsigned long long)seq);
        return TL_ECORRUPT;
    }
    bool genesis = strcmp(ev->kind, "log.created") == 0;
    if (genesis != (seq == 1)) {
        report_bad(r, seq, "event %llu: the genesis event must be first and only first", (unsigned long long)seq);
        return TL_ECORRUPT;
    }
    uint64_t format;
    if (genesis && (tl_ev_uint(ev, "format", &format) != 0 || format != TL_FORMAT_VERSION)) {
        report_bad(r, seq, "event %llu: genesis without format %d", (unsigned long long)seq, TL_FORMAT_VERSION);
        return TL_ECORRUPT;
    }
    tl_bytes pk;
    if ((genesis || strcmp(ev->kind, "key.rotated") == 0) &&
        (tl_ev_bin(ev, "public_key", &pk) != 0 || pk.len != TL_PUBKEY_BYTES)) {
        report_bad(r, seq, "event %llu: %s without a public key", (unsigned long long)seq, ev->kind);
        return TL_ECORRUPT;
    }
    if (genesis && rs->o->verify && !tl_genesis_meta_agrees(rs->w->txn, rs->w->log, ev, pk.ptr)) {
        report_bad(r, seq, "event %llu: the log's meta records another genesis key or attachment limit than the genesis event",
                   (unsigned long long)seq);
        return TL_ECORRUPT;
    }
    if (genesis) return add_key(rs, pk.ptr);
    return 0;
}

/*
 * Walk records 1..rs->until in w and apply them. Returns 0, TL_ECORRUPT (the log is damaged;
 * rs->vr says where when verifying), or the failure of an applier or of storage.
 */
static int walk(replay_state *rs) {
    tl_wtxn *w = rs->w;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(w->txn, w->log->db_log, &cur);
    if (mrc) return tl_wtxn_fail_mdb(w, mrc, "open the log");
    MDB_val k, v;
    uint64_t expect = 1;
    int rc = 0;
    while (expect <= rs->until && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint64_t seq = k.mv_size == 8 ? tl_seq_from_key(k.mv_data) : 0;
        if (seq != expect) {
            report_bad(rs->vr, expect, seq > expect ? "event %llu is missing" : "event %llu is out of order",
                       (unsigned long long)expect);
            rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
            break;
        }
        chunk_item *it = &rs->bufs[rs->fill][rs->nbuf[rs->fill]];
        it->hashed = false;
        const uint8_t *bytes;
        size_t len;
        if ((rc = tl_record_split(&v, &bytes, &len, &it->sig)) != 0 || (rc = tl_event_decode(&it->ev, bytes, len)) != 0) {
            report_bad(rs->vr, seq, "event %llu does not decode: %s", (unsigned long long)seq, tl_errdetail());
            rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
            break;
        }
        tl_bytes body_commit;
        it->body_commit = rs->w->contents && tl_ev_bin(&it->ev, "body_commit", &body_commit) == 0 &&
                                  body_commit.len == TL_HASH_BYTES
                              ? body_commit.ptr
                              : NULL;
        if (it->ev.seq != seq) {
            report_bad(rs->vr, seq, "event %llu carries another sequence number", (unsigned long long)seq);
            rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
            break;
        }
        /* The chain (and time order, genesis, key chain) is checked with or without
         * verification: one hash per event (~0.5 µs against ~10 µs to apply it) is what keeps
         * an altered event from being replayed into the projections; --verify adds the
         * signatures, which cost ~45 µs per event. */
        {
            if ((rc = check_order(rs, seq, &it->ev)) != 0) {
                if (rc == TL_ECORRUPT) rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
                break;
            }
            it->key = (unsigned)rs->nkeys - 1;
            if (rs->o->verify) {
                int crc = tl_content_audit_event(&rs->content, w->txn, w->log, &it->ev);
                if (crc == -1) {
                    report_bad(rs->vr, seq, "event %llu: stored content does not match its commitment", (unsigned long long)seq);
                    rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
                    break;
                }
                if (crc) { rc = crc; break; }
            }
            tl_hash(it->hash, bytes, len); /* the chain's next link, and the head's hash when applied */
            memcpy(rs->prev_hash, it->hash, TL_HASH_BYTES);
            it->hashed = true;
            rs->prev_ts = it->ev.ts;
            /* key.rotated is signed by the old key; the next events by the new one */
            tl_bytes pk;
            if (strcmp(it->ev.kind, "key.rotated") == 0 && tl_ev_bin(&it->ev, "public_key", &pk) == 0 &&
                (rc = add_key(rs, pk.ptr)) != 0)
                break;
        }
        expect++;
        if (++rs->nbuf[rs->fill] == rs->chunk && (rc = advance(rs)) != 0) break;
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = tl_wtxn_fail_mdb(w, mrc, "read the log");
    /* a record past the head (a cut removed those of a copy): added behind the writer's back */
    if (!rc && expect > rs->until && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        report_bad(rs->vr, rs->until + 1, "event %llu lies beyond the head the log recorded", (unsigned long long)rs->until + 1);
        rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
    }
    if (!rc) rc = drain(rs);
    if (rc == TL_ECORRUPT && rs->o->verify) {
        uint64_t before = rs->vr->first_bad_seq;
        check_gathered(rs);
        if (rs->vr->first_bad_seq != before) rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
    }
    sig_finish(rs); /* no helper thread outlives the walk */
    if (!rc && expect <= rs->until) {
        report_bad(rs->vr, expect, "event %llu is missing (the log's head is further on)", (unsigned long long)expect);
        rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The memory a replay may give its content table: ~170 MiB for the 477k contents of a
 * million-event log; a larger content database is looked up content by content instead. */
#define CONTENT_TABLE_MAX_BYTES ((size_t)768 << 20)

/* Read the content database once, in key order (content_table.c says why): with verification
 * every content (the audit checks them all), without it the short bodies the state copies.
 * THREADLOG_TEST_NO_CONTENT_TABLE=1 (tests only) makes no table, as a database too large for
 * one would, so tests reach the lookups too. */
static int table_contents(replay_state *rs) {
    const char *off = getenv("THREADLOG_TEST_NO_CONTENT_TABLE"); /* a test-only knob: the lookups */
    if (off && *off == '1') return 0;
    /* copied, in place too: a lookup into the arena costs far less than one into the map, and
     * apply_items' prefetches reach it (content_table.c); a cut, which deletes content, needs
     * the copies anyway */
    int rc = tl_content_table_build(&rs->table, rs->w->txn, rs->w->log, rs->o->verify, true, CONTENT_TABLE_MAX_BYTES);
    if (rc < 0) return rc;
    if (rc == 0) {
        rs->w->contents = &rs->table;
        rs->content.table = &rs->table;
    }
    return 0;
}

static void untable_contents(replay_state *rs) {
    if (rs->w) rs->w->contents = NULL;
    rs->content.table = NULL;
    tl_content_table_free(&rs->table);
}

static int drop_appliers(tl_wtxn *w) {
    tl_log *log = w->log;
    tl_rec_cache_clear(w);
    for (unsigned a = 0; a < log->napplier; a++) { /* what appliers buffered or cached is gone too */
        if (log->appliers[a].discard) log->appliers[a].discard(log->appliers[a].state);
        for (unsigned d = 0; d < log->appliers[a].ndbs; d++) {
            int mrc = mdb_drop(w->txn, log->appliers[a].dbs[d], 0);
            if (mrc) return tl_wtxn_fail_mdb(w, mrc, "clear a projection");
        }
    }
    return 0;
}

/* One attempt at the whole rebuild in one write transaction of target. */
static int rebuild_once(tl_log *target, const tl_replay_options *o, bool copy, replay_state *rs) {
    int rc = tl_wtxn_begin_replay(target, &rs->w);
    if (rc) return rc;
    tl_wtxn *w = rs->w;
    tl_head head = w->head;
    rs->until = head.seq;
    if (copy && (o->until_seq || o->until_ts)) {
        uint64_t n = head.seq;
        if (o->until_seq) {
            if (o->until_seq > head.seq) {
                rc = tl_fail(TL_EUSAGE, "--until-seq %llu: the log ends at %llu", (unsigned long long)o->until_seq,
                             (unsigned long long)head.seq);
                goto out;
            }
            n = o->until_seq;
        }
        if (o->until_ts) {
            uint64_t at;
            if ((rc = tl_replay_seq_at_time(w, o->until_ts, &at)) != 0) goto out;
            if (!at) {
                rc = tl_fail(TL_EUSAGE, "--until-time is before the log was created");
                goto out;
            }
            if (at < n) n = at;
        }
        rs->until = n;
        if (n < head.seq && (rc = tl_replay_cut(w, n)) != 0) goto out;
        rs->cut = n < head.seq;
    }
    rs->total = rs->until;
    rs->done = 0;
    rs->nbuf[0] = rs->nbuf[1] = 0;
    rs->fill = 0;
    rs->pending = false;
    rs->nkeys = 0;
    rs->prev_ts = 0;
    memset(rs->prev_hash, 0, sizeof rs->prev_hash);
    memset(rs->vr, 0, sizeof *rs->vr);
    tl_content_audit_free(&rs->content);
    if (o->verify) tl_content_audit_init(&rs->content, w->txn, target);
    memset(w->head.hash, 0, TL_HASH_BYTES);
    memset(w->head.pk, 0, TL_PUBKEY_BYTES); /* the walk's key chain sets it */
    w->unhashed = NULL;
    w->head.seq = 0;
    w->head.ts = 0;
    if (rs->until == 0) { /* a head record at 0: the genesis (and all) removed */
        report_bad(rs->vr, 1, "event 1 (genesis) is missing");
        rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
        goto out;
    }
    if ((rc = drop_appliers(w)) != 0 || (rc = table_contents(rs)) != 0 || (rc = walk(rs)) != 0) goto out;
    /* the head record, as verify checks it (replay rewrites it: a mismatch must not vanish) */
    if (rs->until == head.seq) {
        const char *why = memcmp(tl_wtxn_head_hash(w), head.hash, TL_HASH_BYTES) != 0 ? " is not the head the log recorded"
                          : w->head.ts != head.ts ? ": the log's head record names another time"
                          : memcmp(w->head.pk, head.pk, TL_PUBKEY_BYTES) != 0
                              ? ": the log's head record names another key than the key chain's"
                              : NULL;
        if (why) {
            report_bad(rs->vr, head.seq, "event %llu%s", (unsigned long long)head.seq, why);
            rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
            goto out;
        }
    }
    if (o->verify) { /* only a complete walk has seen every erasure, and the head checked out */
        uint64_t bad;
        if ((rc = tl_content_audit_finish(&rs->content, w->txn, target, rs->until, &bad)) != 0) goto out;
        if (bad) {
            report_bad(rs->vr, bad, "event %llu: its content is gone, yet no content.erased event erased it",
                       (unsigned long long)bad);
            rc = tl_fail(TL_ECORRUPT, "%s", rs->vr->reason);
            goto out;
        }
        rs->vr->contents = rs->content.contents;
        rs->vr->replica_since = rs->content.replica_since;
    }
    if ((rc = tl_wtxn_mark_applied(w)) != 0) goto out;
    tl_content_audit_free(&rs->content);
    untable_contents(rs);
    rs->w = NULL;
    if ((rc = tl_wtxn_commit(w)) == 0) { /* rebuilt in this build's layout */
        atomic_store(&target->layout_stale, false);
        atomic_store(&target->layout_damaged, false);
    }
    return rc;
out:
    tl_content_audit_free(&rs->content);
    untable_contents(rs);
    if (w->map_full) rc = TL_EMAPFULL;
    tl_wtxn_abort(w);
    rs->w = NULL;
    return rc;
}

int tl_replay(tl_log *log, const tl_replay_options *opts, tl_replay_report *report) {
    tl_replay_options defaults = TL_REPLAY_OPTIONS_INIT;
    tl_replay_report local;
    if (!report) report = &local;
    memset(report, 0, sizeof *report);
    if (!log) return tl_fail(TL_EUSAGE, "tl_replay needs a log");
    if (!opts) opts = &defaults;
    if (opts->version != TL_REPLAY_OPTIONS_VERSION)
        return tl_fail(TL_EUSAGE, "unknown tl_replay_options version %u", opts->version);
    bool page_copy = false; /* the copy was made page for page (tl_copy_env): scrub it too */
    bool copy = opts->into_dir != NULL;
    if (!copy && (opts->until_seq || opts->until_ts))
        return tl_fail(TL_EUSAGE, "a replay up to a sequence or a time builds a separate copy: give a directory "
                                  "(into_dir); in place, the projections must match the whole log");
    double t0 = now_s();

    tl_log *target = log;
    bool created = false;
    char build[4096]; /* a copy is built here, inside into_dir, and moved into it when complete */
    int lock_fd = -1;  /* into_dir's lock, held from prepare to the end */
    int rc = 0;
    if (copy) {
        if ((rc = tl_copy_dir_prepare(opts->into_dir, &created, build, sizeof build, &lock_fd)) != 0) return rc;
        if ((rc = tl_copy_env(log, build, &page_copy)) != 0) {
            tl_copy_dir_remove(opts->into_dir, build, created, lock_fd);
            return rc;
        }
        tl_open_options oo = TL_OPEN_OPTIONS_INIT;
        oo.flags = TL_OPEN_NOKEY | TL_OPEN_WRITEMAP; /* one large transaction: see TL_OPEN_WRITEMAP */
        if ((rc = tl_log_open(&target, build, &oo)) != 0) {
            tl_copy_dir_remove(opts->into_dir, build, created, lock_fd);
            return rc;
        }
        /* A cut reads the records after N (their erasures become the copy's erased/ marks)
         * and moves the head back to N, where no later check can see the tail again: so the
         * whole copy must check out first, as far as this replay checks — everything verify
         * checks with --verify; the sequence, chain, time, genesis and head record without. */
        if (opts->until_seq || opts->until_ts) {
            tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
            vo.threads = opts->threads;
            vo.check_content = opts->verify;
            rc = opts->verify ? tl_log_verify(target, &vo, &report->verify) : tl_verify_chain(target, &vo, &report->verify);
            if (!rc && report->verify.first_bad_seq) rc = tl_fail(TL_ECORRUPT, "%s", report->verify.reason);
            if (rc) {
                char why[300];
                snprintf(why, sizeof why, "%s", tl_errdetail());
                tl_log_close(target);
                tl_copy_dir_remove(opts->into_dir, build, created, lock_fd);
                return tl_fail(rc, "%s", why);
            }
        }
    }

    replay_state rs;
    memset(&rs, 0, sizeof rs);
    rs.o = opts;
    rs.threads = opts->threads ? opts->threads : 2;
    rs.chunk = chunk_size();
    rs.vr = &report->verify;
    rs.bufs[0] = malloc(CHUNK * sizeof *rs.bufs[0]);
    rs.bufs[1] = malloc(CHUNK * sizeof *rs.bufs[1]);
    if (!rs.bufs[0] || !rs.bufs[1]) rc = tl_fail(TL_ENOMEM, "out of memory");
    /* a full map is not a failure: grow it and run the whole rebuild again */
    while (!rc) {
        rc = rebuild_once(target, opts, copy, &rs);
        if (rc != TL_EMAPFULL) break;
        rc = tl_log_grow_map(target);
    }
    free(rs.bufs[0]);
    free(rs.bufs[1]);
    free(rs.keys);
    /* A cut copy answers as of N, and its file must hold no more than that: the tail's records
     * and content were deleted, but their pages keep their bytes until cleared (bodies sent
     * after N, found by an audit in a copy handed out "as of N"). No one else has the copy open,
     * so every free page and every page's free space is cleared. */
    if (!rc && (rs.cut || page_copy)) {
        uint64_t cleared, held;
        rc = tl_scrub_free_pages(target, &cleared, &held);
    }
    if (!rc) {
        report->events = rs.done;
        report->seconds = now_s() - t0;
        /* the digest is the projections engineer's: when it fails, the report's stays empty */
        if (tl_digest(target, report->digest) != 0) report->digest[0] = 0;
    }
    if (copy) {
        char why[256];
        snprintf(why, sizeof why, "%s", tl_errdetail());
        tl_log_close(target);
        if (!rc && (rc = tl_copy_dir_finish(opts->into_dir, build)) != 0) snprintf(why, sizeof why, "%s", tl_errdetail());
        if (rc) {
            tl_copy_dir_remove(opts->into_dir, build, created, lock_fd);
            tl_fail(rc, "%s", why);
        } else {
            close(lock_fd);
        }
    }
    return rc;
}
