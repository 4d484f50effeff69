/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A simulated PN532 (include/tse/pn532.h). Command layouts follow NXP UM0701-02 §7 and the
 * way libnfc 1.8.0 decodes the answers (../shared/spec/contactless.md §4-§6). The rules that
 * keep libnfc alive are enforced in one place each: answer() never sends more than 264 bytes
 * after TFI, status() masks bit 0x80 off, complete_exchange() refuses R-APDUs libnfc cannot
 * take, tg_activate() always puts the RATS after the mode byte.
 */
#include <stdlib.h>
#include <string.h>

#include "tse/error.h"
#include "tse/pn532.h"

const uint8_t tse_pn532_ack_frame[6] = {0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00};
const uint8_t tse_pn532_nack_frame[6] = {0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00};
const uint8_t tse_pn532_error_frame[8] = {0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00};

/* ---- framing -------------------------------------------------------------------------- */

enum {
    P_HUNT0 = 0, /* looking for the 00 of the start code */
    P_HUNT1,     /* saw 00, want FF */
    P_LEN,
    P_LCS,
    P_EXT_M,
    P_EXT_L,
    P_EXT_LCS,
    P_BODY, /* TFI, data, DCS */
};

#define MAX_LEN_FIELD (TSE_PN532_MAX_DATA + 1) /* TFI + 265 */

void tse_pn532_parser_init(struct tse_pn532_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = P_HUNT0;
}

static void frame_bad(struct tse_pn532_parser *p, struct tse_pn532_frame *f, const char *why)
{
    f->type = TSE_PN532_FRAME_BAD;
    f->why = why;
    p->state = P_HUNT0;
}

size_t tse_pn532_parse(struct tse_pn532_parser *p, const uint8_t *in, size_t len,
                       struct tse_pn532_frame *f)
{
    memset(f, 0, sizeof(*f));
    size_t i = 0;
    while (i < len) {
        uint8_t b = in[i++];
        switch (p->state) {
        case P_HUNT0:
            if (b == 0x00)
                p->state = P_HUNT1;
            break;
        case P_HUNT1:
            if (b == 0xFF)
                p->state = P_LEN;
            else if (b != 0x00)
                p->state = P_HUNT0;
            break;
        case P_LEN:
            p->len = b;
            p->state = P_LCS;
            break;
        case P_LCS:
            if (p->len == 0x00 && b == 0xFF) {
                f->type = TSE_PN532_FRAME_ACK;
                p->state = P_HUNT0;
                return i;
            }
            if (p->len == 0xFF && b == 0x00) {
                f->type = TSE_PN532_FRAME_NACK;
                p->state = P_HUNT0;
                return i;
            }
            if (p->len == 0xFF && b == 0xFF) {
                p->ext = true;
                p->state = P_EXT_M;
                break;
            }
            if (((p->len + b) & 0xFF) != 0 || p->len == 0) {
                frame_bad(p, f, "length checksum mismatch");
                return i;
            }
            p->have = 0;
            p->ext = false;
            p->state = P_BODY;
            break;
        case P_EXT_M:
            p->lenm = b;
            p->state = P_EXT_L;
            break;
        case P_EXT_L:
            p->len = (size_t)p->lenm << 8 | b;
            p->state = P_EXT_LCS;
            break;
        case P_EXT_LCS:
            if (((p->lenm + (p->len & 0xFF) + b) & 0xFF) != 0) {
                frame_bad(p, f, "extended length checksum mismatch");
                return i;
            }
            if (p->len == 0 || p->len > MAX_LEN_FIELD) {
                frame_bad(p, f, "extended length out of range");
                return i;
            }
            p->have = 0;
            p->state = P_BODY;
            break;
        case P_BODY:
            p->buf[p->have++] = b;
            if (p->have == p->len + 1) {
                uint8_t sum = 0;
                for (size_t k = 0; k < p->have; k++)
                    sum = (uint8_t)(sum + p->buf[k]);
                p->state = P_HUNT0;
                if (sum != 0) {
                    f->type = TSE_PN532_FRAME_BAD;
                    f->why = "data checksum mismatch";
                    return i;
                }
                f->type = TSE_PN532_FRAME_INFO;
                f->tfi = p->buf[0];
                f->data = p->buf + 1;
                f->len = p->len - 1;
                f->extended = p->ext;
                return i;
            }
            break;
        default:
            p->state = P_HUNT0;
            break;
        }
    }
    return i;
}

int tse_pn532_build(uint8_t tfi, const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0 || len > TSE_PN532_MAX_DATA || (!data && len))
        return TSE_ERR_INVALID_ARG;
    size_t lenf = len + 1; /* TFI counts */
    bool ext = lenf > 255;
    size_t total = lenf + (ext ? 10 : 7);
    if (!out || cap < total)
        return TSE_ERR_BUFFER_TOO_SMALL;
    size_t o = 0;
    out[o++] = 0x00;
    out[o++] = 0x00;
    out[o++] = 0xFF;
    if (ext) {
        out[o++] = 0xFF;
        out[o++] = 0xFF;
        out[o++] = (uint8_t)(lenf >> 8);
        out[o++] = (uint8_t)lenf;
        out[o++] = (uint8_t)(0x100 - (((lenf >> 8) + lenf) & 0xFF));
    } else {
        out[o++] = (uint8_t)lenf;
        out[o++] = (uint8_t)(0x100 - lenf);
    }
    uint8_t sum = tfi;
    out[o++] = tfi;
    for (size_t k = 0; k < len; k++) {
        out[o++] = data[k];
        sum = (uint8_t)(sum + data[k]);
    }
    out[o++] = (uint8_t)(0x100 - sum);
    out[o++] = 0x00;
    return (int)o;
}

const char *tse_pn532_cmd_name(uint8_t cc)
{
    switch (cc) {
    case TSE_PN532_DIAGNOSE:
        return "Diagnose";
    case TSE_PN532_GET_FIRMWARE_VERSION:
        return "GetFirmwareVersion";
    case TSE_PN532_GET_GENERAL_STATUS:
        return "GetGeneralStatus";
    case TSE_PN532_READ_REGISTER:
        return "ReadRegister";
    case TSE_PN532_WRITE_REGISTER:
        return "WriteRegister";
    case TSE_PN532_READ_GPIO:
        return "ReadGPIO";
    case TSE_PN532_WRITE_GPIO:
        return "WriteGPIO";
    case TSE_PN532_SET_PARAMETERS:
        return "SetParameters";
    case TSE_PN532_SAM_CONFIGURATION:
        return "SAMConfiguration";
    case TSE_PN532_POWER_DOWN:
        return "PowerDown";
    case TSE_PN532_RF_CONFIGURATION:
        return "RFConfiguration";
    case TSE_PN532_IN_DATA_EXCHANGE:
        return "InDataExchange";
    case TSE_PN532_IN_COMMUNICATE_THRU:
        return "InCommunicateThru";
    case TSE_PN532_IN_DESELECT:
        return "InDeselect";
    case TSE_PN532_IN_LIST_PASSIVE_TARGET:
        return "InListPassiveTarget";
    case TSE_PN532_IN_PSL:
        return "InPSL";
    case TSE_PN532_IN_ATR:
        return "InATR";
    case TSE_PN532_IN_RELEASE:
        return "InRelease";
    case TSE_PN532_IN_SELECT:
        return "InSelect";
    case TSE_PN532_IN_JUMP_FOR_DEP:
        return "InJumpForDEP";
    case TSE_PN532_IN_AUTO_POLL:
        return "InAutoPoll";
    case TSE_PN532_TG_GET_DATA:
        return "TgGetData";
    case TSE_PN532_TG_GET_INITIATOR_COMMAND:
        return "TgGetInitiatorCommand";
    case TSE_PN532_TG_INIT_AS_TARGET:
        return "TgInitAsTarget";
    case TSE_PN532_TG_SET_DATA:
        return "TgSetData";
    case TSE_PN532_TG_RESPONSE_TO_INITIATOR:
        return "TgResponseToInitiator";
    }
    return NULL;
}

/* ---- the chip ------------------------------------------------------------------------- */

/* SetParameters flags (UM0701 §7.2.9) */
#define PARAM_AUTO_RATS    0x10
#define PARAM_14443_4_PICC 0x20
/* TgInitAsTarget mode bits */
#define TG_MODE_DEP_ONLY 0x02
/* InAutoPoll target types */
#define PTT_GENERIC_106A 0x10
#define PTT_ISO14443_4A  0x20
/* What the PN532 answers a RATS with in PICC mode, before the host's historical bytes:
 * T0 75 (TA TB TC, FSCI 5 = 64 bytes), TA 33 (106/212/424 both ways), TB 92 (FWI 9,
 * SFGI 2), TC 03 (CID and NAD). */
static const uint8_t pn532_ats_head[4] = {0x75, 0x33, 0x92, 0x03};
/* Mode byte of an activation as ISO 14443-4 PICC at 106 kbit/s, type A framing. */
#define TG_ACTIVATED_PICC_106 0x08

struct tse_pn532 {
    const struct tse_pn532_ops *ops;
    void *user;
    double pace;
    struct tse_pn532_parser parser;
    uint8_t params;
    bool field;
    uint8_t retry_passive;
    /* initiator */
    bool selected;
    struct tse_pn532_card_info target;
    struct tse_air_link link;
    /* the command whose answer is deferred */
    bool has_pending;
    uint8_t pending;
    unsigned token;
    uint8_t pend_c[TSE_PN532_MAX_CAPDU];
    size_t pend_clen;
    uint8_t poll_types[15];
    size_t n_poll_types;
    uint8_t poll_init[10];
    size_t poll_init_len;
    /* target */
    enum tse_pn532_tg_state tg;
    bool tg_can_activate;
    struct tse_pn532_card_info tg_as;
    bool tg_queued;
    uint8_t tg_queue[TSE_PN532_MAX_CAPDU];
    size_t tg_qlen;
    /* last answer, for a NACK */
    uint8_t last[TSE_PN532_MAX_FRAME];
    size_t last_len;
    uint8_t regs[65536];
};

int tse_pn532_new(struct tse_pn532 **chip, const struct tse_pn532_ops *ops, void *user, double pace)
{
    if (!chip || !ops || !ops->output || pace < 0)
        return TSE_ERR_INVALID_ARG;
    struct tse_pn532 *c = calloc(1, sizeof(*c));
    if (!c)
        return TSE_ERR_NO_MEMORY;
    c->ops = ops;
    c->user = user;
    c->pace = pace;
    c->retry_passive = 0xFF;
    tse_pn532_parser_init(&c->parser);
    tse_air_link_default(&c->link);
    *chip = c;
    return 0;
}

void tse_pn532_free(struct tse_pn532 *chip)
{
    free(chip);
}

static void emit(struct tse_pn532 *c, const uint8_t *b, size_t len, double delay_us, bool keep)
{
    if (keep && len <= sizeof(c->last)) {
        memcpy(c->last, b, len);
        c->last_len = len;
    }
    c->ops->output(c->user, b, len, delay_us);
}

/* Answer command cc with n data bytes (the chip adds cc + 1). */
static void answer(struct tse_pn532 *c, uint8_t cc, const uint8_t *data, size_t n, double delay)
{
    uint8_t body[TSE_PN532_MAX_DATA], frame[TSE_PN532_MAX_FRAME];
    if (n > TSE_PN532_MAX_DATA - 1)
        n = TSE_PN532_MAX_DATA - 1; /* never reached: callers stay within 263 */
    body[0] = (uint8_t)(cc + 1);
    if (n)
        memcpy(body + 1, data, n);
    int len = tse_pn532_build(TSE_PN532_TFI_CHIP, body, n + 1, frame, sizeof(frame));
    if (len > 0)
        emit(c, frame, (size_t)len, delay < 0 ? 0 : delay * c->pace, true);
}

/* A one-byte status answer; bit 0x80 (NAD) would make libnfc abort(), so never set. */
static void status(struct tse_pn532 *c, uint8_t cc, uint8_t st)
{
    st &= 0x7F;
    answer(c, cc, &st, 1, 0);
}

static void error_frame(struct tse_pn532 *c)
{
    emit(c, tse_pn532_error_frame, sizeof(tse_pn532_error_frame), 0, true);
}

static void leave_target(struct tse_pn532 *c, bool notify)
{
    if (c->tg == TSE_PN532_TG_NONE)
        return;
    c->tg = TSE_PN532_TG_NONE;
    c->tg_queued = false;
    if (c->has_pending &&
        (c->pending == TSE_PN532_TG_INIT_AS_TARGET || c->pending == TSE_PN532_TG_GET_DATA))
        c->has_pending = false;
    if (notify && c->ops->tg_gone)
        c->ops->tg_gone(c->user);
}

static void deselect(struct tse_pn532 *c)
{
    if (!c->selected)
        return;
    c->selected = false;
    if (c->ops->deselect)
        c->ops->deselect(c->user);
}

static void set_field(struct tse_pn532 *c, bool on)
{
    if (c->field == on)
        return;
    if (!on)
        deselect(c);
    c->field = on;
    if (c->ops->field)
        c->ops->field(c->user, on);
}

static void set_pending(struct tse_pn532 *c, uint8_t cc)
{
    c->has_pending = true;
    c->pending = cc;
    c->token++;
}

/* A card the owner reports must not be able to break libnfc's decoder. */
static bool card_sane(struct tse_pn532_card_info *k)
{
    if (k->uid_len != 4 && k->uid_len != 7 && k->uid_len != 10)
        return false;
    if (k->ats_len > TSE_PN532_MAX_ATS || (k->ats_len && k->ats[0] != k->ats_len))
        k->ats_len = 0;
    return true;
}

/* Target data as in InListPassiveTarget: Tg ATQA SAK UIDlen UID [ATS] */
static size_t target_data(const struct tse_pn532_card_info *k, bool with_ats, uint8_t *out)
{
    size_t n = 0;
    out[n++] = 0x01;
    out[n++] = k->atqa[0];
    out[n++] = k->atqa[1];
    out[n++] = k->sak;
    out[n++] = (uint8_t)k->uid_len;
    memcpy(out + n, k->uid, k->uid_len);
    n += k->uid_len;
    if (with_ats && k->ats_len) {
        memcpy(out + n, k->ats, k->ats_len);
        n += k->ats_len;
    }
    return n;
}

static void select_card(struct tse_pn532 *c, const struct tse_pn532_card_info *k)
{
    c->selected = true;
    c->target = *k;
    tse_air_link_default(&c->link);
    c->link.fsd = 256; /* the PN532's RATS asks for FSD 256 */
    if (k->ats_len)
        (void)tse_air_link_from_ats(&c->link, k->ats, k->ats_len);
}

static double activation_delay(const struct tse_pn532_card_info *k, bool ats)
{
    struct tse_air_link l;
    tse_air_link_default(&l);
    if (ats && k->ats_len)
        (void)tse_air_link_from_ats(&l, k->ats, k->ats_len);
    double t = tse_air_activation_us(k->uid_len, ats ? k->ats_len : 0, l.sfgi);
    return t < 0 ? 0 : t;
}

/* Poll once for the pending InListPassiveTarget / InAutoPoll. true when answered. */
static bool try_poll(struct tse_pn532 *c, uint8_t cc)
{
    struct tse_pn532_card_info k;
    memset(&k, 0, sizeof(k));
    if (!c->ops->poll || c->ops->poll(c->user, &k) != 1 || !card_sane(&k))
        return false;
    if (cc == TSE_PN532_IN_LIST_PASSIVE_TARGET) {
        if (c->poll_init_len &&
            (c->poll_init_len != k.uid_len || memcmp(c->poll_init, k.uid, k.uid_len)))
            return false;
        bool ats = (c->params & PARAM_AUTO_RATS) && (k.sak & 0x20);
        uint8_t out[1 + 5 + 10 + TSE_PN532_MAX_ATS];
        out[0] = 1;
        size_t n = 1 + target_data(&k, ats, out + 1);
        select_card(c, &k);
        c->has_pending = false;
        answer(c, cc, out, n, activation_delay(&k, ats));
        return true;
    }
    /* InAutoPoll: the first requested type the card satisfies */
    for (size_t i = 0; i < c->n_poll_types; i++) {
        uint8_t t = c->poll_types[i];
        if (t != PTT_GENERIC_106A && !(t == PTT_ISO14443_4A && (k.sak & 0x20)))
            continue;
        bool ats = t == PTT_ISO14443_4A;
        uint8_t out[3 + 5 + 10 + TSE_PN532_MAX_ATS];
        out[0] = 1;
        out[1] = t;
        size_t n = target_data(&k, ats, out + 3);
        out[2] = (uint8_t)n;
        select_card(c, &k);
        c->has_pending = false;
        answer(c, cc, out, n + 3, activation_delay(&k, ats));
        return true;
    }
    return false;
}

static void cmd_in_list_passive_target(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    const uint8_t cc = TSE_PN532_IN_LIST_PASSIVE_TARGET;
    if (n < 2 || d[0] < 1 || d[0] > 2) {
        error_frame(c);
        return;
    }
    leave_target(c, true);
    deselect(c);
    set_field(c, true);
    uint8_t none = 0;
    if (d[1] != 0x00) { /* FeliCa, type B, Jewel, …: there are none in this field */
        answer(c, cc, &none, 1, 0);
        return;
    }
    c->poll_init_len = n - 2 <= sizeof(c->poll_init) ? n - 2 : 0;
    memcpy(c->poll_init, d + 2, c->poll_init_len);
    set_pending(c, cc);
    if (try_poll(c, cc))
        return;
    if (c->retry_passive != 0xFF) {
        c->has_pending = false;
        answer(c, cc, &none, 1, 0);
    } /* else: wait for tse_pn532_field_event(), as the chip retries forever */
}

static void cmd_in_auto_poll(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    const uint8_t cc = TSE_PN532_IN_AUTO_POLL;
    if (n < 3 || n > 2 + sizeof(c->poll_types) || d[1] == 0) {
        error_frame(c);
        return;
    }
    leave_target(c, true);
    deselect(c);
    set_field(c, true);
    c->n_poll_types = n - 2;
    memcpy(c->poll_types, d + 2, c->n_poll_types);
    set_pending(c, cc);
    if (try_poll(c, cc))
        return;
    if (d[0] != 0xFF) {
        c->has_pending = false;
        uint8_t none = 0;
        answer(c, cc, &none, 1, 0);
    }
}

static void cmd_in_data_exchange(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    const uint8_t cc = TSE_PN532_IN_DATA_EXCHANGE;
    if (n < 1) {
        error_frame(c);
        return;
    }
    if (!c->selected || (d[0] & 0x3F) != 1 || (d[0] & 0x40)) {
        /* no such target, or host-side chaining (MI), which libnfc never uses */
        status(c, cc, TSE_PN532_ST_BAD_CONTEXT);
        return;
    }
    if (!c->ops->exchange) {
        status(c, cc, TSE_PN532_ST_TIMEOUT);
        return;
    }
    c->pend_clen = n - 1; /* <= 263 - 1 by the frame limit */
    memcpy(c->pend_c, d + 1, c->pend_clen);
    set_pending(c, cc);
    unsigned token = c->token;
    struct tse_air_exchange x;
    double delay = 0;
    if (tse_air_exchange(&c->link, c->pend_clen, 0, 0, &x) == 0)
        delay = x.cmd_us * c->pace;
    int r = c->ops->exchange(c->user, c->pend_c, c->pend_clen, delay, token);
    if (r < 0 && c->has_pending && c->pending == cc && c->token == token) {
        c->has_pending = false;
        status(c, cc, TSE_PN532_ST_TIMEOUT);
    }
}

void tse_pn532_in_complete(struct tse_pn532 *c, unsigned token, uint8_t st, const uint8_t *r,
                           size_t rlen, double card_us)
{
    const uint8_t cc = TSE_PN532_IN_DATA_EXCHANGE;
    if (!c || !c->has_pending || c->pending != cc || c->token != token)
        return;
    c->has_pending = false;
    if (!st && (rlen > TSE_PN532_MAX_RAPDU || (rlen && !r)))
        st = TSE_PN532_ST_SMALLBUF;
    struct tse_pn532_apdu_info info;
    memset(&info, 0, sizeof(info));
    info.c = c->pend_c;
    info.clen = c->pend_clen;
    info.status = st & 0x7F;
    info.card_us = card_us;
    info.link = c->link;
    if (!st) {
        info.r = r;
        info.rlen = rlen;
    }
    (void)tse_air_exchange(&c->link, info.clen, info.rlen, card_us, &info.air);
    if (st) {
        status(c, cc, st);
    } else {
        uint8_t out[1 + TSE_PN532_MAX_RAPDU];
        out[0] = TSE_PN532_ST_OK;
        if (rlen)
            memcpy(out + 1, r, rlen);
        answer(c, cc, out, rlen + 1, info.air.rsp_us);
    }
    if (c->ops->apdu)
        c->ops->apdu(c->user, &info);
}

static void cmd_tg_init_as_target(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    /* Mode, SENS_RES[2], NFCID1t[3], SEL_RES, FeliCa[18], NFCID3t[10], LEN_Gt, Gt, LEN_Tk, Tk */
    if (n < 37) {
        error_frame(c);
        return;
    }
    size_t lgt = d[35];
    if (36 + lgt >= n) {
        error_frame(c);
        return;
    }
    size_t ltk = d[36 + lgt];
    if (37 + lgt + ltk != n) {
        error_frame(c);
        return;
    }
    const uint8_t *tk = d + 37 + lgt;
    leave_target(c, true);
    set_field(c, false); /* a target does not emit a field */
    struct tse_pn532_card_info *as = &c->tg_as;
    memset(as, 0, sizeof(*as));
    as->atqa[0] = d[2]; /* SENS_RES is given LSB first */
    as->atqa[1] = d[1];
    as->uid[0] = 0x08; /* hard-wired by the chip */
    memcpy(as->uid + 1, d + 3, 3);
    as->uid_len = 4;
    as->sak = d[6];
    if (ltk > TSE_PN532_MAX_ATS - 5)
        ltk = TSE_PN532_MAX_ATS - 5;
    as->ats_len = 5 + ltk;
    as->ats[0] = (uint8_t)as->ats_len;
    memcpy(as->ats + 1, pn532_ats_head, sizeof(pn532_ats_head));
    memcpy(as->ats + 5, tk, ltk);
    /* Only ISO 14443-4 PICC emulation is simulated: a DEP-only target or one without the
     * chip's PICC mode never sees a reader. */
    c->tg_can_activate =
        !(d[0] & TG_MODE_DEP_ONLY) && (c->params & PARAM_14443_4_PICC) && (as->sak & 0x20);
    c->tg = TSE_PN532_TG_WAITING;
    set_pending(c, TSE_PN532_TG_INIT_AS_TARGET);
    if (c->ops->tg_init)
        c->ops->tg_init(c->user, as);
}

static void cmd_tg_get_data(struct tse_pn532 *c)
{
    const uint8_t cc = TSE_PN532_TG_GET_DATA;
    if (c->tg == TSE_PN532_TG_RELEASED) {
        leave_target(c, false);
        status(c, cc, TSE_PN532_ST_RELEASED);
        return;
    }
    if (c->tg != TSE_PN532_TG_ACTIVE) {
        status(c, cc, TSE_PN532_ST_BAD_CONTEXT);
        return;
    }
    if (c->tg_queued) {
        uint8_t out[1 + TSE_PN532_MAX_CAPDU];
        out[0] = TSE_PN532_ST_OK;
        memcpy(out + 1, c->tg_queue, c->tg_qlen);
        c->tg_queued = false;
        answer(c, cc, out, c->tg_qlen + 1, 0);
        return;
    }
    set_pending(c, cc);
}

static void cmd_tg_set_data(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    const uint8_t cc = TSE_PN532_TG_SET_DATA;
    if (c->tg == TSE_PN532_TG_RELEASED) {
        leave_target(c, false);
        status(c, cc, TSE_PN532_ST_RELEASED);
        return;
    }
    if (c->tg != TSE_PN532_TG_ACTIVE) {
        status(c, cc, TSE_PN532_ST_BAD_CONTEXT);
        return;
    }
    status(c, cc, TSE_PN532_ST_OK);
    if (c->ops->tg_response)
        c->ops->tg_response(c->user, d, n);
}

static void cmd_rf_configuration(struct tse_pn532 *c, const uint8_t *d, size_t n)
{
    if (n < 2) {
        error_frame(c);
        return;
    }
    switch (d[0]) {
    case 0x01: /* RF field: bit 0 on/off, bit 1 auto RF collision avoidance */
        set_field(c, d[1] & 0x01);
        break;
    case 0x05: /* MaxRetries: ATR, PSL, passive activation */
        if (n < 4) {
            error_frame(c);
            return;
        }
        c->retry_passive = d[3];
        break;
    default: /* timings, MaxRtyCOM, analog settings: nothing to simulate */
        break;
    }
    answer(c, TSE_PN532_RF_CONFIGURATION, NULL, 0, 0);
}

static void command(struct tse_pn532 *c, const uint8_t *f, size_t len)
{
    uint8_t cc = f[0];
    const uint8_t *d = f + 1;
    size_t n = len - 1;
    switch (cc) {
    case TSE_PN532_DIAGNOSE:
        if (n < 1) {
            error_frame(c);
        } else if (d[0] == 0x00) { /* communication line test: echo */
            answer(c, cc, d, n, 0);
        } else if (d[0] == 0x06) { /* attention request / card presence */
            status(c, cc, c->selected ? TSE_PN532_ST_OK : TSE_PN532_ST_TIMEOUT);
        } else {
            status(c, cc, TSE_PN532_ST_OK);
        }
        return;
    case TSE_PN532_GET_FIRMWARE_VERSION: {
        /* IC PN532, version 1.6, supports ISO 14443A, 14443B, ISO 18092 */
        static const uint8_t v[] = {0x32, 0x01, 0x06, 0x07};
        answer(c, cc, v, sizeof(v), 0);
        return;
    }
    case TSE_PN532_GET_GENERAL_STATUS: {
        uint8_t v[8];
        size_t k = 0;
        v[k++] = 0x00;
        v[k++] = c->field ? 1 : 0;
        v[k++] = c->selected ? 1 : 0;
        if (c->selected) {
            v[k++] = 0x01;
            v[k++] = (uint8_t)c->link.rate;
            v[k++] = (uint8_t)c->link.rate;
            v[k++] = 0x00; /* type A */
        }
        v[k++] = 0x00; /* SAM status */
        answer(c, cc, v, k, 0);
        return;
    }
    case TSE_PN532_READ_REGISTER: {
        if (n == 0 || n % 2) {
            error_frame(c);
            return;
        }
        uint8_t v[TSE_PN532_MAX_DATA / 2];
        for (size_t i = 0; i < n / 2; i++)
            v[i] = c->regs[(size_t)d[2 * i] << 8 | d[2 * i + 1]];
        answer(c, cc, v, n / 2, 0); /* PN532: no status byte */
        return;
    }
    case TSE_PN532_WRITE_REGISTER:
        if (n == 0 || n % 3) {
            error_frame(c);
            return;
        }
        for (size_t i = 0; i < n; i += 3)
            c->regs[(size_t)d[i] << 8 | d[i + 1]] = d[i + 2];
        answer(c, cc, NULL, 0, 0);
        return;
    case TSE_PN532_READ_GPIO: {
        static const uint8_t v[] = {0xFF, 0xFF, 0x00};
        answer(c, cc, v, sizeof(v), 0);
        return;
    }
    case TSE_PN532_WRITE_GPIO:
        answer(c, cc, NULL, 0, 0);
        return;
    case TSE_PN532_SET_PARAMETERS:
        if (n < 1) {
            error_frame(c);
            return;
        }
        c->params = d[0];
        answer(c, cc, NULL, 0, 0);
        return;
    case TSE_PN532_SAM_CONFIGURATION:
        if (n < 1 || d[0] < 1 || d[0] > 4) {
            error_frame(c);
            return;
        }
        answer(c, cc, NULL, 0, 0);
        return;
    case TSE_PN532_POWER_DOWN:
        if (n < 1) {
            error_frame(c);
            return;
        }
        leave_target(c, true);
        set_field(c, false);
        status(c, cc, TSE_PN532_ST_OK);
        return;
    case TSE_PN532_RF_CONFIGURATION:
        cmd_rf_configuration(c, d, n);
        return;
    case TSE_PN532_IN_LIST_PASSIVE_TARGET:
        cmd_in_list_passive_target(c, d, n);
        return;
    case TSE_PN532_IN_AUTO_POLL:
        cmd_in_auto_poll(c, d, n);
        return;
    case TSE_PN532_IN_DATA_EXCHANGE:
        cmd_in_data_exchange(c, d, n);
        return;
    case TSE_PN532_IN_COMMUNICATE_THRU:
        /* Only the ISO 14443-4 presence check (R(NAK) B2/B3) reaches a card here; raw
         * probes for card types that are not in the field time out. */
        if (c->selected && c->target.ats_len && n == 1 && (d[0] & 0xFE) == 0xB2) {
            uint8_t v[2] = {TSE_PN532_ST_OK, (uint8_t)(0xA2 | (d[0] & 1))};
            answer(c, cc, v, 2, 0);
        } else {
            status(c, cc, TSE_PN532_ST_TIMEOUT);
        }
        return;
    case TSE_PN532_IN_DESELECT:
    case TSE_PN532_IN_RELEASE:
        if (n < 1) {
            error_frame(c);
            return;
        }
        if (cc == TSE_PN532_IN_RELEASE)
            leave_target(c, true);
        deselect(c);
        status(c, cc, TSE_PN532_ST_OK);
        return;
    case TSE_PN532_IN_PSL:
        if (n < 3) {
            error_frame(c);
            return;
        }
        if (!c->selected) {
            status(c, cc, TSE_PN532_ST_BAD_CONTEXT);
        } else if (d[1] > 2 || d[2] > 2) { /* the PN532 stops at 424 kbit/s */
            status(c, cc, 0x10);
        } else {
            c->link.rate = (enum tse_air_rate)d[1];
            status(c, cc, TSE_PN532_ST_OK);
        }
        return;
    case TSE_PN532_IN_SELECT:
        status(c, cc, c->selected ? TSE_PN532_ST_OK : TSE_PN532_ST_BAD_CONTEXT);
        return;
    case TSE_PN532_IN_ATR:
    case TSE_PN532_IN_JUMP_FOR_DEP: /* no ISO 18092 target in the field */
        status(c, cc, TSE_PN532_ST_TIMEOUT);
        return;
    case TSE_PN532_TG_INIT_AS_TARGET:
        cmd_tg_init_as_target(c, d, n);
        return;
    case TSE_PN532_TG_GET_DATA:
        cmd_tg_get_data(c);
        return;
    case TSE_PN532_TG_SET_DATA:
        cmd_tg_set_data(c, d, n);
        return;
    case TSE_PN532_TG_GET_INITIATOR_COMMAND:
    case TSE_PN532_TG_RESPONSE_TO_INITIATOR:
        /* raw (non ISO 14443-4) target mode is not simulated */
        status(c, cc, TSE_PN532_ST_BAD_CONTEXT);
        return;
    default:
        error_frame(c);
        return;
    }
}

void tse_pn532_input(struct tse_pn532 *c, const uint8_t *b, size_t len)
{
    if (!c || (!b && len))
        return;
    while (len) {
        struct tse_pn532_frame f;
        size_t used = tse_pn532_parse(&c->parser, b, len, &f);
        b += used;
        len -= used;
        switch (f.type) {
        case TSE_PN532_FRAME_NONE:
        case TSE_PN532_FRAME_BAD: /* a real chip stays silent; the host times out */
            break;
        case TSE_PN532_FRAME_ACK: /* abort the running command, answer nothing */
            if (c->has_pending &&
                (c->pending == TSE_PN532_TG_INIT_AS_TARGET || c->pending == TSE_PN532_TG_GET_DATA))
                leave_target(c, true);
            c->has_pending = false;
            c->token++;
            if (c->ops->cancel)
                c->ops->cancel(c->user);
            break;
        case TSE_PN532_FRAME_NACK:
            if (c->last_len)
                c->ops->output(c->user, c->last, c->last_len, 0);
            break;
        case TSE_PN532_FRAME_INFO: {
            /* A new command supersedes whatever was running: its late answer would be
             * taken for the answer to this one. A target waiting for a reader stays one
             * only if the host asks for it again. */
            if (c->has_pending) {
                bool tg_wait = c->pending == TSE_PN532_TG_INIT_AS_TARGET;
                c->has_pending = false;
                c->token++;
                if (tg_wait)
                    leave_target(c, true);
            }
            if (c->ops->cancel)
                c->ops->cancel(c->user);
            if (c->ops->command)
                c->ops->command(c->user, f.len ? f.data[0] : 0, f.len);
            c->ops->output(c->user, tse_pn532_ack_frame, sizeof(tse_pn532_ack_frame), 0);
            if (f.tfi != TSE_PN532_TFI_HOST || f.len == 0) {
                error_frame(c);
                break;
            }
            uint8_t cmd[TSE_PN532_MAX_DATA];
            memcpy(cmd, f.data, f.len); /* the parser's buffer is reused by callbacks */
            command(c, cmd, f.len);
            break;
        }
        }
    }
}

void tse_pn532_field_event(struct tse_pn532 *c)
{
    if (!c || !c->has_pending)
        return;
    if (c->pending == TSE_PN532_IN_LIST_PASSIVE_TARGET || c->pending == TSE_PN532_IN_AUTO_POLL)
        (void)try_poll(c, c->pending);
}

bool tse_pn532_field_on(const struct tse_pn532 *c)
{
    return c && c->field;
}

enum tse_pn532_tg_state tse_pn532_tg_state(const struct tse_pn532 *c)
{
    return c ? c->tg : TSE_PN532_TG_NONE;
}

int tse_pn532_tg_activate(struct tse_pn532 *c, uint8_t rats_param, struct tse_pn532_card_info *as)
{
    if (!c || c->tg != TSE_PN532_TG_WAITING || !c->has_pending ||
        c->pending != TSE_PN532_TG_INIT_AS_TARGET || !c->tg_can_activate)
        return TSE_ERR_STATE;
    c->has_pending = false;
    c->tg = TSE_PN532_TG_ACTIVE;
    c->tg_queued = false;
    if (as)
        *as = c->tg_as;
    /* mode byte, then the initiator's command (the RATS): libnfc needs a byte after the
     * mode byte */
    uint8_t v[3] = {TG_ACTIVATED_PICC_106, 0xE0, rats_param};
    answer(c, TSE_PN532_TG_INIT_AS_TARGET, v, sizeof(v), 0);
    return 0;
}

int tse_pn532_tg_deliver(struct tse_pn532 *c, const uint8_t *apdu, size_t clen)
{
    if (!c || (!apdu && clen))
        return TSE_ERR_INVALID_ARG;
    if (clen > TSE_PN532_MAX_CAPDU)
        return TSE_ERR_INVALID_ARG;
    if (c->tg != TSE_PN532_TG_ACTIVE)
        return TSE_ERR_STATE;
    if (c->has_pending && c->pending == TSE_PN532_TG_GET_DATA) {
        c->has_pending = false;
        uint8_t out[1 + TSE_PN532_MAX_CAPDU];
        out[0] = TSE_PN532_ST_OK;
        if (clen)
            memcpy(out + 1, apdu, clen);
        answer(c, TSE_PN532_TG_GET_DATA, out, clen + 1, 0);
        return 0;
    }
    if (clen)
        memcpy(c->tg_queue, apdu, clen);
    c->tg_qlen = clen;
    c->tg_queued = true;
    return 0;
}

void tse_pn532_tg_release(struct tse_pn532 *c)
{
    if (!c || c->tg != TSE_PN532_TG_ACTIVE)
        return;
    c->tg_queued = false;
    if (c->has_pending && c->pending == TSE_PN532_TG_GET_DATA) {
        c->has_pending = false;
        c->tg = TSE_PN532_TG_NONE;
        status(c, TSE_PN532_TG_GET_DATA, TSE_PN532_ST_RELEASED);
        return;
    }
    c->tg = TSE_PN532_TG_RELEASED;
}

void tse_pn532_line_idle(struct tse_pn532 *c)
{
    if (c)
        tse_pn532_parser_init(&c->parser);
}
