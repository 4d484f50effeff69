/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the apdu-shell script engine (src/shell/script.c) against a mock target, so
 * they check the engine alone: what it prints, what it counts and the exact bytes it sends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shell/script.h"
#include "tse/error.h"

/* ---- Mock target ---------------------------------------------------------------------------- */

struct mock {
    bool powered[2];
    unsigned power_ons[2];
    unsigned resets;
    uint8_t last[512]; /* the last C-APDU received */
    size_t last_len;
    unsigned ncmds;
    unsigned long tear; /* counts down on each "store write" (INS D6) */
    uint8_t next_channel;
    uint8_t rnd[64];
    size_t rnd_len;
    uint64_t counter;
};

static int m_power_on(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    static const uint8_t atr_c[] = {0x3B, 0x02, 0x14, 0x50};
    static const uint8_t ats[] = {0x05, 0x78, 0x80, 0x70, 0x02};
    struct mock *m = t;
    const uint8_t *a = iface == 0 ? atr_c : ats;
    size_t n = iface == 0 ? sizeof(atr_c) : sizeof(ats);
    if (cap < n)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(atr, a, n);
    *len = n;
    m->powered[iface] = true;
    m->power_ons[iface]++;
    return 0;
}

static int m_reset(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    struct mock *m = t;
    if (!m->powered[iface])
        return TSE_ERR_POWERED_OFF;
    m->resets++;
    m->power_ons[iface]--; /* m_power_on counts; a warm reset is not a power on */
    return m_power_on(t, iface, atr, cap, len);
}

static int m_power_off(void *t, int iface)
{
    struct mock *m = t;
    m->powered[iface] = false;
    return 0;
}

static bool m_is_powered(void *t, int iface)
{
    struct mock *m = t;
    return m->powered[iface];
}

static int reply(uint8_t *r, size_t rcap, size_t *rlen, const uint8_t *data, size_t n, uint16_t sw)
{
    if (rcap < n + 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (n)
        memcpy(r, data, n);
    r[n] = (uint8_t)(sw >> 8);
    r[n + 1] = (uint8_t)sw;
    *rlen = n + 2;
    return 0;
}

static int m_transmit(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                      size_t *rlen)
{
    static const uint8_t five[] = {0x01, 0x02, 0x03, 0x04, 0x05};
    struct mock *m = t;
    if (!m->powered[iface])
        return TSE_ERR_POWERED_OFF;
    m->ncmds++;
    m->last_len = clen < sizeof(m->last) ? clen : sizeof(m->last);
    memcpy(m->last, c, m->last_len);
    if (clen < 4)
        return reply(r, rcap, rlen, NULL, 0, 0x6700);
    switch (c[1]) {
    case 0xD6:
        if (m->tear && --m->tear == 0) {
            m->powered[0] = m->powered[1] = false;
            return TSE_ERR_TORN;
        }
        return reply(r, rcap, rlen, NULL, 0, 0x9000);
    case 0x70:
        if (c[2] == 0x00) {
            uint8_t ch = ++m->next_channel;
            return reply(r, rcap, rlen, &ch, 1, 0x9000);
        }
        return reply(r, rcap, rlen, NULL, 0, 0x9000);
    case 0xCA:
        return reply(r, rcap, rlen, five, sizeof(five), 0x9000);
    case 0xEE: /* echo the command data */
        if (clen < 5 || clen < 5u + c[4])
            return reply(r, rcap, rlen, NULL, 0, 0x6700);
        return reply(r, rcap, rlen, c + 5, c[4], 0x9000);
    case 0x6C:
        return reply(r, rcap, rlen, NULL, 0, 0x6C10);
    default:
        return reply(r, rcap, rlen, NULL, 0, 0x9000);
    }
}

static int m_tear_at(void *t, unsigned long n)
{
    struct mock *m = t;
    m->tear = n;
    return 0;
}

static int m_queue_random(void *t, const uint8_t *b, size_t len)
{
    struct mock *m = t;
    if (len > sizeof(m->rnd))
        return TSE_ERR_NO_SPACE;
    memcpy(m->rnd, b, len);
    m->rnd_len = len;
    return 0;
}

static int m_set_counter(void *t, const char *name, uint64_t v)
{
    struct mock *m = t;
    if (strcmp(name, "seq") != 0)
        return TSE_ERR_NOT_FOUND;
    m->counter = v;
    return 0;
}

static int m_get_counter(void *t, const char *name, uint64_t *v)
{
    struct mock *m = t;
    if (strcmp(name, "seq") != 0)
        return TSE_ERR_NOT_FOUND;
    *v = m->counter;
    return 0;
}

static int m_cl_params(void *t, struct tse_cl_params *p)
{
    static const uint8_t uid[] = {0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    (void)t;
    memcpy(p->uid, uid, sizeof(uid));
    p->uid_len = sizeof(uid);
    p->atqa[0] = 0x00;
    p->atqa[1] = 0x44;
    p->sak = 0x20;
    p->ats[0] = 0x05;
    p->ats[1] = 0x78;
    p->ats_len = 2;
    return 0;
}

static const struct tse_target_ops mock_ops = {
    .name = "mock",
    .power_on = m_power_on,
    .power_off = m_power_off,
    .reset = m_reset,
    .is_powered = m_is_powered,
    .transmit = m_transmit,
    .tear_at = m_tear_at,
    .queue_random = m_queue_random,
    .set_counter = m_set_counter,
    .get_counter = m_get_counter,
    .cl_params = m_cl_params,
};

/* ---- Fixture ----------------------------------------------------------------------------------
 */

struct fx {
    struct mock m;
    FILE *out, *err;
    struct tse_script *s;
    char *outs, *errs; /* last slurp */
};

static struct fx *fx_new(bool auto_power, bool stop_on_fail)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct tse_script_opts o;
    assert_non_null(f);
    f->out = tmpfile();
    f->err = tmpfile();
    assert_non_null(f->out);
    assert_non_null(f->err);
    memset(&o, 0, sizeof(o));
    o.out = f->out;
    o.err = f->err;
    o.auto_power = auto_power;
    o.stop_on_fail = stop_on_fail;
    f->s = tse_script_new(&mock_ops, &f->m, &o);
    assert_non_null(f->s);
    return f;
}

static char *slurp(FILE *fp)
{
    long n;
    char *b;
    fflush(fp);
    n = ftell(fp);
    assert_true(n >= 0);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    rewind(fp);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    return b;
}

/* Read what was printed so far into f->outs / f->errs (both files keep growing). */
static void fx_read(struct fx *f)
{
    free(f->outs);
    free(f->errs);
    f->outs = slurp(f->out);
    f->errs = slurp(f->err);
}

static void fx_free(struct fx *f)
{
    tse_script_free(f->s);
    fclose(f->out);
    fclose(f->err);
    free(f->outs);
    free(f->errs);
    free(f);
}

static int run(struct fx *f, const char *line)
{
    return tse_script_run_line(f->s, line, "t.tse", 7);
}

static int run_text(struct fx *f, const char *text)
{
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    int rc;
    assert_non_null(in);
    rc = tse_script_run_stream(f->s, in, "s.tse");
    fclose(in);
    return rc;
}

static void assert_sent(const struct fx *f, const uint8_t *want, size_t len)
{
    assert_int_equal(f->m.last_len, len);
    assert_memory_equal(f->m.last, want, len);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected to find \"%s\" in:\n%s", needle, hay);
}

static struct tse_script_stats stats(const struct fx *f)
{
    struct tse_script_stats st;
    tse_script_stats(f->s, &st);
    return st;
}

/* ---- Expectation matcher ----------------------------------------------------------------------
 */

static void test_match_exact(void **state)
{
    static const uint8_t ok[] = {0x90, 0x00};
    static const uint8_t data[] = {0x01, 0x02, 0x90, 0x00};
    (void)state;
    assert_int_equal(tse_expect_match("9000", ok, 2), 1);
    assert_int_equal(tse_expect_match(" 90 00 ", ok, 2), 1);
    assert_int_equal(tse_expect_match("6A82", ok, 2), 0);
    assert_int_equal(tse_expect_match("9000", data, 4), 0);
    assert_int_equal(tse_expect_match("0102 9000", data, 4), 1);
    assert_int_equal(tse_expect_match("0102 9000 00", data, 4), 0);
    assert_int_equal(tse_expect_match("01 9000", data, 4), 0);
}

static void test_match_wildcards(void **state)
{
    static const uint8_t wl[] = {0x6C, 0x10};
    static const uint8_t ok[] = {0x90, 0x00};
    static const uint8_t d[] = {0x01, 0x02, 0x02, 0x03, 0x90, 0x00};
    (void)state;
    assert_int_equal(tse_expect_match("6CXX", wl, 2), 1);
    assert_int_equal(tse_expect_match("6cxx", wl, 2), 1);
    assert_int_equal(tse_expect_match("6X1X", wl, 2), 1);
    assert_int_equal(tse_expect_match("6DXX", wl, 2), 0);
    assert_int_equal(tse_expect_match("XXXX", d, 6), 0);
    /* star at the start */
    assert_int_equal(tse_expect_match("*9000", ok, 2), 1);
    assert_int_equal(tse_expect_match("*9000", d, 6), 1);
    assert_int_equal(tse_expect_match("*9001", d, 6), 0);
    /* star in the middle, with backtracking over a repeated byte */
    assert_int_equal(tse_expect_match("01 * 03 9000", d, 6), 1);
    assert_int_equal(tse_expect_match("01*02 03 9000", d, 6), 1);
    assert_int_equal(tse_expect_match("01 * 04 9000", d, 6), 0);
    /* star at the end, and alone */
    assert_int_equal(tse_expect_match("0102*", d, 6), 1);
    assert_int_equal(tse_expect_match("0103*", d, 6), 0);
    assert_int_equal(tse_expect_match("*", d, 6), 1);
    assert_int_equal(tse_expect_match("**", ok, 2), 1);
    assert_int_equal(tse_expect_match("*02*", d, 6), 1);
    assert_int_equal(tse_expect_match("*05*", d, 6), 0);
    /* `*` may match nothing */
    assert_int_equal(tse_expect_match("0102*02039000", d, 6), 1);
}

static void test_match_malformed(void **state)
{
    static const uint8_t ok[] = {0x90, 0x00};
    (void)state;
    assert_int_equal(tse_expect_match("", ok, 2), -1);
    assert_int_equal(tse_expect_match("   ", ok, 2), -1);
    assert_int_equal(tse_expect_match("900", ok, 2), -1); /* odd nibble count */
    assert_int_equal(tse_expect_match("9000 0", ok, 2), -1);
    assert_int_equal(tse_expect_match("9G00", ok, 2), -1);
    assert_int_equal(tse_expect_match("9*000", ok, 2), -1); /* `*` inside a byte */
    assert_int_equal(tse_expect_match("TORN", ok, 2), -1);  /* a keyword, not a pattern */
    assert_int_equal(tse_expect_match(NULL, ok, 2), -1);
    assert_int_equal(tse_expect_match("9000", NULL, 2), -1);
}

/* ---- APDU lines -------------------------------------------------------------------------------
 */

static void test_apdu_pass_and_fail(void **state)
{
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00};
    struct fx *f = fx_new(true, false);
    struct tse_script_stats st;
    (void)state;

    assert_int_equal(run(f, "00 A4 0400 02 a000 => 9000  # select"), 0);
    assert_sent(f, sel, sizeof(sel));
    assert_int_equal(run(f, "00CA000000 => 9000"), 1);
    assert_int_equal(run(f, "00CA000000 => 0102030405 9000 // ok"), 0);
    assert_int_equal(run(f, "00CA000000 => *9000"), 0);
    assert_int_equal(run(f, "006C000000 => 6CXX"), 0);
    fx_read(f);
    assert_contains(f->outs, "-> 00A4040002A000\n<- 9000\n");
    assert_contains(f->outs, "-> 00CA000000\n<- 0102030405 9000\n");
    assert_contains(f->errs, "t.tse:7: expected 9000\n");
    assert_contains(f->errs, "t.tse:7: actual   0102030405 9000\n");
    /* the silent auto power on prints no ATR */
    assert_null(strstr(f->outs, "ATR"));
    st = stats(f);
    assert_int_equal(st.exchanges, 5);
    assert_int_equal(st.expectations, 5);
    assert_int_equal(st.failures, 1);
    fx_free(f);
}

static void test_apdu_malformed_lines(void **state)
{
    struct fx *f = fx_new(true, false);
    (void)state;
    assert_int_equal(run(f, "00A40"), 1);
    assert_int_equal(run(f, "00A4G0"), 1);
    assert_int_equal(run(f, "00A4040000 =>"), 1);
    assert_int_equal(run(f, "00A4040000 => 90 0"), 1);
    assert_int_equal(run(f, "00A4040000 => 9Z00"), 1);
    assert_int_equal(run(f, "   "), 0);
    assert_int_equal(run(f, "# 00A4040000"), 0);
    assert_int_equal(run(f, "// nothing"), 0);
    fx_read(f);
    assert_contains(f->errs, "t.tse:7: error: APDU: odd number of hex digits (5)");
    assert_contains(f->errs, "t.tse:7: error: APDU: unexpected character 'G'");
    assert_contains(f->errs, "t.tse:7: error: nothing after '=>'");
    assert_contains(f->errs, "t.tse:7: error: malformed expectation '90 0'");
    /* nothing malformed is sent */
    assert_int_equal(f->m.ncmds, 0);
    assert_int_equal(stats(f).failures, 5);
    fx_free(f);
}

static void test_unknown_command(void **state)
{
    struct fx *f = fx_new(true, false);
    (void)state;
    assert_int_equal(run(f, "frobnicate now"), 1);
    assert_int_equal(run(f, "power sideways"), 1);
    assert_int_equal(run(f, "HELP"), 0);
    fx_read(f);
    assert_contains(f->errs, "t.tse:7: error: unknown command 'frobnicate' (try 'help')\n");
    assert_contains(f->errs, "power: expected 'on' or 'off'");
    assert_contains(f->outs, "channel open");
    assert_int_equal(stats(f).failures, 2);
    fx_free(f);
}

/* ---- Variables ----------------------------------------------------------------------------------
 */

static void test_variables_and_slices(void **state)
{
    static const uint8_t want[] = {0x00, 0xEE, 0x00, 0x00, 0x06, 0xAA,
                                   0x02, 0x03, 0x05, 0x90, 0x00};
    struct fx *f = fx_new(true, false);
    (void)state;

    assert_int_equal(run(f, "$R"), 1); /* no response yet */
    assert_int_equal(run(f, "00CA000000"), 0);
    assert_int_equal(run(f, "let A = $R[1:3]"), 0);
    assert_int_equal(run(f, "let B=AA ${A}$R[-1:] $SW"), 0);
    assert_int_equal(run(f, "echo A=$A B=${B} last=$R[4] cost $5"), 0);
    assert_int_equal(run(f, "00EE0000 06 $B => $B 9000"), 0);
    assert_sent(f, want, sizeof(want));
    assert_int_equal(run(f, "let C = $B[:2]"), 0);
    assert_int_equal(run(f, "00EE000002 $C => AA02 $SW"), 0);
    assert_int_equal(run(f, "let E ="), 0);
    assert_int_equal(run(f, "echo [$E]"), 0);
    fx_read(f);
    assert_contains(f->outs, "A=0203 B=AA0203059000 last=05 cost $5\n");
    assert_contains(f->outs, "[]\n");

    assert_int_equal(run(f, "echo $NOPE"), 1);
    assert_int_equal(run(f, "let D = $A[0:3]"), 1);
    assert_int_equal(run(f, "let D = $A[3]"), 1);
    assert_int_equal(run(f, "let D = $A[1:0]"), 1);
    assert_int_equal(run(f, "let D = $A[x]"), 1);
    assert_int_equal(run(f, "let R = 01"), 1);
    assert_int_equal(run(f, "let 9X = 01"), 1);
    assert_int_equal(run(f, "let D = 0"), 1);
    assert_int_equal(run(f, "let D 01"), 1);
    assert_int_equal(run(f, "echo ${A"), 1);
    fx_read(f);
    assert_contains(f->errs, "error: unknown variable $NOPE");
    assert_contains(f->errs, "error: $A[0:3]: slice out of range (2 bytes)");
    assert_contains(f->errs, "error: $R: no response yet");
    assert_int_equal(stats(f).failures, 11);
    fx_free(f);
}

/* ---- apdutool syntax
 * ------------------------------------------------------------------------------ */

static void test_apdutool_statements(void **state)
{
    static const uint8_t case4[] = {0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x7F};
    static const uint8_t case2[] = {0x80, 0xCA, 0x9F, 0x7F, 0x00};
    struct fx *f = fx_new(false, false);
    (void)state;

    assert_int_equal(run(f, "powerup;"), 0);
    assert_int_equal(f->m.power_ons[0], 1);
    assert_int_equal(run(f, "0x00 0xA4 0x04 0x00 0x02 0x3F 0x00 0x7F;"), 0);
    assert_sent(f, case4, sizeof(case4));
    assert_int_equal(run(f, "0x80 0xca 0x9F 0x7F 0x00 0x00; // GET DATA"), 0);
    assert_sent(f, case2, sizeof(case2));
    assert_int_equal(run(f, "echo \"hello; world\";  output off; 0x00 0xA4 0x04 0x00 0x00 0x00;"),
                     0);
    assert_int_equal(run(f, "output on; delay 100;"), 0);
    assert_int_equal(run(f, "echo \"raw\""), 0); /* no ';': the apdu-shell echo */
    fx_read(f);
    assert_contains(f->outs, "ATR: 3B021450\n");
    assert_contains(f->outs, "-> 00A40400023F007F\n<- 9000\n");
    assert_contains(f->outs, "hello; world\n");
    assert_null(strstr(f->outs, "-> 00A4040000\n")); /* output off */
    assert_contains(f->outs, "\"raw\"\n");
    assert_int_equal(f->m.ncmds, 3);

    /* LC does not match the bytes that follow */
    assert_int_equal(run(f, "0x00 0xA4 0x04 0x00 0x02 0x3F 0x7F;"), 1);
    assert_int_equal(run(f, "0x00 0xA4 0x04 0x00 0x00;"), 1);
    assert_int_equal(run(f, "0x00 0xA4 0x04 0x00 0x00 0x100;"), 1);
    assert_int_equal(f->m.ncmds, 3);
    assert_int_equal(run(f, "powerdown;"), 0);
    assert_false(f->m.powered[0]);
    fx_read(f);
    assert_contains(f->errs, "LC is 0x02 but 1 data bytes follow before LE");
    fx_free(f);
}

static void test_apdutool_multiline(void **state)
{
    static const uint8_t want[] = {0x00, 0xA4, 0x04, 0x00, 0x03, 0xA0, 0x00, 0x01, 0x00};
    static const uint8_t want2[] = {0x00, 0xB0, 0x00, 0x00, 0x10};
    struct fx *f = fx_new(false, false);
    (void)state;
    assert_int_equal(run_text(f, "// apdutool script\n"
                                 "powerup;\n"
                                 "0x00 0xA4 0x04 0x00 0x03 // SELECT\n"
                                 "  0xA0 0x00\n"
                                 "\n"
                                 "  0x01 0x00;\n"
                                 "00CA000000 => *9000\n"),
                     0);
    assert_int_equal(f->m.ncmds, 2);
    assert_int_equal(run_text(f, "0x00 0xA4 0x04 0x00 0x03 0xA0 0x00 0x01 0x00; 0x00 0xB0\n"
                                 "0x00 0x00 0x00 0x10;\n"),
                     0);
    assert_int_equal(f->m.ncmds, 4);
    assert_sent(f, want2, sizeof(want2));
    f->m.ncmds = 0;
    assert_int_equal(run_text(f, "echo x\n0x00 0xA4 0x04 0x00 0x03\n 0xA0 0x00 0x01 0x00;\n"
                                 "0x00 0xA4\n"),
                     1);
    assert_int_equal(f->m.ncmds, 1);
    assert_sent(f, want, sizeof(want));
    /* a forgotten ';' does not swallow the next statement */
    assert_int_equal(run_text(f, "0x00 0xA4 0x04 0x00 0x00 0x00\n// comment\necho next\n"), 1);
    assert_int_equal(f->m.ncmds, 1);
    fx_read(f);
    assert_contains(f->errs, "s.tse:4: error: apdutool statement not terminated by ';'");
    assert_contains(f->errs, "s.tse:1: error: apdutool statement not terminated by ';'");
    assert_contains(f->outs, "next\n");
    fx_free(f);
}

/* ---- Channels ----------------------------------------------------------------------------------
 */

static void test_channel_rewriting(void **state)
{
    static const struct {
        const char *use;
        uint8_t cla_in, cla_out;
    } cases[] = {
        {"channel use 1", 0x00, 0x01},  {"channel use 2", 0x00, 0x02},
        {"channel use 3", 0x00, 0x03},  {"channel use 3", 0x80, 0x83},
        {"channel use 4", 0x00, 0x40},  {"channel use 5", 0x80, 0xC1},
        {"channel use 19", 0x00, 0x4F}, {"channel use 0", 0x03, 0x03},
        {"CHANNEL USE 12", 0x01, 0x48},
    };
    struct fx *f = fx_new(true, false);
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[32];
        assert_int_equal(run(f, cases[i].use), 0);
        snprintf(line, sizeof(line), "%02XB0000000 => 9000", cases[i].cla_in);
        assert_int_equal(run(f, line), 0);
        assert_int_equal(f->m.last[0], cases[i].cla_out);
    }
    assert_int_equal(run(f, "channel use 20"), 1);
    assert_int_equal(run(f, "channel use 2"), 0);
    assert_int_equal(run(f, "FFB0000000"), 1); /* CLA FF has no channel bits */
    fx_read(f);
    assert_contains(f->errs, "CLA FF cannot address logical channel 2");
    assert_contains(f->errs, "channel use: channel must be 0..19");
    fx_free(f);
}

static void test_channel_open_close(void **state)
{
    static const uint8_t open[] = {0x00, 0x70, 0x00, 0x00, 0x01};
    static const uint8_t close[] = {0x00, 0x70, 0x80, 0x01, 0x00};
    struct fx *f = fx_new(true, false);
    int iface = -1;
    unsigned ch = 99;
    (void)state;
    assert_int_equal(run(f, "trace on"), 0);
    assert_int_equal(run(f, "channel open"), 0);
    assert_sent(f, open, sizeof(open));
    tse_script_where(f->s, &iface, &ch);
    assert_int_equal(iface, 0);
    assert_int_equal(ch, 1);
    assert_int_equal(run(f, "00CA000000"), 0);
    assert_int_equal(f->m.last[0], 0x01);
    /* the other interface keeps its own channel */
    assert_int_equal(run(f, "interface contactless"), 0);
    tse_script_where(f->s, &iface, &ch);
    assert_int_equal(iface, 1);
    assert_int_equal(ch, 0);
    assert_int_equal(run(f, "interface contact"), 0);
    assert_int_equal(run(f, "channel close"), 0);
    assert_sent(f, close, sizeof(close));
    tse_script_where(f->s, &iface, &ch);
    assert_int_equal(ch, 0);
    fx_read(f);
    assert_contains(f->outs, "[contact ch0] -> 0070000001\n[contact ch0] <- 01 9000\n"
                             "channel 1 opened\n");
    assert_contains(f->outs, "[contact ch1] -> 01CA000000\n");
    assert_contains(f->outs, "channel 1 closed\n");
    fx_free(f);
}

/* ---- Power cuts and power ----------------------------------------------------------------------
 */

static void test_torn(void **state)
{
    struct fx *f = fx_new(true, false);
    struct tse_script_stats st;
    (void)state;
    assert_int_equal(run(f, "tear at 2"), 0);
    assert_int_equal(f->m.tear, 2);
    assert_int_equal(run(f, "00D6000001AA => 9000"), 0);
    assert_int_equal(run(f, "00D6000001BB => TORN"), 0);
    fx_read(f);
    assert_contains(f->outs, "-> 00D6000001BB\n"
                             "<- (no response: power cut during a store write; the card is off)\n");
    /* the card is off and auto_power does not hide it */
    assert_int_equal(run(f, "00A4040000"), 1);
    fx_read(f);
    assert_contains(f->errs, "card is powered off (contact interface): use 'power on' or 'reset'");
    assert_int_equal(run(f, "reset"), 0);
    assert_int_equal(f->m.power_ons[0], 2);
    /* TORN expected but the command completed */
    assert_int_equal(run(f, "00D6000001AA => torn"), 1);
    /* a pattern expected but the power was cut */
    assert_int_equal(run(f, "tear at 1"), 0);
    assert_int_equal(run(f, "00D6000001AA => 9000"), 1);
    assert_int_equal(run(f, "$R"), 1); /* no response to refer to */
    assert_int_equal(run(f, "tear off"), 0);
    assert_int_equal(f->m.tear, 0);
    assert_int_equal(run(f, "tear at 0"), 1);
    fx_read(f);
    assert_contains(f->errs, "t.tse:7: expected TORN\nt.tse:7: actual   9000\n");
    assert_contains(f->errs, "t.tse:7: expected 9000\nt.tse:7: actual   TORN");
    st = stats(f);
    assert_int_equal(st.expectations, 4);
    assert_int_equal(st.failures, 5);
    fx_free(f);
}

static void test_auto_power(void **state)
{
    struct fx *f = fx_new(false, false);
    struct fx *g;
    unsigned ch = 99;
    (void)state;
    /* without auto_power: an error, nothing sent */
    assert_int_equal(run(f, "00A4040000"), 1);
    assert_int_equal(f->m.power_ons[0], 0);
    assert_int_equal(f->m.ncmds, 0);
    assert_int_equal(run(f, "power on"), 0);
    assert_int_equal(run(f, "00A4040000 => 9000"), 0);
    fx_read(f);
    assert_contains(f->outs, "ATR: 3B021450\n");
    fx_free(f);

    g = fx_new(true, false);
    assert_int_equal(run(g, "channel use 3"), 0);
    assert_int_equal(run(g, "00A4040000 => 9000"), 0);
    assert_int_equal(g->m.power_ons[0], 1);
    assert_int_equal(g->m.last[0], 0x03);
    /* the silent power on keeps the channel chosen before it */
    tse_script_where(g->s, NULL, &ch);
    assert_int_equal(ch, 3);
    assert_int_equal(run(g, "power on"), 0);
    tse_script_where(g->s, NULL, &ch);
    assert_int_equal(ch, 0);
    assert_int_equal(run(g, "power off"), 0);
    assert_int_equal(run(g, "00A4040000"), 1); /* powered once already: no silent power on */
    assert_int_equal(g->m.power_ons[0], 2);
    /* each interface is powered on by itself, once */
    assert_int_equal(run(g, "interface contactless"), 0);
    assert_int_equal(run(g, "00A4040000"), 0);
    assert_int_equal(g->m.power_ons[1], 1);
    assert_int_equal(run(g, "atr"), 0);
    assert_int_equal(run(g, "reset"), 0);
    assert_int_equal(g->m.resets, 1);
    fx_read(g);
    assert_contains(g->errs, "card is powered off (contact interface)");
    assert_contains(g->outs, "UID: 04112233445566\nATQA: 0044\nSAK: 20\nATS: 0578\n");
    assert_contains(g->outs, "ATS: 0578807002\n");
    fx_free(g);
}

static void test_counters_random(void **state)
{
    static const uint8_t rnd[] = {0x11, 0x22, 0x33};
    struct fx *f = fx_new(true, false);
    char msg[128];
    (void)state;
    assert_int_equal(run(f, "set counter seq 0x1F"), 0);
    assert_int_equal(f->m.counter, 31);
    assert_int_equal(run(f, "get counter seq"), 0);
    assert_int_equal(run(f, "set counter nope 1"), 1);
    assert_int_equal(run(f, "set counter seq -1"), 1);
    assert_int_equal(run(f, "set counter seq 18446744073709551616"), 1);
    assert_int_equal(run(f, "let X = 33"), 0);
    assert_int_equal(run(f, "set next-random 11 22 $X"), 0);
    assert_int_equal(f->m.rnd_len, 3);
    assert_memory_equal(f->m.rnd, rnd, 3);
    fx_read(f);
    assert_contains(f->outs, "seq = 31\n");
    snprintf(msg, sizeof(msg), "t.tse:7: error: set counter: %s\n",
             tse_strerror(TSE_ERR_NOT_FOUND));
    assert_contains(f->errs, msg);
    fx_free(f);
}

/* A target that can do nothing but exchange APDUs, like a plain reader. */
static void test_unsupported(void **state)
{
    static const struct tse_target_ops bare = {.name = "bare", .transmit = m_transmit};
    struct mock m;
    FILE *err = tmpfile();
    struct tse_script_opts o;
    struct tse_script *s;
    char *e;
    (void)state;
    memset(&m, 0, sizeof(m));
    memset(&o, 0, sizeof(o));
    o.err = err;
    o.out = err;
    s = tse_script_new(&bare, &m, &o);
    assert_non_null(s);
    assert_int_equal(tse_script_run_line(s, "tear at 3", "u", 1), 1);
    assert_int_equal(tse_script_run_line(s, "power on", "u", 2), 1);
    e = slurp(err);
    assert_contains(e, "u:1: error: tear: not supported by this target\n");
    assert_contains(e, "u:2: error: power on: not supported by this target\n");
    free(e);
    tse_script_free(s);
    fclose(err);
}

/* ---- Streams, include, stop_on_fail, exit -------------------------------------------------------
 */

static const char *tmp_dir(void)
{
    const char *d = getenv("TSE_TEST_TMP");
    if (!d || !*d)
        d = "/tmp";
    if (mkdir(d, 0777) != 0 && errno != EEXIST)
        fail_msg("cannot create %s", d);
    return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_include(void **state)
{
    const char *d = tmp_dir();
    char path[1024];
    struct fx *f = fx_new(true, false);
    (void)state;
    write_file(d, "tse_inc_sub.tse", "let K = 0102\necho in sub\n");
    write_file(d, "tse_inc_main.tse", "include tse_inc_sub.tse\n00EE000002 $K => 0102 9000\n");
    snprintf(path, sizeof(path), "%s/tse_inc_main.tse", d);
    assert_int_equal(tse_script_run_file(f->s, path), 0);
    fx_read(f);
    assert_contains(f->outs, "in sub\n");

    /* a file that includes itself stops after 16 levels, once, and the script goes on */
    write_file(d, "tse_inc_loop.tse", "include tse_inc_loop.tse\ninclude tse_inc_loop.tse\n");
    write_file(d, "tse_inc_top.tse", "include tse_inc_loop.tse\necho after\n");
    snprintf(path, sizeof(path), "%s/tse_inc_top.tse", d);
    assert_int_equal(tse_script_run_file(f->s, path), 1);
    fx_read(f);
    assert_contains(f->errs, "tse_inc_loop.tse:1: error: include: nested more than 16 levels");
    assert_contains(f->outs, "after\n");

    assert_int_equal(tse_script_run_file(f->s, "/nonexistent/x.tse"), -1);
    assert_int_equal(run(f, "include /nonexistent/x.tse"), 1);
    assert_int_equal(run(f, "include /dev/null"), 1); /* not a regular file */
    assert_int_equal(stats(f).failures, 3);
    fx_free(f);
}

static void test_stop_on_fail(void **state)
{
    const char *text = "00CA000000 => 9000\nbogus\n00A4040000 => 9000\n";
    struct fx *f = fx_new(true, true);
    struct fx *g = fx_new(true, false);
    (void)state;
    assert_int_equal(run_text(f, text), 1);
    assert_int_equal(f->m.ncmds, 1);
    assert_int_equal(run_text(g, text), 2);
    assert_int_equal(g->m.ncmds, 2);
    fx_read(g);
    assert_contains(g->errs, "s.tse:1: expected 9000\n");
    assert_contains(g->errs, "s.tse:2: error: unknown command 'bogus'");
    fx_free(f);
    fx_free(g);
}

static void test_exit(void **state)
{
    struct fx *f = fx_new(true, false);
    (void)state;
    assert_int_equal(run(f, "exit"), 2);
    assert_int_equal(run(f, "QUIT"), 2);
    assert_int_equal(run(f, "echo still here"), 0);
    assert_int_equal(run_text(f, "echo one\nexit\necho two\n"), 0);
    fx_read(f);
    assert_contains(f->outs, "one\n");
    assert_null(strstr(f->outs, "two\n"));
    fx_free(f);
}

static void test_timing_output(void **state)
{
    struct fx *f = fx_new(true, false);
    (void)state;
    assert_int_equal(run(f, "timing on"), 0);
    assert_int_equal(run(f, "00A4040000"), 0);
    assert_int_equal(run(f, "timing maybe"), 1);
    fx_read(f);
    assert_contains(f->outs, "<- 9000  (");
    assert_contains(f->outs, " ms)\n");
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_exact),          cmocka_unit_test(test_match_wildcards),
        cmocka_unit_test(test_match_malformed),      cmocka_unit_test(test_apdu_pass_and_fail),
        cmocka_unit_test(test_apdu_malformed_lines), cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_variables_and_slices), cmocka_unit_test(test_apdutool_statements),
        cmocka_unit_test(test_apdutool_multiline),   cmocka_unit_test(test_channel_rewriting),
        cmocka_unit_test(test_channel_open_close),   cmocka_unit_test(test_torn),
        cmocka_unit_test(test_auto_power),           cmocka_unit_test(test_counters_random),
        cmocka_unit_test(test_unsupported),          cmocka_unit_test(test_include),
        cmocka_unit_test(test_stop_on_fail),         cmocka_unit_test(test_exit),
        cmocka_unit_test(test_timing_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
