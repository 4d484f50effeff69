/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tear sweep and kill -9: the crash-safety claims of the store, checked end to end.
 *
 * The sweep replays a multi-write APDU script once to learn the committed state after each
 * command, then replays it again for every store write k with a power cut armed at k. After
 * each cut the card is powered up again (recovery) and reopened from disk; its whole
 * persistent state must equal the state before the interrupted command (each command of
 * the script has at most one commit point, and it is the command's last write).
 */
#include "tse/cap.h"
#include "tse_test.h"

#include "tse/scp.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static const char *SCRIPT[] = {
    "00A4040008F074736544494101", /* select diag */
    "802200000400000064",         /* transfer 100: 4 journalled writes + COMMIT */
    "8020000004",                 /* non-atomic increment: 1 write */
    "802201000400000032",         /* transfer then abort */
    "8040002001"
    "01",                 /* allocate an object */
    "802200000400000007", /* transfer 7 */
    "8042000001"
    "01",                                     /* free it */
    "802203000400000009",                     /* transfer left open: the runtime aborts it */
    "802801000E73637030335F73657175656E6365", /* counter scp03_sequence + 1 */
    "0070000001",                             /* open channel 1 (no store write) */
    "01A4040008F074736544494101",             /* select diag there */
    "812200000400000001",                     /* transfer 1 on channel 1 */
    "8030010002ABCD",                         /* transient write: no store write */
    "8020000004",
    "802200000400000002",
};
#define N_BASE   (sizeof(SCRIPT) / sizeof(SCRIPT[0]))
#define ROUNDS   4 /* the script runs four times over: later rounds start from richer states */
#define N_SCRIPT (N_BASE * ROUNDS)
#define CMD(i)   SCRIPT[(i) % N_BASE]

static struct tse_card *open_on(const char *p)
{
    return tt_open(p, TSE_IF_CONTACT);
}

/* A + B is conserved and the newest log entry matches seq. */
static void check_invariants(struct tse_card *c)
{
    const char *sel = tt_xfer(c, TSE_IF_CONTACT, "00A4040008F074736544494101");
    assert_string_equal(sel + strlen(sel) - 4, "9000");
    const char *r = tt_xfer(c, TSE_IF_CONTACT, "8024000010");
    unsigned a, b, seq;
    assert_int_equal(sscanf(r, "%8x%8x%8x", &a, &b, &seq), 3);
    if (a + b != 1000)
        fail_msg("balance not conserved: %u + %u", a, b);
}

static void test_tear_sweep(void **state)
{
    (void)state;
    char base[512], work[512];
    struct tse_card *c = tt_card(NULL, base, sizeof(base));
    tse_card_free(c);
    size_t base_len;
    uint8_t *base_img = tt_read_file(base, &base_len);
    tt_path(work, sizeof(work), "sweep");

    /* reference run */
    uint8_t ref[N_SCRIPT + 1][32];
    unsigned long w_after[N_SCRIPT + 1];
    tt_write_file(work, base_img, base_len);
    c = open_on(work);
    tse_card_state_digest(c, ref[0]);
    w_after[0] = tse_card_store_writes(c);
    for (size_t i = 0; i < N_SCRIPT; i++) {
        const char *r = tt_xfer(c, TSE_IF_CONTACT, CMD(i));
        if (strcmp(r + strlen(r) - 4, "9000") != 0)
            fail_msg("reference run: %s -> %s", CMD(i), r);
        tse_card_state_digest(c, ref[i + 1]);
        w_after[i + 1] = tse_card_store_writes(c);
    }
    tse_card_free(c);
    unsigned long total = w_after[N_SCRIPT] - w_after[0];
    assert_true(total >= 100);

    unsigned inconsistencies = 0;
    for (unsigned long k = 1; k <= total; k++) {
        tt_write_file(work, base_img, base_len);
        c = open_on(work);
        assert_int_equal(tse_card_tear_at(c, k), 0);
        size_t i = 0;
        for (; i < N_SCRIPT; i++)
            if (strcmp(tt_xfer(c, TSE_IF_CONTACT, CMD(i)), "TORN") == 0)
                break;
        assert_true(i < N_SCRIPT);
        assert_true(w_after[i] < w_after[0] + k && w_after[0] + k <= w_after[i + 1]);
        size_t n;
        assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACT, NULL, 0, &n), 0); /* recovery */
        uint8_t d[32];
        tse_card_state_digest(c, d);
        if (memcmp(d, ref[i], 32) != 0) {
            inconsistencies++;
            print_message("tear at write %lu (command %zu): state differs from before it\n", k, i);
        }
        check_invariants(c);
        tse_card_free(c);
        /* and the image on disk says the same to a fresh process */
        c = open_on(work);
        tse_card_state_digest(c, d);
        if (memcmp(d, ref[i], 32) != 0)
            inconsistencies++;
        /* the recovered card goes on working: the interrupted command now succeeds */
        tt_xfer(c, TSE_IF_CONTACT, "00A4040008F074736544494101");
        const char *r = tt_xfer(c, TSE_IF_CONTACT, CMD(i));
        if (i > 0 && strcmp(r + strlen(r) - 4, "9000") != 0 &&
            (tse_cla_decode((uint8_t)strtoul((char[]){CMD(i)[0], CMD(i)[1], 0}, NULL, 16))
                 .channel == 0))
            fail_msg("after recovery: %s -> %s", CMD(i), r);
        tse_card_free(c);
    }
    print_message("tear sweep: %lu tear points tried, %u inconsistencies\n", total,
                  inconsistencies);
    assert_int_equal(inconsistencies, 0);
    free(base_img);
    unlink(base);
    unlink(work);
}

/* A child process hammers transfers on the image; the parent kills it with SIGKILL at
 * random moments and checks that the image always opens and keeps its invariants. */
static void test_kill9(void **state)
{
    (void)state;
    char p[512];
    struct tse_card *c = tt_card("[instance k]\npackage = F0747365444941\n"
                                 "module = F074736544494101\nparams = 3B9ACA00\n",
                                 p, sizeof(p));
    tse_card_free(c);
    srand((unsigned)time(NULL));
    unsigned last_seq = 0;
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct tse_card *cc;
            char err[256];
            if (tse_card_open(&cc, p, NULL, err, sizeof(err)) != 0)
                _exit(3);
            size_t n;
            tse_card_power_on(cc, TSE_IF_CONTACT, NULL, 0, &n);
            uint8_t sel[] = {0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x74,
                             0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
            uint8_t r[64];
            tse_card_transmit(cc, TSE_IF_CONTACT, sel, sizeof(sel), r, sizeof(r), &n);
            for (unsigned i = 0;; i++) {
                uint8_t cmd[] = {0x80, 0x22, 0x00, 0x00, 0x04, 0, 0, 0, 1};
                tse_card_transmit(cc, TSE_IF_CONTACT, cmd, sizeof(cmd), r, sizeof(r), &n);
                uint8_t inc[] = {0x80, 0x20, 0x00, 0x00, 0x04};
                tse_card_transmit(cc, TSE_IF_CONTACT, inc, sizeof(inc), r, sizeof(r), &n);
            }
        }
        struct timespec ts = {0, (long)(5 + rand() % 60) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        c = open_on(p);
        const char *r = tt_xfer(c, TSE_IF_CONTACT, "00A4040008F074736544494101");
        r = tt_xfer(c, TSE_IF_CONTACT, "8024000010");
        unsigned a, b, seq, cnt;
        assert_int_equal(sscanf(r, "%8x%8x%8x%8x", &a, &b, &seq, &cnt), 4);
        assert_int_equal(a + b, 1000000000u);
        assert_int_equal(b, seq); /* each committed transfer moved exactly one unit */
        assert_true(seq >= last_seq);
        last_seq = seq;
        tse_card_free(c);
    }
    print_message("kill -9: 12 rounds, last seq %u, invariants held\n", last_seq);
    unlink(p);
}

/* PUT KEY under a power cut at each of its store writes: afterwards exactly the old or the new
 * key set authenticates, never a mix (the key table is one object, written once). */
static void test_tear_put_key(void **state)
{
    (void)state;
    uint8_t old_key[16], new_key[16];
    for (int b = 0; b < 16; b++) {
        old_key[b] = (uint8_t)(0x40 + b);
        new_key[b] = (uint8_t)(0x60 + b);
    }
    const uint8_t *three[3] = {new_key, new_key, new_key};
    unsigned points = 0;
    for (unsigned long k = 1;; k++) {
        char p[512];
        struct tse_card *c = tt_card(NULL, p, sizeof(p));
        struct tse_scp_session host;
        assert_true(tt_auth(c, old_key, 0x30, &host));
        uint8_t plain[200], wire[256], r[300];
        size_t n, wl, rl;
        assert_int_equal(tse_scp_host_put_key(&host, 0x30, 0x30, TSE_KEY_TYPE_AES, three, 16, plain,
                                              sizeof(plain), &n),
                         0);
        assert_int_equal(tse_scp_host_wrap(&host, plain, n, wire, sizeof(wire), &wl), 0);
        tse_card_tear_at(c, k);
        int rc = tse_card_transmit(c, TSE_IF_CONTACT, wire, wl, r, sizeof(r), &rl);
        tse_card_tear_at(c, 0);
        assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACT, NULL, 0, &n), 0);
        bool old_ok = tt_auth(c, old_key, 0x30, &host);
        tse_card_reset(c, TSE_IF_CONTACT, NULL, 0, &n);
        bool new_ok = tt_auth(c, new_key, 0x30, &host);
        assert_true(old_ok != new_ok); /* exactly one key set is there */
        tse_card_free(c);
        unlink(p);
        if (rc != TSE_ERR_TORN) { /* the cut came after the command: all writes done */
            assert_int_equal(rc, 0);
            assert_true(new_ok);
            break;
        }
        points++;
    }
    assert_true(points >= 1);
    print_message("tear sweep over PUT KEY: %u tear points, key set always whole\n", points);
}

/* Card content management under a power cut at every store write: the registry and every
 * object are exactly as before the command or exactly as after it (whole-state digests). */
#define T_INSTALL                                                                                  \
    "80E60C0025 07F0747365444941 08F074736544494101 09F07473654449410177 0100 06C90400000064 00 "  \
    "00"
#define T_DELETE "80E400800B4F09F0747365444941017700"
#define T_SSD                                                                                      \
    "80E60C0026 07A0000001515350 08A000000151535041 08F074736553534401 03804000 06C90481020370 "   \
    "00 00"
#define T_EXTRA  "80E6100017 08F074736553534401 00 09F07473654449410177 00 00 00 00"
#define T_LOCK60 "80F0608008F074736553534401"
#define T_DELSSD "80E400800A4F08F07473655353440100"
#define T_REGUPD "80E6400012 00 00 09F07473654449410177 03040000 00 00 00"
#define T_PERSO  "80E620000F 00 00 09F07473654449410177 00 00 00 00"
#define T_STORE  "80E2880007 0101 04 000000C8 00"

#define T_FORLOAD "80E6020014 07F0747365444941 08A000000151000000 00 00 00 00"
#define T_DELELF  "80E400800A4F07F074736544494100"

/* LOAD blocks of tse.diag's CAP file (built like `tse-cap write`), filled in by load_blocks() */
static char T_LOAD1[600], T_LOAD2[600];

struct cm_case {
    const char *name;
    const char *setup[5];
    const char *cmd;
    const char *profile;
};

static const struct cm_case CM_CASES[] = {
    {"INSTALL", {NULL}, T_INSTALL, NULL},
    {"DELETE", {T_INSTALL, NULL}, T_DELETE, NULL},
    {"INSTALL of an SSD", {NULL}, T_SSD, NULL},
    {"INSTALL [for extradition]", {T_INSTALL, T_SSD, NULL}, T_EXTRA, NULL},
    {"SET STATUS 60", {T_INSTALL, T_SSD, T_EXTRA, NULL}, T_LOCK60, NULL},
    {"DELETE of an SSD and its content", {T_INSTALL, T_SSD, T_EXTRA, NULL}, T_DELSSD, NULL},
    {"INSTALL [for registry update]", {T_INSTALL, NULL}, T_REGUPD, NULL},
    {"STORE DATA (personalization)", {T_INSTALL, T_PERSO, NULL}, T_STORE, NULL},
    {"the last LOAD block", {T_FORLOAD, T_LOAD1, NULL}, T_LOAD2, "[card]\nrom_packages = none\n"},
    {"DELETE of a loaded load file and its instances",
     {T_FORLOAD, T_LOAD1, T_LOAD2, T_INSTALL, NULL},
     T_DELELF,
     "[card]\nrom_packages = none\n"},
};

static void load_blocks(void)
{
    uint8_t lfdb[8192], stream[8200];
    int n = tse_cap_build_lfdb(tse_cap_find_package("tse.diag"), TSE_CAP_NO_DESCRIPTOR, lfdb,
                               sizeof(lfdb));
    assert_true(n > 0);
    int sl = tse_cap_load_data(lfdb, (size_t)n, stream, sizeof(stream));
    assert_true(sl > 120 && sl < 120 + 250);
    char hex[2 * 256 + 1];
    tse_hex_encode(stream, 120, hex);
    snprintf(T_LOAD1, sizeof(T_LOAD1), "80E8000078%s00", hex);
    tse_hex_encode(stream + 120, (size_t)sl - 120, hex);
    snprintf(T_LOAD2, sizeof(T_LOAD2), "80E88001%02X%s00", sl - 120, hex);
}

/* A fresh card in a session, the case's set-up done; its image path in p. */
static struct tse_card *cm_setup(const struct cm_case *cc, const uint8_t key[16], char *p,
                                 size_t plen, struct tse_scp_session *host)
{
    struct tse_card *c = tt_card(cc->profile, p, plen);
    uint16_t sw;
    assert_true(tt_auth(c, key, 0x30, host));
    for (int i = 0; cc->setup[i]; i++)
        assert_true(tt_wrapped(c, host, cc->setup[i], &sw) == 0 && sw == 0x9000);
    return c;
}

static void test_tear_content_management(void **state)
{
    (void)state;
    uint8_t key[16];
    for (int b = 0; b < 16; b++)
        key[b] = (uint8_t)(0x40 + b);
    unsigned total = 0;
    load_blocks();
    for (size_t which = 0; which < sizeof(CM_CASES) / sizeof(CM_CASES[0]); which++) {
        const struct cm_case *cc = &CM_CASES[which];
        unsigned points = 0;
        for (unsigned long k = 1;; k++) {
            char p[512];
            struct tse_scp_session host;
            uint16_t sw;
            struct tse_card *c = cm_setup(cc, key, p, sizeof(p), &host);
            uint8_t before[32], after[32], now[32];
            tse_card_state_digest(c, before);
            tse_card_tear_at(c, k);
            int rc = tt_wrapped(c, &host, cc->cmd, &sw);
            tse_card_tear_at(c, 0);
            size_t n;
            assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACT, NULL, 0, &n), 0);
            tse_card_state_digest(c, now);
            tse_card_free(c);
            unlink(p);
            if (rc != TSE_ERR_TORN) {
                assert_int_equal(rc, 0);
                if (sw != 0x9000)
                    fail_msg("%s answered %04X", cc->name, sw);
                assert_memory_not_equal(before, now, 32);
                break;
            }
            points++;
            /* what the state after the command looks like: run it once more uncut */
            c = cm_setup(cc, key, p, sizeof(p), &host);
            assert_true(tt_wrapped(c, &host, cc->cmd, &sw) == 0 && sw == 0x9000);
            tse_card_state_digest(c, after);
            tse_card_free(c);
            unlink(p);
            if (memcmp(now, before, 32) != 0 && memcmp(now, after, 32) != 0)
                fail_msg("%s cut at write %lu: state is neither before nor after", cc->name, k);
        }
        assert_true(points >= 1);
        print_message("tear sweep over %s: %u tear points, registry always whole\n", cc->name,
                      points);
        total += points;
    }
    print_message("tear sweep over content management: %u tear points in all\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tear_sweep),
        cmocka_unit_test(test_kill9),
        cmocka_unit_test(test_tear_put_key),
        cmocka_unit_test(test_tear_content_management),
    };
    return cmocka_run_group_tests_name("cos_tear", tests, NULL, NULL);
}
