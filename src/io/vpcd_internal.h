/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_VPCD_INTERNAL_H
#define TSE_VPCD_INTERNAL_H

#include "tse/vpcd.h"

/* Serve one vpcd connection on a connected stream socket (exposed for the fuzz target).
 * 0: the peer closed it; 1: *o->stop was set; -1: socket error or a malformed exchange. */
int tse_vpcd_session(struct tse_card *card, int fd, const struct tse_vpcd_options *o, FILE *log);

#endif
