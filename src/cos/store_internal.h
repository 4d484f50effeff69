/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent store: every persistent byte of a card, kept in memory and journalled to
 * one image file. Format and crash-safety argument: docs/architecture.md, "Card image".
 *
 * Objects are byte arrays of fixed size named (owner, id). Owner 0 is the card runtime;
 * applet instances own the objects of their context id. Every mutation is appended to the
 * image as one checksummed record *before* it is applied in memory; transactional records
 * count only once their COMMIT record is in the image.
 */
#ifndef TSE_STORE_INTERNAL_H
#define TSE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TSE_STORE_OBJ_OVERHEAD 16u /* bytes of capacity charged per object besides its data */

struct tse_store;

struct tse_store_cfg {
    size_t capacity;      /* persistent bytes: sum of (size + overhead) of all objects */
    size_t commit_buffer; /* undo bytes one transaction may hold */
    bool fsync;           /* fdatasync at every commit point; fsync image rewrites */
};

struct tse_store_stats {
    unsigned long writes, commits, aborts, compactions;
    size_t used, capacity, image_bytes;
    bool recovered_tail; /* open discarded a torn record at the end of the journal */
};

/* Create a new image (fails with TSE_ERR_EXISTS if path exists). */
int tse_store_create(struct tse_store **out, const char *path, const struct tse_store_cfg *cfg,
                     char *err, size_t errlen);
/* Open an image; cfg may be NULL until tse_store_configure() is called. */
int tse_store_open(struct tse_store **out, const char *path, char *err, size_t errlen);
/* Set capacity limits and durability (after reading the profile kept in the image). */
void tse_store_configure(struct tse_store *s, const struct tse_store_cfg *cfg);
void tse_store_close(struct tse_store *s);
/* Close the image's descriptor; the next write (or reload) opens the image again by its
 * path. Nothing is lost: every record written is already in the file. */
void tse_store_close_fd(struct tse_store *s);
/* After a power cut: forget memory, re-read the image (truncating the torn tail). */
int tse_store_reload(struct tse_store *s, char *err, size_t errlen);

int tse_store_get(const struct tse_store *s, uint32_t owner, uint32_t id, const uint8_t **data,
                  size_t *size);
int tse_store_create_obj(struct tse_store *s, uint32_t owner, uint32_t id, size_t size);
int tse_store_write(struct tse_store *s, uint32_t owner, uint32_t id, size_t off,
                    const uint8_t *src, size_t len);
int tse_store_write_nonatomic(struct tse_store *s, uint32_t owner, uint32_t id, size_t off,
                              const uint8_t *src, size_t len);
int tse_store_delete(struct tse_store *s, uint32_t owner, uint32_t id);
/* Delete every object of an owner (inside a transaction if one is open). */
int tse_store_delete_owner(struct tse_store *s, uint32_t owner);
/* Bytes charged to one owner (objects plus overhead). */
size_t tse_store_owner_used(const struct tse_store *s, uint32_t owner);
/* Iterate: the i-th object of an owner in id order; TSE_ERR_NOT_FOUND past the end. */
int tse_store_owner_nth(const struct tse_store *s, uint32_t owner, size_t i, uint32_t *id);

/* Rewrite the image as a snapshot now (TSE_ERR_STATE inside a transaction). */
int tse_store_compact(struct tse_store *s);

int tse_store_begin(struct tse_store *s);
/* Commit: the transaction's records and its COMMIT record reach the image in one write.
 * TSE_ERR_TORN: an injected power cut (the image holds the state before the transaction);
 * another error (TSE_ERR_IO…): nothing was committed and the transaction is rolled back. */
int tse_store_commit(struct tse_store *s);
int tse_store_abort(struct tse_store *s);
bool tse_store_in_txn(const struct tse_store *s);

/* Power-cut injection: fire at the n-th write from now (0 disarms). */
void tse_store_tear_at(struct tse_store *s, unsigned long n);
bool tse_store_torn(const struct tse_store *s);

int tse_store_digest(const struct tse_store *s, uint8_t out[32]);
void tse_store_get_stats(const struct tse_store *s, struct tse_store_stats *st);

#endif
