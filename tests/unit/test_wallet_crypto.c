/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Purse cryptography against the vectors of tests/vectors/wallet-vectors.txt (A: purchase,
 * B: load of type 01), and the PSAM's halves of a transaction against each other.
 */
#include "tse_test.h"

#include "tse/wallet.h"

#define MAX_FIELDS 24

struct field {
    char name[16];
    uint8_t v[32];
    size_t len;
};

struct vcase {
    char name[32];
    struct field f[MAX_FIELDS];
    size_t n;
};

static struct vcase cases[16];
static size_t n_cases;

static void load_vectors(void)
{
    const char *data = getenv("TSE_TEST_DATA");
    char path[512], line[512];
    snprintf(path, sizeof(path), "%s/vectors/wallet-vectors.txt", data ? data : "tests");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char key[16], val[64];
        if (sscanf(line, "%15s %63s", key, val) != 2)
            fail_msg("bad vector line '%s'", line);
        if (!strcmp(key, "CASE")) {
            assert_true(n_cases < 16);
            snprintf(cases[n_cases++].name, sizeof(cases[0].name), "%.31s", val);
            continue;
        }
        assert_true(n_cases > 0);
        struct vcase *c = &cases[n_cases - 1];
        assert_true(c->n < MAX_FIELDS);
        struct field *fd = &c->f[c->n++];
        snprintf(fd->name, sizeof(fd->name), "%s", key);
        if (!strcmp(key, "KIND")) {
            snprintf((char *)fd->v, sizeof(fd->v), "%.31s", val);
            continue;
        }
        int n = tse_hex_decode(val, fd->v, sizeof(fd->v));
        if (n < 0)
            fail_msg("bad hex in '%s'", line);
        fd->len = (size_t)n;
    }
    fclose(f);
}

static const uint8_t *get(const struct vcase *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->f[i].name, name)) {
            if (len && c->f[i].len != len)
                fail_msg("%s: %s has %zu bytes, expected %zu", c->name, name, c->f[i].len, len);
            return c->f[i].v;
        }
    fail_msg("%s: no field %s", c->name, name);
    return NULL;
}

static uint32_t be(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void txn_of(const struct vcase *c, struct tse_wallet_txn *t, bool load)
{
    memset(t, 0, sizeof(*t));
    t->type = get(c, "TYPE", 1)[0];
    t->amount = be(get(c, "AMOUNT", 4), 4);
    memcpy(t->term_id, get(c, "TERM_ID", 6), 6);
    memcpy(t->rand, get(c, "RAND", 4), 4);
    t->seq = (uint16_t)be(get(c, "SEQ", 2), 2);
    if (load)
        t->balance = be(get(c, "BALANCE", 4), 4);
    else
        t->term_seq = be(get(c, "TERM_SEQ", 4), 4);
    memcpy(t->date, get(c, "DATE", 4), 4);
    memcpy(t->time, get(c, "TIME", 3), 3);
}

static void test_vectors(void **state)
{
    (void)state;
    load_vectors();
    unsigned checked = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const struct vcase *c = &cases[i];
        const char *kind = (const char *)get(c, "KIND", 0);
        uint8_t sk[8], m[4];
        struct tse_wallet_txn t;
        if (!strcmp(kind, "purchase")) {
            txn_of(c, &t, false);
            assert_int_equal(tse_wallet_purchase_sk(get(c, "KEY", 16), &t, sk), 0);
            assert_memory_equal(sk, get(c, "SK", 8), 8);
            assert_int_equal(tse_wallet_purchase_mac1(sk, &t, m), 0);
            assert_memory_equal(m, get(c, "MAC1", 4), 4);
            assert_int_equal(tse_wallet_purchase_mac2(sk, &t, m), 0);
            assert_memory_equal(m, get(c, "MAC2", 4), 4);
            checked += 3;
        } else if (!strcmp(kind, "load")) {
            txn_of(c, &t, true);
            assert_int_equal(tse_wallet_load_sk(get(c, "KEY", 16), &t, sk), 0);
            assert_memory_equal(sk, get(c, "SK", 8), 8);
            assert_int_equal(tse_wallet_load_mac1(sk, &t, m), 0);
            assert_memory_equal(m, get(c, "MAC1", 4), 4);
            assert_int_equal(tse_wallet_load_mac2(sk, &t, m), 0);
            assert_memory_equal(m, get(c, "MAC2", 4), 4);
            checked += 3;
        } else if (!strcmp(kind, "tac-key")) {
            uint8_t k[8];
            tse_wallet_tac_key(get(c, "DTK", 16), k);
            assert_memory_equal(k, get(c, "TAC_KEY", 8), 8);
            checked++;
        } else {
            fail_msg("%s: unknown KIND %s", c->name, kind);
        }
    }
    print_message("wallet vectors: %zu cases, %u values reproduced\n", n_cases, checked);
    assert_true(checked >= 7);
}

/* The purse MAC always pads: an 8-byte input gets a whole 80 00.. block. */
static void test_mac_padding(void **state)
{
    (void)state;
    uint8_t k[8] = {1, 2, 3, 4, 5, 6, 7, 8}, a[4], b[4];
    uint8_t d8[8] = {0}, d16[16] = {0};
    d16[8] = 0x80;
    assert_int_equal(tse_wallet_mac(k, d8, 8, a), 0);
    /* MAC(d8) == MAC over d8 ‖ 80 00.. 00 without further padding: compare with the 16-byte
     * input whose own padding adds a third block — they must differ */
    assert_int_equal(tse_wallet_mac(k, d16, 16, b), 0);
    assert_memory_not_equal(a, b, 4);
}

static void test_diversify(void **state)
{
    (void)state;
    uint8_t m[16], issuer[8] = {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    uint8_t asn8[8] = {0x51, 0x70, 0x01, 0x01, 0x70, 0x90, 0x79, 0x84};
    uint8_t k1[16], k2[16];
    for (int i = 0; i < 16; i++)
        m[i] = (uint8_t)(0x50 + i);
    assert_int_equal(tse_wallet_diversify(m, issuer, asn8, k1), 0);
    /* different card, different key; same inputs, same key */
    asn8[7] ^= 1;
    assert_int_equal(tse_wallet_diversify(m, issuer, asn8, k2), 0);
    assert_memory_not_equal(k1, k2, 16);
    asn8[7] ^= 1;
    assert_int_equal(tse_wallet_diversify(m, issuer, asn8, k2), 0);
    assert_memory_equal(k1, k2, 16);
}

/* The PSAM's purchase against a card computed from the same diversified keys. */
static void test_psam_roundtrip(void **state)
{
    (void)state;
    struct tse_psam p;
    tse_psam_init(&p);
    assert_int_equal(tse_psam_load_test_keys(&p), 0);
    struct tse_wallet_perso perso;
    uint8_t issuer[8] = {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    uint8_t asn[10] = {0x03, 0x10, 0x51, 0x70, 0x01, 0x01, 0x70, 0x90, 0x79, 0x84};
    assert_int_equal(tse_wallet_perso_test(&perso, issuer, asn), 0);
    struct tse_wallet_card card;
    assert_int_equal(tse_wallet_card_parse(&card, perso.ef15, 30), 0);
    const uint8_t *dpk = perso.set[0][TSE_WALLET_KEY_PURCHASE - 1].key;
    const uint8_t *dtk = perso.set[0][TSE_WALLET_KEY_TAC - 1].key;
    const uint8_t *dlk = perso.set[0][TSE_WALLET_KEY_LOAD - 1].key;

    struct tse_psam_txn x = {.key_index = 1};
    x.t = (struct tse_wallet_txn){.type = TSE_WALLET_TT_PURCHASE, .amount = 200, .seq = 7};
    memcpy(x.t.rand, "\x01\x02\x03\x04", 4);
    memcpy(x.t.date, "\x20\x24\x05\x01", 4);
    memcpy(x.t.time, "\x08\x30\x00", 3);
    uint8_t mac1[4], sk[8], m[4], tac[4];
    assert_int_equal(tse_psam_purchase_begin(&p, &card, &x, mac1), 0);
    assert_int_equal(x.t.term_seq, 1);
    assert_int_equal(p.term_seq, 2);
    /* the card's side */
    assert_int_equal(tse_wallet_purchase_sk(dpk, &x.t, sk), 0);
    assert_int_equal(tse_wallet_purchase_mac1(sk, &x.t, m), 0);
    assert_memory_equal(m, mac1, 4);
    assert_int_equal(tse_wallet_purchase_mac2(sk, &x.t, m), 0);
    assert_int_equal(tse_psam_purchase_check_mac2(&x, m), 0);
    m[0] ^= 1;
    assert_int_equal(tse_psam_purchase_check_mac2(&x, m), TSE_ERR_DENIED);
    assert_int_equal(tse_wallet_purchase_tac(dtk, &x.t, tac), 0);
    assert_int_equal(tse_psam_check_tac(&p, &card, &x, tac), 0);
    tac[3] ^= 0x80;
    assert_int_equal(tse_psam_check_tac(&p, &card, &x, tac), TSE_ERR_DENIED);

    /* load: the card's MAC1, the host's MAC2, the card's TAC */
    struct tse_psam_txn l = {.key_index = 1};
    l.t = (struct tse_wallet_txn){
        .type = TSE_WALLET_TT_EP_LOAD, .amount = 5000, .seq = 3, .balance = 120};
    memcpy(l.t.term_id, p.term_id, 6);
    memcpy(l.t.rand, "\xAA\xBB\xCC\xDD", 4);
    assert_int_equal(tse_wallet_load_sk(dlk, &l.t, sk), 0);
    assert_int_equal(tse_wallet_load_mac1(sk, &l.t, mac1), 0);
    assert_int_equal(tse_psam_load_begin(&p, &card, &l, mac1), 0);
    assert_int_equal(tse_psam_load_mac2(&l, m), 0);
    uint8_t m2[4];
    assert_int_equal(tse_wallet_load_mac2(sk, &l.t, m2), 0);
    assert_memory_equal(m, m2, 4);
    assert_int_equal(tse_wallet_load_tac(dtk, &l.t, tac), 0);
    assert_int_equal(tse_psam_check_tac(&p, &card, &l, tac), 0);
    mac1[0] ^= 1;
    assert_int_equal(tse_psam_load_begin(&p, &card, &l, mac1), TSE_ERR_DENIED);
    assert_false(l.ready);

    /* no master of that index */
    x.key_index = 2;
    assert_int_equal(tse_psam_purchase_begin(&p, &card, &x, mac1), TSE_ERR_NOT_FOUND);
    assert_int_equal(tse_psam_add_master(&p, 0, 1, dpk), TSE_ERR_INVALID_ARG);
    assert_int_equal(tse_psam_add_master(&p, 5, 0, dpk), TSE_ERR_INVALID_ARG);
    tse_psam_free(&p);
}

static void test_sm_mac(void **state)
{
    (void)state;
    uint8_t k[16], m4[4], m8[4], ch[8] = {1, 2, 3, 4, 0, 0, 0, 0};
    memset(k, 0x11, 16);
    const uint8_t hdr[5] = {0x84, 0x1E, 0x00, 0x00, 0x04};
    assert_int_equal(tse_wallet_sm_mac(k, ch, 4, hdr, 5, m4), 0);
    /* a 4-byte challenge is the 8-byte IV challenge ‖ 00000000 */
    assert_int_equal(tse_wallet_sm_mac(k, ch, 8, hdr, 5, m8), 0);
    assert_memory_equal(m4, m8, 4);
    assert_int_equal(tse_wallet_sm_mac(k, ch, 5, hdr, 5, m8), TSE_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),   cmocka_unit_test(test_mac_padding),
        cmocka_unit_test(test_diversify), cmocka_unit_test(test_psam_roundtrip),
        cmocka_unit_test(test_sm_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
