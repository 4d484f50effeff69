/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card: image life cycle, power and interfaces, and the APDU dispatcher (CLA and
 * logical channels, command chaining, GET RESPONSE, MANAGE CHANNEL, SELECT by DF name,
 * forwarding to the selected applet). Status word choices where ISO/IEC 7816-4 and Java
 * Card leave room are listed in docs/conformance.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cos/card_internal.h"
#include "cos/profile_internal.h"
#include "gp/gp_internal.h"
#include "tse/sw.h"

#define INS_MANAGE_CHANNEL 0x70
#define INS_SELECT         0xA4
#define INS_GET_RESPONSE   0xC0

static void seterr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

/* ---- image life cycle ---------------------------------------------------------------------- */

static struct tse_card *card_alloc(void)
{
    struct tse_card *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    for (int f = 0; f < TSE_IF_COUNT; f++)
        for (int ch = 0; ch < TSE_MAX_CHANNELS; ch++)
            c->ifs[f].ch[ch].sel = -1;
    return c;
}

static void chan_reset(struct tse_chan *ch)
{
    free(ch->chain_buf);
    free(ch->pend);
    memset(ch, 0, sizeof(*ch));
    ch->sel = -1;
}

static void iface_reset(struct tse_card *c, int iface)
{
    struct tse_iface_state *f = &c->ifs[iface];
    for (int i = 0; i < TSE_MAX_CHANNELS; i++)
        chan_reset(&f->ch[i]);
    tse_rt_ram_free(c, iface);
    f->powered = false;
    /* a card with neither interface powered has lost its RAM: the volatile priority too,
     * and the response buffer goes back to the host until an applet answers again */
    if (!c->ifs[TSE_IF_CONTACT].powered && !c->ifs[TSE_IF_CONTACTLESS].powered) {
        c->cl_volatile = 0;
        free(c->rbuf);
        c->rbuf = NULL;
    }
}

void tse_card_free(struct tse_card *card)
{
    if (!card)
        return;
    for (int f = 0; f < TSE_IF_COUNT; f++)
        iface_reset(card, f);
    if (card->store && tse_store_in_txn(card->store))
        tse_store_abort(card->store);
    tse_rt_unload(card);
    tse_store_close(card->store);
    tse_rng_free(card);
    tse_profile_unshare(card->prof);
    pthread_mutex_destroy(&card->lock);
    free(card->rbuf);
    free(card);
}

static void store_cfg(const struct tse_profile *p, const struct tse_card_options *opt,
                      struct tse_store_cfg *cfg)
{
    cfg->capacity = p->persistent_memory;
    cfg->commit_buffer = p->commit_buffer;
    cfg->fsync = (opt && opt->fsync >= 0) ? opt->fsync != 0 : p->fsync != 0;
}

static void derive(struct tse_card *c)
{
    c->atr_protocols = 0;
    tse_atr_check(c->prof->atr, c->prof->atr_len, &c->atr_protocols);
    /* T=1 rules whenever the ATR offers T=1; T=0 rules for a T=0-only contact card. */
    c->ifs[TSE_IF_CONTACT].t0 = !(c->atr_protocols & 2u);
    c->ifs[TSE_IF_CONTACTLESS].t0 = false;
}

int tse_card_create(struct tse_card **out, const char *path, const char *text, size_t len,
                    const char *name, const struct tse_card_options *opt, char *err, size_t errlen)
{
    if (!out || !path)
        return TSE_ERR_INVALID_ARG;
    if (!text) {
        text = tse_profile_default_text();
        len = strlen(text);
        name = "default";
    }
    struct tse_card *c = card_alloc();
    if (!c)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_profile_share(text, len, name ? name : "profile", err, errlen, &c->prof);
    if (rc) {
        tse_card_free(c);
        return rc;
    }
    struct tse_store_cfg cfg;
    store_cfg(c->prof, opt, &cfg);
    rc = tse_store_create(&c->store, path, &cfg, err, errlen);
    if (rc) {
        tse_card_free(c);
        return rc;
    }
    derive(c);
    /* The system objects and every profile instance land in one transaction, so a crash
     * during creation leaves an empty image that open refuses rather than half a card. */
    uint8_t meta[META_LEN] = {0};
    meta[META_NEXT_CTX + 3] = 1;
    meta[META_LIFE_CYCLE] = (uint8_t)c->prof->life_cycle;
    rc = tse_store_begin(c->store);
    if (!rc)
        rc = tse_store_create_obj(c->store, 0, SYS_OBJ_PROFILE, len);
    if (!rc)
        rc = tse_store_write(c->store, 0, SYS_OBJ_PROFILE, 0, (const uint8_t *)text, len);
    if (!rc)
        rc = tse_store_create_obj(c->store, 0, SYS_OBJ_META, META_LEN);
    if (!rc)
        rc = tse_store_write(c->store, 0, SYS_OBJ_META, 0, meta, META_LEN);
    for (size_t i = 0; !rc && i < c->prof->n_counters; i++) {
        uint8_t b[8];
        uint64_t v = c->prof->counters[i].value;
        for (int k = 7; k >= 0; k--, v >>= 8)
            b[k] = (uint8_t)v;
        rc = tse_store_create_obj(c->store, 0, SYS_OBJ_COUNTER0 + (uint32_t)i, 8);
        if (!rc)
            rc = tse_store_write(c->store, 0, SYS_OBJ_COUNTER0 + (uint32_t)i, 0, b, 8);
    }
    if (!rc)
        rc = tse_store_commit(c->store);
    else
        tse_store_abort(c->store);
    if (!rc)
        rc = tse_rng_init(c);
    if (!rc) {
        /* The issuer security domain comes first; it is the default application on every
         * interface no profile instance claims. */
        uint8_t params[2048];
        size_t plen = tse_isd_params(c->prof, params, sizeof(params));
        uint8_t claimed = 0;
        for (size_t i = 0; i < c->prof->n_instances; i++)
            claimed |= c->prof->instances[i].default_on;
        struct tse_aid pkg, mod;
        uint16_t sw;
        tse_aid_set(&pkg, (const uint8_t *)TSE_GP_PACKAGE_AID, 7);
        tse_aid_set(&mod, (const uint8_t *)TSE_GP_SD_MODULE_AID, 8);
        /* On contactless the contactless registry picks the default (src/gp/crs.c) and the
         * ISD is only its fallback. */
        /* SD, card lock, terminate, reset, CVM; trusted path … final application; receipts */
        struct tse_rt_install_opts o = {.default_on = (uint8_t)(1u & ~claimed),
                                        .priv = {0x9E, 0xFE, 0x80}};
        rc = plen ? tse_rt_install(c, &pkg, &mod, &c->prof->isd_aid, params, plen, &o, &sw)
                  : TSE_ERR_INVALID_ARG;
        if (rc && err && errlen)
            snprintf(err, errlen, "%s: cannot install the issuer security domain: %s",
                     name ? name : "profile", tse_strerror(rc));
    }
    if (!rc && c->prof->cl_registry) {
        rc = tse_crs_install_builtin(c);
        if (rc && err && errlen)
            snprintf(err, errlen, "%s: cannot install the contactless registry service: %s",
                     name ? name : "profile", tse_strerror(rc));
    }
    for (size_t i = 0; !rc && i < c->prof->n_instances; i++) {
        const struct tse_profile_instance *pi = &c->prof->instances[i];
        uint16_t sw;
        struct tse_rt_install_opts o = {.pquota = pi->persistent_quota,
                                        .tquota = pi->transient_quota,
                                        .default_on = pi->default_on,
                                        .sd = c->prof->isd_aid};
        tse_crs_profile_cl(pi, o.cl);
        rc = tse_rt_install(c, &pi->package, &pi->module, &pi->instance, pi->params, pi->params_len,
                            &o, &sw);
        if (rc && err && errlen) {
            char hex[2 * TSE_AID_MAX + 1];
            tse_hex_encode(pi->module.b, pi->module.len, hex);
            if (rc == TSE_ERR_NOT_FOUND)
                snprintf(err, errlen, "%s: [instance %s]: no native module %s in this build",
                         name ? name : "profile", pi->name, hex);
            else if (rc == TSE_ERR_DENIED)
                snprintf(err, errlen, "%s: [instance %s]: install() answered %04X",
                         name ? name : "profile", pi->name, sw);
            else
                snprintf(err, errlen, "%s: [instance %s]: %s", name ? name : "profile", pi->name,
                         tse_strerror(rc));
        }
        if (rc == TSE_ERR_NOT_FOUND || rc == TSE_ERR_DENIED || rc == TSE_ERR_EXISTS)
            rc = TSE_ERR_PROFILE;
    }
    if (rc) {
        if (err && errlen && !err[0])
            snprintf(err, errlen, "%s: %s", path, tse_strerror(rc));
        tse_card_free(c);
        unlink(path);
        return rc;
    }
    *out = c;
    return 0;
}

/* Read the profile stored in the image and rebuild the in-memory card from the store. */
static int card_load(struct tse_card *c, const struct tse_card_options *opt, char *err,
                     size_t errlen)
{
    const uint8_t *text;
    size_t len;
    if (tse_store_get(c->store, 0, SYS_OBJ_PROFILE, &text, &len) != 0 ||
        tse_store_get(c->store, 0, SYS_OBJ_META, NULL, NULL) != 0) {
        seterr(err, errlen, "%s: %s", "card image", "no card data (an incomplete creation?)");
        return TSE_ERR_CORRUPT;
    }
    char perr[256] = "";
    const struct tse_profile *prof;
    int rc =
        tse_profile_share((const char *)text, len, "stored profile", perr, sizeof(perr), &prof);
    if (rc == TSE_ERR_NO_MEMORY)
        return rc;
    if (rc) {
        seterr(err, errlen, "card image: %s: %s", perr, "(corrupt image?)");
        return TSE_ERR_CORRUPT;
    }
    /* cards made from the same profile text share one parsed copy (profile_share.c) */
    tse_profile_unshare(c->prof);
    c->prof = prof;
    /* every counter must be there, except dm_confirmation, which images made before it
     * existed lack: it is created at its first use */
    for (size_t i = 0; i < c->prof->n_counters; i++)
        if (tse_store_get(c->store, 0, SYS_OBJ_COUNTER0 + (uint32_t)i, NULL, NULL) != 0 &&
            strcmp(c->prof->counters[i].name, "dm_confirmation") != 0) {
            seterr(err, errlen, "%s: %s", "card image", "a counter is missing (corrupt image)");
            return TSE_ERR_CORRUPT;
        }
    struct tse_store_cfg cfg;
    store_cfg(c->prof, opt, &cfg);
    tse_store_configure(c->store, &cfg);
    derive(c);
    return tse_rt_load(c, err, errlen);
}

int tse_card_open(struct tse_card **out, const char *path, const struct tse_card_options *opt,
                  char *err, size_t errlen)
{
    if (!out || !path)
        return TSE_ERR_INVALID_ARG;
    struct tse_card *c = card_alloc();
    if (!c)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_store_open(&c->store, path, err, errlen);
    if (!rc)
        rc = card_load(c, opt, err, errlen);
    if (!rc)
        rc = tse_rng_init(c);
    if (rc) {
        tse_card_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const struct tse_profile *tse_card_profile(const struct tse_card *card)
{
    return card->prof;
}

/* ---- power -------------------------------------------------------------------------------- */

/* After a power cut the memory copy is stale: re-read the image like a real card's boot. */
static int recover(struct tse_card *c)
{
    if (!c->need_reload)
        return 0;
    char err[256];
    c->txn_owner = NULL;
    int rc = tse_store_reload(c->store, err, sizeof(err));
    if (!rc)
        rc = card_load(c, NULL, err, sizeof(err));
    if (rc)
        return rc;
    c->need_reload = false;
    return 0;
}

static void select_default(struct tse_card *c, int iface, uint8_t chn);
static void power_cut(struct tse_card *c);

static int power_up(struct tse_card *c, int iface, uint8_t *out, size_t cap, size_t *out_len)
{
    int rc = recover(c);
    if (rc)
        return rc;
    const uint8_t *src = iface == TSE_IF_CONTACT ? c->prof->atr : c->prof->ats;
    size_t n = iface == TSE_IF_CONTACT ? c->prof->atr_len : c->prof->ats_len;
    if (out_len)
        *out_len = n;
    if (out && cap < n)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (out)
        memcpy(out, src, n);
    iface_reset(c, iface);
    c->ifs[iface].powered = true;
    c->ifs[iface].ch[0].open = true;
    select_default(c, iface, 0);
    return 0;
}

static bool iface_ok(int iface)
{
    return iface == TSE_IF_CONTACT || iface == TSE_IF_CONTACTLESS;
}

int tse_card_power_on(struct tse_card *card, enum tse_iface iface, uint8_t *out, size_t cap,
                      size_t *out_len)
{
    if (!card || !iface_ok((int)iface))
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = power_up(card, (int)iface, out, cap, out_len);
    if (tse_store_torn(card->store)) { /* a select() of the default applet hit the cut */
        power_cut(card);
        rc = TSE_ERR_TORN;
    }
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_reset(struct tse_card *card, enum tse_iface iface, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    if (!card || !iface_ok((int)iface))
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = card->ifs[iface].powered ? power_up(card, (int)iface, out, cap, out_len)
                                      : TSE_ERR_POWERED_OFF;
    if (tse_store_torn(card->store)) {
        power_cut(card);
        rc = TSE_ERR_TORN;
    }
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_power_off(struct tse_card *card, enum tse_iface iface)
{
    if (!card || !iface_ok((int)iface))
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    iface_reset(card, (int)iface);
    pthread_mutex_unlock(&card->lock);
    return 0;
}

bool tse_card_is_powered(struct tse_card *card, enum tse_iface iface)
{
    if (!card || !iface_ok((int)iface))
        return false;
    pthread_mutex_lock(&card->lock);
    bool on = card->ifs[iface].powered;
    pthread_mutex_unlock(&card->lock);
    return on;
}

int tse_card_cl_params(struct tse_card *card, struct tse_cl_params *p)
{
    if (!card || !p)
        return TSE_ERR_INVALID_ARG;
    memset(p, 0, sizeof(*p));
    memcpy(p->uid, card->prof->uid, card->prof->uid_len);
    p->uid_len = card->prof->uid_len;
    memcpy(p->atqa, card->prof->atqa, 2);
    p->sak = card->prof->sak;
    memcpy(p->ats, card->prof->ats, card->prof->ats_len);
    p->ats_len = card->prof->ats_len;
    return 0;
}

/* ---- selection ---------------------------------------------------------------------------- */

static bool selected_elsewhere(struct tse_card *c, int iface, uint8_t chn, int idx)
{
    for (int i = 0; i < TSE_MAX_CHANNELS; i++)
        if (i != chn && c->ifs[iface].ch[i].open && c->ifs[iface].ch[i].sel == idx)
            return true;
    return false;
}

static void deselect(struct tse_card *c, int iface, uint8_t chn)
{
    struct tse_chan *ch = &c->ifs[iface].ch[chn];
    int idx = ch->sel;
    if (idx < 0)
        return;
    struct tse_instance *in = tse_rt_inst(c, idx);
    if (in->mod->ops->deselect) {
        struct tse_ctx ctx;
        tse_rt_ctx(c, idx, iface, chn, &ctx);
        in->mod->ops->deselect(&ctx);
        tse_rt_end_callback(c, &ctx);
    }
    ch->sel = -1;
    if (!selected_elsewhere(c, iface, chn, idx))
        tse_rt_ram_clear(c, iface, in->ctx_id, TSE_CLEAR_ON_DESELECT);
}

/* Make instance idx the selection of a channel. Returns a status word. */
static uint16_t select_on(struct tse_card *c, int iface, uint8_t chn, int idx)
{
    struct tse_instance *in = tse_rt_inst(c, idx);
    if (!(in->mod->flags & TSE_MODULE_MULTISELECTABLE) && selected_elsewhere(c, iface, chn, idx))
        return SW_CONDITIONS_NOT_SATISFIED;
    deselect(c, iface, chn);
    bool ok = true;
    if (in->mod->ops->select) {
        struct tse_ctx ctx;
        tse_rt_ctx(c, idx, iface, chn, &ctx);
        ok = in->mod->ops->select(&ctx);
        tse_rt_end_callback(c, &ctx);
    }
    if (!ok)
        return SW_APPLET_SELECT_FAILED;
    c->ifs[iface].ch[chn].sel = idx;
    return SW_NO_ERROR;
}

/* Selectable now: by its own state, the card's and the contactless registry's (activation on
 * the contactless interface, interface access on contact). In CARD_LOCKED only the issuer
 * security domain and holders of the Final Application privilege can be selected, in
 * TERMINATED only the ISD (GlobalPlatform card life cycle). */
bool tse_card_can_select(const struct tse_card *c, size_t i, int iface)
{
    if (!tse_rt_selectable(tse_rt_inst(c, i)) || !tse_crs_reachable(tse_rt_inst(c, i), iface))
        return false;
    uint8_t lc = tse_rt_card_life_cycle(c);
    if (lc == TSE_LC_CARD_LOCKED && (tse_rt_inst(c, i)->priv[1] & 0x02u))
        return true;
    if (lc == TSE_LC_CARD_LOCKED || lc == TSE_LC_TERMINATED)
        return tse_aid_equal(&tse_rt_inst(c, i)->aid, &c->prof->isd_aid);
    return true;
}

/* The application selected at power on and by SELECT with an empty AID. On contact: the one
 * marked default (the ISD unless a profile instance claims it). On contactless: the one the
 * contactless registry implicitly selects, else the ISD. */
static int default_app(const struct tse_card *c, int iface)
{
    uint8_t lc = tse_rt_card_life_cycle(c);
    bool restricted = lc == TSE_LC_CARD_LOCKED || lc == TSE_LC_TERMINATED;
    if (!restricted && iface == TSE_IF_CONTACTLESS) {
        int d = tse_crs_default(c);
        if (d >= 0)
            return d;
    }
    /* an application given the Card Reset privilege by the card manager is the contact
     * interface's default application, ahead of the profile's choice */
    for (size_t i = 0; iface == TSE_IF_CONTACT && !restricted && i < c->n_inst; i++)
        if ((tse_rt_inst(c, i)->priv[0] & 0x04u) &&
            !tse_aid_equal(&tse_rt_inst(c, i)->aid, &c->prof->isd_aid) &&
            tse_card_can_select(c, i, iface))
            return (int)i;
    for (size_t i = 0; i < c->n_inst; i++) {
        bool isd = tse_aid_equal(&tse_rt_inst(c, i)->aid, &c->prof->isd_aid);
        bool mine = iface == TSE_IF_CONTACT ? (tse_rt_inst(c, i)->default_on & 1u) != 0 : isd;
        if ((mine || (restricted && isd)) && tse_card_can_select(c, i, iface))
            return (int)i;
    }
    return -1;
}

static void select_default(struct tse_card *c, int iface, uint8_t chn)
{
    int idx = default_app(c, iface);
    if (idx >= 0)
        (void)select_on(c, iface, chn, idx);
}

/* ---- response shaping ------------------------------------------------------------------------ */

struct out {
    uint8_t *buf;
    size_t cap;
    size_t len;
};

static int emit(struct out *o, const uint8_t *data, size_t len, uint16_t sw)
{
    if (o->cap < len + 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    if (len)
        memmove(o->buf, data, len);
    o->buf[len] = (uint8_t)(sw >> 8);
    o->buf[len + 1] = (uint8_t)sw;
    o->len = len + 2;
    return 0;
}

static int emit_sw(struct out *o, uint16_t sw)
{
    return emit(o, NULL, 0, sw);
}

static uint16_t sw_remaining(size_t n)
{
    return (uint16_t)(SW_BYTES_REMAINING_00 | (n > 255 ? 0 : n));
}

/* Keep response bytes for GET RESPONSE. */
static int park(struct tse_chan *ch, const uint8_t *data, size_t len)
{
    free(ch->pend);
    ch->pend = NULL;
    ch->pend_len = ch->pend_off = 0;
    if (!len)
        return 0;
    ch->pend = malloc(len);
    if (!ch->pend)
        return TSE_ERR_NO_MEMORY;
    memcpy(ch->pend, data, len);
    ch->pend_len = len;
    return 0;
}

/*
 * Deliver an applet's response under the interface's transport rules:
 *  - an error status word carries no data;
 *  - T=1: data up to Ne goes back at once; a longer response gives Ne bytes and 61xx when
 *    the command had data (case 4) or asked for the maximum (Le = 00), else 6Cxx with the
 *    exact length so the host can repeat a case 2 command with the right Le;
 *  - T=0: case 4 responses always go through 61xx/GET RESPONSE; case 2 with a wrong Le
 *    gets 6Cxx.
 */
static int shape(struct tse_card *c, int iface, struct tse_chan *ch, const struct tse_apdu *a,
                 const uint8_t *data, size_t len, uint16_t sw, bool sm_trailer, struct out *o)
{
    uint8_t sw1 = (uint8_t)(sw >> 8);
    bool normal = sw == SW_NO_ERROR;
    bool warning = sw1 == 0x62 || sw1 == 0x63;
    if (!normal && !warning) {
        if (!sm_trailer || len + 2 > o->cap)
            len = 0;
        return emit(o, data, len, sw); /* an error answer is never split or re-sized */
    }
    if (len == 0)
        return emit_sw(o, sw);
    size_t ne = a->ne;
    bool le_max = a->has_le && (a->extended ? ne == 65536 : ne == 256);
    if (c->ifs[iface].t0 && normal) {
        if (a->iso_case == 4 || a->iso_case == 3) {
            int rc = park(ch, data, len);
            return rc ? rc : emit_sw(o, sw_remaining(len));
        }
        if (ne != len && len <= 256)
            return emit_sw(o, (uint16_t)(SW_CORRECT_LENGTH_00 | (len & 0xFF)));
    }
    if (!a->has_le)
        ne = a->extended ? 65536 : 256; /* case 1/3 with data: T=1 cards send it anyway */
    if (len <= ne)
        return emit(o, data, len, sw);
    if (!normal)
        return emit(o, data, ne, sw); /* a warning: the data is cut at Ne */
    if (a->iso_case == 4 || le_max || !a->has_le || a->extended || len > 256) {
        int rc = park(ch, data + ne, len - ne);
        return rc ? rc : emit(o, data, ne, sw_remaining(len - ne));
    }
    return emit_sw(o, (uint16_t)(SW_CORRECT_LENGTH_00 | (len & 0xFF)));
}

/* ---- commands handled by the card itself ---------------------------------------------------- */

static uint16_t manage_channel(struct tse_card *c, int iface, uint8_t chn, const struct tse_apdu *a,
                               uint8_t *newch)
{
    struct tse_iface_state *f = &c->ifs[iface];
    uint8_t nch = c->prof->logical_channels;
    if (a->lc)
        return SW_WRONG_LENGTH;
    if (a->p1 == 0x00) { /* open */
        uint8_t target = a->p2;
        if (target == 0) {
            for (uint8_t i = 1; i < nch; i++)
                if (!f->ch[i].open) {
                    target = i;
                    break;
                }
            if (target == 0)
                return SW_FUNC_NOT_SUPPORTED; /* every channel is in use */
        } else if (target >= nch) {
            return SW_LOGICAL_CHANNEL_NOT_SUPPORTED;
        } else if (f->ch[target].open) {
            return SW_CONDITIONS_NOT_SATISFIED;
        }
        int idx = chn == 0 ? default_app(c, iface) : f->ch[chn].sel;
        chan_reset(&f->ch[target]);
        f->ch[target].open = true;
        if (idx >= 0) {
            uint16_t sw = select_on(c, iface, target, idx);
            if (sw != SW_NO_ERROR) {
                chan_reset(&f->ch[target]);
                return sw;
            }
        }
        *newch = a->p2 == 0 ? target : 0xFF;
        return SW_NO_ERROR;
    }
    if (a->p1 == 0x80) { /* close */
        uint8_t target = a->p2 ? a->p2 : chn;
        if (target == 0)
            return SW_INCORRECT_P1P2; /* the basic channel cannot be closed */
        if (target >= nch || !f->ch[target].open)
            return SW_WARNING_STATE_UNCHANGED;
        deselect(c, iface, target);
        chan_reset(&f->ch[target]);
        return SW_NO_ERROR;
    }
    return SW_INCORRECT_P1P2;
}

/* Process a complete command on a channel with the selected applet. */
static int run_applet(struct tse_card *c, int iface, uint8_t chn, const struct tse_apdu *a,
                      struct out *o)
{
    struct tse_chan *ch = &c->ifs[iface].ch[chn];
    if (ch->sel < 0)
        return emit_sw(o, a->ins == INS_SELECT ? SW_FILE_NOT_FOUND : SW_INS_NOT_SUPPORTED);
    if (!c->rbuf && !(c->rbuf = malloc(TSE_APDU_MAX_NE)))
        return TSE_ERR_NO_MEMORY;
    struct tse_instance *in = tse_rt_inst(c, ch->sel);
    struct tse_ctx ctx;
    tse_rt_ctx(c, ch->sel, iface, chn, &ctx);
    struct tse_response rsp = {c->rbuf, 0, TSE_APDU_MAX_NE, false};
    uint16_t sw = in->mod->ops->process(&ctx, a, &rsp);
    tse_rt_end_callback(c, &ctx);
    if (tse_store_torn(c->store))
        return TSE_ERR_TORN;
    if (rsp.len > rsp.cap)
        rsp.len = 0;
    if (a->ins == INS_SELECT && a->p1 == 0x04 && (a->p2 & 0x0C) == 0x0C)
        rsp.len = 0; /* P2 asked for no response data */
    return shape(c, iface, ch, a, rsp.data, rsp.len, sw, rsp.sm_trailer, o);
}

static int select_df_name(struct tse_card *c, int iface, uint8_t chn, const struct tse_apdu *a,
                          struct out *o)
{
    struct tse_chan *ch = &c->ifs[iface].ch[chn];
    uint8_t occ = a->p2 & 0x03;
    if ((a->p2 & 0xF0) || occ == 0x01 || occ == 0x03)
        return emit_sw(o, SW_INCORRECT_P1P2); /* only first and next occurrence */
    int idx = -1;
    if (a->lc == 0) {
        idx = default_app(c, iface);
    } else if (a->lc <= TSE_AID_MAX) {
        /* names match in registry order: installation order on contact, the contactless
         * registry's priority order on contactless */
        int order[SYS_MAX_INSTANCES];
        size_t n = c->n_inst, start = 0;
        if (iface == TSE_IF_CONTACTLESS)
            tse_crs_order(c, order);
        else
            for (size_t k = 0; k < n; k++)
                order[k] = (int)k;
        if (occ == 0x02 && ch->sel >= 0 &&
            tse_aid_has_prefix(&tse_rt_inst(c, ch->sel)->aid, a->data, a->lc))
            for (size_t k = 0; k < n; k++)
                if (order[k] == ch->sel)
                    start = k + 1;
        for (size_t k = start; k < n; k++) {
            size_t i = (size_t)order[k];
            if (tse_card_can_select(c, i, iface) &&
                tse_aid_has_prefix(&tse_rt_inst(c, i)->aid, a->data, a->lc)) {
                idx = (int)i;
                break;
            }
        }
    }
    if (idx < 0) {
        /* Java Card: an unknown DF name goes to the selected applet, which may own it. */
        if (ch->sel >= 0)
            return run_applet(c, iface, chn, a, o);
        return emit_sw(o, SW_FILE_NOT_FOUND);
    }
    uint16_t sw = select_on(c, iface, chn, idx);
    if (tse_store_torn(c->store))
        return TSE_ERR_TORN;
    if (sw != SW_NO_ERROR)
        return emit_sw(o, sw);
    return run_applet(c, iface, chn, a, o);
}

static int get_response(struct tse_chan *ch, const struct tse_apdu *a, struct out *o)
{
    if (!ch->pend)
        return emit_sw(o, SW_CONDITIONS_NOT_SATISFIED);
    if (a->lc)
        return emit_sw(o, SW_WRONG_LENGTH);
    if (a->p1 || a->p2)
        return emit_sw(o, SW_INCORRECT_P1P2);
    size_t left = ch->pend_len - ch->pend_off;
    size_t n = a->has_le ? a->ne : 256;
    if (n > left)
        n = left;
    int rc = emit(o, ch->pend + ch->pend_off, n, SW_NO_ERROR);
    if (rc)
        return rc;
    ch->pend_off += n;
    left -= n;
    if (left) {
        o->buf[o->len - 2] = 0x61;
        o->buf[o->len - 1] = (uint8_t)(left > 255 ? 0 : left);
    } else {
        park(ch, NULL, 0);
    }
    return 0;
}

/* Accumulate a command chain (CLA b5). Returns 1 when a complete command is ready in *full. */
static int chain(struct tse_chan *ch, const struct tse_apdu *a, bool more, struct tse_apdu *full,
                 struct out *o)
{
    uint8_t cla = a->cla & (uint8_t)~0x10;
    if (ch->chaining && (cla != ch->chain_cla || a->ins != ch->chain_ins || a->p1 != ch->chain_p1 ||
                         a->p2 != ch->chain_p2)) {
        free(ch->chain_buf);
        ch->chain_buf = NULL;
        ch->chaining = false;
        ch->chain_len = 0;
        emit_sw(o, SW_LAST_COMMAND_EXPECTED);
        return 0;
    }
    if (!ch->chaining && !more) {
        *full = *a;
        return 1;
    }
    if (ch->chain_len + a->lc > TSE_APDU_MAX_DATA) {
        free(ch->chain_buf);
        ch->chain_buf = NULL;
        ch->chaining = false;
        ch->chain_len = 0;
        emit_sw(o, SW_WRONG_LENGTH);
        return 0;
    }
    uint8_t *nb = realloc(ch->chain_buf, ch->chain_len + a->lc + 1);
    if (!nb)
        return TSE_ERR_NO_MEMORY;
    ch->chain_buf = nb;
    if (a->lc)
        memcpy(nb + ch->chain_len, a->data, a->lc);
    ch->chain_len += a->lc;
    if (more) {
        ch->chaining = true;
        ch->chain_cla = cla;
        ch->chain_ins = a->ins;
        ch->chain_p1 = a->p1;
        ch->chain_p2 = a->p2;
        emit_sw(o, SW_NO_ERROR);
        return 0;
    }
    *full = *a;
    full->cla = cla;
    full->data = ch->chain_buf;
    full->lc = ch->chain_len;
    full->iso_case = a->has_le ? 4 : 3;
    ch->chaining = false;
    return 1;
}

static int dispatch(struct tse_card *c, int iface, const uint8_t *capdu, size_t clen, struct out *o)
{
    struct tse_apdu a;
    uint16_t sw = tse_apdu_parse(capdu, clen, &a);
    if (sw)
        return emit_sw(o, sw);
    struct tse_cla_info ci = tse_cla_decode(a.cla);
    if (!ci.valid)
        return emit_sw(o, SW_CLA_NOT_SUPPORTED);
    if ((a.ins & 0xF0) == 0x60 || (a.ins & 0xF0) == 0x90)
        return emit_sw(o, SW_INS_NOT_SUPPORTED); /* ISO 7816-3: invalid INS values */
    struct tse_iface_state *f = &c->ifs[iface];
    uint8_t chn = ci.channel;
    bool implicit_open = false;
    if (chn >= c->prof->logical_channels)
        return emit_sw(o, SW_LOGICAL_CHANNEL_NOT_SUPPORTED);
    if (!f->ch[chn].open) {
        /* ISO 7816-4: SELECT on a closed channel opens it (as from the basic channel). */
        if (a.ins == INS_SELECT && a.p1 == 0x04 && !ci.proprietary)
            implicit_open = true;
        else
            return emit_sw(o, SW_LOGICAL_CHANNEL_NOT_SUPPORTED);
    }
    struct tse_chan *ch = &f->ch[chn];
    bool get_resp = a.ins == INS_GET_RESPONSE && !ci.proprietary;
    if (!get_resp && ch->pend)
        park(ch, NULL, 0); /* any other command drops unread response data */

    if (!ci.proprietary && (a.ins == INS_MANAGE_CHANNEL || get_resp) && ci.chaining)
        return emit_sw(o, SW_COMMAND_CHAINING_NOT_SUPPORTED);
    if (get_resp)
        return get_response(ch, &a, o);
    if (!ci.proprietary && a.ins == INS_MANAGE_CHANNEL) {
        uint8_t newch = 0xFF;
        sw = manage_channel(c, iface, chn, &a, &newch);
        if (tse_store_torn(c->store))
            return TSE_ERR_TORN;
        if (sw == SW_NO_ERROR && newch != 0xFF)
            return emit(o, &newch, 1, sw);
        return emit_sw(o, sw);
    }
    if (implicit_open) {
        /* opened before any chaining state is kept on it: a chain's reassembled data lives
         * in the channel and must survive until the command is processed */
        chan_reset(ch);
        ch->open = true;
    }
    struct tse_apdu full;
    int r = chain(ch, &a, ci.chaining, &full, o);
    if (r <= 0)
        return r;
    if (!ci.proprietary && full.ins == INS_SELECT && full.p1 == 0x04)
        return select_df_name(c, iface, chn, &full, o);
    return run_applet(c, iface, chn, &full, o);
}

static void power_cut(struct tse_card *c)
{
    for (int f = 0; f < TSE_IF_COUNT; f++)
        iface_reset(c, f);
    c->txn_owner = NULL;
    c->need_reload = true;
}

int tse_card_transmit(struct tse_card *card, enum tse_iface iface, const uint8_t *capdu,
                      size_t clen, uint8_t *rapdu, size_t rcap, size_t *rlen)
{
    if (!card || !iface_ok((int)iface) || (!capdu && clen) || !rapdu || !rlen)
        return TSE_ERR_INVALID_ARG;
    *rlen = 0;
    if (rcap < 2)
        return TSE_ERR_BUFFER_TOO_SMALL;
    pthread_mutex_lock(&card->lock);
    int rc;
    if (!card->ifs[iface].powered) {
        rc = TSE_ERR_POWERED_OFF;
    } else {
        struct out o = {rapdu, rcap, 0};
        rc = dispatch(card, (int)iface, capdu, clen, &o);
        if (tse_store_torn(card->store)) {
            power_cut(card);
            rc = TSE_ERR_TORN;
        } else if (rc == 0) {
            *rlen = o.len;
        }
    }
    pthread_mutex_unlock(&card->lock);
    return rc;
}

/* ---- test and replay controls -----------------------------------------------------------------
 */

int tse_card_tear_at(struct tse_card *card, unsigned long n)
{
    if (!card)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = recover(card);
    if (!rc)
        tse_store_tear_at(card->store, n);
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_close_files(struct tse_card *card)
{
    if (!card)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    tse_store_close_fd(card->store);
    pthread_mutex_unlock(&card->lock);
    return 0;
}

unsigned long tse_card_store_writes(struct tse_card *card)
{
    struct tse_store_stats st;
    pthread_mutex_lock(&card->lock);
    tse_store_get_stats(card->store, &st);
    pthread_mutex_unlock(&card->lock);
    return st.writes;
}

int tse_card_queue_random(struct tse_card *card, const uint8_t *b, size_t len)
{
    if (!card || (!b && len))
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = 0;
    size_t left = card->rnd_len - card->rnd_off;
    uint8_t *q = malloc(left + len + 1);
    if (!q) {
        rc = TSE_ERR_NO_MEMORY;
    } else {
        if (left)
            memcpy(q, card->rnd_queue + card->rnd_off, left);
        if (len)
            memcpy(q + left, b, len);
        free(card->rnd_queue);
        card->rnd_queue = q;
        card->rnd_len = left + len;
        card->rnd_off = 0;
    }
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_set_counter(struct tse_card *card, const char *name, uint64_t value)
{
    if (!card || !name)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = recover(card);
    int idx = tse_counter_index(card, name);
    if (!rc)
        rc = idx < 0 ? TSE_ERR_NOT_FOUND : tse_counter_write(card, idx, value);
    if (tse_store_torn(card->store)) {
        power_cut(card);
        rc = TSE_ERR_TORN;
    }
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_get_counter(struct tse_card *card, const char *name, uint64_t *value)
{
    if (!card || !name || !value)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = recover(card);
    int idx = tse_counter_index(card, name);
    if (!rc)
        rc = idx < 0 ? TSE_ERR_NOT_FOUND : tse_counter_read(card, idx, value);
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_state_digest(struct tse_card *card, uint8_t digest[32])
{
    if (!card || !digest)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&card->lock);
    int rc = recover(card);
    if (!rc)
        rc = tse_store_digest(card->store, digest);
    pthread_mutex_unlock(&card->lock);
    return rc;
}

int tse_card_stats(struct tse_card *card, struct tse_card_stats *st)
{
    if (!card || !st)
        return TSE_ERR_INVALID_ARG;
    struct tse_store_stats s;
    pthread_mutex_lock(&card->lock);
    tse_store_get_stats(card->store, &s);
    pthread_mutex_unlock(&card->lock);
    *st = (struct tse_card_stats){s.writes, s.commits,  s.aborts,     s.compactions,
                                  s.used,   s.capacity, s.image_bytes};
    return 0;
}
