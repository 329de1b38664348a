/*
 * log.h — the engine's private view of a log: the LMDB environment, write transactions that
 * append events and run the registered appliers, and the applier registry.
 *
 * One event's path: a command (engine/commands) or a raw append builds an envelope and a
 * payload -> tl_wtxn_append() encodes it canonically, chains it to the head hash, decodes it
 * back (so appliers see exactly what is stored) and runs every applier inside the same LMDB
 * write transaction -> tl_wtxn_commit() signs the batch's events on both cores, puts the
 * records with MDB_APPEND, updates the head and commits (synced unless TL_OPEN_NOSYNC).
 */
#ifndef TL_LOG_H
#define TL_LOG_H

#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "codec.h"
#include "crypto.h"
#include "threadlog.h"

#define TL_MAX_APPLIERS 16
#define TL_MAX_DBS 48
/* Keys of the "meta" database (docs/FORMAT.md), besides "applied/<name>". */
#define META_FORMAT "format"
#define META_HEAD "head"
#define META_GENESIS_KEY "genesis_key"
#define META_MAX_ATTACHMENT "max_attachment"
#define META_LAYOUT "layout"
/* The layout record's value when a projection's or the state's database was found missing from
 * a log with events (a damaged data file): created empty, so the projections are wrong until a
 * replay rebuilds them and writes this build's layout. */
#define TL_LAYOUT_DAMAGED 0
/* "erased/" || commitment (32 bytes) -> u64be(seq): content erased by the event seq of the log a
 * cut copy came from, an event the cut removed (engine/replay.c, truncate_after) */
#define META_ERASED_PREFIX "erased/"
/* u64be(seq): the first record this log took from another one (tl_log_append_records). Such
 * records come without their content (bodies and uploads stay with their source), so verify
 * does not ask for the content of events from there on. */
#define META_REPLICA_SINCE "replica_since"
/* u64be(n): how many erasures this file has seen (bumped by every content deletion of an
 * erasure). A writer process that finds it moved since it last looked drops LMDB's spare page
 * buffers (tl_env_refresh) before it writes: they may hold erased bytes. */
#define META_ERASURES "erasures"
/* u64be(txnid): the clearing of the data file that an erasure owes (scrub.c) has not finished.
 * Written in the erasing transaction (its LMDB transaction id: the pages it freed may be
 * cleared once no reader's snapshot is older than it), deleted by the clearing that could
 * reach them. A writable open finding it (the eraser was killed between its commit and its
 * clearing, or a reader held the pages) clears again (tl_scrub_if_owed). */
#define META_SCRUB_OWED "scrub_owed"
#define TL_DATA_FILE "data.mdb"

typedef struct tl_wtxn tl_wtxn;

/*
 * An applier: domain state or a projection. open() creates/opens its named databases in the
 * given write (or read-only: then create must not be attempted) transaction; apply() updates
 * them for one event inside the append's transaction; dbs[] lists its databases so replay
 * can clear them and the digest can hash them. Unknown event kinds must be ignored.
 */
typedef struct tl_applier {
    const char *name;
    int (*apply)(tl_wtxn *w, const tl_event *ev, void *state);
    void *state;
    MDB_dbi dbs[8];
    const char *db_names[8];
    unsigned ndbs;
    bool in_digest; /* projections yes; engine bookkeeping no */
    /* Optional, for an applier that buffers its writes during a transaction (projections'
     * write-back overlay): flush() writes the buffer into w before the commit (a failure
     * fails w, as tl_put does), discard() forgets it when w is aborted, release() frees it
     * when the log is closed. prepare(), when set, runs before any applier's flush: work an
     * applier deferred that still reads other appliers' buffers. */
    int (*prepare)(tl_wtxn *w, void *state);
    int (*flush)(tl_wtxn *w, void *state);
    void (*discard)(void *state);
    void (*release)(void *state);
} tl_applier;

typedef struct tl_pending {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
    const tl_keypair *key; /* the key that signs it (the old one for key.rotated) */
    uint8_t sig[TL_SIGNATURE_BYTES];
} tl_pending;

/* A named database as tl_db_open first opened it: an environment reopened after MDB_PANIC
 * opens them all again in this order, so LMDB hands out the same MDB_dbi numbers. */
typedef struct tl_db_entry {
    char *name;
    unsigned flags;
    MDB_dbi dbi;
} tl_db_entry;

struct tl_log {
    MDB_env *env;              /* NULL only after a reopen failed (the next transaction retries) */
    char *dir;
    unsigned flags;
    unsigned env_flags;        /* what mdb_env_open was given: a reopen gives the same */
    size_t map_bytes;          /* the map size last seen, kept for a reopen */
    unsigned env_gen;          /* bumped by every reopen; read under map_lock shared */
    uint64_t erasures_seen;    /* META_ERASURES when the environment was last opened (under write_mu) */
    uint64_t erasures_waited;  /* the count for which a reopen already waited in vain: later
                                  writes only try, without waiting (under write_mu) */
    tl_db_entry dbs[TL_MAX_DBS];
    unsigned ndbs;
    MDB_dbi db_log, db_meta, db_content;
    tl_keypair key;       /* current writer key (when writable) */
    tl_keypair next_key;  /* set during a rotation */
    bool have_key;
    atomic_bool layout_stale; /* the projections were built by an earlier layout: replay first
                                 (cleared by a replay's commit while queries read it) */
    atomic_bool layout_damaged; /* ... or a database of theirs was missing from the data file
                                   (layout record 0, tl_db_open): replay first as well */
    uint64_t max_attachment;
    tl_applier appliers[TL_MAX_APPLIERS];
    unsigned napplier;
    pthread_rwlock_t map_lock; /* txns hold it shared; growing the map or reopening the
                                  environment holds it exclusively (tl_map_*, map.c) */
    atomic_uint map_writers;   /* threads waiting for (or holding) map_lock exclusively */
    pthread_mutex_t gate_mu;   /* with gate_cv: new transactions wait while map_writers > 0 */
    pthread_mutex_t key_mu;    /* log->key as a checkpoint reads it; a rotation's commit writes it
                                * holding write_mu and key_mu, so writers (under write_mu) read it freely */
    pthread_cond_t gate_cv;
    pthread_mutex_t write_mu;  /* one write transaction per process at a time (tl_write_lock) */
    atomic_uintptr_t write_owner; /* the thread holding write_mu (map.c's this_thread_id), else 0 */
    void *commands;            /* the command layer's group-commit queue */
    void (*commands_free)(void *);
    unsigned sign_threads;
};

/*
 * The layout of the projections (and the state): the keys and values appliers write. A build
 * reads only its own; a log whose meta record "layout" differs (or lacks it: built before the
 * record existed) refuses queries and appends with TL_EVERSION until a replay rebuilds its
 * projections, which writes the record. 2: tracking's unread lists and unread-first values,
 * history's message entries, read marks beside their message (2026-11-26). 3: short bodies
 * copied into their message's record (2026-11-26). 4: the erasure of an attachment no
 * message carries is a history entry (2026-11-26, later).
 */
#define TL_LAYOUT_VERSION 5
int tl_layout_check(tl_log *log);
/** Record this build's layout in meta (a replay, which rebuilt every projection). */
int tl_layout_write(tl_wtxn *w);

/* The head of the log, kept in the meta database under "head". */
typedef struct tl_head {
    uint64_t seq;
    uint8_t hash[TL_HASH_BYTES];
    uint64_t ts;
    uint8_t pk[TL_PUBKEY_BYTES]; /* the key that signs the next event */
} tl_head;

struct tl_wtxn {
    tl_log *log;
    MDB_txn *txn;
    tl_head head;
    tl_pending *pending;
    size_t npending, cap;
    msgpack_sbuffer buf;
    int failed;     /* sticky: once set, the transaction can only be aborted */
    bool map_full;  /* the failure was MDB_MAP_FULL: grow and re-run */
    bool replaying; /* appliers run for stored events (no new records) */
    bool key_rotated;
    bool erased; /* content was deleted (tl_content_erase): a clearing of the file is owed */
    bool stale_buffers; /* LMDB's spare page buffers could not be dropped after an erasure
                           (begin_clean): the commit clears the pages' free space after it */
    /* A replay without verification hashes only the last event it applied (the head's hash),
     * not every event: the bytes of the last one, in the map or in this transaction's pages,
     * until tl_wtxn_head_hash. */
    const uint8_t *unhashed;
    size_t unhashed_len;
    struct tl_rec_cache *recs; /* state.c's cache of project and message records, or NULL */
    /* a replay's table of the content database (content_table.h), or NULL: look content up */
    const struct tl_content_table *contents;
};

/** Free a transaction's record cache (state.c); NULL is fine. */
void tl_rec_cache_free(struct tl_rec_cache *c);
/** Forget every cached record (the state database was cleared). */
void tl_rec_cache_clear(tl_wtxn *w);

/* ---- environment ---- */
/** Create and open an LMDB environment the way every open of a log does (map_bytes 0: the
 * size recorded in the file); an LMDB code on failure. */
int tl_env_create_open(MDB_env **out, const char *dir, unsigned env_flags, size_t map_bytes);
/* Create dir's missing LMDB lock file with its blocks allocated (log.c says why): 0, or the
 * errno of a full or failing disk. */
int tl_lockfile_prepare(const char *dir);
int tl_engine_open(tl_log **out, const char *dir, unsigned flags);
void tl_engine_close(tl_log *log);
int tl_log_register(tl_log *log, const tl_applier *applier);
/** Open (creating when writable) a named database. */
int tl_db_open(tl_log *log, const char *name, unsigned flags, MDB_dbi *dbi);

/**
 * Begin an LMDB transaction (the map lock taken shared; released by tl_rtxn_end or the write
 * transaction's end), reopening the environment once when LMDB marked it fatal. A caller
 * holding write_mu says so: it is let go while a reopen waits, and taken again.
 */
int tl_txn_begin(tl_log *log, unsigned flags, MDB_txn **txn, bool holding_write_mu);
/*
 * map_lock, shared by every transaction of this process, exclusive while the map is grown,
 * resized or the environment reopened. tl_map_shared takes it for a transaction about to
 * begin (may_wait: the thread holds neither write_mu nor another transaction, so it may wait
 * at the gate for a waiting writer first); tl_map_shared_end lets it go when the transaction
 * ends; tl_map_exclusive takes it exclusively, until deadline when one is given (ETIMEDOUT).
 */
void tl_map_shared(tl_log *log, bool may_wait);
/*
 * write_mu with its holder recorded, so that a thread asking for it again (a second write
 * while its own batch is open) is refused at once (tl_write_held_by_me) instead of waiting
 * for itself for ever.
 */
void tl_write_lock(tl_log *log);
void tl_write_unlock(tl_log *log);
bool tl_write_held_by_me(const tl_log *log);
/** The calling thread holds a transaction (a read snapshot) on log. */
bool tl_map_held_by_me(const tl_log *log);
void tl_map_shared_end(tl_log *log);
int tl_map_exclusive(tl_log *log, const struct timespec *deadline);
/** Write w's head (sequence, hash, time, current key) into meta. */
int tl_head_write(tl_wtxn *w);

/* Read transactions: take the map lock shared. */
int tl_rtxn_begin(tl_log *log, MDB_txn **txn);
/* LMDB's free-page list, checked for damage that would make a write overwrite pages in use
 * (freelist.c): 0, or TL_ECORRUPT with the reason. */
int tl_freelist_check(MDB_txn *txn, MDB_env *env);
/* The same walk, giving the pages (sorted, ascending; *pages freed by the caller) that
 * transactions before `before` freed; *held counts the pages of later ones. */
int tl_freelist_reclaimable(MDB_txn *txn, MDB_env *env, size_t before, size_t **pages, size_t *n, size_t *held);
/* After an erasure: clear the file's free pages no snapshot can reach (scrub.c). */
int tl_scrub_free_pages(tl_log *log, uint64_t *cleared, uint64_t *held);
/** Zeros over the free space of every page in use (step 3 of tl_scrub_free_pages alone), under
 *  the writer lock: after a commit whose spare page buffers may have held erased bytes. */
int tl_scrub_page_gaps(tl_log *log);
/** At a writable open: run tl_scrub_free_pages when meta records a clearing owed whose pages no
 *  reader's snapshot holds any more (0 when nothing was owed or it was done). */
int tl_scrub_if_owed(tl_log *log);
/** Step 3's walk alone over a mapped file (fd, map: pages 0..last_pgno; free_pages: the pages
 *  the free list names, sorted), for tests that build the pages themselves. */
int tl_scrub_clear_pages(int fd, const uint8_t *map, size_t psize, size_t last_pgno, const size_t *free_pages,
                        size_t nfree, uint64_t *cleared);
void tl_rtxn_end(tl_log *log, MDB_txn *txn);

/* ---- writing ---- */
int tl_wtxn_begin(tl_log *log, tl_wtxn **out);
/** Begin for records of another log: no writer key needed (they carry their signatures). */
int tl_wtxn_begin_records(tl_log *log, tl_wtxn **out);
/**
 * Append one event: encode, chain, run appliers. ev_out (may be NULL) receives the decoded
 * event (borrowing from the transaction's pending buffer until commit).
 */
int tl_wtxn_append(tl_wtxn *w, const char *actor, const char *kind, const char *project,
                   const tl_payload *payload, tl_event *ev_out);
int tl_wtxn_append_object(tl_wtxn *w, const char *actor, const char *kind, const char *project,
                          const msgpack_object *payload);
/** Append a record from another log unchanged (checked first). */
int tl_wtxn_append_record(tl_wtxn *w, const uint8_t *rec, size_t len);
/** Mark the transaction failed from an LMDB code (sticky); returns the translated code. */
int tl_wtxn_fail_mdb(tl_wtxn *w, int rc, const char *what);
int tl_wtxn_commit(tl_wtxn *w); /* frees w */
void tl_wtxn_abort(tl_wtxn *w); /* frees w */
/** Double the map (no transaction of this process may be active). */
int tl_log_grow_map(tl_log *log);

/*
 * Bounded walks. LMDB trusts the pages it follows: on a damaged file MDB_NEXT can lead back to
 * keys already seen, every call returns, and a walk that stops only at MDB_NOTFOUND never
 * ends. A walk of our own over a whole database (or from a key on) calls tl_walk_step for
 * each key: keys must increase strictly (in the database's order) and there can be no more
 * of them than mdb_stat counts (+1, for a count the damage made one short); otherwise
 * TL_ECORRUPT with a detail naming the database. Keys are copied, so the walk does not rely
 * on LMDB's pointers staying valid.
 */
typedef struct tl_walk {
    MDB_txn *txn;
    MDB_dbi dbi;
    const char *name;  /* for the detail: "log", "content", ... */
    size_t limit;      /* entries + 1 */
    size_t seen;
    size_t prev_len;
    bool have_prev;
    uint8_t prev[512]; /* LMDB's largest key is 511 bytes */
} tl_walk;

/** Start a walk over dbi (reads its entry count). */
int tl_walk_init(tl_walk *walk, MDB_txn *txn, MDB_dbi dbi, const char *name);
/** Account for the next key of the walk: 0, or TL_ECORRUPT when the walk cannot be right. */
int tl_walk_step(tl_walk *walk, const MDB_val *key);

/* ---- replay (engine/replay.c): rebuilding appliers' databases from stored events ---- */
/** Internal open flag (passed through tl_log_open): writable, but no writer key is loaded.
 * Such a log can rebuild its projections (replay targets built by `replay --into`) and can
 * never append, so a copy of a log can never fork it. */
#define TL_OPEN_NOKEY (1u << 16)
/* Internal open flag: LMDB writes pages where they lie in its memory map (MDB_WRITEMAP)
 * rather than in heap buffers it copies into the file at commit. For replay's copies only,
 * which no other process opens while they are built: a process writing through the map sets
 * the file's length to its map size (ftruncate) when it opens and whenever it resizes the
 * map, and that can cut the pages another process's write transaction has written past that
 * size after growing its own map (docs/DECISIONS.md). */
#define TL_OPEN_WRITEMAP (1u << 17)
/** Begin a write transaction that appends nothing: no writer key needed, w->replaying set.
 * Only tl_wtxn_reapply / tl_wtxn_mark_applied and plain puts belong in it. */
int tl_wtxn_begin_replay(tl_log *log, tl_wtxn **out);
/**
 * Run the appliers for a stored event, as the append that stored it did: the head's seq,
 * hash, time (and key, on log.created / key.rotated) follow the event, no record is written.
 * The genesis event only moves the head: init writes it before any applier exists, so live
 * appliers never saw it either. hash: H(event bytes) when the caller computed it already (a
 * verifying walk checks the chain with it), else NULL: then w->head.hash is computed only
 * when asked for (tl_wtxn_head_hash; tl_wtxn_mark_applied does). ev's bytes must stay valid
 * until then (the log's records, read in this transaction, do).
 */
int tl_wtxn_reapply(tl_wtxn *w, const tl_event *ev, const uint8_t *hash);
/** w->head.hash, computed now if the last reapply left it for later. */
const uint8_t *tl_wtxn_head_hash(tl_wtxn *w);
/** Write w->head as the log's head and every applier's "applied/<name>" = head seq. */
int tl_wtxn_mark_applied(tl_wtxn *w);

/* Convenience LMDB wrappers that mark the wtxn failed on error. */
/** After a successful mdb_put with MDB_RESERVE: LMDB handed back room for size bytes. On a
 * page whose header a damaged file changed into another kind (a fixed-size-key leaf), LMDB
 * succeeds without setting v's data; callers treat that as MDB_CORRUPTED. */
bool tl_reserved(const MDB_val *v, size_t size);
int tl_put(tl_wtxn *w, MDB_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen, unsigned flags);
int tl_del(tl_wtxn *w, MDB_dbi dbi, const void *k, size_t klen);
/** 0 found, TL_ENOTFOUND, or a failure. */
int tl_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, MDB_val *v);
/* dir/name, malloc'd (NULL when out of memory). */
char *tl_path_join(const char *dir, const char *name);
/* The map size a log is opened or created with (THREADLOG_TEST_MAP_BYTES lowers it in tests). */
size_t tl_map_initial(void);

/* ---- content (erasable bodies and attachments) ---- */
/** Store content with a fresh salt; commit receives BLAKE2b(salt || content). */
int tl_content_put(tl_wtxn *w, const void *content, size_t len, uint8_t commit[TL_HASH_BYTES],
                   uint8_t salt_out[TL_SALT_BYTES]);
/** 0 while the content is stored, TL_ENOTFOUND once erased: a lookup only (nothing is read
 * or hashed, unlike tl_content_get, which checks the bytes against their commitment). */
int tl_content_exists(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES]);
/** The salt of stored content (TL_ENOTFOUND once erased). */
int tl_content_salt(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES], uint8_t salt[TL_SALT_BYTES]);
/** Borrow content by commitment: TL_ENOTFOUND once erased. Checked against the commitment. */
int tl_content_get(MDB_txn *txn, tl_log *log, const uint8_t commit[TL_HASH_BYTES],
                   const uint8_t **content, size_t *len);
int tl_content_erase(tl_wtxn *w, const uint8_t commit[TL_HASH_BYTES]);

/* ---- a replay into another directory (replay_copy.c) ---- */
/** The subdirectory of a copy's directory where the copy is built (replay_copy.c), with ".PID". */
#define TL_COPY_BUILD ".threadlog-building"
/** Lock a directory (its open fd) for the caller alone: flock, exclusive, without waiting.
 * False when another process holds it (errno EWOULDBLOCK); true when locked, or when the
 * filesystem cannot lock (then unlocked, best effort). */
bool tl_dir_lock(int fd);
/** Make dir for a copy: created (0700, *created set) or existing and empty (but for a killed
 * build's leftovers, removed), and locked (flock, *lock_fd: another replay into it answers
 * exists); a log already there is `exists`, anything else in it `invalid_input`. build
 * receives the subdirectory to build the copy in (created). */
int tl_copy_dir_prepare(const char *dir, bool *created, char *build, size_t cap, int *lock_fd);
/** Remove a copy's build (and dir, when tl_copy_dir_prepare created it), and unlock. */
void tl_copy_dir_remove(const char *dir, const char *build, bool created, int lock_fd);
/** Link the finished copy from build into dir (never over a file there). The caller then
 * lets the lock go (tl_copy_dir_remove with the build gone is that). */
int tl_copy_dir_finish(const char *dir, const char *build);
/** A compacted copy of a read snapshot of log's environment, written to dir/data.mdb (0600). */
int tl_copy_env(tl_log *log, const char *dir, bool *page_for_page);
/** Cut the copy's log after `until`: later records and their content go; their erasures are
 * kept in meta (erased/...). The head is set by the walk that follows. */
int tl_replay_cut(tl_wtxn *w, uint64_t until);
/** The last sequence whose time is <= ts (times never decrease along the log); 0 if none. */
int tl_replay_seq_at_time(tl_wtxn *w, uint64_t ts, uint64_t *out);

/* ---- content audit (content_audit.c): verify's and `replay --verify`'s content checks ---- */
typedef struct tl_commit_ref {
    uint8_t commit[TL_HASH_BYTES];
    uint64_t seq; /* the event that holds it (missing content) or erased it */
} tl_commit_ref;
typedef struct tl_commit_list {
    tl_commit_ref *items;
    size_t n, cap;
} tl_commit_list;
typedef struct tl_content_audit {
    tl_commit_list missing; /* commitments whose content is not stored, in log order */
    tl_commit_list erased;  /* commitments named by content.erased events (and cut erasures) */
    uint64_t replica_since; /* META_REPLICA_SINCE, 0: none */
    uint64_t contents;      /* stored contents checked */
    const struct tl_content_table *table; /* a replay's table of the content database, or NULL */
} tl_content_audit;
/** Start an audit of txn's log (reads replica_since). */
void tl_content_audit_init(tl_content_audit *a, MDB_txn *txn, tl_log *log);
/** One event, in log order: 0; -1 stored content that does not match its commitment (or a
 * malformed commitment field); TL_ENOMEM. */
int tl_content_audit_event(tl_content_audit *a, MDB_txn *txn, tl_log *log, const tl_event *ev);
/** After a complete walk up to head_seq: *first_bad is the first event whose content is gone
 * with no erasure to account for it, or 0. */
int tl_content_audit_finish(tl_content_audit *a, MDB_txn *txn, tl_log *log, uint64_t head_seq, uint64_t *first_bad);
void tl_content_audit_free(tl_content_audit *a);

/** verify without what only --verify adds (signatures, meta's genesis copies): sequence,
 * chain, time, genesis, key chain, content when opts->check_content, head record — what even
 * an unverified replay must not build on. */
int tl_verify_chain(tl_log *log, const tl_verify_options *opts, tl_verify_report *r);

/** meta's unsigned copies of the genesis, genesis_key and max_attachment, are present and
 * equal the genesis event's public key (pk) and limit (verify.c; verify and replay --verify). */
bool tl_genesis_meta_agrees(MDB_txn *txn, tl_log *log, const tl_event *genesis, const uint8_t *pk);

/* ---- meta ---- */
int tl_head_read(MDB_txn *txn, tl_log *log, tl_head *head);
/** The head names the last stored record: its sequence, the hash of its event bytes and its
 * time (TL_ECORRUPT otherwise). Writers check it before signing anything on its word. */
int tl_head_check(MDB_txn *txn, tl_log *log, const tl_head *head);
/** META_ERASURES as this transaction sees it (0 when absent). */
uint64_t tl_erasures_read(MDB_txn *txn, tl_log *log);
/** Close and reopen the environment in place (as after MDB_PANIC), dropping LMDB's spare page
 *  buffers: 0 done, 1 not now (a transaction of this process stayed open), or an error. */
int tl_env_refresh(tl_log *log, int wait_s);
uint64_t tl_now_us(void);
void tl_seq_key(uint8_t key[8], uint64_t seq);
uint64_t tl_seq_from_key(const void *key);

/** Split a stored record into event bytes and signature; TL_ECORRUPT when too short. */
int tl_record_split(const MDB_val *v, const uint8_t **bytes, size_t *len, const uint8_t **sig);


/* Key files across rotations (keyfiles.c). */
/** writer.key.new.<hex pk>: where a rotation to pk keeps its key until renamed (malloc'd). */
char *tl_keyfile_rotation_path(const char *dir, const uint8_t pk[TL_PUBKEY_BYTES]);
/** The key whose public key is pk, from writer.key, its rotation file or the legacy
 *  writer.key.new; *from (may be NULL) gets the path it came from (free it). TL_EKEY if none. */
int tl_keyfile_find(const char *dir, const uint8_t pk[TL_PUBKEY_BYTES], tl_keypair *kp, char **from);
/** Inside a write transaction only: put a committed rotation's key file in place, remove the
 *  files of rotations that never committed. */
void tl_keyfile_settle(const char *dir, const uint8_t head_pk[TL_PUBKEY_BYTES]);

/** What an init made in its directory, so that a failure removes that and nothing else. */
typedef struct tl_init_made {
    bool dir; /* the directory itself (its parents are left) */
    bool key; /* the writer key file (created O_EXCL) */
    bool env; /* the data and lock files (absent before) */
} tl_init_made;
/** Create a log in dir; on failure, what it made is removed. made (may be NULL): what it
 *  made, for a caller whose later step fails (tl_engine_init_undo). */
int tl_engine_init(const char *dir, uint64_t max_attachment, char pubkey_hex[TL_PUBKEY_HEX_SIZE], tl_init_made *made);
void tl_engine_init_undo(const char *dir, const tl_init_made *made);
/** `init DIR` in three steps (init.c): lock DIR (flock: another init answers exists), check
 * it (clearing a killed init's leftovers) and make the staging directory inside it (path into
 * staging); build the log there (tl_engine_init,
 * then an open that creates the appliers' databases); publish it into DIR, key first, data
 * file last, and let the lock go. On a failure between them, abandon removes the staging
 * directory (and DIR, if made_dir) and lets the lock go. */
int tl_engine_init_stage(const char *dir, char *staging, size_t cap, bool *made_dir, int *lock_fd);
int tl_engine_init_publish(const char *dir, const char *staging, int lock_fd);
void tl_engine_init_abandon(const char *dir, const char *staging, bool made_dir, int lock_fd);
/** The internal code a wtxn returns when the map must grow before the batch runs again. */
#define TL_EMAPFULL (-100)

#endif
