/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tse-bench: speed, memory and scale of the in-process card (docs/performance.md gives the
 * method and the figures of a real run). Every figure is measured `runs` times; the table
 * shows the median with the minimum and maximum, and --json writes the same numbers.
 *
 *   tse-bench [--runs N] [--json FILE] [--dir DIR] [--mem-cards N] [--max-cards N]
 *             [--only CASE[,CASE…]] [--quick]
 *
 * Cases: apdu (SELECT, GET BALANCE, echo sizes), exit (compound exit gate transactions,
 * process-crash safe and fsync'd), scp (SCP03 opens and wrapped APDUs at level 33), open
 * (image create and open), mem (RSS per card over --mem-cards cards), max (cards hosted in
 * one process limited to 4 GiB of address space, and the cost of a tap as N grows).
 */
#include <dirent.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

/* AddressSanitizer reserves terabytes of address space: no RLIMIT_AS under it */
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1
#endif
#endif
#ifndef BENCH_ASAN
#define BENCH_ASAN 0
#endif

#include "tse/airtime.h"
#include "tse/card.h"
#include "tse/farm.h"
#include "tse/scp.h"
#include "tse/wallet.h"

/* The benchmark card: the default card manager (SCP03 key set 40..4F, i = 70), the
 * contactless registry, one transit purse personalised as a test card (docs/wallet.md) and
 * the diagnostic applet (for echo sizes). */
static const char BENCH_PROFILE[] = "[card]\n"
                                    "name = tse bench card\n"
                                    "\n"
                                    "[contactless]\n"
                                    "uid = 08747365\n"
                                    "\n"
                                    "[keyset]\n"
                                    "kvn = 0x30\n"
                                    "scp = 03\n"
                                    "i = 70\n"
                                    "type = aes\n"
                                    "key = 404142434445464748494A4B4C4D4E4F\n"
                                    "\n"
                                    "[instance purse]\n"
                                    "package = A0000006320101\n"
                                    "module = A000000632010105\n"
                                    "aid = A00000063201010510009156000014A1\n"
                                    "params = 8E08 01011000FFFFFFFF 8F0A 03105170010170907984\n"
                                    "default = contactless\n"
                                    "\n"
                                    "[instance diag]\n"
                                    "package = F0747365444941\n"
                                    "module = F074736544494101\n"
                                    "aid = F074736544494101\n";

static const uint8_t PURSE_AID[8] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05};
static const uint8_t SELECT_PURSE[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00,
                                       0x00, 0x06, 0x32, 0x01, 0x01, 0x05};
static const uint8_t SELECT_DIAG[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                                      0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
static const uint8_t GET_BALANCE[] = {0x80, 0x5C, 0x00, 0x02, 0x04};

#define GIB             (1024.0 * 1024.0 * 1024.0)
#define MAX_RESULTS     64
#define FARE            1u      /* fen per exit: a loaded purse pays 99,999 exits */
#define LOAD            100000u /* 1000.00, the test card's maximum balance */
#define TARGET_EXIT     20000.0
#define TARGET_KIB      32.0
#define TARGET_CARDS    100000.0
#define TARGET_SCP_OPEN 10000.0

struct result {
    char name[40];
    char label[72];
    char unit[16];
    struct bench_stat st;
    long per_run; /* operations (or cards) per run */
    char note[400];
    bool available;
};

static struct result results[MAX_RESULTS];
static int n_results;

static struct {
    int runs;
    bool quick;
    const char *json;
    char dir[512];
    long mem_cards, max_cards;
    const char *only;
    char farm_dir[600]; /* images of the memory and scale cases (many small files) */
} opt = {5, false, NULL, "", 10000, 100000, NULL, ""};

static void die(const char *what, const char *why)
{
    fprintf(stderr, "tse-bench: %s: %s\n", what, why);
    exit(1);
}

static bool wanted(const char *c)
{
    if (!opt.only)
        return true;
    size_t n = strlen(c);
    for (const char *p = opt.only; (p = strstr(p, c)) != NULL; p += n)
        if ((p == opt.only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static struct result *add(const char *name, const char *label, const char *unit, const double *v,
                          int n, long per_run, const char *note)
{
    if (n_results == MAX_RESULTS)
        die("results", "too many");
    struct result *r = &results[n_results++];
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->label, sizeof(r->label), "%s", label);
    snprintf(r->unit, sizeof(r->unit), "%s", unit);
    r->st = bench_stat_of(v, n);
    r->per_run = per_run;
    snprintf(r->note, sizeof(r->note), "%s", note ? note : "");
    r->available = n > 0;
    return r;
}

static const struct result *find(const char *name)
{
    for (int i = 0; i < n_results; i++)
        if (!strcmp(results[i].name, name))
            return &results[i];
    return NULL;
}

/* ---- cards and terminals ------------------------------------------------------------------ */

static void img_path(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "%s/%s.img", opt.dir, tag);
    unlink(out);
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    unlink(tmp);
}

static struct tse_card *bench_card(const char *path, int fsync_on)
{
    struct tse_card *c;
    char err[256] = "";
    struct tse_card_options o = {.fsync = fsync_on};
    unlink(path);
    if (tse_card_create(&c, path, BENCH_PROFILE, strlen(BENCH_PROFILE), "bench", &o, err,
                        sizeof(err)) != 0)
        die("create", err);
    return c;
}

/* One exchange; returns the status word (0 on a transport error). */
static unsigned xmit(struct tse_card *c, enum tse_iface f, const uint8_t *cmd, size_t len,
                     uint8_t *r, size_t cap, size_t *rl)
{
    if (tse_card_transmit(c, f, cmd, len, r, cap, rl) != 0 || *rl < 2)
        return 0;
    return (unsigned)r[*rl - 2] << 8 | r[*rl - 1];
}

static void power(struct tse_card *c, enum tse_iface f)
{
    uint8_t b[64];
    size_t n;
    if (tse_card_power_on(c, f, b, sizeof(b), &n) != 0)
        die("power on", "failed");
}

struct gate {
    struct tse_card *card;
    struct tse_psam psam;
    struct tse_wallet_term t;
    struct tse_wallet_gate g;
    bool timed;     /* add the time spent inside the card to card_us */
    double card_us; /* tse_card_transmit() calls only */
    /* with rec: each exchange's lengths and time inside the card */
    struct xchg {
        size_t clen, rlen;
        double card_us;
    } * rec;
    size_t n_rec, cap_rec;
};

static int gate_xmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                     size_t *rlen)
{
    struct gate *g = user;
    if (!g->timed)
        return tse_card_transmit(g->card, TSE_IF_CONTACTLESS, c, clen, r, rcap, rlen);
    double t0 = bench_now_us();
    int rc = tse_card_transmit(g->card, TSE_IF_CONTACTLESS, c, clen, r, rcap, rlen);
    double us = bench_now_us() - t0;
    g->card_us += us;
    if (g->rec && g->n_rec < g->cap_rec && rc == 0)
        g->rec[g->n_rec++] = (struct xchg){clen, *rlen, us};
    return rc;
}

static void gate_init(struct gate *g, struct tse_card *c)
{
    memset(g, 0, sizeof(*g));
    g->card = c;
    tse_psam_init(&g->psam);
    if (tse_psam_load_test_keys(&g->psam) != 0)
        die("psam", "test keys");
    tse_wallet_term_init(&g->t, &g->psam, gate_xmit, g);
    static const uint8_t d[4] = {0x20, 0x24, 0x05, 0x01}, tm[3] = {0x08, 0x30, 0x00};
    tse_wallet_term_set_time(&g->t, d, tm);
    static const uint8_t pin[3] = {0x12, 0x34, 0x56};
    memcpy(g->t.pin, pin, 3);
    g->t.pin_len = 3;
    static const struct tse_wallet_gate bj = {
        {0x10, 0x00}, {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, 0x01, {0x00, 0x17}, 0x12};
    g->g = bj;
}

static void gate_fail(struct gate *g, const char *what, int rc)
{
    char why[160];
    snprintf(why, sizeof(why), "%s (%s, SW %04X)", tse_strerror(rc), g->t.step ? g->t.step : "-",
             (unsigned)g->t.sw);
    die(what, why);
}

/* Load the purse to its maximum balance (the card is powered on contactless). */
static void gate_load(struct gate *g)
{
    int rc = tse_wallet_term_select(&g->t, PURSE_AID, sizeof(PURSE_AID));
    struct tse_wallet_result r;
    if (!rc)
        rc = tse_wallet_term_load(&g->t, LOAD, &r);
    if (rc)
        gate_fail(g, "load", rc);
}

/* One tap at an exit gate: field on, SELECT, the compound exit (GET BALANCE, READ RECORD of
 * the rail record, INITIALIZE FOR CAPP PURCHASE, two UPDATE CAPP DATA CACHE, DEBIT FOR CAPP
 * PURCHASE; PSAM MAC1, MAC2 and TAC checks), field off. */
static void gate_exit(struct gate *g)
{
    power(g->card, TSE_IF_CONTACTLESS);
    int rc = tse_wallet_term_select(&g->t, PURSE_AID, sizeof(PURSE_AID));
    struct tse_wallet_result r;
    if (!rc)
        rc = tse_wallet_term_exit(&g->t, &g->g, FARE, &r);
    if (rc || !r.tac_ok)
        gate_fail(g, "exit", rc ? rc : TSE_ERR_DENIED);
    tse_card_power_off(g->card, TSE_IF_CONTACTLESS);
}

/* ---- in-process APDUs --------------------------------------------------------------------- */

static double apdu_rate(struct tse_card *c, enum tse_iface f, const uint8_t *cmd, size_t len,
                        long n, unsigned expect_sw)
{
    static uint8_t r[TSE_RAPDU_MAX];
    size_t rl;
    double t0 = bench_now_us();
    for (long i = 0; i < n; i++)
        if (xmit(c, f, cmd, len, r, sizeof(r), &rl) != expect_sw)
            die("apdu", "unexpected status word");
    return (double)n / ((bench_now_us() - t0) / 1e6);
}

static void case_apdu(void)
{
    char path[600];
    img_path(path, sizeof(path), "apdu");
    struct tse_card *c = bench_card(path, 0);
    power(c, TSE_IF_CONTACTLESS);
    power(c, TSE_IF_CONTACT);
    long n = opt.quick ? 20000 : 200000;
    double v[64];
    uint8_t r[TSE_RAPDU_MAX];
    size_t rl;
    for (int i = 0; i < opt.runs; i++)
        v[i] = apdu_rate(c, TSE_IF_CONTACTLESS, SELECT_PURSE, sizeof(SELECT_PURSE), n, 0x9000);
    add("apdu_select", "SELECT purse (by AID, 62-byte FCI)", "APDU/s", v, opt.runs, n,
        "contactless interface, in-process tse_card_transmit()");
    if (xmit(c, TSE_IF_CONTACTLESS, SELECT_PURSE, sizeof(SELECT_PURSE), r, sizeof(r), &rl) !=
        0x9000)
        die("select", "purse");
    for (int i = 0; i < opt.runs; i++)
        v[i] = apdu_rate(c, TSE_IF_CONTACTLESS, GET_BALANCE, sizeof(GET_BALANCE), n, 0x9000);
    add("apdu_get_balance", "GET BALANCE (purse)", "APDU/s", v, opt.runs, n,
        "80 5C 00 02 04 on the selected purse, in-process");

    /* cost against APDU size: the diagnostic applet's echo (data in, the same data out) */
    if (xmit(c, TSE_IF_CONTACT, SELECT_DIAG, sizeof(SELECT_DIAG), r, sizeof(r), &rl) != 0x9000)
        die("select", "diag");
    static const size_t sizes[] = {0, 16, 64, 255, 1024, 4096, 16384, 65535};
    static uint8_t cmd[7 + 65535 + 2];
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t sz = sizes[k], len;
        memset(cmd, 0x5A, sizeof(cmd));
        cmd[0] = 0x80, cmd[1] = 0x10, cmd[2] = cmd[3] = 0;
        if (sz == 0) {
            len = 4;
        } else if (sz <= 255) {
            cmd[4] = (uint8_t)sz;
            cmd[5 + sz] = 0; /* Le = 256 */
            len = 5 + sz + 1;
        } else {
            cmd[4] = 0, cmd[5] = (uint8_t)(sz >> 8), cmd[6] = (uint8_t)sz;
            cmd[7 + sz] = cmd[8 + sz] = 0; /* Le = 65536 */
            len = 7 + sz + 2;
        }
        long m = sz >= 4096 ? n / 20 : n / 2;
        for (int i = 0; i < opt.runs; i++)
            v[i] = apdu_rate(c, TSE_IF_CONTACT, cmd, len, m, 0x9000);
        char name[40], label[72];
        snprintf(name, sizeof(name), "apdu_echo_%zu", sz);
        snprintf(label, sizeof(label), "echo %zu bytes in and out%s", sz,
                 sz > 255 ? " (extended)" : "");
        add(name, label, "APDU/s", v, opt.runs, m, "diagnostic applet 80 10, contact interface");
    }
    tse_card_free(c);
    unlink(path);
}

/* ---- compound exit transactions ------------------------------------------------------------ */

/* n exits on a fresh card; returns exits per second. With card_share, the time inside the
 * card is measured per exchange and *card_share receives its fraction of the total. */
static double exit_run(const char *path, int fsync_on, long n, unsigned long *writes_per_txn,
                       double *card_share)
{
    struct tse_card *c = bench_card(path, fsync_on);
    struct gate g;
    gate_init(&g, c);
    power(c, TSE_IF_CONTACTLESS);
    gate_load(&g);
    tse_card_power_off(c, TSE_IF_CONTACTLESS);
    unsigned long w0 = tse_card_store_writes(c);
    g.timed = card_share != NULL;
    double t0 = bench_now_us();
    for (long i = 0; i < n; i++)
        gate_exit(&g);
    double secs = (bench_now_us() - t0) / 1e6;
    if (card_share)
        *card_share = g.card_us / (secs * 1e6);
    g.timed = false;
    if (writes_per_txn)
        *writes_per_txn = (tse_card_store_writes(c) - w0) / (unsigned long)n;
    /* every exit must have been paid */
    power(c, TSE_IF_CONTACTLESS);
    uint32_t bal = 0;
    if (tse_wallet_term_select(&g.t, PURSE_AID, sizeof(PURSE_AID)) != 0 ||
        tse_wallet_term_balance(&g.t, &bal) != 0 || bal != LOAD - (uint32_t)n * FARE)
        die("exit", "balance does not add up");
    tse_wallet_term_free(&g.t);
    tse_psam_free(&g.psam);
    tse_card_free(c);
    unlink(path);
    return (double)n / secs;
}

struct exit_thread {
    char path[700];
    long n;
    double rate;
};

static void *exit_thread_main(void *arg)
{
    struct exit_thread *t = arg;
    t->rate = exit_run(t->path, 0, t->n, NULL, NULL);
    return NULL;
}

static void case_exit(void)
{
    char path[600];
    img_path(path, sizeof(path), "exit");
    long n = opt.quick ? 2000 : 20000, nf = opt.quick ? 50 : 300;
    double v[64], share[64], us[64], card_us[64];
    unsigned long w = 0;
    for (int i = 0; i < opt.runs; i++)
        v[i] = exit_run(path, 0, n, &w, NULL);
    char note[400];
    snprintf(note, sizeof(note),
             "one card, one thread: field on, SELECT + 6 APDUs of the exit, PSAM work, field off; "
             "%lu store writes per exit; fsync off (process-crash safe)",
             w);
    add("exit_txn", "compound exit, process-crash-safe commits", "txn/s", v, opt.runs, n, note);

    /* where the time goes: the same runs with every tse_card_transmit() timed */
    for (int i = 0; i < opt.runs; i++) {
        double rate = exit_run(path, 0, n, NULL, &share[i]);
        us[i] = 1e6 / rate;
        card_us[i] = us[i] * share[i];
    }
    add("exit_us", "compound exit, time per transaction", "us", us, opt.runs, n,
        "1 / rate, in runs where each exchange is also timed (adds ~0.3 us per exit)");
    add("exit_card_us", "of which inside the card (7 APDUs, power)", "us", card_us, opt.runs, n,
        "time inside tse_card_transmit(); the rest is the terminal and its PSAM (key "
        "diversification, MAC1, MAC2 and TAC checks) and the power calls");

    /* both cores: two gates, two cards, two threads */
    for (int i = 0; i < opt.runs; i++) {
        struct exit_thread t[2];
        pthread_t th[2];
        double t0 = bench_now_us();
        for (int k = 0; k < 2; k++) {
            snprintf(t[k].path, sizeof(t[k].path), "%s/exit-thread%d.img", opt.dir, k);
            t[k].n = n;
            if (pthread_create(&th[k], NULL, exit_thread_main, &t[k]) != 0)
                die("pthread_create", strerror(errno));
        }
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        v[i] = (double)(2 * n) / ((bench_now_us() - t0) / 1e6);
    }
    add("exit_txn_2threads", "compound exit, 2 threads on 2 cards (sum)", "txn/s", v, opt.runs,
        2 * n,
        "two gates in two threads, each on its own card (created and loaded inside the timed "
        "span); all exits / wall time; the machine's two cores are shared with other work");

    for (int i = 0; i < opt.runs; i++)
        v[i] = exit_run(path, 1, nf, &w, NULL);
    snprintf(note, sizeof(note),
             "as above with fsync on: fdatasync at every commit point (%lu "
             "store writes per exit)",
             w);
    add("exit_txn_fsync", "compound exit, fsync'd commits", "txn/s", v, opt.runs, nf, note);
}

/* ---- modelled air time ------------------------------------------------------------------- */

/* The air link a reader has with the bench card: its ATS, FSD 256, no CID. */
static void bench_link(struct tse_card *c, enum tse_air_rate br, struct tse_air_link *l)
{
    struct tse_cl_params cl;
    tse_air_link_default(l);
    if (tse_card_cl_params(c, &cl) != 0 || tse_air_link_from_ats(l, cl.ats, cl.ats_len) != 0)
        die("air", "the card's ATS");
    l->rate = br;
    l->fsd = 256;
}

/* Typical transaction time of one recorded exit: the sum over its exchanges of first command
 * bit .. last response bit, with the card's measured processing time (activation and the
 * terminal's PSAM work are not in it, as in docs/contactless.md). */
static double txn_time_us(const struct tse_air_link *l, const struct xchg *x, size_t n,
                          double *air_us)
{
    double total = 0, air = 0;
    for (size_t i = 0; i < n; i++) {
        struct tse_air_exchange e;
        if (tse_air_exchange(l, x[i].clen, x[i].rlen, x[i].card_us, &e) != 0)
            die("air", "exchange model");
        total += e.total_us;
        air += e.air_us;
    }
    if (air_us)
        *air_us = air;
    return total;
}

static void case_air(void)
{
    char path[600];
    img_path(path, sizeof(path), "air");
    struct tse_card *c = bench_card(path, 0);
    struct gate g;
    gate_init(&g, c);
    power(c, TSE_IF_CONTACTLESS);
    gate_load(&g);
    tse_card_power_off(c, TSE_IF_CONTACTLESS);
    long n = opt.quick ? 100 : 1000;
    static const enum tse_air_rate rates[4] = {TSE_AIR_106, TSE_AIR_212, TSE_AIR_424, TSE_AIR_848};
    enum { MAX_X = 16 };
    struct xchg *rec = malloc(sizeof(*rec) * MAX_X * (size_t)n);
    size_t *n_rec = malloc(sizeof(size_t) * (size_t)n);
    double v[4][64], card_ms[64], share[64], *per = malloc(sizeof(double) * (size_t)n);
    if (!rec || !n_rec || !per)
        die("air", "memory");
    for (int i = 0; i < opt.runs; i++) {
        /* n exits, each exchange recorded; every rate then models the same card work */
        double card_sum = 0, air106 = 0;
        for (long k = 0; k < n; k++) {
            g.timed = true;
            g.rec = rec + MAX_X * k;
            g.n_rec = 0;
            g.cap_rec = MAX_X;
            gate_exit(&g);
            n_rec[k] = g.n_rec;
            for (size_t j = 0; j < g.n_rec; j++)
                card_sum += g.rec[j].card_us;
        }
        g.timed = false;
        g.rec = NULL;
        for (int r = 0; r < 4; r++) {
            struct tse_air_link l;
            bench_link(c, rates[r], &l);
            for (long k = 0; k < n; k++) {
                double air;
                per[k] = txn_time_us(&l, rec + MAX_X * k, n_rec[k], &air);
                if (r == 0)
                    air106 += air;
            }
            v[r][i] = bench_percentile(per, (size_t)n, 50) / 1000.0;
        }
        card_ms[i] = card_sum / (double)n / 1000.0;
        share[i] = 100.0 * card_sum / (card_sum + air106);
    }
    size_t n_x = n_rec[0];
    free(per);
    free(rec);
    free(n_rec);
    char note[400];
    struct tse_cl_params cl;
    tse_card_cl_params(c, &cl);
    struct tse_air_link l;
    bench_link(c, TSE_AIR_106, &l);
    snprintf(
        note, sizeof(note),
        "ISO 14443-4 model (include/tse/airtime.h): the %zu exchanges of the exit gate (SELECT, "
        "GET BALANCE, READ RECORD 0x1A, INITIALIZE, 2 x UPDATE CAPP DATA CACHE, DEBIT) with the "
        "card's measured processing; FSC %zu, FSD 256; activation and PSAM work not included; "
        "median of %ld exits per run",
        n_x, l.fsc, n);
    add("txn_time_106", "modelled typical exit transaction, 106 kbit/s", "ms", v[0], opt.runs, n,
        note);
    add("txn_time_212", "modelled typical exit transaction, 212 kbit/s", "ms", v[1], opt.runs, n,
        "as above at 212 kbit/s");
    add("txn_time_424", "modelled typical exit transaction, 424 kbit/s", "ms", v[2], opt.runs, n,
        "as above at 424 kbit/s");
    add("txn_time_848", "modelled typical exit transaction, 848 kbit/s", "ms", v[3], opt.runs, n,
        "as above at 848 kbit/s");
    add("txn_card_ms", "of it: card processing (measured)", "ms", card_ms, opt.runs, n,
        "sum of the time inside tse_card_transmit() over the exchanges of one exit");
    add("txn_card_share", "card processing share at 106 kbit/s", "%", share, opt.runs, n,
        "card processing / (card processing + air time)");
    double act = tse_air_activation_us(cl.uid_len, cl.ats_len, l.sfgi) / 1000.0;
    snprintf(note, sizeof(note), "REQA .. ATS and SFGT for this card (%zu-byte UID, %zu-byte ATS)",
             cl.uid_len, cl.ats_len);
    add("activation_106", "beside it: activation, 106 kbit/s (model)", "ms", &act, 1, 1, note);

    /* the physical floor of single commands: air time with zero card processing */
    struct tse_air_exchange e;
    double floor_sel, floor_bal;
    tse_air_exchange(&l, sizeof(SELECT_PURSE), 64, 0, &e);
    floor_sel = 1e6 / e.total_us;
    tse_air_exchange(&l, sizeof(GET_BALANCE), 6, 0, &e);
    floor_bal = 1e6 / e.total_us;
    add("air_floor_select", "air floor: SELECT purse at 106 kbit/s", "APDU/s", &floor_sel, 1, 1,
        "1 / modelled air time of 13 bytes out, 64 back, no card processing");
    add("air_floor_balance", "air floor: GET BALANCE at 106 kbit/s", "APDU/s", &floor_bal, 1, 1,
        "1 / modelled air time of 5 bytes out, 6 back, no card processing");
    tse_wallet_term_free(&g.t);
    tse_psam_free(&g.psam);
    tse_card_free(c);
    unlink(path);
}

/* ---- SCP03 --------------------------------------------------------------------------------- */

static void scp_keys(struct tse_scp_keys *k)
{
    memset(k, 0, sizeof(*k));
    k->scp = 3;
    k->i = 0x70;
    k->kvn = 0x30;
    k->key_len = 16;
    for (int i = 0; i < 16; i++)
        k->enc[i] = k->mac[i] = k->dek[i] = (uint8_t)(0x40 + i);
}

/* INITIALIZE UPDATE + EXTERNAL AUTHENTICATE at `level` with the card manager (contact). */
static void scp_open(struct tse_card *c, struct tse_scp_session *s, uint8_t level, uint32_t nonce)
{
    struct tse_scp_keys k;
    scp_keys(&k);
    uint8_t chal[8] = {0x48, 0x53, 0x54, 0x21};
    chal[4] = (uint8_t)(nonce >> 24), chal[5] = (uint8_t)(nonce >> 16);
    chal[6] = (uint8_t)(nonce >> 8), chal[7] = (uint8_t)nonce;
    uint8_t cmd[128], r[300];
    size_t cl, rl;
    if (tse_scp_host_begin(s, &k, 0, chal, sizeof(chal), cmd, sizeof(cmd), &cl) != 0 ||
        xmit(c, TSE_IF_CONTACT, cmd, cl, r, sizeof(r), &rl) != 0x9000 ||
        tse_scp_host_iu_response(s, r, rl - 2) != 0 ||
        tse_scp_host_external_authenticate(s, level, cmd, sizeof(cmd), &cl) != 0 ||
        xmit(c, TSE_IF_CONTACT, cmd, cl, r, sizeof(r), &rl) != 0x9000)
        die("scp03", s->why ? s->why : "session open failed");
}

static void case_scp(void)
{
    char path[600];
    img_path(path, sizeof(path), "scp");
    struct tse_card *c = bench_card(path, 0);
    power(c, TSE_IF_CONTACT);
    long n = opt.quick ? 2000 : 20000;
    double v[64];
    struct tse_scp_session s;
    uint32_t nonce = 1;
    for (int i = 0; i < opt.runs; i++) {
        double t0 = bench_now_us();
        for (long k = 0; k < n; k++)
            scp_open(c, &s, 0x33, nonce++);
        v[i] = (double)n / ((bench_now_us() - t0) / 1e6);
    }
    add("scp03_open", "SCP03 session open (i=70, level 33)", "opens/s", v, opt.runs, n,
        "INITIALIZE UPDATE + EXTERNAL AUTHENTICATE with the card manager, AES-128; host and card "
        "side in one thread; each open writes the sequence counter (one store write)");

    /* wrapped GET STATUS (applications, tag format): C-MAC + C-DEC, R-MAC + R-ENC */
    static const uint8_t plain[] = {0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00};
    uint8_t w[300], r[TSE_RAPDU_MAX], u[TSE_RAPDU_MAX];
    size_t wl, rl, ul;
    scp_open(c, &s, 0x33, nonce++);
    for (int i = 0; i < opt.runs; i++) {
        double t0 = bench_now_us();
        for (long k = 0; k < n * 5; k++) {
            if (tse_scp_host_wrap(&s, plain, sizeof(plain), w, sizeof(w), &wl) != 0 ||
                xmit(c, TSE_IF_CONTACT, w, wl, r, sizeof(r), &rl) == 0 ||
                tse_scp_host_unwrap(&s, r, rl, u, sizeof(u), &ul) != 0 || ul < 2 ||
                u[ul - 2] != 0x90)
                die("scp03 wrapped", s.why ? s.why : "exchange failed");
        }
        v[i] = (double)(n * 5) / ((bench_now_us() - t0) / 1e6);
    }
    add("scp03_wrapped", "SCP03 wrapped APDU at level 33", "APDU/s", v, opt.runs, n * 5,
        "GET STATUS 80F24002 4F00 wrapped by the host, unwrapped, answered and re-wrapped by the "
        "card, unwrapped by the host; both sides in one thread");
    tse_card_free(c);
    unlink(path);
}

/* ---- image create and open ----------------------------------------------------------------- */

static void case_open(void)
{
    char path[600];
    img_path(path, sizeof(path), "open");
    long n = opt.quick ? 100 : 1000, nc = opt.quick ? 20 : 200;
    double v[64];
    for (int i = 0; i < opt.runs; i++) {
        double t0 = bench_now_us();
        for (long k = 0; k < nc; k++)
            tse_card_free(bench_card(path, 0));
        v[i] = (bench_now_us() - t0) / (double)nc;
    }
    add("image_create", "card image create (profile, installs, perso)", "us", v, opt.runs, nc,
        "tse_card_create() of the bench profile + tse_card_free()");

    /* an image that has seen traffic: a load and 100 exits in its journal */
    struct tse_card *c = bench_card(path, 0);
    struct gate g;
    gate_init(&g, c);
    power(c, TSE_IF_CONTACTLESS);
    gate_load(&g);
    for (int k = 0; k < 100; k++)
        gate_exit(&g);
    struct tse_card_stats st;
    tse_card_stats(c, &st);
    tse_card_free(c);
    char err[256] = "";
    for (int i = 0; i < opt.runs; i++) {
        double t0 = bench_now_us();
        for (long k = 0; k < n; k++) {
            if (tse_card_open(&c, path, NULL, err, sizeof(err)) != 0)
                die("open", err);
            tse_card_free(c);
        }
        v[i] = (bench_now_us() - t0) / (double)n;
    }
    char note[400];
    snprintf(note, sizeof(note),
             "tse_card_open() + tse_card_free() of a %zu-byte image (snapshot + journal of a load "
             "and 100 exits), page cache warm",
             st.image_bytes);
    add("image_open", "card image open", "us", v, opt.runs, n, note);
    unlink(path);
}

/* ---- memory and scale ------------------------------------------------------------------------ */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

/* One tap on card `id` of the farm: field on, SELECT purse, GET BALANCE, field off. */
static void farm_tap(struct tse_farm *f, uint32_t id)
{
    uint8_t r[300];
    size_t rl;
    if (tse_farm_power_on(f, id, TSE_IF_CONTACTLESS, NULL, 0, NULL) != 0 ||
        tse_farm_transmit(f, id, TSE_IF_CONTACTLESS, SELECT_PURSE, sizeof(SELECT_PURSE), r,
                          sizeof(r), &rl) != 0 ||
        tse_farm_transmit(f, id, TSE_IF_CONTACTLESS, GET_BALANCE, sizeof(GET_BALANCE), r, sizeof(r),
                          &rl) != 0 ||
        rl != 6 || r[4] != 0x90 || tse_farm_power_off(f, id, TSE_IF_CONTACTLESS) != 0)
        die("farm", "tap failed");
}

static struct tse_farm *bench_farm(const char *dir)
{
    struct tse_farm_options fo;
    tse_farm_options_init(&fo);
    fo.dir = dir;
    fo.profile_text = BENCH_PROFILE;
    fo.profile_len = strlen(BENCH_PROFILE);
    fo.max_cards = (uint32_t)(opt.max_cards > opt.mem_cards ? opt.max_cards : opt.mem_cards);
    fo.fsync = 0;
    struct tse_farm *f;
    char err[256] = "";
    if (tse_farm_init(&f, &fo, err, sizeof(err)) != 0)
        die("farm", err);
    return f;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1200];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The card population of the memory and scale cases: n template copies in the farm
 * directory, made once (their creation is timed and reported). */
static double populate(const char *dir, long n)
{
    remove_tree(dir);
    struct tse_farm *f = bench_farm(dir);
    double t0 = bench_now_us();
    for (long k = 0; k < n; k++)
        if (tse_farm_create(f, (uint32_t)k) != 0)
            die("farm", "create");
    double us = (bench_now_us() - t0) / (double)n;
    tse_farm_free(f);
    return us;
}

struct scale_report {
    long cards;
    long rss_open, rss_used, rss_evicted; /* KiB of growth over the empty farm */
    int fds;
    double open_s, tap_rate;
    char why[160];
};

/* Child: open up to `want` cards of the population (stopping at the first failure), tap
 * each once, evict them all; RSS is read after each step. A fresh process per run, so what
 * malloc kept from an earlier run cannot hide growth. */
static void scale_child(int fd, const char *dir, long want, bool limit)
{
    struct scale_report rep;
    memset(&rep, 0, sizeof(rep));
    if (limit && !BENCH_ASAN) {
        struct rlimit rl = {(rlim_t)(4 * GIB), (rlim_t)(4 * GIB)};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            snprintf(rep.why, sizeof(rep.why), "setrlimit: %s", strerror(errno));
    }
    struct tse_farm *f = bench_farm(dir);
    long r0 = bench_rss_kib();
    double t0 = bench_now_us();
    long k;
    for (k = 0; k < want; k++) {
        int rc = tse_farm_open(f, (uint32_t)k);
        if (rc) {
            snprintf(rep.why, sizeof(rep.why), "card %ld: %s", k, tse_strerror(rc));
            break;
        }
    }
    rep.open_s = (bench_now_us() - t0) / 1e6;
    rep.cards = k;
    rep.rss_open = bench_rss_kib() - r0;
    rep.fds = count_fds();
    t0 = bench_now_us();
    for (long j = 0; j < k; j++)
        farm_tap(f, (uint32_t)j);
    rep.tap_rate = k ? (double)k / ((bench_now_us() - t0) / 1e6) : 0;
    rep.rss_used = bench_rss_kib() - r0;
    tse_farm_evict_idle(f, 0);
    malloc_trim(0); /* glibc keeps freed heap; this shows what eviction gives back */
    rep.rss_evicted = bench_rss_kib() - r0;
    if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(3);
    _exit(0);
}

static struct scale_report scale_run(const char *dir, long want, bool limit)
{
    struct scale_report rep;
    memset(&rep, 0, sizeof(rep));
    int p[2];
    if (pipe(p) != 0)
        die("pipe", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        scale_child(p[1], dir, want, limit);
    }
    close(p[1]);
    ssize_t got = read(p[0], &rep, sizeof(rep));
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (got != (ssize_t)sizeof(rep)) {
        char why[80];
        snprintf(why, sizeof(why), "the measuring child ended without a report (status %d)", st);
        die("scale", why);
    }
    return rep;
}

/* Resident memory per card: N cards open at once in one farm, then each used once (a
 * tap), then evicted. */
static void case_mem(void)
{
    long n = opt.mem_cards;
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/mem", opt.farm_dir);
    /* the same tap on one card, for comparison with the tap rate over many */
    double one[64];
    char one_dir[700];
    snprintf(one_dir, sizeof(one_dir), "%s/one", opt.farm_dir);
    remove_tree(one_dir);
    struct tse_farm *f1 = bench_farm(one_dir);
    long taps = opt.quick ? 20000 : 200000;
    for (int i = 0; i < opt.runs; i++) {
        double t0 = bench_now_us();
        for (long k = 0; k < taps; k++)
            farm_tap(f1, 0);
        one[i] = (double)taps / ((bench_now_us() - t0) / 1e6);
    }
    tse_farm_free(f1);
    remove_tree(one_dir);
    add("tap_rate_1", "taps/s on one card", "taps/s", one, opt.runs, taps,
        "tap = field on, SELECT purse, GET BALANCE, field off, through the farm by id");
    double create_us = populate(dir, n);
    double idle[64], used[64], evicted[64], tap[64], open_us[64];
    struct scale_report rep;
    for (int i = 0; i < opt.runs; i++) {
        rep = scale_run(dir, n, false);
        if (rep.cards != n)
            die("mem", rep.why);
        idle[i] = (double)rep.rss_open / (double)n;
        used[i] = (double)rep.rss_used / (double)n;
        evicted[i] = (double)rep.rss_evicted / (double)n;
        tap[i] = rep.tap_rate;
        open_us[i] = rep.open_s * 1e6 / (double)n;
    }
    remove_tree(dir);
    char note[400];
    snprintf(note, sizeof(note),
             "RSS growth of a fresh process opening %ld purse cards through a farm (powered off, "
             "no descriptor: %d open in all), divided by %ld",
             n, rep.fds, n);
    add("rss_per_card_idle", "resident memory per idle card (opened)", "KiB", idle, opt.runs, n,
        note);
    add("rss_per_card_used", "resident memory per card after one tap each", "KiB", used, opt.runs,
        n, "the same cards after a tap each (field on, SELECT, GET BALANCE, field off)");
    add("rss_per_card_evicted", "resident memory per card after eviction", "KiB", evicted, opt.runs,
        n, "after tse_farm_evict_idle() and malloc_trim(0): what the process still holds");
    add("farm_open", "farm: bring one card into memory", "us", open_us, opt.runs, n,
        "tse_farm_open() of an existing image (tse_card_open() and descriptor release)");
    snprintf(note, sizeof(note), "one tap per card over %ld resident cards, round robin", n);
    char label[72];
    snprintf(label, sizeof(label), "taps/s across %ld resident cards", n);
    add("tap_rate_mem", label, "taps/s", tap, opt.runs, n, note);
    snprintf(note, sizeof(note), "tse_farm_create(): a copy of the template image, in %.200s",
             opt.farm_dir);
    add("farm_create", "farm: create one card image", "us", &create_us, 1, n, note);
}

/* The largest number of cards one process hosts: a child limited to 4 GiB of address space
 * (and this process's descriptor limit) opens the whole population. */
static void case_max(void)
{
    long want = opt.max_cards;
    int runs = opt.quick ? 1 : (opt.runs >= 3 ? 3 : opt.runs);
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/max", opt.farm_dir);
    double create_s = populate(dir, want) * (double)want / 1e6;
    double cards[64], rss[64], open_s[64], tap[64], per[64];
    struct scale_report rep;
    for (int i = 0; i < runs; i++) {
        rep = scale_run(dir, want, true);
        cards[i] = (double)rep.cards;
        rss[i] = (double)rep.rss_open / 1024.0;
        per[i] = rep.cards ? (double)rep.rss_open / (double)rep.cards : 0;
        open_s[i] = rep.open_s;
        tap[i] = rep.tap_rate;
    }
    remove_tree(dir);
    char note[400];
    snprintf(note, sizeof(note),
             "in a child with RLIMIT_AS = %s and RLIMIT_NOFILE %ld: %ld of %ld cards opened, "
             "%d descriptors open%s%s",
             BENCH_ASAN ? "unlimited (AddressSanitizer build)" : "4 GiB",
             (long)sysconf(_SC_OPEN_MAX), rep.cards, want, rep.fds, rep.why[0] ? "; stopped: " : "",
             rep.why);
    add("max_cards", "cards hosted in one process (4 GiB)", "cards", cards, runs, want, note);
    snprintf(note, sizeof(note), "RSS growth with all %ld cards open and idle", rep.cards);
    add("max_cards_rss", "RSS of those cards", "MiB", rss, runs, want, note);
    add("max_cards_kib", "resident memory per card at that scale", "KiB", per, runs, want,
        "RSS growth divided by the number of cards");
    double lim[64];
    for (int i = 0; i < runs; i++)
        lim[i] = per[i] > 0 ? (double)(long)(4.0 * 1024 * 1024 / per[i]) : 0;
    add("max_cards_4gib", "cards that fit 4 GiB at that size (extrapolated)", "cards", lim, runs,
        want, "4 GiB divided by the resident memory per card measured at that scale");
    add("max_cards_open_time", "time to open them all", "s", open_s, runs, want,
        "tse_farm_open() of every card, images already on disk");
    snprintf(note, sizeof(note), "one tap per card over %ld resident cards, round robin",
             rep.cards);
    char label[72];
    snprintf(label, sizeof(label), "taps/s across %ld resident cards", rep.cards);
    add("tap_rate_max", label, "taps/s", tap, runs, want, note);
    snprintf(note, sizeof(note), "tse_farm_create() of %ld template copies in %.200s", want,
             opt.farm_dir);
    add("max_cards_create_time", "time to create their images", "s", &create_s, 1, want, note);
}

/* ---- output ---------------------------------------------------------------------------------- */

static const char *fs_name(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return "unknown";
    unsigned long t = (unsigned long)sf.f_type;
    return t == 0xEF53UL       ? "ext4"
           : t == 0x01021994UL ? "tmpfs"
           : t == 0x794C7630UL ? "overlayfs"
           : t == 0x58465342UL ? "xfs"
           : t == 0x9123683EUL ? "btrfs"
                               : "other";
}

static void machine(char *cpu, size_t cap, char *fs, size_t fcap)
{
    snprintf(cpu, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = 0;
                snprintf(cpu, cap, "%s", p);
            }
            break;
        }
    if (f)
        fclose(f);
    snprintf(fs, fcap, "%s", fs_name(opt.dir));
}

struct target {
    const char *name, *what;
    const char *result;
    double goal;
    bool at_most;
};

static const struct target TARGETS[] = {
    {"exit_per_core", "compound exit txn/s per core, crash-safe", "exit_txn", TARGET_EXIT, false},
    {"kib_per_idle_card", "KiB resident per idle card", "rss_per_card_idle", TARGET_KIB, true},
    {"cards_per_process", "cards in one process", "max_cards", TARGET_CARDS, false},
    {"scp03_open", "SCP03 opens/s", "scp03_open", TARGET_SCP_OPEN, false},
};

static void print_table(void)
{
    printf("\n%-46s %14s %14s %14s  %s\n", "figure", "median", "min", "max", "unit");
    for (int i = 0; i < n_results; i++) {
        const struct result *r = &results[i];
        if (!r->available) {
            printf("%-46s %14s %14s %14s  %s\n", r->label, "n/a", "", "", r->unit);
            continue;
        }
        int prec = r->st.med < 1 ? 4 : r->st.med < 100 ? 2 : 0;
        printf("%-46s %14.*f %14.*f %14.*f  %s\n", r->label, prec, r->st.med, prec, r->st.min, prec,
               r->st.max, r->unit);
    }
    printf("\ntargets (2-core machine):\n");
    for (size_t i = 0; i < sizeof(TARGETS) / sizeof(TARGETS[0]); i++) {
        const struct target *t = &TARGETS[i];
        const struct result *r = find(t->result);
        if (!r || !r->available) {
            printf("  %-44s not measured\n", t->what);
            continue;
        }
        bool met = t->at_most ? r->st.med <= t->goal : r->st.med >= t->goal;
        printf("  %-44s %s %.0f: median %.2f  %s (%+.0f%%)\n", t->what,
               t->at_most ? "<=" : ">=", t->goal, r->st.med, met ? "MET" : "MISSED",
               (r->st.med / t->goal - 1) * 100);
    }
}

static void write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, strerror(errno));
    char cpu[128], fs[32], date[64];
    machine(cpu, sizeof(cpu), fs, sizeof(fs));
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    struct utsname u;
    uname(&u);
    fprintf(f,
            "{\n  \"tool\": \"tse-bench\",\n  \"date\": \"%s\",\n  \"machine\": {\"cpu\": ", date);
    bench_json_str(f, cpu);
    fprintf(f, ", \"cpus\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
    bench_json_str(f, u.release);
    fprintf(f, ", \"image_fs\": \"%s\", \"image_dir\": ", fs);
    bench_json_str(f, opt.dir);
    fprintf(f, ", \"farm_fs\": \"%s\", \"farm_dir\": ", fs_name(opt.farm_dir));
    bench_json_str(f, opt.farm_dir);
    fprintf(f, "},\n  \"runs\": %d,\n  \"results\": [\n", opt.runs);
    for (int i = 0; i < n_results; i++) {
        const struct result *r = &results[i];
        fprintf(f, "    {\"name\": \"%s\", \"label\": ", r->name);
        bench_json_str(f, r->label);
        fprintf(f, ", \"unit\": \"%s\", ", r->unit);
        if (r->available)
            fprintf(f, "\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"runs\": %d, ", r->st.med,
                    r->st.min, r->st.max, r->st.runs);
        else
            fprintf(f, "\"median\": null, \"min\": null, \"max\": null, \"runs\": 0, ");
        fprintf(f, "\"per_run\": %ld, \"note\": ", r->per_run);
        bench_json_str(f, r->note);
        fprintf(f, "}%s\n", i + 1 < n_results ? "," : "");
    }
    fprintf(f, "  ],\n  \"targets\": [\n");
    size_t nt = sizeof(TARGETS) / sizeof(TARGETS[0]);
    for (size_t i = 0; i < nt; i++) {
        const struct target *t = &TARGETS[i];
        const struct result *r = find(t->result);
        fprintf(f, "    {\"name\": \"%s\", \"goal\": %.0f, \"at_most\": %s, ", t->name, t->goal,
                t->at_most ? "true" : "false");
        if (r && r->available) {
            bool met = t->at_most ? r->st.med <= t->goal : r->st.med >= t->goal;
            fprintf(f, "\"median\": %.3f, \"met\": %s}", r->st.med, met ? "true" : "false");
        } else {
            fprintf(f, "\"median\": null, \"met\": null}");
        }
        fprintf(f, "%s\n", i + 1 < nt ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

static void usage(void)
{
    fprintf(stderr, "usage: tse-bench [--runs N] [--json FILE] [--dir DIR] [--farm-dir DIR] "
                    "[--mem-cards N] [--max-cards N] [--only apdu,exit,air,scp,open,mem,max] "
                    "[--quick]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool mem_given = false, max_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            opt.quick = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
        }
        if (!v)
            usage();
        if (!strcmp(a, "--runs"))
            opt.runs = atoi(v);
        else if (!strcmp(a, "--json"))
            opt.json = v;
        else if (!strcmp(a, "--dir"))
            snprintf(opt.dir, sizeof(opt.dir), "%s", v);
        else if (!strcmp(a, "--farm-dir"))
            snprintf(opt.farm_dir, sizeof(opt.farm_dir), "%s", v);
        else if (!strcmp(a, "--mem-cards"))
            opt.mem_cards = atol(v), mem_given = true;
        else if (!strcmp(a, "--max-cards"))
            opt.max_cards = atol(v), max_given = true;
        else if (!strcmp(a, "--only"))
            opt.only = v;
        else
            usage();
        i++;
    }
    if (opt.quick) { /* a smoke run: small counts unless given */
        if (!mem_given)
            opt.mem_cards = 1000;
        if (!max_given)
            opt.max_cards = 5000;
    }
    if (opt.runs < 1 || opt.runs > 64 || opt.mem_cards < 1 || opt.max_cards < 1 ||
        opt.max_cards > TSE_FARM_MAX_CARDS || opt.mem_cards > TSE_FARM_MAX_CARDS)
        usage();
    if (!opt.dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(opt.dir, sizeof(opt.dir), "%s/tse-bench-%ld", t && *t ? t : "/tmp",
                 (long)getpid());
    }
    mkdir(opt.dir, 0755);
    if (!opt.farm_dir[0]) {
        /* Many small image files: on tmpfs when there is one. Where the images live changes
         * how long creating them takes, not the process's resident memory (images are read
         * with pread(), never mapped). */
        if (access("/dev/shm", W_OK) == 0 && !strcmp(fs_name("/dev/shm"), "tmpfs"))
            snprintf(opt.farm_dir, sizeof(opt.farm_dir), "/dev/shm/tse-bench-%ld", (long)getpid());
        else
            snprintf(opt.farm_dir, sizeof(opt.farm_dir), "%.500s/farm", opt.dir);
    }
    mkdir(opt.farm_dir, 0755);
    char cpu[128], fs[32];
    machine(cpu, sizeof(cpu), fs, sizeof(fs));
    printf("tse-bench: %d runs per figure (median, min, max); %ld CPUs (%s); images in %s (%s), "
           "farm images in %s (%s)\n",
           opt.runs, sysconf(_SC_NPROCESSORS_ONLN), cpu, opt.dir, fs, opt.farm_dir,
           fs_name(opt.farm_dir));
    fflush(stdout);
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"apdu", case_apdu}, {"exit", case_exit}, {"air", case_air}, {"scp", case_scp},
                 {"open", case_open}, {"mem", case_mem},   {"max", case_max}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!wanted(cases[i].name))
            continue;
        double t0 = bench_now_us();
        cases[i].fn();
        printf("  %-5s done in %.1f s\n", cases[i].name, (bench_now_us() - t0) / 1e6);
        fflush(stdout);
    }
    print_table();
    if (opt.json) {
        write_json(opt.json);
        printf("\nJSON: %s\n", opt.json);
    }
    rmdir(opt.farm_dir);
    rmdir(opt.dir);
    return 0;
}
