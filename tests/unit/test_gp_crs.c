/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contactless registry service (src/gp/crs.c) where the conformance script cannot reach:
 * the INSTALL parameter hook, GET STATUS paging, the volatile priority across power, the
 * renumbering of the registry order, a card without the registry, and power cuts at every
 * store write of a registry change.
 */
#include "tse_test.h"

#include "cos/card_internal.h"
#include "gp/gp_internal.h"

#define CT TSE_IF_CONTACT
#define CL TSE_IF_CONTACTLESS

#define SELECT_CRS  "00A4040009A00000015143525300"
#define SELECT_PPSE "00A404000E325041592E5359532E444446303100"

static char path[512];

static void done(struct tse_card *c)
{
    tse_card_free(c);
    unlink(path);
}

static void expect(struct tse_card *c, int iface, const char *cmd, const char *rsp)
{
    const char *r = tt_xfer(c, iface, cmd);
    if (strcmp(r, rsp) != 0)
        fail_msg("%s: expected %s, got %s", cmd, rsp, r);
}

static struct tse_aid aid_of(const char *hex)
{
    uint8_t b[TSE_AID_MAX];
    int n = tse_hex_decode(hex, b, sizeof(b));
    assert_true(n >= 0);
    struct tse_aid a;
    tse_aid_set(&a, b, (size_t)n);
    return a;
}

static uint16_t parse(struct tse_card *c, const char *aid, const char *ef, uint8_t cl[16],
                      uint8_t *def)
{
    uint8_t b[256];
    int n = tse_hex_decode(ef, b, sizeof(b));
    assert_true(n >= 0);
    struct tse_aid a = aid_of(aid);
    memset(cl, 0, 16);
    *def = 0;
    return tse_crs_install_params(c, &a, n ? b : NULL, (size_t)n, cl, def);
}

/* The INSTALL hook: Amendment C contactless parameters inside 'EF', each on its own, errors,
 * and an application installed with its result, seen through the CRS and the PPSE. */
static void test_install_params(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(NULL, path, sizeof(path)); /* ISD, CRS, PPSE, diag */
    uint8_t cl[16], d;
    /* no parameters: activated, last in the registry order, no PPSE entry */
    assert_int_equal(parse(c, "A000000632010105", "", cl, &d), SW_NO_ERROR);
    static const uint8_t last[16] = {0x00, 0x00, 0x01};
    assert_memory_equal(cl, last, 16);
    assert_int_equal(d, 0);
    /* implicit selection (type A), initially deactivated */
    assert_int_equal(parse(c, "A000000632010105", "A006800181810100", cl, &d), SW_NO_ERROR);
    assert_int_equal(cl[0], 0x01);
    assert_int_equal(d, 2);
    /* an empty protocol list means any protocol */
    assert_int_equal(parse(c, "A000000632010105", "A0028000", cl, &d), SW_NO_ERROR);
    assert_int_equal(d, 2);
    /* interface access: contactless only, contact only */
    assert_int_equal(parse(c, "A000000632010105", "A005A503820140", cl, &d), SW_NO_ERROR);
    assert_int_equal(cl[0], 0x04);
    assert_int_equal(parse(c, "A000000632010105", "A008A503820180810101", cl, &d), SW_NO_ERROR);
    assert_int_equal(cl[0], 0x02); /* NON_ACTIVATABLE, whatever 81 asks */
    /* the PPSE entry in A1/A6: label, priority, the AID the PPSE shows; unknown tags ignored */
    assert_int_equal(parse(c, "A000000632010105215053555A484F55",
                           "C7020100 A119 A617 50084D4F545F545F4550 870102 4F08A000000632010105",
                           cl, &d),
                     SW_NO_ERROR);
    static const uint8_t entry[16] = {0x80, 0x00, 0x01, 0x02, 'M', 'O',
                                      'T',  '_',  'T',  '_',  'E', 'P'};
    assert_memory_equal(cl, entry, 16);
    /* an initial activation that conflicts (the diag AID is a prefix) starts DEACTIVATED */
    assert_int_equal(parse(c, "F07473654449410199", "A003810101", cl, &d), SW_NO_ERROR);
    assert_int_equal(cl[0], 0x01);
    /* malformed or out of range: 6A80 */
    static const char *bad[] = {
        "A003810105",                             /* initial state 05 */
        "A00481020000",                           /* initial state of two bytes */
        "A003800199",                             /* not a protocol type */
        "A005A503820111",                         /* not an interface access value */
        "A111A60F500D4D4F545F545F45505F5F5F5F5F", /* label of 13 bytes */
        "A105A603870100",                         /* priority 00 */
        "A105A603870120",                         /* RFU bits in the priority */
        "A10CA60A4F08A000000632010106",           /* not a prefix of the AID */
        "A106A60450021F41",                       /* label not printable */
        "A0058101",                               /* TLV runs past the end */
        "A1",                                     /* truncated */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint16_t sw = parse(c, "A000000632010105", bad[i], cl, &d);
        if (sw != SW_WRONG_DATA)
            fail_msg("%s: %04X", bad[i], sw);
    }
    /* install with the hook's result (what isd.c does for INSTALL [for install]) */
    assert_int_equal(
        parse(c, "A000000632010105", "A006800181810101 A10FA60D50084D4F545F545F4550870102", cl, &d),
        SW_NO_ERROR);
    struct tse_aid pkg = aid_of("F0747365444941"), mod = aid_of("F074736544494101"),
                   aid = aid_of("A000000632010105");
    struct tse_rt_install_opts o = {.default_on = d};
    memcpy(o.cl, cl, 16);
    uint16_t sw;
    assert_int_equal(tse_rt_install(c, &pkg, &mod, &aid, NULL, 0, &o, &sw), 0);
    expect(c, CL, SELECT_PPSE,
           "6F2E840E325041592E5359532E4444463031A51CBF0C1961174F08A00000063201010550084D4F545F"
           "545F45508701029000");
    /* implicitly selected on the contactless interface from the next power up */
    uint8_t r[64];
    size_t n;
    assert_int_equal(tse_card_power_on(c, CL, r, sizeof(r), &n), 0);
    expect(c, CL, "00A4040000", "6F0A8408A0000006320101059000");
    expect(c, CT, SELECT_CRS, "6F168409A00000015143525300A5099F08020100800200009000");
    expect(c, CT, "80F240000A4F05A0000006325C018C00",
           "61124F08A0000006320101059F700207018C01819000");
    done(c);
}

/* An application that is not SELECTABLE yet cannot be activated; deactivation is fine. */
static void test_not_selectable(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(NULL, path, sizeof(path));
    struct tse_aid pkg = aid_of("F0747365444941"), mod = aid_of("F074736544494101"),
                   aid = aid_of("F0747365444942");
    struct tse_rt_install_opts o = {.state = APP_STATE_INSTALLED};
    o.cl[0] = 0x01; /* deactivated */
    uint16_t sw;
    assert_int_equal(tse_rt_install(c, &pkg, &mod, &aid, NULL, 0, &o, &sw), 0);
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F00101094F07F0747365444942", "6985");
    expect(c, CT, "80F00100094F07F0747365444942", "9000");
    expect(c, CT, "80F24000044F00870000", "6A80"); /* 87 is no search criterion */
    expect(c, CT, "80F240000D4F07F07473654449425C029F7000", "610E4F07F07473654449429F700203009000");
    done(c);
}

/* GET STATUS answers at most 256 bytes at once; the rest follows with P2 | 01. */
static void test_paging(void **state)
{
    (void)state;
    char prof[4096] = "";
    for (int i = 0; i < 12; i++) {
        char s[256];
        snprintf(s, sizeof(s),
                 "[instance i%d]\npackage = F0747365444941\nmodule = F074736544494101\n"
                 "aid = F07473654449%02X01\ncontactless_label = LABEL-%06d\n",
                 i, i + 0x50, i);
        strcat(prof, s);
    }
    struct tse_card *c = tt_card(prof, path, sizeof(path));
    tt_xfer(c, CT, SELECT_CRS);
    const char *r = tt_xfer(c, CT, "80F24000024F0000");
    size_t len = strlen(r);
    assert_string_equal(r + len - 4, "6310");
    assert_true(len - 4 <= 2 * 256);
    assert_int_equal(strncmp(r, "61134F09A00000015143525300", 26), 0); /* the CRS: no ISD */
    unsigned entries = 0;
    for (const char *p = r; (p = strstr(p, "9F7002")); p++)
        entries++;
    r = tt_xfer(c, CT, "80F24003024F0000"); /* P2 02 | 01: continue */
    len = strlen(r);
    assert_string_equal(r + len - 4, "9000");
    for (const char *p = r; (p = strstr(p, "9F7002")); p++)
        entries++;
    assert_int_equal(entries, 2 + 12);
    expect(c, CT, "80F24001024F0000", "6985");
    /* a new SELECT of the CRS forgets an answer in progress */
    r = tt_xfer(c, CT, "80F24000024F0000");
    assert_string_equal(r + strlen(r) - 4, "6310");
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F24001024F0000", "6985");
    done(c);
}

static const char *TWO_IMPLICIT =
    "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = F0747365444941A1\ncontactless_default = yes\n"
    "[instance b]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = F0747365444941B1\ncontactless_default = yes\n";

/* The volatile priority is RAM: it survives contactless power cycles while the contact
 * interface is powered, and is gone when the card has no power at all. */
static void test_volatile_power(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO_IMPLICIT, path, sizeof(path));
    uint8_t r[64];
    size_t n;
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941A19000");
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F002020A4F08F0747365444941B1", "9000");
    tse_card_power_off(c, CL);
    tse_card_power_on(c, CL, r, sizeof(r), &n);
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941B19000");
    /* a reset of 82 for another application leaves it */
    expect(c, CT, "80F002820A4F08F0747365444941A1", "9000");
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941B19000");
    expect(c, CT, "80F002820A4F08F07473654449FFFF", "6A88");
    /* the card loses power: both interfaces off */
    tse_card_power_off(c, CL);
    tse_card_power_off(c, CT);
    tse_card_power_on(c, CL, r, sizeof(r), &n);
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941A19000");
    /* a power cut too */
    tse_card_power_on(c, CT, r, sizeof(r), &n);
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F002020A4F08F0747365444941B1", "9000");
    tse_card_tear_at(c, 1);
    assert_string_equal(tt_xfer(c, CT, "80F002810A4F08F0747365444941B1"), "TORN");
    tse_card_power_on(c, CL, r, sizeof(r), &n);
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941A19000");
    done(c);
}

static void set_order(struct tse_card *c, const char *aid, int order)
{
    struct tse_aid a = aid_of(aid);
    int idx = tse_rt_find(c, &a);
    assert_true(idx >= 0);
    uint8_t cl[16];
    memcpy(cl, tse_rt_inst(c, idx)->cl, 16);
    unsigned u = (unsigned)(order < 0 ? order + 0x10000 : order);
    cl[1] = (uint8_t)(u >> 8);
    cl[2] = (uint8_t)u;
    assert_int_equal(tse_rt_set_cl(c, idx, cl), 0);
}

static struct tse_card *reopen(struct tse_card *c)
{
    tse_card_free(c);
    char err[256];
    assert_int_equal(tse_card_open(&c, path, NULL, err, sizeof(err)), 0);
    uint8_t r[64];
    size_t n;
    tse_card_power_on(c, CT, r, sizeof(r), &n);
    tse_card_power_on(c, CL, r, sizeof(r), &n);
    return c;
}

/* The registry order is 16 bits wide: at either end the CRS renumbers the whole registry (in
 * the same transaction) before placing the application. */
static void test_renumber(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO_IMPLICIT, path, sizeof(path));
    set_order(c, "F0747365444941A1", -32768); /* as after 32768 "highest" moves */
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F002010A4F08F0747365444941B1", "9000");
    c = reopen(c);
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941B19000");
    tt_xfer(c, CT, SELECT_CRS);
    expect(c, CT, "80F240000C4F07F07473654449415C018100",
           "61124F08F0747365444941B19F70020701810100"
           "61124F08F0747365444941A19F700207018101019000");
    /* and at the other end */
    set_order(c, "F0747365444941A1", 32767);
    expect(c, CT, "80F002810A4F08F0747365444941B1", "9000");
    c = reopen(c);
    expect(c, CL, "00A4040000", "6F0A8408F0747365444941A19000");
    /* already first (or last): nothing to write */
    tt_xfer(c, CT, SELECT_CRS);
    unsigned long w = tse_card_store_writes(c);
    expect(c, CT, "80F002810A4F08F0747365444941B1", "9000");
    assert_int_equal(tse_card_store_writes(c), w);
    done(c);
}

/* Without the registry service: no CRS, no PPSE, the ISD is the contactless default. */
static void test_registry_off(void **state)
{
    (void)state;
    struct tse_card *c = tt_card("[contactless]\nregistry = off\n", path, sizeof(path));
    expect(c, CL, SELECT_PPSE, "6A82");
    expect(c, CT, SELECT_CRS, "6A82");
    expect(c, CL, "00A4040000", "6F108408A000000151000000A5049F6501FF9000");
    done(c);
}

/* The PPSE with nothing to show still answers, with an empty directory. */
static void test_empty_ppse(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(NULL, path, sizeof(path));
    expect(c, CL, SELECT_PPSE, "6F15840E325041592E5359532E4444463031A503BF0C009000");
    expect(c, CL, "80CA9F7F00", "6D00"); /* the PPSE answers nothing else */
    done(c);
}

/* Power cuts at every store write of registry changes: the registry is as before or as after
 * the command, in memory after recovery and in the image for a fresh process. */
static const char *TEAR_PROFILE =
    "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = F0747365444941A1\ncontactless_default = yes\ncontactless_label = A\n"
    "[instance b]\npackage = F0747365444941\nmodule = F074736544494101\n"
    "aid = F0747365444941B1\ncontactless_default = yes\ncontactless = deactivated\n";

struct tear_case {
    const char *name;
    const char *cmd;
    bool renumber; /* put a at the bottom end of the order first */
};

static struct tse_card *tear_setup(const struct tear_case *tc, uint8_t before[32])
{
    struct tse_card *c = tt_card(TEAR_PROFILE, path, sizeof(path));
    if (tc->renumber)
        set_order(c, "F0747365444941A1", -32768);
    tt_xfer(c, CT, SELECT_CRS);
    assert_int_equal(tse_card_state_digest(c, before), 0);
    return c;
}

static void test_tear(void **state)
{
    (void)state;
    static const struct tear_case cases[] = {
        {"activate", "80F001010A4F08F0747365444941B1", false},
        {"deactivate", "80F001000A4F08F0747365444941A1", false},
        {"highest", "80F002010A4F08F0747365444941B1", false},
        {"lowest", "80F002810A4F08F0747365444941A1", false},
        {"highest with renumbering", "80F002010A4F08F0747365444941B1", true},
    };
    unsigned points = 0;
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const struct tear_case *tc = &cases[t];
        uint8_t before[32], after[32], ref_before[32], d[32];
        /* reference run */
        struct tse_card *c = tear_setup(tc, ref_before);
        unsigned long w0 = tse_card_store_writes(c);
        expect(c, CT, tc->cmd, "9000");
        unsigned long writes = tse_card_store_writes(c) - w0;
        assert_int_equal(tse_card_state_digest(c, after), 0);
        assert_memory_not_equal(after, ref_before, 32);
        done(c);
        assert_true(writes >= 3); /* record(s), counter, commit */
        for (unsigned long k = 1; k <= writes; k++) {
            c = tear_setup(tc, before);
            assert_memory_equal(before, ref_before, 32); /* fresh cards are identical */
            assert_int_equal(tse_card_tear_at(c, k), 0);
            assert_string_equal(tt_xfer(c, CT, tc->cmd), "TORN");
            uint8_t r[64];
            size_t n;
            assert_int_equal(tse_card_power_on(c, CT, r, sizeof(r), &n), 0); /* recovery */
            assert_int_equal(tse_card_state_digest(c, d), 0);
            bool old = memcmp(d, before, 32) == 0, new = memcmp(d, after, 32) == 0;
            if (!old && !new)
                fail_msg("%s: cut at write %lu leaves a registry between before and after",
                         tc->name, k);
            /* the commit record is the last write: cut there or earlier, nothing happened */
            assert_true(old);
            c = reopen(c);
            assert_int_equal(tse_card_state_digest(c, d), 0);
            assert_memory_equal(d, before, 32);
            /* and the command goes through now */
            tt_xfer(c, CT, SELECT_CRS);
            expect(c, CT, tc->cmd, "9000");
            assert_int_equal(tse_card_state_digest(c, d), 0);
            assert_memory_equal(d, after, 32);
            done(c);
            points++;
        }
    }
    print_message("contactless registry tear sweep: %u cut points, all before or after\n", points);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_params), cmocka_unit_test(test_not_selectable),
        cmocka_unit_test(test_paging),         cmocka_unit_test(test_volatile_power),
        cmocka_unit_test(test_renumber),       cmocka_unit_test(test_registry_off),
        cmocka_unit_test(test_empty_ppse),     cmocka_unit_test(test_tear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
