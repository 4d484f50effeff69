/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The issuer security domain (ISD): selection and FCI, the data objects host tools read
 * before and while authenticating (CPLC, card data, key information, sequence counter, IIN,
 * CIN, KDD), and secure channel sessions (SCP02/SCP03) per logical channel and interface.
 * The registry and content management come with the card manager (issue #5).
 *
 * Persistent objects: OBJ_KEYS (key sets), OBJ_IDENT (CPLC, IIN, CIN, KDD).
 * Transient: one CLEAR_ON_RESET area per logical channel holding that channel's session; it
 * is cleared by SELECT of another application, deselect, reset, power off and any failed
 * check (tse_scp_* closes the session itself).
 */
#include <string.h>

#include "crypto/crypto_internal.h"

#include "cos/card_internal.h"
#include "gp/gp_internal.h"
#include "tse/scp.h"
#include "tse/sw.h"
#include "tse/tlv.h"

#define OBJ_KEYS  1
#define OBJ_IDENT TSE_GP_OBJ_IDENT
#define OBJ_FAILS 3 /* failed authentications per key set slot */

#define KEYSET_LEN TSE_GP_KEYSET_LEN
#define KS_KEYS    6
#define KEYS_LEN   (1 + TSE_MAX_KEYSETS * KEYSET_LEN)
#define IDENT_LEN  TSE_GP_IDENT_LEN

#define RAM_SESSION0 TSE_GP_RAM_SESSION0

#define INS_INITIALIZE_UPDATE     0x50
#define INS_EXTERNAL_AUTHENTICATE 0x82
#define INS_GET_DATA              0xCA
#define INS_PUT_KEY               0xD8
#define INS_GET_STATUS            0xF2
#define INS_SET_STATUS            0xF0
#define INS_INSTALL               0xE6
#define INS_DELETE                0xE4
#define INS_LOAD                  0xE8
#define INS_STORE_DATA            0xE2
#define INS_SELECT                0xA4

/* GlobalPlatform OIDs used in card recognition data (GP 2.3.1 card spec, §H.2). */
static const uint8_t OID_GP[] = {0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B};

/* ---- install parameters --------------------------------------------------------------------- */

size_t tse_isd_params(const struct tse_profile *p, uint8_t *out, size_t cap)
{
    size_t need = 1 + IDENT_LEN + 1 + p->n_keysets * KEYSET_LEN;
    if (cap < need)
        return 0;
    size_t n = 0;
    out[n++] = (uint8_t)p->life_cycle;
    memcpy(out + n, p->cplc, 42);
    n += 42;
    out[n++] = (uint8_t)p->iin_len;
    memcpy(out + n, p->iin, 16);
    n += 16;
    out[n++] = (uint8_t)p->cin_len;
    memcpy(out + n, p->cin, 16);
    n += 16;
    /* key diversification data: IC fabricator, IC type, IC serial and batch from the CPLC */
    memcpy(out + n, p->cplc, 4);
    memcpy(out + n + 4, p->cplc + 12, 6);
    n += 10;
    out[n++] = (uint8_t)p->n_keysets;
    for (size_t i = 0; i < p->n_keysets; i++) {
        const struct tse_keyset *k = &p->keysets[i];
        out[n++] = k->kvn;
        out[n++] = k->scp;
        out[n++] = k->i;
        out[n++] = (uint8_t)k->type;
        out[n++] = k->key_len;
        out[n++] = k->max_failures;
        memcpy(out + n, k->enc, 32);
        memcpy(out + n + 32, k->mac, 32);
        memcpy(out + n + 64, k->dek, 32);
        n += 96;
    }
    return n;
}

static uint16_t isd_install(struct tse_ctx *ctx, const uint8_t *params, size_t len)
{
    if (len < 1 + IDENT_LEN + 1)
        return SW_WRONG_DATA;
    size_t nk = params[1 + IDENT_LEN];
    if (nk > TSE_MAX_KEYSETS || len != 1 + IDENT_LEN + 1 + nk * KEYSET_LEN)
        return SW_WRONG_DATA;
    const uint8_t *p;
    int rc = tse_ctx_pmem_get(ctx, OBJ_IDENT, IDENT_LEN, &p, NULL);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_IDENT, 0, params + 1, IDENT_LEN);
    if (!rc)
        rc = tse_ctx_pmem_get(ctx, OBJ_KEYS, KEYS_LEN, &p, NULL);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_KEYS, 0, params + 1 + IDENT_LEN, 1 + nk * KEYSET_LEN);
    if (!rc)
        rc = tse_ctx_pmem_get(ctx, OBJ_FAILS, TSE_MAX_KEYSETS, &p, NULL);
    return tse_sw_from_err(rc);
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

static const uint8_t *ident(struct tse_ctx *ctx)
{
    const uint8_t *p;
    return tse_ctx_pmem_get(ctx, OBJ_IDENT, 0, &p, NULL) == 0 ? p : NULL;
}

/* Key set by KVN (0 = the first one, the card's default); its slot, or -1. */
static int keyset(struct tse_ctx *ctx, uint8_t kvn, struct tse_scp_keys *k)
{
    const uint8_t *p;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &p, NULL) != 0)
        return -1;
    for (size_t i = 0; i < p[0]; i++) {
        const uint8_t *e = p + 1 + i * KEYSET_LEN;
        if (kvn == 0 || e[0] == kvn) {
            k->kvn = e[0];
            k->scp = e[1];
            k->i = e[2];
            k->key_len = e[4];
            memcpy(k->enc, e + KS_KEYS, 32);
            memcpy(k->mac, e + KS_KEYS + 32, 32);
            memcpy(k->dek, e + KS_KEYS + 64, 32);
            return (int)i;
        }
    }
    return -1;
}

/* Failed authentications of a key set: count, and whether the set is blocked. */
static bool keyset_blocked(struct tse_ctx *ctx, int slot)
{
    const uint8_t *keys, *fails;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &keys, NULL) != 0 ||
        tse_ctx_pmem_get(ctx, OBJ_FAILS, 0, &fails, NULL) != 0)
        return false;
    uint8_t max = keys[1 + slot * KEYSET_LEN + 5];
    return max && fails[slot] >= max;
}

static void count_failure(struct tse_ctx *ctx, int slot, bool failed)
{
    const uint8_t *keys, *fails;
    if (slot < 0 || tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &keys, NULL) != 0 ||
        tse_ctx_pmem_get(ctx, OBJ_FAILS, 0, &fails, NULL) != 0 || !keys[1 + slot * KEYSET_LEN + 5])
        return; /* no limit on this key set: nothing to count */
    uint8_t v = failed ? (uint8_t)(fails[slot] < 255 ? fails[slot] + 1 : 255) : 0;
    if (v != fails[slot]) /* a try counter: never part of (or undone with) a transaction */
        tse_ctx_pmem_write_nonatomic(ctx, OBJ_FAILS, (size_t)slot, &v, 1);
}

static struct tse_scp_session *session(struct tse_ctx *ctx)
{
    uint8_t *m;
    if (tse_ctx_transient(ctx, (uint16_t)(RAM_SESSION0 + tse_ctx_channel(ctx)),
                          sizeof(struct tse_scp_session), TSE_CLEAR_ON_RESET, &m) != 0)
        return NULL;
    return (struct tse_scp_session *)(void *)m;
}

static void end_session(struct tse_ctx *ctx)
{
    /* only an existing session: a SELECT or deselect must not take RAM */
    uint8_t *m;
    if (tse_ctx_transient(ctx, (uint16_t)(RAM_SESSION0 + tse_ctx_channel(ctx)), 0,
                          TSE_CLEAR_ON_RESET, &m) == 0)
        tse_scp_close((struct tse_scp_session *)(void *)m);
}

static const char *counter_name(uint8_t scp)
{
    return scp == 2 ? "scp02_sequence" : "scp03_sequence";
}

/* Append the writer's result to the response. */
static int respond(struct tse_response *r, struct tse_tlv_writer *w)
{
    int n = tse_tlv_finish(w);
    if (n < 0)
        return n;
    r->len += (size_t)n;
    return 0;
}

static void writer(struct tse_tlv_writer *w, struct tse_response *r)
{
    tse_tlv_writer_init(w, r->data + r->len, r->cap - r->len);
}

/* ---- commands
 * ------------------------------------------------------------------------------------ */

static uint16_t fci(struct tse_ctx *ctx, struct tse_response *rsp)
{
    const struct tse_aid *aid = tse_ctx_aid(ctx);
    struct tse_tlv_writer w;
    writer(&w, rsp);
    tse_tlv_begin(&w, 0x6F);
    tse_tlv_put(&w, 0x84, aid->b, aid->len);
    tse_tlv_begin(&w, 0xA5);
    tse_tlv_put_u8(&w, 0x9F65, 0xFF); /* maximum length of command data */
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    return respond(rsp, &w) ? SW_UNKNOWN : SW_NO_ERROR;
}

/* Card recognition data (tag 66 / 73): GP OIDs and the default key set's SCP and i. */
/* An OID {globalPlatform ...} in its tag: 06 L 2A864886FC6B <suffix>. */
static void gp_oid(struct tse_tlv_writer *w, uint32_t outer, const uint8_t *suffix, size_t n)
{
    uint8_t oid[6 + 4];
    memcpy(oid, OID_GP, 6);
    memcpy(oid + 6, suffix, n);
    if (outer)
        tse_tlv_begin(w, outer);
    tse_tlv_put(w, 0x06, oid, 6 + n);
    if (outer)
        tse_tlv_end(w);
}

static int card_data(struct tse_ctx *ctx, struct tse_response *rsp)
{
    struct tse_scp_keys k = {.scp = 3, .i = 0x70};
    (void)keyset(ctx, 0, &k);
    static const uint8_t rid[] = {0x01}, version[] = {0x02, 0x02, 0x03, 0x01}, scheme[] = {0x03};
    const uint8_t scp[] = {0x04, k.scp, k.i};
    struct tse_tlv_writer w;
    writer(&w, rsp);
    tse_tlv_begin(&w, 0x66);
    tse_tlv_begin(&w, 0x73);
    gp_oid(&w, 0, rid, sizeof(rid));            /* card recognition data */
    gp_oid(&w, 0x60, version, sizeof(version)); /* card management: GP 2.3.1 */
    gp_oid(&w, 0x63, scheme, sizeof(scheme));   /* card identification scheme */
    gp_oid(&w, 0x64, scp, sizeof(scp));         /* secure channel protocol and i */
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    return respond(rsp, &w);
}

/* Card capability information (tag 67, GP 2.3 H.4): the secure channel protocols and options
 * this card implements, the privileges it lets SSDs and applications have, LFDB hash
 * algorithms (none: the LOAD hash is checked only for length). */
static int card_capabilities(struct tse_response *rsp)
{
    static const uint8_t scp02_i[] = {0x15, 0x45, 0x55, 0x75};
    static const uint8_t scp03_i[] = {0x00, 0x10, 0x20, 0x30, 0x60, 0x70, 0x71};
    static const uint8_t ssd_priv[] = {0xFF, 0xFE, 0x80}, app_priv[] = {0x1E, 0x02, 0x00};
    struct tse_tlv_writer w;
    writer(&w, rsp);
    tse_tlv_begin(&w, 0x67);
    tse_tlv_begin(&w, 0xA0);
    tse_tlv_put_u8(&w, 0x80, 0x02);
    tse_tlv_put(&w, 0x81, scp02_i, sizeof(scp02_i));
    tse_tlv_end(&w);
    tse_tlv_begin(&w, 0xA0);
    tse_tlv_put_u8(&w, 0x80, 0x03);
    tse_tlv_put(&w, 0x81, scp03_i, sizeof(scp03_i));
    tse_tlv_put_u8(&w, 0x82, 0x07); /* AES-128, -192, -256 */
    tse_tlv_end(&w);
    tse_tlv_put(&w, 0x81, ssd_priv, sizeof(ssd_priv));
    tse_tlv_put(&w, 0x82, app_priv, sizeof(app_priv));
    tse_tlv_end(&w);
    return respond(rsp, &w);
}

/* Key information template (tag E0): one C0 entry per key. */
static int key_info(struct tse_ctx *ctx, struct tse_response *rsp)
{
    const uint8_t *p;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &p, NULL) != 0)
        return TSE_ERR_NOT_FOUND;
    struct tse_tlv_writer w;
    writer(&w, rsp);
    tse_tlv_begin(&w, 0xE0);
    for (size_t i = 0; i < p[0]; i++) {
        const uint8_t *e = p + 1 + i * KEYSET_LEN;
        for (uint8_t kid = 1; kid <= 3; kid++) {
            const uint8_t c0[] = {kid, e[0], e[3] == TSE_KEY_AES ? 0x88 : 0x80, e[4]};
            tse_tlv_put(&w, 0xC0, c0, sizeof(c0));
        }
    }
    tse_tlv_end(&w);
    return respond(rsp, &w);
}

static uint16_t get_data(struct tse_ctx *ctx, const struct tse_apdu *a, struct tse_response *rsp)
{
    const uint8_t *id = ident(ctx);
    if (!id)
        return SW_UNKNOWN;
    uint16_t tag = (uint16_t)(a->p1 << 8 | a->p2);
    struct tse_tlv_writer w;
    writer(&w, rsp);
    int rc = 0;
    switch (tag) {
    case 0x9F7F:
        tse_tlv_put(&w, tag, id, 42);
        break;
    case 0x0066:
        return card_data(ctx, rsp) ? SW_UNKNOWN : SW_NO_ERROR;
    case 0x00E0:
        return key_info(ctx, rsp) ? SW_UNKNOWN : SW_NO_ERROR;
    case 0x0067:
        return card_capabilities(rsp) ? SW_UNKNOWN : SW_NO_ERROR;
    case 0x00C2: { /* confirmation counter of delegated management receipts */
        uint64_t v = 0;
        if (tse_ctx_counter_get(ctx, "dm_confirmation", &v) != 0)
            return SW_REFERENCED_DATA_NOT_FOUND;
        uint8_t c[2] = {(uint8_t)(v >> 8), (uint8_t)v};
        tse_tlv_put(&w, tag, c, 2);
        break;
    }
    case 0x0042:
        tse_tlv_put(&w, tag, id + 43, id[42]);
        break;
    case 0x0045:
        tse_tlv_put(&w, tag, id + 60, id[59]);
        break;
    case 0x00CF:
        tse_tlv_put(&w, tag, id + 76, 10);
        break;
    case 0x00C1: {
        struct tse_scp_keys k;
        uint64_t v = 0;
        if (keyset(ctx, 0, &k) < 0 || tse_ctx_counter_get(ctx, counter_name(k.scp), &v) != 0)
            return SW_REFERENCED_DATA_NOT_FOUND;
        uint8_t c[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        tse_tlv_put(&w, tag, k.scp == 2 ? c + 1 : c, k.scp == 2 ? 2 : 3);
        break;
    }
    default:
        return SW_REFERENCED_DATA_NOT_FOUND;
    }
    if (!rc)
        rc = respond(rsp, &w);
    return rc ? SW_UNKNOWN : SW_NO_ERROR;
}

static uint16_t initialize_update(struct tse_ctx *ctx, const struct tse_apdu *a,
                                  struct tse_response *rsp)
{
    struct tse_scp_session *s = session(ctx);
    if (!s)
        return SW_FILE_FULL;
    tse_scp_close(s); /* a new INITIALIZE UPDATE ends any session on this channel */
    struct tse_scp_keys k;
    int slot = keyset(ctx, a->p1, &k);
    if (slot < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (keyset_blocked(ctx, slot))
        return SW_FILE_INVALID; /* 6983: authentication method blocked */
    if (a->lc != tse_scp_challenge_len(&k))
        return SW_WRONG_LENGTH;
    const char *cn = counter_name(k.scp);
    uint64_t seq;
    if (tse_ctx_counter_get(ctx, cn, &seq) != 0)
        return SW_UNKNOWN;
    /* The response carries the incremented value; it is spent even if authentication then
     * fails (docs/scp.md). */
    int rc = tse_ctx_counter_set(ctx, cn, seq + 1);
    if (rc == TSE_ERR_INVALID_ARG)
        return SW_CONDITIONS_NOT_SATISFIED; /* the counter is exhausted */
    if (rc)
        return tse_sw_from_err(rc);
    seq++;
    bool pseudo = k.scp == 2 ? (k.i & 0x40) != 0 : (k.i & 0x10) != 0;
    uint8_t chal[16];
    if (!pseudo && tse_ctx_random(ctx, chal, k.scp == 2 ? 6 : tse_scp_challenge_len(&k)) != 0)
        return SW_UNKNOWN;
    const uint8_t *id = ident(ctx);
    size_t n;
    rc = tse_scp_card_initialize_update(s, &k, id + 76, (uint32_t)seq, a->data, a->lc,
                                        pseudo ? NULL : chal, tse_ctx_aid(ctx), rsp->data, rsp->cap,
                                        &n);
    if (rc)
        return SW_UNKNOWN;
    rsp->len = n;
    return SW_NO_ERROR;
}

/* PUT KEY: add (P1 = 00) or replace (P1 = KVN) a key set with keys 1..3 (P2 = 81) or replace
 * single keys of a key set (P2 = key id). Response: new KVN and the KCV of each key. */
static uint16_t put_key(struct tse_ctx *ctx, struct tse_scp_session *s, const struct tse_apdu *a,
                        struct tse_response *rsp)
{
    if (!tse_gp_level_ok(ctx, s))
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    uint8_t p1 = a->p1 & 0x7F, first = a->p2 & 0x7F;
    if (first < 1 || first > 3)
        return SW_INCORRECT_P1P2;
    if (a->lc < 1 + 3)
        return SW_WRONG_LENGTH;
    const uint8_t *p;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &p, NULL) != 0)
        return SW_UNKNOWN;
    uint8_t keys[KEYS_LEN];
    memcpy(keys, p, KEYS_LEN);
    uint8_t new_kvn = a->data[0];
    if (new_kvn == 0 || new_kvn > 0x7F)
        return SW_WRONG_DATA;
    int slot = -1, clash = -1;
    for (int i = 0; i < keys[0]; i++) {
        uint8_t kvn = keys[1 + i * KEYSET_LEN];
        if (p1 && kvn == p1)
            slot = i;
        if (kvn == new_kvn)
            clash = i;
    }
    if (p1 && slot < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (clash >= 0 && clash != slot)
        return SW_WRONG_DATA; /* that key version already exists */
    uint8_t *e;
    if (slot < 0) {
        if (keys[0] >= TSE_MAX_KEYSETS)
            return SW_FILE_FULL;
        if (first != 1 || !(a->p2 & 0x80))
            return SW_INCORRECT_P1P2; /* a new key set needs all three keys */
        slot = keys[0]++;
        e = keys + 1 + slot * KEYSET_LEN;
        memset(e, 0, KEYSET_LEN);
        /* a new key set speaks the protocol of the session that created it */
        e[1] = s->scp;
        e[2] = s->i;
    } else {
        e = keys + 1 + slot * KEYSET_LEN;
    }
    uint8_t out[1 + 3 * 3];
    size_t on = 0, pos = 1, nkeys = 0;
    out[on++] = new_kvn;
    uint8_t type = 0;
    size_t klen = 0;
    while (pos < a->lc) {
        if (first + nkeys > 3 || pos + 2 > a->lc)
            return SW_WRONG_DATA;
        uint8_t t = a->data[pos], l = a->data[pos + 1];
        if ((t != TSE_KEY_TYPE_DES && t != TSE_KEY_TYPE_AES) || l > 0x7F || pos + 2 + l + 1 > a->lc)
            return SW_WRONG_DATA;
        const uint8_t *blk = a->data + pos + 2;
        uint8_t kcv_len = a->data[pos + 2 + l];
        if (kcv_len != 0 && kcv_len != 3)
            return SW_WRONG_DATA;
        if (pos + 3 + l + kcv_len > a->lc)
            return SW_WRONG_DATA;
        uint8_t key[32], kcv[3];
        size_t kl;
        if (tse_scp_card_decrypt_key(s, t, blk, l, key, &kl) != 0)
            return SW_WRONG_DATA;
        if ((type && t != type) || (klen && kl != klen))
            return SW_WRONG_DATA; /* one type and length per key set */
        type = t;
        klen = kl;
        tse_scp_kcv(key, kl, t == TSE_KEY_TYPE_AES, kcv);
        if (kcv_len && !tse_ct_equal(kcv, a->data + pos + 3 + l, 3))
            return SW_WRONG_DATA; /* the key did not arrive as sent */
        memcpy(e + KS_KEYS + 32 * (first - 1 + nkeys), key, kl);
        tse_wipe(key, sizeof(key));
        memcpy(out + on, kcv, 3);
        on += 3;
        nkeys++;
        pos += 3 + l + kcv_len;
    }
    if (nkeys == 0)
        return SW_WRONG_DATA;
    if (e[4] && (e[4] != klen || e[3] != (type == TSE_KEY_TYPE_AES ? TSE_KEY_AES : TSE_KEY_DES3)) &&
        nkeys < 3)
        return SW_WRONG_DATA; /* a single key must match the rest of its key set */
    e[0] = new_kvn;
    e[3] = type == TSE_KEY_TYPE_AES ? TSE_KEY_AES : TSE_KEY_DES3;
    e[4] = (uint8_t)klen;
    if (type == TSE_KEY_TYPE_AES && e[1] == 2) { /* AES keys imply SCP03 */
        e[1] = 3;
        e[2] = 0x70;
    } else if (type == TSE_KEY_TYPE_DES && e[1] == 3) {
        e[1] = 2;
        e[2] = 0x55;
    }
    /* the whole key table is one object: one write, atomic across power cuts */
    int rc = tse_ctx_pmem_write(ctx, OBJ_KEYS, 0, keys, KEYS_LEN);
    tse_wipe(keys, sizeof(keys));
    if (rc)
        return tse_sw_from_err(rc);
    count_failure(ctx, slot, false); /* new keys start with a clean record */
    return tse_response_append(rsp, out, on) ? SW_UNKNOWN : SW_NO_ERROR;
}

static uint16_t isd_process(struct tse_ctx *ctx, const struct tse_apdu *in,
                            struct tse_response *rsp)
{
    struct tse_cla_info ci = tse_cla_decode(in->cla);
    uint8_t card_lc = tse_rt_card_life_cycle(ctx->card);
    if (in->ins == INS_SELECT && in->p1 == 0x04 && !ci.proprietary) {
        /* The runtime also hands us SELECTs of AIDs nobody can take (absent, locked): those
         * are not for us, and the current session survives them. */
        if (in->lc && !tse_aid_has_prefix(tse_ctx_aid(ctx), in->data, in->lc))
            return SW_FILE_NOT_FOUND;
        end_session(ctx);
        tse_gp_cm_reset(ctx);
        uint16_t sw = fci(ctx, rsp);
        /* a locked or terminated card still selects its ISD, with the warning 6283 */
        bool warn = card_lc == TSE_LC_CARD_LOCKED || card_lc == TSE_LC_TERMINATED;
        return sw == SW_NO_ERROR && warn ? SW_WARNING_SELECTED_FILE_INVALID : sw;
    }
    if (card_lc == TSE_LC_TERMINATED && in->ins != INS_GET_DATA)
        return SW_CONDITIONS_NOT_SATISFIED; /* a terminated card only answers GET DATA */
    struct tse_scp_session *s = session(ctx);
    if (!s)
        return SW_FILE_FULL;
    if (in->ins == INS_INITIALIZE_UPDATE && ci.proprietary && !ci.sm)
        return initialize_update(ctx, in, rsp);
    if (in->ins == INS_EXTERNAL_AUTHENTICATE && ci.proprietary) {
        struct tse_scp_keys k;
        int slot = s->initialized ? keyset(ctx, s->keys.kvn, &k) : -1;
        uint16_t sw = tse_scp_card_external_authenticate(s, in);
        count_failure(ctx, slot, sw != SW_NO_ERROR);
        return sw;
    }

    /* Everything else goes through the channel's session: checked and decrypted here. */
    uint8_t plainbuf[5 + 255 + 32]; /* protected commands carry short Lc */
    struct tse_apdu a;
    uint16_t sw;
    if (ci.sm && !s->authenticated)
        return SW_SECURITY_STATUS_NOT_SATISFIED; /* protected command, no session */
    sw = tse_scp_card_unwrap(s, in, &a, plainbuf, sizeof(plainbuf));
    if (sw != SW_NO_ERROR)
        return sw;
    switch (a.ins) {
    case INS_GET_DATA: /* tools send it with CLA 80 and, for the CPLC, also 00 */
        sw = get_data(ctx, &a, rsp);
        break;
    case INS_PUT_KEY:
        sw = put_key(ctx, s, &a, rsp);
        break;
    case INS_GET_STATUS:
        sw = tse_gp_get_status(ctx, s, &a, rsp);
        break;
    case INS_SET_STATUS:
        sw = tse_gp_set_status(ctx, s, &a);
        break;
    case INS_INSTALL:
        sw = tse_gp_install(ctx, s, &a, rsp);
        break;
    case INS_LOAD:
        sw = tse_gp_load(ctx, s, &a, rsp);
        break;
    case INS_DELETE:
        sw = tse_gp_delete(ctx, s, &a, rsp);
        break;
    case INS_STORE_DATA:
        sw = tse_gp_store_data(ctx, s, &a, rsp);
        break;
    default:
        sw = SW_INS_NOT_SUPPORTED;
        break;
    }
    uint8_t sw1 = (uint8_t)(sw >> 8);
    if (sw != SW_NO_ERROR && sw1 != 0x62 && sw1 != 0x63)
        rsp->len = 0;
    if (tse_scp_card_wrap_response(s, rsp->data, &rsp->len, rsp->cap, sw) != 0)
        return SW_UNKNOWN;
    rsp->sm_trailer = rsp->len > 0; /* an SCP02 R-MAC goes with error SWs too */
    return sw;
}

static void isd_deselect(struct tse_ctx *ctx)
{
    end_session(ctx);
    tse_gp_cm_reset(ctx);
}

static const struct tse_applet_ops isd_ops = {
    .install = isd_install,
    .deselect = isd_deselect,
    .process = isd_process,
};

static const uint8_t pkg_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50};
static const uint8_t mod_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41};

static const struct tse_module_def isd_modules[] = {
    {"security-domain", mod_aid, sizeof(mod_aid), TSE_MODULE_MULTISELECTABLE, &isd_ops},
};

const struct tse_package_def tse_gp_package = {
    "globalplatform", pkg_aid, sizeof(pkg_aid), 1, 0, isd_modules, 1,
};

int tse_ctx_perso_decrypt(struct tse_ctx *ctx, const uint8_t *in, size_t len, uint8_t *out,
                          size_t out_cap)
{
    if (!ctx->card->perso_session)
        return TSE_ERR_STATE;
    if (len > out_cap)
        return TSE_ERR_INVALID_ARG;
    return tse_scp_card_decrypt_data(ctx->card->perso_session, in, len, out);
}
