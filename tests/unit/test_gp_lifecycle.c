/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every life cycle transition, legal and illegal, as a table: the card (SET STATUS P1 80, by
 * the ISD and by SSDs with and without Card Lock / Card Terminate), applications and
 * security domains (SET STATUS P1 40). Each row starts from a fresh card, reaches the
 * starting state, asks for the transition and checks the status word and the state GET
 * STATUS reports afterwards (unchanged when refused).
 */
#include "tse_test.h"

static const uint8_t KEY[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};

#define APP "F07473654449410177"
#define SSD "F074736553534401"

static uint16_t cmd(struct tse_card *c, struct tse_scp_session *h, const char *fmt, ...)
{
    char hex[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hex, sizeof(hex), fmt, ap);
    va_end(ap);
    uint16_t sw = 0;
    assert_int_equal(tt_wrapped(c, h, hex, &sw), 0);
    return sw;
}

static struct tse_card *card_in(const char *life_cycle, char *p, size_t cap)
{
    char prof[200];
    snprintf(prof, sizeof(prof), "[card]\nlife_cycle = %s\n", life_cycle);
    return tt_card(prof, p, cap);
}

/* Life cycle byte of `aid_hex` from GET STATUS (P1 40, or 80 for the ISD), via the session. */
static int state_of(struct tse_card *c, struct tse_scp_session *h, uint8_t p1, const char *aid)
{
    char hex[100];
    snprintf(hex, sizeof(hex), "80F2%02X02%02X4F%02X%s00", p1, 2 + (int)strlen(aid) / 2,
             (int)strlen(aid) / 2, aid);
    uint8_t plain[100], wire[160], r[300], out[300];
    size_t wl, rl, ol;
    int n = tse_hex_decode(hex, plain, sizeof(plain));
    assert_int_equal(tse_scp_host_wrap(h, plain, (size_t)n, wire, sizeof(wire), &wl), 0);
    assert_int_equal(tse_card_transmit(c, TSE_IF_CONTACT, wire, wl, r, sizeof(r), &rl), 0);
    assert_int_equal(tse_scp_host_unwrap(h, r, rl, out, sizeof(out), &ol), 0);
    if (ol < 2 || out[ol - 2] != 0x90)
        return -1;
    /* E3 L 4F L aid 9F70 01 state */
    size_t at = 4 + out[3];
    assert_true(ol > at + 3 && out[at] == 0x9F && out[at + 1] == 0x70);
    return out[at + 3];
}

struct card_row {
    const char *from;
    uint8_t from_byte;
    uint8_t to;
    uint16_t sw;
};

static void test_card_transitions(void **state)
{
    (void)state;
    static const char *names[] = {"OP_READY", "INITIALIZED", "SECURED", "CARD_LOCKED"};
    static const uint8_t codes[] = {0x01, 0x07, 0x0F, 0x7F};
    static const uint8_t targets[] = {0x01, 0x07, 0x0F, 0x7F, 0xFF, 0x03};
    /* legal: OP_READY→INITIALIZED→SECURED⇄CARD_LOCKED, any → TERMINATED */
    static const uint16_t expect[4][6] = {
        {0x6985, 0x9000, 0x6985, 0x6985, 0x9000, 0x6985},
        {0x6985, 0x6985, 0x9000, 0x6985, 0x9000, 0x6985},
        {0x6985, 0x6985, 0x6985, 0x9000, 0x9000, 0x6985},
        {0x6985, 0x6985, 0x9000, 0x6985, 0x9000, 0x6985},
    };
    unsigned rows = 0;
    for (int f = 0; f < 4; f++)
        for (int t = 0; t < 6; t++) {
            char p[512];
            struct tse_card *c = card_in(names[f], p, sizeof(p));
            struct tse_scp_session h;
            assert_true(tt_auth(c, KEY, 0, &h));
            uint16_t sw = cmd(c, &h, "80F080%02X00", targets[t]);
            if (sw != expect[f][t])
                fail_msg("card %s -> %02X: %04X, expected %04X", names[f], targets[t], sw,
                         expect[f][t]);
            if (targets[t] != 0xFF) {
                int now = state_of(c, &h, 0x80, "A000000151000000");
                assert_int_equal(now, sw == 0x9000 ? targets[t] : codes[f]);
            } else {
                /* TERMINATED is final: no new session, only GET DATA answers */
                size_t n;
                assert_int_equal(tse_card_reset(c, TSE_IF_CONTACT, NULL, 0, &n), 0);
                assert_false(tt_auth(c, KEY, 0, &h));
                assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "80CA9F7F00"), 0x9000);
            }
            tse_card_free(c);
            unlink(p);
            rows++;
        }
    /* by an SSD: Card Lock may lock, Card Terminate may terminate, neither may unlock */
    static const struct {
        const char *priv, *from;
        uint8_t to;
        uint16_t sw;
    } ssd_rows[] = {
        {"800000", "SECURED", 0x7F, 0x6985}, {"901000", "SECURED", 0x7F, 0x9000},
        {"901000", "SECURED", 0xFF, 0x6985}, {"880000", "SECURED", 0xFF, 0x9000},
        {"880000", "SECURED", 0x7F, 0x6985},
    };
    for (size_t i = 0; i < sizeof(ssd_rows) / sizeof(ssd_rows[0]); i++) {
        char p[512];
        struct tse_card *c = card_in(ssd_rows[i].from, p, sizeof(p));
        struct tse_scp_session h;
        assert_true(tt_auth(c, KEY, 0, &h));
        assert_int_equal(cmd(c, &h,
                             "80E60C0026 07A0000001515350 08A000000151535041 08" SSD
                             " 03%s 06C90481020370 00 00",
                             ssd_rows[i].priv),
                         0x9000);
        assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "00A4040008" SSD "00"), 0x9000);
        assert_true(tt_auth(c, KEY, 0, &h));
        uint16_t sw = cmd(c, &h, "80F080%02X00", ssd_rows[i].to);
        if (sw != ssd_rows[i].sw)
            fail_msg("SSD with %s: card -> %02X answered %04X, expected %04X", ssd_rows[i].priv,
                     ssd_rows[i].to, sw, ssd_rows[i].sw);
        tse_card_free(c);
        unlink(p);
        rows++;
    }
    print_message("card life cycle: %u transitions checked\n", rows);
}

/* Application and SD states: how to reach each starting state, then SET STATUS P1 40. */
struct app_from {
    uint8_t state;
    bool sd;
    const char *steps[3]; /* after INSTALL, with %s = the AID */
};

static void test_application_transitions(void **state)
{
    (void)state;
    static const struct app_from froms[] = {
        {0x03, false, {NULL}},
        {0x07, false, {NULL}},
        {0x0F, false, {"80F0400F09" APP, NULL}},
        {0x83, false, {"80F0408009" APP, NULL}},
        {0x87, false, {"80F0408009" APP, NULL}},
        {0x8F, false, {"80F0400F09" APP, "80F0408009" APP, NULL}},
        {0x07, true, {NULL}},
        {0x0F, true, {"80F0400F08" SSD, NULL}},
        {0x87, true, {"80F0408008" SSD, NULL}},
        {0x8F, true, {"80F0400F08" SSD, "80F0408008" SSD, NULL}},
    };
    static const uint8_t p2s[] = {0x00, 0x01, 0x03, 0x07, 0x0F, 0x1F, 0x80, 0x83, 0x87, 0x8F};
    /* expected SW per starting state (rows as froms[]) and P2 (columns as p2s[]) */
    static const uint16_t expect[10][10] = {
        /*         00      01      03      07      0F      1F      80      83      87      8F */
        /* 03 */ {0x6985, 0x6A86, 0x6A86, 0x6A86, 0x6985, 0x6985, 0x9000, 0x9000, 0x6A86, 0x6A86},
        /* 07 */ {0x6985, 0x6A86, 0x6A86, 0x6A86, 0x9000, 0x9000, 0x9000, 0x6A86, 0x9000, 0x6A86},
        /* 0F */ {0x6985, 0x6A86, 0x6A86, 0x6A86, 0x9000, 0x9000, 0x9000, 0x6A86, 0x6A86, 0x9000},
        /* 83 */ {0x9000, 0x6A86, 0x6A86, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985},
        /* 87 */ {0x9000, 0x6A86, 0x6A86, 0x9000, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985},
        /* 8F */ {0x9000, 0x6A86, 0x6A86, 0x6985, 0x9000, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985},
        /* SD 07 */
        {0x6985, 0x6A86, 0x6A86, 0x6A86, 0x9000, 0x6985, 0x9000, 0x6A86, 0x9000, 0x6A86},
        /* SD 0F */
        {0x6985, 0x6A86, 0x6A86, 0x6A86, 0x6985, 0x6985, 0x9000, 0x6A86, 0x6A86, 0x9000},
        /* SD 87 */
        {0x9000, 0x6A86, 0x6A86, 0x9000, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985},
        /* SD 8F */
        {0x9000, 0x6A86, 0x6A86, 0x6985, 0x9000, 0x6985, 0x6985, 0x6985, 0x6985, 0x6985},
    };
    /* the state after a granted request */
    unsigned rows = 0;
    for (size_t f = 0; f < sizeof(froms) / sizeof(froms[0]); f++)
        for (size_t t = 0; t < sizeof(p2s); t++) {
            const struct app_from *fr = &froms[f];
            char p[512];
            struct tse_card *c = tt_card(NULL, p, sizeof(p));
            struct tse_scp_session h;
            assert_true(tt_auth(c, KEY, 0, &h));
            const char *aid = fr->sd ? SSD : APP;
            if (fr->sd)
                assert_int_equal(cmd(c, &h,
                                     "80E60C0026 07A0000001515350 08A000000151535041 08" SSD
                                     " 03800000 06C90481020370 00 00"),
                                 0x9000);
            else
                assert_int_equal(cmd(c, &h,
                                     "80E6%02X0021 07F0747365444941 08F074736544494101 09" APP
                                     " 0100 02C900 00 00",
                                     (fr->state & 0x7F) == 0x03 ? 0x04 : 0x0C),
                                 0x9000);
            for (int s = 0; fr->steps[s]; s++)
                assert_int_equal(cmd(c, &h, "%s", fr->steps[s]), 0x9000);
            assert_int_equal(state_of(c, &h, 0x40, aid), fr->state);
            uint16_t sw = cmd(c, &h, "80F040%02X%02X%s", p2s[t], (int)strlen(aid) / 2, aid);
            if (sw != expect[f][t])
                fail_msg("%s %02X -> P2 %02X: %04X, expected %04X", fr->sd ? "SD" : "application",
                         fr->state, p2s[t], sw, expect[f][t]);
            int now = state_of(c, &h, 0x40, aid);
            int want = fr->state;
            if (sw == 0x9000)
                want = p2s[t] & 0x80        ? (fr->state | 0x80)
                       : p2s[t] == 0        ? (fr->state & 0x7F)
                       : (fr->state & 0x80) ? (fr->state & 0x7F)
                                            : p2s[t];
            assert_int_equal(now, want);
            tse_card_free(c);
            unlink(p);
            rows++;
        }
    print_message("application and security domain life cycle: %u transitions checked\n", rows);
}

/* Every logical channel can have a security domain selected and open a secure channel: a
 * SELECT takes no RAM, a session takes its own, a LOAD in progress one area per SD. */
static void test_channels_with_sds(void **state)
{
    (void)state;
    char p[512];
    struct tse_card *c = tt_card(NULL, p, sizeof(p));
    char cmd[80];
    for (int ch = 1; ch < 20; ch++) {
        assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "0070000001"), 0x9000);
        uint8_t cla = ch < 4 ? (uint8_t)ch : (uint8_t)(0x40 | (ch - 4));
        snprintf(cmd, sizeof(cmd), "%02XA4040008A00000015100000000", cla);
        assert_int_equal(tt_sw(c, TSE_IF_CONTACT, cmd), 0x9000);
    }
    /* INITIALIZE UPDATE on the basic channel and on the last one */
    assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "80500000080102030405060708 00"), 0x9000);
    assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "CF500000080102030405060708 00"), 0x9000);
    tse_card_free(c);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channels_with_sds),
        cmocka_unit_test(test_card_transitions),
        cmocka_unit_test(test_application_transitions),
    };
    return cmocka_run_group_tests_name("gp_lifecycle", tests, NULL, NULL);
}
