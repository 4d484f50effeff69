/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PN532 chips on pseudo-terminals (include/tse/pn532sim.h). One poll() loop owns the chips;
 * answers and deliveries that the air-time model delays sit in small per-pty queues with due
 * times. Pty rules from ../shared/spec/contactless.md §3: the slave is made raw before any
 * client opens it, and our own slave fd stays open so the master never sees a hang-up
 * between clients; a new host command drops whatever was still queued for that pty.
 */
/* posix_openpt, grantpt, unlockpt, ptsname */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tse/error.h"
#include "tse/pn532sim.h"

#define OUTQ_CAP     16
#define LOOP_TICK_MS 250
/* A host frame arrives in one write; a gap this long inside one means it was cut short. */
#define LINE_IDLE_MS 50

struct outitem {
    double due; /* ms on the sim clock */
    size_t len;
    uint8_t b[TSE_PN532_MAX_FRAME];
};

struct ep {
    struct tse_pn532sim *sim;
    int idx;
    int master, slave;
    char path[64];
    char *link;
    struct tse_pn532 *chip;
    struct outitem q[OUTQ_CAP];
    size_t qn;
    /* a C-APDU of this (initiator) chip waiting for its modelled command time */
    bool act;
    double act_due;
    unsigned act_token;
    uint8_t act_c[TSE_PN532_MAX_CAPDU];
    size_t act_clen;
    double last_in; /* sim clock of the last bytes from the host */
};

enum req_kind { REQ_NONE = 0, REQ_ACTIVATE, REQ_TRANSMIT, REQ_RELEASE };
enum req_state { RS_IDLE = 0, RS_PENDING, RS_DELIVERED, RS_DONE };

struct tse_pn532sim {
    struct tse_pn532sim_options o;
    FILE *msg;
    struct ep ep[2];
    int nep;
    int wake[2];
    volatile sig_atomic_t stop_req;
    bool dead; /* the loop has returned: reader calls fail at once */
    double t0;
    uint8_t *rbuf; /* card mode: R-APDU buffer (TSE_RAPDU_MAX) */
    /* card mode */
    bool card_halted;
    /* bridge */
    bool br_active;
    bool br_wait;
    unsigned br_token;
    double br_t_deliver;
    /* reader */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct {
        enum req_kind kind;
        enum req_state state;
        int rc;
        uint8_t c[TSE_PN532_MAX_CAPDU];
        size_t clen;
        uint8_t r[TSE_PN532_MAX_RAPDU + 1];
        size_t rlen;
        struct tse_pn532_card_info as;
    } req;
    double rd_t_deliver;
    struct tse_air_link rd_link; /* reader mode: the link to the activated emulator */
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(const struct tse_pn532sim *s)
{
    return mono_ms() - s->t0;
}

static void hexstr(const uint8_t *b, size_t n, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 <= cap; i++) {
        out[o++] = hx[b[i] >> 4];
        out[o++] = hx[b[i] & 15];
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* ---- output queue ---------------------------------------------------------------------- */

static void write_all(struct ep *e, const uint8_t *b, size_t len)
{
    while (len) {
        ssize_t w = write(e->master, b, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN: nobody reads the slave and its buffer is full. The bytes are stale for
             * any future client anyway (libnfc flushes its input before every command). */
            return;
        }
        b += w;
        len -= (size_t)w;
    }
}

static void flush_due(struct ep *e, double now)
{
    size_t k = 0;
    while (k < e->qn && e->q[k].due <= now) {
        write_all(e, e->q[k].b, e->q[k].len);
        k++;
    }
    if (k) {
        memmove(e->q, e->q + k, (e->qn - k) * sizeof(e->q[0]));
        e->qn -= k;
    }
}

static void op_output(void *user, const uint8_t *b, size_t len, double delay_us)
{
    struct ep *e = user;
    double now = now_ms(e->sim);
    double due = now + delay_us / 1000.0;
    if (e->qn && e->q[e->qn - 1].due > due)
        due = e->q[e->qn - 1].due; /* never overtake earlier bytes */
    if (e->qn == 0 && due <= now) {
        write_all(e, b, len);
        return;
    }
    if (e->qn == OUTQ_CAP || len > sizeof(e->q[0].b)) {
        flush_due(e, 1e300); /* cannot happen with one command in flight; stay correct */
        write_all(e, b, len);
        return;
    }
    struct outitem *it = &e->q[e->qn++];
    it->due = due;
    it->len = len;
    memcpy(it->b, b, len);
}

static void op_cancel(void *user)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    e->qn = 0;
    e->act = false;
    if (s->o.mode == TSE_SIM_BRIDGE && e->idx == 0)
        s->br_wait = false; /* a late answer from the emulator is dropped */
}

static void op_command(void *user, uint8_t cc, size_t len)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.mode == TSE_SIM_READER) {
        pthread_mutex_lock(&s->mu);
        /* the emulator has read the release once it sends a command outside target mode */
        if (s->req.kind == REQ_RELEASE && s->req.state == RS_DELIVERED &&
            tse_pn532_tg_state(e->chip) == TSE_PN532_TG_NONE) {
            s->req.rc = 0;
            s->req.state = RS_DONE;
            pthread_cond_broadcast(&s->cv);
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (!s->o.log)
        return;
    const char *name = tse_pn532_cmd_name(cc);
    fprintf(s->o.log, "{\"t_ms\":%.3f,\"pty\":%d,\"cmd\":\"%s\",\"cc\":\"%02X\",\"len\":%zu}\n",
            now_ms(s), e->idx, name ? name : "unknown", cc, len);
    fflush(s->o.log);
}

/* ---- card mode -------------------------------------------------------------------------- */

static void card_field(struct tse_pn532sim *s, bool on)
{
    if (!on) {
        tse_card_power_off(s->o.card, TSE_IF_CONTACTLESS);
        s->card_halted = false;
    }
}

static int card_poll(struct tse_pn532sim *s, struct tse_pn532_card_info *k)
{
    if (s->card_halted)
        return 0;
    /* A new activation is a new contactless session: the field reset or REQA after HALT
     * gives the card a fresh start, with its persistent state. */
    size_t n = 0;
    uint8_t ats[64];
    if (tse_card_power_on(s->o.card, TSE_IF_CONTACTLESS, ats, sizeof(ats), &n) != 0)
        return 0;
    struct tse_cl_params p;
    if (tse_card_cl_params(s->o.card, &p) != 0)
        return 0;
    memcpy(k->atqa, p.atqa, 2);
    k->sak = p.sak;
    memcpy(k->uid, p.uid, p.uid_len);
    k->uid_len = p.uid_len;
    k->ats_len = p.ats_len <= sizeof(k->ats) ? p.ats_len : 0;
    memcpy(k->ats, p.ats, k->ats_len);
    return 1;
}

static void card_exchange_now(struct ep *e, const uint8_t *c, size_t clen, unsigned token)
{
    struct tse_pn532sim *s = e->sim;
    size_t rlen = 0;
    double t = mono_ms();
    int rc =
        tse_card_transmit(s->o.card, TSE_IF_CONTACTLESS, c, clen, s->rbuf, TSE_RAPDU_MAX, &rlen);
    double card_us = (mono_ms() - t) * 1000.0;
    if (rc) {
        fprintf(s->msg, "tse-pn532sim: card: %s%s\n", tse_strerror(rc),
                rc == TSE_ERR_TORN ? " (power cut: the card is mute until the field is reset)"
                                   : "");
        tse_pn532_in_complete(e->chip, token, TSE_PN532_ST_TIMEOUT, NULL, 0, card_us);
        return;
    }
    if (rlen > TSE_PN532_MAX_RAPDU)
        fprintf(s->msg,
                "tse-pn532sim: the card answered %zu bytes; libnfc takes at most %d: the reader "
                "gets status 07 (use short APDUs)\n",
                rlen, TSE_PN532_MAX_RAPDU);
    tse_pn532_in_complete(e->chip, token, TSE_PN532_ST_OK, s->rbuf, rlen, card_us);
}

/* ---- bridge ------------------------------------------------------------------------------ */

static void bridge_deliver_now(struct ep *a, const uint8_t *c, size_t clen, unsigned token)
{
    struct tse_pn532sim *s = a->sim;
    if (!s->br_active || tse_pn532_tg_deliver(s->ep[1].chip, c, clen) != 0) {
        tse_pn532_in_complete(a->chip, token, TSE_PN532_ST_TIMEOUT, NULL, 0, 0);
        return;
    }
    s->br_wait = true;
    s->br_token = token;
    s->br_t_deliver = mono_ms();
}

static void bridge_release(struct tse_pn532sim *s)
{
    if (s->br_active)
        tse_pn532_tg_release(s->ep[1].chip);
    s->br_active = false;
    if (s->br_wait) {
        s->br_wait = false;
        tse_pn532_in_complete(s->ep[0].chip, s->br_token, TSE_PN532_ST_TIMEOUT, NULL, 0, 0);
    }
}

/* ---- chip callbacks ------------------------------------------------------------------------ */

static void op_field(void *user, bool on)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.log) {
        fprintf(s->o.log, "{\"t_ms\":%.3f,\"pty\":%d,\"field\":%s}\n", now_ms(s), e->idx,
                on ? "true" : "false");
        fflush(s->o.log);
    }
    if (s->o.mode == TSE_SIM_CARD)
        card_field(s, on);
    else if (s->o.mode == TSE_SIM_BRIDGE && e->idx == 0 && !on)
        bridge_release(s);
}

static void log_activation(struct tse_pn532sim *s, int idx, const struct tse_pn532_card_info *k)
{
    char uid[21], ats[2 * TSE_PN532_MAX_ATS + 1];
    hexstr(k->uid, k->uid_len, uid, sizeof(uid));
    hexstr(k->ats, k->ats_len, ats, sizeof(ats));
    struct tse_air_link l;
    tse_air_link_default(&l);
    if (k->ats_len)
        (void)tse_air_link_from_ats(&l, k->ats, k->ats_len);
    double t = tse_air_activation_us(k->uid_len, k->ats_len, l.sfgi);
    if (s->o.log) {
        fprintf(s->o.log,
                "{\"t_ms\":%.3f,\"pty\":%d,\"activate\":{\"uid\":\"%s\",\"atqa\":\"%02X%02X\","
                "\"sak\":\"%02X\",\"ats\":\"%s\"},\"model_air_ms\":%.3f}\n",
                now_ms(s), idx, uid, k->atqa[0], k->atqa[1], k->sak, ats, t / 1000.0);
        fflush(s->o.log);
    }
    if (s->o.trace)
        fprintf(s->msg, "[pty%d] activate UID %s ATS %s  air %.2f ms\n", idx, uid, ats, t / 1000.0);
}

static int op_poll(void *user, struct tse_pn532_card_info *k)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    int r = 0;
    if (s->o.mode == TSE_SIM_CARD) {
        r = card_poll(s, k);
    } else if (s->o.mode == TSE_SIM_BRIDGE && e->idx == 0) {
        if (tse_pn532_tg_state(s->ep[1].chip) == TSE_PN532_TG_WAITING &&
            tse_pn532_tg_activate(s->ep[1].chip, 0x80, k) == 0) {
            s->br_active = true;
            s->br_wait = false;
            r = 1;
        }
    }
    if (r == 1)
        log_activation(s, e->idx, k);
    return r;
}

static void op_deselect(void *user)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.mode == TSE_SIM_CARD)
        s->card_halted = true;
    else if (s->o.mode == TSE_SIM_BRIDGE && e->idx == 0)
        bridge_release(s);
}

static int op_exchange(void *user, const uint8_t *c, size_t clen, double delay_us, unsigned token)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.mode == TSE_SIM_BRIDGE && !s->br_active)
        return -1;
    if (s->o.mode == TSE_SIM_CARD && !tse_card_is_powered(s->o.card, TSE_IF_CONTACTLESS))
        return -1; /* a power cut left the card mute */
    if (delay_us > 0) {
        e->act = true;
        e->act_due = now_ms(s) + delay_us / 1000.0;
        e->act_token = token;
        memcpy(e->act_c, c, clen);
        e->act_clen = clen;
        return 0;
    }
    if (s->o.mode == TSE_SIM_CARD)
        card_exchange_now(e, c, clen, token);
    else
        bridge_deliver_now(e, c, clen, token);
    return 0;
}

static void op_apdu(void *user, const struct tse_pn532_apdu_info *in)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    char ch[2 * TSE_PN532_MAX_CAPDU + 1], rh[2 * TSE_PN532_MAX_RAPDU + 1];
    hexstr(in->c, in->clen, ch, sizeof(ch));
    hexstr(in->r, in->rlen, rh, sizeof(rh));
    double hsu = tse_air_hsu_exchange_us(in->clen, in->rlen, 0);
    unsigned kbps = tse_air_rate_kbps(in->link.rate);
    if (s->o.log) {
        fprintf(s->o.log,
                "{\"t_ms\":%.3f,\"pty\":%d,\"apdu\":\"%s\",\"resp\":\"%s\",\"status\":%u,"
                "\"kbps\":%u,\"fsc\":%zu,\"fsd\":%zu,\"cmd_blocks\":%u,\"rsp_blocks\":%u,"
                "\"model_air_ms\":%.3f,\"card_ms\":%.3f,\"model_total_ms\":%.3f,"
                "\"model_hsu_ms\":%.3f}\n",
                now_ms(s), e->idx, ch, rh, in->status, kbps, in->link.fsc, in->link.fsd,
                in->air.cmd_blocks, in->air.rsp_blocks, in->air.air_us / 1000.0,
                in->card_us / 1000.0, in->air.total_us / 1000.0, hsu / 1000.0);
        fflush(s->o.log);
    }
    if (s->o.trace)
        fprintf(s->msg, "[pty%d] %s -> %s%s  air %.2f ms card %.2f ms total %.2f ms @%u\n", e->idx,
                ch, in->status ? "status " : "", in->status ? "" : rh, in->air.air_us / 1000.0,
                in->card_us / 1000.0, in->air.total_us / 1000.0, kbps);
}

static void reader_signal(struct tse_pn532sim *s)
{
    pthread_cond_broadcast(&s->cv);
}

static void op_tg_init(void *user, const struct tse_pn532_card_info *as)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    (void)as;
    if (s->o.log) {
        fprintf(s->o.log, "{\"t_ms\":%.3f,\"pty\":%d,\"target\":\"waiting\"}\n", now_ms(s), e->idx);
        fflush(s->o.log);
    }
    if (s->o.mode == TSE_SIM_BRIDGE && tse_pn532_field_on(s->ep[0].chip))
        tse_pn532_field_event(s->ep[0].chip);
    /* reader mode: a pending activation is retried by the loop */
}

static void op_tg_response(void *user, const uint8_t *r, size_t rlen)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.mode == TSE_SIM_BRIDGE) {
        if (!s->br_wait)
            return; /* nobody waits for it any more */
        s->br_wait = false;
        double card_us = (mono_ms() - s->br_t_deliver) * 1000.0;
        tse_pn532_in_complete(s->ep[0].chip, s->br_token, TSE_PN532_ST_OK, r, rlen, card_us);
        return;
    }
    if (s->o.mode != TSE_SIM_READER)
        return;
    double card_ms = mono_ms() - s->rd_t_deliver;
    char ch[2 * TSE_PN532_MAX_CAPDU + 1] = "";
    pthread_mutex_lock(&s->mu);
    if (s->req.kind == REQ_TRANSMIT && s->req.state == RS_DELIVERED) {
        hexstr(s->req.c, s->req.clen, ch, sizeof(ch));
        if (rlen > sizeof(s->req.r))
            rlen = sizeof(s->req.r);
        memcpy(s->req.r, r, rlen);
        s->req.rlen = rlen;
        s->req.rc = 0;
        s->req.state = RS_DONE;
        reader_signal(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->o.trace || s->o.log) {
        char rh[2 * TSE_PN532_MAX_RAPDU + 1];
        hexstr(r, rlen, rh, sizeof(rh));
        struct tse_air_exchange x;
        tse_air_exchange(&s->rd_link, strlen(ch) / 2, rlen, card_ms * 1000.0, &x);
        if (s->o.trace)
            fprintf(s->msg, "[pty%d] %s -> %s  air %.2f ms card %.2f ms total %.2f ms\n", e->idx,
                    ch, rh, x.air_us / 1000.0, card_ms, x.total_us / 1000.0);
        if (s->o.log) {
            fprintf(s->o.log,
                    "{\"t_ms\":%.3f,\"pty\":%d,\"apdu\":\"%s\",\"resp\":\"%s\",\"fsc\":%zu,"
                    "\"fsd\":%zu,\"cmd_blocks\":%u,\"rsp_blocks\":%u,\"model_air_ms\":%.3f,"
                    "\"card_ms\":%.3f,\"model_total_ms\":%.3f}\n",
                    now_ms(s), e->idx, ch, rh, s->rd_link.fsc, s->rd_link.fsd, x.cmd_blocks,
                    x.rsp_blocks, x.air_us / 1000.0, card_ms, x.total_us / 1000.0);
            fflush(s->o.log);
        }
    }
}

static void op_tg_gone(void *user)
{
    struct ep *e = user;
    struct tse_pn532sim *s = e->sim;
    if (s->o.log) {
        fprintf(s->o.log, "{\"t_ms\":%.3f,\"pty\":%d,\"target\":\"gone\"}\n", now_ms(s), e->idx);
        fflush(s->o.log);
    }
    if (s->o.mode == TSE_SIM_BRIDGE) {
        s->br_active = false;
        if (s->br_wait) {
            s->br_wait = false;
            tse_pn532_in_complete(s->ep[0].chip, s->br_token, TSE_PN532_ST_TIMEOUT, NULL, 0, 0);
        }
    } else if (s->o.mode == TSE_SIM_READER) {
        pthread_mutex_lock(&s->mu);
        if (s->req.kind == REQ_TRANSMIT &&
            (s->req.state == RS_PENDING || s->req.state == RS_DELIVERED)) {
            s->req.rc = TSE_ERR_STATE;
            s->req.state = RS_DONE;
            reader_signal(s);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static const struct tse_pn532_ops sim_ops = {
    .output = op_output,
    .cancel = op_cancel,
    .command = op_command,
    .field = op_field,
    .poll = op_poll,
    .deselect = op_deselect,
    .exchange = op_exchange,
    .apdu = op_apdu,
    .tg_init = op_tg_init,
    .tg_response = op_tg_response,
    .tg_gone = op_tg_gone,
};

/* ---- reader mode: requests from the script thread, served by the loop ------------------- */

static void reader_process(struct tse_pn532sim *s)
{
    if (s->o.mode != TSE_SIM_READER)
        return;
    struct tse_pn532 *chip = s->ep[0].chip;
    pthread_mutex_lock(&s->mu);
    if (s->req.state != RS_PENDING) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    enum req_kind kind = s->req.kind;
    uint8_t c[TSE_PN532_MAX_CAPDU];
    size_t clen = s->req.clen;
    memcpy(c, s->req.c, clen);
    pthread_mutex_unlock(&s->mu);

    /* The chip is driven without the lock: its callbacks take it. */
    int rc = 1; /* 1: still pending */
    struct tse_pn532_card_info as;
    memset(&as, 0, sizeof(as));
    switch (kind) {
    case REQ_ACTIVATE:
        if (tse_pn532_tg_state(chip) == TSE_PN532_TG_WAITING &&
            tse_pn532_tg_activate(chip, 0x80, &as) == 0) {
            log_activation(s, 0, &as);
            tse_air_link_default(&s->rd_link);
            s->rd_link.fsd = 256;
            (void)tse_air_link_from_ats(&s->rd_link, as.ats, as.ats_len);
            rc = 0;
        }
        break;
    case REQ_TRANSMIT:
        pthread_mutex_lock(&s->mu);
        if (s->req.state == RS_PENDING)
            s->req.state = RS_DELIVERED;
        pthread_mutex_unlock(&s->mu);
        s->rd_t_deliver = mono_ms();
        if (tse_pn532_tg_deliver(chip, c, clen) != 0)
            rc = TSE_ERR_STATE;
        else
            return; /* completed by op_tg_response / op_tg_gone */
        break;
    case REQ_RELEASE: {
        bool was_active = tse_pn532_tg_state(chip) == TSE_PN532_TG_ACTIVE;
        tse_pn532_tg_release(chip);
        if (was_active) {
            /* done when the emulator reacts (its next command): it has then read the
             * release, and the simulator may exit without cutting it off */
            pthread_mutex_lock(&s->mu);
            if (s->req.state == RS_PENDING)
                s->req.state = RS_DELIVERED;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        rc = 0;
        break;
    }
    case REQ_NONE:
        rc = 0;
        break;
    }
    if (rc == 1)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->req.state == RS_PENDING || s->req.state == RS_DELIVERED) {
        s->req.rc = rc;
        s->req.as = as;
        s->req.state = RS_DONE;
        reader_signal(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void wake_loop(struct tse_pn532sim *s)
{
    uint8_t one = 1;
    ssize_t w = write(s->wake[1], &one, 1);
    (void)w; /* a full pipe already wakes the loop */
}

/* Post a request and wait for it; the lock is held on entry and on return. */
static int reader_call(struct tse_pn532sim *s, int timeout_ms)
{
    if (s->dead)
        return 1;
    s->req.state = RS_PENDING;
    s->req.rc = 0;
    wake_loop(s);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (s->req.state != RS_DONE) {
        if (s->dead) {
            s->req.state = RS_IDLE;
            return 1;
        }
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) {
            if (s->req.state == RS_DONE)
                break;
            s->req.state = RS_IDLE;
            return 1;
        }
    }
    s->req.state = RS_IDLE;
    return 0;
}

int tse_pn532sim_reader_activate(struct tse_pn532sim *s, struct tse_pn532_card_info *as,
                                 int timeout_ms)
{
    if (!s || s->o.mode != TSE_SIM_READER)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    s->req.kind = REQ_ACTIVATE;
    int t = reader_call(s, timeout_ms);
    int rc = t ? TSE_ERR_STATE : s->req.rc;
    if (!rc && as)
        *as = s->req.as;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int tse_pn532sim_reader_transmit(struct tse_pn532sim *s, const uint8_t *c, size_t clen, uint8_t *r,
                                 size_t rcap, size_t *rlen, int timeout_ms)
{
    if (!s || s->o.mode != TSE_SIM_READER || !c || !r || !rlen || clen > TSE_PN532_MAX_CAPDU)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    s->req.kind = REQ_TRANSMIT;
    memcpy(s->req.c, c, clen);
    s->req.clen = clen;
    int t = reader_call(s, timeout_ms);
    int rc = t ? TSE_ERR_IO : s->req.rc;
    if (!rc) {
        if (s->req.rlen > rcap) {
            rc = TSE_ERR_BUFFER_TOO_SMALL;
        } else {
            memcpy(r, s->req.r, s->req.rlen);
            *rlen = s->req.rlen;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int tse_pn532sim_reader_release(struct tse_pn532sim *s)
{
    if (!s || s->o.mode != TSE_SIM_READER)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    s->req.kind = REQ_RELEASE;
    (void)reader_call(s, 2000);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- set-up and loop ------------------------------------------------------------------------ */

static int open_pty(struct ep *e, char *err, size_t errlen)
{
    e->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (e->master < 0 || grantpt(e->master) || unlockpt(e->master)) {
        snprintf(err, errlen, "cannot open a pseudo-terminal: %s", strerror(errno));
        return TSE_ERR_IO;
    }
    const char *name = ptsname(e->master);
    if (!name || strlen(name) >= sizeof(e->path)) {
        snprintf(err, errlen, "ptsname failed");
        return TSE_ERR_IO;
    }
    strcpy(e->path, name);
    e->slave = open(e->path, O_RDWR | O_NOCTTY);
    if (e->slave < 0) {
        snprintf(err, errlen, "%s: %s", e->path, strerror(errno));
        return TSE_ERR_IO;
    }
    /* raw before any client: libnfc restores the termios it found when it closes */
    struct termios t;
    if (tcgetattr(e->slave, &t) == 0) {
        cfmakeraw(&t);
        cfsetispeed(&t, B115200);
        cfsetospeed(&t, B115200);
        tcsetattr(e->slave, TCSANOW, &t);
    }
    int fl = fcntl(e->master, F_GETFL);
    fcntl(e->master, F_SETFL, fl | O_NONBLOCK);
    fcntl(e->master, F_SETFD, FD_CLOEXEC);
    fcntl(e->slave, F_SETFD, FD_CLOEXEC);
    return 0;
}

static int make_link(struct ep *e, const char *link, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(link, &st) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a symlink", link);
            return TSE_ERR_IO;
        }
        unlink(link);
    }
    if (symlink(e->path, link) != 0) {
        snprintf(err, errlen, "symlink %s -> %s: %s", link, e->path, strerror(errno));
        return TSE_ERR_IO;
    }
    e->link = strdup(link);
    return e->link ? 0 : TSE_ERR_NO_MEMORY;
}

int tse_pn532sim_new(struct tse_pn532sim **out, const struct tse_pn532sim_options *opt, char *err,
                     size_t errlen)
{
    if (!out || !opt || (opt->mode == TSE_SIM_CARD && !opt->card) || opt->pace < 0 ||
        opt->mode > TSE_SIM_BRIDGE) {
        snprintf(err, errlen, "invalid simulator options");
        return TSE_ERR_INVALID_ARG;
    }
    struct tse_pn532sim *s = calloc(1, sizeof(*s));
    if (!s)
        return TSE_ERR_NO_MEMORY;
    s->o = *opt;
    s->msg = opt->msg ? opt->msg : stderr;
    s->t0 = mono_ms();
    s->wake[0] = s->wake[1] = -1;
    s->nep = opt->mode == TSE_SIM_BRIDGE ? 2 : 1;
    for (int i = 0; i < 2; i++)
        s->ep[i].master = s->ep[i].slave = -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    int rc = 0;
    if (pipe(s->wake) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        rc = TSE_ERR_IO;
        goto fail;
    }
    fcntl(s->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(s->wake[1], F_SETFL, O_NONBLOCK);
    if (opt->mode == TSE_SIM_CARD && !(s->rbuf = malloc(TSE_RAPDU_MAX))) {
        rc = TSE_ERR_NO_MEMORY;
        goto fail;
    }
    for (int i = 0; i < s->nep; i++) {
        struct ep *e = &s->ep[i];
        e->sim = s;
        e->idx = i;
        if ((rc = open_pty(e, err, errlen)) != 0)
            goto fail;
        if ((rc = tse_pn532_new(&e->chip, &sim_ops, e, opt->pace)) != 0)
            goto fail;
    }
    /* links last: their existence tells a test harness that the ptys are ready */
    for (int i = 0; i < s->nep; i++)
        if (opt->link[i] && (rc = make_link(&s->ep[i], opt->link[i], err, errlen)) != 0)
            goto fail;
    *out = s;
    return 0;
fail:
    tse_pn532sim_free(s);
    return rc;
}

const char *tse_pn532sim_pty(const struct tse_pn532sim *s, int i)
{
    return s && i >= 0 && i < s->nep ? s->ep[i].path : NULL;
}

void tse_pn532sim_stop(struct tse_pn532sim *s)
{
    if (!s)
        return;
    s->stop_req = 1;
    wake_loop(s);
}

static void run_actions(struct tse_pn532sim *s, double now)
{
    for (int i = 0; i < s->nep; i++) {
        struct ep *e = &s->ep[i];
        if (e->act && e->act_due <= now) {
            e->act = false;
            if (s->o.mode == TSE_SIM_CARD)
                card_exchange_now(e, e->act_c, e->act_clen, e->act_token);
            else if (s->o.mode == TSE_SIM_BRIDGE)
                bridge_deliver_now(e, e->act_c, e->act_clen, e->act_token);
        }
    }
}

static bool stopping(const struct tse_pn532sim *s)
{
    return s->stop_req || (s->o.stop && *s->o.stop);
}

int tse_pn532sim_run(struct tse_pn532sim *s)
{
    if (!s)
        return TSE_ERR_INVALID_ARG;
    uint8_t buf[4096];
    int rc = 0;
    while (!stopping(s)) {
        double now = now_ms(s);
        run_actions(s, now);
        reader_process(s);
        now = now_ms(s);
        double next = now + LOOP_TICK_MS;
        for (int i = 0; i < s->nep; i++) {
            struct ep *e = &s->ep[i];
            flush_due(e, now);
            if (e->qn && e->q[0].due < next)
                next = e->q[0].due;
            if (e->act && e->act_due < next)
                next = e->act_due;
        }
        int timeout = (int)(next - now + 0.999);
        if (timeout < 0)
            timeout = 0;
        struct pollfd pfd[3];
        int n = 0;
        for (int i = 0; i < s->nep; i++)
            pfd[n++] = (struct pollfd){.fd = s->ep[i].master, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        int r = poll(pfd, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(s->msg, "tse-pn532sim: poll: %s\n", strerror(errno));
            rc = TSE_ERR_IO;
            break;
        }
        for (int i = 0; i < s->nep; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(s->ep[i].master, buf, sizeof(buf));
            if (got > 0) {
                double t = now_ms(s);
                if (t - s->ep[i].last_in > LINE_IDLE_MS)
                    tse_pn532_line_idle(s->ep[i].chip);
                s->ep[i].last_in = t;
                tse_pn532_input(s->ep[i].chip, buf, (size_t)got);
            } else if (got < 0 && errno != EAGAIN && errno != EINTR)
                usleep(10000); /* EIO without a slave: cannot happen, we hold one */
        }
        if (pfd[s->nep].revents & POLLIN)
            while (read(s->wake[0], buf, sizeof(buf)) > 0)
                ;
    }
    pthread_mutex_lock(&s->mu);
    s->dead = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void tse_pn532sim_free(struct tse_pn532sim *s)
{
    if (!s)
        return;
    for (int i = 0; i < 2; i++) {
        struct ep *e = &s->ep[i];
        if (e->link) {
            unlink(e->link);
            free(e->link);
        }
        tse_pn532_free(e->chip);
        if (e->master >= 0)
            close(e->master);
        if (e->slave >= 0)
            close(e->slave);
    }
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->rbuf);
    free(s);
}
