/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The applet runtime: native packages, instances and their contexts, the persistent and
 * transient memory an instance may reach, transactions, card services and counters.
 *
 * Isolation: every context call is scoped by the context's own ctx_id; no function takes
 * another owner's id, so an instance can only name its own objects. Cross-instance calls
 * go through tse_ctx_call_service(), where only bytes cross.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cos/card_internal.h"
#include "tse/sw.h"

#define MAX_CALL_DEPTH 4

const struct tse_package_def *tse_package_find(const struct tse_aid *aid)
{
    for (size_t i = 0; tse_native_packages[i]; i++) {
        const struct tse_package_def *p = tse_native_packages[i];
        if (p->aid_len == aid->len && !memcmp(p->aid, aid->b, aid->len))
            return p;
    }
    return NULL;
}

static const struct tse_module_def *module_find(const struct tse_package_def *p,
                                                const struct tse_aid *aid)
{
    for (size_t i = 0; i < p->n_modules; i++)
        if (p->modules[i].aid_len == aid->len && !memcmp(p->modules[i].aid, aid->b, aid->len))
            return &p->modules[i];
    return NULL;
}

int tse_response_append(struct tse_response *r, const uint8_t *b, size_t len)
{
    if (len > r->cap - r->len)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (len)
        memcpy(r->data + r->len, b, len);
    r->len += len;
    return 0;
}

uint16_t tse_sw_from_err(int err)
{
    switch (err) {
    case TSE_OK:
        return SW_NO_ERROR;
    case TSE_ERR_NO_SPACE:
    case TSE_ERR_TXN_FULL:
        return SW_FILE_FULL;
    default:
        return SW_UNKNOWN;
    }
}

/* ---- instance records ------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void rec_encode(const struct tse_instance *in, uint8_t r[INST_REC_LEN])
{
    memset(r, 0, INST_REC_LEN);
    r[0] = in->state;
    r[1] = in->default_on;
    put32(r + 4, in->ctx_id);
    put32(r + 8, in->pquota);
    put32(r + 12, in->tquota);
    r[16] = in->aid.len;
    memcpy(r + 17, in->aid.b, in->aid.len);
    r[33] = in->package.len;
    memcpy(r + 34, in->package.b, in->package.len);
    r[50] = in->module.len;
    memcpy(r + 51, in->module.b, in->module.len);
    memcpy(r + 68, in->priv, 3);
    r[80] = in->sd.len;
    memcpy(r + 81, in->sd.b, in->sd.len);
    memcpy(r + 100, in->cl, sizeof(in->cl));
}

static int rec_decode(const uint8_t *r, size_t len, struct tse_instance *in)
{
    if ((len != INST_REC_LEN && len != INST_REC_LEN_V1) || r[16] > TSE_AID_MAX ||
        r[33] > TSE_AID_MAX || r[50] > TSE_AID_MAX || (len == INST_REC_LEN && r[80] > TSE_AID_MAX))
        return TSE_ERR_CORRUPT;
    memset(in, 0, sizeof(*in));
    in->state = r[0];
    in->default_on = r[1];
    in->ctx_id = get32(r + 4);
    in->pquota = get32(r + 8);
    in->tquota = get32(r + 12);
    tse_aid_set(&in->aid, r + 17, r[16]);
    tse_aid_set(&in->package, r + 34, r[33]);
    tse_aid_set(&in->module, r + 51, r[50]);
    memcpy(in->priv, r + 68, 3);
    if (len == INST_REC_LEN) {
        tse_aid_set(&in->sd, r + 81, r[80]);
        memcpy(in->cl, r + 100, sizeof(in->cl));
    }
    return 0;
}

/* Room for one more instance: entries never move (callbacks hold pointers into the table
 * while the card manager installs others), so the table grows by whole blocks. */
static int reserve(struct tse_card *card)
{
    size_t b = card->n_inst / TSE_INST_BLOCK;
    if (b >= SYS_MAX_INSTANCES / TSE_INST_BLOCK)
        return TSE_ERR_NO_SPACE;
    if (!card->inst_blk[b])
        card->inst_blk[b] = calloc(TSE_INST_BLOCK, sizeof(struct tse_instance));
    return card->inst_blk[b] ? 0 : TSE_ERR_NO_MEMORY;
}

void tse_rt_unload(struct tse_card *card)
{
    for (size_t b = 0; b < SYS_MAX_INSTANCES / TSE_INST_BLOCK; b++) {
        free(card->inst_blk[b]);
        card->inst_blk[b] = NULL;
    }
    card->n_inst = 0;
}

int tse_rt_load(struct tse_card *card, char *err, size_t errlen)
{
    tse_rt_unload(card);
    uint32_t id;
    for (size_t i = 0; tse_store_owner_nth(card->store, 0, i, &id) == 0; i++) {
        if (id < SYS_OBJ_INSTANCE0 || id >= SYS_OBJ_INSTANCE0 + SYS_MAX_INSTANCES)
            continue;
        const uint8_t *r;
        size_t len;
        tse_store_get(card->store, 0, id, &r, &len);
        struct tse_instance in;
        if (rec_decode(r, len, &in) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "instance record %u is malformed (corrupt image)",
                         (unsigned)id);
            return TSE_ERR_CORRUPT;
        }
        in.rec_id = (uint16_t)id;
        in.pkg = tse_package_find(&in.package);
        in.mod = in.pkg ? module_find(in.pkg, &in.module) : NULL;
        if (!in.mod) {
            char hex[2 * TSE_AID_MAX + 1];
            tse_hex_encode(in.module.b, in.module.len, hex);
            if (err && errlen)
                snprintf(err, errlen, "the image needs native module %s, which this build lacks",
                         hex);
            return TSE_ERR_VERSION;
        }
        if (reserve(card) != 0)
            return TSE_ERR_NO_MEMORY;
        *tse_rt_inst(card, card->n_inst++) = in;
    }
    return 0;
}

int tse_rt_find(const struct tse_card *card, const struct tse_aid *aid)
{
    for (size_t i = 0; i < card->n_inst; i++)
        if (tse_aid_equal(&tse_rt_inst(card, i)->aid, aid))
            return (int)i;
    return -1;
}

bool tse_rt_selectable(const struct tse_instance *in)
{
    return (in->state & 0x07) == 0x07 && !(in->state & APP_STATE_LOCKED);
}

void tse_rt_ctx(struct tse_card *card, int idx, int iface, uint8_t channel, struct tse_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->card = card;
    ctx->inst = tse_rt_inst(card, idx);
    ctx->iface = iface;
    ctx->channel = channel;
}

void tse_rt_end_callback(struct tse_card *card, struct tse_ctx *ctx)
{
    if (card->txn_owner == ctx) {
        tse_store_abort(card->store);
        card->txn_owner = NULL;
    }
}

static uint32_t meta_next_ctx(struct tse_card *card)
{
    const uint8_t *m;
    if (tse_store_get(card->store, 0, SYS_OBJ_META, &m, NULL) != 0)
        return 0;
    return get32(m + META_NEXT_CTX);
}

uint8_t tse_rt_card_life_cycle(const struct tse_card *card)
{
    const uint8_t *m;
    if (tse_store_get(card->store, 0, SYS_OBJ_META, &m, NULL) != 0)
        return 0;
    return m[META_LIFE_CYCLE];
}

int tse_rt_set_card_life_cycle(struct tse_card *card, uint8_t lc)
{
    return tse_store_write(card->store, 0, SYS_OBJ_META, META_LIFE_CYCLE, &lc, 1);
}

int tse_rt_install(struct tse_card *card, const struct tse_aid *pkg, const struct tse_aid *mod,
                   const struct tse_aid *aid, const uint8_t *params, size_t plen,
                   const struct tse_rt_install_opts *o, uint16_t *sw)
{
    *sw = SW_UNKNOWN;
    const struct tse_package_def *pd = tse_package_find(pkg);
    const struct tse_module_def *md = pd ? module_find(pd, mod) : NULL;
    if (!md || !tse_rt_package_present(card, pkg))
        return TSE_ERR_NOT_FOUND;
    if (aid->len < TSE_AID_MIN || tse_rt_find(card, aid) >= 0)
        return aid->len < TSE_AID_MIN ? TSE_ERR_INVALID_ARG : TSE_ERR_EXISTS;
    uint16_t rec_id = 0;
    for (uint16_t id = SYS_OBJ_INSTANCE0; id < SYS_OBJ_INSTANCE0 + SYS_MAX_INSTANCES; id++)
        if (tse_store_get(card->store, 0, id, NULL, NULL) != 0) {
            rec_id = id;
            break;
        }
    if (!rec_id)
        return TSE_ERR_NO_SPACE;
    struct tse_instance in = {.aid = *aid,
                              .package = *pkg,
                              .module = *mod,
                              .ctx_id = meta_next_ctx(card),
                              .rec_id = rec_id,
                              .state = o->state ? o->state : APP_STATE_SELECTABLE,
                              .default_on = o->default_on,
                              .pquota = o->pquota,
                              .tquota = o->tquota,
                              .pkg = pd,
                              .mod = md};
    memcpy(in.priv, o->priv, 3);
    in.sd = o->sd;
    memcpy(in.cl, o->cl, sizeof(in.cl));
    if (in.ctx_id == 0)
        return TSE_ERR_CORRUPT;
    int rc = reserve(card);
    if (rc)
        return rc;
    rc = tse_store_begin(card->store);
    if (rc)
        return rc;
    uint8_t rec[INST_REC_LEN], next[4];
    rec_encode(&in, rec);
    put32(next, in.ctx_id + 1);
    rc = tse_store_create_obj(card->store, 0, rec_id, INST_REC_LEN);
    if (!rc)
        rc = tse_store_write(card->store, 0, rec_id, 0, rec, sizeof(rec));
    if (!rc)
        rc = tse_store_write(card->store, 0, SYS_OBJ_META, META_NEXT_CTX, next, 4);
    if (!rc) {
        *tse_rt_inst(card, card->n_inst++) = in;
        *sw = SW_NO_ERROR;
        if (md->ops->install) {
            struct tse_ctx ctx;
            tse_rt_ctx(card, (int)card->n_inst - 1, TSE_IF_CONTACT, 0, &ctx);
            ctx.installing = true;
            *sw = md->ops->install(&ctx, params, plen);
        }
        if (tse_store_torn(card->store))
            rc = TSE_ERR_TORN;
        else if (*sw != SW_NO_ERROR)
            rc = TSE_ERR_DENIED;
        if (rc) {
            card->n_inst--;
            tse_rt_ram_clear(card, -1, in.ctx_id, 0);
        }
    }
    if (rc) {
        tse_store_abort(card->store);
        return rc;
    }
    return tse_store_commit(card->store);
}

/* ---- load files ------------------------------------------------------------------------------ */

static bool rom_package(const struct tse_card *card, const struct tse_package_def *pd)
{
    struct tse_aid a;
    tse_aid_set(&a, pd->aid, pd->aid_len);
    /* the card's own packages are always there: security domains, contactless registry */
    static const struct tse_aid sd_pkg = {.len = 7,
                                          .b = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50}};
    static const struct tse_aid cl_pkg = {.len = 8,
                                          .b = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x43, 0x52, 0x53}};
    if (tse_aid_equal(&a, &sd_pkg) || tse_aid_equal(&a, &cl_pkg))
        return true;
    if (card->prof->rom_all)
        return true;
    for (size_t i = 0; i < card->prof->n_rom; i++)
        if (tse_aid_equal(&card->prof->rom[i], &a))
            return true;
    return false;
}

static int elf_decode(const uint8_t *r, size_t len, struct tse_elf *e)
{
    if (len != ELF_REC_LEN || r[3] > TSE_AID_MAX || r[20] > TSE_AID_MAX)
        return TSE_ERR_CORRUPT;
    memset(e, 0, sizeof(*e));
    e->major = r[1];
    e->minor = r[2];
    tse_aid_set(&e->aid, r + 4, r[3]);
    tse_aid_set(&e->sd, r + 21, r[20]);
    e->pkg = tse_package_find(&e->aid);
    return 0;
}

static void elf_encode(const struct tse_elf *e, uint8_t r[ELF_REC_LEN])
{
    memset(r, 0, ELF_REC_LEN);
    r[0] = 0x01; /* LOADED */
    r[1] = e->major;
    r[2] = e->minor;
    r[3] = e->aid.len;
    memcpy(r + 4, e->aid.b, e->aid.len);
    r[20] = e->sd.len;
    memcpy(r + 21, e->sd.b, e->sd.len);
}

/* Store id of the loaded load file `aid`, 0 if none. */
static uint32_t elf_rec(const struct tse_card *card, const struct tse_aid *aid, struct tse_elf *e)
{
    for (uint32_t id = SYS_OBJ_ELF0; id < SYS_OBJ_ELF0 + SYS_MAX_ELFS; id++) {
        const uint8_t *r;
        size_t len;
        struct tse_elf x;
        if (tse_store_get(card->store, 0, id, &r, &len) == 0 && elf_decode(r, len, &x) == 0 &&
            tse_aid_equal(&x.aid, aid)) {
            if (e)
                *e = x;
            return id;
        }
    }
    return 0;
}

int tse_rt_elf_nth(const struct tse_card *card, size_t n, struct tse_elf *e)
{
    for (size_t i = 0; tse_native_packages[i]; i++) {
        const struct tse_package_def *pd = tse_native_packages[i];
        if (!rom_package(card, pd))
            continue;
        if (n-- == 0) {
            memset(e, 0, sizeof(*e));
            tse_aid_set(&e->aid, pd->aid, pd->aid_len);
            e->sd = card->prof->isd_aid;
            e->major = pd->version_major;
            e->minor = pd->version_minor;
            e->rom = true;
            e->pkg = pd;
            return 0;
        }
    }
    for (uint32_t id = SYS_OBJ_ELF0; id < SYS_OBJ_ELF0 + SYS_MAX_ELFS; id++) {
        const uint8_t *r;
        size_t len;
        if (tse_store_get(card->store, 0, id, &r, &len) != 0)
            continue;
        if (n-- == 0)
            return elf_decode(r, len, e);
    }
    return TSE_ERR_NOT_FOUND;
}

int tse_rt_elf_find(const struct tse_card *card, const struct tse_aid *aid, struct tse_elf *e)
{
    struct tse_elf x;
    for (size_t i = 0; tse_rt_elf_nth(card, i, &x) == 0; i++)
        if (tse_aid_equal(&x.aid, aid)) {
            if (e)
                *e = x;
            return 0;
        }
    return TSE_ERR_NOT_FOUND;
}

bool tse_rt_package_present(const struct tse_card *card, const struct tse_aid *pkg)
{
    return tse_rt_elf_find(card, pkg, NULL) == 0;
}

int tse_rt_elf_add(struct tse_card *card, const struct tse_elf *e)
{
    if (tse_rt_package_present(card, &e->aid))
        return TSE_ERR_EXISTS;
    uint32_t rec_id = 0;
    for (uint32_t id = SYS_OBJ_ELF0; id < SYS_OBJ_ELF0 + SYS_MAX_ELFS && !rec_id; id++)
        if (tse_store_get(card->store, 0, id, NULL, NULL) != 0)
            rec_id = id;
    if (!rec_id)
        return TSE_ERR_NO_SPACE;
    uint8_t r[ELF_REC_LEN];
    elf_encode(e, r);
    bool own = !tse_store_in_txn(card->store);
    int rc = own ? tse_store_begin(card->store) : 0;
    if (!rc)
        rc = tse_store_create_obj(card->store, 0, rec_id, ELF_REC_LEN);
    if (!rc)
        rc = tse_store_write(card->store, 0, rec_id, 0, r, sizeof(r));
    if (own)
        rc = rc ? (tse_store_abort(card->store), rc) : tse_store_commit(card->store);
    return rc;
}

int tse_rt_elf_set_sd(struct tse_card *card, const struct tse_aid *aid, const struct tse_aid *sd)
{
    struct tse_elf e;
    uint32_t id = elf_rec(card, aid, &e);
    if (!id)
        return TSE_ERR_NOT_FOUND;
    e.sd = *sd;
    uint8_t r[ELF_REC_LEN];
    elf_encode(&e, r);
    return tse_store_write(card->store, 0, id, 0, r, sizeof(r));
}

/* ---- deletion ------------------------------------------------------------------------------ */

int tse_rt_delete(struct tse_card *card, const struct tse_aid *aids, size_t n)
{
    /* check everything first */
    for (size_t k = 0; k < n; k++) {
        int idx = tse_rt_find(card, &aids[k]);
        if (idx < 0) {
            struct tse_elf e;
            if (tse_rt_elf_find(card, &aids[k], &e) != 0)
                return TSE_ERR_NOT_FOUND;
            if (e.rom)
                return TSE_ERR_DENIED;
            continue;
        }
        for (int f = 0; f < TSE_IF_COUNT; f++)
            for (int c = 0; c < TSE_MAX_CHANNELS; c++)
                if (card->ifs[f].ch[c].open && card->ifs[f].ch[c].sel == idx)
                    return TSE_ERR_STATE;
    }
    int rc = tse_store_begin(card->store);
    if (rc)
        return rc;
    for (size_t k = 0; k < n && !rc; k++) {
        int idx = tse_rt_find(card, &aids[k]);
        if (idx < 0) {
            uint32_t id = elf_rec(card, &aids[k], NULL);
            rc = id ? tse_store_delete(card->store, 0, id) : 0; /* listed twice: gone already */
            continue;
        }
        struct tse_instance *in = tse_rt_inst(card, idx);
        if (in->mod->ops->uninstall) {
            struct tse_ctx ctx;
            tse_rt_ctx(card, idx, TSE_IF_CONTACT, 0, &ctx);
            ctx.installing = true; /* its writes belong to the runtime's transaction */
            in->mod->ops->uninstall(&ctx);
        }
        rc = tse_store_torn(card->store) ? TSE_ERR_TORN : 0;
        if (!rc)
            rc = tse_store_delete_owner(card->store, in->ctx_id);
        if (!rc && tse_store_get(card->store, 0, in->rec_id, NULL, NULL) == 0)
            rc = tse_store_delete(card->store, 0, in->rec_id);
    }
    if (!rc)
        rc = tse_store_commit(card->store);
    if (rc) {
        tse_store_abort(card->store);
        return rc;
    }
    /* durable: now the memory image follows */
    for (size_t k = 0; k < n; k++) {
        int idx = tse_rt_find(card, &aids[k]);
        if (idx < 0)
            continue;
        uint32_t ctx_id = tse_rt_inst(card, idx)->ctx_id;
        for (int f = 0; f < TSE_IF_COUNT; f++) {
            tse_rt_ram_clear(card, f, ctx_id, 0);
            for (int c = 0; c < TSE_MAX_CHANNELS; c++)
                if (card->ifs[f].ch[c].sel > idx)
                    card->ifs[f].ch[c].sel--;
        }
        for (size_t j = (size_t)idx; j + 1 < card->n_inst; j++)
            *tse_rt_inst(card, j) = *tse_rt_inst(card, j + 1);
        card->n_inst--;
    }
    return 0;
}

int tse_rt_uninstall(struct tse_card *card, const struct tse_aid *aid)
{
    if (tse_rt_find(card, aid) < 0)
        return TSE_ERR_NOT_FOUND;
    return tse_rt_delete(card, aid, 1);
}

int tse_rt_set_state(struct tse_card *card, int idx, uint8_t state)
{
    struct tse_instance *in = tse_rt_inst(card, idx);
    uint8_t old = in->state;
    in->state = state;
    uint8_t rec[INST_REC_LEN];
    rec_encode(in, rec);
    int rc = tse_store_write(card->store, 0, in->rec_id, 0, rec, 1);
    if (rc)
        in->state = old;
    return rc;
}

int tse_rt_personalize(struct tse_card *card, int idx, int iface, uint8_t channel,
                       struct tse_scp_session *s, const struct tse_apdu *a,
                       struct tse_response *rsp, uint16_t *sw)
{
    const struct tse_applet_ops *ops = tse_rt_inst(card, idx)->mod->ops;
    if (!ops->personalize)
        return TSE_ERR_NOT_FOUND;
    struct tse_ctx ctx;
    tse_rt_ctx(card, idx, iface, channel, &ctx);
    card->perso_session = s;
    card->call_depth++;
    *sw = ops->personalize(&ctx, a, rsp);
    card->call_depth--;
    card->perso_session = NULL;
    tse_rt_end_callback(card, &ctx);
    return 0;
}

int tse_rt_save(struct tse_card *card, int idx)
{
    struct tse_instance *in = tse_rt_inst(card, idx);
    size_t len;
    if (tse_store_get(card->store, 0, in->rec_id, NULL, &len) != 0)
        return TSE_ERR_CORRUPT;
    uint8_t rec[INST_REC_LEN];
    rec_encode(in, rec);
    /* a record from an older image keeps its length: fields past it are not kept there */
    return tse_store_write(card->store, 0, in->rec_id, 0, rec,
                           len < sizeof(rec) ? len : sizeof(rec));
}

int tse_rt_set_cl(struct tse_card *card, int idx, const uint8_t cl[16])
{
    struct tse_instance *in = tse_rt_inst(card, idx);
    size_t len;
    if (tse_store_get(card->store, 0, in->rec_id, NULL, &len) != 0)
        return TSE_ERR_CORRUPT;
    if (len < INST_REC_LEN)
        return TSE_ERR_STATE; /* nowhere to keep the data in an old record */
    uint8_t old[sizeof(in->cl)];
    memcpy(old, in->cl, sizeof(old));
    memcpy(in->cl, cl, sizeof(in->cl));
    int rc = tse_rt_save(card, idx);
    if (rc)
        memcpy(in->cl, old, sizeof(old));
    return rc;
}

/* ---- context: identity --------------------------------------------------------------------- */

const struct tse_aid *tse_ctx_aid(const struct tse_ctx *ctx)
{
    return &ctx->inst->aid;
}

int tse_ctx_interface(const struct tse_ctx *ctx)
{
    return ctx->iface;
}

uint8_t tse_ctx_channel(const struct tse_ctx *ctx)
{
    return ctx->channel;
}

/* ---- persistent objects -------------------------------------------------------------------- */

int tse_ctx_pmem_get(struct tse_ctx *ctx, uint16_t id, size_t size, const uint8_t **data,
                     size_t *len)
{
    struct tse_store *s = ctx->card->store;
    uint32_t owner = ctx->inst->ctx_id;
    size_t have;
    int rc = tse_store_get(s, owner, id, data, &have);
    if (rc == 0) {
        if (size && size != have)
            return TSE_ERR_INVALID_ARG;
        if (len)
            *len = have;
        return 0;
    }
    if (size == 0)
        return TSE_ERR_NOT_FOUND;
    if (ctx->inst->pquota &&
        tse_store_owner_used(s, owner) + size + TSE_STORE_OBJ_OVERHEAD > ctx->inst->pquota)
        return TSE_ERR_NO_SPACE;
    rc = tse_store_create_obj(s, owner, id, size);
    if (rc)
        return rc;
    if (len)
        *len = size;
    return tse_store_get(s, owner, id, data, NULL);
}

int tse_ctx_pmem_write(struct tse_ctx *ctx, uint16_t id, size_t off, const uint8_t *src, size_t len)
{
    return tse_store_write(ctx->card->store, ctx->inst->ctx_id, id, off, src, len);
}

int tse_ctx_pmem_write_nonatomic(struct tse_ctx *ctx, uint16_t id, size_t off, const uint8_t *src,
                                 size_t len)
{
    return tse_store_write_nonatomic(ctx->card->store, ctx->inst->ctx_id, id, off, src, len);
}

int tse_ctx_pmem_delete(struct tse_ctx *ctx, uint16_t id)
{
    return tse_store_delete(ctx->card->store, ctx->inst->ctx_id, id);
}

size_t tse_ctx_pmem_used(const struct tse_ctx *ctx)
{
    return tse_store_owner_used(ctx->card->store, ctx->inst->ctx_id);
}

/* ---- transactions ---------------------------------------------------------------------------- */

int tse_ctx_txn_begin(struct tse_ctx *ctx)
{
    if (ctx->installing) { /* install() already runs inside the runtime's transaction */
        if (ctx->txn_depth_virtual)
            return TSE_ERR_TXN_NESTED;
        ctx->txn_depth_virtual = 1;
        return 0;
    }
    int rc = tse_store_begin(ctx->card->store);
    if (rc == 0)
        ctx->card->txn_owner = ctx;
    return rc;
}

int tse_ctx_txn_commit(struct tse_ctx *ctx)
{
    if (ctx->installing) {
        if (!ctx->txn_depth_virtual)
            return TSE_ERR_TXN_NONE;
        ctx->txn_depth_virtual = 0;
        return 0;
    }
    if (ctx->card->txn_owner != ctx && tse_store_in_txn(ctx->card->store))
        return TSE_ERR_STATE; /* a transaction of another context (service call) */
    int rc = tse_store_commit(ctx->card->store);
    if (rc != TSE_ERR_TXN_NONE)
        ctx->card->txn_owner = NULL;
    return rc;
}

int tse_ctx_txn_abort(struct tse_ctx *ctx)
{
    if (ctx->installing) {
        /* The runtime cannot undo part of its own transaction: the applet's install fails. */
        if (!ctx->txn_depth_virtual)
            return TSE_ERR_TXN_NONE;
        ctx->txn_depth_virtual = 0;
        return TSE_ERR_STATE;
    }
    if (ctx->card->txn_owner != ctx && tse_store_in_txn(ctx->card->store))
        return TSE_ERR_STATE;
    int rc = tse_store_abort(ctx->card->store);
    if (rc != TSE_ERR_TXN_NONE)
        ctx->card->txn_owner = NULL;
    return rc;
}

int tse_ctx_txn_depth(const struct tse_ctx *ctx)
{
    if (ctx->installing)
        return ctx->txn_depth_virtual;
    return tse_store_in_txn(ctx->card->store) ? 1 : 0;
}

/* ---- transient memory --------------------------------------------------------------------------
 */

int tse_ctx_transient(struct tse_ctx *ctx, uint16_t id, size_t size, enum tse_transient_kind kind,
                      uint8_t **data)
{
    if (kind != TSE_CLEAR_ON_RESET && kind != TSE_CLEAR_ON_DESELECT)
        return TSE_ERR_INVALID_ARG;
    struct tse_card *card = ctx->card;
    struct tse_iface_state *f = &card->ifs[ctx->iface];
    size_t mine = 0;
    for (size_t i = 0; i < f->n_ram; i++) {
        struct tse_transient *t = &f->ram[i];
        if (t->ctx_id != ctx->inst->ctx_id)
            continue;
        if (t->id == id) {
            if ((size && size != t->size) || t->kind != kind)
                return TSE_ERR_INVALID_ARG;
            *data = t->data;
            return 0;
        }
        mine += t->size;
    }
    if (size == 0)
        return TSE_ERR_NOT_FOUND;
    if ((ctx->inst->tquota && mine + size > ctx->inst->tquota) ||
        f->ram_used + size > card->prof->transient_memory)
        return TSE_ERR_NO_SPACE;
    struct tse_transient *nr = realloc(f->ram, (f->n_ram + 1) * sizeof(*nr));
    if (!nr)
        return TSE_ERR_NO_MEMORY;
    f->ram = nr;
    uint8_t *buf = calloc(1, size);
    if (!buf)
        return TSE_ERR_NO_MEMORY;
    f->ram[f->n_ram++] = (struct tse_transient){ctx->inst->ctx_id, id, (uint8_t)kind, size, buf};
    f->ram_used += size;
    *data = buf;
    return 0;
}

/* Zero the areas of one instance (kinds = bit mask of tse_transient_kind; 0 = free them).
 * iface -1 = every interface. */
void tse_rt_ram_clear(struct tse_card *card, int iface, uint32_t ctx_id, uint8_t kinds)
{
    for (int fi = 0; fi < TSE_IF_COUNT; fi++) {
        if (iface >= 0 && fi != iface)
            continue;
        struct tse_iface_state *f = &card->ifs[fi];
        for (size_t i = 0; i < f->n_ram;) {
            struct tse_transient *t = &f->ram[i];
            if (t->ctx_id != ctx_id) {
                i++;
                continue;
            }
            if (kinds == 0) {
                f->ram_used -= t->size;
                free(t->data);
                f->ram[i] = f->ram[--f->n_ram];
                continue;
            }
            if (kinds & t->kind)
                memset(t->data, 0, t->size);
            i++;
        }
    }
}

void tse_rt_ram_free(struct tse_card *card, int iface)
{
    struct tse_iface_state *f = &card->ifs[iface];
    for (size_t i = 0; i < f->n_ram; i++)
        free(f->ram[i].data);
    free(f->ram);
    f->ram = NULL;
    f->n_ram = 0;
    f->ram_used = 0;
}

/* ---- card services ------------------------------------------------------------------------------
 */

int tse_ctx_random(struct tse_ctx *ctx, uint8_t *buf, size_t len)
{
    return tse_rng_bytes(ctx->card, buf, len);
}

int64_t tse_ctx_time(const struct tse_ctx *ctx)
{
    return tse_clock_now(ctx->card);
}

int tse_counter_index(const struct tse_card *card, const char *name)
{
    for (size_t i = 0; i < card->prof->n_counters; i++)
        if (!strcmp(card->prof->counters[i].name, name))
            return (int)i;
    return -1;
}

int tse_counter_read(struct tse_card *card, int idx, uint64_t *v)
{
    const uint8_t *b;
    size_t len;
    int rc = tse_store_get(card->store, 0, SYS_OBJ_COUNTER0 + (uint32_t)idx, &b, &len);
    if (rc == TSE_ERR_NOT_FOUND) { /* a counter newer than the image: its initial value */
        *v = card->prof->counters[idx].value;
        return 0;
    }
    if (rc)
        return rc;
    if (len != 8)
        return TSE_ERR_CORRUPT;
    *v = (uint64_t)get32(b) << 32 | get32(b + 4);
    return 0;
}

int tse_counter_write(struct tse_card *card, int idx, uint64_t v)
{
    if (v > card->prof->counters[idx].max)
        return TSE_ERR_INVALID_ARG;
    uint8_t b[8];
    put32(b, (uint32_t)(v >> 32));
    put32(b + 4, (uint32_t)v);
    uint32_t id = SYS_OBJ_COUNTER0 + (uint32_t)idx;
    if (tse_store_get(card->store, 0, id, NULL, NULL) == TSE_ERR_NOT_FOUND) {
        /* first write of a counter newer than the image: object and value in one step */
        bool own = !tse_store_in_txn(card->store);
        int rc = own ? tse_store_begin(card->store) : 0;
        if (!rc)
            rc = tse_store_create_obj(card->store, 0, id, 8);
        if (!rc)
            rc = tse_store_write(card->store, 0, id, 0, b, 8);
        if (own)
            rc = rc ? (tse_store_abort(card->store), rc) : tse_store_commit(card->store);
        return rc;
    }
    return tse_store_write(card->store, 0, id, 0, b, 8);
}

int tse_ctx_counter_get(struct tse_ctx *ctx, const char *name, uint64_t *value)
{
    int idx = tse_counter_index(ctx->card, name);
    return idx < 0 ? TSE_ERR_NOT_FOUND : tse_counter_read(ctx->card, idx, value);
}

int tse_ctx_counter_set(struct tse_ctx *ctx, const char *name, uint64_t value)
{
    int idx = tse_counter_index(ctx->card, name);
    return idx < 0 ? TSE_ERR_NOT_FOUND : tse_counter_write(ctx->card, idx, value);
}

int tse_ctx_call_service(struct tse_ctx *ctx, const struct tse_aid *server, uint8_t service_id,
                         const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                         size_t *out_len)
{
    struct tse_card *card = ctx->card;
    int idx = tse_rt_find(card, server);
    if (idx < 0)
        return TSE_ERR_NOT_FOUND;
    struct tse_instance *si = tse_rt_inst(card, idx);
    if (!si->mod->ops->service || !tse_rt_selectable(si))
        return TSE_ERR_DENIED;
    if (card->call_depth >= MAX_CALL_DEPTH)
        return TSE_ERR_STATE;
    struct tse_ctx sctx;
    tse_rt_ctx(card, idx, ctx->iface, ctx->channel, &sctx);
    sctx.installing = ctx->installing;
    card->call_depth++;
    struct tse_aid client = ctx->inst->aid;
    *out_len = 0;
    int rc = si->mod->ops->service(&sctx, &client, service_id, in, in_len, out, out_cap, out_len);
    card->call_depth--;
    tse_rt_end_callback(card, &sctx);
    if (rc == 0 && *out_len > out_cap)
        rc = TSE_ERR_BUFFER_TOO_SMALL;
    return rc;
}
