/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Purse cryptography shared by the card applet and the host side (PSAM, terminal, tests):
 * session keys, the single-DES purse MAC, TAC key, diversification, the secure-messaging MAC
 * (spec §4). Every cipher call goes through the crypto wrapper.
 */
#include <string.h>

#include "crypto/crypto_internal.h"
#include "tse/scp.h"
#include "tse/wallet.h"
#include "wallet/wallet_internal.h"

void tse_wallet_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t tse_wallet_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int tse_wallet_mac(const uint8_t key8[8], const uint8_t *data, size_t len, uint8_t mac[4])
{
    uint8_t m[8];
    int rc = tse_mac_des(key8, NULL, data, len, m);
    if (!rc)
        memcpy(mac, m, 4);
    return rc;
}

int tse_wallet_session_key(const uint8_t key[16], const uint8_t in[8], uint8_t sk[8])
{
    return tse_des3_ecb(key, true, in, 8, sk);
}

void tse_wallet_tac_key(const uint8_t dtk[16], uint8_t key8[8])
{
    for (int i = 0; i < 8; i++)
        key8[i] = dtk[i] ^ dtk[8 + i];
}

int tse_wallet_diversify(const uint8_t master[16], const uint8_t issuer_id[8],
                         const uint8_t asn8[8], uint8_t card_key[16])
{
    return tse_pboc_diversify2(master, issuer_id, asn8, card_key);
}

int tse_wallet_sm_mac(const uint8_t key[16], const uint8_t *challenge, size_t clen,
                      const uint8_t *data, size_t len, uint8_t mac[4])
{
    if (clen != 4 && clen != 8)
        return TSE_ERR_INVALID_ARG;
    uint8_t iv[8] = {0}, m[8];
    memcpy(iv, challenge, clen);
    int rc = tse_mac_retail(key, iv, data, len, m);
    if (!rc)
        memcpy(mac, m, 4);
    return rc;
}

int tse_wallet_purchase_sk(const uint8_t dpk[16], const struct tse_wallet_txn *t, uint8_t sk[8])
{
    uint8_t in[8];
    memcpy(in, t->rand, 4);
    in[4] = (uint8_t)(t->seq >> 8);
    in[5] = (uint8_t)t->seq;
    in[6] = (uint8_t)(t->term_seq >> 8);
    in[7] = (uint8_t)t->term_seq;
    return tse_wallet_session_key(dpk, in, sk);
}

int tse_wallet_purchase_mac1(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4])
{
    uint8_t b[18];
    tse_wallet_put32(b, t->amount);
    b[4] = t->type;
    memcpy(b + 5, t->term_id, 6);
    memcpy(b + 11, t->date, 4);
    memcpy(b + 15, t->time, 3);
    return tse_wallet_mac(sk, b, sizeof(b), mac);
}

int tse_wallet_purchase_mac2(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4])
{
    uint8_t b[4];
    tse_wallet_put32(b, t->amount);
    return tse_wallet_mac(sk, b, sizeof(b), mac);
}

int tse_wallet_purchase_tac(const uint8_t dtk[16], const struct tse_wallet_txn *t, uint8_t tac[4])
{
    uint8_t k[8], b[22];
    tse_wallet_tac_key(dtk, k);
    tse_wallet_put32(b, t->amount);
    b[4] = t->type;
    memcpy(b + 5, t->term_id, 6);
    tse_wallet_put32(b + 11, t->term_seq);
    memcpy(b + 15, t->date, 4);
    memcpy(b + 19, t->time, 3);
    int rc = tse_wallet_mac(k, b, sizeof(b), tac);
    tse_wipe(k, sizeof(k));
    return rc;
}

int tse_wallet_load_sk(const uint8_t dlk[16], const struct tse_wallet_txn *t, uint8_t sk[8])
{
    uint8_t in[8];
    memcpy(in, t->rand, 4);
    in[4] = (uint8_t)(t->seq >> 8);
    in[5] = (uint8_t)t->seq;
    in[6] = 0x80;
    in[7] = 0x00;
    return tse_wallet_session_key(dlk, in, sk);
}

int tse_wallet_load_mac1(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4])
{
    uint8_t b[15];
    tse_wallet_put32(b, t->balance);
    tse_wallet_put32(b + 4, t->amount);
    b[8] = t->type;
    memcpy(b + 9, t->term_id, 6);
    return tse_wallet_mac(sk, b, sizeof(b), mac);
}

int tse_wallet_load_mac2(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4])
{
    uint8_t b[18];
    tse_wallet_put32(b, t->amount);
    b[4] = t->type;
    memcpy(b + 5, t->term_id, 6);
    memcpy(b + 11, t->date, 4);
    memcpy(b + 15, t->time, 3);
    return tse_wallet_mac(sk, b, sizeof(b), mac);
}

int tse_wallet_load_tac(const uint8_t dtk[16], const struct tse_wallet_txn *t, uint8_t tac[4])
{
    uint8_t k[8], b[24];
    tse_wallet_tac_key(dtk, k);
    tse_wallet_put32(b, t->balance + t->amount);
    b[4] = (uint8_t)(t->seq >> 8);
    b[5] = (uint8_t)t->seq;
    tse_wallet_put32(b + 6, t->amount);
    b[10] = t->type;
    memcpy(b + 11, t->term_id, 6);
    memcpy(b + 17, t->date, 4);
    memcpy(b + 21, t->time, 3);
    int rc = tse_wallet_mac(k, b, sizeof(b), tac);
    tse_wipe(k, sizeof(k));
    return rc;
}

int tse_wallet_card_parse(struct tse_wallet_card *c, const uint8_t *ef15, size_t len)
{
    if (!c || !ef15 || len != 30)
        return TSE_ERR_INVALID_ARG;
    memcpy(c->ef15, ef15, 30);
    memcpy(c->issuer_id, ef15, 8);
    c->app_type = ef15[8];
    c->app_version = ef15[9];
    memcpy(c->asn, ef15 + 10, 10);
    memcpy(c->start, ef15 + 20, 4);
    memcpy(c->end, ef15 + 24, 4);
    return 0;
}

/* ---- PSAM ---------------------------------------------------------------------------------- */

void tse_psam_init(struct tse_psam *p)
{
    memset(p, 0, sizeof(*p));
    p->term_id[5] = 0x01;
    p->term_seq = 1;
}

void tse_psam_free(struct tse_psam *p)
{
    tse_wipe(p, sizeof(*p));
}

void tse_psam_set_terminal(struct tse_psam *p, const uint8_t term_id[6], uint32_t next_seq)
{
    memcpy(p->term_id, term_id, 6);
    p->term_seq = next_seq;
}

int tse_psam_add_master(struct tse_psam *p, uint8_t usage, uint8_t index, const uint8_t key[16])
{
    if (!p || !key || usage < 1 || usage > TSE_WALLET_KEY_USAGES || index == 0)
        return TSE_ERR_INVALID_ARG;
    for (size_t i = 0; i < p->n_keys; i++)
        if (p->keys[i].usage == usage && p->keys[i].index == index) {
            memcpy(p->keys[i].key, key, 16);
            return 0;
        }
    if (p->n_keys >= TSE_PSAM_MAX_KEYS)
        return TSE_ERR_NO_SPACE;
    struct tse_psam_key *k = &p->keys[p->n_keys++];
    k->usage = usage;
    k->index = index;
    memcpy(k->key, key, 16);
    return 0;
}

void tse_wallet_test_master(uint8_t usage, uint8_t key[16])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(usage << 4 | i);
}

int tse_psam_load_test_keys(struct tse_psam *p)
{
    for (uint8_t u = 1; u <= TSE_WALLET_KEY_USAGES; u++) {
        uint8_t k[16];
        tse_wallet_test_master(u, k);
        int rc = tse_psam_add_master(p, u, 1, k);
        if (rc)
            return rc;
    }
    return 0;
}

int tse_psam_card_key(const struct tse_psam *p, const struct tse_wallet_card *card, uint8_t usage,
                      uint8_t index, uint8_t key[16])
{
    const struct tse_psam_key *m = NULL, *first = NULL;
    for (size_t i = 0; i < p->n_keys; i++) {
        if (p->keys[i].usage != usage)
            continue;
        if (!first)
            first = &p->keys[i];
        if (p->keys[i].index == index) {
            m = &p->keys[i];
            break;
        }
    }
    if (!m && usage == TSE_WALLET_KEY_TAC)
        m = first; /* the card does the same: one DTK serves every key index */
    if (!m)
        return TSE_ERR_NOT_FOUND;
    return tse_wallet_diversify(m->key, card->issuer_id, card->asn + 2, key);
}

int tse_psam_purchase_begin(struct tse_psam *p, const struct tse_wallet_card *card,
                            struct tse_psam_txn *x, uint8_t mac1[4])
{
    uint8_t dpk[16];
    x->ready = false;
    int rc = tse_psam_card_key(p, card, TSE_WALLET_KEY_PURCHASE, x->key_index, dpk);
    if (rc)
        return rc;
    memcpy(x->t.term_id, p->term_id, 6);
    x->t.term_seq = p->term_seq++;
    rc = tse_wallet_purchase_sk(dpk, &x->t, x->sk);
    if (!rc)
        rc = tse_wallet_purchase_mac1(x->sk, &x->t, mac1);
    tse_wipe(dpk, sizeof(dpk));
    x->ready = rc == 0;
    return rc;
}

int tse_psam_purchase_check_mac2(const struct tse_psam_txn *x, const uint8_t mac2[4])
{
    if (!x->ready)
        return TSE_ERR_STATE;
    uint8_t m[4];
    int rc = tse_wallet_purchase_mac2(x->sk, &x->t, m);
    if (rc)
        return rc;
    return tse_ct_equal(m, mac2, 4) ? 0 : TSE_ERR_DENIED;
}

int tse_psam_load_begin(struct tse_psam *p, const struct tse_wallet_card *card,
                        struct tse_psam_txn *x, const uint8_t mac1[4])
{
    uint8_t dlk[16], m[4];
    x->ready = false;
    int rc = tse_psam_card_key(p, card, TSE_WALLET_KEY_LOAD, x->key_index, dlk);
    if (rc)
        return rc;
    rc = tse_wallet_load_sk(dlk, &x->t, x->sk);
    if (!rc)
        rc = tse_wallet_load_mac1(x->sk, &x->t, m);
    tse_wipe(dlk, sizeof(dlk));
    if (rc)
        return rc;
    if (!tse_ct_equal(m, mac1, 4))
        return TSE_ERR_DENIED;
    x->ready = true;
    return 0;
}

int tse_psam_load_mac2(const struct tse_psam_txn *x, uint8_t mac2[4])
{
    if (!x->ready)
        return TSE_ERR_STATE;
    return tse_wallet_load_mac2(x->sk, &x->t, mac2);
}

int tse_psam_check_tac(const struct tse_psam *p, const struct tse_wallet_card *card,
                       const struct tse_psam_txn *x, const uint8_t tac[4])
{
    uint8_t dtk[16], m[4];
    int rc = tse_psam_card_key(p, card, TSE_WALLET_KEY_TAC, x->key_index, dtk);
    if (rc)
        return rc;
    if (x->t.type == TSE_WALLET_TT_EP_LOAD || x->t.type == TSE_WALLET_TT_ED_LOAD)
        rc = tse_wallet_load_tac(dtk, &x->t, m);
    else
        rc = tse_wallet_purchase_tac(dtk, &x->t, m);
    tse_wipe(dtk, sizeof(dtk));
    if (rc)
        return rc;
    return tse_ct_equal(m, tac, 4) ? 0 : TSE_ERR_DENIED;
}
