/*
 * cli.h — what the `threadlog` command's files share: the parsed global options, a tiny
 * flag parser, and output helpers. The CLI is a thin layer: every command is a call of the
 * public API (threadlog.h) and a rendering of its answer.
 */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "threadlog.h"

#define CLI_MAX_FLAGS 32
#define CLI_MAX_ARGS 16

typedef struct cli_args {
    const char *names[CLI_MAX_FLAGS];
    const char *values[CLI_MAX_FLAGS]; /* "" for a switch */
    int nflags;
    const char *pos[CLI_MAX_ARGS];
    int npos;
} cli_args;

typedef struct cli_ctx {
    const char *dir; /* -d DIR or THREADLOG_DIR */
    bool dir_given;  /* by -d (a second -d naming another directory is refused) */
    bool json;
    cli_args args;   /* the command's own flags and positional arguments */
    const char *command;
    const char *usage; /* the command's usage line: the flags it takes (cli_flags_in_usage) */
} cli_ctx;

typedef struct cli_command {
    const char *name;
    int (*run)(cli_ctx *ctx);
    const char *usage;
    const char *help;
} cli_command;

/* Exit statuses: 0 done; 1 refused or failed (an error object was printed; a malformed flag or
 * argument of a command is a refusal too: SPEC "a refused query ... exits 1"); 2 no command,
 * or an unknown one. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/** Value of --name, or NULL. A switch yields "". */
const char *cli_flag(const cli_ctx *ctx, const char *name);
bool cli_switch(const cli_ctx *ctx, const char *name);
/** Parse an unsigned flag; prints a usage error and returns false when malformed. */
bool cli_flag_u64(const cli_ctx *ctx, const char *name, unsigned long long *out, unsigned long long dflt);

/** Print the refusal {"ok":false,"error":..,"message":..} (JSON) or a human line; returns 1. */
int cli_error(const cli_ctx *ctx, int code, const char *message);

/** s as a JSON string on f; bytes that are not valid UTF-8 become U+FFFD. */
void cli_json_string(FILE *f, const char *s);
/** Refuse (invalid_input, printed) a flag that the command's usage line does not name; --json
 * and --help are every command's. For the commands that read their flags themselves (the
 * domain commands turn flags into command fields, which the library checks). */
bool cli_flags_in_usage(const cli_ctx *ctx);
/** A malformed command line: the invalid_input refusal, plus a pointer to --help; returns 1. */
int cli_usage(const cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Open the log of ctx->dir (read-only when readonly). Prints the error on failure. */
int cli_open(cli_ctx *ctx, tl_log **log, unsigned flags);

/* Command groups, one file each. */
extern const cli_command cli_log_commands[];
extern const cli_command cli_domain_commands[];
extern const cli_command cli_query_commands[];
extern const cli_command cli_ops_commands[];

#endif
