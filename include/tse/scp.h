/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file scp.h
 * @brief GlobalPlatform secure channels SCP02 and SCP03: one session object for both sides.
 *
 * The card side (a security domain) and the host side (tools, TSM, tests) share the same
 * code: a struct tse_scp_session holds the static keys, the session keys and the chaining
 * state. Facts and vectors: docs/scp.md, tests/vectors/scp-vectors.txt.
 *
 * Typical host use:
 *   tse_scp_host_begin()              -> INITIALIZE UPDATE command to send
 *   tse_scp_host_iu_response()        <- its response data (card cryptogram checked)
 *   tse_scp_host_external_authenticate() -> EXTERNAL AUTHENTICATE command to send
 *   tse_scp_host_wrap() / tse_scp_host_unwrap() for every later command / response
 * Typical card use:
 *   tse_scp_card_initialize_update()  on INITIALIZE UPDATE
 *   tse_scp_card_external_authenticate() on EXTERNAL AUTHENTICATE
 *   tse_scp_card_unwrap() on each later command, tse_scp_card_wrap_response() on its answer
 */
#ifndef TSE_SCP_H
#define TSE_SCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/apdu.h"
#include "tse/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Security level bits (P1 of EXTERNAL AUTHENTICATE). */
#define TSE_SL_CMAC 0x01u
#define TSE_SL_CDEC 0x02u
#define TSE_SL_RMAC 0x10u
#define TSE_SL_RENC 0x20u

/** Static keys of one key set. */
struct tse_scp_keys {
    uint8_t scp;     /**< 2 or 3 */
    uint8_t i;       /**< implementation option */
    uint8_t kvn;     /**< key version number */
    uint8_t key_len; /**< 16 (3DES, AES-128), 24 or 32 (AES) */
    uint8_t enc[32], mac[32], dek[32];
};

enum tse_scp_role { TSE_SCP_HOST = 0, TSE_SCP_CARD = 1 };

/** Session state. Treat as opaque except for the documented read-only fields. */
struct tse_scp_session {
    enum tse_scp_role role;
    struct tse_scp_keys keys; /**< static keys in use (kvn = the one the card used) */
    uint8_t scp, i;
    bool s16;           /**< SCP03 16-byte challenges/cryptograms/MACs */
    bool initialized;   /**< INITIALIZE UPDATE done, waiting for EXTERNAL AUTHENTICATE */
    bool authenticated; /**< the session is open */
    uint8_t level;      /**< security level of the open session */
    /* read-only after INITIALIZE UPDATE: */
    uint8_t kdd[10];
    uint8_t seq[3]; /**< SCP02: 2 bytes; SCP03: 3 bytes when i & 0x10 */
    uint8_t host_challenge[16], card_challenge[16]; /**< SCP02 card challenge: 6 bytes */
    uint8_t card_cryptogram[16], host_cryptogram[16];
    uint8_t s_enc[32], s_mac[32], s_rmac[32], s_dek[32]; /**< SCP03 has no session DEK */
    /* chaining state */
    uint8_t mcv[16];           /**< SCP03 MAC chaining value; SCP02 last C-MAC (8 bytes) */
    uint8_t rmac_chain[16];    /**< SCP02 R-MAC ICV */
    uint8_t counter[16];       /**< SCP03 encryption counter */
    uint8_t last_cmd[5 + 255]; /**< SCP02 R-MAC: the unwrapped command of the pending response */
    size_t last_cmd_len;
    const char *why; /**< the check that failed last ("card cryptogram", "C-MAC"…) */
    int div;         /**< host: enum tse_scp_div applied to the static keys */
    char why_buf[160];
};

/** Length of a challenge (8, or 16 in SCP03 S16 mode) for the given keys. */
size_t tse_scp_challenge_len(const struct tse_scp_keys *k);

/* ---- host side ---------------------------------------------------------------------------- */

/**
 * Start a session: builds INITIALIZE UPDATE `80 50 kvn 00 Lc host_challenge 00`.
 * @param kvn P1 to send (00 = the card's default key set)
 * @retval 0; TSE_ERR_INVALID_ARG bad keys or challenge length; TSE_ERR_BUFFER_TOO_SMALL
 */
int tse_scp_host_begin(struct tse_scp_session *s, const struct tse_scp_keys *k, uint8_t kvn,
                       const uint8_t *host_challenge, size_t hlen, uint8_t *cmd, size_t cap,
                       size_t *len);

/**
 * Process the INITIALIZE UPDATE response data (SW removed): derive the session keys and
 * check the card cryptogram.
 * @retval 0
 * @retval TSE_ERR_PARSE wrong length or protocol byte
 * @retval TSE_ERR_DENIED card cryptogram mismatch (s->why says so): wrong keys
 */
int tse_scp_host_iu_response(struct tse_scp_session *s, const uint8_t *rsp, size_t len);

/** Build EXTERNAL AUTHENTICATE for a security level; the session then counts as open. */
int tse_scp_host_external_authenticate(struct tse_scp_session *s, uint8_t level, uint8_t *cmd,
                                       size_t cap, size_t *len);

/** Protect a command (C-MAC, C-DEC per level). The input is a plain C-APDU (any CLA). */
int tse_scp_host_wrap(struct tse_scp_session *s, const uint8_t *plain, size_t len, uint8_t *out,
                      size_t cap, size_t *olen);

/**
 * Check and remove response protection (R-MAC, R-ENC per level). rsp includes SW1 SW2.
 * @retval TSE_ERR_DENIED R-MAC mismatch (s->why); TSE_ERR_PARSE too short
 */
int tse_scp_host_unwrap(struct tse_scp_session *s, const uint8_t *rsp, size_t len, uint8_t *out,
                        size_t cap, size_t *olen);

/* ---- card side ---------------------------------------------------------------------------- */

/**
 * Answer INITIALIZE UPDATE. `seq` is the sequence counter value of this session (already
 * incremented by the caller). `card_challenge` forces the card challenge (SCP02: 6 bytes,
 * SCP03: 8/16); NULL computes it: the pseudo-random challenge from `sd_aid` when i asks for
 * it, else the caller must pass random bytes.
 * @retval 0, response data (without SW) in rsp
 * @retval TSE_ERR_INVALID_ARG bad challenge length, or NULL challenge where i needs random
 */
int tse_scp_card_initialize_update(struct tse_scp_session *s, const struct tse_scp_keys *k,
                                   const uint8_t kdd[10], uint32_t seq,
                                   const uint8_t *host_challenge, size_t hlen,
                                   const uint8_t *card_challenge, const struct tse_aid *sd_aid,
                                   uint8_t *rsp, size_t cap, size_t *rlen);

/**
 * Check EXTERNAL AUTHENTICATE (CLA 84, INS 82, P1 = level, data = host cryptogram ‖ C-MAC).
 * Returns the status word: 9000 (session open), 6300 wrong host cryptogram (s->why),
 * 6982 wrong C-MAC or no INITIALIZE UPDATE before, 6A86 unsupported level, 6700 length.
 * On any failure the session is closed.
 */
uint16_t tse_scp_card_external_authenticate(struct tse_scp_session *s, const struct tse_apdu *a);

/**
 * Verify and strip command protection. `out` is the plain command (CLA with the SM bit
 * cleared, plain data in buf). Commands without the SM bit are accepted only below level
 * C-MAC... callers enforce their own level policy with s->level.
 * Returns 9000 or the status word to answer (6982 MAC/encryption failure: session closed;
 * 6700 length).
 */
uint16_t tse_scp_card_unwrap(struct tse_scp_session *s, const struct tse_apdu *in,
                             struct tse_apdu *out, uint8_t *buf, size_t cap);

/**
 * Add response protection (R-ENC, R-MAC per level) to response data in place (buf holds
 * *len data bytes, cap total); SW is the status word the card answers. Error SWs get no
 * protection in SCP03; SCP02 R-MAC covers them too.
 * @retval 0; TSE_ERR_BUFFER_TOO_SMALL
 */
int tse_scp_card_wrap_response(struct tse_scp_session *s, uint8_t *buf, size_t *len, size_t cap,
                               uint16_t sw);

/* ---- key diversification (host side, for real cards with diversified keys) -------------- */

enum tse_scp_div {
    TSE_DIV_NONE = 0,
    TSE_DIV_EMV,   /**< EMV CPS 1.1: KDD[4..9] ‖ F0 ‖ k ‖ KDD[4..9] ‖ 0F ‖ k, 3DES-ECB */
    TSE_DIV_VISA2, /**< KDD[0..1] ‖ KDD[4..7] ‖ F0 ‖ k ‖ … ‖ 0F ‖ k, 3DES-ECB */
    TSE_DIV_VISA,  /**< older VISA: KDD[0..3] ‖ KDD[8..9] ‖ F0 ‖ k ‖ … ‖ 0F ‖ k */
    TSE_DIV_KDF3, /**< GlobalPlatformPro's "KDF3": AES-CMAC(master, j ‖ 000000 ‖ k ‖ 00 ‖ KDD) */
};

/** Name of a scheme ("emv", "visa2", "visa", "kdf3", "none"). */
const char *tse_scp_div_name(enum tse_scp_div d);
/** Scheme by name; -1 if unknown. */
int tse_scp_div_from_name(const char *name);

/**
 * Diversify master keys into card keys: k->enc/mac/dek are read as the master keys and
 * replaced by the card keys for the given KDD (first 10 bytes of the INITIALIZE UPDATE
 * response). 3DES schemes need 16-byte keys; KDF3 takes AES keys of any length.
 */
int tse_scp_diversify(enum tse_scp_div d, const uint8_t kdd[10], struct tse_scp_keys *k);

/**
 * Host: diversify the session's static keys with scheme d as soon as the INITIALIZE UPDATE
 * response brings the KDD (call after tse_scp_host_begin(), before
 * tse_scp_host_iu_response()). When the card cryptogram does not match, that function tries
 * the other schemes on the given keys and names the one that would have matched in s->why.
 */
void tse_scp_host_set_diversification(struct tse_scp_session *s, enum tse_scp_div d);

/**
 * One level of PBOC-style key diversification: left = 3DES-ECB(key, d8),
 * right = 3DES-ECB(key, NOT d8); child = left ‖ right.
 */
int tse_pboc_diversify(const uint8_t key[16], const uint8_t d8[8], uint8_t child[16]);
/**
 * The standard's two-level diversification of SSD initial keys: master key → first factor
 * (issuer / region data) → SE-specific second factor (e.g. the SE identifier).
 */
int tse_pboc_diversify2(const uint8_t master[16], const uint8_t first[8], const uint8_t second[8],
                        uint8_t key[16]);

/** Close a session (forget every key and chaining value). */
void tse_scp_close(struct tse_scp_session *s);

/* ---- keys ---------------------------------------------------------------------------------- */

#define TSE_KEY_TYPE_DES 0x80
#define TSE_KEY_TYPE_AES 0x88

/**
 * Host: build a plain PUT KEY command that loads three keys (ENC, MAC, DEK; key identifiers
 * 1–3, P2 = 81) under new_kvn, replacing key set `replace_kvn` (0 = add a new key set). The
 * keys are encrypted as GP requires: 3DES-ECB with the session DEK in SCP02, AES-CBC with the
 * static DEK in SCP03 (the `88 11 10 …` form). Send the result through tse_scp_host_wrap().
 * @retval 0; TSE_ERR_STATE no open session; TSE_ERR_INVALID_ARG key type/length
 */
int tse_scp_host_put_key(struct tse_scp_session *s, uint8_t replace_kvn, uint8_t new_kvn,
                         uint8_t type, const uint8_t *const keys[3], size_t key_len, uint8_t *cmd,
                         size_t cap, size_t *len);

/**
 * Card: decrypt one key component block of PUT KEY (after its type and length bytes) with
 * this session's key encryption key. Both AES forms are accepted: a block whose length is a
 * multiple of 16 is pure ciphertext; otherwise its first byte is the clear key length.
 * @retval 0, *klen set; TSE_ERR_PARSE malformed block; TSE_ERR_STATE no session
 */
int tse_scp_card_decrypt_key(const struct tse_scp_session *s, uint8_t type, const uint8_t *block,
                             size_t blen, uint8_t *key, size_t *klen);

/**
 * Sensitive data under the data encryption key, as for key blocks (SCP02: 3DES-ECB with the
 * session DEK; SCP03: AES-CBC, zero IV, static DEK). `len` must be a multiple of the block size
 * (8 or 16). Card side decrypts (STORE DATA personalization), host side encrypts.
 * @retval 0; TSE_ERR_STATE no authenticated session; TSE_ERR_INVALID_ARG bad length
 */
int tse_scp_card_decrypt_data(const struct tse_scp_session *s, const uint8_t *in, size_t len,
                              uint8_t *out);
int tse_scp_host_encrypt_data(const struct tse_scp_session *s, const uint8_t *in, size_t len,
                              uint8_t *out);

/** Key check value: 3 bytes (3DES: first bytes of ECB(00..); AES: of ECB(01..)). */
int tse_scp_kcv(const uint8_t *key, size_t len, bool aes, uint8_t kcv[3]);

#ifdef __cplusplus
}
#endif

#endif
