/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The apdu-shell script engine (docs/apdu-shell.md describes the language).
 *
 * Every line comes from an untrusted file and is fuzzed (tests/fuzz/fuzz_script.c), so the
 * parsers below never trust a length, cap every buffer that input can grow, and report
 * problems as "FILE:LINE: error: ..." instead of stopping.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "shell/script.h"
#include "tse/scp.h"
#include "tse/apdu.h"
#include "tse/cap.h"
#include "tse/error.h"
#include "tse/tlv.h"
#include "tse/wallet.h"

#define INCLUDE_MAX 16
#define VARS_MAX    1024
/* All variables together, so that a script cannot make the engine hold gigabytes. */
#define VARS_BYTES_MAX (16u << 20)
/* Two full responses: enough for `let X = $R $R` without letting a script eat memory. */
#define VALUE_MAX (2u * TSE_RAPDU_MAX)
/* Longest source line and longest line after variable expansion. */
#define TEXT_MAX (1u << 20)
/* Extended case 4 with 65535 data bytes is 65544 bytes; a little more so that testers can
 * send oversized commands and watch the card reject them. */
#define CAPDU_MAX 65600u
#define ATR_CAP   256u

struct loc {
    const char *file;
    unsigned line;
};

struct var {
    char *name;
    uint8_t *v;
    size_t len;
};

struct tse_script {
    const struct tse_target_ops *ops;
    void *t;
    FILE *out, *err;
    bool timing, trace, stop_on_fail, auto_power, output;

    int iface;
    uint8_t channel[TSE_IF_COUNT];
    /* What the engine believes, for targets that have no is_powered(). */
    bool powered[TSE_IF_COUNT];
    /* auto_power only ever powers an interface once: after a power cut or `power off` the
     * script must power it on itself, or the card's recovery would go untested. */
    bool ever_powered[TSE_IF_COUNT];
    uint8_t atr[TSE_IF_COUNT][ATR_CAP];
    size_t atr_len[TSE_IF_COUNT];
    bool have_atr[TSE_IF_COUNT];

    uint8_t *cbuf; /* CAPDU_MAX */
    uint8_t *rbuf; /* TSE_RAPDU_MAX, also the last response ($R, $SW) */
    size_t rlen;
    bool have_last;

    struct var *vars;
    size_t nvars;
    size_t var_bytes;

    struct tse_script_stats st;
    /* Host side of secure channels opened with `auth`, per interface and logical channel. */
    struct tse_scp_session (*scp)[TSE_MAX_CHANNELS];
    bool scp_on[TSE_IF_COUNT][TSE_MAX_CHANNELS];
    /* AID of the last successful SELECT by name per channel (len 0: unknown), the default
     * security domain of `load` */
    struct tse_aid selected[TSE_IF_COUNT][TSE_MAX_CHANNELS];
    uint8_t *wbuf; /* wrapped command / unwrapped response scratch, TSE_RAPDU_MAX + 64 */

    /* `wallet`: the simulated terminal and its PSAM, created on first use */
    struct tse_psam *psam;
    struct tse_wallet_term *wterm;
    const struct loc *wloc; /* the line of the `wallet` command being run */

    unsigned depth; /* nested streams (include) */
    unsigned busy;  /* active public entry points */
    bool exit_req;
    bool unwind; /* an include loop was found: leave every nested file */
};

static const char *const iface_names[TSE_IF_COUNT] = {"contact", "contactless"};

/* ---- Small text helpers (ASCII only: scripts must not depend on the locale) ------------- */

static bool is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool is_name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_ws(const char *p)
{
    while (is_blank((unsigned char)*p))
        p++;
    return p;
}

static size_t word_len(const char *p)
{
    size_t n = 0;
    while (p[n] && !is_blank((unsigned char)p[n]))
        n++;
    return n;
}

static size_t name_len(const char *p)
{
    size_t n = 0;
    if (!is_name_start((unsigned char)p[0]))
        return 0;
    while (is_name_char((unsigned char)p[n]))
        n++;
    return n;
}

/* Case-insensitive comparison of the word p[0..n) with a keyword. */
static bool kw(const char *p, size_t n, const char *k)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (!k[i] || lower((unsigned char)p[i]) != k[i])
            return false;
    }
    return k[n] == '\0';
}

static void rtrim(char *p)
{
    size_t n = strlen(p);
    while (n > 0 && is_blank((unsigned char)p[n - 1]))
        p[--n] = '\0';
}

/*
 * Cut a trailing comment: `#` or `//` at the start or after a blank, outside double quotes
 * (apdutool's echo text is quoted). `anywhere` also cuts when no blank precedes, for text
 * such as hex where neither character can be meant literally.
 */
static void strip_comment(char *p, bool anywhere)
{
    bool quoted = false;
    size_t i;
    for (i = 0; p[i]; i++) {
        if (p[i] == '"') {
            quoted = !quoted;
            continue;
        }
        if (quoted)
            continue;
        if (p[i] != '#' && !(p[i] == '/' && p[i + 1] == '/'))
            continue;
        if (anywhere || i == 0 || is_blank((unsigned char)p[i - 1])) {
            p[i] = '\0';
            break;
        }
    }
    rtrim(p);
}

/* Growable string capped at TEXT_MAX; `bad` latches on overflow or allocation failure. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool bad;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (n > TEXT_MAX - b->len) {
        b->bad = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 128;
        char *np;
        while (nc < b->len + n + 1)
            nc *= 2;
        np = realloc(b->p, nc);
        if (!np) {
            b->bad = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add_hex(struct sbuf *b, const uint8_t *v, size_t len)
{
    char tmp[2 * 64 + 1];
    while (len > 0 && !b->bad) {
        size_t n = len > 64 ? 64 : len;
        tse_hex_encode(v, n, tmp);
        sb_add(b, tmp, 2 * n);
        v += n;
        len -= n;
    }
}

static const char *sb_str(const struct sbuf *b)
{
    return b->p ? b->p : "";
}

static void sb_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static char *dup_str(const char *p)
{
    size_t n = strlen(p);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, p, n + 1);
    return d;
}

static void print_hex(FILE *f, const uint8_t *v, size_t len)
{
    char tmp[2 * 64 + 1];
    while (len > 0) {
        size_t n = len > 64 ? 64 : len;
        tse_hex_encode(v, n, tmp);
        fputs(tmp, f);
        v += n;
        len -= n;
    }
}

/* "DATA SW" or just "SW", the form used by `<-` lines and failed expectations. */
static void print_rapdu(FILE *f, const uint8_t *r, size_t len)
{
    if (len <= 2) {
        print_hex(f, r, len);
        return;
    }
    print_hex(f, r, len - 2);
    fputc(' ', f);
    print_hex(f, r + len - 2, 2);
}

/* ---- Messages ----------------------------------------------------------------------------- */

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

static int fail(struct tse_script *s, const struct loc *l, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Report an erroneous line and count it; returns 1 so callers can `return fail(...)`. */
static int fail(struct tse_script *s, const struct loc *l, const char *fmt, ...)
{
    va_list ap;
    fprintf(s->err, "%s:%u: error: ", l->file, l->line);
    va_start(ap, fmt);
    vfprintf(s->err, fmt, ap);
    va_end(ap);
    fputc('\n', s->err);
    fflush(s->err);
    s->st.failures++;
    return 1;
}

static int target_fail(struct tse_script *s, const struct loc *l, const char *cmd, int rc)
{
    const char *detail = s->ops->last_error ? s->ops->last_error(s->t) : NULL;
    if (detail && *detail)
        return fail(s, l, "%s: %s (%s)", cmd, tse_strerror(rc), detail);
    return fail(s, l, "%s: %s", cmd, tse_strerror(rc));
}

static int unsupported(struct tse_script *s, const struct loc *l, const char *cmd)
{
    return fail(s, l, "%s: not supported by this target", cmd);
}

static int powered_off(struct tse_script *s, const struct loc *l)
{
    return fail(s, l, "card is powered off (%s interface): use 'power on' or 'reset'",
                iface_names[s->iface]);
}

static void trace_prefix(struct tse_script *s, uint8_t ch)
{
    if (s->trace)
        fprintf(s->out, "[%s ch%u] ", iface_names[s->iface], (unsigned)ch);
}

/* ---- Variables ---------------------------------------------------------------------------- */

static struct var *var_find(struct tse_script *s, const char *name, size_t n)
{
    size_t i;
    for (i = 0; i < s->nvars; i++) {
        if (strlen(s->vars[i].name) == n && memcmp(s->vars[i].name, name, n) == 0)
            return &s->vars[i];
    }
    return NULL;
}

/* 0, or a static reason. */
static const char *var_set(struct tse_script *s, const char *name, size_t n, const uint8_t *v,
                           size_t len)
{
    struct var *x = var_find(s, name, n);
    uint8_t *copy;
    if (len > VARS_BYTES_MAX - s->var_bytes + (x ? x->len : 0))
        return "variables use too much memory";
    copy = malloc(len ? len : 1);
    if (!copy)
        return "out of memory";
    if (len)
        memcpy(copy, v, len);
    if (!x) {
        struct var *nv;
        char *nm;
        if (s->nvars >= VARS_MAX) {
            free(copy);
            return "too many variables";
        }
        nv = realloc(s->vars, (s->nvars + 1) * sizeof(*nv));
        if (!nv) {
            free(copy);
            return "out of memory";
        }
        s->vars = nv;
        nm = malloc(n + 1);
        if (!nm) {
            free(copy);
            return "out of memory";
        }
        memcpy(nm, name, n);
        nm[n] = '\0';
        x = &s->vars[s->nvars++];
        x->name = nm;
        x->v = NULL;
        x->len = 0;
    }
    s->var_bytes = s->var_bytes - x->len + len;
    free(x->v);
    x->v = copy;
    x->len = len;
    return NULL;
}

/* Optional signed decimal, bounded so that it never overflows. */
static bool parse_index(const char **pp, long *v, bool *present)
{
    const char *p = *pp;
    bool neg = false;
    long x = 0;
    *present = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        if (x > 100000000L)
            return false;
        x = x * 10 + (*p - '0');
        *present = true;
        p++;
    }
    if (neg && !*present)
        return false;
    *v = neg ? -x : x;
    *pp = p;
    return true;
}

/* Replace $NAME, ${NAME}, $R, $SW and their [a:b] slices by upper-case hex digits. A `$` not
 * followed by a name stays literal so that echo can print prices and the like. */
static int expand(struct tse_script *s, const struct loc *l, const char *in, struct sbuf *out)
{
    const char *p = in;
    sb_add(out, "", 0);
    while (*p) {
        const char *q, *name;
        size_t n;
        const uint8_t *v;
        size_t len;
        uint8_t sw[2];

        if (*p != '$') {
            const char *d = strchr(p, '$');
            size_t k = d ? (size_t)(d - p) : strlen(p);
            sb_add(out, p, k);
            p += k;
            continue;
        }
        q = p + 1;
        if (*q == '{') {
            name = q + 1;
            n = name_len(name);
            if (n == 0 || name[n] != '}')
                return fail(s, l, "bad variable reference '%.40s'", p);
            q = name + n + 1;
        } else if (is_name_start((unsigned char)*q)) {
            name = q;
            n = name_len(q);
            q += n;
        } else {
            sb_add(out, "$", 1);
            p++;
            continue;
        }

        if (n == 1 && name[0] == 'R') {
            if (!s->have_last)
                return fail(s, l, "$R: no response yet");
            v = s->rbuf;
            len = s->rlen - 2;
        } else if (n == 2 && name[0] == 'S' && name[1] == 'W') {
            if (!s->have_last)
                return fail(s, l, "$SW: no response yet");
            sw[0] = s->rbuf[s->rlen - 2];
            sw[1] = s->rbuf[s->rlen - 1];
            v = sw;
            len = 2;
        } else {
            struct var *x = var_find(s, name, n);
            if (!x)
                return fail(s, l, "unknown variable $%.*s", (int)(n > 64 ? 64 : n), name);
            v = x->v;
            len = x->len;
        }

        if (*q == '[') {
            long a = 0, b = (long)len;
            bool ha, hb = false, colon = false;
            const char *open = q;
            q++;
            if (!parse_index(&q, &a, &ha))
                return fail(s, l, "bad slice '%.40s'", open);
            if (*q == ':') {
                colon = true;
                q++;
                if (!parse_index(&q, &b, &hb))
                    return fail(s, l, "bad slice '%.40s'", open);
            }
            if (*q != ']' || (!colon && !ha))
                return fail(s, l, "bad slice '%.40s'", open);
            q++;
            if (!ha)
                a = 0;
            if (a < 0)
                a += (long)len;
            if (!colon)
                b = a + 1;
            else if (!hb)
                b = (long)len;
            else if (b < 0)
                b += (long)len;
            if (a < 0 || b < a || b > (long)len)
                return fail(s, l, "$%.*s%.*s: slice out of range (%zu bytes)",
                            (int)(n > 64 ? 64 : n), name, (int)(q - open), open, len);
            v += a;
            len = (size_t)(b - a);
        }
        sb_add_hex(out, v, len);
        p = q;
    }
    if (out->bad)
        return fail(s, l, "line longer than %u characters after variable expansion",
                    (unsigned)TEXT_MAX);
    return 0;
}

/*
 * Decode hex (blanks allowed) with a precise message. The library's decoder does the work;
 * the scan only tells "bad character" from "odd digit count" for the user.
 */
static int decode_hex(struct tse_script *s, const struct loc *l, const char *what, const char *hex,
                      uint8_t *out, size_t cap, size_t *len)
{
    const char *p;
    size_t digits = 0;
    int rc;
    for (p = hex; *p; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        if (tse_hex_digit((unsigned char)*p) < 0) {
            unsigned char c = (unsigned char)*p;
            if (c >= 0x20 && c < 0x7f)
                return fail(s, l, "%s: unexpected character '%c'", what, c);
            return fail(s, l, "%s: unexpected byte 0x%02X", what, c);
        }
        digits++;
    }
    if (digits % 2)
        return fail(s, l, "%s: odd number of hex digits (%zu)", what, digits);
    rc = tse_hex_decode(hex, out, cap);
    if (rc == TSE_ERR_BUFFER_TOO_SMALL)
        return fail(s, l, "%s: longer than %zu bytes", what, cap);
    if (rc < 0)
        return fail(s, l, "%s: %s", what, tse_strerror(rc));
    *len = (size_t)rc;
    return 0;
}

/* ---- Expectations ------------------------------------------------------------------------- */

struct pel {
    uint8_t v, m; /* byte matches when (actual & m) == v */
    bool star;
};

/* 0 on success; -1 malformed; -2 out of memory. */
static int pattern_parse(const char *pat, struct pel **out, size_t *count)
{
    size_t n = 0, cap = strlen(pat) / 2 + 2;
    struct pel *e = malloc(cap * sizeof(*e));
    bool half = false;
    uint8_t v = 0, m = 0;
    const char *p;
    if (!e)
        return -2;
    for (p = pat; *p; p++) {
        int c = (unsigned char)*p, h;
        uint8_t nv, nm;
        if (is_blank(c))
            continue;
        if (c == '*') {
            /* `*` stands for whole bytes, so it cannot split one. */
            if (half)
                goto bad;
            if (n == 0 || !e[n - 1].star) {
                if (n >= cap)
                    goto bad;
                e[n].v = e[n].m = 0;
                e[n++].star = true;
            }
            continue;
        }
        if (c == 'X' || c == 'x') {
            nv = 0;
            nm = 0;
        } else if ((h = tse_hex_digit(c)) >= 0) {
            nv = (uint8_t)h;
            nm = 0xF;
        } else {
            goto bad;
        }
        if (!half) {
            v = (uint8_t)(nv << 4);
            m = (uint8_t)(nm << 4);
            half = true;
        } else {
            if (n >= cap)
                goto bad;
            e[n].v = (uint8_t)(v | nv);
            e[n].m = (uint8_t)(m | nm);
            e[n++].star = false;
            half = false;
        }
    }
    if (half || n == 0)
        goto bad;
    *out = e;
    *count = n;
    return 0;
bad:
    free(e);
    return -1;
}

int tse_expect_match(const char *pattern, const uint8_t *actual, size_t len)
{
    struct pel *e;
    size_t n, p = 0, a = 0, star_p = SIZE_MAX, star_a = 0;
    int rc;
    if (!pattern || (!actual && len))
        return -1;
    rc = pattern_parse(pattern, &e, &n);
    if (rc)
        return -1;
    /* Wildcard matching with backtracking to the last star: O(len * n) at worst. */
    while (a < len) {
        if (p < n && !e[p].star && (actual[a] & e[p].m) == e[p].v) {
            p++;
            a++;
        } else if (p < n && e[p].star) {
            star_p = p++;
            star_a = a;
        } else if (star_p != SIZE_MAX) {
            p = star_p + 1;
            a = ++star_a;
        } else {
            free(e);
            return 0;
        }
    }
    while (p < n && e[p].star)
        p++;
    free(e);
    return p == n;
}

/* ---- Power and exchanges -------------------------------------------------------------------- */

static bool is_powered(struct tse_script *s, int iface)
{
    if (s->ops->is_powered)
        return s->ops->is_powered(s->t, iface);
    return s->powered[iface];
}

static void print_atr(struct tse_script *s)
{
    fputs(s->iface == TSE_IF_CONTACT ? "ATR: " : "ATS: ", s->out);
    print_hex(s->out, s->atr[s->iface], s->atr_len[s->iface]);
    fputc('\n', s->out);
}

/* A power event ends every session on the interface, logical channels included. The silent
 * power on before a first APDU keeps the channel a script chose with `channel use`. */
static void powered_now(struct tse_script *s, int iface, bool on, bool keep_channel)
{
    /* any power event ends the card's secure sessions on that interface */
    for (int c = 0; c < TSE_MAX_CHANNELS; c++) {
        s->scp_on[iface][c] = false;
        s->selected[iface][c].len = 0;
    }
    s->powered[iface] = on;
    if (!keep_channel)
        s->channel[iface] = 0;
    if (on)
        s->ever_powered[iface] = true;
}

static int store_atr(struct tse_script *s, const struct loc *l, const char *cmd, int rc, size_t len,
                     bool quiet)
{
    if (rc)
        return target_fail(s, l, cmd, rc);
    if (len > ATR_CAP)
        return fail(s, l, "%s: the target returned %zu bytes of ATR/ATS", cmd, len);
    s->atr_len[s->iface] = len;
    s->have_atr[s->iface] = true;
    powered_now(s, s->iface, true, quiet);
    if (!quiet)
        print_atr(s);
    return 0;
}

static int do_power_on(struct tse_script *s, const struct loc *l, const char *cmd, bool quiet)
{
    size_t len = 0;
    int rc;
    if (!s->ops->power_on)
        return unsupported(s, l, cmd);
    rc = s->ops->power_on(s->t, s->iface, s->atr[s->iface], ATR_CAP, &len);
    return store_atr(s, l, cmd, rc, len, quiet);
}

static int do_reset(struct tse_script *s, const struct loc *l)
{
    size_t len = 0;
    int rc;
    /* A reset of a card that is off is what a reader does: a cold reset. */
    if (!is_powered(s, s->iface))
        return do_power_on(s, l, "reset", false);
    if (!s->ops->reset)
        return unsupported(s, l, "reset");
    rc = s->ops->reset(s->t, s->iface, s->atr[s->iface], ATR_CAP, &len);
    return store_atr(s, l, "reset", rc, len, false);
}

static int do_power_off(struct tse_script *s, const struct loc *l, const char *cmd)
{
    int rc;
    if (!s->ops->power_off)
        return unsupported(s, l, cmd);
    rc = s->ops->power_off(s->t, s->iface);
    if (rc)
        return target_fail(s, l, cmd, rc);
    powered_now(s, s->iface, false, false);
    s->have_atr[s->iface] = false;
    return 0;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void expect_failed(struct tse_script *s, const struct loc *l, const char *pattern)
{
    fprintf(s->err, "%s:%u: expected %s\n", l->file, l->line, pattern);
    fprintf(s->err, "%s:%u: actual   ", l->file, l->line);
    if (s->have_last)
        print_rapdu(s->err, s->rbuf, s->rlen);
    else
        fputs("TORN (no response: power cut during a store write)", s->err);
    fputc('\n', s->err);
    fflush(s->err);
    s->st.failures++;
}

/* After a successful SELECT by name: the AID the card reports in its FCI (6F { 84 AID }),
 * else the one the command named. */
static void note_selected(struct tse_script *s, uint8_t ch, const uint8_t *c, size_t clen)
{
    struct tse_aid *sel = &s->selected[s->iface][ch];
    struct tse_tlv fci, df;
    struct tse_apdu a;
    sel->len = 0;
    if (s->rlen > 2 && tse_tlv_find(s->rbuf, s->rlen - 2, 0x6F, &fci) == 1 &&
        tse_tlv_find(fci.value, fci.len, 0x84, &df) == 1 && df.len >= TSE_AID_MIN &&
        df.len <= TSE_AID_MAX) {
        tse_aid_set(sel, df.value, df.len);
        return;
    }
    if (tse_apdu_parse(c, clen, &a) == 0 && a.lc >= TSE_AID_MIN && a.lc <= TSE_AID_MAX)
        tse_aid_set(sel, a.data, a.lc);
}

/*
 * Send c[0..clen) on logical channel `ch` of the current interface and check the response
 * against `expect` (already expanded and validated; NULL = none) or the TORN keyword.
 * c is modified in place when the channel bits of CLA are rewritten.
 */
static int exchange(struct tse_script *s, const struct loc *l, uint8_t *c, size_t clen, uint8_t ch,
                    const char *expect, bool expect_torn, const char *cmd)
{
    struct timespec t0;
    size_t rlen = 0;
    double ms;
    int rc, i;

    if (!s->ops->transmit)
        return unsupported(s, l, cmd);
    if (!is_powered(s, s->iface)) {
        if (!s->auto_power || s->ever_powered[s->iface])
            return powered_off(s, l);
        if (do_power_on(s, l, "power on", true))
            return 1;
    }
    if (ch != 0) {
        int cla = tse_cla_with_channel(c[0], ch);
        if (cla < 0 || cla > 0xFF)
            return fail(s, l, "CLA %02X cannot address logical channel %u", c[0], (unsigned)ch);
        c[0] = (uint8_t)cla;
    }
    if (s->output) {
        trace_prefix(s, ch);
        fputs("-> ", s->out);
        print_hex(s->out, c, clen);
        fputc('\n', s->out);
        fflush(s->out);
    }
    /* MANAGE CHANNEL, GET RESPONSE and SELECT by name belong to the card's OS, not to the
     * security domain: hosts never put them in the secure channel. A SELECT also ends the
     * channel's session on the card (GlobalPlatform), so it ends here too. */
    bool select = clen >= 3 && !(c[0] & 0x80) && c[1] == 0xA4 && c[2] == 0x04;
    bool os_cmd = clen >= 2 && !(c[0] & 0x80) && (c[1] == 0x70 || c[1] == 0xC0 || select);
    struct tse_scp_session *sc = s->scp_on[s->iface][ch] && !os_cmd ? &s->scp[s->iface][ch] : NULL;
    const uint8_t *wire = c;
    size_t wlen = clen;
    if (sc) {
        rc = tse_scp_host_wrap(sc, c, clen, s->wbuf, TSE_RAPDU_MAX + 64, &wlen);
        if (rc)
            return fail(s, l, "%s: cannot protect this command in the secure channel: %s", cmd,
                        tse_strerror(rc));
        wire = s->wbuf;
        if (s->output && s->trace) {
            trace_prefix(s, ch);
            fputs("   wire ", s->out);
            print_hex(s->out, wire, wlen);
            fputc('\n', s->out);
        }
    }

    s->have_last = false;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = s->ops->transmit(s->t, s->iface, wire, wlen, s->rbuf, TSE_RAPDU_MAX, &rlen);
    ms = ms_since(&t0);
    s->st.exchanges++;

    if (rc == TSE_ERR_TORN) {
        /* A power cut turns every interface off. */
        for (i = 0; i < TSE_IF_COUNT; i++) {
            powered_now(s, i, false, false);
            s->have_atr[i] = false;
        }
        if (s->output) {
            trace_prefix(s, ch);
            fputs("<- (no response: power cut during a store write; the card is off)", s->out);
            if (s->timing)
                fprintf(s->out, "  (%.3f ms)", ms);
            fputc('\n', s->out);
        }
        if (expect_torn) {
            s->st.expectations++;
        } else if (expect) {
            s->st.expectations++;
            expect_failed(s, l, expect);
            return 1;
        }
        return 0;
    }
    if (rc == TSE_ERR_POWERED_OFF) {
        s->powered[s->iface] = false;
        return powered_off(s, l);
    }
    if (rc)
        return target_fail(s, l, cmd, rc);
    if (rlen < 2 || rlen > TSE_RAPDU_MAX)
        return fail(s, l, "%s: the target returned a response of %zu bytes", cmd, rlen);
    if (sc) {
        size_t plen;
        if (s->output && s->trace) {
            trace_prefix(s, ch);
            fputs("   wire ", s->out);
            print_rapdu(s->out, s->rbuf, rlen);
            fputc('\n', s->out);
        }
        rc = tse_scp_host_unwrap(sc, s->rbuf, rlen, s->wbuf, TSE_RAPDU_MAX + 64, &plen);
        if (rc) {
            s->scp_on[s->iface][ch] = false;
            return fail(s, l, "%s: %s; secure channel closed", cmd,
                        sc->why ? sc->why : tse_strerror(rc));
        }
        memcpy(s->rbuf, s->wbuf, plen);
        rlen = plen;
        if (rlen == 2 && s->rbuf[0] == 0x69 && s->rbuf[1] == 0x82) {
            /* the card rejected the protection and closed its side of the session */
            s->scp_on[s->iface][ch] = false;
            if (s->output)
                fputs("   (6982: the card closed the secure channel)\n", s->out);
        }
    }
    s->rlen = rlen;
    s->have_last = true;
    if (select && (s->rbuf[rlen - 2] == 0x90 || s->rbuf[rlen - 2] == 0x62))
        note_selected(s, ch, c, clen);
    if (select && s->scp_on[s->iface][ch] &&
        (s->rbuf[rlen - 2] == 0x90 || s->rbuf[rlen - 2] == 0x62)) {
        /* a successful SELECT ends the session on the card; a failed one changes nothing */
        s->scp_on[s->iface][ch] = false;
        if (s->output)
            fputs("   (SELECT: the secure channel on this channel ends)\n", s->out);
    }

    if (s->output) {
        trace_prefix(s, ch);
        fputs("<- ", s->out);
        print_rapdu(s->out, s->rbuf, rlen);
        if (s->timing)
            fprintf(s->out, "  (%.3f ms)", ms);
        fputc('\n', s->out);
        fflush(s->out);
    }
    if (expect_torn) {
        s->st.expectations++;
        expect_failed(s, l, "TORN");
        return 1;
    }
    if (expect) {
        s->st.expectations++;
        if (tse_expect_match(expect, s->rbuf, rlen) != 1) {
            expect_failed(s, l, expect);
            return 1;
        }
    }
    return 0;
}

static uint16_t last_sw(const struct tse_script *s)
{
    return (uint16_t)(s->rbuf[s->rlen - 2] << 8 | s->rbuf[s->rlen - 1]);
}

/* `HEX [=> EXPECT]` */
static int exec_apdu(struct tse_script *s, const struct loc *l, char *line)
{
    struct sbuf apdu = {0}, pat = {0};
    char *arrow;
    const char *expect = NULL;
    bool torn = false;
    size_t clen = 0;
    int rc = 1;

    strip_comment(line, true);
    arrow = strstr(line, "=>");
    if (arrow) {
        const char *e = skip_ws(arrow + 2);
        *arrow = '\0';
        if (!*e) {
            rc = fail(s, l, "nothing after '=>'");
            goto out;
        }
        if (kw(e, strlen(e), "torn")) {
            torn = true;
        } else {
            if (expand(s, l, e, &pat))
                goto out;
            rtrim(pat.p);
            if (tse_expect_match(pat.p, NULL, 0) < 0) {
                rc = fail(s, l, "malformed expectation '%.200s'", pat.p);
                goto out;
            }
            expect = pat.p;
        }
    }
    if (expand(s, l, line, &apdu))
        goto out;
    if (decode_hex(s, l, "APDU", sb_str(&apdu), s->cbuf, CAPDU_MAX, &clen))
        goto out;
    if (clen == 0) {
        rc = fail(s, l, "empty APDU");
        goto out;
    }
    rc = exchange(s, l, s->cbuf, clen, s->channel[s->iface], expect, torn, "transmit");
out:
    sb_free(&apdu);
    sb_free(&pat);
    return rc;
}

/* ---- Commands ----------------------------------------------------------------------------- */

static bool parse_u64(const char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;
    if (n == 0)
        return false;
    if (n > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (n - 2 > 16)
            return false;
        for (i = 2; i < n; i++) {
            int h = tse_hex_digit((unsigned char)p[i]);
            if (h < 0)
                return false;
            x = x << 4 | (uint64_t)h;
        }
        *v = x;
        return true;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (x > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    *v = x;
    return true;
}

/* Next blank-separated word of *p; false at the end of the line. */
static bool next_word(const char **p, const char **w, size_t *n)
{
    const char *q = skip_ws(*p);
    if (!*q)
        return false;
    *w = q;
    *n = word_len(q);
    *p = q + *n;
    return true;
}

static int no_more(struct tse_script *s, const struct loc *l, const char *cmd, const char *rest)
{
    const char *q = skip_ws(rest);
    if (*q)
        return fail(s, l, "%s: unexpected argument '%.*s'", cmd,
                    (int)(word_len(q) > 40 ? 40 : word_len(q)), q);
    return 0;
}

/* `on|off` for trace, timing and output. */
static int cmd_flag(struct tse_script *s, const struct loc *l, const char *cmd, const char *rest,
                    bool *flag)
{
    const char *w;
    size_t n;
    if (!next_word(&rest, &w, &n) || !(kw(w, n, "on") || kw(w, n, "off")))
        return fail(s, l, "%s: expected 'on' or 'off'", cmd);
    if (no_more(s, l, cmd, rest))
        return 1;
    *flag = kw(w, n, "on");
    return 0;
}

static int cmd_power(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w;
    size_t n;
    if (!next_word(&rest, &w, &n) || !(kw(w, n, "on") || kw(w, n, "off")))
        return fail(s, l, "power: expected 'on' or 'off'");
    if (no_more(s, l, "power", rest))
        return 1;
    if (kw(w, n, "on"))
        return do_power_on(s, l, "power on", false);
    return do_power_off(s, l, "power off");
}

static int cmd_atr(struct tse_script *s, const struct loc *l, const char *rest)
{
    struct tse_cl_params cp;
    int rc;
    if (no_more(s, l, "atr", rest))
        return 1;
    if (!is_powered(s, s->iface) && do_power_on(s, l, "atr", true))
        return 1;
    if (s->iface == TSE_IF_CONTACT) {
        if (!s->have_atr[s->iface]) {
            fputs("ATR: (unknown: the card was powered outside this script)\n", s->out);
            return 0;
        }
        print_atr(s);
        return 0;
    }
    if (!s->ops->cl_params)
        return unsupported(s, l, "atr");
    memset(&cp, 0, sizeof(cp));
    rc = s->ops->cl_params(s->t, &cp);
    if (rc)
        return target_fail(s, l, "atr", rc);
    fputs("UID: ", s->out);
    print_hex(s->out, cp.uid, cp.uid_len < sizeof(cp.uid) ? cp.uid_len : sizeof(cp.uid));
    fputs("\nATQA: ", s->out);
    print_hex(s->out, cp.atqa, 2);
    fputs("\nSAK: ", s->out);
    print_hex(s->out, &cp.sak, 1);
    fputs("\nATS: ", s->out);
    print_hex(s->out, cp.ats, cp.ats_len < sizeof(cp.ats) ? cp.ats_len : sizeof(cp.ats));
    fputc('\n', s->out);
    return 0;
}

static int cmd_interface(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w;
    size_t n;
    if (!next_word(&rest, &w, &n)) {
        fprintf(s->out, "interface: %s\n", iface_names[s->iface]);
        return 0;
    }
    if (no_more(s, l, "interface", rest))
        return 1;
    if (kw(w, n, "contact"))
        s->iface = TSE_IF_CONTACT;
    else if (kw(w, n, "contactless"))
        s->iface = TSE_IF_CONTACTLESS;
    else
        return fail(s, l, "interface: expected 'contact' or 'contactless'");
    return 0;
}

static int parse_channel(struct tse_script *s, const struct loc *l, const char *cmd, const char *w,
                         size_t n, uint8_t *ch)
{
    uint64_t v;
    if (!parse_u64(w, n, &v) || v >= TSE_MAX_CHANNELS)
        return fail(s, l, "%s: channel must be 0..%d", cmd, TSE_MAX_CHANNELS - 1);
    *ch = (uint8_t)v;
    return 0;
}

static int cmd_channel(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w, *a;
    size_t n, an;
    uint8_t ch = 0;
    if (!next_word(&rest, &w, &n)) {
        fprintf(s->out, "channel: %u\n", (unsigned)s->channel[s->iface]);
        return 0;
    }
    if (kw(w, n, "open")) {
        /* MANAGE CHANNEL always goes on the basic channel: it must work whatever is open. */
        uint8_t c[5] = {0x00, 0x70, 0x00, 0x00, 0x01};
        uint16_t sw;
        if (no_more(s, l, "channel open", rest))
            return 1;
        if (exchange(s, l, c, sizeof(c), 0, NULL, false, "channel open"))
            return 1;
        if (!s->have_last)
            return fail(s, l, "channel open: no response (power cut)");
        sw = last_sw(s);
        if (sw != 0x9000)
            return fail(s, l, "channel open: the card answered %04X", (unsigned)sw);
        if (s->rlen != 3 || s->rbuf[0] == 0 || s->rbuf[0] >= TSE_MAX_CHANNELS)
            return fail(s, l, "channel open: the card did not return a channel number 1..%d",
                        TSE_MAX_CHANNELS - 1);
        s->channel[s->iface] = s->rbuf[0];
        fprintf(s->out, "channel %u opened\n", (unsigned)s->rbuf[0]);
        return 0;
    }
    if (kw(w, n, "close")) {
        uint8_t c[5] = {0x00, 0x70, 0x80, 0x00, 0x00};
        uint16_t sw;
        ch = s->channel[s->iface];
        if (next_word(&rest, &a, &an) && parse_channel(s, l, "channel close", a, an, &ch))
            return 1;
        if (no_more(s, l, "channel close", rest))
            return 1;
        c[3] = ch;
        if (exchange(s, l, c, sizeof(c), 0, NULL, false, "channel close"))
            return 1;
        if (!s->have_last)
            return fail(s, l, "channel close: no response (power cut)");
        sw = last_sw(s);
        if (sw != 0x9000)
            return fail(s, l, "channel close: the card answered %04X", (unsigned)sw);
        if (s->channel[s->iface] == ch)
            s->channel[s->iface] = 0;
        s->selected[s->iface][ch].len = 0;
        fprintf(s->out, "channel %u closed\n", (unsigned)ch);
        return 0;
    }
    if (kw(w, n, "use")) {
        if (!next_word(&rest, &a, &an))
            return fail(s, l, "channel use: missing channel number");
        if (parse_channel(s, l, "channel use", a, an, &ch) || no_more(s, l, "channel use", rest))
            return 1;
        s->channel[s->iface] = ch;
        return 0;
    }
    return fail(s, l, "channel: expected 'open', 'close [N]' or 'use N'");
}

/* `auth [scp02|scp03] [kvn N] [level L] [key HEX | enc HEX mac HEX dek HEX] [i HEX]
 *       [challenge HEX]` and `auth off`: open (or forget) a secure channel on the current
 * interface and channel; later APDUs there are wrapped and their responses unwrapped. */
static int cmd_auth(struct tse_script *s, const struct loc *l, const char *rest)
{
    struct tse_scp_keys k = {.scp = 3, .i = 0x70, .key_len = 16};
    uint8_t kvn = 0, level = TSE_SL_CMAC, chal[16];
    bool have_chal = false, have_i = false;
    int div = TSE_DIV_NONE;
    size_t chal_len = 0;
    const char *w, *v;
    size_t n, vn;
    for (int b = 0; b < 16; b++)
        k.enc[b] = k.mac[b] = k.dek[b] = (uint8_t)(0x40 + b);
    uint8_t ch = s->channel[s->iface];
    while (next_word(&rest, &w, &n)) {
        if (kw(w, n, "off") || kw(w, n, "close")) {
            s->scp_on[s->iface][ch] = false;
            return no_more(s, l, "auth off", rest);
        }
        if (kw(w, n, "scp02") || kw(w, n, "scp03")) {
            k.scp = w[4] == '2' ? 2 : 3;
            continue;
        }
        if (!next_word(&rest, &v, &vn))
            return fail(s, l, "auth: '%.*s' needs a value", (int)n, w);
        char val[80];
        if (vn >= sizeof(val))
            return fail(s, l, "auth: value of '%.*s' too long", (int)n, w);
        memcpy(val, v, vn);
        val[vn] = '\0';
        uint64_t num;
        if (kw(w, n, "kvn") || kw(w, n, "level") || kw(w, n, "i")) {
            char *end;
            num = strtoull(val, &end, 16);
            if (*end || num > 0xFF)
                return fail(s, l, "auth: %.*s wants one hex byte, got '%s'", (int)n, w, val);
            if (kw(w, n, "kvn"))
                kvn = (uint8_t)num;
            else if (kw(w, n, "level"))
                level = (uint8_t)num;
            else {
                k.i = (uint8_t)num;
                have_i = true;
            }
        } else if (kw(w, n, "key") || kw(w, n, "enc") || kw(w, n, "mac") || kw(w, n, "dek")) {
            uint8_t key[32];
            int kl = tse_hex_decode(val, key, sizeof(key));
            if (kl != 16 && kl != 24 && kl != 32)
                return fail(s, l, "auth: %.*s wants 16, 24 or 32 bytes of hex", (int)n, w);
            k.key_len = (uint8_t)kl;
            if (kw(w, n, "key") || kw(w, n, "enc"))
                memcpy(k.enc, key, (size_t)kl);
            if (kw(w, n, "key") || kw(w, n, "mac"))
                memcpy(k.mac, key, (size_t)kl);
            if (kw(w, n, "key") || kw(w, n, "dek"))
                memcpy(k.dek, key, (size_t)kl);
        } else if (kw(w, n, "div")) {
            div = tse_scp_div_from_name(val);
            if (div < 0)
                return fail(s, l, "auth: div is none, emv, visa2, visa or kdf3, got '%s'", val);
        } else if (kw(w, n, "challenge")) {
            int cl = tse_hex_decode(val, chal, sizeof(chal));
            if (cl != 8 && cl != 16)
                return fail(s, l, "auth: challenge wants 8 or 16 bytes of hex");
            chal_len = (size_t)cl;
            have_chal = true;
        } else {
            return fail(s, l,
                        "auth: unknown option '%.*s' (scp02|scp03, kvn, level, key, enc, "
                        "mac, dek, i, challenge, off)",
                        (int)n, w);
        }
    }
    if (k.scp == 2 && !have_i)
        k.i = 0x55; /* what gp and GPShell assume: ICV encryption, pseudo-random challenge */
    if (k.scp == 2 && k.key_len != 16)
        return fail(s, l, "auth: SCP02 keys are 16-byte 3DES keys");
    size_t want = tse_scp_challenge_len(&k);
    if (!have_chal) {
        FILE *r = fopen("/dev/urandom", "rb");
        if (!r || fread(chal, 1, want, r) != want) {
            if (r)
                fclose(r);
            return fail(s, l, "auth: cannot read /dev/urandom for the host challenge");
        }
        fclose(r);
    } else if (chal_len != want) {
        return fail(s, l, "auth: this key set uses %zu-byte challenges", want);
    }
    struct tse_scp_session *sc = &s->scp[s->iface][ch];
    s->scp_on[s->iface][ch] = false;
    uint8_t cmd[64];
    size_t cl;
    if (tse_scp_host_begin(sc, &k, kvn, chal, want, cmd, sizeof(cmd), &cl) != 0)
        return fail(s, l, "auth: bad keys or challenge");
    tse_scp_host_set_diversification(sc, (enum tse_scp_div)div);
    if (exchange(s, l, cmd, cl, ch, NULL, false, "auth (INITIALIZE UPDATE)"))
        return 1;
    if (!s->have_last)
        return fail(s, l, "auth: no answer to INITIALIZE UPDATE");
    uint16_t sw = last_sw(s);
    if (sw != 0x9000)
        return fail(s, l, "auth: INITIALIZE UPDATE answered %04X%s", (unsigned)sw,
                    sw == 0x6A88 ? " (no key set with that version)" : "");
    int rc = tse_scp_host_iu_response(sc, s->rbuf, s->rlen - 2);
    if (rc)
        return fail(s, l, "auth: %s", sc->why ? sc->why : tse_strerror(rc));
    if (tse_scp_host_external_authenticate(sc, level, cmd, sizeof(cmd), &cl) != 0)
        return fail(s, l, "auth: security level %02X is not possible with this key set (i=%02X)",
                    (unsigned)level, (unsigned)sc->i);
    if (exchange(s, l, cmd, cl, ch, NULL, false, "auth (EXTERNAL AUTHENTICATE)"))
        return 1;
    if (!s->have_last)
        return fail(s, l, "auth: no answer to EXTERNAL AUTHENTICATE");
    sw = last_sw(s);
    if (sw != 0x9000)
        return fail(s, l, "auth: EXTERNAL AUTHENTICATE answered %04X%s", (unsigned)sw,
                    sw == 0x6300   ? " (host cryptogram rejected)"
                    : sw == 0x6982 ? " (MAC rejected or no INITIALIZE UPDATE)"
                                   : "");
    s->scp_on[s->iface][ch] = true;
    if (s->output)
        fprintf(s->out, "secure channel open: SCP0%u i=%02X KVN %02X level %02X on %s channel %u\n",
                (unsigned)sc->scp, (unsigned)sc->i, (unsigned)sc->keys.kvn, (unsigned)level,
                iface_names[s->iface], (unsigned)ch);
    return 0;
}

/* `putkey NEWKVN [replace KVN] [aes|3des] (key HEX | enc HEX mac HEX dek HEX)`: PUT KEY of a
 * whole key set through the secure channel open on this channel; the KCVs the card returns
 * are checked against the keys sent. */
static int cmd_putkey(struct tse_script *s, const struct loc *l, const char *rest)
{
    uint8_t ch = s->channel[s->iface];
    if (!s->scp_on[s->iface][ch])
        return fail(s, l, "putkey: open a secure channel first (auth)");
    struct tse_scp_session *sc = &s->scp[s->iface][ch];
    uint8_t keys[3][32], new_kvn = 0, old_kvn = 0;
    uint8_t type = sc->scp == 3 ? 0x88 : 0x80;
    int klen = 0;
    bool have_new = false;
    const char *w, *v;
    size_t n, vn;
    while (next_word(&rest, &w, &n)) {
        if (kw(w, n, "aes") || kw(w, n, "3des")) {
            type = kw(w, n, "aes") ? 0x88 : 0x80;
            continue;
        }
        char val[80];
        bool is_num = !have_new && n <= 2;
        if (is_num) {
            memcpy(val, w, n);
            val[n] = '\0';
        } else {
            if (!next_word(&rest, &v, &vn) || vn >= sizeof(val))
                return fail(s, l, "putkey: '%.*s' needs a value", (int)n, w);
            memcpy(val, v, vn);
            val[vn] = '\0';
        }
        char *end;
        if (is_num || kw(w, n, "replace")) {
            unsigned long x = strtoul(val, &end, 16);
            if (*end || x == 0 || x > 0x7F)
                return fail(s, l, "putkey: key versions are hex 01..7F, got '%s'", val);
            if (is_num) {
                new_kvn = (uint8_t)x;
                have_new = true;
            } else {
                old_kvn = (uint8_t)x;
            }
            continue;
        }
        int which = kw(w, n, "key")   ? 3
                    : kw(w, n, "enc") ? 0
                    : kw(w, n, "mac") ? 1
                    : kw(w, n, "dek") ? 2
                                      : -1;
        if (which < 0)
            return fail(s, l, "putkey: unknown option '%.*s'", (int)n, w);
        uint8_t key[32];
        int kl = tse_hex_decode(val, key, sizeof(key));
        if ((kl != 16 && kl != 24 && kl != 32) || (klen && kl != klen))
            return fail(s, l, "putkey: keys are 16, 24 or 32 bytes, all the same length");
        klen = kl;
        for (int k = 0; k < 3; k++)
            if (which == 3 || which == k)
                memcpy(keys[k], key, (size_t)kl);
    }
    if (!have_new || !klen)
        return fail(s, l, "putkey: usage: putkey NEWKVN [replace KVN] [aes|3des] key HEX");
    const uint8_t *kp[3] = {keys[0], keys[1], keys[2]};
    uint8_t cmdb[160];
    size_t cl;
    int rc =
        tse_scp_host_put_key(sc, old_kvn, new_kvn, type, kp, (size_t)klen, cmdb, sizeof(cmdb), &cl);
    if (rc)
        return fail(s, l, "putkey: %s", tse_strerror(rc));
    if (exchange(s, l, cmdb, cl, ch, NULL, false, "putkey"))
        return 1;
    if (!s->have_last || last_sw(s) != 0x9000)
        return fail(s, l, "putkey: the card answered %04X", s->have_last ? last_sw(s) : 0);
    uint8_t want[10];
    want[0] = new_kvn;
    for (int k = 0; k < 3; k++)
        tse_scp_kcv(keys[k], (size_t)klen, type == 0x88, want + 1 + 3 * k);
    if (s->rlen != 12 || memcmp(s->rbuf, want, 10) != 0)
        return fail(s, l, "putkey: the card's key check values do not match the keys sent");
    return 0;
}

/* One command of `load` (plain; exchange() wraps it); 0 when the card answered 9000. */
static int load_cmd(struct tse_script *s, const struct loc *l, uint8_t ch, uint8_t ins, uint8_t p1,
                    uint8_t p2, const uint8_t *data, size_t len, const char *what)
{
    uint8_t cmd[5 + 255 + 1];
    struct tse_apdu a = {.cla = 0x80,
                         .ins = ins,
                         .p1 = p1,
                         .p2 = p2,
                         .data = data,
                         .lc = len,
                         .ne = 256,
                         .has_le = true};
    int n = tse_apdu_encode(&a, cmd, sizeof(cmd));
    if (n < 0)
        return fail(s, l, "load: %s: %s", what, tse_strerror(n));
    if (exchange(s, l, cmd, (size_t)n, ch, NULL, false, "load"))
        return 1;
    if (!s->have_last)
        return fail(s, l, "load: %s: no response (power cut)", what);
    if (last_sw(s) != 0x9000)
        return fail(s, l, "load: %s answered %04X", what, (unsigned)last_sw(s));
    return 0;
}

/* `load FILE.cap [sd AID] [block N]`: the load file of a CAP file (as gp builds it) through
 * the secure channel open on this channel: INSTALL [for load], then LOAD blocks. */
static int cmd_load(struct tse_script *s, const struct loc *l, const char *rest)
{
    uint8_t ch = s->channel[s->iface];
    const char *w, *v;
    size_t n, vn;
    if (!next_word(&rest, &w, &n))
        return fail(s, l, "load: usage: load FILE.cap [sd AID] [block N]");
    if (n >= 4096)
        return fail(s, l, "load: file name too long");
    /* like include: relative to the script that names it, if there */
    const char *slash = strrchr(l->file, '/');
    size_t dl = w[0] != '/' && slash ? (size_t)(slash - l->file) + 1 : 0;
    char *path = malloc(dl + n + 1);
    if (!path)
        return fail(s, l, "load: out of memory");
    memcpy(path, l->file, dl);
    memcpy(path + dl, w, n);
    path[dl + n] = '\0';
    struct stat sb;
    if (dl && stat(path, &sb) != 0) { /* not next to the script: as given (a piped script) */
        memmove(path, path + dl, n + 1);
    }

    struct tse_aid sd = s->selected[s->iface][ch];
    unsigned long block = 0;
    int rc = 1;
    uint8_t *lfdb = NULL, *data = NULL;
    struct tse_cap_stream *st = NULL;
    while (next_word(&rest, &w, &n)) {
        if (!next_word(&rest, &v, &vn)) {
            fail(s, l, "load: '%.*s' needs a value", (int)(n > 40 ? 40 : n), w);
            goto out;
        }
        char val[40];
        if (vn >= sizeof(val)) {
            fail(s, l, "load: value of '%.*s' too long", (int)(n > 40 ? 40 : n), w);
            goto out;
        }
        memcpy(val, v, vn);
        val[vn] = '\0';
        if (kw(w, n, "sd")) {
            uint8_t b[TSE_AID_MAX + 1];
            int bl = tse_hex_decode(val, b, sizeof(b));
            if (bl < TSE_AID_MIN || bl > TSE_AID_MAX) {
                fail(s, l, "load: sd wants an AID of 5 to 16 bytes in hex, got '%s'", val);
                goto out;
            }
            tse_aid_set(&sd, b, (size_t)bl);
        } else if (kw(w, n, "block")) {
            char *end;
            block = strtoul(val, &end, 10);
            if (*end || block < 1 || block > 255) {
                fail(s, l, "load: block wants a number of bytes from 1 to 255, got '%s'", val);
                goto out;
            }
        } else {
            fail(s, l, "load: unknown option '%.*s' (sd, block)", (int)(n > 40 ? 40 : n), w);
            goto out;
        }
    }
    if (!s->scp_on[s->iface][ch]) {
        fail(s, l, "load: open a secure channel first (auth)");
        goto out;
    }
    const struct tse_scp_session *sc = &s->scp[s->iface][ch];
    if (!block) {
        /* the largest block that fits a short Lc once protected, as gp chooses it */
        size_t ml = (sc->level & TSE_SL_CMAC) ? (sc->s16 ? 16 : 8) : 0, bs = sc->scp == 3 ? 16 : 8,
               avail = 255 - ml;
        block = (sc->level & TSE_SL_CDEC) ? (avail / bs) * bs - 1 : avail;
    }

    /* devices and FIFOs could block or never end (as for include) */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        fail(s, l, "load: %s: not a regular file", path);
        goto out;
    }
    char err[320] = "";
    size_t lfdb_len = 0;
    int r =
        tse_cap_read_file(path, TSE_CAP_NO_DESCRIPTOR, &lfdb, &lfdb_len, NULL, err, sizeof(err));
    if (r) {
        fail(s, l, "load: %s", err[0] ? err : tse_strerror(r));
        goto out;
    }
    data = malloc(lfdb_len + 5);
    st = malloc(sizeof(*st));
    if (!data || !st) {
        fail(s, l, "load: out of memory");
        goto out;
    }
    int dlen = tse_cap_load_data(lfdb, lfdb_len, data, lfdb_len + 5);
    if (dlen < 0) {
        fail(s, l, "load: %s: %s", path, tse_strerror(dlen));
        goto out;
    }
    /* The package AID comes from the Header, as gp takes it. The card's own check runs here
     * too, but only as a warning: real cards accept what tse may not. */
    tse_cap_stream_init(st);
    if (tse_cap_stream_feed(st, data, (size_t)dlen) == 0)
        tse_cap_stream_finish(st, NULL);
    if (!st->info.header_done) {
        fail(s, l, "load: %s: no package AID: %s", path, tse_cap_strerror(st->reason));
        goto out;
    }
    const struct tse_aid *pkg = &st->info.package;
    size_t blocks = ((size_t)dlen + block - 1) / block;
    if (s->output) {
        char ph[2 * TSE_AID_MAX + 1], sh[2 * TSE_AID_MAX + 1];
        tse_hex_encode(pkg->b, pkg->len, ph);
        tse_hex_encode(sd.b, sd.len, sh);
        fprintf(s->out,
                "load: %s: package %s, %zu bytes of load data in %zu LOAD block%s of %lu, "
                "security domain %s\n",
                path, ph, (size_t)dlen, blocks, blocks == 1 ? "" : "s", block,
                sd.len ? sh : "(none known: empty SD AID)");
        if (st->reason)
            fprintf(s->out, "load: note: tse's card would reject it: %s\n",
                    tse_cap_strerror(st->reason));
    }

    /* INSTALL [for load]: ELF AID, SD AID, no hash, no load parameters, no token */
    uint8_t inst[2 + 2 * TSE_AID_MAX + 3];
    size_t il = 0;
    inst[il++] = pkg->len;
    memcpy(inst + il, pkg->b, pkg->len);
    il += pkg->len;
    inst[il++] = sd.len;
    memcpy(inst + il, sd.b, sd.len);
    il += sd.len;
    inst[il++] = 0;
    inst[il++] = 0;
    inst[il++] = 0;
    if (load_cmd(s, l, ch, 0xE6, 0x02, 0x00, inst, il, "INSTALL [for load]"))
        goto out;
    for (size_t i = 0; i < blocks; i++) {
        size_t off = i * block, len = (size_t)dlen - off < block ? (size_t)dlen - off : block;
        char what[64];
        snprintf(what, sizeof(what), "LOAD block %zu of %zu", i + 1, blocks);
        if (load_cmd(s, l, ch, 0xE8, i + 1 == blocks ? 0x80 : 0x00, (uint8_t)i, data + off, len,
                     what))
            goto out;
    }
    if (s->output)
        fprintf(s->out, "load: %zu LOAD block%s accepted\n", blocks, blocks == 1 ? "" : "s");
    rc = 0;
out:
    free(path);
    free(lfdb);
    free(data);
    free(st);
    return rc;
}

static int cmd_tear(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w, *a;
    size_t n, an;
    uint64_t v = 0;
    int rc;
    if (!next_word(&rest, &w, &n))
        return fail(s, l, "tear: expected 'at N' or 'off'");
    if (kw(w, n, "at")) {
        if (!next_word(&rest, &a, &an) || !parse_u64(a, an, &v) || v == 0)
            return fail(s, l, "tear at: expected a store write number >= 1");
#if ULONG_MAX < UINT64_MAX
        if (v > ULONG_MAX)
            return fail(s, l, "tear at: number too large");
#endif
    } else if (!kw(w, n, "off")) {
        return fail(s, l, "tear: expected 'at N' or 'off'");
    }
    if (no_more(s, l, "tear", rest))
        return 1;
    if (!s->ops->tear_at)
        return unsupported(s, l, "tear");
    rc = s->ops->tear_at(s->t, (unsigned long)v);
    return rc ? target_fail(s, l, "tear", rc) : 0;
}

static int cmd_set(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w, *name, *val;
    size_t n, nn, vn;
    uint64_t v;
    int rc;
    if (!next_word(&rest, &w, &n))
        return fail(s, l, "set: expected 'next-random HEX' or 'counter NAME VALUE'");
    if (kw(w, n, "next-random")) {
        struct sbuf hex = {0};
        uint8_t *b;
        size_t len = 0;
        if (expand(s, l, skip_ws(rest), &hex)) {
            sb_free(&hex);
            return 1;
        }
        b = malloc(hex.len / 2 + 1);
        if (!b) {
            sb_free(&hex);
            return fail(s, l, "set next-random: out of memory");
        }
        rc = decode_hex(s, l, "set next-random", sb_str(&hex), b, hex.len / 2 + 1, &len);
        sb_free(&hex);
        if (!rc && len == 0)
            rc = fail(s, l, "set next-random: no bytes given");
        if (!rc && !s->ops->queue_random)
            rc = unsupported(s, l, "set next-random");
        if (!rc) {
            int trc = s->ops->queue_random(s->t, b, len);
            if (trc)
                rc = target_fail(s, l, "set next-random", trc);
        }
        free(b);
        return rc;
    }
    if (kw(w, n, "counter")) {
        char nm[64];
        if (!next_word(&rest, &name, &nn) || !next_word(&rest, &val, &vn))
            return fail(s, l, "set counter: expected NAME VALUE");
        if (nn >= sizeof(nm))
            return fail(s, l, "set counter: name too long");
        if (!parse_u64(val, vn, &v))
            return fail(s, l, "set counter: bad value '%.*s' (decimal or 0x hex)",
                        (int)(vn > 40 ? 40 : vn), val);
        if (no_more(s, l, "set counter", rest))
            return 1;
        if (!s->ops->set_counter)
            return unsupported(s, l, "set counter");
        memcpy(nm, name, nn);
        nm[nn] = '\0';
        rc = s->ops->set_counter(s->t, nm, v);
        return rc ? target_fail(s, l, "set counter", rc) : 0;
    }
    return fail(s, l, "set: unknown setting '%.*s' (next-random, counter)", (int)(n > 40 ? 40 : n),
                w);
}

static int cmd_get(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w, *name;
    size_t n, nn;
    char nm[64];
    uint64_t v = 0;
    int rc;
    if (!next_word(&rest, &w, &n) || !kw(w, n, "counter"))
        return fail(s, l, "get: expected 'counter NAME'");
    if (!next_word(&rest, &name, &nn))
        return fail(s, l, "get counter: missing NAME");
    if (nn >= sizeof(nm))
        return fail(s, l, "get counter: name too long");
    if (no_more(s, l, "get counter", rest))
        return 1;
    if (!s->ops->get_counter)
        return unsupported(s, l, "get counter");
    memcpy(nm, name, nn);
    nm[nn] = '\0';
    rc = s->ops->get_counter(s->t, nm, &v);
    if (rc)
        return target_fail(s, l, "get counter", rc);
    fprintf(s->out, "%s = %llu\n", nm, (unsigned long long)v);
    return 0;
}

static int cmd_echo(struct tse_script *s, const struct loc *l, const char *text)
{
    struct sbuf b = {0};
    int rc = expand(s, l, text, &b);
    if (!rc) {
        fputs(sb_str(&b), s->out);
        fputc('\n', s->out);
        fflush(s->out);
    }
    sb_free(&b);
    return rc;
}

static int cmd_let(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *p = skip_ws(rest), *name = p, *why;
    size_t n = name_len(p), len = 0;
    struct sbuf hex = {0};
    uint8_t *b;
    int rc;
    if (n == 0)
        return fail(s, l, "let: expected NAME = EXPR");
    if ((n == 1 && name[0] == 'R') || (n == 2 && name[0] == 'S' && name[1] == 'W'))
        return fail(s, l, "let: $%.*s is set by each exchange and cannot be assigned", (int)n,
                    name);
    p = skip_ws(p + n);
    if (*p != '=')
        return fail(s, l, "let: expected '=' after the name");
    if (expand(s, l, skip_ws(p + 1), &hex)) {
        sb_free(&hex);
        return 1;
    }
    b = malloc(hex.len / 2 + 1);
    if (!b) {
        sb_free(&hex);
        return fail(s, l, "let: out of memory");
    }
    rc = decode_hex(s, l, "let", sb_str(&hex), b, hex.len / 2 + 1, &len);
    sb_free(&hex);
    if (!rc && len > VALUE_MAX)
        rc = fail(s, l, "let: value longer than %u bytes", (unsigned)VALUE_MAX);
    if (!rc && (why = var_set(s, name, n, b, len)) != NULL)
        rc = fail(s, l, "let: %s", why);
    free(b);
    return rc;
}

static int stream_run(struct tse_script *s, FILE *in, const char *file);

static int cmd_include(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *arg = skip_ws(rest), *slash;
    unsigned before = s->st.failures;
    struct stat st;
    char *path;
    const char *why;
    size_t dl = 0;
    FILE *f;

    if (!*arg)
        return fail(s, l, "include: missing file name");
    if (s->depth >= INCLUDE_MAX) {
        s->unwind = true;
        return fail(s, l, "include: nested more than %d levels deep (an include loop?)",
                    INCLUDE_MAX);
    }
    /* Relative names are relative to the including script, so suites can move as a whole. */
    slash = strrchr(l->file, '/');
    if (arg[0] != '/' && slash)
        dl = (size_t)(slash - l->file) + 1;
    path = malloc(dl + strlen(arg) + 1);
    if (!path)
        return fail(s, l, "include: out of memory");
    memcpy(path, l->file, dl);
    memcpy(path + dl, arg, strlen(arg) + 1);

    /* Devices and FIFOs could block or never end. */
    why = NULL;
    if (stat(path, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why) {
        int rc = fail(s, l, "include: %s: %s", path, why);
        free(path);
        return rc;
    }
    f = fopen(path, "r");
    if (!f) {
        int rc = fail(s, l, "include: %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    if (stream_run(s, f, path) < 0)
        fail(s, l, "include: %s: read error", path);
    fclose(f);
    free(path);
    if (s->unwind && s->depth <= 1)
        s->unwind = false;
    if (s->exit_req)
        return 2;
    return s->st.failures != before;
}

/* ---- wallet: a simulated purse terminal (docs/apdu-shell.md, docs/wallet.md) ------------- */

/* The terminal's transport: one exchange on the current interface and channel, printed like
 * any other; a power cut is reported to the terminal as TSE_ERR_TORN. */
static int wallet_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                           size_t *rlen)
{
    struct tse_script *s = user;
    if (clen > CAPDU_MAX)
        return TSE_ERR_INVALID_ARG;
    memcpy(s->cbuf, c, clen);
    if (exchange(s, s->wloc, s->cbuf, clen, s->channel[s->iface], NULL, false, "wallet"))
        return TSE_ERR_IO; /* already reported */
    if (!s->have_last)
        return TSE_ERR_TORN;
    if (s->rlen > rcap)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(r, s->rbuf, s->rlen);
    *rlen = s->rlen;
    return 0;
}

static void bcd(uint8_t *out, size_t n, unsigned long v)
{
    for (size_t i = n; i-- > 0; v /= 100)
        out[i] = (uint8_t)((v % 100 / 10) << 4 | v % 10);
}

static int wallet_ready(struct tse_script *s, const struct loc *l)
{
    if (s->wterm)
        return 0;
    s->psam = calloc(1, sizeof(*s->psam));
    s->wterm = calloc(1, sizeof(*s->wterm));
    if (!s->psam || !s->wterm) {
        free(s->psam);
        free(s->wterm);
        s->psam = NULL;
        s->wterm = NULL;
        return fail(s, l, "out of memory");
    }
    tse_psam_init(s->psam);
    tse_psam_load_test_keys(s->psam);
    tse_wallet_term_init(s->wterm, s->psam, wallet_transmit, s);
    /* the host clock until `wallet time` fixes one */
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    uint8_t d[4], t[3];
    bcd(d, 2, (unsigned long)tmv.tm_year + 1900);
    bcd(d + 2, 1, (unsigned long)tmv.tm_mon + 1);
    bcd(d + 3, 1, (unsigned long)tmv.tm_mday);
    bcd(t, 1, (unsigned long)tmv.tm_hour);
    bcd(t + 1, 1, (unsigned long)tmv.tm_min);
    bcd(t + 2, 1, (unsigned long)tmv.tm_sec);
    tse_wallet_term_set_time(s->wterm, d, t);
    static const uint8_t pin[3] = {0x12, 0x34, 0x56};
    memcpy(s->wterm->pin, pin, 3);
    s->wterm->pin_len = 3;
    return 0;
}

/* "100.00", "2", "0.5" → fen */
static bool parse_amount(const char *p, size_t n, uint32_t *fen)
{
    uint64_t v = 0;
    size_t i = 0, frac = 0;
    bool dot = false;
    if (n == 0)
        return false;
    for (; i < n; i++) {
        if (p[i] == '.' && !dot) {
            dot = true;
            continue;
        }
        if (p[i] < '0' || p[i] > '9' || (dot && ++frac > 2))
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > 0xFFFFFFFFull)
            return false;
    }
    while (frac++ < 2)
        v *= 10;
    if (v > 0xFFFFFFFFull)
        return false;
    *fen = (uint32_t)v;
    return true;
}

static void print_amount(FILE *f, uint32_t fen)
{
    fprintf(f, "%lu.%02lu", (unsigned long)(fen / 100), (unsigned long)(fen % 100));
}

static int wallet_failed(struct tse_script *s, const struct loc *l, const char *cmd, int rc)
{
    struct tse_wallet_term *t = s->wterm;
    if (rc == TSE_ERR_TORN)
        return 0; /* the transcript says so; the card is off */
    if (rc == TSE_ERR_IO)
        return 1; /* the exchange reported it */
    if (rc == TSE_ERR_STATE && t->sw)
        return fail(s, l, "wallet %s: %s answered %04X", cmd, t->step ? t->step : "the card",
                    t->sw);
    if (rc == TSE_ERR_DENIED)
        return fail(s, l,
                    "wallet %s: the PSAM rejects the card's %s (keys differ from the test "
                    "key set?)",
                    cmd, t->step && !strcmp(t->step, "INITIALIZE FOR LOAD") ? "MAC1" : "MAC2/TAC");
    return fail(s, l, "wallet %s: %s%s%s", cmd, tse_strerror(rc), t->step ? " at " : "",
                t->step ? t->step : "");
}

static void print_result(struct tse_script *s, const char *what, uint32_t amount,
                         const struct tse_wallet_result *r, bool load)
{
    if (!s->output)
        return;
    fprintf(s->out, "%s ", what);
    print_amount(s->out, amount);
    fputs(": balance ", s->out);
    print_amount(s->out, r->balance_after);
    fprintf(s->out, ", %s counter %04X, TAC %02X%02X%02X%02X (%s)\n", load ? "online" : "offline",
            (unsigned)(r->seq + 1), r->tac[0], r->tac[1], r->tac[2], r->tac[3],
            r->tac_ok ? "verified" : "NOT verified");
}

static const char *tt_name(uint8_t t)
{
    switch (t) {
    case TSE_WALLET_TT_EP_LOAD:
        return "load";
    case TSE_WALLET_TT_PURCHASE:
        return "purchase";
    case TSE_WALLET_TT_CAPP:
        return "transit";
    default:
        return "other";
    }
}

static int wallet_log(struct tse_script *s, const struct loc *l)
{
    struct tse_wallet_term *t = s->wterm;
    uint8_t rec[64];
    size_t n;
    for (int sfi = 0x18; sfi <= 0x1E; sfi += 6) {
        if (s->output)
            fprintf(s->out, "%s:\n", sfi == 0x18 ? "purse log (0x18)" : "transit log (0x1E)");
        for (uint8_t i = 1; i <= 30; i++) {
            int rc = tse_wallet_term_read_record(t, (uint8_t)sfi, i, rec, sizeof(rec), &n);
            if (rc == TSE_ERR_NOT_FOUND)
                break;
            if (rc)
                return wallet_failed(s, l, "log", rc);
            if (!s->output)
                continue;
            if (sfi == 0x18 && n == 23) {
                fprintf(s->out, "  %2u  %02X%02X  %-8s ", i, rec[0], rec[1], tt_name(rec[9]));
                print_amount(s->out, (uint32_t)rec[5] << 24 | (uint32_t)rec[6] << 16 |
                                         (uint32_t)rec[7] << 8 | rec[8]);
                fprintf(s->out,
                        "  terminal %02X%02X%02X%02X%02X%02X  %02X%02X-%02X-%02X "
                        "%02X:%02X:%02X\n",
                        rec[10], rec[11], rec[12], rec[13], rec[14], rec[15], rec[16], rec[17],
                        rec[18], rec[19], rec[20], rec[21], rec[22]);
            } else if (n == 48) {
                fprintf(s->out, "  %2u  %s line %02X station %02X%02X  fare ", i,
                        rec[0] == 0x03   ? "entry"
                        : rec[0] == 0x04 ? "exit "
                                         : "other",
                        rec[11], rec[12], rec[13]);
                print_amount(s->out, (uint32_t)rec[17] << 24 | (uint32_t)rec[18] << 16 |
                                         (uint32_t)rec[19] << 8 | rec[20]);
                fputs("  balance ", s->out);
                print_amount(s->out, (uint32_t)rec[21] << 24 | (uint32_t)rec[22] << 16 |
                                         (uint32_t)rec[23] << 8 | rec[24]);
                fprintf(s->out, "  %02X%02X-%02X-%02X %02X:%02X:%02X\n", rec[25], rec[26], rec[27],
                        rec[28], rec[29], rec[30], rec[31]);
            }
        }
    }
    return 0;
}

/* A station: up to 4 decimal digits, written BCD. */
static bool parse_station(const char *w, size_t n, uint8_t st[2])
{
    uint64_t v;
    if (n > 4 || !parse_u64(w, n, &v) || (n > 2 && w[1] == 'x'))
        return false;
    bcd(st, 2, (unsigned long)v);
    return true;
}

/* `wallet personalise`: the state the STORE DATA callbacks need */
struct perso_ctx {
    struct tse_script *s;
    const struct loc *l;
    uint8_t ch;
    const struct tse_scp_session *sc;
    int failed;
};

static int perso_encrypt(void *user, const uint8_t *in, size_t len, uint8_t *out)
{
    struct perso_ctx *pc = user;
    return tse_scp_host_encrypt_data(pc->sc, in, len, out);
}

static int perso_send(struct perso_ctx *pc, const uint8_t *cmd, size_t len, const char *what)
{
    uint8_t c[5 + 255 + 1];
    if (len + 1 > sizeof(c))
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(c, cmd, len);
    c[len] = 0x00; /* Le: the card may answer data */
    if (exchange(pc->s, pc->l, c, len + 1, pc->ch, NULL, false, "wallet personalise")) {
        pc->failed = 1;
        return TSE_ERR_IO;
    }
    if (!pc->s->have_last || last_sw(pc->s) != 0x9000) {
        fail(pc->s, pc->l, "wallet personalise: %s answered %04X", what,
             pc->s->have_last ? (unsigned)last_sw(pc->s) : 0u);
        pc->failed = 1;
        return TSE_ERR_DENIED;
    }
    return 0;
}

static int perso_emit(void *user, const uint8_t *cmd, size_t len)
{
    return perso_send(user, cmd, len, "STORE DATA");
}

/* `wallet personalise AID [issuer HEX] [asn HEX]`: personalise a purse instance through the
 * security domain it belongs to, in the secure channel open on this channel: INSTALL [for
 * personalization], then the STORE DATA sequence of a test card (tse_wallet_perso_test()), key
 * values and PIN encrypted with the session's data encryption key. */
static int wallet_personalise(struct tse_script *s, const struct loc *l, const char *rest)
{
    uint8_t aid[TSE_AID_MAX],
        issuer[8] = {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF},
        asn[10] = {0x03, 0x10, 0x51, 0x70, 0x01, 0x01, 0x70, 0x90, 0x79, 0x84};
    int alen = -1;
    const char *w;
    size_t n;
    while (next_word(&rest, &w, &n)) {
        const char *val;
        size_t vn;
        char hex[64];
        bool opt = kw(w, n, "issuer") || kw(w, n, "asn");
        if (opt && !next_word(&rest, &val, &vn))
            return fail(s, l, "wallet personalise: %.*s needs a value", (int)n, w);
        if (!opt) {
            val = w;
            vn = n;
        }
        if (vn >= sizeof(hex))
            return fail(s, l, "wallet personalise: value too long");
        memcpy(hex, val, vn);
        hex[vn] = 0;
        if (kw(w, n, "issuer")) {
            if (tse_hex_decode(hex, issuer, sizeof(issuer)) != 8)
                return fail(s, l, "wallet personalise: issuer is 8 bytes of hex");
        } else if (kw(w, n, "asn")) {
            if (tse_hex_decode(hex, asn, sizeof(asn)) != 10)
                return fail(s, l, "wallet personalise: asn is 10 bytes of hex");
        } else if (alen < 0) {
            alen = tse_hex_decode(hex, aid, sizeof(aid));
            if (alen < TSE_AID_MIN)
                return fail(s, l, "wallet personalise: expected the instance AID (5-16 bytes)");
        } else {
            return fail(s, l, "wallet personalise: unexpected '%.*s'", (int)n, w);
        }
    }
    if (alen < 0)
        return fail(s, l,
                    "wallet personalise: usage: wallet personalise AID [issuer HEX] [asn HEX]");
    uint8_t ch = s->channel[s->iface];
    if (!s->scp_on[s->iface][ch])
        return fail(s, l,
                    "wallet personalise: open a secure channel with the purse's security "
                    "domain first (auth)");
    struct perso_ctx pc = {.s = s, .l = l, .ch = ch, .sc = &s->scp[s->iface][ch]};
    /* INSTALL [for personalization]: 00 00 LV AID 00 00 00 */
    uint8_t inst[5 + 2 + 1 + TSE_AID_MAX + 3];
    size_t il = 0;
    inst[il++] = 0x80;
    inst[il++] = 0xE6;
    inst[il++] = 0x20;
    inst[il++] = 0x00;
    inst[il++] = (uint8_t)(2 + 1 + alen + 3);
    inst[il++] = 0x00;
    inst[il++] = 0x00;
    inst[il++] = (uint8_t)alen;
    memcpy(inst + il, aid, (size_t)alen);
    il += (size_t)alen;
    inst[il++] = 0x00;
    inst[il++] = 0x00;
    inst[il++] = 0x00;
    if (perso_send(&pc, inst, il, "INSTALL [for personalization]"))
        return 1;
    struct tse_wallet_perso p;
    int rc = tse_wallet_perso_test(&p, issuer, asn);
    if (!rc)
        rc = tse_wallet_perso_store_data(&p, perso_encrypt, &pc, perso_emit, &pc);
    memset(&p, 0, sizeof(p)); /* test keys, but keys all the same */
    if (pc.failed)
        return 1;
    if (rc)
        return fail(s, l, "wallet personalise: %s", tse_strerror(rc));
    if (s->output)
        fprintf(s->out, "purse personalised through its security domain (test keys)\n");
    return 0;
}

static int cmd_wallet(struct tse_script *s, const struct loc *l, const char *rest)
{
    const char *w, *a, *b;
    size_t n, an, bn;
    if (!next_word(&rest, &w, &n))
        return fail(s, l,
                    "wallet: expected select, balance, load, purchase, entry, exit, log, "
                    "time, pin or personalise");
    if (!s->ops->transmit)
        return unsupported(s, l, "wallet");
    if (kw(w, n, "personalise") || kw(w, n, "personalize"))
        return wallet_personalise(s, l, rest);
    if (wallet_ready(s, l))
        return 1;
    struct tse_wallet_term *t = s->wterm;
    struct tse_wallet_result r;
    int rc;
    s->wloc = l;
    if (kw(w, n, "select")) {
        uint8_t aid[16] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05};
        size_t alen = 8;
        if (next_word(&rest, &a, &an)) {
            char hex[40];
            int hn;
            if (an >= sizeof(hex))
                return fail(s, l, "wallet select: AID too long");
            memcpy(hex, a, an);
            hex[an] = '\0';
            hn = tse_hex_decode(hex, aid, sizeof(aid));
            if (hn < 5)
                return fail(s, l, "wallet select: expected an AID of 5 to 16 bytes");
            alen = (size_t)hn;
        }
        if (no_more(s, l, "wallet select", rest))
            return 1;
        rc = tse_wallet_term_select(t, aid, alen);
        if (rc)
            return wallet_failed(s, l, "select", rc);
        if (s->output && t->have_card) {
            fputs("purse: issuer ", s->out);
            print_hex(s->out, t->card.issuer_id, 8);
            fputs(", card number ", s->out);
            print_hex(s->out, t->card.asn, 10);
            fputc('\n', s->out);
        }
        return 0;
    }
    if (kw(w, n, "balance") || kw(w, n, "log")) {
        bool bal = kw(w, n, "balance");
        if (no_more(s, l, bal ? "wallet balance" : "wallet log", rest))
            return 1;
        if (!bal)
            return wallet_log(s, l);
        uint32_t v;
        rc = tse_wallet_term_balance(t, &v);
        if (rc)
            return wallet_failed(s, l, "balance", rc);
        if (s->output) {
            fputs("balance ", s->out);
            print_amount(s->out, v);
            fputc('\n', s->out);
        }
        return 0;
    }
    if (kw(w, n, "load") || kw(w, n, "purchase")) {
        bool load = kw(w, n, "load");
        uint32_t amount;
        if (!next_word(&rest, &a, &an) || !parse_amount(a, an, &amount))
            return fail(s, l, "wallet %s: expected an amount such as 100.00",
                        load ? "load" : "purchase");
        if (no_more(s, l, load ? "wallet load" : "wallet purchase", rest))
            return 1;
        rc = load ? tse_wallet_term_load(t, amount, &r) : tse_wallet_term_purchase(t, amount, &r);
        if (rc)
            return wallet_failed(s, l, load ? "load" : "purchase", rc);
        print_result(s, load ? "load" : "purchase", amount, &r, load);
        return 0;
    }
    if (kw(w, n, "entry") || kw(w, n, "exit")) {
        bool entry = kw(w, n, "entry");
        struct tse_wallet_gate g = {
            {0x10, 0x00}, {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, 0x01, {0, 0}, 0x12};
        uint32_t fare = 0;
        if (!next_word(&rest, &a, &an) || !parse_station(a, an, g.station))
            return fail(s, l, "wallet %s: expected a station number (up to 4 digits)",
                        entry ? "entry" : "exit");
        if (!entry && (!next_word(&rest, &b, &bn) || !parse_amount(b, bn, &fare)))
            return fail(s, l, "wallet exit: expected STATION FARE, e.g. 'wallet exit 17 3.00'");
        if (no_more(s, l, entry ? "wallet entry" : "wallet exit", rest))
            return 1;
        rc = entry ? tse_wallet_term_entry(t, &g, &r) : tse_wallet_term_exit(t, &g, fare, &r);
        if (rc)
            return wallet_failed(s, l, entry ? "entry" : "exit", rc);
        if (s->output)
            fprintf(s->out, "%s at station %02X%02X, ", entry ? "entry" : "exit", g.station[0],
                    g.station[1]);
        print_result(s, "fare", fare, &r, false);
        return 0;
    }
    if (kw(w, n, "time")) {
        uint8_t d[7];
        char txt[16];
        if (!next_word(&rest, &a, &an) || an != 14)
            return fail(s, l, "wallet time: expected YYYYMMDDhhmmss");
        memcpy(txt, a, 14);
        txt[14] = '\0';
        for (int i = 0; i < 14; i++)
            if (txt[i] < '0' || txt[i] > '9')
                return fail(s, l, "wallet time: expected YYYYMMDDhhmmss");
        if (tse_hex_decode(txt, d, sizeof(d)) != 7 || no_more(s, l, "wallet time", rest))
            return 1;
        tse_wallet_term_set_time(t, d, d + 4);
        return 0;
    }
    if (kw(w, n, "pin")) {
        char txt[16];
        if (!next_word(&rest, &a, &an) || an < 4 || an > 12 || an % 2)
            return fail(s, l, "wallet pin: expected 4 to 12 digits (an even number), or 'none'");
        memcpy(txt, a, an);
        txt[an] = '\0';
        int pn = tse_hex_decode(txt, t->pin, sizeof(t->pin));
        if (pn < 2 || no_more(s, l, "wallet pin", rest))
            return pn < 2 ? fail(s, l, "wallet pin: expected digits") : 1;
        t->pin_len = (size_t)pn;
        return 0;
    }
    return fail(s, l, "wallet: unknown subcommand '%.*s'", (int)(n > 40 ? 40 : n), w);
}

static void cmd_help(struct tse_script *s)
{
    fputs("APDUs:\n"
          "  HEX [=> EXPECT]          send a C-APDU; EXPECT: hex, X = any nibble,\n"
          "                           * = any bytes, or TORN\n"
          "  0xCLA 0xINS 0xP1 0xP2 0xLC [0xDATA..] 0xLE;   apdutool form\n"
          "Card:\n"
          "  power on | power off | reset | atr\n"
          "  interface contact|contactless\n"
          "  channel open | channel close [N] | channel use N\n"
          "  tear at N | tear off\n"
          "  auth [scp02|scp03] [kvn HH] [level HH] [key HEX | enc/mac/dek HEX] [i HH]\n"
          "       [div emv|visa2|visa|kdf3] [challenge HEX] | auth off\n"
          "  putkey NEWKVN [replace KVN] [aes|3des] key HEX | enc/mac/dek HEX\n"
          "  load FILE.cap [sd AID] [block N]   INSTALL [for load] and LOAD in the channel\n"
          "  set next-random HEX | set counter NAME VALUE | get counter NAME\n"
          "Transit purse (simulated terminal and PSAM, test keys):\n"
          "  wallet select [AID] | wallet balance | wallet log\n"
          "  wallet load AMOUNT | wallet purchase AMOUNT\n"
          "  wallet entry STATION | wallet exit STATION FARE\n"
          "  wallet time YYYYMMDDhhmmss | wallet pin DIGITS\n"
          "Script:\n"
          "  let NAME = EXPR          hex, $NAME, $R, $SW, $NAME[a:b]\n"
          "  echo TEXT | include FILE | trace on|off | timing on|off | output on|off\n"
          "  help | exit | quit\n"
          "apdutool: powerup; powerdown; echo \"text\"; output on|off; delay N;\n",
          s->out);
}

/* Hex-only words and words with a digit are APDUs with a typo, worth a hex error message;
 * other words are misspelt commands. */
static bool looks_like_apdu(const char *w, size_t n)
{
    size_t i;
    bool all_hex = true;
    if (w[0] == '$')
        return true;
    for (i = 0; i < n && w[i] != '$' && w[i] != '='; i++) {
        if (w[i] >= '0' && w[i] <= '9')
            return true;
        if (tse_hex_digit((unsigned char)w[i]) < 0)
            all_hex = false;
    }
    return all_hex;
}

/* One statement in apdu-shell syntax; `text` starts at a non-blank character. */
static int exec_tse(struct tse_script *s, const struct loc *l, const char *text)
{
    size_t n = word_len(text);
    const char *rest;
    char *line;
    int rc;

    /* echo prints its text as written, comment characters included. */
    if (kw(text, n, "echo"))
        return cmd_echo(s, l, skip_ws(text + n));

    line = dup_str(text);
    if (!line)
        return fail(s, l, "out of memory");
    strip_comment(line, false);
    n = word_len(line);
    rest = line + n;

    if (kw(line, n, "reset"))
        rc = no_more(s, l, "reset", rest) ? 1 : do_reset(s, l);
    else if (kw(line, n, "power"))
        rc = cmd_power(s, l, rest);
    else if (kw(line, n, "powerup"))
        rc = no_more(s, l, "powerup", rest) ? 1 : do_power_on(s, l, "powerup", false);
    else if (kw(line, n, "powerdown"))
        rc = no_more(s, l, "powerdown", rest) ? 1 : do_power_off(s, l, "powerdown");
    else if (kw(line, n, "atr"))
        rc = cmd_atr(s, l, rest);
    else if (kw(line, n, "interface"))
        rc = cmd_interface(s, l, rest);
    else if (kw(line, n, "channel"))
        rc = cmd_channel(s, l, rest);
    else if (kw(line, n, "tear"))
        rc = cmd_tear(s, l, rest);
    else if (kw(line, n, "auth"))
        rc = cmd_auth(s, l, rest);
    else if (kw(line, n, "putkey"))
        rc = cmd_putkey(s, l, rest);
    else if (kw(line, n, "load"))
        rc = cmd_load(s, l, rest);
    else if (kw(line, n, "wallet"))
        rc = cmd_wallet(s, l, rest);
    else if (kw(line, n, "set"))
        rc = cmd_set(s, l, rest);
    else if (kw(line, n, "get"))
        rc = cmd_get(s, l, rest);
    else if (kw(line, n, "trace"))
        rc = cmd_flag(s, l, "trace", rest, &s->trace);
    else if (kw(line, n, "timing"))
        rc = cmd_flag(s, l, "timing", rest, &s->timing);
    else if (kw(line, n, "output"))
        rc = cmd_flag(s, l, "output", rest, &s->output);
    else if (kw(line, n, "let"))
        rc = cmd_let(s, l, rest);
    else if (kw(line, n, "include"))
        rc = cmd_include(s, l, rest);
    else if (kw(line, n, "delay")) {
        const char *w;
        size_t wn;
        uint64_t v;
        /* Accepted for apdutool scripts; the emulator has no timing-dependent behaviour. */
        if (!next_word(&rest, &w, &wn) || !parse_u64(w, wn, &v))
            rc = fail(s, l, "delay: expected milliseconds");
        else
            rc = no_more(s, l, "delay", rest);
    } else if (kw(line, n, "exit") || kw(line, n, "quit")) {
        rc = no_more(s, l, "exit", rest);
        if (!rc) {
            s->exit_req = true;
            rc = 2;
        }
    } else if (kw(line, n, "help")) {
        cmd_help(s);
        rc = 0;
    } else if (looks_like_apdu(line, n)) {
        rc = exec_apdu(s, l, line);
    } else {
        rc = fail(s, l, "unknown command '%.*s' (try 'help')", (int)(n > 40 ? 40 : n), line);
    }
    free(line);
    return rc;
}

/* ---- apdutool syntax ---------------------------------------------------------------------- */

static bool starts_0x(const char *p)
{
    return p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

/* Index of the first ';' outside double quotes, or -1. */
static long find_semicolon(const char *p)
{
    bool quoted = false;
    long i;
    for (i = 0; p[i]; i++) {
        if (p[i] == '"')
            quoted = !quoted;
        else if (p[i] == ';' && !quoted)
            return i;
    }
    return -1;
}

/* Does this statement belong to apdutool syntax? Decided per statement so files can mix. */
static bool is_apdutool(const char *p)
{
    size_t n = 0;
    char *copy;
    bool r;
    if (starts_0x(p))
        return true;
    while (p[n] && !is_blank((unsigned char)p[n]) && p[n] != ';')
        n++;
    if (kw(p, n, "powerup") || kw(p, n, "powerdown") || kw(p, n, "output") || kw(p, n, "delay"))
        return true;
    if (!kw(p, n, "echo") || *skip_ws(p + n) != '"')
        return false;
    /* `echo "x"` without ';' is the apdu-shell echo, which prints the quotes too. */
    copy = dup_str(p);
    if (!copy)
        return false;
    strip_comment(copy, false);
    r = find_semicolon(copy) >= 0;
    free(copy);
    return r;
}

/* `0xCLA 0xINS 0xP1 0xP2 0xLC [data] 0xLE` */
static int exec_apdutool_apdu(struct tse_script *s, const struct loc *l, const char *p)
{
    uint8_t *b = s->cbuf;
    size_t n = 0, lc;
    for (;;) {
        const char *w;
        size_t wn;
        if (!next_word(&p, &w, &wn))
            break;
        if (wn < 3 || wn > 4 || !starts_0x(w) || tse_hex_digit((unsigned char)w[2]) < 0 ||
            (wn == 4 && tse_hex_digit((unsigned char)w[3]) < 0))
            return fail(s, l, "apdutool: expected a byte like 0x1F, got '%.*s'",
                        (int)(wn > 40 ? 40 : wn), w);
        if (n >= CAPDU_MAX)
            return fail(s, l, "apdutool: APDU longer than %u bytes", CAPDU_MAX);
        b[n++] = (uint8_t)(wn == 3 ? tse_hex_digit((unsigned char)w[2])
                                   : tse_hex_digit((unsigned char)w[2]) << 4 |
                                         tse_hex_digit((unsigned char)w[3]));
    }
    if (n < 6)
        return fail(s, l, "apdutool: expected CLA INS P1 P2 LC [DATA] LE, got %zu bytes", n);
    lc = b[4];
    if (n != lc + 6)
        return fail(s, l, "apdutool: LC is 0x%02X but %zu data bytes follow before LE",
                    (unsigned)lc, n - 6);
    if (lc == 0) {
        /* No data: header and Le only (case 2). */
        b[4] = b[5];
        n = 5;
    }
    return exchange(s, l, b, n, s->channel[s->iface], NULL, false, "transmit");
}

/* One apdutool statement without its ';'. Anything else falls back to apdu-shell syntax. */
static int exec_apdutool_stmt(struct tse_script *s, const struct loc *l, char *stmt)
{
    const char *p = skip_ws(stmt);
    size_t n;
    rtrim(stmt);
    if (!*p)
        return 0;
    if (starts_0x(p))
        return exec_apdutool_apdu(s, l, p);
    n = word_len(p);
    if (kw(p, n, "echo") && *skip_ws(p + n) == '"') {
        const char *q = skip_ws(p + n) + 1;
        const char *end = strrchr(q, '"');
        if (!end || *skip_ws(end + 1))
            return fail(s, l, "echo: expected \"text\"");
        fprintf(s->out, "%.*s\n", (int)(end - q), q);
        return 0;
    }
    return exec_tse(s, l, p);
}

/*
 * A line that starts in apdutool syntax: run each ';'-terminated statement. A trailing
 * statement without ';' runs as is, except that when `carry` is given (a stream) an
 * unfinished APDU is handed back to continue on the next line.
 */
static int exec_apdutool_text(struct tse_script *s, const struct loc *l, const char *text,
                              struct sbuf *carry)
{
    char *buf = dup_str(text), *p;
    int result = 0;
    if (!buf)
        return fail(s, l, "out of memory");
    strip_comment(buf, false);
    p = buf;
    for (;;) {
        long semi = find_semicolon(p);
        int rc;
        if (semi < 0) {
            const char *rest = skip_ws(p);
            if (!*rest)
                break;
            if (carry && starts_0x(rest)) {
                sb_add(carry, rest, strlen(rest));
                break;
            }
            rc = exec_apdutool_stmt(s, l, p);
        } else {
            p[semi] = '\0';
            rc = exec_apdutool_stmt(s, l, p);
            p += semi + 1;
        }
        if (rc == 2 || s->exit_req) {
            result = 2;
            break;
        }
        if (rc)
            result = 1;
        if ((rc && s->stop_on_fail) || s->unwind || semi < 0)
            break;
    }
    free(buf);
    return result;
}

static int exec_line(struct tse_script *s, const struct loc *l, const char *text,
                     struct sbuf *carry)
{
    const char *p = skip_ws(text);
    if (!*p || *p == '#' || (p[0] == '/' && p[1] == '/'))
        return 0;
    if (is_apdutool(p))
        return exec_apdutool_text(s, l, p, carry);
    return exec_tse(s, l, p);
}

/* ---- Streams ------------------------------------------------------------------------------ */

/* Read one line without its newline. 1 = a line, 0 = end of input. Lines longer than
 * TEXT_MAX are consumed and flagged rather than buffered. */
static int read_line(FILE *in, struct sbuf *b, bool *too_long, bool *has_nul)
{
    char chunk[256];
    size_t n = 0;
    int c;
    bool any = false;
    b->len = 0;
    b->bad = false;
    sb_add(b, "", 0);
    *too_long = false;
    *has_nul = false;
    while ((c = getc(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (c == '\0')
            *has_nul = true;
        chunk[n++] = (char)c;
        if (n == sizeof(chunk)) {
            sb_add(b, chunk, n);
            n = 0;
        }
    }
    sb_add(b, chunk, n);
    if (b->bad)
        *too_long = true;
    if (b->p && b->len && b->p[b->len - 1] == '\r' && !b->bad)
        b->p[--b->len] = '\0';
    return any;
}

/*
 * A line read while an apdutool APDU spans lines. Returns -1 when the line does not continue
 * it (the caller then runs the line by itself), else the result of running the statement
 * (0 while it is still incomplete).
 */
static int continue_apdu(struct tse_script *s, const char *file, struct sbuf *pend,
                         unsigned *pend_line, unsigned lineno, const char *t)
{
    char *copy = dup_str(t);
    const char *p;
    struct loc pl;
    struct sbuf stmt;
    int rc;
    pl.file = file;
    pl.line = *pend_line;
    if (!copy) {
        sb_free(pend);
        return fail(s, &pl, "out of memory");
    }
    strip_comment(copy, false);
    p = skip_ws(copy);
    /* Only bytes continue an APDU, so that a forgotten ';' cannot swallow the whole file. */
    if (*p && !starts_0x(p)) {
        free(copy);
        sb_free(pend);
        fail(s, &pl, "apdutool statement not terminated by ';'");
        return -1;
    }
    sb_add(pend, " ", 1);
    sb_add(pend, copy, strlen(copy));
    free(copy);
    if (pend->bad) {
        sb_free(pend);
        return fail(s, &pl, "statement longer than %u bytes", (unsigned)TEXT_MAX);
    }
    if (find_semicolon(sb_str(pend)) < 0)
        return 0;
    stmt = *pend;
    memset(pend, 0, sizeof(*pend));
    rc = exec_apdutool_text(s, &pl, sb_str(&stmt), pend);
    sb_free(&stmt);
    if (pend->len)
        *pend_line = lineno;
    if (pend->bad) {
        sb_free(pend);
        rc = fail(s, &pl, "statement longer than %u bytes", (unsigned)TEXT_MAX);
    }
    return rc;
}

static int stream_run(struct tse_script *s, FILE *in, const char *file)
{
    struct sbuf line = {0}, pend = {0};
    unsigned before = s->st.failures, lineno = 0, pend_line = 0;
    bool too_long, has_nul;

    s->depth++;
    while (!s->exit_req && !s->unwind && read_line(in, &line, &too_long, &has_nul)) {
        struct loc l;
        const char *t;
        int rc;
        lineno++;
        l.file = file;
        l.line = lineno;
        if (too_long || line.bad) {
            rc = fail(s, &l, "line longer than %u bytes", (unsigned)TEXT_MAX);
        } else if (has_nul) {
            rc = fail(s, &l, "NUL byte in line");
        } else {
            t = sb_str(&line);
            if (lineno == 1 && strncmp(t, "\xEF\xBB\xBF", 3) == 0)
                t += 3;
            rc = -1;
            if (pend.len) {
                rc = continue_apdu(s, file, &pend, &pend_line, lineno, t);
                if (rc == -1 && s->stop_on_fail)
                    break;
            }
            if (rc == -1) {
                rc = exec_line(s, &l, t, &pend);
                if (pend.len)
                    pend_line = lineno;
                if (pend.bad) {
                    rc = fail(s, &l, "statement longer than %u bytes", (unsigned)TEXT_MAX);
                    sb_free(&pend);
                }
            }
        }
        if (rc == 2)
            break;
        if (rc && s->stop_on_fail)
            break;
    }
    if (pend.len && !s->exit_req && !s->unwind && !(s->stop_on_fail && s->st.failures != before)) {
        struct loc pl;
        pl.file = file;
        pl.line = pend_line;
        fail(s, &pl, "apdutool statement not terminated by ';'");
    }
    sb_free(&pend);
    sb_free(&line);
    s->depth--;
    if (ferror(in))
        return -1;
    return (int)(s->st.failures - before);
}

/* ---- Public API --------------------------------------------------------------------------- */

struct tse_script *tse_script_new(const struct tse_target_ops *ops, void *target,
                                  const struct tse_script_opts *opts)
{
    struct tse_script *s;
    if (!ops)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cbuf = malloc(CAPDU_MAX);
    s->rbuf = malloc(TSE_RAPDU_MAX);
    s->wbuf = malloc(TSE_RAPDU_MAX + 64);
    s->scp = calloc(TSE_IF_COUNT, sizeof(*s->scp));
    if (!s->cbuf || !s->rbuf || !s->wbuf || !s->scp) {
        tse_script_free(s);
        return NULL;
    }
    s->ops = ops;
    s->t = target;
    s->out = opts && opts->out ? opts->out : stdout;
    s->err = opts && opts->err ? opts->err : stderr;
    s->timing = opts && opts->timing;
    s->trace = opts && opts->trace;
    s->stop_on_fail = opts && opts->stop_on_fail;
    s->auto_power = opts && opts->auto_power;
    s->output = true;
    s->iface = TSE_IF_CONTACT;
    return s;
}

void tse_script_free(struct tse_script *s)
{
    size_t i;
    if (!s)
        return;
    for (i = 0; i < s->nvars; i++) {
        free(s->vars[i].name);
        free(s->vars[i].v);
    }
    free(s->vars);
    free(s->cbuf);
    free(s->rbuf);
    if (s->psam)
        tse_psam_free(s->psam); /* wipes the keys */
    free(s->psam);
    free(s->wterm);
    free(s->wbuf);
    if (s->scp)
        memset(s->scp, 0, TSE_IF_COUNT * sizeof(*s->scp)); /* session keys */
    free(s->scp);
    free(s);
}

/* Leaving the outermost public call ends the effect of `exit` and of an include loop. */
static void leave(struct tse_script *s)
{
    if (--s->busy == 0) {
        s->exit_req = false;
        s->unwind = false;
    }
}

int tse_script_run_line(struct tse_script *s, const char *text, const char *file, unsigned line)
{
    struct loc l;
    int rc;
    if (!s || !text)
        return 1;
    l.file = file ? file : "<input>";
    l.line = line;
    s->busy++;
    rc = exec_line(s, &l, text, NULL);
    if (s->exit_req)
        rc = 2;
    leave(s);
    return rc;
}

int tse_script_run_stream(struct tse_script *s, FILE *in, const char *file)
{
    int rc;
    if (!s || !in)
        return -1;
    s->busy++;
    rc = stream_run(s, in, file ? file : "<stream>");
    leave(s);
    return rc;
}

int tse_script_run_file(struct tse_script *s, const char *path)
{
    FILE *f;
    int rc;
    if (!s || !path)
        return -1;
    f = fopen(path, "r");
    if (!f)
        return -1;
    rc = tse_script_run_stream(s, f, path);
    fclose(f);
    return rc;
}

void tse_script_stats(const struct tse_script *s, struct tse_script_stats *st)
{
    if (!st)
        return;
    if (!s) {
        memset(st, 0, sizeof(*st));
        return;
    }
    *st = s->st;
}

void tse_script_where(const struct tse_script *s, int *iface, unsigned *channel)
{
    if (iface)
        *iface = s ? s->iface : TSE_IF_CONTACT;
    if (channel)
        *channel = s ? s->channel[s->iface] : 0;
}
