/* SPDX-License-Identifier: Apache-2.0 */
/* The C-APDU codec, CLA decoding and hex helpers (src/cos/apdu.c). */
#include "tse_test.h"

static struct tse_apdu parse_ok(const char *hex)
{
    uint8_t b[70000];
    int n = tse_hex_decode(hex, b, sizeof(b));
    assert_true(n >= 0);
    static uint8_t keep[70000];
    memcpy(keep, b, (size_t)n);
    struct tse_apdu a;
    assert_int_equal(tse_apdu_parse(keep, (size_t)n, &a), 0);
    return a;
}

static uint16_t parse_sw(const char *hex)
{
    uint8_t b[300];
    int n = tse_hex_decode(hex, b, sizeof(b));
    assert_true(n >= 0);
    struct tse_apdu a;
    return tse_apdu_parse(b, (size_t)n, &a);
}

static void test_cases_short(void **state)
{
    (void)state;
    struct tse_apdu a = parse_ok("00A40400");
    assert_int_equal(a.iso_case, 1);
    assert_false(a.has_le);
    a = parse_ok("00B0000000");
    assert_int_equal(a.iso_case, 2);
    assert_int_equal(a.ne, 256);
    a = parse_ok("00B0000010");
    assert_int_equal(a.ne, 16);
    a = parse_ok("00A4040003A00001");
    assert_int_equal(a.iso_case, 3);
    assert_int_equal(a.lc, 3);
    assert_int_equal(a.data[2], 0x01);
    a = parse_ok("00A4040003A0000100");
    assert_int_equal(a.iso_case, 4);
    assert_int_equal(a.ne, 256);
    assert_false(a.extended);
}

static void test_cases_extended(void **state)
{
    (void)state;
    struct tse_apdu a = parse_ok("00B00000000000");
    assert_int_equal(a.iso_case, 2);
    assert_true(a.extended);
    assert_int_equal(a.ne, 65536);
    a = parse_ok("00B00000000123");
    assert_int_equal(a.ne, 0x123);
    a = parse_ok("80100000000003AABBCC");
    assert_int_equal(a.iso_case, 3);
    assert_int_equal(a.lc, 3);
    a = parse_ok("80100000000003AABBCC0200");
    assert_int_equal(a.iso_case, 4);
    assert_int_equal(a.ne, 0x200);
}

static void test_malformed(void **state)
{
    (void)state;
    assert_int_equal(parse_sw(""), SW_WRONG_LENGTH);
    assert_int_equal(parse_sw("00A404"), SW_WRONG_LENGTH);
    assert_int_equal(parse_sw("00A4040003A000"), SW_WRONG_LENGTH);     /* Lc too long */
    assert_int_equal(parse_sw("00A4040002A0000000"), SW_WRONG_LENGTH); /* trailing bytes */
    assert_int_equal(parse_sw("00A404000000"), SW_WRONG_LENGTH);       /* 6 bytes, ext */
    assert_int_equal(parse_sw("00A40400000000AA"), SW_WRONG_LENGTH);   /* ext Lc = 0 */
    assert_int_equal(parse_sw("00A40400000002AA"), SW_WRONG_LENGTH);   /* ext short data */
    assert_int_equal(parse_sw("00A40400000001AA00"), SW_WRONG_LENGTH); /* ext Le 1 byte */
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    uint8_t data[300], out[400];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    const size_t lcs[] = {0, 1, 255, 256, 300};
    const size_t nes[] = {0, 1, 256, 257, 65536};
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 5; j++) {
            struct tse_apdu a = {.cla = 0x80,
                                 .ins = 0x10,
                                 .p1 = 1,
                                 .p2 = 2,
                                 .data = lcs[i] ? data : NULL,
                                 .lc = lcs[i],
                                 .ne = nes[j]};
            int n = tse_apdu_encode(&a, out, sizeof(out));
            assert_true(n > 0);
            struct tse_apdu b;
            assert_int_equal(tse_apdu_parse(out, (size_t)n, &b), 0);
            assert_int_equal(b.lc, a.lc);
            assert_int_equal(b.ne, a.ne);
            assert_int_equal(b.p2, 2);
            if (a.lc)
                assert_memory_equal(b.data, data, a.lc);
        }
    struct tse_apdu big = {.lc = 70000};
    assert_int_equal(tse_apdu_encode(&big, out, sizeof(out)), TSE_ERR_INVALID_ARG);
    struct tse_apdu c = {.cla = 0, .ins = 0xA4, .lc = 3, .data = data};
    assert_int_equal(tse_apdu_encode(&c, out, 5), TSE_ERR_BUFFER_TOO_SMALL);
}

static void test_cla(void **state)
{
    (void)state;
    struct tse_cla_info ci = tse_cla_decode(0x00);
    assert_true(ci.valid);
    assert_int_equal(ci.channel, 0);
    ci = tse_cla_decode(0x03);
    assert_int_equal(ci.channel, 3);
    ci = tse_cla_decode(0x84);
    assert_true(ci.proprietary);
    assert_true(ci.sm);
    ci = tse_cla_decode(0x10);
    assert_true(ci.chaining);
    ci = tse_cla_decode(0x40);
    assert_int_equal(ci.channel, 4);
    ci = tse_cla_decode(0x4F);
    assert_int_equal(ci.channel, 19);
    ci = tse_cla_decode(0x6F);
    assert_true(ci.sm);
    assert_int_equal(ci.channel, 19);
    ci = tse_cla_decode(0xC1);
    assert_true(ci.proprietary);
    assert_int_equal(ci.channel, 5);
    assert_false(tse_cla_decode(0xFF).valid);
    assert_false(tse_cla_decode(0x20).valid);
    assert_false(tse_cla_decode(0xA0).valid);
    assert_int_equal(tse_cla_with_channel(0x00, 2), 0x02);
    assert_int_equal(tse_cla_with_channel(0x80, 7), 0xC3);
    assert_int_equal(tse_cla_with_channel(0x84, 7), 0xE3);
    assert_int_equal(tse_cla_with_channel(0xC3, 1), 0x81);
    assert_int_equal(tse_cla_with_channel(0x00, 20), -1);
    assert_int_equal(tse_cla_with_channel(0xFF, 1), -1);
    for (int ch = 0; ch < 20; ch++)
        assert_int_equal(tse_cla_decode((uint8_t)tse_cla_with_channel(0x00, (uint8_t)ch)).channel,
                         ch);
}

static void test_hex_and_aid(void **state)
{
    (void)state;
    uint8_t b[4];
    assert_int_equal(tse_hex_digit('7'), 7);
    assert_int_equal(tse_hex_digit('c'), 12);
    assert_int_equal(tse_hex_digit('F'), 15);
    assert_int_equal(tse_hex_digit('g'), -1);
    assert_int_equal(tse_hex_digit(0x80 + '1'), -1);
    assert_int_equal(tse_hex_decode("0a B1\tff", b, sizeof(b)), 3);
    assert_int_equal(b[1], 0xB1);
    assert_int_equal(tse_hex_decode("ABC", b, sizeof(b)), TSE_ERR_PARSE);
    assert_int_equal(tse_hex_decode("zz", b, sizeof(b)), TSE_ERR_PARSE);
    assert_int_equal(tse_hex_decode("0102030405", b, sizeof(b)), TSE_ERR_BUFFER_TOO_SMALL);
    char s[9];
    tse_hex_encode((const uint8_t *)"\x01\xab\xff", 3, s);
    assert_string_equal(s, "01ABFF");
    struct tse_aid a, c;
    uint8_t x[17] = {0xA0, 0, 0, 1, 0x51, 0, 0, 0};
    assert_int_equal(tse_aid_set(&a, x, 8), 0);
    assert_int_equal(tse_aid_set(&c, x, 17), TSE_ERR_INVALID_ARG);
    assert_true(tse_aid_has_prefix(&a, x, 5));
    assert_false(tse_aid_has_prefix(&a, x, 9));
    tse_aid_set(&c, x, 8);
    assert_true(tse_aid_equal(&a, &c));
    c.b[7] = 1;
    assert_false(tse_aid_equal(&a, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_short), cmocka_unit_test(test_cases_extended),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_cla),         cmocka_unit_test(test_hex_and_aid),
    };
    return cmocka_run_group_tests_name("cos_apdu", tests, NULL, NULL);
}
