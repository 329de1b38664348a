/*
 * threadlog.h — the whole public API of threadlog, an embeddable storage engine for the
 * messaging side of a brand's back office.
 *
 * Every action is a signed, hash-chained msgpack event appended to an append-only LMDB log;
 * read models ("projections") are maintained in the same write transaction as the append.
 * What is not declared in this header is not API.
 *
 * Conventions (see docs/ARCHITECTURE.md):
 *  - Every fallible call returns int: 0 on success, a negative TL_E... code otherwise.
 *    tl_strerror() names the code with the spec's error string ("not_found", "has_replies").
 *    A one-line human detail of the last failure of the calling thread is available from
 *    tl_errdetail() (thread-local, like libgit2's git_error_last()).
 *  - The caller owns what it passes in. Memory the library allocates for the caller is
 *    released with tl_free(); tl_free(NULL) is harmless.
 *  - Event views handed out by iterators borrow from the log's read transaction and stay
 *    valid until the next call on that iterator.
 *  - A NULL where a handle, an output pointer or a callback is required is refused with
 *    TL_EUSAGE (never a crash). A NULL id or text is input like any other: TL_EINVALID, as
 *    in a command. Option structs start with a version field set by their ..._INIT macro;
 *    a NULL options pointer means the defaults, and a NULL report or result pointer, where
 *    the call's documentation allows it, means the caller does not want it.
 *  - No global state, but one list: the logs this process has open, so that a log is never
 *    opened twice in one process (see tl_log_open); with it, fork handlers that keep the list
 *    consistent across fork(), and libsodium's one-time initialisation when the library
 *    loads (a departure from SPEC's "no global state": docs/DECISIONS.md).
 *  - Thread-safety: a tl_log handle may be shared by threads, and every call taking one is
 *    thread-safe, except tl_log_close (no other call may be running on the handle, nor
 *    follow). Concurrent callers of tl_cmd_exec have their commits grouped; queries, iterators,
 *    verify, export and digest read their own snapshot and never block writers -- except
 *    that the map (the file's mapping) can only grow while no snapshot of the process is
 *    open: a write that must grow it waits up to 10 s for them, then answers TL_ESTORAGE
 *    (retry), and a thread that holds a snapshot itself (an open tl_iter, inside a tl_export
 *    callback) is refused at once. A tl_iter or tl_batch belongs to one thread; an open
 *    tl_batch holds the process's write lock until it is committed or aborted (see there).
 *    Calls without a tl_log (tl_cmd_*, tl_result_json, tl_event_json, tl_strerror,
 *    tl_errdetail, tl_version, tl_free) are thread-safe on distinct objects; a tl_cmd may be
 *    executed by several threads at once once it is built, as long as nobody changes it
 *    meanwhile. tl_log_init may race other inits and opens of the same directory, from
 *    threads or processes: one init wins, the others answer TL_EEXISTS.
 *  - Threads of its own: a commit of 128 events or more signs them on two threads (a helper
 *    started for the commit and the caller's); tl_log_verify and a verifying tl_replay check
 *    signatures on `threads` threads; tl_log_warm reads on the caller's thread. Every helper
 *    thread ends before the call returns, and none ever runs a callback.
 *  - Environment: THREADLOG_WARM_HUGE_PAGES (tl_log_warm). Variables named THREADLOG_TEST_*
 *    are knobs for the project's own tests (a tiny map, a pause in close, small replay and
 *    warm chunks): never set them in production.
 *  - Error codes: the TL_E... list below says what each code means; a call answers the
 *    codes its documentation names, plus TL_EUSAGE for a NULL or out-of-range argument,
 *    TL_ENOMEM, and TL_ESTORAGE / TL_ECORRUPT when the storage fails or the data file is
 *    damaged. A damaged data file can also make LMDB itself fault (SIGSEGV/SIGBUS) in a
 *    read: the `threadlog` CLI turns that into a `corrupt` answer; an embedder that reads
 *    untrusted files should do the same (docs/OPERATIONS.md, "A damaged file"; installed in share/doc/threadlog).
 */
#ifndef THREADLOG_H
#define THREADLOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What this header declares is what the shared library exports (it is built with hidden
 * visibility by default). */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0
#define TL_VERSION_STRING "0.1.0"

/** The on-disk log format version written in the genesis event (docs/FORMAT.md). */
#define TL_FORMAT_VERSION 1

#define TL_HASH_BYTES 32      /* BLAKE2b-256 */
#define TL_PUBKEY_BYTES 32    /* ed25519 public key */
#define TL_SIGNATURE_BYTES 64 /* ed25519 signature */
#define TL_PUBKEY_HEX_SIZE 65 /* 64 hex digits and a NUL */
#define TL_ID_MAX 64          /* ids are 1..64 bytes of A-Z a-z 0-9 . _ : - */
#define TL_BODY_MAX 65536     /* message bodies: 1..64 KiB of UTF-8 */
#define TL_DEFAULT_MAX_ATTACHMENT (25u * 1024u * 1024u)
#define TL_MAX_ATTACHMENT_LIMIT (1ull << 30) /* the largest limit init accepts: 1 GiB (an upload is
                                                held in memory, base64 and decoded, while it is checked) */

/* ---------------------------------------------------------------------------------------
 * Errors. One list generates the enum and the strings; the order of the first twelve is the
 * spec's precedence order ("when several rules are broken, the first in this order decides").
 */
#define TL_ERROR_LIST(X)                                                                     \
    X(TL_EINVALID, -1, "invalid_input")                                                      \
    X(TL_ETOOLARGE, -2, "too_large")                                                         \
    X(TL_ENOTFOUND, -3, "not_found")                                                         \
    X(TL_EEXISTS, -4, "exists")                                                              \
    X(TL_EFORBIDDEN, -5, "forbidden")                                                        \
    X(TL_ECONFLICT, -6, "conflict")                                                          \
    X(TL_EDELETED, -7, "deleted")                                                            \
    X(TL_ECHANNEL, -8, "channel_unavailable")                                                \
    X(TL_ETOOMANY, -9, "too_many_attachments")                                               \
    X(TL_EHASREPLIES, -10, "has_replies")                                                    \
    X(TL_EPINNED, -11, "already_pinned")                                                     \
    X(TL_ENOTPINNED, -12, "not_pinned")                                                      \
    X(TL_ESTORAGE, -13, "storage")                                                           \
    X(TL_ECORRUPT, -14, "corrupt")                                                           \
    X(TL_EKEY, -15, "key")                                                                   \
    X(TL_EVERSION, -16, "unsupported_version")                                               \
    X(TL_ENOMEM, -17, "out_of_memory")                                                       \
    X(TL_EREADONLY, -18, "read_only")                                                        \
    X(TL_EUSAGE, -19, "usage")

enum tl_error {
    TL_OK = 0,
#define TL_ERROR_ENUM_(name, value, str) name = value,
    TL_ERROR_LIST(TL_ERROR_ENUM_)
#undef TL_ERROR_ENUM_
};

/** The spec's name of an error code ("not_found"); "ok" for 0, "unknown" otherwise. */
const char *tl_strerror(int code);

/** Human detail of the calling thread's last failure ("m-2 has a reply (m-3)"); never NULL.
 *  The text lives in a thread-local buffer: copy it before the thread's next library call.
 *  Read it only after a call that failed: a call that succeeds does not clear it, and may
 *  leave the detail of a lookup it tried and did without (a key file not there yet, a record
 *  that does not exist yet). */
const char *tl_errdetail(void);

/** The library version at run time ("0.1.0"). */
const char *tl_version(void);

/** Release memory the library allocated for the caller. NULL is harmless. */
void tl_free(void *ptr);

/* ---------------------------------------------------------------------------------------
 * Logs.
 */
typedef struct tl_log tl_log;

typedef struct tl_init_options {
    unsigned version;        /* TL_INIT_OPTIONS_VERSION */
    uint64_t max_attachment; /* bytes, up to TL_MAX_ATTACHMENT_LIMIT (more: TL_EINVALID);
                                0 means TL_DEFAULT_MAX_ATTACHMENT */
} tl_init_options;
#define TL_INIT_OPTIONS_VERSION 1
#define TL_INIT_OPTIONS_INIT {TL_INIT_OPTIONS_VERSION, 0}

/**
 * Create a new log in DIR (created if missing; a non-empty DIR that is not a log is
 * refused with TL_EINVALID, an existing log with TL_EEXISTS). Writes the writer key file
 * (mode 0600) and the genesis event. pubkey_hex (may be NULL) receives the writer's public
 * key in hex. opts may be NULL.
 */
int tl_log_init(const char *dir, const tl_init_options *opts, char pubkey_hex[TL_PUBKEY_HEX_SIZE]);

enum tl_open_flags {
    TL_OPEN_READONLY = 1u << 0, /* no writes; the writer key is not needed */
    TL_OPEN_NOSYNC = 1u << 1,   /* bulk loads: commits are not synced (a crash may lose a tail) */
    TL_OPEN_REPLICA = 1u << 2,  /* a replica: no writer key; written only by tl_log_append_records */
};

typedef struct tl_open_options {
    unsigned version; /* TL_OPEN_OPTIONS_VERSION */
    unsigned flags;   /* tl_open_flags */
} tl_open_options;
#define TL_OPEN_OPTIONS_VERSION 1
#define TL_OPEN_OPTIONS_INIT {TL_OPEN_OPTIONS_VERSION, 0}

/**
 * Open the log in DIR. Checks the format version (TL_EVERSION when unknown). Unless
 * TL_OPEN_READONLY or TL_OPEN_REPLICA, loads the writer key and refuses one readable by group
 * or others (TL_EKEY). opts may be NULL. *out is NULL on failure.
 * One handle per log per process: opening a log that this process already has open (the
 * same data file, by any path) is refused with TL_EUSAGE until that handle is closed. LMDB's
 * locks belong to the process, so a second environment on the file would drop the first
 * one's locks when closed, and other processes could then overwrite pages its snapshots are
 * reading. Share the first handle: it is thread-safe. After fork(), a child must not use the
 * handles it inherited (LMDB environments do not survive fork); it may open the log anew.
 * A writable open also pays an erasure's owed clearing of the data file (tl_erase), if one
 * was cut short and no reader still holds its pages: seconds on a large log, once.
 */
int tl_log_open(tl_log **out, const char *dir, const tl_open_options *opts);

/** Close a log. Waits for nothing: the caller must have finished every call on it. */
void tl_log_close(tl_log *log);

typedef struct tl_log_stats {
    uint64_t events;       /* number of events (the head sequence) */
    uint64_t log_bytes;    /* bytes of the stored records (events + signatures) */
    uint64_t content_bytes;/* bytes of erasable content still stored */
    uint64_t file_bytes;   /* bytes the LMDB data file occupies on disk (allocated blocks) */
    uint64_t map_bytes;    /* current map size */
    uint64_t max_attachment;
} tl_log_stats;

int tl_log_stats_get(tl_log *log, tl_log_stats *out);

/**
 * Map every used page of the data file into this process now (madvise MADV_POPULATE_READ,
 * or touching each page on kernels without it), so that later reads do not each pay a page
 * fault the first time they meet a page. For long-running embedders that serve queries: a
 * fresh process faults on every page it touches once, and on a virtual machine a fault costs
 * several microseconds — the first thousands of queries on a large log are slower until the
 * pages they need are mapped. Where the kernel can hold a file's page cache in 2 MiB folios
 * (ext4 on Linux 6.16 and later, transparent huge pages not "never"), it also maps the file
 * with 2 MiB entries, so that one TLB entry covers 512 pages, for the pages the page cache
 * holds in 2 MiB folios. With THREADLOG_WARM_HUGE_PAGES=1, if less than half of the file ends
 * up mapped so, it drops the clean cached pages of the file chunk by chunk and maps them
 * again (MADV_HUGEPAGE), which reads the file once more (dirty pages, and pages another
 * process maps, stay as they are); off by default, since on a VM measured so the rebuilt
 * pages made the process's queries slower for a while. Costs 0.1–0.5 s
 * per 2.5 GB when cached (2.5 s when the huge pages are built), and the pages' resident
 * memory (shared page cache, not the heap). *mapped_bytes (may be NULL) receives the bytes
 * mapped. Reads the file from disk if it is not cached: best called at start, not on a busy
 * path. Works in 64 MiB chunks, each under its own read snapshot, so a writer that must grow
 * the map meanwhile waits for one chunk at most.
 */
int tl_log_warm(tl_log *log, uint64_t *mapped_bytes);

/**
 * Statistics of every named database as a JSON array ([{"name","entries","pages","bytes"}...]).
 * *json is the caller's, freed with tl_free().
 */
int tl_log_db_stats_json(tl_log *log, char **json);

/** The current writer public key in hex. */
int tl_log_pubkey(tl_log *log, char pubkey_hex[TL_PUBKEY_HEX_SIZE]);

/** Rotate the writer key: appends key.rotated signed by the old key. new_pubkey_hex (may be
 *  NULL) receives the new public key. TL_EREADONLY on a read-only handle, TL_EKEY without a
 *  writer key. */
int tl_log_rotate_key(tl_log *log, char new_pubkey_hex[TL_PUBKEY_HEX_SIZE]);

/* ---------------------------------------------------------------------------------------
 * Reading events.
 */
typedef struct tl_event_view {
    uint64_t seq;
    uint64_t ts;              /* microseconds since the Unix epoch */
    const char *kind;         /* NUL-terminated, borrowed */
    const char *actor;        /* NUL-terminated, borrowed */
    const char *project;      /* NUL-terminated or NULL, borrowed */
    const uint8_t *bytes;     /* the canonical event bytes (what is hashed and signed) */
    size_t len;
    const uint8_t *signature; /* TL_SIGNATURE_BYTES */
} tl_event_view;

typedef struct tl_iter tl_iter;

/** Iterate events from sequence `from` (1 = genesis) on a read snapshot of the log. The
 * snapshot stays open until tl_iter_close: meanwhile LMDB cannot reuse pages freed by any
 * process's later commits, and the file grows with them. Close iterators that wait on a
 * slow consumer (tl_log_follow copies batches instead; docs/OPERATIONS.md). */
int tl_iter_open(tl_log *log, uint64_t from, tl_iter **out);
/** Next event: 0 and *ev filled; TL_ENOTFOUND at the end; TL_ECORRUPT on a bad record;
 * TL_EVERSION on a record of a format this build does not know. */
int tl_iter_next(tl_iter *it, tl_event_view *ev);
void tl_iter_close(tl_iter *it);

/**
 * The `log --json` line of an event: {"seq","ts","actor","kind","project"?,"payload":{..}}.
 * Binary fields (hashes, keys) are hex strings. *json is freed with tl_free().
 */
int tl_event_json(const tl_event_view *ev, char **json);

/**
 * Follow the log: call fn for every event from `from` on, then keep waiting for events
 * appended (by this or other processes) until fn returns non-zero or *stop becomes non-zero.
 * poll_ms bounds the wait between checks (0: 100 ms). Returns 0 when stopped. fn runs with
 * no read snapshot open (events are copied out in batches), so it may append or run
 * commands; the view is valid during the call only. *stop is read between events and polls,
 * with an atomic load: set it from a signal handler, or from another thread with an atomic
 * store (__atomic_store_n(stop, 1, __ATOMIC_RELEASE)), which makes it race-free; or end the
 * follow by returning non-zero from fn.
 */
typedef int (*tl_follow_fn)(const tl_event_view *ev, void *payload);
int tl_log_follow(tl_log *log, uint64_t from, unsigned poll_ms, volatile int *stop,
                  tl_follow_fn fn, void *payload);

/* ---------------------------------------------------------------------------------------
 * Raw appends and record exchange.
 *
 * Domain events are only appended through commands (below). Applications may append their
 * own extension events, whose kind starts with "x."; projections ignore them.
 * payload_msgpack must be a msgpack map with string keys (it is re-encoded canonically).
 */
typedef struct tl_draft {
    const char *kind;
    const char *actor;
    const char *project; /* may be NULL */
    const uint8_t *payload_msgpack;
    size_t payload_len;
} tl_draft;

/** Append n drafts in one synced commit; *first_seq (may be NULL) receives the first seq
 *  (0 when n is 0: nothing is appended and the call succeeds; 0 on failure). A draft's actor
 *  must be "@operator" or an id, and its project NULL or an id (1-64 bytes of
 *  A-Z a-z 0-9 . _ : -), else TL_EINVALID; whether they name an existing user or project is
 *  the extension's own business. */
int tl_log_append(tl_log *log, const tl_draft *drafts, size_t n, uint64_t *first_seq);

/**
 * Take records from another log as stored bytes (event bytes followed by the signature):
 * each is checked (decoding, sequence, chain, signature by the current key) and appended
 * unchanged. Appliers run as for local events. All or nothing. No writer key is needed: a
 * replica (TL_OPEN_REPLICA) follows its source across key rotations. A record that does not
 * follow the head (records already taken, sent again after a lost answer; a gap) is
 * TL_ECONFLICT: read the head (tl_log_stats_get) and send from the next sequence. A record
 * that does not decode, does not chain, goes back in time or is not signed by the current key
 * is TL_ECORRUPT: the source, or what carried its records, is damaged — the replica is not.
 */
int tl_log_append_records(tl_log *log, const uint8_t *const *records, const size_t *lens,
                          size_t n);

/** The stored record (event bytes + signature) of seq. *rec is freed with tl_free(). */
int tl_log_record(tl_log *log, uint64_t seq, uint8_t **rec, size_t *len);

/* ---------------------------------------------------------------------------------------
 * Verification and checkpoints.
 */
typedef struct tl_verify_options {
    unsigned version;              /* TL_VERIFY_OPTIONS_VERSION */
    const uint8_t *pinned_key;     /* TL_PUBKEY_BYTES or NULL: trust the genesis key */
    const char *checkpoint_json;   /* a checkpoint the log must still extend, or NULL */
    unsigned threads;              /* signature checks spread over this many threads; 0 = 2 */
    int check_content;             /* check commitments of content still present (default 1) */
    void (*progress)(uint64_t done, uint64_t total, void *payload); /* may be NULL */
    void *progress_payload;
} tl_verify_options;
#define TL_VERIFY_OPTIONS_VERSION 1
#define TL_VERIFY_OPTIONS_INIT {TL_VERIFY_OPTIONS_VERSION, NULL, NULL, 0, 1, NULL, NULL}

typedef struct tl_verify_report {
    uint64_t events;          /* events checked */
    uint64_t contents;        /* content commitments checked */
    uint64_t first_bad_seq;   /* 0 when the log verified */
    char reason[256];         /* why the first bad event is bad */
    uint64_t replica_since;   /* a replica: events from this seq on came from another log without
                               * their content, which was not asked for (0: not a replica) */
} tl_verify_report;

/**
 * Check the whole log: sequence, format, chain, timestamps, signatures along the key chain,
 * content commitments, and the checkpoint if given. Returns 0 when everything holds,
 * TL_ECORRUPT with report->first_bad_seq and report->reason otherwise — except for damage
 * found before the events: a damaged LMDB free-page list is TL_ECORRUPT with first_bad_seq 0
 * (the detail in tl_errdetail()), and a malformed checkpoint is TL_EINVALID.
 */
int tl_log_verify(tl_log *log, const tl_verify_options *opts, tl_verify_report *report); /* report required */

/**
 * A signed checkpoint of the head: {"seq","hash","ts","key","signature"} (hex fields).
 * *json is freed with tl_free(). Signed with the key the head names (a key another process
 * rotated to is taken from its file). Needs a handle holding the writer key (TL_EKEY on a
 * read-only or replica handle). Thread-safe; takes no writer lock.
 */
int tl_log_checkpoint(tl_log *log, char **json);

/* ---------------------------------------------------------------------------------------
 * Commands: the domain's actions (SPEC §1, §4). A command is built with the small builder
 * below or parsed from one JSON line; both go through the same validation.
 */
typedef struct tl_cmd tl_cmd;

typedef struct tl_result {
    int code;               /* 0 or a TL_E... code */
    uint64_t seq;           /* sequence of the event appended (0 for a no-op or failure) */
    int noop;               /* the command changed nothing (read twice, same status) */
    int duplicate;          /* a retry answered with the original result */
    char id[TL_ID_MAX + 1]; /* id of what was created, or "" */
    char message_id[TL_ID_MAX + 1]; /* topic.create: the first message's id */
    char message[256];      /* one-line human message when code != 0 (with code 0: a note, tl_erase) */
} tl_result;

/** A new command named op ("message.send"). */
int tl_cmd_new(tl_cmd **out, const char *op);
/** Parse one JSON line. On failure *out is NULL and res (if given) holds the error. */
int tl_cmd_parse(tl_cmd **out, const char *json, size_t len, tl_result *res);
int tl_cmd_set_str(tl_cmd *cmd, const char *field, const char *value);
int tl_cmd_set_int(tl_cmd *cmd, const char *field, int64_t value);
/** Append a string to a list field ("attachments"). */
int tl_cmd_add_str(tl_cmd *cmd, const char *field, const char *value);
/** Set "data" of attachment.upload from raw bytes (base64-encoded for the command). */
int tl_cmd_set_data(tl_cmd *cmd, const void *bytes, size_t len);
/**
 * Declare "data" of attachment.upload by its size alone, without its bytes: for a file known
 * to be over the log's attachment limit, so that it is refused without being read, with the
 * rules' first error in the spec's order (an invalid_input of another field before too_large).
 * Such a command is never accepted (invalid_input when the size turns out within the limit)
 * and is never taken for a retry.
 */
int tl_cmd_set_data_size(tl_cmd *cmd, uint64_t len);
void tl_cmd_free(tl_cmd *cmd);

/** Execute one command in its own durable commit (grouped with concurrent callers). */
int tl_cmd_exec(tl_log *log, const tl_cmd *cmd, tl_result *res);

/** The spec's JSON result line ({"ok":true,"seq":9,"id":"m-2"}). *json freed with tl_free.
 *  The strings of res are read up to their arrays' size at most, terminated or not. */
int tl_result_json(const tl_result *res, char **json);

/**
 * Batches: several commands in one commit (group commit). Results filled by tl_batch_exec
 * are provisional: they become final, and the commands durable, when tl_batch_commit
 * returns 0 (the library may re-run the batch after growing the map, refilling the results,
 * so the tl_result and tl_cmd objects must stay alive until then). A batch that meets the end
 * of the map is no exception: tl_batch_exec then answers TL_ESTORAGE for that command and the
 * rest ("the map is full: tl_batch_commit grows it and runs the batch again"), and
 * tl_batch_commit grows the map and runs every command again — keep executing and commit.
 * A failed commit fails every command of the batch (TL_ESTORAGE, or TL_ENOMEM) and returns
 * the failure's code.
 * An open batch holds the process's write lock from tl_batch_begin to its commit or abort:
 * other threads' writes wait for it, and the thread that holds it cannot write through any
 * other call meanwhile: tl_batch_begin, tl_cmd_exec, tl_erase, tl_log_append, tl_log_append_records,
 * tl_log_rotate_key and an in-place tl_replay on that thread are refused at once with
 * TL_EUSAGE (they would wait for the thread itself). tl_batch_commit(NULL) is TL_EUSAGE.
 */
typedef struct tl_batch tl_batch;
int tl_batch_begin(tl_log *log, tl_batch **out);
int tl_batch_exec(tl_batch *batch, const tl_cmd *cmd, tl_result *res);
int tl_batch_commit(tl_batch *batch); /* also frees the batch */
void tl_batch_abort(tl_batch *batch); /* also frees the batch */

/**
 * Erase the content of a message or attachment (operator action, actor @operator). Ids are
 * unique per kind, so a message and an attachment may share one: tl_erase then refuses with
 * TL_EINVALID and tl_erase_kind names the kind ("message" or "attachment"; NULL: either).
 * After the erasure's commit, the data file is cleared of the erased bytes (docs/FORMAT.md
 * §8): one more commit that changes nothing, then zeros over every free page no reader's
 * snapshot holds and over the unused space of every page, synced. A page a reader still
 * holds is left, and res->message then says so (with code 0): erasing the same content again
 * (res->noop: no new event) clears it once the reader is done, and so does the first writable
 * tl_log_open after that (the clearing owed is recorded with the erasure, so a process killed
 * before its clearing leaves it to that open too). Reads every page header of the file: seconds on a large log. If the
 * clearing fails, the erasure stands and the call answers TL_ESTORAGE saying so.
 */
int tl_erase(tl_log *log, const char *id, const char *reason, tl_result *res);
int tl_erase_kind(tl_log *log, const char *kind, const char *id, const char *reason, tl_result *res);

/**
 * Fetch an attachment's bytes for a user who may see it, checked against its commitment.
 * *bytes is freed with tl_free(). name/mime may be NULL; else freed with tl_free().
 */
int tl_attachment_get(tl_log *log, const char *id, const char *as, uint8_t **bytes,
                      size_t *len, char **name, char **mime);

/* ---------------------------------------------------------------------------------------
 * Queries (SPEC §3): each answers with the JSON shape of the spec, as `as` sees it.
 * *json is freed with tl_free(). On failure, tl_errdetail() says why.
 */
typedef struct tl_query {
    unsigned version;    /* TL_QUERY_VERSION */
    const char *as;      /* the viewing user (required) */
    const char *project;
    const char *account;
    const char *channel; /* notes | chat | ambassador | support */
    const char *topic;
    const char *type;    /* application | order | video */
    const char *sort;    /* activity (default) | unread */
    const char *cursor;  /* from a previous page's "next" of the same query (else TL_EINVALID) */
    unsigned limit;      /* 0 = default page size */
    int more;            /* dashboard "See more" */
} tl_query;
#define TL_QUERY_VERSION 1
#define TL_QUERY_INIT {TL_QUERY_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0}

int tl_tracking_query(tl_log *log, const tl_query *q, char **json);
int tl_dashboard_query(tl_log *log, const tl_query *q, char **json);
int tl_unread_query(tl_log *log, const tl_query *q, char **json);
int tl_messages_query(tl_log *log, const tl_query *q, char **json);
int tl_history_query(tl_log *log, const tl_query *q, char **json);
int tl_topics_query(tl_log *log, const tl_query *q, char **json);

/** The projection digest (BLAKE2b-256 over every projection's content), hex. */
int tl_digest(tl_log *log, char digest_hex[TL_PUBKEY_HEX_SIZE]);

/* ---------------------------------------------------------------------------------------
 * Replay.
 */
typedef struct tl_replay_options {
    unsigned version;        /* TL_REPLAY_OPTIONS_VERSION */
    uint64_t until_seq;      /* 0 = to the end */
    uint64_t until_ts;       /* 0 = no time bound (microseconds) */
    int verify;              /* check chain and signatures while replaying */
    unsigned threads;        /* for signature checks; 0 = 2 */
    const char *into_dir;    /* NULL: in place; else build a separate copy there */
    void (*progress)(uint64_t done, uint64_t total, void *payload);
    void *progress_payload;
} tl_replay_options;
#define TL_REPLAY_OPTIONS_VERSION 1
#define TL_REPLAY_OPTIONS_INIT {TL_REPLAY_OPTIONS_VERSION, 0, 0, 0, 0, NULL, NULL, NULL}

typedef struct tl_replay_report {
    uint64_t events;
    double seconds;
    char digest[TL_PUBKEY_HEX_SIZE];
    tl_verify_report verify;
} tl_replay_report;

/**
 * Rebuild every projection (and the rules' state) from the log alone (docs/OPERATIONS.md).
 * In place (into_dir NULL; the log open writable): one write transaction, so readers keep the
 * old projections until the new ones commit and writers wait; until_seq/until_ts are refused
 * (TL_EUSAGE: the live projections must cover the whole log; the CLI's in-place "preview"
 * is a replay into a temporary directory). Into into_dir (missing or empty; a log there is TL_EEXISTS, anything else there TL_EINVALID): a compacted copy of
 * a read snapshot without the writer key (it can never be appended to), cut after until_seq /
 * the last event at or before until_ts when given (TL_EUSAGE past the head or before the
 * genesis), replayed there; log may be open read-only. The sequence, the chain of hashes, time
 * order and the key chain are checked always; with verify, signatures, content commitments
 * and meta's copies of the genesis key and attachment limit too, before events are applied. The first bad event gives TL_ECORRUPT with report->verify filled, and nothing is
 * replaced. report->digest is tl_digest() of the result ("" if that
 * failed). progress (may be NULL) is called from the calling thread. opts may be NULL.
 */
int tl_replay(tl_log *log, const tl_replay_options *opts, tl_replay_report *report);

/* ---------------------------------------------------------------------------------------
 * Export (docs/EXPORT.md): the history of one project, one account or the whole log, with
 * everything an auditor needs to check each event without trusting threadlog.
 */
typedef enum tl_export_format {
    TL_EXPORT_JSONL = 0, /* header (scope, head, key chain), one line per event, trailer */
    TL_EXPORT_CSV = 1    /* a readable timeline: time, seq, who, channel, what */
} tl_export_format;

typedef struct tl_export_options {
    unsigned version;    /* TL_EXPORT_OPTIONS_VERSION */
    const char *project; /* only this project's events; NULL: no project filter */
    const char *account; /* only this account's events (its projects, its support
                            conversation, its creation and its members); not with project */
    int format;          /* tl_export_format */
} tl_export_options;
#define TL_EXPORT_OPTIONS_VERSION 1
#define TL_EXPORT_OPTIONS_INIT {TL_EXPORT_OPTIONS_VERSION, NULL, NULL, TL_EXPORT_JSONL}

/**
 * Receives one line of the export, without its newline, NUL-terminated, borrowed until fn
 * returns. Returning non-zero stops the export, and tl_export returns that value.
 */
typedef int (*tl_export_fn)(const char *line, size_t len, void *payload);

/**
 * Export from one read snapshot of the log (writers are not blocked; the snapshot is held
 * until the last line, so a slow fn makes the file grow with other commits meanwhile,
 * docs/OPERATIONS.md). An unknown project or
 * account is TL_ENOTFOUND; a record that does not decode is TL_ECORRUPT. Stored content is
 * exported as stored, unchecked: the export's verifier checks it. Thread-safe.
 */
int tl_export(tl_log *log, const tl_export_options *opts, tl_export_fn fn, void *payload);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* THREADLOG_H */
