/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file error.h
 * @brief Library error codes shared by every tse module and transport.
 *
 * Functions return 0 (TSE_OK) on success and a negative `enum tse_err` value on failure.
 * ISO 7816 status words are never mixed into this space: a card that answers with an error
 * status word has still *succeeded* at the library level (see tse/sw.h).
 */
#ifndef TSE_ERROR_H
#define TSE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum tse_err {
    TSE_OK = 0,
    TSE_ERR_INVALID_ARG = -1,      /**< a NULL pointer, an out-of-range value or a bad length */
    TSE_ERR_NO_MEMORY = -2,        /**< host allocation failed */
    TSE_ERR_IO = -3,               /**< reading or writing the card image failed (see errno) */
    TSE_ERR_CORRUPT = -4,          /**< the card image fails its checksums or is truncated */
    TSE_ERR_VERSION = -5,          /**< the card image was written by an unknown format version */
    TSE_ERR_PROFILE = -6,          /**< the card profile has an unknown key or a bad value */
    TSE_ERR_POWERED_OFF = -7,      /**< the interface is not powered */
    TSE_ERR_TORN = -8,             /**< an injected power cut interrupted a store write */
    TSE_ERR_BUFFER_TOO_SMALL = -9, /**< the caller's output buffer cannot hold the result */
    TSE_ERR_NOT_FOUND = -10,       /**< no such object, instance, package or counter */
    TSE_ERR_EXISTS = -11,          /**< the object or instance already exists */
    TSE_ERR_NO_SPACE = -12,        /**< persistent/transient capacity or a memory quota exceeded */
    TSE_ERR_TXN_NESTED = -13,      /**< a transaction is already open (nesting is refused) */
    TSE_ERR_TXN_NONE = -14,        /**< commit or abort without an open transaction */
    TSE_ERR_TXN_FULL = -15,        /**< the transaction's commit buffer is full */
    TSE_ERR_STATE = -16,           /**< the operation is not allowed in the current state */
    TSE_ERR_PARSE = -17,           /**< malformed input (hex, script, TLV, ATR…) */
    TSE_ERR_DENIED = -18,          /**< refused by the owner of the resource (e.g. a service) */
};

/** Human-readable, static description of a tse error code (never NULL). */
const char *tse_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
