/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process card as a script target: the target pointer is a struct tse_card *. The
 * engine only passes TSE_IF_CONTACT or TSE_IF_CONTACTLESS; the card checks anyway.
 */
#include "shell/script.h"
#include "tse/card.h"

static int card_power_on(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    return tse_card_power_on(t, (enum tse_iface)iface, atr, cap, len);
}

static int card_power_off(void *t, int iface)
{
    return tse_card_power_off(t, (enum tse_iface)iface);
}

static int card_reset(void *t, int iface, uint8_t *atr, size_t cap, size_t *len)
{
    return tse_card_reset(t, (enum tse_iface)iface, atr, cap, len);
}

static bool card_is_powered(void *t, int iface)
{
    return tse_card_is_powered(t, (enum tse_iface)iface);
}

static int card_transmit(void *t, int iface, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                         size_t *rlen)
{
    return tse_card_transmit(t, (enum tse_iface)iface, c, clen, r, rcap, rlen);
}

static int card_tear_at(void *t, unsigned long n)
{
    return tse_card_tear_at(t, n);
}

static int card_queue_random(void *t, const uint8_t *b, size_t len)
{
    return tse_card_queue_random(t, b, len);
}

static int card_set_counter(void *t, const char *name, uint64_t v)
{
    return tse_card_set_counter(t, name, v);
}

static int card_get_counter(void *t, const char *name, uint64_t *v)
{
    return tse_card_get_counter(t, name, v);
}

static int card_cl_params(void *t, struct tse_cl_params *p)
{
    return tse_card_cl_params(t, p);
}

const struct tse_target_ops tse_target_card_ops = {
    .name = "card",
    .power_on = card_power_on,
    .power_off = card_power_off,
    .reset = card_reset,
    .is_powered = card_is_powered,
    .transmit = card_transmit,
    .tear_at = card_tear_at,
    .queue_random = card_queue_random,
    .set_counter = card_set_counter,
    .get_counter = card_get_counter,
    .cl_params = card_cl_params,
};
