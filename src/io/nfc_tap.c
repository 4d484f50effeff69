/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A reader session that records a tap (include/tse/nfc.h): activation, exchanges with
 * measured round trips and card times, the ISO 14443 model at any bit rate, a text report and
 * an SVG timeline. Transport: a libnfc initiator, or the in-process card's contactless
 * interface (exact card time, no libnfc).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfc/nfc.h>

#include "tse/error.h"
#include "tse/nfc.h"

struct tse_tap {
    struct tse_tap_options o;
    nfc_context *ctx;
    nfc_device *pnd;
    bool active;
    struct tse_pn532_card_info card;
    struct tse_air_link link;
    struct tse_tap_record *rec;
    size_t n, cap;
    double host_pending_us;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void drop_records(struct tse_tap *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->rec[i].c);
        free(t->rec[i].r);
    }
    t->n = 0;
    t->host_pending_us = 0;
}

int tse_tap_open(struct tse_tap **out, const struct tse_tap_options *opt, char *err, size_t errlen)
{
    if (!out || !opt) {
        snprintf(err, errlen, "invalid arguments");
        return TSE_ERR_INVALID_ARG;
    }
    struct tse_tap *t = calloc(1, sizeof(*t));
    if (!t)
        return TSE_ERR_NO_MEMORY;
    t->o = *opt;
    if (t->o.timeout_ms <= 0)
        t->o.timeout_ms = 5000;
    if (t->o.wait_ms < 0)
        t->o.wait_ms = 0;
    tse_air_link_default(&t->link);
    if (opt->transport) {
        t->o.card = NULL; /* the transport wins */
    } else if (!opt->card) {
        nfc_init(&t->ctx);
        if (!t->ctx) {
            snprintf(err, errlen, "cannot initialise libnfc");
            free(t);
            return TSE_ERR_NO_MEMORY;
        }
        t->pnd = nfc_open(t->ctx, opt->connstring);
        if (!t->pnd) {
            snprintf(err, errlen, "cannot open NFC device %s",
                     opt->connstring ? opt->connstring : "(libnfc default device)");
            nfc_exit(t->ctx);
            free(t);
            return TSE_ERR_IO;
        }
        if (nfc_initiator_init(t->pnd) < 0 ||
            nfc_device_set_property_bool(t->pnd, NP_INFINITE_SELECT, false) < 0) {
            snprintf(err, errlen, "%s: initiator mode: %s", nfc_device_get_name(t->pnd),
                     nfc_strerror(t->pnd));
            nfc_close(t->pnd);
            nfc_exit(t->ctx);
            free(t);
            return TSE_ERR_IO;
        }
    }
    *out = t;
    return 0;
}

void tse_tap_close(struct tse_tap *t)
{
    if (!t)
        return;
    drop_records(t);
    free(t->rec);
    if (t->pnd)
        nfc_close(t->pnd);
    if (t->ctx)
        nfc_exit(t->ctx);
    if (t->o.card && t->active)
        tse_card_power_off(t->o.card, TSE_IF_CONTACTLESS);
    else if (t->o.transport && t->active)
        t->o.transport->release(t->o.transport->user);
    free(t);
}

static int activate_card(struct tse_tap *t, struct tse_pn532_card_info *k)
{
    size_t n;
    uint8_t ats[64];
    int rc = tse_card_power_on(t->o.card, TSE_IF_CONTACTLESS, ats, sizeof(ats), &n);
    if (rc)
        return TSE_ERR_IO;
    struct tse_cl_params p;
    tse_card_cl_params(t->o.card, &p);
    memcpy(k->atqa, p.atqa, 2);
    k->sak = p.sak;
    memcpy(k->uid, p.uid, p.uid_len);
    k->uid_len = p.uid_len;
    k->ats_len = p.ats_len <= sizeof(k->ats) ? p.ats_len : 0;
    memcpy(k->ats, p.ats, k->ats_len);
    return 0;
}

static int activate_nfc(struct tse_tap *t, struct tse_pn532_card_info *k)
{
    nfc_modulation nm = {.nmt = NMT_ISO14443A, .nbr = NBR_106};
    if (t->o.rate == TSE_AIR_212)
        nm.nbr = NBR_212;
    else if (t->o.rate == TSE_AIR_424)
        nm.nbr = NBR_424; /* 848: the PN53x cannot; modelled only */
    double deadline = now_us() + (double)t->o.wait_ms * 1000.0;
    for (;;) {
        nfc_target nt;
        memset(&nt, 0, sizeof(nt));
        int r = nfc_initiator_select_passive_target(t->pnd, nm, NULL, 0, &nt);
        if (r > 0) {
            const nfc_iso14443a_info *a = &nt.nti.nai;
            memcpy(k->atqa, a->abtAtqa, 2);
            k->sak = a->btSak;
            k->uid_len = a->szUidLen <= sizeof(k->uid) ? a->szUidLen : sizeof(k->uid);
            memcpy(k->uid, a->abtUid, k->uid_len);
            k->ats_len = 0;
            if (a->szAtsLen && a->szAtsLen + 1 <= sizeof(k->ats)) {
                k->ats[0] = (uint8_t)(a->szAtsLen + 1); /* libnfc drops TL */
                memcpy(k->ats + 1, a->abtAts, a->szAtsLen);
                k->ats_len = a->szAtsLen + 1;
            }
            return 0;
        }
        if (r < 0 && r != NFC_ETIMEOUT && r != NFC_ERFTRANS)
            return TSE_ERR_IO;
        if (now_us() >= deadline)
            return TSE_ERR_NOT_FOUND;
        usleep(50000);
    }
}

int tse_tap_activate(struct tse_tap *t, struct tse_pn532_card_info *card)
{
    if (!t)
        return TSE_ERR_INVALID_ARG;
    drop_records(t);
    struct tse_pn532_card_info k;
    memset(&k, 0, sizeof(k));
    int rc = t->o.transport ? t->o.transport->activate(t->o.transport->user, t->o.wait_ms, &k)
             : t->o.card    ? activate_card(t, &k)
                            : activate_nfc(t, &k);
    if (rc)
        return rc;
    t->card = k;
    t->active = true;
    tse_air_link_default(&t->link);
    t->link.fsd = 256; /* PN53x and this model ask for FSD 256 in the RATS */
    if (k.ats_len)
        (void)tse_air_link_from_ats(&t->link, k.ats, k.ats_len);
    t->link.rate = t->o.rate;
    if (card)
        *card = k;
    return 0;
}

const char *tse_tap_ins_name(uint8_t cla, uint8_t ins)
{
    bool prop = cla & 0x80;
    switch (ins) {
    case 0xA4:
        return "SELECT";
    case 0xB0:
        return "READ BINARY";
    case 0xB2:
        return "READ RECORD";
    case 0xD6:
        return "UPDATE BINARY";
    case 0xDC:
        return prop ? "UPDATE CAPP CACHE" : "UPDATE RECORD";
    case 0xC0:
        return "GET RESPONSE";
    case 0xCA:
        return "GET DATA";
    case 0x84:
        return "GET CHALLENGE";
    case 0x82:
        return "EXTERNAL AUTH";
    case 0x88:
        return "INTERNAL AUTH";
    case 0x20:
        return "VERIFY";
    case 0x70:
        return prop ? NULL : "MANAGE CHANNEL";
    case 0x50:
        return prop ? "INITIALIZE" : NULL;
    case 0x52:
        return prop ? "CREDIT" : NULL;
    case 0x54:
        return prop ? "DEBIT" : NULL;
    case 0x5A:
        return prop ? "GET TXN PROVE" : NULL;
    case 0x5C:
        return prop ? "GET BALANCE" : NULL;
    case 0xF2:
        return prop ? "GET STATUS" : NULL;
    case 0xE2:
        return prop ? "STORE DATA" : NULL;
    case 0xE4:
        return prop ? "DELETE" : NULL;
    case 0xE6:
        return prop ? "INSTALL" : NULL;
    case 0xD8:
        return prop ? "PUT KEY" : NULL;
    }
    return NULL;
}

int tse_tap_transmit(struct tse_tap *t, const char *label, const uint8_t *c, size_t clen,
                     uint8_t *r, size_t rcap, size_t *rlen)
{
    if (!t || !c || !r || !rlen)
        return TSE_ERR_INVALID_ARG;
    if (!t->active)
        return TSE_ERR_POWERED_OFF;
    if (t->pnd && clen > TSE_PN532_MAX_CAPDU)
        return TSE_ERR_INVALID_ARG; /* libnfc 1.8.0 overflows its buffer beyond that */
    size_t got = 0;
    double t0 = now_us(), wall;
    if (t->o.transport) {
        int rc = t->o.transport->transmit(t->o.transport->user, c, clen, r, rcap, &got);
        wall = now_us() - t0;
        if (rc == TSE_ERR_BUFFER_TOO_SMALL || rc == TSE_ERR_INVALID_ARG)
            return rc;
        if (rc) {
            t->active = false;
            return TSE_ERR_IO;
        }
    } else if (t->o.card) {
        int rc = tse_card_transmit(t->o.card, TSE_IF_CONTACTLESS, c, clen, r, rcap, &got);
        wall = now_us() - t0;
        if (rc == TSE_ERR_BUFFER_TOO_SMALL)
            return rc;
        if (rc) {
            t->active = false;
            return TSE_ERR_IO; /* torn or off: a mute card */
        }
    } else {
        int res = nfc_initiator_transceive_bytes(t->pnd, c, clen, r, rcap, t->o.timeout_ms);
        wall = now_us() - t0;
        if (res == NFC_EOVFLOW)
            return TSE_ERR_BUFFER_TOO_SMALL;
        if (res < 0)
            return TSE_ERR_IO;
        got = (size_t)res;
    }
    *rlen = got;

    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 16;
        struct tse_tap_record *nr = realloc(t->rec, nc * sizeof(*nr));
        if (!nr)
            return 0; /* the exchange happened; only the record is lost */
        t->rec = nr;
        t->cap = nc;
    }
    struct tse_tap_record *e = &t->rec[t->n];
    memset(e, 0, sizeof(*e));
    e->c = malloc(clen ? clen : 1);
    e->r = malloc(got ? got : 1);
    if (!e->c || !e->r) {
        free(e->c);
        free(e->r);
        return 0;
    }
    memcpy(e->c, c, clen);
    memcpy(e->r, r, got);
    e->clen = clen;
    e->rlen = got;
    const char *name = clen >= 2 ? tse_tap_ins_name(c[0], c[1]) : NULL;
    if (label && *label)
        snprintf(e->label, sizeof(e->label), "%s", label);
    else if (name)
        snprintf(e->label, sizeof(e->label), "%s", name);
    else
        snprintf(e->label, sizeof(e->label), "INS %02X", clen >= 2 ? c[1] : 0);
    e->wall_us = wall;
    e->card_us = wall;
    if (t->pnd && t->o.device != TSE_TAP_DEV_SIM) {
        struct tse_air_exchange x;
        tse_air_exchange(&t->link, clen, got, 0, &x);
        double est = wall - x.total_us;
        if (t->o.device == TSE_TAP_DEV_PN532)
            est -= tse_air_hsu_exchange_us(clen, got, 0);
        e->card_us = est > 0 ? est : 0;
    }
    e->host_before_us = t->host_pending_us;
    t->host_pending_us = 0;
    tse_air_exchange(&t->link, clen, got, e->card_us, &e->air);
    t->n++;
    return 0;
}

void tse_tap_note_host(struct tse_tap *t, double us)
{
    if (t && us > 0)
        t->host_pending_us += us;
}

int tse_tap_release(struct tse_tap *t)
{
    if (!t)
        return TSE_ERR_INVALID_ARG;
    if (!t->active)
        return 0;
    t->active = false;
    if (t->o.transport)
        return t->o.transport->release(t->o.transport->user) ? TSE_ERR_IO : 0;
    if (t->o.card)
        tse_card_power_off(t->o.card, TSE_IF_CONTACTLESS);
    else if (nfc_initiator_deselect_target(t->pnd) < 0)
        return TSE_ERR_IO;
    return 0;
}

const struct tse_pn532_card_info *tse_tap_card(const struct tse_tap *t)
{
    return t ? &t->card : NULL;
}

const struct tse_air_link *tse_tap_link(const struct tse_tap *t)
{
    return t ? &t->link : NULL;
}

const struct tse_tap_record *tse_tap_records(const struct tse_tap *t, size_t *n)
{
    if (n)
        *n = t ? t->n : 0;
    return t ? t->rec : NULL;
}

void tse_tap_totals(const struct tse_tap *t, enum tse_air_rate rate, struct tse_tap_totals *o)
{
    memset(o, 0, sizeof(*o));
    if (!t)
        return;
    struct tse_air_link l = t->link;
    l.rate = rate;
    o->activation_us = tse_air_activation_us(t->card.uid_len, t->card.ats_len, t->link.sfgi);
    if (o->activation_us < 0)
        o->activation_us = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct tse_tap_record *e = &t->rec[i];
        struct tse_air_exchange x;
        tse_air_exchange(&l, e->clen, e->rlen, e->card_us, &x);
        o->air_us += x.air_us;
        o->card_us += e->card_us;
        o->txn_us += x.total_us;
        o->host_us += e->host_before_us;
        o->wall_us += e->wall_us;
    }
    o->host_us += t->host_pending_us; /* after the last exchange */
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02X", b[i]);
}

void tse_tap_report(const struct tse_tap *t, FILE *f)
{
    if (!t || !f)
        return;
    fprintf(f, "card: UID ");
    hex(f, t->card.uid, t->card.uid_len);
    fprintf(f, " ATQA %02X%02X SAK %02X ATS ", t->card.atqa[0], t->card.atqa[1], t->card.sak);
    hex(f, t->card.ats, t->card.ats_len);
    fprintf(f, " (FSC %zu, FWI %u, SFGI %u)\n", t->link.fsc, t->link.fwi, t->link.sfgi);
    int w = 18; /* the label column grows for long labels ("INITIALIZE FOR CAPP PURCHASE") */
    for (size_t i = 0; i < t->n; i++)
        if ((int)strlen(t->rec[i].label) > w)
            w = (int)strlen(t->rec[i].label);
    fprintf(f,
            " #  %-*s %4s %4s %4s  %8s %8s %8s %8s %8s  (ms; air and total modelled at %u "
            "kbit/s; reader: its work before the exchange)\n",
            w, "exchange", "C", "R", "SW", "reader", "card", "air", "total", "wall",
            tse_air_rate_kbps(t->link.rate));
    for (size_t i = 0; i < t->n; i++) {
        const struct tse_tap_record *e = &t->rec[i];
        char sw[5] = "----";
        if (e->rlen >= 2)
            snprintf(sw, sizeof(sw), "%02X%02X", e->r[e->rlen - 2], e->r[e->rlen - 1]);
        fprintf(f, "%2zu  %-*s %4zu %4zu %4s  %8.3f %8.3f %8.3f %8.3f %8.3f\n", i + 1, w, e->label,
                e->clen, e->rlen, sw, e->host_before_us / 1000.0, e->card_us / 1000.0,
                e->air.air_us / 1000.0, e->air.total_us / 1000.0, e->wall_us / 1000.0);
    }
    if (t->host_pending_us > 0)
        fprintf(f, "    %-*s %4s %4s %4s  %8.3f\n", w, "(reader, after the last)", "", "", "",
                t->host_pending_us / 1000.0);
    fprintf(f, "typical transaction time (first command bit .. last response bit; activation "
               "and reader-side work excluded):\n");
    fprintf(f, "  %-10s %10s %10s %10s %10s\n", "kbit/s", "106", "212", "424", "848*");
    struct tse_tap_totals tt[4];
    for (int r = 0; r < 4; r++)
        tse_tap_totals(t, (enum tse_air_rate)r, &tt[r]);
    fprintf(f, "  %-10s", "air");
    for (int r = 0; r < 4; r++)
        fprintf(f, " %10.3f", tt[r].air_us / 1000.0);
    fprintf(f, "\n  %-10s", "card");
    for (int r = 0; r < 4; r++)
        fprintf(f, " %10.3f", tt[r].card_us / 1000.0);
    fprintf(f, "\n  %-10s", "total");
    for (int r = 0; r < 4; r++)
        fprintf(f, " %10.3f", tt[r].txn_us / 1000.0);
    if (tt[0].activation_us > 0)
        fprintf(f, "\n  activation %.3f ms (106 kbit/s, modelled);", tt[0].activation_us / 1000.0);
    else
        fprintf(f, "\n  activation not modelled (the reader does not show the UID and ATS);");
    fprintf(f, " reader-side work %.3f ms; measured round trips %.3f ms\n", tt[0].host_us / 1000.0,
            tt[0].wall_us / 1000.0);
    fprintf(f, "  * 848 kbit/s exists only in the model (the PN53x stops at 424)\n");
    if (t->o.transport) {
        fprintf(f, "  card time: round trip through %s (upper bound, includes the reader)\n",
                t->o.transport->name ? t->o.transport->name : "the reader");
        return;
    }
    fprintf(f, "  card time: %s\n",
            t->o.card ? "measured in-process"
            : t->o.device == TSE_TAP_DEV_PN532
                ? "round trip minus modelled UART and air time (estimate)"
            : t->o.device == TSE_TAP_DEV_SIM_REALTIME
                ? "round trip through the paced simulator minus modelled air time (estimate)"
                : "round trip through the simulator (upper bound, includes pty hops)");
}

/* ---- SVG timeline ------------------------------------------------------------------------- */

static double nice_step(double span_ms)
{
    static const double steps[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (span_ms / steps[i] <= 12)
            return steps[i];
    return 2000;
}

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

int tse_tap_svg(const struct tse_tap *t, const char *path)
{
    if (!t || !path)
        return TSE_ERR_INVALID_ARG;
    FILE *f = fopen(path, "w");
    if (!f)
        return TSE_ERR_IO;
    struct tse_tap_totals tot;
    tse_tap_totals(t, t->link.rate, &tot);
    double span = tot.activation_us + tot.txn_us + tot.host_us;
    if (span <= 0)
        span = 1;
    const double x0 = 150, width = 1000, lane_h = 26;
    const double y_lane[4] = {70, 105, 140, 175}; /* reader->card, card, card->reader, reader */
    double scale = width / span;                  /* px per us */
    double total_h = 270 + 14.0 * (double)t->n;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            x0 + width + 30, total_h);
    fprintf(f,
            "<text x=\"10\" y=\"20\" font-size=\"14\">Tap timeline, ISO 14443 model at %u "
            "kbit/s: transaction %.2f ms (air %.2f, card %.2f), activation %.2f ms</text>\n",
            tse_air_rate_kbps(t->link.rate), tot.txn_us / 1000.0, tot.air_us / 1000.0,
            tot.card_us / 1000.0, tot.activation_us / 1000.0);
    static const char *const lanes[4] = {"reader \xe2\x86\x92 card", "card processing",
                                         "card \xe2\x86\x92 reader", "reader / PSAM"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "<text x=\"10\" y=\"%.0f\">%s</text>\n", y_lane[i] + 17, lanes[i]);
    /* time axis */
    double span_ms = span / 1000.0, step = nice_step(span_ms);
    double y_axis = y_lane[3] + lane_h + 20;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"black\"/>\n", x0,
            y_axis, x0 + width, y_axis);
    for (double ms = 0; ms <= span_ms + 1e-9; ms += step) {
        double x = x0 + ms * 1000.0 * scale;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ccc\"/>\n"
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g ms</text>\n",
                x, y_lane[0] - 8, x, y_axis + 4, x, y_axis + 16, ms);
    }
    double t_us = 0;
    fprintf(f,
            "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#bbb\">"
            "<title>activation %.3f ms</title></rect>\n"
            "<text x=\"%.2f\" y=\"%.0f\">activation</text>\n",
            x0, y_lane[0], tot.activation_us * scale, lane_h, tot.activation_us / 1000.0, x0,
            y_lane[0] - 12);
    t_us += tot.activation_us;
    struct tse_air_link l = t->link;
    for (size_t i = 0; i < t->n; i++) {
        const struct tse_tap_record *e = &t->rec[i];
        struct tse_air_exchange x;
        tse_air_exchange(&l, e->clen, e->rlen, e->card_us, &x);
        if (e->host_before_us > 0) {
            fprintf(f,
                    "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#d9c2f0\">"
                    "<title>reader-side work %.3f ms</title></rect>\n",
                    x0 + t_us * scale, y_lane[3], e->host_before_us * scale, lane_h,
                    e->host_before_us / 1000.0);
            t_us += e->host_before_us;
        }
        double xs = x0 + t_us * scale;
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#4a90d9\">"
                "<title>",
                xs, y_lane[0], x.cmd_us * scale, lane_h);
        svg_text(f, e->label);
        fprintf(f, ": C-APDU %zu bytes, %u block(s), %.3f ms</title></rect>\n", e->clen,
                x.cmd_blocks, x.cmd_us / 1000.0);
        t_us += x.cmd_us;
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#f5a623\">"
                "<title>card %.3f ms</title></rect>\n",
                x0 + t_us * scale, y_lane[1], x.wait_us * scale, lane_h, e->card_us / 1000.0);
        t_us += x.wait_us;
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#7ed321\">"
                "<title>R-APDU %zu bytes, %u block(s), %.3f ms</title></rect>\n",
                x0 + t_us * scale, y_lane[2], x.rsp_us * scale, lane_h, e->rlen, x.rsp_blocks,
                x.rsp_us / 1000.0);
        t_us += x.rsp_us;
        /* numbered marker on the lanes, legend line below the axis */
        fprintf(f, "<text x=\"%.2f\" y=\"%.0f\" font-size=\"9\">%zu</text>\n", xs, y_lane[0] - 2,
                i + 1);
        fprintf(f, "<text x=\"10\" y=\"%.0f\">%zu  ", y_axis + 40 + 14.0 * (double)i, i + 1);
        svg_text(f, e->label);
        fprintf(f, ": C %zu B, R %zu B, air %.3f ms, card %.3f ms, total %.3f ms</text>\n", e->clen,
                e->rlen, x.air_us / 1000.0, e->card_us / 1000.0, x.total_us / 1000.0);
    }
    if (t->host_pending_us > 0) /* reader-side work after the last response */
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"#d9c2f0\">"
                "<title>reader-side work %.3f ms</title></rect>\n",
                x0 + t_us * scale, y_lane[3], t->host_pending_us * scale, lane_h,
                t->host_pending_us / 1000.0);
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return TSE_ERR_IO;
    return 0;
}
