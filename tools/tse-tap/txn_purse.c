/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The purse transactions of tse-tap (--txn purse): a metro gate (compound entry and exit), a
 * POS (purchase) and a load terminal, each with a simulated PSAM holding the public test keys
 * (include/tse/wallet.h). The gate finds the purse through the PPSE (label MOT_T_EP), selects
 * it (file 0x15 comes with the FCI), reads what a gate reads, runs the compound purchase and
 * has the PSAM check MAC2 and TAC.
 *
 * Recovery: a DEBIT whose answer is lost (--param cut=debit: the card committed, the reader
 * never hears it) leaves the transaction pending in the gate; when the same card is tapped
 * again (the next tap of --repeat, or a later run sharing --param state=FILE) the gate asks
 * for the card's proof with GET TRANSACTION PROVE, checks MAC2 and TAC and books it, without
 * debiting again. If the card has no such transaction (9406) the gate runs it afresh.
 *
 * Timing: every APDU goes through tse_tap_transmit() under its command's name. Reader-side
 * work (PSAM and terminal code) is the wall time of each terminal call minus the time spent
 * in the exchanges, noted with tse_tap_note_host() where it happens, so the report keeps it
 * beside the card's time and out of the typical transaction time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tse/apdu.h"
#include "tse/error.h"
#include "tse/sw.h"
#include "tse/tlv.h"
#include "tse/wallet.h"
#include "txn.h"

enum purse_mode { M_ENTRY, M_EXIT, M_PURCHASE, M_LOAD };
enum purse_cut { CUT_NONE, CUT_DEBIT, CUT_BEFORE_DEBIT };

static const char *const mode_names[] = {"entry", "exit", "purchase", "load"};

#define EP_LABEL     "MOT_T_EP"
#define RAIL_RECORD  0x12u /* the identifier the terminal library gives the rail record */
#define DEFAULT_FARE 200u  /* fen, when an exit names none */

static const uint8_t ppse_aid[14] = {'2', 'P', 'A', 'Y', '.', 'S', 'Y',
                                     'S', '.', 'D', 'D', 'F', '0', '1'};
static const uint8_t ep_aid[8] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05};

/* What --param gave this run. */
struct purse_params {
    enum purse_mode mode;
    enum purse_cut cut;
    uint32_t amount; /* fare (exit), amount (purchase, load) */
    struct tse_wallet_gate gate;
    uint8_t term_id[6];
    bool have_term;
    uint8_t date[4], time[3];
    uint8_t pin[6];
    size_t pin_len;
    bool ppse;
    const char *state; /* gate state file, or NULL */
};

/* The gate between taps: its PSAM (and its terminal sequence number) and a transaction
 * whose DEBIT answer was lost. Lives for the whole run (all taps of --repeat). */
static struct {
    bool ready;
    struct tse_psam psam;
    bool pending;
    enum purse_mode pmode;
    struct tse_psam_txn px;
    struct tse_wallet_card pcard;
} gate;

/* One tap: the reader, the transcript and the clock of the reader-side work. */
struct tap_session {
    struct tse_tap *tap;
    const struct tap_args *a;
    enum purse_cut cut;
    bool cut_done;   /* the cut happened on this tap */
    bool in_term;    /* inside a terminal call: the time between exchanges is its work */
    double mark_us;  /* end of the last exchange or start of the terminal call */
    double host_us;  /* reader-side work noted on this tap */
    uint8_t init_p1; /* P1 of the last INITIALIZE (names the DEBIT) */
    uint8_t rail[128];
    bool have_rail;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void note_host(struct tap_session *s, double us)
{
    if (us <= 0)
        return;
    tse_tap_note_host(s->tap, us);
    s->host_us += us;
}

/* Terminal calls are bracketed: begin() starts the reader-side clock, end() notes what ran
 * after the last exchange (e.g. the PSAM checking MAC2 and TAC). */
static void term_begin(struct tap_session *s)
{
    s->in_term = true;
    s->mark_us = now_us();
}

static void term_end(struct tap_session *s)
{
    note_host(s, now_us() - s->mark_us);
    s->in_term = false;
}

static void print_hex(FILE *f, const char *dir, const uint8_t *b, size_t n, const char *note)
{
    char *h = malloc(2 * n + 1);
    if (!h)
        return;
    tse_hex_encode(b, n, h);
    fprintf(f, "%s %s%s%s\n", dir, h, note ? "   " : "", note ? note : "");
    free(h);
}

static void print_amount(FILE *f, uint32_t fen)
{
    fprintf(f, "%lu.%02lu", (unsigned long)(fen / 100), (unsigned long)(fen % 100));
}

/* The name of an exchange in the report and the SVG. */
static void label_for(struct tap_session *s, const uint8_t *c, size_t n, char *out, size_t cap)
{
    uint8_t cla = n > 0 ? c[0] : 0, ins = n > 1 ? c[1] : 0, p1 = n > 2 ? c[2] : 0,
            p2 = n > 3 ? c[3] : 0;
    const char *name = NULL;
    if (cla == 0x00 && ins == 0xA4) {
        if (n >= 5 + sizeof(ppse_aid) && c[4] == sizeof(ppse_aid) &&
            !memcmp(c + 5, ppse_aid, sizeof(ppse_aid)))
            name = "SELECT PPSE";
        else
            name = "SELECT " EP_LABEL;
    } else if (cla == 0x00 && ins == 0xB0) {
        snprintf(out, cap, "READ BINARY 0x%02X", p1 & 0x1F);
        return;
    } else if (cla == 0x00 && ins == 0xB2) {
        snprintf(out, cap, "READ RECORD 0x%02X", p2 >> 3);
        return;
    } else if (cla == 0x80 && ins == 0xDC) {
        snprintf(out, cap, "UPDATE CAPP DATA CACHE 0x%02X", p2 >> 3);
        return;
    } else if (cla == 0x80 && ins == 0x50) {
        s->init_p1 = p1;
        name = p1 == 0x00   ? "INITIALIZE FOR LOAD"
               : p1 == 0x01 ? "INITIALIZE FOR PURCHASE"
                            : "INITIALIZE FOR CAPP PURCHASE";
    } else if (cla == 0x80 && ins == 0x54) {
        name = s->init_p1 == 0x03 ? "DEBIT FOR CAPP PURCHASE" : "DEBIT FOR PURCHASE";
    } else if (cla == 0x80 && ins == 0x52) {
        name = "CREDIT FOR LOAD";
    } else if (cla == 0x80 && ins == 0x5A) {
        name = "GET TRANSACTION PROVE";
    } else if (cla == 0x80 && ins == 0x5C) {
        name = "GET BALANCE";
    } else if (cla == 0x00 && ins == 0x20) {
        name = "VERIFY PIN";
    }
    snprintf(out, cap, "%s", name ? name : "");
}

/* The transport of the terminal library and of the gate's own reads: one recorded exchange.
 * The reader-side work since the last exchange is noted first. A cut drops DEBIT (or its
 * answer) as a card leaving the field would. */
static int gate_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                         size_t *rlen)
{
    struct tap_session *s = user;
    if (s->in_term)
        note_host(s, now_us() - s->mark_us);
    char label[32];
    label_for(s, c, clen, label, sizeof(label));
    bool debit = clen >= 2 && c[0] == 0x80 && c[1] == 0x54;
    FILE *out = s->a->quiet ? NULL : s->a->out;
    if (debit && s->cut == CUT_BEFORE_DEBIT) {
        if (out)
            print_hex(out, "->", c, clen, "(lost: the card left the field first)");
        s->cut_done = true;
        s->mark_us = now_us();
        return TSE_ERR_IO;
    }
    if (out)
        print_hex(out, "->", c, clen, NULL);
    int rc = tse_tap_transmit(s->tap, label, c, clen, r, rcap, rlen);
    if (rc) {
        s->mark_us = now_us();
        return rc;
    }
    if (debit && s->cut == CUT_DEBIT) {
        if (out)
            print_hex(out, "<-", r, *rlen, "(lost: the card left the field)");
        s->cut_done = true;
        s->mark_us = now_us();
        return TSE_ERR_IO;
    }
    if (out)
        print_hex(out, "<-", r, *rlen, NULL);
    /* the gate reads the rail record (the terminal library fetches it for the exit) */
    if (clen >= 4 && c[0] == 0x00 && c[1] == 0xB2 && (c[3] >> 3) == 0x1A && *rlen == 130 &&
        r[128] == 0x90 && r[129] == 0x00) {
        memcpy(s->rail, r, 128);
        s->have_rail = true;
    }
    s->mark_us = now_us();
    return 0;
}

/* One exchange outside the terminal library: data to r (SW removed), *sw. */
static int xchg(struct tap_session *s, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                size_t *rlen, uint16_t *sw)
{
    uint8_t buf[300];
    size_t n = 0;
    int rc = gate_transmit(s, c, clen, buf, sizeof(buf), &n);
    if (rc)
        return rc;
    if (n < 2)
        return TSE_ERR_PARSE;
    *sw = (uint16_t)(buf[n - 2] << 8 | buf[n - 1]);
    n -= 2;
    if (n > rcap)
        n = rcap;
    memcpy(r, buf, n);
    *rlen = n;
    return 0;
}

/* ---- parameters ------------------------------------------------------------------------- */

/* "3.00", "3", "0.5" → fen */
static bool parse_fen(const char *s, uint32_t *fen)
{
    unsigned long long v = 0;
    int decimals = -1;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s == '.' && decimals < 0) {
            decimals = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || decimals >= 2)
            return false;
        v = v * 10 + (unsigned long long)(*s - '0');
        if (decimals >= 0)
            decimals++;
        if (v > 0xFFFFFFFFull)
            return false;
    }
    for (int d = decimals < 0 ? 0 : decimals; d < 2; d++)
        v *= 10;
    if (v > 0xFFFFFFFFull)
        return false;
    *fen = (uint32_t)v;
    return true;
}

/* Decimal text → n BCD bytes (at most 2n digits). */
static bool parse_bcd(const char *s, uint8_t *out, size_t n)
{
    size_t len = strlen(s);
    if (len == 0 || len > 2 * n)
        return false;
    memset(out, 0, n);
    for (size_t i = 0; i < len; i++) {
        char ch = s[len - 1 - i];
        if (ch < '0' || ch > '9')
            return false;
        out[n - 1 - i / 2] |= (uint8_t)((ch - '0') << (i % 2 ? 4 : 0));
    }
    return true;
}

static bool parse_hex_exact(const char *s, uint8_t *out, size_t n)
{
    return strlen(s) == 2 * n && tse_hex_decode(s, out, n) == (int)n;
}

static void host_clock(uint8_t date[4], uint8_t tm3[3])
{
    time_t now = time(NULL);
    struct tm t;
    char buf[16];
    localtime_r(&now, &t);
    strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &t);
    tse_hex_decode(buf, date, 4); /* BCD digits read as hex */
    char tail[8];
    memcpy(tail, buf + 8, 6);
    tail[6] = '\0';
    tse_hex_decode(tail, tm3, 3);
}

static int bad_param(const char *key, const char *what)
{
    fprintf(stderr, "tse-tap: --param %s: %s\n", key, what);
    return 1;
}

static int parse_params(const struct tap_args *a, struct purse_params *p)
{
    memset(p, 0, sizeof(*p));
    const char *v = tap_param(a, "mode");
    if (!v)
        return bad_param("mode", "wanted: entry, exit, purchase or load");
    size_t m = 0;
    while (m < 4 && strcmp(v, mode_names[m]))
        m++;
    if (m == 4)
        return bad_param("mode", "entry, exit, purchase or load");
    p->mode = (enum purse_mode)m;

    static const uint8_t city[2] = {0x10, 0x00};
    static const uint8_t inst[8] = {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    memcpy(p->gate.city, city, 2);
    memcpy(p->gate.institution, inst, 8);
    p->gate.line = 0x01;
    p->gate.rail_record_id = RAIL_RECORD;
    if ((v = tap_param(a, "station")) && !parse_bcd(v, p->gate.station, 2))
        return bad_param("station", "a station number of 1 to 4 digits");
    if ((p->mode == M_ENTRY || p->mode == M_EXIT) && !v)
        return bad_param("station", "a gate needs its station number");
    if ((v = tap_param(a, "line")) && !parse_bcd(v, &p->gate.line, 1))
        return bad_param("line", "a line number of 1 or 2 digits");
    if ((v = tap_param(a, "city")) && !parse_hex_exact(v, p->gate.city, 2))
        return bad_param("city", "4 BCD digits, e.g. 1000");
    if ((v = tap_param(a, "institution")) && !parse_hex_exact(v, p->gate.institution, 8))
        return bad_param("institution", "8 bytes of hex, e.g. 01011000FFFFFFFF");

    const char *fare = tap_param(a, "fare"), *amount = tap_param(a, "amount");
    if (p->mode == M_EXIT) {
        p->amount = DEFAULT_FARE;
        if ((fare || amount) && !parse_fen(fare ? fare : amount, &p->amount))
            return bad_param("fare", "an amount in yuan, e.g. 3.00");
    } else if (p->mode == M_PURCHASE || p->mode == M_LOAD) {
        if (!amount || !parse_fen(amount, &p->amount) || p->amount == 0)
            return bad_param("amount", "a purchase or load needs an amount, e.g. 2.50");
    }
    if ((v = tap_param(a, "terminal"))) {
        if (!parse_hex_exact(v, p->term_id, 6))
            return bad_param("terminal", "the terminal number, 12 BCD digits");
        p->have_term = true;
    }
    if ((v = tap_param(a, "time"))) {
        uint8_t dt[7];
        if (strlen(v) != 14 || !parse_bcd(v, dt, 7))
            return bad_param("time", "YYYYMMDDhhmmss");
        memcpy(p->date, dt, 4);
        memcpy(p->time, dt + 4, 3);
    } else {
        host_clock(p->date, p->time);
    }
    static const uint8_t test_pin[3] = {0x12, 0x34, 0x56};
    memcpy(p->pin, test_pin, 3);
    p->pin_len = 3;
    if ((v = tap_param(a, "pin"))) {
        size_t n = strlen(v);
        if (n < 4 || n > 12 || n % 2 || !parse_bcd(v, p->pin, n / 2))
            return bad_param("pin", "4 to 12 digits, an even number");
        p->pin_len = n / 2;
    }
    p->ppse = true;
    if ((v = tap_param(a, "ppse"))) {
        if (strcmp(v, "yes") && strcmp(v, "no"))
            return bad_param("ppse", "yes (find the purse in the PPSE) or no (select it directly)");
        p->ppse = !strcmp(v, "yes");
    }
    if ((v = tap_param(a, "cut"))) {
        if (!strcmp(v, "debit"))
            p->cut = CUT_DEBIT;
        else if (!strcmp(v, "before-debit"))
            p->cut = CUT_BEFORE_DEBIT;
        else if (strcmp(v, "none"))
            return bad_param("cut", "debit (DEBIT's answer is lost), before-debit or none");
        if (p->cut != CUT_NONE && p->mode == M_LOAD)
            return bad_param("cut", "only a purchase, entry or exit can be cut");
    }
    p->state = tap_param(a, "state");
    return 0;
}

/* ---- the gate's state file ------------------------------------------------------------------ */

/*
 * Text, one KEY=VALUE per line: the PSAM's next terminal sequence number and, while a
 * transaction is pending, what the PSAM needs to check its proof later (the card's file 0x15
 * and the transaction's inputs). The session key is not stored: it is derived again from the
 * PSAM's master key when the file is read.
 */
static void put_hex(FILE *f, const char *key, const uint8_t *b, size_t n)
{
    fprintf(f, "%s=", key);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02X", b[i]);
    fputc('\n', f);
}

static int state_save(const char *path)
{
    if (!path)
        return 0;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp)
        return 1;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "tse-tap: %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return 1;
    }
    fprintf(f, "# tse-tap purse gate state (docs/contactless.md)\n");
    fprintf(f, "term_seq=%lu\n", (unsigned long)gate.psam.term_seq);
    put_hex(f, "terminal", gate.psam.term_id, 6);
    if (gate.pending) {
        const struct tse_wallet_txn *t = &gate.px.t;
        fprintf(f, "pending=%s\n", mode_names[gate.pmode]);
        put_hex(f, "card", gate.pcard.ef15, 30);
        fprintf(f, "type=%02X\nkey_index=%02X\namount=%lu\nseq=%u\nbalance=%lu\n", t->type,
                gate.px.key_index, (unsigned long)t->amount, (unsigned)t->seq,
                (unsigned long)t->balance);
        fprintf(f, "txn_term_seq=%lu\n", (unsigned long)t->term_seq);
        put_hex(f, "term_id", t->term_id, 6);
        put_hex(f, "rand", t->rand, 4);
        put_hex(f, "date", t->date, 4);
        put_hex(f, "time", t->time, 3);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        fprintf(stderr, "tse-tap: cannot write %s\n", path);
        free(tmp);
        return 1;
    }
    free(tmp);
    return 0;
}

static bool parse_num(const char *v, int base, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, base);
    if (!*v || *end || errno || n > max)
        return false;
    *out = n;
    return true;
}

/* One KEY=VALUE line of the state file into gate / the pending transaction. */
static bool state_line(const char *k, const char *v, struct tse_psam_txn *x,
                       struct tse_wallet_card *card, int *pending, bool *have_card)
{
    unsigned long n = 0;
    if (!strcmp(k, "term_seq")) {
        if (!parse_num(v, 10, 0xFFFFFFFFul, &n))
            return false;
        gate.psam.term_seq = (uint32_t)n;
    } else if (!strcmp(k, "terminal")) {
        return parse_hex_exact(v, gate.psam.term_id, 6);
    } else if (!strcmp(k, "pending")) {
        for (int m = 0; m < 4; m++)
            if (!strcmp(v, mode_names[m]))
                *pending = m;
        return *pending >= 0;
    } else if (!strcmp(k, "card")) {
        *have_card = true;
        return parse_hex_exact(v, card->ef15, 30) &&
               tse_wallet_card_parse(card, card->ef15, 30) == 0;
    } else if (!strcmp(k, "type") || !strcmp(k, "key_index")) {
        if (!parse_num(v, 16, 0xFF, &n))
            return false;
        *(!strcmp(k, "type") ? &x->t.type : &x->key_index) = (uint8_t)n;
    } else if (!strcmp(k, "seq")) {
        if (!parse_num(v, 10, 0xFFFF, &n))
            return false;
        x->t.seq = (uint16_t)n;
    } else if (!strcmp(k, "amount") || !strcmp(k, "txn_term_seq") || !strcmp(k, "balance")) {
        if (!parse_num(v, 10, 0xFFFFFFFFul, &n))
            return false;
        *(!strcmp(k, "amount")    ? &x->t.amount
          : !strcmp(k, "balance") ? &x->t.balance
                                  : &x->t.term_seq) = (uint32_t)n;
    } else if (!strcmp(k, "term_id")) {
        return parse_hex_exact(v, x->t.term_id, 6);
    } else if (!strcmp(k, "rand")) {
        return parse_hex_exact(v, x->t.rand, 4);
    } else if (!strcmp(k, "date")) {
        return parse_hex_exact(v, x->t.date, 4);
    } else if (!strcmp(k, "time")) {
        return parse_hex_exact(v, x->t.time, 3);
    } else {
        return false;
    }
    return true;
}

static int state_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0; /* a new gate */
        fprintf(stderr, "tse-tap: %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[256];
    struct tse_psam_txn x;
    struct tse_wallet_card card;
    memset(&x, 0, sizeof(x));
    memset(&card, 0, sizeof(card));
    int pending = -1;
    bool ok = true, have_card = false;
    while (ok && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || !line[0])
            continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            ok = false;
            break;
        }
        *eq = '\0';
        ok = state_line(line, eq + 1, &x, &card, &pending, &have_card);
    }
    fclose(f);
    if (!ok || (pending >= 0 && !have_card)) {
        fprintf(stderr, "tse-tap: %s: not a gate state file\n", path);
        return 1;
    }
    if (pending < 0)
        return 0;
    /* the session key again, from the PSAM's purchase master key */
    uint8_t dpk[16];
    int rc = tse_psam_card_key(&gate.psam, &card, TSE_WALLET_KEY_PURCHASE, x.key_index, dpk);
    if (!rc)
        rc = tse_wallet_purchase_sk(dpk, &x.t, x.sk);
    memset(dpk, 0, sizeof(dpk));
    if (rc) {
        fprintf(stderr, "tse-tap: %s: the PSAM has no key for the pending transaction\n", path);
        return 1;
    }
    x.ready = true;
    gate.px = x;
    gate.pcard = card;
    gate.pmode = (enum purse_mode)pending;
    gate.pending = true;
    return 0;
}

/* ---- the transaction ----------------------------------------------------------------------- */

/* SELECT PPSE and pick the MOT_T_EP entry with the highest priority (87: 1 first; no 87 last).
 * Returns 1 and the AID, 0 when the PPSE has none (or there is no PPSE), < 0 on a link error. */
static int ppse_find(struct tap_session *s, uint8_t aid[16], size_t *aid_len)
{
    uint8_t c[5 + sizeof(ppse_aid) + 1] = {0x00, 0xA4, 0x04, 0x00, sizeof(ppse_aid)};
    memcpy(c + 5, ppse_aid, sizeof(ppse_aid));
    c[sizeof(c) - 1] = 0x00;
    uint8_t r[258];
    size_t n = 0;
    uint16_t sw = 0;
    int rc = xchg(s, c, sizeof(c), r, sizeof(r), &n, &sw);
    if (rc)
        return rc;
    struct tse_tlv fci, a5, dir, e;
    if (sw != SW_NO_ERROR || tse_tlv_find(r, n, 0x6F, &fci) != 1 ||
        tse_tlv_find(fci.value, fci.len, 0xA5, &a5) != 1 ||
        tse_tlv_find(a5.value, a5.len, 0xBF0C, &dir) != 1)
        return 0;
    const uint8_t *p = dir.value;
    size_t left = dir.len;
    unsigned best = 99;
    while (tse_tlv_next(&p, &left, &e) == 1) {
        struct tse_tlv t4f, t50, t87;
        if (e.tag != 0x61 || tse_tlv_find(e.value, e.len, 0x4F, &t4f) != 1 ||
            tse_tlv_find(e.value, e.len, 0x50, &t50) != 1 || t4f.len < 5 || t4f.len > 16 ||
            t50.len != strlen(EP_LABEL) || memcmp(t50.value, EP_LABEL, t50.len))
            continue;
        unsigned prio = 16;
        if (tse_tlv_find(e.value, e.len, 0x87, &t87) == 1 && t87.len == 1 && (t87.value[0] & 0x0F))
            prio = t87.value[0] & 0x0Fu;
        if (prio < best) {
            best = prio;
            memcpy(aid, t4f.value, t4f.len);
            *aid_len = t4f.len;
        }
    }
    return best < 99;
}

static int report_failure(struct tap_session *s, const struct tse_wallet_term *t, const char *what,
                          int rc)
{
    FILE *f = s->a->out;
    fprintf(f, "purse: %s failed: ", what);
    if (rc == TSE_ERR_STATE && t->sw)
        fprintf(f, "%s answered %04X\n", t->step ? t->step : "the card", t->sw);
    else if (rc == TSE_ERR_DENIED)
        fprintf(f, "the PSAM rejects the card's %s\n",
                t->step && !strcmp(t->step, "INITIALIZE FOR LOAD") ? "MAC1" : "MAC2 or TAC");
    else if (rc == TSE_ERR_IO)
        fprintf(f, "the card left the field%s%s\n", t->step ? " during " : "",
                t->step ? t->step : "");
    else
        fprintf(f, "%s%s%s\n", tse_strerror(rc), t->step ? " at " : "", t->step ? t->step : "");
    return 1;
}

static void print_asn(FILE *f, const struct tse_wallet_card *c)
{
    for (size_t i = 0; i < sizeof(c->asn); i++)
        fprintf(f, "%02X", c->asn[i]);
}

static bool same_card(const struct tse_wallet_card *a, const struct tse_wallet_card *b)
{
    return !memcmp(a->issuer_id, b->issuer_id, 8) && !memcmp(a->asn, b->asn, 10);
}

/* BCD dates compare like numbers */
static bool card_valid(const struct tse_wallet_card *c, const uint8_t date[4], FILE *f)
{
    if (memcmp(date, c->start, 4) < 0 || memcmp(date, c->end, 4) > 0) {
        fprintf(f,
                "purse: refused: the application is valid from %02X%02X%02X%02X to "
                "%02X%02X%02X%02X\n",
                c->start[0], c->start[1], c->start[2], c->start[3], c->end[0], c->end[1], c->end[2],
                c->end[3]);
        return false;
    }
    return true;
}

/* The card's proof for the pending transaction: booked (0), or not on the card (1: run the
 * transaction again), or a failure (< 0 / 2). */
static int recover(struct tap_session *s, struct tse_wallet_term *t)
{
    FILE *f = s->a->out;
    uint8_t mac2[4], tac[4];
    uint16_t after = (uint16_t)(gate.px.t.seq + 1);
    fprintf(f, "purse: card ");
    print_asn(f, &t->card);
    fprintf(f, " has a pending %s (counter %04X): asking for its proof\n", mode_names[gate.pmode],
            (unsigned)after);
    term_begin(s);
    int rc = tse_wallet_term_prove(t, gate.px.t.type, after, mac2, tac);
    term_end(s);
    if (rc == TSE_ERR_NOT_FOUND) {
        fprintf(f,
                "purse: the card has no such transaction (%04X): the %s did not reach it; "
                "running it again\n",
                t->sw, mode_names[gate.pmode]);
        gate.pending = false;
        return 1;
    }
    if (rc)
        return report_failure(s, t, "GET TRANSACTION PROVE", rc) + 1;
    term_begin(s);
    int m = tse_psam_purchase_check_mac2(&gate.px, mac2);
    int c = m ? m : tse_psam_check_tac(&gate.psam, &gate.pcard, &gate.px, tac);
    term_end(s);
    if (m || c) {
        fprintf(f, "purse: the PSAM rejects the proof's %s\n", m ? "MAC2" : "TAC");
        return 2;
    }
    uint32_t bal = 0;
    term_begin(s);
    rc = tse_wallet_term_balance(t, &bal);
    term_end(s);
    if (rc)
        return report_failure(s, t, "GET BALANCE", rc) + 1;
    gate.pending = false;
    fprintf(f, "purse: recovered %s ", mode_names[gate.pmode]);
    print_amount(f, gate.px.t.amount);
    fprintf(f,
            " on re-tap: proof for counter %04X, MAC2 and TAC %02X%02X%02X%02X verified; "
            "balance ",
            (unsigned)after, tac[0], tac[1], tac[2], tac[3]);
    print_amount(f, bal);
    fprintf(f, " (was ");
    print_amount(f, gate.px.t.balance);
    fprintf(f, "), not debited again; reader-side work %.3f ms\n", s->host_us / 1000.0);
    return 0;
}

static int run_mode(struct tse_wallet_term *t, const struct purse_params *p,
                    struct tse_wallet_result *res)
{
    switch (p->mode) {
    case M_ENTRY:
        return tse_wallet_term_entry(t, &p->gate, res);
    case M_EXIT:
        return tse_wallet_term_exit(t, &p->gate, p->amount, res);
    case M_PURCHASE:
        return tse_wallet_term_purchase(t, p->amount, res);
    case M_LOAD:
        break;
    }
    return tse_wallet_term_load(t, p->amount, res);
}

static int run_purse(struct tse_tap *tap, const struct tap_args *a)
{
    struct purse_params p;
    if (parse_params(a, &p))
        return 1;
    FILE *f = a->out;
    if (!gate.ready) {
        tse_psam_init(&gate.psam);
        if (tse_psam_load_test_keys(&gate.psam) != 0)
            return 1;
        if (p.have_term)
            tse_psam_set_terminal(&gate.psam, p.term_id, 1);
        if (p.state && state_load(p.state))
            return 1;
        if (p.have_term)
            tse_psam_set_terminal(&gate.psam, p.term_id, gate.psam.term_seq);
        gate.ready = true;
    }
    struct tap_session s = {.tap = tap, .a = a, .cut = a->tap_index == 0 ? p.cut : CUT_NONE};
    struct tse_wallet_term t;
    tse_wallet_term_init(&t, &gate.psam, gate_transmit, &s);
    tse_wallet_term_set_time(&t, p.date, p.time);
    memcpy(t.pin, p.pin, p.pin_len);
    t.pin_len = p.mode == M_LOAD ? p.pin_len : 0;

    /* 1. find the purse: PPSE (label MOT_T_EP), else the EP AID prefix as some readers do */
    uint8_t aid[16];
    size_t aid_len = 0;
    int found = p.ppse ? ppse_find(&s, aid, &aid_len) : 0;
    if (found < 0)
        return report_failure(&s, &t, "SELECT PPSE", found);
    if (!found) {
        memcpy(aid, ep_aid, sizeof(ep_aid));
        aid_len = sizeof(ep_aid);
        if (p.ppse && !a->quiet)
            fprintf(f, "purse: no " EP_LABEL " entry in the PPSE: selecting the EP AID "
                       "A000000632010105\n");
    }
    term_begin(&s);
    int rc = tse_wallet_term_select(&t, aid, aid_len);
    if (!rc && !t.have_card)
        rc = tse_wallet_term_read_card(&t); /* no 9F0C in the FCI */
    term_end(&s);
    if (rc)
        return report_failure(&s, &t, "selecting the purse", rc);
    if (!card_valid(&t.card, p.date, f))
        return 1;

    /* 2. a transaction of this card left pending by a lost DEBIT answer */
    if (gate.pending && same_card(&gate.pcard, &t.card)) {
        rc = recover(&s, &t);
        if (rc == 0)
            return state_save(p.state);
        if (rc != 1)
            return 1;
        if (state_save(p.state))
            return 1;
    } else if (gate.pending) {
        fprintf(f, "purse: another card; the pending %s of card ", mode_names[gate.pmode]);
        print_asn(f, &gate.pcard);
        fprintf(f, " stays pending\n");
    }

    /* 3. what a gate reads: management data (0x17, interoperability), the last public-
     * transport record (0x1E) and, in the terminal library's gate call, the rail record */
    if (p.mode == M_ENTRY || p.mode == M_EXIT) {
        static const uint8_t rd17[5] = {0x00, 0xB0, 0x97, 0x00, 0x3C};
        static const uint8_t rd1e[5] = {0x00, 0xB2, 0x01, 0xF4, 0x30};
        uint8_t r[258];
        size_t n = 0;
        uint16_t sw = 0;
        if ((rc = xchg(&s, rd17, sizeof(rd17), r, sizeof(r), &n, &sw)) != 0)
            return report_failure(&s, &t, "READ BINARY 0x17", rc);
        if (sw != SW_NO_ERROR || n != 60) {
            fprintf(f, "purse: refused: file 0x17 unreadable (%04X)\n", sw);
            return 1;
        }
        if (r[8] == 0x00 && r[9] == 0x00) {
            fprintf(f, "purse: refused: not an interoperable card (0x17 card kind 0000)\n");
            return 1;
        }
        if ((rc = xchg(&s, rd1e, sizeof(rd1e), r, sizeof(r), &n, &sw)) != 0)
            return report_failure(&s, &t, "READ RECORD 0x1E", rc);
        if (sw != SW_NO_ERROR && sw != SW_RECORD_NOT_FOUND) {
            fprintf(f, "purse: refused: file 0x1E unreadable (%04X)\n", sw);
            return 1;
        }
    }

    /* 4. the transaction. A card serving both interfaces refuses a DEBIT or CREDIT (6985,
     * nothing written) when a transaction on its other interface committed since this
     * INITIALIZE; the card is still in the field, so the terminal runs it once more. */
    struct tse_wallet_result res;
    for (int attempt = 0;; attempt++) {
        memset(&res, 0, sizeof(res));
        term_begin(&s);
        rc = run_mode(&t, &p, &res);
        term_end(&s);
        if (attempt > 0 || s.cut_done || rc != TSE_ERR_STATE ||
            t.sw != SW_CONDITIONS_NOT_SATISFIED || !t.step ||
            (strncmp(t.step, "DEBIT", 5) && strncmp(t.step, "CREDIT", 6)))
            break;
        fprintf(f,
                "purse: %s answered 6985 (the purse changed during the transaction): "
                "running it again\n",
                t.step);
    }
    if (rc && s.cut_done) {
        /* the card may have committed: keep what the PSAM needs to check its proof */
        gate.pending = true;
        gate.pmode = p.mode;
        gate.px = t.last;
        gate.pcard = t.card;
        tse_tap_release(tap);
        fprintf(f, "purse: %s interrupted: %s; pending for card ", mode_names[p.mode],
                p.cut == CUT_DEBIT ? "DEBIT's answer was lost" : "the card left before DEBIT");
        print_asn(f, &t.card);
        fprintf(f, ", counter %04X; tap again to complete\n", (unsigned)(t.last.t.seq + 1));
        return state_save(p.state);
    }
    if (rc) {
        report_failure(&s, &t, mode_names[p.mode], rc);
        state_save(p.state);
        return 1;
    }
    fprintf(f, "purse: %s", mode_names[p.mode]);
    if (p.mode == M_ENTRY || p.mode == M_EXIT)
        fprintf(f, " at station %02X%02X", p.gate.station[0], p.gate.station[1]);
    if (p.mode == M_EXIT && s.have_rail && s.rail[14] == 0x01)
        fprintf(f, " (entered at station %02X%02X)", s.rail[41], s.rail[42]);
    else if (p.mode == M_EXIT)
        fprintf(f, " (no entry on the card)");
    if (p.mode != M_ENTRY) {
        fprintf(f, ", %s ", p.mode == M_EXIT ? "fare" : "amount");
        print_amount(f, p.amount);
    }
    fprintf(f, ": balance ");
    print_amount(f, res.balance_before);
    fprintf(f, " -> ");
    print_amount(f, res.balance_after);
    fprintf(f, ", %s counter %04X, %sTAC %02X%02X%02X%02X %s; reader-side work %.3f ms\n",
            p.mode == M_LOAD ? "online" : "offline", (unsigned)(res.seq + 1),
            p.mode == M_LOAD ? "MAC1 and " : "MAC2 and ", res.tac[0], res.tac[1], res.tac[2],
            res.tac[3], res.tac_ok ? "verified" : "NOT verified", s.host_us / 1000.0);
    if (state_save(p.state))
        return 1;
    return res.tac_ok ? 0 : 1;
}

const struct tap_txn tap_txn_purse = {
    .name = "purse",
    .summary = "transit purse terminal with a test PSAM: --param mode=entry|exit|purchase|load, "
               "station=N, fare=, amount=, cut=debit, state=FILE (docs/contactless.md)",
    .run = run_purse,
};
