/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file vpcd.h
 * @brief The card side of vsmartcard's vpcd protocol: a struct tse_card served to pcscd.
 *
 * vpcd (the pcscd reader driver of vsmartcard) listens on TCP 35963 (reader "Virtual PCD 00
 * 00") and 35964 ("Virtual PCD 00 01"); the card connects to it. Every message is a 2-byte
 * big-endian length and that many bytes. One-byte messages from vpcd are power off (00),
 * power on (01), reset (02) and get ATR (04, the only one answered); anything else is a
 * C-APDU, answered with the R-APDU. docs/pcsc.md has the user side.
 */
#ifndef TSE_VPCD_H
#define TSE_VPCD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tse/card.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSE_VPCD_DEFAULT_PORT 35963

struct tse_vpcd_options {
    const char *host;            /**< vpcd host, default "127.0.0.1" */
    uint16_t port;               /**< default TSE_VPCD_DEFAULT_PORT */
    enum tse_iface iface;        /**< which card interface the reader sees (default contact) */
    bool retry;                  /**< keep trying to (re)connect, once a second */
    FILE *log;                   /**< connection messages and the trace; NULL = stderr */
    bool trace;                  /**< log every APDU pair with its time */
    volatile sig_atomic_t *stop; /**< set (e.g. by a signal handler) to end the loop */
};

/**
 * Build the ATR a PC/SC reader shows for an interface: the profile ATR for the contact
 * interface; for the contactless one the PC/SC part 3 form 3B 8n 80 01 <historical bytes of
 * the ATS> TCK.
 * @retval 0 and *len; TSE_ERR_BUFFER_TOO_SMALL
 */
int tse_vpcd_atr(struct tse_card *card, enum tse_iface iface, uint8_t *atr, size_t cap,
                 size_t *len);

/**
 * Serve the card to vpcd until *stop is set (or, without retry, until the connection ends).
 * Between messages the card is left alone, so GET ATR polls are answered at once.
 * @retval 0 stopped by *stop, or vpcd closed the connection (without retry)
 * @retval TSE_ERR_IO cannot connect (without retry) or a socket error; the message says
 *         whether pcscd with the vpcd driver is running
 */
int tse_vpcd_serve(struct tse_card *card, const struct tse_vpcd_options *opt);

#ifdef __cplusplus
}
#endif

#endif
