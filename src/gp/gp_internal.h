/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_GP_INTERNAL_H
#define TSE_GP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/applet.h"
#include "tse/profile.h"

struct tse_card;
struct tse_instance;

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
#define TSE_GP_RAM_LOAD     0x400        /* the load in progress (one per SD and interface) */

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

/* ---- Contactless registry service and PPSE (src/gp/crs.c, docs/contactless-registry.md) ---- */

/* The package holding the CRS application and the PPSE. */
extern const struct tse_package_def tse_crs_package;
#define TSE_CRS_AID      "\xA0\x00\x00\x01\x51\x43\x52\x53\x00" /* Amendment C */
#define TSE_CRS_AID_LEN  9
#define TSE_PPSE_AID     "2PAY.SYS.DDF01"
#define TSE_PPSE_AID_LEN 14

/* Install the CRS application (Contactless Activation privilege) and the PPSE at card
 * creation, after the ISD. 0 or the tse_err of tse_rt_install(). */
int tse_crs_install_builtin(struct tse_card *card);

/* The contactless registry data (struct tse_instance.cl) of a profile instance. */
void tse_crs_profile_cl(const struct tse_profile_instance *pi, uint8_t cl[16]);

/*
 * Hook for INSTALL [for install]: the contactless registry data of application `aid` from the
 * value of the system specific install parameters ('EF', may be NULL/0 when absent):
 *   A0 Contactless Protocol Parameters: 80 Assigned Protocols for Implicit Selection (any
 *      value: implicit selection allowed, bit 1 of *default_on), 81 Initial Contactless
 *      Activation State (00 / 01), A5 { 82 Communication Interface Access per instance:
 *      80 contact only, 40 contactless only, C0 both };
 *   A1 User Interaction Parameters: A6 Application Discretionary Data holding the PPSE entry
 *      (tse convention): 50 label (1..12 printable bytes), 87 priority (01..0F), 4F AID the
 *      PPSE shows (a prefix of `aid`, at least 5 bytes).
 * Other tags are ignored. An application whose initial activation would conflict with an
 * activated one (see docs) is registered DEACTIVATED. The new entry comes last in the
 * contactless priority order. cl must be zero or hold earlier data; *default_on is updated.
 * @return SW_NO_ERROR, or SW_WRONG_DATA (6A80) for a malformed or out-of-range parameter
 */
uint16_t tse_crs_install_params(const struct tse_card *card, const struct tse_aid *aid,
                                const uint8_t *sys, size_t len, uint8_t cl[16],
                                uint8_t *default_on);

/* May instance `in` be reached on the interface, as far as the contactless registry goes
 * (activation on contactless; interface access on contact)? */
bool tse_crs_reachable(const struct tse_instance *in, int iface);

/* Indices of all instances in contactless priority order (the volatile priority first, then
 * the registry order, ties by installation). idx needs room for card->n_inst entries.
 * Returns the count. */
size_t tse_crs_order(const struct tse_card *card, int *idx);

/* The application implicitly selected on the contactless interface: the first in contactless
 * priority order that may be implicitly selected and can be selected there now; -1 if none. */
int tse_crs_default(const struct tse_card *card);

#endif
