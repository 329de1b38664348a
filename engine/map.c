/*
 * map.c — the LMDB map and the transactions on it: growing the map (LMDB resizes only while
 * no transaction of the process is open), the map lock every transaction holds shared and
 * the gate in front of it, reopening the environment in place after MDB_PANIC, and beginning
 * a transaction (adopting a size another process grew the map to). Opening a log is log.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "error.h"
#include "log.h"

#define TL_MAP_LIMIT (1ull << 40)

static _Thread_local unsigned txn_depth; /* transactions (of any log) this thread holds */

/* The same, per log: the few logs a thread has transactions on at once (a replica shipped
 * from an iterator on its source: two). Growing a log's map is refused only to a thread that
 * holds a transaction on that log; one on another log does not hold this one's map lock. */
#define HELD_LOGS 8
static _Thread_local struct held_log {
    const tl_log *log;
    unsigned n;
} held[HELD_LOGS];

static unsigned *held_count(const tl_log *log, bool add) {
    struct held_log *free_slot = NULL;
    for (int i = 0; i < HELD_LOGS; i++) {
        if (held[i].log == log && held[i].n) return &held[i].n;
        if (!held[i].n && !free_slot) free_slot = &held[i];
    }
    if (!add || !free_slot) return NULL; /* more logs than slots: not tracked (then may wait up to the bound) */
    free_slot->log = log;
    return &free_slot->n;
}

/* A thread's identity for write_owner: the address of a thread-local, unique among live
 * threads and never 0 (pthread_t has no portable atomic form or null value). */
static uintptr_t this_thread_id(void) {
    static _Thread_local char me;
    return (uintptr_t)&me;
}

void tl_write_lock(tl_log *log) {
    pthread_mutex_lock(&log->write_mu);
    atomic_store(&log->write_owner, this_thread_id());
}

void tl_write_unlock(tl_log *log) {
    atomic_store(&log->write_owner, 0);
    pthread_mutex_unlock(&log->write_mu);
}

bool tl_write_held_by_me(const tl_log *log) { return atomic_load(&log->write_owner) == this_thread_id(); }

bool tl_map_held_by_me(const tl_log *log) {
    unsigned *mine = held_count(log, false);
    return mine && *mine > 0;
}

/* How long a thread waits for the process's open transactions to end before it gives up
 * growing, reopening or adopting the map ("storage", retry): a reader that never ends (an
 * embedder's forgotten iterator) must cost writers an error, never a hang. */
#define REOPEN_WAIT_S 10

/*
 * Double the map. LMDB resizes only when no transaction of the process is open, so this
 * waits for them all (tl_map_exclusive), at most REOPEN_WAIT_S. A thread that holds a
 * transaction itself (an iterator or a follow or export callback that writes) would wait for
 * itself for ever: it is refused at once.
 */
int tl_log_grow_map(tl_log *log) {
    unsigned *mine = held_count(log, false);
    if (mine && *mine > 0)
        return tl_fail(TL_ESTORAGE, "the log's map must grow, and this thread holds a read snapshot of it (an open "
                                    "iterator, or a follow or export callback): end it, then retry");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += REOPEN_WAIT_S;
    if (tl_map_exclusive(log, &deadline) != 0)
        return tl_fail(TL_ESTORAGE, "the log's map must grow, and a read snapshot of this process stayed open for %d s "
                                    "(an iterator, a follow, an export); retry", REOPEN_WAIT_S);
    int rc = 0;
    if (!log->env) {
        /* a reopen after MDB_PANIC failed: the next transaction tries it again */
        pthread_rwlock_unlock(&log->map_lock);
        return tl_fail(TL_ESTORAGE, "the log's environment is closed after a storage failure");
    }
    MDB_envinfo info;
    mdb_env_info(log->env, &info);
    size_t want = info.me_mapsize * 2;
    if (want > TL_MAP_LIMIT) rc = tl_fail(TL_ESTORAGE, "log map would exceed %llu bytes", (unsigned long long)TL_MAP_LIMIT);
    else if ((rc = mdb_env_set_mapsize(log->env, want)) != 0) rc = tl_fail_mdb(rc, "grow map");
    pthread_rwlock_unlock(&log->map_lock);
    return rc;
}

/*
 * Recovering from MDB_PANIC, in place.
 *
 * When LMDB fails to write a meta page (a full or failing disk at the end of a commit) it
 * marks the environment fatal (MDB_FATAL_ERROR): the commit fails (`storage`), and every
 * later mdb_txn_begin of this process answers MDB_PANIC, reads included, until the
 * environment is closed. The file itself is fine: the failed commit never became the current
 * meta page, so it holds the last good commit, as any other process (or this one, restarted)
 * sees it. So the environment is closed and opened again in place: the same directory, flags
 * and map size (the size in use, which is at least what the open policy chose), and every
 * named database opened again, in a read-only transaction (a reader never waits for another
 * process's writer), in the order tl_db_open first opened them. LMDB numbers handles in
 * opening order, so it hands out the same MDB_dbi values, and the handles stored in the log
 * and in every applier stay valid; a different value fails the reopen rather than let a
 * handle name another database.
 *
 * Concurrency, the simplest design that is correct: every transaction of this process holds
 * map_lock shared from begin to end (and nothing else touches the environment outside a
 * transaction except under map_lock), so holding it exclusively means no transaction, read
 * or write, is live: the only moment an environment may be closed (taken through the gate
 * below, so that new transactions let it in). The thread that meets
 * MDB_PANIC notes env_gen (read under the shared lock), releases the lock, and calls
 * env_reopen, which takes the lock exclusively and reopens only if env_gen has not moved: when
 * several threads meet the panic, the first reopens and the others just begin again. A writer
 * lets go of write_mu before waiting (a reader holding a transaction may be waiting for
 * write_mu; write_mu -> map_lock is the only order). The wait is bounded: a thread that itself
 * holds a transaction while beginning another one (or whose live transaction waits for this
 * thread) would otherwise wait forever; after REOPEN_WAIT_S the caller gets `storage` and a
 * later transaction tries again. A failed reopen leaves env NULL: every begin tries again.
 */
/*
 * The gate in front of map_lock. glibc's rwlock prefers readers: a thread may take it shared
 * while a writer waits. Transactions of several threads that overlap (one begins before the
 * other ends, over and over: a pool of threads serving queries) then keep a waiting writer
 * out for as long as they go on, and with it every writer of the process, since growing the
 * map is what a full map's writers wait for. So a thread about to begin a transaction waits
 * while a writer waits, letting the transactions already running drain. Only a thread that
 * may wait does so: one that holds write_mu or another transaction (txn_depth) may be what the
 * writer waits for. The wait is bounded by GATE_WAIT_S all the same: a transaction ended on
 * another thread than the one that began it (LMDB allows it with MDB_NOTLS) would leave the
 * depth count wrong, and a wrong count must cost a pause, never a deadlock.
 */
#define GATE_WAIT_S 1

void tl_map_shared(tl_log *log, bool may_wait) {
    if (may_wait && txn_depth == 0 && atomic_load(&log->map_writers) > 0) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += GATE_WAIT_S;
        pthread_mutex_lock(&log->gate_mu);
        while (atomic_load(&log->map_writers) > 0)
            if (pthread_cond_timedwait(&log->gate_cv, &log->gate_mu, &deadline) == ETIMEDOUT) break;
        pthread_mutex_unlock(&log->gate_mu);
    }
    pthread_rwlock_rdlock(&log->map_lock);
    txn_depth++;
    unsigned *mine = held_count(log, true);
    if (mine) (*mine)++;
}

void tl_map_shared_end(tl_log *log) {
    if (txn_depth) txn_depth--;
    unsigned *mine = held_count(log, false);
    if (mine && *mine) (*mine)--;
    pthread_rwlock_unlock(&log->map_lock);
}

int tl_map_exclusive(tl_log *log, const struct timespec *deadline) {
    atomic_fetch_add(&log->map_writers, 1);
    int rc = deadline ? pthread_rwlock_timedwrlock(&log->map_lock, deadline) : pthread_rwlock_wrlock(&log->map_lock);
    pthread_mutex_lock(&log->gate_mu);
    atomic_fetch_sub(&log->map_writers, 1);
    pthread_cond_broadcast(&log->gate_cv);
    pthread_mutex_unlock(&log->gate_mu);
    return rc;
}

/* wait_s: how long to wait for the process's transactions to end; soft: 1 (not an error)
 * when they did not. */
static int env_reopen(tl_log *log, unsigned seen_gen, const char *why, int wait_s, bool soft) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_s;
    if (tl_map_exclusive(log, &deadline) != 0)
        return soft ? 1 : tl_fail(TL_ESTORAGE, "%s, and the log could not be reopened: a transaction of this process stayed open "
                                    "for %d s; retry",
                       why, REOPEN_WAIT_S);
    if (log->env && log->env_gen != seen_gen) { /* another thread reopened it meanwhile */
        pthread_rwlock_unlock(&log->map_lock);
        return 0;
    }
    log->env_gen++;
    if (log->env) {
        MDB_envinfo info;
        if (mdb_env_info(log->env, &info) == 0) log->map_bytes = info.me_mapsize;
        mdb_env_close(log->env);
        log->env = NULL;
    }
    MDB_env *env;
    int rc = tl_env_create_open(&env, log->dir, log->env_flags, log->map_bytes);
    if (rc) {
        pthread_rwlock_unlock(&log->map_lock);
        return tl_fail_mdb(rc, "reopen the log");
    }
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    for (unsigned i = 0; i < log->ndbs && !rc; i++) {
        MDB_dbi dbi;
        rc = mdb_dbi_open(txn, log->dbs[i].name, log->dbs[i].flags & ~(unsigned)MDB_CREATE, &dbi);
        if (!rc && dbi != log->dbs[i].dbi) {
            mdb_txn_abort(txn);
            mdb_env_close(env);
            pthread_rwlock_unlock(&log->map_lock);
            return tl_fail(TL_ESTORAGE, "reopening the log: database %s came back as handle %u, not %u; reopen the log",
                           log->dbs[i].name, (unsigned)dbi, (unsigned)log->dbs[i].dbi);
        }
    }
    if (rc) {
        if (txn) mdb_txn_abort(txn);
    } else {
        rc = mdb_txn_commit(txn); /* a read-only commit keeps the handles for the environment */
    }
    if (rc) {
        mdb_env_close(env);
        pthread_rwlock_unlock(&log->map_lock);
        return tl_fail_mdb(rc, "reopen the log's databases");
    }
    log->env = env;
    pthread_rwlock_unlock(&log->map_lock);
    return 0;
}

#define TXN_PANIC 1 /* internal to txn_begin: the environment is fatal (or closed): reopen it */

/* Begin a transaction; adopt a map grown by another process (MDB_MAP_RESIZED). On success the
 * map lock is held shared. *gen: the environment generation the attempt saw. */
static int txn_begin_once(tl_log *log, unsigned flags, MDB_txn **txn, unsigned *gen, bool may_wait) {
    *txn = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        tl_map_shared(log, may_wait);
        *gen = log->env_gen;
        int rc = log->env ? mdb_txn_begin(log->env, NULL, flags, txn) : MDB_PANIC;
        if (rc == 0) return 0;
        *txn = NULL;
        tl_map_shared_end(log);
        if (rc == MDB_PANIC) return TXN_PANIC;
        if (rc == MDB_READERS_FULL && attempt == 0) {
            /* slots of readers that died since this process opened the log: free them, retry
             * (under the map lock: the environment may not be reopened meanwhile) */
            int dead = 0;
            tl_map_shared(log, false);
            if (log->env) mdb_reader_check(log->env, &dead);
            tl_map_shared_end(log);
            if (dead > 0) continue;
        }
        if (rc != MDB_MAP_RESIZED) return tl_fail_mdb(rc, "begin transaction");
        /* Bounded, as env_reopen's wait: the caller may hold write_mu, and a thread holding a
         * transaction may be waiting for write_mu; waiting for it without end would be a
         * deadlock (docs/ARCHITECTURE.md). */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += REOPEN_WAIT_S;
        if (tl_map_exclusive(log, &deadline) != 0)
            return tl_fail(TL_ESTORAGE, "another process grew the map, and a transaction of this process stayed open "
                                        "for %d s while adopting its size; retry", REOPEN_WAIT_S);
        if (log->env) mdb_env_set_mapsize(log->env, 0);
        pthread_rwlock_unlock(&log->map_lock);
    }
    return tl_fail(TL_ESTORAGE, "the map keeps being resized by another process");
}

/* Begin, reopening the environment once when LMDB has marked it fatal (see env_reopen). A
 * caller holding write_mu says so: it is let go while the reopen waits, and taken again. */
int tl_txn_begin(tl_log *log, unsigned flags, MDB_txn **txn, bool holding_write_mu) {
    unsigned gen;
    int rc = txn_begin_once(log, flags, txn, &gen, !holding_write_mu);
    if (rc != TXN_PANIC) return rc;
    if (holding_write_mu) tl_write_unlock(log);
    rc = env_reopen(log, gen, "the storage failed during a commit (MDB_PANIC)", REOPEN_WAIT_S, false);
    if (holding_write_mu) tl_write_lock(log);
    if (rc) return rc;
    rc = txn_begin_once(log, flags, txn, &gen, !holding_write_mu);
    if (rc == TXN_PANIC)
        rc = tl_fail(TL_ESTORAGE, "begin transaction: the log failed again right after it was reopened (MDB_PANIC)");
    return rc;
}

/*
 * LMDB builds every page it writes in a buffer from its list of spare ones, reused without
 * clearing: the free space of a written page keeps whatever the buffer held, bytes of a page
 * of an earlier transaction of this process — erased content among them. The scrub after an
 * erasure clears the file, but a process that wrote the content and keeps writing would put
 * such bytes back (seen: half the erased items of a long-running `apply` came back). Only
 * closing the environment frees those buffers (LMDB zeroes the fresh ones it allocates
 * then), so a writer that sees the file's count of erasures move reopens it first. The caller
 * holds not write_mu. A reopen needs every transaction of the process ended: when this thread
 * holds one (an open iterator while it erases), or others do for longer than wait_s seconds,
 * the write goes on without it (1), clears the pages' free space after its commit
 * (tl_scrub_page_gaps), and a later write tries again.
 */
int tl_env_refresh(tl_log *log, int wait_s) {
    if (txn_depth > 0) return 1;
    pthread_rwlock_rdlock(&log->map_lock);
    unsigned gen = log->env_gen;
    pthread_rwlock_unlock(&log->map_lock);
    return env_reopen(log, gen, "an erasure asks every writer to drop LMDB's page buffers", wait_s, true);
}

int tl_rtxn_begin(tl_log *log, MDB_txn **txn) { return tl_txn_begin(log, MDB_RDONLY, txn, false); }

void tl_rtxn_end(tl_log *log, MDB_txn *txn) {
    if (!txn) return;
    mdb_txn_abort(txn);
    tl_map_shared_end(log);
}
