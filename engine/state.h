/*
 * state.h — the domain state the rules need, kept by an applier in the "state" database
 * and rebuilt from the log like any projection: accounts, users, projects, topics,
 * messages, attachments, read marks, and the indexes that give a channel's audience.
 *
 * Records are fixed-size C structs (the state is derived data, rebuilt by replay, never
 * exchanged), stored with their zero runs squeezed out (zeropack.c), so reading one is a
 * single mdb_get and an unpacking copy.
 *
 * Event payloads (docs/FORMAT.md, "Event kinds") — project ids travel in the envelope:
 *   account.created   {id, name, request}
 *   user.created      {id, role, name, account?, request}
 *   project.created   {id, account, type, title, status, ambassador?, ambassador_message_id?,
 *                      body_commit?, body_size?, request}          (envelope project = id)
 *   project.status_changed {status, previous}
 *   topic.created     {id, title, message_id, body_commit, body_size, attachments?, request}
 *   message.sent      {id, channel, topic?, account?, body_commit, body_size, attachments?, request}
 *   message.replied   {id, parent, channel, topic?, account?, body_commit, body_size, attachments?, request}
 *   note.added        {id, body_commit, body_size, attachments?, request}
 *   message.read / message.unread / message.pinned / message.unpinned / message.deleted
 *                     {message, account?}
 *   attachment.uploaded {id, name, mime, data_commit, data_size, account?, request}
 *   content.erased    {target, target_kind ("message"|"attachment"), commitment, reason}
 * `account` appears on support-conversation events (no project). `request` is the retry
 * fingerprint (see commands.c).
 */
#ifndef TL_STATE_H
#define TL_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define TL_IDBUF (TL_ID_MAX + 1)
#define TL_STATUS_MAX 64
#define TL_NAME_FIELD_MAX 255 /* attachment names, user/account names are not limited beyond TL_TEXT_MAX */
#define TL_MIME_MAX 127
#define TL_TEXT_MAX 1024      /* titles and display names */
#define TL_ATTACH_MAX 3

typedef enum { TL_ROLE_MEMBER = 1, TL_ROLE_STAFF, TL_ROLE_AMBASSADOR, TL_ROLE_AUDITOR } tl_role;
typedef enum { TL_TYPE_APPLICATION = 1, TL_TYPE_ORDER, TL_TYPE_VIDEO } tl_ptype;
typedef enum { TL_CH_NOTES = 1, TL_CH_CHAT, TL_CH_AMBASSADOR, TL_CH_SUPPORT } tl_channel;

const char *tl_role_name(int role);     /* "member", ... or NULL */
int tl_role_parse(const char *s);       /* 0 when unknown */
const char *tl_ptype_name(int type);
int tl_ptype_parse(const char *s);
const char *tl_channel_name(int ch);
int tl_channel_parse(const char *s);

typedef struct tl_account_rec {
    uint64_t seq;
    uint8_t request[TL_HASH_BYTES];
} tl_account_rec;

typedef struct tl_user_rec {
    uint8_t role;
    char account[TL_IDBUF]; /* members only */
    uint64_t seq;
    uint8_t request[TL_HASH_BYTES];
} tl_user_rec;

typedef struct tl_project_rec {
    char account[TL_IDBUF];
    uint8_t type;
    char status[TL_STATUS_MAX + 1];
    char ambassador[TL_IDBUF];  /* "" when none */
    bool ambassador_channel;    /* the ambassador wrote at creation */
    char ambassador_message[TL_IDBUF]; /* that first message's id, "" when none */
    /* newest history entry (seq) and newest activity (ts) per visibility class, indexed by
     * tl_channel (NOTES, CHAT, AMBASSADOR) and 0 for project-level entries (created, status);
     * a viewer's version / last_activity is the max over the classes they may see */
    uint64_t last_seq[4];
    uint64_t last_ts[4];
    uint64_t seq;
    uint8_t request[TL_HASH_BYTES];
} tl_project_rec;

typedef struct tl_topic_rec {
    char project[TL_IDBUF];
    char author[TL_IDBUF];
    char message_id[TL_IDBUF];
    uint64_t seq;
    uint8_t request[TL_HASH_BYTES];
} tl_topic_rec;

/* Bodies up to this many bytes are copied into their message's record (body_inline). */
#define TL_BODY_INLINE_MAX 192

typedef struct tl_message_rec {
    char project[TL_IDBUF];   /* "" for support */
    char account[TL_IDBUF];   /* the project's account, or the support conversation's */
    uint8_t channel;          /* tl_channel */
    char topic[TL_IDBUF];     /* chat only */
    char parent[TL_IDBUF];    /* replies */
    char author[TL_IDBUF];
    uint64_t seq;             /* the event that created it */
    uint64_t ts;
    bool deleted;
    bool pinned;
    uint64_t pin_seq;         /* when it was last pinned */
    uint32_t replies;         /* direct replies not deleted */
    uint8_t nattach;
    char attachments[TL_ATTACH_MAX][TL_IDBUF];
    uint8_t body_commit[TL_HASH_BYTES];
    uint32_t body_size;
    uint8_t request[TL_HASH_BYTES];
    /* A copy of a short body (body_size <= TL_BODY_INLINE_MAX), so that a page showing the
     * message needs no lookup in the content database: made when the message is created, if
     * its content is stored then (a replay after an erasure finds none), cleared by the
     * content's erasure (content.erased), exactly like the content itself. */
    bool body_inline;
    char body[TL_BODY_INLINE_MAX];
} tl_message_rec;

typedef struct tl_attachment_rec {
    char project[TL_IDBUF];  /* "" for support */
    char account[TL_IDBUF];
    char uploader[TL_IDBUF];
    char used_by[TL_IDBUF];  /* the message carrying it, "" while unused */
    char name[TL_NAME_FIELD_MAX + 1];
    char mime[TL_MIME_MAX + 1];
    uint64_t size;
    uint8_t data_commit[TL_HASH_BYTES];
    uint64_t seq;
    uint8_t request[TL_HASH_BYTES];
} tl_attachment_rec;

/** Register the state applier (opens/creates the "state" database). */
int tl_state_register(tl_log *log);

/* Lookups inside any transaction: 0, TL_ENOTFOUND, or a storage failure. */
int tl_state_account(MDB_txn *txn, tl_log *log, const char *id, tl_account_rec *out);
int tl_state_user(MDB_txn *txn, tl_log *log, const char *id, tl_user_rec *out);
int tl_state_project(MDB_txn *txn, tl_log *log, const char *id, tl_project_rec *out);
int tl_state_topic(MDB_txn *txn, tl_log *log, const char *id, tl_topic_rec *out);
int tl_state_message(MDB_txn *txn, tl_log *log, const char *id, tl_message_rec *out);
int tl_state_attachment(MDB_txn *txn, tl_log *log, const char *id, tl_attachment_rec *out);
/*
 * The same lookups inside a write transaction, through its record cache: every applier of an
 * event reads the event's message and project, which the state applier has just written, so
 * the transaction keeps the last few it wrote or read (written through by every record write
 * of state.c; records change nowhere else).
 */
int tl_wstate_project(tl_wtxn *w, const char *id, tl_project_rec *out);
int tl_wstate_message(tl_wtxn *w, const char *id, tl_message_rec *out);
int tl_wstate_user(tl_wtxn *w, const char *id, tl_user_rec *out);
/** One reply of message that is not deleted (for has_replies); TL_ENOTFOUND when none. */
int tl_state_live_reply(MDB_txn *txn, tl_log *log, const char *message, char reply[TL_IDBUF]);
/* The kind of a read mark's key: the message record's ('m/MESSAGE/USER', state.c). */
#define READ_MARK 'm'

/** Has user read message? (read marks are kept for audience members only) */
bool tl_state_has_read(MDB_txn *txn, tl_log *log, const char *user, const char *message);
/* The same two lookups through one cursor over the state database (tl_state_cursor; the
 * caller closes it), for a page that reads a message and then its read mark: the mark lies
 * next to the record, so the second lookup stays on the page the first one found. */
int tl_state_cursor(MDB_txn *txn, tl_log *log, MDB_cursor **cur);
int tl_state_message_at(MDB_cursor *cur, const char *id, tl_message_rec *out);
bool tl_state_has_read_at(MDB_cursor *cur, const char *user, const char *message);

/**
 * May user (with record u) read and write channel ch of project p (NULL for support, then
 * account names the conversation's account)? Auditors: may read everything (see), act never;
 * this answers "in the audience", i.e. read+write for non-auditors, read for auditors.
 */
bool tl_state_in_audience(const char *user, const tl_user_rec *u, const tl_project_rec *p,
                          const char *account, int ch);
/** The acting user's version of p (SPEC "version") and last_activity. */
uint64_t tl_state_version(const char *user, const tl_user_rec *u, const tl_project_rec *p);
uint64_t tl_state_last_activity(const char *user, const tl_user_rec *u, const tl_project_rec *p);

/** May user see project p at all (tracking row, project-level history entries)? */
bool tl_state_sees_project(const char *user, const tl_user_rec *u, const tl_project_rec *p);

/**
 * Call fn for every user in the audience of channel ch of project p (or of account's support
 * conversation when p is NULL) who can have unread messages (auditors never do). Stops and
 * returns fn's value when it is non-zero.
 */
typedef int (*tl_user_fn)(const char *user, void *ctx);
int tl_state_audience_each(MDB_txn *txn, tl_log *log, const tl_project_rec *p, const char *account, int ch,
                           tl_user_fn fn, void *ctx);
/** Every user who may see project p in tracking (members of its account, its ambassador,
 * all staff, all auditors). */
int tl_state_viewers_each(MDB_txn *txn, tl_log *log, const tl_project_rec *p, tl_user_fn fn, void *ctx);

#endif
