/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The diagnostic applet (package F0747365444941, "tse DIAG"): a small native applet that
 * exercises every runtime service so the card core can be tested end to end through APDUs
 * alone: persistent objects, transactions (commit, abort, nesting, left open), non-atomic
 * writes, transient memory, quotas, the RNG, counters, services and channel information.
 * Its commands are documented in docs/diag-applet.md.
 */
#include <string.h>

#include "tse/applet.h"
#include "tse/sw.h"
#include "tse/tlv.h"

#define OBJ_STATE 1 /* A u32 | B u32 | seq u32 | counter u32 */
#define OBJ_LOG   2 /* 8 entries of seq u32 | amount u32 */
#define OBJ_FLAGS 3 /* flags from the install parameters */
#define OBJ_ALLOC 0x100

#define FLAG_REFUSE_SELECT 0x01
#define LOG_ENTRIES        8
#define RAM_SIZE           32

enum {
    INS_ECHO = 0x10,
    INS_INCREMENT = 0x20,
    INS_TRANSFER = 0x22,
    INS_STATE = 0x24,
    INS_COUNTER = 0x28,
    INS_RAM_WRITE = 0x30,
    INS_RAM_READ = 0x32,
    INS_ALLOC = 0x40,
    INS_FREE = 0x42,
    INS_RANDOM = 0x50,
    INS_SERVICE = 0x54,
    INS_INFO = 0x70,
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t diag_install(struct tse_ctx *ctx, const uint8_t *params, size_t len)
{
    uint8_t init[16] = {0};
    put32(init, 1000);
    if (len >= 4)
        memcpy(init, params, 4);
    const uint8_t *p;
    int rc = tse_ctx_pmem_get(ctx, OBJ_STATE, sizeof(init), &p, NULL);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 0, init, sizeof(init));
    if (!rc)
        rc = tse_ctx_pmem_get(ctx, OBJ_LOG, LOG_ENTRIES * 8, &p, NULL);
    uint8_t flags = len >= 5 ? params[4] : 0;
    if (!rc)
        rc = tse_ctx_pmem_get(ctx, OBJ_FLAGS, 1, &p, NULL);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_FLAGS, 0, &flags, 1);
    return tse_sw_from_err(rc);
}

static bool diag_select(struct tse_ctx *ctx)
{
    const uint8_t *f;
    if (tse_ctx_pmem_get(ctx, OBJ_FLAGS, 0, &f, NULL) != 0)
        return false;
    return !(f[0] & FLAG_REFUSE_SELECT);
}

static uint16_t fci(struct tse_ctx *ctx, struct tse_response *rsp)
{
    const struct tse_aid *aid = tse_ctx_aid(ctx);
    uint8_t b[4 + TSE_AID_MAX];
    b[0] = 0x6F;
    b[1] = (uint8_t)(2 + aid->len);
    b[2] = 0x84;
    b[3] = aid->len;
    memcpy(b + 4, aid->b, aid->len);
    return tse_response_append(rsp, b, 4u + aid->len) ? SW_UNKNOWN : SW_NO_ERROR;
}

static uint16_t transfer(struct tse_ctx *ctx, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->lc != 4)
        return SW_WRONG_LENGTH;
    if (a->p1 > 3 || a->p2)
        return SW_INCORRECT_P1P2;
    uint32_t amount = get32(a->data);
    const uint8_t *st;
    if (tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL) != 0)
        return SW_UNKNOWN;
    uint32_t from = get32(st), to = get32(st + 4), seq = get32(st + 8);
    if (amount > from)
        return SW_CONDITIONS_NOT_SATISFIED;
    int rc = tse_ctx_txn_begin(ctx);
    if (rc)
        return tse_sw_from_err(rc);
    if (a->p1 == 2) { /* nesting must be refused, and the caller's transaction kept */
        rc = tse_ctx_txn_begin(ctx);
        tse_ctx_txn_abort(ctx);
        return rc == TSE_ERR_TXN_NESTED ? SW_CONDITIONS_NOT_SATISFIED : SW_UNKNOWN;
    }
    uint8_t b[8];
    put32(b, from - amount);
    rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 0, b, 4);
    put32(b, to + amount);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 4, b, 4);
    put32(b, seq + 1);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 8, b, 4);
    put32(b, seq + 1);
    put32(b + 4, amount);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_LOG, (seq % LOG_ENTRIES) * 8, b, 8);
    if (rc) {
        tse_ctx_txn_abort(ctx);
        return tse_sw_from_err(rc);
    }
    if (a->p1 == 1) {
        tse_ctx_txn_abort(ctx);
    } else if (a->p1 == 3) {
        /* Return with the transaction open: the runtime must abort it. */
    } else if ((rc = tse_ctx_txn_commit(ctx)) != 0) {
        return tse_sw_from_err(rc);
    }
    if (tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL) != 0)
        return SW_UNKNOWN;
    return tse_response_append(rsp, st, 12) ? SW_UNKNOWN : SW_NO_ERROR;
}

static uint16_t ram(struct tse_ctx *ctx, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->p1 != TSE_CLEAR_ON_RESET && a->p1 != TSE_CLEAR_ON_DESELECT)
        return SW_INCORRECT_P1P2;
    uint8_t *m;
    int rc = tse_ctx_transient(ctx, a->p1, RAM_SIZE, (enum tse_transient_kind)a->p1, &m);
    if (rc)
        return tse_sw_from_err(rc);
    if (a->ins == INS_RAM_READ)
        return tse_response_append(rsp, m, RAM_SIZE) ? SW_UNKNOWN : SW_NO_ERROR;
    if (a->lc > RAM_SIZE)
        return SW_WRONG_LENGTH;
    if (a->lc) /* no data: a->data is NULL */
        memcpy(m, a->data, a->lc);
    return SW_NO_ERROR;
}

static uint16_t diag_process(struct tse_ctx *ctx, const struct tse_apdu *a,
                             struct tse_response *rsp)
{
    if (a->ins == 0xA4 && a->p1 == 0x04 && (a->cla & 0x80) == 0)
        return fci(ctx, rsp);
    struct tse_cla_info ci = tse_cla_decode(a->cla);
    if (!ci.proprietary)
        return SW_CLA_NOT_SUPPORTED;
    if (ci.sm)
        return SW_SECURE_MESSAGING_NOT_SUPPORTED;
    const uint8_t *st;
    uint8_t b[16];
    int rc;
    switch (a->ins) {
    case INS_ECHO: {
        if (a->lc)
            return tse_response_append(rsp, a->data, a->lc) ? SW_UNKNOWN : SW_NO_ERROR;
        size_t n = (size_t)a->p1 << 8 | a->p2;
        for (size_t i = 0; i < n; i++)
            rsp->data[rsp->len++] = (uint8_t)i;
        return SW_NO_ERROR;
    }
    case INS_INCREMENT:
        if (tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL) != 0)
            return SW_UNKNOWN;
        put32(b, get32(st + 12) + 1);
        if ((rc = tse_ctx_pmem_write_nonatomic(ctx, OBJ_STATE, 12, b, 4)) != 0)
            return tse_sw_from_err(rc);
        return tse_response_append(rsp, b, 4) ? SW_UNKNOWN : SW_NO_ERROR;
    case INS_TRANSFER:
        return transfer(ctx, a, rsp);
    case INS_STATE:
        if (tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL) != 0)
            return SW_UNKNOWN;
        return tse_response_append(rsp, st, 16) ? SW_UNKNOWN : SW_NO_ERROR;
    case INS_COUNTER: {
        char name[24];
        uint64_t v;
        if (a->lc == 0 || a->lc >= sizeof(name))
            return SW_WRONG_LENGTH;
        memcpy(name, a->data, a->lc);
        name[a->lc] = '\0';
        rc = tse_ctx_counter_get(ctx, name, &v);
        if (rc == TSE_ERR_NOT_FOUND)
            return SW_REFERENCED_DATA_NOT_FOUND;
        if (!rc && a->p1 == 1) /* P1 = 01: take the next value */
            rc = tse_ctx_counter_set(ctx, name, ++v);
        if (rc == TSE_ERR_INVALID_ARG)
            return SW_FILE_FULL; /* the counter is at its maximum */
        if (rc)
            return tse_sw_from_err(rc);
        put32(b, (uint32_t)(v >> 32));
        put32(b + 4, (uint32_t)v);
        return tse_response_append(rsp, b, 8) ? SW_UNKNOWN : SW_NO_ERROR;
    }
    case INS_RAM_WRITE:
    case INS_RAM_READ:
        return ram(ctx, a, rsp);
    case INS_ALLOC:
    case INS_FREE: {
        if (a->lc != 1)
            return SW_WRONG_LENGTH;
        uint16_t id = (uint16_t)(OBJ_ALLOC + a->data[0]);
        if (a->ins == INS_FREE) {
            rc = tse_ctx_pmem_delete(ctx, id);
            return rc == TSE_ERR_NOT_FOUND ? SW_REFERENCED_DATA_NOT_FOUND : tse_sw_from_err(rc);
        }
        size_t size = (size_t)a->p1 << 8 | a->p2;
        if (size == 0)
            return SW_INCORRECT_P1P2;
        rc = tse_ctx_pmem_get(ctx, id, size, &st, NULL);
        if (rc == TSE_ERR_INVALID_ARG)
            return SW_WRONG_DATA;
        if (rc)
            return tse_sw_from_err(rc);
        put32(b, (uint32_t)tse_ctx_pmem_used(ctx));
        return tse_response_append(rsp, b, 4) ? SW_UNKNOWN : SW_NO_ERROR;
    }
    case INS_RANDOM: {
        size_t n = a->p2 ? a->p2 : (a->ne ? a->ne : 8);
        if (n > rsp->cap)
            return SW_WRONG_LENGTH;
        if (tse_ctx_random(ctx, rsp->data, n) != 0)
            return SW_UNKNOWN;
        rsp->len = n;
        return SW_NO_ERROR;
    }
    case INS_SERVICE: {
        struct tse_aid server;
        if (a->lc < TSE_AID_MIN || tse_aid_set(&server, a->data, a->lc) != 0)
            return SW_WRONG_LENGTH;
        size_t n;
        rc = tse_ctx_call_service(ctx, &server, 1, NULL, 0, rsp->data, rsp->cap, &n);
        if (rc == TSE_ERR_NOT_FOUND)
            return SW_FILE_NOT_FOUND;
        if (rc == TSE_ERR_DENIED)
            return SW_SECURITY_STATUS_NOT_SATISFIED;
        if (rc)
            return tse_sw_from_err(rc);
        rsp->len = n;
        return SW_NO_ERROR;
    }
    case INS_INFO:
        b[0] = (uint8_t)tse_ctx_interface(ctx);
        b[1] = tse_ctx_channel(ctx);
        b[2] = (uint8_t)tse_ctx_txn_depth(ctx);
        put32(b + 3, (uint32_t)tse_ctx_pmem_used(ctx));
        put32(b + 7, (uint32_t)tse_ctx_time(ctx));
        return tse_response_append(rsp, b, 11) ? SW_UNKNOWN : SW_NO_ERROR;
    default:
        return SW_INS_NOT_SUPPORTED;
    }
}

/* Service 1: the balances, for callers of the same RID (F0 74 73 65 44) only. */
static int diag_service(struct tse_ctx *ctx, const struct tse_aid *client, uint8_t service_id,
                        const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                        size_t *out_len)
{
    (void)in;
    (void)in_len;
    static const uint8_t rid[] = {0xF0, 0x74, 0x73, 0x65, 0x44};
    if (service_id != 1 || !tse_aid_has_prefix(client, rid, sizeof(rid)))
        return TSE_ERR_DENIED;
    const uint8_t *st;
    int rc = tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL);
    if (rc)
        return rc;
    if (out_cap < 16)
        return TSE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, st, 16);
    *out_len = 16;
    return 0;
}

/* Personalization through its security domain (STORE DATA, DGI format): DGI 0101 sets A
 * (4 bytes), DGI 8101 sets B from the first 4 bytes of a DEK-encrypted block. Both or neither
 * are applied (one transaction per STORE DATA command). */
static uint16_t diag_personalize(struct tse_ctx *ctx, const struct tse_apdu *a,
                                 struct tse_response *rsp)
{
    (void)rsp;
    if ((a->p1 & 0x18) != 0x08)
        return SW_WRONG_DATA; /* DGI format only */
    const uint8_t *p = a->data, *st;
    size_t left = a->lc;
    struct tse_tlv d;
    int r;
    if (tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &st, NULL) != 0)
        return SW_UNKNOWN;
    uint8_t state[16];
    memcpy(state, st, sizeof(state));
    while ((r = tse_dgi_next(&p, &left, &d)) == 1) {
        if (d.tag == 0x0101 && d.len == 4) {
            memcpy(state, d.value, 4);
        } else if (d.tag == 0x8101) {
            uint8_t plain[32];
            if (d.len < 4 || d.len > sizeof(plain) ||
                tse_ctx_perso_decrypt(ctx, d.value, d.len, plain, sizeof(plain)) != 0)
                return SW_WRONG_DATA;
            memcpy(state + 4, plain, 4);
        } else {
            return SW_REFERENCED_DATA_NOT_FOUND; /* a DGI this applet does not know */
        }
    }
    if (r < 0 || a->lc == 0)
        return SW_WRONG_DATA;
    int rc = tse_ctx_txn_begin(ctx);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 0, state, 8);
    if (!rc)
        rc = tse_ctx_txn_commit(ctx);
    return tse_sw_from_err(rc);
}

static const struct tse_applet_ops diag_ops = {
    .install = diag_install,
    .select = diag_select,
    .process = diag_process,
    .service = diag_service,
    .personalize = diag_personalize,
};

static const uint8_t pkg_aid[] = {0xF0, 0x74, 0x73, 0x65, 0x44, 0x49, 0x41};
static const uint8_t mod1_aid[] = {0xF0, 0x74, 0x73, 0x65, 0x44, 0x49, 0x41, 0x01};
static const uint8_t mod2_aid[] = {0xF0, 0x74, 0x73, 0x65, 0x44, 0x49, 0x41, 0x02};

static const struct tse_module_def diag_modules[] = {
    {"diag", mod1_aid, sizeof(mod1_aid), TSE_MODULE_MULTISELECTABLE, &diag_ops},
    {"diag-single", mod2_aid, sizeof(mod2_aid), 0, &diag_ops},
};

const struct tse_package_def tse_diag_package = {
    "tse.diag", pkg_aid, sizeof(pkg_aid), 1, 0, diag_modules, 2,
};
