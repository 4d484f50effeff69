/* SPDX-License-Identifier: Apache-2.0 */
/* Readers of tse-tap other than libnfc and the in-process card (struct tse_tap_transport). */
#ifndef TSE_TAP_READER_H
#define TSE_TAP_READER_H

#include <stddef.h>

#include "tse/nfc.h"

/**
 * A PC/SC reader (through pcscd), named by its index from 0 or a substring of its name.
 * Nothing is connected until the tap activates the card.
 * @return the transport, or NULL with a message in err (pcscd unreachable, no such reader)
 */
const struct tse_tap_transport *tap_pcsc_open(const char *reader, char *err, size_t errlen);
/** Disconnect and free. NULL is ignored. */
void tap_pcsc_close(const struct tse_tap_transport *tr);

#endif
