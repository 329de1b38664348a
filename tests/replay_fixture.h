/*
 * replay_fixture.h — what the replay suites share (test_replay_live, test_replay_copies,
 * test_replay_processes, test_replay_damage, and test_projections_digest): a seeded command
 * stream, run through the public command API (tl_cmd_parse, tl_batch_*) so that the live
 * state is whatever the rules and appliers made of it, refusals included; small logs made by
 * hand; a state observed as every user would see it; and copies made beside the log, in the
 * temporary directory that holds it.
 *
 * The stream is random but seeded: TL_TEST_SEED overrides the seed (test_seed), which the
 * tests print on failure. Its cast (run_setup): accounts a0..a2, members al bo cy di ed fe
 * (two per account), staff st1 st2, ambassadors am1..am3 and the auditor aud.
 */
#ifndef TL_REPLAY_FIXTURE_H
#define TL_REPLAY_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "testutil.h"
#include "threadlog.h"

/* ---------------------------------------------------------------- a seeded command stream */

#define GEN_MAX 8192 /* projects, topics, messages and uploads remembered for targeting */

typedef struct gen_msg {
    uint16_t project; /* index + 1; 0 for support */
    uint8_t account, channel; /* channel: 1 notes, 2 chat, 3 ambassador, 4 support */
    uint8_t author;   /* index into users[] */
} gen_msg;

typedef struct gen {
    uint64_t s;
    unsigned projects, topics, messages, uploads;
    unsigned n; /* commands produced */
    uint8_t p_account[GEN_MAX], p_amb[GEN_MAX]; /* p_amb: ambassador index + 1, 0 none */
    uint16_t t_project[GEN_MAX];
    gen_msg m[GEN_MAX];
    uint16_t f_project[GEN_MAX];
    uint8_t f_author[GEN_MAX];
    char lines[64][512]; /* creating lines, replayed now and then as client retries */
    unsigned nlines;
} gen;

/** A random number below n (0 when n is 0), from g's sequence. */
unsigned pick(gen *g, unsigned n);
/** The seed: TL_TEST_SEED, or 20250301. */
uint64_t test_seed(void);
/** One random command line (JSON) into line; g remembers what it created, to target it. */
void next_line(gen *g, char *line, size_t cap);
/** Run lines through one batch; every command is answered, the commit succeeds. */
void run_batch(tl_log *log, char lines[][512], int n);
/** Append `count` random commands in batches of random sizes (1..300). */
void run_stream(tl_log *log, gen *g, unsigned count);
/** The cast: accounts and users, in a fixed order, in one batch. */
void run_setup(tl_log *log);

/* ---------------------------------------------------------------- small logs by hand */

/** Append n extension events ("x.tick" by @operator, payload {"n":1}), one call each. */
void append_x(tl_log *log, int n);
/** Run command lines through one batch; each must be accepted. */
void run_ok(tl_log *log, const char *const *lines, int n);

/* ---------------------------------------------------------------- observing a state */

/** The head's sequence number. */
uint64_t head_of(tl_log *log);
/** The projections' digest; the test fails if it cannot be computed. */
void digest_of(tl_log *log, char out[TL_PUBKEY_HEX_SIZE]);
/** Everything a screen could show, as text (malloc'd): the digest and the queries of every
 * user (first pages of the first `projects` projects, at most 6). Two states that print the
 * same are the same to every user. */
char *observe(tl_log *log, unsigned projects);

/* ---------------------------------------------------------------- copies beside the log */

/** Open the log in dir read-only; the test fails if it does not open. */
tl_log *open_ro(const char *dir);
/** "dir.name", malloc'd: a copy's place beside the log, in the test's temporary directory. */
char *sibling(const char *dir, const char *name);
/** Replay into `into` (as of until_seq / until_ts when not 0, verified when verify is set);
 * the replay must succeed, r gets its report. */
void replay_into(tl_log *log, const char *into, uint64_t until_seq, uint64_t until_ts, int verify,
                 tl_replay_report *r);
/** Close log (NULL: already closed), remove the temporary directory holding dir and the
 * copies beside it, free dir. */
void remove_all(tl_log *log, char *dir);

#endif
