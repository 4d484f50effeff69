/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vpcd card client. Latency matters more than anything here: Debian's vpcd 0.8 sends the
 * length and the payload of each message in two send() calls without TCP_NODELAY, so Nagle
 * on its side waits for our ACK of the first segment, which Linux delays by ~40 ms. Re-arming
 * TCP_QUICKACK around every recv() (it is not sticky) makes the ACK immediate; our own
 * replies go out as one write with TCP_NODELAY. ../shared/spec/pcsc-vpcd.md §4 has numbers.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/vpcd_internal.h"
#include "tse/sw.h"

#define VPCD_POWER_OFF 0x00
#define VPCD_POWER_ON  0x01
#define VPCD_RESET     0x02
#define VPCD_GET_ATR   0x04
#define VPCD_MAX_MSG   65535u

int tse_vpcd_atr(struct tse_card *card, enum tse_iface iface, uint8_t *atr, size_t cap, size_t *len)
{
    const struct tse_profile *p = tse_card_profile(card);
    if (iface == TSE_IF_CONTACT) {
        if (cap < p->atr_len)
            return TSE_ERR_BUFFER_TOO_SMALL;
        memcpy(atr, p->atr, p->atr_len);
        *len = p->atr_len;
        return 0;
    }
    /* PC/SC part 3: historical bytes of the ATS follow T0 and the TA1/TB1/TC1 it announces. */
    size_t hist = 1;
    if (p->ats_len > 1) {
        uint8_t t0 = p->ats[1];
        hist = 2 + !!(t0 & 0x10) + !!(t0 & 0x20) + !!(t0 & 0x40);
    }
    size_t k = p->ats_len > hist ? p->ats_len - hist : 0;
    if (k > 15)
        k = 15;
    if (cap < 5 + k)
        return TSE_ERR_BUFFER_TOO_SMALL;
    atr[0] = 0x3B;
    atr[1] = (uint8_t)(0x80 | k);
    atr[2] = 0x80;
    atr[3] = 0x01;
    memcpy(atr + 4, p->ats + hist, k);
    uint8_t tck = 0;
    for (size_t i = 1; i < 4 + k; i++)
        tck ^= atr[i];
    atr[4 + k] = tck;
    *len = 5 + k;
    return 0;
}

static void quickack(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

/* Exact read; 0 on success, 1 on orderly close, -1 on error or stop. */
static int read_exact(int fd, uint8_t *buf, size_t len, volatile sig_atomic_t *stop)
{
    while (len) {
        quickack(fd); /* not sticky: re-armed before every receive */
        ssize_t r = recv(fd, buf, len, 0);
        if (r == 0)
            return 1;
        if (r < 0) {
            if (errno == EINTR && !(stop && *stop))
                continue;
            return -1;
        }
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Length and data in one write; buf has room for 2 + VPCD_MAX_MSG bytes. */
static int send_msg(int fd, uint8_t *buf, const uint8_t *data, size_t len)
{
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    memcpy(buf + 2, data, len);
    size_t off = 0, total = len + 2;
    while (off < total) { /* one write; a loop only for a short write */
        ssize_t w = send(fd, buf + off, total - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

static int dial(const char *host, uint16_t port)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
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

/* Buffers of one connection (on the heap, not static: several cards may be served from
 * threads of one process). */
struct vpcd_bufs {
    uint8_t in[VPCD_MAX_MSG], out[TSE_RAPDU_MAX], tx[2 + VPCD_MAX_MSG];
};

static int session_loop(struct tse_card *card, int fd, const struct tse_vpcd_options *o, FILE *log,
                        struct vpcd_bufs *b)
{
    uint8_t *in = b->in, *out = b->out;
    const char *ifn = o->iface == TSE_IF_CONTACT ? "contact" : "contactless";
    for (;;) {
        if (o->stop && *o->stop)
            return 1;
        uint8_t hdr[2];
        int r = read_exact(fd, hdr, 2, o->stop);
        if (r == 0) {
            size_t len = (size_t)hdr[0] << 8 | hdr[1];
            r = read_exact(fd, in, len, o->stop);
            if (r != 0)
                goto ended;
            size_t olen = 0;
            if (len == 1) {
                switch (in[0]) {
                case VPCD_POWER_OFF:
                    tse_card_power_off(card, o->iface);
                    if (o->trace)
                        fprintf(log, "[%s] power off\n", ifn);
                    continue;
                case VPCD_POWER_ON:
                case VPCD_RESET: {
                    size_t n;
                    int rc = in[0] == VPCD_RESET && tse_card_is_powered(card, o->iface)
                                 ? tse_card_reset(card, o->iface, NULL, 0, &n)
                                 : tse_card_power_on(card, o->iface, NULL, 0, &n);
                    if (rc)
                        fprintf(log, "tse-card: power on failed: %s\n", tse_strerror(rc));
                    else if (o->trace)
                        fprintf(log, "[%s] %s\n", ifn, in[0] == VPCD_RESET ? "reset" : "power on");
                    continue;
                }
                case VPCD_GET_ATR:
                    if (tse_vpcd_atr(card, o->iface, out, sizeof(b->out), &olen) != 0)
                        return -1;
                    break;
                default:
                    fprintf(log, "tse-card: unknown vpcd control byte %02X ignored\n", in[0]);
                    continue;
                }
            } else {
                double t0 = now_ms();
                int rc = tse_card_transmit(card, o->iface, in, len, out, sizeof(b->out), &olen);
                if (rc == TSE_ERR_TORN) {
                    /* The card lost power mid-write: to the reader it is gone. Closing the
                     * socket is what vpcd understands as removal; we then reconnect. */
                    fprintf(log, "tse-card: power cut during a store write: card removed\n");
                    return 0;
                }
                if (rc == TSE_ERR_POWERED_OFF) {
                    /* pcscd powers the card before sending APDUs; answer anyway. */
                    out[0] = (uint8_t)(SW_CONDITIONS_NOT_SATISFIED >> 8);
                    out[1] = (uint8_t)SW_CONDITIONS_NOT_SATISFIED;
                    olen = 2;
                } else if (rc) {
                    fprintf(log, "tse-card: transmit: %s\n", tse_strerror(rc));
                    return -1;
                }
                if (olen > VPCD_MAX_MSG) {
                    /* a 65536-byte answer does not fit a vpcd message */
                    out[0] = (uint8_t)(SW_WRONG_LENGTH >> 8);
                    out[1] = (uint8_t)SW_WRONG_LENGTH;
                    olen = 2;
                }
                if (o->trace) {
                    fprintf(log, "[%s] %.3f ms\n", ifn, now_ms() - t0);
                    log_hex(log, "->", in, len);
                    log_hex(log, "<-", out, olen);
                }
            }
            if (send_msg(fd, b->tx, out, olen) != 0)
                return -1;
            continue;
        }
    ended:
        if (o->stop && *o->stop)
            return 1;
        return r == 1 ? 0 : -1;
    }
}

/* Serve one connection. 0: vpcd closed it; 1: stop requested; -1: socket error. */
int tse_vpcd_session(struct tse_card *card, int fd, const struct tse_vpcd_options *o, FILE *log)
{
    struct vpcd_bufs *b = malloc(sizeof(*b));
    if (!b)
        return -1;
    int r = session_loop(card, fd, o, log, b);
    free(b);
    return r;
}

int tse_vpcd_serve(struct tse_card *card, const struct tse_vpcd_options *opt)
{
    if (!card || !opt)
        return TSE_ERR_INVALID_ARG;
    struct tse_vpcd_options o = *opt;
    if (!o.host)
        o.host = "127.0.0.1";
    if (!o.port)
        o.port = TSE_VPCD_DEFAULT_PORT;
    FILE *log = o.log ? o.log : stderr;
    bool told = false;
    while (!(o.stop && *o.stop)) {
        int fd = dial(o.host, o.port);
        if (fd < 0) {
            if (!told || !o.retry)
                fprintf(log,
                        "tse-card: cannot connect to vpcd at %s:%u (%s): is pcscd running with "
                        "the vpcd driver (Debian package vsmartcard-vpcd)?%s\n",
                        o.host, o.port, strerror(errno), o.retry ? " Retrying every second." : "");
            told = true;
            if (!o.retry)
                return TSE_ERR_IO;
            sleep(1);
            continue;
        }
        fprintf(log, "tse-card: connected to vpcd at %s:%u (%s interface)\n", o.host, o.port,
                o.iface == TSE_IF_CONTACT ? "contact" : "contactless");
        fflush(log);
        told = false;
        int r = tse_vpcd_session(card, fd, &o, log);
        close(fd);
        tse_card_power_off(card, o.iface); /* a removed card has no power */
        if (r == 1)
            break;
        fprintf(log, "tse-card: vpcd %s%s\n",
                r == 0 ? "closed the connection (pcscd stopped?)" : "connection failed",
                o.retry ? ", reconnecting" : "");
        fflush(log);
        if (!o.retry)
            return r == 0 ? 0 : TSE_ERR_IO;
        sleep(1);
    }
    return 0;
}
