/* SPDX-License-Identifier: Apache-2.0 */
/* Card profiles (src/cos/profile.c): the default, every section, and clear errors. */
#include "tse_test.h"

#include "cos/profile_internal.h"
#include "tse/profile.h"

static struct tse_profile P;

static int parse(const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    return tse_profile_parse(&P, text, strlen(text), "t.profile", err, errlen);
}

static void expect_error(const char *text, const char *msg)
{
    char err[256];
    assert_int_equal(parse(text, err, sizeof(err)), TSE_ERR_PROFILE);
    if (!strstr(err, msg))
        fail_msg("expected \"%s\" in \"%s\"", msg, err);
}

static void test_default(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(tse_profile_load(&P, NULL, err, sizeof(err)), 0);
    assert_int_equal(P.life_cycle, TSE_LC_SECURED);
    assert_int_equal(P.n_keysets, 1);
    assert_int_equal(P.keysets[0].kvn, 0x30);
    assert_int_equal(P.keysets[0].scp, 3);
    assert_int_equal(P.keysets[0].i, 0x70);
    assert_int_equal(P.keysets[0].type, TSE_KEY_AES);
    assert_int_equal(P.keysets[0].key_len, 16);
    assert_int_equal(P.keysets[0].enc[0], 0x40);
    assert_int_equal(P.keysets[0].dek[15], 0x4F);
    assert_int_equal(P.isd_aid.len, 8);
    assert_int_equal(P.isd_aid.b[4], 0x51);
    unsigned prot = 0;
    assert_int_equal(tse_atr_check(P.atr, P.atr_len, &prot), 0);
    assert_true(prot & 2u); /* announces T=1 */
    assert_int_equal(P.logical_channels, 20);
    assert_int_equal(P.n_counters, 3);
    assert_int_equal(P.counters[1].max, 0xFFFFFF);
    assert_string_equal(P.counters[2].name, "dm_confirmation");
    assert_int_equal(P.n_instances, 1);
    assert_false(P.deterministic);
}

static void test_scp02_example(void **state)
{
    (void)state;
    const char *dir = getenv("TSE_TEST_DATA");
    char path[512], err[256] = "";
    snprintf(path, sizeof(path), "%s/../profiles/scp02.profile", dir ? dir : "tests");
    assert_int_equal(tse_profile_load(&P, path, err, sizeof(err)), 0);
    assert_int_equal(P.keysets[0].scp, 2);
    assert_int_equal(P.keysets[0].type, TSE_KEY_DES3);
    assert_int_equal(P.keysets[0].i, 0x55);
}

static void test_full(void **state)
{
    (void)state;
    char err[256];
    const char *t =
        "[card]\nname = x\nlife_cycle = op_ready\npersistent_memory = 1M\n"
        "transient_memory=2048\nlogical_channels = 4\nfsync = on\n"
        "[contact]\natr = 3B 02 14 50   # T=0 only, no TCK\n"
        "[contactless]\nuid = 04112233445566\natqa = 0044\nsak = 20\n"
        "ats = 0675778102 80\n"
        "[keyset]\nkvn = 1\nscp = 02\ni = 15\nenc = 404142434445464748494A4B4C4D4E4F\n"
        "mac = 404142434445464748494A4B4C4D4E4F\ndek = 404142434445464748494A4B4C4D4E4F\n"
        "[keyset]\nkvn = 2\nkey = 000102030405060708090A0B0C0D0E0F1011121314151617\n"
        "[counters]\nseq = 5 max 9\n"
        "[deterministic]\nseed = 0102\nclock = 2026-01-02T03:04:05Z\n"
        "[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
        "default = contact, contactless\npersistent_quota = 4K\n";
    assert_int_equal(parse(t, err, sizeof(err)), 0);
    assert_int_equal(P.life_cycle, TSE_LC_OP_READY);
    assert_int_equal(P.persistent_memory, 1024 * 1024);
    assert_int_equal(P.fsync, 1);
    unsigned prot;
    assert_int_equal(tse_atr_check(P.atr, P.atr_len, &prot), 0);
    assert_int_equal(prot, 1u);
    assert_int_equal(P.uid_len, 7);
    assert_int_equal(P.keysets[0].type, TSE_KEY_DES3);
    assert_int_equal(P.keysets[1].key_len, 24);
    assert_int_equal(P.counters[0].value, 5);
    assert_true(P.deterministic);
    assert_int_equal(P.clock, 1767323045);
    assert_int_equal(P.instances[0].default_on, 3);
    assert_int_equal(P.instances[0].instance.len, 8); /* defaults to the module AID */
    assert_int_equal(P.instances[0].persistent_quota, 4096);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("[card]\ncolour = red\n", "t.profile:2: unknown key 'colour' in [card]");
    expect_error("[cards]\n", "unknown section [cards]");
    expect_error("name = x\n", "outside any section");
    expect_error("[card]\nlogical_channels = 21\n",
                 "logical_channels: expected a number from 1 to 20");
    expect_error("[card]\npersistent_memory = lots\n", "persistent_memory");
    expect_error("[card]\nlife_cycle = DEAD\n", "life_cycle: expected OP_READY");
    expect_error("[card]\nfsync = maybe\n", "fsync: expected on or off");
    expect_error("[contact]\natr = 3BF81300008131FE457473652D63617264BC\n", "atr: not a valid");
    expect_error("[contact]\natr = 3B8\n", "atr: expected hex");
    expect_error("[contactless]\nuid = 0102030405\n", "uid: ISO 14443-3 UIDs have 4, 7 or 10");
    expect_error("[contactless]\nats = 0578\n", "ats: TL must equal");
    expect_error("[isd]\naid = A000\n", "aid: expected 5 to 16 bytes");
    expect_error("[keyset]\nscp = 04\n", "scp: expected 02 or 03");
    expect_error("[keyset]\nkvn = 1\n", "key set 1 needs kvn and keys");
    expect_error("[keyset]\nkvn=1\nscp=02\nkey=000102030405060708090A0B0C0D0E0F1011121314151617\n",
                 "3DES keys have 16 bytes");
    expect_error("[keyset]\nkvn=1\nkey=000102030405060708090A0B0C0D0E0F\n[keyset]\nkvn=1\n"
                 "key=000102030405060708090A0B0C0D0E0F\n",
                 "defined twice");
    expect_error("[counters]\nc = 10 max 9\n", "VALUE <= MAX");
    expect_error("[deterministic]\nclock = yesterday\n", "clock: expected");
    expect_error("[deterministic]\nclock = 0\n", "needs a seed");
    expect_error("[instance]\n", "needs a name");
    expect_error("[instance x]\npackage = F0747365444941\n", "needs package and module");
    expect_error("[instance x]\ndefault = phone\n", "default: expected contact");
    expect_error("[card\n", "malformed section header");
    expect_error("[card]\nname\n", "expected 'key = value'");
    expect_error("[card]\nname =\n", "empty value");
    expect_error("[identity]\ncplc = 00\n", "cplc: expected 42 bytes");
    char err[256];
    assert_int_equal(tse_profile_load(&P, "/nonexistent.profile", err, sizeof(err)), TSE_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent.profile"));
}

/* Contactless registry keys of [instance] and [contactless] registry. */
static void test_contactless_keys(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(parse("[instance a]\npackage = F0747365444941\nmodule = F074736544494101\n"
                           "aid = A000000632010105215053555A484F55\ncontactless = deactivated\n"
                           "contactless_label = MOT_T_EP\ncontactless_priority = 2\n"
                           "contactless_default = yes\ncontactless_ppse_aid = A000000632010105\n"
                           "[instance b]\npackage = F0747365444941\nmodule = F074736544494101\n"
                           "aid = F0747365444942\ncontactless = off\ncontactless_default = yes\n"
                           "[contactless]\nregistry = off\n",
                           err, sizeof(err)),
                     0);
    assert_int_equal(P.instances[0].contactless, TSE_CL_DEACTIVATED);
    assert_string_equal(P.instances[0].contactless_label, "MOT_T_EP");
    assert_int_equal(P.instances[0].contactless_priority, 2);
    assert_int_equal(P.instances[0].default_on, 2);
    assert_int_equal(P.instances[0].contactless_ppse_aid.len, 8);
    /* several instances may be implicitly selectable on contactless */
    assert_int_equal(P.instances[1].default_on, 2);
    assert_int_equal(P.instances[1].contactless, TSE_CL_OFF);
    assert_int_equal(P.cl_registry, 0);
    assert_int_equal(parse("[card]\n", err, sizeof(err)), 0);
    assert_int_equal(P.cl_registry, 1);
    expect_error("[instance x]\ncontactless = maybe\n",
                 "t.profile:2: contactless: expected activated, deactivated or off");
    expect_error("[instance x]\ncontactless_label = ABCDEFGHIJKLM\n",
                 "contactless_label: at most 12 characters, got 13");
    expect_error("[instance x]\ncontactless_label = A\tB\n", "printable ASCII only");
    expect_error("[instance x]\ncontactless_priority = 16\n",
                 "contactless_priority: expected a number from 1 to 15");
    expect_error("[instance x]\ncontactless_default = often\n", "contactless_default: expected on");
    expect_error("[instance x]\ncontactless_ppse_aid = A0\n", "contactless_ppse_aid: expected 5");
    expect_error("[instance x]\npackage = F0747365444941\nmodule = F074736544494101\n"
                 "contactless_ppse_aid = A000000632\n",
                 "contactless_ppse_aid must be a prefix of its aid");
    expect_error("[instance x]\npackage = F0747365444941\nmodule = F074736544494101\n"
                 "default = contact\n[instance y]\npackage = F0747365444941\n"
                 "module = F074736544494101\naid = F0747365444942\ndefault = contact\n",
                 "both default on the contact interface");
    expect_error("[contactless]\nregistry = perhaps\n",
                 "t.profile:2: registry: expected on or off");
}

static void test_card_create_errors(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tt_path(path, sizeof(path), "prof");
    struct tse_card *c = NULL;
    const char *bad = "[instance x]\npackage = F000000001\nmodule = F00000000101\n";
    assert_int_equal(tse_card_create(&c, path, bad, strlen(bad), "p", NULL, err, sizeof(err)),
                     TSE_ERR_PROFILE);
    assert_non_null(strstr(err, "no native module F00000000101"));
    assert_int_equal(access(path, F_OK), -1); /* nothing left behind */
    const char *small = "[card]\npersistent_memory = 4096\n[instance x]\npackage = "
                        "F0747365444941\nmodule = F074736544494101\n[instance y]\npackage = "
                        "F0747365444941\nmodule = F074736544494101\naid = F07473654449410102\n";
    assert_int_equal(tse_card_create(&c, path, small, strlen(small), "p", NULL, err, sizeof(err)),
                     0);
    tse_card_free(c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_scp02_example),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_contactless_keys),
        cmocka_unit_test(test_card_create_errors),
    };
    return cmocka_run_group_tests_name("cos_profile", tests, NULL, NULL);
}
