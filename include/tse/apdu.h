/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file apdu.h
 * @brief The one ISO/IEC 7816-4 command APDU codec of tse, and AID helpers.
 *
 * The card core parses every C-APDU with tse_apdu_parse(); applets receive the parsed
 * struct tse_apdu and never look at raw bytes. Host-side code (the shell, tests, later the
 * terminals and TSM) builds C-APDUs with tse_apdu_encode().
 */
#ifndef TSE_APDU_H
#define TSE_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSE_AID_MIN 5  /**< ISO 7816-5: RID (5 bytes) */
#define TSE_AID_MAX 16 /**< RID + PIX of up to 11 bytes */

/** An application identifier. len == 0 means "no AID". */
struct tse_aid {
    uint8_t len;
    uint8_t b[TSE_AID_MAX];
};

/** Longest command data field the codec accepts (extended Lc). */
#define TSE_APDU_MAX_DATA 65535u
/** Largest Ne: extended Le = 0000. */
#define TSE_APDU_MAX_NE 65536u
/** Largest R-APDU a card can produce: Ne data bytes plus SW1 SW2. */
#define TSE_RAPDU_MAX (TSE_APDU_MAX_NE + 2u)

/** A parsed command APDU. `data` points into the caller's buffer (no copy). */
struct tse_apdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /**< command data (NULL when lc == 0) */
    size_t lc;           /**< Nc: length of the command data */
    size_t ne;           /**< Ne: 0 when Le is absent, else 1..256 (short) or 1..65536 (extended) */
    bool has_le;         /**< an Le field was present */
    bool extended;       /**< extended length encoding was used */
    uint8_t iso_case;    /**< 1, 2, 3 or 4 */
};

/**
 * Parse a C-APDU (ISO 7816-4 §5.1: cases 1, 2S, 3S, 4S, 2E, 3E, 4E).
 *
 * @retval 0 (SW_NO_ERROR is not used here) success, *out filled
 * @retval SW_WRONG_LENGTH (0x6700) the length fields do not match the buffer: fewer than
 *         4 bytes, Lc = 0 in short form, inconsistent extended fields, trailing bytes
 * Never reads past buf[len - 1]. Returns a status word, not a tse_err, because the only
 * sensible reaction of a card to malformed input is that status word.
 */
uint16_t tse_apdu_parse(const uint8_t *buf, size_t len, struct tse_apdu *out);

/**
 * Encode a C-APDU. Short form is used when lc <= 255 and ne <= 256, extended otherwise
 * (or always when `apdu->extended` is set).
 * @retval >0 number of bytes written
 * @retval TSE_ERR_INVALID_ARG lc > 65535 or ne > 65536
 * @retval TSE_ERR_BUFFER_TOO_SMALL cap too small
 */
int tse_apdu_encode(const struct tse_apdu *apdu, uint8_t *out, size_t cap);

/** Logical-channel view of a CLA byte (ISO 7816-4 §5.4.1). */
struct tse_cla_info {
    bool valid;       /**< false for CLA FF and the RFU ranges 20..3F, A0..BF */
    bool proprietary; /**< b8 set (e.g. GlobalPlatform 80/84) */
    bool chaining;    /**< b5: command chaining, not the last command of the chain */
    bool sm;          /**< secure messaging indicated */
    uint8_t channel;  /**< 0..19 */
};

/** Decode the channel, chaining and SM bits of a CLA byte. */
struct tse_cla_info tse_cla_decode(uint8_t cla);

/** Replace the channel number in a CLA (first or further class as needed); -1 if impossible. */
int tse_cla_with_channel(uint8_t cla, uint8_t channel);

/** Set an AID from bytes; TSE_ERR_INVALID_ARG if len > 16. (len 0..4 is allowed as "partial".) */
int tse_aid_set(struct tse_aid *aid, const uint8_t *b, size_t len);
/** true when both AIDs are equal. */
bool tse_aid_equal(const struct tse_aid *a, const struct tse_aid *b);
/** true when `aid` starts with the `len` bytes of `prefix`. */
bool tse_aid_has_prefix(const struct tse_aid *aid, const uint8_t *prefix, size_t len);

/* Hex helpers, used by the profile reader, the shell and the tests. */

/** Value of one ASCII hex digit (0..15), or -1 for any other character. */
int tse_hex_digit(int c);

/**
 * Decode hex digits, ignoring spaces and tabs.
 * @retval >=0 number of bytes written
 * @retval TSE_ERR_PARSE a non-hex character or an odd number of digits
 * @retval TSE_ERR_BUFFER_TOO_SMALL more than cap bytes
 */
int tse_hex_decode(const char *hex, uint8_t *out, size_t cap);
/** Encode len bytes as upper-case hex into out (needs 2*len+1 bytes, always terminated). */
void tse_hex_encode(const uint8_t *b, size_t len, char *out);

#ifdef __cplusplus
}
#endif

#endif
