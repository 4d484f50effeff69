/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The purse applet through APDUs: selection and FCI, files and their status words,
 * personalisation (clear and DEK-encrypted, DGIs spanning blocks), load, purchase, compound
 * entry/exit, proofs, MAC errors, balance and counter limits, PIN, block/unblock, secure
 * messaging writes, several instances, and vector A replayed through the card.
 */
#include "wallet_test.h"

#include "cos/store_internal.h"
#include "crypto/crypto_internal.h"
#include "shell/script.h"

static char path[512];
static char ibuf[4][512];

/* A card with the Beijing instance personalised as a test card at installation. */
static struct tse_card *bj_card(void)
{
    return wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "bj", W_AID_BJ, "8F0A" W_ASN_BJ), path,
                   sizeof(path));
}

static void done(struct tse_card *c)
{
    tse_card_free(c);
    unlink(path);
}

static void expect(struct tse_card *c, const char *cmd, const char *pattern)
{
    const char *r = wt_x(c, cmd);
    uint8_t b[TSE_RAPDU_MAX];
    int n = tse_hex_decode(r, b, sizeof(b));
    if (tse_expect_match(pattern, b, (size_t)n) != 1)
        fail_msg("%s: expected %s, got %s", cmd, pattern, r);
}

/* SM MAC with the card's key of `usage` over `hdr_data` using a fresh GET CHALLENGE. */
static void sm_command(struct tse_card *c, struct wt_term *w, uint8_t usage, const char *hdr_hex,
                       char *out, size_t cap)
{
    const char *r = wt_x(c, "0084000004");
    assert_int_equal(strlen(r), 12);
    uint8_t ch[6], hd[64], key[16], mac[4];
    assert_int_equal(tse_hex_decode(r, ch, sizeof(ch)), 6); /* challenge ‖ SW */
    int n = tse_hex_decode(hdr_hex, hd, sizeof(hd));
    assert_true(n >= 5);
    assert_int_equal(tse_psam_card_key(&w->psam, &w->t.card, usage, 1, key), 0);
    assert_int_equal(tse_wallet_sm_mac(key, ch, 4, hd, (size_t)n, mac), 0);
    char mh[9];
    tse_hex_encode(mac, 4, mh);
    snprintf(out, cap, "%s%s", hdr_hex, mh);
}

static void test_select_fci(void **state)
{
    (void)state;
    /* the bare 8-byte AID with the file 0x15 of the real card in spec §1.3: the FCI must be
     * the captured one byte for byte */
    struct tse_card *c = wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "ep", W_AID_SHORT,
                                             "8E0801011000FFFFFFFF8F0A" W_ASN_BJ),
                                 path, sizeof(path));
    struct tse_wallet_perso p;
    memset(&p, 0, sizeof(p));
    tse_hex_decode("01011000FFFFFFFF0201031051700101709079842019080620401231 0000", p.ef15, 30);
    p.have15 = true;
    assert_int_equal(wt_personalise(c, W_AID_SHORT, &p, false, NULL), SW_NO_ERROR);
    expect(c, "00A4040008A000000632010105",
           "6F318408A000000632010105A5259F0801029F0C1E01011000FFFFFFFF02010310517001017090798420"
           "1908062040123100009000");
    /* with Le, and by the ADF's file identifier (default 1001) */
    expect(c, "00A4040008A00000063201010500", "6F31 * 9000");
    expect(c, "00A40000021001", "6F31 * 9000");
    expect(c, "00A4000002ADFA", "6A82");
    expect(c, "00A4040009A00000063201010599", "6A82"); /* not a name of ours */
    done(c);

    /* a 16-byte instance: 84 carries the full instance AID; partial selection finds it */
    c = bj_card();
    expect(c, "00A4040008A000000632010105",
           "6F398410" W_AID_BJ "A5259F0801029F0C1E" W_ISSUER_BJ "0201" W_ASN_BJ
           "20240101203412310000 9000");
    done(c);
}

static void test_unpersonalised(void **state)
{
    (void)state;
    struct tse_card *c =
        wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "ep", W_AID_BJ, ""), path, sizeof(path));
    expect(c, "00A4040008A000000632010105", "6F188410" W_AID_BJ "A5049F080102 9000");
    expect(c, "00B0950000", "6A82");
    expect(c, "00B0960000", "6A82");
    expect(c, "00B201C400", "6A83"); /* the log exists, empty */
    expect(c, "805C000204", "00000000 9000");
    expect(c, "805001020B0100000064000000000001", "9403");
    expect(c, "0020000003123456", "6A88");
    expect(c, "00200000", "6A88");
    done(c);
}

static void test_files(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    expect(c, "00A4040008A000000632010105", "*9000");
    expect(c, "00B0950000", W_ISSUER_BJ "0201" W_ASN_BJ "20240101203412310000 9000");
    expect(c, "00B095001E", "* 9000");
    expect(c, "00B0950008", W_ISSUER_BJ "9000"); /* a part of the file */
    expect(c, "00B0951C02", "0000 9000");        /* the last two bytes */
    expect(c, "00B0951C05", "6C02");             /* Le past the end */
    expect(c, "00B0951E00", "6B00");             /* offset past the end */
    expect(c, "00B0960000", "0000 2020 * 9000"); /* 0x16: 55 bytes */
    expect(c, "00B0960037", "* 9000");
    expect(c, "00B097003C", "000001560101100000010120 * 9000");
    expect(c, "00B0970010", "000001560101100000010120 20202020 9000");
    expect(c, "00B0990000", "6A82"); /* 0x19: no such file */
    expect(c, "00B09F0000", "6A82"); /* 0x1F: not configured */
    expect(c, "00B0980000", "6981"); /* a record file */
    expect(c, "00B0000000", "6986"); /* no current EF */
    expect(c, "00B201AC00", "6981"); /* READ RECORD on a transparent file */
    expect(c, "00B201C400", "6A83"); /* log empty */
    expect(c, "00B201C417", "6A83");
    expect(c, "00B200C400", "6A83");
    expect(c, "00B201C700", "6A86");
    expect(c, "00B201F400", "6A83");
    expect(c, "00B201D480", "6A83");
    expect(c, "00B201FC17", "6A82");
    expect(c, "00D695000401020304", "6982"); /* plain writes are refused */
    expect(c, "80B0950000", "6E00");
    expect(c, "80CA9F7F00", "6D00");
    done(c);
}

static void test_perso_encrypted(void **state)
{
    (void)state;
    struct tse_card *c =
        wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "ep", W_AID_BJ, ""), path, sizeof(path));
    struct tse_wallet_perso p;
    wt_test_perso(&p, W_ISSUER_BJ, W_ASN_BJ);
    /* a second key set (index 02) and a second load key (index 03) */
    p.set[1][TSE_WALLET_KEY_PURCHASE - 1] = p.set[0][TSE_WALLET_KEY_PURCHASE - 1];
    p.set[1][TSE_WALLET_KEY_PURCHASE - 1].index = 2;
    p.set[1][TSE_WALLET_KEY_PURCHASE - 1].version = 7;
    p.set[1][TSE_WALLET_KEY_PURCHASE - 1].alg = 4;
    p.load2[0] = p.set[0][TSE_WALLET_KEY_LOAD - 1];
    p.load2[0].index = 3;
    unsigned n = 0;
    assert_int_equal(wt_personalise(c, W_AID_BJ, &p, true, &n), SW_NO_ERROR);
    /* B001 B002 B003, B0A0 over two blocks, B1A0, B0A5, B0B0, B0C0 */
    assert_int_equal(n, 9);
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    struct tse_wallet_result r;
    assert_int_equal(tse_wallet_term_load(&w.t, 5000, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 100, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(wt_balance(&w), 4900);
    /* key index 02 answers its own version and algorithm identifier */
    expect(c, "805001020B0200000064000000000001", "00001324 0001 000000 07 04 ******** 9000");
    expect(c, "00A4040008A000000632010105", "*9000");      /* selection forgets the PIN */
    expect(c, "805000020B0300000064000000000001", "6982"); /* load needs the PIN */
    expect(c, "0020000003123456", "9000");
    expect(c, "805000020B0300000064000000000001", "00001324 0001 01 00 * 9000");
    expect(c, "805000020B0400000064000000000001", "9403");

    /* bad DGIs: unknown, wrong length, truncated, BER-TLV structure */
    struct wt_perso wp;
    wt_perso_init(&wp, c, W_AID_BJ);
    uint8_t cmd[64];
    int len = tse_hex_decode("80E2880005 B0990201 02", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_REFERENCED_DATA_NOT_FOUND);
    len = tse_hex_decode("80E2880005 B0C00201 02", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_WRONG_DATA);
    len = tse_hex_decode("80E2880004 B0C00701", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_WRONG_DATA);
    len = tse_hex_decode("80E2900003 C00100", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_WRONG_DATA);
    /* a good one: new limits (max 50.00), all-or-nothing with a bad DGI after it */
    len = tse_hex_decode("80E208000E B0C007 00001388 000000 B09901 00", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_REFERENCED_DATA_NOT_FOUND);
    expect(c, "0020000003123456", "9000");
    expect(c, "805000020B0100001388000000000001", "* 9000"); /* not applied: max still 1000.00 */
    len = tse_hex_decode("80E288000A B0C007 00001388 000000", cmd, sizeof(cmd));
    assert_int_equal(wt_store_data(&wp, cmd, (size_t)len), SW_NO_ERROR);
    expect(c, "0020000003123456", "9000");
    expect(c, "805000020B0100000064000000000001", "* 9000");
    expect(c, "805000020B0100000065000000000001", "6A80"); /* 49.00 + 1.01 > 50.00 */
    done(c);
}

static void test_load_purchase(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    assert_int_equal(wt_balance(&w), 0);
    struct tse_wallet_result r;
    assert_int_equal(tse_wallet_term_load(&w.t, 5000, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(r.seq, 0);
    assert_int_equal(wt_balance(&w), 5000);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 200, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(r.seq, 0);
    assert_int_equal(r.balance_before, 5000);
    assert_int_equal(wt_balance(&w), 4800);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 300, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(wt_balance(&w), 4500);

    /* the log: newest first; sequence after increment, type, amount, terminal, date, time */
    expect(c, "00B201C417", "0002 000000 0000012C 06 000000000001 20240501 083000 9000");
    expect(c, "00B202C417", "0001 000000 000000C8 06 000000000001 20240501 083000 9000");
    expect(c, "00B203C417", "0001 000000 00001388 02 000000000001 20240501 083000 9000");
    expect(c, "00B204C417", "6A83");
    expect(c, "00B202C400", "0001 * 9000");
    expect(c, "00B202C410", "6C17");
    expect(c, "00B201C500", "0002 * 0001 * 0001 * 9000"); /* records 1 to the last */
    /* the balance variants: 00 spendable, 03 real, 01/02 overdraft in use */
    expect(c, "805C000204", "00001194 9000");
    expect(c, "805C030204", "00001194 9000");
    expect(c, "805C020204", "00000000 9000");
    expect(c, "805C040204", "6A86");
    expect(c, "805C000104", "6A86");

    /* proofs: exactly for the last transaction of its kind and counter */
    uint8_t mac2[4], tac[4];
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_PURCHASE, 2, mac2, tac), 0);
    assert_memory_equal(mac2, r.mac2, 4);
    assert_memory_equal(tac, r.tac, 4);
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_PURCHASE, 1, mac2, tac),
                     TSE_ERR_NOT_FOUND);
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_CAPP, 2, mac2, tac),
                     TSE_ERR_NOT_FOUND);
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_EP_LOAD, 1, mac2, tac), 0);
    expect(c, "805A000702 0002", "6A86");
    expect(c, "805A000603 000200", "6700");

    /* transaction state rules */
    expect(c, "805401000F00000001202405010830000102030408", "6985"); /* DEBIT without INIT */
    expect(c, "805200000B202405010830000102030408", "6985");         /* CREDIT without INIT */
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c,
           "80DC00F030"
           "000000000000000000000000000000000000000000000000"
           "000000000000000000000000000000000000000000000000",
           "9000");
    expect(c, "0020000003123456", "9000"); /* any other command ends the transaction */
    expect(c,
           "80DC00F030"
           "000000000000000000000000000000000000000000000000"
           "000000000000000000000000000000000000000000000000",
           "6985");
    expect(c, "805001020B0100000000000000000001", "* 9000");
    expect(c,
           "80DC00F030"
           "000000000000000000000000000000000000000000000000"
           "000000000000000000000000000000000000000000000000",
           "6985"); /* not CAPP */
    expect(c, "805001020A01000000000000000000", "6700");
    expect(c, "805002020B0100000000000000000001", "6A86");
    expect(c, "805001010B0100000000000000000001", "6A86");
    done(c);
}

static void test_capp(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    struct tse_wallet_result r;
    assert_int_equal(tse_wallet_term_load(&w.t, 5000, &r), 0);
    struct tse_wallet_gate g = W_GATE_BJ;
    int erc = tse_wallet_term_entry(&w.t, &g, &r);
    if (erc)
        fail_msg("entry: %s at %s, SW %04X", tse_strerror(erc), w.t.step, w.t.sw);
    assert_true(r.tac_ok);
    assert_int_equal(wt_balance(&w), 5000);
    /* entry: a zero-amount compound purchase is logged (type 09), counter 1 */
    expect(c, "00B201C417", "0001 000000 00000000 09 * 9000");
    expect(c, "00B201F430", "03 0000000000000001 01 0001 0005 * 9000");
    expect(c, "00B201D480", "2712 7D * 9000"); /* the rail record, by number */
    const char *rr = wt_x(c, "00B212D080");    /* and by its identifier */
    assert_int_equal(strlen(rr), 2 * 128 + 4);
    assert_memory_equal(rr + 28, "01", 2); /* byte 14: entered */
    uint8_t mac2[4], tac[4];
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_CAPP, 1, mac2, tac), 0);

    g.station[1] = 0x17;
    assert_int_equal(tse_wallet_term_exit(&w.t, &g, 300, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(wt_balance(&w), 4700);
    expect(c, "00B201C417", "0002 000000 0000012C 09 * 9000");
    expect(c, "00B201F430", "04 0000000000000001 01 0001 0017 0000 00 0000012C 0000125C * 9000");
    expect(c, "00B202F430", "03 * 9000");
    expect(c, "00B203F430", "6A83");
    rr = wt_x(c, "00B212D080");
    assert_memory_equal(rr + 28, "02", 2); /* exited */
    expect(c, "00B202D480", "6A83");       /* only one rail record */
    assert_int_equal(tse_wallet_term_prove(&w.t, TSE_WALLET_TT_CAPP, 2, mac2, tac), 0);
    assert_memory_equal(tac, r.tac, 4);

    /* cache rules: sizes, identifiers, file kinds */
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c,
           "80DC00F02F"
           "0000000000000000000000000000000000000000000000"
           "000000000000000000000000000000000000000000000000",
           "6700");
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c,
           "80DC01F030"
           "000000000000000000000000000000000000000000000000"
           "000000000000000000000000000000000000000000000000",
           "6A86");
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c,
           "80DC00C017"
           "0000000000000000000000000000000000000000000000",
           "6981");
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c, "80DC00D001 00", "6A86");
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c, "80DC01D101 00", "6A86");
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c, "80DC01C801 00", "6A82");
    /* four more identifiers fill the four slots of 0x1A (one is used) */
    expect(c, "805003020B0100000000000000000001", "* 9000");
    expect(c, "80DC01D00101", "9000");
    expect(c, "80DC02D00102", "9000");
    expect(c, "80DC03D00103", "9000");
    expect(c, "80DC04D00104", "6A84");
    done(c);
}

static void test_bad_mac(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    assert_int_equal(tse_wallet_term_load(&w.t, 1000, NULL), 0);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 100, NULL), 0);
    const char *before = wt_x(c, "00B201C500");
    char log_before[600];
    assert_true(strlen(before) < sizeof(log_before));
    memcpy(log_before, before, strlen(before) + 1);
    for (int i = 1; i <= 3; i++) {
        const char *r = wt_x(c, "805001020B0100000064000000000001");
        assert_string_equal(r + strlen(r) - 4, "9000");
        /* wrong MAC1 */
        expect(c, "805401000F 00000009 20240501 083000 11223344", "9302");
        expect(c, "805C000204", "00000384 9000"); /* balance unchanged */
        if (i < 3) {
            expect(c, "00B201C500", log_before);
            expect(c, "805A000602 0001", "* 9000"); /* the proof of the last real debit */
        }
    }
    /* three consecutive MAC errors: the application is blocked (temporarily) */
    expect(c, "805001020B0100000064000000000001", "6A81");
    expect(c, "00A4040008A000000632010105", "6F39 * 6283");
    expect(c, "00B201C500", log_before); /* reads still work */
    char cmd[128];
    sm_command(c, &w, TSE_WALLET_KEY_APP_UNBLOCK, "8418000004", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00A4040008A000000632010105", "6F39 * 9000");
    /* a good transaction resets the counter; errors then count from zero */
    assert_int_equal(tse_wallet_term_purchase(&w.t, 100, NULL), 0);
    /* wrong MAC2 on CREDIT */
    expect(c, "0020000003123456", "9000");
    expect(c, "805000020B0100000064000000000001", "* 9000");
    expect(c, "805200000B20240501083000 01020304", "9302");
    expect(c, "805C000204", "00000320 9000");
    done(c);
}

static void test_limits(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    assert_int_equal(tse_wallet_term_load(&w.t, 100, NULL), 0);
    /* insufficient balance */
    assert_int_equal(tse_wallet_term_purchase(&w.t, 101, NULL), TSE_ERR_STATE);
    assert_int_equal(w.t.sw, SW_WALLET_INSUFFICIENT);
    expect(c, "805003020B0100000065000000000001", "9401");
    /* maximum balance: 1000.00 */
    assert_int_equal(tse_wallet_term_load(&w.t, 99901, NULL), TSE_ERR_STATE);
    assert_int_equal(w.t.sw, SW_WRONG_DATA);
    assert_int_equal(tse_wallet_term_load(&w.t, 99900, NULL), 0);
    assert_int_equal(wt_balance(&w), 100000);

    /* counters at FFFF: set them just below through the instance's state object */
    int idx = wt_index(c, W_AID_BJ);
    uint8_t fffe[2] = {0xFF, 0xFE};
    assert_int_equal(tse_store_write(c->store, tse_rt_inst(c, idx)->ctx_id, 0x02, 6, fffe, 2), 0);
    assert_int_equal(tse_store_write(c->store, tse_rt_inst(c, idx)->ctx_id, 0x02, 4, fffe, 2), 0);
    struct tse_wallet_result r;
    assert_int_equal(tse_wallet_term_purchase(&w.t, 1, &r), 0);
    assert_int_equal(r.seq, 0xFFFE);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 1, NULL), TSE_ERR_STATE);
    assert_int_equal(w.t.sw, SW_WALLET_COUNTER_LIMIT);
    expect(c, "805003020B0100000000000000000001", "9402");
    assert_int_equal(tse_wallet_term_load(&w.t, 1, &r), 0);
    assert_int_equal(r.seq, 0xFFFE);
    assert_int_equal(tse_wallet_term_load(&w.t, 1, NULL), TSE_ERR_STATE);
    assert_int_equal(w.t.sw, SW_WALLET_COUNTER_LIMIT);
    done(c);
}

static void test_overdraft(void **state)
{
    (void)state;
    struct tse_card *c =
        wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "ep", W_AID_BJ, ""), path, sizeof(path));
    struct tse_wallet_perso p;
    wt_test_perso(&p, W_ISSUER_BJ, W_ASN_BJ);
    p.overdraft = 500;
    assert_int_equal(wt_personalise(c, W_AID_BJ, &p, false, NULL), SW_NO_ERROR);
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    assert_int_equal(tse_wallet_term_load(&w.t, 300, NULL), 0);
    expect(c, "805001020B0100000064000000000001", "00000320 0000 0001F4 01 00 * 9000");
    assert_int_equal(tse_wallet_term_purchase(&w.t, 700, NULL), 0); /* 400 into the overdraft */
    expect(c, "805C000204", "00000064 9000");
    expect(c, "805C030204", "00000000 9000");
    expect(c, "805C020204", "00000190 9000");
    assert_int_equal(tse_wallet_term_purchase(&w.t, 101, NULL), TSE_ERR_STATE);
    assert_int_equal(tse_wallet_term_load(&w.t, 1000, NULL), 0); /* repays 400 first */
    expect(c, "805C030204", "00000258 9000");
    expect(c, "805C020204", "00000000 9000");
    expect(c, "805C000204", "0000044C 9000");
    done(c);
}

static void test_pin(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    expect(c, "00200000", "63C3");
    expect(c, "0020000003111111", "63C2");
    expect(c, "0020000003123456", "9000");
    expect(c, "00200000", "9000");
    expect(c, "0020000003111111", "63C2");
    expect(c, "0020000003111111", "63C1");
    expect(c, "0020000003111111", "63C0");
    expect(c, "0020000003123456", "6983");
    expect(c, "00200000", "6983");
    w.t.pin_len = 3;
    assert_int_equal(tse_wallet_term_load(&w.t, 100, NULL), TSE_ERR_STATE);
    expect(c, "805000020B0100000064000000000001", "6982");
    /* PIN UNBLOCK: 84 24, DES3-ECB(len ‖ PIN ‖ 80 00..) ‖ MAC under the PIN key */
    uint8_t key[16], blk[8] = {0x03, 0x12, 0x34, 0x56, 0x80, 0, 0, 0}, enc[8];
    assert_int_equal(tse_psam_card_key(&w.psam, &w.t.card, TSE_WALLET_KEY_PIN, 1, key), 0);
    assert_int_equal(tse_des3_ecb(key, true, blk, 8, enc), 0);
    char hdr[64], cmd[128];
    char eh[17];
    tse_hex_encode(enc, 8, eh);
    snprintf(hdr, sizeof(hdr), "842400000C%s", eh);
    sm_command(c, &w, TSE_WALLET_KEY_PIN, hdr, cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00200000", "63C3");
    expect(c, "0020000003123456", "9000");
    /* CHANGE PIN: old ‖ FF ‖ new */
    expect(c, "805E010007 12345600654321", "6A80"); /* no FF separator */
    expect(c, "805E010007123456FF654321", "9000");
    expect(c, "0020000003123456", "63C2");
    expect(c, "0020000003654321", "9000");
    expect(c, "805E010007111111FF123456", "63C2");
    /* RELOAD PIN: new ‖ MAC(PIN key L⊕R, new) */
    uint8_t k8[8], np[2] = {0x88, 0x88}, mac[4];
    tse_wallet_tac_key(key, k8);
    assert_int_equal(tse_wallet_mac(k8, np, 2, mac), 0);
    char mh[9];
    tse_hex_encode(mac, 4, mh);
    snprintf(cmd, sizeof(cmd), "805E0000068888%s", mh);
    expect(c, cmd, "9000");
    expect(c, "805E000006888800000000", "9302");
    expect(c, "00200000", "63C3");
    expect(c, "00200000028888", "9000");
    done(c);
}

static void test_block(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    assert_int_equal(tse_wallet_term_load(&w.t, 1000, NULL), 0);
    char cmd[128];
    /* the MAC needs the challenge of the command just before */
    expect(c, "841E00000401020304", "6988");
    sm_command(c, &w, TSE_WALLET_KEY_APP_BLOCK, "841E000004", cmd, sizeof(cmd));
    char bad[128];
    snprintf(bad, sizeof(bad), "%s", cmd);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    expect(c, bad, "6988");
    expect(c, cmd, "6988"); /* the challenge was used up by the wrong attempt */
    sm_command(c, &w, TSE_WALLET_KEY_APP_BLOCK, "841E000004", cmd, sizeof(cmd));
    expect(c, "805C000204", "* 9000");
    expect(c, cmd, "6988"); /* ...and by any other command in between */
    sm_command(c, &w, TSE_WALLET_KEY_APP_BLOCK, "841E000004", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    /* temporarily blocked: SELECT gives the FCI with 6283, transactions 6A81 */
    expect(c, "00A4040008A000000632010105", "6F39 * 6283");
    expect(c, "805001020B0100000064000000000001", "6A81");
    expect(c, "0020000003123456", "6A81");
    expect(c, "805C000204", "000003E8 9000");
    expect(c, "00B0950000", "* 9000");
    sm_command(c, &w, TSE_WALLET_KEY_APP_UNBLOCK, "8418000004", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    sm_command(c, &w, TSE_WALLET_KEY_APP_UNBLOCK, "8418000004", cmd, sizeof(cmd));
    expect(c, cmd, "6985"); /* not blocked */
    assert_int_equal(tse_wallet_term_purchase(&w.t, 1, NULL), 0);
    /* permanently */
    sm_command(c, &w, TSE_WALLET_KEY_APP_BLOCK, "841E000104", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00A4040008A000000632010105", "9303");
    expect(c, "805C000204", "9303");
    expect(c, "0084000004", "9303");
    done(c);

    /* CARD BLOCK (card maintenance key): this purse answers 6A81 for good */
    c = bj_card();
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    sm_command(c, &w, TSE_WALLET_KEY_CARD_MAINT, "8416000004", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00A4040008A000000632010105", "6A81");
    expect(c, "805C000204", "6A81");
    done(c);
}

static void test_sm_update(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    char cmd[256];
    /* write the cardholder name (0x16 offset 2) */
    sm_command(c, &w, TSE_WALLET_KEY_MAINT, "04D6960209 5A48414E47", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00B0960007", "0000 5A48414E47 9000");
    /* 0x15 too: the FCI follows */
    sm_command(c, &w, TSE_WALLET_KEY_MAINT, "04D6951C06 1101", cmd, sizeof(cmd));
    expect(c, cmd, "9000");
    expect(c, "00A4040008A000000632010105", "6F39 * 1101 9000");
    sm_command(c, &w, TSE_WALLET_KEY_MAINT, "04D6951D06 1101", cmd, sizeof(cmd));
    expect(c, cmd, "6700");
    sm_command(c, &w, TSE_WALLET_KEY_MAINT, "04D6981D06 1101", cmd, sizeof(cmd));
    expect(c, cmd, "6981");
    /* a key other than the maintenance key */
    sm_command(c, &w, TSE_WALLET_KEY_APP_BLOCK, "04D6960209 5A48414E47", cmd, sizeof(cmd));
    expect(c, cmd, "6988");
    expect(c, "04D6960003 010203", "6987");
    done(c);
}

static void test_instances(void **state)
{
    (void)state;
    char prof[2048];
    snprintf(prof, sizeof(prof), "%s%s",
             wt_instance(ibuf[0], sizeof(ibuf[0]), "bj", W_AID_BJ, "8F0A" W_ASN_BJ),
             wt_instance(ibuf[1], sizeof(ibuf[1]), "sz", W_AID_SZ,
                         "8E0802152150FFFFFFFF 8F0A03104895000000001234 84010A 810105"));
    struct tse_card *c = wt_card(prof, path, sizeof(path));
    struct wt_term w;
    wt_term_init(&w, c);
    wt_select(&w, W_AID_BJ);
    assert_int_equal(tse_wallet_term_load(&w.t, 1000, NULL), 0);
    wt_select(&w, W_AID_SZ);
    assert_memory_equal(w.t.card.issuer_id, "\x02\x15\x21\x50", 4);
    assert_int_equal(wt_balance(&w), 0);
    assert_int_equal(tse_wallet_term_load(&w.t, 2000, NULL), 0);
    assert_int_equal(tse_wallet_term_purchase(&w.t, 1, NULL), 0);
    expect(c, "00B201FC17", "0001 000000 000007D0 02 * 9000"); /* 0x1F configured here */
    expect(c, "00B202FC17", "6A83");
    wt_select(&w, W_AID_BJ);
    assert_int_equal(wt_balance(&w), 1000);
    expect(c, "00B201FC17", "6A82");
    /* partial selection: first, then next occurrence */
    expect(c, "00A4040008A000000632010105", "6F398410" W_AID_BJ "* 9000");
    expect(c, "00A4040208A000000632010105", "6F398410" W_AID_SZ "* 9000");
    expect(c, "00A4040208A000000632010105", "6A82");
    /* bad install parameters refuse the instance */
    done(c);
    char err[256];
    struct tse_card *bad = NULL;
    tt_path(path, sizeof(path), "bad");
    const char *inst = wt_instance(ibuf[2], sizeof(ibuf[2]), "x", W_AID_BJ, "8101 00");
    assert_int_not_equal(
        tse_card_create(&bad, path, inst, strlen(inst), "t", NULL, err, sizeof(err)), 0);
    unlink(path);
}

/* Vector A through the card: the DPK of the vector (undiversified), the card's random fixed. */
/* A terminal on the contact interface whose DEBIT or CREDIT waits while a whole purchase runs
 * on the contactless interface: the two interfaces' sessions overlap on one purse. */
struct overlap {
    struct tse_card *card;
    struct wt_term *other; /* the contactless terminal */
    bool done;
};

static int overlap_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                            size_t *rlen)
{
    struct overlap *o = user;
    if (!o->done && clen > 2 && c[0] == 0x80 && (c[1] == 0x54 || c[1] == 0x52)) {
        o->done = true;
        struct tse_wallet_result cl;
        assert_int_equal(tse_wallet_term_purchase(&o->other->t, 100, &cl), 0);
        assert_true(cl.tac_ok);
    }
    return tse_card_transmit(o->card, TSE_IF_CONTACT, c, clen, r, rcap, rlen);
}

static void test_interfaces_overlap(void **state)
{
    (void)state;
    struct tse_card *c = bj_card();
    struct wt_term w; /* contactless */
    wt_term_init(&w, c);
    wt_select(&w, W_AID_SHORT);
    struct tse_wallet_result r;
    assert_int_equal(tse_wallet_term_load(&w.t, 5000, &r), 0);

    struct overlap o = {.card = c, .other = &w};
    struct tse_psam psam;
    tse_psam_init(&psam);
    assert_int_equal(tse_psam_load_test_keys(&psam), 0);
    static const uint8_t tid[6] = {0, 0, 0, 0, 0, 0x02};
    tse_psam_set_terminal(&psam, tid, 1);
    struct tse_wallet_term t; /* contact */
    tse_wallet_term_init(&t, &psam, overlap_transmit, &o);
    static const uint8_t pin[3] = {0x12, 0x34, 0x56};
    memcpy(t.pin, pin, 3);
    t.pin_len = 3;
    uint8_t aid[8];
    assert_int_equal(tse_hex_decode(W_AID_SHORT, aid, 8), 8);
    assert_int_equal(tse_wallet_term_select(&t, aid, 8), 0);

    /* a contactless purchase (counter 0 → 1) between the contact INITIALIZE (counter 0) and
     * its DEBIT: the contact session is stale, its DEBIT is refused and writes nothing */
    assert_int_equal(tse_wallet_term_purchase(&t, 200, &r), TSE_ERR_STATE);
    assert_int_equal(t.sw, SW_CONDITIONS_NOT_SATISFIED);
    assert_string_equal(t.step, "DEBIT FOR PURCHASE");
    expect(c, "805C000204", "00001324 9000"); /* 50.00 - 1.00 */
    expect(c, "00B201C417", "0001 000000 00000064 06 * 9000");
    /* a new contact purchase gets the next counter */
    assert_int_equal(tse_wallet_term_purchase(&t, 200, &r), 0);
    assert_true(r.tac_ok);
    assert_int_equal(r.seq, 1);
    expect(c, "00B201C417", "0002 000000 000000C8 06 000000000002 * 9000");
    expect(c, "00B202C417", "0001 000000 00000064 06 000000000001 * 9000");

    /* a load whose CREDIT comes after a contactless purchase: its TAC would name a balance
     * the purse never had, so it is refused too (the online counter stays) */
    o.done = false;
    assert_int_equal(tse_wallet_term_load(&t, 1000, &r), TSE_ERR_STATE);
    assert_int_equal(t.sw, SW_CONDITIONS_NOT_SATISFIED);
    assert_string_equal(t.step, "CREDIT FOR LOAD");
    expect(c, "805C000204", "000011F8 9000"); /* 50.00 - 1.00 - 2.00 - 1.00 */
    assert_int_equal(tse_wallet_term_load(&t, 1000, &r), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(r.balance_after, 5600);
    expect(c, "805C000204", "000015E0 9000");
    tse_psam_free(&psam);
    done(c);
}

static void test_vector_a_on_card(void **state)
{
    (void)state;
    struct tse_card *c = wt_card(wt_instance(ibuf[0], sizeof(ibuf[0]), "ep", W_AID_BJ, "870100"),
                                 path, sizeof(path));
    struct tse_wallet_perso p;
    memset(&p, 0, sizeof(p));
    uint8_t k[16];
    tse_hex_decode("11223344556677888877665544332211", k, 16);
    for (int u = 1; u <= TSE_WALLET_KEY_USAGES; u++) {
        p.set[0][u - 1].index = 1;
        memcpy(p.set[0][u - 1].key, k, 16);
    }
    assert_int_equal(wt_personalise(c, W_AID_BJ, &p, true, NULL), SW_NO_ERROR);
    expect(c, "00A4040008A000000632010105", "6F18 * 9000");
    /* a load of 0x1000 first (random 11223344, online counter 0): MAC1 of vector B's key with
     * type 02 */
    uint8_t rnd[4] = {0x11, 0x22, 0x33, 0x44};
    tse_card_queue_random(c, rnd, 4);
    struct tse_wallet_txn t = {.type = 2, .amount = 0x1000};
    memcpy(t.rand, rnd, 4);
    memcpy(t.term_id, "\x00\x11\x22\x33\x44\x55", 6);
    uint8_t sk[8], m[4];
    tse_wallet_load_sk(k, &t, sk);
    tse_wallet_load_mac1(sk, &t, m);
    char want[80], mh[9];
    tse_hex_encode(m, 4, mh);
    snprintf(want, sizeof(want), "00000000 0000 00 00 11223344 %s 9000", mh);
    expect(c, "805000020B0100001000001122334455", want);
    memcpy(t.date, "\x20\x11\x12\x21", 4);
    memcpy(t.time, "\x21\x48\x22", 3);
    tse_wallet_load_mac2(sk, &t, m);
    char cmd[80];
    tse_hex_encode(m, 4, mh);
    snprintf(cmd, sizeof(cmd), "805200000B20111221214822%s04", mh);
    expect(c, cmd, "******** 9000");
    /* the purchase of vector A */
    tse_card_queue_random(c, rnd, 4);
    expect(c, "805001020B0100001000001122334455", "00001000 0000 000000 00 00 11223344 9000");
    expect(c, "805401000F 00000001 20120229 135100 F15CAB75 08", "******** 56988A13 9000");
    expect(c, "805C000204", "00000000 9000");
    done(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_fci),
        cmocka_unit_test(test_unpersonalised),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_perso_encrypted),
        cmocka_unit_test(test_load_purchase),
        cmocka_unit_test(test_capp),
        cmocka_unit_test(test_bad_mac),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_overdraft),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_block),
        cmocka_unit_test(test_sm_update),
        cmocka_unit_test(test_instances),
        cmocka_unit_test(test_vector_a_on_card),
        cmocka_unit_test(test_interfaces_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
