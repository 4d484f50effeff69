/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the card image reader: arbitrary bytes as an image file must be
 * refused with an error or opened into a card that works; never a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "tse/card.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_path(path, sizeof(path), "image");
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    struct tse_card *c = NULL;
    char err[256];
    int rc = tse_card_open(&c, path, NULL, err, sizeof(err));
    if (rc == 0) {
        size_t n;
        static uint8_t r[TSE_RAPDU_MAX];
        static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x74, 0x73, 0x65, 0x44};
        static const uint8_t xfer[] = {0x80, 0x22, 0x00, 0x00, 0x04, 0, 0, 0, 1};
        tse_card_power_on(c, TSE_IF_CONTACT, NULL, 0, &n);
        tse_card_transmit(c, TSE_IF_CONTACT, sel, sizeof(sel), r, sizeof(r), &n);
        tse_card_transmit(c, TSE_IF_CONTACT, xfer, sizeof(xfer), r, sizeof(r), &n);
        tse_card_free(c);
    } else if (rc != TSE_ERR_CORRUPT && rc != TSE_ERR_VERSION && rc != TSE_ERR_IO) {
        abort();
    }
    remove(path);
    return 0;
}
