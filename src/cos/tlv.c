/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "tse/error.h"
#include "tse/tlv.h"

int tse_tlv_next(const uint8_t **p, size_t *left, struct tse_tlv *t)
{
    const uint8_t *b = *p;
    size_t n = *left;
    while (n && (b[0] == 0x00 || b[0] == 0xFF)) { /* padding between objects */
        b++;
        n--;
    }
    if (!n) {
        *p = b;
        *left = 0;
        return 0;
    }
    size_t i = 0;
    uint32_t tag = b[i++];
    bool constructed = (tag & 0x20) != 0;
    if ((tag & 0x1F) == 0x1F) { /* subsequent tag bytes while b8 is set, at most 2 more */
        do {
            if (i >= n || i > 2)
                return TSE_ERR_PARSE;
            tag = tag << 8 | b[i];
        } while (b[i++] & 0x80);
    }
    if (i >= n)
        return TSE_ERR_PARSE;
    size_t len = b[i++];
    if (len & 0x80) {
        size_t k = len & 0x7F;
        if (k == 0 || k > 3 || i + k > n)
            return TSE_ERR_PARSE; /* indefinite or too long a length */
        len = 0;
        while (k--)
            len = len << 8 | b[i++];
    }
    if (len > n - i)
        return TSE_ERR_PARSE;
    t->tag = tag;
    t->constructed = constructed;
    t->value = b + i;
    t->len = len;
    *p = b + i + len;
    *left = n - i - len;
    return 1;
}

int tse_tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tse_tlv *t)
{
    const uint8_t *p = buf;
    size_t left = len;
    int rc;
    while ((rc = tse_tlv_next(&p, &left, t)) == 1)
        if (t->tag == tag)
            return 1;
    return rc;
}

void tse_tlv_writer_init(struct tse_tlv_writer *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
}

static void put_bytes(struct tse_tlv_writer *w, const uint8_t *b, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        w->err = TSE_ERR_BUFFER_TOO_SMALL;
        return;
    }
    if (n)
        memcpy(w->buf + w->len, b, n);
    w->len += n;
}

static void put_tag(struct tse_tlv_writer *w, uint32_t tag)
{
    uint8_t t[3];
    size_t n = tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;
    for (size_t k = 0; k < n; k++)
        t[k] = (uint8_t)(tag >> (8 * (n - 1 - k)));
    put_bytes(w, t, n);
}

static size_t len_size(size_t len)
{
    return len < 0x80 ? 1 : len <= 0xFF ? 2 : len <= 0xFFFF ? 3 : 4;
}

static void put_len(struct tse_tlv_writer *w, size_t len)
{
    uint8_t l[4];
    size_t n = len_size(len);
    if (n == 1) {
        l[0] = (uint8_t)len;
    } else {
        l[0] = (uint8_t)(0x80 | (n - 1));
        for (size_t k = 1; k < n; k++)
            l[k] = (uint8_t)(len >> (8 * (n - 1 - k)));
    }
    put_bytes(w, l, n);
}

void tse_tlv_put(struct tse_tlv_writer *w, uint32_t tag, const uint8_t *value, size_t len)
{
    put_tag(w, tag);
    put_len(w, len);
    put_bytes(w, value, len);
}

void tse_tlv_put_u8(struct tse_tlv_writer *w, uint32_t tag, uint8_t v)
{
    tse_tlv_put(w, tag, &v, 1);
}

void tse_tlv_begin(struct tse_tlv_writer *w, uint32_t tag)
{
    if (w->depth == (int)(sizeof(w->open) / sizeof(w->open[0]))) {
        w->err = w->err ? w->err : TSE_ERR_INVALID_ARG;
        return;
    }
    put_tag(w, tag);
    w->open[w->depth++] = w->len;
    put_bytes(w, (const uint8_t *)"\0", 1); /* one length byte for now */
}

void tse_tlv_end(struct tse_tlv_writer *w)
{
    if (w->depth == 0) {
        w->err = w->err ? w->err : TSE_ERR_INVALID_ARG;
        return;
    }
    size_t at = w->open[--w->depth];
    if (w->err)
        return;
    size_t body = w->len - at - 1, extra = len_size(body) - 1;
    if (extra) { /* the value needs a longer length field: move it up */
        if (extra > w->cap - w->len) {
            w->err = TSE_ERR_BUFFER_TOO_SMALL;
            return;
        }
        memmove(w->buf + at + 1 + extra, w->buf + at + 1, body);
    }
    size_t save = w->len;
    w->len = at;
    put_len(w, body);
    w->len = save + extra;
}

void tse_tlv_raw(struct tse_tlv_writer *w, const uint8_t *b, size_t len)
{
    put_bytes(w, b, len);
}

int tse_tlv_finish(const struct tse_tlv_writer *w)
{
    if (w->err)
        return w->err;
    if (w->depth)
        return TSE_ERR_INVALID_ARG;
    return (int)w->len;
}

int tse_dgi_next(const uint8_t **p, size_t *left, struct tse_tlv *t)
{
    if (*left == 0)
        return 0;
    if (*left < 3)
        return TSE_ERR_PARSE;
    const uint8_t *b = *p;
    size_t hdr = 3, len = b[2];
    if (len == 0xFF) {
        if (*left < 5)
            return TSE_ERR_PARSE;
        len = (size_t)b[3] << 8 | b[4];
        hdr = 5;
    }
    if (len > *left - hdr)
        return TSE_ERR_PARSE;
    t->tag = (uint32_t)b[0] << 8 | b[1];
    t->value = b + hdr;
    t->len = len;
    t->constructed = false;
    *p += hdr + len;
    *left -= hdr + len;
    return 1;
}
