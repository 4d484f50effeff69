/* SPDX-License-Identifier: Apache-2.0 */
/* Opening or creating a card image from a path and a profile file, as every tool does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tse/card.h"
#include "tse/error.h"

/* The whole file (profiles are small: at most 1 MiB), NULL with errno set. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap || cap >= (1u << 20))
            break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            errno = ENOMEM;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int e = errno;
    bool bad = ferror(f);
    fclose(f);
    if (b && bad) {
        free(b);
        b = NULL;
        errno = e ? e : EIO;
    }
    *len = n;
    return b;
}

int tse_card_open_or_create(struct tse_card **card, const char *path, const char *profile_path,
                            const struct tse_card_options *opt, bool *created, char *err,
                            size_t errlen)
{
    if (!card || !path)
        return TSE_ERR_INVALID_ARG;
    if (created)
        *created = false;
    if (err && errlen)
        err[0] = '\0';
    struct stat st;
    if (stat(path, &st) == 0)
        return tse_card_open(card, path, opt, err, errlen);
    if (errno != ENOENT) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TSE_ERR_IO;
    }
    char *text = NULL;
    size_t len = 0;
    if (profile_path && !(text = read_text(profile_path, &len))) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", profile_path, strerror(errno));
        return TSE_ERR_IO;
    }
    int rc = tse_card_create(card, path, text, len, profile_path ? profile_path : "default", opt,
                             err, errlen);
    free(text);
    if (rc == 0 && created)
        *created = true;
    return rc;
}
