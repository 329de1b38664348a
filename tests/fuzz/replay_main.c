/*
 * replay_main.c — a plain main() for the fuzz targets: run every file of the given
 * directories (or files) through LLVMFuzzerTestOneInput once. Used by ctest in the normal
 * build, so that every seed and every crash the fuzzers ever found is replayed on each run,
 * with whatever compiler and sanitizers the build uses. Files named README* are skipped.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
    size_t n;
    uint8_t *buf = fz_read(path, &n);
    if (!buf) { fprintf(stderr, "cannot read %s\n", path); return -1; }
    /* an exactly-sized copy: the fuzzer hands out exactly-sized buffers too */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    setenv("TL_FUZZ_VERIFY_EACH", "1", 1); /* slower, stricter: a replay has few inputs */
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    unsigned long ran = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* a corpus not created yet */
        if (!S_ISDIR(st.st_mode)) { failed |= run_file(argv[i]) != 0; ran++; continue; }
        DIR *d = opendir(argv[i]);
        if (!d) continue;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !strncmp(e->d_name, "README", 6)) continue;
            if (n == cap) { cap = cap ? cap * 2 : 64; names = realloc(names, cap * sizeof *names); if (!names) abort(); }
            names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
            if (!names[n]) abort();
            sprintf(names[n++], "%s/%s", argv[i], e->d_name);
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            failed |= run_file(names[k]) != 0;
            ran++;
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %lu inputs\n", ran);
    if (!ran) fprintf(stderr, "no input replayed: the corpus is missing or empty\n");
    return failed || !ran; /* a replay of nothing must not pass for a replay of the corpus */
}
