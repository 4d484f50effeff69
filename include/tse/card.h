/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file card.h
 * @brief The emulated card: image, power, interfaces and APDU exchange.
 *
 * A struct tse_card owns one card image (a file, docs/architecture.md describes its format)
 * and two independent interfaces, contact and contactless. Each interface has its own power
 * state, logical channels, selected applications and transient memory, so traffic on one
 * never disturbs a session on the other. Every function here may be called from several
 * threads; calls on one card are serialised by a lock inside the card.
 */
#ifndef TSE_CARD_H
#define TSE_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/apdu.h"
#include "tse/error.h"
#include "tse/profile.h"

#ifdef __cplusplus
extern "C" {
#endif

enum tse_iface {
    TSE_IF_CONTACT = 0,     /**< ISO 7816-3 (ATR), the phone's side */
    TSE_IF_CONTACTLESS = 1, /**< ISO 14443-4 (UID/ATQA/SAK/ATS), the reader's side */
};
#define TSE_IF_COUNT 2

/** Maximum number of logical channels per interface (ISO 7816-4: 0..19). */
#define TSE_MAX_CHANNELS 20

struct tse_card;

/** Options for creating or opening a card image. All fields may be left zero. */
struct tse_card_options {
    /** -1: as the profile says (default off); 0: process-crash safe; 1: fsync at commit. */
    int fsync;
};

/** Contactless activation parameters (ISO 14443-3/-4, type A). */
struct tse_cl_params {
    uint8_t uid[10];
    size_t uid_len;
    uint8_t atqa[2];
    uint8_t sak;
    uint8_t ats[20];
    size_t ats_len;
};

/**
 * Create a new card image at `path` from profile text (NULL text: the default profile).
 * Native applet instances listed in the profile are installed.
 * @retval 0 success, *card is the new card, all interfaces powered off
 * @retval TSE_ERR_PROFILE the profile is invalid (err says where)
 * @retval TSE_ERR_EXISTS `path` already exists (it is never overwritten)
 * @retval TSE_ERR_IO the image cannot be written
 * @retval TSE_ERR_NO_SPACE the profile's instances do not fit in its persistent memory
 */
int tse_card_create(struct tse_card **card, const char *path, const char *profile_text,
                    size_t profile_len, const char *profile_name,
                    const struct tse_card_options *opt, char *err, size_t errlen);

/**
 * What the tools do with `--card IMG [--profile FILE]`: open the image if `path` exists, else
 * create it from the profile file `profile_path` (NULL: the built-in default profile).
 * *created (may be NULL) says which happened.
 * @retval 0 success
 * @retval TSE_ERR_IO the profile file cannot be read, or `path` cannot be examined (err says
 *         which file and why)
 * other values as tse_card_open() / tse_card_create()
 */
int tse_card_open_or_create(struct tse_card **card, const char *path, const char *profile_path,
                            const struct tse_card_options *opt, bool *created, char *err,
                            size_t errlen);

/**
 * Open an existing card image. A record torn by a crash or power cut at the end of the
 * journal is discarded (that is the state before the interrupted write or transaction).
 * @retval 0 success
 * @retval TSE_ERR_IO cannot open or read `path`
 * @retval TSE_ERR_CORRUPT bad magic, bad checksum before the end, truncated snapshot
 * @retval TSE_ERR_VERSION an image format this build does not know
 * Never modifies or resets a corrupt image.
 */
int tse_card_open(struct tse_card **card, const char *path, const struct tse_card_options *opt,
                  char *err, size_t errlen);

/** Close the image (flushing nothing: every commit is already in the image) and free. */
void tse_card_free(struct tse_card *card);

/** The profile the card was created with. */
const struct tse_profile *tse_card_profile(const struct tse_card *card);

/**
 * Power on (cold reset) an interface. Contact: writes the ATR into out. Contactless: writes
 * the ATS (including TL) into out; tse_card_cl_params() gives UID/ATQA/SAK. Powering an
 * interface that is already on is a warm reset.
 * @retval 0 success, *out_len set
 * @retval TSE_ERR_BUFFER_TOO_SMALL out too small for the ATR/ATS
 * @retval TSE_ERR_CORRUPT after a power cut, the image could not be recovered
 */
int tse_card_power_on(struct tse_card *card, enum tse_iface iface, uint8_t *out, size_t cap,
                      size_t *out_len);

/** Warm reset: ends the interface's session like power_on, the interface stays powered.
 * @retval TSE_ERR_POWERED_OFF the interface was off */
int tse_card_reset(struct tse_card *card, enum tse_iface iface, uint8_t *out, size_t cap,
                   size_t *out_len);

/** Power off an interface: its channels, selections, secure sessions and transient memory
 * are lost; persistent state is untouched. Always succeeds (0). */
int tse_card_power_off(struct tse_card *card, enum tse_iface iface);

/** true when the interface is powered. */
bool tse_card_is_powered(struct tse_card *card, enum tse_iface iface);

/** Contactless activation data (valid whether or not the field is on). */
int tse_card_cl_params(struct tse_card *card, struct tse_cl_params *p);

/**
 * Exchange one C-APDU. Any byte string is accepted: malformed commands are answered with
 * the ISO status word (6700, 6E00, 6D00, 6881…), never a crash.
 * @param rapdu receives response data and SW1 SW2; TSE_RAPDU_MAX bytes always suffice
 * @retval 0 success, *rlen >= 2
 * @retval TSE_ERR_POWERED_OFF the interface is off
 * @retval TSE_ERR_TORN an armed power cut fired during this command: no response, every
 *         interface is now off, the next power on recovers the image
 * @retval TSE_ERR_BUFFER_TOO_SMALL rcap < 2 or too small for the response (the command has
 *         been executed; the response is lost)
 * @retval TSE_ERR_INVALID_ARG NULL pointers or a bad interface
 * @retval TSE_ERR_NO_MEMORY the response buffer (allocated at the first command after the
 *         card was powered) could not be allocated; the command was not executed
 * @retval TSE_ERR_IO a store write could not reopen the image (after
 *         tse_card_close_files()); the applet saw the failure as for any write error
 */
int tse_card_transmit(struct tse_card *card, enum tse_iface iface, const uint8_t *capdu,
                      size_t clen, uint8_t *rapdu, size_t rcap, size_t *rlen);

/**
 * Close the card image's file descriptor. The card stays fully usable: the next persistent
 * write opens the image again by the path it was opened with (so the image must not be
 * renamed meanwhile). Nothing is flushed or lost: every committed write is already in the
 * image. For processes that keep many idle cards in memory (struct tse_farm, include/tse/farm.h
 * does this for its cards), so that an idle card holds no descriptor.
 * @retval 0 success (also when no descriptor was open)
 * @retval TSE_ERR_INVALID_ARG card is NULL
 */
int tse_card_close_files(struct tse_card *card);

/* ---- Test and replay controls ---------------------------------------------------------- */

/**
 * Arm a power cut at the n-th persistent-store write from now (n >= 1); n == 0 disarms.
 * When it fires the write is left half-done in the image, as a real power loss would.
 */
int tse_card_tear_at(struct tse_card *card, unsigned long n);

/** Number of persistent-store writes done since the card was opened. */
unsigned long tse_card_store_writes(struct tse_card *card);

/** Queue exact bytes to be returned by the card's RNG before it draws from its DRBG. */
int tse_card_queue_random(struct tse_card *card, const uint8_t *b, size_t len);

/**
 * Set a named persistent card counter (profile section [counters]).
 * @retval TSE_ERR_NOT_FOUND no such counter
 * @retval TSE_ERR_INVALID_ARG value above the counter's maximum
 */
int tse_card_set_counter(struct tse_card *card, const char *name, uint64_t value);
/** Read a named counter. @retval TSE_ERR_NOT_FOUND no such counter */
int tse_card_get_counter(struct tse_card *card, const char *name, uint64_t *value);

/** SHA-256 digest of the whole committed persistent state (for tests and `card diff`). */
int tse_card_state_digest(struct tse_card *card, uint8_t digest[32]);

/** Store statistics. */
struct tse_card_stats {
    unsigned long writes;      /**< store writes (journal records) since open */
    unsigned long commits;     /**< committed transactions since open */
    unsigned long aborts;      /**< aborted transactions since open */
    unsigned long compactions; /**< image rewrites since open */
    size_t persistent_used;    /**< bytes of the persistent capacity in use */
    size_t persistent_capacity;
    size_t image_bytes; /**< current size of the image file */
};
int tse_card_stats(struct tse_card *card, struct tse_card_stats *st);

#ifdef __cplusplus
}
#endif

#endif
