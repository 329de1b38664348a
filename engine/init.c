/*
 * init.c — creating a log (`threadlog init`, tl_init): the directory (created if missing,
 * refused when it holds a log or other files), the writer key file, and the environment's
 * first transaction: the "log", "meta" and "content" databases, the signed genesis event
 * (format, first public key, limits), the head, the genesis key, the attachment limit and
 * the layout record (docs/FORMAT.md). Opening an existing log is log.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* 1: empty or missing, 0: holds other files, TL_EEXISTS: holds a log. */
static int dir_state(const char *dir) {
    char *data = tl_path_join(dir, TL_DATA_FILE);
    struct stat st;
    int has_log = data && stat(data, &st) == 0;
    if (!has_log) free(data);
    if (has_log) {
        /* a log, or only a file by that name (junk, an empty file): the latter is a directory
         * that is not empty and holds no log, as for any other file. Told by LMDB's magic
         * number in the first meta page (after its 16-byte page header), read without opening
         * an environment, which would create lock.mdb beside it */
        uint32_t magic = 0;
        int fd = open(data, O_RDONLY | O_CLOEXEC);
        bool lmdb = fd >= 0 && pread(fd, &magic, sizeof magic, 16) == (ssize_t)sizeof magic && magic == 0xBEEFC0DEu;
        bool unreadable = fd < 0;
        if (fd >= 0) close(fd);
        free(data);
        if (!lmdb && !unreadable)
            return tl_fail(TL_EINVALID, "%s is not empty and holds no log: its %s is not an LMDB data file", dir, TL_DATA_FILE);
        return tl_fail(TL_EEXISTS, "%s already holds a log", dir);
    }
    struct stat ds;
    if (stat(dir, &ds) == 0 && !S_ISDIR(ds.st_mode)) return tl_fail(TL_EINVALID, "%s exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (!d) return 1;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
    closedir(d);
    return empty;
}

/* mkdir -p: `init a/b/log` creates what is missing (the last level mode 0700); *made: the
 * last level was created by this call. */
static int mkdir_parents(const char *dir, bool *made) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) { errno = ENAMETOOLONG; return -1; }
    /* `a/log/` is `a/log`: the last level is the one made 0700 (and known to be made here) */
    for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--) path[n - 1] = 0;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) == 0) *made = true;
    else if (errno != EEXIST) return -1;
    return 0;
}

static void unlink_in(const char *dir, const char *name) {
    char *path = tl_path_join(dir, name);
    if (path) unlink(path);
    free(path);
}

void tl_engine_init_undo(const char *dir, const tl_init_made *made) {
    if (made->env) {
        unlink_in(dir, TL_DATA_FILE);
        unlink_in(dir, "lock.mdb");
    }
    if (made->key) unlink_in(dir, TL_KEY_FILE);
    if (made->dir) rmdir(dir); /* only when empty: what another process put there stays */
}

static int init_files(const char *dir, uint64_t max_attachment, char pubkey_hex[TL_PUBKEY_HEX_SIZE], tl_init_made *made);

/* ---------------------------------------------------------------- staging
 *
 * `init DIR` builds the whole log in DIR/.threadlog-init.PID (key, environment, genesis, every
 * applier's databases) and only then links its two files into DIR: the key first, the data
 * file last, since a data file is what makes a directory a log. A killed init therefore leaves
 * either no log (DIR holding at most the key and the staging directory, which the next init
 * recognises and clears) or a complete one, never one that is half made (before, a kill could
 * leave a log that failed verify, or a directory neither usable nor re-initialisable).
 */
#define STAGING_PREFIX ".threadlog-init."

static void staging_remove(const char *staging) {
    static const char *const files[] = {TL_DATA_FILE, "lock.mdb", TL_KEY_FILE};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink_in(staging, files[i]);
    rmdir(staging);
}

/* A killed init's leftovers, seen under the directory's lock (so no init is running): DIR
 * holds only staging directories, and perhaps the key one of them linked in before it died.
 * Cleared (1) or left (0: something else is there). */
static int clear_interrupted_init(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int staged = 0, others = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, TL_KEY_FILE)) continue;
        if (!strncmp(e->d_name, STAGING_PREFIX, sizeof STAGING_PREFIX - 1)) staged++;
        else others++;
    }
    if (others || !staged) { closedir(d); return 0; }
    rewinddir(d);
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, STAGING_PREFIX, sizeof STAGING_PREFIX - 1)) {
            char *path = tl_path_join(dir, e->d_name);
            if (path) staging_remove(path);
            free(path);
        }
    closedir(d);
    unlink_in(dir, TL_KEY_FILE); /* linked in by the dead init, for a log that never came */
    return 1;
}

int tl_engine_init_stage(const char *dir, char *staging, size_t cap, bool *made_dir, int *lock_fd) {
    *made_dir = false;
    *lock_fd = -1;
    int rc = tl_crypto_init();
    if (rc) return rc;
    int state = dir_state(dir);
    if (state < 0) return state;
    if (mkdir_parents(dir, made_dir) != 0) return tl_fail(TL_ESTORAGE, "cannot create %s: %s", dir, strerror(errno));
    /* one init at a time in a directory: the others answer exists at once, and leftovers seen
     * while holding the lock are a dead init's */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !tl_dir_lock(fd)) {
        int e = errno;
        if (fd >= 0) close(fd);
        /* Not when another init holds the lock: it works in the directory this call made
         * (it opened it after the mkdir), and removing it there failed that init too, at
         * times leaving no log while every other caller was told `exists` (an audit: 1-6% of
         * concurrent inits). Removed only while its maker holds the lock (below). */
        if (*made_dir && e != EWOULDBLOCK) rmdir(dir);
        return e == EWOULDBLOCK ? tl_fail(TL_EEXISTS, "another init is creating a log in %s", dir)
                                : tl_fail(TL_ESTORAGE, "cannot open %s: %s", dir, strerror(e));
    }
    state = dir_state(dir);
    if (state == 0) state = clear_interrupted_init(dir);
    if (state <= 0) {
        close(fd);
        return state < 0 ? state : tl_fail(TL_EINVALID, "%s is not empty and holds no log", dir);
    }
    if (snprintf(staging, cap, "%s/%s%ld", dir, STAGING_PREFIX, (long)getpid()) >= (int)cap || mkdir(staging, 0700) != 0) {
        int e = errno;
        if (*made_dir) rmdir(dir); /* under the lock: no other init is inside */
        close(fd);
        return tl_fail(TL_ESTORAGE, "cannot create the staging directory in %s: %s", dir, strerror(e));
    }
    *lock_fd = fd;
    return 0;
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Put name from staging into dir without replacing anything there (link), or by rename where
 * the filesystem has no hard links. */
static int publish(const char *staging, const char *dir, const char *name) {
    char *from = tl_path_join(staging, name), *to = tl_path_join(dir, name);
    int rc = 0;
    if (!from || !to) rc = tl_fail(TL_ENOMEM, "out of memory");
    else if (link(from, to) != 0) {
        if (errno == EEXIST) rc = tl_fail(TL_EEXISTS, "%s appeared in %s while init ran", name, dir);
        else if ((errno == EPERM || errno == EXDEV || errno == ENOTSUP || errno == EMLINK) && rename(from, to) == 0) rc = 0;
        else rc = tl_fail(TL_ESTORAGE, "cannot put %s into %s: %s", name, dir, strerror(errno));
    }
    free(from);
    free(to);
    return rc;
}

int tl_engine_init_publish(const char *dir, const char *staging, int lock_fd) {
    int rc = publish(staging, dir, TL_KEY_FILE);
    if (!rc) {
        unlink_in(staging, TL_KEY_FILE); /* no second name of the secret key left behind */
        sync_dir(dir);                   /* the key durable before the data file that needs it */
        if ((rc = publish(staging, dir, TL_DATA_FILE)) != 0) unlink_in(dir, TL_KEY_FILE);
    }
    if (rc) return rc; /* the caller abandons the staging directory, and lets the lock go */
    sync_dir(dir);
    staging_remove(staging);
    close(lock_fd);
    return 0;
}

void tl_engine_init_abandon(const char *dir, const char *staging, bool made_dir, int lock_fd) {
    staging_remove(staging);
    if (made_dir) rmdir(dir);
    if (lock_fd >= 0) close(lock_fd);
}

/*
 * A failure past the directory's checks (a full disk, most often) leaves nothing behind: a
 * half-made log would be refused by the next init as "exists" and by everything else as
 * damaged, and its directory would hold a secret key for nothing. Only what this call made
 * is removed: the key file it created (O_EXCL: an init racing it fails there and removes
 * nothing of the other's), the data and lock files it found absent, the directory it made
 * (parents that `init a/b/log` made stay).
 */
int tl_engine_init(const char *dir, uint64_t max_attachment, char pubkey_hex[TL_PUBKEY_HEX_SIZE], tl_init_made *made) {
    tl_init_made local = {0};
    if (!made) made = &local;
    memset(made, 0, sizeof *made);
    int rc = tl_crypto_init();
    if (rc) return rc;
    int state = dir_state(dir);
    if (state < 0) return state;
    if (state == 0) return tl_fail(TL_EINVALID, "%s is not empty and holds no log", dir);
    rc = init_files(dir, max_attachment, pubkey_hex, made);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", tl_errdetail());
        bool any = made->dir || made->key || made->env;
        tl_engine_init_undo(dir, made);
        memset(made, 0, sizeof *made);
        if (any) tl_fail(rc, "%s (what init made was removed)", why);
    }
    return rc;
}

static int init_files(const char *dir, uint64_t max_attachment, char pubkey_hex[TL_PUBKEY_HEX_SIZE], tl_init_made *made) {
    int rc;
    if (mkdir_parents(dir, &made->dir) != 0)
        return tl_fail(TL_ESTORAGE, "cannot create %s: %s", dir, strerror(errno));

    tl_keypair kp;
    tl_keypair_generate(&kp);
    char *keypath = tl_path_join(dir, TL_KEY_FILE);
    if (!keypath) return tl_fail(TL_ENOMEM, "out of memory");
    rc = tl_keyfile_write(keypath, &kp);
    free(keypath);
    if (rc) { tl_keypair_wipe(&kp); return rc; }
    made->key = true;
    /* the data file is created here, exclusively (LMDB takes an empty one as a new
     * environment), so that a failure removes only a file this call made; a lock file there
     * already is another program's */
    char *lockpath = tl_path_join(dir, "lock.mdb"), *datapath = tl_path_join(dir, TL_DATA_FILE);
    struct stat est;
    int dfd = -1;
    if (!lockpath || !datapath) rc = tl_fail(TL_ENOMEM, "out of memory");
    else if (lstat(lockpath, &est) == 0) rc = tl_fail(TL_EEXISTS, "lock.mdb appeared in %s while init ran", dir);
    else if ((dfd = open(datapath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        rc = errno == EEXIST ? tl_fail(TL_EEXISTS, "%s appeared in %s while init ran", TL_DATA_FILE, dir)
                             : tl_fail(TL_ESTORAGE, "cannot create %s: %s", TL_DATA_FILE, strerror(errno));
    if (dfd >= 0) {
        close(dfd);
        made->env = true; /* from here on, data.mdb (and the lock file LMDB adds) are this call's */
    }
    free(lockpath);
    free(datapath);
    if (rc) { tl_keypair_wipe(&kp); return rc; }

    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dlog, dmeta;
    int mrc = tl_lockfile_prepare(dir);
    if (!mrc) mrc = mdb_env_create(&env);
    if (mrc) { tl_keypair_wipe(&kp); return tl_fail_mdb(mrc, "create environment"); }
    mdb_env_set_maxdbs(env, TL_MAX_DBS);
    mdb_env_set_mapsize(env, tl_map_initial());
    if (!(mrc = mdb_env_open(env, dir, 0, 0600)) && !(mrc = mdb_txn_begin(env, NULL, 0, &txn)) &&
        !(mrc = mdb_dbi_open(txn, "log", MDB_CREATE, &dlog)) && !(mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dmeta))) {
        MDB_dbi dcontent;
        mrc = mdb_dbi_open(txn, "content", MDB_CREATE, &dcontent);
    }
    /* the genesis event: format, first public key, limits */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    tl_envelope env_ = {.seq = 1, .ts = tl_now_us(), .actor = "@operator", .kind = "log.created", .schema = 1};
    tl_payload p = {0};
    tl_payload_uint(&p, "format", TL_FORMAT_VERSION);
    tl_payload_bin(&p, "public_key", kp.pk, TL_PUBKEY_BYTES);
    tl_payload_uint(&p, "max_attachment", max_attachment);
    tl_payload_uint(&p, "max_body", TL_BODY_MAX);
    if (!mrc) rc = tl_event_encode(&buf, &env_, &p);
    if (!mrc && !rc) {
        uint8_t key[8], sig[TL_SIGNATURE_BYTES], head[8 + TL_HASH_BYTES + 8 + TL_PUBKEY_BYTES], u[8];
        tl_sign(sig, (const uint8_t *)buf.data, buf.size, &kp);
        tl_seq_key(key, 1);
        MDB_val k = {8, key}, v = {buf.size + TL_SIGNATURE_BYTES, NULL};
        mrc = mdb_put(txn, dlog, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (!mrc && !tl_reserved(&v, buf.size + TL_SIGNATURE_BYTES)) mrc = MDB_CORRUPTED;
        if (!mrc) {
            memcpy(v.mv_data, buf.data, buf.size);
            memcpy((uint8_t *)v.mv_data + buf.size, sig, TL_SIGNATURE_BYTES);
        }
        tl_seq_key(head, 1);
        tl_hash(head + 8, buf.data, buf.size);
        tl_seq_key(head + 8 + TL_HASH_BYTES, env_.ts);
        memcpy(head + 16 + TL_HASH_BYTES, kp.pk, TL_PUBKEY_BYTES);
        struct { const char *k; const void *v; size_t n; } meta[5];
        tl_seq_key(u, TL_FORMAT_VERSION);
        uint8_t lim[8];
        tl_seq_key(lim, max_attachment);
        meta[0].k = META_FORMAT; meta[0].v = u; meta[0].n = 8;
        meta[1].k = META_HEAD; meta[1].v = head; meta[1].n = sizeof head;
        meta[2].k = META_GENESIS_KEY; meta[2].v = kp.pk; meta[2].n = TL_PUBKEY_BYTES;
        meta[3].k = META_MAX_ATTACHMENT; meta[3].v = lim; meta[3].n = 8;
        uint8_t layout[8];
        tl_seq_key(layout, TL_LAYOUT_VERSION);
        meta[4].k = META_LAYOUT; meta[4].v = layout; meta[4].n = 8;
        for (int i = 0; i < 5 && !mrc; i++) {
            MDB_val mk = {strlen(meta[i].k), (void *)meta[i].k}, mv = {meta[i].n, (void *)meta[i].v};
            mrc = mdb_put(txn, dmeta, &mk, &mv, 0);
        }
        if (!mrc) { mrc = mdb_txn_commit(txn); txn = NULL; }
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    msgpack_sbuffer_destroy(&buf);
    if (!rc && mrc) rc = tl_fail_mdb(mrc, "create log");
    if (!rc && pubkey_hex) tl_hex(pubkey_hex, kp.pk, TL_PUBKEY_BYTES);
    tl_keypair_wipe(&kp);
    return rc;
}
