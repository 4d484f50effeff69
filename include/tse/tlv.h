/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file tlv.h
 * @brief The one BER-TLV module of tse (ISO/IEC 8825-1 subset used by ISO 7816 and
 *        GlobalPlatform): tags of 1–3 bytes, definite lengths up to 3 bytes (82 xx xx).
 */
#ifndef TSE_TLV_H
#define TSE_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One decoded data object. tag holds the tag bytes big-endian (e.g. 0x9F7F). */
struct tse_tlv {
    uint32_t tag;
    const uint8_t *value;
    size_t len;
    bool constructed;
};

/**
 * Decode the next data object at *p (at most *left bytes) and advance past it. Leading 00 and
 * FF padding bytes between objects are skipped, as ISO 7816-4 allows.
 * @retval 1 one object decoded into *t
 * @retval 0 no more objects (only padding left)
 * @retval TSE_ERR_PARSE malformed tag or length, or the value runs past the end
 */
int tse_tlv_next(const uint8_t **p, size_t *left, struct tse_tlv *t);

/** Find the first object with `tag` at the top level of buf. 1 found, 0 absent, <0 malformed. */
int tse_tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tse_tlv *t);

/**
 * Data Grouping Identifiers (EMV CPS / GlobalPlatform STORE DATA): a 2-byte DGI, a length of
 * one byte or FF followed by two bytes, and the value. Decode the next DGI at *p and advance.
 * @retval 1 one DGI decoded (tag = the DGI, constructed = false)
 * @retval 0 nothing left
 * @retval TSE_ERR_PARSE truncated header or the value runs past the end
 */
int tse_dgi_next(const uint8_t **p, size_t *left, struct tse_tlv *t);

/** Writer for nested objects: begin/end around constructed ones. */
struct tse_tlv_writer {
    uint8_t *buf;
    size_t cap, len;
    size_t open[8]; /* offsets of the length fields of open constructed objects */
    int depth;
    int err; /* first error (TSE_ERR_BUFFER_TOO_SMALL / TSE_ERR_INVALID_ARG), sticky */
};

void tse_tlv_writer_init(struct tse_tlv_writer *w, uint8_t *buf, size_t cap);
/** Append a primitive object. */
void tse_tlv_put(struct tse_tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len);
/** Append a one-byte value. */
void tse_tlv_put_u8(struct tse_tlv_writer *w, uint32_t tag, uint8_t v);
/** Open a constructed object; its length is filled in by tse_tlv_end(). */
void tse_tlv_begin(struct tse_tlv_writer *w, uint32_t tag);
void tse_tlv_end(struct tse_tlv_writer *w);
/** Append raw bytes (an already encoded object). */
void tse_tlv_raw(struct tse_tlv_writer *w, const uint8_t *b, size_t len);
/** Bytes written, or the sticky error (negative) if anything failed. */
int tse_tlv_finish(const struct tse_tlv_writer *w);

#ifdef __cplusplus
}
#endif

#endif
