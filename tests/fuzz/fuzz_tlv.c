/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the BER-TLV reader: walk arbitrary bytes, recursing into constructed
 * objects, and rebuild what parsed with the writer; it must read back the same. The same
 * bytes also go through the DGI reader (STORE DATA personalization): every DGI must lie inside
 * the input and the DGIs must account for every byte up to where reading stopped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tse/tlv.h"

static void walk(const uint8_t *b, size_t len, int depth)
{
    const uint8_t *p = b;
    size_t left = len;
    struct tse_tlv t;
    while (tse_tlv_next(&p, &left, &t) == 1) {
        if (t.value < b || t.value + t.len > b + len)
            abort();
        static uint8_t out[70000];
        struct tse_tlv_writer w;
        tse_tlv_writer_init(&w, out, sizeof(out));
        tse_tlv_put(&w, t.tag, t.value, t.len);
        int n = tse_tlv_finish(&w);
        struct tse_tlv u;
        const uint8_t *q = out;
        size_t ql = (size_t)n;
        if (n < 0 || tse_tlv_next(&q, &ql, &u) != 1 || u.tag != t.tag || u.len != t.len ||
            memcmp(u.value, t.value, t.len) != 0)
            abort();
        if (t.constructed && depth < 8)
            walk(t.value, t.len, depth + 1);
    }
}

static void dgis(const uint8_t *b, size_t len)
{
    const uint8_t *p = b;
    size_t left = len, used = 0;
    struct tse_tlv t;
    int r;
    while ((r = tse_dgi_next(&p, &left, &t)) == 1) {
        if (t.value < b || t.value + t.len > b + len || t.tag > 0xFFFF)
            abort();
        /* the header: DGI (2) and a length byte, or FF and two length bytes */
        size_t hdr = (size_t)(t.value - b) - used;
        if (hdr != (b[used + 2] == 0xFF ? 5u : 3u) ||
            t.tag != ((uint32_t)b[used] << 8 | b[used + 1]))
            abort();
        used += hdr + t.len;
        if ((size_t)(p - b) != used || left != len - used)
            abort();
    }
    if (r == 0 && used != len)
        abort(); /* "nothing left" must mean nothing left */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(data, size, 0);
    dgis(data, size);
    return 0;
}
