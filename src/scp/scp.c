/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCP02 (GPC 2.2 Appendix E) and SCP03 (GPC Amendment D), card and host side in one place:
 * both sides derive the same keys and compute the same MACs, so they share every function
 * and differ only in who builds and who checks. Byte layouts: ../shared/spec/gp-scp.md
 * §2–§3, restated in docs/scp.md; every vector of tests/vectors/scp-vectors.txt replays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto_internal.h"
#include "tse/scp.h"
#include "tse/sw.h"

#define SCP02_I_3KEYS      0x01
#define SCP02_I_UNMODIFIED 0x02
#define SCP02_I_ICV_ENC    0x10
#define SCP02_I_RMAC       0x20
#define SCP02_I_PSEUDO     0x40
#define SCP03_I_S16        0x01
#define SCP03_I_PSEUDO     0x10
#define SCP03_I_RMAC       0x20
#define SCP03_I_RENC       0x40

size_t tse_scp_challenge_len(const struct tse_scp_keys *k)
{
    return k->scp == 3 && (k->i & SCP03_I_S16) ? 16 : 8;
}

static size_t mac_len(const struct tse_scp_session *s)
{
    return s->scp == 3 && s->s16 ? 16 : 8;
}

void tse_scp_close(struct tse_scp_session *s)
{
    enum tse_scp_role role = s->role;
    const char *why = s->why;
    tse_wipe(s, sizeof(*s));
    s->role = role;
    s->why = why;
}

static bool keys_ok(const struct tse_scp_keys *k)
{
    if (k->scp == 2)
        return k->key_len == 16;
    if (k->scp == 3)
        return k->key_len == 16 || k->key_len == 24 || k->key_len == 32;
    return false;
}

static uint8_t cla_with_sm(uint8_t cla)
{
    return (cla & 0x40) ? (uint8_t)(cla | 0x20) : (uint8_t)(cla | 0x04);
}

static uint8_t cla_without_sm(uint8_t cla)
{
    return (cla & 0x40) ? (uint8_t)(cla & ~0x20) : (uint8_t)(cla & ~0x0C);
}

static bool cla_has_sm(uint8_t cla)
{
    return (cla & 0x40) ? (cla & 0x20) != 0 : (cla & 0x0C) != 0;
}

/* ---- key derivation and cryptograms ------------------------------------------------------ */

static int scp02_derive(struct tse_scp_session *s)
{
    static const uint8_t consts[4][2] = {{0x01, 0x82}, {0x01, 0x01}, {0x01, 0x02}, {0x01, 0x81}};
    const uint8_t *base[4] = {s->keys.enc, s->keys.mac, s->keys.mac, s->keys.dek};
    uint8_t *out[4] = {s->s_enc, s->s_mac, s->s_rmac, s->s_dek};
    for (int n = 0; n < 4; n++) {
        uint8_t d[16] = {0};
        d[0] = consts[n][0];
        d[1] = consts[n][1];
        d[2] = s->seq[0];
        d[3] = s->seq[1];
        /* i b1 = 0: one base key (the ENC value) for every derivation */
        const uint8_t *k = (s->i & SCP02_I_3KEYS) ? base[n] : s->keys.enc;
        int rc = tse_des3_cbc(k, true, NULL, d, 16, out[n]);
        if (rc)
            return rc;
    }
    return 0;
}

/* SCP02 cryptogram: card = host ch ‖ SSC ‖ card ch; host = SSC ‖ card ch ‖ host ch. */
static int scp02_cryptogram(const struct tse_scp_session *s, bool card, uint8_t out[8])
{
    uint8_t d[16];
    if (card) {
        memcpy(d, s->host_challenge, 8);
        memcpy(d + 8, s->seq, 2);
        memcpy(d + 10, s->card_challenge, 6);
    } else {
        memcpy(d, s->seq, 2);
        memcpy(d + 2, s->card_challenge, 6);
        memcpy(d + 8, s->host_challenge, 8);
    }
    return tse_mac_des3_full(s->s_enc, NULL, d, 16, out);
}

static int scp03_derive(struct tse_scp_session *s)
{
    size_t cl = s->s16 ? 16 : 8, kl = s->keys.key_len;
    uint8_t ctx[32];
    memcpy(ctx, s->host_challenge, cl);
    memcpy(ctx + cl, s->card_challenge, cl);
    int rc = tse_scp03_kdf(s->keys.enc, kl, 0x04, kl * 8, ctx, 2 * cl, s->s_enc);
    if (!rc)
        rc = tse_scp03_kdf(s->keys.mac, kl, 0x06, kl * 8, ctx, 2 * cl, s->s_mac);
    if (!rc)
        rc = tse_scp03_kdf(s->keys.mac, kl, 0x07, kl * 8, ctx, 2 * cl, s->s_rmac);
    return rc;
}

static int scp03_cryptogram(const struct tse_scp_session *s, bool card, uint8_t *out)
{
    size_t cl = s->s16 ? 16 : 8;
    uint8_t ctx[32];
    memcpy(ctx, s->host_challenge, cl);
    memcpy(ctx + cl, s->card_challenge, cl);
    return tse_scp03_kdf(s->s_mac, s->keys.key_len, card ? 0x00 : 0x01, cl * 8, ctx, 2 * cl, out);
}

static size_t crypt_len(const struct tse_scp_session *s)
{
    return s->scp == 3 && s->s16 ? 16 : 8;
}

/* Derive the session keys and both cryptograms from the fields already in s. */
static int derive_all(struct tse_scp_session *s)
{
    int rc = s->scp == 2 ? scp02_derive(s) : scp03_derive(s);
    if (!rc)
        rc = s->scp == 2 ? scp02_cryptogram(s, true, s->card_cryptogram)
                         : scp03_cryptogram(s, true, s->card_cryptogram);
    if (!rc)
        rc = s->scp == 2 ? scp02_cryptogram(s, false, s->host_cryptogram)
                         : scp03_cryptogram(s, false, s->host_cryptogram);
    return rc;
}

/* ---- command MACs --------------------------------------------------------------------------- */

/* SCP02 C-MAC over `in` with the chained ICV; updates the chain. */
static int scp02_cmac(struct tse_scp_session *s, const uint8_t *in, size_t len, uint8_t mac[8],
                      bool first)
{
    uint8_t icv[8] = {0};
    if (!first) {
        if (s->i & SCP02_I_ICV_ENC) {
            int rc = tse_des_ecb(s->s_mac, s->mcv, icv);
            if (rc)
                return rc;
        } else {
            memcpy(icv, s->mcv, 8);
        }
    }
    return tse_mac_retail(s->s_mac, icv, in, len, mac);
}

/* SCP03 C-MAC: CMAC(S-MAC, MCV ‖ in); the full value becomes the new MCV. */
static int scp03_cmac(struct tse_scp_session *s, const uint8_t *in, size_t len, uint8_t full[16])
{
    return tse_aes_cmac2(s->s_mac, s->keys.key_len, s->mcv, 16, in, len, full);
}

static void counter_inc(uint8_t c[16])
{
    for (int k = 15; k >= 0; k--)
        if (++c[k])
            break;
}

static bool level_ok(const struct tse_scp_session *s, uint8_t level)
{
    if (s->scp == 2) {
        if (level != 0x00 && level != 0x01 && level != 0x03 && level != 0x11 && level != 0x13)
            return false;
        return !(level & TSE_SL_RMAC) || (s->i & SCP02_I_RMAC);
    }
    if (level != 0x00 && level != 0x01 && level != 0x03 && level != 0x11 && level != 0x13 &&
        level != 0x33)
        return false;
    if ((level & TSE_SL_RMAC) && !(s->i & SCP03_I_RMAC))
        return false;
    return !(level & TSE_SL_RENC) || (s->i & SCP03_I_RENC);
}

/* EXTERNAL AUTHENTICATE's MAC, identical on both sides; sets the chaining state. */
static int ea_mac(struct tse_scp_session *s, uint8_t level, uint8_t *mac)
{
    size_t cl = crypt_len(s);
    uint8_t in[5 + 16];
    in[0] = 0x84;
    in[1] = 0x82;
    in[2] = level;
    in[3] = 0x00;
    in[4] = (uint8_t)(cl + mac_len(s));
    memcpy(in + 5, s->host_cryptogram, cl);
    if (s->scp == 2) {
        int rc = scp02_cmac(s, in, 5 + cl, mac, true);
        if (!rc) {
            memcpy(s->mcv, mac, 8);
            memcpy(s->rmac_chain, mac, 8);
        }
        return rc;
    }
    memset(s->mcv, 0, 16);
    uint8_t full[16];
    int rc = scp03_cmac(s, in, 5 + cl, full);
    if (!rc) {
        memcpy(mac, full, mac_len(s));
        memcpy(s->mcv, full, 16);
        memset(s->counter, 0, 16);
    }
    return rc;
}

/* ---- host side --------------------------------------------------------------------------------
 */

int tse_scp_host_begin(struct tse_scp_session *s, const struct tse_scp_keys *k, uint8_t kvn,
                       const uint8_t *host_challenge, size_t hlen, uint8_t *cmd, size_t cap,
                       size_t *len)
{
    if (!s || !k || !keys_ok(k) || !host_challenge || hlen != tse_scp_challenge_len(k))
        return TSE_ERR_INVALID_ARG;
    if (cap < 6 + hlen)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memset(s, 0, sizeof(*s));
    s->role = TSE_SCP_HOST;
    s->keys = *k;
    s->scp = k->scp;
    s->i = k->i;
    s->s16 = k->scp == 3 && (k->i & SCP03_I_S16);
    memcpy(s->host_challenge, host_challenge, hlen);
    cmd[0] = 0x80;
    cmd[1] = 0x50;
    cmd[2] = kvn;
    cmd[3] = 0x00;
    cmd[4] = (uint8_t)hlen;
    memcpy(cmd + 5, host_challenge, hlen);
    cmd[5 + hlen] = 0x00;
    *len = 6 + hlen;
    return 0;
}

static int host_check_iu(struct tse_scp_session *s, const uint8_t *rsp, size_t len);

int tse_scp_host_iu_response(struct tse_scp_session *s, const uint8_t *rsp, size_t len)
{
    if (!s || !rsp)
        return TSE_ERR_INVALID_ARG;
    if (len < 10)
        return TSE_ERR_PARSE;
    struct tse_scp_keys given = s->keys;
    if (s->div != TSE_DIV_NONE && tse_scp_diversify((enum tse_scp_div)s->div, rsp, &s->keys))
        return TSE_ERR_INVALID_ARG;
    int rc = host_check_iu(s, rsp, len);
    if (rc != TSE_ERR_DENIED)
        return rc;
    /* Diagnostics: would another diversification of the given keys have matched? */
    for (int d = TSE_DIV_NONE; d <= TSE_DIV_KDF3; d++) {
        if (d == s->div)
            continue;
        struct tse_scp_session t = *s;
        t.keys = given;
        if (d != TSE_DIV_NONE && tse_scp_diversify((enum tse_scp_div)d, rsp, &t.keys))
            continue;
        if (host_check_iu(&t, rsp, len) == 0) {
            snprintf(s->why_buf, sizeof(s->why_buf),
                     "card cryptogram mismatch; the given keys %s would match (div %s)",
                     d == TSE_DIV_NONE ? "without diversification" : "diversified",
                     tse_scp_div_name((enum tse_scp_div)d));
            s->why = s->why_buf;
            break;
        }
        tse_wipe(&t, sizeof(t));
    }
    return rc;
}

static int host_check_iu(struct tse_scp_session *s, const uint8_t *rsp, size_t len)
{
    if (s->scp == 2) {
        if (len != 28 || rsp[11] != 0x02) {
            s->why = "INITIALIZE UPDATE response is not SCP02 (length or protocol byte)";
            return TSE_ERR_PARSE;
        }
        memcpy(s->kdd, rsp, 10);
        s->keys.kvn = rsp[10];
        memcpy(s->seq, rsp + 12, 2);
        memcpy(s->card_challenge, rsp + 14, 6);
    } else {
        size_t cl = s->s16 ? 16 : 8;
        if (len < 13 + 2 * cl || rsp[11] != 0x03) {
            s->why = "INITIALIZE UPDATE response is not SCP03 (length or protocol byte)";
            return TSE_ERR_PARSE;
        }
        uint8_t i = rsp[12];
        bool has_seq = (i & SCP03_I_PSEUDO) != 0;
        if (len != 13 + 2 * cl + (has_seq ? 3 : 0) || (i & SCP03_I_S16) != s->s16) {
            s->why = "INITIALIZE UPDATE response length does not match its i parameter";
            return TSE_ERR_PARSE;
        }
        memcpy(s->kdd, rsp, 10);
        s->keys.kvn = rsp[10];
        s->i = i;
        memcpy(s->card_challenge, rsp + 13, cl);
        if (has_seq)
            memcpy(s->seq, rsp + 13 + 2 * cl, 3);
    }
    int rc = derive_all(s);
    if (rc)
        return rc;
    size_t cl = crypt_len(s);
    const uint8_t *card_crypto = s->scp == 2 ? rsp + 20 : rsp + 13 + cl;
    if (!tse_ct_equal(card_crypto, s->card_cryptogram, cl)) {
        s->why = "card cryptogram mismatch: the card does not have these keys";
        return TSE_ERR_DENIED;
    }
    s->initialized = true;
    return 0;
}

int tse_scp_host_external_authenticate(struct tse_scp_session *s, uint8_t level, uint8_t *cmd,
                                       size_t cap, size_t *len)
{
    if (!s || !s->initialized || !level_ok(s, level))
        return TSE_ERR_INVALID_ARG;
    size_t cl = crypt_len(s), ml = mac_len(s);
    if (cap < 5 + cl + ml)
        return TSE_ERR_BUFFER_TOO_SMALL;
    uint8_t mac[16];
    int rc = ea_mac(s, level, mac);
    if (rc)
        return rc;
    cmd[0] = 0x84;
    cmd[1] = 0x82;
    cmd[2] = level;
    cmd[3] = 0x00;
    cmd[4] = (uint8_t)(cl + ml);
    memcpy(cmd + 5, s->host_cryptogram, cl);
    memcpy(cmd + 5 + cl, mac, ml);
    *len = 5 + cl + ml;
    s->level = level;
    s->authenticated = true;
    return 0;
}

/* Keep the plain command for the SCP02 R-MAC of its response. */
static void keep_cmd(struct tse_scp_session *s, const struct tse_apdu *plain)
{
    s->last_cmd[0] = cla_without_sm(plain->cla);
    s->last_cmd[1] = plain->ins;
    s->last_cmd[2] = plain->p1;
    s->last_cmd[3] = plain->p2;
    size_t lc = plain->lc > 255 ? 255 : plain->lc;
    s->last_cmd[4] = (uint8_t)lc;
    if (lc)
        memcpy(s->last_cmd + 5, plain->data, lc);
    s->last_cmd_len = 5 + lc;
}

int tse_scp_host_wrap(struct tse_scp_session *s, const uint8_t *plain, size_t len, uint8_t *out,
                      size_t cap, size_t *olen)
{
    if (!s || !s->authenticated)
        return TSE_ERR_STATE;
    struct tse_apdu a;
    if (tse_apdu_parse(plain, len, &a) != 0)
        return TSE_ERR_PARSE;
    keep_cmd(s, &a);
    if (!(s->level & TSE_SL_CMAC)) {
        if (cap < len)
            return TSE_ERR_BUFFER_TOO_SMALL;
        memcpy(out, plain, len);
        *olen = len;
        return 0;
    }
    size_t ml = mac_len(s), bs = s->scp == 3 ? 16 : 8;
    /* Protected commands use short Lc: the card refuses longer ones (tse_scp_card_unwrap). */
    uint8_t body[5 + 255 + 32];
    size_t wire_data = (s->level & TSE_SL_CDEC) && a.lc ? (a.lc / bs + 1) * bs : a.lc;
    if (wire_data + ml > 255)
        return TSE_ERR_INVALID_ARG;
    uint8_t cla = cla_with_sm(a.cla);
    size_t dlen = a.lc;
    int rc = 0;
    uint8_t mac[16];
    if (s->scp == 2) {
        /* MAC over the plain command (modified: CLA with SM bit and Lc + 8), then encrypt */
        uint8_t *in = body;
        bool unmod = (s->i & SCP02_I_UNMODIFIED) != 0;
        in[0] = unmod ? a.cla : cla;
        in[1] = a.ins;
        in[2] = a.p1;
        in[3] = a.p2;
        in[4] = (uint8_t)(a.lc + (unmod ? 0 : 8));
        if (a.lc)
            memcpy(in + 5, a.data, a.lc);
        rc = scp02_cmac(s, in, 5 + a.lc, mac, false);
        if (rc)
            return rc;
        memcpy(s->mcv, mac, 8);
        if ((s->level & TSE_SL_CDEC) && a.lc) {
            dlen = tse_pad80(a.data, a.lc, 8, body);
            rc = tse_des3_cbc(s->s_enc, true, NULL, body, dlen, body);
        } else if (a.lc) {
            memcpy(body, a.data, a.lc);
        }
    } else {
        if (s->level & TSE_SL_CDEC)
            counter_inc(s->counter);
        if ((s->level & TSE_SL_CDEC) && a.lc) {
            uint8_t icv[16];
            rc = tse_aes_ecb(s->s_enc, s->keys.key_len, true, s->counter, 16, icv);
            dlen = tse_pad80(a.data, a.lc, 16, body + 5);
            if (!rc)
                rc = tse_aes_cbc(s->s_enc, s->keys.key_len, true, icv, body + 5, dlen, body + 5);
        } else if (a.lc) {
            memcpy(body + 5, a.data, a.lc);
        }
        body[0] = cla;
        body[1] = a.ins;
        body[2] = a.p1;
        body[3] = a.p2;
        body[4] = (uint8_t)(dlen + ml);
        uint8_t full[16];
        if (!rc)
            rc = scp03_cmac(s, body, 5 + dlen, full);
        if (rc)
            return rc;
        memcpy(s->mcv, full, 16);
        memcpy(mac, full, ml);
        memmove(body, body + 5, dlen);
    }
    if (rc)
        return rc;
    memcpy(body + dlen, mac, ml);
    struct tse_apdu w = {.cla = cla,
                         .ins = a.ins,
                         .p1 = a.p1,
                         .p2 = a.p2,
                         .data = body,
                         .lc = dlen + ml,
                         .ne = a.ne,
                         .extended = a.extended};
    int n = tse_apdu_encode(&w, out, cap);
    if (n < 0)
        return n;
    *olen = (size_t)n;
    return 0;
}

static bool protected_sw(uint16_t sw)
{
    uint8_t sw1 = (uint8_t)(sw >> 8);
    return sw == SW_NO_ERROR || sw1 == 0x62 || sw1 == 0x63;
}

/* SCP02 R-MAC over the kept command ‖ Lr ‖ data ‖ SW, chained. */
/* prefix ‖ data ‖ SW1 SW2 in one buffer: the stack one when it fits, else the heap. */
static uint8_t *joined(const uint8_t *prefix, size_t plen, const uint8_t *data, size_t len,
                       uint16_t sw, uint8_t *stackbuf, size_t cap, size_t *n)
{
    *n = plen + len + 2;
    uint8_t *b = *n <= cap ? stackbuf : malloc(*n);
    if (!b)
        return NULL;
    if (plen)
        memcpy(b, prefix, plen);
    if (len)
        memcpy(b + plen, data, len);
    b[plen + len] = (uint8_t)(sw >> 8);
    b[plen + len + 1] = (uint8_t)sw;
    return b;
}

static int scp02_rmac(struct tse_scp_session *s, const uint8_t *data, size_t len, uint16_t sw,
                      uint8_t mac[8])
{
    /* the kept command ‖ Lr, then the data and SW */
    uint8_t pre[5 + 255 + 1], sb[512];
    size_t p = s->last_cmd_len, n;
    memcpy(pre, s->last_cmd, p);
    pre[p++] = (uint8_t)len;
    uint8_t *in = joined(pre, p, data, len, sw, sb, sizeof(sb), &n);
    if (!in)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_mac_retail(s->s_rmac, s->rmac_chain, in, n, mac);
    if (in != sb)
        free(in);
    if (!rc)
        memcpy(s->rmac_chain, mac, 8);
    return rc;
}

static int scp03_rmac(struct tse_scp_session *s, const uint8_t *data, size_t len, uint16_t sw,
                      uint8_t full[16])
{
    uint8_t sb[512];
    size_t n;
    uint8_t *in = joined(NULL, 0, data, len, sw, sb, sizeof(sb), &n);
    if (!in)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_aes_cmac2(s->s_rmac, s->keys.key_len, s->mcv, 16, in, n, full);
    if (in != sb)
        free(in);
    return rc;
}

static int renc_icv(struct tse_scp_session *s, uint8_t icv[16])
{
    uint8_t c[16];
    memcpy(c, s->counter, 16);
    c[0] = 0x80;
    return tse_aes_ecb(s->s_enc, s->keys.key_len, true, c, 16, icv);
}

int tse_scp_host_unwrap(struct tse_scp_session *s, const uint8_t *rsp, size_t len, uint8_t *out,
                        size_t cap, size_t *olen)
{
    if (!s || !rsp || len < 2)
        return TSE_ERR_PARSE;
    if (cap < len)
        return TSE_ERR_BUFFER_TOO_SMALL;
    uint16_t sw = (uint16_t)(rsp[len - 2] << 8 | rsp[len - 1]);
    bool rmac = s->authenticated && (s->level & TSE_SL_RMAC);
    if (!rmac || (s->scp == 3 && !protected_sw(sw))) {
        memcpy(out, rsp, len);
        *olen = len;
        return 0;
    }
    size_t ml = mac_len(s);
    if (len < 2 + ml) {
        s->why = "response too short for its R-MAC";
        return TSE_ERR_PARSE;
    }
    size_t dlen = len - 2 - ml;
    uint8_t mac[16];
    int rc = s->scp == 2 ? scp02_rmac(s, rsp, dlen, sw, mac) : scp03_rmac(s, rsp, dlen, sw, mac);
    if (rc)
        return rc;
    if (!tse_ct_equal(mac, rsp + dlen, ml)) {
        s->why = "R-MAC mismatch";
        return TSE_ERR_DENIED;
    }
    if (s->scp == 3 && (s->level & TSE_SL_RENC) && dlen) {
        uint8_t icv[16];
        if (dlen % 16)
            return TSE_ERR_PARSE;
        rc = renc_icv(s, icv);
        if (!rc)
            rc = tse_aes_cbc(s->s_enc, s->keys.key_len, false, icv, rsp, dlen, out);
        long plain = rc ? -1 : tse_unpad80(out, dlen);
        if (plain < 0) {
            s->why = "R-ENC padding invalid";
            return TSE_ERR_DENIED;
        }
        dlen = (size_t)plain;
    } else {
        memmove(out, rsp, dlen);
    }
    out[dlen] = (uint8_t)(sw >> 8);
    out[dlen + 1] = (uint8_t)sw;
    *olen = dlen + 2;
    return 0;
}

/* ---- card side --------------------------------------------------------------------------------
 */

int tse_scp_card_initialize_update(struct tse_scp_session *s, const struct tse_scp_keys *k,
                                   const uint8_t kdd[10], uint32_t seq,
                                   const uint8_t *host_challenge, size_t hlen,
                                   const uint8_t *card_challenge, const struct tse_aid *sd_aid,
                                   uint8_t *rsp, size_t cap, size_t *rlen)
{
    if (!s || !k || !keys_ok(k) || !kdd || !host_challenge)
        return TSE_ERR_INVALID_ARG;
    memset(s, 0, sizeof(*s));
    s->role = TSE_SCP_CARD;
    s->keys = *k;
    s->scp = k->scp;
    s->i = k->i;
    s->s16 = k->scp == 3 && (k->i & SCP03_I_S16);
    size_t cl = tse_scp_challenge_len(k);
    if (hlen != cl)
        return TSE_ERR_INVALID_ARG;
    memcpy(s->host_challenge, host_challenge, cl);
    memcpy(s->kdd, kdd, 10);
    int rc;
    if (s->scp == 2) {
        s->seq[0] = (uint8_t)(seq >> 8);
        s->seq[1] = (uint8_t)seq;
        if ((rc = scp02_derive(s)) != 0)
            return rc;
        if (card_challenge) {
            memcpy(s->card_challenge, card_challenge, 6);
        } else if ((s->i & SCP02_I_PSEUDO) && sd_aid) {
            uint8_t mac[8]; /* RetailMAC(C-MAC key, AID) */
            if ((rc = tse_mac_retail(s->s_mac, NULL, sd_aid->b, sd_aid->len, mac)) != 0)
                return rc;
            memcpy(s->card_challenge, mac, 6);
        } else {
            return TSE_ERR_INVALID_ARG;
        }
        if (cap < 28)
            return TSE_ERR_BUFFER_TOO_SMALL;
    } else {
        s->seq[0] = (uint8_t)(seq >> 16);
        s->seq[1] = (uint8_t)(seq >> 8);
        s->seq[2] = (uint8_t)seq;
        if (card_challenge) {
            memcpy(s->card_challenge, card_challenge, cl);
        } else if ((s->i & SCP03_I_PSEUDO) && sd_aid) {
            uint8_t ctx[3 + TSE_AID_MAX];
            memcpy(ctx, s->seq, 3);
            memcpy(ctx + 3, sd_aid->b, sd_aid->len);
            rc = tse_scp03_kdf(k->enc, k->key_len, 0x02, cl * 8, ctx, 3 + sd_aid->len,
                               s->card_challenge);
            if (rc)
                return rc;
        } else {
            return TSE_ERR_INVALID_ARG;
        }
        if (cap < 13 + 2 * cl + 3)
            return TSE_ERR_BUFFER_TOO_SMALL;
    }
    if ((rc = derive_all(s)) != 0)
        return rc;
    memcpy(rsp, kdd, 10);
    rsp[10] = k->kvn;
    if (s->scp == 2) {
        rsp[11] = 0x02;
        memcpy(rsp + 12, s->seq, 2);
        memcpy(rsp + 14, s->card_challenge, 6);
        memcpy(rsp + 20, s->card_cryptogram, 8);
        *rlen = 28;
    } else {
        rsp[11] = 0x03;
        rsp[12] = s->i;
        memcpy(rsp + 13, s->card_challenge, cl);
        memcpy(rsp + 13 + cl, s->card_cryptogram, cl);
        *rlen = 13 + 2 * cl;
        if (s->i & SCP03_I_PSEUDO) {
            memcpy(rsp + *rlen, s->seq, 3);
            *rlen += 3;
        }
    }
    s->initialized = true;
    return 0;
}

static uint16_t fail_close(struct tse_scp_session *s, const char *why, uint16_t sw)
{
    s->why = why;
    tse_scp_close(s);
    return sw;
}

uint16_t tse_scp_card_external_authenticate(struct tse_scp_session *s, const struct tse_apdu *a)
{
    if (!s->initialized || s->authenticated)
        return fail_close(s, "EXTERNAL AUTHENTICATE without INITIALIZE UPDATE",
                          SW_SECURITY_STATUS_NOT_SATISFIED);
    size_t cl = crypt_len(s), ml = mac_len(s);
    if (a->lc != cl + ml)
        return fail_close(s, "EXTERNAL AUTHENTICATE length", SW_WRONG_LENGTH);
    if (!level_ok(s, a->p1) || a->p2 != 0)
        return fail_close(s, "security level not supported", SW_INCORRECT_P1P2);
    if (!tse_ct_equal(a->data, s->host_cryptogram, cl))
        return fail_close(s, "host cryptogram mismatch", SW_AUTHENTICATION_FAILED);
    uint8_t mac[16];
    if (ea_mac(s, a->p1, mac) != 0 || !tse_ct_equal(mac, a->data + cl, ml))
        return fail_close(s, "EXTERNAL AUTHENTICATE C-MAC mismatch",
                          SW_SECURITY_STATUS_NOT_SATISFIED);
    s->level = a->p1;
    s->authenticated = true;
    s->initialized = false;
    s->why = NULL;
    return SW_NO_ERROR;
}

uint16_t tse_scp_card_unwrap(struct tse_scp_session *s, const struct tse_apdu *in,
                             struct tse_apdu *out, uint8_t *buf, size_t cap)
{
    *out = *in;
    if (!s->authenticated) {
        if (cla_has_sm(in->cla)) {
            s->why = "protected command without a secure channel";
            return SW_SECURITY_STATUS_NOT_SATISFIED;
        }
        return SW_NO_ERROR;
    }
    if (!(s->level & TSE_SL_CMAC)) {
        keep_cmd(s, in);
        return SW_NO_ERROR;
    }
    if (!cla_has_sm(in->cla))
        return fail_close(s, "command without C-MAC in a C-MAC session",
                          SW_SECURITY_STATUS_NOT_SATISFIED);
    size_t ml = mac_len(s), bs = s->scp == 3 ? 16 : 8;
    if (in->lc < ml || in->lc - ml > 255 || cap < in->lc + 16)
        return fail_close(s, "C-MAC missing", SW_SECURITY_STATUS_NOT_SATISFIED);
    size_t dlen = in->lc - ml;
    const uint8_t *mac = in->data + dlen;
    out->cla = cla_without_sm(in->cla);
    out->lc = dlen;
    out->data = dlen ? in->data : NULL;
    if (s->scp == 2) {
        /* decrypt first: the SCP02 C-MAC covers the plaintext */
        size_t plen = dlen;
        if ((s->level & TSE_SL_CDEC) && dlen) {
            if (dlen % bs || tse_des3_cbc(s->s_enc, false, NULL, in->data, dlen, buf) != 0)
                return fail_close(s, "C-DEC data length", SW_SECURITY_STATUS_NOT_SATISFIED);
            long p = tse_unpad80(buf, dlen);
            if (p < 0)
                return fail_close(s, "C-DEC padding", SW_SECURITY_STATUS_NOT_SATISFIED);
            plen = (size_t)p;
            out->data = buf;
        }
        uint8_t hdr_in[5 + 255];
        bool unmod = (s->i & SCP02_I_UNMODIFIED) != 0;
        hdr_in[0] = unmod ? out->cla : in->cla;
        hdr_in[1] = in->ins;
        hdr_in[2] = in->p1;
        hdr_in[3] = in->p2;
        hdr_in[4] = (uint8_t)(plen + (unmod ? 0 : 8));
        if (plen)
            memcpy(hdr_in + 5, out->data, plen);
        uint8_t calc[8];
        if (scp02_cmac(s, hdr_in, 5 + plen, calc, false) != 0 || !tse_ct_equal(calc, mac, 8))
            return fail_close(s, "C-MAC mismatch", SW_SECURITY_STATUS_NOT_SATISFIED);
        memcpy(s->mcv, calc, 8);
        out->lc = plen;
        if (!plen)
            out->data = NULL;
    } else {
        uint8_t hdr[5] = {in->cla, in->ins, in->p1, in->p2, (uint8_t)in->lc}, full[16];
        /* MCV ‖ header ‖ data' in two parts: build them contiguously */
        uint8_t tmp[5 + 255];
        memcpy(tmp, hdr, 5);
        memcpy(tmp + 5, in->data, dlen);
        if (scp03_cmac(s, tmp, 5 + dlen, full) != 0 || !tse_ct_equal(full, mac, ml))
            return fail_close(s, "C-MAC mismatch", SW_SECURITY_STATUS_NOT_SATISFIED);
        memcpy(s->mcv, full, 16);
        if (s->level & TSE_SL_CDEC) {
            counter_inc(s->counter);
            if (dlen) {
                uint8_t icv[16];
                if (dlen % bs ||
                    tse_aes_ecb(s->s_enc, s->keys.key_len, true, s->counter, 16, icv) != 0 ||
                    tse_aes_cbc(s->s_enc, s->keys.key_len, false, icv, in->data, dlen, buf) != 0)
                    return fail_close(s, "C-DEC data length", SW_SECURITY_STATUS_NOT_SATISFIED);
                long p = tse_unpad80(buf, dlen);
                if (p < 0)
                    return fail_close(s, "C-DEC padding", SW_SECURITY_STATUS_NOT_SATISFIED);
                out->lc = (size_t)p;
                out->data = p ? buf : NULL;
            }
        }
    }
    if (out->lc == 0)
        out->iso_case = out->has_le ? 2 : 1;
    else
        out->iso_case = out->has_le ? 4 : 3;
    keep_cmd(s, out);
    return SW_NO_ERROR;
}

int tse_scp_card_wrap_response(struct tse_scp_session *s, uint8_t *buf, size_t *len, size_t cap,
                               uint16_t sw)
{
    if (!s->authenticated || !(s->level & TSE_SL_RMAC))
        return 0;
    if (s->scp == 3 && !protected_sw(sw))
        return 0;
    size_t ml = mac_len(s), dlen = *len;
    int rc;
    if (s->scp == 3 && (s->level & TSE_SL_RENC) && dlen) {
        uint8_t icv[16];
        if (dlen + 16 + ml > cap)
            return TSE_ERR_BUFFER_TOO_SMALL;
        dlen = tse_pad80(buf, dlen, 16, buf);
        rc = renc_icv(s, icv);
        if (!rc)
            rc = tse_aes_cbc(s->s_enc, s->keys.key_len, true, icv, buf, dlen, buf);
        if (rc)
            return rc;
    }
    if (dlen + ml > cap)
        return TSE_ERR_BUFFER_TOO_SMALL;
    uint8_t mac[16];
    rc = s->scp == 2 ? scp02_rmac(s, buf, dlen, sw, mac) : scp03_rmac(s, buf, dlen, sw, mac);
    if (rc)
        return rc;
    memcpy(buf + dlen, mac, ml);
    *len = dlen + ml;
    return 0;
}

int tse_scp_kcv(const uint8_t *key, size_t len, bool aes, uint8_t kcv[3])
{
    if (aes)
        return tse_kcv_aes(key, len, kcv, 3);
    if (len != 16)
        return TSE_ERR_INVALID_ARG;
    return tse_kcv_des3(key, kcv, 3);
}

/* The key encryption key: session DEK (SCP02) or static DEK (SCP03). */
static int kek_crypt(const struct tse_scp_session *s, bool encrypt, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    if (s->scp == 2)
        return tse_des3_ecb(s->s_dek, encrypt, in, len, out);
    return tse_aes_cbc(s->keys.dek, s->keys.key_len, encrypt, NULL, in, len, out);
}

static int data_crypt(const struct tse_scp_session *s, bool encrypt, const uint8_t *in, size_t len,
                      uint8_t *out)
{
    if (!s || !s->authenticated)
        return TSE_ERR_STATE;
    if (len == 0 || len % (s->scp == 2 ? 8u : 16u))
        return TSE_ERR_INVALID_ARG;
    return kek_crypt(s, encrypt, in, len, out) ? TSE_ERR_INVALID_ARG : 0;
}

int tse_scp_card_decrypt_data(const struct tse_scp_session *s, const uint8_t *in, size_t len,
                              uint8_t *out)
{
    return data_crypt(s, false, in, len, out);
}

int tse_scp_host_encrypt_data(const struct tse_scp_session *s, const uint8_t *in, size_t len,
                              uint8_t *out)
{
    return data_crypt(s, true, in, len, out);
}

int tse_scp_host_put_key(struct tse_scp_session *s, uint8_t replace_kvn, uint8_t new_kvn,
                         uint8_t type, const uint8_t *const keys[3], size_t key_len, uint8_t *cmd,
                         size_t cap, size_t *len)
{
    if (!s || !s->authenticated)
        return TSE_ERR_STATE;
    bool aes = type == TSE_KEY_TYPE_AES;
    if ((!aes && (type != TSE_KEY_TYPE_DES || key_len != 16)) ||
        (aes && key_len != 16 && key_len != 24 && key_len != 32))
        return TSE_ERR_INVALID_ARG;
    if (cap < 6 + 1 + 3 * (3 + 33 + 4) + 1)
        return TSE_ERR_BUFFER_TOO_SMALL;
    size_t n = 0;
    cmd[n++] = 0x80;
    cmd[n++] = 0xD8;
    cmd[n++] = replace_kvn;
    cmd[n++] = 0x81;
    size_t lc_at = n++;
    cmd[n++] = new_kvn;
    for (int k = 0; k < 3; k++) {
        uint8_t clear[32] = {0}, enc[32], kcv[3];
        size_t blen = s->scp == 3 ? (key_len + 15) / 16 * 16 : (key_len + 7) / 8 * 8;
        memcpy(clear, keys[k], key_len);
        int rc = kek_crypt(s, true, clear, blen, enc);
        if (!rc)
            rc = tse_scp_kcv(keys[k], key_len, aes, kcv);
        tse_wipe(clear, sizeof(clear));
        if (rc)
            return rc;
        cmd[n++] = type;
        if (s->scp == 3) { /* L covers a leading clear key length byte */
            cmd[n++] = (uint8_t)(1 + blen);
            cmd[n++] = (uint8_t)key_len;
        } else {
            cmd[n++] = (uint8_t)blen;
        }
        memcpy(cmd + n, enc, blen);
        n += blen;
        cmd[n++] = 3;
        memcpy(cmd + n, kcv, 3);
        n += 3;
    }
    cmd[lc_at] = (uint8_t)(n - lc_at - 1);
    cmd[n++] = 0x00;
    *len = n;
    return 0;
}

int tse_scp_card_decrypt_key(const struct tse_scp_session *s, uint8_t type, const uint8_t *block,
                             size_t blen, uint8_t *key, size_t *klen)
{
    if (!s->authenticated)
        return TSE_ERR_STATE;
    size_t bs = s->scp == 3 ? 16 : 8, clear_len = blen;
    if (blen % bs) { /* a leading clear key length byte, then the ciphertext */
        clear_len = block[0];
        block++;
        blen--;
    }
    if (blen == 0 || blen % bs || blen > 32 || clear_len > blen || clear_len == 0)
        return TSE_ERR_PARSE;
    uint8_t out[32];
    if (kek_crypt(s, false, block, blen, out) != 0)
        return TSE_ERR_PARSE;
    if (type == TSE_KEY_TYPE_DES && clear_len != 16)
        return TSE_ERR_PARSE;
    if (type == TSE_KEY_TYPE_AES && clear_len != 16 && clear_len != 24 && clear_len != 32)
        return TSE_ERR_PARSE;
    memcpy(key, out, clear_len);
    tse_wipe(out, sizeof(out));
    *klen = clear_len;
    return 0;
}

/* ---- key diversification -----------------------------------------------------------------------
 */

static const char *const DIV_NAMES[] = {"none", "emv", "visa2", "visa", "kdf3"};

const char *tse_scp_div_name(enum tse_scp_div d)
{
    return (unsigned)d < sizeof(DIV_NAMES) / sizeof(DIV_NAMES[0]) ? DIV_NAMES[d] : "?";
}

int tse_scp_div_from_name(const char *name)
{
    for (size_t d = 0; d < sizeof(DIV_NAMES) / sizeof(DIV_NAMES[0]); d++)
        if (!strcmp(name, DIV_NAMES[d]))
            return (int)d;
    return -1;
}

int tse_scp_diversify(enum tse_scp_div d, const uint8_t kdd[10], struct tse_scp_keys *k)
{
    uint8_t *keys[3] = {k->enc, k->mac, k->dek};
    for (uint8_t kid = 1; kid <= 3; kid++) {
        uint8_t out[32];
        int rc = 0;
        if (d == TSE_DIV_KDF3) {
            uint8_t ctx[16];
            memset(ctx, 0, sizeof(ctx));
            ctx[4] = kid;
            memcpy(ctx + 6, kdd, 10);
            for (size_t done = 0, j = 1; !rc && done < k->key_len; j++) {
                uint8_t block[16];
                ctx[0] = (uint8_t)j;
                rc = tse_aes_cmac2(keys[kid - 1], k->key_len, ctx, sizeof(ctx), NULL, 0, block);
                size_t n = k->key_len - done < 16 ? k->key_len - done : 16;
                memcpy(out + done, block, n);
                done += n;
            }
        } else if (d == TSE_DIV_EMV || d == TSE_DIV_VISA2 || d == TSE_DIV_VISA) {
            if (k->key_len != 16)
                return TSE_ERR_INVALID_ARG;
            uint8_t half[6], dd[16];
            if (d == TSE_DIV_EMV) {
                memcpy(half, kdd + 4, 6);
            } else if (d == TSE_DIV_VISA2) {
                memcpy(half, kdd, 2);
                memcpy(half + 2, kdd + 4, 4);
            } else {
                memcpy(half, kdd, 4);
                memcpy(half + 4, kdd + 8, 2);
            }
            memcpy(dd, half, 6);
            dd[6] = 0xF0;
            dd[7] = kid;
            memcpy(dd + 8, half, 6);
            dd[14] = 0x0F;
            dd[15] = kid;
            rc = tse_des3_ecb(keys[kid - 1], true, dd, 16, out);
        } else if (d == TSE_DIV_NONE) {
            memcpy(out, keys[kid - 1], k->key_len);
        } else {
            return TSE_ERR_INVALID_ARG;
        }
        if (rc)
            return rc;
        memcpy(keys[kid - 1], out, k->key_len);
        tse_wipe(out, sizeof(out));
    }
    return 0;
}

void tse_scp_host_set_diversification(struct tse_scp_session *s, enum tse_scp_div d)
{
    s->div = (int)d;
}

int tse_pboc_diversify(const uint8_t key[16], const uint8_t d8[8], uint8_t child[16])
{
    /* both halves in one ECB call: one key schedule instead of two (the purse terminal
     * diversifies two card keys per transaction, and key schedules dominated its profile) */
    uint8_t d16[16];
    memcpy(d16, d8, 8);
    for (int k = 0; k < 8; k++)
        d16[8 + k] = (uint8_t)~d8[k];
    return tse_des3_ecb(key, true, d16, 16, child);
}

int tse_pboc_diversify2(const uint8_t master[16], const uint8_t first[8], const uint8_t second[8],
                        uint8_t key[16])
{
    uint8_t mid[16];
    int rc = tse_pboc_diversify(master, first, mid);
    if (!rc)
        rc = tse_pboc_diversify(mid, second, key);
    tse_wipe(mid, sizeof(mid));
    return rc;
}
