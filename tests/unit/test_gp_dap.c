/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DAP verification and the load file data block hash: a load into a security domain with DAP
 * Verification must carry an E2 block for that domain whose RSA signature (PKCS#1 v1.5 with
 * SHA-1, as GlobalPlatformPro's DAP signing) over the LFDB hash verifies with the card's DAP
 * key; the hash INSTALL [for load] announces must be the hash of what LOAD brings. Test keys:
 * tests/data/dm-token-1024.pem (no public DAP vectors with known keys exist).
 */
#include "crypto/crypto_internal.h"
#include "tse/cap.h"
#include "tse_test.h"

static const uint8_t KEY[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F};
static const uint8_t SSD[8] = {0xF0, 0x74, 0x73, 0x65, 0x44, 0x41, 0x50, 0x01};

static uint8_t pem[8192];
static size_t pem_len;
static char modulus[1100];

static void read_keys(void)
{
    char path[600];
    const char *dir = getenv("TSE_TEST_DATA");
    snprintf(path, sizeof(path), "%s/data/dm-token-1024.pem", dir ? dir : "tests");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    pem_len = fread(pem, 1, sizeof(pem) - 1, f);
    fclose(f);
    pem[pem_len] = 0;
    uint8_t n[256], e[8];
    size_t nl, el;
    assert_int_equal(tse_rsa_public(pem, pem_len, n, sizeof(n), &nl, e, sizeof(e), &el), 0);
    tse_hex_encode(n, nl, modulus);
}

/* Send a plain command through the session; returns the SW. */
static uint16_t send(struct tse_card *c, struct tse_scp_session *h, const uint8_t *cmd, size_t n)
{
    uint8_t wire[600], raw[600], r[600];
    size_t wl, rawl, rl;
    assert_int_equal(tse_scp_host_wrap(h, cmd, n, wire, sizeof(wire), &wl), 0);
    assert_int_equal(tse_card_transmit(c, TSE_IF_CONTACT, wire, wl, raw, sizeof(raw), &rawl), 0);
    assert_int_equal(tse_scp_host_unwrap(h, raw, rawl, r, sizeof(r), &rl), 0);
    return (uint16_t)(r[rl - 2] << 8 | r[rl - 1]);
}

enum variant { GOOD, NO_DAP, BAD_SIGNATURE, WRONG_HASH, NO_KEY };

/* A card with an SSD holding DAP Verification; load tse.diag into it. Returns the SW of the
 * last LOAD block (or of INSTALL [for load] when that fails). */
static uint16_t load_into_dap_sd(enum variant v)
{
    char prof[1400], path[512];
    snprintf(prof, sizeof(prof),
             "[card]\nrom_packages = none\n[isd]\naid = A000000151000000\n%s%s\n",
             v == NO_KEY ? "" : "dap_key = ", v == NO_KEY ? "" : modulus);
    struct tse_card *c = tt_card(prof, path, sizeof(path));
    struct tse_scp_session h;
    uint16_t sw;
    assert_true(tt_auth(c, KEY, 0, &h));
    /* SSD with privileges C0 (Security Domain + DAP Verification) and Authorized Management */
    assert_int_equal(tt_wrapped(c, &h,
                                "80E60C0026 07A0000001515350 08A000000151535041 08F074736544415001"
                                " 03C04000 06C90481020370 00 00",
                                &sw),
                     0);
    assert_int_equal(sw, 0x9000);
    assert_int_equal(tt_sw(c, TSE_IF_CONTACT, "00A4040008F07473654441500100"), 0x9000);
    assert_true(tt_auth(c, KEY, 0, &h));

    /* the load file, its SHA-1 and the DAP signature over that hash */
    static uint8_t lfdb[8192], stream[9000];
    int ll = tse_cap_build_lfdb(tse_cap_find_package("tse.diag"), TSE_CAP_NO_DESCRIPTOR, lfdb,
                                sizeof(lfdb));
    assert_true(ll > 0);
    struct tse_hash hs;
    uint8_t hash[32], sig[256];
    assert_int_equal(tse_hash_init(&hs, 20), 0);
    assert_int_equal(tse_hash_update(&hs, lfdb, (size_t)ll), 0);
    assert_int_equal(tse_hash_final(&hs, hash), 20);
    size_t sl;
    assert_int_equal(tse_rsa_sign(pem, pem_len, hash, 20, sig, sizeof(sig), &sl), 0);
    assert_int_equal(sl, 128);
    if (v == BAD_SIGNATURE)
        sig[7] ^= 0x10;
    size_t n = 0;
    if (v != NO_DAP) { /* E2 { 4F SD ; C3 signature } */
        stream[n++] = 0xE2;
        stream[n++] = 0x81;
        stream[n++] = (uint8_t)(2 + sizeof(SSD) + 3 + sl);
        stream[n++] = 0x4F;
        stream[n++] = sizeof(SSD);
        memcpy(stream + n, SSD, sizeof(SSD));
        n += sizeof(SSD);
        stream[n++] = 0xC3;
        stream[n++] = 0x81;
        stream[n++] = (uint8_t)sl;
        memcpy(stream + n, sig, sl);
        n += sl;
    }
    int cl = tse_cap_load_data(lfdb, (size_t)ll, stream + n, sizeof(stream) - n);
    assert_true(cl > 0);
    n += (size_t)cl;

    /* INSTALL [for load] with the hash (a wrong one for WRONG_HASH) */
    uint8_t cmd[300];
    size_t k = 0;
    const uint8_t head[] = {0x80, 0xE6, 0x02, 0x00, 0x00, 0x07, 0xF0, 0x74,
                            0x73, 0x65, 0x44, 0x49, 0x41, 0x00, 0x14};
    memcpy(cmd, head, sizeof(head));
    k = sizeof(head);
    memcpy(cmd + k, hash, 20);
    if (v == WRONG_HASH)
        cmd[k] ^= 0x01;
    k += 20;
    cmd[k++] = 0x00; /* load parameters */
    cmd[k++] = 0x00; /* token */
    cmd[4] = (uint8_t)(k - 5);
    cmd[k++] = 0x00;
    sw = send(c, &h, cmd, k);
    if (sw == 0x9000) {
        /* LOAD in blocks of 100 bytes: the signature and the LFDB cross block boundaries */
        uint8_t p2 = 0;
        for (size_t off = 0; off < n; off += 100, p2++) {
            size_t bl = n - off < 100 ? n - off : 100;
            bool last = off + bl == n;
            uint8_t lc[106] = {0x80, 0xE8, last ? 0x80 : 0x00, p2, (uint8_t)bl};
            memcpy(lc + 5, stream + off, bl);
            lc[5 + bl] = 0x00;
            sw = send(c, &h, lc, 6 + bl);
            if (sw != 0x9000 || last)
                break;
        }
    }
    /* the registry shows the load file only after a good load */
    uint16_t gs = send(
        c, &h, (const uint8_t *)"\x80\xF2\x20\x02\x09\x4F\x07\xF0\x74\x73\x65\x44\x49\x41\x00", 15);
    assert_int_equal(gs, sw == 0x9000 ? 0x9000 : 0x6A88);
    tse_card_free(c);
    unlink(path);
    return sw;
}

static void test_dap(void **state)
{
    (void)state;
    read_keys();
    assert_int_equal(load_into_dap_sd(GOOD), 0x9000);
    assert_int_equal(load_into_dap_sd(NO_DAP), 0x6982);
    assert_int_equal(load_into_dap_sd(BAD_SIGNATURE), 0x6982);
    assert_int_equal(load_into_dap_sd(WRONG_HASH), 0x6A80);
    assert_int_equal(load_into_dap_sd(NO_KEY), 0x6982);
    print_message("DAP: signed load accepted; missing or bad DAP, wrong hash, no key refused\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dap),
    };
    return cmocka_run_group_tests_name("gp_dap", tests, NULL, NULL);
}
