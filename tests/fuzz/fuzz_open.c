/*
 * fuzz_open.c — opening a damaged log: the input is written over parts of a copy of a
 * valid log's data.mdb, then the copy is opened (read-only, and when the input asks,
 * writable with one command appended) and verified.
 *
 * Input layout (all of it optional; a short input damages little):
 *   byte 0          flags: 1 = truncate the file, 2 = also open writable and append
 *   byte 1          truncation point, in 256ths of the file size (with flag 1)
 *   then patches:   u16 page (mod the file's pages), u16 offset in page (mod 4096),
 *                   u8 length, that many bytes written there
 *
 * What must hold: no crash and no sanitizer report; an open that succeeds is followed by a
 * verify that either passes or names a bad event (TL_ECORRUPT), or a clean error.
 * LMDB trusts its own pages: page numbers and node offsets read from a damaged file are
 * followed without bounds checks, so some inputs crash inside liblmdb itself (see
 * tests/fuzz/README.md for what the open path checks first and what remains).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "threadlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PAGE 4096

static char *tmpl_dir, *work_dir;
static uint8_t *tmpl_data, *tmpl_key;
static size_t tmpl_len, key_len;

static const char *const setup[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}",
    "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"When?\"}",
};

/*
 * Deterministic randomness. The append of a writable run salts its body's content with random
 * bytes, and content is keyed by its commitment, so with libsodium's own generator the
 * insert's path through the content tree -- and whether it meets the damaged page -- changed
 * from one execution of the same input to the next: a crash inside liblmdb then did not
 * reproduce when its input was replayed alone, and run.sh's triage, which replays each crash
 * to see where it happened, counted it as ours ("not reproduced"; 2 in 15 minutes on
 * 2026-11-27, 9 of ~300 crashes on 2026-11-28, one of them seen crashing in mdb_get from
 * tl_content_get on 2 replays of 6). So the target installs this generator before libsodium
 * starts, and seeds it again before each input: the same input makes the same salts (and,
 * building a fresh template, the same keys). Test-only: a fuzz target's randomness need
 * not be secret.
 */
static uint64_t rng_state;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *rng_name(void) { return "fuzz_open-deterministic"; }
static uint32_t rng_random(void) { return (uint32_t)rng_next(); }

static void rng_buf(void *const buf, const size_t size) {
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t x = rng_next();
        memcpy(p + i, &x, size - i < 8 ? size - i : 8);
    }
}

static randombytes_implementation rng = {
    .implementation_name = rng_name, .random = rng_random, .buf = rng_buf,
};

static void rng_seed(void) { rng_state = 0x7468726561646c6full; /* "threadlo" */ }

/* And a fixed clock (linked with -Wl,--wrap=tl_now_us): an appended event's time is the
 * tracking projection's key for its project's last activity, so the wall clock moved that
 * insert's path from run to run too. Before the template's events, so each appended event
 * takes the previous event's time plus 1 µs (wtxn.c), as the file says. */
uint64_t __wrap_tl_now_us(void);
uint64_t __wrap_tl_now_us(void) { return 1764547200000000ull; /* 2025-12-01 */ }

static void cleanup(void) {
    if (work_dir) fz_clear(work_dir, 1);
    if (tmpl_dir) fz_clear(tmpl_dir, 1);
    free(work_dir);
    free(tmpl_dir);
    free(tmpl_data);
    free(tmpl_key);
}

static void exec_line(tl_log *log, const char *line) {
    tl_cmd *cmd;
    tl_result res;
    if (tl_cmd_parse(&cmd, line, strlen(line), &res) == 0) {
        tl_cmd_exec(log, cmd, &res);
        tl_cmd_free(cmd);
    }
}

/*
 * The committed template (tests/fuzz/open-template/) makes a crash reproducible on any build
 * of the same format and layout (a log built here depends on this target's fixed generator
 * and clock, above, and on the build's code). It is used when it still opens, verifies and
 * is of this build's layout; otherwise (the format moved on) a fresh one is built, and
 * TL_FUZZ_SAVE_TEMPLATE=DIR saves that one for committing.
 */
static int load_committed_template(void) {
    /* TL_FUZZ_OPEN_TEMPLATE=DIR: the template an older regression was found with
     * (regressions/fuzz_open-layout2/ and open-template-layout2/): used as it is, whatever its
     * layout, so that the input damages the same bytes as when it was found */
    const char *older = getenv("TL_FUZZ_OPEN_TEMPLATE");
    int committed = !(older && *older);
    const char *tdir = committed ? TL_FUZZ_TEMPLATE_DIR : older;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", tdir);
    size_t n = 0, k = 0;
    uint8_t *data = fz_read(path, &n);
    snprintf(path, sizeof path, "%s/writer.key", tdir);
    uint8_t *key = fz_read(path, &k);
    int ok = 0;
    if (data && key) {
        char *dir = fz_tmpdir("open-check");
        char p2[4096];
        snprintf(p2, sizeof p2, "%s/data.mdb", dir);
        fz_write(p2, data, n, 0600);
        snprintf(p2, sizeof p2, "%s/writer.key", dir);
        fz_write(p2, key, k, 0600);
        tl_log *log;
        tl_open_options o = TL_OPEN_OPTIONS_INIT;
        o.flags = TL_OPEN_READONLY;
        tl_verify_report r;
        if (tl_log_open(&log, dir, &o) == 0) {
            ok = tl_log_verify(log, NULL, &r) == 0;
            /* and its projections are of this build's layout: a template of an earlier one
             * verifies, but every append and query of the run would only answer
             * unsupported_version, and the fuzzer would never reach them (so it was from
             * layout 3 to 5) */
            tl_query q = TL_QUERY_INIT;
            q.as = "nobody";
            char *json = NULL;
            if (ok && committed) ok = tl_unread_query(log, &q, &json) != TL_EVERSION;
            tl_free(json);
            tl_log_close(log);
        }
        fz_clear(dir, 1);
        free(dir);
    }
    if (ok) {
        tmpl_data = data;
        tmpl_len = n;
        tmpl_key = key;
        key_len = k;
        return 1;
    }
    if (!committed) {
        fprintf(stderr, "fuzz_open: the template %s does not open and verify\n", tdir);
        abort(); /* a fresh template would make the older inputs meaningless */
    }
    fprintf(stderr, "fuzz_open: the committed template does not open with this build; building a fresh one "
                    "(crashes found will be harder to reproduce: save it with TL_FUZZ_SAVE_TEMPLATE=DIR)\n");
    free(data);
    free(key);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* before anything starts libsodium (its generator is chosen once, at sodium_init) */
    if (randombytes_set_implementation(&rng) != 0) abort();
    rng_seed();
    work_dir = fz_tmpdir("open-work");
    atexit(cleanup);
    if (!getenv("TL_FUZZ_SAVE_TEMPLATE") && load_committed_template()) return 0;
    tmpl_dir = fz_tmpdir("open-template");
    char pk[TL_PUBKEY_HEX_SIZE];
    if (tl_log_init(tmpl_dir, NULL, pk) != 0) abort();
    tl_log *log;
    if (tl_log_open(&log, tmpl_dir, NULL) != 0) abort();
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) exec_line(log, setup[i]);
    /* a few commits of messages and an attachment of several pages (overflow pages) */
    char line[512];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line,
                 "{\"op\":\"message.send\",\"as\":\"%s\",\"id\":\"m-%d\",\"project\":\"o-1\",\"channel\":\"chat\","
                 "\"topic\":\"t-1\",\"body\":\"message number %d\"}",
                 i % 2 ? "sam" : "alice", i, i);
        exec_line(log, line);
    }
    tl_cmd *cmd;
    tl_result res;
    uint8_t blob[3 * PAGE];
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)(i * 7);
    if (tl_cmd_new(&cmd, "attachment.upload") == 0) {
        tl_cmd_set_str(cmd, "as", "alice");
        tl_cmd_set_str(cmd, "id", "a-1");
        tl_cmd_set_str(cmd, "project", "o-1");
        tl_cmd_set_str(cmd, "name", "blob.bin");
        tl_cmd_set_data(cmd, blob, sizeof blob);
        tl_cmd_exec(log, cmd, &res);
        tl_cmd_free(cmd);
    }
    exec_line(log, "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-1\"}");
    tl_log_close(log);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", tmpl_dir);
    tmpl_data = fz_read(path, &tmpl_len);
    snprintf(path, sizeof path, "%s/writer.key", tmpl_dir);
    tmpl_key = fz_read(path, &key_len);
    if (!tmpl_data || !tmpl_key || tmpl_len < 2 * PAGE) abort();
    const char *save = getenv("TL_FUZZ_SAVE_TEMPLATE");
    if (save) {
        mkdir(save, 0700);
        snprintf(path, sizeof path, "%s/data.mdb", save);
        if (fz_write(path, tmpl_data, tmpl_len, 0600) != 0) abort();
        snprintf(path, sizeof path, "%s/writer.key", save);
        if (fz_write(path, tmpl_key, key_len, 0600) != 0) abort();
        fprintf(stderr, "fuzz_open: template saved in %s\n", save);
    }
    return 0;
}

static void use_log(tl_log *log, int writable) {
    tl_verify_report r;
    int rc = tl_log_verify(log, NULL, &r);
    if (rc != 0 && rc != TL_ECORRUPT && rc != TL_ESTORAGE && rc != TL_EVERSION && rc != TL_ENOMEM) {
        fprintf(stderr, "fuzz_open: verify returned %s: %s\n", tl_strerror(rc), tl_errdetail());
        abort();
    }
    if (rc == TL_ECORRUPT && r.first_bad_seq == 0 && !tl_errdetail()[0]) abort(); /* corrupt, but says nothing */
    tl_iter *it;
    if (tl_iter_open(log, 1, &it) == 0) {
        tl_event_view ev;
        int n = 0;
        while (n++ < 1000 && tl_iter_next(it, &ev) == 0) {
            char *json = NULL;
            if (tl_event_json(&ev, &json) == 0) tl_free(json);
        }
        tl_iter_close(it);
    }
    tl_log_stats st;
    (void)tl_log_stats_get(log, &st);
    char digest[TL_PUBKEY_HEX_SIZE];
    (void)tl_digest(log, digest);
    if (writable) {
        exec_line(log, "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-new\",\"project\":\"o-1\","
                       "\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"after the damage\"}");
        (void)tl_log_verify(log, NULL, &r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tmpl_data) LLVMFuzzerInitialize(NULL, NULL);
    rng_seed();
    uint8_t *file = malloc(tmpl_len);
    if (!file) abort();
    memcpy(file, tmpl_data, tmpl_len);
    size_t len = tmpl_len, pages = tmpl_len / PAGE;
    unsigned flags = size > 0 ? data[0] : 0;
    size_t i = 2;
    while (i + 5 <= size) {
        size_t page = ((size_t)data[i] | (size_t)data[i + 1] << 8) % pages;
        size_t off = ((size_t)data[i + 2] | (size_t)data[i + 3] << 8) % PAGE;
        size_t n = data[i + 4];
        i += 5;
        if (n > size - i) n = size - i;
        size_t at = page * PAGE + off;
        if (at + n > len) n = len - at;
        memcpy(file + at, data + i, n);
        i += n;
    }
    if ((flags & 1) && size > 1) len = len * data[1] / 256;
    fz_clear(work_dir, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", work_dir);
    if (fz_write(path, file, len, 0600) != 0) abort();
    snprintf(path, sizeof path, "%s/writer.key", work_dir);
    if (fz_write(path, tmpl_key, key_len, 0600) != 0) abort();
    free(file);

    tl_log *log;
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_READONLY;
    if (tl_log_open(&log, work_dir, &o) == 0) {
        use_log(log, 0);
        tl_log_close(log);
    }
    if (flags & 2) {
        o.flags = TL_OPEN_NOSYNC;
        if (tl_log_open(&log, work_dir, &o) == 0) {
            use_log(log, 1);
            tl_log_close(log);
        }
    }
    return 0;
}
