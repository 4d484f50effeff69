/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card's random source and clock. Normally a CTR_DRBG seeded from the host's entropy;
 * in deterministic mode (profile [deterministic]) the DRBG is seeded from the profile seed
 * only, so every challenge the card draws repeats from one run to the next. Bytes queued
 * with tse_card_queue_random() are returned first, to replay a recorded session.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/entropy.h>

#include "cos/card_internal.h"

struct seed_src {
    const uint8_t *seed;
    size_t len;
};

/* Entropy callback of deterministic mode: the profile seed, repeated as often as asked. */
static int seed_entropy(void *p, unsigned char *out, size_t len)
{
    const struct seed_src *s = p;
    for (size_t i = 0; i < len; i++)
        out[i] = s->seed[i % s->len];
    return 0;
}

int tse_rng_init(struct tse_card *card)
{
    static const unsigned char pers[] = "tse card rng";
    mbedtls_ctr_drbg_init(&card->drbg);
    int rc;
    if (card->prof.deterministic) {
        struct seed_src src = {card->prof.seed, card->prof.seed_len};
        rc = mbedtls_ctr_drbg_seed(&card->drbg, seed_entropy, &src, pers, sizeof(pers) - 1);
        /* Never reseed from the (now gone) seed source behind our back. */
        mbedtls_ctr_drbg_set_reseed_interval(&card->drbg, INT32_MAX);
    } else {
        mbedtls_entropy_context *ent = malloc(sizeof(*ent));
        if (!ent)
            return TSE_ERR_NO_MEMORY;
        mbedtls_entropy_init(ent);
        rc = mbedtls_ctr_drbg_seed(&card->drbg, mbedtls_entropy_func, ent, pers, sizeof(pers) - 1);
        /* Prediction resistance is not needed for an emulator; keep the DRBG self-contained
         * so the entropy context can go. */
        mbedtls_ctr_drbg_set_reseed_interval(&card->drbg, INT32_MAX);
        mbedtls_entropy_free(ent);
        free(ent);
    }
    card->drbg.p_entropy = NULL;
    card->drbg.f_entropy = NULL;
    if (rc) {
        mbedtls_ctr_drbg_free(&card->drbg);
        return TSE_ERR_IO;
    }
    card->drbg_ready = true;
    return 0;
}

void tse_rng_free(struct tse_card *card)
{
    if (card->drbg_ready)
        mbedtls_ctr_drbg_free(&card->drbg);
    card->drbg_ready = false;
    free(card->rnd_queue);
    card->rnd_queue = NULL;
    card->rnd_len = card->rnd_off = 0;
}

int tse_rng_bytes(struct tse_card *card, uint8_t *buf, size_t len)
{
    size_t n = 0;
    while (n < len && card->rnd_off < card->rnd_len)
        buf[n++] = card->rnd_queue[card->rnd_off++];
    if (card->rnd_off == card->rnd_len && card->rnd_queue) {
        free(card->rnd_queue);
        card->rnd_queue = NULL;
        card->rnd_len = card->rnd_off = 0;
    }
    while (n < len) {
        size_t chunk =
            len - n > MBEDTLS_CTR_DRBG_MAX_REQUEST ? MBEDTLS_CTR_DRBG_MAX_REQUEST : len - n;
        if (mbedtls_ctr_drbg_random(&card->drbg, buf + n, chunk) != 0)
            return TSE_ERR_IO;
        n += chunk;
    }
    return 0;
}

int64_t tse_clock_now(const struct tse_card *card)
{
    if (card->prof.deterministic)
        return card->prof.clock;
    return (int64_t)time(NULL);
}
