/*
 * keyfiles.c — where the writer key lives on disk across rotations.
 *
 * `writer.key` holds the current key. A rotation writes its new key to a file of its own,
 * `writer.key.new.<public key in hex>`, inside its write transaction, commits the
 * `key.rotated` event, then renames that file over `writer.key`. The name carries the key, so
 * a rotation's late rename can only ever move its own key, never another rotation's; and the
 * key the log's head names can be found by name alone (tl_keyfile_find), between a commit
 * and its rename, by the process that opens the log or writes next.
 *
 * Files are only removed inside a write transaction (LMDB's writer lock: no other process is
 * between its begin and its commit): then a rotation file that does not name the head's key
 * belongs to a rotation that never committed (tl_keyfile_settle). `writer.key.new` without a
 * suffix is what versions before this one wrote; it is read and settled the same way.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

char *tl_keyfile_rotation_path(const char *dir, const uint8_t pk[TL_PUBKEY_BYTES]) {
    char name[sizeof TL_KEY_FILE_NEW + 1 + 2 * TL_PUBKEY_BYTES];
    char hex[2 * TL_PUBKEY_BYTES + 1];
    tl_hex(hex, pk, TL_PUBKEY_BYTES);
    snprintf(name, sizeof name, "%s.%s", TL_KEY_FILE_NEW, hex);
    return tl_path_join(dir, name);
}

/* Read path's key if its public key is pk: 1 found, 0 not (absent, unreadable, another). */
static int read_if(const char *path, const uint8_t pk[TL_PUBKEY_BYTES], tl_keypair *kp) {
    tl_keypair k;
    /* absent is the usual answer: no failure detail for it (tl_errdetail after a success) */
    if (!path || access(path, F_OK) != 0 || tl_keyfile_read(path, &k) != 0) return 0;
    if (memcmp(k.pk, pk, TL_PUBKEY_BYTES) != 0) {
        tl_keypair_wipe(&k);
        return 0;
    }
    *kp = k;
    tl_keypair_wipe(&k);
    return 1;
}

int tl_keyfile_find(const char *dir, const uint8_t pk[TL_PUBKEY_BYTES], tl_keypair *kp, char **from) {
    /* the rotation file first: the only rename that may run meanwhile moves it over
     * writer.key, so looking there second could miss the key in both places */
    char *paths[3] = {tl_keyfile_rotation_path(dir, pk), tl_path_join(dir, TL_KEY_FILE), tl_path_join(dir, TL_KEY_FILE_NEW)};
    int rc = TL_ENOTFOUND;
    for (int i = 0; i < 3 && rc == TL_ENOTFOUND; i++)
        if (read_if(paths[i], pk, kp)) {
            rc = 0;
            if (from) { *from = paths[i]; paths[i] = NULL; }
        }
    for (int i = 0; i < 3; i++) free(paths[i]);
    if (rc) return tl_fail(TL_EKEY, "no key file in %s holds the log's current key", dir);
    return 0;
}

void tl_keyfile_settle(const char *dir, const uint8_t head_pk[TL_PUBKEY_BYTES]) {
    char *key = tl_path_join(dir, TL_KEY_FILE);
    char *current = tl_keyfile_rotation_path(dir, head_pk);
    char *legacy = tl_path_join(dir, TL_KEY_FILE_NEW);
    tl_keypair k;
    if (key && current && access(current, F_OK) == 0 && read_if(current, head_pk, &k)) {
        tl_keypair_wipe(&k);
        (void)rename(current, key); /* a committed rotation, not renamed yet */
    }
    if (key && legacy && tl_keyfile_read(legacy, &k) == 0) {
        bool head = memcmp(k.pk, head_pk, TL_PUBKEY_BYTES) == 0;
        tl_keypair_wipe(&k);
        if (head) (void)rename(legacy, key);
        else unlink(legacy); /* read, and not the head's: stale for sure */
    }
    /* other rotation files: their rotations never committed (we hold the writer lock) */
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t plen = strlen(TL_KEY_FILE_NEW) + 1;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, TL_KEY_FILE_NEW ".", plen) != 0 || strlen(e->d_name) != plen + 2 * TL_PUBKEY_BYTES) continue;
        char *p = tl_path_join(dir, e->d_name);
        if (p && (!current || strcmp(p, current) != 0)) unlink(p);
        free(p);
    }
    if (d) closedir(d);
    free(key);
    free(current);
    free(legacy);
}
