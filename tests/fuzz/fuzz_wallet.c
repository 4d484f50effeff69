/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the purse applet's command handling and personalisation.
 *
 * Input: byte 0 picks a prelude that puts the purse in a deeper state (PIN verified, a load,
 * purchase or compound purchase initialised, a challenge pending, or a whole valid
 * transaction through the terminal), byte 1 bit 0 sends the commands as STORE DATA to the
 * personalize() entry instead of process(); the rest is a list of commands, each a length
 * byte and that many bytes of C-APDU. Any answer is fine; a crash, a sanitizer report, a
 * response without a status word, or a broken balance invariant is not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cos/card_internal.h"
#include "fuzz_common.h"
#include "tse/card.h"
#include "tse/scp.h"
#include "tse/wallet.h"

static struct tse_card *card;
static unsigned long runs;
static struct tse_psam psam;
static struct tse_scp_session sess;
static int purse_idx;

static const uint8_t bj_aid[16] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05,
                                   0x10, 0x00, 0x91, 0x56, 0x00, 0x00, 0x14, 0xA1};

static int xfer(void *user, const uint8_t *c, size_t n, uint8_t *r, size_t cap, size_t *rl)
{
    (void)user;
    int rc = tse_card_transmit(card, TSE_IF_CONTACTLESS, c, n, r, cap, rl);
    if (rc == 0 && *rl < 2)
        abort();
    return rc;
}

static void setup(void)
{
    char path[512], err[256];
    static const char prof[] =
        "[card]\nname = fuzz\n[deterministic]\nseed = 01\nclock = 2024-05-01T08:30:00Z\n"
        "[instance bj]\npackage = A0000006320101\nmodule = A000000632010105\n"
        "aid = A00000063201010510009156000014A1\n"
        "params = 8F0A03105170010170907984 8401 03 8101 04 8301 02\ndefault = contactless\n"
        "[instance blank]\npackage = A0000006320101\nmodule = A000000632010105\n"
        "aid = A000000632010105\n";
    if (card)
        tse_card_free(card);
    fuzz_path(path, sizeof(path), "wallet");
    unlink(path);
    if (tse_card_create(&card, path, prof, sizeof(prof) - 1, "fuzz", NULL, err, sizeof(err))) {
        fprintf(stderr, "fuzz_wallet: %s\n", err);
        abort();
    }
    size_t n;
    tse_card_power_on(card, TSE_IF_CONTACTLESS, NULL, 0, &n);
    struct tse_aid aid;
    tse_aid_set(&aid, bj_aid, 16);
    purse_idx = tse_rt_find(card, &aid);
    if (purse_idx < 0)
        abort();
    tse_psam_init(&psam);
    tse_psam_load_test_keys(&psam);
    memset(&sess, 0, sizeof(sess));
    sess.role = TSE_SCP_CARD;
    sess.scp = 3;
    sess.keys.key_len = 16;
    sess.authenticated = true;
}

static void send(const uint8_t *c, size_t n)
{
    static uint8_t r[TSE_RAPDU_MAX];
    size_t rl;
    xfer(NULL, c, n, r, sizeof(r), &rl);
}

static void prelude(uint8_t kind, struct tse_wallet_term *t)
{
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00,
                                  0x00, 0x06, 0x32, 0x01, 0x01, 0x05};
    static const uint8_t pin[] = {0x00, 0x20, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56};
    uint8_t init[] = {0x80, 0x50, 0x01, 0x02, 0x0B, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
    static const uint8_t chal[] = {0x00, 0x84, 0x00, 0x00, 0x04};
    send(sel, sizeof(sel));
    switch (kind % 8) {
    case 1:
        send(pin, sizeof(pin));
        break;
    case 2:
    case 3:
    case 4:
        init[2] = kind == 2 ? 0x01 : kind == 3 ? 0x03 : 0x00;
        if (kind == 4)
            send(pin, sizeof(pin));
        send(init, sizeof(init));
        break;
    case 5:
        send(chal, sizeof(chal));
        break;
    case 6: {
        struct tse_wallet_result r;
        tse_wallet_term_select(t, bj_aid, 16);
        tse_wallet_term_load(t, 1000, &r);
        tse_wallet_term_purchase(t, 10, &r);
        break;
    }
    case 7: {
        struct tse_wallet_gate g = {
            {0x10, 0x00}, {1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF}, 1, {0, 5}, 0x12};
        tse_wallet_term_select(t, bj_aid, 16);
        tse_wallet_term_entry(t, &g, NULL);
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!card || ++runs % 500 == 0)
        setup();
    if (size < 2)
        return 0;
    struct tse_wallet_term t;
    tse_wallet_term_init(&t, &psam, xfer, NULL);
    prelude(data[0], &t);
    bool perso = data[1] & 1;
    size_t off = 2;
    while (off < size) {
        size_t n = data[off++];
        if (n > size - off)
            n = size - off;
        if (perso) {
            struct tse_apdu a;
            if (n >= 4 && tse_apdu_parse(data + off, n, &a) == 0) {
                static uint8_t rb[TSE_APDU_MAX_NE];
                struct tse_response rsp = {rb, 0, sizeof(rb), false};
                uint16_t sw;
                tse_rt_personalize(card, purse_idx, TSE_IF_CONTACTLESS, 0, &sess, &a, &rsp, &sw);
            }
        } else {
            send(data + off, n);
        }
        off += n;
    }
    /* the purse must still answer its balance with a status word */
    static const uint8_t bal[] = {0x80, 0x5C, 0x00, 0x02, 0x04};
    send(bal, sizeof(bal));
    tse_wallet_term_free(&t);
    return 0;
}
