/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file pn532sim.h
 * @brief Simulated PN532 chips on pseudo-terminals, for libnfc's stock `pn532_uart` driver
 * (connstring `pn532_uart:/dev/pts/N`), in three set-ups:
 *
 *  - TSE_SIM_CARD: one chip, a reader whose field holds an in-process emulated card (the
 *    card's contactless interface, with the profile's UID, ATQA, SAK and ATS). libnfc
 *    initiators (nfc-list, tse-tap) open the pty.
 *  - TSE_SIM_READER: one chip in target mode; a libnfc card emulator (tse-card --nfc) opens
 *    the pty and the simulator plays the reader (tse_pn532sim_reader_*(), e.g. driven by an
 *    apdu-shell script in tools/tse-pn532sim).
 *  - TSE_SIM_BRIDGE: two chips. Pty 0 is a reader for libnfc initiators, pty 1 a target for a
 *    libnfc card emulator; activation and APDUs pass between them "over the air".
 *
 * One thread runs the event loop (tse_pn532sim_run()); the reader and stop functions may be
 * called from others. docs/contactless.md is the user guide.
 */
#ifndef TSE_PN532SIM_H
#define TSE_PN532SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tse/card.h"
#include "tse/pn532.h"

#ifdef __cplusplus
extern "C" {
#endif

enum tse_pn532sim_mode {
    TSE_SIM_CARD = 0,
    TSE_SIM_READER,
    TSE_SIM_BRIDGE,
};

struct tse_pn532sim_options {
    enum tse_pn532sim_mode mode;
    /** Symlink names to create for pty 0 and pty 1 (NULL: none). An existing symlink is
     * replaced; any other existing file is an error. They are removed by _free(). */
    const char *link[2];
    struct tse_card *card;       /**< TSE_SIM_CARD: the card in the field (required) */
    double pace;                 /**< 0: answer at once; s: wait s x the modelled air time */
    FILE *log;                   /**< JSON lines per command and per APDU; NULL: none */
    FILE *msg;                   /**< human-readable messages and --trace lines; NULL: stderr */
    bool trace;                  /**< one line per APDU (with model and card times) on msg */
    volatile sig_atomic_t *stop; /**< checked at least every 250 ms */
};

struct tse_pn532sim;

/**
 * Open the ptys (raw mode, the simulator keeps a slave fd open so clients can come and
 * go), create the symlinks and the chips.
 * @retval 0 and *sim
 * @retval TSE_ERR_INVALID_ARG bad options (card mode without a card)
 * @retval TSE_ERR_IO a pty or symlink could not be made (err says why)
 * @retval TSE_ERR_NO_MEMORY
 */
int tse_pn532sim_new(struct tse_pn532sim **sim, const struct tse_pn532sim_options *opt, char *err,
                     size_t errlen);

/** Path of pty i (0 or 1), e.g. "/dev/pts/5"; NULL when there is no such pty. */
const char *tse_pn532sim_pty(const struct tse_pn532sim *sim, int i);

/**
 * Run the event loop until *opt->stop is set or tse_pn532sim_stop() is called.
 * @retval 0 stopped; TSE_ERR_IO poll() failed
 */
int tse_pn532sim_run(struct tse_pn532sim *sim);

/** Ask the loop to return (any thread). */
void tse_pn532sim_stop(struct tse_pn532sim *sim);

/** Remove the symlinks, close the ptys, free. The card (if any) is not freed. */
void tse_pn532sim_free(struct tse_pn532sim *sim);

/* ---- TSE_SIM_READER: the simulated reader, called from a thread other than the loop ---- */

/**
 * Wait until the emulator on the pty is waiting as a target (TgInitAsTarget), then activate
 * it (RATS with FSD 256) and give what the reader sees.
 * @retval 0 success
 * @retval TSE_ERR_STATE timeout_ms passed without a target (no emulator attached?)
 * @retval TSE_ERR_INVALID_ARG not in reader mode
 */
int tse_pn532sim_reader_activate(struct tse_pn532sim *sim, struct tse_pn532_card_info *as,
                                 int timeout_ms);

/**
 * Send a C-APDU (at most TSE_PN532_MAX_CAPDU bytes) to the activated emulator and wait for
 * its R-APDU (TgSetData).
 * @retval 0 success
 * @retval TSE_ERR_STATE no activated target, or it left target mode before answering
 * @retval TSE_ERR_IO no answer within timeout_ms
 * @retval TSE_ERR_BUFFER_TOO_SMALL the answer does not fit rcap
 * @retval TSE_ERR_INVALID_ARG bad arguments or too long
 */
int tse_pn532sim_reader_transmit(struct tse_pn532sim *sim, const uint8_t *c, size_t clen,
                                 uint8_t *r, size_t rcap, size_t *rlen, int timeout_ms);

/** Deselect the emulator (it gets NFC_ETGRELEASED) and wait (up to 2 s) until it has reacted
 * with its next command. 0, or TSE_ERR_INVALID_ARG. */
int tse_pn532sim_reader_release(struct tse_pn532sim *sim);

#ifdef __cplusplus
}
#endif

#endif
