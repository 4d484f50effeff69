/* SPDX-License-Identifier: Apache-2.0 */
/* The card core through its public API: power, APDU layer, channels, SELECT, runtime. */
#include "tse_test.h"

#include <pthread.h>

#define CT TSE_IF_CONTACT
#define CL TSE_IF_CONTACTLESS

/* Two diag instances, the second one single-selectable; the first is the default. */
static const char *TWO = "[card]\nlogical_channels = 20\n"
                         "[counters]\nseq = 7 max 8\n"
                         "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
                         "default = contact\n"
                         "[instance b]\npackage = F0747365444941\nmodule = F074736544494102\n"
                         "aid = F07473654449410201\n"
                         "[instance c]\npackage = F0747365444941\nmodule = F074736544494101\n"
                         "aid = F07473654449410199\nparams = 0000000A01\npersistent_quota = 400\n";

static char path[512];

static void done(struct tse_card *c)
{
    tse_card_free(c);
    unlink(path);
}

static void test_power(void **state)
{
    (void)state;
    tt_path(path, sizeof(path), "card");
    struct tse_card *c;
    char err[256];
    assert_int_equal(tse_card_create(&c, path, NULL, 0, NULL, NULL, err, sizeof(err)), 0);
    uint8_t r[300];
    size_t n;
    assert_int_equal(
        tse_card_transmit(c, CT, (const uint8_t *)"\x00\xA4\x04\x00", 4, r, sizeof(r), &n),
        TSE_ERR_POWERED_OFF);
    assert_int_equal(tse_card_reset(c, CT, r, sizeof(r), &n), TSE_ERR_POWERED_OFF);
    assert_int_equal(tse_card_power_on(c, CT, r, 4, &n), TSE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(tse_card_power_on(c, CT, r, sizeof(r), &n), 0);
    assert_int_equal(n, 18);
    assert_int_equal(r[0], 0x3B);
    assert_true(tse_card_is_powered(c, CT));
    assert_false(tse_card_is_powered(c, CL));
    assert_int_equal(tse_card_power_on(c, CL, r, sizeof(r), &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(r[0], 5); /* TL */
    struct tse_cl_params p;
    assert_int_equal(tse_card_cl_params(c, &p), 0);
    assert_int_equal(p.uid_len, 4);
    assert_int_equal(p.uid[0], 0x08);
    assert_int_equal(p.sak, 0x20);
    assert_int_equal(tse_card_reset(c, CT, r, sizeof(r), &n), 0);
    assert_int_equal(tse_card_power_off(c, CT), 0);
    assert_false(tse_card_is_powered(c, CT));
    assert_int_equal(tse_card_transmit(c, CT, r, 4, r, 1, &n), TSE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(tse_card_transmit(NULL, CT, r, 4, r, 10, &n), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_card_transmit(c, (enum tse_iface)7, r, 4, r, 10, &n), TSE_ERR_INVALID_ARG);
    done(c);
}

static void test_malformed(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(NULL, path, sizeof(path));
    assert_string_equal(tt_xfer(c, CT, "00"), "6700");
    assert_string_equal(tt_xfer(c, CT, ""), "6700");
    assert_string_equal(tt_xfer(c, CT, "00A4040005A000"), "6700");
    assert_string_equal(tt_xfer(c, CT, "FFA4040000"), "6E00");
    assert_string_equal(tt_xfer(c, CT, "20A4040000"), "6E00");
    assert_string_equal(tt_xfer(c, CT, "A0A4040000"), "6E00");
    assert_string_equal(tt_xfer(c, CT, "0060000000"), "6D00");
    assert_string_equal(tt_xfer(c, CT, "0090000000"), "6D00");
    /* the issuer security domain is the default application: it answers the CPLC */
    assert_int_equal(strncmp(tt_xfer(c, CT, "80CA9F7F00"), "9F7F2A", 6), 0);
    assert_string_equal(tt_xfer(c, CT, "01B0000000"), "6881"); /* channel 1 not open */
    assert_string_equal(tt_xfer(c, CT, "4FB0000000"), "6881"); /* channel 19 not open */
    assert_string_equal(tt_xfer(c, CT, "00C0000000"), "6985"); /* nothing to get */
#define ISD_FCI "6F108408A000000151000000A5049F6501FF9000"
    assert_string_equal(tt_xfer(c, CT, "00A4040008A000000151000000"), ISD_FCI);
    assert_string_equal(tt_xfer(c, CT, "00A4040000"), ISD_FCI); /* the default application */
    /* an AID nobody has goes to the selected ISD, which says it is not its own */
    assert_string_equal(tt_xfer(c, CT, "00A4040008A000000999000000"), "6A82");
    assert_string_equal(tt_xfer(c, CT, SELECT_DIAG), "6F0A8408" DIAG_AID "9000");
    assert_string_equal(tt_xfer(c, CT, "00A4041008" DIAG_AID), "6A86");
    assert_string_equal(tt_xfer(c, CT, "00A4040108" DIAG_AID), "6A86");
    assert_string_equal(tt_xfer(c, CT, "00A4040C08" DIAG_AID), "9000"); /* no FCI asked */
    assert_string_equal(tt_xfer(c, CT, "0010000000"), "6E00");          /* diag wants CLA 80 */
    assert_string_equal(tt_xfer(c, CT, "8424000010"), "6882");          /* SM not supported */
    assert_string_equal(tt_xfer(c, CT, "8099000000"), "6D00");          /* invalid INS 9X */
    assert_string_equal(tt_xfer(c, CT, "8026000000"), "6D00");          /* unknown to diag */
    done(c);
}

static void test_select(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    /* default application on the contact interface only */
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "000003E8000000000000000000000000"
                                                      "9000");
    assert_string_equal(tt_xfer(c, CL, "8024000010"), "6D00");
    /* the ISD is the default wherever no profile instance claims the interface */
    assert_string_equal(tt_xfer(c, CL, "00A4040000"), ISD_FCI);
    assert_string_equal(tt_xfer(c, CT, "00A4040000"), "6F0A8408" DIAG_AID "9000");
    /* partial AID: first, then next occurrences in registry order */
    assert_string_equal(tt_xfer(c, CL, "00A4040005F074736544"), "6F0A8408" DIAG_AID "9000");
    assert_string_equal(tt_xfer(c, CL, "00A4040205F074736544"), "6F0B8409F07473654449410201"
                                                                "9000");
    /* the third instance refuses selection (install flag): 6999 and nothing selected */
    assert_string_equal(tt_xfer(c, CL, "00A4040205F074736544"), "6999");
    assert_string_equal(tt_xfer(c, CL, "8024000010"), "6D00");
    assert_string_equal(tt_xfer(c, CL, "00A4040005A000000001"), "6A82");
    /* an unknown AID goes to the selected applet (which answers the SELECT as its own) */
    tt_xfer(c, CL, "00A4040009F07473654449410201");
    assert_string_equal(tt_xfer(c, CL, "00A4040005A000000001"), "6F0B8409F07473654449410201"
                                                                "9000");
    assert_string_equal(tt_xfer(c, CT, "00A4040009F07473654449410199"), "6999");
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "6D00"); /* nothing selected now */
    done(c);
}

/* INFO (80 70): interface, channel, transaction depth, then variable bytes. */
static void info_is(struct tse_card *c, int iface, const char *cmd, const char *want6)
{
    const char *r = tt_xfer(c, iface, cmd);
    assert_int_equal(strlen(r), 2 * 11 + 4);
    assert_string_equal(r + 22, "9000");
    if (strncmp(r, want6, 6) != 0)
        fail_msg("INFO via %s: got %s, want %s…", cmd, r, want6);
}

static void test_channels(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    /* opened from the basic channel: the default application is selected on it */
    assert_string_equal(tt_xfer(c, CT, "0070000001"), "019000");
    info_is(c, CT, "8170000000", "000100");
    /* opened from channel 1: channel 1's selection is inherited */
    assert_string_equal(tt_xfer(c, CT, "01A4040009F07473654449410199"), "6999");
    assert_string_equal(tt_xfer(c, CT, "01A4040005F074736544"), "6F0A8408" DIAG_AID "9000");
    assert_string_equal(tt_xfer(c, CT, "0170000001"), "029000");
    info_is(c, CT, "8270000000", "000200");
    /* a specified channel (further interindustry class) */
    assert_string_equal(tt_xfer(c, CT, "0070000500"), "9000");
    assert_string_equal(tt_xfer(c, CT, "0070000500"), "6985"); /* already open */
    info_is(c, CT, "C170000000", "000500");
    assert_string_equal(tt_xfer(c, CT, "0070001400"), "6881"); /* 20: no such channel */
    assert_string_equal(tt_xfer(c, CT, "007000000101"), "6700");
    assert_string_equal(tt_xfer(c, CT, "0070200000"), "6A86");
    /* fill every channel */
    for (int i = 3; i < 20; i++)
        if (i != 5)
            assert_int_equal(tt_sw(c, CT, "0070000001"), 0x9000);
    assert_string_equal(tt_xfer(c, CT, "0070000001"), "6A81");
    /* close */
    assert_string_equal(tt_xfer(c, CT, "0070800000"), "6A86"); /* the basic channel */
    assert_string_equal(tt_xfer(c, CT, "0070800500"), "9000");
    assert_string_equal(tt_xfer(c, CT, "0070800500"), "6200"); /* not open: a warning */
    assert_string_equal(tt_xfer(c, CT, "C170000000"), "6881");
    assert_string_equal(tt_xfer(c, CT, "0270800000"), "9000"); /* P2 = 0: the CLA's channel */
    assert_string_equal(tt_xfer(c, CT, "8270000000"), "6881");
    /* a chained SELECT on a closed channel opens it with its first block (the fuzzer once
     * found the reassembled data freed by a late open) */
    assert_string_equal(tt_xfer(c, CT, "13A4040003F07473"), "9000");
    assert_string_equal(tt_xfer(c, CT, "03A40400056544494101"), "6F0A8408" DIAG_AID "9000");
    assert_string_equal(tt_xfer(c, CT, "0070800300"), "9000");
    /* SELECT on a closed channel opens it (ISO 7816-4) */
    assert_string_equal(tt_xfer(c, CT, "02A4040008" DIAG_AID), "6F0A8408" DIAG_AID "9000");
    info_is(c, CT, "8270000000", "000200");
    /* single-selectable applet: not on two channels of one interface at once */
    assert_string_equal(tt_xfer(c, CT, "01A4040009F07473654449410201"), "6F0B8409F07473654449410201"
                                                                        "9000");
    assert_string_equal(tt_xfer(c, CT, "02A4040009F07473654449410201"), "6985");
    /* ...but the other interface is another session */
    assert_string_equal(tt_xfer(c, CL, "00A4040009F07473654449410201"), "6F0B8409F07473654449410201"
                                                                        "9000");
    /* the contactless interface has its own channel numbering */
    assert_string_equal(tt_xfer(c, CL, "0070000001"), "019000");
    /* a contactless power cycle leaves the contact session alone */
    uint8_t r[64];
    size_t n;
    tse_card_power_off(c, CL);
    tse_card_power_on(c, CL, r, sizeof(r), &n);
    info_is(c, CT, "8270000000", "000200");
    assert_string_equal(tt_xfer(c, CL, "8170000000"), "6881");
    /* a contact reset closes its channels */
    tse_card_reset(c, CT, r, sizeof(r), &n);
    assert_string_equal(tt_xfer(c, CT, "8270000000"), "6881");
    info_is(c, CT, "8070000000", "000000");
    done(c);
}

static void test_four_channels(void **state)
{
    (void)state;
    struct tse_card *c = tt_card("[card]\nlogical_channels = 4\n", path, sizeof(path));
    for (int i = 1; i < 4; i++)
        assert_int_equal(tt_sw(c, CT, "0070000001"), 0x9000);
    assert_string_equal(tt_xfer(c, CT, "0070000001"), "6A81");
    assert_string_equal(tt_xfer(c, CT, "40A4040000"), "6881");
    done(c);
}

static void test_chaining_and_lengths(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(NULL, path, sizeof(path));
    tt_xfer(c, CT, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CT, "9010000003AABBCC"), "9000");
    assert_string_equal(tt_xfer(c, CT, "9010000001DD"), "9000");
    assert_string_equal(tt_xfer(c, CT, "8010000002EEFF00"), "AABBCCDDEEFF9000");
    /* a different command in the middle of a chain */
    assert_string_equal(tt_xfer(c, CT, "9010000001AA"), "9000");
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "6883");
    assert_string_equal(tt_xfer(c, CT, "8010000001BB00"), "BB9000"); /* chain was dropped */
    assert_string_equal(tt_xfer(c, CT, "1070000001"), "6884");
    /* long responses: 288 bytes with Le = 00 come as 256 + 61 20, then GET RESPONSE */
    const char *r = tt_xfer(c, CT, "8010012000");
    assert_int_equal(strlen(r), 2 * 256 + 4);
    assert_string_equal(r + 512, "6120");
    assert_int_equal(strncmp(r, "000102", 6), 0);
    r = tt_xfer(c, CT, "00C0000010");
    assert_int_equal(strlen(r), 2 * 16 + 4);
    assert_string_equal(r + 32, "6110");
    assert_int_equal(strncmp(r, "0001", 4), 0); /* byte 256 = 0x00 again */
    assert_string_equal(tt_xfer(c, CT, "00C0000000"), "101112131415161718191A1B1C1D1E1F9000");
    assert_string_equal(tt_xfer(c, CT, "00C0000000"), "6985");
    /* case 2 with a short Le: 6Cxx with the exact length */
    assert_string_equal(tt_xfer(c, CT, "8010002010"), "6C20");
    r = tt_xfer(c, CT, "8010002020");
    assert_int_equal(strlen(r), 2 * 32 + 4);
    /* case 4 with a short Le: Ne bytes, the rest through GET RESPONSE */
    assert_string_equal(tt_xfer(c, CT, "8010000004A1A2A3A402"), "A1A26102");
    assert_string_equal(tt_xfer(c, CT, "8024000010") + 32, "9000"); /* drops pending data */
    assert_string_equal(tt_xfer(c, CT, "00C0000000"), "6985");
    /* extended length both ways */
    r = tt_xfer(c, CT, "80100120000000");
    assert_int_equal(strlen(r), 2 * 288 + 4);
    assert_string_equal(r + 576, "9000");
    static char big[2 * 70000];
    strcpy(big, "80100000000400");
    for (int i = 0; i < 1024; i++)
        strcat(big, "5A");
    strcat(big, "0000");
    r = tt_xfer(c, CT, big);
    assert_int_equal(strlen(r), 2 * 1024 + 4);
    done(c);
}

static void test_t0_rules(void **state)
{
    (void)state;
    struct tse_card *c = tt_card("[contact]\natr = 3B021450\n[instance d]\npackage = "
                                 "F0747365444941\nmodule = F074736544494101\n",
                                 path, sizeof(path));
    tt_xfer(c, CT, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CT, "8010000002A1A200"), "6102");
    assert_string_equal(tt_xfer(c, CT, "00C0000002"), "A1A29000");
    assert_string_equal(tt_xfer(c, CT, "8010000300"), "6C03");
    assert_string_equal(tt_xfer(c, CT, "8010000303"), "0001029000");
    /* the contactless interface keeps T=1 rules */
    tt_xfer(c, CL, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CL, "8010000002A1A200"), "A1A29000");
    done(c);
}

static void test_transactions_and_isolation(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    const char *S0 = "000003E8000000000000000000000000"
                     "9000";
    assert_string_equal(tt_xfer(c, CT, "8024000010"), S0);
    assert_string_equal(tt_xfer(c, CT, "802200000400000064"), "00000384000000640000000190"
                                                              "00");
    /* abort, refused nesting and a transaction left open all leave nothing */
    assert_string_equal(tt_xfer(c, CT, "802201000400000064"), "00000384000000640000000190"
                                                              "00");
    assert_string_equal(tt_xfer(c, CT, "802202000400000064"), "6985");
    assert_string_equal(tt_xfer(c, CT, "802203000400000064"), "00000320000000C80000000290"
                                                              "00");
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "00000384000000640000000100000000"
                                                      "9000");
    assert_string_equal(tt_xfer(c, CT, "802200000400010000"), "6985"); /* insufficient */
    /* the other instance's state is its own */
    assert_string_equal(tt_xfer(c, CL, "00A4040009F07473654449410201") + 26, "9000");
    assert_string_equal(tt_xfer(c, CL, "8024000010"), S0);
    /* non-atomic increments */
    assert_string_equal(tt_xfer(c, CT, "8020000004"), "000000019000");
    assert_string_equal(tt_xfer(c, CT, "8020000004"), "000000029000");
    /* services: only bytes cross, and only to allowed callers */
    assert_string_equal(tt_xfer(c, CL, "8054000008" DIAG_AID), "00000384000000640000000100000002"
                                                               "9000");
    assert_string_equal(tt_xfer(c, CL, "8054000008A000000151000000"), "6982"); /* no service */
    assert_string_equal(tt_xfer(c, CL, "8054000008A000000999000000"), "6A82");
    /* persistent state survives closing and reopening the image */
    tse_card_free(c);
    char err[256];
    assert_int_equal(tse_card_open(&c, path, NULL, err, sizeof(err)), 0);
    uint8_t r[64];
    size_t n;
    tse_card_power_on(c, CT, r, sizeof(r), &n);
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "00000384000000640000000100000002"
                                                      "9000");
    done(c);
}

static void test_transient(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    const char *Z = "0000000000000000000000000000000000000000000000000000000000000000";
    char want[80];
    tt_xfer(c, CL, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CT, "8030010002C0DE"), "9000");
    assert_string_equal(tt_xfer(c, CT, "8030020002BEEF"), "9000");
    snprintf(want, sizeof(want), "C0DE%s9000", Z + 4);
    assert_string_equal(tt_xfer(c, CT, "8032010020"), want);
    snprintf(want, sizeof(want), "%s9000", Z);
    assert_string_equal(tt_xfer(c, CL, "8032010020"), want); /* per interface */
    assert_string_equal(tt_xfer(c, CT, "8030030000"), "6A86");
    /* deselect: COD cleared, COR kept */
    assert_string_equal(tt_xfer(c, CT, "00A4040009F07473654449410201") + 26, "9000");
    tt_xfer(c, CT, SELECT_DIAG);
    snprintf(want, sizeof(want), "%s9000", Z);
    assert_string_equal(tt_xfer(c, CT, "8032020020"), want);
    snprintf(want, sizeof(want), "C0DE%s9000", Z + 4);
    assert_string_equal(tt_xfer(c, CT, "8032010020"), want);
    /* COD survives while the instance stays selected on another channel */
    tt_xfer(c, CT, "8030020002BEEF");
    assert_string_equal(tt_xfer(c, CT, "0070000001"), "019000");
    assert_string_equal(tt_xfer(c, CT, "0070800100"), "9000");
    snprintf(want, sizeof(want), "BEEF%s9000", Z + 4);
    assert_string_equal(tt_xfer(c, CT, "8032020020"), want);
    /* reset clears COR */
    uint8_t r[64];
    size_t n;
    tse_card_reset(c, CT, r, sizeof(r), &n);
    snprintf(want, sizeof(want), "%s9000", Z);
    assert_string_equal(tt_xfer(c, CT, "8032010020"), want);
    done(c);
}

static void test_quotas(void **state)
{
    (void)state;
    struct tse_card *c =
        tt_card("[card]\npersistent_memory = 4096\n[instance q]\npackage = F0747365444941\n"
                "module = F074736544494101\npersistent_quota = 300\n",
                path, sizeof(path));
    tt_xfer(c, CT, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CT,
                                "8040008001"
                                "01"),
                        "000001119000"); /* 81+128 + 4 x 16 */
    assert_string_equal(tt_xfer(c, CT,
                                "8040008001"
                                "02"),
                        "6A84"); /* quota */
    assert_string_equal(tt_xfer(c, CT,
                                "8040004001"
                                "01"),
                        "6A80"); /* other size */
    assert_string_equal(tt_xfer(c, CT,
                                "8042000001"
                                "01"),
                        "9000");
    assert_string_equal(tt_xfer(c, CT,
                                "8042000001"
                                "01"),
                        "6A88");
    assert_string_equal(tt_xfer(c, CT,
                                "8040008001"
                                "02"),
                        "000001119000");
    done(c);
    c = tt_card("[card]\npersistent_memory = 4096\n[instance q]\npackage = F0747365444941\n"
                "module = F074736544494101\n",
                path, sizeof(path));
    tt_xfer(c, CT, SELECT_DIAG);
    assert_string_equal(tt_xfer(c, CT,
                                "8040100001"
                                "01"),
                        "6A84"); /* card capacity */
    done(c);
}

static void test_counters_rng(void **state)
{
    (void)state;
    const char *det = "[deterministic]\nseed = 00112233\nclock = 2026-11-25T00:00:00Z\n"
                      "[counters]\nseq = 7 max 8\n"
                      "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
                      "default = contact\n";
    struct tse_card *c = tt_card(det, path, sizeof(path));
    char first[64];
    strcpy(first, tt_xfer(c, CT, "8050000010"));
    char p1[512];
    strcpy(p1, path);
    struct tse_card *d = tt_card(det, path, sizeof(path));
    assert_string_equal(tt_xfer(d, CT, "8050000010"), first); /* byte-reproducible */
    assert_int_equal(tse_card_queue_random(d, (const uint8_t *)"\x01\x02\x03", 3), 0);
    const char *r = tt_xfer(d, CT, "8050000004");
    assert_int_equal(strncmp(r, "010203", 6), 0);
    assert_string_equal(r + 8, "9000");
    /* the deterministic clock */
    r = tt_xfer(d, CT, "8070000000");
    assert_int_equal(strncmp(r + 14, "6B062500", 8), 0); /* 2026-11-25 = 0x6B062500 */
    /* counters */
    uint64_t v;
    assert_int_equal(tse_card_get_counter(d, "seq", &v), 0);
    assert_int_equal(v, 7);
    assert_string_equal(tt_xfer(d, CT, "8028010003736571"), "00000000000000089000");
    assert_string_equal(tt_xfer(d, CT, "8028010003736571"), "6A84"); /* at max */
    assert_int_equal(tse_card_set_counter(d, "seq", 9), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_card_set_counter(d, "seq", 3), 0);
    assert_int_equal(tse_card_set_counter(d, "nope", 3), TSE_ERR_NOT_FOUND);
    assert_string_equal(tt_xfer(d, CT, "8028000003736571"), "00000000000000039000");
    assert_string_equal(tt_xfer(d, CT, "80280000036E6F70"), "6A88");
    tse_card_free(c);
    unlink(p1);
    done(d);
}

static void test_tear_via_card(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    unsigned long w0 = tse_card_store_writes(c);
    assert_string_equal(tt_xfer(c, CT, "802200000400000001") + 24, "9000");
    assert_int_equal(tse_card_store_writes(c) - w0, 5); /* 4 journalled writes + COMMIT */
    uint8_t before[32], after[32];
    tse_card_state_digest(c, before);
    assert_int_equal(tse_card_tear_at(c, 5), 0); /* cut the COMMIT record */
    assert_string_equal(tt_xfer(c, CT, "802200000400000001"), "TORN");
    assert_false(tse_card_is_powered(c, CT));
    assert_false(tse_card_is_powered(c, CL));
    uint8_t r[8], resp[8];
    size_t n;
    assert_int_equal(tse_card_transmit(c, CT, r, 4, resp, sizeof(resp), &n), TSE_ERR_POWERED_OFF);
    assert_int_equal(tse_card_power_on(c, CT, NULL, 0, &n), 0);
    tse_card_state_digest(c, after);
    assert_memory_equal(before, after, 32);
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "000003E7000000010000000100000000"
                                                      "9000");
    done(c);
}

struct worker {
    struct tse_card *card;
    int iface;
    int n;
    int fails;
};

static void *work(void *p)
{
    struct worker *w = p;
    uint8_t cmd[] = {0x80, 0x20, 0x00, 0x00, 0x04}, r[16];
    size_t n;
    for (int i = 0; i < w->n; i++)
        if (tse_card_transmit(w->card, (enum tse_iface)w->iface, cmd, sizeof(cmd), r, sizeof(r),
                              &n) != 0 ||
            n != 6 || r[4] != 0x90)
            w->fails++;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct tse_card *c = tt_card(TWO, path, sizeof(path));
    tt_xfer(c, CL, SELECT_DIAG);
    struct worker w[2] = {{c, CT, 3000, 0}, {c, CL, 3000, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(w[0].fails + w[1].fails, 0);
    assert_string_equal(tt_xfer(c, CT, "8024000010"), "000003E8000000000000000000001770"
                                                      "9000");
    done(c);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct tse_card *c = NULL;
    char err[256] = "";
    assert_int_equal(tse_card_open(&c, "/nonexistent/card.img", NULL, err, sizeof(err)),
                     TSE_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/card.img"));
    tt_path(path, sizeof(path), "junk");
    FILE *f = fopen(path, "w");
    fputs("this is not a card image, but it is long enough to hold a header....\n", f);
    fclose(f);
    assert_int_equal(tse_card_open(&c, path, NULL, err, sizeof(err)), TSE_ERR_CORRUPT);
    assert_non_null(strstr(err, "bad magic"));
    unlink(path);
    c = tt_card(NULL, path, sizeof(path));
    tse_card_free(c);
    assert_int_equal(tse_card_create(&c, path, NULL, 0, NULL, NULL, err, sizeof(err)),
                     TSE_ERR_EXISTS);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power),         cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_select),        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_four_channels), cmocka_unit_test(test_chaining_and_lengths),
        cmocka_unit_test(test_t0_rules),      cmocka_unit_test(test_transactions_and_isolation),
        cmocka_unit_test(test_transient),     cmocka_unit_test(test_quotas),
        cmocka_unit_test(test_counters_rng),  cmocka_unit_test(test_tear_via_card),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests_name("cos_card", tests, NULL, NULL);
}
