/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card's contactless interface through libnfc target mode (include/tse/nfc.h). With a
 * PN532 the chip does ISO 14443-3/-4 by itself (anticollision, RATS/ATS, blocks, chaining
 * with FSC 64); libnfc hands over whole C-APDUs. Stopping: nfc_target_init() and
 * nfc_target_receive_bytes() block without a timeout (a timeout would make the chip leave
 * target mode and miss readers), so a watcher thread calls nfc_abort_command() once *stop is
 * set, repeatedly, because an abort that falls between two commands is lost.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfc/nfc.h>

#include "tse/error.h"
#include "tse/nfc.h"
#include "tse/sw.h"

/* PN532 PICC mode: the ATS head the chip sends before the host's historical bytes */
static const uint8_t pn532_ats_head[4] = {0x75, 0x33, 0x92, 0x03};

/* The historical bytes of an ATS (after TL, T0 and the TA/TB/TC that T0 announces). */
static void ats_historical(const uint8_t *ats, size_t len, const uint8_t **hb, size_t *n)
{
    *hb = NULL;
    *n = 0;
    if (len < 2)
        return;
    uint8_t t0 = ats[1];
    size_t i = 2 + !!(t0 & 0x10) + !!(t0 & 0x20) + !!(t0 & 0x40);
    if (i >= len)
        return;
    *hb = ats + i;
    *n = len - i;
}

int tse_nfc_emulated_params(struct tse_card *card, struct tse_pn532_card_info *as)
{
    struct tse_cl_params p;
    if (!card || !as || tse_card_cl_params(card, &p) != 0)
        return TSE_ERR_INVALID_ARG;
    memset(as, 0, sizeof(*as));
    as->uid[0] = 0x08; /* libnfc and the PN532 allow nothing else */
    if (p.uid_len >= 4)
        memcpy(as->uid + 1, p.uid + p.uid_len - 3, 3);
    as->uid_len = 4;
    as->atqa[0] = p.atqa[0];
    as->atqa[1] = (uint8_t)(p.atqa[1] & 0x3F); /* UID size bits: single */
    as->sak = (uint8_t)((p.sak | 0x20) & ~0x04);
    const uint8_t *hb;
    size_t n;
    ats_historical(p.ats, p.ats_len, &hb, &n);
    if (n > TSE_PN532_MAX_ATS - 5)
        n = TSE_PN532_MAX_ATS - 5;
    as->ats[0] = (uint8_t)(5 + n);
    memcpy(as->ats + 1, pn532_ats_head, sizeof(pn532_ats_head));
    if (n)
        memcpy(as->ats + 5, hb, n);
    as->ats_len = 5 + n;
    return 0;
}

/* libnfc keeps the last error in the device, but not every failing path stores it there. */
static const char *nfc_err(nfc_device *pnd, int r)
{
    if (nfc_device_get_last_error(pnd) == r)
        return nfc_strerror(pnd);
    switch (r) {
    case NFC_EIO:
        return "input/output error";
    case NFC_EINVARG:
        return "invalid argument";
    case NFC_EDEVNOTSUPP:
        return "operation not supported by the device";
    case NFC_ENOTSUCHDEV:
        return "no such device";
    case NFC_EOVFLOW:
        return "buffer overflow";
    case NFC_ETIMEOUT:
        return "timeout";
    case NFC_EOPABORTED:
        return "operation aborted";
    case NFC_ENOTIMPL:
        return "not implemented";
    case NFC_ETGRELEASED:
        return "target released";
    case NFC_ERFTRANS:
        return "RF transmission error";
    case NFC_ECHIP:
        return "device/chip error";
    default:
        return "libnfc error";
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void log_hex(FILE *f, const char *dir, const uint8_t *b, size_t len)
{
    fprintf(f, "%s ", dir);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02X", b[i]);
    fputc('\n', f);
}

struct watcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nfc_device *pnd;
    volatile sig_atomic_t *stop;
    bool done;
};

static void *watch(void *p)
{
    struct watcher *w = p;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 100 * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &dl);
        if (!w->done && w->stop && *w->stop)
            nfc_abort_command(w->pnd);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static bool stopping(const struct tse_nfc_target_options *o)
{
    return o->stop && *o->stop;
}

/* Buffers of one served device (heap: several cards may be served from threads). */
struct nfc_bufs {
    uint8_t rx[TSE_PN532_MAX_DATA];
    uint8_t r[TSE_RAPDU_MAX];
};

/* One reader session after activation. Returns false when the device failed. */
static bool session(struct tse_card *card, nfc_device *pnd, const struct tse_nfc_target_options *o,
                    FILE *log, struct nfc_bufs *b)
{
    size_t n;
    int rc = tse_card_power_on(card, TSE_IF_CONTACTLESS, NULL, 0, &n);
    if (rc) {
        fprintf(log, "tse-card: contactless power on failed: %s\n", tse_strerror(rc));
        return true;
    }
    unsigned apdus = 0;
    bool ok = true;
    for (;;) {
        int got = nfc_target_receive_bytes(pnd, b->rx, sizeof(b->rx), 0);
        if (got < 0) {
            if (got == NFC_ETGRELEASED)
                fprintf(log, "tse-card: [nfc] reader released the card after %u APDU(s)\n", apdus);
            else if (got != NFC_EOPABORTED || !stopping(o))
                fprintf(log, "tse-card: [nfc] receive: %s\n", nfc_err(pnd, got));
            ok = got == NFC_ETGRELEASED || got == NFC_EOPABORTED || got == NFC_ERFTRANS ||
                 got == NFC_ETIMEOUT;
            break;
        }
        size_t rlen = 0;
        double t0 = now_ms();
        rc = tse_card_transmit(card, TSE_IF_CONTACTLESS, b->rx, (size_t)got, b->r, sizeof(b->r),
                               &rlen);
        double dt = now_ms() - t0;
        if (rc == TSE_ERR_TORN) {
            /* A card that loses power falls silent; the reader times out. */
            fprintf(log, "tse-card: [nfc] power cut during a store write: the card is mute "
                         "until the next activation\n");
            break;
        }
        if (rc) {
            fprintf(log, "tse-card: [nfc] transmit: %s\n", tse_strerror(rc));
            break;
        }
        if (rlen > TSE_PN532_MAX_RAPDU) {
            fprintf(log,
                    "tse-card: [nfc] a %zu-byte answer does not fit libnfc target mode (max "
                    "%d): sent 6700 instead (use short APDUs)\n",
                    rlen, TSE_PN532_MAX_RAPDU);
            b->r[0] = (uint8_t)(SW_WRONG_LENGTH >> 8);
            b->r[1] = (uint8_t)SW_WRONG_LENGTH;
            rlen = 2;
        }
        apdus++;
        if (o->trace) {
            fprintf(log, "[contactless/nfc] %.3f ms\n", dt);
            log_hex(log, "->", b->rx, (size_t)got);
            log_hex(log, "<-", b->r, rlen);
        }
        int s = nfc_target_send_bytes(pnd, b->r, rlen, 0);
        if (s < 0) {
            if (s == NFC_ETGRELEASED)
                fprintf(log, "tse-card: [nfc] reader released the card after %u APDU(s)\n", apdus);
            else if (s != NFC_EOPABORTED || !stopping(o))
                fprintf(log, "tse-card: [nfc] send: %s\n", nfc_err(pnd, s));
            ok = s == NFC_ETGRELEASED || s == NFC_EOPABORTED || s == NFC_ERFTRANS ||
                 s == NFC_ETIMEOUT;
            break;
        }
    }
    tse_card_power_off(card, TSE_IF_CONTACTLESS); /* the field is gone */
    fflush(log);
    return ok;
}

/* Serve one opened device. 0: stopped; TSE_ERR_IO: the device failed. */
static int serve_device(struct tse_card *card, nfc_device *pnd,
                        const struct tse_nfc_target_options *o, FILE *log, struct nfc_bufs *b)
{
    struct tse_pn532_card_info as;
    tse_nfc_emulated_params(card, &as);
    nfc_target nt;
    memset(&nt, 0, sizeof(nt));
    nt.nm.nmt = NMT_ISO14443A;
    nt.nm.nbr = NBR_UNDEFINED;
    int failures = 0;
    while (!stopping(o)) {
        /* libnfc may rewrite the target (baud rate): set it afresh each time */
        memcpy(nt.nti.nai.abtAtqa, as.atqa, 2);
        nt.nti.nai.btSak = as.sak;
        memcpy(nt.nti.nai.abtUid, as.uid, 4);
        nt.nti.nai.szUidLen = 4;
        /* libnfc takes the ATS without TL and extracts the historical bytes itself */
        nt.nti.nai.szAtsLen = as.ats_len - 1;
        memcpy(nt.nti.nai.abtAts, as.ats + 1, as.ats_len - 1);
        nt.nm.nbr = NBR_UNDEFINED;
        int r = nfc_target_init(pnd, &nt, b->rx, sizeof(b->rx), 0);
        if (r < 0) {
            if (stopping(o))
                break;
            fprintf(log, "tse-card: [nfc] target init: %s\n", nfc_err(pnd, r));
            if (++failures >= 3)
                return TSE_ERR_IO;
            usleep(200000);
            continue;
        }
        failures = 0;
        fprintf(log, "tse-card: [nfc] activated by a reader\n");
        fflush(log);
        if (!session(card, pnd, o, log, b) && !stopping(o))
            return TSE_ERR_IO;
    }
    return 0;
}

int tse_nfc_serve(struct tse_card *card, const struct tse_nfc_target_options *opt)
{
    if (!card || !opt)
        return TSE_ERR_INVALID_ARG;
    FILE *log = opt->log ? opt->log : stderr;
    const char *cs = opt->connstring ? opt->connstring : "(libnfc default device)";
    struct nfc_bufs *b = malloc(sizeof(*b));
    nfc_context *ctx = NULL;
    nfc_init(&ctx);
    if (!ctx || !b) {
        fprintf(log, "tse-card: cannot initialise libnfc\n");
        free(b);
        return TSE_ERR_NO_MEMORY;
    }
    struct tse_pn532_card_info as;
    tse_nfc_emulated_params(card, &as);
    int rc = 0;
    bool told = false;
    while (!stopping(opt)) {
        nfc_device *pnd = nfc_open(ctx, opt->connstring);
        if (!pnd) {
            if (!told || !opt->retry)
                fprintf(log, "tse-card: cannot open NFC device %s%s\n", cs,
                        opt->retry ? "; retrying every second" : "");
            told = true;
            if (!opt->retry) {
                rc = TSE_ERR_IO;
                break;
            }
            sleep(1);
            continue;
        }
        told = false;
        char ats[2 * TSE_PN532_MAX_ATS + 1];
        for (size_t i = 0; i < as.ats_len; i++)
            snprintf(ats + 2 * i, 3, "%02X", as.ats[i]);
        fprintf(log,
                "tse-card: NFC device %s (%s): contactless interface as ISO 14443-4A target, "
                "UID %02X%02X%02X%02X ATQA %02X%02X SAK %02X ATS %s\n",
                nfc_device_get_name(pnd), cs, as.uid[0], as.uid[1], as.uid[2], as.uid[3],
                as.atqa[0], as.atqa[1], as.sak, ats);
        fflush(log);
        struct watcher w = {.pnd = pnd, .stop = opt->stop};
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        pthread_t th;
        bool watching = pthread_create(&th, NULL, watch, &w) == 0;
        int r = serve_device(card, pnd, opt, log, b);
        if (watching) {
            pthread_mutex_lock(&w.mu);
            w.done = true;
            pthread_cond_signal(&w.cv);
            pthread_mutex_unlock(&w.mu);
            pthread_join(th, NULL);
        }
        pthread_cond_destroy(&w.cv);
        pthread_mutex_destroy(&w.mu);
        nfc_close(pnd); /* idles the chip first */
        tse_card_power_off(card, TSE_IF_CONTACTLESS);
        if (r == 0)
            break;
        fprintf(log, "tse-card: NFC device %s failed%s\n", cs, opt->retry ? "; reopening" : "");
        if (!opt->retry) {
            rc = TSE_ERR_IO;
            break;
        }
        sleep(1);
    }
    nfc_exit(ctx);
    free(b);
    return rc;
}
