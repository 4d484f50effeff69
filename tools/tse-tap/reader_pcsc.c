/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-tap --reader NAME: a PC/SC reader as the tap's transport (struct tse_tap_transport),
 * through apdu-shell's PC/SC target (src/shell/target_pcsc.c). A tap is a cold connect
 * (SCardReconnect with SCARD_UNPOWER_CARD), so each tap starts a new card session, and the
 * release powers the card down. Behind vpcd this is tse-card's contact interface; behind a
 * contactless PC/SC reader it is the card in its field.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reader.h"
#include "shell/script.h"
#include "tse/error.h"

struct pcsc_reader {
    void *target;
    char name[160];
    struct tse_tap_transport tr;
};

static int pr_activate(void *user, int wait_ms, struct tse_pn532_card_info *card)
{
    struct pcsc_reader *p = user;
    uint8_t atr[64];
    size_t n = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (tse_target_pcsc_ops.power_on(p->target, TSE_IF_CONTACT, atr, sizeof(atr), &n) == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 + (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
        if (ms >= wait_ms) {
            const char *e = tse_target_pcsc_ops.last_error(p->target);
            fprintf(stderr, "tse-tap: %s: %s\n", p->name, e ? e : "no card");
            return TSE_ERR_NOT_FOUND;
        }
        usleep(100000);
    }
    memset(card, 0, sizeof(*card));
    /* A contactless PC/SC reader shows an ISO 14443-4 card with a pseudo-ATR (PC/SC part 3:
     * 3B 8n 80 01 + historical bytes) and answers GET DATA (FF CA) with the UID. A contact
     * card (vpcd) would take FF CA for a command, so it is only asked of the former. */
    if (n >= 4 && atr[0] == 0x3B && (atr[1] & 0xF0) == 0x80 && atr[2] == 0x80 && atr[3] == 0x01) {
        static const uint8_t get_uid[5] = {0xFF, 0xCA, 0x00, 0x00, 0x00};
        uint8_t r[16];
        size_t rl = 0;
        if (tse_target_pcsc_ops.transmit(p->target, TSE_IF_CONTACT, get_uid, sizeof(get_uid), r,
                                         sizeof(r), &rl) == 0 &&
            rl >= 2 && r[rl - 2] == 0x90 && r[rl - 1] == 0x00 &&
            (rl - 2 == 4 || rl - 2 == 7 || rl - 2 == 10)) {
            memcpy(card->uid, r, rl - 2);
            card->uid_len = rl - 2;
        }
    }
    return 0;
}

static int pr_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                       size_t *rlen)
{
    struct pcsc_reader *p = user;
    int rc = tse_target_pcsc_ops.transmit(p->target, TSE_IF_CONTACT, c, clen, r, rcap, rlen);
    if (rc && rc != TSE_ERR_INVALID_ARG && rc != TSE_ERR_BUFFER_TOO_SMALL) {
        const char *e = tse_target_pcsc_ops.last_error(p->target);
        fprintf(stderr, "tse-tap: %s: %s\n", p->name, e ? e : "transmit failed");
        return TSE_ERR_IO;
    }
    return rc;
}

static int pr_release(void *user)
{
    struct pcsc_reader *p = user;
    return tse_target_pcsc_ops.power_off(p->target, TSE_IF_CONTACT) ? TSE_ERR_IO : 0;
}

const struct tse_tap_transport *tap_pcsc_open(const char *reader, char *err, size_t errlen)
{
    struct pcsc_reader *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->target = tse_target_pcsc_open(reader, err, errlen);
    if (!p->target) {
        free(p);
        return NULL;
    }
    snprintf(p->name, sizeof(p->name), "PC/SC reader '%s'", reader);
    p->tr.name = p->name;
    p->tr.user = p;
    p->tr.activate = pr_activate;
    p->tr.transmit = pr_transmit;
    p->tr.release = pr_release;
    return &p->tr;
}

void tap_pcsc_close(const struct tse_tap_transport *tr)
{
    if (!tr)
        return;
    struct pcsc_reader *p = tr->user;
    tse_target_pcsc_close(p->target);
    free(p);
}
