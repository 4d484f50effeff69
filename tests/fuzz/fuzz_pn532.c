/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target on the simulated PN532 (src/io/pn532.c): host bytes (frames, partial
 * frames, junk) interleaved with the owner's events (activation, delivery, release, late
 * completions, idle line). Besides not crashing, every byte the chip emits must be something
 * libnfc 1.8.0 survives: whole ACK/error frames or D5 frames of at most 265 bytes after TFI,
 * status bytes without bit 0x80 (libnfc abort()s on NAD), TgInitAsTarget answers with a byte
 * after the mode byte, R-APDUs of at most 263 bytes.
 *
 * Input: a sequence of operations, op byte then its operands:
 *   0 LEN bytes   host bytes        4          field event
 *   1 P           activate (RATS P)  5 ST LEN bytes  complete the pending exchange
 *   2 LEN bytes   deliver a C-APDU   6          idle line
 *   3             release            7 F        card present (F & 1), async (F & 2)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tse/pn532.h"

struct fz {
    struct tse_pn532 *chip;
    struct tse_pn532_parser p;
    bool present, async;
    unsigned token;
    bool pending;
};

static void check_frame(const struct tse_pn532_frame *f)
{
    if (f->type == TSE_PN532_FRAME_BAD || f->type == TSE_PN532_FRAME_NACK)
        abort();
    if (f->type != TSE_PN532_FRAME_INFO)
        return;
    if (f->tfi == 0x7F && f->len == 0)
        return; /* the error frame */
    if (f->tfi != 0xD5 || f->len < 1 || f->len > TSE_PN532_MAX_DATA)
        abort();
    uint8_t cc = f->data[0];
    switch (cc) {
    case 0x41: /* InDataExchange: status + R-APDU */
        if (f->len < 2 || (f->data[1] & 0x80) || f->len - 2 > TSE_PN532_MAX_RAPDU)
            abort();
        break;
    case 0x43:
    case 0x87:
    case 0x8F:
    case 0x17:
    case 0x45:
    case 0x53:
    case 0x4F:
    case 0x91:
    case 0x89:
        if (f->len < 2 || (f->data[1] & 0x80))
            abort();
        break;
    case 0x8D: /* TgInitAsTarget: mode byte and at least one more */
        if (f->len < 3)
            abort();
        break;
    default:
        break;
    }
}

static void out(void *u, const uint8_t *b, size_t len, double delay)
{
    struct fz *z = u;
    (void)delay;
    while (len) {
        struct tse_pn532_frame f;
        size_t used = tse_pn532_parse(&z->p, b, len, &f);
        check_frame(&f);
        b += used;
        len -= used;
    }
}

static int poll_card(void *u, struct tse_pn532_card_info *k)
{
    struct fz *z = u;
    if (!z->present)
        return 0;
    static const uint8_t uid[] = {0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    static const uint8_t ats[] = {0x05, 0x78, 0x80, 0x70, 0x02};
    memset(k, 0, sizeof(*k));
    k->atqa[1] = 0x44;
    k->sak = 0x20;
    memcpy(k->uid, uid, sizeof(uid));
    k->uid_len = sizeof(uid);
    memcpy(k->ats, ats, sizeof(ats));
    k->ats_len = sizeof(ats);
    return 1;
}

static int exchange(void *u, const uint8_t *c, size_t clen, double delay, unsigned token)
{
    struct fz *z = u;
    (void)delay;
    z->token = token;
    z->pending = true;
    if (!z->async) {
        uint8_t r[TSE_PN532_MAX_CAPDU + 2];
        memcpy(r, c, clen);
        r[clen] = 0x90;
        r[clen + 1] = 0x00;
        tse_pn532_in_complete(z->chip, token, 0, r, clen + 2, 0);
    }
    return 0;
}

static const struct tse_pn532_ops ops = {
    .output = out,
    .poll = poll_card,
    .exchange = exchange,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz z;
    memset(&z, 0, sizeof(z));
    z.present = true;
    tse_pn532_parser_init(&z.p);
    if (tse_pn532_new(&z.chip, &ops, &z, 0) != 0)
        abort();
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++] & 7;
        size_t n = 0;
        switch (op) {
        case 0:
        case 2:
            if (i >= size)
                break;
            n = data[i++];
            if (op == 2 && size - i >= 1)
                n += (size_t)data[i++]; /* up to 510: also too long for a C-APDU */
            if (n > size - i)
                n = size - i;
            if (op == 0)
                tse_pn532_input(z.chip, data + i, n);
            else
                (void)tse_pn532_tg_deliver(z.chip, data + i, n);
            i += n;
            break;
        case 1: {
            struct tse_pn532_card_info as;
            (void)tse_pn532_tg_activate(z.chip, i < size ? data[i++] : 0x80, &as);
            break;
        }
        case 3:
            tse_pn532_tg_release(z.chip);
            break;
        case 4:
            tse_pn532_field_event(z.chip);
            break;
        case 5: {
            if (size - i < 2) {
                i = size;
                break;
            }
            uint8_t st = data[i++];
            n = (size_t)data[i++] * 2; /* up to 510: beyond what libnfc takes */
            if (n > size - i)
                n = size - i;
            tse_pn532_in_complete(z.chip, z.token, st, data + i, n, 0);
            i += n;
            break;
        }
        case 6:
            tse_pn532_line_idle(z.chip);
            break;
        case 7:
            if (i < size) {
                z.present = data[i] & 1;
                z.async = data[i] & 2;
                i++;
            }
            break;
        }
    }
    tse_pn532_free(z.chip);
    return 0;
}
