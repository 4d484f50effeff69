/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys of the secure channels: KCVs, session keys, the SCP02 pseudo-random challenge, PUT KEY
 * key blocks, key diversification (EMV CPS, VISA2, KDF3) and its diagnostics. Expected values
 * are the published ones restated in ../shared/spec/gp-scp.md §1, §2.3, §2.5, §4.2 and §8.
 */
#include "tse_test.h"

#include "tse/scp.h"

#include <pthread.h>

static void hex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(tse_hex_decode(h, out, n), (int)n);
}

static void eq(const uint8_t *got, const char *want)
{
    uint8_t w[64];
    int n = tse_hex_decode(want, w, sizeof(w));
    assert_true(n > 0);
    char g[129];
    tse_hex_encode(got, (size_t)n, g);
    assert_string_equal(g, want);
}

static struct tse_scp_keys keys(uint8_t scp, uint8_t i, const char *k)
{
    struct tse_scp_keys ks = {.scp = scp, .i = i, .kvn = 1};
    int n = tse_hex_decode(k, ks.enc, sizeof(ks.enc));
    assert_true(n > 0);
    ks.key_len = (uint8_t)n;
    memcpy(ks.mac, ks.enc, 32);
    memcpy(ks.dek, ks.enc, 32);
    return ks;
}

#define K40 "404142434445464748494A4B4C4D4E4F"

static void test_kcv(void **state)
{
    (void)state;
    uint8_t k[16], kcv[3];
    hex(K40, k, 16);
    assert_int_equal(tse_scp_kcv(k, 16, false, kcv), 0);
    eq(kcv, "8BAF47");
    assert_int_equal(tse_scp_kcv(k, 16, true, kcv), 0);
    eq(kcv, "504A77");
    hex("000102030405060708090A0B0C0D0E0F", k, 16);
    tse_scp_kcv(k, 16, true, kcv);
    eq(kcv, "C35280");
    assert_int_equal(tse_scp_kcv(k, 8, false, kcv), TSE_ERR_INVALID_ARG);
}

static void test_scp02_session_keys_and_pseudo_challenge(void **state)
{
    (void)state;
    struct tse_scp_keys k = keys(2, 0x55, K40);
    struct tse_scp_session s;
    uint8_t kdd[10] = {0}, hc[8] = {0}, rsp[64];
    size_t n;
    struct tse_aid aid;
    tse_aid_set(&aid, (const uint8_t *)"\xA0\x00\x00\x01\x51\x00\x00\x00", 8);
    assert_int_equal(
        tse_scp_card_initialize_update(&s, &k, kdd, 0x65, hc, 8, NULL, &aid, rsp, sizeof(rsp), &n),
        0);
    eq(s.s_enc, "85E72AAF47874218A202BF5EF891DD21");
    /* SSC 0000: the pseudo-random card challenge is RetailMAC(C-MAC key, AID)[0..5] */
    assert_int_equal(
        tse_scp_card_initialize_update(&s, &k, kdd, 0, hc, 8, NULL, &aid, rsp, sizeof(rsp), &n), 0);
    eq(s.s_mac, "D1C28C601652A4770D67AD82D2D2E1C4");
    eq(s.s_dek, "E11987EE331B417A5D67D760692F89D4");
    eq(s.card_challenge, "8BA2FFCEA96C");
    eq(rsp + 14, "8BA2FFCEA96C");
    /* without the pseudo-random option the caller must supply random bytes */
    k.i = 0x15;
    assert_int_equal(
        tse_scp_card_initialize_update(&s, &k, kdd, 0, hc, 8, NULL, &aid, rsp, sizeof(rsp), &n),
        TSE_ERR_INVALID_ARG);
}

/* Open a host and a card session against each other. */
static void loopback(const struct tse_scp_keys *k, uint32_t seq, uint8_t level,
                     struct tse_scp_session *host, struct tse_scp_session *card)
{
    uint8_t hc[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, cc[16] = {7, 7, 7},
            kdd[10] = {0}, cmd[64], rsp[64];
    size_t cl = tse_scp_challenge_len(k), n, m;
    struct tse_aid aid;
    tse_aid_set(&aid, (const uint8_t *)"\xA0\x00\x00\x01\x51\x00\x00\x00", 8);
    assert_int_equal(tse_scp_host_begin(host, k, 0, hc, cl, cmd, sizeof(cmd), &n), 0);
    assert_int_equal(
        tse_scp_card_initialize_update(card, k, kdd, seq, hc, cl, cc, &aid, rsp, sizeof(rsp), &m),
        0);
    assert_int_equal(tse_scp_host_iu_response(host, rsp, m), 0);
    assert_int_equal(tse_scp_host_external_authenticate(host, level, cmd, sizeof(cmd), &n), 0);
    struct tse_apdu a;
    assert_int_equal(tse_apdu_parse(cmd, n, &a), 0);
    assert_int_equal(tse_scp_card_external_authenticate(card, &a), SW_NO_ERROR);
}

static void test_put_key_blocks(void **state)
{
    (void)state;
    uint8_t nk[16], cmd[200];
    hex("606162636465666768696A6B6C6D6E6F", nk, 16);
    const uint8_t *three[3] = {nk, nk, nk};
    size_t n;
    struct tse_scp_session host, card;
    /* SCP03: AES-CBC with the static DEK, "88 11 10" form */
    struct tse_scp_keys k3 = keys(3, 0x70, K40);
    loopback(&k3, 1, TSE_SL_CMAC, &host, &card);
    assert_int_equal(
        tse_scp_host_put_key(&host, 0, 0x31, TSE_KEY_TYPE_AES, three, 16, cmd, sizeof(cmd), &n), 0);
    eq(cmd, "80D800814631881110C814E3458598910A3366E9C7BAEEFA9B03D7D0E4");
    uint8_t key[32];
    size_t kl;
    assert_int_equal(tse_scp_card_decrypt_key(&card, TSE_KEY_TYPE_AES, cmd + 8, 0x11, key, &kl), 0);
    assert_int_equal(kl, 16);
    assert_memory_equal(key, nk, 16);
    /* the other form in the wild: L = 10, pure ciphertext */
    assert_int_equal(tse_scp_card_decrypt_key(&card, TSE_KEY_TYPE_AES, cmd + 9, 0x10, key, &kl), 0);
    assert_memory_equal(key, nk, 16);
    assert_int_equal(tse_scp_card_decrypt_key(&card, TSE_KEY_TYPE_AES, cmd + 9, 0x0F, key, &kl),
                     TSE_ERR_PARSE);
    /* SCP02, SSC 0000: 3DES-ECB with the session DEK */
    struct tse_scp_keys k2 = keys(2, 0x55, K40);
    loopback(&k2, 0, TSE_SL_CMAC, &host, &card);
    eq(host.s_dek, "E11987EE331B417A5D67D760692F89D4");
    assert_int_equal(
        tse_scp_host_put_key(&host, 0, 0x01, TSE_KEY_TYPE_DES, three, 16, cmd, sizeof(cmd), &n), 0);
    eq(cmd, "80D800814301801010C429F8AA0A8EB6B1AF437D8B0F2DEC039DCB14");
    assert_int_equal(n, 5 + 0x43 + 1);
}

static void test_diversification(void **state)
{
    (void)state;
    uint8_t kdd[10], kcv[3];
    hex("00010203040506070809", kdd, 10);
    struct tse_scp_keys k = keys(2, 0x55, K40);
    assert_int_equal(tse_scp_diversify(TSE_DIV_EMV, kdd, &k), 0);
    eq(k.enc, "0EF59FCBF8019B62E62AF6EA20B8BF25");
    tse_scp_kcv(k.mac, 16, false, kcv);
    eq(kcv, "6F4CA6");
    tse_scp_kcv(k.dek, 16, false, kcv);
    eq(kcv, "BB8179");
    k = keys(2, 0x55, K40);
    assert_int_equal(tse_scp_diversify(TSE_DIV_VISA2, kdd, &k), 0);
    eq(k.enc, "8510FC973208218CA86888BCEC203635");
    tse_scp_kcv(k.mac, 16, false, kcv);
    eq(kcv, "58DA38");
    tse_scp_kcv(k.dek, 16, false, kcv);
    eq(kcv, "3C328E");
    k = keys(3, 0x70, K40);
    assert_int_equal(tse_scp_diversify(TSE_DIV_KDF3, kdd, &k), 0);
    eq(k.enc, "808BC985A1069AD2A9AC94E0FE7B8843");
    tse_scp_kcv(k.mac, 16, true, kcv);
    eq(kcv, "D1BD77");
    tse_scp_kcv(k.dek, 16, true, kcv);
    eq(kcv, "3FDE8C");
    k = keys(3, 0x70, "404142434445464748494A4B4C4D4E4F5051525354555657");
    tse_scp_diversify(TSE_DIV_KDF3, kdd, &k);
    tse_scp_kcv(k.enc, 24, true, kcv);
    eq(kcv, "1DE8EA");
    k = keys(3, 0x70, "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F");
    tse_scp_diversify(TSE_DIV_KDF3, kdd, &k);
    tse_scp_kcv(k.enc, 32, true, kcv);
    eq(kcv, "2972D2");
    tse_scp_kcv(k.mac, 32, true, kcv);
    eq(kcv, "036F94");
    tse_scp_kcv(k.dek, 32, true, kcv);
    eq(kcv, "5D57B8");
    k = keys(3, 0x70, "8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD");
    hex("D9B1DE5D0362DEDCE4FB", kdd, 10);
    tse_scp_diversify(TSE_DIV_KDF3, kdd, &k);
    eq(k.enc, "9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781");
    assert_int_equal(tse_scp_div_from_name("emv"), TSE_DIV_EMV);
    assert_int_equal(tse_scp_div_from_name("nope"), -1);
    assert_string_equal(tse_scp_div_name(TSE_DIV_KDF3), "kdf3");
}

/* A card with EMV-diversified keys: the master key alone fails, and the failure says which
 * diversification would have matched; with it the session opens. */
static void test_diversification_diagnostics(void **state)
{
    (void)state;
    uint8_t kdd[10], hc[8] = {9, 9, 9, 9, 9, 9, 9, 9}, cc[6] = {1, 2, 3, 4, 5, 6}, cmd[64], rsp[64];
    hex("00010203040506070809", kdd, 10);
    struct tse_scp_keys master = keys(2, 0x55, K40), card_keys = master;
    tse_scp_diversify(TSE_DIV_EMV, kdd, &card_keys);
    struct tse_scp_session card, host;
    size_t n, m;
    assert_int_equal(tse_scp_card_initialize_update(&card, &card_keys, kdd, 5, hc, 8, cc, NULL, rsp,
                                                    sizeof(rsp), &m),
                     0);
    tse_scp_host_begin(&host, &master, 0, hc, 8, cmd, sizeof(cmd), &n);
    assert_int_equal(tse_scp_host_iu_response(&host, rsp, m), TSE_ERR_DENIED);
    assert_non_null(host.why);
    assert_non_null(strstr(host.why, "div emv"));
    tse_scp_host_begin(&host, &master, 0, hc, 8, cmd, sizeof(cmd), &n);
    tse_scp_host_set_diversification(&host, TSE_DIV_EMV);
    assert_int_equal(tse_scp_host_iu_response(&host, rsp, m), 0);
    /* keys that match nothing: the plain message */
    struct tse_scp_keys other = keys(2, 0x55, "000102030405060708090A0B0C0D0E0F");
    tse_scp_host_begin(&host, &other, 0, hc, 8, cmd, sizeof(cmd), &n);
    assert_int_equal(tse_scp_host_iu_response(&host, rsp, m), TSE_ERR_DENIED);
    assert_null(strstr(host.why, "would match"));
}

static void test_pboc_two_level(void **state)
{
    (void)state;
    uint8_t master[16], f1[8], f2[8], a[16], b[16], mid[16], c[16];
    hex(K40, master, 16);
    hex("0102030405060708", f1, 8);
    hex("1122334455667788", f2, 8);
    assert_int_equal(tse_pboc_diversify2(master, f1, f2, a), 0);
    /* the two-level key is the one-level function applied twice */
    tse_pboc_diversify(master, f1, mid);
    tse_pboc_diversify(mid, f2, c);
    assert_memory_equal(a, c, 16);
    /* right half = ECB(key, NOT d8): with d8 = FF.. it is the KCV-style ECB(key, 00..) */
    uint8_t ones[8], z[16];
    memset(ones, 0xFF, 8);
    tse_pboc_diversify(master, ones, z);
    eq(z + 8, "8BAF47"); /* = the 3DES KCV of 404142..4F */
    /* another SE identifier gives another key */
    f2[7] ^= 1;
    tse_pboc_diversify2(master, f1, f2, b);
    assert_memory_not_equal(a, b, 16);
}

/* Two cards driven from two threads at once, each through an SCP03 level-33 session: the
 * library keeps no shared scratch state, so every protected exchange verifies. */
struct card_thread {
    struct tse_card *card;
    int ok;
};

static void *secure_loop(void *arg)
{
    struct card_thread *t = arg;
    struct tse_scp_keys k = keys(3, 0x70, K40);
    struct tse_scp_session host;
    uint8_t hc[8] = {8, 7, 6, 5, 4, 3, 2, 1}, cmd[64], r[600], w[600], out[600];
    size_t n, rl, wl, ol;
    if (tse_scp_host_begin(&host, &k, 0, hc, 8, cmd, sizeof(cmd), &n) ||
        tse_card_transmit(t->card, TSE_IF_CONTACT, cmd, n, r, sizeof(r), &rl) ||
        tse_scp_host_iu_response(&host, r, rl - 2) ||
        tse_scp_host_external_authenticate(&host, 0x33, cmd, sizeof(cmd), &n) ||
        tse_card_transmit(t->card, TSE_IF_CONTACT, cmd, n, r, sizeof(r), &rl) || rl != 2)
        return NULL;
    static const uint8_t get_e0[] = {0x80, 0xCA, 0x00, 0xE0, 0x00};
    for (int i = 0; i < 2000; i++) {
        if (tse_scp_host_wrap(&host, get_e0, sizeof(get_e0), w, sizeof(w), &wl) ||
            tse_card_transmit(t->card, TSE_IF_CONTACT, w, wl, r, sizeof(r), &rl) ||
            tse_scp_host_unwrap(&host, r, rl, out, sizeof(out), &ol) || ol != 22 ||
            out[0] != 0xE0 || out[20] != 0x90)
            return NULL;
    }
    t->ok = 1;
    return NULL;
}

static void test_two_cards_two_threads(void **state)
{
    (void)state;
    char p1[512], p2[512];
    struct card_thread t[2] = {{tt_card(NULL, p1, sizeof(p1)), 0},
                               {tt_card(NULL, p2, sizeof(p2)), 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, secure_loop, &t[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(t[0].ok + t[1].ok, 2);
    tse_card_free(t[0].card);
    tse_card_free(t[1].card);
    unlink(p1);
    unlink(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kcv),
        cmocka_unit_test(test_scp02_session_keys_and_pseudo_challenge),
        cmocka_unit_test(test_put_key_blocks),
        cmocka_unit_test(test_diversification),
        cmocka_unit_test(test_diversification_diagnostics),
        cmocka_unit_test(test_pboc_two_level),
        cmocka_unit_test(test_two_cards_two_threads),
    };
    return cmocka_run_group_tests_name("scp_keys", tests, NULL, NULL);
}
