/* SPDX-License-Identifier: Apache-2.0 */
/* Shared fixtures of the cmocka suites: temporary image paths and hex-driven exchanges. */
#ifndef TSE_TEST_H
#define TSE_TEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tse/apdu.h"
#include "tse/card.h"
#include "tse/scp.h"
#include "tse/sw.h"

/* A fresh path under $TSE_TEST_TMP (or /tmp) that does not exist yet. */
static inline void tt_path(char *out, size_t cap, const char *tag)
{
    static unsigned seq;
    const char *dir = getenv("TSE_TEST_TMP");
    if (!dir || !*dir)
        dir = "/tmp";
    mkdir(dir, 0755);
    snprintf(out, cap, "%s/%s-%ld-%u.img", dir, tag, (long)getpid(), seq++);
    unlink(out);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    unlink(tmp);
}

/* Whole-file helpers for image snapshots. */
static inline uint8_t *tt_read_file(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static inline void tt_write_file(const char *p, const uint8_t *b, size_t len)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* Open an existing image and power one interface. */
static inline struct tse_card *tt_open(const char *p, int iface)
{
    struct tse_card *c;
    char err[256];
    if (tse_card_open(&c, p, NULL, err, sizeof(err)) != 0)
        fail_msg("open %s: %s", p, err);
    size_t n;
    assert_int_equal(tse_card_power_on(c, (enum tse_iface)iface, NULL, 0, &n), 0);
    return c;
}

/* Create a card from profile text (NULL = default) and power both interfaces. */
static inline struct tse_card *tt_card(const char *profile, char *path, size_t cap)
{
    tt_path(path, cap, "card");
    struct tse_card *c = NULL;
    char err[256] = "";
    int rc = tse_card_create(&c, path, profile, profile ? strlen(profile) : 0, "test", NULL, err,
                             sizeof(err));
    if (rc)
        fail_msg("tse_card_create: %d %s", rc, err);
    uint8_t atr[64];
    size_t n;
    assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACT, atr, sizeof(atr), &n), 0);
    assert_int_equal(tse_card_power_on(c, TSE_IF_CONTACTLESS, atr, sizeof(atr), &n), 0);
    return c;
}

/* Send a hex C-APDU; returns the R-APDU as upper-case hex "DATA SW" without spaces. */
static inline const char *tt_xfer(struct tse_card *c, int iface, const char *hex)
{
    static uint8_t cmd[70000], rsp[TSE_RAPDU_MAX];
    static char out[2 * TSE_RAPDU_MAX + 1];
    int n = tse_hex_decode(hex, cmd, sizeof(cmd));
    assert_true(n >= 0);
    size_t rlen = 0;
    int rc = tse_card_transmit(c, (enum tse_iface)iface, cmd, (size_t)n, rsp, sizeof(rsp), &rlen);
    if (rc == TSE_ERR_TORN)
        return "TORN";
    if (rc)
        fail_msg("transmit %s: %s", hex, tse_strerror(rc));
    tse_hex_encode(rsp, rlen, out);
    return out;
}

/* Status word of an exchange. */
static inline unsigned tt_sw(struct tse_card *c, int iface, const char *hex)
{
    const char *r = tt_xfer(c, iface, hex);
    size_t l = strlen(r);
    return (unsigned)strtoul(r + l - 4, NULL, 16);
}

/* Open an SCP03 (i=70, C-MAC) session with the selected security domain on the contact
 * interface, all three keys `key`. */
static inline bool tt_auth(struct tse_card *c, const uint8_t key[16], uint8_t kvn,
                           struct tse_scp_session *host)
{
    struct tse_scp_keys k = {.scp = 3, .i = 0x70, .key_len = 16};
    memcpy(k.enc, key, 16);
    memcpy(k.mac, key, 16);
    memcpy(k.dek, key, 16);
    uint8_t hc[8] = {1, 2, 3, 4, 5, 6, 7, 8}, cmd[64], r[300];
    size_t n, rl;
    if (tse_scp_host_begin(host, &k, kvn, hc, 8, cmd, sizeof(cmd), &n) ||
        tse_card_transmit(c, TSE_IF_CONTACT, cmd, n, r, sizeof(r), &rl) || rl < 2 ||
        r[rl - 2] != 0x90 || tse_scp_host_iu_response(host, r, rl - 2))
        return false;
    if (tse_scp_host_external_authenticate(host, TSE_SL_CMAC, cmd, sizeof(cmd), &n) ||
        tse_card_transmit(c, TSE_IF_CONTACT, cmd, n, r, sizeof(r), &rl) || rl != 2 || r[0] != 0x90)
        return false;
    return true;
}

/* Send one plain hex command through the open host session; returns the transmit code and
 * the status word. */
static inline int tt_wrapped(struct tse_card *c, struct tse_scp_session *host, const char *hex,
                             uint16_t *sw)
{
    uint8_t plain[300], wire[320], r[300], out[300];
    size_t wl, rl, ol;
    int n = tse_hex_decode(hex, plain, sizeof(plain));
    assert_true(n > 0);
    assert_int_equal(tse_scp_host_wrap(host, plain, (size_t)n, wire, sizeof(wire), &wl), 0);
    int rc = tse_card_transmit(c, TSE_IF_CONTACT, wire, wl, r, sizeof(r), &rl);
    if (rc)
        return rc;
    assert_int_equal(tse_scp_host_unwrap(host, r, rl, out, sizeof(out), &ol), 0);
    *sw = (uint16_t)(out[ol - 2] << 8 | out[ol - 1]);
    return 0;
}

#define DIAG_AID    "F074736544494101"
#define SELECT_DIAG "00A4040008" DIAG_AID

#endif
