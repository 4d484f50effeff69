/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_GP_INTERNAL_H
#define TSE_GP_INTERNAL_H

#include <stdbool.h>
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

/* Security domain objects and RAM areas shared by isd.c and cm.c. */
#define TSE_GP_OBJ_IDENT    2 /* CPLC 42, IIN len+16, CIN len+16, KDD 10 */
#define TSE_GP_IDENT_LEN    (42 + 1 + 16 + 1 + 16 + 10)
#define TSE_GP_KEYSET_LEN   (6 + 3 * 32) /* kvn scp i type key_len max_failures enc mac dek */
#define TSE_GP_RAM_SESSION0 0x100        /* + channel: secure channel session */
#define TSE_GP_RAM_STATUS0  0x200        /* + channel: GET STATUS paging */
#define TSE_GP_RAM_CM0      0x300        /* + channel: LOAD / personalization in progress */

struct tse_ctx;
struct tse_apdu;
struct tse_response;
struct tse_scp_session;

/* Whether the session meets the card's management_level (profile) for content management. */
bool tse_gp_level_ok(const struct tse_ctx *ctx, const struct tse_scp_session *s);

/* Card content management commands (cm.c), called by the SD after unwrapping. */
uint16_t tse_gp_get_status(struct tse_ctx *ctx, const struct tse_scp_session *s,
                           const struct tse_apdu *a, struct tse_response *rsp);
uint16_t tse_gp_set_status(struct tse_ctx *ctx, const struct tse_scp_session *s,
                           const struct tse_apdu *a);
uint16_t tse_gp_install(struct tse_ctx *ctx, const struct tse_scp_session *s,
                        const struct tse_apdu *a, struct tse_response *rsp);
uint16_t tse_gp_load(struct tse_ctx *ctx, const struct tse_scp_session *s, const struct tse_apdu *a,
                     struct tse_response *rsp);
uint16_t tse_gp_delete(struct tse_ctx *ctx, const struct tse_scp_session *s,
                       const struct tse_apdu *a, struct tse_response *rsp);
uint16_t tse_gp_store_data(struct tse_ctx *ctx, struct tse_scp_session *s, const struct tse_apdu *a,
                           struct tse_response *rsp);
/* Forget LOAD / personalization / STORE DATA progress on the current channel. */
void tse_gp_cm_reset(struct tse_ctx *ctx);

#endif
