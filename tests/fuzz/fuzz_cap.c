/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the card's LOAD stream parser (src/gp/cap.c). The first two bytes seed
 * the split of the rest into pieces, as LOAD commands would carry it; the result (accepted or
 * the reason, the offset, everything recorded) must equal that of one single feed and of a
 * byte-by-byte feed, and an accepted stream must add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tse/cap.h"

static int run(struct tse_cap_stream *st, const uint8_t *b, size_t len, uint32_t seed, int mode)
{
    tse_cap_stream_init(st);
    size_t at = 0;
    while (at < len) {
        size_t n;
        if (mode == 0) {
            n = len - at;
        } else if (mode == 1) {
            n = 1;
        } else {
            seed = seed * 1103515245u + 12345u;
            n = (seed >> 16) % 300; /* empty pieces too */
            if (n > len - at)
                n = len - at;
        }
        int rc = tse_cap_stream_feed(st, b + at, n);
        if (rc)
            return rc;
        at += n;
    }
    return tse_cap_stream_finish(st, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] << 8 | data[1];
    const uint8_t *b = data + 2;
    size_t len = size - 2;
    static struct tse_cap_stream one, split, bytes;
    int r1 = run(&one, b, len, seed, 0);
    int r2 = run(&split, b, len, seed, 2);
    int r3 = run(&bytes, b, len, seed, 1);
    if (r1 != r2 || r1 != r3 || one.reason != split.reason || one.reason != bytes.reason ||
        one.err_offset != split.err_offset || one.err_offset != bytes.err_offset ||
        one.err_tag != split.err_tag || one.err_tag != bytes.err_tag ||
        memcmp(&one.info, &split.info, sizeof(one.info)) != 0 ||
        memcmp(&one.info, &bytes.info, sizeof(one.info)) != 0)
        abort();
    if (r1 == 0) {
        const struct tse_cap_info *in = &one.info;
        uint64_t sum = 0;
        if (one.reason != TSE_CAP_OK || in->stream_len != len || !in->header_done ||
            in->n_components > TSE_CAP_MAX_TAG || in->n_applets > TSE_CAP_MAX_APPLETS ||
            in->package.len < TSE_AID_MIN || in->package.len > TSE_AID_MAX)
            abort();
        for (unsigned k = 0; k < in->n_components; k++) {
            if (in->components[k].offset != sum)
                abort();
            sum += in->components[k].size + (in->components[k].tag == TSE_CAP_STATICRES ? 5 : 3);
        }
        if (sum != in->lfdb_len || in->components[0].tag != TSE_CAP_HEADER)
            abort();
    } else if (r1 != TSE_ERR_PARSE || one.reason == TSE_CAP_OK || one.reason >= TSE_CAP_ERR_COUNT ||
               one.err_offset > len) {
        abort();
    }
    return 0;
}
