/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsed profiles shared by the cards that hold the same profile text (profile_internal.h).
 * A small chained hash table keyed by the text; each entry keeps the text, the parsed
 * profile and a reference count. Only immutable data is shared; the lock covers the table
 * and the counts and is held for a lookup or an insertion, never while a card runs.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cos/profile_internal.h"
#include "tse/error.h"
#include "tse/profile.h"

#define BUCKETS 64u

struct shared {
    struct tse_profile prof; /* first: a profile pointer is its entry's address */
    struct shared *next;
    uint64_t hash;
    unsigned long refs;
    size_t len;
    char text[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared *table[BUCKETS];

static uint64_t fnv1a(const char *t, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)t[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static struct shared *find(uint64_t h, const char *text, size_t len)
{
    for (struct shared *e = table[h % BUCKETS]; e; e = e->next)
        if (e->hash == h && e->len == len && !memcmp(e->text, text, len))
            return e;
    return NULL;
}

int tse_profile_share(const char *text, size_t len, const char *name, char *err, size_t errlen,
                      const struct tse_profile **out)
{
    uint64_t h = fnv1a(text, len);
    pthread_mutex_lock(&lock);
    struct shared *e = find(h, text, len);
    if (e)
        e->refs++;
    pthread_mutex_unlock(&lock);
    if (e) {
        *out = &e->prof;
        return 0;
    }
    /* parse outside the lock; another thread may insert the same text meanwhile */
    struct shared *n = malloc(sizeof(*n) + len);
    if (!n)
        return TSE_ERR_NO_MEMORY;
    int rc = tse_profile_parse(&n->prof, text, len, name, err, errlen);
    if (rc) {
        free(n);
        return rc;
    }
    memcpy(n->text, text, len);
    n->len = len;
    n->hash = h;
    n->refs = 1;
    pthread_mutex_lock(&lock);
    e = find(h, text, len);
    if (e) {
        e->refs++;
    } else {
        n->next = table[h % BUCKETS];
        table[h % BUCKETS] = n;
        e = n;
        n = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(n);
    *out = &e->prof;
    return 0;
}

void tse_profile_unshare(const struct tse_profile *p)
{
    if (!p)
        return;
    struct shared *e = (struct shared *)(void *)p; /* the entry starts with its profile */
    pthread_mutex_lock(&lock);
    bool last = --e->refs == 0;
    if (last) {
        struct shared **pp = &table[e->hash % BUCKETS];
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
    }
    pthread_mutex_unlock(&lock);
    if (last)
        free(e);
}
