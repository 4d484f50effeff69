/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the card's transmit entry point. The input is a sequence of
 * operations: [op][len][bytes…]. op bit 0 picks the interface; op >> 1 selects:
 * 0..11 transmit, 12 power cycle, 13 warm reset, 14 arm a power cut at write len+1.
 * Whatever happens, the card must answer with a status word, never crash, and after a
 * power cut it must come back up from its image.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "tse/card.h"

static const char PROFILE[] =
    "[card]\npersistent_memory = 64K\ncommit_buffer = 2K\n"
    "[counters]\nseq = 0 max 100\n"
    "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\ndefault = contact\n"
    "[instance b]\npackage = F0747365444941\nmodule = F074736544494102\n"
    "aid = F07473654449410201\ndefault = contactless\npersistent_quota = 2K\n";

static struct tse_card *card;
static char path[512];
static unsigned long runs;

static void fresh(void)
{
    if (card)
        tse_card_free(card);
    fuzz_path(path, sizeof(path), "transmit");
    unlink(path);
    char err[256];
    if (tse_card_create(&card, path, PROFILE, sizeof(PROFILE) - 1, "fuzz", NULL, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_transmit: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!card || ++runs % 5000 == 0)
        fresh(); /* bound the image's growth */
    static uint8_t rsp[TSE_RAPDU_MAX];
    size_t n;
    for (int i = 0; i < TSE_IF_COUNT; i++)
        if (tse_card_power_on(card, (enum tse_iface)i, NULL, 0, &n) != 0)
            abort(); /* recovery from the image must always work */
    size_t pos = 0;
    while (pos + 2 <= size) {
        uint8_t op = data[pos], len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = (uint8_t)(size - pos);
        enum tse_iface itf = (enum tse_iface)(op & 1);
        switch (op >> 1) {
        case 12:
            tse_card_power_off(card, itf);
            tse_card_power_on(card, itf, NULL, 0, &n);
            break;
        case 13:
            tse_card_reset(card, itf, NULL, 0, &n);
            break;
        case 14:
            tse_card_tear_at(card, (unsigned long)len + 1);
            len = 0;
            break;
        default: {
            int rc = tse_card_transmit(card, itf, data + pos, len, rsp, sizeof(rsp), &n);
            if (rc == 0 && n < 2)
                abort();
            if (rc == TSE_ERR_TORN)
                for (int i = 0; i < TSE_IF_COUNT; i++)
                    if (tse_card_power_on(card, (enum tse_iface)i, NULL, 0, &n) != 0)
                        abort();
            if (rc != 0 && rc != TSE_ERR_TORN && rc != TSE_ERR_POWERED_OFF)
                abort();
        }
        }
        pos += len;
    }
    tse_card_tear_at(card, 0);
    return 0;
}
