/*
 * command.h — commands inside the engine: a tl_cmd is a validated-on-use JSON object
 * (jansson), whatever built it (a JSON line or the C builder), so both paths meet the same
 * checks. rules.c decides a command against the state inside the write transaction and
 * appends its event; exec.c groups commands into commits.
 */
#ifndef TL_COMMAND_H
#define TL_COMMAND_H

#include <jansson.h>

#include "log.h"
#include "state.h"

struct tl_cmd {
    json_t *obj;
    /* tl_cmd_set_data_size: an upload whose bytes were not read, only their size (over the
     * log's limit); "data" is then "" so the shape holds, and the command is never accepted. */
    bool data_unread;
    uint64_t data_unread_size;
};

/** Run one command inside w: check every rule, append its event (or nothing), fill res. */
int tl_rules_exec(tl_wtxn *w, const tl_cmd *cmd, tl_result *res);

/** ids: 1..64 bytes of A-Z a-z 0-9 . _ : - */
bool tl_id_valid(const char *s);

/** Set res to a failure (code + one-line message); returns code. */
int tl_result_fail(tl_result *res, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/**
 * j as JSON text in memory from malloc (so tl_free frees it): json_dumps would allocate with
 * jansson's allocator, which an embedding program may have replaced (json_set_alloc_funcs).
 * NULL when out of memory.
 */
char *tl_json_dump(const json_t *j, size_t flags);

/** Cut s at its first byte that does not continue valid UTF-8 (a truncated sequence). */
void tl_utf8_trim(char *s);

/** Set up the group-commit queue of a freshly opened log. */
int tl_commands_attach(tl_log *log);

#endif
