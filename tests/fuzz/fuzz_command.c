/*
 * fuzz_command.c — JSON command lines, parsed and executed against a small real log.
 *
 * The input is split at newlines into up to 8 lines, each parsed with tl_cmd_parse and, when
 * it parses, executed with tl_cmd_exec, so that the fuzzer can build short stories (upload,
 * then send with the attachment; send, then reply, then delete). The log is a copy of a
 * template built once (the spec's example: an account, members, staff, an ambassador, an
 * order with its ambassador channel, a topic, messages, an attachment), opened NOSYNC, and
 * reset to the template every RESET_EVERY inputs so it stays small. After a story the log
 * must still verify, now and then (every VERIFY_EVERY inputs): a command may be refused,
 * never leave a log that fails verify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "threadlog.h"

#define RESET_EVERY 4000
#define VERIFY_EVERY 500
#define MAX_LINES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const setup[] = {
    "{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}",
    "{\"op\":\"account.create\",\"id\":\"globex\",\"name\":\"Globex\"}",
    "{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}",
    "{\"op\":\"user.create\",\"id\":\"bob\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Bob\"}",
    "{\"op\":\"user.create\",\"id\":\"gina\",\"role\":\"member\",\"account\":\"globex\",\"name\":\"Gina\"}",
    "{\"op\":\"user.create\",\"id\":\"sam\",\"role\":\"staff\",\"name\":\"Sam\"}",
    "{\"op\":\"user.create\",\"id\":\"zoe\",\"role\":\"ambassador\",\"name\":\"Zo\\u00e9\"}",
    "{\"op\":\"user.create\",\"id\":\"aud\",\"role\":\"auditor\",\"name\":\"Audrey\"}",
    "{\"op\":\"project.create\",\"as\":\"zoe\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"Order #1\","
    "\"ambassador\":\"zoe\",\"ambassador_message\":\"Size M please\",\"ambassador_message_id\":\"m-0\"}",
    "{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"v-1\",\"account\":\"acme\",\"type\":\"video\",\"title\":\"Video\"}",
    "{\"op\":\"project.status\",\"as\":\"alice\",\"project\":\"o-1\",\"status\":\"shipped\"}",
    "{\"op\":\"topic.create\",\"as\":\"alice\",\"id\":\"t-1\",\"project\":\"o-1\",\"title\":\"Shipping\",\"body\":\"When?\","
    "\"message_id\":\"m-1\"}",
    "{\"op\":\"message.send\",\"as\":\"sam\",\"id\":\"m-2\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\","
    "\"body\":\"Tomorrow\"}",
    "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-s\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"Help\"}",
    "{\"op\":\"note.add\",\"as\":\"alice\",\"id\":\"n-1\",\"project\":\"o-1\",\"body\":\"Check stock\"}",
    "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-1\",\"project\":\"o-1\",\"name\":\"label.pdf\","
    "\"mime\":\"application/pdf\",\"data\":\"JVBERi0xLjQK\"}",
    "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-2\",\"project\":\"o-1\",\"name\":\"b.bin\",\"data\":\"\"}",
    "{\"op\":\"message.reply\",\"as\":\"alice\",\"id\":\"m-3\",\"message\":\"m-2\",\"body\":\"Thanks\",\"attachments\":[\"a-1\"]}",
    "{\"op\":\"message.read\",\"as\":\"alice\",\"message\":\"m-2\"}",
    "{\"op\":\"message.pin\",\"as\":\"alice\",\"message\":\"m-3\"}",
};

static char *tmpl_dir, *work_dir;
static tl_log *work_log;
static unsigned long inputs;
static int verify_each; /* corpus replay: verify after every input */

static void open_work(void) {
    if (work_log) tl_log_close(work_log);
    work_log = NULL;
    fz_clear(work_dir, 0);
    fz_copy_dir(tmpl_dir, work_dir);
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = TL_OPEN_NOSYNC;
    if (tl_log_open(&work_log, work_dir, &o) != 0) {
        fprintf(stderr, "fuzz_command: cannot open the work log: %s\n", tl_errdetail());
        abort();
    }
}

static void cleanup(void) {
    if (work_log) tl_log_close(work_log);
    if (work_dir) fz_clear(work_dir, 1);
    if (tmpl_dir) fz_clear(tmpl_dir, 1);
    free(work_dir);
    free(tmpl_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tmpl_dir = fz_tmpdir("cmd-template");
    work_dir = fz_tmpdir("cmd-work");
    char pk[TL_PUBKEY_HEX_SIZE];
    tl_init_options io = TL_INIT_OPTIONS_INIT;
    io.max_attachment = 4096; /* small, so the fuzzer meets too_large */
    fz_clear(tmpl_dir, 0);
    if (tl_log_init(tmpl_dir, &io, pk) != 0) { fprintf(stderr, "init: %s\n", tl_errdetail()); abort(); }
    tl_log *log;
    if (tl_log_open(&log, tmpl_dir, NULL) != 0) abort();
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        tl_cmd *cmd;
        tl_result res;
        if (tl_cmd_parse(&cmd, setup[i], strlen(setup[i]), &res) != 0 || tl_cmd_exec(log, cmd, &res) != 0) {
            fprintf(stderr, "fuzz_command: setup line %zu failed: %s\n", i + 1, res.message);
            abort();
        }
        tl_cmd_free(cmd);
    }
    tl_log_close(log);
    /* the template without its lock file: each copy starts as a log no process has open */
    char lock[4096];
    snprintf(lock, sizeof lock, "%s/lock.mdb", tmpl_dir);
    unlink(lock);
    verify_each = getenv("TL_FUZZ_VERIFY_EACH") != NULL;
    atexit(cleanup);
    open_work();
    return 0;
}

static void check_result(const tl_result *res) {
    char *json = NULL;
    if (tl_result_json(res, &json) != 0 || !json) abort();
    /* a refused command is named by one of the spec's codes */
    if (res->code && !strcmp(tl_strerror(res->code), "unknown")) abort();
    /* nothing but the log's own failures may be storage/corrupt in a healthy log */
    if (res->code == TL_ECORRUPT || res->code == TL_ESTORAGE) {
        fprintf(stderr, "fuzz_command: a command broke the log: %s\n", json);
        abort();
    }
    tl_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!work_log) LLVMFuzzerInitialize(NULL, NULL);
    if (++inputs % RESET_EVERY == 0) open_work();
    size_t start = 0;
    for (int line = 0; line < MAX_LINES && start <= size; line++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        /* an exactly-sized copy: the parser must not read past the line */
        char *text = malloc(end - start + 1);
        if (!text) abort();
        memcpy(text, data + start, end - start);
        tl_cmd *cmd = NULL;
        tl_result res;
        memset(&res, 0, sizeof res);
        if (tl_cmd_parse(&cmd, text, end - start, &res) == 0) {
            tl_cmd_exec(work_log, cmd, &res);
            tl_cmd_free(cmd);
        }
        check_result(&res);
        free(text);
        if (!nl) break;
        start = end + 1;
    }
    if (verify_each || inputs % VERIFY_EVERY == 0) {
        tl_verify_report r;
        if (tl_log_verify(work_log, NULL, &r) != 0) {
            fprintf(stderr, "fuzz_command: the log no longer verifies: %s\n", r.reason);
            abort();
        }
    }
    return 0;
}
