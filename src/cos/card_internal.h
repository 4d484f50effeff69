/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Card instance internals shared by the card core (card.c), the applet runtime (runtime.c)
 * and, later, the card manager. Not a public API.
 */
#ifndef TSE_CARD_INTERNAL_H
#define TSE_CARD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>

#include "cos/store_internal.h"
#include "tse/applet.h"
#include "tse/card.h"

struct tse_scp_session;

/* Owner 0 (the runtime) object ids in the store. */
#define SYS_OBJ_PROFILE   0x0001u /* the profile text the card was created from */
#define SYS_OBJ_META      0x0002u /* image meta data, see META_* */
#define SYS_OBJ_INSTANCE0 0x0100u /* 0x0100..0x01FF: instance records */
#define SYS_OBJ_COUNTER0  0x0200u /* 0x0200..: named counters, 8 bytes big-endian */
#define SYS_MAX_INSTANCES 256u
#define SYS_OBJ_ELF0      0x0400u /* 0x0400..0x043F: executable load files loaded by LOAD */
#define SYS_MAX_ELFS      64u
#define ELF_REC_LEN       40u

#define META_LEN        16u
#define META_NEXT_CTX   0 /* u32: next context id to hand out */
#define META_LIFE_CYCLE 4 /* u8: card life cycle state */

#define INST_REC_LEN 128u
#define INST_REC_LEN_V1                                                                            \
    80u /* images written before SSDs existed: no association, no contactless data */

/* Application life cycle bits (GlobalPlatform coding). */
#define APP_STATE_INSTALLED  0x03u
#define APP_STATE_SELECTABLE 0x07u
#define APP_STATE_LOCKED     0x80u

struct tse_instance {
    struct tse_aid aid, package, module;
    uint32_t ctx_id; /* owner id of its objects in the store */
    uint16_t rec_id; /* store id of its record */
    uint8_t state;
    uint8_t default_on; /* bit 0: contact default; bit 1: implicitly selectable (gp/crs.c) */
    uint8_t priv[3];    /* GlobalPlatform privileges given at installation */
    uint32_t pquota, tquota;
    struct tse_aid sd; /* associated security domain; empty for the issuer security domain */
    uint8_t cl[16];    /* contactless registry data (owned by src/gp/crs.c) */
    const struct tse_package_def *pkg;
    const struct tse_module_def *mod;
};

struct tse_transient {
    uint32_t ctx_id;
    uint16_t id;
    uint8_t kind;
    size_t size;
    uint8_t *data;
};

struct tse_chan {
    bool open;
    int sel; /* index into card->inst, -1 = none */
    /* command chaining (CLA b5) */
    bool chaining;
    uint8_t chain_cla, chain_ins, chain_p1, chain_p2;
    uint8_t *chain_buf;
    size_t chain_len;
    /* response data waiting for GET RESPONSE */
    uint8_t *pend;
    size_t pend_len, pend_off;
};

struct tse_iface_state {
    bool powered;
    bool t0; /* T=0 response rules (61xx for case 4, 6Cxx for wrong Le) */
    struct tse_chan ch[TSE_MAX_CHANNELS];
    struct tse_transient *ram;
    size_t n_ram, ram_used;
};

/* Instances per block of the instance table (struct tse_card.inst_blk). */
#define TSE_INST_BLOCK 8u

struct tse_ctx {
    struct tse_card *card;
    struct tse_instance *inst;
    int iface;
    uint8_t channel;
    bool installing; /* inside install(): the runtime's transaction covers the applet's */
    int txn_depth_virtual;
};

struct tse_card {
    pthread_mutex_t lock;
    struct tse_store *store;
    const struct tse_profile *prof; /* read-only, shared by cards with the same profile text */
    unsigned atr_protocols;
    bool need_reload; /* a power cut happened: memory must be re-read from the image */
    struct tse_iface_state ifs[TSE_IF_COUNT];
    /* The instance table, in blocks allocated as instances are added: entries never move
     * while the card lives (callbacks hold pointers to their context's instance while the
     * card manager installs others), and a card with four instances pays for one block, not
     * for the registry's 256 slots. Reach entries with tse_rt_inst(). */
    struct tse_instance *inst_blk[SYS_MAX_INSTANCES / TSE_INST_BLOCK];
    size_t n_inst;
    int call_depth;
    struct tse_ctx *txn_owner; /* context that opened the store transaction */
    /* the secure channel session of the SD forwarding STORE DATA to personalize() */
    struct tse_scp_session *perso_session;
    /* the application holding the CRS volatile priority (its ctx_id), 0 = none: RAM only,
     * gone when the card loses power (both interfaces off, or a power cut) */
    uint32_t cl_volatile;
    /* RNG */
    mbedtls_ctr_drbg_context drbg;
    bool drbg_ready;
    uint8_t *rnd_queue;
    size_t rnd_len, rnd_off;
    /* scratch: response data (TSE_APDU_MAX_NE bytes), allocated when an applet first answers
     * and freed when both interfaces are off, so an idle card does not keep 64 KiB */
    uint8_t *rbuf;
};

/* runtime.c */
/* Entry i (< n_inst) of the instance table. */
static inline struct tse_instance *tse_rt_inst(const struct tse_card *card, size_t i)
{
    return &card->inst_blk[i / TSE_INST_BLOCK][i % TSE_INST_BLOCK];
}
int tse_rt_load(struct tse_card *card, char *err, size_t errlen);
void tse_rt_unload(struct tse_card *card);
int tse_rt_find(const struct tse_card *card, const struct tse_aid *aid);
bool tse_rt_selectable(const struct tse_instance *in);
/* Install an instance of module `mod` of package `pkg` (native) and call its install().
 * *sw receives the applet's status word when it ran. Atomic: all or nothing. */
struct tse_rt_install_opts {
    uint32_t pquota, tquota; /* 0 = only the card's limits */
    uint8_t default_on;
    uint8_t state; /* 0 = SELECTABLE; APP_STATE_INSTALLED for INSTALL [for install] only */
    uint8_t priv[3];
    struct tse_aid sd; /* associated security domain (empty: none, only for the ISD) */
    uint8_t cl[16]; /* contactless registry data (src/gp/crs.c); zero: activated, no PPSE entry */
};
int tse_rt_install(struct tse_card *card, const struct tse_aid *pkg, const struct tse_aid *mod,
                   const struct tse_aid *aid, const uint8_t *params, size_t plen,
                   const struct tse_rt_install_opts *o, uint16_t *sw);
/* Delete an instance and all its objects (refused while it is selected somewhere). */
int tse_rt_uninstall(struct tse_card *card, const struct tse_aid *aid);
int tse_rt_set_state(struct tse_card *card, int idx, uint8_t state);
/* Hand one plain STORE DATA command to instance idx's personalize() with `s` as the
 * forwarding SD's secure channel (for tse_ctx_perso_decrypt()). An open applet transaction is
 * aborted at return. @retval TSE_ERR_NOT_FOUND the applet has no personalize(); 0, *sw set */
int tse_rt_personalize(struct tse_card *card, int idx, int iface, uint8_t channel,
                       struct tse_scp_session *s, const struct tse_apdu *a,
                       struct tse_response *rsp, uint16_t *sw);
/* Executable load files. Native packages named in the profile's rom_packages (default: all)
 * are present "in ROM" from creation and cannot be deleted; the others become present when a
 * LOAD of their CAP file completes (a registry record, associated with a security domain). */
struct tse_elf {
    struct tse_aid aid, sd;
    uint8_t major, minor;
    bool rom;
    const struct tse_package_def *pkg;
};
/* The n-th load file (ROM packages first, then loaded ones); TSE_ERR_NOT_FOUND past the end. */
int tse_rt_elf_nth(const struct tse_card *card, size_t n, struct tse_elf *e);
/* Find a present load file by AID. */
int tse_rt_elf_find(const struct tse_card *card, const struct tse_aid *aid, struct tse_elf *e);
/* Register a loaded load file (inside the caller's store transaction if one is open). */
int tse_rt_elf_add(struct tse_card *card, const struct tse_elf *e);
/* Change the SD a loaded load file is associated with. */
int tse_rt_elf_set_sd(struct tse_card *card, const struct tse_aid *aid, const struct tse_aid *sd);
/* Whether a native package may have instances now (ROM or loaded). */
bool tse_rt_package_present(const struct tse_card *card, const struct tse_aid *pkg);
/* Delete instances and loaded load files as one atomic step: every instance's uninstall() runs,
 * every object and record goes, or (on any failure) nothing changes. Refused with
 * TSE_ERR_STATE while one of the instances is selected somewhere; ROM load files cannot be
 * deleted (TSE_ERR_DENIED). */
int tse_rt_delete(struct tse_card *card, const struct tse_aid *aids, size_t n);
/* Write instance idx's whole record (after changing its fields in card->inst) as one store
 * write: atomic across power cuts. */
int tse_rt_save(struct tse_card *card, int idx);
/* Replace instance idx's contactless registry data and save its record (one store write; part
 * of the store transaction when one is open). On failure the instance keeps its old data.
 * @retval TSE_ERR_STATE the record predates contactless data (an 80-byte record of an old image)
 * other values as tse_store_write() */
int tse_rt_set_cl(struct tse_card *card, int idx, const uint8_t cl[16]);
void tse_rt_ctx(struct tse_card *card, int idx, int iface, uint8_t channel, struct tse_ctx *ctx);
/* Interface RAM */
void tse_rt_ram_clear(struct tse_card *card, int iface, uint32_t ctx_id, uint8_t kinds);
void tse_rt_ram_free(struct tse_card *card, int iface);
/* End of a callback: an applet's open transaction is aborted (Java Card rule). */
void tse_rt_end_callback(struct tse_card *card, struct tse_ctx *ctx);

/* Card life cycle state (GlobalPlatform coding), kept in the runtime's meta object. */
uint8_t tse_rt_card_life_cycle(const struct tse_card *card);
int tse_rt_set_card_life_cycle(struct tse_card *card, uint8_t lc);

/* card.c: instance i can be selected on the interface now (its life cycle, the card's, and
 * the contactless registry: activation on the contactless interface, access on contact). */
bool tse_card_can_select(const struct tse_card *c, size_t i, int iface);

/* rng.c */
int tse_rng_init(struct tse_card *card);
void tse_rng_free(struct tse_card *card);
int tse_rng_bytes(struct tse_card *card, uint8_t *buf, size_t len);
int64_t tse_clock_now(const struct tse_card *card);

/* counters (runtime.c) */
int tse_counter_index(const struct tse_card *card, const char *name);
int tse_counter_read(struct tse_card *card, int idx, uint64_t *v);
int tse_counter_write(struct tse_card *card, int idx, uint64_t v);

#endif
