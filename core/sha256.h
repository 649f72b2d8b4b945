/* sha256: SHA-256 (FIPS 180-4) with a streaming interface, for checkpoint data checksums and corpus
 * hashes. Not constant-time and not meant for secrets; it detects corruption, not tampering. */
#ifndef CORE_SHA256_H
#define CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64 /* characters, without the terminator */

typedef struct sha256_ctx {
    uint32_t h[8];         /* chaining state */
    uint64_t len;          /* bytes hashed so far */
    unsigned char buf[64]; /* a partial block */
    size_t buf_len;        /* bytes in buf, 0..63 */
} sha256_ctx;

/* Starts a new hash in c (caller-owned; no resources to release). */
void sha256_init(sha256_ctx *c);

/* Hashes n more bytes of data (data may be NULL when n is 0). */
void sha256_update(sha256_ctx *c, const void *data, size_t n);

/* Finishes the hash and writes the 32-byte digest; c must be re-initialised before reuse. */
void sha256_final(sha256_ctx *c, unsigned char digest[SHA256_DIGEST_LEN]);

/* One-shot: the digest of n bytes of data. */
void sha256_digest(unsigned char digest[SHA256_DIGEST_LEN], const void *data, size_t n);

/* Writes digest as 64 lowercase hex digits plus a NUL terminator. */
void sha256_hex(char hex[SHA256_HEX_LEN + 1], const unsigned char digest[SHA256_DIGEST_LEN]);

#endif
