/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file farm.h
 * @brief A card farm: one process hosting many emulated cards, reachable by card id.
 *
 * Load tests of a back end (a TSM, a clearing system, a gate fleet) need thousands of cards
 * and no hardware. A farm owns a directory of card images, `<dir>/<id>.img` with the id as
 * eight lower-case hex digits, and brings a card into memory when it is first addressed:
 * opened when its image exists, created when it does not. Cards are otherwise ordinary
 * struct tse_card objects with all their guarantees (every commit is in the image before the
 * command answers; a crash of the process loses nothing that was committed).
 *
 * Two resources are bounded, each by a least-recently-used policy:
 *  - file descriptors: only the `max_open_files` most recently used cards may keep their
 *    image open; an idle card holds none (tse_card_close_files()), so the farm fits the
 *    process's descriptor limit whatever the number of cards;
 *  - memory: with `max_resident` set, the least recently used card is evicted (freed; its
 *    image stays) when another must come in; tse_farm_evict_idle() evicts on demand.
 * Evicting a card is a clean removal from the field: its interfaces lose power (channels,
 * selections, secure channel sessions and transient memory go, as on a real card), its
 * persistent state is untouched and comes back at the next use.
 *
 * New cards: by default every new card is a byte copy of one template image created from
 * the profile when the farm starts (fast: a file write; every card has the profile's keys
 * and identity). With `profile_for` set, each new card is created from its own profile text
 * instead (tse_card_create(): slower, per-card identities such as the UID, CIN or a purse's
 * card number).
 *
 * Thread safety: every function may be called from any thread. The farm's own lock guards
 * its table; the exchange itself runs under the card's lock only, so different cards work
 * in parallel and calls on one card are serialised.
 */
#ifndef TSE_FARM_H
#define TSE_FARM_H

#include <stddef.h>
#include <stdint.h>

#include "tse/card.h"
#include "tse/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest number of card ids a farm can address. */
#define TSE_FARM_MAX_CARDS (1u << 24)

struct tse_farm;

/**
 * Per-card profile text for a card about to be created: write at most `cap` bytes into buf
 * and return the length, or a negative enum tse_err to refuse (the creation fails with it).
 */
typedef int (*tse_farm_profile_fn)(void *user, uint32_t id, char *buf, size_t cap);

/** Farm options; start from tse_farm_options_init(). */
struct tse_farm_options {
    const char *dir;          /**< image directory (required; created when missing) */
    const char *profile_text; /**< profile of new cards; NULL: the built-in default profile */
    size_t profile_len;
    tse_farm_profile_fn profile_for; /**< per-card profiles (see above); NULL: template copies */
    void *user;                      /**< passed to profile_for */
    uint32_t max_cards;              /**< ids 0 … max_cards-1 (default 100,000) */
    size_t max_resident;             /**< cards kept in memory; 0: no limit (default) */
    size_t max_open_files;           /**< cards that may keep a descriptor (default 64, >= 1) */
    int fsync; /**< as struct tse_card_options: -1 the profile's choice (default), 0, 1 */
};

/** Defaults: no directory, default profile, 100,000 ids, no memory limit, 64 descriptors. */
void tse_farm_options_init(struct tse_farm_options *o);

/**
 * Start a farm. Existing images in the directory are used as they are (a farm can be
 * stopped and started again); none is opened yet.
 * @retval 0 success, *farm set
 * @retval TSE_ERR_INVALID_ARG NULL farm/options/dir, max_cards 0 or above TSE_FARM_MAX_CARDS,
 *         max_open_files 0
 * @retval TSE_ERR_IO the directory cannot be created or written (err says why)
 * @retval TSE_ERR_PROFILE the profile is invalid (err says where)
 * @retval TSE_ERR_NO_MEMORY
 */
int tse_farm_init(struct tse_farm **farm, const struct tse_farm_options *o, char *err,
                  size_t errlen);

/** Free every card (images stay on disk) and the farm. Cards must not be in use (acquired). */
void tse_farm_free(struct tse_farm *farm);

/**
 * Make sure card `id` has an image (create it when missing); the card is not brought into
 * memory. For preparing a population before a test.
 * @retval 0 the image exists
 * @retval TSE_ERR_INVALID_ARG id out of range
 * @retval TSE_ERR_IO, TSE_ERR_PROFILE, TSE_ERR_NO_SPACE creation failed
 */
int tse_farm_create(struct tse_farm *farm, uint32_t id);

/**
 * Bring card `id` into memory (creating its image when missing), as any use does.
 * @retval 0 resident
 * @retval TSE_ERR_INVALID_ARG id out of range
 * @retval TSE_ERR_STATE max_resident cards are resident and all of them are in use
 * @retval other what tse_card_open() or tse_card_create() returned
 */
int tse_farm_open(struct tse_farm *farm, uint32_t id);

/**
 * Borrow card `id` for direct use with the tse_card_* functions (secure channel sessions, a
 * wallet terminal…); while borrowed it is never evicted and keeps its descriptor. Each
 * successful call must be paired with tse_farm_release().
 * @retval 0 *card set
 * @retval errors as tse_farm_open()
 */
int tse_farm_acquire(struct tse_farm *farm, uint32_t id, struct tse_card **card);

/** Give back a card borrowed with tse_farm_acquire(). */
void tse_farm_release(struct tse_farm *farm, uint32_t id);

/**
 * Power on an interface of card `id` (see tse_card_power_on(); out may be NULL).
 * @retval errors as tse_farm_open() and tse_card_power_on()
 */
int tse_farm_power_on(struct tse_farm *farm, uint32_t id, enum tse_iface iface, uint8_t *out,
                      size_t cap, size_t *out_len);

/** Power off an interface of card `id` (a card not in memory is off already: 0). */
int tse_farm_power_off(struct tse_farm *farm, uint32_t id, enum tse_iface iface);

/**
 * Exchange one C-APDU with card `id` (see tse_card_transmit(); an evicted or never used
 * card is powered off, so power it on first).
 * @retval errors as tse_farm_open() and tse_card_transmit()
 */
int tse_farm_transmit(struct tse_farm *farm, uint32_t id, enum tse_iface iface,
                      const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t rcap, size_t *rlen);

/**
 * Evict card `id` from memory (its image stays; see above for what it loses).
 * @retval 0 evicted, or it was not in memory
 * @retval TSE_ERR_STATE the card is in use (acquired or inside an exchange)
 * @retval TSE_ERR_INVALID_ARG id out of range
 */
int tse_farm_evict(struct tse_farm *farm, uint32_t id);

/** Evict every card not used for at least `idle_ms` milliseconds and not in use (0: every
 *  such card). Returns the number of cards evicted. */
size_t tse_farm_evict_idle(struct tse_farm *farm, unsigned long idle_ms);

/** Farm statistics. */
struct tse_farm_stats {
    uint32_t max_cards;
    size_t resident;       /**< cards in memory */
    size_t in_use;         /**< of which acquired or inside an exchange */
    size_t open_files;     /**< cards that may hold an image descriptor now */
    unsigned long created; /**< images created since init */
    unsigned long opened;  /**< cards brought into memory since init */
    unsigned long evicted; /**< cards evicted since init */
};
int tse_farm_stats(struct tse_farm *farm, struct tse_farm_stats *st);

#ifdef __cplusplus
}
#endif

#endif
