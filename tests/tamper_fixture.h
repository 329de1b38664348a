/*
 * tamper_fixture.h — the log under attack and the attacker's tools, shared by the tamper
 * suites (SPEC §5: test_tamper_bytes, test_tamper_order, test_tamper_keys,
 * test_tamper_checkpoint, test_tamper_content, test_tamper_free_list). Each suite keeps the
 * helpers only it uses as its own static functions.
 *
 * The log under attack has EVENTS (1,000) events: the genesis, 498 extension events, a key
 * rotation at ROTATION (500) and 500 more events signed by the new key, made afresh for each
 * test by setup (tcase_add_checked_fixture; the tests run in forked processes). The attacker
 * edits the LMDB file directly (raw_*, head_*: raw LMDB, with the tl_log closed: LMDB forbids
 * opening one environment twice in a process) and, for the rewrites, holds the writer key
 * (writer_key, forge, sign_bytes). verify, expect_bad and expect_good open the log read-only
 * for the occasion; replay_refuses_when and cut_copy ask the replays the same question.
 */
#ifndef TL_TAMPER_FIXTURE_H
#define TL_TAMPER_FIXTURE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "log_fixture.h" /* be64 */
#include "testutil.h"
#include "threadlog.h"

/** The log's shape: EVENTS events, the key rotated at ROTATION (test_tamper_bytes also makes a
 * 100-event log of the same shape, see flip_every_byte). */
extern uint64_t EVENTS, ROTATION;
/** The test's log directory (the tl_log is closed between the steps of a test). */
extern char *g_dir;

/** Append n extension events ("x.tamper", numbered from i0) in one batch. */
void append_batch(tl_log *log, uint64_t i0, size_t n);
/** A fresh log of EVENTS events in g_dir, its key rotated at ROTATION, closed. */
void setup(void);
/** Remove g_dir's temporary directory and free g_dir. */
void teardown(void);

/** Verify the log (opened read-only for the occasion); returns the code, fills r. */
int verify(const char *checkpoint, tl_verify_report *r);
/** verify (against checkpoint, or none) finds the log corrupt, naming event seq first. */
void expect_bad(const char *checkpoint, uint64_t seq, const char *what);
/** verify (against checkpoint, or none) passes. */
void expect_good(const char *checkpoint, const char *what);
/** An in-place replay of the log refuses it, naming event `seq`: verified, and also
 * unverified unless the damage is one only verification sees (content, signatures). */
void replay_refuses_when(uint64_t seq, bool unverified_too);
/** replay_refuses_when(seq, true). */
void replay_refuses(uint64_t seq);
/** A copy cut at N (replay --into DIR --until-seq N) reads the records after N and moves the
 * head back to N: the tail is checked first, so a damaged tail is refused rather than cut
 * away unseen (and a forged erasure there never becomes the copy's erased/ mark). Returns the
 * replay's code, *first_bad the event it named; a refused cut leaves no copy. */
int cut_copy(uint64_t n, bool verified, uint64_t *first_bad);

/* ---- raw LMDB, as an attacker with the file would edit it ---- */

typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta, content;
} raw;

/** Open g_dir with LMDB itself and begin a write transaction on its log, meta and content. */
void raw_begin(raw *r);
/** Commit and close. */
void raw_end(raw *r);
/** A malloc'd copy of the stored record of seq. */
uint8_t *raw_get(raw *r, uint64_t seq, size_t *len);
/** Store rec as the record of seq. */
void raw_set(raw *r, uint64_t seq, const uint8_t *rec, size_t len);
/** Delete the record of seq. */
void raw_del(raw *r, uint64_t seq);
/** Point the meta head at seq (hash and time of its event), keeping the current key. */
void raw_set_head(raw *r, uint64_t seq);
/** The stored head record (meta "head", 80 bytes), read and written as an attacker would. */
void head_get(uint8_t head[80]);
/** Store the first len bytes of head as the head record (a record of another size too). */
void head_put_len(const uint8_t head[80], size_t len);
/** head_put_len(head, 80). */
void head_put(const uint8_t head[80]);

/* ---- the key holder's tools ---- */

/** An event chained to prev, signed by kp, as a record (malloc'd, *len bytes). */
uint8_t *forge(size_t *len, uint64_t seq, uint64_t ts, const uint8_t prev[32], const char *kind, const char *note,
               const uint8_t *new_key, const tl_keypair *kp);
/** A record's event hash and time. */
void record_hash_ts(const uint8_t *rec, size_t len, uint8_t hash[32], uint64_t *ts);
/** The writer's current key, read from g_dir's key file. */
void writer_key(tl_keypair *kp);
/** The key the rotation at ROTATION retired (setup keeps a copy beside g_dir). */
void retired_key(tl_keypair *kp);
/** The n event bytes followed by their signature by kp, as a record (malloc'd, *len bytes). */
uint8_t *sign_bytes(const uint8_t *bytes, size_t n, size_t *len, const tl_keypair *kp);

#endif
