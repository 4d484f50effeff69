/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A purse terminal over any transport: the command sequences of a load terminal, a POS and a
 * metro gate (spec §3, §4.3, §4.4), with the PSAM doing the cryptography. Used by the tests,
 * apdu-shell's `wallet` commands and later the gate reader and the TSM.
 */
#include <string.h>

#include "tse/apdu.h"
#include "tse/sw.h"
#include "tse/tlv.h"
#include "tse/wallet.h"
#include "wallet/wallet_internal.h"

void tse_wallet_term_init(struct tse_wallet_term *t, struct tse_psam *psam,
                          tse_wallet_transmit_fn transmit, void *user)
{
    memset(t, 0, sizeof(*t));
    t->psam = psam;
    t->transmit = transmit;
    t->user = user;
    t->key_index = 1;
    static const uint8_t d[4] = {0x20, 0x24, 0x01, 0x01};
    memcpy(t->date, d, 4);
}

void tse_wallet_term_free(struct tse_wallet_term *t)
{
    memset(t, 0, sizeof(*t));
}

void tse_wallet_term_set_time(struct tse_wallet_term *t, const uint8_t date[4],
                              const uint8_t time[3])
{
    memcpy(t->date, date, 4);
    memcpy(t->time, time, 3);
}

/* Send a command; on return t->rbuf/t->rlen hold the data (SW removed) and t->sw the SW.
 * Returns 0 when SW = expect, TSE_ERR_STATE for another SW, or the transport's error. */
static int xfer(struct tse_wallet_term *t, const char *step, uint8_t cla, uint8_t ins, uint8_t p1,
                uint8_t p2, const uint8_t *data, size_t lc, size_t le, uint16_t expect)
{
    struct tse_apdu a = {.cla = cla,
                         .ins = ins,
                         .p1 = p1,
                         .p2 = p2,
                         .data = lc ? data : NULL,
                         .lc = lc,
                         .ne = le,
                         .has_le = le != 0};
    uint8_t cmd[5 + 255 + 1];
    int n = tse_apdu_encode(&a, cmd, sizeof(cmd));
    if (n < 0)
        return n;
    size_t rl = 0;
    t->step = step;
    t->sw = 0;
    t->rlen = 0;
    int rc = t->transmit(t->user, cmd, (size_t)n, t->rbuf, sizeof(t->rbuf), &rl);
    if (rc)
        return rc;
    if (rl < 2)
        return TSE_ERR_PARSE;
    t->sw = (uint16_t)(t->rbuf[rl - 2] << 8 | t->rbuf[rl - 1]);
    t->rlen = rl - 2;
    return t->sw == expect ? 0 : TSE_ERR_STATE;
}

int tse_wallet_term_select(struct tse_wallet_term *t, const uint8_t *aid, size_t len)
{
    int rc = xfer(t, "SELECT", 0x00, 0xA4, 0x04, 0x00, aid, len, 256, SW_NO_ERROR);
    if (rc)
        return rc;
    struct tse_tlv fci, a5, dd;
    if (tse_tlv_find(t->rbuf, t->rlen, 0x6F, &fci) != 1 ||
        tse_tlv_find(fci.value, fci.len, 0xA5, &a5) != 1)
        return TSE_ERR_PARSE;
    t->have_card = false;
    if (tse_tlv_find(a5.value, a5.len, 0x9F0C, &dd) == 1 && dd.len == 30) {
        tse_wallet_card_parse(&t->card, dd.value, dd.len);
        t->have_card = true;
    }
    return 0;
}

int tse_wallet_term_read_card(struct tse_wallet_term *t)
{
    int rc = xfer(t, "READ BINARY 0x15", 0x00, 0xB0, 0x95, 0x00, NULL, 0, 256, SW_NO_ERROR);
    if (rc)
        return rc;
    if (t->rlen != 30)
        return TSE_ERR_PARSE;
    tse_wallet_card_parse(&t->card, t->rbuf, 30);
    t->have_card = true;
    return 0;
}

static int need_card(struct tse_wallet_term *t)
{
    return t->have_card ? 0 : tse_wallet_term_read_card(t);
}

int tse_wallet_term_balance(struct tse_wallet_term *t, uint32_t *balance)
{
    int rc = xfer(t, "GET BALANCE", 0x80, 0x5C, 0x00, 0x02, NULL, 0, 4, SW_NO_ERROR);
    if (rc)
        return rc;
    if (t->rlen != 4)
        return TSE_ERR_PARSE;
    *balance = tse_wallet_get32(t->rbuf);
    return 0;
}

int tse_wallet_term_verify_pin(struct tse_wallet_term *t, const uint8_t *pin, size_t len)
{
    return xfer(t, "VERIFY", 0x00, 0x20, 0x00, 0x00, pin, len, 0, SW_NO_ERROR);
}

/* INITIALIZE FOR LOAD / PURCHASE / CAPP PURCHASE: data = key index, amount, terminal id. */
static int initialize(struct tse_wallet_term *t, uint8_t p1, uint32_t amount, size_t le)
{
    uint8_t d[11];
    d[0] = t->key_index;
    tse_wallet_put32(d + 1, amount);
    memcpy(d + 5, t->psam->term_id, 6);
    static const char *const names[] = {"INITIALIZE FOR LOAD", "INITIALIZE FOR PURCHASE", "",
                                        "INITIALIZE FOR CAPP PURCHASE"};
    int rc = xfer(t, names[p1 & 3], 0x80, 0x50, p1, 0x02, d, sizeof(d), le, SW_NO_ERROR);
    if (!rc && t->rlen != le)
        rc = TSE_ERR_PARSE;
    return rc;
}

int tse_wallet_term_load(struct tse_wallet_term *t, uint32_t amount, struct tse_wallet_result *r)
{
    struct tse_wallet_result tmp;
    if (!r)
        r = &tmp;
    memset(r, 0, sizeof(*r));
    int rc = need_card(t);
    if (!rc && t->pin_len)
        rc = tse_wallet_term_verify_pin(t, t->pin, t->pin_len);
    if (!rc)
        rc = initialize(t, 0x00, amount, 16);
    if (rc)
        return rc;
    struct tse_psam_txn *x = &t->last;
    memset(x, 0, sizeof(*x));
    x->key_index = t->key_index;
    x->t.type = TSE_WALLET_TT_EP_LOAD;
    x->t.amount = amount;
    memcpy(x->t.term_id, t->psam->term_id, 6);
    x->t.balance = tse_wallet_get32(t->rbuf);
    x->t.seq = (uint16_t)(t->rbuf[4] << 8 | t->rbuf[5]);
    memcpy(x->t.rand, t->rbuf + 8, 4);
    memcpy(x->t.date, t->date, 4);
    memcpy(x->t.time, t->time, 3);
    r->balance_before = x->t.balance;
    r->seq = x->t.seq;
    uint8_t mac1[4], d[11];
    memcpy(mac1, t->rbuf + 12, 4);
    if ((rc = tse_psam_load_begin(t->psam, &t->card, x, mac1)) != 0)
        return rc;
    memcpy(d, t->date, 4);
    memcpy(d + 4, t->time, 3);
    if ((rc = tse_psam_load_mac2(x, d + 7)) != 0)
        return rc;
    memcpy(r->mac2, d + 7, 4);
    rc = xfer(t, "CREDIT FOR LOAD", 0x80, 0x52, 0x00, 0x00, d, sizeof(d), 4, SW_NO_ERROR);
    if (rc)
        return rc;
    if (t->rlen != 4)
        return TSE_ERR_PARSE;
    memcpy(r->tac, t->rbuf, 4);
    r->balance_after = x->t.balance + amount;
    rc = tse_psam_check_tac(t->psam, &t->card, x, r->tac);
    r->tac_ok = rc == 0;
    return rc;
}

static int purchase(struct tse_wallet_term *t, uint8_t p1, uint32_t amount,
                    const struct tse_wallet_capp_rec *recs, size_t n, struct tse_wallet_result *r)
{
    struct tse_wallet_result tmp;
    if (!r)
        r = &tmp;
    memset(r, 0, sizeof(*r));
    int rc = need_card(t);
    if (!rc)
        rc = initialize(t, p1, amount, 15);
    if (rc)
        return rc;
    struct tse_psam_txn *x = &t->last;
    memset(x, 0, sizeof(*x));
    x->key_index = t->key_index;
    x->t.type = p1 == 0x03 ? TSE_WALLET_TT_CAPP : TSE_WALLET_TT_PURCHASE;
    x->t.amount = amount;
    x->t.balance = tse_wallet_get32(t->rbuf);
    x->t.seq = (uint16_t)(t->rbuf[4] << 8 | t->rbuf[5]);
    memcpy(x->t.rand, t->rbuf + 11, 4);
    memcpy(x->t.date, t->date, 4);
    memcpy(x->t.time, t->time, 3);
    r->balance_before = x->t.balance;
    r->seq = x->t.seq;
    for (size_t i = 0; i < n; i++) {
        rc = xfer(t, "UPDATE CAPP DATA CACHE", 0x80, 0xDC, recs[i].record_id,
                  (uint8_t)(recs[i].sfi << 3), recs[i].data, recs[i].len, 0, SW_NO_ERROR);
        if (rc)
            return rc;
    }
    uint8_t d[15];
    if ((rc = tse_psam_purchase_begin(t->psam, &t->card, x, d + 11)) != 0)
        return rc;
    tse_wallet_put32(d, x->t.term_seq);
    memcpy(d + 4, t->date, 4);
    memcpy(d + 8, t->time, 3);
    r->term_seq = x->t.term_seq;
    rc = xfer(t, p1 == 0x03 ? "DEBIT FOR CAPP PURCHASE" : "DEBIT FOR PURCHASE", 0x80, 0x54, 0x01,
              0x00, d, sizeof(d), 8, SW_NO_ERROR);
    if (rc)
        return rc;
    if (t->rlen != 8)
        return TSE_ERR_PARSE;
    memcpy(r->tac, t->rbuf, 4);
    memcpy(r->mac2, t->rbuf + 4, 4);
    r->balance_after = x->t.balance - amount;
    if ((rc = tse_psam_purchase_check_mac2(x, r->mac2)) != 0)
        return rc;
    rc = tse_psam_check_tac(t->psam, &t->card, x, r->tac);
    r->tac_ok = rc == 0;
    return rc;
}

int tse_wallet_term_purchase(struct tse_wallet_term *t, uint32_t amount,
                             struct tse_wallet_result *r)
{
    return purchase(t, 0x01, amount, NULL, 0, r);
}

int tse_wallet_term_capp_purchase(struct tse_wallet_term *t, uint32_t amount,
                                  const struct tse_wallet_capp_rec *recs, size_t n,
                                  struct tse_wallet_result *r)
{
    return purchase(t, 0x03, amount, recs, n, r);
}

int tse_wallet_term_prove(struct tse_wallet_term *t, uint8_t type, uint16_t seq, uint8_t mac2[4],
                          uint8_t tac[4])
{
    uint8_t d[2] = {(uint8_t)(seq >> 8), (uint8_t)seq};
    int rc = xfer(t, "GET TRANSACTION PROVE", 0x80, 0x5A, 0x00, type, d, 2, 8, SW_NO_ERROR);
    if (rc == TSE_ERR_STATE && t->sw == SW_WALLET_PROOF_NOT_FOUND)
        return TSE_ERR_NOT_FOUND;
    if (rc)
        return rc;
    if (t->rlen != 8)
        return TSE_ERR_PARSE;
    memcpy(mac2, t->rbuf, 4);
    memcpy(tac, t->rbuf + 4, 4);
    return 0;
}

int tse_wallet_term_read_record(struct tse_wallet_term *t, uint8_t sfi, uint8_t rec, uint8_t *out,
                                size_t cap, size_t *len)
{
    int rc =
        xfer(t, "READ RECORD", 0x00, 0xB2, rec, (uint8_t)(sfi << 3 | 4), NULL, 0, 256, SW_NO_ERROR);
    if (rc == TSE_ERR_STATE && t->sw == SW_RECORD_NOT_FOUND)
        return TSE_ERR_NOT_FOUND;
    if (rc)
        return rc;
    if (t->rlen > cap)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, t->rbuf, t->rlen);
    *len = t->rlen;
    return 0;
}

/* ---- gates ---------------------------------------------------------------------------------- */

void tse_wallet_record_1e(uint8_t out[48], uint8_t kind, const uint8_t term_id[6],
                          const struct tse_wallet_gate *g, uint32_t amount, uint32_t balance_after,
                          const uint8_t date[4], const uint8_t time[3])
{
    memset(out, 0, 48);
    out[0] = kind;
    memcpy(out + 3, term_id, 6); /* 00 00 ‖ terminal number */
    out[9] = 0x01;               /* metro */
    out[10] = 0x00;
    out[11] = g->line;
    memcpy(out + 12, g->station, 2);
    tse_wallet_put32(out + 17, amount);
    tse_wallet_put32(out + 21, balance_after);
    memcpy(out + 25, date, 4);
    memcpy(out + 29, time, 3);
    memcpy(out + 32, g->city, 2);
    memcpy(out + 34, g->institution, 8);
}

/* The 128-byte rail record (spec §2.6): fields the gates of this project use; the rest zero. */
static void rail_record(uint8_t rec[128], const uint8_t *old, bool have_old, bool entry,
                        const struct tse_wallet_term *t, const struct tse_wallet_gate *g,
                        uint32_t amount, uint32_t balance_after)
{
    if (have_old)
        memcpy(rec, old, 128);
    else
        memset(rec, 0, 128);
    rec[0] = 0x27;
    rec[1] = g->rail_record_id;
    rec[2] = 0x7D;
    rec[14] = entry ? 0x01 : 0x02; /* in/out status */
    uint8_t station[8] = {0}, device[8] = {0};
    station[6] = g->station[0];
    station[7] = g->station[1];
    memcpy(device + 2, t->psam->term_id, 6);
    uint8_t when[7];
    memcpy(when, t->date, 4);
    memcpy(when + 4, t->time, 3);
    if (entry) {
        memcpy(rec + 15, g->city, 2);
        memcpy(rec + 19, g->institution, 8);
        memcpy(rec + 35, station, 8);
        memcpy(rec + 51, device, 8);
        memcpy(rec + 67, when, 7);
        rec[85] = g->line;
        tse_wallet_put32(rec + 87, amount);
        tse_wallet_put32(rec + 91, balance_after);
        rec[120] = 0x01;
        rec[122] = 0x55;
    } else {
        memcpy(rec + 17, g->city, 2);
        memcpy(rec + 27, g->institution, 8);
        memcpy(rec + 43, station, 8);
        memcpy(rec + 59, device, 8);
        memcpy(rec + 74, when, 7);
        rec[86] = g->line;
        tse_wallet_put32(rec + 95, amount);
        rec[121] = 0x01;
        rec[122] = 0x66;
    }
    memcpy(rec + 99, when, 7);
    memcpy(rec + 106, t->psam->term_id + 2, 4);
}

static int gate(struct tse_wallet_term *t, const struct tse_wallet_gate *g, bool entry,
                uint32_t fare, struct tse_wallet_result *r)
{
    struct tse_wallet_result tmp;
    if (!r)
        r = &tmp;
    uint32_t bal;
    int rc = need_card(t);
    if (!rc)
        rc = tse_wallet_term_balance(t, &bal);
    if (rc)
        return rc;
    uint32_t after = bal >= fare ? bal - fare : 0; /* the card refuses a fare above it (9401) */
    /* the current rail record, if any (read by its identifier) */
    uint8_t old[128];
    bool have_old = false;
    rc = xfer(t, "READ RECORD 0x1A", 0x00, 0xB2, g->rail_record_id, 0x1A << 3, NULL, 0, 256,
              SW_NO_ERROR);
    if (rc == 0 && t->rlen == 128) {
        memcpy(old, t->rbuf, 128);
        have_old = true;
    } else if (rc && !(rc == TSE_ERR_STATE && t->sw == SW_RECORD_NOT_FOUND)) {
        return rc;
    }
    struct tse_wallet_capp_rec recs[2];
    memset(recs, 0, sizeof(recs));
    recs[0].sfi = 0x1A;
    recs[0].record_id = g->rail_record_id;
    recs[0].len = 128;
    rail_record(recs[0].data, old, have_old, entry, t, g, fare, after);
    recs[1].sfi = 0x1E;
    recs[1].len = 48;
    tse_wallet_record_1e(recs[1].data, entry ? 0x03 : 0x04, t->psam->term_id, g, fare, after,
                         t->date, t->time);
    return tse_wallet_term_capp_purchase(t, fare, recs, 2, r);
}

int tse_wallet_term_entry(struct tse_wallet_term *t, const struct tse_wallet_gate *g,
                          struct tse_wallet_result *r)
{
    return gate(t, g, true, 0, r);
}

int tse_wallet_term_exit(struct tse_wallet_term *t, const struct tse_wallet_gate *g, uint32_t fare,
                         struct tse_wallet_result *r)
{
    return gate(t, g, false, fare, r);
}
