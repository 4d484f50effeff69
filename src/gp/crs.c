/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contactless registry service (GlobalPlatform Card Specification Amendment C, as wallets
 * use it) and the PPSE built from it. docs/contactless-registry.md has the commands, the
 * bytes, the sources and the choices made where the sources are silent.
 *
 * The registry data of each instance lives in its runtime record (struct tse_instance.cl,
 * written only through tse_rt_set_cl()); its layout is defined here and nowhere else. The
 * CRS application's own persistent object is the global update counter. The volatile
 * priority is card RAM (struct tse_card.cl_volatile).
 */
#include <stdlib.h>
#include <string.h>

#include "cos/card_internal.h"
#include "gp/gp_internal.h"
#include "tse/sw.h"
#include "tse/tlv.h"

/*
 * Contactless registry data, 16 bytes per instance. All zero (the ISD, anything installed
 * without contactless parameters, records of images written before the registry existed)
 * means: activated, reachable on both interfaces, no PPSE entry, registry order 0.
 *
 *   cl[0]  b2-b1  contactless activation: 0 ACTIVATED, 1 DEACTIVATED, 2 NON_ACTIVATABLE
 *          b3     not reachable on the contact interface (access "contactless only")
 *          b4     reserved (0)
 *          b8-b5  length of the AID the PPSE shows, a prefix of the instance AID (0: all)
 *   cl[1..2]      registry order for the contactless interface, signed 16-bit big-endian;
 *                 lower comes first, equal values in installation order
 *   cl[3]         PPSE application priority indicator (tag 87), 0 = none
 *   cl[4..15]     PPSE label (tag 50), up to 12 bytes, zero padded
 * An instance has a PPSE entry when it has a label or a priority indicator.
 */
#define CL_STATE_MASK 0x03u
#define CL_CODE_ACT   0x00u
#define CL_CODE_DEACT 0x01u
#define CL_CODE_OFF   0x02u
#define CL_NO_CONTACT 0x04u
#define CL_PPSE_SHIFT 4
#define CL_ORDER      1
#define CL_PRIORITY   3
#define CL_LABEL      4
#define CL_LABEL_LEN  TSE_CL_LABEL_MAX
#define CL_ORDER_MIN  (-32768)
#define CL_ORDER_MAX  32767

/* Amendment C codings: SET STATUS P2 and the second byte of 9F70. */
#define STATE_DEACTIVATED     0x00u
#define STATE_ACTIVATED       0x01u
#define STATE_NON_ACTIVATABLE 0x80u

/* CRS commands */
#define INS_SELECT     0xA4
#define INS_GET_DATA   0xCA
#define INS_GET_STATUS 0xF2
#define INS_SET_STATUS 0xF0

#define P1_AVAILABILITY 0x01 /* SET STATUS: availability state over the contactless interface */
#define P1_PRIORITY     0x02 /* SET STATUS: priority order for application selection */
#define P2_HIGHEST      0x01
#define P2_LOWEST       0x81
#define P2_VOLATILE     0x02
#define P2_VOLATILE_OFF 0x82
#define P1_APPLICATIONS 0x40 /* GET STATUS */

/* 63 30: the application was not activated because activated ones conflict with it */
#define SW_CRS_CONFLICT 0x6330u

#define OBJ_COUNTER  1     /* global update counter, u16 big-endian */
#define RAM_QUERY0   0x100 /* + channel: GET STATUS paging */
#define STATUS_CHUNK 256
#define MAX_TAGS     16

static const uint8_t CRS_VERSION[2] = {0x01, 0x00};

/* ---- registry data accessors --------------------------------------------------------------- */

static uint8_t cl_state(const uint8_t *cl)
{
    switch (cl[0] & CL_STATE_MASK) {
    case CL_CODE_ACT:
        return STATE_ACTIVATED;
    case CL_CODE_DEACT:
        return STATE_DEACTIVATED;
    default:
        return STATE_NON_ACTIVATABLE;
    }
}

static void cl_set_state(uint8_t *cl, uint8_t state)
{
    uint8_t code = state == STATE_ACTIVATED     ? CL_CODE_ACT
                   : state == STATE_DEACTIVATED ? CL_CODE_DEACT
                                                : CL_CODE_OFF;
    cl[0] = (uint8_t)((cl[0] & ~CL_STATE_MASK) | code);
}

static int cl_order(const uint8_t *cl)
{
    unsigned u = (unsigned)cl[CL_ORDER] << 8 | cl[CL_ORDER + 1];
    return u >= 0x8000u ? (int)u - 0x10000 : (int)u;
}

static void cl_set_order(uint8_t *cl, int v)
{
    unsigned u = (unsigned)(v < 0 ? v + 0x10000 : v);
    cl[CL_ORDER] = (uint8_t)(u >> 8);
    cl[CL_ORDER + 1] = (uint8_t)u;
}

static size_t cl_label_len(const uint8_t *cl)
{
    size_t n = 0;
    while (n < CL_LABEL_LEN && cl[CL_LABEL + n])
        n++;
    return n;
}

static bool cl_listed(const uint8_t *cl)
{
    return cl[CL_LABEL] != 0 || cl[CL_PRIORITY] != 0;
}

/* The AID an instance shows in the PPSE: its own, or the prefix its registry data names. */
static void ppse_aid(const struct tse_instance *in, struct tse_aid *out)
{
    size_t n = in->cl[0] >> CL_PPSE_SHIFT;
    if (n < TSE_AID_MIN || n >= in->aid.len)
        n = in->aid.len;
    tse_aid_set(out, in->aid.b, n);
}

/* Two applications conflict on the contactless interface when a reader selecting one by the
 * AID its PPSE entry shows could reach the other: one's shown AID is a prefix of the other's
 * AID. With full AIDs that means one AID is a prefix of the other. */
static bool conflict(const struct tse_instance *a, const struct tse_instance *b)
{
    struct tse_aid pa, pb;
    ppse_aid(a, &pa);
    ppse_aid(b, &pb);
    return tse_aid_has_prefix(&b->aid, pa.b, pa.len) || tse_aid_has_prefix(&a->aid, pb.b, pb.len);
}

static bool is_volatile(const struct tse_card *card, const struct tse_instance *in)
{
    return card->cl_volatile != 0 && in->ctx_id == card->cl_volatile;
}

/* Sort all instance indices: the volatile priority first (when asked), then the registry
 * order, then installation order. Insertion sort: a registry has at most a few hundred
 * entries and is usually almost in order. */
static size_t sorted(const struct tse_card *card, int *idx, bool with_volatile)
{
    size_t n = card->n_inst;
    for (size_t k = 0; k < n; k++) {
        int i = (int)k;
        const struct tse_instance *x = tse_rt_inst(card, i);
        bool vx = with_volatile && is_volatile(card, x);
        int ox = cl_order(x->cl);
        size_t j = k;
        while (j > 0) {
            const struct tse_instance *y = tse_rt_inst(card, idx[j - 1]);
            bool vy = with_volatile && is_volatile(card, y);
            int oy = cl_order(y->cl);
            bool x_first = vx != vy ? vx : ox < oy; /* equal order: keep installation order */
            if (!x_first)
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return n;
}

size_t tse_crs_order(const struct tse_card *card, int *idx)
{
    return sorted(card, idx, true);
}

bool tse_crs_reachable(const struct tse_instance *in, int iface)
{
    if (iface == TSE_IF_CONTACTLESS)
        return cl_state(in->cl) == STATE_ACTIVATED;
    return !(in->cl[0] & CL_NO_CONTACT);
}

int tse_crs_default(const struct tse_card *card)
{
    int idx[SYS_MAX_INSTANCES];
    size_t n = tse_crs_order(card, idx);
    for (size_t k = 0; k < n; k++)
        if ((tse_rt_inst(card, idx[k])->default_on & 2u) &&
            tse_card_can_select(card, (size_t)idx[k], TSE_IF_CONTACTLESS))
            return idx[k];
    return -1;
}

/* ---- registry data from a profile or from INSTALL ------------------------------------------- */

void tse_crs_profile_cl(const struct tse_profile_instance *pi, uint8_t cl[16])
{
    memset(cl, 0, 16);
    cl_set_state(cl, pi->contactless == TSE_CL_DEACTIVATED ? STATE_DEACTIVATED
                     : pi->contactless == TSE_CL_OFF       ? STATE_NON_ACTIVATABLE
                                                           : STATE_ACTIVATED);
    const struct tse_aid *pa = &pi->contactless_ppse_aid;
    if (pa->len >= TSE_AID_MIN && pa->len < pi->instance.len)
        cl[0] |= (uint8_t)(pa->len << CL_PPSE_SHIFT);
    cl[CL_PRIORITY] = pi->contactless_priority;
    size_t l = strlen(pi->contactless_label);
    memcpy(cl + CL_LABEL, pi->contactless_label, l < CL_LABEL_LEN ? l : CL_LABEL_LEN);
}

static bool priority_ok(uint8_t p)
{
    return (p & 0x70u) == 0 && (p & 0x0Fu) != 0; /* b8: confirmation; b4-b1: priority 1..15 */
}

/* A6 value (tse convention): the PPSE entry of the application. */
static uint16_t parse_ppse_entry(const struct tse_aid *aid, const uint8_t *v, size_t len,
                                 uint8_t *cl)
{
    const uint8_t *p = v;
    size_t left = len;
    struct tse_tlv t;
    int r;
    while ((r = tse_tlv_next(&p, &left, &t)) == 1) {
        if (t.tag == 0x50) {
            if (t.len == 0 || t.len > CL_LABEL_LEN)
                return SW_WRONG_DATA;
            for (size_t i = 0; i < t.len; i++)
                if (t.value[i] < 0x20 || t.value[i] > 0x7E)
                    return SW_WRONG_DATA;
            memset(cl + CL_LABEL, 0, CL_LABEL_LEN);
            memcpy(cl + CL_LABEL, t.value, t.len);
        } else if (t.tag == 0x87) {
            if (t.len != 1 || !priority_ok(t.value[0]))
                return SW_WRONG_DATA;
            cl[CL_PRIORITY] = t.value[0];
        } else if (t.tag == 0x4F) {
            if (t.len < TSE_AID_MIN || !tse_aid_has_prefix(aid, t.value, t.len))
                return SW_WRONG_DATA;
            cl[0] = (uint8_t)((cl[0] & 0x0Fu) | (t.len < aid->len ? t.len << CL_PPSE_SHIFT : 0u));
        }
    }
    return r < 0 ? SW_WRONG_DATA : SW_NO_ERROR;
}

uint16_t tse_crs_install_params(const struct tse_card *card, const struct tse_aid *aid,
                                const uint8_t *sys, size_t len, uint8_t cl[16], uint8_t *default_on)
{
    uint8_t initial = STATE_ACTIVATED; /* the card's default when 81 is absent */
    const uint8_t *p = sys;
    size_t left = sys ? len : 0;
    struct tse_tlv t, u, x;
    int r;
    while ((r = tse_tlv_next(&p, &left, &t)) == 1) {
        const uint8_t *q = t.value;
        size_t ql = t.len;
        int s = 0;
        if (t.tag == 0xA0) { /* contactless protocol parameters */
            while ((s = tse_tlv_next(&q, &ql, &u)) == 1) {
                if (u.tag == 0x80) { /* assigned protocols for implicit selection */
                    for (size_t i = 0; i < u.len; i++)
                        if (u.value[i] != 0x81 && u.value[i] != 0x82 && u.value[i] != 0x84)
                            return SW_WRONG_DATA;
                    *default_on |= 2u;
                } else if (u.tag == 0x81) { /* initial contactless activation state */
                    if (u.len != 1 ||
                        (u.value[0] != STATE_ACTIVATED && u.value[0] != STATE_DEACTIVATED))
                        return SW_WRONG_DATA;
                    if (initial != STATE_NON_ACTIVATABLE)
                        initial = u.value[0];
                } else if (u.tag == 0xA5) { /* communication interface access parameters */
                    const uint8_t *z = u.value;
                    size_t zl = u.len;
                    int k;
                    while ((k = tse_tlv_next(&z, &zl, &x)) == 1) {
                        if (x.tag != 0x82) /* 80/81 are for security domains */
                            continue;
                        if (x.len != 1)
                            return SW_WRONG_DATA;
                        if (x.value[0] == 0x80)
                            initial = STATE_NON_ACTIVATABLE; /* contact only */
                        else if (x.value[0] == 0x40)
                            cl[0] |= CL_NO_CONTACT;
                        else if (x.value[0] != 0xC0)
                            return SW_WRONG_DATA;
                    }
                    if (k < 0)
                        return SW_WRONG_DATA;
                }
            }
        } else if (t.tag == 0xA1) { /* user interaction parameters */
            while ((s = tse_tlv_next(&q, &ql, &u)) == 1)
                if (u.tag == 0xA6) {
                    uint16_t sw = parse_ppse_entry(aid, u.value, u.len, cl);
                    if (sw != SW_NO_ERROR)
                        return sw;
                }
        }
        if (s < 0)
            return SW_WRONG_DATA;
    }
    if (r < 0)
        return SW_WRONG_DATA;
    /* An initial activation that would conflict fails: the application starts DEACTIVATED. */
    struct tse_instance me;
    memset(&me, 0, sizeof(me));
    me.aid = *aid;
    memcpy(me.cl, cl, sizeof(me.cl));
    int last = CL_ORDER_MIN;
    for (size_t i = 0; i < card->n_inst; i++) {
        const struct tse_instance *o = tse_rt_inst(card, i);
        if (initial == STATE_ACTIVATED && cl_state(o->cl) == STATE_ACTIVATED && conflict(&me, o))
            initial = STATE_DEACTIVATED;
        if (cl_order(o->cl) > last)
            last = cl_order(o->cl);
    }
    cl_set_state(cl, initial);
    cl_set_order(cl, card->n_inst && last < CL_ORDER_MAX ? last + 1 : last < 0 ? 0 : last);
    return SW_NO_ERROR;
}

/* ---- the PPSE ------------------------------------------------------------------------------- */

static unsigned ppse_rank(const uint8_t *cl)
{
    unsigned p = cl[CL_PRIORITY] & 0x0Fu;
    return p ? p : 16u; /* no priority indicator: after those that have one */
}

/*
 * FCI of the PPSE (EMV Book B; wallet.md 1.2): 6F { 84 name, A5 { BF0C { 61 { 4F AID, 50 label,
 * 87 priority } ... } } }, one directory entry per application that has a PPSE entry and can
 * be selected on the contactless interface now, by priority indicator (1 first, none last),
 * then in contactless priority order.
 */
static uint16_t ppse_fci(struct tse_ctx *ctx, struct tse_response *rsp)
{
    struct tse_card *card = ctx->card;
    int order[SYS_MAX_INSTANCES], list[SYS_MAX_INSTANCES];
    size_t n = tse_crs_order(card, order), m = 0;
    for (size_t k = 0; k < n; k++) {
        const struct tse_instance *in = tse_rt_inst(card, order[k]);
        if (in == ctx->inst || !cl_listed(in->cl) ||
            !tse_card_can_select(card, (size_t)order[k], TSE_IF_CONTACTLESS))
            continue;
        /* stable insertion by priority indicator */
        size_t j = m++;
        while (j > 0 && ppse_rank(tse_rt_inst(card, list[j - 1])->cl) > ppse_rank(in->cl)) {
            list[j] = list[j - 1];
            j--;
        }
        list[j] = order[k];
    }
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, rsp->data + rsp->len, rsp->cap - rsp->len);
    tse_tlv_begin(&w, 0x6F);
    tse_tlv_put(&w, 0x84, ctx->inst->aid.b, ctx->inst->aid.len);
    tse_tlv_begin(&w, 0xA5);
    tse_tlv_begin(&w, 0xBF0C);
    for (size_t k = 0; k < m; k++) {
        const struct tse_instance *in = tse_rt_inst(card, list[k]);
        struct tse_aid shown;
        ppse_aid(in, &shown);
        tse_tlv_begin(&w, 0x61);
        tse_tlv_put(&w, 0x4F, shown.b, shown.len);
        size_t ll = cl_label_len(in->cl);
        if (ll)
            tse_tlv_put(&w, 0x50, in->cl + CL_LABEL, ll);
        if (in->cl[CL_PRIORITY])
            tse_tlv_put_u8(&w, 0x87, in->cl[CL_PRIORITY]);
        tse_tlv_end(&w);
    }
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    int len = tse_tlv_finish(&w);
    if (len < 0)
        return SW_UNKNOWN;
    rsp->len += (size_t)len;
    return SW_NO_ERROR;
}

static uint16_t ppse_process(struct tse_ctx *ctx, const struct tse_apdu *a,
                             struct tse_response *rsp)
{
    struct tse_cla_info ci = tse_cla_decode(a->cla);
    if (a->ins == INS_SELECT && a->p1 == 0x04 && !ci.proprietary) {
        /* the card also hands over SELECTs of AIDs nobody can take here */
        if (a->lc && !tse_aid_has_prefix(tse_ctx_aid(ctx), a->data, a->lc))
            return SW_FILE_NOT_FOUND;
        return ppse_fci(ctx, rsp);
    }
    return SW_INS_NOT_SUPPORTED;
}

/* ---- the CRS application -------------------------------------------------------------------- */

struct query {
    uint8_t active; /* a GET STATUS answer continues after 6310 */
    uint8_t plen, prefix[TSE_AID_MAX];
    uint8_t want_state; /* 9F70 search criterion: the contactless state byte; FF = any */
    uint8_t has_tags, ntags;
    uint32_t tags[MAX_TAGS];
    uint16_t next; /* position in the contactless priority order */
};

static uint16_t crs_install(struct tse_ctx *ctx, const uint8_t *params, size_t len)
{
    (void)params;
    (void)len;
    const uint8_t *p;
    return tse_sw_from_err(tse_ctx_pmem_get(ctx, OBJ_COUNTER, 2, &p, NULL));
}

static unsigned update_counter(struct tse_ctx *ctx)
{
    const uint8_t *p;
    if (tse_ctx_pmem_get(ctx, OBJ_COUNTER, 0, &p, NULL) != 0)
        return 0;
    return (unsigned)p[0] << 8 | p[1];
}

/* A5 { 9F08 CRS version, 80 global update counter } (FCI proprietary data, GET DATA A5). */
static void crs_template(struct tse_ctx *ctx, struct tse_tlv_writer *w)
{
    unsigned c = update_counter(ctx);
    const uint8_t counter[2] = {(uint8_t)(c >> 8), (uint8_t)c};
    tse_tlv_begin(w, 0xA5);
    tse_tlv_put(w, 0x9F08, CRS_VERSION, sizeof(CRS_VERSION));
    tse_tlv_put(w, 0x80, counter, sizeof(counter));
    tse_tlv_end(w);
}

static uint16_t finish(struct tse_tlv_writer *w, struct tse_response *rsp)
{
    int n = tse_tlv_finish(w);
    if (n < 0)
        return SW_UNKNOWN;
    rsp->len += (size_t)n;
    return SW_NO_ERROR;
}

static uint16_t crs_fci(struct tse_ctx *ctx, struct tse_response *rsp)
{
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, rsp->data + rsp->len, rsp->cap - rsp->len);
    tse_tlv_begin(&w, 0x6F);
    tse_tlv_put(&w, 0x84, ctx->inst->aid.b, ctx->inst->aid.len);
    crs_template(ctx, &w);
    tse_tlv_end(&w);
    return finish(&w, rsp);
}

static uint16_t crs_get_data(struct tse_ctx *ctx, const struct tse_apdu *a,
                             struct tse_response *rsp)
{
    if (a->p1 != 0x00 || a->p2 != 0xA5)
        return SW_REFERENCED_DATA_NOT_FOUND;
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, rsp->data + rsp->len, rsp->cap - rsp->len);
    crs_template(ctx, &w);
    return finish(&w, rsp);
}

/* -- GET STATUS -- */

static bool wants(const struct query *q, uint32_t tag)
{
    for (size_t i = 0; i < q->ntags; i++)
        if (q->tags[i] == tag)
            return true;
    return false;
}

static bool is_isd(const struct tse_card *card, const struct tse_instance *in)
{
    return tse_aid_equal(&in->aid, &card->prof->isd_aid);
}

static bool matches(const struct query *q, const struct tse_instance *in)
{
    return tse_aid_has_prefix(&in->aid, q->prefix, q->plen) &&
           (q->want_state == 0xFF || q->want_state == cl_state(in->cl));
}

/* Does an entry carry any object the tag list asks for? (4F and 9F70 come anyway.) */
static bool carries_listed(const struct query *q, const struct tse_instance *in)
{
    return wants(q, 0x4F) || wants(q, 0x9F70) || wants(q, 0xC5) || wants(q, 0x81) ||
           (wants(q, 0x8C) && (in->default_on & 2u)) || (wants(q, 0xA6) && cl_listed(in->cl));
}

/* One application: 61 { 4F, 9F70 (life cycle, contactless state), [C5], 81 rank, [8C], [A6] }.
 * Without a tag list: everything but C5; with one: 4F, 9F70 and what it names. */
static int status_entry(const struct query *q, const struct tse_instance *in, size_t rank,
                        uint8_t *out, size_t cap)
{
    bool all = !q->has_tags;
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, out, cap);
    tse_tlv_begin(&w, 0x61);
    tse_tlv_put(&w, 0x4F, in->aid.b, in->aid.len);
    const uint8_t lc[2] = {in->state, cl_state(in->cl)};
    tse_tlv_put(&w, 0x9F70, lc, sizeof(lc));
    if (wants(q, 0xC5))
        tse_tlv_put(&w, 0xC5, in->priv, 3);
    if (all || wants(q, 0x81))
        tse_tlv_put_u8(&w, 0x81, (uint8_t)(rank > 0xFF ? 0xFF : rank));
    if ((in->default_on & 2u) && (all || wants(q, 0x8C)))
        tse_tlv_put_u8(&w, 0x8C, 0x81); /* implicit selection on type A, the card's protocol */
    if (cl_listed(in->cl) && (all || wants(q, 0xA6))) {
        struct tse_aid shown;
        ppse_aid(in, &shown);
        size_t ll = cl_label_len(in->cl);
        tse_tlv_begin(&w, 0xA6);
        if (ll)
            tse_tlv_put(&w, 0x50, in->cl + CL_LABEL, ll);
        if (in->cl[CL_PRIORITY])
            tse_tlv_put_u8(&w, 0x87, in->cl[CL_PRIORITY]);
        if (shown.len != in->aid.len)
            tse_tlv_put(&w, 0x4F, shown.b, shown.len);
        tse_tlv_end(&w);
    }
    tse_tlv_end(&w);
    return tse_tlv_finish(&w);
}

/* The tags of a 5C tag list (1 to 3 bytes each). false if malformed or too many. */
static bool parse_tags(const uint8_t *v, size_t len, struct query *q)
{
    size_t i = 0;
    q->has_tags = 1;
    while (i < len) {
        uint32_t tag = v[i++];
        if ((tag & 0x1Fu) == 0x1Fu) {
            size_t k = 0;
            do {
                if (i >= len || ++k > 2)
                    return false;
                tag = tag << 8 | v[i];
            } while (v[i++] & 0x80u);
        }
        if (q->ntags == MAX_TAGS)
            return false;
        q->tags[q->ntags++] = tag;
    }
    return true;
}

static uint16_t parse_query(const struct tse_apdu *a, struct query *q)
{
    memset(q, 0, sizeof(*q));
    q->want_state = 0xFF;
    const uint8_t *p = a->data;
    size_t left = a->lc;
    struct tse_tlv t;
    bool have_aid = false;
    int r;
    while ((r = tse_tlv_next(&p, &left, &t)) == 1) {
        if (t.tag == 0x4F && !have_aid && t.len <= TSE_AID_MAX) {
            have_aid = true;
            q->plen = (uint8_t)t.len;
            if (t.len)
                memcpy(q->prefix, t.value, t.len);
        } else if (t.tag == 0x5C && !q->has_tags) {
            if (!parse_tags(t.value, t.len, q))
                return SW_WRONG_DATA;
        } else if (t.tag == 0x9F70 && t.len == 2 && q->want_state == 0xFF) {
            q->want_state = t.value[1]; /* the life cycle byte is not a criterion */
        } else {
            return SW_WRONG_DATA;
        }
    }
    return r < 0 || !have_aid ? SW_WRONG_DATA : SW_NO_ERROR;
}

static uint16_t crs_get_status(struct tse_ctx *ctx, const struct tse_apdu *a,
                               struct tse_response *rsp)
{
    if (a->p1 != P1_APPLICATIONS || (a->p2 & ~0x03u))
        return SW_INCORRECT_P1P2;
    uint8_t *m;
    if (tse_ctx_transient(ctx, (uint16_t)(RAM_QUERY0 + tse_ctx_channel(ctx)), sizeof(struct query),
                          TSE_CLEAR_ON_DESELECT, &m) != 0)
        return SW_FILE_FULL;
    struct query *q = (struct query *)(void *)m;
    struct tse_card *card = ctx->card;
    /* applications and security domains in contactless priority order; the ISD is not one
     * of them (its state is the card's) */
    int order[SYS_MAX_INSTANCES];
    size_t all = tse_crs_order(card, order), n = 0;
    for (size_t k = 0; k < all; k++)
        if (!is_isd(card, tse_rt_inst(card, order[k])))
            order[n++] = order[k];
    if (a->p2 & 0x01) { /* next occurrence */
        if (!q->active)
            return SW_CONDITIONS_NOT_SATISFIED;
    } else {
        uint16_t sw = parse_query(a, q);
        if (sw != SW_NO_ERROR) {
            memset(q, 0, sizeof(*q));
            return sw;
        }
        bool found = false, listed = false;
        for (size_t k = 0; k < n; k++) {
            const struct tse_instance *in = tse_rt_inst(card, order[k]);
            if (matches(q, in)) {
                found = true;
                listed |= !q->has_tags || carries_listed(q, in);
            }
        }
        if (!found || !listed) {
            memset(q, 0, sizeof(*q));
            return SW_REFERENCED_DATA_NOT_FOUND;
        }
    }
    size_t cap = STATUS_CHUNK < rsp->cap - rsp->len ? STATUS_CHUNK : rsp->cap - rsp->len;
    size_t used = 0;
    for (size_t k = q->next; k < n; k++) {
        const struct tse_instance *in = tse_rt_inst(card, order[k]);
        if (!matches(q, in))
            continue;
        int e = status_entry(q, in, k, rsp->data + rsp->len + used, cap - used);
        if (e < 0) { /* this page is full: the host asks again with P2 | 01 */
            q->active = 1;
            q->next = (uint16_t)k;
            rsp->len += used;
            return SW_MORE_DATA_AVAILABLE;
        }
        used += (size_t)e;
    }
    rsp->len += used;
    memset(q, 0, sizeof(*q));
    return SW_NO_ERROR;
}

/* -- SET STATUS -- */

struct change {
    int idx;
    uint8_t cl[16], old[16];
};

/* Write registry changes and advance the update counter as one transaction: a power cut
 * leaves the registry as before or as after, and on any error memory is as before too. */
static uint16_t apply(struct tse_ctx *ctx, struct change *ch, size_t n)
{
    struct tse_card *card = ctx->card;
    int rc = tse_ctx_txn_begin(ctx);
    if (rc)
        return tse_sw_from_err(rc);
    size_t done = 0;
    for (; done < n && !rc; done++) {
        memcpy(ch[done].old, tse_rt_inst(card, ch[done].idx)->cl, 16);
        rc = tse_rt_set_cl(card, ch[done].idx, ch[done].cl);
        if (rc)
            break;
    }
    if (!rc) {
        unsigned c = (update_counter(ctx) + 1u) & 0xFFFFu;
        const uint8_t b[2] = {(uint8_t)(c >> 8), (uint8_t)c};
        rc = tse_ctx_pmem_write(ctx, OBJ_COUNTER, 0, b, 2);
    }
    if (!rc)
        rc = tse_ctx_txn_commit(ctx);
    if (rc) {
        tse_ctx_txn_abort(ctx);
        for (size_t i = 0; i < done; i++)
            memcpy(tse_rt_inst(card, ch[i].idx)->cl, ch[i].old, 16);
        return rc == TSE_ERR_STATE ? SW_CONDITIONS_NOT_SATISFIED : tse_sw_from_err(rc);
    }
    return SW_NO_ERROR;
}

/* Exactly one 4F with a whole AID. 1: no data at all, 0: *aid set, -1: anything else. */
static int one_aid(const struct tse_apdu *a, struct tse_aid *aid)
{
    if (a->lc == 0)
        return 1;
    const uint8_t *p = a->data;
    size_t left = a->lc;
    struct tse_tlv t;
    if (tse_tlv_next(&p, &left, &t) != 1 || t.tag != 0x4F || t.len < TSE_AID_MIN ||
        t.len > TSE_AID_MAX || tse_tlv_next(&p, &left, &t) != 0)
        return -1;
    tse_aid_set(aid, t.value, t.len);
    return 0;
}

/* SET STATUS P1 01: activate (P2 01) or deactivate (P2 00) on the contactless interface. */
static uint16_t set_availability(struct tse_ctx *ctx, const struct tse_apdu *a,
                                 struct tse_response *rsp)
{
    if (a->p2 != STATE_ACTIVATED && a->p2 != STATE_DEACTIVATED)
        return SW_INCORRECT_P1P2; /* NON_ACTIVATABLE is the application's own business */
    struct tse_aid aid;
    if (one_aid(a, &aid) != 0)
        return SW_WRONG_DATA;
    struct tse_card *card = ctx->card;
    int idx = tse_rt_find(card, &aid);
    if (idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    const struct tse_instance *in = tse_rt_inst(card, idx);
    uint8_t cur = cl_state(in->cl);
    if (cur == STATE_NON_ACTIVATABLE)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (cur == a->p2)
        return SW_NO_ERROR; /* already there: nothing to write */
    if (a->p2 == STATE_ACTIVATED) {
        if (!tse_rt_selectable(in))
            return SW_CONDITIONS_NOT_SATISFIED; /* not yet SELECTABLE, or LOCKED */
        struct tse_tlv_writer w;
        tse_tlv_writer_init(&w, rsp->data + rsp->len, rsp->cap - rsp->len);
        tse_tlv_begin(&w, 0x61);
        tse_tlv_put(&w, 0x4F, in->aid.b, in->aid.len);
        tse_tlv_begin(&w, 0xA0);
        bool any = false;
        for (size_t i = 0; i < card->n_inst; i++) {
            const struct tse_instance *o = tse_rt_inst(card, i);
            if ((int)i != idx && cl_state(o->cl) == STATE_ACTIVATED && conflict(in, o)) {
                tse_tlv_put(&w, 0x4F, o->aid.b, o->aid.len);
                any = true;
            }
        }
        tse_tlv_end(&w);
        tse_tlv_end(&w);
        if (any) /* nothing changes; the wallet deactivates those and tries again */
            return finish(&w, rsp) == SW_NO_ERROR ? SW_CRS_CONFLICT : SW_UNKNOWN;
    }
    struct change ch = {.idx = idx};
    memcpy(ch.cl, in->cl, 16);
    cl_set_state(ch.cl, a->p2);
    return apply(ctx, &ch, 1);
}

/* SET STATUS P1 02: highest (01) or lowest (81) place in the registry order, volatile
 * priority (02) or its reset (82). */
static uint16_t set_priority(struct tse_ctx *ctx, const struct tse_apdu *a)
{
    uint8_t p2 = a->p2;
    if (p2 != P2_HIGHEST && p2 != P2_LOWEST && p2 != P2_VOLATILE && p2 != P2_VOLATILE_OFF)
        return SW_INCORRECT_P1P2;
    struct tse_aid aid;
    int r = one_aid(a, &aid);
    if (r < 0 || (r == 1 && p2 != P2_VOLATILE_OFF))
        return SW_WRONG_DATA;
    struct tse_card *card = ctx->card;
    int idx = r == 0 ? tse_rt_find(card, &aid) : -1;
    if (r == 0 && idx < 0)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (p2 == P2_VOLATILE) {
        card->cl_volatile = tse_rt_inst(card, idx)->ctx_id;
        return SW_NO_ERROR;
    }
    if (p2 == P2_VOLATILE_OFF) {
        if (idx < 0 || card->cl_volatile == tse_rt_inst(card, idx)->ctx_id)
            card->cl_volatile = 0;
        return SW_NO_ERROR;
    }
    bool top = p2 == P2_HIGHEST;
    int own = cl_order(tse_rt_inst(card, idx)->cl), edge = top ? CL_ORDER_MAX : CL_ORDER_MIN;
    bool already = true;
    for (size_t i = 0; i < card->n_inst; i++) {
        if ((int)i == idx)
            continue;
        int o = cl_order(tse_rt_inst(card, i)->cl);
        if (top ? o <= own : o >= own)
            already = false;
        if (top ? o < edge : o > edge)
            edge = o;
    }
    if (already)
        return SW_NO_ERROR;
    struct change *ch = calloc(card->n_inst, sizeof(*ch));
    if (!ch)
        return SW_UNKNOWN;
    size_t n = 0;
    if (edge == (top ? CL_ORDER_MIN : CL_ORDER_MAX)) {
        /* out of room at that end: renumber the whole registry around 0 in its current
         * order (part of the same transaction) */
        int idx_sorted[SYS_MAX_INSTANCES];
        size_t cnt = sorted(card, idx_sorted, false);
        int base = -(int)(cnt / 2);
        for (size_t k = 0; k < cnt; k++) {
            int i = idx_sorted[k];
            ch[n].idx = i;
            memcpy(ch[n].cl, tse_rt_inst(card, i)->cl, 16);
            cl_set_order(ch[n].cl, base + (int)k);
            if (i != idx)
                n++;
        }
        edge = top ? base : base + (int)cnt - 1;
    }
    ch[n].idx = idx;
    memcpy(ch[n].cl, tse_rt_inst(card, idx)->cl, 16);
    cl_set_order(ch[n].cl, top ? edge - 1 : edge + 1);
    n++;
    uint16_t sw = apply(ctx, ch, n);
    free(ch);
    return sw;
}

static uint16_t crs_process(struct tse_ctx *ctx, const struct tse_apdu *a, struct tse_response *rsp)
{
    struct tse_cla_info ci = tse_cla_decode(a->cla);
    if (a->ins == INS_SELECT && a->p1 == 0x04 && !ci.proprietary) {
        if (a->lc && !tse_aid_has_prefix(tse_ctx_aid(ctx), a->data, a->lc))
            return SW_FILE_NOT_FOUND; /* not ours: handed over by the card */
        return crs_fci(ctx, rsp);
    }
    if (!ci.proprietary)
        return SW_CLA_NOT_SUPPORTED;
    if (ci.sm)
        return SW_SECURE_MESSAGING_NOT_SUPPORTED;
    switch (a->ins) {
    case INS_GET_STATUS:
        return crs_get_status(ctx, a, rsp);
    case INS_SET_STATUS:
        if (a->p1 == P1_AVAILABILITY)
            return set_availability(ctx, a, rsp);
        if (a->p1 == P1_PRIORITY)
            return set_priority(ctx, a);
        return SW_INCORRECT_P1P2; /* interface access (04), protocol types (08): not here */
    case INS_GET_DATA:
        return crs_get_data(ctx, a, rsp);
    default:
        return SW_INS_NOT_SUPPORTED;
    }
}

/* ---- package ------------------------------------------------------------------------------- */

static const struct tse_applet_ops crs_ops = {
    .install = crs_install,
    .process = crs_process,
};

static const struct tse_applet_ops ppse_ops = {
    .process = ppse_process,
};

static const uint8_t pkg_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x43, 0x52, 0x53};
static const uint8_t crs_mod_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x43, 0x52, 0x53, 0x00};
static const uint8_t ppse_mod_aid[] = {0xA0, 0x00, 0x00, 0x01, 0x51, 0x43, 0x52, 0x53, 0x50};

static const struct tse_module_def crs_modules[] = {
    {"crs", crs_mod_aid, sizeof(crs_mod_aid), TSE_MODULE_MULTISELECTABLE, &crs_ops},
    {"ppse", ppse_mod_aid, sizeof(ppse_mod_aid), TSE_MODULE_MULTISELECTABLE, &ppse_ops},
};

const struct tse_package_def tse_crs_package = {
    "contactless", pkg_aid, sizeof(pkg_aid), 1, 0, crs_modules, 2,
};

int tse_crs_install_builtin(struct tse_card *card)
{
    struct tse_aid pkg, mod, aid;
    uint16_t sw;
    tse_aid_set(&pkg, pkg_aid, sizeof(pkg_aid));
    /* the CRS: Contactless Activation privilege; managed from the device, never by a reader */
    struct tse_rt_install_opts o = {.priv = {0x00, 0x00, 0x20}, .sd = card->prof->isd_aid};
    cl_set_state(o.cl, STATE_NON_ACTIVATABLE);
    tse_aid_set(&mod, crs_mod_aid, sizeof(crs_mod_aid));
    tse_aid_set(&aid, (const uint8_t *)TSE_CRS_AID, TSE_CRS_AID_LEN);
    int rc = tse_rt_install(card, &pkg, &mod, &aid, NULL, 0, &o, &sw);
    if (rc)
        return rc;
    /* the PPSE: on the contactless interface only */
    struct tse_rt_install_opts p = {.sd = card->prof->isd_aid};
    p.cl[0] = CL_NO_CONTACT;
    tse_aid_set(&mod, ppse_mod_aid, sizeof(ppse_mod_aid));
    tse_aid_set(&aid, (const uint8_t *)TSE_PPSE_AID, TSE_PPSE_AID_LEN);
    return tse_rt_install(card, &pkg, &mod, &aid, NULL, 0, &p, &sw);
}
