/* SPDX-License-Identifier: Apache-2.0 */
/* The ISO 14443 air-time model (src/io/airtime.c) against the formulas and the figures of
 * ../shared/spec/contactless.md §7 (rounded there to the digits given here). */
#include "tse_test.h"
#include "tse/airtime.h"

/* |got - want| <= tol, in milliseconds for readability of the figures */
#define assert_ms(got_us, want_ms, tol_ms)                                                         \
    do {                                                                                           \
        double g_ = (got_us) / 1000.0;                                                             \
        if (g_ < (want_ms) - (tol_ms) || g_ > (want_ms) + (tol_ms))                                \
            fail_msg("%s = %.4f ms, want %.4f +- %.4f", #got_us, g_, (double)(want_ms),            \
                     (double)(tol_ms));                                                            \
    } while (0)

static void test_etu_and_constants(void **state)
{
    (void)state;
    assert_ms(tse_air_etu_us(TSE_AIR_106), 0.00944, 0.000005);
    assert_ms(tse_air_etu_us(TSE_AIR_212), 0.00472, 0.000005);
    assert_ms(tse_air_etu_us(TSE_AIR_424), 0.00236, 0.000005);
    assert_ms(tse_air_etu_us(TSE_AIR_848), 0.00118, 0.000005);
    assert_ms(tse_air_short_frame_us(), 0.085, 0.0005);
    assert_ms(tse_air_fdt_min_us(), 0.0864, 0.00005);
    /* FWT = 302.1 us * 2^FWI */
    assert_ms(tse_air_fwt_us(0), 0.3021, 0.00005);
    assert_ms(tse_air_fwt_us(4), 4.833, 0.0005);
    assert_ms(tse_air_fwt_us(9), 154.7, 0.05);
    assert_ms(tse_air_fwt_us(14), 4949.0, 0.5);
    assert_ms(tse_air_fwt_us(15), 4.833, 0.0005); /* RFU: default */
    assert_ms(tse_air_sfgt_us(0), 0.0, 0.0);
    assert_ms(tse_air_sfgt_us(2), 1.208, 0.0005);
    assert_int_equal(tse_air_fsc_bytes(0), 16);
    assert_int_equal(tse_air_fsc_bytes(5), 64);
    assert_int_equal(tse_air_fsc_bytes(8), 256);
    assert_int_equal(tse_air_fsc_bytes(12), 4096);
    assert_int_equal(tse_air_fsc_bytes(15), 256);
    assert_int_equal(tse_air_rate_kbps(TSE_AIR_848), 848);
    enum tse_air_rate br;
    assert_int_equal(tse_air_rate_parse("424", &br), 0);
    assert_int_equal(br, TSE_AIR_424);
    assert_int_equal(tse_air_rate_parse("100", &br), TSE_ERR_INVALID_ARG);
}

static void test_frames(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        double ms;
    } f[] = {{1, 0.104},  {2, 0.189},  {3, 0.274},  {5, 0.444},   {9, 0.784},
             {16, 1.378}, {32, 2.738}, {64, 5.456}, {128, 10.89}, {259, 22.02}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        assert_ms(tse_air_frame_us(f[i].n, TSE_AIR_106), f[i].ms, 0.0006 + f[i].ms * 0.0003);
    assert_ms(tse_air_frame_us(16, TSE_AIR_212), 0.689, 0.0005);
    assert_ms(tse_air_frame_us(16, TSE_AIR_424), 0.345, 0.0005);
    assert_ms(tse_air_frame_us(16, TSE_AIR_848), 0.172, 0.0005);
    assert_ms(tse_air_frame_us(0, TSE_AIR_106), 0.0, 0.0);
}

static void test_activation(void **state)
{
    (void)state;
    assert_ms(tse_air_activation_us(4, 5, 0), 3.63, 0.005);
    /* the PN532's own ATS (SFGI 2) adds SFGT */
    assert_ms(tse_air_activation_us(4, 5, 2) - tse_air_activation_us(4, 5, 0), 1.21, 0.005);
    assert_ms(tse_air_activation_us(7, 7, 0), 5.83, 0.005);
    assert_ms(tse_air_activation_us(10, 7, 0), 7.87, 0.005);
    assert_true(tse_air_activation_us(5, 5, 0) < 0);
}

static void test_exchange(void **state)
{
    (void)state;
    struct tse_air_link l;
    tse_air_link_default(&l);
    l.fsc = 256;
    l.fsd = 256;
    struct tse_air_exchange x;
    /* SELECT by AID: 13-byte C-APDU, 2-byte answer */
    static const double sel[] = {2.0, 1.08, 0.63, 0.40};
    for (unsigned r = 0; r < 4; r++) {
        l.rate = (enum tse_air_rate)r;
        assert_int_equal(tse_air_exchange(&l, 13, 2, 0, &x), 0);
        assert_ms(x.total_us, sel[r], r == 0 ? 0.05 : 0.005); /* "2.0" has one decimal */
        assert_int_equal(x.cmd_blocks, 1);
        assert_int_equal(x.rsp_blocks, 1);
        assert_int_equal(x.wtx, 0);
    }
    l.rate = TSE_AIR_106;
    /* READ BINARY 5 bytes -> 256 + 2, FSD 256 (2 blocks) and FSD 64 (5 blocks) */
    assert_int_equal(tse_air_exchange(&l, 5, 258, 0, &x), 0);
    assert_ms(x.total_us, 23.8, 0.05);
    assert_int_equal(x.rsp_blocks, 2);
    l.fsd = 64;
    assert_int_equal(tse_air_exchange(&l, 5, 258, 0, &x), 0);
    assert_ms(x.total_us, 25.9, 0.06);
    assert_int_equal(x.rsp_blocks, 5);
    /* the formula by hand: 1 C block, 5 R blocks, 4 R(ACK)s, 10 FDTs */
    double fdt = tse_air_fdt_min_us();
    double want = tse_air_frame_us(8, TSE_AIR_106) + 4 * tse_air_frame_us(64, TSE_AIR_106) +
                  tse_air_frame_us(14 + 3, TSE_AIR_106) + 4 * tse_air_frame_us(3, TSE_AIR_106) +
                  10 * fdt;
    assert_ms(x.total_us, want / 1000.0, 1e-9);
    /* card processing: only what exceeds the FDT counts */
    l.fsd = 256;
    struct tse_air_exchange y;
    assert_int_equal(tse_air_exchange(&l, 13, 2, 0, &x), 0);
    assert_int_equal(tse_air_exchange(&l, 13, 2, 3000.0, &y), 0); /* below FWT */
    assert_ms(y.total_us - x.total_us, 3.0 - fdt / 1000.0, 1e-9);
    assert_ms(y.air_us, x.air_us / 1000.0, 1e-9);
    /* command chaining with the PN532's FSC 64: 200 bytes = 4 blocks of 61 or less */
    l.fsc = 64;
    assert_int_equal(tse_air_exchange(&l, 200, 2, 0, &x), 0);
    assert_int_equal(x.cmd_blocks, 4);
    want = 3 * tse_air_frame_us(64, TSE_AIR_106) + tse_air_frame_us(17 + 3, TSE_AIR_106) +
           3 * tse_air_frame_us(3, TSE_AIR_106) + 7 * fdt;
    assert_ms(x.cmd_us, want / 1000.0, 1e-9);
    /* CID adds one byte per block */
    l.cid = true;
    assert_int_equal(tse_air_exchange(&l, 13, 2, 0, &y), 0);
    l.cid = false;
    assert_int_equal(tse_air_exchange(&l, 13, 2, 0, &x), 0);
    assert_ms(y.air_us - x.air_us, 2 * 9 * tse_air_etu_us(TSE_AIR_106) / 1000.0, 1e-9);
    /* beyond FWT (FWI 4: 4.833 ms) the card sends S(WTX): 12 ms needs 2 */
    assert_int_equal(tse_air_exchange(&l, 13, 2, 12000.0, &x), 0);
    assert_int_equal(x.wtx, 2);
    assert_ms(x.wtx_us, 2 * 2 * (tse_air_frame_us(4, TSE_AIR_106) + fdt) / 1000.0, 1e-9);
    /* an empty answer still is one block; a silly FSC is refused */
    assert_int_equal(tse_air_exchange(&l, 0, 0, 0, &x), 0);
    assert_int_equal(x.cmd_blocks, 1);
    l.fsc = 3;
    assert_int_equal(tse_air_exchange(&l, 13, 2, 0, &x), TSE_ERR_INVALID_ARG);
}

static void test_transit_script(void **state)
{
    (void)state;
    /* The 8-APDU transit-like script of the spec page: SELECT, 3x READ RECORD, 2-pass
     * mutual authentication, DEBIT, COMMIT. Assumed sizes (C, R): the page gives only the
     * total, so this checks the order of magnitude and the card-processing arithmetic. */
    static const size_t c[] = {13, 5, 5, 5, 13, 21, 21, 5};
    static const size_t r[] = {40, 34, 34, 34, 30, 10, 10, 2};
    static const double card_ms[] = {1, 1, 1, 1, 3, 5, 15, 10};
    struct tse_air_link l;
    tse_air_link_default(&l);
    l.fsc = l.fsd = 256;
    l.fwi = 7;
    double air = 0, total = 0;
    for (int i = 0; i < 8; i++) {
        struct tse_air_exchange x;
        assert_int_equal(tse_air_exchange(&l, c[i], r[i], card_ms[i] * 1000.0, &x), 0);
        air += x.air_us;
        total += x.total_us;
    }
    assert_true(air > 20000.0 && air < 35000.0); /* spec: 28.4 ms for its sizes */
    assert_ms(total - air, 37.0 - 8 * tse_air_fdt_min_us() / 1000.0, 1e-9);
}

static void test_ats_and_hsu(void **state)
{
    (void)state;
    struct tse_air_link l;
    tse_air_link_default(&l);
    /* the PN532's emulated ATS: FSC 64, FWI 9, SFGI 2 */
    static const uint8_t pn532[] = {0x05, 0x75, 0x33, 0x92, 0x03};
    assert_int_equal(tse_air_link_from_ats(&l, pn532, sizeof(pn532)), 0);
    assert_int_equal(l.fsc, 64);
    assert_int_equal(l.fwi, 9);
    assert_int_equal(l.sfgi, 2);
    /* the default profile's ATS 05 78 80 70 02: FSC 256, FWI 7 */
    static const uint8_t def[] = {0x05, 0x78, 0x80, 0x70, 0x02};
    assert_int_equal(tse_air_link_from_ats(&l, def, sizeof(def)), 0);
    assert_int_equal(l.fsc, 256);
    assert_int_equal(l.fwi, 7);
    assert_int_equal(l.sfgi, 0);
    /* TL only: defaults */
    static const uint8_t tl[] = {0x01};
    assert_int_equal(tse_air_link_from_ats(&l, tl, 1), 0);
    assert_int_equal(l.fsc, 32);
    assert_int_equal(l.fwi, 4);
    static const uint8_t bad1[] = {0x04, 0x78, 0x80}; /* TL wrong */
    assert_int_equal(tse_air_link_from_ats(&l, bad1, sizeof(bad1)), TSE_ERR_PARSE);
    static const uint8_t bad2[] = {0x03, 0x78, 0x80}; /* TB, TC announced, absent */
    assert_int_equal(tse_air_link_from_ats(&l, bad2, sizeof(bad2)), TSE_ERR_PARSE);
    /* SELECT 13 -> SW 2 over 115200 8N1: 41 bytes = 3.56 ms */
    assert_ms(tse_air_hsu_exchange_us(13, 2, 0), 3.559, 0.001);
    /* a 258-byte answer needs the extended frame: +3 bytes */
    double a = tse_air_hsu_exchange_us(5, 252, 115200), b = tse_air_hsu_exchange_us(5, 253, 115200);
    assert_ms(b - a, 4 * 10.0 / 115.2, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etu_and_constants), cmocka_unit_test(test_frames),
        cmocka_unit_test(test_activation),        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_transit_script),    cmocka_unit_test(test_ats_and_hsu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
