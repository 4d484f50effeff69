/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card farm (include/tse/farm.h): a table of card slots indexed by id, two intrusive
 * least-recently-used lists over it (cards in memory; cards allowed to keep an image
 * descriptor) and the creation of new images from a template or per-card profiles.
 *
 * Locking: f->lock guards the table, the lists and the counters. A card is used outside
 * that lock, under its own lock, while its slot is pinned; pinned cards are never evicted
 * and never have their descriptor closed, so the farm only ever calls into unpinned cards
 * while holding its lock and the lock order is always farm, then card.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tse/farm.h"

#define NIL             UINT32_MAX
#define DEFAULT_CARDS   100000u
#define DEFAULT_FILES   64u
#define MAX_PROFILE_LEN 65536u

struct slot {
    struct tse_card *card; /* NULL: not in memory */
    uint64_t last_ms;      /* last use (CLOCK_MONOTONIC) */
    uint32_t link[2][2];   /* [list][0 = towards the head (newer), 1 = towards the tail] */
    uint32_t pins;         /* acquired or inside an exchange */
    bool listed[2];
};

enum { L_RES = 0, L_WIN = 1 }; /* in memory; may keep a descriptor */

struct list {
    uint32_t head, tail; /* head: most recently used */
    size_t n;
};

struct tse_farm {
    pthread_mutex_t lock;
    char *dir;
    char *profile; /* NULL: the default profile */
    size_t profile_len;
    tse_farm_profile_fn profile_for;
    void *user;
    uint8_t *tmpl; /* template image (template mode) */
    size_t tmpl_len;
    bool sync_new; /* fsync new images and the directory */
    uint32_t max_cards;
    size_t max_resident, max_open;
    int fsync;
    struct slot *slots;
    struct list lists[2];
    size_t in_use;
    unsigned long created, opened, evicted;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void seterr(char *err, size_t errlen, const char *what, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", what, why);
}

/* ---- lists ----------------------------------------------------------------------------------- */

static void list_remove(struct tse_farm *f, int l, uint32_t id)
{
    struct slot *s = &f->slots[id];
    if (!s->listed[l])
        return;
    uint32_t newer = s->link[l][0], older = s->link[l][1];
    if (newer != NIL)
        f->slots[newer].link[l][1] = older;
    else
        f->lists[l].head = older;
    if (older != NIL)
        f->slots[older].link[l][0] = newer;
    else
        f->lists[l].tail = newer;
    s->listed[l] = false;
    f->lists[l].n--;
}

static void list_push_head(struct tse_farm *f, int l, uint32_t id)
{
    struct slot *s = &f->slots[id];
    list_remove(f, l, id);
    s->link[l][0] = NIL;
    s->link[l][1] = f->lists[l].head;
    if (f->lists[l].head != NIL)
        f->slots[f->lists[l].head].link[l][0] = id;
    else
        f->lists[l].tail = id;
    f->lists[l].head = id;
    s->listed[l] = true;
    f->lists[l].n++;
}

/* ---- eviction and descriptors ---------------------------------------------------------------- */

static void evict_locked(struct tse_farm *f, uint32_t id)
{
    struct slot *s = &f->slots[id];
    list_remove(f, L_RES, id);
    list_remove(f, L_WIN, id);
    tse_card_free(s->card);
    s->card = NULL;
    f->evicted++;
}

/* Keep at most max_open cards in the descriptor window: the least recently used unpinned
 * ones beyond it close their image (a pinned one stays until it is released). */
static void trim_window(struct tse_farm *f)
{
    uint32_t id = f->lists[L_WIN].tail;
    while (f->lists[L_WIN].n > f->max_open && id != NIL) {
        uint32_t newer = f->slots[id].link[L_WIN][0];
        if (!f->slots[id].pins) {
            list_remove(f, L_WIN, id);
            tse_card_close_files(f->slots[id].card);
        }
        id = newer;
    }
}

/* A use of a resident card: most recent in both lists. */
static void touch(struct tse_farm *f, uint32_t id)
{
    f->slots[id].last_ms = now_ms();
    list_push_head(f, L_RES, id);
    list_push_head(f, L_WIN, id);
    trim_window(f);
}

/* Make room for one more resident card under max_resident. */
static int make_room(struct tse_farm *f)
{
    if (!f->max_resident || f->lists[L_RES].n < f->max_resident)
        return 0;
    for (uint32_t id = f->lists[L_RES].tail; id != NIL; id = f->slots[id].link[L_RES][0])
        if (!f->slots[id].pins) {
            evict_locked(f, id);
            return 0;
        }
    return TSE_ERR_STATE;
}

/* ---- images ---------------------------------------------------------------------------------- */

static int card_path(const struct tse_farm *f, uint32_t id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%08x.img", f->dir, (unsigned)id);
    return n > 0 && (size_t)n < cap ? 0 : TSE_ERR_INVALID_ARG;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : TSE_ERR_IO;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Write the template as `path`: into path.tmp first, then renamed, so a crash never leaves
 * half an image under the card's name (a stale .tmp is removed when the card opens). */
static int copy_template(const struct tse_farm *f, const char *path)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return TSE_ERR_IO;
    int rc = 0;
    for (size_t off = 0; off < f->tmpl_len && !rc;) {
        ssize_t w = write(fd, f->tmpl + off, f->tmpl_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = TSE_ERR_IO;
        else
            off += (size_t)w;
    }
    if (!rc && f->sync_new && fsync(fd) != 0)
        rc = TSE_ERR_IO;
    if (close(fd) != 0 && !rc)
        rc = TSE_ERR_IO;
    if (!rc && rename(tmp, path) != 0)
        rc = TSE_ERR_IO;
    if (rc)
        unlink(tmp);
    else if (f->sync_new)
        rc = fsync_dir(f->dir);
    return rc;
}

/* Create the image of card `id`; with per-card profiles the new card comes back in *out
 * (still open) when out is not NULL. */
static int create_image(struct tse_farm *f, uint32_t id, const char *path, struct tse_card **out)
{
    if (!f->profile_for) {
        int rc = copy_template(f, path);
        if (!rc)
            f->created++;
        return rc;
    }
    char *text = malloc(MAX_PROFILE_LEN);
    if (!text)
        return TSE_ERR_NO_MEMORY;
    int n = f->profile_for(f->user, id, text, MAX_PROFILE_LEN);
    if (n < 0 || (size_t)n > MAX_PROFILE_LEN) {
        free(text);
        return n < 0 ? n : TSE_ERR_BUFFER_TOO_SMALL;
    }
    struct tse_card_options o = {.fsync = f->fsync};
    struct tse_card *c;
    char name[32];
    snprintf(name, sizeof(name), "card %08x", (unsigned)id);
    int rc = tse_card_create(&c, path, text, (size_t)n, name, &o, NULL, 0);
    free(text);
    if (rc)
        return rc;
    f->created++;
    if (out)
        *out = c;
    else
        tse_card_free(c);
    return 0;
}

/* Card `id` in memory, created when it has no image yet. */
static int bring_in(struct tse_farm *f, uint32_t id)
{
    if (id >= f->max_cards)
        return TSE_ERR_INVALID_ARG;
    struct slot *s = &f->slots[id];
    if (s->card) {
        touch(f, id);
        return 0;
    }
    int rc = make_room(f);
    if (rc)
        return rc;
    char path[PATH_MAX];
    if ((rc = card_path(f, id, path, sizeof(path))) != 0)
        return rc;
    struct tse_card *c = NULL;
    if (access(path, F_OK) != 0 && (rc = create_image(f, id, path, &c)) != 0)
        return rc;
    if (!c) {
        struct tse_card_options o = {.fsync = f->fsync};
        rc = tse_card_open(&c, path, &o, NULL, 0);
        if (rc)
            return rc;
    }
    s->card = c;
    f->opened++;
    touch(f, id);
    return 0;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

void tse_farm_options_init(struct tse_farm_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->max_cards = DEFAULT_CARDS;
    o->max_open_files = DEFAULT_FILES;
    o->fsync = -1;
}

/* Template mode: create one card from the profile, keep its image bytes, remove it. */
static int make_template(struct tse_farm *f, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.template-%ld.img", f->dir, (long)getpid());
    unlink(path);
    struct tse_card_options o = {.fsync = 0};
    struct tse_card *c;
    int rc = tse_card_create(&c, path, f->profile, f->profile_len, "farm profile", &o, err, errlen);
    if (rc)
        return rc;
    f->sync_new = f->fsync >= 0 ? f->fsync != 0 : tse_card_profile(c)->fsync != 0;
    tse_card_free(c);
    rc = TSE_ERR_IO;
    FILE *in = fopen(path, "rb");
    struct stat st;
    if (in && fstat(fileno(in), &st) == 0 && st.st_size > 0) {
        f->tmpl_len = (size_t)st.st_size;
        f->tmpl = malloc(f->tmpl_len);
        if (!f->tmpl)
            rc = TSE_ERR_NO_MEMORY;
        else if (fread(f->tmpl, 1, f->tmpl_len, in) == f->tmpl_len)
            rc = 0;
    }
    if (in)
        fclose(in);
    unlink(path);
    if (rc)
        seterr(err, errlen, path, "cannot read the template image back");
    return rc;
}

int tse_farm_init(struct tse_farm **out, const struct tse_farm_options *o, char *err, size_t errlen)
{
    if (!out || !o || !o->dir || !*o->dir || o->max_cards == 0 ||
        o->max_cards > TSE_FARM_MAX_CARDS || o->max_open_files == 0)
        return TSE_ERR_INVALID_ARG;
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        seterr(err, errlen, o->dir, strerror(errno));
        return TSE_ERR_IO;
    }
    struct tse_farm *f = calloc(1, sizeof(*f));
    if (!f)
        return TSE_ERR_NO_MEMORY;
    f->dir = strdup(o->dir);
    f->slots = calloc(o->max_cards, sizeof(*f->slots));
    f->max_cards = o->max_cards;
    f->max_resident = o->max_resident;
    f->max_open = o->max_open_files;
    f->fsync = o->fsync;
    f->profile_for = o->profile_for;
    f->user = o->user;
    for (int l = 0; l < 2; l++)
        f->lists[l] = (struct list){NIL, NIL, 0};
    if (o->profile_text) {
        f->profile = malloc(o->profile_len + 1);
        if (f->profile) {
            memcpy(f->profile, o->profile_text, o->profile_len);
            f->profile[o->profile_len] = 0;
            f->profile_len = o->profile_len;
        }
    }
    int rc = 0;
    if (!f->dir || !f->slots || (o->profile_text && !f->profile) ||
        pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f->profile);
        free(f->slots);
        free(f->dir);
        free(f);
        return TSE_ERR_NO_MEMORY;
    }
    if (!f->profile_for)
        rc = make_template(f, err, errlen);
    if (rc) {
        tse_farm_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void tse_farm_free(struct tse_farm *f)
{
    if (!f)
        return;
    while (f->lists[L_RES].tail != NIL)
        evict_locked(f, f->lists[L_RES].tail);
    pthread_mutex_destroy(&f->lock);
    free(f->tmpl);
    free(f->profile);
    free(f->slots);
    free(f->dir);
    free(f);
}

/* ---- use ------------------------------------------------------------------------------------- */

int tse_farm_create(struct tse_farm *f, uint32_t id)
{
    if (!f || id >= f->max_cards)
        return TSE_ERR_INVALID_ARG;
    char path[PATH_MAX];
    int rc = card_path(f, id, path, sizeof(path));
    if (rc)
        return rc;
    pthread_mutex_lock(&f->lock);
    if (!f->slots[id].card && access(path, F_OK) != 0)
        rc = create_image(f, id, path, NULL);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int tse_farm_open(struct tse_farm *f, uint32_t id)
{
    if (!f)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&f->lock);
    int rc = bring_in(f, id);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int tse_farm_acquire(struct tse_farm *f, uint32_t id, struct tse_card **card)
{
    if (!f || !card)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&f->lock);
    int rc = bring_in(f, id);
    if (!rc) {
        struct slot *s = &f->slots[id];
        if (s->pins++ == 0)
            f->in_use++;
        *card = s->card;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void tse_farm_release(struct tse_farm *f, uint32_t id)
{
    if (!f || id >= f->max_cards)
        return;
    pthread_mutex_lock(&f->lock);
    struct slot *s = &f->slots[id];
    if (s->card && s->pins) {
        if (--s->pins == 0)
            f->in_use--;
        s->last_ms = now_ms();
        trim_window(f); /* it may have been kept beyond the window while pinned */
    }
    pthread_mutex_unlock(&f->lock);
}

int tse_farm_power_on(struct tse_farm *f, uint32_t id, enum tse_iface iface, uint8_t *out,
                      size_t cap, size_t *out_len)
{
    struct tse_card *c;
    int rc = tse_farm_acquire(f, id, &c);
    if (rc)
        return rc;
    rc = tse_card_power_on(c, iface, out, cap, out_len);
    tse_farm_release(f, id);
    return rc;
}

int tse_farm_power_off(struct tse_farm *f, uint32_t id, enum tse_iface iface)
{
    if (!f || id >= f->max_cards)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&f->lock);
    bool resident = f->slots[id].card != NULL;
    pthread_mutex_unlock(&f->lock);
    if (!resident)
        return 0; /* not in memory: powered off already */
    struct tse_card *c;
    int rc = tse_farm_acquire(f, id, &c);
    if (rc)
        return rc;
    rc = tse_card_power_off(c, iface);
    tse_farm_release(f, id);
    return rc;
}

int tse_farm_transmit(struct tse_farm *f, uint32_t id, enum tse_iface iface, const uint8_t *capdu,
                      size_t clen, uint8_t *rapdu, size_t rcap, size_t *rlen)
{
    struct tse_card *c;
    int rc = tse_farm_acquire(f, id, &c);
    if (rc)
        return rc;
    rc = tse_card_transmit(c, iface, capdu, clen, rapdu, rcap, rlen);
    tse_farm_release(f, id);
    return rc;
}

int tse_farm_evict(struct tse_farm *f, uint32_t id)
{
    if (!f || id >= f->max_cards)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&f->lock);
    int rc = 0;
    struct slot *s = &f->slots[id];
    if (s->card && s->pins)
        rc = TSE_ERR_STATE;
    else if (s->card)
        evict_locked(f, id);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

size_t tse_farm_evict_idle(struct tse_farm *f, unsigned long idle_ms)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->lock);
    uint64_t now = now_ms();
    size_t n = 0;
    uint32_t id = f->lists[L_RES].tail;
    while (id != NIL) {
        struct slot *s = &f->slots[id];
        uint32_t newer = s->link[L_RES][0];
        if (now - s->last_ms < idle_ms)
            break; /* the list is in order of use: every newer card is younger still */
        if (!s->pins) {
            evict_locked(f, id);
            n++;
        }
        id = newer;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

int tse_farm_stats(struct tse_farm *f, struct tse_farm_stats *st)
{
    if (!f || !st)
        return TSE_ERR_INVALID_ARG;
    pthread_mutex_lock(&f->lock);
    st->max_cards = f->max_cards;
    st->resident = f->lists[L_RES].n;
    st->in_use = f->in_use;
    st->open_files = f->lists[L_WIN].n;
    st->created = f->created;
    st->opened = f->opened;
    st->evicted = f->evicted;
    pthread_mutex_unlock(&f->lock);
    return 0;
}
