/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card's random source and clock. Normally a CTR_DRBG seeded from the host's entropy;
 * in deterministic mode (profile [deterministic]) the DRBG is seeded from the profile seed
 * only, so every challenge the card draws repeats from one run to the next. Bytes queued
 * with tse_card_queue_random() are returned first, to replay a recorded session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cos/card_internal.h"

struct seed_src {
    const uint8_t *seed;
    size_t len;
};

/* Entropy callback of normal mode: the kernel's random source (getrandom(2)). Mbed TLS's
 * own entropy collector would do the same plus, in Debian's build, a HAVEGE state of several
 * kilobytes to initialise: that made up most of the cost of opening a card image. */
static int os_entropy(void *p, unsigned char *out, size_t len)
{
    (void)p;
    while (len) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

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
    if (card->prof->deterministic) {
        struct seed_src src = {card->prof->seed, card->prof->seed_len};
        rc = mbedtls_ctr_drbg_seed(&card->drbg, seed_entropy, &src, pers, sizeof(pers) - 1);
        /* Never reseed from the (now gone) seed source behind our back. */
        mbedtls_ctr_drbg_set_reseed_interval(&card->drbg, INT32_MAX);
    } else {
        rc = mbedtls_ctr_drbg_seed(&card->drbg, os_entropy, NULL, pers, sizeof(pers) - 1);
        /* Prediction resistance is not needed for an emulator; the DRBG stays self-contained
         * (no entropy source is called again). */
        mbedtls_ctr_drbg_set_reseed_interval(&card->drbg, INT32_MAX);
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
    if (card->prof->deterministic)
        return card->prof->clock;
    return (int64_t)time(NULL);
}
