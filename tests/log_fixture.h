/*
 * log_fixture.h — helpers shared by the log's suites (test_log_open, test_log_format,
 * test_log_append, test_log_usage, test_log_map, test_log_exchange, test_log_rotation,
 * test_log_failures): paths in a test's log directory, opening and removing its log, the
 * head, a verify that must pass, extension events appended in batches, copying a key or data
 * file, one event read back. Each suite keeps the helpers only it uses as its own static functions.
 * The tamper suites (tamper_fixture.h) use its be64 too.
 *
 * Each test makes its own log in a fresh temporary directory (tu_new_log). Whenever a test
 * edits the LMDB file directly it closes its tl_log first: LMDB forbids opening one
 * environment twice in a process.
 */
#ifndef TL_LOG_FIXTURE_H
#define TL_LOG_FIXTURE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"
#include "threadlog.h"

/** dir/name, malloc'd. */
char *path_in(const char *dir, const char *name);
/** Close log (NULL: already closed), remove the temporary directory holding dir (as made by
 * tu_new_log or copy_log) and free dir. */
void remove_log(tl_log *log, char *dir);
/** Open the log in dir with these TL_OPEN_* flags; the test fails if it does not open. */
tl_log *open_log(const char *dir, unsigned flags);
/** The head's sequence number (the number of events). */
uint64_t head_seq(tl_log *log);
/** The log verifies, with exactly `events` events. */
void verify_ok(tl_log *log, uint64_t events);
/** A small extension payload {"i": i, "note": text, "pad": bin(pad)}. */
void x_payload(msgpack_sbuffer *buf, uint64_t i, const char *text, size_t pad);
/** Append n extension events in one batch, numbered from i0, each carrying pad bytes;
 * returns the first one's sequence number. */
uint64_t append_n(tl_log *log, size_t n, uint64_t i0, size_t pad);
/** v as 8 bytes big-endian at p (the layout's and the checkpoint message's integers). */
void be64(uint8_t *p, uint64_t v);
/** The permission bits of path. */
mode_t file_mode(const char *path);
/** Copy the file `from` to `to`, created or truncated, with this mode. */
void copy_file(const char *from, const char *to, mode_t mode);
/** Open an iterator at seq and read that event (which must be there); the view lives until
 * the caller closes *it. */
tl_event_view event_at(tl_log *log, uint64_t seq, tl_iter **it);

#endif
