/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Journalled persistent store. Image file layout (all integers big-endian):
 *
 *   header (40 bytes): "TSECARD\0" | version u16 | flags u16 | header_len u32 | generation u64
 *                      | snapshot_len u32 | snapshot_crc u32 | reserved u32 | header_crc u32
 *   snapshot:          snapshot_len bytes of records (CREATE with the object's data)
 *   journal:           records appended since the snapshot was written
 *
 *   record:            type u8 | flags u8 | 0 u16 | txid u32 | owner u32 | id u32 | off u32
 *                      | len u32 | payload[len] | crc32 u32 (over everything before it)
 *
 * Why this is crash safe: a mutation outside a transaction becomes visible in memory only
 * after its record has been written (and, with fsync on, synced). Recovery replays records
 * in order; records flagged TXN are held back until the COMMIT record of their transaction,
 * so a transaction torn anywhere, including inside its COMMIT record, leaves nothing; that
 * is also why a transaction's records may wait in memory and reach the image in one write
 * with their COMMIT (append()): until the COMMIT is written nothing of it counts, and a
 * failed COMMIT write rolls memory back (tse_store_commit()). A
 * record that fails its checksum is accepted as a torn tail only if nothing but zeros
 * follows it (what an interrupted append leaves); anywhere else the image is corrupt and
 * is refused. Compaction writes a fresh image to "<path>.tmp" and renames it over the old
 * one, so it is atomic too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <mbedtls/sha256.h>

#include "cos/store_internal.h"
#include "tse/error.h"

#define HDR_LEN     40u
#define REC_HDR     24u
#define REC_TRAILER 4u
#define FMT_VERSION 1u
#define COMPACT_MIN (256u * 1024u)

static const uint8_t MAGIC[8] = {'T', 'S', 'E', 'C', 'A', 'R', 'D', 0};

enum rec_type { REC_CREATE = 1, REC_WRITE = 2, REC_DELETE = 3, REC_COMMIT = 4, REC_ABORT = 5 };
#define REC_F_TXN 0x01u

enum undo_kind { UNDO_WRITE, UNDO_CREATE, UNDO_DELETE };

struct obj {
    uint32_t owner, id;
    uint32_t size;
    uint8_t *data;
};

struct undo {
    enum undo_kind kind;
    uint32_t owner, id, off, len;
    uint8_t *old; /* previous bytes (WRITE) or previous content (DELETE) */
};

struct tse_store {
    char *path;
    int fd;
    struct tse_store_cfg cfg;
    struct obj *objs;
    size_t n, cap;
    size_t used;
    uint64_t generation;
    size_t end;      /* end of the valid journal = file size */
    size_t snap_end; /* header + snapshot */
    bool in_txn;
    uint32_t txid;
    bool txn_logged; /* a TXN record of the current transaction was appended */
    /* TXN records appended but not yet written: they reach the image in one write with the
     * next record that must be there now (COMMIT, or a non-transactional record) */
    uint8_t *jbuf;
    size_t jlen, jcap;
    struct undo *undo;
    size_t n_undo, cap_undo, undo_bytes;
    unsigned long writes, tear_target;
    bool torn;
    struct tse_store_stats st;
};

/* ---- small helpers ---------------------------------------------------------------------- */

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

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t crc(const uint8_t *b, size_t len)
{
    return (uint32_t)crc32(0L, b, (uInt)len);
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *path, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, path, what);
}

static int cmp_key(uint32_t o1, uint32_t i1, uint32_t o2, uint32_t i2)
{
    if (o1 != o2)
        return o1 < o2 ? -1 : 1;
    if (i1 != i2)
        return i1 < i2 ? -1 : 1;
    return 0;
}

/* Index of (owner,id) or of its insertion point; *found tells which. */
static size_t find(const struct tse_store *s, uint32_t owner, uint32_t id, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(s->objs[mid].owner, s->objs[mid].id, owner, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static struct obj *lookup(const struct tse_store *s, uint32_t owner, uint32_t id)
{
    bool found;
    size_t i = find(s, owner, id, &found);
    return found ? &s->objs[i] : NULL;
}

/* ---- in-memory mutations (shared by live operation and replay) --------------------------- */

static int mem_create(struct tse_store *s, uint32_t owner, uint32_t id, uint32_t size,
                      const uint8_t *init)
{
    bool found;
    size_t i = find(s, owner, id, &found);
    if (found)
        return TSE_ERR_EXISTS;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        struct obj *no = realloc(s->objs, nc * sizeof(*no));
        if (!no)
            return TSE_ERR_NO_MEMORY;
        s->objs = no;
        s->cap = nc;
    }
    uint8_t *data = calloc(1, size ? size : 1);
    if (!data)
        return TSE_ERR_NO_MEMORY;
    if (init && size)
        memcpy(data, init, size);
    memmove(&s->objs[i + 1], &s->objs[i], (s->n - i) * sizeof(*s->objs));
    s->objs[i] = (struct obj){owner, id, size, data};
    s->n++;
    s->used += size + TSE_STORE_OBJ_OVERHEAD;
    return 0;
}

static int mem_write(struct tse_store *s, uint32_t owner, uint32_t id, uint32_t off,
                     const uint8_t *src, uint32_t len)
{
    struct obj *o = lookup(s, owner, id);
    if (!o)
        return TSE_ERR_NOT_FOUND;
    if (off > o->size || len > o->size - off)
        return TSE_ERR_INVALID_ARG;
    if (len)
        memcpy(o->data + off, src, len);
    return 0;
}

static int mem_delete(struct tse_store *s, uint32_t owner, uint32_t id)
{
    bool found;
    size_t i = find(s, owner, id, &found);
    if (!found)
        return TSE_ERR_NOT_FOUND;
    s->used -= s->objs[i].size + TSE_STORE_OBJ_OVERHEAD;
    free(s->objs[i].data);
    memmove(&s->objs[i], &s->objs[i + 1], (s->n - i - 1) * sizeof(*s->objs));
    s->n--;
    return 0;
}

static void mem_clear(struct tse_store *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->objs[i].data);
    s->n = 0;
    s->used = 0;
}

static void undo_clear(struct tse_store *s)
{
    for (size_t i = 0; i < s->n_undo; i++)
        free(s->undo[i].old);
    s->n_undo = 0;
    s->undo_bytes = 0;
}

/* ---- record encoding and the journal ------------------------------------------------------ */

static size_t rec_encode(uint8_t *buf, uint8_t type, uint8_t flags, uint32_t txid, uint32_t owner,
                         uint32_t id, uint32_t off, const uint8_t *payload, uint32_t len)
{
    buf[0] = type;
    buf[1] = flags;
    buf[2] = buf[3] = 0;
    put32(buf + 4, txid);
    put32(buf + 8, owner);
    put32(buf + 12, id);
    put32(buf + 16, off);
    put32(buf + 20, len);
    if (len)
        memcpy(buf + REC_HDR, payload, len);
    put32(buf + REC_HDR + len, crc(buf, REC_HDR + len));
    return REC_HDR + len + REC_TRAILER;
}

static int write_all(int fd, const uint8_t *b, size_t len, off_t at)
{
    while (len) {
        ssize_t w = pwrite(fd, b, len, at);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return TSE_ERR_IO;
        }
        b += w;
        len -= (size_t)w;
        at += w;
    }
    return 0;
}

/* The image descriptor, opened again by path when tse_store_close_fd() released it. */
static int store_fd(struct tse_store *s)
{
    if (s->fd >= 0)
        return 0;
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    return s->fd < 0 ? TSE_ERR_IO : 0;
}

/* Count one store write; returns true when the armed power cut fires on it. */
static bool tear_fires(struct tse_store *s)
{
    s->writes++;
    s->st.writes = s->writes;
    if (s->tear_target && s->writes == s->tear_target) {
        s->tear_target = 0;
        s->torn = true;
        return true;
    }
    return false;
}

static void jbuf_drop(struct tse_store *s)
{
    free(s->jbuf);
    s->jbuf = NULL;
    s->jlen = s->jcap = 0;
}

static int jbuf_reserve(struct tse_store *s, size_t more)
{
    if (s->jlen + more <= s->jcap)
        return 0;
    size_t nc = s->jcap ? s->jcap * 2 : 1024;
    while (nc < s->jlen + more)
        nc *= 2;
    uint8_t *nb = realloc(s->jbuf, nc);
    if (!nb)
        return TSE_ERR_NO_MEMORY;
    s->jbuf = nb;
    s->jcap = nc;
    return 0;
}

/*
 * Append one record to the journal. A record of a transaction (TXN flag) is only kept in
 * s->jbuf: recovery ignores TXN records until their COMMIT record follows, so an image
 * without them recovers exactly as an image with them and no COMMIT. They are written, in
 * order and in the same write, just before the next record that must be in the image now
 * (the COMMIT, or a non-transactional record, so the file order is the order of the calls).
 * A transaction of k writes thus costs one write(2) instead of k + 1. An injected power cut
 * writes the pending records and half of the record it fires on, exactly the image that
 * writing each record at once would have left.
 */
static int append(struct tse_store *s, uint8_t type, uint8_t flags, uint32_t owner, uint32_t id,
                  uint32_t off, const uint8_t *payload, uint32_t len, bool sync)
{
    if (s->torn)
        return TSE_ERR_TORN;
    int rc = store_fd(s);
    if (rc)
        return rc;
    uint8_t stackbuf[256];
    size_t total = REC_HDR + (size_t)len + REC_TRAILER;
    bool txn = (flags & REC_F_TXN) != 0;
    uint8_t *buf, *owned = NULL;
    if (txn || s->jlen) { /* joins (or follows) the pending records */
        if ((rc = jbuf_reserve(s, total)) != 0)
            return rc;
        buf = s->jbuf + s->jlen;
    } else {
        buf = total <= sizeof(stackbuf) ? stackbuf : (owned = malloc(total));
        if (!buf)
            return TSE_ERR_NO_MEMORY;
    }
    rec_encode(buf, type, flags, s->txid, owner, id, off, payload, len);
    /* what reaches the image with this record: the pending records, then this one */
    const uint8_t *out = s->jlen || txn ? s->jbuf : buf;
    size_t before = s->jlen;
    if (tear_fires(s)) {
        /* The power fails half-way through this record: leave a torn record behind. */
        (void)write_all(s->fd, out, before + total / 2, (off_t)s->end);
        s->jlen = 0;
        rc = TSE_ERR_TORN;
    } else if (txn) {
        s->jlen += total; /* written with the next record that must be in the image */
    } else {
        rc = write_all(s->fd, out, before + total, (off_t)s->end);
        if (rc == 0 && sync && s->cfg.fsync && fdatasync(s->fd) != 0)
            rc = TSE_ERR_IO;
        if (rc == 0) {
            s->end += before + total;
            jbuf_drop(s);
        }
    }
    free(owned);
    return rc;
}

/* ---- image reading ----------------------------------------------------------------------- */

struct pending {
    const uint8_t *rec;
};

static int apply_record(struct tse_store *s, const uint8_t *r)
{
    uint8_t type = r[0];
    uint32_t owner = get32(r + 8), id = get32(r + 12), off = get32(r + 16), len = get32(r + 20);
    switch (type) {
    case REC_CREATE:
        /* off carries the size; a snapshot CREATE carries the content as payload */
        if (len != 0 && len != off)
            return TSE_ERR_CORRUPT;
        return mem_create(s, owner, id, off, len ? r + REC_HDR : NULL) == 0 ? 0 : TSE_ERR_CORRUPT;
    case REC_WRITE:
        return mem_write(s, owner, id, off, r + REC_HDR, len) == 0 ? 0 : TSE_ERR_CORRUPT;
    case REC_DELETE:
        return mem_delete(s, owner, id) == 0 ? 0 : TSE_ERR_CORRUPT;
    default:
        return TSE_ERR_CORRUPT;
    }
}

/* Length of a well-formed record at p (0 if it is not one). */
static size_t rec_check(const uint8_t *p, size_t avail)
{
    if (avail < REC_HDR + REC_TRAILER)
        return 0;
    uint32_t len = get32(p + 20);
    if (len > avail - REC_HDR - REC_TRAILER)
        return 0;
    size_t total = REC_HDR + len + REC_TRAILER;
    if (get32(p + REC_HDR + len) != crc(p, REC_HDR + len))
        return 0;
    if (p[0] < REC_CREATE || p[0] > REC_ABORT || p[2] || p[3])
        return 0;
    return total;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int load_image(struct tse_store *s, char *err, size_t errlen)
{
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) {
        seterr(err, errlen, "%s: %s", s->path, strerror(errno));
        return TSE_ERR_IO;
    }
    size_t fsize = (size_t)sb.st_size;
    if (fsize < HDR_LEN) {
        seterr(err, errlen, "%s: %s", s->path,
               "not a tse card image (too short for the image header)");
        return TSE_ERR_CORRUPT;
    }
    uint8_t *img = malloc(fsize);
    if (!img)
        return TSE_ERR_NO_MEMORY;
    size_t got = 0;
    while (got < fsize) {
        ssize_t r = pread(s->fd, img + got, fsize - got, (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            free(img);
            seterr(err, errlen, "%s: read failed: %s", s->path,
                   r < 0 ? strerror(errno) : "unexpected end of file");
            return TSE_ERR_IO;
        }
        got += (size_t)r;
    }
    int rc = 0;
    const char *why = NULL;
    struct pending *pend = NULL;
    size_t n_pend = 0;
    uint32_t pend_txid = 0;

    if (memcmp(img, MAGIC, 8) != 0) {
        why = "not a tse card image (bad magic)";
        rc = TSE_ERR_CORRUPT;
        goto out;
    }
    if (get32(img + 36) != crc(img, 36)) {
        why = "image header checksum mismatch (corrupt image)";
        rc = TSE_ERR_CORRUPT;
        goto out;
    }
    uint16_t ver = (uint16_t)(img[8] << 8 | img[9]);
    if (ver != FMT_VERSION || get32(img + 12) != HDR_LEN) {
        why = "image format version not supported by this build";
        rc = TSE_ERR_VERSION;
        goto out;
    }
    s->generation = (uint64_t)get32(img + 16) << 32 | get32(img + 20);
    uint32_t snap_len = get32(img + 24);
    if (snap_len > fsize - HDR_LEN) {
        why = "image truncated inside its snapshot";
        rc = TSE_ERR_CORRUPT;
        goto out;
    }
    if (get32(img + 28) != crc(img + HDR_LEN, snap_len)) {
        why = "snapshot checksum mismatch (corrupt image)";
        rc = TSE_ERR_CORRUPT;
        goto out;
    }
    mem_clear(s);
    size_t pos = HDR_LEN, snap_end = HDR_LEN + snap_len;
    while (pos < snap_end) {
        size_t rl = rec_check(img + pos, snap_end - pos);
        if (rl == 0 || img[pos] != REC_CREATE || apply_record(s, img + pos) != 0) {
            why = "malformed snapshot record (corrupt image)";
            rc = TSE_ERR_CORRUPT;
            goto out;
        }
        pos += rl;
    }
    s->snap_end = snap_end;
    while (pos < fsize) {
        size_t rl = rec_check(img + pos, fsize - pos);
        if (rl == 0) {
            if (all_zero(img + pos, fsize - pos) || pos + REC_HDR + REC_TRAILER > fsize ||
                (size_t)get32(img + pos + 20) + REC_HDR + REC_TRAILER >= fsize - pos) {
                /* An interrupted append: the journal ends before this record. */
                s->st.recovered_tail = true;
                break;
            }
            why = "journal record checksum mismatch before the end (corrupt image)";
            rc = TSE_ERR_CORRUPT;
            goto out;
        }
        const uint8_t *r = img + pos;
        uint32_t txid = get32(r + 4);
        if (r[1] & REC_F_TXN) {
            if (n_pend && txid != pend_txid)
                n_pend = 0; /* an earlier transaction that never committed */
            pend_txid = txid;
            struct pending *np = realloc(pend, (n_pend + 1) * sizeof(*pend));
            if (!np) {
                rc = TSE_ERR_NO_MEMORY;
                goto out;
            }
            pend = np;
            pend[n_pend++].rec = r;
        } else if (r[0] == REC_COMMIT || r[0] == REC_ABORT) {
            if (r[0] == REC_COMMIT && n_pend && txid == pend_txid) {
                for (size_t i = 0; i < n_pend; i++)
                    if (apply_record(s, pend[i].rec) != 0) {
                        why = "journal transaction does not apply (corrupt image)";
                        rc = TSE_ERR_CORRUPT;
                        goto out;
                    }
            }
            n_pend = 0;
        } else if (apply_record(s, r) != 0) {
            why = "journal record does not apply (corrupt image)";
            rc = TSE_ERR_CORRUPT;
            goto out;
        }
        if (txid >= s->txid)
            s->txid = txid;
        pos += rl;
    }
    s->end = pos;
    if (pos < fsize && ftruncate(s->fd, (off_t)pos) != 0) {
        why = "cannot truncate the torn journal tail";
        rc = TSE_ERR_IO;
    }
out:
    free(pend);
    free(img);
    if (rc && why)
        seterr(err, errlen, "%s: %s", s->path, why);
    if (rc)
        mem_clear(s);
    return rc;
}

/* ---- image writing ----------------------------------------------------------------------- */

static int fsync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return TSE_ERR_NO_MEMORY;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = TSE_ERR_IO;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Serialise the whole committed state into a fresh image. */
static int build_image(const struct tse_store *s, uint64_t generation, uint8_t **out,
                       size_t *out_len)
{
    size_t total = HDR_LEN;
    for (size_t i = 0; i < s->n; i++)
        total += REC_HDR + s->objs[i].size + REC_TRAILER;
    uint8_t *b = malloc(total);
    if (!b)
        return TSE_ERR_NO_MEMORY;
    size_t pos = HDR_LEN;
    for (size_t i = 0; i < s->n; i++) {
        const struct obj *o = &s->objs[i];
        pos += rec_encode(b + pos, REC_CREATE, 0, 0, o->owner, o->id, o->size, o->data, o->size);
    }
    memcpy(b, MAGIC, 8);
    put16(b + 8, FMT_VERSION);
    put16(b + 10, 0);
    put32(b + 12, HDR_LEN);
    put32(b + 16, (uint32_t)(generation >> 32));
    put32(b + 20, (uint32_t)generation);
    put32(b + 24, (uint32_t)(total - HDR_LEN));
    put32(b + 28, crc(b + HDR_LEN, total - HDR_LEN));
    put32(b + 32, 0);
    put32(b + 36, crc(b, 36));
    *out = b;
    *out_len = total;
    return 0;
}

static char *tmp_path(const char *path)
{
    size_t n = strlen(path) + 5;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%s.tmp", path);
    return t;
}

/* Rewrite the image as a snapshot of the current state (outside transactions only). */
static int compact(struct tse_store *s)
{
    if (s->torn)
        return TSE_ERR_TORN;
    uint8_t *img;
    size_t len;
    int rc = build_image(s, s->generation + 1, &img, &len);
    if (rc)
        return rc;
    char *tmp = tmp_path(s->path);
    if (!tmp) {
        free(img);
        return TSE_ERR_NO_MEMORY;
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = TSE_ERR_IO;
        goto out;
    }
    if (tear_fires(s)) {
        (void)write_all(fd, img, len / 2, 0); /* the rename never happens */
        close(fd);
        rc = TSE_ERR_TORN;
        goto out;
    }
    rc = write_all(fd, img, len, 0);
    if (rc == 0 && s->cfg.fsync && fsync(fd) != 0)
        rc = TSE_ERR_IO;
    if (rc == 0 && rename(tmp, s->path) != 0)
        rc = TSE_ERR_IO;
    if (rc) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (s->cfg.fsync)
        rc = fsync_dir(s->path);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = fd;
    s->end = len;
    s->snap_end = len;
    s->generation++;
    s->st.compactions++;
out:
    free(tmp);
    free(img);
    return rc;
}

int tse_store_compact(struct tse_store *s)
{
    return s->in_txn ? TSE_ERR_STATE : compact(s);
}

static void maybe_compact(struct tse_store *s)
{
    size_t journal = s->end - s->snap_end;
    size_t limit = s->used * 2 > COMPACT_MIN ? s->used * 2 : COMPACT_MIN;
    if (!s->in_txn && journal > limit)
        (void)compact(s); /* failure leaves the (valid) journal as it is */
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static struct tse_store *store_new(const char *path)
{
    struct tse_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->path = strdup(path);
    s->fd = -1;
    s->cfg.capacity = SIZE_MAX / 2;
    s->cfg.commit_buffer = SIZE_MAX / 2;
    if (!s->path) {
        free(s);
        return NULL;
    }
    return s;
}

int tse_store_create(struct tse_store **out, const char *path, const struct tse_store_cfg *cfg,
                     char *err, size_t errlen)
{
    if (!out || !path || !cfg)
        return TSE_ERR_INVALID_ARG;
    struct tse_store *s = store_new(path);
    if (!s)
        return TSE_ERR_NO_MEMORY;
    s->cfg = *cfg;
    int rc = 0;
    uint8_t *img = NULL;
    size_t len;
    s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rc = errno == EEXIST ? TSE_ERR_EXISTS : TSE_ERR_IO;
        seterr(err, errlen, "%s: %s", path,
               rc == TSE_ERR_EXISTS ? "already exists (refusing to overwrite a card image)"
                                    : strerror(errno));
        goto fail;
    }
    rc = build_image(s, 1, &img, &len);
    if (rc == 0)
        rc = write_all(s->fd, img, len, 0);
    if (rc == 0 && cfg->fsync && (fsync(s->fd) != 0 || fsync_dir(path) != 0))
        rc = TSE_ERR_IO;
    free(img);
    if (rc) {
        seterr(err, errlen, "%s: %s", path, "cannot write the new image");
        unlink(path);
        goto fail;
    }
    s->generation = 1;
    s->end = s->snap_end = len;
    *out = s;
    return 0;
fail:
    tse_store_close(s);
    return rc;
}

int tse_store_open(struct tse_store **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path)
        return TSE_ERR_INVALID_ARG;
    struct tse_store *s = store_new(path);
    if (!s)
        return TSE_ERR_NO_MEMORY;
    s->fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        tse_store_close(s);
        return TSE_ERR_IO;
    }
    int rc = load_image(s, err, errlen);
    if (rc) {
        tse_store_close(s);
        return rc;
    }
    char *tmp = tmp_path(path);
    if (tmp) { /* a compaction that never reached its rename */
        unlink(tmp);
        free(tmp);
    }
    *out = s;
    return 0;
}

void tse_store_configure(struct tse_store *s, const struct tse_store_cfg *cfg)
{
    s->cfg = *cfg;
}

int tse_store_reload(struct tse_store *s, char *err, size_t errlen)
{
    undo_clear(s);
    jbuf_drop(s);
    s->in_txn = false;
    s->txn_logged = false;
    s->torn = false;
    s->tear_target = 0;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        seterr(err, errlen, "%s: %s", s->path, strerror(errno));
        return TSE_ERR_IO;
    }
    int rc = load_image(s, err, errlen);
    char *tmp = tmp_path(s->path);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

void tse_store_close_fd(struct tse_store *s)
{
    if (s && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

void tse_store_close(struct tse_store *s)
{
    if (!s)
        return;
    undo_clear(s);
    free(s->undo);
    jbuf_drop(s);
    mem_clear(s);
    free(s->objs);
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s);
}

/* ---- live operations ------------------------------------------------------------------------ */

int tse_store_get(const struct tse_store *s, uint32_t owner, uint32_t id, const uint8_t **data,
                  size_t *size)
{
    const struct obj *o = lookup(s, owner, id);
    if (!o)
        return TSE_ERR_NOT_FOUND;
    if (data)
        *data = o->data;
    if (size)
        *size = o->size;
    return 0;
}

static int undo_push(struct tse_store *s, enum undo_kind kind, uint32_t owner, uint32_t id,
                     uint32_t off, const uint8_t *old, uint32_t len)
{
    if (s->undo_bytes + len + TSE_STORE_OBJ_OVERHEAD > s->cfg.commit_buffer)
        return TSE_ERR_TXN_FULL;
    if (s->n_undo == s->cap_undo) {
        size_t nc = s->cap_undo ? s->cap_undo * 2 : 16;
        struct undo *nu = realloc(s->undo, nc * sizeof(*nu));
        if (!nu)
            return TSE_ERR_NO_MEMORY;
        s->undo = nu;
        s->cap_undo = nc;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return TSE_ERR_NO_MEMORY;
        memcpy(copy, old, len);
    }
    s->undo[s->n_undo++] = (struct undo){kind, owner, id, off, len, copy};
    s->undo_bytes += len + TSE_STORE_OBJ_OVERHEAD;
    return 0;
}

static void undo_pop(struct tse_store *s)
{
    free(s->undo[--s->n_undo].old);
}

static uint8_t txn_flags(const struct tse_store *s)
{
    return s->in_txn ? REC_F_TXN : 0;
}

static int after_commit_point(struct tse_store *s)
{
    maybe_compact(s);
    return 0;
}

int tse_store_create_obj(struct tse_store *s, uint32_t owner, uint32_t id, size_t size)
{
    if (s->torn)
        return TSE_ERR_TORN;
    if (size > UINT32_MAX - TSE_STORE_OBJ_OVERHEAD)
        return TSE_ERR_NO_SPACE;
    if (lookup(s, owner, id))
        return TSE_ERR_EXISTS;
    if (s->used + size + TSE_STORE_OBJ_OVERHEAD > s->cfg.capacity)
        return TSE_ERR_NO_SPACE;
    int rc;
    if (s->in_txn && (rc = undo_push(s, UNDO_CREATE, owner, id, 0, NULL, 0)) != 0)
        return rc;
    rc = append(s, REC_CREATE, txn_flags(s), owner, id, (uint32_t)size, NULL, 0, !s->in_txn);
    if (rc == 0)
        rc = mem_create(s, owner, id, (uint32_t)size, NULL);
    if (rc) {
        if (s->in_txn)
            undo_pop(s);
        return rc;
    }
    if (s->in_txn)
        s->txn_logged = true;
    else
        after_commit_point(s);
    return 0;
}

static bool touched_in_txn(const struct tse_store *s, uint32_t owner, uint32_t id)
{
    for (size_t i = 0; i < s->n_undo; i++)
        if (s->undo[i].owner == owner && s->undo[i].id == id)
            return true;
    return false;
}

static int do_write(struct tse_store *s, uint32_t owner, uint32_t id, size_t off,
                    const uint8_t *src, size_t len, bool atomic_txn)
{
    if (s->torn)
        return TSE_ERR_TORN;
    struct obj *o = lookup(s, owner, id);
    if (!o)
        return TSE_ERR_NOT_FOUND;
    if (off > o->size || len > o->size - off || (len && !src))
        return TSE_ERR_INVALID_ARG;
    bool txn = s->in_txn && atomic_txn;
    int rc;
    if (txn && (rc = undo_push(s, UNDO_WRITE, owner, id, (uint32_t)off, o->data + off,
                               (uint32_t)len)) != 0)
        return rc;
    rc = append(s, REC_WRITE, txn ? REC_F_TXN : 0, owner, id, (uint32_t)off, src, (uint32_t)len,
                !txn);
    if (rc) {
        if (txn)
            undo_pop(s);
        return rc;
    }
    if (len)
        memcpy(o->data + off, src, len);
    if (txn)
        s->txn_logged = true;
    else
        after_commit_point(s);
    return 0;
}

int tse_store_write(struct tse_store *s, uint32_t owner, uint32_t id, size_t off,
                    const uint8_t *src, size_t len)
{
    return do_write(s, owner, id, off, src, len, true);
}

int tse_store_write_nonatomic(struct tse_store *s, uint32_t owner, uint32_t id, size_t off,
                              const uint8_t *src, size_t len)
{
    /* Recovery replays non-atomic records at once and transactional ones at COMMIT. For an
     * object the open transaction already changed (or created), that order would differ
     * from the live one, so such a write joins the transaction instead. */
    bool atomic = s->in_txn && touched_in_txn(s, owner, id);
    return do_write(s, owner, id, off, src, len, atomic);
}

int tse_store_delete(struct tse_store *s, uint32_t owner, uint32_t id)
{
    if (s->torn)
        return TSE_ERR_TORN;
    struct obj *o = lookup(s, owner, id);
    if (!o)
        return TSE_ERR_NOT_FOUND;
    int rc;
    if (s->in_txn && (rc = undo_push(s, UNDO_DELETE, owner, id, o->size, o->data, o->size)) != 0)
        return rc;
    rc = append(s, REC_DELETE, txn_flags(s), owner, id, 0, NULL, 0, !s->in_txn);
    if (rc) {
        if (s->in_txn)
            undo_pop(s);
        return rc;
    }
    mem_delete(s, owner, id);
    if (s->in_txn)
        s->txn_logged = true;
    else
        after_commit_point(s);
    return 0;
}

int tse_store_delete_owner(struct tse_store *s, uint32_t owner)
{
    uint32_t id;
    while (tse_store_owner_nth(s, owner, 0, &id) == 0) {
        int rc = tse_store_delete(s, owner, id);
        if (rc)
            return rc;
    }
    return 0;
}

size_t tse_store_owner_used(const struct tse_store *s, uint32_t owner)
{
    bool found;
    size_t i = find(s, owner, 0, &found), used = 0;
    for (; i < s->n && s->objs[i].owner == owner; i++)
        used += s->objs[i].size + TSE_STORE_OBJ_OVERHEAD;
    return used;
}

int tse_store_owner_nth(const struct tse_store *s, uint32_t owner, size_t nth, uint32_t *id)
{
    bool found;
    size_t i = find(s, owner, 0, &found) + nth;
    if (i >= s->n || s->objs[i].owner != owner)
        return TSE_ERR_NOT_FOUND;
    *id = s->objs[i].id;
    return 0;
}

int tse_store_begin(struct tse_store *s)
{
    if (s->torn)
        return TSE_ERR_TORN;
    if (s->in_txn)
        return TSE_ERR_TXN_NESTED;
    s->in_txn = true;
    s->txn_logged = false;
    s->txid++;
    return 0;
}

int tse_store_commit(struct tse_store *s)
{
    if (!s->in_txn)
        return TSE_ERR_TXN_NONE;
    if (s->txn_logged) {
        int rc = append(s, REC_COMMIT, 0, 0, 0, 0, NULL, 0, true);
        if (rc == TSE_ERR_TORN)
            return rc; /* the image keeps the state before the transaction; the card reloads */
        if (rc) {
            /* the COMMIT record is not in the image: neither is the transaction, so memory
             * goes back to the state before it too (and the store leaves the transaction) */
            tse_store_abort(s);
            return rc;
        }
    }
    undo_clear(s);
    s->in_txn = false;
    s->st.commits++;
    after_commit_point(s);
    return 0;
}

int tse_store_abort(struct tse_store *s)
{
    if (!s->in_txn)
        return TSE_ERR_TXN_NONE;
    /* Roll memory back, newest first. */
    while (s->n_undo) {
        struct undo *u = &s->undo[s->n_undo - 1];
        switch (u->kind) {
        case UNDO_WRITE:
            mem_write(s, u->owner, u->id, u->off, u->old, u->len);
            break;
        case UNDO_CREATE:
            mem_delete(s, u->owner, u->id);
            break;
        case UNDO_DELETE:
            mem_create(s, u->owner, u->id, u->off, u->old);
            break;
        }
        undo_pop(s);
    }
    s->undo_bytes = 0;
    jbuf_drop(s); /* the aborted transaction's records never reach the image */
    int rc = 0;
    if (s->txn_logged) /* not needed for recovery, but keeps the journal explicit */
        rc = append(s, REC_ABORT, 0, 0, 0, 0, NULL, 0, false);
    s->in_txn = false;
    s->st.aborts++;
    return rc == TSE_ERR_TORN ? rc : 0;
}

bool tse_store_in_txn(const struct tse_store *s)
{
    return s->in_txn;
}

void tse_store_tear_at(struct tse_store *s, unsigned long n)
{
    s->tear_target = n ? s->writes + n : 0;
}

bool tse_store_torn(const struct tse_store *s)
{
    return s->torn;
}

int tse_store_digest(const struct tse_store *s, uint8_t out[32])
{
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    int rc = mbedtls_sha256_starts_ret(&c, 0);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        uint8_t h[12];
        put32(h, s->objs[i].owner);
        put32(h + 4, s->objs[i].id);
        put32(h + 8, s->objs[i].size);
        rc = mbedtls_sha256_update_ret(&c, h, sizeof(h));
        if (rc == 0)
            rc = mbedtls_sha256_update_ret(&c, s->objs[i].data, s->objs[i].size);
    }
    if (rc == 0)
        rc = mbedtls_sha256_finish_ret(&c, out);
    mbedtls_sha256_free(&c);
    return rc ? TSE_ERR_INVALID_ARG : 0;
}

void tse_store_get_stats(const struct tse_store *s, struct tse_store_stats *st)
{
    *st = s->st;
    st->writes = s->writes;
    st->used = s->used;
    st->capacity = s->cfg.capacity;
    st->image_bytes = s->end;
}
