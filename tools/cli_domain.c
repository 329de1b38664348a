/*
 * cli_domain.c — the domain's commands one at a time (account, user, project, status, topic,
 * send, reply, note, read, mark-unread, pin, unpin, delete, attach, attachment get, erase) and
 * `apply`, which executes JSON lines with group commit.
 *
 * A one-shot command is turned into the same JSON object `apply` reads: every flag becomes
 * a field (`--ambassador-message` -> "ambassador_message"), so both paths meet the same
 * validation in the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static int print_result(const cli_ctx *ctx, const tl_result *res) {
    if (ctx->json || res->code) {
        char *json;
        if (tl_result_json(res, &json) == 0) {
            if (ctx->json) printf("%s\n", json);
            else fprintf(stderr, "threadlog %s: %s: %s\n", ctx->command, tl_strerror(res->code), res->message);
            tl_free(json);
        }
    } else if (res->noop) {
        printf("ok (nothing to do)\n");
    } else {
        printf("ok seq %llu%s%s%s%s%s\n", (unsigned long long)res->seq, res->id[0] ? " id " : "", res->id,
               res->message_id[0] ? " message " : "", res->message_id, res->duplicate ? " (duplicate)" : "");
    }
    return res->code ? CLI_FAILED : CLI_OK;
}

/* Flags that are the CLI's own, not command fields (`attach --file F` names the file). Any
 * other flag, --nosync included (a one-shot command always syncs), becomes a field, and an
 * unknown field is invalid_input. */
static bool cli_own_flag(const char *op, const char *name) {
    return !strcmp(name, "json") || !strcmp(name, "help") || (!strcmp(name, "file") && !strcmp(op, "attachment.upload"));
}

/* Turn the flags into fields. positional_field names the field of the one positional
 * argument a command may take (reply/read/... MESSAGE); a command that consumes its
 * positional itself (attach FILE) passes own_positional. */
static int build_cmd(cli_ctx *ctx, const char *op, const char *positional_field, bool own_positional, tl_cmd **out) {
    tl_cmd *cmd;
    int rc = tl_cmd_new(&cmd, op);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    /* the fields set so far: two spellings of one field (--message-id and --message_id,
     * --attachment and --attachments, a flag and the positional) are a field given twice,
     * refused as a flag given twice is, instead of the last one winning */
    char fields[CLI_MAX_FLAGS][64];
    int nfields = 0;
    for (int i = 0; i < ctx->args.nflags; i++) {
        const char *name = ctx->args.names[i], *value = ctx->args.values[i];
        if (cli_own_flag(op, name)) continue;
        char field[64];
        snprintf(field, sizeof field, "%s", !strcmp(name, "attachment") ? "attachments" : name);
        for (char *p = field; *p; p++)
            if (*p == '-') *p = '_';
        for (int k = 0; k < nfields; k++)
            if (!strcmp(fields[k], field)) {
                tl_cmd_free(cmd);
                return cli_usage(ctx, "--%s names the field %s given already", name, field);
            }
        memcpy(fields[nfields++], field, sizeof field);
        if (!strcmp(field, "op")) { /* the command names the op: `send --op account.create` is not an account */
            tl_cmd_free(cmd);
            return cli_usage(ctx, "unknown flag --%s", name);
        }
        if (!strcmp(field, "expect")) {
            char *end;
            errno = 0;
            long long v = strtoll(value, &end, 10);
            if (*value < '0' || *value > '9' || *end || errno || v < 0) { /* digits only, as every integer flag */
                tl_cmd_free(cmd);
                return cli_usage(ctx, "--expect takes a version number");
            }
            rc = tl_cmd_set_int(cmd, field, v);
        } else if (!strcmp(field, "attachments")) {
            /* "a,,b", ",", "" would otherwise lose an item silently */
            if (!*value || value[0] == ',' || value[strlen(value) - 1] == ',' || strstr(value, ",,")) {
                tl_cmd_free(cmd);
                return cli_usage(ctx, "--attachments takes attachment ids separated by commas, not \"%s\"", value);
            }
            char *copy = strdup(value), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save))
                rc = tl_cmd_add_str(cmd, "attachments", tok);
            free(copy);
        } else {
            rc = tl_cmd_set_str(cmd, field, value);
        }
        if (rc) { tl_cmd_free(cmd); return cli_error(ctx, rc, tl_errdetail()); }
    }
    if (ctx->args.npos > (positional_field || own_positional ? 1 : 0)) {
        tl_cmd_free(cmd);
        return cli_usage(ctx, "unexpected argument %s", ctx->args.pos[ctx->args.npos - 1]);
    }
    for (int k = 0; positional_field && ctx->args.npos == 1 && k < nfields; k++)
        if (!strcmp(fields[k], positional_field)) {
            tl_cmd_free(cmd);
            return cli_usage(ctx, "%s given twice: as an argument and as --%s", positional_field, positional_field);
        }
    if (positional_field && ctx->args.npos == 1 && (rc = tl_cmd_set_str(cmd, positional_field, ctx->args.pos[0])) != 0) {
        tl_cmd_free(cmd);
        return cli_error(ctx, rc, tl_errdetail());
    }
    *out = cmd;
    return 0;
}

static int run_op(cli_ctx *ctx, const char *op, const char *positional_field) {
    tl_cmd *cmd;
    int rc = build_cmd(ctx, op, positional_field, false, &cmd);
    if (rc) return rc;
    tl_log *log;
    if ((rc = cli_open(ctx, &log, 0)) != 0) { tl_cmd_free(cmd); return rc; }
    tl_result res;
    tl_cmd_exec(log, cmd, &res);
    tl_cmd_free(cmd);
    tl_log_close(log);
    return print_result(ctx, &res);
}

static int cmd_account(cli_ctx *c) { return run_op(c, "account.create", NULL); }
static int cmd_user(cli_ctx *c) { return run_op(c, "user.create", NULL); }
static int cmd_project(cli_ctx *c) { return run_op(c, "project.create", NULL); }
static int cmd_status(cli_ctx *c) { return run_op(c, "project.status", NULL); }
static int cmd_topic(cli_ctx *c) { return run_op(c, "topic.create", NULL); }
static int cmd_send(cli_ctx *c) { return run_op(c, "message.send", NULL); }
static int cmd_reply(cli_ctx *c) { return run_op(c, "message.reply", "message"); }
static int cmd_note(cli_ctx *c) { return run_op(c, "note.add", NULL); }
static int cmd_read(cli_ctx *c) { return run_op(c, "message.read", "message"); }
static int cmd_unread_mark(cli_ctx *c) { return run_op(c, "message.unread", "message"); }
static int cmd_pin(cli_ctx *c) { return run_op(c, "message.pin", "message"); }
static int cmd_unpin(cli_ctx *c) { return run_op(c, "message.unpin", "message"); }
static int cmd_delete(cli_ctx *c) { return run_op(c, "message.delete", "message"); }

/* attach FILE (or --file FILE): the bytes of a file, refused as too_large without being read
 * when over the limit. `--data BASE64` instead of a file is the apply field as it is. */
static int cmd_attach(cli_ctx *ctx) {
    const char *path = cli_flag(ctx, "file");
    if (!path && ctx->args.npos == 0 && cli_flag(ctx, "data")) return run_op(ctx, "attachment.upload", NULL);
    if (path ? ctx->args.npos != 0 : ctx->args.npos != 1) return cli_usage(ctx, "attach takes one FILE");
    if (cli_flag(ctx, "data")) return cli_usage(ctx, "attach takes a FILE or --data, not both");
    if (!path) path = ctx->args.pos[0];
    tl_log *log;
    int rc = cli_open(ctx, &log, 0);
    if (rc) return rc;
    tl_log_stats st;
    if ((rc = tl_log_stats_get(log, &st)) != 0) { /* the limit comes from the log */
        tl_log_close(log);
        return cli_error(ctx, rc, tl_errdetail());
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open */
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        char why[300];
        if (fd < 0) snprintf(why, sizeof why, "cannot open the attachment file %s: %s", path, strerror(errno));
        else snprintf(why, sizeof why, "the attachment file %s is not a regular file", path);
        if (fd >= 0) close(fd);
        tl_log_close(log);
        return cli_error(ctx, TL_EINVALID, why);
    }
    /* Over the limit: not read, only its size given, so the rules still answer another
     * field's invalid_input first, as apply would. Otherwise read to the end of the file, not
     * to its size: a file may change meanwhile, and some (procfs) say 0 and hold more. */
    uint64_t limit = st.max_attachment, oversize_by = 0;
    if ((uint64_t)sb.st_size > limit) oversize_by = (uint64_t)sb.st_size;
    size_t cap = oversize_by ? 0 : (size_t)sb.st_size + 1, got = 0;
    uint8_t *buf = oversize_by ? NULL : malloc(cap);
    bool read_failed = !oversize_by && !buf;
    while (buf && !oversize_by) {
        if (got == cap) { /* it grew: up to one byte over the limit, which is enough to refuse it */
            size_t more = cap > limit - cap ? (size_t)limit + 1 : cap * 2;
            uint8_t *b = more > cap ? realloc(buf, more) : NULL;
            if (!b) { read_failed = true; break; }
            buf = b;
            cap = more;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { read_failed = true; break; }
        if (n == 0) break;
        got += (size_t)n;
        if (got > limit) oversize_by = got;
    }
    close(fd);
    tl_cmd *cmd = NULL;
    if (read_failed || (rc = build_cmd(ctx, "attachment.upload", NULL, ctx->args.npos == 1, &cmd)) != 0) {
        free(buf);
        tl_log_close(log);
        return rc ? rc : cli_error(ctx, TL_EINVALID, "could not read the whole file");
    }
    if (!cli_flag(ctx, "name")) {
        const char *base = strrchr(path, '/');
        tl_cmd_set_str(cmd, "name", base ? base + 1 : path);
    }
    if (oversize_by) tl_cmd_set_data_size(cmd, oversize_by);
    else tl_cmd_set_data(cmd, buf, got);
    free(buf);
    tl_result res;
    tl_cmd_exec(log, cmd, &res);
    tl_cmd_free(cmd);
    tl_log_close(log);
    return print_result(ctx, &res);
}

static int cmd_attachment_get(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    const char *as = cli_flag(ctx, "as"), *out = cli_flag(ctx, "o");
    if (!out) out = cli_flag(ctx, "output");
    if (ctx->args.npos != 1 || !as) return cli_usage(ctx, "attachment get ID --as USER [-o FILE | --output FILE]");
    tl_log *log;
    int rc = cli_open(ctx, &log, TL_OPEN_READONLY);
    if (rc) return rc;
    uint8_t *bytes;
    size_t len;
    char *name = NULL, *mime = NULL;
    rc = tl_attachment_get(log, ctx->args.pos[0], as, &bytes, &len, &name, &mime);
    tl_log_close(log);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    FILE *f = out && strcmp(out, "-") ? fopen(out, "wb") : stdout;
    size_t w = f ? fwrite(bytes, 1, len, f) : 0;
    /* the bytes are written only at the flush for a small file: its failure counts too */
    bool flushed = f && fflush(f) == 0 && !ferror(f);
    if (f && f != stdout && fclose(f) != 0) flushed = false;
    tl_free(bytes);
    if (!f || w != len || !flushed) { tl_free(name); tl_free(mime); return cli_error(ctx, TL_ESTORAGE, "cannot write the output file"); }
    if (out && strcmp(out, "-")) {
        if (ctx->json) printf("{\"ok\":true,\"id\":\"%s\",\"size\":%zu}\n", ctx->args.pos[0], len);
        else fprintf(stderr, "%s: %zu bytes (%s, %s) checked against its commitment\n", out, len, name, mime);
    }
    tl_free(name);
    tl_free(mime);
    return CLI_OK;
}

static int cmd_erase(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    const char *reason = cli_flag(ctx, "reason");
    if (ctx->args.npos != 1 || !reason) return cli_usage(ctx, "erase ID --reason TEXT [--kind message|attachment]");
    tl_log *log;
    int rc = cli_open(ctx, &log, 0);
    if (rc) return rc;
    tl_result res;
    tl_erase_kind(log, cli_flag(ctx, "kind"), ctx->args.pos[0], reason, &res);
    tl_log_close(log);
    if (res.code == 0 && res.message[0]) fprintf(stderr, "threadlog erase: note: %s\n", res.message);
    return print_result(ctx, &res);
}

/* ---------------------------------------------------------------- apply */

typedef struct line_item {
    tl_cmd *cmd;     /* NULL when the line was answered without running (parse error) */
    tl_result res;
} line_item;

/* A group also ends once its lines reach this many bytes: the commands (uploads' base64
 * included) stay in memory until the group's commit, about 2.4 times their lines, so a group
 * of 1,000 uploads of 25 MiB would otherwise need some 60 GB. */
#define GROUP_BYTES (64u << 20)

typedef struct apply_state {
    cli_ctx *ctx;
    tl_log *log;
    tl_batch *batch;
    line_item *items;
    size_t n, cap, commands;
    size_t sync_every;
    size_t bytes; /* of the lines in the open group: a group also ends at GROUP_BYTES */
    bool log_failed;
    bool output_failed; /* results can no longer be written: stop taking commands */
} apply_state;

static void flush_group(apply_state *a) {
    if (a->batch) {
        if (tl_batch_commit(a->batch) != 0) a->log_failed = true;
        a->batch = NULL;
    }
    /* results only now: each of these commands is durable (or failed as a whole) */
    for (size_t i = 0; i < a->n; i++) {
        char *json;
        if (tl_result_json(&a->items[i].res, &json) == 0) {
            fputs(json, stdout);
            fputc('\n', stdout);
            tl_free(json);
        } else {
            /* every answered line gets its result line, even when rendering it failed */
            fprintf(stdout, "{\"ok\":false,\"error\":\"%s\",\"message\":\"the result could not be rendered\"}\n",
                    tl_strerror(a->items[i].res.code ? a->items[i].res.code : TL_ENOMEM));
        }
        tl_cmd_free(a->items[i].cmd);
    }
    /* a result that cannot be written is an acknowledgement lost: take no more commands (the
     * operator retries the input; a retried command that was done is answered as one) */
    if (fflush(stdout) != 0 || ferror(stdout)) a->output_failed = true;
    a->n = 0;
    a->commands = 0;
    a->bytes = 0;
}

/* The batch keeps pointers to the results: the array only grows between groups. */
static line_item *next_item(apply_state *a) {
    if (a->n == a->cap) {
        if (a->batch) return NULL; /* handle_line flushes first; never reached */
        size_t cap = a->cap ? a->cap * 2 : 256;
        line_item *p = realloc(a->items, cap * sizeof *p);
        if (!p) return NULL;
        a->items = p;
        a->cap = cap;
    }
    line_item *it = &a->items[a->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static bool all_space(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\f' || p[i] == '\v')) return false;
    return true;
}

static line_item *answer_slot(apply_state *a) {
    if (a->n == a->cap && a->batch) flush_group(a); /* keep result addresses stable inside a batch */
    line_item *it = next_item(a);
    if (!it) a->log_failed = true;
    return it;
}

/* A group ends after --sync-every answered lines, commands or not: refused lines' results wait
 * for the group too (they are written in order, after the commands before them are durable),
 * and must not pile up without bound in an input of refused lines that never pauses. */
static void line_answered(apply_state *a) {
    if (a->n >= a->sync_every) flush_group(a);
}

static void answer_too_large(apply_state *a, size_t lineno) {
    line_item *it = answer_slot(a);
    if (!it) return;
    snprintf(it->res.message, sizeof it->res.message,
             "line %zu is longer than the limit (4/3 of the attachment limit + 1 MiB); not decoded", lineno);
    it->res.code = TL_ETOOLARGE;
    line_answered(a);
}

/* A line of only white space is blank, however long (SPEC "Odd input"): no result. */
static void handle_line(apply_state *a, const char *line, size_t len, bool too_long, size_t lineno) {
    if (all_space(line, len)) return;
    if (too_long) {
        answer_too_large(a, lineno);
        return;
    }
    line_item *it = answer_slot(a);
    if (!it) return;
    if (tl_cmd_parse(&it->cmd, line, len, &it->res) != 0) {
        line_answered(a);
        return;
    }
    int brc = a->batch ? 0 : tl_batch_begin(a->log, &a->batch);
    if (brc) { /* the log's own answer (storage, key, read_only, unsupported_version) */
        snprintf(it->res.message, sizeof it->res.message, "%s", tl_errdetail());
        it->res.code = brc;
        a->log_failed = true;
        line_answered(a);
        return;
    }
    tl_batch_exec(a->batch, it->cmd, &it->res);
    a->bytes += len;
    if (++a->commands >= a->sync_every || a->bytes >= GROUP_BYTES) flush_group(a);
    else line_answered(a);
}

static int cmd_apply(cli_ctx *ctx) {
    if (!cli_flags_in_usage(ctx)) return CLI_FAILED;
    unsigned long long sync_every;
    if (!cli_flag_u64(ctx, "sync-every", &sync_every, 1000)) return CLI_FAILED;
    if (sync_every == 0) sync_every = 1;
    int fd = STDIN_FILENO;
    if (ctx->args.npos == 1 && strcmp(ctx->args.pos[0], "-") != 0) {
        fd = open(ctx->args.pos[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) return cli_error(ctx, TL_ENOTFOUND, "cannot open the input file");
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            close(fd);
            return cli_usage(ctx, "the input %s is a directory", ctx->args.pos[0]);
        }
    } else if (ctx->args.npos > 1) {
        return cli_usage(ctx, "apply takes at most one FILE");
    }
    apply_state a = {.ctx = ctx, .sync_every = sync_every};
    int rc = cli_open(ctx, &a.log, cli_switch(ctx, "nosync") ? TL_OPEN_NOSYNC : 0);
    if (rc) { if (fd != STDIN_FILENO) close(fd); return rc; }
    tl_log_stats st;
    tl_log_stats_get(a.log, &st);
    /* SPEC "Odd input": a line is too_large when longer than 4/3 x the attachment limit +
     * 1 MiB bytes (newline not counted). Lengths are integers, so "longer than x" is
     * "longer than floor(x)"; computed without overflowing 4 x limit. */
    uint64_t m = st.max_attachment;
    /* saturating: a log made before init bounded the limit (or a crafted one) may hold ~2^64 */
    size_t limit = m > (SIZE_MAX - (1u << 20)) / 4 * 3 ? SIZE_MAX : (size_t)(m / 3 * 4 + (m % 3) * 4 / 3) + (1u << 20);
    /* room for a whole group's results, so a group is not cut short by the array */
    a.items = malloc((sync_every < 65536 ? sync_every : 65536) * sizeof *a.items);
    if (a.items) a.cap = sync_every < 65536 ? sync_every : 65536;

    size_t cap = 1 << 16, len = 0, lineno = 0, long_lineno = 0;
    char *buf = malloc(cap);
    /* A line past the limit is not kept: its rest is read and dropped. Until a byte of it
     * that is not white space shows, it may still be a blank line (no result). */
    enum { KEEP, DROP_ANSWERED, DROP_BLANK_SO_FAR } drop = KEEP;
    bool eof = false;
    int read_errno = 0;
    while (buf && !eof && !a.output_failed) {
        /* commit what we have when the input pauses, so a slow producer still gets answers */
        if (a.n) {
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, 0) == 0) flush_group(&a);
        }
        if (cap - len < 4096) {
            size_t ncap = cap * 2 > limit + 65536 ? limit + 65536 : cap * 2;
            if (ncap <= cap) ncap = cap + 65536;
            char *p = realloc(buf, ncap);
            if (!p) break;
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) read_errno = errno; /* answered below: the lines after it were never read */
        if (n <= 0) eof = true;
        else len += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', len - start);
            if (!nl && !(eof && start < len)) break;
            size_t end = nl ? (size_t)(nl - buf) : len;
            if (drop == DROP_BLANK_SO_FAR && !all_space(buf + start, end - start)) answer_too_large(&a, long_lineno);
            if (drop != KEEP) {
                drop = KEEP; /* the tail of an over-long line */
            } else {
                /* the newline is not counted, nor the CR of a CRLF one */
                size_t n = end - start, counted = nl && n && buf[end - 1] == '\r' ? n - 1 : n;
                handle_line(&a, buf + start, n, counted > limit, ++lineno);
            }
            start = nl ? end + 1 : len;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        /* a last CR may be the start of a CRLF newline, which is not counted (no "limit + 1":
         * the limit saturates at SIZE_MAX) */
        size_t counted = len && buf[len - 1] == '\r' ? len - 1 : len;
        if (drop == KEEP && counted > limit) {
            /* over the limit without a newline yet: answer now (unless it is white space so
             * far) and drop the rest of the line */
            long_lineno = ++lineno;
            if (all_space(buf, len)) {
                drop = DROP_BLANK_SO_FAR;
            } else {
                answer_too_large(&a, long_lineno);
                drop = DROP_ANSWERED;
            }
            len = 0;
        } else if (drop != KEEP && len > 0) {
            char *nl = memchr(buf, '\n', len);
            size_t upto = nl ? (size_t)(nl - buf) : len;
            if (drop == DROP_BLANK_SO_FAR && !all_space(buf, upto)) {
                answer_too_large(&a, long_lineno);
                drop = DROP_ANSWERED;
            }
            if (nl) {
                size_t rest = len - upto - 1;
                memmove(buf, nl + 1, rest);
                len = rest;
                drop = KEEP;
            } else {
                len = 0;
            }
        }
    }
    flush_group(&a);
    free(buf);
    free(a.items);
    if (fd != STDIN_FILENO) close(fd);
    tl_log_close(a.log);
    if (read_errno) {
        char why[160];
        snprintf(why, sizeof why, "reading the input failed: %s (the lines read before it were answered)", strerror(read_errno));
        return cli_error(ctx, TL_EINVALID, why);
    }
    return a.log_failed ? CLI_FAILED : CLI_OK;
}

const cli_command cli_domain_commands[] = {
    {"apply", cmd_apply, "apply [FILE] [--sync-every N] [--nosync]",
     "execute JSON-lines commands from FILE or stdin; one JSON result per line, written once durable;\n"
     "  commits group up to N commands (default 1000; 0 counts as 1; at most 64 MiB of lines) and at a pause in\n"
     "  the input; --nosync: bulk load without syncing (a crash may lose a tail, never the chain)"},
    {"account", cmd_account, "account --id ID --name NAME", "create an account (operator)"},
    {"user", cmd_user, "user --id ID --role member|staff|ambassador|auditor --name NAME [--account A]",
     "create a user (operator); members belong to one account"},
    {"project", cmd_project,
     "project --as U --id P --account A --type application|order|video --title T [--status S]\n"
     "  [--ambassador U2 [--ambassador-message TEXT [--ambassador-message-id M]]] [--expect V]",
     "create a project"},
    {"status", cmd_status, "status --as U --project P --status S [--expect V]", "change a project's status"},
    {"project status", cmd_status, "project status --as U --project P --status S [--expect V]", "the same as status"},
    {"topic", cmd_topic, "topic --as U --project P --title T --body TEXT [--id T] [--message-id M] [--attachments a,b]\n  [--expect V]",
     "open a chat topic with its first message"},
    {"send", cmd_send,
     "send --as U --channel chat|ambassador|support --body TEXT [--project P] [--topic T] [--account A]\n"
     "  [--id M] [--attachments a,b] [--expect V]",
     "send a message"},
    {"reply", cmd_reply, "reply --as U MESSAGE --body TEXT [--id M] [--attachments a,b] [--expect V]", "reply to a message"},
    {"note", cmd_note, "note --as U --project P --body TEXT [--id M] [--attachments a,b] [--expect V]", "add an internal note"},
    {"read", cmd_read, "read --as U MESSAGE [--expect V]", "mark a message read"},
    {"mark-unread", cmd_unread_mark, "mark-unread --as U MESSAGE [--expect V]", "mark a message unread again"},
    {"pin", cmd_pin, "pin --as U MESSAGE [--expect V]", "pin a message (for everyone in its channel)"},
    {"unpin", cmd_unpin, "unpin --as U MESSAGE [--expect V]", "unpin a message"},
    {"delete", cmd_delete, "delete --as U MESSAGE [--expect V]", "delete your own message (while it has no live reply)"},
    {"attach", cmd_attach, "attach --as U (--project P | --account A) [--name N] [--mime M] [--id A] [--expect V]\n  (FILE | --file FILE | --data BASE64)",
     "upload an attachment (then list it in --attachments of a message); --name defaults to\n"
     "                 FILE's base name and is required with --data; --mime defaults to\n"
     "                 application/octet-stream"},
    {"attachment get", cmd_attachment_get, "attachment get ID --as USER [-o FILE | --output FILE]",
     "write an attachment's bytes, checked against their commitment, to FILE (to stdout without -o, or with -o -)"},
    {"erase", cmd_erase, "erase MESSAGE|ATTACHMENT --reason TEXT [--kind message|attachment]",
     "erase content (operator): chain and signatures stay valid, the content is gone from every\n"
     "                 query and export, and its bytes from the data file (a page a reader still\n"
     "                 holds is cleared by erasing again later: docs/OPERATIONS.md)"},
    {NULL, NULL, NULL, NULL},
};
