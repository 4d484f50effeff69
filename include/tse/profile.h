/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file profile.h
 * @brief Card profiles: the text file a card image is created from (docs/profile.md).
 *
 * A profile is read once, at card creation; its text is stored inside the card image so an
 * image carries everything needed to power it up again.
 */
#ifndef TSE_PROFILE_H
#define TSE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "tse/apdu.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSE_MAX_KEYSETS   8
#define TSE_MAX_INSTANCES 16
#define TSE_MAX_COUNTERS  8
#define TSE_ATR_MAX       33
#define TSE_ATS_MAX       20
#define TSE_UID_MAX       10

enum tse_life_cycle {
    TSE_LC_OP_READY = 0x01,
    TSE_LC_INITIALIZED = 0x07,
    TSE_LC_SECURED = 0x0F,
    TSE_LC_CARD_LOCKED = 0x7F,
    TSE_LC_TERMINATED = 0xFF,
};

enum tse_key_type { TSE_KEY_DES3 = 1, TSE_KEY_AES = 2 };

/** One secure-channel key set (used by the secure channel and card manager modules). */
struct tse_keyset {
    uint8_t kvn; /**< key version number */
    uint8_t scp; /**< 0x02 or 0x03 */
    uint8_t i;   /**< SCP implementation option */
    enum tse_key_type type;
    uint8_t key_len;      /**< 16 for 2-key 3DES; 16, 24 or 32 for AES */
    uint8_t max_failures; /**< failed authentications before the key set is blocked; 0 = no limit */
    uint8_t enc[32], mac[32], dek[32];
};

/** Contactless activation of an instance at card creation (profile key `contactless`). */
enum tse_cl_config {
    TSE_CL_ACTIVATED = 0,   /**< reachable on the contactless interface (the default) */
    TSE_CL_DEACTIVATED = 1, /**< not reachable until the contactless registry activates it */
    TSE_CL_OFF = 2,         /**< never on the contactless interface (NON_ACTIVATABLE) */
};

/** Longest PPSE label a registry entry keeps (the record has 16 bytes of contactless data). */
#define TSE_CL_LABEL_MAX 12

/** A native applet instance created with the card (a "ROM" application). */
struct tse_profile_instance {
    char name[32];
    struct tse_aid package, module, instance;
    uint8_t params[128];
    size_t params_len;
    uint8_t default_on;        /**< bit 0: default on contact; bit 1: may be implicitly selected on
                                    contactless (the contactless registry picks the first) */
    uint32_t persistent_quota; /**< 0 = limited only by the card */
    uint32_t transient_quota;
    /* Contactless registry (docs/contactless-registry.md) */
    uint8_t contactless;                          /**< enum tse_cl_config */
    char contactless_label[TSE_CL_LABEL_MAX + 1]; /**< PPSE label (tag 50); "" = none */
    uint8_t contactless_priority;        /**< PPSE priority indicator (tag 87) 1..15; 0 = none */
    struct tse_aid contactless_ppse_aid; /**< AID the PPSE shows (a prefix of the instance AID);
                                              empty = the instance AID */
};

/** A named card counter (e.g. the SCP02/SCP03 sequence counters). */
struct tse_profile_counter {
    char name[24];
    uint64_t value;
    uint64_t max;
};

struct tse_profile {
    char name[64];
    enum tse_life_cycle life_cycle;
    uint32_t persistent_memory; /**< bytes of persistent store (objects + overhead) */
    uint32_t transient_memory;  /**< bytes of RAM per interface */
    uint32_t commit_buffer;     /**< bytes of transaction undo data */
    uint8_t logical_channels;   /**< 1..20, basic channel included */
    int fsync;                  /**< 1: fsync at every commit (power-loss safe) */
    /** Native packages present "in ROM" from creation (rom_packages); the others must be
     *  loaded (INSTALL [for load] + LOAD of their CAP file) before they have instances. */
    int rom_all;
    struct tse_aid rom[16];
    size_t n_rom;

    uint8_t atr[TSE_ATR_MAX];
    size_t atr_len;
    uint8_t uid[TSE_UID_MAX];
    size_t uid_len;
    uint8_t atqa[2];
    uint8_t sak;
    uint8_t ats[TSE_ATS_MAX]; /**< including TL */
    size_t ats_len;
    int cl_registry; /**< 1: the card has the contactless registry service and the PPSE */

    struct tse_aid isd_aid;
    /** Secure channel level (TSE_SL_* bits) card content management commands require:
     *  INSTALL, LOAD, DELETE, PUT KEY, SET STATUS, STORE DATA. Default 01 (C-MAC). */
    uint8_t management_level;
    /** Delegated management: the token verification key (RSA public, KVN 70 KID 01 in GP
     *  terms) and the receipt key (KVN 71), `[isd] token_key` / `receipt_key`. Empty: no
     *  token is accepted / no receipt is produced. */
    uint8_t token_n[512];
    size_t token_n_len;
    uint8_t token_e[8];
    size_t token_e_len;
    /** DAP verification key (RSA public, `[isd] dap_key`): checks the E2 blocks of loads into
     *  security domains with DAP Verification or Mandated DAP. Empty: such loads fail. */
    uint8_t dap_n[512];
    size_t dap_n_len;
    uint8_t dap_e[8];
    size_t dap_e_len;
    uint8_t receipt_key[32];
    size_t receipt_key_len;
    int receipt_aes; /**< 1: AES-CMAC receipts; 0: 3DES retail MAC */
    struct tse_keyset keysets[TSE_MAX_KEYSETS];
    size_t n_keysets;
    uint8_t cplc[42];
    uint8_t iin[16];
    size_t iin_len;
    uint8_t cin[16];
    size_t cin_len;

    struct tse_profile_counter counters[TSE_MAX_COUNTERS];
    size_t n_counters;

    int deterministic; /**< 1: RNG seeded from `seed`, clock fixed at `clock` */
    uint8_t seed[32];
    size_t seed_len;
    int64_t clock; /**< Unix time shown by the card clock in deterministic mode */

    struct tse_profile_instance instances[TSE_MAX_INSTANCES];
    size_t n_instances;
};

/** The built-in default profile as text (docs/profile.md shows it). */
const char *tse_profile_default_text(void);

/**
 * Parse profile text.
 * @param name used in error messages (a file name)
 * @param err  receives "name:line: message" on failure (may be NULL)
 * @retval 0 success
 * @retval TSE_ERR_PROFILE unknown section/key, bad value, missing required value; *err says which
 * @retval TSE_ERR_INVALID_ARG NULL profile or text
 */
int tse_profile_parse(struct tse_profile *p, const char *text, size_t len, const char *name,
                      char *err, size_t errlen);

/**
 * Read and parse a profile file (NULL path: the default profile).
 * @retval TSE_ERR_IO the file cannot be read (err says why)
 * other values as tse_profile_parse()
 */
int tse_profile_load(struct tse_profile *p, const char *path, char *err, size_t errlen);

/** Name of a life cycle state ("SECURED"…), or "?" */
const char *tse_life_cycle_name(enum tse_life_cycle lc);

#ifdef __cplusplus
}
#endif

#endif
