/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_GP_INTERNAL_H
#define TSE_GP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tse/applet.h"
#include "tse/profile.h"

/* The GlobalPlatform package (security domains). */
extern const struct tse_package_def tse_gp_package;
#define TSE_GP_PACKAGE_AID   "\xA0\x00\x00\x01\x51\x53\x50"
#define TSE_GP_SD_MODULE_AID "\xA0\x00\x00\x01\x51\x53\x50\x41"

/* Install parameters of the ISD built from a profile (life cycle, identity, key sets).
 * Returns the length, 0 if cap is too small. */
size_t tse_isd_params(const struct tse_profile *p, uint8_t *out, size_t cap);

#endif
