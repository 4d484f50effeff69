/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file applet.h
 * @brief The native applet contract (in the spirit of Java Card) and the runtime services
 *        an applet may use through its context.
 *
 * An applet is a set of callbacks (struct tse_applet_ops) in a module of a package. The
 * runtime creates instances; each instance has a context (struct tse_ctx) through which it
 * reaches *only its own* persistent objects and transient areas. Applets keep no globals and
 * write no files: every persistent byte goes through tse_ctx_pmem_*() and is journalled.
 *
 * Pointers returned by tse_ctx_pmem_get() and tse_ctx_transient() are valid until the
 * callback returns; an applet must ask again on the next call (after a power cut the
 * store is reloaded and old pointers are gone).
 */
#ifndef TSE_APPLET_H
#define TSE_APPLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/apdu.h"
#include "tse/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tse_ctx;

/** Where an applet writes its response data. cap is at least TSE_APDU_MAX_NE. */
struct tse_response {
    uint8_t *data;
    size_t len;
    size_t cap;
    /** The data is (or ends with) a secure messaging trailer that must go out with any status
     * word; otherwise response data is dropped when the SW is an error. */
    bool sm_trailer;
};

/** Append bytes to a response. @retval TSE_ERR_BUFFER_TOO_SMALL would exceed cap */
int tse_response_append(struct tse_response *r, const uint8_t *b, size_t len);

struct tse_applet_ops {
    /** Instance creation (Java Card install()). Params are the application-specific install
     * parameters. Return SW_NO_ERROR or an error SW; on error the instance is not created. */
    uint16_t (*install)(struct tse_ctx *ctx, const uint8_t *params, size_t len);
    /** Selection on a channel; false refuses (card answers 6999). NULL = always accept. */
    bool (*select)(struct tse_ctx *ctx);
    /** Deselection on a channel by SELECT or MANAGE CHANNEL close. Not called on reset or
     * power loss (the card has no power to run it), as in Java Card. May be NULL. */
    void (*deselect)(struct tse_ctx *ctx);
    /** Process one command APDU (the SELECT that selected it included). Returns the SW. */
    uint16_t (*process)(struct tse_ctx *ctx, const struct tse_apdu *apdu, struct tse_response *rsp);
    /** Called before the instance and all its objects are deleted. May be NULL. */
    void (*uninstall)(struct tse_ctx *ctx);
    /**
     * Shareable service entry point (Java Card's getShareableInterfaceObject + a method
     * call, reduced to bytes in and bytes out so no pointer crosses contexts). `client` is
     * the calling instance's AID (or the card manager's). May be NULL: no services.
     * Return 0 and set *out_len, or TSE_ERR_DENIED / another tse_err.
     */
    int (*service)(struct tse_ctx *ctx, const struct tse_aid *client, uint8_t service_id,
                   const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len);
    /**
     * Personalization data from the associated security domain (GlobalPlatform's
     * Application.processData): after INSTALL [for personalization] names this instance, the
     * SD checks and unwraps each STORE DATA under its secure channel and hands the plain
     * command here (CLA 80, INS E2, P1 = last-block / encryption / structure bits, P2 = block
     * number, data = DGIs or BER-TLV). DEK-encrypted values can be opened with
     * tse_ctx_perso_decrypt() during this call. Return the SW (and optional response data,
     * when P1 b1 asks for it). May be NULL: the SD then answers 6A80 (no personalization).
     */
    uint16_t (*personalize)(struct tse_ctx *ctx, const struct tse_apdu *store_data,
                            struct tse_response *rsp);
};

#define TSE_MODULE_MULTISELECTABLE 0x01u /**< may be selected on several channels at once */

struct tse_module_def {
    const char *name;
    const uint8_t *aid;
    uint8_t aid_len;
    uint32_t flags;
    const struct tse_applet_ops *ops;
};

struct tse_package_def {
    const char *name;
    const uint8_t *aid;
    uint8_t aid_len;
    uint8_t version_major, version_minor;
    const struct tse_module_def *modules;
    size_t n_modules;
};

/** The native packages built into this library, terminated by NULL. */
extern const struct tse_package_def *const tse_native_packages[];

/** Find a built-in package by AID (NULL if none). */
const struct tse_package_def *tse_package_find(const struct tse_aid *aid);

/* ---- Context: identity -------------------------------------------------------------- */

/** The AID of the instance this context belongs to. */
const struct tse_aid *tse_ctx_aid(const struct tse_ctx *ctx);
/** Interface (enum tse_iface) and logical channel of the current command. */
int tse_ctx_interface(const struct tse_ctx *ctx);
uint8_t tse_ctx_channel(const struct tse_ctx *ctx);

/* ---- Persistent objects -------------------------------------------------------------- */

/**
 * Get the instance's persistent object `id`, creating it zero-filled with `size` bytes if it
 * does not exist (size 0: only look it up). Creation is journalled (inside the current
 * transaction if one is open).
 * @retval 0 success, *data points at the object's current bytes (read-only), *len its size
 * @retval TSE_ERR_NO_SPACE the instance's quota or the card's capacity would be exceeded
 * @retval TSE_ERR_NOT_FOUND size == 0 and no such object
 * @retval TSE_ERR_INVALID_ARG the object exists with another size
 * @retval TSE_ERR_TORN a power cut fired
 */
int tse_ctx_pmem_get(struct tse_ctx *ctx, uint16_t id, size_t size, const uint8_t **data,
                     size_t *len);

/**
 * Write into a persistent object. Outside a transaction the write is atomic by itself;
 * inside one it becomes durable at commit and is undone by abort.
 * @retval TSE_ERR_INVALID_ARG range outside the object
 * @retval TSE_ERR_NOT_FOUND no such object
 * @retval TSE_ERR_TXN_FULL the transaction's commit buffer cannot hold the undo data
 * @retval TSE_ERR_TORN a power cut fired
 */
int tse_ctx_pmem_write(struct tse_ctx *ctx, uint16_t id, size_t off, const uint8_t *src,
                       size_t len);

/** Like tse_ctx_pmem_write() but never part of a transaction (Java Card's
 * arrayCopyNonAtomic): applied and durable at once, not undone by abort. */
int tse_ctx_pmem_write_nonatomic(struct tse_ctx *ctx, uint16_t id, size_t off, const uint8_t *src,
                                 size_t len);

/** Delete a persistent object (space returns to the quota). */
int tse_ctx_pmem_delete(struct tse_ctx *ctx, uint16_t id);

/** Bytes of persistent memory this instance uses (objects plus per-object overhead). */
size_t tse_ctx_pmem_used(const struct tse_ctx *ctx);

/* ---- Transactions (Java Card JCSystem.beginTransaction…) --------------------------------- */

/** @retval TSE_ERR_TXN_NESTED a transaction is already open */
int tse_ctx_txn_begin(struct tse_ctx *ctx);
/** @retval TSE_ERR_TXN_NONE no transaction open; TSE_ERR_TORN a power cut fired */
int tse_ctx_txn_commit(struct tse_ctx *ctx);
/** @retval TSE_ERR_TXN_NONE no transaction open */
int tse_ctx_txn_abort(struct tse_ctx *ctx);
/** Nesting depth: 0 or 1. */
int tse_ctx_txn_depth(const struct tse_ctx *ctx);

/* ---- Transient memory ---------------------------------------------------------------- */

enum tse_transient_kind {
    TSE_CLEAR_ON_RESET = 1,    /**< cleared when the interface is reset or powered off */
    TSE_CLEAR_ON_DESELECT = 2, /**< also cleared when the instance is no longer selected on
                                    any channel of the interface */
};

/**
 * Get (creating zero-filled on first use) transient area `id` of this instance on the
 * current interface. Areas are per interface session: the contact and contactless
 * interfaces never see each other's RAM.
 * @retval TSE_ERR_NO_SPACE instance transient quota or the interface's RAM exceeded
 * @retval TSE_ERR_INVALID_ARG exists with another size or kind
 */
int tse_ctx_transient(struct tse_ctx *ctx, uint16_t id, size_t size, enum tse_transient_kind kind,
                      uint8_t **data);

/* ---- Card services ------------------------------------------------------------------- */

/** Fill buf with card random bytes (queued replay bytes first, then the DRBG). */
int tse_ctx_random(struct tse_ctx *ctx, uint8_t *buf, size_t len);
/** Card clock, Unix seconds (fixed in deterministic mode). */
int64_t tse_ctx_time(const struct tse_ctx *ctx);
/** Read / advance a named card counter (see tse_card_set_counter()). */
int tse_ctx_counter_get(struct tse_ctx *ctx, const char *name, uint64_t *value);
int tse_ctx_counter_set(struct tse_ctx *ctx, const char *name, uint64_t value);

/**
 * Call service `service_id` of another instance. The server decides, from the caller's AID,
 * whether to answer. Only bytes cross: neither side sees the other's objects.
 * @retval TSE_ERR_NOT_FOUND no such instance; TSE_ERR_DENIED refused or no service entry
 */
int tse_ctx_call_service(struct tse_ctx *ctx, const struct tse_aid *server, uint8_t service_id,
                         const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                         size_t *out_len);

/**
 * During personalize(): decrypt `len` bytes (a multiple of the cipher block) that the host
 * encrypted with the forwarding security domain's session data encryption key (SCP02: 3DES-ECB
 * with the session DEK; SCP03: AES-CBC, zero IV, with the static DEK — as for PUT KEY).
 * @retval TSE_ERR_STATE not inside personalize() (no secure channel to use)
 * @retval TSE_ERR_INVALID_ARG len is not a multiple of the block size, or out_cap too small
 */
int tse_ctx_perso_decrypt(struct tse_ctx *ctx, const uint8_t *in, size_t len, uint8_t *out,
                          size_t out_cap);

/** Map a tse_err from a context call to the status word an applet should answer
 * (TSE_ERR_NO_SPACE → 6A84, TSE_ERR_TXN_FULL → 6A84, others → 6F00). */
uint16_t tse_sw_from_err(int err);

#ifdef __cplusplus
}
#endif

#endif
