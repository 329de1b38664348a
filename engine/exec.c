/*
 * exec.c — running commands in commits: batches (group commit for `apply`), single commands
 * whose concurrent callers share commits, erasure, and reading attachments back.
 *
 * Group commit, as databases do it: a caller of tl_cmd_exec queues its command; whoever
 * finds no leader becomes one, takes everything queued, runs it as one write transaction and
 * one synced commit, then wakes the callers it served. Each caller still returns only after
 * its own command is durable, but N callers cost one fsync instead of N.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"

#define GROUP_MAX 1024

/* ---------------------------------------------------------------- batches */

typedef struct batch_item {
    const tl_cmd *cmd;
    tl_result *res;
} batch_item;

struct tl_batch {
    tl_log *log;
    tl_wtxn *w;
    batch_item *items;
    size_t n, cap;
    int failed;
    char failure[256]; /* the first failure's detail, told to every command of the batch */
};

/* Run items [0, n) in w; a failure of the transaction itself (storage) is returned. */
static int run_items(tl_wtxn *w, batch_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        tl_rules_exec(w, items[i].cmd, items[i].res);
        if (w->failed) return w->failed;
    }
    return 0;
}

static void fail_all(batch_item *items, size_t n, int code, const char *why_in) {
    static const char prefix[] = "the commit failed: ";
    /* a copy: why_in is often tl_errdetail()'s own buffer, which each tl_result_fail rewrites
     * (the reason once came out as the prefix repeated, cut off after a dozen commands) */
    char why[256];
    snprintf(why, sizeof why, "%s", why_in);
    const char *reason = why;
    if (!strncmp(reason, prefix, sizeof prefix - 1)) reason += sizeof prefix - 1; /* said once is enough */
    for (size_t i = 0; i < n; i++) tl_result_fail(items[i].res, code, "%s%s", prefix, reason);
}

/* What a failed commit tells its commands: a damaged file stays `corrupt` (a damaged page met
 * while writing a projection once read as `storage`, "free space, then retry"), memory stays
 * `out_of_memory`, anything else is the storage's. */
static int failure_code(int rc) { return rc == TL_ENOMEM || rc == TL_ECORRUPT ? rc : TL_ESTORAGE; }

/* Commit w; when the map is full, grow it and run the whole batch again. */
static int commit_items(tl_log *log, tl_wtxn *w, batch_item *items, size_t n) {
    for (;;) {
        int rc = w ? tl_wtxn_commit(w) : TL_EMAPFULL;
        w = NULL;
        if (rc == 0) return 0;
        if (rc != TL_EMAPFULL) {
            char why[256];
            snprintf(why, sizeof why, "%s", tl_errdetail());
            fail_all(items, n, failure_code(rc), why);
            return rc;
        }
        if ((rc = tl_log_grow_map(log)) != 0 || (rc = tl_wtxn_begin(log, &w)) != 0) {
            fail_all(items, n, failure_code(rc), tl_errdetail());
            return rc;
        }
        rc = run_items(w, items, n);
        if (rc && rc != TL_EMAPFULL) {
            tl_wtxn_abort(w);
            fail_all(items, n, failure_code(rc), tl_errdetail());
            return rc;
        }
        if (rc == TL_EMAPFULL) { tl_wtxn_abort(w); w = NULL; }
    }
}

int tl_batch_begin(tl_log *log, tl_batch **out) {
    if (out) *out = NULL;
    if (!log || !out) return tl_fail(TL_EUSAGE, "tl_batch_begin: log and out are required");
    tl_batch *b = calloc(1, sizeof *b);
    if (!b) return tl_fail(TL_ENOMEM, "out of memory");
    b->log = log;
    int rc = tl_wtxn_begin(log, &b->w);
    if (rc) { free(b); return rc; }
    *out = b;
    return 0;
}

#define BATCH_MAP_FULL "the map is full: tl_batch_commit grows it and runs the batch again"

int tl_batch_exec(tl_batch *b, const tl_cmd *cmd, tl_result *res) {
    if (!b || !cmd || !res) return tl_fail(TL_EUSAGE, "batch, command and result are required");
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        batch_item *p = realloc(b->items, cap * sizeof *p);
        if (!p) return tl_result_fail(res, TL_ENOMEM, "out of memory");
        b->items = p;
        b->cap = cap;
    }
    b->items[b->n++] = (batch_item){cmd, res};
    if (b->failed) return tl_result_fail(res, failure_code(b->failed), "the batch already failed: %s",
                                      b->failure[0] ? b->failure : "a storage failure");
    if (b->w) {
        /* A full map is not a failure yet: commit grows it and runs the batch again. The
         * transaction cannot take more meanwhile, so this command and the rest say so (not
         * LMDB's word for a transaction that must abort). */
        if (b->w->failed == TL_EMAPFULL) return tl_result_fail(res, TL_ESTORAGE, "%s", BATCH_MAP_FULL);
        tl_rules_exec(b->w, cmd, res);
        if (b->w->failed == TL_EMAPFULL) return tl_result_fail(res, TL_ESTORAGE, "%s", BATCH_MAP_FULL);
        if (b->w->failed) {
            b->failed = b->w->failed;
            /* the detail now ("... the disk is full ...") is gone by commit: keep it */
            snprintf(b->failure, sizeof b->failure, "%s", tl_errdetail());
        }
    }
    return res->code;
}

int tl_batch_commit(tl_batch *b) {
    if (!b) return tl_fail(TL_EUSAGE, "tl_batch_commit: no batch (did tl_batch_begin fail?)");
    int rc;
    if (b->failed) {
        tl_wtxn_abort(b->w);
        fail_all(b->items, b->n, failure_code(b->failed), b->failure[0] ? b->failure : "a command of the batch hit a storage failure");
        rc = b->failed;
    } else {
        rc = commit_items(b->log, b->w, b->items, b->n);
    }
    free(b->items);
    free(b);
    return rc < 0 && rc != TL_EMAPFULL ? rc : (rc ? TL_ESTORAGE : 0);
}

void tl_batch_abort(tl_batch *b) {
    if (!b) return;
    tl_wtxn_abort(b->w);
    free(b->items);
    free(b);
}

/* ---------------------------------------------------------------- group commit */

typedef struct gc_req {
    batch_item item;
    bool done;
    struct gc_req *next;
} gc_req;

typedef struct gc_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gc_req *head, *tail;
    bool leader;
} gc_queue;

static void gc_free(void *p) {
    gc_queue *q = p;
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

int tl_commands_attach(tl_log *log) {
    gc_queue *q = calloc(1, sizeof *q);
    if (!q) return tl_fail(TL_ENOMEM, "out of memory");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    log->commands = q;
    log->commands_free = gc_free;
    return 0;
}

static void lead(tl_log *log, gc_req *group) {
    batch_item items[GROUP_MAX];
    size_t n = 0;
    for (gc_req *r = group; r; r = r->next) items[n++] = r->item;
    tl_wtxn *w = NULL;
    int rc = tl_wtxn_begin(log, &w);
    if (rc) {
        fail_all(items, n, rc, tl_errdetail());
        return;
    }
    rc = run_items(w, items, n);
    if (rc && rc != TL_EMAPFULL) {
        tl_wtxn_abort(w);
        fail_all(items, n, failure_code(rc), tl_errdetail());
        return;
    }
    if (rc == TL_EMAPFULL) { tl_wtxn_abort(w); w = NULL; }
    commit_items(log, w, items, n);
}

int tl_cmd_exec(tl_log *log, const tl_cmd *cmd, tl_result *res) {
    if (!log || !cmd || !res) return tl_fail(TL_EUSAGE, "log, command and result are required");
    if (tl_write_held_by_me(log)) /* its own batch: the group's leader would wait for this thread */
        return tl_result_fail(res, TL_EUSAGE, "this thread holds an open batch of this log: run the command in "
                                              "the batch (tl_batch_exec), or commit the batch first");
    gc_req me = {{cmd, res}, false, NULL};
    if (tl_map_held_by_me(log)) {
        /* A caller holding a snapshot (an open iterator, a follow or export callback) commits
         * alone: should the map have to grow, it is this thread that is refused at once
         * (tl_log_grow_map), instead of a group's leader waiting for its snapshot to end. */
        lead(log, &me);
        if (res->code) tl_fail(res->code, "%s", res->message);
        return res->code;
    }
    gc_queue *q = log->commands;
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = &me;
    else q->head = &me;
    q->tail = &me;
    while (!me.done) {
        if (!q->leader) {
            q->leader = true;
            gc_req *group = q->head, *last = group;
            size_t n = 1;
            while (last->next && n < GROUP_MAX) { last = last->next; n++; }
            q->head = last->next;
            if (!q->head) q->tail = NULL;
            last->next = NULL;
            pthread_mutex_unlock(&q->mu);
            lead(log, group);
            pthread_mutex_lock(&q->mu);
            for (gc_req *r = group; r;) {
                gc_req *next = r->next;
                r->done = true; /* r may be gone as soon as its owner sees this */
                r = next;
            }
            q->leader = false;
            pthread_cond_broadcast(&q->cv);
        } else {
            pthread_cond_wait(&q->cv, &q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (res->code) tl_fail(res->code, "%s", res->message);
    return res->code;
}

/* ---------------------------------------------------------------- erasure */

static int erase_in(tl_wtxn *w, const char *want, const char *id, const char *reason, tl_result *res) {
    tl_message_rec m;
    tl_attachment_rec a;
    const uint8_t *commit;
    const char *project, *account, *kind;
    bool any = !want, as_msg = any || !strcmp(want, "message"), as_att = any || !strcmp(want, "attachment");
    int mrc = as_msg ? tl_wstate_message(w, id, &m) : TL_ENOTFOUND;
    int arc = as_att ? tl_state_attachment(w->txn, w->log, id, &a) : TL_ENOTFOUND;
    if (mrc != 0 && mrc != TL_ENOTFOUND) return tl_result_fail(res, mrc, "%s", tl_errdetail());
    if (arc != 0 && arc != TL_ENOTFOUND) return tl_result_fail(res, arc, "%s", tl_errdetail());
    if (mrc == 0 && arc == 0)
        return tl_result_fail(res, TL_EINVALID, "both a message and an attachment are named %s: say which (--kind)", id);
    if (mrc == 0) {
        commit = m.body_commit; project = m.project; account = m.account; kind = "message";
    } else if (arc == 0) {
        commit = a.data_commit; project = a.project; account = a.account; kind = "attachment";
    } else {
        return tl_result_fail(res, TL_ENOTFOUND, "no %s %s", any ? "message or attachment" : want, id);
    }
    uint8_t salt[TL_SALT_BYTES];
    bool copied = !strcmp(kind, "message") && m.body_inline; /* a short body's copy in its record (state.h) */
    if (tl_content_salt(w->txn, w->log, commit, salt) == TL_ENOTFOUND && !copied) {
        res->noop = 1; /* already erased */
        return 0;
    }
    uint8_t c[TL_HASH_BYTES];
    memcpy(c, commit, sizeof c);
    int rc;
    if ((rc = tl_content_erase(w, c)) != 0) return tl_result_fail(res, rc, "%s", tl_errdetail());
    tl_payload p = {0};
    tl_payload_str(&p, "target", id);
    tl_payload_str(&p, "target_kind", kind);
    tl_payload_bin(&p, "commitment", c, sizeof c);
    tl_payload_str(&p, "reason", reason);
    if (!project[0]) tl_payload_str(&p, "account", account);
    tl_event ev;
    rc = tl_wtxn_append(w, "@operator", "content.erased", project[0] ? project : NULL, &p, &ev);
    if (rc) return tl_result_fail(res, rc, "%s", tl_errdetail());
    res->seq = ev.seq;
    snprintf(res->id, sizeof res->id, "%s", id);
    return 0;
}

/* The erasure is committed: its old pages (and older free ones) still hold the bytes until
 * cleared (scrub.c). A failure here is the storage's: the erasure stands, erasing again
 * retries the clearing. */
static int scrub_after_erasure(tl_log *log, tl_result *res) {
    uint64_t cleared, held;
    int rc = tl_scrub_free_pages(log, &cleared, &held);
    if (rc) return tl_result_fail(res, rc, "the content is erased (event %llu), but clearing the data file's free "
                                  "pages failed, so its bytes may remain there until reused; erase again to retry: %s",
                                  (unsigned long long)res->seq, tl_errdetail());
    /* a success with a note: the operator must know that a second erase is owed */
    if (held)
        snprintf(res->message, sizeof res->message,
                 "%llu page(s) that a reader's snapshot still holds keep the erased bytes: erase again once it has finished, or the next writable open of the log after that clears them",
                 (unsigned long long)held);
    return 0;
}

int tl_erase(tl_log *log, const char *id, const char *reason, tl_result *res) {
    return tl_erase_kind(log, NULL, id, reason, res);
}

int tl_erase_kind(tl_log *log, const char *kind, const char *id, const char *reason, tl_result *res) {
    if (!log) return tl_fail(TL_EUSAGE, "tl_erase: no log");
    tl_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if (kind && strcmp(kind, "message") != 0 && strcmp(kind, "attachment") != 0)
        return tl_result_fail(res, TL_EINVALID, "the kind to erase is message or attachment");
    if (!id || !tl_id_valid(id)) return tl_result_fail(res, TL_EINVALID, "not a valid id");
    if (!reason || !*reason || strlen(reason) > TL_TEXT_MAX || !tl_utf8_valid((const uint8_t *)reason, strlen(reason)))
        return tl_result_fail(res, TL_EINVALID, "an erasure needs a reason (1-%d bytes of UTF-8)", TL_TEXT_MAX);
    for (;;) {
        tl_wtxn *w;
        int rc = tl_wtxn_begin(log, &w);
        if (rc) return tl_result_fail(res, rc, "%s", tl_errdetail());
        rc = erase_in(w, kind, id, reason, res);
        if (rc || res->noop) {
            tl_wtxn_abort(w);
            /* erasing again clears what a reader's snapshot kept from the first scrub */
            return rc ? rc : scrub_after_erasure(log, res);
        }
        rc = tl_wtxn_commit(w);
        if (rc == 0) return scrub_after_erasure(log, res);
        if (rc != TL_EMAPFULL || tl_log_grow_map(log) != 0) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    }
}

/* ---------------------------------------------------------------- attachments back */

int tl_attachment_get(tl_log *log, const char *id, const char *as, uint8_t **bytes, size_t *len, char **name,
                      char **mime) {
    if (!log || !bytes || !len) return tl_fail(TL_EUSAGE, "tl_attachment_get: log, bytes and len are required");
    *bytes = NULL;
    *len = 0;
    if (name) *name = NULL;
    if (mime) *mime = NULL;
    if (!id || !tl_id_valid(id) || !as || !tl_id_valid(as)) return tl_fail(TL_EINVALID, "not a valid id");
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    tl_attachment_rec a;
    tl_user_rec u;
    if ((rc = tl_state_user(txn, log, as, &u)) != 0) {
        rc = rc == TL_ENOTFOUND ? tl_fail(TL_ENOTFOUND, "unknown user %s", as) : rc;
        goto out;
    }
    if ((rc = tl_state_attachment(txn, log, id, &a)) != 0) {
        rc = rc == TL_ENOTFOUND ? tl_fail(TL_ENOTFOUND, "unknown attachment %s", id) : rc;
        goto out;
    }
    tl_project_rec p;
    bool hp = a.project[0] && tl_state_project(txn, log, a.project, &p) == 0;
    bool may;
    if (a.used_by[0]) {
        tl_message_rec m;
        may = tl_state_message(txn, log, a.used_by, &m) == 0 &&
              tl_state_in_audience(as, &u, hp ? &p : NULL, m.account, m.channel);
        /* the content of a deleted message is the auditors' alone (SPEC §1, §3) */
        if (may && m.deleted && u.role != TL_ROLE_AUDITOR) {
            rc = tl_fail(TL_EDELETED, "attachment %s belongs to message %s, which is deleted", id, a.used_by);
            goto out;
        }
    } else {
        /* not yet on a message: its uploader, auditors, and the account's members */
        may = strcmp(a.uploader, as) == 0 || u.role == TL_ROLE_AUDITOR ||
              (u.role == TL_ROLE_MEMBER && strcmp(u.account, a.account) == 0);
    }
    if (!may) { rc = tl_fail(TL_EFORBIDDEN, "%s may not see attachment %s", as, id); goto out; }
    const uint8_t *content;
    size_t n;
    rc = tl_content_get(txn, log, a.data_commit, &content, &n);
    if (rc == TL_ENOTFOUND) { rc = tl_fail(TL_ENOTFOUND, "the content of attachment %s was erased", id); goto out; }
    if (rc) goto out;
    if (n != a.size) { rc = tl_fail(TL_ECORRUPT, "attachment %s has the wrong size", id); goto out; }
    *bytes = malloc(n ? n : 1);
    if (!*bytes) { rc = tl_fail(TL_ENOMEM, "out of memory"); goto out; }
    memcpy(*bytes, content, n);
    *len = n;
    if (name) *name = strdup(a.name);
    if (mime) *mime = strdup(a.mime);
    if ((name && !*name) || (mime && !*mime)) { /* all or nothing */
        free(*bytes);
        *bytes = NULL;
        *len = 0;
        if (name) { free(*name); *name = NULL; }
        if (mime) { free(*mime); *mime = NULL; }
        rc = tl_fail(TL_ENOMEM, "out of memory");
    }
out:
    tl_rtxn_end(log, txn);
    return rc;
}
