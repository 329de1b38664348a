/*
 * crypto.h — hashing, the writer key and its file, signing and verification.
 *
 * BLAKE2b-256 chains events and commits to content; ed25519 signs each event's bytes. A
 * batch's signatures are independent of one another (the chain hashes event bytes, not
 * records), so tl_sign_batch / tl_verify_batch spread them over several threads.
 */
#ifndef TL_CRYPTO_H
#define TL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "threadlog.h"

#define TL_SECRETKEY_BYTES 64 /* libsodium's ed25519 secret key: seed || public key */
#define TL_SALT_BYTES 32
#define TL_KEY_FILE "writer.key"
#define TL_KEY_FILE_NEW "writer.key.new"
/* Checkpoints are signed over this prefix followed by their bytes, so that a checkpoint
 * signature can never pass for an event signature. */
#define TL_CHECKPOINT_CONTEXT "threadlog-checkpoint-v1"

int tl_crypto_init(void);

void tl_hash(uint8_t out[TL_HASH_BYTES], const void *data, size_t len);
/** The content commitment: BLAKE2b-256(salt || content). */
void tl_commit(uint8_t out[TL_HASH_BYTES], const uint8_t salt[TL_SALT_BYTES], const void *content, size_t len);
void tl_random(void *buf, size_t len);

typedef struct tl_keypair {
    uint8_t pk[TL_PUBKEY_BYTES];
    uint8_t sk[TL_SECRETKEY_BYTES];
} tl_keypair;

void tl_keypair_generate(tl_keypair *kp);
void tl_keypair_wipe(tl_keypair *kp);

/** Write a key file (mode 0600, fsynced); fails if it exists. */
int tl_keyfile_write(const char *path, const tl_keypair *kp);
/** Read a key file, refusing one readable or writable by group/others (TL_EKEY). */
int tl_keyfile_read(const char *path, tl_keypair *kp);

void tl_sign(uint8_t sig[TL_SIGNATURE_BYTES], const uint8_t *msg, size_t len, const tl_keypair *kp);
/** 0 when sig is pk's signature of msg. */
int tl_verify_sig(const uint8_t sig[TL_SIGNATURE_BYTES], const uint8_t *msg, size_t len,
                  const uint8_t pk[TL_PUBKEY_BYTES]) __attribute__((warn_unused_result));

/** Run fn(i, ctx) for i in [0, n) on `threads` threads (the caller's thread included). */
void tl_parallel_for(size_t n, unsigned threads, void (*fn)(size_t i, void *ctx), void *ctx);

void tl_hex(char *out, const uint8_t *in, size_t n); /* out gets 2n+1 bytes */
int tl_unhex(uint8_t *out, size_t n, const char *hex); /* exactly 2n hex digits */

#endif
