/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one crypto wrapper of tse, over Mbed TLS 2.28: block ciphers, the MACs GlobalPlatform
 * and the transit purse use, the SCP03 KDF, padding and key check values. No cipher is
 * written by hand here; every function is a thin composition of Mbed TLS primitives.
 * All functions return 0 or a negative tse_err (TSE_ERR_INVALID_ARG for bad lengths).
 */
#ifndef TSE_CRYPTO_INTERNAL_H
#define TSE_CRYPTO_INTERNAL_H

#include <stdbool.h>

#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <stddef.h>
#include <stdint.h>

/* ISO 9797-1 padding method 2: append 80, then 00 up to a multiple of bs (always >= 1 byte).
 * Returns the padded length; out must hold len + bs bytes (out may equal in). */
size_t tse_pad80(const uint8_t *in, size_t len, size_t bs, uint8_t *out);
/* Length of the data before the 80 00.. padding, or -1 if the padding is malformed. */
long tse_unpad80(const uint8_t *in, size_t len);

/* 2-key 3DES (K1 K2 K1), 16-byte keys. len a multiple of 8. */
int tse_des3_ecb(const uint8_t key[16], bool encrypt, const uint8_t *in, size_t len, uint8_t *out);
int tse_des3_cbc(const uint8_t key[16], bool encrypt, const uint8_t iv[8], const uint8_t *in,
                 size_t len, uint8_t *out);
/* Single DES ECB of one block with an 8-byte key. */
int tse_des_ecb(const uint8_t key[8], const uint8_t in[8], uint8_t out[8]);

/* Full 3DES MAC: 3DES-CBC over pad80(data), ICV given (NULL = zero), last block. */
int tse_mac_des3_full(const uint8_t key[16], const uint8_t *icv, const uint8_t *data, size_t len,
                      uint8_t mac[8]);
/* ISO 9797-1 MAC algorithm 1 with single DES and padding method 2 (the PBOC purse MAC): DES-CBC
 * with an 8-byte key over pad80(data), ICV given (NULL = zero), last block. */
int tse_mac_des(const uint8_t key[8], const uint8_t *icv, const uint8_t *data, size_t len,
                uint8_t mac[8]);
/* ISO 9797-1 MAC algorithm 3 ("retail MAC") with padding method 2: single DES with K1 over
 * all blocks but the last, 3DES on the last; ICV given (NULL = zero). */
int tse_mac_retail(const uint8_t key[16], const uint8_t *icv, const uint8_t *data, size_t len,
                   uint8_t mac[8]);

/* AES with 16-, 24- or 32-byte keys. len a multiple of 16. */
int tse_aes_ecb(const uint8_t *key, size_t klen, bool encrypt, const uint8_t *in, size_t len,
                uint8_t *out);
int tse_aes_cbc(const uint8_t *key, size_t klen, bool encrypt, const uint8_t iv[16],
                const uint8_t *in, size_t len, uint8_t *out);
/* AES-CMAC (NIST SP 800-38B) over the concatenation of two buffers (b may be NULL). */
int tse_aes_cmac2(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen, uint8_t mac[16]);

/* SCP03 KDF: NIST SP 800-108 counter mode with AES-CMAC (GP Amendment D §6.2.2). */
int tse_scp03_kdf(const uint8_t *key, size_t klen, uint8_t constant, size_t out_bits,
                  const uint8_t *context, size_t clen, uint8_t *out);

/* Key check values: 3DES = ECB(key, 00 x 8); AES = ECB(key, 01 x 16); first n bytes. */
int tse_kcv_des3(const uint8_t key[16], uint8_t *kcv, size_t n);
int tse_kcv_aes(const uint8_t *key, size_t klen, uint8_t *kcv, size_t n);

/* Constant-time comparison (true when equal). */
bool tse_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);
/* Overwrite secrets. */
void tse_wipe(void *p, size_t len);

/* Incremental SHA-1 / SHA-256 (the LOAD file data block hash). Plain data, no pointers: it may
 * live in transient card RAM between commands. */
struct tse_hash {
    int alg; /* 1 SHA-1, 2 SHA-256 */
    union {
        mbedtls_sha1_context sha1;
        mbedtls_sha256_context sha256;
    } u;
};
/* alg: 20 → SHA-1, 32 → SHA-256 (the digest length). TSE_ERR_INVALID_ARG otherwise. */
int tse_hash_init(struct tse_hash *h, size_t digest_len);
int tse_hash_update(struct tse_hash *h, const uint8_t *b, size_t len);
/* Writes the digest (20 or 32 bytes) and returns its length, or a tse_err. */
int tse_hash_final(struct tse_hash *h, uint8_t out[32]);

/* RSA signatures as GlobalPlatform delegated management tokens use them (GPPro's choice):
 * moduli up to 1024 bits: PKCS#1 v1.5 with SHA-1; larger: RSASSA-PSS with SHA-256 (any salt
 * length on verification, 32 bytes when signing).
 * tse_rsa_verify: public key as big-endian modulus and exponent. 0 valid; TSE_ERR_DENIED bad
 * signature; TSE_ERR_INVALID_ARG malformed key. */
int tse_rsa_verify(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen, const uint8_t *msg,
                   size_t mlen, const uint8_t *sig, size_t slen);
/* tse_rsa_sign: private key in PEM or DER (PKCS#1 or PKCS#8); *siglen = modulus bytes.
 * Deterministic for PKCS#1 v1.5; PSS salts come from a DRBG seeded with `seed`. Host side
 * (tests, TSM tools). TSE_ERR_INVALID_ARG bad key; TSE_ERR_BUFFER_TOO_SMALL. */
int tse_rsa_sign(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t *sig,
                 size_t cap, size_t *siglen);
/* Modulus and public exponent of a private or public key (PEM/DER), big-endian. */
int tse_rsa_public(const uint8_t *key, size_t klen, uint8_t *n, size_t ncap, size_t *nlen,
                   uint8_t *e, size_t ecap, size_t *elen);

#endif
