/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issuer side of personalisation: the test card data and the STORE DATA (DGI) commands that
 * carry a struct tse_wallet_perso to a purse instance (docs/wallet.md, "Personalisation").
 */
#include <string.h>

#include "crypto/crypto_internal.h"
#include "tse/wallet.h"
#include "wallet/wallet_internal.h"

#define DGI_KEY_ENTRY 19
/* Data bytes per STORE DATA: room for SCP03 C-DEC padding and a C-MAC within short Lc. */
#define STORE_DATA_MAX 239
#define STORE_MAX      (5 + STORE_DATA_MAX)

int tse_wallet_perso_test(struct tse_wallet_perso *p, const uint8_t issuer_id[8],
                          const uint8_t asn[10])
{
    if (!p || !issuer_id || !asn)
        return TSE_ERR_INVALID_ARG;
    memset(p, 0, sizeof(*p));
    static const uint8_t dates[8] = {0x20, 0x24, 0x01, 0x01, 0x20, 0x34, 0x12, 0x31};
    memcpy(p->ef15, issuer_id, 8);
    p->ef15[8] = 0x02;
    p->ef15[9] = 0x01;
    memcpy(p->ef15 + 10, asn, 10);
    memcpy(p->ef15 + 20, dates, 8);
    p->have15 = true;
    memset(p->ef16 + 2, 0x20, 52); /* anonymous: name and id number blank */
    p->have16 = true;
    static const uint8_t cn[4] = {0x00, 0x00, 0x01, 0x56};
    memcpy(p->ef17, cn, 4);
    memcpy(p->ef17 + 4, issuer_id, 4); /* province and city from the issuer identifier */
    p->ef17[9] = 0x01;                 /* interoperable card */
    p->ef17[10] = 0x01;
    memset(p->ef17 + 11, 0x20, 49);
    p->have17 = true;
    struct tse_wallet_card card;
    tse_wallet_card_parse(&card, p->ef15, 30);
    for (uint8_t u = 1; u <= TSE_WALLET_KEY_USAGES; u++) {
        uint8_t m[16];
        struct tse_wallet_key_entry *e = &p->set[0][u - 1];
        tse_wallet_test_master(u, m);
        int rc = tse_wallet_diversify(m, card.issuer_id, card.asn + 2, e->key);
        tse_wipe(m, sizeof(m));
        if (rc)
            return rc;
        e->index = 1;
        e->version = 1;
        e->alg = 0;
    }
    static const uint8_t pin[3] = {0x12, 0x34, 0x56};
    memcpy(p->pin, pin, 3);
    p->pin_len = 3;
    p->have_limits = true;
    p->max_balance = 100000;
    p->overdraft = 0;
    return 0;
}

struct builder {
    tse_wallet_encrypt_fn enc;
    void *enc_user;
    tse_wallet_emit_fn emit;
    void *emit_user;
    uint8_t p2;
    /* one command held back so the last one can carry the last-block bit */
    uint8_t held[STORE_MAX];
    size_t held_len;
};

static int flush(struct builder *b, bool last)
{
    if (!b->held_len)
        return 0;
    if (last)
        b->held[2] |= 0x80;
    int rc = b->emit(b->emit_user, b->held, b->held_len);
    tse_wipe(b->held, sizeof(b->held));
    b->held_len = 0;
    return rc;
}

/* Queue one DGI: it starts a STORE DATA command of its own and continues in the next ones
 * when it is longer than STORE_DATA_MAX (the purse reassembles it). */
static int add_dgi(struct builder *b, uint16_t dgi, const uint8_t *v, size_t len)
{
    uint8_t whole[5 + TSE_WALLET_KEY_USAGES * DGI_KEY_ENTRY];
    size_t n = 0;
    if (len > sizeof(whole) - 5)
        return TSE_ERR_INVALID_ARG;
    whole[n++] = (uint8_t)(dgi >> 8);
    whole[n++] = (uint8_t)dgi;
    if (len < 0xFF) {
        whole[n++] = (uint8_t)len;
    } else {
        whole[n++] = 0xFF;
        whole[n++] = (uint8_t)(len >> 8);
        whole[n++] = (uint8_t)len;
    }
    memcpy(whole + n, v, len);
    n += len;
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += STORE_DATA_MAX) {
        size_t chunk = n - off > STORE_DATA_MAX ? STORE_DATA_MAX : n - off;
        rc = flush(b, false);
        if (rc)
            break;
        uint8_t *c = b->held;
        c[0] = 0x80;
        c[1] = 0xE2;
        c[2] = (uint8_t)(0x08 | (b->enc ? 0x60 : 0x00)); /* DGI format, DEK encryption */
        c[3] = b->p2++;
        c[4] = (uint8_t)chunk;
        memcpy(c + 5, whole + off, chunk);
        b->held_len = 5 + chunk;
    }
    tse_wipe(whole, sizeof(whole));
    return rc;
}

/* A 16-byte secret as it travels: clear, or encrypted with the DEK. */
static int secret(struct builder *b, const uint8_t in[16], uint8_t out[16])
{
    if (!b->enc) {
        memcpy(out, in, 16);
        return 0;
    }
    return b->enc(b->enc_user, in, 16, out);
}

static int add_keys(struct builder *b, uint16_t dgi, const struct tse_wallet_key_entry *e, size_t n)
{
    uint8_t v[TSE_WALLET_KEY_USAGES * DGI_KEY_ENTRY];
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (e[i].index)
            used = i + 1; /* trailing empty positions are left out */
    if (!used)
        return 0;
    memset(v, 0, sizeof(v));
    int rc = 0;
    for (size_t i = 0; i < used && !rc; i++) {
        uint8_t *o = v + i * DGI_KEY_ENTRY;
        if (!e[i].index)
            continue;
        o[0] = e[i].index;
        o[1] = e[i].version;
        o[2] = e[i].alg;
        rc = secret(b, e[i].key, o + 3);
    }
    if (!rc)
        rc = add_dgi(b, dgi, v, used * DGI_KEY_ENTRY);
    tse_wipe(v, sizeof(v));
    return rc;
}

int tse_wallet_perso_store_data(const struct tse_wallet_perso *p, tse_wallet_encrypt_fn enc,
                                void *enc_user, tse_wallet_emit_fn emit, void *emit_user)
{
    if (!p || !emit)
        return TSE_ERR_INVALID_ARG;
    struct builder b = {.enc = enc, .enc_user = enc_user, .emit = emit, .emit_user = emit_user};
    int rc = 0;
    if (p->have15)
        rc = add_dgi(&b, TSE_WALLET_DGI_EF15, p->ef15, 30);
    if (!rc && p->have16)
        rc = add_dgi(&b, TSE_WALLET_DGI_EF16, p->ef16, 55);
    if (!rc && p->have17)
        rc = add_dgi(&b, TSE_WALLET_DGI_EF17, p->ef17, 60);
    if (!rc)
        rc = add_keys(&b, TSE_WALLET_DGI_KEYS1, p->set[0], TSE_WALLET_KEY_USAGES);
    if (!rc)
        rc = add_keys(&b, TSE_WALLET_DGI_KEYS2, p->set[1], TSE_WALLET_KEY_USAGES);
    if (!rc)
        rc = add_keys(&b, TSE_WALLET_DGI_LOAD2, &p->load2[0], 1);
    if (!rc)
        rc = add_keys(&b, TSE_WALLET_DGI_LOAD2B, &p->load2[1], 1);
    if (!rc && p->pin_len) {
        if (p->pin_len < 2 || p->pin_len > 6) {
            rc = TSE_ERR_INVALID_ARG;
        } else {
            uint8_t blk[16], v[17];
            memset(blk, 0xFF, sizeof(blk));
            blk[0] = (uint8_t)p->pin_len;
            memcpy(blk + 1, p->pin, p->pin_len);
            v[0] = p->pin_tries;
            rc = secret(&b, blk, v + 1);
            if (!rc)
                rc = add_dgi(&b, TSE_WALLET_DGI_PIN, v, sizeof(v));
            tse_wipe(blk, sizeof(blk));
            tse_wipe(v, sizeof(v));
        }
    }
    if (!rc && p->have_limits) {
        uint8_t v[7];
        tse_wallet_put32(v, p->max_balance);
        v[4] = (uint8_t)(p->overdraft >> 16);
        v[5] = (uint8_t)(p->overdraft >> 8);
        v[6] = (uint8_t)p->overdraft;
        rc = add_dgi(&b, TSE_WALLET_DGI_LIMITS, v, sizeof(v));
    }
    if (!rc && b.p2 == 0)
        rc = TSE_ERR_INVALID_ARG;
    if (!rc)
        rc = flush(&b, true);
    tse_wipe(&b, sizeof(b));
    return rc;
}
