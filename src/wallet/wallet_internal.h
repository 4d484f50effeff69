/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the purse applet and the host side of src/wallet. Not a public API. */
#ifndef TSE_WALLET_INTERNAL_H
#define TSE_WALLET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tse/applet.h"

void tse_wallet_put32(uint8_t *p, uint32_t v);
uint32_t tse_wallet_get32(const uint8_t *p);

/* The test master key of a usage: bytes (usage << 4 | i), i = 0..15 (docs/wallet.md). */
void tse_wallet_test_master(uint8_t usage, uint8_t key[16]);

/* The native package of the purse (registered in src/cos/packages.c). */
extern const struct tse_package_def tse_wallet_package;

/* Instructions of the purse. */
enum {
    WINS_SELECT = 0xA4,
    WINS_READ_BINARY = 0xB0,
    WINS_READ_RECORD = 0xB2,
    WINS_GET_CHALLENGE = 0x84,
    WINS_VERIFY = 0x20,
    WINS_UPDATE_BINARY = 0xD6,
    WINS_GET_BALANCE = 0x5C,
    WINS_INITIALIZE = 0x50,
    WINS_CREDIT = 0x52,
    WINS_DEBIT = 0x54,
    WINS_PROVE = 0x5A,
    WINS_UPDATE_CAPP = 0xDC,
    WINS_PIN_CHANGE = 0x5E,
    WINS_APP_BLOCK = 0x1E,
    WINS_APP_UNBLOCK = 0x18,
    WINS_CARD_BLOCK = 0x16,
    WINS_PIN_UNBLOCK = 0x24,
    WINS_STORE_DATA = 0xE2,
};

/* INITIALIZE P1 */
#define WP1_LOAD     0x00
#define WP1_PURCHASE 0x01
#define WP1_CAPP     0x03
#define WP2_EP       0x02

/* Install parameter tags (inside C9; docs/wallet.md). */
#define WCFG_TAG_N18       0x81
#define WCFG_TAG_N1E       0x82
#define WCFG_TAG_N1A       0x83
#define WCFG_TAG_N1F       0x84
#define WCFG_TAG_PIN_LIMIT 0x85
#define WCFG_TAG_MAC_LIMIT 0x86
#define WCFG_TAG_LOAD_PIN  0x87
#define WCFG_TAG_ADF_FID   0x88
#define WCFG_TAG_VERSION   0x89
#define WCFG_TAG_ISSUER    0x8E
#define WCFG_TAG_TEST_ASN  0x8F

#endif
