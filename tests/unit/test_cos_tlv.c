/* SPDX-License-Identifier: Apache-2.0 */
/* The BER-TLV module (src/cos/tlv.c). */
#include "tse_test.h"

#include "tse/tlv.h"

static void test_parse(void **state)
{
    (void)state;
    uint8_t b[300];
    int n = tse_hex_decode("00 FF 9F7F03AABBCC 6F0A8408A000000151000000 E381820000", b, sizeof(b));
    assert_true(n > 0);
    /* the last object claims 130 bytes that are not there */
    const uint8_t *p = b;
    size_t left = (size_t)n;
    struct tse_tlv t;
    assert_int_equal(tse_tlv_next(&p, &left, &t), 1); /* padding skipped */
    assert_int_equal(t.tag, 0x9F7F);
    assert_int_equal(t.len, 3);
    assert_int_equal(t.value[2], 0xCC);
    assert_false(t.constructed);
    assert_int_equal(tse_tlv_next(&p, &left, &t), 1);
    assert_int_equal(t.tag, 0x6F);
    assert_true(t.constructed);
    struct tse_tlv in;
    assert_int_equal(tse_tlv_find(t.value, t.len, 0x84, &in), 1);
    assert_int_equal(in.len, 8);
    assert_int_equal(tse_tlv_find(t.value, t.len, 0xA5, &in), 0);
    assert_int_equal(tse_tlv_next(&p, &left, &t), TSE_ERR_PARSE);
    /* lengths 81 and 82, a 3-byte tag, and malformed forms */
    n = tse_hex_decode("DF8101 8180", b, sizeof(b));
    assert_int_equal(n, 5);
    memset(b + 5, 0x11, 0x80);
    p = b;
    left = 5 + 0x80;
    assert_int_equal(tse_tlv_next(&p, &left, &t), 1);
    assert_int_equal(t.tag, 0xDF8101);
    assert_int_equal(t.len, 0x80);
    assert_int_equal(left, 0);
    assert_int_equal(tse_tlv_next(&p, &left, &t), 0);
    const char *bad[] = {"9F", "DF818101 00", "5A80", "5A84000000000", "5A820100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = tse_hex_decode(bad[i], b, sizeof(b));
        p = b;
        left = (size_t)n;
        assert_int_equal(tse_tlv_next(&p, &left, &t), TSE_ERR_PARSE);
    }
}

static void test_write(void **state)
{
    (void)state;
    uint8_t b[400];
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, b, sizeof(b));
    tse_tlv_begin(&w, 0x6F);
    tse_tlv_put(&w, 0x84, (const uint8_t *)"\xA0\x00\x00\x01\x51", 5);
    tse_tlv_begin(&w, 0xA5);
    tse_tlv_put_u8(&w, 0x9F65, 0xFF);
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    int n = tse_tlv_finish(&w);
    assert_int_equal(n, 2 + 7 + 2 + 4);
    char hex[64];
    tse_hex_encode(b, (size_t)n, hex);
    assert_string_equal(hex, "6F0D8405A000000151A5049F6501FF");
    /* a constructed object whose value grows past 127 and 255 bytes */
    static uint8_t v[300];
    tse_tlv_writer_init(&w, b, sizeof(b));
    tse_tlv_begin(&w, 0xE3);
    tse_tlv_put(&w, 0xC0, v, 200);
    tse_tlv_end(&w);
    n = tse_tlv_finish(&w);
    assert_int_equal(n, 1 + 2 + 2 + 200 + 1);
    assert_int_equal(b[1], 0x81);
    assert_int_equal(b[2], 2 + 200 + 1);
    const uint8_t *p = b;
    size_t left = (size_t)n;
    struct tse_tlv t;
    assert_int_equal(tse_tlv_next(&p, &left, &t), 1);
    assert_int_equal(t.len, 203);
    tse_tlv_writer_init(&w, b, sizeof(b));
    tse_tlv_begin(&w, 0xE3);
    tse_tlv_put(&w, 0xC0, v, 300);
    tse_tlv_end(&w);
    assert_int_equal(tse_tlv_finish(&w), 1 + 3 + 1 + 3 + 300);
    assert_int_equal(b[1], 0x82);
    /* errors are sticky */
    tse_tlv_writer_init(&w, b, 4);
    tse_tlv_put(&w, 0x5A, v, 10);
    tse_tlv_put(&w, 0x5A, v, 1);
    assert_int_equal(tse_tlv_finish(&w), TSE_ERR_BUFFER_TOO_SMALL);
    tse_tlv_writer_init(&w, b, sizeof(b));
    tse_tlv_end(&w);
    assert_int_equal(tse_tlv_finish(&w), TSE_ERR_INVALID_ARG);
    tse_tlv_writer_init(&w, b, sizeof(b));
    tse_tlv_begin(&w, 0x70);
    assert_int_equal(tse_tlv_finish(&w), TSE_ERR_INVALID_ARG); /* left open */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests_name("cos_tlv", tests, NULL, NULL);
}
