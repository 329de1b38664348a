/*
 * proj.h — what the projection files share, and nothing outside projections/ may use:
 * key building, counters, the user groups and project lists of the catalog, the audience
 * and class-viewer lists used for fan-out, merged range scans, and query plumbing.
 *
 * Key encoding, common to every projection database: a one-byte tag, then components.
 * Ids are written followed by a NUL byte: ids never contain NUL and every id byte sorts
 * after it, so "a\0" < "ab\0" and a key's order is the order of its ids. Numbers are 8-byte
 * big-endian; "newest first" orders store the complement (~x) so LMDB's ascending order
 * serves them. Keys stay far below LMDB's 511-byte limit (at most three ids).
 *
 * Appliers run in registration order (registry.c): state, catalog, messages, unread,
 * tracking, dashboard, history. A projection may read the databases of those before it,
 * which already reflect the current event.
 */
#ifndef TL_PROJ_H
#define TL_PROJ_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "log.h"
#include "state.h"

/* ---------------------------------------------------------------- keys */

#define TLP_KEY_MAX 256

typedef struct tlp_key {
    uint8_t b[TLP_KEY_MAX];
    size_t n;
} tlp_key;

static inline void tlp_key_init(tlp_key *k, char tag) { k->b[0] = (uint8_t)tag; k->n = 1; }
/* ids are at most TL_ID_MAX bytes; longer strings are cut so the key never overflows */
static inline void tlp_key_str(tlp_key *k, const char *s) {
    size_t n = strnlen(s, TL_ID_MAX);
    if (k->n + n + 1 > TLP_KEY_MAX) n = 0;
    memcpy(k->b + k->n, s, n);
    k->n += n;
    k->b[k->n++] = 0;
}
static inline void tlp_key_u8(tlp_key *k, unsigned v) { if (k->n < TLP_KEY_MAX) k->b[k->n++] = (uint8_t)v; }
static inline void tlp_key_u64(tlp_key *k, uint64_t v) {
    if (k->n + 8 > TLP_KEY_MAX) return;
    tl_seq_key(k->b + k->n, v);
    k->n += 8;
}
static inline void tlp_key_raw(tlp_key *k, const void *p, size_t n) {
    if (k->n + n > TLP_KEY_MAX) return;
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

/* The database i of the applier registered under name (0 when absent). */
MDB_dbi tlp_dbi(tl_log *log, const char *applier, unsigned i);

/* Register an applier with one database of the same name, in the digest. */
int tlp_register(tl_log *log, const char *name, int (*apply)(tl_wtxn *, const tl_event *, void *));

/* ---------------------------------------------------------------- counters */

/** A counter (8-byte big-endian value; absent = 0). */
int tlp_get_u64(MDB_txn *txn, MDB_dbi db, const tlp_key *k, uint64_t *out);
/** Add delta to a counter, never below zero; a counter reaching zero is deleted so that a
 * live state and a replayed one hold the same keys. */
int tlp_add_u64(tl_wtxn *w, MDB_dbi db, const tlp_key *k, int64_t delta);
int tlp_put_u64(tl_wtxn *w, MDB_dbi db, const tlp_key *k, uint64_t v);

/* ---------------------------------------------------------------- write-back buffers (overlay.c) */

/*
 * The fan-out projections (unread, tracking, dashboard) write through a per-transaction
 * buffer of their database, written out in key order at commit. Point operations only;
 * values are borrowed until the next write to the same buffer.
 */
typedef struct tlp_ovl tlp_ovl;

/** Register an applier with one database of the same name, in the digest, whose writes go
 * through a buffer; apply() receives the buffer as its state. */
int tlp_register_buffered(tl_log *log, const char *name, int (*apply)(tl_wtxn *, const tl_event *, void *));
/** The buffer of applier name (NULL when it has none). */
tlp_ovl *tlp_ovl_of(tl_log *log, const char *applier);
/** 0 (v set), TL_ENOTFOUND, or a failure. */
int tlp_ovl_get(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, MDB_val *v);
int tlp_ovl_put(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, const void *v, size_t n);
/**
 * Put a key the caller knows the database does not hold unless the buffer has an entry for
 * it (a new message's entries; an index key that differs from the row's current one). When
 * such a key is deleted again before the buffer is written out — most index keys of a replay
 * are — the write-out skips it instead of looking it up in LMDB.
 */
int tlp_ovl_put_absent(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, const void *v, size_t n);
/** Delete k (absent is not an error). */
int tlp_ovl_del(tl_wtxn *w, tlp_ovl *o, const tlp_key *k);
/** tlp_add_u64 through the buffer. */
int tlp_ovl_add_u64(tl_wtxn *w, tlp_ovl *o, const tlp_key *k, int64_t delta);
/** A hint: k will be read or written soon. Fan-out loops announce all their keys first, so
 * the table's cache misses overlap instead of coming one after another. */
void tlp_ovl_prefetch(const tlp_ovl *o, const tlp_key *k);
/** Write the buffer into the transaction now (before another applier reads or scans the
 * database directly). */
int tlp_ovl_write_out(tl_wtxn *w, tlp_ovl *o);
/** Call at the start of an event: writes the buffer out early when it has grown large. */
int tlp_ovl_bound(tl_wtxn *w, tlp_ovl *o);
/**
 * Work an applier defers within a transaction (tracking's coalesced row refreshes): run() is
 * called at commit before any buffer is written out (it may read other projections'
 * buffers; its failure fails the transaction), forget() when the transaction is aborted,
 * release() when the log is closed.
 */
typedef struct tlp_ovl_deferred {
    int (*run)(tl_wtxn *w, tlp_ovl *o, void *ctx);
    void (*forget)(void *ctx);
    void (*release)(void *ctx);
    void *ctx;
} tlp_ovl_deferred;
void tlp_ovl_set_deferred(tlp_ovl *o, const tlp_ovl_deferred *d);
void *tlp_ovl_deferred_ctx(const tlp_ovl *o);
/* the applier hooks */
int tlp_ovl_prepare(tl_wtxn *w, void *state);
int tlp_ovl_flush(tl_wtxn *w, void *state);
void tlp_ovl_discard(void *state);
void tlp_ovl_release(void *state);

/* ---------------------------------------------------------------- users and audiences */

typedef struct tlp_user {
    char id[TL_IDBUF];
    uint8_t role;
} tlp_user;

typedef struct tlp_users {
    tlp_user *v;
    size_t n, cap;
} tlp_users;

int tlp_users_add(tlp_users *l, const char *id, int role);
void tlp_users_free(tlp_users *l);

/** A user record as the audience helpers of state.h take it, from a role and account. */
void tlp_user_rec(tl_user_rec *u, int role, const char *account);

/**
 * The users of channel ch of project p (or of account's support conversation when p is
 * NULL) who can have unread messages: members, plus staff (chat, support), plus the
 * ambassador (ambassador channel). Auditors never. Appends to out.
 */
int tlp_audience(tl_wtxn *w, const tl_project_rec *p, const char *account, int ch, tlp_users *out);

/**
 * The users who see history class cls of project p (0 = project-level entries, then
 * TL_CH_NOTES, TL_CH_CHAT, TL_CH_AMBASSADOR), auditors included. Appends to out.
 */
int tlp_class_viewers(tl_wtxn *w, const tl_project_rec *p, int cls, tlp_users *out);

/** The history class of the current event of p (state already applied it): the class c
 * with p->last_seq[c] == seq, or -1 when the event is not a history entry. */
int tlp_event_class(const tl_project_rec *p, uint64_t seq);

/* Call fn with each id that follows prefix in db (keys prefix + id + NUL). */
typedef int (*tlp_id_fn)(const char *id, void *ctx);
int tlp_each_id(MDB_txn *txn, MDB_dbi db, const tlp_key *prefix, tlp_id_fn fn, void *ctx);

/* ---------------------------------------------------------------- the catalog (catalog.c) */

int tlp_catalog_register(tl_log *log);
/**
 * The users of catalog group which ('M' members of account, 'S' staff, 'X' auditors), as w
 * sees them; borrowed from the transaction's group cache until the next event is applied.
 */
int tlp_catalog_group(tl_wtxn *w, char which, const char *account, const tlp_users **out);
/** Every project of account (NULL: every project), in id order. */
int tlp_each_project(MDB_txn *txn, tl_log *log, const char *account, tlp_id_fn fn, void *ctx);
/** Every account, in id order. */
int tlp_each_account(MDB_txn *txn, tl_log *log, tlp_id_fn fn, void *ctx);
/** Topics of project in creation order. */
int tlp_each_topic(MDB_txn *txn, tl_log *log, const char *project, tlp_id_fn fn, void *ctx);
/** A project's title (borrowed until the transaction ends). */
int tlp_project_title(MDB_txn *txn, tl_log *log, const char *project, tl_bytes *title);
/** A topic's title and creation time (title borrowed until the transaction ends). */
int tlp_topic_info(MDB_txn *txn, tl_log *log, const char *topic, tl_bytes *title, uint64_t *ts);

/* ---------------------------------------------------------------- events */

/** Does the event create a message? Fills id (ambassador message, topic's first message,
 * sent, replied, note). */
bool tlp_created_message(const tl_event *ev, char id[TL_IDBUF]);
/** A payload string into a NUL-terminated buffer ("" when absent or too long). */
void tlp_ev_cstr(const tl_event *ev, const char *key, char *dst, size_t cap);
/** The message and project records of message id (project zeroed for support). */
int tlp_message_ctx(tl_wtxn *w, const char *id, tl_message_rec *m, tl_project_rec *p);
/** The type bucket of a message for unread counts: the project type, or 4 for support. */
static inline int tlp_bucket(const tl_message_rec *m, const tl_project_rec *p) { return m->project[0] ? p->type : 4; }

/* ---------------------------------------------------------------- messages (messages.c) */

int tlp_messages_register(tl_log *log);
/** Non-deleted messages in a channel of a project (ch NOTES/CHAT/AMBASSADOR), in a topic,
 * or in an account's support conversation. */
int tlp_count_channel(MDB_txn *txn, tl_log *log, const char *project, int ch, uint64_t *n);
int tlp_count_topic(MDB_txn *txn, tl_log *log, const char *topic, uint64_t *n);
int tlp_count_support(MDB_txn *txn, tl_log *log, const char *account, uint64_t *n);
/** Call fn with each non-deleted message (id, creating seq) of a project channel. */
typedef int (*tlp_msg_fn)(const char *id, uint64_t seq, void *ctx);
int tlp_each_channel_message(MDB_txn *txn, tl_log *log, const char *project, int ch, tlp_msg_fn fn, void *ctx);
/** Render the spec's MESSAGE object of message id as viewer (u) sees it. A caller that
 * knows the message is unread for viewer (a dashboard entry exists for exactly those) says
 * so with known_unread, which spares the read-mark lookup; NULL looks it up. */
int tlp_message_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const char *id, const tl_message_rec *m,
                     const char *viewer, const tl_user_rec *u, const bool *known_unread);
/** The attachments array [{id,name,size,mime}] of m. */
int tlp_attachments_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const tl_message_rec *m);
/** "body":..., plus "erased":true when the content was erased. */
int tlp_body_json(tl_strbuf *sb, MDB_txn *txn, tl_log *log, const tl_message_rec *m);

/* ---------------------------------------------------------------- the others */

int tlp_unread_register(tl_log *log);
int tlp_tracking_register(tl_log *log);
int tlp_dashboard_register(tl_log *log);
int tlp_history_register(tl_log *log);
/** Unread count of user in one channel of a project. */
int tlp_unread_channel(MDB_txn *txn, tl_log *log, const char *user, const char *project, int ch, uint64_t *n);
/** Unread count of user in one type bucket (1..3 project types, 4 support). */
int tlp_unread_bucket(MDB_txn *txn, tl_log *log, const char *user, int bucket, uint64_t *n);
int tlp_unread_topic(MDB_txn *txn, tl_log *log, const char *user, const char *topic, uint64_t *n);
/** While applying: user's unread count in project (all channels), through unread's buffer. */
int tlp_unread_project_sum(tl_wtxn *w, const char *user, const tl_user_rec *u, const char *project,
                           const tl_project_rec *p, uint64_t *out);

/* ---------------------------------------------------------------- merged range scans */

#define TLP_MERGE_MAX 4

/*
 * A merge of up to four key ranges of one database, each given by a prefix, ordered by what
 * follows the prefix (the "suffix"). Used wherever a page spans several ranges: tracking
 * over the three types, history over its visibility streams, auditors' message lists.
 */
typedef struct tlp_merge {
    MDB_cursor *cur[TLP_MERGE_MAX];
    tlp_key prefix[TLP_MERGE_MAX];
    MDB_val k[TLP_MERGE_MAX], v[TLP_MERGE_MAX];
    bool live[TLP_MERGE_MAX];
    int n;
    uint8_t out[TLP_KEY_MAX]; /* the suffix handed out by tlp_merge_next */
} tlp_merge;

/** Position every range at its first suffix strictly after `after` (NULL: at the start). */
int tlp_merge_open(tlp_merge *m, MDB_txn *txn, MDB_dbi db, const tlp_key *prefixes, int n, const uint8_t *after,
                   size_t after_len);
/** The next smallest suffix: 0, or TL_ENOTFOUND when every range is done. */
int tlp_merge_next(tlp_merge *m, const uint8_t **suffix, size_t *suffix_len, MDB_val *val, int *which);
void tlp_merge_close(tlp_merge *m);

/* ---------------------------------------------------------------- queries */

#define TLP_PAGE_DEFAULT 50
#define TLP_PANEL_DEFAULT 5
#define TLP_PAGE_MAX 10000

/** ids: 1..64 bytes of A-Z a-z 0-9 . _ : - (SPEC "Ids") */
bool tlp_id_valid(const char *s);
/** Check q->as and read the viewing user (TL_EINVALID when missing, TL_ENOTFOUND). */
int tlp_viewer(MDB_txn *txn, tl_log *log, const tl_query *q, tl_user_rec *u);
/** Read a project for a query (TL_EINVALID when missing or malformed, TL_ENOTFOUND). */
int tlp_query_project(MDB_txn *txn, tl_log *log, const char *id, tl_project_rec *p);
unsigned tlp_limit(const tl_query *q, unsigned dflt);
/** A cursor's tag: which query, viewer and list it belongs to (common.c). */
#define TLP_CURSOR_TAG 4
/** Decode q->cursor, an opaque cursor of a `kind` query ('t'racking, 'd'ashboard's "See
 * more", 'm'essages, 'h'istory), into at most cap bytes of key; TL_EINVALID when malformed
 * or when it came from another query, viewer or list. */
int tlp_cursor_decode(const tl_query *q, char kind, uint8_t *out, size_t cap, size_t *len);
/** Append "next":"<hex of p and the query's tag>" or "next":null. */
void tlp_cursor_json(tl_strbuf *sb, const tl_query *q, char kind, const uint8_t *p, size_t n);
/** Run body(txn) in a read transaction and hand the JSON out (the common shape of a query). */
typedef int (*tlp_query_fn)(MDB_txn *txn, tl_log *log, const tl_query *q, tl_strbuf *sb);
int tlp_run_query(tl_log *log, const tl_query *q, tlp_query_fn fn, char **json);
/** A JSON string from a NUL-terminated C string, or null when s is NULL or empty. */
void tlp_json_str_or_null(tl_strbuf *sb, const char *s);

#endif
