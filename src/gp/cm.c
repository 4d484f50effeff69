/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Card content management of a security domain (GlobalPlatform 2.3.1 card spec, ch. 9 and 11):
 * GET STATUS, SET STATUS, INSTALL (all variants), LOAD, DELETE and STORE DATA, for the issuer
 * security domain and for supplementary security domains.
 *
 * Who may do what (docs/gp.md):
 *  - The ISD manages everything on the card.
 *  - An SSD with Authorized Management manages its own subtree: the applications, security
 *    domains and load files associated with it or with an SD below it.
 *  - An SSD with Delegated Management needs a token for each content change; token
 *    verification is not implemented, so its content changes are refused with 6982.
 *  - Global Delete / Global Lock / Global Registry extend DELETE / SET STATUS / GET STATUS to
 *    the whole card.
 * Every change is one store transaction or one record write: a power cut leaves the registry
 * before or after the command, never between.
 */
#include <string.h>

#include "cos/card_internal.h"
#include "cos/store_internal.h"
#include "crypto/crypto_internal.h"
#include "gp/gp_internal.h"
#include "tse/cap.h"
#include "tse/scp.h"
#include "tse/sw.h"
#include "tse/tlv.h"

/* Privileges (GP card spec table 6-1): byte, bit. */
#define PRIV0_SD           0x80u
#define PRIV0_DAP          0x40u
#define PRIV0_DM           0x20u
#define PRIV0_CARD_LOCK    0x10u
#define PRIV0_CARD_TERM    0x08u
#define PRIV0_CARD_RESET   0x04u
#define PRIV0_CVM          0x02u
#define PRIV0_MANDATED_DAP 0x01u
#define PRIV1_AM           0x40u
#define PRIV1_GLOBAL_DEL   0x10u
#define PRIV1_GLOBAL_LOCK  0x08u
#define PRIV1_GLOBAL_REG   0x04u
#define PRIV1_FINAL_APP    0x02u

#define SD_STATE_PERSONALIZED 0x0Fu

/* Privileges a supplementary security domain may hand out: SD, DAP verification, delegated
 * management; authorized management; ciphered load file data block, contactless
 * self-activation, privacy trusted. Everything else only comes from the ISD. */
static const uint8_t SSD_GRANTABLE[3] = {0xE0, 0x40, 0x58};

/* INSTALL, LOAD and DELETE answer one 00 byte: "no confirmation" (no delegated management). */
static const uint8_t NO_CONFIRMATION[1] = {0x00};

/* GET STATUS answers at most this many bytes at once; the rest follows after 6310. */
#define STATUS_CHUNK 240

/* ---- who is who ------------------------------------------------------------------------------ */

static bool is_isd(const struct tse_ctx *ctx)
{
    return tse_aid_equal(&ctx->inst->aid, &ctx->card->prof->isd_aid);
}

static bool is_sd(const struct tse_instance *in)
{
    return (in->priv[0] & PRIV0_SD) != 0;
}

/* The security domain an instance is associated with (the ISD for records of older images). */
static const struct tse_aid *assoc_of(const struct tse_card *card, const struct tse_instance *in)
{
    return in->sd.len ? &in->sd : &card->prof->isd_aid;
}

/* Whether an object associated with `sd` lies in x's subtree (sd is x or below x). */
static bool under(const struct tse_card *card, const struct tse_aid *sd, const struct tse_aid *x)
{
    for (int depth = 0; depth < 32; depth++) {
        if (tse_aid_equal(sd, x))
            return true;
        if (tse_aid_equal(sd, &card->prof->isd_aid))
            return false;
        int i = tse_rt_find(card, sd);
        if (i < 0)
            return false;
        sd = assoc_of(card, tse_rt_inst(card, i));
    }
    return false;
}

/* May the current SD act on an object associated with `sd`? `global` is a byte-2 privilege
 * that extends the right to the whole card (0: none). */
static bool authority(const struct tse_ctx *ctx, const struct tse_aid *sd, uint8_t global)
{
    return is_isd(ctx) || (global && (ctx->inst->priv[1] & global)) ||
           under(ctx->card, sd, &ctx->inst->aid);
}

bool tse_gp_level_ok(const struct tse_ctx *ctx, const struct tse_scp_session *s)
{
    uint8_t need = ctx->card->prof->management_level | TSE_SL_CMAC;
    return s->authenticated && (s->level & need) == need;
}

/* Content changes: card state, the SD's management privilege and the secure channel level.
 * *dm tells the caller that the SD has Delegated Management: the command needs a token. */
static uint16_t may_manage(const struct tse_ctx *ctx, const struct tse_scp_session *s, bool *dm)
{
    *dm = false;
    if (!tse_gp_level_ok(ctx, s))
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    uint8_t lc = tse_rt_card_life_cycle(ctx->card);
    if (lc == TSE_LC_CARD_LOCKED || lc == TSE_LC_TERMINATED)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (is_isd(ctx) || (ctx->inst->priv[1] & PRIV1_AM))
        return SW_NO_ERROR;
    if (ctx->inst->priv[0] & PRIV0_DM) {
        *dm = true;
        return SW_NO_ERROR;
    }
    return SW_CONDITIONS_NOT_SATISFIED; /* no content management privilege */
}

/* Delegated management token (GP 2.3.1 C.4): an RSA signature by the card issuer over
 * P1 ‖ P2 ‖ Lc ‖ data, data being the command data without the token (and Lc its length),
 * verified with the profile's token key (the ISD holds Token Verification). */
static uint16_t verify_token(const struct tse_ctx *ctx, const struct tse_apdu *a,
                             const uint8_t *data, size_t len, const uint8_t *token, size_t tlen)
{
    const struct tse_profile *p = ctx->card->prof;
    if (!tlen || !p->token_n_len || len > 255)
        return SW_SECURITY_STATUS_NOT_SATISFIED; /* no token, or no key to check one */
    uint8_t msg[3 + 255];
    msg[0] = a->p1;
    msg[1] = a->p2;
    msg[2] = (uint8_t)len;
    memcpy(msg + 3, data, len);
    return tse_rsa_verify(p->token_n, p->token_n_len, p->token_e, p->token_e_len, msg, 3 + len,
                          token, tlen) == 0
               ? SW_NO_ERROR
               : SW_SECURITY_STATUS_NOT_SATISFIED;
}

static int card_reset_holder(const struct tse_card *card, int except);

/* Privileges the current SD may give (3 bytes); refused bits make the request 6A80. */
static bool grantable(const struct tse_ctx *ctx, const uint8_t priv[3])
{
    if (!is_isd(ctx))
        for (int i = 0; i < 3; i++)
            if (priv[i] & ~((SSD_GRANTABLE[i] & ctx->inst->priv[i]) | (i == 0 ? PRIV0_SD : 0)))
                return false;
    /* DAP verification and delegated management are SD privileges; AM and DM exclude each
     * other; mandated DAP implies DAP verification. */
    if ((priv[0] & (PRIV0_DAP | PRIV0_DM)) && !(priv[0] & PRIV0_SD))
        return false;
    if ((priv[0] & PRIV0_DM) && (priv[1] & PRIV1_AM))
        return false;
    if ((priv[0] & PRIV0_MANDATED_DAP) && !(priv[0] & PRIV0_DAP))
        return false;
    if ((priv[1] & PRIV1_AM) && !(priv[0] & PRIV0_SD))
        return false;
    return true;
}

/* ---- per-channel state: GET STATUS paging, LOAD in progress, personalization target -------- */

struct status_state {
    uint8_t active, p1, tlv, plen;
    uint8_t prefix[TSE_AID_MAX];
    uint16_t next;
};

/* Per logical channel: a few bytes, so every channel can have a security domain selected. */
struct cm_state {
    uint8_t loading; /* INSTALL [for load] accepted on this channel, LOAD blocks expected */
    uint8_t dm_now;  /* the command being processed is delegated (token verified) */
    uint8_t perso;   /* INSTALL [for personalization] named `target` */
    uint8_t perso_next;
    struct tse_aid target;
    uint8_t store_next; /* STORE DATA to the SD itself: next block number */
};

/* The load in progress: one per security domain and interface (a real card, too, takes one
 * load at a time), created by the first INSTALL [for load]. About 1.7 KiB: the CAP stream
 * parser, the LFDB hash and the DAP signatures being collected. */
#define LOAD_NO_CHANNEL 0xFF
struct load_state {
    uint8_t channel; /* the channel whose INSTALL [for load] started it; LOAD_NO_CHANNEL: none */
    uint8_t dm_load; /* that INSTALL [for load] was delegated: the last LOAD gives a receipt */
    uint8_t next_block;
    struct tse_aid elf, sd;
    struct tse_cap_stream cap;
    /* the load file data block hash the card computes, the one INSTALL [for load] gave, and
     * the DAP signatures of the domains that must verify this load */
    struct tse_hash lfdb_hash;
    uint8_t hash_len, given_len, given_hash[32];
    uint8_t n_dap;
    struct tse_aid dap_sd[2];
    uint8_t dap_sig[2][256];
};

/* The channel's state; created on first use unless `create` is false (NULL then). */
static struct cm_state *cm_state_get(struct tse_ctx *ctx, bool create)
{
    uint8_t *m;
    if (tse_ctx_transient(ctx, (uint16_t)(TSE_GP_RAM_CM0 + tse_ctx_channel(ctx)),
                          create ? sizeof(struct cm_state) : 0, TSE_CLEAR_ON_RESET, &m) != 0)
        return NULL;
    return (struct cm_state *)(void *)m;
}

static struct cm_state *cm_state(struct tse_ctx *ctx)
{
    return cm_state_get(ctx, true);
}

static struct load_state *load_state(struct tse_ctx *ctx, bool create)
{
    uint8_t *m;
    if (tse_ctx_transient(ctx, TSE_GP_RAM_LOAD, create ? sizeof(struct load_state) : 0,
                          TSE_CLEAR_ON_RESET, &m) != 0)
        return NULL;
    return (struct load_state *)(void *)m;
}

void tse_gp_cm_reset(struct tse_ctx *ctx)
{
    /* only what exists: a SELECT or deselect must not take RAM */
    struct cm_state *st = cm_state_get(ctx, false);
    if (st)
        memset(st, 0, sizeof(*st));
    struct load_state *ls = load_state(ctx, false);
    if (ls && ls->channel == tse_ctx_channel(ctx))
        ls->channel = LOAD_NO_CHANNEL;
}

/* ---- GET STATUS ----------------------------------------------------------------------------- */

/* One registry entry as GET STATUS sees it. */
struct reg_entry {
    const uint8_t *aid;
    uint8_t aid_len;
    uint8_t life_cycle;
    uint8_t priv[3];
    const uint8_t *elf; /* executable load file of an application, or NULL */
    uint8_t elf_len;
    const struct tse_aid *sd; /* associated security domain */
    struct tse_elf load_file; /* for P1 20 and 10 */
    bool is_elf;
};

/* The n-th registry entry of a GET STATUS scope (P1 80, 40, 20 or 10) before visibility
 * filtering; false past the end. */
static bool reg_entry(struct tse_ctx *ctx, uint8_t p1, size_t n, struct reg_entry *e)
{
    struct tse_card *card = ctx->card;
    memset(e, 0, sizeof(*e));
    if (p1 == 0x80) {
        int i = n ? -1 : tse_rt_find(card, &card->prof->isd_aid);
        if (i < 0)
            return false;
        const struct tse_instance *in = tse_rt_inst(card, i);
        e->aid = in->aid.b;
        e->aid_len = in->aid.len;
        e->life_cycle = tse_rt_card_life_cycle(card);
        memcpy(e->priv, in->priv, 3);
        if (card_reset_holder(card, i) >= 0)
            e->priv[0] &= (uint8_t)~PRIV0_CARD_RESET; /* another application is the default */
        e->elf = in->package.b;
        e->elf_len = in->package.len;
        e->sd = &in->aid;
        return true;
    }
    if (p1 == 0x40) {
        size_t k = 0;
        for (size_t i = 0; i < card->n_inst; i++) {
            const struct tse_instance *in = tse_rt_inst(card, i);
            if (tse_aid_equal(&in->aid, &card->prof->isd_aid))
                continue;
            if (k++ != n)
                continue;
            e->aid = in->aid.b;
            e->aid_len = in->aid.len;
            e->life_cycle = in->state;
            memcpy(e->priv, in->priv, 3);
            e->elf = in->package.b;
            e->elf_len = in->package.len;
            e->sd = assoc_of(card, in);
            return true;
        }
        return false;
    }
    if (tse_rt_elf_nth(card, n, &e->load_file) != 0)
        return false;
    e->is_elf = true;
    e->aid = e->load_file.aid.b;
    e->aid_len = e->load_file.aid.len;
    e->life_cycle = 0x01; /* LOADED */
    e->sd = &e->load_file.sd;
    return true;
}

/* Whether the current SD may see an entry: the ISD and Global Registry holders see the whole
 * card, other SDs themselves and their subtree. */
static bool visible(const struct tse_ctx *ctx, const struct reg_entry *e)
{
    if (is_isd(ctx) || (ctx->inst->priv[1] & PRIV1_GLOBAL_REG))
        return true;
    struct tse_aid a;
    tse_aid_set(&a, e->aid, e->aid_len);
    if (!e->is_elf && tse_aid_equal(&a, &ctx->inst->aid))
        return true;
    return under(ctx->card, e->sd, &ctx->inst->aid);
}

/* Encode one entry; 0 if it does not fit in cap. */
static size_t status_entry(const struct status_state *st, const struct reg_entry *e, uint8_t *out,
                           size_t cap)
{
    uint8_t b[512];
    size_t n = 0;
    const struct tse_package_def *pkg = e->is_elf ? e->load_file.pkg : NULL;
    if (!st->tlv) {
        b[n++] = e->aid_len;
        memcpy(b + n, e->aid, e->aid_len);
        n += e->aid_len;
        b[n++] = e->life_cycle;
        b[n++] = e->priv[0];
        if (st->p1 == 0x10) {
            size_t nm = pkg ? pkg->n_modules : 0;
            b[n++] = (uint8_t)nm;
            for (size_t m = 0; m < nm && n + 17 < sizeof(b); m++) {
                b[n++] = pkg->modules[m].aid_len;
                memcpy(b + n, pkg->modules[m].aid, pkg->modules[m].aid_len);
                n += pkg->modules[m].aid_len;
            }
        }
    } else {
        struct tse_tlv_writer w;
        tse_tlv_writer_init(&w, b, sizeof(b));
        tse_tlv_begin(&w, 0xE3);
        tse_tlv_put(&w, 0x4F, e->aid, e->aid_len);
        tse_tlv_put_u8(&w, 0x9F70, e->life_cycle);
        if (st->p1 & 0xC0) /* applications and domains have privileges */
            tse_tlv_put(&w, 0xC5, e->priv, 3);
        if (e->elf)
            tse_tlv_put(&w, 0xC4, e->elf, e->elf_len);
        if (e->is_elf) {
            const uint8_t version[] = {e->load_file.major, e->load_file.minor};
            tse_tlv_put(&w, 0xCE, version, sizeof(version));
            for (size_t m = 0; st->p1 == 0x10 && pkg && m < pkg->n_modules; m++)
                tse_tlv_put(&w, 0x84, pkg->modules[m].aid, pkg->modules[m].aid_len);
        }
        tse_tlv_put(&w, 0xCC, e->sd->b, e->sd->len);
        tse_tlv_end(&w);
        int r = tse_tlv_finish(&w);
        if (r < 0)
            return 0;
        n = (size_t)r;
    }
    if (n > cap)
        return 0;
    memcpy(out, b, n);
    return n;
}

uint16_t tse_gp_get_status(struct tse_ctx *ctx, const struct tse_scp_session *s,
                           const struct tse_apdu *a, struct tse_response *rsp)
{
    if (!s->authenticated)
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    uint8_t *m;
    if (tse_ctx_transient(ctx, (uint16_t)(TSE_GP_RAM_STATUS0 + tse_ctx_channel(ctx)),
                          sizeof(struct status_state), TSE_CLEAR_ON_RESET, &m) != 0)
        return SW_FILE_FULL;
    struct status_state *st = (struct status_state *)(void *)m;
    if (a->p1 != 0x80 && a->p1 != 0x40 && a->p1 != 0x20 && a->p1 != 0x10)
        return SW_INCORRECT_P1P2;
    if (a->p2 & ~0x03)
        return SW_INCORRECT_P1P2;
    if (a->p2 & 0x01) { /* next occurrence: continue the previous answer */
        if (!st->active || st->p1 != a->p1 || st->tlv != ((a->p2 & 0x02) != 0))
            return SW_CONDITIONS_NOT_SATISFIED;
    } else {
        /* search criteria: 4F with an AID prefix (4F 00 = everything); other tags (e.g. a
         * 5C tag list) are accepted and ignored */
        struct tse_tlv aid;
        if (tse_tlv_find(a->data, a->lc, 0x4F, &aid) != 1 || aid.len > TSE_AID_MAX)
            return SW_WRONG_DATA;
        memset(st, 0, sizeof(*st));
        st->p1 = a->p1;
        st->tlv = (a->p2 & 0x02) != 0;
        st->plen = (uint8_t)aid.len;
        if (aid.len)
            memcpy(st->prefix, aid.value, aid.len);
    }
    size_t cap = STATUS_CHUNK < rsp->cap ? STATUS_CHUNK : rsp->cap, found = 0;
    struct reg_entry e;
    for (size_t i = st->next; reg_entry(ctx, st->p1, i, &e); i++) {
        if (e.aid_len < st->plen || memcmp(e.aid, st->prefix, st->plen) != 0 || !visible(ctx, &e))
            continue;
        found++;
        size_t n = status_entry(st, &e, rsp->data + rsp->len, cap - rsp->len);
        if (n == 0) { /* page full: the host asks again with P2 | 01 */
            st->active = 1;
            st->next = (uint16_t)i;
            return SW_MORE_DATA_AVAILABLE;
        }
        rsp->len += n;
    }
    bool continued = st->active;
    memset(st, 0, sizeof(*st));
    return found || continued ? SW_NO_ERROR : SW_REFERENCED_DATA_NOT_FOUND;
}

/* ---- SET STATUS ----------------------------------------------------------------------------- */

static bool card_transition_ok(uint8_t from, uint8_t to)
{
    if (to == TSE_LC_TERMINATED)
        return from != TSE_LC_TERMINATED;
    switch (from) {
    case TSE_LC_OP_READY:
        return to == TSE_LC_INITIALIZED;
    case TSE_LC_INITIALIZED:
        return to == TSE_LC_SECURED;
    case TSE_LC_SECURED:
        return to == TSE_LC_CARD_LOCKED;
    case TSE_LC_CARD_LOCKED:
        return to == TSE_LC_SECURED;
    default:
        return false;
    }
}

static uint16_t set_card_state(struct tse_ctx *ctx, const struct tse_apdu *a)
{
    struct tse_card *card = ctx->card;
    const struct tse_aid *isd = &card->prof->isd_aid;
    if (a->lc && (a->lc != isd->len || memcmp(a->data, isd->b, isd->len) != 0))
        return SW_WRONG_DATA;
    uint8_t from = tse_rt_card_life_cycle(card), to = a->p2;
    if (!card_transition_ok(from, to))
        return SW_CONDITIONS_NOT_SATISFIED;
    /* Only the ISD initialises, secures and unlocks the card; Card Lock holders may lock it
     * and Card Terminate holders terminate it (docs/gp.md: unlocking stays with the ISD). */
    if (!is_isd(ctx)) {
        bool ok = (to == TSE_LC_CARD_LOCKED && (ctx->inst->priv[0] & PRIV0_CARD_LOCK)) ||
                  (to == TSE_LC_TERMINATED && (ctx->inst->priv[0] & PRIV0_CARD_TERM));
        if (!ok)
            return SW_CONDITIONS_NOT_SATISFIED;
    }
    return tse_sw_from_err(tse_rt_set_card_life_cycle(card, to));
}

/* New state of one application or SD for SET STATUS P1 40; 0 with *sw set when refused. */
static uint8_t next_state(const struct tse_instance *in, uint8_t p2, uint16_t *sw)
{
    uint8_t st = in->state;
    if (p2 && !(p2 & APP_STATE_LOCKED) && (p2 & 0x07) != 0x07) {
        *sw = SW_INCORRECT_P1P2; /* not a life cycle state coding */
        return 0;
    }
    *sw = SW_CONDITIONS_NOT_SATISFIED;
    if (p2 & APP_STATE_LOCKED) { /* lock: keep the state below the lock bit */
        if (st & APP_STATE_LOCKED)
            return 0; /* locked already */
        if (p2 != APP_STATE_LOCKED && p2 != (uint8_t)(st | APP_STATE_LOCKED)) {
            *sw = SW_INCORRECT_P1P2;
            return 0;
        }
        return (uint8_t)(st | APP_STATE_LOCKED);
    }
    if (st & APP_STATE_LOCKED) /* unlock: 00, or the state it had before the lock */
        return p2 == 0x00 || p2 == (uint8_t)(st & ~APP_STATE_LOCKED)
                   ? (uint8_t)(st & ~APP_STATE_LOCKED)
                   : 0;
    if (p2 == 0x00)
        return 0; /* not locked: nothing to unlock */
    if ((p2 & 0x07) != 0x07 || p2 == APP_STATE_SELECTABLE) {
        *sw = SW_INCORRECT_P1P2; /* not a state SET STATUS can give */
        return 0;
    }
    if (is_sd(in)) /* a domain: SELECTABLE → PERSONALIZED, nothing else */
        return st == APP_STATE_SELECTABLE && p2 == SD_STATE_PERSONALIZED ? p2 : 0;
    /* an application: from SELECTABLE or one application-specific state to another */
    return (st & 0x07) == 0x07 ? p2 : 0;
}

uint16_t tse_gp_set_status(struct tse_ctx *ctx, const struct tse_scp_session *s,
                           const struct tse_apdu *a)
{
    if (!tse_gp_level_ok(ctx, s))
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    struct tse_card *card = ctx->card;
    if (a->p1 == 0x80)
        return set_card_state(ctx, a);
    if (a->p1 != 0x40 && a->p1 != 0x60)
        return SW_INCORRECT_P1P2;
    struct tse_aid target;
    if (a->lc < TSE_AID_MIN || tse_aid_set(&target, a->data, a->lc) != 0)
        return SW_WRONG_DATA;
    int idx = tse_rt_find(card, &target);
    if (idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (tse_aid_equal(&target, &card->prof->isd_aid) || tse_aid_equal(&target, &ctx->inst->aid))
        return SW_CONDITIONS_NOT_SATISFIED; /* the ISD's state is the card's: use P1 80 */
    if (tse_rt_card_life_cycle(card) == TSE_LC_CARD_LOCKED)
        return SW_CONDITIONS_NOT_SATISFIED;
    struct tse_instance *in = tse_rt_inst(card, idx);
    if (!authority(ctx, assoc_of(card, in), PRIV1_GLOBAL_LOCK))
        return SW_CONDITIONS_NOT_SATISFIED;
    uint16_t sw;
    if (a->p1 == 0x40) {
        uint8_t st = next_state(in, a->p2, &sw);
        return st ? tse_sw_from_err(tse_rt_set_state(card, idx, st)) : sw;
    }
    /* P1 60: a security domain and every application in its subtree, locked or unlocked
     * together, in one transaction */
    if (!is_sd(in))
        return SW_WRONG_DATA;
    if (a->p2 != 0x80 && a->p2 != 0x00)
        return SW_INCORRECT_P1P2;
    bool lock = a->p2 == 0x80;
    if (((in->state & APP_STATE_LOCKED) != 0) == lock)
        return SW_CONDITIONS_NOT_SATISFIED;
    uint8_t saved[SYS_MAX_INSTANCES];
    for (size_t i = 0; i < card->n_inst; i++)
        saved[i] = tse_rt_inst(card, i)->state;
    int rc = tse_store_begin(card->store);
    for (size_t i = 0; !rc && i < card->n_inst; i++) {
        struct tse_instance *x = tse_rt_inst(card, i);
        if ((int)i != idx && !under(card, assoc_of(card, x), &target))
            continue;
        uint8_t st =
            lock ? (uint8_t)(x->state | APP_STATE_LOCKED) : (uint8_t)(x->state & ~APP_STATE_LOCKED);
        if (st != x->state)
            rc = tse_rt_set_state(card, (int)i, st);
    }
    if (!rc)
        rc = tse_store_commit(card->store);
    if (rc) {
        tse_store_abort(card->store);
        for (size_t i = 0; i < card->n_inst; i++)
            tse_rt_inst(card, i)->state = saved[i];
    }
    return tse_sw_from_err(rc);
}

/* ---- INSTALL -------------------------------------------------------------------------------- */

/* One LV field of INSTALL data; lengths may be BER-coded (81 xx). false if malformed. */
static bool lv(const uint8_t **p, size_t *left, const uint8_t **v, size_t *len)
{
    if (*left < 1)
        return false;
    size_t n = (*p)[0], hdr = 1;
    if (n == 0x81) {
        if (*left < 2)
            return false;
        n = (*p)[1];
        hdr = 2;
    } else if (n > 0x7F) {
        return false;
    }
    if (n > *left - hdr)
        return false;
    *v = *p + hdr;
    *len = n;
    *p += hdr + n;
    *left -= hdr + n;
    return true;
}

struct field {
    const uint8_t *at; /* its length byte(s) */
    const uint8_t *v;
    size_t len;
};

/* Split INSTALL data into `want` LV fields (all of it, nothing left). */
static bool fields(const struct tse_apdu *a, struct field *f, size_t want)
{
    const uint8_t *p = a->data;
    size_t left = a->lc;
    for (size_t i = 0; i < want; i++) {
        f[i].at = p;
        if (!lv(&p, &left, &f[i].v, &f[i].len))
            return false;
    }
    return left == 0;
}

static bool aid_field(const struct field *f, struct tse_aid *aid)
{
    return f->len >= TSE_AID_MIN && f->len <= TSE_AID_MAX && tse_aid_set(aid, f->v, f->len) == 0;
}

static uint32_t quota(const uint8_t *ef, size_t len, uint32_t tag)
{
    struct tse_tlv t;
    if (tse_tlv_find(ef, len, tag, &t) != 1 || t.len == 0 || t.len > 4)
        return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < t.len; i++)
        v = v << 8 | t.value[i];
    return v;
}

static uint16_t confirm(struct tse_response *rsp)
{
    return tse_response_append(rsp, NO_CONFIRMATION, 1) ? SW_UNKNOWN : SW_NO_ERROR;
}

static struct cm_state *cm_state(struct tse_ctx *ctx);

/* The answer to a successful content change: `00` (no confirmation), or for a delegated one
 * when the ISD has Receipt Generation and a receipt key, the confirmation structure
 * L ‖ LV receipt ‖ LV confirmation counter ‖ LV card unique data (empty), the receipt being
 * the MAC (AES-CMAC, or 3DES retail MAC with a zero ICV) over the confirmation data after it
 * and the operation data: the LV-coded AIDs given (NULL = an empty LV). */
static uint16_t done(struct tse_ctx *ctx, struct tse_response *rsp, const struct tse_aid *a1,
                     const struct tse_aid *a2, const struct tse_aid *a3)
{
    struct cm_state *st = cm_state(ctx);
    struct tse_card *card = ctx->card;
    const struct tse_profile *p = card->prof;
    int isd = tse_rt_find(card, &p->isd_aid);
    if (!st || !st->dm_now || !p->receipt_key_len || isd < 0 ||
        !(tse_rt_inst(card, isd)->priv[2] & 0x80))
        return confirm(rsp);
    uint64_t counter;
    if (tse_ctx_counter_get(ctx, "dm_confirmation", &counter) != 0)
        return SW_UNKNOWN;
    counter++;
    int rc = tse_ctx_counter_set(ctx, "dm_confirmation", counter);
    if (rc)
        return rc == TSE_ERR_INVALID_ARG ? SW_CONDITIONS_NOT_SATISFIED : tse_sw_from_err(rc);
    uint8_t m[3 + 1 + 3 * (1 + TSE_AID_MAX)];
    size_t n = 0;
    m[n++] = 2; /* confirmation counter */
    m[n++] = (uint8_t)(counter >> 8);
    m[n++] = (uint8_t)counter;
    m[n++] = 0; /* card unique data: empty (docs/gp.md) */
    size_t conf_len = n;
    const struct tse_aid *ops[3] = {a1, a2, a3};
    int last = ops[2] ? 2 : ops[1] ? 1 : 0;
    for (int i = 0; i <= last; i++) {
        uint8_t l = ops[i] ? ops[i]->len : 0;
        m[n++] = l;
        if (l)
            memcpy(m + n, ops[i]->b, l);
        n += l;
    }
    uint8_t mac[16];
    size_t mac_len = p->receipt_aes ? 16 : 8;
    if (p->receipt_aes)
        rc = tse_aes_cmac2(p->receipt_key, p->receipt_key_len, m, n, NULL, 0, mac);
    else
        rc = tse_mac_retail(p->receipt_key, NULL, m, n, mac);
    if (rc)
        return SW_UNKNOWN;
    uint8_t out[2 + 16 + 4];
    size_t o = 0;
    out[o++] = (uint8_t)(1 + mac_len + conf_len);
    out[o++] = (uint8_t)mac_len;
    memcpy(out + o, mac, mac_len);
    o += mac_len;
    memcpy(out + o, m, conf_len);
    o += conf_len;
    return tse_response_append(rsp, out, o) ? SW_UNKNOWN : SW_NO_ERROR;
}

/* Security domain install parameters inside C9: 81 (SCP and i), 82/83/87 (extradition and
 * deletion acceptance), 84 (initial state), 86 (CASD capability). Returns false if malformed;
 * scp and i are 0 when 81 is absent. */
static bool sd_params(const uint8_t *c9, size_t len, uint8_t *scp, uint8_t *i)
{
    const uint8_t *p = c9;
    size_t left = len;
    struct tse_tlv t;
    int r;
    *scp = *i = 0;
    while ((r = tse_tlv_next(&p, &left, &t)) == 1) {
        switch (t.tag) {
        case 0x81:
            if (t.len != 2 || (t.value[0] != 2 && t.value[0] != 3))
                return false;
            *scp = t.value[0];
            *i = t.value[1];
            break;
        case 0x82:
        case 0x83:
        case 0x84:
        case 0x86:
        case 0x87:
            break; /* accepted; these choices are not modelled (docs/gp.md) */
        default:
            return false;
        }
    }
    return r == 0;
}

/* Install parameters of a new supplementary security domain: the card identity and the
 * card's initial key sets from the profile, spoken with the protocol C9/81 asks for. */
static size_t ssd_params(const struct tse_card *card, uint8_t scp, uint8_t i, uint8_t *out,
                         size_t cap)
{
    size_t n = tse_isd_params(card->prof, out, cap);
    if (!n || !scp)
        return n;
    size_t nk = card->prof->n_keysets;
    uint8_t *ks = out + n - nk * TSE_GP_KEYSET_LEN;
    for (size_t k = 0; k < nk; k++, ks += TSE_GP_KEYSET_LEN) {
        if (scp == 2 && ks[4] != 16)
            return 0; /* SCP02 needs 2-key 3DES: 16-byte keys */
        ks[1] = scp;
        ks[2] = i;
        ks[3] = scp == 2 ? TSE_KEY_DES3 : TSE_KEY_AES;
    }
    return n;
}

/* The application other than the ISD holding Card Reset (the contact interface's default
 * application, card.c), or -1. At most one exists: granting it to a second one is refused
 * (revoke it first with a registry update). The ISD's own bit is shown as cleared while
 * another holder exists, so no second record changes and every grant stays one write. */
static int card_reset_holder(const struct tse_card *card, int except)
{
    for (size_t i = 0; i < card->n_inst; i++)
        if ((int)i != except && (tse_rt_inst(card, i)->priv[0] & PRIV0_CARD_RESET) &&
            !tse_aid_equal(&tse_rt_inst(card, i)->aid, &card->prof->isd_aid))
            return (int)i;
    return -1;
}

static uint16_t install_app(struct tse_ctx *ctx, uint8_t what, const struct field *f,
                            struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid pkg, module, aid;
    if (!aid_field(&f[0], &pkg) || !aid_field(&f[1], &module) || !aid_field(&f[2], &aid) ||
        (f[3].len != 1 && f[3].len != 3))
        return SW_WRONG_DATA;
    uint8_t priv[3] = {0};
    memcpy(priv, f[3].v, f[3].len);
    if (!grantable(ctx, priv))
        return SW_WRONG_DATA;
    /* install parameters: C9 (application specific, mandatory), EF (system: C7/C8 quotas) */
    struct tse_tlv c9, ef;
    if (tse_tlv_find(f[4].v, f[4].len, 0xC9, &c9) != 1)
        return SW_WRONG_DATA;
    struct tse_rt_install_opts o = {.state = what == 0x04 ? APP_STATE_INSTALLED : 0,
                                    .sd = ctx->inst->aid};
    bool has_ef = tse_tlv_find(f[4].v, f[4].len, 0xEF, &ef) == 1;
    if (has_ef) {
        o.pquota = quota(ef.value, ef.len, 0xC8);
        o.tquota = quota(ef.value, ef.len, 0xC7);
    }
    memcpy(o.priv, priv, 3);
    /* contactless registry data from the Amendment C parameters inside EF */
    uint16_t csw = tse_crs_install_params(card, &aid, has_ef ? ef.value : NULL, has_ef ? ef.len : 0,
                                          o.cl, &o.default_on);
    if (csw != SW_NO_ERROR)
        return csw;
    bool sd_module =
        tse_aid_equal(&pkg, &ctx->inst->package) && tse_aid_equal(&module, &ctx->inst->module);
    if (sd_module != ((priv[0] & PRIV0_SD) != 0))
        return SW_WRONG_DATA; /* SD privilege ⇔ the security domain module */
    if ((priv[0] & PRIV0_CARD_RESET) && card_reset_holder(card, -1) >= 0)
        return SW_CONDITIONS_NOT_SATISFIED; /* another application is the default already */
    struct tse_elf elf;
    if (tse_rt_elf_find(card, &pkg, &elf) != 0)
        return SW_REFERENCED_DATA_NOT_FOUND; /* no such load file */
    const uint8_t *params = c9.value;
    size_t plen = c9.len;
    uint8_t sdp[2048];
    if (sd_module) {
        uint8_t scp, i;
        if (!sd_params(c9.value, c9.len, &scp, &i))
            return SW_WRONG_DATA;
        plen = ssd_params(card, scp, i, sdp, sizeof(sdp));
        if (!plen)
            return SW_WRONG_DATA;
        params = sdp;
    }
    uint16_t sw;
    int rc = tse_rt_install(card, &pkg, &module, &aid, params, plen, &o, &sw);
    switch (rc) {
    case 0:
        break;
    case TSE_ERR_NOT_FOUND:
        return SW_REFERENCED_DATA_NOT_FOUND; /* no such module */
    case TSE_ERR_EXISTS:
        return SW_CONDITIONS_NOT_SATISFIED;
    case TSE_ERR_DENIED:
        return sw; /* the application's install() refused */
    default:
        return tse_sw_from_err(rc);
    }
    return done(ctx, rsp, &pkg, &aid, NULL);
}

static uint16_t make_selectable(struct tse_ctx *ctx, const struct field *f,
                                struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid aid;
    if (f[0].len || f[1].len || !aid_field(&f[2], &aid))
        return SW_WRONG_DATA;
    int idx = tse_rt_find(card, &aid);
    if (idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (!authority(ctx, assoc_of(card, tse_rt_inst(card, idx)), 0))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (tse_rt_inst(card, idx)->state != APP_STATE_INSTALLED)
        return SW_CONDITIONS_NOT_SATISFIED;
    int rc = tse_rt_set_state(card, idx, APP_STATE_SELECTABLE);
    return rc ? tse_sw_from_err(rc) : done(ctx, rsp, NULL, &aid, NULL);
}

/* INSTALL [for extradition]: associate an application, SD or loaded load file with another
 * security domain. */
static uint16_t extradite(struct tse_ctx *ctx, const struct field *f, struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid dest, obj;
    if (!aid_field(&f[0], &dest) || f[1].len || !aid_field(&f[2], &obj) || f[3].len)
        return SW_WRONG_DATA;
    int d = tse_rt_find(card, &dest);
    if (d < 0 || !is_sd(tse_rt_inst(card, d)))
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (!tse_rt_selectable(tse_rt_inst(card, d)))
        return SW_CONDITIONS_NOT_SATISFIED; /* locked or not yet selectable */
    if (!authority(ctx, &dest, 0))
        return SW_CONDITIONS_NOT_SATISFIED;
    int o = tse_rt_find(card, &obj);
    struct tse_elf elf;
    if (o < 0) {
        if (tse_rt_elf_find(card, &obj, &elf) != 0)
            return SW_REFERENCED_DATA_NOT_FOUND;
        if (elf.rom)
            return SW_CONDITIONS_NOT_SATISFIED; /* load files in ROM stay with the ISD */
        if (!authority(ctx, &elf.sd, 0))
            return SW_CONDITIONS_NOT_SATISFIED;
        int rc = tse_rt_elf_set_sd(card, &obj, &dest);
        return rc ? tse_sw_from_err(rc) : done(ctx, rsp, &elf.sd, &obj, &dest);
    }
    struct tse_instance *in = tse_rt_inst(card, o);
    if (tse_aid_equal(&obj, &card->prof->isd_aid) || tse_aid_equal(&obj, &dest))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (!authority(ctx, assoc_of(card, in), 0))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (is_sd(in) && under(card, &dest, &obj))
        return SW_CONDITIONS_NOT_SATISFIED; /* a domain cannot move below itself */
    struct tse_aid old = in->sd, old_sd = *assoc_of(card, in);
    in->sd = dest;
    int rc = tse_rt_save(card, o);
    if (rc) {
        in->sd = old;
        return tse_sw_from_err(rc);
    }
    return done(ctx, rsp, &old_sd, &obj, &dest);
}

/* INSTALL [for registry update]: new privileges and/or a new associated SD. */
static uint16_t registry_update(struct tse_ctx *ctx, const struct field *f,
                                struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid sd, aid;
    if ((f[0].len && !aid_field(&f[0], &sd)) || f[1].len || !aid_field(&f[2], &aid) ||
        (f[3].len != 0 && f[3].len != 1 && f[3].len != 3))
        return SW_WRONG_DATA;
    if (f[4].len) /* registry update parameters (implicit selection…) are not modelled */
        return SW_WRONG_DATA;
    int idx = tse_rt_find(card, &aid);
    if (idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    struct tse_instance *in = tse_rt_inst(card, idx);
    if (tse_aid_equal(&aid, &card->prof->isd_aid))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (!authority(ctx, assoc_of(card, in), 0))
        return SW_CONDITIONS_NOT_SATISFIED;
    struct tse_instance saved = *in;
    if (f[3].len) {
        uint8_t priv[3] = {0};
        memcpy(priv, f[3].v, f[3].len);
        if (!grantable(ctx, priv) || ((priv[0] ^ in->priv[0]) & PRIV0_SD))
            return SW_WRONG_DATA; /* an application does not become a domain or back */
        if ((priv[0] & PRIV0_CARD_RESET) && card_reset_holder(card, idx) >= 0)
            return SW_CONDITIONS_NOT_SATISFIED;
        memcpy(in->priv, priv, 3);
    }
    if (f[0].len) {
        int d = tse_rt_find(card, &sd);
        if (d < 0 || !is_sd(tse_rt_inst(card, d)))
            return (*in = saved, SW_REFERENCED_DATA_NOT_FOUND);
        if (!authority(ctx, &sd, 0) || (is_sd(in) && under(card, &sd, &aid)))
            return (*in = saved, SW_CONDITIONS_NOT_SATISFIED);
        in->sd = sd;
    }
    int rc = tse_rt_save(card, idx); /* one record write: atomic */
    if (rc) {
        *in = saved;
        return tse_sw_from_err(rc);
    }
    return done(ctx, rsp, assoc_of(card, &saved), &aid, assoc_of(card, in));
}

/* INSTALL [for load]: the LOAD blocks that follow bring the CAP file of a native package. */
static uint16_t for_load(struct tse_ctx *ctx, const struct field *f, struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid elf, sd = ctx->inst->aid;
    if (!aid_field(&f[0], &elf) || (f[1].len && !aid_field(&f[1], &sd)))
        return SW_WRONG_DATA;
    /* load file data block hash: SHA-1 or SHA-256, checked at the last LOAD block */
    if (f[2].len && f[2].len != 20 && f[2].len != 32)
        return SW_WRONG_DATA;
    if (f[3].len) { /* load parameters: EF { C6 code, C7 volatile, C8 non-volatile … } */
        struct tse_tlv ef;
        if (tse_tlv_find(f[3].v, f[3].len, 0xEF, &ef) != 1)
            return SW_WRONG_DATA;
    }
    int d = tse_rt_find(card, &sd);
    if (d < 0 || !is_sd(tse_rt_inst(card, d)))
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (!authority(ctx, &sd, 0))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (tse_rt_package_present(card, &elf))
        return SW_CONDITIONS_NOT_SATISFIED; /* already on the card */
    if (!tse_package_find(&elf))
        return SW_WRONG_DATA; /* this card has no native code for that package */
    struct cm_state *cs = cm_state(ctx);
    struct load_state *st = cs ? load_state(ctx, true) : NULL;
    if (!st)
        return SW_FILE_FULL; /* no RAM for the load */
    memset(st, 0, sizeof(*st));
    cs->loading = 1;
    st->channel = tse_ctx_channel(ctx);
    st->elf = elf;
    st->sd = sd;
    tse_cap_stream_init(&st->cap);
    /* who must verify a DAP: the target SD with DAP Verification, any SD with Mandated DAP */
    st->n_dap = 0;
    if (tse_rt_inst(card, d)->priv[0] & PRIV0_DAP)
        st->dap_sd[st->n_dap++] = sd;
    for (size_t i = 0; i < card->n_inst && st->n_dap < 2; i++)
        if (is_sd(tse_rt_inst(card, i)) && (tse_rt_inst(card, i)->priv[0] & PRIV0_MANDATED_DAP) &&
            !tse_aid_equal(&tse_rt_inst(card, i)->aid, &sd))
            st->dap_sd[st->n_dap++] = tse_rt_inst(card, i)->aid;
    memset(st->dap_sig, 0, sizeof(st->dap_sig));
    /* the card hashes the LFDB when a hash was given (its length picks SHA-1 or SHA-256) or a
     * DAP must be checked (SHA-1, as GlobalPlatform 2.1.1 cards do) */
    st->hash_len = (uint8_t)(f[2].len ? f[2].len : st->n_dap ? 20 : 0);
    st->given_len = (uint8_t)f[2].len;
    memcpy(st->given_hash, f[2].v, f[2].len);
    if (st->hash_len && tse_hash_init(&st->lfdb_hash, st->hash_len) != 0)
        return SW_UNKNOWN;
    return confirm(rsp);
}

/* INSTALL [for personalization]: the following STORE DATA commands go to the application. */
static uint16_t for_personalization(struct tse_ctx *ctx, const struct field *f,
                                    struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    struct tse_aid aid;
    if (f[0].len || f[1].len || !aid_field(&f[2], &aid) || f[3].len || f[4].len || f[5].len)
        return SW_WRONG_DATA;
    int idx = tse_rt_find(card, &aid);
    if (idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    const struct tse_instance *in = tse_rt_inst(card, idx);
    if (!tse_aid_equal(assoc_of(card, in), &ctx->inst->aid))
        return SW_CONDITIONS_NOT_SATISFIED; /* only the SD the application is associated with */
    if ((in->state & APP_STATE_LOCKED) || !in->mod->ops->personalize)
        return SW_CONDITIONS_NOT_SATISFIED;
    struct cm_state *st = cm_state(ctx);
    if (!st)
        return SW_FILE_FULL;
    st->perso = 1;
    st->perso_next = 0;
    st->target = aid;
    return confirm(rsp);
}

uint16_t tse_gp_install(struct tse_ctx *ctx, const struct tse_scp_session *s,
                        const struct tse_apdu *a, struct tse_response *rsp)
{
    uint8_t what = a->p1 & 0x7F;
    struct field f[6];
    bool ok = what == 0x02 ? fields(a, f, 5) : fields(a, f, 6), dm;
    uint16_t sw = may_manage(ctx, s, &dm);
    if (sw != SW_NO_ERROR)
        return sw;
    if (what != 0x02 && what != 0x04 && what != 0x08 && what != 0x0C && what != 0x10 &&
        what != 0x20 && what != 0x40)
        return SW_INCORRECT_P1P2;
    if (!ok)
        return SW_WRONG_DATA;
    if (dm && what != 0x20) { /* personalization needs no token */
        const struct field *t = &f[what == 0x02 ? 4 : 5];
        sw = verify_token(ctx, a, a->data, (size_t)(t->at - a->data), t->v, t->len);
        if (sw != SW_NO_ERROR)
            return sw;
        if (what == 0x02 && f[2].len == 0)
            return SW_WRONG_DATA; /* a load token signs the load file data block hash */
    }
    struct cm_state *st = cm_state(ctx);
    if (!st)
        return SW_FILE_FULL;
    st->loading = st->perso = 0; /* a new INSTALL ends any LOAD or personalization */
    st->dm_now = dm;
    switch (what) {
    case 0x02: {
        sw = for_load(ctx, f, rsp);
        struct load_state *ls = load_state(ctx, false);
        if (ls && sw == SW_NO_ERROR)
            ls->dm_load = dm;
        break;
    }
    case 0x08:
        sw = make_selectable(ctx, f, rsp);
        break;
    case 0x10:
        sw = extradite(ctx, f, rsp);
        break;
    case 0x20:
        sw = for_personalization(ctx, f, rsp);
        break;
    case 0x40:
        sw = registry_update(ctx, f, rsp);
        break;
    default:
        sw = install_app(ctx, what, f, rsp);
        break;
    }
    st->dm_now = 0;
    return sw;
}

/* ---- LOAD ------------------------------------------------------------------------------------ */

/* The bytes of one LOAD block that belong to the LFDB (hashed) and to the DAP signatures the
 * card must check (kept). `at` is the block's offset in the load stream. */
static void load_collect(struct load_state *st, const uint8_t *b, size_t len, uint32_t at)
{
    const struct tse_cap_info *in = &st->cap.info;
    uint64_t end = (uint64_t)at + len;
    if (st->hash_len && in->lfdb_offset) {
        uint64_t from = at > in->lfdb_offset ? at : in->lfdb_offset;
        uint64_t to = (uint64_t)in->lfdb_offset + in->lfdb_len;
        if (to > end)
            to = end;
        if (from < to)
            tse_hash_update(&st->lfdb_hash, b + (from - at), (size_t)(to - from));
    }
    /* the signatures: complete DAP blocks and the one in progress */
    for (size_t k = 0; k <= in->n_dap && k < TSE_CAP_MAX_DAP; k++) {
        const struct tse_cap_dap *d = &in->dap[k];
        uint32_t sig_len = d->sig_len;
        if (!d->sig_offset || sig_len > sizeof(st->dap_sig[0]))
            continue;
        for (int v = 0; v < st->n_dap; v++) {
            if (!tse_aid_equal(&d->sd, &st->dap_sd[v]))
                continue;
            uint64_t from = at > d->sig_offset ? at : d->sig_offset;
            uint64_t to = (uint64_t)d->sig_offset + sig_len;
            if (to > end)
                to = end;
            if (from < to)
                memcpy(st->dap_sig[v] + (from - d->sig_offset), b + (from - at),
                       (size_t)(to - from));
        }
    }
}

/* End of a load: the LFDB hash against the one INSTALL [for load] gave (6A80), then each
 * required DAP block (6982 when missing or wrong). */
static uint16_t load_verify(struct tse_ctx *ctx, struct load_state *st)
{
    uint8_t hash[32];
    int hl = 0;
    if (st->hash_len) {
        hl = tse_hash_final(&st->lfdb_hash, hash);
        if (hl != st->hash_len)
            return SW_UNKNOWN;
        if (st->given_len && memcmp(st->given_hash, hash, (size_t)hl) != 0)
            return SW_WRONG_DATA; /* the load file is not the one INSTALL [for load] announced */
    }
    const struct tse_profile *p = ctx->card->prof;
    const struct tse_cap_info *in = &st->cap.info;
    for (int v = 0; v < st->n_dap; v++) {
        const struct tse_cap_dap *d = NULL;
        for (size_t k = 0; k < in->n_dap && k < TSE_CAP_MAX_DAP && !d; k++)
            if (tse_aid_equal(&in->dap[k].sd, &st->dap_sd[v]))
                d = &in->dap[k];
        if (!d || !p->dap_n_len || d->sig_len > sizeof(st->dap_sig[0]) ||
            tse_rsa_verify(p->dap_n, p->dap_n_len, p->dap_e, p->dap_e_len, hash, (size_t)hl,
                           st->dap_sig[v], d->sig_len) != 0)
            return SW_SECURITY_STATUS_NOT_SATISFIED;
    }
    return SW_NO_ERROR;
}

uint16_t tse_gp_load(struct tse_ctx *ctx, const struct tse_scp_session *s, const struct tse_apdu *a,
                     struct tse_response *rsp)
{
    bool dm;
    uint16_t sw = may_manage(ctx, s, &dm);
    if (sw != SW_NO_ERROR)
        return sw;
    struct cm_state *cs = cm_state(ctx);
    struct load_state *st = load_state(ctx, false);
    if (!cs || !cs->loading || !st || st->channel != tse_ctx_channel(ctx)) {
        if (cs)
            cs->loading = 0;
        return SW_CONDITIONS_NOT_SATISFIED; /* no INSTALL [for load] before (on this channel) */
    }
    if ((a->p1 != 0x00 && a->p1 != 0x80) || a->p2 != st->next_block) {
        cs->loading = 0; /* a block out of order ends the load: start again */
        return SW_INCORRECT_P1P2;
    }
    uint32_t before = st->cap.info.stream_len;
    if (a->lc == 0 || tse_cap_stream_feed(&st->cap, a->data, a->lc) != 0) {
        cs->loading = 0;
        return a->lc ? tse_cap_reason_sw(st->cap.reason) : SW_WRONG_LENGTH;
    }
    load_collect(st, a->data, a->lc, before);
    st->next_block++;
    if (a->p1 != 0x80)
        return SW_NO_ERROR;
    cs->loading = 0;
    st->channel = LOAD_NO_CHANNEL;
    if (tse_cap_stream_finish(&st->cap, NULL) != 0)
        return tse_cap_reason_sw(st->cap.reason);
    if ((sw = load_verify(ctx, st)) != SW_NO_ERROR)
        return sw;
    /* The CAP file must be the package INSTALL [for load] named, and this card's native code
     * must implement it: same package, same major version, every applet a native module.
     * Only then does the load file enter the registry. */
    const struct tse_cap_info *info = &st->cap.info;
    if (!tse_aid_equal(&info->package, &st->elf))
        return SW_WRONG_DATA;
    const struct tse_package_def *pd = tse_package_find(&info->package);
    if (!pd || pd->version_major != info->pkg_major || info->pkg_minor > pd->version_minor)
        return SW_WRONG_DATA;
    for (size_t i = 0; i < info->n_applets; i++) {
        bool found = false;
        for (size_t m = 0; m < pd->n_modules && !found; m++)
            found = pd->modules[m].aid_len == info->applets[i].aid.len &&
                    !memcmp(pd->modules[m].aid, info->applets[i].aid.b, info->applets[i].aid.len);
        if (!found)
            return SW_WRONG_DATA;
    }
    struct tse_elf e = {.aid = info->package,
                        .sd = st->sd,
                        .major = info->pkg_major,
                        .minor = info->pkg_minor,
                        .pkg = pd};
    int rc = tse_rt_elf_add(ctx->card, &e);
    if (rc == TSE_ERR_EXISTS)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (rc)
        return tse_sw_from_err(rc);
    cs->dm_now = st->dm_load;
    sw = done(ctx, rsp, &e.aid, &e.sd, NULL);
    cs->dm_now = 0;
    st->dm_load = 0;
    return sw;
}

/* ---- DELETE --------------------------------------------------------------------------------- */

/* Add `aid` to the deletion list once. */
static bool add_victim(struct tse_aid *v, size_t *n, size_t cap, const struct tse_aid *aid)
{
    for (size_t i = 0; i < *n; i++)
        if (tse_aid_equal(&v[i], aid))
            return true;
    if (*n == cap)
        return false;
    v[(*n)++] = *aid;
    return true;
}

/* Everything that goes with `aid` when P2 asks for related objects: the instances of a load
 * file; the applications, domains and load files of a domain's subtree. */
static bool add_related(struct tse_card *card, const struct tse_aid *aid, struct tse_aid *v,
                        size_t *n, size_t cap)
{
    for (size_t i = 0; i < card->n_inst; i++) {
        const struct tse_instance *in = tse_rt_inst(card, i);
        if ((tse_aid_equal(&in->package, aid) || under(card, assoc_of(card, in), aid)) &&
            !add_victim(v, n, cap, &in->aid))
            return false;
    }
    struct tse_elf e;
    for (size_t i = 0; tse_rt_elf_nth(card, i, &e) == 0; i++)
        if (!e.rom && under(card, &e.sd, aid) && !add_victim(v, n, cap, &e.aid))
            return false;
    return true;
}

/* Whether anything is still attached to `aid` (instances of a load file, content of a domain). */
static bool has_related(struct tse_card *card, const struct tse_aid *aid)
{
    struct tse_aid v[1];
    size_t n = 0;
    return !add_related(card, aid, v, &n, 0) || n > 0;
}

uint16_t tse_gp_delete(struct tse_ctx *ctx, const struct tse_scp_session *s,
                       const struct tse_apdu *a, struct tse_response *rsp)
{
    const uint8_t *p = a->data, *token = NULL;
    size_t left = a->lc, tlen = 0, slen = 0;
    uint8_t signed_data[255]; /* the data without the 9E token object */
    struct tse_tlv t;
    /* the token (9E) and the signed data: every other object, in order */
    int r = 0;
    while (left) {
        const uint8_t *start = p;
        if ((r = tse_tlv_next(&p, &left, &t)) != 1)
            break;
        if (t.tag == 0x9E) {
            token = t.value;
            tlen = t.len;
        } else if (slen + (size_t)(p - start) <= sizeof(signed_data)) {
            memcpy(signed_data + slen, start, (size_t)(p - start));
            slen += (size_t)(p - start);
        }
    }
    bool dm;
    uint16_t sw = may_manage(ctx, s, &dm);
    if (sw != SW_NO_ERROR)
        return sw;
    if (a->p1 != 0x00 || (a->p2 & 0x7F))
        return SW_INCORRECT_P1P2;
    if (r < 0)
        return SW_WRONG_DATA;
    if (dm && (sw = verify_token(ctx, a, signed_data, slen, token, tlen)) != SW_NO_ERROR)
        return sw;
    bool related = (a->p2 & 0x80) != 0;
    struct tse_card *card = ctx->card;
    static const size_t cap = SYS_MAX_INSTANCES + SYS_MAX_ELFS;
    struct tse_aid victims[SYS_MAX_INSTANCES + SYS_MAX_ELFS];
    size_t n = 0, named = 0;
    p = a->data;
    left = a->lc;
    /* check everything first, so a refused entry leaves the others in place */
    while (tse_tlv_next(&p, &left, &t) == 1) {
        if (t.tag == 0x9E)
            continue;
        if (t.tag == 0xD0 || t.tag == 0xD2)
            return SW_REFERENCED_DATA_NOT_FOUND; /* key deletion: not supported */
        struct tse_aid aid;
        if (t.tag != 0x4F || t.len < TSE_AID_MIN || t.len > TSE_AID_MAX)
            return SW_WRONG_DATA;
        tse_aid_set(&aid, t.value, t.len);
        named++;
        if (tse_aid_equal(&aid, &card->prof->isd_aid) || tse_aid_equal(&aid, &ctx->inst->aid))
            return SW_CONDITIONS_NOT_SATISFIED; /* the ISD, or the SD doing the deleting */
        int idx = tse_rt_find(card, &aid);
        struct tse_elf e;
        if (idx >= 0) {
            if (!authority(ctx, assoc_of(card, tse_rt_inst(card, idx)), PRIV1_GLOBAL_DEL))
                return SW_CONDITIONS_NOT_SATISFIED;
            if (is_sd(tse_rt_inst(card, idx)) && has_related(card, &aid) && !related)
                return SW_CONDITIONS_NOT_SATISFIED; /* the domain still has content */
        } else if (tse_rt_elf_find(card, &aid, &e) == 0) {
            if (e.rom)
                return SW_CONDITIONS_NOT_SATISFIED; /* load files in ROM stay */
            if (!authority(ctx, &e.sd, PRIV1_GLOBAL_DEL))
                return SW_CONDITIONS_NOT_SATISFIED;
            if (has_related(card, &aid) && !related)
                return SW_CONDITIONS_NOT_SATISFIED; /* instances of it exist */
        } else {
            return SW_REFERENCED_DATA_NOT_FOUND;
        }
        if (!add_victim(victims, &n, cap, &aid) ||
            (related && !add_related(card, &aid, victims, &n, cap)))
            return SW_FILE_FULL;
    }
    if (named == 0)
        return SW_WRONG_DATA;
    for (size_t i = 0; i < n; i++)
        if (tse_aid_equal(&victims[i], &ctx->inst->aid))
            return SW_CONDITIONS_NOT_SATISFIED; /* would delete the SD doing the deleting */
    struct tse_aid first = victims[0]; /* the first AID named: the receipt's operation data */
    int rc = tse_rt_delete(card, victims, n);
    if (rc == TSE_ERR_STATE)
        return SW_CONDITIONS_NOT_SATISFIED; /* selected somewhere right now */
    if (rc)
        return tse_sw_from_err(rc);
    struct cm_state *st = cm_state(ctx);
    if (st)
        st->dm_now = dm;
    sw = done(ctx, rsp, &first, NULL, NULL);
    if (st)
        st->dm_now = 0;
    return sw;
}

/* ---- STORE DATA ----------------------------------------------------------------------------- */

/* STORE DATA to the security domain itself: BER-TLV 42 (IIN) and 45 (CIN). */
static uint16_t store_own(struct tse_ctx *ctx, const struct tse_apdu *a)
{
    if ((a->p1 & 0x18) != 0x10)
        return SW_WRONG_DATA; /* DGI-coded SD personalization is not supported (docs/gp.md) */
    if (a->p1 & 0x60)
        return SW_WRONG_DATA; /* nothing of ours is sent encrypted */
    const uint8_t *id;
    if (tse_ctx_pmem_get(ctx, TSE_GP_OBJ_IDENT, 0, &id, NULL) != 0)
        return SW_UNKNOWN;
    uint8_t ident[TSE_GP_IDENT_LEN];
    memcpy(ident, id, sizeof(ident));
    const uint8_t *p = a->data;
    size_t left = a->lc;
    struct tse_tlv t;
    int r;
    while ((r = tse_tlv_next(&p, &left, &t)) == 1) {
        if ((t.tag != 0x42 && t.tag != 0x45) || t.len == 0 || t.len > 16)
            return SW_WRONG_DATA;
        size_t at = t.tag == 0x42 ? 42 : 59;
        ident[at] = (uint8_t)t.len;
        memset(ident + at + 1, 0, 16);
        memcpy(ident + at + 1, t.value, t.len);
    }
    if (r < 0 || a->lc == 0)
        return SW_WRONG_DATA;
    return tse_sw_from_err(tse_ctx_pmem_write(ctx, TSE_GP_OBJ_IDENT, 0, ident, sizeof(ident)));
}

uint16_t tse_gp_store_data(struct tse_ctx *ctx, struct tse_scp_session *s, const struct tse_apdu *a,
                           struct tse_response *rsp)
{
    if (!tse_gp_level_ok(ctx, s))
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    uint8_t lc = tse_rt_card_life_cycle(ctx->card);
    if (lc == TSE_LC_CARD_LOCKED || lc == TSE_LC_TERMINATED)
        return SW_CONDITIONS_NOT_SATISFIED;
    struct cm_state *st = cm_state(ctx);
    if (!st)
        return SW_FILE_FULL;
    bool last = (a->p1 & 0x80) != 0;
    if (!st->perso) {
        if (a->p2 != st->store_next)
            return SW_INCORRECT_P1P2;
        uint16_t sw = store_own(ctx, a);
        st->store_next = last || sw != SW_NO_ERROR ? 0 : (uint8_t)(st->store_next + 1);
        return sw;
    }
    struct tse_card *card = ctx->card;
    int idx = tse_rt_find(card, &st->target);
    if (idx < 0 || (tse_rt_inst(card, idx)->state & APP_STATE_LOCKED)) {
        st->perso = 0;
        return SW_CONDITIONS_NOT_SATISFIED;
    }
    if (a->p2 != st->perso_next && a->p2 != 0)
        return SW_INCORRECT_P1P2; /* blocks count from 00; 00 starts the sequence again */
    uint16_t sw;
    int rc =
        tse_rt_personalize(card, idx, tse_ctx_interface(ctx), tse_ctx_channel(ctx), s, a, rsp, &sw);
    if (tse_store_torn(card->store))
        return SW_UNKNOWN;
    if (rc)
        return SW_CONDITIONS_NOT_SATISFIED;
    st->perso_next = (uint8_t)(a->p2 + 1);
    if (last)
        st->perso = 0;
    return sw;
}
