/* SPDX-License-Identifier: Apache-2.0 */
/* Card profile reader: an INI-style text file, documented in docs/profile.md. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cos/profile_internal.h"
#include "tse/applet.h"
#include "tse/error.h"
#include "tse/profile.h"

static const char DEFAULT_PROFILE[] =
    "# tse built-in default card profile (docs/profile.md)\n"
    "[card]\n"
    "name = tse default\n"
    "life_cycle = SECURED\n"
    "persistent_memory = 256K\n"
    "transient_memory = 8K\n"
    "commit_buffer = 8K\n"
    "logical_channels = 20\n"
    "fsync = off\n"
    "\n"
    "[contact]\n"
    "# T=1 only (TD1 = 81), IFSC 254, historical bytes \"tse-card\"\n"
    "atr = 3BF81300008131FE45 7473652D63617264 BB\n"
    "\n"
    "[contactless]\n"
    "uid = 08747365\n"
    "atqa = 0004\n"
    "sak = 20\n"
    "ats = 0578807002\n"
    "registry = on\n"
    "\n"
    "[isd]\n"
    "aid = A000000151000000\n"
    "\n"
    "[keyset]\n"
    "kvn = 0x30\n"
    "scp = 03\n"
    "i = 70\n"
    "type = aes\n"
    "key = 404142434445464748494A4B4C4D4E4F\n"
    "\n"
    "[identity]\n"
    "cplc = 5453 0001 5453 6331 0001 6330 00000001 0001 5453 6331 5453 6331 0000 0000"
    " 00000000 0000 0000 00000000\n"
    "iin = 00000001\n"
    "cin = 0000000000000001\n"
    "\n"
    "[counters]\n"
    "scp02_sequence = 0 max 0xFFFF\n"
    "scp03_sequence = 0 max 0xFFFFFF\n"
    "dm_confirmation = 0 max 0xFFFF\n"
    "\n"
    "[instance diag]\n"
    "package = F0747365444941\n"
    "module = F074736544494101\n"
    "aid = F074736544494101\n";

const char *tse_profile_default_text(void)
{
    return DEFAULT_PROFILE;
}

const char *tse_life_cycle_name(enum tse_life_cycle lc)
{
    switch (lc) {
    case TSE_LC_OP_READY:
        return "OP_READY";
    case TSE_LC_INITIALIZED:
        return "INITIALIZED";
    case TSE_LC_SECURED:
        return "SECURED";
    case TSE_LC_CARD_LOCKED:
        return "CARD_LOCKED";
    case TSE_LC_TERMINATED:
        return "TERMINATED";
    }
    return "?";
}

int tse_atr_check(const uint8_t *atr, size_t len, unsigned *protocols)
{
    if (len < 2 || len > TSE_ATR_MAX || (atr[0] != 0x3B && atr[0] != 0x3F))
        return TSE_ERR_PARSE;
    size_t pos = 1;
    uint8_t y = atr[1] >> 4, k = atr[1] & 0x0F;
    unsigned prot = 0;
    bool explicit_prot = false;
    pos = 2;
    for (int level = 1;; level++) {
        for (int bit = 0; bit < 3; bit++)
            if (y & (1u << bit))
                pos++;
        if (!(y & 0x8))
            break;
        if (pos >= len)
            return TSE_ERR_PARSE;
        uint8_t td = atr[pos++];
        prot |= 1u << (td & 0x0F);
        explicit_prot = true;
        y = td >> 4;
        if (level > 8)
            return TSE_ERR_PARSE;
    }
    if (!explicit_prot)
        prot = 1; /* T=0 is implicit */
    pos += k;
    bool need_tck = (prot & ~1u) != 0;
    if (need_tck) {
        if (pos + 1 != len)
            return TSE_ERR_PARSE;
        uint8_t x = 0;
        for (size_t i = 1; i < len; i++)
            x ^= atr[i];
        if (x != 0)
            return TSE_ERR_PARSE; /* TCK makes the XOR of T0..TCK zero */
    } else if (pos != len) {
        return TSE_ERR_PARSE;
    }
    if (protocols)
        *protocols = prot;
    return 0;
}

int tse_ats_check(const uint8_t *ats, size_t len)
{
    if (len < 1 || len > TSE_ATS_MAX || ats[0] != len)
        return TSE_ERR_PARSE;
    if (len == 1)
        return 0;
    uint8_t t0 = ats[1];
    if (t0 & 0x80)
        return TSE_ERR_PARSE;
    size_t need = 2 + !!(t0 & 0x10) + !!(t0 & 0x20) + !!(t0 & 0x40);
    return len >= need ? 0 : TSE_ERR_PARSE;
}

/* ---- parser ---------------------------------------------------------------------------- */

struct parser {
    struct tse_profile *p;
    const char *name;
    unsigned line;
    char *err;
    size_t errlen;
    enum {
        S_NONE,
        S_CARD,
        S_CONTACT,
        S_CL,
        S_ISD,
        S_KEYSET,
        S_IDENTITY,
        S_COUNTERS,
        S_DET,
        S_INSTANCE
    } sect;
    bool keyset_has_type;
};

static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->name, ps->line);
        if (n > 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return TSE_ERR_PROFILE;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Unsigned number: decimal or 0x hex, optional K/M suffix (x1024). */
static int parse_num(const char *v, uint64_t max, uint64_t *out)
{
    if (!*v || *v == '-' || *v == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno || end == v)
        return -1;
    if (*end == 'K' || *end == 'k') {
        n *= 1024;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        n *= 1024 * 1024;
        end++;
    }
    if (*end || n > max)
        return -1;
    *out = n;
    return 0;
}

static int hexval_fixed(struct parser *ps, const char *key, const char *v, uint8_t *out, size_t cap,
                        size_t *len, size_t min, size_t max)
{
    int n = tse_hex_decode(v, out, cap);
    if (n < 0)
        return fail(ps, "%s: expected hex bytes", key);
    if ((size_t)n < min || (size_t)n > max) {
        if (min == max)
            return fail(ps, "%s: expected %zu bytes, got %d", key, min, n);
        return fail(ps, "%s: expected %zu to %zu bytes, got %d", key, min, max, n);
    }
    if (len)
        *len = (size_t)n;
    return 0;
}

static int aid_value(struct parser *ps, const char *key, const char *v, struct tse_aid *aid)
{
    size_t n = 0;
    uint8_t b[TSE_AID_MAX];
    int rc = hexval_fixed(ps, key, v, b, sizeof(b), &n, TSE_AID_MIN, TSE_AID_MAX);
    if (rc == 0)
        tse_aid_set(aid, b, n);
    return rc;
}

static int bool_value(struct parser *ps, const char *key, const char *v, int *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else
        return fail(ps, "%s: expected on or off, got '%s'", key, v);
    return 0;
}

/* rom_packages = all | none | list of package names or AIDs (space or comma separated) */
static int rom_value(struct parser *ps, const char *key, const char *v)
{
    struct tse_profile *p = ps->p;
    p->rom_all = !strcmp(v, "all");
    p->n_rom = 0;
    if (p->rom_all || !strcmp(v, "none"))
        return 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *w = strtok_r(buf, " ,\t", &save); w;
         w = strtok_r(NULL, " ,\t", &save)) {
        if (p->n_rom == sizeof(p->rom) / sizeof(p->rom[0]))
            return fail(ps, "%s: at most %zu packages", key, sizeof(p->rom) / sizeof(p->rom[0]));
        const struct tse_package_def *pd = NULL;
        for (size_t i = 0; tse_native_packages[i] && !pd; i++)
            if (!strcmp(tse_native_packages[i]->name, w))
                pd = tse_native_packages[i];
        struct tse_aid a;
        if (pd) {
            tse_aid_set(&a, pd->aid, pd->aid_len);
        } else {
            uint8_t b[TSE_AID_MAX];
            int n = tse_hex_decode(w, b, sizeof(b));
            if (n < TSE_AID_MIN || tse_aid_set(&a, b, (size_t)n) != 0 || !tse_package_find(&a))
                return fail(ps, "%s: '%s' is not a native package of this build (see tse-cap list)",
                            key, w);
        }
        p->rom[p->n_rom++] = a;
    }
    return 0;
}

static int num_value(struct parser *ps, const char *key, const char *v, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    if (parse_num(v, max, out) != 0 || *out < min)
        return fail(ps, "%s: expected a number from %llu to %llu, got '%s'", key,
                    (unsigned long long)min, (unsigned long long)max, v);
    return 0;
}

static int parse_time(const char *v, int64_t *out)
{
    int Y, M, D, h, m, s;
    char z;
    if (sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d%c", &Y, &M, &D, &h, &m, &s, &z) == 7 && z == 'Z') {
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60 || Y < 1970)
            return -1;
        struct tm tm = {.tm_year = Y - 1900,
                        .tm_mon = M - 1,
                        .tm_mday = D,
                        .tm_hour = h,
                        .tm_min = m,
                        .tm_sec = s};
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        *out = (int64_t)t;
        return 0;
    }
    uint64_t n;
    if (parse_num(v, INT64_MAX, &n) != 0)
        return -1;
    *out = (int64_t)n;
    return 0;
}

static int key_card(struct parser *ps, const char *k, const char *v)
{
    struct tse_profile *p = ps->p;
    uint64_t n;
    int rc;
    if (!strcmp(k, "name")) {
        if (strlen(v) >= sizeof(p->name))
            return fail(ps, "name: longer than %zu characters", sizeof(p->name) - 1);
        strcpy(p->name, v);
        return 0;
    }
    if (!strcmp(k, "life_cycle")) {
        static const enum tse_life_cycle all[] = {TSE_LC_OP_READY, TSE_LC_INITIALIZED,
                                                  TSE_LC_SECURED, TSE_LC_CARD_LOCKED,
                                                  TSE_LC_TERMINATED};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            if (!strcasecmp(v, tse_life_cycle_name(all[i]))) {
                p->life_cycle = all[i];
                return 0;
            }
        return fail(ps,
                    "life_cycle: expected OP_READY, INITIALIZED, SECURED, CARD_LOCKED or "
                    "TERMINATED, got '%s'",
                    v);
    }
    if (!strcmp(k, "persistent_memory")) {
        if ((rc = num_value(ps, k, v, 4096, 64u * 1024 * 1024, &n)))
            return rc;
        p->persistent_memory = (uint32_t)n;
        return 0;
    }
    if (!strcmp(k, "transient_memory")) {
        if ((rc = num_value(ps, k, v, 256, 16u * 1024 * 1024, &n)))
            return rc;
        p->transient_memory = (uint32_t)n;
        return 0;
    }
    if (!strcmp(k, "commit_buffer")) {
        if ((rc = num_value(ps, k, v, 256, 16u * 1024 * 1024, &n)))
            return rc;
        p->commit_buffer = (uint32_t)n;
        return 0;
    }
    if (!strcmp(k, "logical_channels")) {
        if ((rc = num_value(ps, k, v, 1, 20, &n)))
            return rc;
        p->logical_channels = (uint8_t)n;
        return 0;
    }
    if (!strcmp(k, "fsync"))
        return bool_value(ps, k, v, &p->fsync);
    if (!strcmp(k, "rom_packages"))
        return rom_value(ps, k, v);
    return fail(ps, "unknown key '%s' in [card]", k);
}

static int key_isd(struct parser *ps, const char *k, const char *v)
{
    if (!strcmp(k, "aid"))
        return aid_value(ps, k, v, &ps->p->isd_aid);
    if (!strcmp(k, "management_level")) {
        static const struct {
            const char *name;
            uint8_t level;
        } levels[] = {{"mac", 0x01},
                      {"mac+enc", 0x03},
                      {"mac+enc+rmac", 0x13},
                      {"mac+rmac", 0x11},
                      {"all", 0x33}};
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
            if (!strcmp(v, levels[i].name)) {
                ps->p->management_level = levels[i].level;
                return 0;
            }
        return fail(ps,
                    "management_level: expected mac, mac+enc, mac+rmac, mac+enc+rmac or all, "
                    "got '%s'",
                    v);
    }
    if (!strcmp(k, "token_key"))
        return hexval_fixed(ps, k, v, ps->p->token_n, sizeof(ps->p->token_n), &ps->p->token_n_len,
                            64, sizeof(ps->p->token_n));
    if (!strcmp(k, "token_key_exponent"))
        return hexval_fixed(ps, k, v, ps->p->token_e, sizeof(ps->p->token_e), &ps->p->token_e_len,
                            1, sizeof(ps->p->token_e));
    if (!strcmp(k, "dap_key"))
        return hexval_fixed(ps, k, v, ps->p->dap_n, sizeof(ps->p->dap_n), &ps->p->dap_n_len, 64,
                            sizeof(ps->p->dap_n));
    if (!strcmp(k, "dap_key_exponent"))
        return hexval_fixed(ps, k, v, ps->p->dap_e, sizeof(ps->p->dap_e), &ps->p->dap_e_len, 1,
                            sizeof(ps->p->dap_e));
    if (!strcmp(k, "receipt_key")) {
        int rc = hexval_fixed(ps, k, v, ps->p->receipt_key, sizeof(ps->p->receipt_key),
                              &ps->p->receipt_key_len, 16, 32);
        if (!rc && ps->p->receipt_key_len != 16 && ps->p->receipt_key_len != 24 &&
            ps->p->receipt_key_len != 32)
            return fail(ps, "receipt_key: 16, 24 or 32 bytes, got %zu", ps->p->receipt_key_len);
        return rc;
    }
    if (!strcmp(k, "receipt_key_type")) {
        if (strcmp(v, "aes") && strcmp(v, "3des"))
            return fail(ps, "receipt_key_type: expected aes or 3des, got '%s'", v);
        ps->p->receipt_aes = !strcmp(v, "aes");
        return 0;
    }
    return fail(ps, "unknown key '%s' in [isd]", k);
}

static int key_contact(struct parser *ps, const char *k, const char *v)
{
    if (strcmp(k, "atr"))
        return fail(ps, "unknown key '%s' in [contact]", k);
    int rc =
        hexval_fixed(ps, k, v, ps->p->atr, sizeof(ps->p->atr), &ps->p->atr_len, 2, TSE_ATR_MAX);
    if (rc)
        return rc;
    if (tse_atr_check(ps->p->atr, ps->p->atr_len, NULL) != 0)
        return fail(ps, "atr: not a valid ISO 7816-3 ATR (structure, length or TCK)");
    return 0;
}

static int key_cl(struct parser *ps, const char *k, const char *v)
{
    struct tse_profile *p = ps->p;
    if (!strcmp(k, "uid")) {
        int rc = hexval_fixed(ps, k, v, p->uid, sizeof(p->uid), &p->uid_len, 4, 10);
        if (rc == 0 && p->uid_len != 4 && p->uid_len != 7 && p->uid_len != 10)
            return fail(ps, "uid: ISO 14443-3 UIDs have 4, 7 or 10 bytes, got %zu", p->uid_len);
        return rc;
    }
    if (!strcmp(k, "atqa"))
        return hexval_fixed(ps, k, v, p->atqa, 2, NULL, 2, 2);
    if (!strcmp(k, "sak"))
        return hexval_fixed(ps, k, v, &p->sak, 1, NULL, 1, 1);
    if (!strcmp(k, "ats")) {
        int rc = hexval_fixed(ps, k, v, p->ats, sizeof(p->ats), &p->ats_len, 1, TSE_ATS_MAX);
        if (rc == 0 && tse_ats_check(p->ats, p->ats_len) != 0)
            return fail(ps, "ats: TL must equal the ATS length and T0 must match TA/TB/TC");
        return rc;
    }
    if (!strcmp(k, "registry"))
        return bool_value(ps, k, v, &p->cl_registry);
    return fail(ps, "unknown key '%s' in [contactless]", k);
}

static int key_keyset(struct parser *ps, const char *k, const char *v)
{
    struct tse_keyset *ks = &ps->p->keysets[ps->p->n_keysets - 1];
    uint64_t n;
    int rc;
    if (!strcmp(k, "kvn")) {
        if ((rc = num_value(ps, k, v, 1, 0x7F, &n)))
            return rc;
        ks->kvn = (uint8_t)n;
        return 0;
    }
    if (!strcmp(k, "scp")) {
        if (!strcmp(v, "02") || !strcmp(v, "2"))
            ks->scp = 2;
        else if (!strcmp(v, "03") || !strcmp(v, "3"))
            ks->scp = 3;
        else
            return fail(ps, "scp: expected 02 or 03, got '%s'", v);
        if (!ps->keyset_has_type)
            ks->type = ks->scp == 2 ? TSE_KEY_DES3 : TSE_KEY_AES;
        return 0;
    }
    if (!strcmp(k, "i"))
        return hexval_fixed(ps, k, v, &ks->i, 1, NULL, 1, 1);
    if (!strcmp(k, "max_failures")) {
        if ((rc = num_value(ps, k, v, 0, 255, &n)))
            return rc;
        ks->max_failures = (uint8_t)n;
        return 0;
    }
    if (!strcmp(k, "type")) {
        if (!strcasecmp(v, "aes"))
            ks->type = TSE_KEY_AES;
        else if (!strcasecmp(v, "3des") || !strcasecmp(v, "des3") || !strcasecmp(v, "des"))
            ks->type = TSE_KEY_DES3;
        else
            return fail(ps, "type: expected aes or 3des, got '%s'", v);
        ps->keyset_has_type = true;
        return 0;
    }
    uint8_t *dst[3];
    size_t nd = 0;
    if (!strcmp(k, "key")) {
        dst[0] = ks->enc, dst[1] = ks->mac, dst[2] = ks->dek;
        nd = 3;
    } else if (!strcmp(k, "enc") || !strcmp(k, "mac") || !strcmp(k, "dek")) {
        dst[0] = k[0] == 'e' ? ks->enc : k[0] == 'm' ? ks->mac : ks->dek;
        nd = 1;
    } else {
        return fail(ps, "unknown key '%s' in [keyset]", k);
    }
    uint8_t key[32];
    size_t len = 0; /* set by hexval_fixed on success; -O3 cannot see it */
    if ((rc = hexval_fixed(ps, k, v, key, sizeof(key), &len, 16, 32)))
        return rc;
    if (len != 16 && len != 24 && len != 32)
        return fail(ps, "%s: keys have 16, 24 or 32 bytes, got %zu", k, len);
    if (ks->key_len && ks->key_len != len)
        return fail(ps, "%s: all keys of a key set must have the same length", k);
    ks->key_len = (uint8_t)len;
    for (size_t i = 0; i < nd; i++)
        memcpy(dst[i], key, len);
    return 0;
}

static int key_identity(struct parser *ps, const char *k, const char *v)
{
    struct tse_profile *p = ps->p;
    if (!strcmp(k, "cplc"))
        return hexval_fixed(ps, k, v, p->cplc, sizeof(p->cplc), NULL, 42, 42);
    if (!strcmp(k, "iin"))
        return hexval_fixed(ps, k, v, p->iin, sizeof(p->iin), &p->iin_len, 1, sizeof(p->iin));
    if (!strcmp(k, "cin"))
        return hexval_fixed(ps, k, v, p->cin, sizeof(p->cin), &p->cin_len, 1, sizeof(p->cin));
    return fail(ps, "unknown key '%s' in [identity]", k);
}

static int key_counter(struct parser *ps, const char *k, char *v)
{
    struct tse_profile *p = ps->p;
    if (strlen(k) >= sizeof(p->counters[0].name))
        return fail(ps, "counter name '%s' is too long", k);
    for (size_t i = 0; i < p->n_counters; i++)
        if (!strcmp(p->counters[i].name, k))
            return fail(ps, "counter '%s' defined twice", k);
    if (p->n_counters == TSE_MAX_COUNTERS)
        return fail(ps, "too many counters (at most %d)", TSE_MAX_COUNTERS);
    struct tse_profile_counter *c = &p->counters[p->n_counters];
    c->max = UINT32_MAX;
    char *maxp = strstr(v, " max ");
    if (maxp) {
        *maxp = '\0';
        if (parse_num(trim(maxp + 5), UINT64_MAX, &c->max) != 0)
            return fail(ps, "%s: bad max value", k);
    }
    if (parse_num(trim(v), c->max, &c->value) != 0)
        return fail(ps, "%s: expected 'VALUE [max MAX]' with VALUE <= MAX", k);
    strcpy(c->name, k);
    p->n_counters++;
    return 0;
}

static int key_det(struct parser *ps, const char *k, const char *v)
{
    struct tse_profile *p = ps->p;
    if (!strcmp(k, "seed")) {
        p->deterministic = 1;
        return hexval_fixed(ps, k, v, p->seed, sizeof(p->seed), &p->seed_len, 1, 32);
    }
    if (!strcmp(k, "clock")) {
        if (parse_time(v, &p->clock) != 0)
            return fail(ps, "clock: expected YYYY-MM-DDTHH:MM:SSZ or Unix seconds");
        p->deterministic = 1;
        return 0;
    }
    return fail(ps, "unknown key '%s' in [deterministic]", k);
}

static int key_instance(struct parser *ps, const char *k, const char *v)
{
    struct tse_profile_instance *in = &ps->p->instances[ps->p->n_instances - 1];
    uint64_t n;
    int rc;
    if (!strcmp(k, "package"))
        return aid_value(ps, k, v, &in->package);
    if (!strcmp(k, "module"))
        return aid_value(ps, k, v, &in->module);
    if (!strcmp(k, "aid"))
        return aid_value(ps, k, v, &in->instance);
    if (!strcmp(k, "params"))
        return hexval_fixed(ps, k, v, in->params, sizeof(in->params), &in->params_len, 0,
                            sizeof(in->params));
    if (!strcmp(k, "default")) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", v);
        in->default_on = 0;
        for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
            if (!strcmp(tok, "contact"))
                in->default_on |= 1;
            else if (!strcmp(tok, "contactless"))
                in->default_on |= 2;
            else if (strcmp(tok, "none"))
                return fail(ps, "default: expected contact, contactless or none, got '%s'", tok);
        }
        return 0;
    }
    if (!strcmp(k, "contactless")) {
        if (!strcmp(v, "activated"))
            in->contactless = TSE_CL_ACTIVATED;
        else if (!strcmp(v, "deactivated"))
            in->contactless = TSE_CL_DEACTIVATED;
        else if (!strcmp(v, "off"))
            in->contactless = TSE_CL_OFF;
        else
            return fail(ps, "contactless: expected activated, deactivated or off, got '%s'", v);
        return 0;
    }
    if (!strcmp(k, "contactless_label")) {
        size_t l = strlen(v);
        if (l > TSE_CL_LABEL_MAX)
            return fail(ps, "contactless_label: at most %d characters, got %zu", TSE_CL_LABEL_MAX,
                        l);
        for (size_t i = 0; i < l; i++)
            if (v[i] < 0x20 || v[i] > 0x7E)
                return fail(ps, "contactless_label: printable ASCII only");
        strcpy(in->contactless_label, v);
        return 0;
    }
    if (!strcmp(k, "contactless_priority")) {
        if ((rc = num_value(ps, k, v, 1, 15, &n)))
            return rc;
        in->contactless_priority = (uint8_t)n;
        return 0;
    }
    if (!strcmp(k, "contactless_default")) {
        int on;
        if ((rc = bool_value(ps, k, v, &on)))
            return rc;
        in->default_on = (uint8_t)(on ? in->default_on | 2u : in->default_on & ~2u);
        return 0;
    }
    if (!strcmp(k, "contactless_ppse_aid"))
        return aid_value(ps, k, v, &in->contactless_ppse_aid);
    if (!strcmp(k, "persistent_quota")) {
        if ((rc = num_value(ps, k, v, 0, UINT32_MAX, &n)))
            return rc;
        in->persistent_quota = (uint32_t)n;
        return 0;
    }
    if (!strcmp(k, "transient_quota")) {
        if ((rc = num_value(ps, k, v, 0, UINT32_MAX, &n)))
            return rc;
        in->transient_quota = (uint32_t)n;
        return 0;
    }
    return fail(ps, "unknown key '%s' in [instance]", k);
}

static int section(struct parser *ps, char *name)
{
    struct tse_profile *p = ps->p;
    char *arg = strchr(name, ' ');
    if (arg) {
        *arg++ = '\0';
        arg = trim(arg);
    }
    if (!strcmp(name, "instance")) {
        if (!arg || !*arg || strlen(arg) >= sizeof(p->instances[0].name))
            return fail(ps, "[instance NAME] needs a name of at most 31 characters");
        if (p->n_instances == TSE_MAX_INSTANCES)
            return fail(ps, "too many instances (at most %d)", TSE_MAX_INSTANCES);
        struct tse_profile_instance *in = &p->instances[p->n_instances++];
        memset(in, 0, sizeof(*in));
        strcpy(in->name, arg);
        ps->sect = S_INSTANCE;
        return 0;
    }
    if (arg)
        return fail(ps, "section [%s] takes no argument", name);
    if (!strcmp(name, "card"))
        ps->sect = S_CARD;
    else if (!strcmp(name, "contact"))
        ps->sect = S_CONTACT;
    else if (!strcmp(name, "contactless"))
        ps->sect = S_CL;
    else if (!strcmp(name, "isd"))
        ps->sect = S_ISD;
    else if (!strcmp(name, "identity"))
        ps->sect = S_IDENTITY;
    else if (!strcmp(name, "counters"))
        ps->sect = S_COUNTERS;
    else if (!strcmp(name, "deterministic"))
        ps->sect = S_DET;
    else if (!strcmp(name, "keyset")) {
        if (p->n_keysets == TSE_MAX_KEYSETS)
            return fail(ps, "too many key sets (at most %d)", TSE_MAX_KEYSETS);
        struct tse_keyset *ks = &p->keysets[p->n_keysets++];
        memset(ks, 0, sizeof(*ks));
        ks->scp = 3;
        ks->i = 0x70;
        ks->type = TSE_KEY_AES;
        ps->keyset_has_type = false;
        ps->sect = S_KEYSET;
    } else
        return fail(ps, "unknown section [%s]", name);
    return 0;
}

static int finish(struct parser *ps)
{
    struct tse_profile *p = ps->p;
    ps->line = 0;
    for (size_t i = 0; i < p->n_keysets; i++) {
        struct tse_keyset *ks = &p->keysets[i];
        if (!ks->kvn || !ks->key_len)
            return fail(ps, "key set %zu needs kvn and keys (key, or enc/mac/dek)", i + 1);
        if (ks->type == TSE_KEY_DES3 && ks->key_len != 16)
            return fail(ps, "key set %zu: 3DES keys have 16 bytes", i + 1);
        for (size_t j = 0; j < i; j++)
            if (p->keysets[j].kvn == ks->kvn)
                return fail(ps, "key version 0x%02X defined twice", ks->kvn);
    }
    for (size_t i = 0; i < p->n_instances; i++) {
        struct tse_profile_instance *in = &p->instances[i];
        if (!in->package.len || !in->module.len)
            return fail(ps, "[instance %s] needs package and module", in->name);
        if (!in->instance.len)
            in->instance = in->module;
        for (size_t j = 0; j < i; j++)
            if (tse_aid_equal(&p->instances[j].instance, &in->instance))
                return fail(ps, "[instance %s] has the same AID as [instance %s]", in->name,
                            p->instances[j].name);
        /* several may be implicitly selectable on contactless: the registry order decides */
        for (size_t j = 0; j < i; j++)
            if (p->instances[j].default_on & in->default_on & 1u)
                return fail(ps,
                            "[instance %s] and [instance %s] are both default on the contact "
                            "interface",
                            p->instances[j].name, in->name);
        const struct tse_aid *pa = &in->contactless_ppse_aid;
        if (pa->len && !tse_aid_has_prefix(&in->instance, pa->b, pa->len))
            return fail(ps, "[instance %s]: contactless_ppse_aid must be a prefix of its aid",
                        in->name);
    }
    if (p->deterministic && !p->seed_len)
        return fail(ps, "[deterministic] needs a seed");
    /* A card always has keys: without a [keyset] it gets the default test key set. */
    if (p->n_keysets == 0) {
        struct tse_keyset *ks = &p->keysets[p->n_keysets++];
        memset(ks, 0, sizeof(*ks));
        ks->kvn = 0x30;
        ks->scp = 3;
        ks->i = 0x70;
        ks->type = TSE_KEY_AES;
        ks->key_len = 16;
        for (int b = 0; b < 16; b++)
            ks->enc[b] = ks->mac[b] = ks->dek[b] = (uint8_t)(0x40 + b);
    }
    /* The secure channels need their sequence counters even when a profile names none. */
    static const struct tse_profile_counter seqs[] = {{"scp02_sequence", 0, 0xFFFF},
                                                      {"scp03_sequence", 0, 0xFFFFFF},
                                                      {"dm_confirmation", 0, 0xFFFF}};
    if (!p->receipt_aes && p->receipt_key_len && p->receipt_key_len != 16)
        return fail(ps, "receipt_key_type 3des needs a 16-byte (2-key) receipt_key");
    for (size_t k = 0; k < 3; k++) {
        bool have = false;
        for (size_t i = 0; i < p->n_counters; i++)
            have |= strcmp(p->counters[i].name, seqs[k].name) == 0;
        if (!have) {
            if (p->n_counters == TSE_MAX_COUNTERS)
                return fail(ps, "no room for counter %s (at most %d counters)", seqs[k].name,
                            TSE_MAX_COUNTERS);
            p->counters[p->n_counters++] = seqs[k];
        }
    }
    return 0;
}

static void defaults(struct tse_profile *p)
{
    memset(p, 0, sizeof(*p));
    strcpy(p->name, "unnamed");
    p->life_cycle = TSE_LC_SECURED;
    p->persistent_memory = 256 * 1024;
    p->transient_memory = 8 * 1024;
    p->commit_buffer = 8 * 1024;
    p->logical_channels = 20;
    p->rom_all = 1;
    p->management_level = 0x01;
    p->receipt_aes = 1;
    p->token_e[0] = 0x01;
    p->token_e[1] = 0x00;
    p->token_e[2] = 0x01;
    p->token_e_len = 3;
    memcpy(p->dap_e, p->token_e, 3);
    p->dap_e_len = 3;
    static const uint8_t atr[] = {0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45,
                                  't',  's',  'e',  '-',  'c',  'a',  'r',  'd',  0xBB};
    memcpy(p->atr, atr, sizeof(atr));
    p->atr_len = sizeof(atr);
    static const uint8_t uid[] = {0x08, 0x74, 0x73, 0x65};
    memcpy(p->uid, uid, sizeof(uid));
    p->uid_len = sizeof(uid);
    p->atqa[1] = 0x04;
    p->sak = 0x20;
    static const uint8_t ats[] = {0x05, 0x78, 0x80, 0x70, 0x02};
    memcpy(p->ats, ats, sizeof(ats));
    p->ats_len = sizeof(ats);
    p->cl_registry = 1;
    static const uint8_t isd[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00};
    tse_aid_set(&p->isd_aid, isd, sizeof(isd));
}

int tse_profile_parse(struct tse_profile *p, const char *text, size_t len, const char *name,
                      char *err, size_t errlen)
{
    if (!p || !text)
        return TSE_ERR_INVALID_ARG;
    defaults(p);
    struct parser ps = {.p = p, .name = name ? name : "profile", .err = err, .errlen = errlen};
    size_t pos = 0;
    char line[1024];
    while (pos < len) {
        ps.line++;
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        size_t ll = e - pos;
        if (ll >= sizeof(line))
            return fail(&ps, "line longer than %zu characters", sizeof(line) - 1);
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos = e + 1;
        if (memchr(line, '\0', ll))
            return fail(&ps, "NUL byte in profile text");
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (!*l)
            continue;
        int rc;
        if (*l == '[') {
            char *close = strchr(l, ']');
            if (!close || close[1])
                return fail(&ps, "malformed section header");
            *close = '\0';
            rc = section(&ps, trim(l + 1));
        } else {
            char *eq = strchr(l, '=');
            if (!eq)
                return fail(&ps, "expected 'key = value' or '[section]'");
            *eq = '\0';
            char *k = trim(l), *v = trim(eq + 1);
            if (!*v)
                return fail(&ps, "%s: empty value", k);
            switch (ps.sect) {
            case S_NONE:
                rc = fail(&ps, "key '%s' outside any section", k);
                break;
            case S_CARD:
                rc = key_card(&ps, k, v);
                break;
            case S_CONTACT:
                rc = key_contact(&ps, k, v);
                break;
            case S_CL:
                rc = key_cl(&ps, k, v);
                break;
            case S_ISD:
                rc = key_isd(&ps, k, v);
                break;
            case S_KEYSET:
                rc = key_keyset(&ps, k, v);
                break;
            case S_IDENTITY:
                rc = key_identity(&ps, k, v);
                break;
            case S_COUNTERS:
                rc = key_counter(&ps, k, v);
                break;
            case S_DET:
                rc = key_det(&ps, k, v);
                break;
            case S_INSTANCE:
                rc = key_instance(&ps, k, v);
                break;
            default:
                rc = TSE_ERR_PROFILE;
            }
        }
        if (rc)
            return rc;
    }
    return finish(&ps);
}

int tse_profile_read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TSE_ERR_IO;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        if (cap >= 1024 * 1024) { /* a profile is a few hundred lines */
            free(buf);
            fclose(f);
            if (err)
                snprintf(err, errlen, "%s: larger than 1 MiB, not a profile", path);
            return TSE_ERR_PROFILE;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (!buf)
        return TSE_ERR_NO_MEMORY;
    if (ioerr) {
        free(buf);
        if (err)
            snprintf(err, errlen, "%s: read error", path);
        return TSE_ERR_IO;
    }
    *text = buf;
    *len = n;
    return 0;
}

int tse_profile_load(struct tse_profile *p, const char *path, char *err, size_t errlen)
{
    if (!path)
        return tse_profile_parse(p, DEFAULT_PROFILE, strlen(DEFAULT_PROFILE), "default", err,
                                 errlen);
    char *text;
    size_t len;
    int rc = tse_profile_read_file(path, &text, &len, err, errlen);
    if (rc)
        return rc;
    rc = tse_profile_parse(p, text, len, path, err, errlen);
    free(text);
    return rc;
}
