/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JT/T 978 transit electronic purse with compound application (package A0000006320101,
 * module A000000632010105): files 0x15-0x18, 0x1A, 0x1E, 0x1F, load, purchase, compound
 * purchase, proofs, PIN, block/unblock and GP personalisation. Commands, files, DGIs and every
 * choice where the standard is silent: docs/wallet.md.
 *
 * Atomicity: a DEBIT writes its log record, every cached compound record and the whole purse
 * state (balance, counter, log pointers, proof) inside one store transaction; a CREDIT
 * likewise. Session data (random, session key, amounts, the compound data cache, challenge,
 * PIN status) lives in transient memory cleared on deselect and power loss.
 */
#include <string.h>

#include "crypto/crypto_internal.h"
#include "tse/applet.h"
#include "tse/sw.h"
#include "tse/tlv.h"
#include "tse/wallet.h"
#include "wallet/wallet_internal.h"

/* ---- persistent objects ------------------------------------------------------------------ */

#define OBJ_CFG   0x01
#define OBJ_STATE 0x02
#define OBJ_KEYS  0x03
/* files: object id = SFI (0x15, 0x16, 0x17, 0x18, 0x1A, 0x1E, 0x1F) */

/* configuration (from the install parameters) */
#define CFG_N18       0
#define CFG_N1E       1
#define CFG_N1A       2
#define CFG_N1F       3
#define CFG_PIN_LIMIT 4
#define CFG_MAC_LIMIT 5
#define CFG_LOAD_PIN  6
#define CFG_FID       7 /* 2 bytes */
#define CFG_VERSION   9
#define CFG_LEN       16

/* purse state: one object, always written whole (one store write) */
#define ST_BALANCE   0  /* u32 real balance */
#define ST_ONLINE    4  /* u16 online (load) counter */
#define ST_OFFLINE   6  /* u16 offline (purchase) counter */
#define ST_OD_USED   8  /* u32 overdraft in use */
#define ST_STATUS    12 /* APP_* */
#define ST_PERSO     13 /* PERSO_* bits */
#define ST_MACERR    14 /* consecutive MAC1/MAC2 errors */
#define ST_PIN_TRIES 15
#define ST_NEXT18    16 /* cyclic files: next slot, records written (saturating) */
#define ST_CNT18     17
#define ST_NEXT1E    18
#define ST_CNT1E     19
#define ST_NEXT1F    20
#define ST_CNT1F     21
#define ST_PROOF_P   22 /* last purchase: type, seq after (2), MAC2 (4), TAC (4) */
#define ST_PROOF_L   33 /* last load: same layout */
#define ST_MAXBAL    44 /* u32 */
#define ST_OD_LIMIT  48 /* u24 */
#define ST_PIN_LIMIT 51
#define ST_PIN_LEN   52
#define ST_PIN       53 /* 6 bytes */
#define ST_LEN       64

#define APP_ACTIVE     0
#define APP_TEMP_BLOCK 1
#define APP_PERM_BLOCK 2
#define APP_CARD_BLOCK 3

#define PERSO_EF15   0x01
#define PERSO_EF16   0x02
#define PERSO_EF17   0x04
#define PERSO_KEYS   0x08
#define PERSO_PIN    0x10
#define PERSO_LIMITS 0x20

/* key table: usage, index, version, algorithm, key (16) */
#define KEY_ENTRY 20
#define KEY_SLOTS 32
#define KEYS_LEN  (KEY_ENTRY * KEY_SLOTS)

#define REC18_LEN  23
#define REC1E_LEN  48
#define REC1A_MAX  128
#define SLOT1A_LEN (2 + REC1A_MAX) /* id, length, data */

#define DEFAULT_MAX_BALANCE 100000u /* 1000.00 CNY */

/* ---- transient session ---------------------------------------------------------------------- */

#define RAM_SESSION 1
#define CACHE_MAX   4

enum { S_NONE = 0, S_LOAD, S_PURCHASE, S_CAPP };

struct cache_entry {
    uint8_t sfi, id, len;
    uint8_t data[REC1A_MAX];
};

struct session {
    uint8_t state;
    uint8_t key_index, key_version, key_alg;
    uint8_t type;
    uint8_t term_id[6];
    uint8_t rand[4];
    uint8_t sk[8]; /* load session key (a purchase's needs the terminal sequence) */
    uint16_t seq;
    uint32_t amount;
    uint32_t balance; /* spendable balance reported by INITIALIZE */
    uint8_t challenge[8];
    uint8_t challenge_len; /* 0: none; valid for the next command only */
    uint8_t pin_ok;
    uint8_t selected; /* set by select(): the SELECT being processed chose this instance */
    uint8_t n_cache;
    struct cache_entry cache[CACHE_MAX];
};

/* ---- helpers -------------------------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t get24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static void put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

#define get32 tse_wallet_get32
#define put32 tse_wallet_put32

static uint16_t respond(struct tse_response *rsp, const uint8_t *b, size_t len)
{
    return tse_response_append(rsp, b, len) ? SW_UNKNOWN : SW_NO_ERROR;
}

/* Everything one command works on: copies of the configuration and state. */
struct purse {
    struct tse_ctx *ctx;
    uint8_t cfg[CFG_LEN];
    uint8_t st[ST_LEN];
    struct session *s;
};

static int load_purse(struct tse_ctx *ctx, struct purse *p, bool with_session)
{
    const uint8_t *b;
    memset(p, 0, sizeof(*p));
    p->ctx = ctx;
    int rc = tse_ctx_pmem_get(ctx, OBJ_CFG, 0, &b, NULL);
    if (rc)
        return rc;
    memcpy(p->cfg, b, CFG_LEN);
    if ((rc = tse_ctx_pmem_get(ctx, OBJ_STATE, 0, &b, NULL)) != 0)
        return rc;
    memcpy(p->st, b, ST_LEN);
    if (with_session) {
        uint8_t *m;
        rc = tse_ctx_transient(ctx, RAM_SESSION, sizeof(struct session), TSE_CLEAR_ON_DESELECT, &m);
        if (rc)
            return rc;
        p->s = (struct session *)(void *)m;
    }
    return 0;
}

static int save_state(struct purse *p)
{
    return tse_ctx_pmem_write(p->ctx, OBJ_STATE, 0, p->st, ST_LEN);
}

static void end_session(struct purse *p)
{
    struct session *s = p->s;
    if (!s)
        return;
    /* the PIN status and a pending challenge outlive a transaction */
    uint8_t pin_ok = s->pin_ok, sel = s->selected, ch[8], chl = s->challenge_len;
    memcpy(ch, s->challenge, sizeof(ch));
    tse_wipe(s, sizeof(*s));
    s->pin_ok = pin_ok;
    s->selected = sel;
    s->challenge_len = chl;
    memcpy(s->challenge, ch, sizeof(ch));
}

static uint32_t spendable(const struct purse *p)
{
    uint32_t lim = get24(p->st + ST_OD_LIMIT), used = get32(p->st + ST_OD_USED);
    uint64_t v = (uint64_t)get32(p->st + ST_BALANCE) + (lim > used ? lim - used : 0);
    return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v;
}

/* Find a key: exact (usage, index); index 0 = the first key of that usage. */
static const uint8_t *find_key(struct tse_ctx *ctx, uint8_t usage, uint8_t index)
{
    const uint8_t *k;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &k, NULL) != 0)
        return NULL;
    for (size_t i = 0; i < KEY_SLOTS; i++) {
        const uint8_t *e = k + i * KEY_ENTRY;
        if (e[0] == usage && (index == 0 || e[1] == index))
            return e;
    }
    return NULL;
}

/* The TAC key: the DTK of the transaction's key index, else the first DTK. */
static const uint8_t *find_dtk(struct tse_ctx *ctx, uint8_t index)
{
    const uint8_t *e = find_key(ctx, TSE_WALLET_KEY_TAC, index);
    return e ? e : find_key(ctx, TSE_WALLET_KEY_TAC, 0);
}

/* Take the pending challenge (valid for one command) into c; returns its length (0 = none). */
static size_t take_challenge(struct purse *p, uint8_t c[8])
{
    size_t n = p->s ? p->s->challenge_len : 0;
    if (n)
        memcpy(c, p->s->challenge, n);
    if (p->s) {
        p->s->challenge_len = 0;
        memset(p->s->challenge, 0, sizeof(p->s->challenge));
    }
    return n;
}

/* A consecutive MAC1/MAC2 error: counted persistently; at the limit the application is
 * temporarily blocked (APPLICATION UNBLOCK clears both). */
static void count_mac_error(struct purse *p)
{
    uint8_t lim = p->cfg[CFG_MAC_LIMIT];
    if (p->st[ST_MACERR] < 0xFF)
        p->st[ST_MACERR]++;
    if (lim && p->st[ST_MACERR] >= lim && p->st[ST_STATUS] == APP_ACTIVE)
        p->st[ST_STATUS] = APP_TEMP_BLOCK;
    (void)save_state(p); /* a single write: atomic by itself */
}

/* ---- files ---------------------------------------------------------------------------------- */

enum ftype { F_NONE, F_BINARY, F_CYCLIC, F_VARREC };

struct file {
    enum ftype type;
    uint16_t size;   /* transparent size or record length */
    uint8_t count;   /* records */
    uint8_t next_at; /* cyclic: offsets of next / count in the state */
};

static struct file file_of(const struct purse *p, uint8_t sfi)
{
    struct file f = {F_NONE, 0, 0, 0};
    switch (sfi) {
    case 0x15:
        f = (struct file){F_BINARY, 30, 0, 0};
        break;
    case 0x16:
        f = (struct file){F_BINARY, 55, 0, 0};
        break;
    case 0x17:
        f = (struct file){F_BINARY, 60, 0, 0};
        break;
    case 0x18:
        f = (struct file){F_CYCLIC, REC18_LEN, p->cfg[CFG_N18], ST_NEXT18};
        break;
    case 0x1E:
        f = (struct file){F_CYCLIC, REC1E_LEN, p->cfg[CFG_N1E], ST_NEXT1E};
        break;
    case 0x1F:
        if (p->cfg[CFG_N1F])
            f = (struct file){F_CYCLIC, REC18_LEN, p->cfg[CFG_N1F], ST_NEXT1F};
        break;
    case 0x1A:
        f = (struct file){F_VARREC, REC1A_MAX, p->cfg[CFG_N1A], 0};
        break;
    default:
        break;
    }
    return f;
}

static bool binary_personalised(const struct purse *p, uint8_t sfi)
{
    uint8_t bit = sfi == 0x15 ? PERSO_EF15 : sfi == 0x16 ? PERSO_EF16 : PERSO_EF17;
    return (p->st[ST_PERSO] & bit) != 0;
}

/* Append a record to a cyclic file inside the caller's transaction; updates the state copy. */
static int cyclic_append(struct purse *p, uint8_t sfi, const uint8_t *rec)
{
    struct file f = file_of(p, sfi);
    uint8_t next = p->st[f.next_at];
    if (next >= f.count)
        next = 0;
    int rc = tse_ctx_pmem_write(p->ctx, sfi, (size_t)next * f.size, rec, f.size);
    if (rc)
        return rc;
    p->st[f.next_at] = (uint8_t)((next + 1) % f.count);
    if (p->st[f.next_at + 1] < f.count)
        p->st[f.next_at + 1]++;
    return 0;
}

/* Record `n` (1 = newest) of a cyclic file, or NULL. */
static const uint8_t *cyclic_record(const struct purse *p, uint8_t sfi, unsigned n)
{
    struct file f = file_of(p, sfi);
    const uint8_t *d;
    if (n == 0 || n > p->st[f.next_at + 1] || tse_ctx_pmem_get(p->ctx, sfi, 0, &d, NULL) != 0)
        return NULL;
    unsigned slot = (p->st[f.next_at] + f.count - n) % f.count;
    return d + (size_t)slot * f.size;
}

/* Slot of the 0x1A record with identifier id, or -1. */
static int varrec_find(const struct purse *p, uint8_t id, const uint8_t **slot)
{
    const uint8_t *d;
    if (tse_ctx_pmem_get(p->ctx, 0x1A, 0, &d, NULL) != 0)
        return -1;
    for (int i = 0; i < p->cfg[CFG_N1A]; i++) {
        const uint8_t *e = d + (size_t)i * SLOT1A_LEN;
        if (e[1] && e[0] == id) {
            if (slot)
                *slot = e;
            return i;
        }
    }
    return -1;
}

static int varrec_free_slots(const struct purse *p)
{
    const uint8_t *d;
    int n = 0;
    if (tse_ctx_pmem_get(p->ctx, 0x1A, 0, &d, NULL) != 0)
        return 0;
    for (int i = 0; i < p->cfg[CFG_N1A]; i++)
        if (!d[(size_t)i * SLOT1A_LEN + 1])
            n++;
    return n;
}

/* Le check of ISO 7816-4: no Le or Le = 00 (maximum) accepts any length; otherwise it must
 * match (the card answers 6Cxx with the right one). */
static bool le_max(const struct tse_apdu *a)
{
    return !a->has_le || a->ne == 256 || a->ne == 65536;
}

static uint16_t read_binary(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (!(a->p1 & 0x80))
        return SW_COMMAND_NOT_ALLOWED_NO_EF; /* no current EF: files are reached by SFI */
    if (a->p1 & 0x60)
        return SW_INCORRECT_P1P2;
    if (a->lc)
        return SW_WRONG_LENGTH;
    uint8_t sfi = a->p1 & 0x1F;
    struct file f = file_of(p, sfi);
    if (f.type == F_NONE || (f.type == F_BINARY && !binary_personalised(p, sfi)))
        return SW_FILE_NOT_FOUND;
    if (f.type != F_BINARY)
        return SW_COMMAND_INCOMPATIBLE;
    if (a->p2 >= f.size)
        return SW_WRONG_P1P2;
    size_t avail = f.size - a->p2, n = avail;
    if (!le_max(a)) {
        if (a->ne > avail)
            return (uint16_t)(SW_CORRECT_LENGTH_00 | avail);
        n = a->ne;
    }
    const uint8_t *d;
    if (tse_ctx_pmem_get(p->ctx, sfi, 0, &d, NULL) != 0)
        return SW_UNKNOWN;
    return respond(rsp, d + a->p2, n);
}

static uint16_t record_out(const struct tse_apdu *a, const uint8_t *rec, size_t len,
                           struct tse_response *rsp)
{
    if (!le_max(a) && a->ne != len)
        return (uint16_t)(SW_CORRECT_LENGTH_00 | len);
    return respond(rsp, rec, len);
}

static uint16_t read_record(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->lc)
        return SW_WRONG_LENGTH;
    uint8_t sfi = a->p2 >> 3, mode = a->p2 & 0x07;
    if (sfi == 0)
        return SW_COMMAND_NOT_ALLOWED_NO_EF;
    struct file f = file_of(p, sfi);
    if (f.type == F_NONE)
        return SW_FILE_NOT_FOUND;
    if (f.type == F_BINARY)
        return binary_personalised(p, sfi) ? SW_COMMAND_INCOMPATIBLE : SW_FILE_NOT_FOUND;
    if (f.type == F_CYCLIC) {
        if (mode == 4) {
            const uint8_t *r = cyclic_record(p, sfi, a->p1);
            return r ? record_out(a, r, f.size, rsp) : SW_RECORD_NOT_FOUND;
        }
        if (mode == 5) { /* records P1 to the last, concatenated */
            unsigned have = p->st[f.next_at + 1];
            if (a->p1 == 0 || a->p1 > have)
                return SW_RECORD_NOT_FOUND;
            for (unsigned n = a->p1; n <= have; n++)
                if (tse_response_append(rsp, cyclic_record(p, sfi, n), f.size))
                    return SW_UNKNOWN;
            return SW_NO_ERROR;
        }
        return SW_INCORRECT_P1P2;
    }
    /* 0x1A: records by number (mode 4, in the order they were created) or identifier (0) */
    const uint8_t *d;
    if (tse_ctx_pmem_get(p->ctx, sfi, 0, &d, NULL) != 0)
        return SW_UNKNOWN;
    const uint8_t *e = NULL;
    if (mode == 4) {
        if (a->p1 >= 1 && a->p1 <= p->cfg[CFG_N1A])
            e = d + (size_t)(a->p1 - 1) * SLOT1A_LEN;
    } else if (mode == 0) {
        varrec_find(p, a->p1, &e);
    } else {
        return SW_INCORRECT_P1P2;
    }
    if (!e || !e[1])
        return SW_RECORD_NOT_FOUND;
    return record_out(a, e + 2, e[1], rsp);
}

/* ---- SELECT / FCI ---------------------------------------------------------------------------- */

static uint16_t fci(struct purse *p, struct tse_response *rsp, uint16_t sw)
{
    const struct tse_aid *aid = tse_ctx_aid(p->ctx);
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, rsp->data + rsp->len, rsp->cap - rsp->len);
    tse_tlv_begin(&w, 0x6F);
    tse_tlv_put(&w, 0x84, aid->b, aid->len);
    tse_tlv_begin(&w, 0xA5);
    tse_tlv_put_u8(&w, 0x9F08, p->cfg[CFG_VERSION]);
    const uint8_t *ef15;
    if (binary_personalised(p, 0x15) && tse_ctx_pmem_get(p->ctx, 0x15, 0, &ef15, NULL) == 0)
        tse_tlv_put(&w, 0x9F0C, ef15, 30);
    tse_tlv_end(&w);
    tse_tlv_end(&w);
    int n = tse_tlv_finish(&w);
    if (n < 0)
        return SW_UNKNOWN;
    rsp->len += (size_t)n;
    return sw;
}

static uint16_t select_cmd(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    const struct tse_aid *aid = tse_ctx_aid(p->ctx);
    if (a->p1 == 0x04) {
        /* SELECT by name reaches us when the card chose this instance (select() ran), or
         * when the card found no application for the name (no further occurrence
         * included) and we are the selected one: then it is not a file of ours. */
        bool chosen = p->s->selected;
        p->s->selected = 0;
        if (!chosen || (a->lc && !tse_aid_has_prefix(aid, a->data, a->lc)))
            return SW_FILE_NOT_FOUND;
    } else if (a->p1 == 0x00) {
        if (a->lc != 2)
            return a->lc ? SW_FILE_NOT_FOUND : SW_WRONG_LENGTH;
        if (get16(a->data) != get16(p->cfg + CFG_FID))
            return SW_FILE_NOT_FOUND;
    } else {
        return SW_INCORRECT_P1P2;
    }
    end_session(p);
    if (p->s)
        p->s->pin_ok = 0;
    switch (p->st[ST_STATUS]) {
    case APP_PERM_BLOCK:
        return SW_WALLET_APP_LOCKED;
    case APP_CARD_BLOCK:
        return SW_FUNC_NOT_SUPPORTED;
    case APP_TEMP_BLOCK:
        return fci(p, rsp, SW_WARNING_SELECTED_FILE_INVALID);
    default:
        return fci(p, rsp, SW_NO_ERROR);
    }
}

/* ---- balance, load, purchase ------------------------------------------------------------------
 */

static uint16_t get_balance(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->lc)
        return SW_WRONG_LENGTH;
    if (a->p2 != WP2_EP || a->p1 > 3)
        return SW_INCORRECT_P1P2;
    uint32_t v;
    switch (a->p1) {
    case 0:
        v = spendable(p); /* overdraft allowance included */
        break;
    case 3:
        v = get32(p->st + ST_BALANCE); /* real balance */
        break;
    default:
        v = get32(p->st + ST_OD_USED); /* 01 / 02: overdraft in use */
        break;
    }
    uint8_t b[4];
    put32(b, v);
    return respond(rsp, b, 4);
}

static uint16_t initialize(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->p1 != WP1_LOAD && a->p1 != WP1_PURCHASE && a->p1 != WP1_CAPP)
        return SW_INCORRECT_P1P2;
    if (a->p2 != WP2_EP)
        return SW_INCORRECT_P1P2;
    if (a->lc != 11)
        return SW_WRONG_LENGTH;
    struct session *s = p->s;
    uint8_t key_index = a->data[0];
    uint32_t amount = get32(a->data + 1);
    bool load = a->p1 == WP1_LOAD;
    if (load && p->cfg[CFG_LOAD_PIN] && !s->pin_ok)
        return SW_SECURITY_STATUS_NOT_SATISFIED;
    const uint8_t *key =
        key_index
            ? find_key(p->ctx, load ? TSE_WALLET_KEY_LOAD : TSE_WALLET_KEY_PURCHASE, key_index)
            : NULL;
    if (!key)
        return SW_WALLET_KEY_NOT_FOUND;
    uint16_t seq = get16(p->st + (load ? ST_ONLINE : ST_OFFLINE));
    if (seq == 0xFFFF)
        return SW_WALLET_COUNTER_LIMIT;
    uint32_t bal = spendable(p);
    if (load) {
        uint32_t used = get32(p->st + ST_OD_USED);
        uint64_t nb = (uint64_t)get32(p->st + ST_BALANCE) + (amount > used ? amount - used : 0);
        if (nb > get32(p->st + ST_MAXBAL))
            return SW_WRONG_DATA; /* the load would exceed the maximum balance */
    } else if (amount > bal) {
        return SW_WALLET_INSUFFICIENT;
    }
    s->state = load ? S_LOAD : a->p1 == WP1_CAPP ? S_CAPP : S_PURCHASE;
    s->type = load                ? TSE_WALLET_TT_EP_LOAD
              : a->p1 == WP1_CAPP ? TSE_WALLET_TT_CAPP
                                  : TSE_WALLET_TT_PURCHASE;
    s->key_index = key_index;
    s->key_version = key[2];
    s->key_alg = key[3];
    s->amount = amount;
    memcpy(s->term_id, a->data + 5, 6);
    s->seq = seq;
    s->balance = bal;
    s->n_cache = 0;
    if (tse_ctx_random(p->ctx, s->rand, 4) != 0) {
        end_session(p);
        return SW_UNKNOWN;
    }
    uint8_t r[16];
    put32(r, bal);
    put16(r + 4, seq);
    if (load) {
        struct tse_wallet_txn t = {.type = s->type, .amount = amount, .seq = seq, .balance = bal};
        memcpy(t.term_id, s->term_id, 6);
        memcpy(t.rand, s->rand, 4);
        r[6] = s->key_version;
        r[7] = s->key_alg;
        memcpy(r + 8, s->rand, 4);
        if (tse_wallet_load_sk(key + 4, &t, s->sk) || tse_wallet_load_mac1(s->sk, &t, r + 12)) {
            end_session(p);
            return SW_UNKNOWN;
        }
        return respond(rsp, r, 16);
    }
    put24(r + 6, get24(p->st + ST_OD_LIMIT));
    r[9] = s->key_version;
    r[10] = s->key_alg;
    memcpy(r + 11, s->rand, 4);
    return respond(rsp, r, 15);
}

static void log_record(uint8_t rec[REC18_LEN], uint16_t seq_after, const uint8_t od_limit[3],
                       const struct session *s, const uint8_t date[4], const uint8_t time[3])
{
    put16(rec, seq_after);
    memcpy(rec + 2, od_limit, 3);
    put32(rec + 5, s->amount);
    rec[9] = s->type;
    memcpy(rec + 10, s->term_id, 6);
    memcpy(rec + 16, date, 4);
    memcpy(rec + 20, time, 3);
}

static void set_proof(uint8_t *at, uint8_t type, uint16_t seq, const uint8_t mac2[4],
                      const uint8_t tac[4])
{
    at[0] = type;
    put16(at + 1, seq);
    memcpy(at + 3, mac2, 4);
    memcpy(at + 7, tac, 4);
}

/* A transaction committed on the other interface since this session's INITIALIZE (the card
 * serves contact and contactless at once, each with its own session): its counter and balance
 * are stale, and two transactions must never share a counter nor a TAC name a balance the
 * purse never had. */
static bool session_stale(const struct purse *p)
{
    const struct session *s = p->s;
    uint16_t seq = get16(p->st + (s->state == S_LOAD ? ST_ONLINE : ST_OFFLINE));
    return seq != s->seq || spendable(p) != s->balance;
}

static uint16_t credit(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    struct session *s = p->s;
    if (a->lc != 11)
        return SW_WRONG_LENGTH;
    if (a->p1 || a->p2)
        return SW_INCORRECT_P1P2;
    if (s->state != S_LOAD)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (session_stale(p)) {
        end_session(p);
        return SW_CONDITIONS_NOT_SATISFIED;
    }
    const uint8_t *date = a->data, *time = a->data + 4, *mac2 = a->data + 7;
    struct tse_wallet_txn t = {
        .type = s->type, .amount = s->amount, .seq = s->seq, .balance = s->balance};
    memcpy(t.term_id, s->term_id, 6);
    memcpy(t.rand, s->rand, 4);
    memcpy(t.date, date, 4);
    memcpy(t.time, time, 3);
    uint8_t m[4], tac[4];
    if (tse_wallet_load_mac2(s->sk, &t, m))
        return SW_UNKNOWN;
    if (!tse_ct_equal(m, mac2, 4)) {
        end_session(p);
        count_mac_error(p);
        return SW_WALLET_MAC_INVALID;
    }
    const uint8_t *dtk = find_dtk(p->ctx, s->key_index);
    if (!dtk || tse_wallet_load_tac(dtk + 4, &t, tac)) {
        end_session(p);
        return SW_WALLET_KEY_NOT_FOUND;
    }
    /* the new state */
    uint32_t used = get32(p->st + ST_OD_USED), bal = get32(p->st + ST_BALANCE);
    if (s->amount <= used) {
        used -= s->amount;
    } else {
        bal += s->amount - used;
        used = 0;
    }
    put32(p->st + ST_BALANCE, bal);
    put32(p->st + ST_OD_USED, used);
    uint16_t after = (uint16_t)(s->seq + 1);
    put16(p->st + ST_ONLINE, after);
    p->st[ST_MACERR] = 0;
    set_proof(p->st + ST_PROOF_L, s->type, after, mac2, tac);
    uint8_t rec[REC18_LEN];
    log_record(rec, after, p->st + ST_OD_LIMIT, s, date, time);

    int rc = tse_ctx_txn_begin(p->ctx);
    if (!rc)
        rc = cyclic_append(p, 0x18, rec);
    if (!rc && p->cfg[CFG_N1F])
        rc = cyclic_append(p, 0x1F, rec);
    if (!rc)
        rc = save_state(p);
    if (!rc)
        rc = tse_ctx_txn_commit(p->ctx);
    end_session(p);
    if (rc) {
        tse_ctx_txn_abort(p->ctx);
        return tse_sw_from_err(rc);
    }
    return respond(rsp, tac, 4);
}

static uint16_t update_capp(struct purse *p, const struct tse_apdu *a)
{
    struct session *s = p->s;
    if (a->p2 & 0x07)
        return SW_INCORRECT_P1P2;
    uint8_t sfi = a->p2 >> 3;
    struct file f = file_of(p, sfi);
    if (f.type == F_NONE)
        return SW_FILE_NOT_FOUND;
    if (sfi != 0x1A && sfi != 0x1E)
        return SW_COMMAND_INCOMPATIBLE; /* not a compound-application file */
    if (s->state != S_CAPP)
        return SW_CONDITIONS_NOT_SATISFIED;
    struct cache_entry *e = NULL;
    if (sfi == 0x1E) {
        if (a->p1)
            return SW_INCORRECT_P1P2;
        if (a->lc != REC1E_LEN)
            return SW_WRONG_LENGTH;
    } else {
        if (a->p1 == 0x00 || a->p1 == 0xFF)
            return SW_INCORRECT_P1P2;
        if (a->lc == 0 || a->lc > REC1A_MAX)
            return SW_WRONG_LENGTH;
        int new_ids = 0;
        for (unsigned i = 0; i < s->n_cache; i++) {
            if (s->cache[i].sfi == 0x1A && s->cache[i].id == a->p1)
                e = &s->cache[i];
            else if (s->cache[i].sfi == 0x1A && varrec_find(p, s->cache[i].id, NULL) < 0)
                new_ids++;
        }
        if (!e && varrec_find(p, a->p1, NULL) < 0 && varrec_free_slots(p) <= new_ids)
            return SW_FILE_FULL; /* no slot left for another record identifier */
    }
    if (!e) {
        if (s->n_cache >= CACHE_MAX)
            return SW_FILE_FULL;
        e = &s->cache[s->n_cache++];
    }
    e->sfi = sfi;
    e->id = a->p1;
    e->len = (uint8_t)a->lc;
    memcpy(e->data, a->data, a->lc);
    return SW_NO_ERROR;
}

/* Write one cached compound record (inside the DEBIT transaction). */
static int commit_cache_entry(struct purse *p, const struct cache_entry *e)
{
    if (e->sfi == 0x1E)
        return cyclic_append(p, 0x1E, e->data);
    int slot = varrec_find(p, e->id, NULL);
    if (slot < 0) {
        const uint8_t *d;
        if (tse_ctx_pmem_get(p->ctx, 0x1A, 0, &d, NULL) != 0)
            return TSE_ERR_NOT_FOUND;
        for (int i = 0; i < p->cfg[CFG_N1A] && slot < 0; i++)
            if (!d[(size_t)i * SLOT1A_LEN + 1])
                slot = i;
        if (slot < 0)
            return TSE_ERR_NO_SPACE;
    }
    uint8_t b[SLOT1A_LEN] = {0};
    b[0] = e->id;
    b[1] = e->len;
    memcpy(b + 2, e->data, e->len);
    return tse_ctx_pmem_write(p->ctx, 0x1A, (size_t)slot * SLOT1A_LEN, b, sizeof(b));
}

static uint16_t debit(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    struct session *s = p->s;
    if (a->lc != 15)
        return SW_WRONG_LENGTH;
    if (a->p1 != 0x01 || a->p2)
        return SW_INCORRECT_P1P2;
    if (s->state != S_PURCHASE && s->state != S_CAPP)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (session_stale(p)) {
        end_session(p);
        return SW_CONDITIONS_NOT_SATISFIED;
    }
    const uint8_t *key = find_key(p->ctx, TSE_WALLET_KEY_PURCHASE, s->key_index);
    if (!key)
        return SW_WALLET_KEY_NOT_FOUND;
    struct tse_wallet_txn t = {.type = s->type,
                               .amount = s->amount,
                               .seq = s->seq,
                               .term_seq = get32(a->data),
                               .balance = s->balance};
    memcpy(t.term_id, s->term_id, 6);
    memcpy(t.rand, s->rand, 4);
    memcpy(t.date, a->data + 4, 4);
    memcpy(t.time, a->data + 8, 3);
    uint8_t sk[8], m[4], out[8];
    int rc = tse_wallet_purchase_sk(key + 4, &t, sk);
    if (!rc)
        rc = tse_wallet_purchase_mac1(sk, &t, m);
    if (rc) {
        tse_wipe(sk, sizeof(sk));
        return SW_UNKNOWN;
    }
    if (!tse_ct_equal(m, a->data + 11, 4)) {
        tse_wipe(sk, sizeof(sk));
        end_session(p);
        count_mac_error(p);
        return SW_WALLET_MAC_INVALID;
    }
    const uint8_t *dtk = find_dtk(p->ctx, s->key_index);
    rc = tse_wallet_purchase_mac2(sk, &t, out + 4);
    tse_wipe(sk, sizeof(sk));
    if (rc || !dtk || tse_wallet_purchase_tac(dtk + 4, &t, out)) {
        end_session(p);
        return dtk ? SW_UNKNOWN : SW_WALLET_KEY_NOT_FOUND;
    }
    uint32_t bal = get32(p->st + ST_BALANCE), used = get32(p->st + ST_OD_USED);
    if (s->amount > spendable(p)) {
        end_session(p);
        return SW_WALLET_INSUFFICIENT;
    }
    if (s->amount <= bal) {
        bal -= s->amount;
    } else {
        used += s->amount - bal;
        bal = 0;
    }
    put32(p->st + ST_BALANCE, bal);
    put32(p->st + ST_OD_USED, used);
    uint16_t after = (uint16_t)(s->seq + 1);
    put16(p->st + ST_OFFLINE, after);
    p->st[ST_MACERR] = 0;
    set_proof(p->st + ST_PROOF_P, s->type, after, out + 4, out);
    uint8_t rec[REC18_LEN];
    log_record(rec, after, p->st + ST_OD_LIMIT, s, t.date, t.time);

    /* one transaction: log, every cached compound record, then the state with the proof */
    rc = tse_ctx_txn_begin(p->ctx);
    if (!rc)
        rc = cyclic_append(p, 0x18, rec);
    for (unsigned i = 0; !rc && i < s->n_cache; i++)
        rc = commit_cache_entry(p, &s->cache[i]);
    if (!rc)
        rc = save_state(p);
    if (!rc)
        rc = tse_ctx_txn_commit(p->ctx);
    end_session(p);
    if (rc) {
        tse_ctx_txn_abort(p->ctx);
        return tse_sw_from_err(rc);
    }
    return respond(rsp, out, 8); /* TAC ‖ MAC2 */
}

static uint16_t prove(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->lc != 2)
        return SW_WRONG_LENGTH;
    if (a->p1 || (a->p2 != TSE_WALLET_TT_EP_LOAD && a->p2 != TSE_WALLET_TT_PURCHASE &&
                  a->p2 != TSE_WALLET_TT_CAPP))
        return SW_INCORRECT_P1P2;
    const uint8_t *pr = p->st + (a->p2 == TSE_WALLET_TT_EP_LOAD ? ST_PROOF_L : ST_PROOF_P);
    if (pr[0] != a->p2 || get16(pr + 1) != get16(a->data))
        return SW_WALLET_PROOF_NOT_FOUND;
    return respond(rsp, pr + 3, 8); /* MAC2 ‖ TAC */
}

/* ---- PIN --------------------------------------------------------------------------------------
 */

static uint16_t pin_tries_sw(uint8_t left)
{
    return left ? (uint16_t)(SW_VERIFY_FAILED_00 | (left > 15 ? 15 : left)) : SW_VERIFY_FAILED_00;
}

/* Compare with the reference PIN, spending a try first (a power cut can only lose a try). */
static uint16_t pin_check(struct purse *p, const uint8_t *pin, size_t len)
{
    if (!(p->st[ST_PERSO] & PERSO_PIN))
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (len < 2 || len > 6)
        return SW_WRONG_LENGTH;
    if (p->st[ST_PIN_TRIES] == 0)
        return SW_AUTH_METHOD_BLOCKED;
    p->st[ST_PIN_TRIES]--;
    int rc = save_state(p);
    if (rc)
        return tse_sw_from_err(rc);
    bool ok = len == p->st[ST_PIN_LEN] && tse_ct_equal(pin, p->st + ST_PIN, len);
    if (!ok) {
        p->s->pin_ok = 0;
        return pin_tries_sw(p->st[ST_PIN_TRIES]);
    }
    p->st[ST_PIN_TRIES] = p->st[ST_PIN_LIMIT];
    if ((rc = save_state(p)) != 0)
        return tse_sw_from_err(rc);
    p->s->pin_ok = 1;
    return SW_NO_ERROR;
}

static uint16_t set_pin(struct purse *p, const uint8_t *pin, size_t len)
{
    if (len < 2 || len > 6)
        return SW_WRONG_LENGTH;
    p->st[ST_PIN_LEN] = (uint8_t)len;
    memset(p->st + ST_PIN, 0, 6);
    memcpy(p->st + ST_PIN, pin, len);
    p->st[ST_PIN_TRIES] = p->st[ST_PIN_LIMIT];
    p->st[ST_PERSO] |= PERSO_PIN;
    return tse_sw_from_err(save_state(p));
}

static uint16_t verify(struct purse *p, const struct tse_apdu *a)
{
    if (a->p1 || a->p2)
        return SW_INCORRECT_P1P2;
    if (a->lc == 0) { /* the try counter only */
        if (!(p->st[ST_PERSO] & PERSO_PIN))
            return SW_REFERENCED_DATA_NOT_FOUND;
        if (p->s->pin_ok)
            return SW_NO_ERROR;
        return p->st[ST_PIN_TRIES] ? pin_tries_sw(p->st[ST_PIN_TRIES]) : SW_AUTH_METHOD_BLOCKED;
    }
    return pin_check(p, a->data, a->lc);
}

/* 80 5E 01 00: old ‖ FF ‖ new (CHANGE PIN); 80 5E 00 00: new ‖ MAC (RELOAD PIN). */
static uint16_t pin_change(struct purse *p, const struct tse_apdu *a)
{
    if (a->p2 || a->p1 > 1)
        return SW_INCORRECT_P1P2;
    if (a->p1 == 0x01) {
        const uint8_t *sep = a->lc ? memchr(a->data, 0xFF, a->lc) : NULL;
        if (!sep)
            return SW_WRONG_DATA;
        size_t olen = (size_t)(sep - a->data), nlen = a->lc - olen - 1;
        if (nlen < 2 || nlen > 6)
            return SW_WRONG_LENGTH;
        uint16_t sw = pin_check(p, a->data, olen);
        if (sw != SW_NO_ERROR)
            return sw;
        return set_pin(p, sep + 1, nlen);
    }
    if (a->lc < 6 || a->lc > 10)
        return SW_WRONG_LENGTH;
    const uint8_t *key = find_key(p->ctx, TSE_WALLET_KEY_PIN, 0);
    if (!key)
        return SW_REFERENCED_DATA_NOT_FOUND;
    uint8_t k[8], m[4];
    tse_wallet_tac_key(key + 4, k);
    int rc = tse_wallet_mac(k, a->data, a->lc - 4, m);
    tse_wipe(k, sizeof(k));
    if (rc)
        return SW_UNKNOWN;
    if (!tse_ct_equal(m, a->data + a->lc - 4, 4))
        return SW_WALLET_MAC_INVALID;
    return set_pin(p, a->data, a->lc - 4);
}

/* Check the secure-messaging MAC (last 4 data bytes) of a CLA 84/04 command. */
static uint16_t sm_check(struct purse *p, const struct tse_apdu *a, uint8_t usage,
                         const uint8_t **key_out)
{
    uint8_t ch[8];
    size_t clen = take_challenge(p, ch);
    if (a->lc < 4)
        return SW_SM_DATA_MISSING;
    const uint8_t *key = find_key(p->ctx, usage, 0);
    if (!key)
        return SW_REFERENCED_DATA_NOT_FOUND;
    if (!clen)
        return SW_SM_DATA_INCORRECT; /* no challenge: the MAC cannot be right */
    uint8_t hdr[5 + 255], m[4];
    /* the MAC covers the class as 04 / 84, without a logical channel number */
    hdr[0] = (a->cla & 0x80) ? 0x84 : 0x04;
    hdr[1] = a->ins;
    hdr[2] = a->p1;
    hdr[3] = a->p2;
    hdr[4] = (uint8_t)a->lc;
    memcpy(hdr + 5, a->data, a->lc - 4);
    if (tse_wallet_sm_mac(key + 4, ch, clen, hdr, 5 + a->lc - 4, m))
        return SW_UNKNOWN;
    if (!tse_ct_equal(m, a->data + a->lc - 4, 4))
        return SW_SM_DATA_INCORRECT;
    if (key_out)
        *key_out = key;
    return SW_NO_ERROR;
}

static uint16_t pin_unblock(struct purse *p, const struct tse_apdu *a)
{
    if (a->p1 || a->p2)
        return SW_INCORRECT_P1P2;
    if (a->lc != 12) {
        take_challenge(p, (uint8_t[8]){0});
        return SW_WRONG_LENGTH;
    }
    const uint8_t *key;
    uint16_t sw = sm_check(p, a, TSE_WALLET_KEY_PIN, &key);
    if (sw != SW_NO_ERROR)
        return sw;
    if (!(p->st[ST_PERSO] & PERSO_PIN))
        return SW_REFERENCED_DATA_NOT_FOUND;
    uint8_t blk[8];
    if (tse_des3_ecb(key + 4, false, a->data, 8, blk))
        return SW_UNKNOWN;
    uint8_t l = blk[0];
    bool ok = l >= 2 && l <= 6 && blk[1 + l] == 0x80;
    for (size_t i = 2u + l; ok && i < 8; i++)
        ok = blk[i] == 0;
    if (!ok || l != p->st[ST_PIN_LEN] || !tse_ct_equal(blk + 1, p->st + ST_PIN, l)) {
        tse_wipe(blk, sizeof(blk));
        return SW_WRONG_DATA;
    }
    tse_wipe(blk, sizeof(blk));
    p->st[ST_PIN_TRIES] = p->st[ST_PIN_LIMIT];
    return tse_sw_from_err(save_state(p));
}

/* ---- block / unblock / secure-messaging write
 * ----------------------------------------------------- */

static uint16_t block_cmd(struct purse *p, const struct tse_apdu *a)
{
    uint8_t usage;
    if (a->ins == WINS_APP_BLOCK) {
        if (a->p1 || a->p2 > 1)
            return SW_INCORRECT_P1P2;
        usage = TSE_WALLET_KEY_APP_BLOCK;
    } else {
        if (a->p1 || a->p2)
            return SW_INCORRECT_P1P2;
        usage = a->ins == WINS_APP_UNBLOCK ? TSE_WALLET_KEY_APP_UNBLOCK : TSE_WALLET_KEY_CARD_MAINT;
    }
    if (a->lc != 4) {
        take_challenge(p, (uint8_t[8]){0});
        return SW_WRONG_LENGTH;
    }
    uint16_t sw = sm_check(p, a, usage, NULL);
    if (sw != SW_NO_ERROR)
        return sw;
    if (a->ins == WINS_APP_UNBLOCK) {
        if (p->st[ST_STATUS] != APP_TEMP_BLOCK)
            return SW_CONDITIONS_NOT_SATISFIED;
        p->st[ST_STATUS] = APP_ACTIVE;
        p->st[ST_MACERR] = 0;
    } else if (a->ins == WINS_APP_BLOCK) {
        p->st[ST_STATUS] = a->p2 ? APP_PERM_BLOCK : APP_TEMP_BLOCK;
    } else {
        p->st[ST_STATUS] = APP_CARD_BLOCK;
    }
    end_session(p);
    return tse_sw_from_err(save_state(p));
}

static uint16_t update_binary_sm(struct purse *p, const struct tse_apdu *a)
{
    if (!(a->p1 & 0x80)) {
        take_challenge(p, (uint8_t[8]){0});
        return SW_COMMAND_NOT_ALLOWED_NO_EF;
    }
    uint8_t sfi = a->p1 & 0x1F;
    struct file f = file_of(p, sfi);
    if ((a->p1 & 0x60) || f.type == F_NONE || f.type != F_BINARY || !binary_personalised(p, sfi)) {
        take_challenge(p, (uint8_t[8]){0});
        return (a->p1 & 0x60)                             ? SW_INCORRECT_P1P2
               : f.type == F_CYCLIC || f.type == F_VARREC ? SW_COMMAND_INCOMPATIBLE
                                                          : SW_FILE_NOT_FOUND;
    }
    uint16_t sw = sm_check(p, a, TSE_WALLET_KEY_MAINT, NULL);
    if (sw != SW_NO_ERROR)
        return sw;
    size_t n = a->lc - 4;
    if (a->p2 >= f.size)
        return SW_WRONG_P1P2;
    if (a->p2 + n > f.size)
        return SW_WRONG_LENGTH;
    return tse_sw_from_err(tse_ctx_pmem_write(p->ctx, sfi, a->p2, a->data, n));
}

static uint16_t get_challenge(struct purse *p, const struct tse_apdu *a, struct tse_response *rsp)
{
    if (a->p1 || a->p2)
        return SW_INCORRECT_P1P2;
    if (a->lc || (a->ne != 4 && a->ne != 8))
        return SW_WRONG_LENGTH;
    if (tse_ctx_random(p->ctx, p->s->challenge, a->ne) != 0)
        return SW_UNKNOWN;
    p->s->challenge_len = (uint8_t)a->ne;
    return respond(rsp, p->s->challenge, a->ne);
}

/* ---- dispatch -----------------------------------------------------------------------------------
 */

/* Class kinds: 0 = 00, 1 = 04 (interindustry, SM), 2 = 80, 3 = 84 (proprietary, SM). */
struct cmd {
    uint8_t ins, cla_kind;
    bool keeps_session; /* reads may sit between INITIALIZE and DEBIT/CREDIT */
    bool when_blocked;  /* allowed while the application is temporarily blocked */
};

static const struct cmd cmds[] = {
    {WINS_SELECT, 0, false, true},       {WINS_READ_BINARY, 0, true, true},
    {WINS_READ_RECORD, 0, true, true},   {WINS_GET_CHALLENGE, 0, true, true},
    {WINS_VERIFY, 0, false, false},      {WINS_UPDATE_BINARY, 1, false, false},
    {WINS_GET_BALANCE, 2, true, true},   {WINS_INITIALIZE, 2, false, false},
    {WINS_CREDIT, 2, false, false},      {WINS_DEBIT, 2, false, false},
    {WINS_PROVE, 2, true, true},         {WINS_UPDATE_CAPP, 2, true, false},
    {WINS_PIN_CHANGE, 2, false, false},  {WINS_APP_BLOCK, 3, false, true},
    {WINS_APP_UNBLOCK, 3, false, true},  {WINS_CARD_BLOCK, 3, false, true},
    {WINS_PIN_UNBLOCK, 3, false, false},
};

static uint16_t dispatch(struct purse *p, const struct tse_apdu *a, const struct cmd *c,
                         struct tse_response *rsp)
{
    switch (c->ins) {
    case WINS_SELECT:
        return select_cmd(p, a, rsp);
    case WINS_READ_BINARY:
        return read_binary(p, a, rsp);
    case WINS_READ_RECORD:
        return read_record(p, a, rsp);
    case WINS_GET_CHALLENGE:
        return get_challenge(p, a, rsp);
    case WINS_VERIFY:
        return verify(p, a);
    case WINS_UPDATE_BINARY:
        return update_binary_sm(p, a);
    case WINS_GET_BALANCE:
        return get_balance(p, a, rsp);
    case WINS_INITIALIZE:
        return initialize(p, a, rsp);
    case WINS_CREDIT:
        return credit(p, a, rsp);
    case WINS_DEBIT:
        return debit(p, a, rsp);
    case WINS_PROVE:
        return prove(p, a, rsp);
    case WINS_UPDATE_CAPP:
        return update_capp(p, a);
    case WINS_PIN_CHANGE:
        return pin_change(p, a);
    case WINS_PIN_UNBLOCK:
        return pin_unblock(p, a);
    default:
        return block_cmd(p, a);
    }
}

static uint16_t wallet_process(struct tse_ctx *ctx, const struct tse_apdu *a,
                               struct tse_response *rsp)
{
    struct purse p;
    int rc = load_purse(ctx, &p, true);
    if (rc)
        return tse_sw_from_err(rc);
    struct tse_cla_info ci = tse_cla_decode(a->cla);
    uint8_t kind = (uint8_t)((ci.proprietary ? 2 : 0) | (ci.sm ? 1 : 0));
    const struct cmd *c = NULL;
    bool ins_known = false;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (cmds[i].ins == a->ins) {
            ins_known = true;
            if (cmds[i].cla_kind == kind)
                c = &cmds[i];
        }
    /* plain UPDATE BINARY: the files are written only under secure messaging */
    bool plain_update = !c && a->ins == WINS_UPDATE_BINARY && kind == 0;
    uint16_t sw;
    bool allowed = false;
    if (!c) {
        sw = plain_update ? SW_SECURITY_STATUS_NOT_SATISFIED
             : ins_known  ? SW_CLA_NOT_SUPPORTED
                          : SW_INS_NOT_SUPPORTED;
    } else if (p.st[ST_STATUS] == APP_PERM_BLOCK) {
        sw = SW_WALLET_APP_LOCKED;
    } else if (p.st[ST_STATUS] == APP_CARD_BLOCK) {
        sw = SW_FUNC_NOT_SUPPORTED;
    } else if (p.st[ST_STATUS] == APP_TEMP_BLOCK && !c->when_blocked) {
        sw = SW_FUNC_NOT_SUPPORTED;
    } else {
        allowed = true;
        sw = SW_NO_ERROR;
    }
    /* a challenge serves only the one command after GET CHALLENGE; commands under secure
     * messaging take it themselves */
    if (!(allowed && ((c->cla_kind & 1) || c->ins == WINS_GET_CHALLENGE)))
        take_challenge(&p, (uint8_t[8]){0});
    if (allowed) {
        if (!c->keeps_session && c->ins != WINS_CREDIT && c->ins != WINS_DEBIT)
            end_session(&p);
        sw = dispatch(&p, a, c, rsp);
        if (c->ins == WINS_CREDIT || c->ins == WINS_DEBIT ||
            (c->ins == WINS_UPDATE_CAPP && sw != SW_NO_ERROR))
            end_session(&p);
    }
    if (!c || p.st[ST_STATUS] != APP_ACTIVE)
        end_session(&p);
    p.s->selected = 0; /* only the SELECT that chose us may use it */
    if (sw != SW_NO_ERROR && (sw >> 8) != 0x62 && (sw >> 8) != 0x63)
        rsp->len = 0;
    return sw;
}

/* ---- personalisation ------------------------------------------------------------------------ */

#define DGI_KEY_ENTRY 19

/* Open a DEK-encrypted 16-byte value (or copy a clear one). */
static int perso_value(struct tse_ctx *ctx, bool enc, const uint8_t *in, uint8_t out[16])
{
    if (!enc) {
        memcpy(out, in, 16);
        return 0;
    }
    return tse_ctx_perso_decrypt(ctx, in, 16, out, 16);
}

static int key_upsert(uint8_t *keys, uint8_t usage, const uint8_t entry[4], const uint8_t key[16])
{
    int free_slot = -1;
    for (int i = 0; i < KEY_SLOTS; i++) {
        uint8_t *e = keys + i * KEY_ENTRY;
        if (e[0] == usage && e[1] == entry[0]) {
            free_slot = i;
            break;
        }
        if (!e[0] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        return TSE_ERR_NO_SPACE;
    uint8_t *e = keys + free_slot * KEY_ENTRY;
    e[0] = usage;
    memcpy(e + 1, entry, 3);
    memcpy(e + 4, key, 16);
    return 0;
}

static uint16_t perso_keys(struct purse *p, uint8_t *keys, uint16_t dgi, const uint8_t *v,
                           size_t len, bool enc)
{
    bool single = dgi == TSE_WALLET_DGI_LOAD2 || dgi == TSE_WALLET_DGI_LOAD2B;
    if (len == 0 || len % DGI_KEY_ENTRY || len / DGI_KEY_ENTRY > TSE_WALLET_KEY_USAGES ||
        (single && len != DGI_KEY_ENTRY))
        return SW_WRONG_DATA;
    for (size_t i = 0; i < len / DGI_KEY_ENTRY; i++) {
        const uint8_t *e = v + i * DGI_KEY_ENTRY;
        if (e[0] == 0)
            continue; /* no key at this position */
        uint8_t usage = single ? TSE_WALLET_KEY_LOAD : (uint8_t)(i + 1), key[16];
        if (perso_value(p->ctx, enc, e + 3, key))
            return SW_SECURITY_STATUS_NOT_SATISFIED;
        int rc = key_upsert(keys, usage, e, key);
        tse_wipe(key, sizeof(key));
        if (rc)
            return SW_FILE_FULL;
    }
    p->st[ST_PERSO] |= PERSO_KEYS;
    return SW_NO_ERROR;
}

/* A DGI that continues in the next STORE DATA block (transient, per interface session). */
#define RAM_PERSO     2
#define DGI_VALUE_MAX 320

struct perso_pending {
    uint16_t dgi, len, have; /* len 0: nothing pending */
    uint8_t v[DGI_VALUE_MAX];
};

struct dgi_ref {
    uint16_t dgi;
    const uint8_t *v;
    size_t len;
};

/* Check and apply complete DGIs: all of them or none (one transaction). */
static uint16_t apply_dgis(struct tse_ctx *ctx, const struct dgi_ref *d, size_t n, bool enc)
{
    struct purse p;
    int rc = load_purse(ctx, &p, false);
    if (rc)
        return tse_sw_from_err(rc);
    const uint8_t *kp;
    if (tse_ctx_pmem_get(ctx, OBJ_KEYS, 0, &kp, NULL) != 0)
        return SW_UNKNOWN;
    uint8_t keys[KEYS_LEN];
    memcpy(keys, kp, KEYS_LEN);
    bool keys_changed = false;
    uint8_t file_of_dgi[8] = {0};
    uint16_t sw = SW_NO_ERROR;
    for (size_t i = 0; sw == SW_NO_ERROR && i < n; i++) {
        const uint8_t *v = d[i].v;
        size_t len = d[i].len;
        switch (d[i].dgi) {
        case TSE_WALLET_DGI_EF15:
        case TSE_WALLET_DGI_EF16:
        case TSE_WALLET_DGI_EF17: {
            uint8_t sfi = (uint8_t)(0x14 + (d[i].dgi & 0x0F));
            if (len != file_of(&p, sfi).size || i >= sizeof(file_of_dgi)) {
                sw = SW_WRONG_DATA;
                break;
            }
            file_of_dgi[i] = sfi;
            p.st[ST_PERSO] |= sfi == 0x15 ? PERSO_EF15 : sfi == 0x16 ? PERSO_EF16 : PERSO_EF17;
            break;
        }
        case TSE_WALLET_DGI_KEYS1:
        case TSE_WALLET_DGI_KEYS2:
        case TSE_WALLET_DGI_LOAD2:
        case TSE_WALLET_DGI_LOAD2B:
            sw = perso_keys(&p, keys, d[i].dgi, v, len, enc);
            keys_changed = true;
            break;
        case TSE_WALLET_DGI_PIN: {
            uint8_t blk[16];
            if (len != 17) {
                sw = SW_WRONG_DATA;
                break;
            }
            if (perso_value(ctx, enc, v + 1, blk)) {
                sw = SW_SECURITY_STATUS_NOT_SATISFIED;
                break;
            }
            uint8_t l = blk[0], limit = v[0] ? v[0] : p.cfg[CFG_PIN_LIMIT];
            if (l < 2 || l > 6 || limit > 15) {
                tse_wipe(blk, sizeof(blk));
                sw = SW_WRONG_DATA;
                break;
            }
            p.st[ST_PIN_LIMIT] = limit;
            p.st[ST_PIN_TRIES] = limit;
            p.st[ST_PIN_LEN] = l;
            memset(p.st + ST_PIN, 0, 6);
            memcpy(p.st + ST_PIN, blk + 1, l);
            p.st[ST_PERSO] |= PERSO_PIN;
            tse_wipe(blk, sizeof(blk));
            break;
        }
        case TSE_WALLET_DGI_LIMITS:
            if (len != 7) {
                sw = SW_WRONG_DATA;
                break;
            }
            memcpy(p.st + ST_MAXBAL, v, 4);
            memcpy(p.st + ST_OD_LIMIT, v + 4, 3);
            p.st[ST_PERSO] |= PERSO_LIMITS;
            break;
        default:
            sw = SW_REFERENCED_DATA_NOT_FOUND;
            break;
        }
    }
    if (sw != SW_NO_ERROR) {
        tse_wipe(keys, sizeof(keys));
        return sw;
    }
    rc = tse_ctx_txn_begin(ctx);
    for (size_t i = 0; !rc && i < n && i < sizeof(file_of_dgi); i++)
        if (file_of_dgi[i])
            rc = tse_ctx_pmem_write(ctx, file_of_dgi[i], 0, d[i].v, d[i].len);
    if (!rc && keys_changed)
        rc = tse_ctx_pmem_write(ctx, OBJ_KEYS, 0, keys, KEYS_LEN);
    if (!rc)
        rc = save_state(&p);
    if (!rc)
        rc = tse_ctx_txn_commit(ctx);
    tse_wipe(keys, sizeof(keys));
    if (rc) {
        tse_ctx_txn_abort(ctx);
        return tse_sw_from_err(rc);
    }
    return SW_NO_ERROR;
}

/*
 * One STORE DATA command. Its complete DGIs are applied together; a DGI longer than the rest
 * of the block continues in the next block(s) (block number P2 + 1) and is applied with the
 * block that completes it. A block numbered 00 starts afresh.
 */
static uint16_t store_data(struct tse_ctx *ctx, const struct tse_apdu *a)
{
    if ((a->cla & 0x80) == 0 || a->ins != WINS_STORE_DATA)
        return a->ins == WINS_STORE_DATA ? SW_CLA_NOT_SUPPORTED : SW_INS_NOT_SUPPORTED;
    uint8_t encind = (a->p1 >> 5) & 3, structure = (a->p1 >> 3) & 3;
    bool last = (a->p1 & 0x80) != 0;
    if (structure == 2 || structure == 3 || encind == 2)
        return SW_WRONG_DATA; /* BER-TLV format and RFU codings are not used by the purse */
    uint8_t *m;
    int rc =
        tse_ctx_transient(ctx, RAM_PERSO, sizeof(struct perso_pending), TSE_CLEAR_ON_RESET, &m);
    if (rc)
        return tse_sw_from_err(rc);
    struct perso_pending *pend = (struct perso_pending *)(void *)m;
    if (a->p2 == 0)
        pend->len = pend->have = 0;
    struct dgi_ref d[8];
    size_t n = 0, off = 0;
    if (pend->len) { /* the continuation of a DGI */
        size_t take = pend->len - pend->have;
        if (take > a->lc)
            take = a->lc;
        if (take) /* no data: a->data is NULL */
            memcpy(pend->v + pend->have, a->data, take);
        pend->have = (uint16_t)(pend->have + take);
        off = take;
        if (pend->have == pend->len)
            d[n++] = (struct dgi_ref){pend->dgi, pend->v, pend->len};
    }
    uint16_t sw = SW_NO_ERROR;
    size_t split_at = 0, split_len = 0;
    uint16_t split_dgi = 0;
    while (off < a->lc) {
        size_t hdr = 3, len;
        if (a->lc - off < 3 || n >= sizeof(d) / sizeof(d[0])) {
            sw = SW_WRONG_DATA;
            break;
        }
        uint16_t dgi = get16(a->data + off);
        len = a->data[off + 2];
        if (len == 0xFF) {
            if (a->lc - off < 5) {
                sw = SW_WRONG_DATA;
                break;
            }
            len = get16(a->data + off + 3);
            hdr = 5;
        }
        if (len > a->lc - off - hdr) { /* continues in the next block */
            if (len > DGI_VALUE_MAX || last) {
                sw = SW_WRONG_DATA;
                break;
            }
            split_dgi = dgi;
            split_len = len;
            split_at = off + hdr;
            off = a->lc;
            break;
        }
        d[n++] = (struct dgi_ref){dgi, a->data + off + hdr, len};
        off += hdr + len;
    }
    if (sw == SW_NO_ERROR && last && pend->len && pend->have < pend->len)
        sw = SW_WRONG_DATA; /* the last block leaves a DGI unfinished */
    if (sw == SW_NO_ERROR && n)
        sw = apply_dgis(ctx, d, n, encind != 0);
    if (pend->have == pend->len || sw != SW_NO_ERROR) {
        tse_wipe(pend, sizeof(*pend));
    }
    if (sw == SW_NO_ERROR && split_len) {
        pend->dgi = split_dgi;
        pend->len = (uint16_t)split_len;
        pend->have = (uint16_t)(a->lc - split_at);
        memcpy(pend->v, a->data + split_at, pend->have);
    }
    return sw;
}

static uint16_t wallet_personalize(struct tse_ctx *ctx, const struct tse_apdu *a,
                                   struct tse_response *rsp)
{
    (void)rsp; /* the purse returns no data to STORE DATA */
    struct purse p;
    if (load_purse(ctx, &p, false) == 0 && p.st[ST_STATUS] >= APP_PERM_BLOCK)
        return p.st[ST_STATUS] == APP_PERM_BLOCK ? SW_WALLET_APP_LOCKED : SW_FUNC_NOT_SUPPORTED;
    return store_data(ctx, a);
}

/* ---- installation ------------------------------------------------------------------------------
 */

struct install_emit {
    struct tse_ctx *ctx;
    uint16_t sw;
};

static int install_emit(void *user, const uint8_t *cmd, size_t len)
{
    struct install_emit *ie = user;
    struct tse_apdu a;
    if (tse_apdu_parse(cmd, len, &a) != 0)
        return TSE_ERR_PARSE;
    ie->sw = store_data(ie->ctx, &a);
    return ie->sw == SW_NO_ERROR ? 0 : TSE_ERR_DENIED;
}

static uint16_t wallet_install(struct tse_ctx *ctx, const uint8_t *params, size_t len)
{
    uint8_t cfg[CFG_LEN] = {0};
    cfg[CFG_N18] = 10;
    cfg[CFG_N1E] = 30;
    cfg[CFG_N1A] = 4;
    cfg[CFG_N1F] = 0;
    cfg[CFG_PIN_LIMIT] = 3;
    cfg[CFG_MAC_LIMIT] = 3;
    cfg[CFG_LOAD_PIN] = 1;
    put16(cfg + CFG_FID, 0x1001);
    cfg[CFG_VERSION] = 0x02;
    uint8_t issuer[8] = {0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    const uint8_t *test_asn = NULL;

    const uint8_t *q = params;
    size_t left = params ? len : 0;
    struct tse_tlv t;
    int r;
    while ((r = tse_tlv_next(&q, &left, &t)) == 1) {
        if (t.constructed)
            return SW_WRONG_DATA;
        uint8_t v0 = t.len ? t.value[0] : 0;
        switch (t.tag) {
        case WCFG_TAG_N18:
        case WCFG_TAG_N1E:
        case WCFG_TAG_N1A:
        case WCFG_TAG_N1F:
        case WCFG_TAG_PIN_LIMIT:
        case WCFG_TAG_MAC_LIMIT:
        case WCFG_TAG_LOAD_PIN:
        case WCFG_TAG_VERSION: {
            static const uint8_t at[] = {CFG_N18,       CFG_N1E,       CFG_N1A,      CFG_N1F,
                                         CFG_PIN_LIMIT, CFG_MAC_LIMIT, CFG_LOAD_PIN, 0,
                                         CFG_VERSION};
            static const uint8_t lo[] = {1, 1, 1, 0, 1, 0, 0, 0, 0};
            static const uint8_t hi[] = {255, 255, 16, 255, 15, 255, 1, 0, 255};
            size_t i = t.tag - WCFG_TAG_N18;
            if (t.len != 1 || v0 < lo[i] || v0 > hi[i])
                return SW_WRONG_DATA;
            cfg[at[i]] = v0;
            break;
        }
        case WCFG_TAG_ADF_FID:
            if (t.len != 2)
                return SW_WRONG_DATA;
            memcpy(cfg + CFG_FID, t.value, 2);
            break;
        case WCFG_TAG_ISSUER:
            if (t.len != 8)
                return SW_WRONG_DATA;
            memcpy(issuer, t.value, 8);
            break;
        case WCFG_TAG_TEST_ASN:
            if (t.len != 10)
                return SW_WRONG_DATA;
            test_asn = t.value;
            break;
        default:
            return SW_WRONG_DATA;
        }
    }
    if (r < 0)
        return SW_WRONG_DATA;

    uint8_t st[ST_LEN] = {0};
    st[ST_PIN_LIMIT] = cfg[CFG_PIN_LIMIT];
    st[ST_PIN_TRIES] = cfg[CFG_PIN_LIMIT];
    put32(st + ST_MAXBAL, DEFAULT_MAX_BALANCE);
    const uint8_t *d;
    struct {
        uint16_t id;
        size_t size;
    } objs[] = {
        {OBJ_CFG, CFG_LEN},
        {OBJ_STATE, ST_LEN},
        {OBJ_KEYS, KEYS_LEN},
        {0x15, 30},
        {0x16, 55},
        {0x17, 60},
        {0x18, (size_t)cfg[CFG_N18] * REC18_LEN},
        {0x1A, (size_t)cfg[CFG_N1A] * SLOT1A_LEN},
        {0x1E, (size_t)cfg[CFG_N1E] * REC1E_LEN},
        {0x1F, (size_t)cfg[CFG_N1F] * REC18_LEN},
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(objs) / sizeof(objs[0]); i++)
        if (objs[i].size)
            rc = tse_ctx_pmem_get(ctx, objs[i].id, objs[i].size, &d, NULL);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_CFG, 0, cfg, CFG_LEN);
    if (!rc)
        rc = tse_ctx_pmem_write(ctx, OBJ_STATE, 0, st, ST_LEN);
    if (rc)
        return tse_sw_from_err(rc);
    if (test_asn) {
        /* a test card: personalised at once with the documented test data (docs/wallet.md) */
        struct tse_wallet_perso perso;
        struct install_emit ie = {ctx, SW_NO_ERROR};
        if (tse_wallet_perso_test(&perso, issuer, test_asn) != 0)
            return SW_UNKNOWN;
        rc = tse_wallet_perso_store_data(&perso, NULL, NULL, install_emit, &ie);
        tse_wipe(&perso, sizeof(perso));
        if (rc)
            return ie.sw != SW_NO_ERROR ? ie.sw : SW_UNKNOWN;
    }
    return SW_NO_ERROR;
}

static bool wallet_select(struct tse_ctx *ctx)
{
    uint8_t *m;
    if (tse_ctx_transient(ctx, RAM_SESSION, sizeof(struct session), TSE_CLEAR_ON_DESELECT, &m))
        return false;
    ((struct session *)(void *)m)->selected = 1;
    return true;
}

static const struct tse_applet_ops wallet_ops = {
    .install = wallet_install,
    .select = wallet_select,
    .process = wallet_process,
    .personalize = wallet_personalize,
};

static const uint8_t pkg_aid[] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01};
static const uint8_t ep_aid[] = {0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05};

static const struct tse_module_def wallet_modules[] = {
    {"ep", ep_aid, sizeof(ep_aid), 0, &wallet_ops},
};

const struct tse_package_def tse_wallet_package = {
    "tse.wallet", pkg_aid, sizeof(pkg_aid), 1, 0, wallet_modules, 1,
};
