/* SPDX-License-Identifier: Apache-2.0 */
/* ISO/IEC 14443 type A air-time model (include/tse/airtime.h). */
#include <string.h>

#include "tse/airtime.h"
#include "tse/error.h"

/* 1172/fc: the PICC->PCD minimum, also the PCD->PICC delay when the reader's last bit was
 * 0. Using one value both ways keeps the model a lower bound (1236/fc applies after a 1). */
#define FDT_MIN_CLOCKS  1172.0
#define FWT_UNIT_CLOCKS 4096.0 /* 256 * 16 */
#define ISO4_OVERHEAD   3      /* PCB + CRC_A */
#define RBLOCK_LEN      3      /* R(ACK): PCB + CRC_A */
#define SWTX_LEN        4      /* S(WTX): PCB + WTXM + CRC_A */

unsigned tse_air_rate_kbps(enum tse_air_rate br)
{
    switch (br) {
    case TSE_AIR_106:
        return 106;
    case TSE_AIR_212:
        return 212;
    case TSE_AIR_424:
        return 424;
    case TSE_AIR_848:
        return 848;
    }
    return 0;
}

int tse_air_rate_parse(const char *s, enum tse_air_rate *br)
{
    static const char *const names[] = {"106", "212", "424", "848"};
    if (!s || !br)
        return TSE_ERR_INVALID_ARG;
    for (unsigned i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *br = (enum tse_air_rate)i;
            return 0;
        }
    return TSE_ERR_INVALID_ARG;
}

double tse_air_etu_us(enum tse_air_rate br)
{
    unsigned d = 1u << ((unsigned)br & 3u);
    return 128.0 / ((double)d * TSE_AIR_FC_HZ) * 1e6;
}

double tse_air_frame_us(size_t n, enum tse_air_rate br)
{
    return n ? (9.0 * (double)n + 2.0) * tse_air_etu_us(br) : 0.0;
}

double tse_air_short_frame_us(void)
{
    return 9.0 * tse_air_etu_us(TSE_AIR_106);
}

double tse_air_fdt_min_us(void)
{
    return FDT_MIN_CLOCKS / TSE_AIR_FC_HZ * 1e6;
}

double tse_air_fwt_us(unsigned fwi)
{
    if (fwi > 14)
        fwi = 4;
    return FWT_UNIT_CLOCKS / TSE_AIR_FC_HZ * 1e6 * (double)(1u << fwi);
}

double tse_air_sfgt_us(unsigned sfgi)
{
    if (sfgi == 0 || sfgi > 14)
        return 0.0;
    return FWT_UNIT_CLOCKS / TSE_AIR_FC_HZ * 1e6 * (double)(1u << sfgi);
}

size_t tse_air_fsc_bytes(unsigned fsci)
{
    static const size_t table[] = {16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096};
    return fsci < sizeof(table) / sizeof(table[0]) ? table[fsci] : 256;
}

void tse_air_link_default(struct tse_air_link *l)
{
    l->rate = TSE_AIR_106;
    l->fsc = tse_air_fsc_bytes(2);
    l->fsd = 256;
    l->fwi = 4;
    l->sfgi = 0;
    l->cid = false;
}

int tse_air_link_from_ats(struct tse_air_link *l, const uint8_t *ats, size_t len)
{
    if (!l || (!ats && len))
        return TSE_ERR_INVALID_ARG;
    if (len < 1 || ats[0] != len)
        return TSE_ERR_PARSE;
    unsigned fsci = 2, fwi = 4, sfgi = 0;
    if (len >= 2) {
        uint8_t t0 = ats[1];
        size_t need = 2 + !!(t0 & 0x10) + !!(t0 & 0x20) + !!(t0 & 0x40);
        if (need > len)
            return TSE_ERR_PARSE;
        fsci = t0 & 0x0F;
        size_t i = 2;
        if (t0 & 0x10)
            i++; /* TA1: bit rates, not used by the model (the link rate is the caller's) */
        if (t0 & 0x20) {
            fwi = ats[i] >> 4;
            sfgi = ats[i] & 0x0F;
        }
    }
    l->fsc = tse_air_fsc_bytes(fsci);
    l->fwi = fwi > 14 ? 4 : fwi;
    l->sfgi = sfgi > 14 ? 0 : sfgi;
    return 0;
}

/* Blocks carrying len bytes of INF with at most max_inf per block (one empty block for 0). */
static unsigned blocks_for(size_t len, size_t max_inf)
{
    return len == 0 ? 1u : (unsigned)((len + max_inf - 1) / max_inf);
}

/* One direction: the I-blocks, each followed by an FDT, and an R(ACK) + FDT from the other
 * side for every block but the last. */
static double direction_us(size_t len, size_t max_inf, size_t ovh, enum tse_air_rate br,
                           unsigned *nblocks)
{
    unsigned n = blocks_for(len, max_inf);
    double fdt = tse_air_fdt_min_us(), t = 0.0;
    size_t left = len;
    for (unsigned i = 0; i < n; i++) {
        size_t inf = left > max_inf ? max_inf : left;
        left -= inf;
        t += tse_air_frame_us(inf + ovh, br) + fdt;
    }
    t += (double)(n - 1) * (tse_air_frame_us(RBLOCK_LEN + (ovh - ISO4_OVERHEAD), br) + fdt);
    *nblocks = n;
    return t;
}

int tse_air_exchange(const struct tse_air_link *l, size_t clen, size_t rlen, double card_us,
                     struct tse_air_exchange *out)
{
    if (!l || !out)
        return TSE_ERR_INVALID_ARG;
    size_t ovh = ISO4_OVERHEAD + (l->cid ? 1u : 0u);
    if (l->fsc <= ovh || l->fsd <= ovh)
        return TSE_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    out->cmd_us = direction_us(clen, l->fsc - ovh, ovh, l->rate, &out->cmd_blocks);
    out->rsp_us = direction_us(rlen, l->fsd - ovh, ovh, l->rate, &out->rsp_blocks);
    double fdt = tse_air_fdt_min_us();
    if (card_us < 0)
        card_us = 0;
    out->wait_us = card_us > fdt ? card_us - fdt : 0.0;
    double fwt = tse_air_fwt_us(l->fwi);
    if (card_us > fwt) {
        /* The card asks for more time once per FWT it would otherwise overrun. */
        double q = card_us / fwt;
        unsigned n = (unsigned)q;
        if ((double)n < q)
            n++;
        out->wtx = n - 1u;
        double pair = 2.0 * (tse_air_frame_us(SWTX_LEN + (l->cid ? 1u : 0u), l->rate) + fdt);
        out->wtx_us = (double)out->wtx * pair;
    }
    out->air_us = out->cmd_us + out->rsp_us + out->wtx_us;
    /* S(WTX) frames go out while the card works, so they overlap wait_us */
    out->total_us = out->cmd_us + out->wait_us + out->rsp_us;
    return 0;
}

double tse_air_activation_us(size_t uid_len, size_t ats_len, unsigned sfgi)
{
    unsigned levels = uid_len == 4 ? 1u : uid_len == 7 ? 2u : uid_len == 10 ? 3u : 0u;
    if (!levels)
        return -1.0;
    const enum tse_air_rate br = TSE_AIR_106;
    double fdt = tse_air_fdt_min_us();
    /* REQA (short frame) / ATQA (2 bytes, no CRC) */
    double t = tse_air_short_frame_us() + fdt + tse_air_frame_us(2, br) + fdt;
    /* per level: ANTICOLLISION SEL NVB / UID CLn + BCC; SELECT (9 with CRC) / SAK (3) */
    double level = tse_air_frame_us(2, br) + fdt + tse_air_frame_us(5, br) + fdt +
                   tse_air_frame_us(9, br) + fdt + tse_air_frame_us(3, br) + fdt;
    t += (double)levels * level;
    if (ats_len) /* RATS (4 with CRC) / ATS (TL bytes + CRC) */
        t += tse_air_frame_us(4, br) + fdt + tse_air_frame_us(ats_len + 2, br) + fdt +
             tse_air_sfgt_us(sfgi);
    return t;
}

/* Bytes of a PN532 frame carrying n bytes after TFI and CC. */
static size_t pn532_frame_bytes(size_t n)
{
    /* normal: 00 00 FF LEN LCS TFI CC data DCS 00; LEN counts TFI + CC + data <= 255 */
    return n + 9 + (n + 2 > 255 ? 3u : 0u);
}

double tse_air_hsu_exchange_us(size_t clen, size_t rlen, unsigned baud)
{
    if (!baud)
        baud = 115200;
    size_t bytes = pn532_frame_bytes(clen + 1) + 6 + pn532_frame_bytes(rlen + 1);
    return (double)bytes * 10.0 / (double)baud * 1e6;
}
