/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/des.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/platform_util.h>

#include "crypto/crypto_internal.h"
#include "tse/error.h"

size_t tse_pad80(const uint8_t *in, size_t len, size_t bs, uint8_t *out)
{
    if (out != in && len)
        memmove(out, in, len);
    out[len++] = 0x80;
    while (len % bs)
        out[len++] = 0x00;
    return len;
}

long tse_unpad80(const uint8_t *in, size_t len)
{
    while (len && in[len - 1] == 0x00)
        len--;
    if (!len || in[len - 1] != 0x80)
        return -1;
    return (long)(len - 1);
}

int tse_des3_ecb(const uint8_t key[16], bool encrypt, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len % 8)
        return TSE_ERR_INVALID_ARG;
    mbedtls_des3_context c;
    mbedtls_des3_init(&c);
    int rc = encrypt ? mbedtls_des3_set2key_enc(&c, key) : mbedtls_des3_set2key_dec(&c, key);
    for (size_t i = 0; rc == 0 && i < len; i += 8)
        rc = mbedtls_des3_crypt_ecb(&c, in + i, out + i);
    mbedtls_des3_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_des3_cbc(const uint8_t key[16], bool encrypt, const uint8_t iv[8], const uint8_t *in,
                 size_t len, uint8_t *out)
{
    if (len % 8)
        return TSE_ERR_INVALID_ARG;
    uint8_t v[8] = {0};
    if (iv)
        memcpy(v, iv, 8);
    mbedtls_des3_context c;
    mbedtls_des3_init(&c);
    int rc = encrypt ? mbedtls_des3_set2key_enc(&c, key) : mbedtls_des3_set2key_dec(&c, key);
    if (rc == 0 && len)
        rc = mbedtls_des3_crypt_cbc(&c, encrypt ? MBEDTLS_DES_ENCRYPT : MBEDTLS_DES_DECRYPT, len, v,
                                    in, out);
    mbedtls_des3_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_des_ecb(const uint8_t key[8], const uint8_t in[8], uint8_t out[8])
{
    mbedtls_des_context c;
    mbedtls_des_init(&c);
    int rc = mbedtls_des_setkey_enc(&c, key);
    if (rc == 0)
        rc = mbedtls_des_crypt_ecb(&c, in, out);
    mbedtls_des_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

/* pad80(data) into a buffer: the stack one when it fits, else the heap. */
static uint8_t *padded(const uint8_t *data, size_t len, size_t bs, uint8_t *stackbuf,
                       size_t stackcap, size_t *n)
{
    *n = (len / bs + 1) * bs;
    uint8_t *p = *n <= stackcap ? stackbuf : malloc(*n);
    if (p)
        tse_pad80(data, len, bs, p);
    return p;
}

int tse_mac_des3_full(const uint8_t key[16], const uint8_t *icv, const uint8_t *data, size_t len,
                      uint8_t mac[8])
{
    uint8_t sb[264];
    size_t n;
    uint8_t *p = padded(data, len, 8, sb, sizeof(sb), &n);
    if (!p)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_des3_cbc(key, true, icv, p, n, p);
    if (rc == 0)
        memcpy(mac, p + n - 8, 8);
    tse_wipe(p, n);
    if (p != sb)
        free(p);
    return rc;
}

int tse_mac_des(const uint8_t key[8], const uint8_t *icv, const uint8_t *data, size_t len,
                uint8_t mac[8])
{
    uint8_t sb[264], v[8] = {0};
    size_t n;
    uint8_t *p = padded(data, len, 8, sb, sizeof(sb), &n);
    if (!p)
        return TSE_ERR_NO_MEMORY;
    if (icv)
        memcpy(v, icv, 8);
    mbedtls_des_context d;
    mbedtls_des_init(&d);
    int rc = mbedtls_des_setkey_enc(&d, key);
    if (rc == 0)
        rc = mbedtls_des_crypt_cbc(&d, MBEDTLS_DES_ENCRYPT, n, v, p, p);
    mbedtls_des_free(&d);
    if (rc == 0)
        memcpy(mac, p + n - 8, 8);
    tse_wipe(p, n);
    if (p != sb)
        free(p);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_mac_retail(const uint8_t key[16], const uint8_t *icv, const uint8_t *data, size_t len,
                   uint8_t mac[8])
{
    uint8_t sb[264], chain[8] = {0}, block[8];
    size_t n;
    uint8_t *p = padded(data, len, 8, sb, sizeof(sb), &n);
    if (!p)
        return TSE_ERR_NO_MEMORY;
    if (icv)
        memcpy(chain, icv, 8);
    mbedtls_des_context d;
    mbedtls_des_init(&d);
    int rc = mbedtls_des_setkey_enc(&d, key); /* K1: the left half */
    for (size_t off = 0; rc == 0 && off + 8 < n; off += 8) {
        for (int k = 0; k < 8; k++)
            block[k] = chain[k] ^ p[off + k];
        rc = mbedtls_des_crypt_ecb(&d, block, chain);
    }
    mbedtls_des_free(&d);
    for (int k = 0; k < 8; k++)
        block[k] = chain[k] ^ p[n - 8 + k];
    if (rc == 0)
        rc = tse_des3_ecb(key, true, block, 8, mac);
    if (p != sb)
        free(p);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

static int aes_init(mbedtls_aes_context *c, const uint8_t *key, size_t klen, bool encrypt)
{
    if (klen != 16 && klen != 24 && klen != 32)
        return TSE_ERR_INVALID_ARG;
    mbedtls_aes_init(c);
    int rc = encrypt ? mbedtls_aes_setkey_enc(c, key, (unsigned)klen * 8)
                     : mbedtls_aes_setkey_dec(c, key, (unsigned)klen * 8);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_aes_ecb(const uint8_t *key, size_t klen, bool encrypt, const uint8_t *in, size_t len,
                uint8_t *out)
{
    if (len % 16)
        return TSE_ERR_INVALID_ARG;
    mbedtls_aes_context c;
    int rc = aes_init(&c, key, klen, encrypt);
    for (size_t i = 0; rc == 0 && i < len; i += 16)
        rc = mbedtls_aes_crypt_ecb(&c, encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT, in + i,
                                   out + i);
    mbedtls_aes_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_aes_cbc(const uint8_t *key, size_t klen, bool encrypt, const uint8_t iv[16],
                const uint8_t *in, size_t len, uint8_t *out)
{
    if (len % 16)
        return TSE_ERR_INVALID_ARG;
    uint8_t v[16] = {0};
    if (iv)
        memcpy(v, iv, 16);
    mbedtls_aes_context c;
    int rc = aes_init(&c, key, klen, encrypt);
    if (rc == 0 && len)
        rc = mbedtls_aes_crypt_cbc(&c, encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT, len, v,
                                   in, out);
    mbedtls_aes_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_aes_cmac2(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen, uint8_t mac[16])
{
    mbedtls_cipher_type_t t = klen == 16   ? MBEDTLS_CIPHER_AES_128_ECB
                              : klen == 24 ? MBEDTLS_CIPHER_AES_192_ECB
                              : klen == 32 ? MBEDTLS_CIPHER_AES_256_ECB
                                           : MBEDTLS_CIPHER_NONE;
    const mbedtls_cipher_info_t *info = mbedtls_cipher_info_from_type(t);
    if (!info)
        return TSE_ERR_INVALID_ARG;
    mbedtls_cipher_context_t c;
    mbedtls_cipher_init(&c);
    int rc = mbedtls_cipher_setup(&c, info);
    if (rc == 0)
        rc = mbedtls_cipher_cmac_starts(&c, key, klen * 8);
    if (rc == 0 && alen)
        rc = mbedtls_cipher_cmac_update(&c, a, alen);
    if (rc == 0 && blen)
        rc = mbedtls_cipher_cmac_update(&c, b, blen);
    if (rc == 0)
        rc = mbedtls_cipher_cmac_finish(&c, mac);
    mbedtls_cipher_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_scp03_kdf(const uint8_t *key, size_t klen, uint8_t constant, size_t out_bits,
                  const uint8_t *context, size_t clen, uint8_t *out)
{
    uint8_t fixed[16];
    if (out_bits % 8 || out_bits > 512)
        return TSE_ERR_INVALID_ARG;
    size_t out_len = out_bits / 8;
    memset(fixed, 0, 11);
    fixed[11] = constant;
    fixed[12] = 0x00; /* separation indicator */
    fixed[13] = (uint8_t)(out_bits >> 8);
    fixed[14] = (uint8_t)out_bits;
    for (size_t done = 0, j = 1; done < out_len; j++) {
        uint8_t block[16];
        fixed[15] = (uint8_t)j;
        int rc = tse_aes_cmac2(key, klen, fixed, 16, context, clen, block);
        if (rc)
            return rc;
        size_t n = out_len - done < 16 ? out_len - done : 16;
        memcpy(out + done, block, n);
        done += n;
    }
    return 0;
}

int tse_kcv_des3(const uint8_t key[16], uint8_t *kcv, size_t n)
{
    uint8_t z[8] = {0}, o[8];
    int rc = tse_des3_ecb(key, true, z, 8, o);
    if (rc == 0)
        memcpy(kcv, o, n > 8 ? 8 : n);
    return rc;
}

int tse_kcv_aes(const uint8_t *key, size_t klen, uint8_t *kcv, size_t n)
{
    uint8_t one[16], o[16];
    memset(one, 0x01, sizeof(one));
    int rc = tse_aes_ecb(key, klen, true, one, 16, o);
    if (rc == 0)
        memcpy(kcv, o, n > 16 ? 16 : n);
    return rc;
}

bool tse_ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

void tse_wipe(void *p, size_t len)
{
    mbedtls_platform_zeroize(p, len);
}

/* ---- RSA (delegated management tokens) --------------------------------------------------- */

static int digest_for(size_t modulus_len, const uint8_t *msg, size_t mlen, uint8_t hash[32],
                      mbedtls_md_type_t *md, unsigned *hlen)
{
    if (modulus_len <= 128) {
        *md = MBEDTLS_MD_SHA1;
        *hlen = 20;
        return mbedtls_sha1_ret(msg, mlen, hash);
    }
    *md = MBEDTLS_MD_SHA256;
    *hlen = 32;
    return mbedtls_sha256_ret(msg, mlen, hash, 0);
}

int tse_rsa_verify(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen, const uint8_t *msg,
                   size_t mlen, const uint8_t *sig, size_t slen)
{
    if (!n || !e || !sig || nlen < 64 || nlen > 512 || elen == 0 || elen > 8)
        return TSE_ERR_INVALID_ARG;
    mbedtls_rsa_context rsa;
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
    int rc = TSE_ERR_INVALID_ARG;
    if (mbedtls_rsa_import_raw(&rsa, n, nlen, NULL, 0, NULL, 0, NULL, 0, e, elen) == 0 &&
        mbedtls_rsa_complete(&rsa) == 0 && mbedtls_rsa_check_pubkey(&rsa) == 0) {
        uint8_t hash[32];
        mbedtls_md_type_t md;
        unsigned hlen;
        size_t klen = mbedtls_rsa_get_len(&rsa);
        rc = TSE_ERR_DENIED;
        if (slen == klen && digest_for(klen, msg, mlen, hash, &md, &hlen) == 0) {
            int v;
            if (klen <= 128) {
                v = mbedtls_rsa_pkcs1_verify(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, md, hlen, hash,
                                             sig);
            } else {
                mbedtls_rsa_set_padding(&rsa, MBEDTLS_RSA_PKCS_V21, md);
                v = mbedtls_rsa_rsassa_pss_verify(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, md, hlen,
                                                  hash, sig);
            }
            if (v == 0)
                rc = 0;
        }
    }
    mbedtls_rsa_free(&rsa);
    return rc;
}

static int parse_key(mbedtls_pk_context *pk, const uint8_t *key, size_t klen)
{
    /* PEM needs its terminating NUL inside the length */
    uint8_t *buf = malloc(klen + 1);
    if (!buf)
        return TSE_ERR_NO_MEMORY;
    memcpy(buf, key, klen);
    buf[klen] = 0;
    size_t len = (klen && key[0] == '-') ? klen + 1 : klen;
    int rc = mbedtls_pk_parse_key(pk, buf, len, NULL, 0);
    if (rc != 0)
        rc = mbedtls_pk_parse_public_key(pk, buf, len);
    free(buf);
    if (rc != 0 || mbedtls_pk_get_type(pk) != MBEDTLS_PK_RSA)
        return TSE_ERR_INVALID_ARG;
    return 0;
}

int tse_rsa_public(const uint8_t *key, size_t klen, uint8_t *n, size_t ncap, size_t *nlen,
                   uint8_t *e, size_t ecap, size_t *elen)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = parse_key(&pk, key, klen);
    if (!rc) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
        size_t k = mbedtls_rsa_get_len(rsa);
        mbedtls_mpi N, E;
        mbedtls_mpi_init(&N);
        mbedtls_mpi_init(&E);
        size_t el = 0;
        if (mbedtls_rsa_export(rsa, &N, NULL, NULL, NULL, &E) != 0)
            rc = TSE_ERR_INVALID_ARG;
        else if (k > ncap || (el = mbedtls_mpi_size(&E)) > ecap)
            rc = TSE_ERR_BUFFER_TOO_SMALL;
        else if (mbedtls_mpi_write_binary(&N, n, k) || mbedtls_mpi_write_binary(&E, e, el))
            rc = TSE_ERR_INVALID_ARG;
        *nlen = k;
        *elen = el;
        mbedtls_mpi_free(&N);
        mbedtls_mpi_free(&E);
    }
    mbedtls_pk_free(&pk);
    return rc;
}

int tse_rsa_sign(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t *sig,
                 size_t cap, size_t *siglen)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_entropy_init(&ent);
    int rc = parse_key(&pk, key, klen);
    if (!rc) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
        size_t k = mbedtls_rsa_get_len(rsa);
        uint8_t hash[32];
        mbedtls_md_type_t md;
        unsigned hlen;
        if (k > cap) {
            rc = TSE_ERR_BUFFER_TOO_SMALL;
        } else if (digest_for(k, msg, mlen, hash, &md, &hlen) != 0 ||
                   mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent,
                                         (const unsigned char *)"tse-dm", 6) != 0) {
            rc = TSE_ERR_INVALID_ARG;
        } else {
            int v;
            if (k <= 128) {
                mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
                v = mbedtls_rsa_pkcs1_sign(rsa, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_RSA_PRIVATE,
                                           md, hlen, hash, sig);
            } else {
                mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
                v = mbedtls_rsa_rsassa_pss_sign(rsa, mbedtls_ctr_drbg_random, &drbg,
                                                MBEDTLS_RSA_PRIVATE, md, hlen, hash, sig);
            }
            rc = v ? TSE_ERR_INVALID_ARG : 0;
            *siglen = k;
        }
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    mbedtls_pk_free(&pk);
    return rc;
}

/* ---- incremental hashes ---------------------------------------------------------------------- */

int tse_hash_init(struct tse_hash *h, size_t digest_len)
{
    memset(h, 0, sizeof(*h));
    if (digest_len == 20) {
        h->alg = 1;
        mbedtls_sha1_init(&h->u.sha1);
        return mbedtls_sha1_starts_ret(&h->u.sha1) ? TSE_ERR_INVALID_ARG : 0;
    }
    if (digest_len == 32) {
        h->alg = 2;
        mbedtls_sha256_init(&h->u.sha256);
        return mbedtls_sha256_starts_ret(&h->u.sha256, 0) ? TSE_ERR_INVALID_ARG : 0;
    }
    return TSE_ERR_INVALID_ARG;
}

int tse_hash_update(struct tse_hash *h, const uint8_t *b, size_t len)
{
    int rc = h->alg == 1   ? mbedtls_sha1_update_ret(&h->u.sha1, b, len)
             : h->alg == 2 ? mbedtls_sha256_update_ret(&h->u.sha256, b, len)
                           : -1;
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

int tse_hash_final(struct tse_hash *h, uint8_t out[32])
{
    if (h->alg == 1)
        return mbedtls_sha1_finish_ret(&h->u.sha1, out) ? TSE_ERR_INVALID_ARG : 20;
    if (h->alg == 2)
        return mbedtls_sha256_finish_ret(&h->u.sha256, out) ? TSE_ERR_INVALID_ARG : 32;
    return TSE_ERR_INVALID_ARG;
}
