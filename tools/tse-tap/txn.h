/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-tap transactions. A transaction runs on a card that tse-tap has just activated; every
 * exchange it makes through tse_tap_transmit() is timed and recorded, and reader-side work
 * (e.g. a PSAM computing a MAC) is noted with tse_tap_note_host() so it is shown beside the
 * card's time, never inside it. To add one (e.g. the purse gate transaction): write
 * tools/tse-tap/txn_NAME.c defining `const struct tap_txn tap_txn_NAME`, declare it below,
 * list it in txns[] in main.c and add the file to tse-tap in CMakeLists.txt.
 */
#ifndef TSE_TAP_TXN_H
#define TSE_TAP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tse/nfc.h"

/* What the command line gave the transaction. */
struct tap_args {
    const char *const *apdus; /* --apdu values, in order: "HEX" or "HEX=>PATTERN" */
    size_t n_apdus;
    const char *script;        /* -f SCRIPT (apdu-shell syntax), or NULL */
    const char *const *params; /* --param KEY=VALUE, in order, for the transaction */
    size_t n_params;
    unsigned tap_index; /* 0 for the first tap of a --repeat series */
    FILE *out;          /* transcript */
    bool quiet;         /* no transcript lines */
};

/* Value of --param KEY=VALUE (the last one wins), or NULL. */
const char *tap_param(const struct tap_args *a, const char *key);

struct tap_txn {
    const char *name;
    const char *summary;
    /* Run on the activated card. Return 0 on success, 1 on a failure (say why on a->out or
     * stderr). The card stays activated; tse-tap releases it afterwards. */
    int (*run)(struct tse_tap *tap, const struct tap_args *a);
};

extern const struct tap_txn tap_txn_apdu;
extern const struct tap_txn tap_txn_script;
extern const struct tap_txn tap_txn_purse;

#endif
