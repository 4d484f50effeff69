/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delegated management: a DM security domain's INSTALL, LOAD and DELETE need a token signed
 * by the card issuer (RSA: PKCS#1 v1.5 SHA-1 up to 1024 bits, PSS SHA-256 above), checked with
 * the profile's token key; with a receipt key the card answers each delegated change with a
 * receipt over the confirmation counter and the operation data. No public vectors with known
 * keys exist, so the tokens here are signed with test keys (tests/data/dm-token-*.pem) and the
 * receipts recomputed independently from the GP layout.
 */
#include "crypto/crypto_internal.h"
#include "tse_test.h"

static const uint8_t KEY[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};
static const uint8_t RKEY[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#define DMSD "F074736544534401"
#define APP  "F07473654449410177"

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[600];
    const char *dir = getenv("TSE_TEST_DATA");
    snprintf(path, sizeof(path), "%s/data/%s", dir ? dir : "tests", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    static uint8_t buf[8192];
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[*len] = 0;
    return buf;
}

/* Plain command through the session; returns SW, response data in r/rl. */
static uint16_t send(struct tse_card *c, struct tse_scp_session *h, const uint8_t *cmd, size_t n,
                     uint8_t *r, size_t *rl)
{
    uint8_t wire[600], raw[600];
    size_t wl, rawl;
    assert_int_equal(tse_scp_host_wrap(h, cmd, n, wire, sizeof(wire), &wl), 0);
    assert_int_equal(tse_card_transmit(c, TSE_IF_CONTACT, wire, wl, raw, sizeof(raw), &rawl), 0);
    assert_int_equal(tse_scp_host_unwrap(h, raw, rawl, r, 600, rl), 0);
    *rl -= 2;
    return (uint16_t)(r[*rl] << 8 | r[*rl + 1]);
}

/* Build "80 INS P1 P2 Lc data [token] 00". For INSTALL the token is an LV at the end; for
 * DELETE a 9E object. The token signs P1 P2 Lc' data (without the token). */
static size_t with_token(uint8_t ins, uint8_t p1, uint8_t p2, const char *data_hex,
                         const uint8_t *pem, size_t pem_len, bool spoil, uint8_t *out)
{
    uint8_t data[300], msg[300], sig[512];
    int dl = tse_hex_decode(data_hex, data, sizeof(data));
    assert_true(dl > 0);
    msg[0] = p1;
    msg[1] = p2;
    msg[2] = (uint8_t)dl;
    memcpy(msg + 3, data, (size_t)dl);
    size_t sl = 0;
    if (pem)
        assert_int_equal(tse_rsa_sign(pem, pem_len, msg, 3 + (size_t)dl, sig, sizeof(sig), &sl), 0);
    if (spoil)
        sig[5] ^= 0x01;
    size_t n = 0;
    out[n++] = 0x80;
    out[n++] = ins;
    out[n++] = p1;
    out[n++] = p2;
    size_t lc_at = n++;
    memcpy(out + n, data, (size_t)dl);
    n += (size_t)dl;
    if (ins == 0xE6) {
        if (sl > 127)
            out[n++] = 0x81;
        out[n++] = (uint8_t)sl;
    } else if (sl) {
        out[n++] = 0x9E;
        if (sl > 127)
            out[n++] = 0x81;
        out[n++] = (uint8_t)sl;
    }
    memcpy(out + n, sig, sl);
    n += sl;
    out[lc_at] = (uint8_t)(n - 5);
    out[n++] = 0x00;
    return n;
}

/* Check a receipt: L ‖ 10 receipt ‖ 02 counter ‖ 00, receipt = AES-CMAC(RKEY, 02 counter 00 ‖
 * operation data). */
static void check_receipt(const uint8_t *r, size_t rl, unsigned counter, const char *op_hex)
{
    assert_int_equal(rl, 1 + 1 + 16 + 3 + 1);
    assert_int_equal(r[0], rl - 1);
    assert_int_equal(r[1], 16);
    uint8_t conf[4] = {2, (uint8_t)(counter >> 8), (uint8_t)counter, 0};
    assert_memory_equal(r + 18, conf, 4);
    uint8_t op[100], mac[16];
    int ol = tse_hex_decode(op_hex, op, sizeof(op));
    assert_int_equal(tse_aes_cmac2(RKEY, 16, conf, 4, op, (size_t)ol, mac), 0);
    assert_memory_equal(r + 2, mac, 16);
}

static void run(int bits)
{
    char name[64], prof[1500];
    size_t mlen, pem_len;
    snprintf(name, sizeof(name), "dm-token-%d.modulus", bits);
    const uint8_t *mod = slurp(name, &mlen);
    char modulus[1100];
    snprintf(modulus, sizeof(modulus), "%.*s",
             (int)(mlen && mod[mlen - 1] == '\n' ? mlen - 1 : mlen), mod);
    snprintf(prof, sizeof(prof),
             "[isd]\naid = A000000151000000\ntoken_key = %s\n"
             "receipt_key = 000102030405060708090A0B0C0D0E0F\n",
             modulus);
    snprintf(name, sizeof(name), "dm-token-%d.pem", bits);
    uint8_t pem[8192];
    const uint8_t *p = slurp(name, &pem_len);
    memcpy(pem, p, pem_len);

    char path[512];
    struct tse_card *c = tt_card(prof, path, sizeof(path));
    struct tse_scp_session h;
    uint16_t sw;
    assert_true(tt_auth(c, KEY, 0, &h));
    /* a DM security domain (privileges A0: SD + Delegated Management) */
    assert_int_equal(tt_wrapped(c, &h,
                                "80E60C0026 07A0000001515350 08A000000151535041 08" DMSD
                                " 03A00000 06C90481020370 00 00",
                                &sw),
                     0);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "00A4040008" DMSD "00"), 0x9000);
    assert_true(tt_auth(c, KEY, 0, &h));

    const char *install = "07F0747365444941 08F074736544494101 09" APP " 0100 02C900";
    uint8_t cmd[700], r[600];
    size_t n, rl;
    /* no token, a spoiled one, one for other data: 6982, nothing installed */
    n = with_token(0xE6, 0x0C, 0x00, install, NULL, 0, false, cmd);
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x6982);
    assert_true(tt_auth(c, KEY, 0, &h));
    n = with_token(0xE6, 0x0C, 0x00, install, pem, pem_len, true, cmd);
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x6982);
    assert_true(tt_auth(c, KEY, 0, &h));
    n = with_token(0xE6, 0x04, 0x00, install, pem, pem_len, false, cmd);
    cmd[2] = 0x0C; /* signed for P1 04, sent as 0C */
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x6982);
    assert_true(tt_auth(c, KEY, 0, &h));
    assert_int_equal(send(c, &h, (const uint8_t *)"\x80\xF2\x40\x02\x02\x4F\x00\x00", 8, r, &rl),
                     0x9000); /* only the DM SD itself */
    assert_int_equal(rl, 2 + 0x26);

    /* a good token: installed, with a receipt (counter 1, LV ELF ‖ LV application) */
    n = with_token(0xE6, 0x0C, 0x00, install, pem, pem_len, false, cmd);
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x9000);
    check_receipt(r, rl, 1, "07F0747365444941 09" APP);
    /* DELETE with a 9E token: receipt over LV deleted AID, counter 2 */
    n = with_token(0xE4, 0x00, 0x00, "4F09" APP, pem, pem_len, false, cmd);
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x9000);
    check_receipt(r, rl, 2, "09" APP);
    /* the same token again is for an object that is gone */
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x6A88);
    /* GET DATA C2: the confirmation counter */
    assert_int_equal(send(c, &h, (const uint8_t *)"\x80\xCA\x00\xC2\x00", 5, r, &rl), 0x9000);
    assert_int_equal(rl, 4);
    assert_memory_equal(r, "\xC2\x02\x00\x02", 4);
    /* personalization needs no token */
    n = with_token(0xE6, 0x0C, 0x00, install, pem, pem_len, false, cmd);
    assert_int_equal(send(c, &h, cmd, n, r, &rl), 0x9000);
    assert_int_equal(tt_wrapped(c, &h, "80E620000F 00 00 09" APP " 00 00 00 00", &sw), 0);
    assert_int_equal(sw, 0x9000);
    tse_card_free(c);
    unlink(path);
    print_message("delegated management with a %d-bit token key: tokens checked, receipts "
                  "match\n",
                  bits);
}

static void test_dm_1024(void **state)
{
    (void)state;
    run(1024);
}

/* Above 1024 bits tokens are RSASSA-PSS with SHA-256. Such a token (256 bytes) does not fit
 * a short APDU beside the command data, and the secure channel takes short APDUs only, so it
 * is checked here at the library level. */
static void test_pss_2048(void **state)
{
    (void)state;
    size_t pem_len, mlen;
    uint8_t pem[8192], n[512], e[8], sig[512];
    const uint8_t *pp = slurp("dm-token-2048.pem", &pem_len);
    memcpy(pem, pp, pem_len);
    size_t nl, el, sl;
    assert_int_equal(tse_rsa_public(pem, pem_len, n, sizeof(n), &nl, e, sizeof(e), &el), 0);
    assert_int_equal(nl, 256);
    char *hex = (char *)slurp("dm-token-2048.modulus", &mlen);
    hex[strcspn(hex, "\r\n")] = 0; /* the modulus file the profiles use matches the key */
    uint8_t n2[512];
    assert_int_equal(tse_hex_decode(hex, n2, sizeof(n2)), 256);
    assert_memory_equal(n, n2, 256);
    static const uint8_t msg[] = "\x00\x80\x0B\x4F\x09\xF0\x74\x73\x65\x44\x49\x41\x01\x77";
    assert_int_equal(tse_rsa_sign(pem, pem_len, msg, sizeof(msg) - 1, sig, sizeof(sig), &sl), 0);
    assert_int_equal(sl, 256);
    assert_int_equal(tse_rsa_verify(n, nl, e, el, msg, sizeof(msg) - 1, sig, sl), 0);
    sig[100] ^= 0x40;
    assert_int_equal(tse_rsa_verify(n, nl, e, el, msg, sizeof(msg) - 1, sig, sl), TSE_ERR_DENIED);
    sig[100] ^= 0x40;
    assert_int_equal(tse_rsa_verify(n, nl, e, el, msg, sizeof(msg) - 2, sig, sl), TSE_ERR_DENIED);
}

/* Without a token key on the card, a DM SD can change nothing. */
static void test_dm_no_key(void **state)
{
    (void)state;
    char path[512];
    struct tse_card *c = tt_card(NULL, path, sizeof(path));
    struct tse_scp_session h;
    uint16_t sw;
    assert_true(tt_auth(c, KEY, 0, &h));
    assert_int_equal(tt_wrapped(c, &h,
                                "80E60C0026 07A0000001515350 08A000000151535041 08" DMSD
                                " 03A00000 06C90481020370 00 00",
                                &sw),
                     0);
    assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "00A4040008" DMSD "00"), 0x9000);
    assert_true(tt_auth(c, KEY, 0, &h));
    assert_int_equal(tt_wrapped(c, &h,
                                "80E60C0024 07F0747365444941 08F074736544494101 09" APP
                                " 0100 02C900 03 010203 00",
                                &sw),
                     0);
    assert_int_equal(sw, 0x6982);
    tse_card_free(c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dm_1024),
        cmocka_unit_test(test_pss_2048),
        cmocka_unit_test(test_dm_no_key),
    };
    return cmocka_run_group_tests_name("gp_dm", tests, NULL, NULL);
}
