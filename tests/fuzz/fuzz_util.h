/*
 * fuzz_util.h — small file helpers shared by the fuzz targets (header-only: each target is
 * built both as a libFuzzer binary and, for corpus replay, with a plain main()).
 *
 * Work files go to /dev/shm when it exists: the targets write a log per input, and a RAM
 * file system keeps that from wearing a disk or waiting for it.
 */
#ifndef TL_FUZZ_UTIL_H
#define TL_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under /dev/shm (or $TMPDIR, /tmp); a malloc'd path, or abort. */
static inline char *fz_tmpdir(const char *tag) {
    /* run.sh names a directory of its own, removed after the run even when a crash skipped
     * the targets' atexit() clean-up */
    const char *base = getenv("TL_FUZZ_TMP");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char *p = malloc(strlen(base) + strlen(tag) + 32);
    if (!p) abort();
    sprintf(p, "%s/tlfuzz-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) { perror("mkdtemp"); abort(); }
    return p;
}

/* Remove the plain files of dir (one level) and, when rmself, dir itself (unless
 * TL_FUZZ_KEEP is set, to look at a template). */
static inline void fz_clear(const char *dir, int rmself) {
    if (rmself && getenv("TL_FUZZ_KEEP")) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    if (rmself) rmdir(dir);
}

static inline int fz_write(const char *path, const void *data, size_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) { close(fd); return -1; }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

/* The whole of a file, malloc'd; NULL when unreadable. */
static inline uint8_t *fz_read(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return NULL; }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (buf && got != (size_t)st.st_size) { free(buf); return NULL; }
    if (buf) buf[got] = 0;
    *len = got;
    return buf;
}

/* Copy the plain files of src into dst (one level). */
static inline void fz_copy_dir(const char *src, const char *dst) {
    DIR *d = opendir(src);
    if (!d) abort();
    struct dirent *e;
    char a[4096], b[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        size_t n;
        uint8_t *buf = fz_read(a, &n);
        if (!buf || fz_write(b, buf, n, 0600) != 0) abort();
        free(buf);
    }
    closedir(d);
}

#endif
