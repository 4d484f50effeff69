/* SPDX-License-Identifier: Apache-2.0 */
/* The one C-APDU codec (ISO/IEC 7816-4 §5.1), CLA decoding (§5.4.1), AID and hex helpers. */
#include <string.h>

#include "tse/apdu.h"
#include "tse/error.h"
#include "tse/sw.h"

uint16_t tse_apdu_parse(const uint8_t *buf, size_t len, struct tse_apdu *out)
{
    if (buf == NULL || out == NULL || len < 4)
        return SW_WRONG_LENGTH;
    memset(out, 0, sizeof(*out));
    out->cla = buf[0];
    out->ins = buf[1];
    out->p1 = buf[2];
    out->p2 = buf[3];
    if (len == 4) {
        out->iso_case = 1;
        return 0;
    }
    if (len == 5) { /* case 2S: Le = 00 means 256 */
        out->iso_case = 2;
        out->has_le = true;
        out->ne = buf[4] ? buf[4] : 256;
        return 0;
    }
    if (buf[4] != 0) { /* short Lc */
        size_t lc = buf[4];
        if (len == 5 + lc) {
            out->iso_case = 3;
        } else if (len == 6 + lc) {
            out->iso_case = 4;
            out->has_le = true;
            out->ne = buf[5 + lc] ? buf[5 + lc] : 256;
        } else {
            return SW_WRONG_LENGTH;
        }
        out->lc = lc;
        out->data = buf + 5;
        return 0;
    }
    /* First byte after the header is 00 and more bytes follow: extended length. */
    if (len < 7)
        return SW_WRONG_LENGTH;
    out->extended = true;
    if (len == 7) { /* case 2E */
        size_t le = ((size_t)buf[5] << 8) | buf[6];
        out->iso_case = 2;
        out->has_le = true;
        out->ne = le ? le : 65536;
        return 0;
    }
    size_t lc = ((size_t)buf[5] << 8) | buf[6];
    if (lc == 0)
        return SW_WRONG_LENGTH;
    if (len == 7 + lc) {
        out->iso_case = 3;
    } else if (len == 9 + lc) {
        size_t le = ((size_t)buf[7 + lc] << 8) | buf[8 + lc];
        out->iso_case = 4;
        out->has_le = true;
        out->ne = le ? le : 65536;
    } else {
        return SW_WRONG_LENGTH;
    }
    out->lc = lc;
    out->data = buf + 7;
    return 0;
}

int tse_apdu_encode(const struct tse_apdu *a, uint8_t *out, size_t cap)
{
    if (a == NULL || out == NULL || a->lc > TSE_APDU_MAX_DATA || a->ne > TSE_APDU_MAX_NE ||
        (a->lc > 0 && a->data == NULL))
        return TSE_ERR_INVALID_ARG;
    bool ext = a->extended || a->lc > 255 || a->ne > 256;
    size_t need = 4;
    if (a->lc)
        need += (ext ? 3 : 1) + a->lc;
    if (a->ne)
        need += ext ? (a->lc ? 2 : 3) : 1;
    if (need > cap)
        return TSE_ERR_BUFFER_TOO_SMALL;
    size_t n = 0;
    out[n++] = a->cla;
    out[n++] = a->ins;
    out[n++] = a->p1;
    out[n++] = a->p2;
    if (a->lc) {
        if (ext) {
            out[n++] = 0;
            out[n++] = (uint8_t)(a->lc >> 8);
        }
        out[n++] = (uint8_t)a->lc;
        memcpy(out + n, a->data, a->lc);
        n += a->lc;
    }
    if (a->ne) {
        if (ext) {
            if (!a->lc)
                out[n++] = 0;
            out[n++] = (uint8_t)((a->ne >> 8) & 0xFF); /* 65536 encodes as 0000 */
        }
        out[n++] = (uint8_t)(a->ne & 0xFF);
    }
    return (int)n;
}

struct tse_cla_info tse_cla_decode(uint8_t cla)
{
    struct tse_cla_info ci = {0};
    uint8_t top = cla & 0xE0;
    if (cla == 0xFF || top == 0x20 || top == 0xA0)
        return ci; /* invalid, or RFU class */
    ci.valid = true;
    ci.proprietary = (cla & 0x80) != 0;
    ci.chaining = (cla & 0x10) != 0;
    if (cla & 0x40) { /* further interindustry (and proprietary C0..FE) */
        ci.channel = (uint8_t)(4 + (cla & 0x0F));
        ci.sm = (cla & 0x20) != 0;
    } else { /* first interindustry (and proprietary 80..9F) */
        ci.channel = cla & 0x03;
        ci.sm = (cla & 0x0C) != 0;
    }
    return ci;
}

int tse_cla_with_channel(uint8_t cla, uint8_t channel)
{
    struct tse_cla_info ci = tse_cla_decode(cla);
    if (!ci.valid || channel >= 20)
        return -1;
    uint8_t out = cla & 0x80;
    if (ci.chaining)
        out |= 0x10;
    if (channel < 4) {
        if (cla & 0x40)
            out |= ci.sm ? 0x04 : 0;
        else
            out |= cla & 0x0C;
        return out | channel;
    }
    return out | 0x40 | (ci.sm ? 0x20 : 0) | (channel - 4);
}

int tse_aid_set(struct tse_aid *aid, const uint8_t *b, size_t len)
{
    if (aid == NULL || len > TSE_AID_MAX || (len && b == NULL))
        return TSE_ERR_INVALID_ARG;
    memset(aid, 0, sizeof(*aid));
    aid->len = (uint8_t)len;
    if (len)
        memcpy(aid->b, b, len);
    return 0;
}

bool tse_aid_equal(const struct tse_aid *a, const struct tse_aid *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

bool tse_aid_has_prefix(const struct tse_aid *aid, const uint8_t *prefix, size_t len)
{
    return len <= aid->len && (len == 0 || memcmp(aid->b, prefix, len) == 0);
}

int tse_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tse_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    if (hex == NULL)
        return TSE_ERR_INVALID_ARG;
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        int v = tse_hex_digit((unsigned char)*p);
        if (v < 0)
            return TSE_ERR_PARSE;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            return TSE_ERR_BUFFER_TOO_SMALL;
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0)
        return TSE_ERR_PARSE;
    return (int)n;
}

void tse_hex_encode(const uint8_t *b, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}
