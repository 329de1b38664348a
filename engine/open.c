/*
 * open.c — opening a log: the checks an environment passes before anything is written (a data
 * file that holds a threadlog log, its format and layout records, the free-page list, the
 * head the writer key must match), one handle per data file per process, the named
 * databases of the engine and of every applier, and closing. Creating a log is init.c's; the
 * records, keys and head of an open log are log.c's.
 */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"


int tl_db_open(tl_log *log, const char *name, unsigned flags, MDB_dbi *dbi) {
    MDB_txn *txn;
    bool ro = log->flags & TL_OPEN_READONLY;
    int rc = tl_txn_begin(log, ro ? MDB_RDONLY : 0, &txn, false);
    if (rc) return rc;
    rc = mdb_dbi_open(txn, name, flags, dbi);
    bool created = false;
    if (rc == MDB_NOTFOUND && !ro && (rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, dbi)) == 0) created = true;
    /* init creates every database in its first open, before the log holds more than its
     * genesis; a later build's layout may add one (the projections then wait for a replay
     * anyway). Any other database found missing was lost from the data file: created empty,
     * the projections are marked damaged in the same commit, and nothing appends or answers
     * a query until a replay has rebuilt them (a writer once went on with an empty state:
     * a second account.created for an existing id). */
    MDB_val hv;
    if (!rc && created && !atomic_load(&log->layout_stale) &&
        tl_get(txn, log->db_meta, META_HEAD, sizeof META_HEAD - 1, &hv) == 0 && hv.mv_size >= 8 && tl_seq_from_key(hv.mv_data) > 1) {
        uint8_t zero[8];
        tl_seq_key(zero, TL_LAYOUT_DAMAGED);
        MDB_val k = {sizeof META_LAYOUT - 1, (void *)META_LAYOUT}, v = {8, zero};
        if ((rc = mdb_put(txn, log->db_meta, &k, &v, 0)) == 0) {
            atomic_store(&log->layout_stale, true);
            atomic_store(&log->layout_damaged, true);
        }
    }
    /* LMDB takes a database's flags (sorted duplicates, integer keys, ...) from its record in
     * the data file when it opens it, and follows them from then on. A damaged record can
     * claim flags this database never had: sorted duplicates, say, under which a put with
     * MDB_RESERVE reserves nothing and returns no space to write into (fuzz_open met a
     * memcpy to NULL that way, tl_content_put). Every database of ours has the flags it was
     * opened with, so any other flags are damage. */
    unsigned stored;
    if (!rc && mdb_dbi_flags(txn, *dbi, &stored) == 0 && stored != (flags & 0xffffu & ~(unsigned)MDB_CREATE)) {
        tl_rtxn_end(log, txn);
        return tl_fail(TL_ECORRUPT, "database %s is damaged: its record in the data file claims flags 0x%x", name, stored);
    }
    if (rc) {
        tl_rtxn_end(log, txn);
        if (rc == MDB_NOTFOUND)
            return tl_fail(TL_ECORRUPT, "database %s is missing from the data file (damaged): `threadlog replay` rebuilds "
                                        "it from the log", name);
        return tl_fail_mdb(rc, name);
    }
    rc = mdb_txn_commit(txn);
    tl_map_shared_end(log);
    if (rc) return tl_fail_mdb(rc, "open database");
    /* remembered for a reopen (env_reopen), each name once, in the order first opened */
    for (unsigned i = 0; i < log->ndbs; i++)
        if (strcmp(log->dbs[i].name, name) == 0) return 0;
    if (log->ndbs == TL_MAX_DBS) return tl_fail(TL_EUSAGE, "too many databases (%d)", TL_MAX_DBS);
    char *copy = strdup(name);
    if (!copy) return tl_fail(TL_ENOMEM, "out of memory");
    log->dbs[log->ndbs++] = (tl_db_entry){copy, flags, *dbi};
    return 0;
}

int tl_log_register(tl_log *log, const tl_applier *applier) {
    if (log->napplier >= TL_MAX_APPLIERS) return tl_fail(TL_EUSAGE, "too many appliers");
    log->appliers[log->napplier++] = *applier;
    return 0;
}

static int check_format(tl_log *log) {
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    MDB_val v;
    rc = tl_get(txn, log->db_meta, META_FORMAT, sizeof META_FORMAT - 1, &v);
    if (rc == TL_ENOTFOUND) {
        rc = tl_fail(TL_ECORRUPT, "%s holds no threadlog log (no format record)", log->dir);
    } else if (!rc) {
        if (v.mv_size != 8) {
            rc = tl_fail(TL_ECORRUPT, "format record is damaged");
        } else if (tl_seq_from_key(v.mv_data) != TL_FORMAT_VERSION) {
            rc = tl_fail(TL_EVERSION, "log format version %llu; this build reads version %d",
                         (unsigned long long)tl_seq_from_key(v.mv_data), TL_FORMAT_VERSION);
        }
    }
    if (!rc) {
        /* The limit the rules enforce is the signed one, the genesis event's. meta's copies of
         * the genesis (genesis_key, max_attachment) are unsigned and not needed here: verify
         * reports one that is missing or differs. A genesis that cannot be read leaves meta's
         * limit, so the log still opens for verify to name the damage. */
        log->max_attachment = 0;
        if (tl_get(txn, log->db_meta, META_MAX_ATTACHMENT, sizeof META_MAX_ATTACHMENT - 1, &v) == 0 && v.mv_size == 8)
            log->max_attachment = tl_seq_from_key(v.mv_data);
        uint8_t one[8];
        tl_seq_key(one, 1);
        const uint8_t *bytes = NULL, *sig = NULL;
        size_t len = 0;
        tl_event ev;
        uint64_t limit;
        if (tl_get(txn, log->db_log, one, 8, &v) == 0 && tl_record_split(&v, &bytes, &len, &sig) == 0 &&
            tl_event_decode(&ev, bytes, len) == 0 && strcmp(ev.kind, "log.created") == 0 &&
            tl_ev_uint(&ev, "max_attachment", &limit) == 0)
            log->max_attachment = limit;
        else if (!log->max_attachment && !(log->flags & TL_OPEN_READONLY)) /* reading needs no limit */
            rc = tl_fail(TL_ECORRUPT, "%s: no attachment limit: the genesis event cannot be read and meta holds no copy",
                         log->dir);
    }
    if (!rc) {
        int lrc = tl_get(txn, log->db_meta, META_LAYOUT, sizeof META_LAYOUT - 1, &v);
        if (lrc && lrc != TL_ENOTFOUND) rc = lrc;
        else {
            atomic_store(&log->layout_stale, lrc == TL_ENOTFOUND || v.mv_size != 8 || tl_seq_from_key(v.mv_data) != TL_LAYOUT_VERSION);
            atomic_store(&log->layout_damaged, lrc == 0 && v.mv_size == 8 && tl_seq_from_key(v.mv_data) == TL_LAYOUT_DAMAGED);
        }
    }
    tl_rtxn_end(log, txn);
    return rc;
}

int tl_layout_check(tl_log *log) {
    if (!atomic_load(&log->layout_stale)) return 0;
    if (atomic_load(&log->layout_damaged))
        return tl_fail(TL_ECORRUPT, "the projections of %s are damaged (a database was missing from the data file): run "
                                    "`threadlog replay` to rebuild them from the log, then retry", log->dir);
    return tl_fail(TL_EVERSION, "the projections of %s were built by an earlier threadlog (another layout): run "
                                "`threadlog replay` to rebuild them, then retry", log->dir);
}

int tl_layout_write(tl_wtxn *w) {
    uint8_t u[8];
    tl_seq_key(u, TL_LAYOUT_VERSION);
    return tl_put(w, w->log->db_meta, META_LAYOUT, sizeof META_LAYOUT - 1, u, 8, 0);
}

/* Load the key the head names; finish a rotation that stopped between committing key.rotated
 * and renaming its key file (keyfiles.c). */
static int read_head(tl_log *log, tl_head *head) {
    MDB_txn *txn = NULL;
    int rc = tl_rtxn_begin(log, &txn);
    if (!rc) {
        rc = tl_head_read(txn, log, head);
        tl_rtxn_end(log, txn);
    }
    return rc;
}

static int load_writer_key(tl_log *log) {
    tl_head head;
    int rc = read_head(log, &head);
    char *from = NULL, *path = tl_path_join(log->dir, TL_KEY_FILE);
    if (!rc && !path) rc = tl_fail(TL_ENOMEM, "out of memory");
    if (!rc) {
        /* a key file readable by others is refused outright, whatever it holds */
        tl_keypair k;
        if ((rc = tl_keyfile_read(path, &k)) == 0) {
            tl_keypair_wipe(&k);
            rc = tl_keyfile_find(log->dir, head.pk, &log->key, &from);
            /* a rotation may have committed and renamed its file after the head was read:
             * read the head once more */
            if (rc && (rc = read_head(log, &head)) == 0)
                rc = tl_keyfile_find(log->dir, head.pk, &log->key, &from);
            if (rc) rc = tl_fail(TL_EKEY, "the writer key in %s is not the log's current key", path);
        }
    }
    /* ENOENT: another process finished it first (the key is loaded either way) */
    if (!rc && strcmp(from, path) != 0 && rename(from, path) != 0 && errno != ENOENT)
        rc = tl_fail(TL_EKEY, "cannot finish key rotation: %s", strerror(errno));
    if (!rc) log->have_key = true;
    else tl_keypair_wipe(&log->key);
    free(from);
    free(path);
    return rc;
}

/*
 * LMDB follows the page numbers its meta page records without checking them against the
 * file, so a data file cut short (a truncated copy, a disk that filled during a copy) makes
 * the first read past its end a SIGBUS. Refuse such a file before anything reads it. Also
 * clear the reader slots of processes that died inside a read transaction: they would pin
 * old pages (the file grows instead of reusing them) and, enough of them, fill the reader
 * table for every process (MDB_READERS_FULL) while any process keeps the log open.
 */
static int check_data_file(tl_log *log) {
    MDB_envinfo info;
    MDB_stat st;
    struct stat sb;
    int fd = -1;
    if (mdb_env_info(log->env, &info) || mdb_env_stat(log->env, &st) || mdb_env_get_fd(log->env, &fd) ||
        fstat(fd, &sb) != 0)
        return tl_fail(TL_ESTORAGE, "cannot inspect the data file of %s", log->dir);
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)sb.st_size < need)
        return tl_fail(TL_ECORRUPT, "%s/%s is %llu bytes but its pages need %llu: the file was truncated", log->dir,
                       TL_DATA_FILE, (unsigned long long)sb.st_size, (unsigned long long)need);
    int dead = 0;
    mdb_reader_check(log->env, &dead);
    return 0;
}

/*
 * LMDB makes its lock file sparse (ftruncate) and writes it through a shared map: on a full
 * disk the first write there faults (SIGBUS) instead of failing, which the CLI can only report
 * as a damaged file. So a missing lock file is made here first, its blocks allocated: a full
 * disk is then ENOSPC, a storage error like any other, and a healthy log is never called
 * damaged. The size is LMDB's for 254 readers (253 slots of 64 bytes after a 192-byte header:
 * the 16 KiB file it makes itself); a larger LMDB build extends the file as before.
 */
#define TL_LOCK_FILE_BYTES 16384

int tl_lockfile_prepare(const char *dir) {
    char *path = tl_path_join(dir, "lock.mdb");
    if (!path) return ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) { /* there already, or not creatable here: LMDB opens it (or says why not) */
        free(path);
        return 0;
    }
    int rc = posix_fallocate(fd, 0, TL_LOCK_FILE_BYTES);
    close(fd);
    if (rc) unlink(path);
    free(path);
    return rc == ENOSPC || rc == EDQUOT || rc == EIO ? rc : 0; /* unsupported: as LMDB would do */
}

int tl_env_create_open(MDB_env **out, const char *dir, unsigned env_flags, size_t map_bytes) {
    MDB_env *env;
    int rc = env_flags & MDB_NOLOCK ? 0 : tl_lockfile_prepare(dir);
    if (rc) return rc;
    rc = mdb_env_create(&env);
    if (rc) return rc;
    mdb_env_set_maxdbs(env, TL_MAX_DBS);
    mdb_env_set_maxreaders(env, 254);
    if (map_bytes) mdb_env_set_mapsize(env, map_bytes);
    rc = mdb_env_open(env, dir, env_flags, 0600);
    if (rc) {
        mdb_env_close(env);
        return rc;
    }
    *out = env;
    return 0;
}

/*
 * One handle per log per process. LMDB's locks are POSIX record locks, which belong to the
 * process, not to a descriptor: closing a second environment on the same data file drops the
 * first one's locks too, and another process's stale-reader check (mdb_reader_check) then
 * frees the first handle's reader slots while its snapshots are still being read, so that
 * writers reuse pages those snapshots read (lmdb.h: never open an environment twice in one
 * process). So a second open of the same data file in one process is refused while the first
 * handle is open; that handle is thread-safe and can be shared. This list is the library's
 * one process-wide state. Entries remember their process: a child of fork() may open the log
 * it inherited a handle to (it must not use that handle: LMDB environments do not survive
 * fork).
 */
typedef struct open_file {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    const tl_log *log;
    struct open_file *next;
} open_file;
static pthread_mutex_t open_files_mu = PTHREAD_MUTEX_INITIALIZER;
static open_file *open_files;

/* A fork() while another thread holds open_files_mu would leave the child's copy locked for
 * ever, and a child may open logs: the mutex is taken around fork and released on both sides.
 * (The child's list keeps the parent's entries; their pid tells them apart.) The handlers are
 * registered when the library is loaded, before any an embedder registers: prepare handlers
 * run in the reverse order of registration and the others in order, so an embedder's own
 * handlers, which may open or close logs, run while the mutex is free. libsodium is
 * initialised then too (tl_crypto_init, once per process). */
static void open_files_prepare(void) { pthread_mutex_lock(&open_files_mu); }
static void open_files_release(void) { pthread_mutex_unlock(&open_files_mu); }
__attribute__((constructor)) static void open_files_init(void) {
    pthread_atfork(open_files_prepare, open_files_release, open_files_release);
    (void)tl_crypto_init(); /* its result is asked again at every open */
}

static int claim_data_file(const tl_log *log, const struct stat *st) {
    open_file *f = malloc(sizeof *f);
    if (!f) return tl_fail(TL_ENOMEM, "out of memory");
    pid_t me = getpid();
    pthread_mutex_lock(&open_files_mu);
    for (const open_file *o = open_files; o; o = o->next)
        if (o->dev == st->st_dev && o->ino == st->st_ino && o->pid == me) {
            pthread_mutex_unlock(&open_files_mu);
            free(f);
            return tl_fail(TL_EUSAGE, "%s is already open in this process: share that handle (it is thread-safe); LMDB "
                                      "allows one environment per file per process", log->dir);
        }
    *f = (open_file){st->st_dev, st->st_ino, me, log, open_files};
    open_files = f;
    pthread_mutex_unlock(&open_files_mu);
    return 0;
}

static void release_data_file(const tl_log *log) {
    open_file *gone = NULL;
    pthread_mutex_lock(&open_files_mu);
    for (open_file **p = &open_files; *p; p = &(*p)->next)
        if ((*p)->log == log) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&open_files_mu);
    free(gone); /* outside the lock: nothing but the list's own steps under it */
}

/*
 * The environment holds a threadlog log: its "log", "meta" and "content" databases and the
 * format record (made together by init), looked up in a read transaction. Before this, a
 * writable open would create the missing databases — two commits that overwrite both of
 * LMDB's meta pages, so a data file whose main tree root was damaged (one bit of a meta page:
 * the previous meta page still names the good tree) became unrecoverable before the open
 * refused it, and a foreign LMDB environment was written into. Only the projections'
 * databases are ever created by an open (a log made by an older build), and only after this.
 */
static int holds_a_log(tl_log *log) {
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    static const char *core[] = {"log", "meta", "content"};
    MDB_dbi dbi[3];
    for (int i = 0; i < 3 && !rc; i++) {
        int mrc = mdb_dbi_open(txn, core[i], 0, &dbi[i]);
        if (mrc == MDB_NOTFOUND || mrc == MDB_INCOMPATIBLE)
            rc = tl_fail(TL_ECORRUPT, "%s holds no threadlog log, or its data file is damaged (no %s database); nothing "
                                      "was written", log->dir, core[i]);
        else if (mrc)
            rc = tl_fail_mdb(mrc, "open the log's databases");
    }
    MDB_val v;
    if (!rc && tl_get(txn, dbi[1], META_FORMAT, sizeof META_FORMAT - 1, &v) == TL_ENOTFOUND)
        rc = tl_fail(TL_ECORRUPT, "%s holds no threadlog log (no format record); nothing was written", log->dir);
    tl_rtxn_end(log, txn); /* handles opened in a transaction that ends without a commit close with it */
    return rc;
}

/* A fresh environment has no spare page buffers: the erasures so far are behind it. */
static int note_erasures(tl_log *log) {
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn);
    if (rc) return rc;
    log->erasures_seen = tl_erasures_read(txn, log);
    tl_rtxn_end(log, txn);
    return 0;
}

/* A log opened for writing must not write over a damaged free-page list (freelist.c). */
static int writable_free_list(tl_log *log) {
    if (log->flags & TL_OPEN_READONLY) return 0;
    MDB_txn *txn;
    int rc = tl_rtxn_begin(log, &txn); /* adopts a map another process has grown meanwhile */
    if (rc) return rc;
    rc = tl_freelist_check(txn, log->env);
    tl_rtxn_end(log, txn);
    return rc;
}

int tl_engine_open(tl_log **out, const char *dir, unsigned flags) {
    *out = NULL;
    int rc = tl_crypto_init();
    if (rc) return rc;
    struct stat st;
    char *data = tl_path_join(dir, TL_DATA_FILE);
    if (!data) return tl_fail(TL_ENOMEM, "out of memory");
    int exists = stat(data, &st) == 0, why = errno;
    free(data);
    if (!exists && why == EACCES) return tl_fail(TL_ESTORAGE, "cannot read %s: %s", dir, strerror(why));
    if (!exists) return tl_fail(TL_ENOTFOUND, "%s holds no threadlog log", dir);
    /* LMDB would take an empty file for a new environment (writable: format it; read-only:
     * fail with EBADF): either way not what an emptied log deserves */
    if (st.st_size == 0) return tl_fail(TL_ECORRUPT, "%s/%s is empty: the log's data is gone", dir, TL_DATA_FILE);

    tl_log *log = calloc(1, sizeof *log);
    if (!log) return tl_fail(TL_ENOMEM, "out of memory");
    log->dir = strdup(dir);
    log->flags = flags;
    log->sign_threads = 2;
    /* Readers first, explicitly (glibc's default, not every libc's): a thread may take the
     * map lock shared while it holds it already (a query inside an export's callback) or
     * while it holds write_mu, and a grower waiting for it exclusively must not block such a
     * reader — its wait is bounded (map.c), this thread's would not be. */
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_READER_NP);
    pthread_rwlock_init(&log->map_lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    pthread_mutex_init(&log->write_mu, NULL);
    pthread_mutex_init(&log->gate_mu, NULL);
    pthread_mutex_init(&log->key_mu, NULL);
    pthread_cond_init(&log->gate_cv, NULL);
    atomic_init(&log->map_writers, 0);
    atomic_init(&log->write_owner, 0);
    if (!log->dir) { tl_engine_close(log); return tl_fail(TL_ENOMEM, "out of memory"); }
    if ((rc = claim_data_file(log, &st)) != 0) { tl_engine_close(log); return rc; }

    log->env_flags = MDB_NOTLS;
    if (flags & TL_OPEN_READONLY) log->env_flags |= MDB_RDONLY;
    if (flags & TL_OPEN_NOSYNC) log->env_flags |= MDB_NOSYNC;
    if ((flags & TL_OPEN_WRITEMAP) && !(flags & TL_OPEN_READONLY)) log->env_flags |= MDB_WRITEMAP;
    rc = tl_env_create_open(&log->env, dir, log->env_flags, 0);
    if ((rc == EACCES || rc == EROFS) && (flags & TL_OPEN_READONLY)) {
        /* A read-only copy (an auditor's snapshot, a read-only mount) where the lock file
         * cannot be created or written: read it without LMDB's lock table. Nothing can write
         * to such a directory, which is the one thing the lock table protects readers from. */
        log->env_flags |= MDB_NOLOCK;
        rc = tl_env_create_open(&log->env, dir, log->env_flags, 0);
    }
    if (rc) {
        tl_engine_close(log);
        if ((rc == EACCES || rc == EROFS) && !(flags & TL_OPEN_READONLY))
            return tl_fail(TL_EREADONLY, "cannot open %s for writing (%s)", dir,
                           rc == EROFS ? "a read-only file system" : "no write permission");
        return tl_fail_mdb(rc, "open log");
    }
    if ((rc = check_data_file(log)) != 0) {
        tl_engine_close(log);
        return rc;
    }
    /* another process may have grown the map: adopt the size recorded in the file */
    MDB_envinfo info;
    mdb_env_info(log->env, &info);
    if (info.me_mapsize < tl_map_initial() && !(flags & TL_OPEN_READONLY)) mdb_env_set_mapsize(log->env, tl_map_initial());

    if ((rc = holds_a_log(log)) || (rc = tl_db_open(log, "log", 0, &log->db_log)) || (rc = tl_db_open(log, "meta", 0, &log->db_meta)) ||
        (rc = tl_db_open(log, "content", 0, &log->db_content)) || (rc = check_format(log)) ||
        (rc = writable_free_list(log)) || (rc = note_erasures(log))) {
        tl_engine_close(log);
        return rc;
    }
    /* an erasure whose clearing was cut short (a killed `erase`): clear now. A failure leaves
     * the record for the next open; the log itself is fine. */
    (void)tl_scrub_if_owed(log);
    if (!(flags & (TL_OPEN_READONLY | TL_OPEN_NOKEY | TL_OPEN_REPLICA)) && (rc = load_writer_key(log)) != 0) {
        tl_engine_close(log);
        return rc;
    }
    *out = log;
    return 0;
}

void tl_engine_close(tl_log *log) {
    if (!log) return;
    if (log->commands_free) log->commands_free(log->commands);
    for (unsigned i = 0; i < log->napplier; i++)
        if (log->appliers[i].release) log->appliers[i].release(log->appliers[i].state);
    /* THREADLOG_TEST_CLOSE_PAUSE_MS (a test-only knob): widen the window before the
     * environment closes, so a test can try to open the log again inside it */
    const char *pause = getenv("THREADLOG_TEST_CLOSE_PAUSE_MS");
    if (pause && *pause) {
        long ms = strtol(pause, NULL, 10);
        if (ms > 0 && ms <= 5000) nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
    }
    if (log->env) mdb_env_close(log->env);
    for (unsigned i = 0; i < log->ndbs; i++) free(log->dbs[i].name);
    tl_keypair_wipe(&log->key);
    tl_keypair_wipe(&log->next_key);
    pthread_rwlock_destroy(&log->map_lock);
    pthread_mutex_destroy(&log->gate_mu);
    pthread_mutex_destroy(&log->key_mu);
    pthread_cond_destroy(&log->gate_cv);
    pthread_mutex_destroy(&log->write_mu);
    free(log->dir);
    release_data_file(log); /* only once its environment is closed: until then, a second one
                             * on the file would have its locks dropped by that close */
    free(log);
}
