/*
 * crypto.c — libsodium behind the few operations the log needs.
 *
 * The key file holds the 64-byte libsodium secret key and nothing else. It is created with
 * O_EXCL and mode 0600 and fsynced before the log refers to it; reading refuses a file that
 * others may read, because a leaked writer key lets anyone forge history.
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* Once per process: sodium_init takes libsodium's global mutex on every call, even after it
 * succeeded, and a fork() while another thread held it would leave the child unable to open
 * any log. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status;
static void sodium_init_once(void) { sodium_status = sodium_init(); }

int tl_crypto_init(void) {
    pthread_once(&sodium_once, sodium_init_once);
    if (sodium_status < 0) return tl_fail(TL_EKEY, "libsodium failed to initialise");
    return 0;
}

void tl_hash(uint8_t out[TL_HASH_BYTES], const void *data, size_t len) {
    crypto_generichash(out, TL_HASH_BYTES, data, len, NULL, 0);
}

void tl_commit(uint8_t out[TL_HASH_BYTES], const uint8_t salt[TL_SALT_BYTES], const void *content, size_t len) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TL_HASH_BYTES);
    crypto_generichash_update(&st, salt, TL_SALT_BYTES);
    crypto_generichash_update(&st, content, len);
    crypto_generichash_final(&st, out, TL_HASH_BYTES);
}

void tl_random(void *buf, size_t len) { randombytes_buf(buf, len); }

void tl_keypair_generate(tl_keypair *kp) { crypto_sign_keypair(kp->pk, kp->sk); }

void tl_keypair_wipe(tl_keypair *kp) { sodium_memzero(kp, sizeof *kp); }

/* The directory entry of a new file survives a power loss only once the directory is synced:
 * a key file must be on disk, name included, before the event that names its key commits. */
static int sync_parent_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0) snprintf(dir, sizeof dir, "%s", slash ? "/" : ".");
    else if (n < sizeof dir) { memcpy(dir, path, n); dir[n] = 0; }
    else return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int tl_keyfile_write(const char *path, const tl_keypair *kp) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return tl_fail(errno == ENOSPC || errno == EDQUOT || errno == EIO ? TL_ESTORAGE : TL_EKEY,
                               "cannot create key file %s: %s", path, strerror(errno));
    ssize_t w = write(fd, kp->sk, TL_SECRETKEY_BYTES);
    int ok = w == TL_SECRETKEY_BYTES && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (ok && sync_parent_dir(path) != 0) { ok = 0; saved = errno; }
    if (!ok) {
        unlink(path);
        /* a full or failing disk is storage, as everywhere else */
        return tl_fail(saved == ENOSPC || saved == EDQUOT || saved == EIO ? TL_ESTORAGE : TL_EKEY,
                       "cannot write key file %s: %s", path, strerror(saved));
    }
    return 0;
}

int tl_keyfile_read(const char *path, tl_keypair *kp) {
    /* O_NONBLOCK: a FIFO put in the key's place would block the open until a writer came;
     * it opens at once instead, and is refused below as not a regular file */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP) return tl_fail(TL_EKEY, "key file %s is a symbolic link: refused", path);
    if (fd < 0) return tl_fail(TL_EKEY, "cannot open key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tl_fail(TL_EKEY, "key file %s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return tl_fail(TL_EKEY, "key file %s is accessible by others (mode %03o); chmod 600 it",
                       path, (unsigned)(st.st_mode & 0777));
    }
    ssize_t r = read(fd, kp->sk, TL_SECRETKEY_BYTES);
    uint8_t extra;
    ssize_t more = read(fd, &extra, 1);
    close(fd);
    if (r != TL_SECRETKEY_BYTES || more != 0) {
        sodium_memzero(kp, sizeof *kp);
        return tl_fail(TL_EKEY, "key file %s is not a %d-byte ed25519 key", path, TL_SECRETKEY_BYTES);
    }
    /* The file holds the seed and then the public key (libsodium's secret key). Signing uses
     * both halves, so a file whose public half is not the seed's (one flipped bit, a mixed-up
     * file) would sign events that never verify, and every later event chains onto them:
     * the public key is derived from the seed again and the two must agree. */
    uint8_t derived_pk[TL_PUBKEY_BYTES], derived_sk[TL_SECRETKEY_BYTES];
    crypto_sign_seed_keypair(derived_pk, derived_sk, kp->sk);
    bool same = sodium_memcmp(derived_sk, kp->sk, TL_SECRETKEY_BYTES) == 0;
    sodium_memzero(derived_sk, sizeof derived_sk);
    if (!same) {
        sodium_memzero(kp, sizeof *kp);
        return tl_fail(TL_EKEY, "key file %s is damaged: its public key is not its seed's", path);
    }
    memcpy(kp->pk, derived_pk, TL_PUBKEY_BYTES);
    return 0;
}

void tl_sign(uint8_t sig[TL_SIGNATURE_BYTES], const uint8_t *msg, size_t len, const tl_keypair *kp) {
    crypto_sign_detached(sig, NULL, msg, len, kp->sk);
}

int tl_verify_sig(const uint8_t sig[TL_SIGNATURE_BYTES], const uint8_t *msg, size_t len,
                  const uint8_t pk[TL_PUBKEY_BYTES]) {
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : -1;
}

typedef struct par_job {
    size_t n;
    atomic_size_t next;
    void (*fn)(size_t, void *);
    void *ctx;
} par_job;

/* Work is handed out in chunks from a shared counter, so an unevenly loaded core (the
 * machine is shared) takes less of it instead of everyone waiting for the slowest. */
static void *par_worker(void *arg) {
    par_job *job = arg;
    const size_t chunk = 64;
    for (;;) {
        size_t start = atomic_fetch_add(&job->next, chunk);
        if (start >= job->n) break;
        size_t end = start + chunk < job->n ? start + chunk : job->n;
        for (size_t i = start; i < end; i++) job->fn(i, job->ctx);
    }
    return NULL;
}

void tl_parallel_for(size_t n, unsigned threads, void (*fn)(size_t i, void *ctx), void *ctx) {
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;
    par_job job = {.n = n, .fn = fn, .ctx = ctx};
    atomic_init(&job.next, 0);
    pthread_t tids[16];
    unsigned started = 0;
    if (n >= 128)
        for (unsigned t = 1; t < threads; t++)
            if (pthread_create(&tids[started], NULL, par_worker, &job) == 0) started++;
    par_worker(&job);
    for (unsigned t = 0; t < started; t++) pthread_join(tids[t], NULL);
}

void tl_hex(char *out, const uint8_t *in, size_t n) { sodium_bin2hex(out, 2 * n + 1, in, n); }

int tl_unhex(uint8_t *out, size_t n, const char *hex) {
    size_t got = 0;
    const char *end = NULL;
    if (strlen(hex) != 2 * n) return TL_EINVALID;
    if (sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, &end) != 0 || got != n || *end) return TL_EINVALID;
    return 0;
}
