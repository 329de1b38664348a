/*
 * main.c — `threadlog`: global options, dispatch to the command groups, --help.
 *
 * `-d DIR` and `--json` may come before the command; the command's flags (and --json) after
 * it. Flags take a value (`--limit 5` or `--limit=5`) except the switches listed below.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "cli.h"

/*
 * The last guard against a damaged data file. LMDB trusts the page numbers and node offsets
 * it reads: where a damaged page sends it off the map (SIGSEGV) or past the end of a
 * truncated file (SIGBUS), it faults inside liblmdb, and where a page's flags or bounds are
 * damaged, one of its internal assertions (`mdb_assert`, compiled into Debian's liblmdb)
 * prints its line and calls abort() (SIGABRT) — before any check of ours can run (the
 * engine catches what it can see first: a short file, bad meta pages, keys that stop
 * increasing). The CLI turns such a fault into the `corrupt` answer an operator can act on,
 * with the usual exit status, instead of a core dump. Sanitizer builds leave the signals to
 * the sanitizer, so a fault in threadlog's own code still shows up as the bug it would be.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TL_CLI_FAULT_GUARD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TL_CLI_FAULT_GUARD 0
#endif
#endif
#ifndef TL_CLI_FAULT_GUARD
#define TL_CLI_FAULT_GUARD 1
#endif

static volatile sig_atomic_t fault_json;

static void on_fault(int sig) {
    static const char text[] = "threadlog: corrupt: reading the log's data file faulted (or failed a check) inside LMDB: the file is "
                               "damaged (or memory ran out); run `threadlog verify` on a copy, or restore the log from a backup\n";
    static const char json[] = "{\"ok\":false,\"error\":\"corrupt\",\"message\":\"reading the log's data file "
                               "faulted (or failed a check) inside LMDB: the file is damaged (or memory ran out)\"}\n";
    (void)sig;
    if (fault_json) (void)!write(STDOUT_FILENO, json, sizeof json - 1);
    (void)!write(STDERR_FILENO, text, sizeof text - 1);
    _exit(CLI_FAILED);
}

static void install_fault_guard(void) {
    if (!TL_CLI_FAULT_GUARD) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL); /* the handler never returns: abort() goes no further */
}

static const char *const switches[] = {"json", "follow", "verify", "more", "help", "nosync", NULL};

static bool is_switch(const char *name) {
    for (int i = 0; switches[i]; i++)
        if (strcmp(switches[i], name) == 0) return true;
    return false;
}

const char *cli_flag(const cli_ctx *ctx, const char *name) {
    for (int i = ctx->args.nflags - 1; i >= 0; i--)
        if (strcmp(ctx->args.names[i], name) == 0) return ctx->args.values[i];
    return NULL;
}

bool cli_switch(const cli_ctx *ctx, const char *name) { return cli_flag(ctx, name) != NULL; }

bool cli_flag_u64(const cli_ctx *ctx, const char *name, unsigned long long *out, unsigned long long dflt) {
    const char *v = cli_flag(ctx, name);
    *out = dflt;
    if (!v) return true;
    char *end;
    if (*v < '0' || *v > '9') goto bad; /* strtoull would take " 5", "+5" and "-5" */
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno == ERANGE) goto bad; /* not clamped to the largest value */
    *out = n;
    return true;
bad:
    cli_usage(ctx, "--%s needs a non-negative integer, not \"%s\"", name, v);
    return false;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: shortest form, no surrogates, at
 * most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n <= 1) return n;
    uint32_t cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped, and a byte that is not
 * part of valid UTF-8 (a command-line argument may hold any) replaced by U+FFFD, so the
 * line is always valid JSON. */
void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq(p);
        if (n == 0) { fputs("\\ufffd", f); p++; continue; }
        if (n > 1) { fwrite(p, 1, n, f); p += n; continue; }
        unsigned char c = *p++;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* Does usage name flag `--name` (or `-o` for "o")? A whole word: --until-seq is not --until. */
static bool usage_names(const char *usage, const char *name) {
    if (!strcmp(name, "o")) return strstr(usage, "-o FILE") != NULL;
    size_t n = strlen(name);
    for (const char *p = strstr(usage, "--"); p; p = strstr(p + 2, "--")) {
        if (strncmp(p + 2, name, n) != 0) continue;
        char next = p[2 + n]; /* inside the string: the n bytes before it matched */
        if (!(next == '-' || (next >= 'a' && next <= 'z') || (next >= '0' && next <= '9'))) return true;
    }
    return false;
}

/*
 * How many positional arguments a usage line names: its upper-case placeholders (FILE, DIR,
 * MESSAGE, MESSAGE|ATTACHMENT) that are not a flag's value, counted once per alternative of
 * the line ("(FILE | --file FILE)" is one). Words of the command's own name are skipped.
 */
static int usage_positionals(const char *usage, const char *command) {
    int count = 0, best = 0;
    bool value_next = false;
    char word[128];
    for (const char *p = usage; *p;) {
        while (*p == ' ' || *p == '\n' || *p == '[' || *p == ']' || *p == '(' || *p == ')') p++;
        size_t n = 0;
        while (p[n] && p[n] != ' ' && p[n] != '\n' && p[n] != ']' && p[n] != ')') n++;
        if (!n) continue;
        snprintf(word, sizeof word, "%.*s", (int)(n < sizeof word ? n : sizeof word - 1), p);
        p += n;
        if (!strcmp(word, "|")) continue;
        if (word[0] == '-') { /* a flag: a value follows unless it is a switch */
            value_next = !is_switch(word + 2);
            continue;
        }
        if (value_next) { value_next = false; continue; }
        if (strstr(command, word) && strlen(word) >= 3) { /* "dashboard ... | dashboard ...": a new form */
            if (count > best) best = count;
            count = 0;
            continue;
        }
        if (word[0] >= 'A' && word[0] <= 'Z') count++;
    }
    return count > best ? count : best;
}

/* A command line with more positional arguments than its usage names is refused, not
 * silently run without them (`key rotate EXTRA` rotated the key; `export o-1` exported
 * everything). */
static bool positionals_in_usage(const cli_ctx *ctx) {
    if (!ctx->usage || ctx->args.npos <= usage_positionals(ctx->usage, ctx->command)) return true;
    cli_usage(ctx, "unexpected argument \"%s\"", ctx->args.pos[ctx->args.npos - 1]);
    return false;
}

bool cli_flags_in_usage(const cli_ctx *ctx) {
    for (int i = 0; i < ctx->args.nflags; i++) {
        const char *name = ctx->args.names[i];
        if (!strcmp(name, "json") || !strcmp(name, "help") || (ctx->usage && usage_names(ctx->usage, name))) continue;
        cli_usage(ctx, "unknown flag --%s", name);
        return false;
    }
    return true;
}

int cli_error(const cli_ctx *ctx, int code, const char *message) {
    if (!message || !*message) message = tl_strerror(code);
    /* TL_EUSAGE is the library's "bad argument" for embedders; "usage" is not one of SPEC's
     * codes, and at the command line a bad argument is the user's input: invalid_input */
    if (code == TL_EUSAGE) return cli_usage(ctx, "%s", message);
    if (ctx->json) {
        printf("{\"ok\":false,\"error\":");
        cli_json_string(stdout, tl_strerror(code));
        printf(",\"message\":");
        cli_json_string(stdout, message);
        printf("}\n");
    } else {
        fprintf(stderr, "threadlog %s: %s: %s\n", ctx->command ? ctx->command : "", tl_strerror(code), message);
    }
    fflush(stdout);
    return CLI_FAILED;
}

int cli_usage(const cli_ctx *ctx, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->json) { /* the error object alone, as for every other refusal (stdout and stderr may be merged) */
        printf("{\"ok\":false,\"error\":\"invalid_input\",\"message\":");
        cli_json_string(stdout, msg);
        printf("}\n");
        fflush(stdout);
    } else {
        /* one line naming the code, as every other refusal (`threadlog CMD: CODE: message`) */
        fprintf(stderr, "threadlog %s: invalid_input: %s (see threadlog %s --help)\n", ctx->command ? ctx->command : "",
                msg, ctx->command ? ctx->command : "");
    }
    return CLI_FAILED; /* SPEC: a refused query (a malformed flag too) prints the error object and exits 1 */
}

int cli_open(cli_ctx *ctx, tl_log **log, unsigned flags) {
    if (!ctx->dir) return cli_usage(ctx, "no log directory: give -d DIR or set THREADLOG_DIR");
    if (!*ctx->dir) return cli_usage(ctx, "the log directory (-d) is empty");
    tl_open_options o = TL_OPEN_OPTIONS_INIT;
    o.flags = flags;
    int rc = tl_log_open(log, ctx->dir, &o);
    if (rc) return cli_error(ctx, rc, tl_errdetail());
    return 0;
}

static const cli_command *const groups[] = {cli_log_commands, cli_domain_commands, cli_query_commands,
                                            cli_ops_commands};

static const cli_command *find_command(const char *name) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const cli_command *c = groups[g]; c->name; c++)
            if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

/* A help text's own line breaks continue under its first line: indented by `indent`, whatever
 * spaces the text itself starts the line with. */
static void print_help_text(const char *help, int indent) {
    for (const char *h = help; *h; h++) {
        putchar(*h);
        if (*h == '\n') {
            printf("%*s", indent, "");
            while (h[1] == ' ') h++;
        }
    }
    putchar('\n');
}

static void print_help(void) {
    printf("threadlog %s — a signed, append-only event log for back-office messaging\n\n"
           "usage: threadlog [-d DIR] [--json] COMMAND [ARGS] [FLAGS]\n\n"
           "  -d DIR     the log directory (default: $THREADLOG_DIR; -dDIR too)\n"
           "  --json     JSON output (one object per line)\n"
           "  --help, -h this help (after a command: that command's); --version: the version\n\n"
           "Flags take their value as `--name VALUE` or `--name=VALUE`; switches (--json, --verify,\n"
           "--follow, --more, --nosync) take none. Times are UTC.\n\n"
           "commands:\n",
           tl_version());
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const cli_command *c = groups[g]; c->name; c++) {
            printf("  %-14s ", c->name);
            print_help_text(c->help, 17);
        }
    printf("\n`threadlog COMMAND --help` or `threadlog help COMMAND` describes one command. Exit\n"
           "status: 0 done, 1 refused or failed (the error is printed; a malformed flag or argument\n"
           "too), 2 no command or an unknown one.\n");
}

/* Split argv into flags and positionals. "--" ends flags. */
static int parse_args(cli_ctx *ctx, int argc, char **argv, int start) {
    bool only_pos = false;
    for (int i = start; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) { only_pos = true; continue; }
        if (!only_pos && strcmp(a, "-h") == 0) a = "--help"; /* as before the command */
        if (!only_pos && strncmp(a, "--", 2) == 0 && a[2]) {
            if (ctx->args.nflags >= CLI_MAX_FLAGS) return cli_usage(ctx, "too many flags");
            const char *name = a + 2, *eq = strchr(name, '=');
            static char names[CLI_MAX_FLAGS][64];
            char *slot = names[ctx->args.nflags];
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            if (n >= 64) return cli_usage(ctx, "unknown flag %s", a);
            memcpy(slot, name, n);
            slot[n] = 0;
            const char *value;
            if (eq && is_switch(slot)) return cli_usage(ctx, "--%s takes no value", slot); /* --json=false */
            if (eq) value = eq + 1;
            else if (is_switch(slot)) value = "";
            else if (i + 1 < argc) value = argv[++i];
            else if (ctx->usage && strcmp(slot, "help") != 0 && !usage_names(ctx->usage, slot))
                return cli_usage(ctx, "unknown flag --%s", slot);
            else return cli_usage(ctx, "--%s needs a value", slot);
            if (strcmp(slot, "json") == 0) ctx->json = true;
            else if (cli_flag(ctx, slot)) /* which one was meant? (the JSON lines' duplicate keys too) */
                return cli_usage(ctx, "--%s given twice", slot);
            ctx->args.names[ctx->args.nflags] = slot;
            ctx->args.values[ctx->args.nflags++] = value;
        } else if (!only_pos && strcmp(a, "-d") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '-') return cli_usage(ctx, "-d needs a directory");
            if (ctx->dir_given && strcmp(ctx->dir, argv[i + 1]) != 0) return cli_usage(ctx, "-d given twice");
            ctx->dir = argv[++i];
            ctx->dir_given = true;
        } else if (!only_pos && strcmp(a, "-o") == 0 && i + 1 < argc && ctx->args.nflags < CLI_MAX_FLAGS) {
            if (cli_flag(ctx, "o")) return cli_usage(ctx, "-o given twice");
            ctx->args.names[ctx->args.nflags] = "o"; /* `attachment get -o FILE` */
            ctx->args.values[ctx->args.nflags++] = argv[++i];
        } else {
            if (ctx->args.npos >= CLI_MAX_ARGS) return cli_usage(ctx, "too many arguments");
            ctx->args.pos[ctx->args.npos++] = a;
        }
    }
    return 0;
}

/*
 * A replay builds every projection in one write transaction: hundreds of megabytes to
 * gigabytes of dirty pages, in buffers LMDB mallocs a page at a time, each first touched (a
 * page fault) as it is written. With transparent huge pages for the heap
 * (glibc.malloc.hugetlb=1, glibc >= 2.35; the kernel in "madvise" mode, Debian's default) the
 * heap faults 2 MiB at a time: an in-place replay of a 100,000-event log took 0.90 s against
 * 1.10 s (4 alternated pairs). glibc reads its tunables only at startup, hence one re-exec of
 * this program, for replay only, unless the operator set glibc.malloc.hugetlb themselves, the
 * program runs under valgrind (whose children would escape it), is setuid or has
 * capabilities, or was started through an explicit loader. THREADLOG_REEXEC marks the second
 * run, so there is never a third. If the exec fails, the replay runs as it is. Embedders
 * calling tl_replay choose their own malloc settings.
 */
static void replay_with_huge_pages(char **argv) {
    /* the re-executed program: once is enough, whatever glibc kept of the tunables */
    if (getenv("THREADLOG_REEXEC")) {
        unsetenv("THREADLOG_REEXEC");
        return;
    }
    /* setuid or with capabilities, the loader drops GLIBC_TUNABLES; started by an explicit
     * loader (ld.so threadlog ...) or statically linked, /proc/self/exe is not this program */
    if (getauxval(AT_SECURE) || !getauxval(AT_BASE)) return;
    const char *tunables = getenv("GLIBC_TUNABLES"), *preload = getenv("LD_PRELOAD");
    if ((tunables && strstr(tunables, "glibc.malloc.hugetlb")) || (preload && strstr(preload, "vgpreload"))) return;
    char value[1024], saved[1024];
    bool had = tunables != NULL;
    if (had && snprintf(saved, sizeof saved, "%s", tunables) >= (int)sizeof saved) return;
    if (snprintf(value, sizeof value, "%s%sglibc.malloc.hugetlb=1", had ? saved : "", had && *saved ? ":" : "") >=
        (int)sizeof value)
        return;
    if (setenv("GLIBC_TUNABLES", value, 1) != 0 || setenv("THREADLOG_REEXEC", "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* the exec failed: run as we are, with the environment as it was */
    unsetenv("THREADLOG_REEXEC");
    if (had) setenv("GLIBC_TUNABLES", saved, 1);
    else unsetenv("GLIBC_TUNABLES");
}

/* Standard input, output and error must be open before anything else is: started with one
 * closed (`threadlog apply <&- >&-`), the next file opened takes its number, and LMDB's
 * lock or data file became "stdout" (a review: the result line was written over data.mdb's
 * first page). They are opened on /dev/null instead. */
static void open_std_fds(void) {
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (n != fd) _exit(CLI_FAILED); /* not even /dev/null: nothing safe can be done */
        }
}

/* What a command printed must have reached its output: exit 1 (storage) when stdout could not
 * be written (a full disk, /dev/full), even if the command itself succeeded. */
static int output_written(int rc) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    int e = errno;
    fprintf(stderr, "threadlog: storage: cannot write the output: %s\n", strerror(e ? e : EIO));
    return rc ? rc : CLI_FAILED;
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv) {
    open_std_fds();
    return output_written(run_main(argc, argv));
}

static int run_main(int argc, char **argv) {
    cli_ctx ctx = {0};
    /* --json anywhere (before "--"): a refusal found while the line is still being read is
     * printed as the JSON error object too. Not as another flag's value (`--body --json` is a
     * body): the values are skipped as parse_args takes them. */
    for (int a = 1; a < argc && strcmp(argv[a], "--"); a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--json")) ctx.json = true;
        else if ((!strcmp(arg, "-d") || !strcmp(arg, "-o")) && a + 1 < argc && argv[a + 1][0] != '-')
            a++; /* (-d and -o never take a dash word: `-o --json` is refused, in JSON) */
        else if (!strncmp(arg, "--", 2) && arg[2] && !strchr(arg, '=') && !is_switch(arg + 2))
            a++;
    }
    ctx.dir = getenv("THREADLOG_DIR");
    if (ctx.dir && !*ctx.dir) ctx.dir = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-d") == 0 && (i + 1 >= argc || argv[i + 1][0] == '-')) {
            /* `threadlog -d` or `-d --json ...`: never take a flag for the directory (a directory
             * whose name starts with '-' is still reachable as ./-name) */
            fprintf(stderr, "threadlog: -d needs a directory\n");
            if (ctx.json) printf("{\"ok\":false,\"error\":\"invalid_input\",\"message\":\"-d needs a directory\"}\n");
            return CLI_FAILED;
        }
        const char *dir = strcmp(argv[i], "-d") == 0 ? argv[++i]
                          : strncmp(argv[i], "-d", 2) == 0 && argv[i][2] ? argv[i] + 2
                                                                          : NULL;
        if (dir) {
            if (ctx.dir_given && strcmp(ctx.dir, dir) != 0) {
                fprintf(stderr, "threadlog: -d given twice\n");
                if (ctx.json) printf("{\"ok\":false,\"error\":\"invalid_input\",\"message\":\"-d given twice\"}\n");
                return CLI_FAILED;
            }
            ctx.dir = dir;
            ctx.dir_given = true;
        } else if (strcmp(argv[i], "--json") == 0) ctx.json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { print_help(); return 0; }
        else if (strcmp(argv[i], "--version") == 0) { printf("threadlog %s\n", tl_version()); return 0; }
        else break;
    }
    if (i >= argc) { print_help(); return CLI_USAGE; }
    const char *name = argv[i++];
    if (!strcmp(name, "help")) { /* `threadlog help` and `threadlog help COMMAND [WORD]`, as --help */
        if (i >= argc) { print_help(); return 0; }
        char topic[64];
        snprintf(topic, sizeof topic, "%s%s%s", argv[i], i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
        const cli_command *c = find_command(topic);
        if (!c) c = find_command(argv[i]);
        if (!c) {
            fprintf(stderr, "threadlog help: unknown command \"%s\" (threadlog --help lists them)\n", topic);
            return CLI_USAGE;
        }
        printf("usage: threadlog [-d DIR] %s\n\n", c->usage);
        print_help_text(c->help, 0);
        return 0;
    }
    if (!strcmp(name, "replay")) replay_with_huge_pages(argv);
    /* two-word commands: `key rotate`, `attachment get`, `project status` (the same as `status`:
     * `project` itself takes no positional argument) */
    char joined[64];
    if ((strcmp(name, "key") == 0 || strcmp(name, "attachment") == 0 ||
         (strcmp(name, "project") == 0 && i < argc && strcmp(argv[i], "status") == 0)) &&
        i < argc && argv[i][0] != '-') {
        snprintf(joined, sizeof joined, "%s %s", name, argv[i++]);
        name = joined;
    }
    const cli_command *cmd = find_command(name);
    ctx.command = name;
    ctx.usage = cmd ? cmd->usage : NULL;
    if (!cmd && (!strcmp(name, "key") || !strcmp(name, "attachment"))) {
        /* a two-word command's first word alone: its subcommands (help, or a usage error) */
        bool help = false;
        for (int k = i; k < argc; k++) help |= !strcmp(argv[k], "--help") || !strcmp(argv[k], "-h");
        FILE *out = help ? stdout : stderr;
        fprintf(out, "threadlog %s: %s\n", name, help ? "its commands" : "which one? (a subcommand is needed)");
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            for (const cli_command *c = groups[g]; c->name; c++)
                if (!strncmp(c->name, name, strlen(name)) && c->name[strlen(name)] == ' ')
                    fprintf(out, "  threadlog [-d DIR] %s\n", c->usage);
        if (help) return 0;
        if (ctx.json) {
            printf("{\"ok\":false,\"error\":\"invalid_input\",\"message\":");
            cli_json_string(stdout, "a subcommand is needed (threadlog --help lists them)");
            printf("}\n");
        }
        return CLI_USAGE;
    }
    if (!cmd) {
        if (ctx.json) {
            printf("{\"ok\":false,\"error\":\"invalid_input\",\"message\":");
            cli_json_string(stdout, "unknown command (threadlog --help lists them)");
            printf("}\n");
        }
        fprintf(stderr, "threadlog: unknown command \"%s\" (threadlog --help lists them)\n", name);
        return CLI_USAGE;
    }
    int rc = parse_args(&ctx, argc, argv, i);
    if (rc) return rc;
    /* apply answers in JSON lines whatever --json says: a fault inside LMDB answers the
     * command it stopped at in JSON too (without it, that command got no result line) */
    fault_json = ctx.json || !strcmp(cmd->name, "apply");
    install_fault_guard();
    if (cli_switch(&ctx, "help")) {
        printf("usage: threadlog [-d DIR] %s\n\n", cmd->usage);
        print_help_text(cmd->help, 0);
        return 0;
    }
    if (!positionals_in_usage(&ctx)) return CLI_FAILED;
    return cmd->run(&ctx);
}
