/* SPDX-License-Identifier: Apache-2.0 */
/* The generic transactions of tse-tap: a list of APDUs (--apdu) and an apdu-shell script. */
#include <stdlib.h>
#include <string.h>

#include "shell/script.h"
#include "tse/apdu.h"
#include "tse/error.h"
#include "txn.h"

const char *tap_param(const struct tap_args *a, const char *key)
{
    const char *v = NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < a->n_params; i++)
        if (!strncmp(a->params[i], key, kl) && a->params[i][kl] == '=')
            v = a->params[i] + kl + 1;
    return v;
}

static void print_hex(FILE *f, const char *dir, const uint8_t *b, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (!h)
        return;
    tse_hex_encode(b, n, h);
    fprintf(f, "%s %s\n", dir, h);
    free(h);
}

static int run_apdus(struct tse_tap *tap, const struct tap_args *a)
{
    int failures = 0;
    for (size_t i = 0; i < a->n_apdus; i++) {
        const char *arg = a->apdus[i];
        const char *arrow = strstr(arg, "=>");
        size_t hl = arrow ? (size_t)(arrow - arg) : strlen(arg);
        char *hexs = strndup(arg, hl);
        uint8_t c[TSE_PN532_MAX_CAPDU + 1];
        int n = hexs ? tse_hex_decode(hexs, c, sizeof(c)) : TSE_ERR_NO_MEMORY;
        free(hexs);
        if (n < 4 || n > TSE_PN532_MAX_CAPDU) {
            fprintf(stderr, "tse-tap: --apdu '%s': want 4..%d bytes of hex\n", arg,
                    TSE_PN532_MAX_CAPDU);
            return 1;
        }
        uint8_t r[TSE_PN532_MAX_RAPDU];
        size_t rlen = 0;
        if (!a->quiet)
            print_hex(a->out, "->", c, (size_t)n);
        int rc = tse_tap_transmit(tap, NULL, c, (size_t)n, r, sizeof(r), &rlen);
        if (rc) {
            fprintf(stderr, "tse-tap: exchange %zu: %s\n", i + 1,
                    rc == TSE_ERR_IO ? "no answer (card gone?)" : tse_strerror(rc));
            return 1;
        }
        if (!a->quiet)
            print_hex(a->out, "<-", r, rlen);
        if (arrow) {
            int m = tse_expect_match(arrow + 2, r, rlen);
            if (m != 1) {
                fprintf(stderr, "tse-tap: exchange %zu: %s '%s'\n", i + 1,
                        m < 0 ? "malformed pattern" : "answer does not match", arrow + 2);
                failures++;
            }
        }
    }
    return failures ? 1 : 0;
}

const struct tap_txn tap_txn_apdu = {
    .name = "apdu",
    .summary = "exchange the --apdu list in order (HEX or HEX=>PATTERN, apdu-shell patterns)",
    .run = run_apdus,
};

/* ---- apdu-shell scripts on the tapped card ---------------------------------------------- */

/* The script engine sees the tapped card as a target with one interface; "power on" is a
 * new activation, "power off" a release. */
struct tap_target {
    struct tse_tap *tap;
    bool active;
};

static int tt_power_on(void *p, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    (void)iface;
    struct tap_target *t = p;
    if (t->active)
        tse_tap_release(t->tap);
    struct tse_pn532_card_info k;
    int rc = tse_tap_activate(t->tap, &k);
    t->active = rc == 0;
    if (rc)
        return rc;
    if (cap < k.ats_len)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(atr, k.ats, k.ats_len);
    *len = k.ats_len;
    return 0;
}

static int tt_power_off(void *p, int iface)
{
    (void)iface;
    struct tap_target *t = p;
    if (t->active)
        tse_tap_release(t->tap);
    t->active = false;
    return 0;
}

static bool tt_is_powered(void *p, int iface)
{
    (void)iface;
    return ((struct tap_target *)p)->active;
}

static int tt_transmit(void *p, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                       size_t *rlen)
{
    (void)iface;
    struct tap_target *t = p;
    if (!t->active)
        return TSE_ERR_POWERED_OFF;
    return tse_tap_transmit(t->tap, NULL, c, clen, r, rcap, rlen);
}

static int tt_cl_params(void *p, struct tse_cl_params *out)
{
    const struct tse_pn532_card_info *k = tse_tap_card(((struct tap_target *)p)->tap);
    memset(out, 0, sizeof(*out));
    memcpy(out->uid, k->uid, k->uid_len);
    out->uid_len = k->uid_len;
    memcpy(out->atqa, k->atqa, 2);
    out->sak = k->sak;
    out->ats_len = k->ats_len < sizeof(out->ats) ? k->ats_len : sizeof(out->ats);
    memcpy(out->ats, k->ats, out->ats_len);
    return 0;
}

static const struct tse_target_ops tap_target_ops = {
    .name = "tapped card",
    .power_on = tt_power_on,
    .power_off = tt_power_off,
    .reset = tt_power_on,
    .is_powered = tt_is_powered,
    .transmit = tt_transmit,
    .cl_params = tt_cl_params,
};

static int run_script(struct tse_tap *tap, const struct tap_args *a)
{
    if (!a->script) {
        fprintf(stderr, "tse-tap: the script transaction needs -f SCRIPT\n");
        return 1;
    }
    struct tap_target t = {.tap = tap, .active = true};
    struct tse_script_opts so = {.out = a->quiet ? NULL : a->out, .auto_power = true};
    FILE *devnull = NULL;
    if (a->quiet) {
        devnull = fopen("/dev/null", "w");
        so.out = devnull;
    }
    struct tse_script *s = tse_script_new(&tap_target_ops, &t, &so);
    if (!s) {
        if (devnull)
            fclose(devnull);
        return 1;
    }
    int r = tse_script_run_file(s, a->script);
    tse_script_free(s);
    if (devnull)
        fclose(devnull);
    if (r < 0)
        fprintf(stderr, "tse-tap: cannot read %s\n", a->script);
    return r != 0;
}

const struct tap_txn tap_txn_script = {
    .name = "script",
    .summary = "run the apdu-shell script -f SCRIPT on the tapped card (expectations checked)",
    .run = run_script,
};
