/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fixtures of the purse suites: a card with purse instances, personalisation through the
 * runtime's STORE DATA entry (the path the card manager forwards on), and a terminal whose
 * transport is the card's contactless interface.
 *
 * The STORE DATA commands come from the library's builder (tse_wallet_perso_store_data); only
 * the delivery differs from the real GlobalPlatform path, where each command is wrapped in the
 * security domain's secure channel instead of being handed to tse_rt_personalize().
 */
#ifndef TSE_WALLET_TEST_H
#define TSE_WALLET_TEST_H

#include "tse_test.h"

#include "cos/card_internal.h"
#include "tse/scp.h"
#include "tse/wallet.h"

#define W_AID_BJ    "A00000063201010510009156000014A1" /* Beijing-style 16-byte instance */
#define W_AID_SZ    "A000000632010105215053555A484F55" /* Suzhou-style */
#define W_AID_SHORT "A000000632010105"                 /* the bare 8-byte AID */
#define W_ASN_BJ    "03105170010170907984"
#define W_ISSUER_BJ "01011000FFFFFFFF"

/* A profile with the given [instance] sections appended to a deterministic card. */
static inline struct tse_card *wt_card(const char *instances, char *path, size_t cap)
{
    static char prof[4096];
    snprintf(prof, sizeof(prof),
             "[card]\nname = wallet test\n\n[deterministic]\nseed = 5457414C4C4554\n"
             "clock = 2024-05-01T08:30:00Z\n\n%s",
             instances);
    return tt_card(prof, path, cap);
}

/* An [instance] section for a purse; params may be "" (unpersonalised). */
static inline const char *wt_instance(char *buf, size_t cap, const char *name, const char *aid,
                                      const char *params)
{
    snprintf(buf, cap,
             "[instance %s]\npackage = A0000006320101\nmodule = A000000632010105\naid = %s\n"
             "%s%s\n\n",
             name, aid, *params ? "params = " : "", params);
    return buf;
}

static inline int wt_index(struct tse_card *c, const char *aid_hex)
{
    struct tse_aid aid;
    uint8_t b[16];
    int n = tse_hex_decode(aid_hex, b, sizeof(b));
    assert_true(n > 0);
    tse_aid_set(&aid, b, (size_t)n);
    int idx = tse_rt_find(c, &aid);
    assert_true(idx >= 0);
    return idx;
}

/* ---- personalisation through tse_rt_personalize() ---------------------------------------- */

struct wt_perso {
    struct tse_card *card;
    int idx;
    struct tse_scp_session sess; /* stands for the security domain's open secure channel */
    unsigned commands;
    uint16_t last_sw;
    bool stop_on_error;
};

static inline void wt_perso_init(struct wt_perso *w, struct tse_card *c, const char *aid_hex)
{
    memset(w, 0, sizeof(*w));
    w->card = c;
    w->idx = wt_index(c, aid_hex);
    w->sess.role = TSE_SCP_CARD;
    w->sess.scp = 3;
    w->sess.keys.scp = 3;
    w->sess.keys.key_len = 16;
    w->sess.authenticated = true;
    for (int i = 0; i < 16; i++)
        w->sess.keys.dek[i] = (uint8_t)(0x40 + i); /* the default test DEK 404142…4F */
    w->stop_on_error = true;
}

static inline int wt_encrypt(void *user, const uint8_t *in, size_t len, uint8_t *out)
{
    struct wt_perso *w = user;
    return tse_scp_host_encrypt_data(&w->sess, in, len, out);
}

/* Hand one plain STORE DATA command to the instance, as the security domain would. */
static inline uint16_t wt_store_data(struct wt_perso *w, const uint8_t *cmd, size_t len)
{
    struct tse_apdu a;
    assert_int_equal(tse_apdu_parse(cmd, len, &a), 0);
    static uint8_t rbuf[TSE_APDU_MAX_NE];
    struct tse_response rsp = {rbuf, 0, sizeof(rbuf), false};
    uint16_t sw = 0;
    assert_int_equal(
        tse_rt_personalize(w->card, w->idx, TSE_IF_CONTACT, 0, &w->sess, &a, &rsp, &sw), 0);
    w->commands++;
    w->last_sw = sw;
    return sw;
}

static inline int wt_emit(void *user, const uint8_t *cmd, size_t len)
{
    struct wt_perso *w = user;
    uint16_t sw = wt_store_data(w, cmd, len);
    if (sw != SW_NO_ERROR && w->stop_on_error)
        return TSE_ERR_DENIED;
    return 0;
}

/* Personalise instance `aid_hex` with `p`; keys DEK-encrypted when `encrypt`. Returns the SW
 * of the first failing STORE DATA (9000 when all passed). */
static inline uint16_t wt_personalise(struct tse_card *c, const char *aid_hex,
                                      const struct tse_wallet_perso *p, bool encrypt,
                                      unsigned *commands)
{
    struct wt_perso w;
    wt_perso_init(&w, c, aid_hex);
    int rc = tse_wallet_perso_store_data(p, encrypt ? wt_encrypt : NULL, &w, wt_emit, &w);
    if (commands)
        *commands = w.commands;
    if (rc == TSE_ERR_DENIED)
        return w.last_sw;
    assert_int_equal(rc, 0);
    return SW_NO_ERROR;
}

static inline void wt_test_perso(struct tse_wallet_perso *p, const char *issuer_hex,
                                 const char *asn_hex)
{
    uint8_t issuer[8], asn[10];
    assert_int_equal(tse_hex_decode(issuer_hex, issuer, 8), 8);
    assert_int_equal(tse_hex_decode(asn_hex, asn, 10), 10);
    assert_int_equal(tse_wallet_perso_test(p, issuer, asn), 0);
}

/* ---- a terminal on the contactless interface ------------------------------------------------ */

struct wt_term {
    struct tse_card *card;
    struct tse_psam psam;
    struct tse_wallet_term t;
    unsigned exchanges;
};

static inline int wt_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                              size_t *rlen)
{
    struct wt_term *w = user;
    w->exchanges++;
    int rc = tse_card_transmit(w->card, TSE_IF_CONTACTLESS, c, clen, r, rcap, rlen);
    if (getenv("WT_TRACE")) {
        char h[600];
        tse_hex_encode(c, clen > 290 ? 290 : clen, h);
        fprintf(stderr, "-> %s\n", h);
        if (!rc) {
            tse_hex_encode(r, *rlen > 290 ? 290 : *rlen, h);
            fprintf(stderr, "<- %s\n", h);
        }
    }
    return rc;
}

static inline void wt_term_init(struct wt_term *w, struct tse_card *c)
{
    memset(w, 0, sizeof(*w));
    w->card = c;
    tse_psam_init(&w->psam);
    assert_int_equal(tse_psam_load_test_keys(&w->psam), 0);
    tse_wallet_term_init(&w->t, &w->psam, wt_transmit, w);
    static const uint8_t d[4] = {0x20, 0x24, 0x05, 0x01}, tm[3] = {0x08, 0x30, 0x00};
    tse_wallet_term_set_time(&w->t, d, tm);
    static const uint8_t pin[3] = {0x12, 0x34, 0x56};
    memcpy(w->t.pin, pin, 3);
    w->t.pin_len = 3;
}

static inline void wt_select(struct wt_term *w, const char *aid_hex)
{
    uint8_t aid[16];
    int n = tse_hex_decode(aid_hex, aid, sizeof(aid));
    int rc = tse_wallet_term_select(&w->t, aid, (size_t)n);
    if (rc)
        fail_msg("select %s: %s (SW %04X)", aid_hex, tse_strerror(rc), w->t.sw);
}

static inline uint32_t wt_balance(struct wt_term *w)
{
    uint32_t b = 0;
    int rc = tse_wallet_term_balance(&w->t, &b);
    if (rc)
        fail_msg("balance: %s (SW %04X)", tse_strerror(rc), w->t.sw);
    return b;
}

/* Status word of a hex command on the contactless interface. */
static inline unsigned wt_sw(struct tse_card *c, const char *hex)
{
    return tt_sw(c, TSE_IF_CONTACTLESS, hex);
}

static inline const char *wt_x(struct tse_card *c, const char *hex)
{
    return tt_xfer(c, TSE_IF_CONTACTLESS, hex);
}

#define W_GATE_BJ                                                                                  \
    {                                                                                              \
        {0x10, 0x00}, {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, 0x01, {0x00, 0x05}, 0x12   \
    }

#endif
