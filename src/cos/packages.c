/* SPDX-License-Identifier: Apache-2.0 */
/* The native packages compiled into this build. New areas (card manager, purse) add theirs. */
#include "tse/applet.h"

extern const struct tse_package_def tse_diag_package;
extern const struct tse_package_def tse_gp_package;
extern const struct tse_package_def tse_crs_package;
extern const struct tse_package_def tse_wallet_package;

const struct tse_package_def *const tse_native_packages[] = {
    &tse_gp_package, &tse_crs_package, &tse_diag_package, &tse_wallet_package, NULL,
};
