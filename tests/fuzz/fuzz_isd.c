/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the ISD's command parsers *inside* a secure channel, where an outside
 * fuzzer cannot reach: a host session (level C-MAC, correctly wrapped) carries the input.
 * Byte 0 picks the instruction (PUT KEY, GET DATA, INSTALL, DELETE, GET STATUS, SET STATUS,
 * STORE DATA, LOAD),
 * bytes 1 and 2 are P1 and P2, the rest is the data. Any answer is fine; a crash, a hang or a
 * response without a status word is not. A card the input has locked or terminated is
 * replaced by a fresh one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "tse/card.h"
#include "tse/scp.h"

static struct tse_card *card;
static struct tse_scp_session host;
static bool open_session;
static unsigned long runs;

static int xfer(const uint8_t *c, size_t n, uint8_t *r, size_t *rl)
{
    return tse_card_transmit(card, TSE_IF_CONTACT, c, n, r, TSE_RAPDU_MAX, rl);
}

static void setup(void)
{
    char path[512], err[256];
    if (card)
        tse_card_free(card);
    fuzz_path(path, sizeof(path), "isd");
    unlink(path);
    if (tse_card_create(&card, path, NULL, 0, NULL, NULL, err, sizeof(err)) != 0)
        abort();
    size_t n;
    tse_card_power_on(card, TSE_IF_CONTACT, NULL, 0, &n);
    open_session = false;
}

static bool authenticate(void)
{
    struct tse_scp_keys k = {.scp = 3, .i = 0x70, .key_len = 16};
    for (int b = 0; b < 16; b++)
        k.enc[b] = k.mac[b] = k.dek[b] = (uint8_t)(0x40 + b);
    static uint8_t r[TSE_RAPDU_MAX];
    uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8}, cmd[64];
    size_t n, rl;
    if (tse_scp_host_begin(&host, &k, 0, hc, 8, cmd, sizeof(cmd), &n) || xfer(cmd, n, r, &rl) ||
        rl < 2 || r[rl - 2] != 0x90 || tse_scp_host_iu_response(&host, r, rl - 2) ||
        tse_scp_host_external_authenticate(&host, TSE_SL_CMAC, cmd, sizeof(cmd), &n) ||
        xfer(cmd, n, r, &rl) || rl != 2 || r[0] != 0x90)
        return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!card || ++runs % 2000 == 0)
        setup();                    /* PUT KEY may fill the key table: start over now and then */
    if (size < 3 || size > 3 + 247) /* a C-MAC'd command still fits short Lc */
        return 0;
    if (!open_session && !(open_session = authenticate())) {
        setup(); /* locked or terminated by an earlier input */
        if (!(open_session = authenticate()))
            abort(); /* the default keys must always open a session on a fresh card */
    }
    static const uint8_t ins[] = {0xD8, 0xCA, 0xE6, 0xE4, 0xF2, 0xF0, 0xE2, 0xE8};
    uint8_t plain[5 + 255 + 1];
    size_t n = 0;
    plain[n++] = 0x80;
    plain[n++] = ins[data[0] & 7];
    plain[n++] = data[1];
    plain[n++] = data[2];
    if (plain[1] != 0xCA && size > 3) {
        plain[n++] = (uint8_t)(size - 3);
        memcpy(plain + n, data + 3, size - 3);
        n += size - 3;
    }
    plain[n++] = 0x00;
    static uint8_t wire[TSE_RAPDU_MAX], r[TSE_RAPDU_MAX], out[TSE_RAPDU_MAX];
    size_t wl, rl, ol;
    if (tse_scp_host_wrap(&host, plain, n, wire, sizeof(wire), &wl) != 0)
        abort();
    if (xfer(wire, wl, r, &rl) != 0 || rl < 2)
        abort();
    if (tse_scp_host_unwrap(&host, r, rl, out, sizeof(out), &ol) != 0)
        abort();
    if (rl == 2 && r[0] == 0x69 && r[1] == 0x82)
        abort();          /* a correctly wrapped command must never be rejected as unprotected */
    if (plain[1] == 0xF0) /* SET STATUS may have locked the card: authenticate again */
        open_session = false;
    return 0;
}
