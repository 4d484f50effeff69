/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file wallet.h
 * @brief The JT/T 978 transit electronic purse: its cryptography, the terminal's PSAM, a
 *        terminal that drives a purse through any transport, and the issuer's
 *        personalisation data (docs/wallet.md).
 *
 * The card side is a native applet (package A0000006320101, module A000000632010105) that
 * never appears here: it is reached with APDUs. This header is the *host* side, shared by the
 * tests, apdu-shell's `wallet` commands and, later, the gate reader and the TSM:
 *
 *  - purse cryptography (§4 of the spec page): session keys, the single-DES MAC used for
 *    MAC1/MAC2/TAC, the TAC key, two-level key diversification, the secure-messaging MAC;
 *  - struct tse_psam: the terminal's secure access module. It holds issuer master keys,
 *    derives the card keys, computes MAC1 and checks MAC2 for purchases (PSAM 8070/8072),
 *    checks a load's MAC1 and computes its MAC2 (the load host's work), and verifies TACs;
 *  - struct tse_wallet_term: a terminal that runs whole transactions (balance, load,
 *    purchase, compound entry/exit, logs, proofs) over a caller-supplied transmit function;
 *  - struct tse_wallet_perso: the issuer's personalisation data and the STORE DATA (DGI)
 *    commands that carry it to an instance.
 *
 * All amounts are in fen (0.01 CNY), unsigned 32-bit; dates BCD YYYYMMDD, times BCD hhmmss.
 * Functions return 0 or a negative enum tse_err; nothing here keeps static state.
 */
#ifndef TSE_WALLET_H
#define TSE_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Identifiers ---------------------------------------------------------------------- */

/** Package, module and the T-Union EP AID prefix every instance AID starts with. */
#define TSE_WALLET_PACKAGE_AID    "A0000006320101"
#define TSE_WALLET_MODULE_AID     "A000000632010105"
#define TSE_WALLET_AID_PREFIX_LEN 8

/** Transaction type identifiers (交易类型标识) used in MACs, TACs and the logs. */
#define TSE_WALLET_TT_ED_LOAD  0x01u
#define TSE_WALLET_TT_EP_LOAD  0x02u
#define TSE_WALLET_TT_PURCHASE 0x06u
#define TSE_WALLET_TT_CAPP     0x09u

/** Key usages: the position of a key in the key-set DGIs B0A0/B1A0 (1-based). */
enum tse_wallet_key_usage {
    TSE_WALLET_KEY_CARD_MASTER = 1, /**< card master key (stored, not used by the purse) */
    TSE_WALLET_KEY_CARD_MAINT = 2,  /**< card maintenance key: CARD BLOCK */
    TSE_WALLET_KEY_APP_MASTER = 3,  /**< application master key (stored only) */
    TSE_WALLET_KEY_MAINT = 4,       /**< DAMK: secure-messaging writes of files 0x15-0x17 */
    TSE_WALLET_KEY_PURCHASE = 5,    /**< DPK: purchase and compound purchase */
    TSE_WALLET_KEY_LOAD = 6,        /**< DLK: load */
    TSE_WALLET_KEY_TAC = 7,         /**< DTK: transaction authentication codes */
    TSE_WALLET_KEY_APP_BLOCK = 8,   /**< DABK: APPLICATION BLOCK */
    TSE_WALLET_KEY_PIN = 9,         /**< PIN unblock / reload */
    TSE_WALLET_KEY_IRK_CASH = 10,   /**< interoperability record keys (stored only) */
    TSE_WALLET_KEY_IRK_EP = 11,
    TSE_WALLET_KEY_IRK_SPARE = 12,
    TSE_WALLET_KEY_APP_UNBLOCK = 13, /**< DAUK: APPLICATION UNBLOCK */
    TSE_WALLET_KEY_RFU14 = 14,
    TSE_WALLET_KEY_RFU15 = 15,
};
#define TSE_WALLET_KEY_USAGES 15

/* ---- Purse cryptography (spec §4) --------------------------------------------------------- */

/**
 * The purse MAC: single-DES CBC, zero IV, over data ‖ 80 00.. (always padded), leftmost
 * 4 bytes of the last block. Used for MAC1, MAC2 and (with the TAC key) the TAC.
 * @retval 0; TSE_ERR_NO_MEMORY
 */
int tse_wallet_mac(const uint8_t key8[8], const uint8_t *data, size_t len, uint8_t mac[4]);

/** Session key: 2-key 3DES-ECB of one 8-byte block; the result is a single-DES key. */
int tse_wallet_session_key(const uint8_t key[16], const uint8_t in[8], uint8_t sk[8]);

/** TAC key = left half XOR right half of the DTK. */
void tse_wallet_tac_key(const uint8_t dtk[16], uint8_t key8[8]);

/**
 * Two-level diversification of an issuer master key into the key stored on one card:
 * level 1 with the 8-byte issuer identifier (file 0x15 bytes 0-7), level 2 with the last
 * 8 bytes of the application serial number; each level is DK = 3DES(K, F) ‖ 3DES(K, NOT F).
 * (The spec leaves the order open; docs/wallet.md records this choice.)
 */
int tse_wallet_diversify(const uint8_t master[16], const uint8_t issuer_id[8],
                         const uint8_t asn8[8], uint8_t card_key[16]);

/**
 * Secure-messaging MAC (line protection; APPLICATION BLOCK/UNBLOCK, CARD BLOCK, PIN UNBLOCK,
 * UPDATE BINARY 04D6): ISO 9797-1 algorithm 3 with a 16-byte key, IV = the card's challenge
 * (4 or 8 bytes) padded with zeros to 8, over `data` (CLA INS P1 P2 Lc ‖ command data
 * without the MAC) padded 80 00.., leftmost 4 bytes.
 * @retval TSE_ERR_INVALID_ARG challenge length not 4 or 8
 */
int tse_wallet_sm_mac(const uint8_t key[16], const uint8_t *challenge, size_t clen,
                      const uint8_t *data, size_t len, uint8_t mac[4]);

/** One purse transaction as both sides see it: the values that enter its MACs and TAC. */
struct tse_wallet_txn {
    uint8_t type;       /**< TSE_WALLET_TT_* */
    uint32_t amount;    /**< fen */
    uint8_t term_id[6]; /**< terminal number (BCD) */
    uint8_t rand[4];    /**< the card's pseudo-random number from INITIALIZE */
    uint16_t seq;       /**< the card's counter from INITIALIZE (before the increment) */
    uint32_t term_seq;  /**< terminal transaction sequence number (purchases) */
    uint32_t balance;   /**< balance returned by INITIALIZE (before the transaction) */
    uint8_t date[4];    /**< BCD YYYYMMDD */
    uint8_t time[3];    /**< BCD hhmmss */
};

/** Purchase: SK = 3DES(DPK, rand ‖ seq ‖ term_seq[2..3]). */
int tse_wallet_purchase_sk(const uint8_t dpk[16], const struct tse_wallet_txn *t, uint8_t sk[8]);
/** Purchase MAC1 = MAC(SK, amount ‖ type ‖ term_id ‖ date ‖ time). */
int tse_wallet_purchase_mac1(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4]);
/** Purchase MAC2 = MAC(SK, amount). */
int tse_wallet_purchase_mac2(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4]);
/** Purchase TAC = MAC(DTK_L ⊕ DTK_R, amount ‖ type ‖ term_id ‖ term_seq ‖ date ‖ time). */
int tse_wallet_purchase_tac(const uint8_t dtk[16], const struct tse_wallet_txn *t, uint8_t tac[4]);
/** Load: SK = 3DES(DLK, rand ‖ seq ‖ 8000). */
int tse_wallet_load_sk(const uint8_t dlk[16], const struct tse_wallet_txn *t, uint8_t sk[8]);
/** Load MAC1 = MAC(SK, balance ‖ amount ‖ type ‖ term_id). */
int tse_wallet_load_mac1(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4]);
/** Load MAC2 = MAC(SK, amount ‖ type ‖ term_id ‖ date ‖ time). */
int tse_wallet_load_mac2(const uint8_t sk[8], const struct tse_wallet_txn *t, uint8_t mac[4]);
/** Load TAC = MAC(DTK_L ⊕ DTK_R, balance+amount ‖ seq ‖ amount ‖ type ‖ term_id ‖ date ‖ time). */
int tse_wallet_load_tac(const uint8_t dtk[16], const struct tse_wallet_txn *t, uint8_t tac[4]);

/* ---- The card as a terminal knows it ------------------------------------------------------ */

/** What a terminal reads from file 0x15 (or the FCI's 9F0C). */
struct tse_wallet_card {
    uint8_t ef15[30];
    uint8_t issuer_id[8]; /**< bytes 0-7 */
    uint8_t app_type;     /**< byte 8 */
    uint8_t app_version;  /**< byte 9 */
    uint8_t asn[10];      /**< bytes 10-19, application serial number (BCD) */
    uint8_t start[4], end[4];
};

/** Decode the 30 bytes of file 0x15. @retval TSE_ERR_INVALID_ARG len != 30 */
int tse_wallet_card_parse(struct tse_wallet_card *c, const uint8_t *ef15, size_t len);

/* ---- PSAM ------------------------------------------------------------------------------- */

#define TSE_PSAM_MAX_KEYS 32

/** One issuer master key held by the PSAM. */
struct tse_psam_key {
    uint8_t usage; /**< enum tse_wallet_key_usage */
    uint8_t index; /**< key index as named in INITIALIZE (1..255) */
    uint8_t key[16];
};

/** The terminal's secure access module. Initialise with tse_psam_init(), wipe with
 *  tse_psam_free(). Not thread-safe; one per terminal. */
struct tse_psam {
    struct tse_psam_key keys[TSE_PSAM_MAX_KEYS];
    size_t n_keys;
    uint8_t term_id[6]; /**< the terminal number this PSAM answers for */
    uint32_t term_seq;  /**< next terminal transaction sequence number */
};

/** One transaction in the PSAM: filled by the *_begin calls, read by the checks. */
struct tse_psam_txn {
    struct tse_wallet_txn t;
    uint8_t key_index;
    uint8_t sk[8];
    bool ready; /**< a session key is present */
};

/** Empty PSAM with terminal number 000000000001 and sequence 1. */
void tse_psam_init(struct tse_psam *p);
/** Wipe every key. */
void tse_psam_free(struct tse_psam *p);
/** Set the terminal number and the next terminal sequence number. */
void tse_psam_set_terminal(struct tse_psam *p, const uint8_t term_id[6], uint32_t next_seq);
/**
 * Add (or replace) the master key of (usage, index).
 * @retval TSE_ERR_INVALID_ARG usage outside 1..15 or index 0
 * @retval TSE_ERR_NO_SPACE TSE_PSAM_MAX_KEYS keys already held
 */
int tse_psam_add_master(struct tse_psam *p, uint8_t usage, uint8_t index, const uint8_t key[16]);
/**
 * Load the documented *test* master key set (docs/wallet.md): for every usage u (1..15),
 * index 01, the key bytes (u << 4 | i) for i = 0..15 (DPK = 505152…5F). Never for real cards.
 */
int tse_psam_load_test_keys(struct tse_psam *p);
/**
 * The key a card holds for (usage, index): the master diversified with the card's issuer
 * identifier and ASN. When no master of that index exists, the usage's first master is
 * used for the TAC key (usage 7) only.
 * @retval TSE_ERR_NOT_FOUND no master key for it
 */
int tse_psam_card_key(const struct tse_psam *p, const struct tse_wallet_card *card, uint8_t usage,
                      uint8_t index, uint8_t key[16]);

/**
 * Purchase, first half (PSAM 8070): x->t must hold type, amount, rand, seq, balance, date,
 * time and x->key_index; the PSAM sets x->t.term_id and x->t.term_seq (taking the next
 * sequence number), derives the session key and returns MAC1.
 * @retval TSE_ERR_NOT_FOUND no purchase master key of that index
 */
int tse_psam_purchase_begin(struct tse_psam *p, const struct tse_wallet_card *card,
                            struct tse_psam_txn *x, uint8_t mac1[4]);
/** Purchase, second half (PSAM 8072): check the card's MAC2.
 * @retval TSE_ERR_DENIED MAC2 wrong; TSE_ERR_STATE no session key in x */
int tse_psam_purchase_check_mac2(const struct tse_psam_txn *x, const uint8_t mac2[4]);
/**
 * Load, first half (the load host): x->t holds type, amount, term_id, rand, seq, balance and
 * x->key_index; derive the session key and check the card's MAC1.
 * @retval TSE_ERR_DENIED MAC1 wrong (x is not ready); TSE_ERR_NOT_FOUND no load master key
 */
int tse_psam_load_begin(struct tse_psam *p, const struct tse_wallet_card *card,
                        struct tse_psam_txn *x, const uint8_t mac1[4]);
/** Load, second half: MAC2 over x->t (date and time set by the caller). TSE_ERR_STATE not ready */
int tse_psam_load_mac2(const struct tse_psam_txn *x, uint8_t mac2[4]);
/**
 * Verify a TAC for the transaction in x (purchase, compound purchase or load) with the
 * card's DTK.
 * @retval TSE_ERR_DENIED wrong TAC; TSE_ERR_NOT_FOUND no TAC master key
 */
int tse_psam_check_tac(const struct tse_psam *p, const struct tse_wallet_card *card,
                       const struct tse_psam_txn *x, const uint8_t tac[4]);

/* ---- Terminal --------------------------------------------------------------------------- */

/**
 * How the terminal reaches the card: send capdu, receive the R-APDU (data ‖ SW1 SW2).
 * Return 0, or a tse_err (TSE_ERR_TORN when the card lost power) that aborts the operation.
 */
typedef int (*tse_wallet_transmit_fn)(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                                      size_t rcap, size_t *rlen);

/** One record for UPDATE CAPP DATA CACHE (80 DC P1 P2). */
struct tse_wallet_capp_rec {
    uint8_t sfi;       /**< 0x1A (record by identifier) or 0x1E (cyclic, appended) */
    uint8_t record_id; /**< P1: the record identifier for 0x1A, 00 for 0x1E */
    uint8_t data[128];
    size_t len;
};

/** Where a gate stands (entry/exit helpers build the 0x1A and 0x1E records from it). */
struct tse_wallet_gate {
    uint8_t city[2];        /**< BCD city code, e.g. 1000 */
    uint8_t institution[8]; /**< acquirer institution id, e.g. 01011000FFFFFFFF */
    uint8_t line;           /**< BCD line */
    uint8_t station[2];     /**< BCD station */
    uint8_t rail_record_id; /**< P1 / record identifier of the rail record (default 0x12) */
};

/** Outcome of one transaction. */
struct tse_wallet_result {
    uint32_t balance_before, balance_after;
    uint16_t seq;      /**< card counter used (before its increment) */
    uint32_t term_seq; /**< purchases */
    uint8_t mac2[4], tac[4];
    bool tac_ok; /**< the PSAM verified the TAC */
};

struct tse_wallet_term {
    struct tse_psam *psam;
    tse_wallet_transmit_fn transmit;
    void *user;
    struct tse_wallet_card card; /**< from SELECT (9F0C) or READ BINARY 0x15 */
    bool have_card;
    uint8_t key_index; /**< key index sent in INITIALIZE (default 01) */
    uint8_t date[4];   /**< date and time of the next transaction (BCD) */
    uint8_t time[3];
    uint8_t pin[6]; /**< PIN sent before a load when pin_len > 0 */
    size_t pin_len;
    uint16_t sw;              /**< status word of the last command */
    const char *step;         /**< name of the command that failed last (for messages) */
    struct tse_psam_txn last; /**< the last transaction started (for GET TRANSACTION PROVE) */
    uint8_t rbuf[300];
    size_t rlen;
};

/**
 * Initialise a terminal over `transmit`. The PSAM stays owned by the caller.
 * Defaults: key index 01, date 20240101 time 000000, no PIN.
 * Operation functions below return:
 * @retval 0 success
 * @retval TSE_ERR_STATE the card answered an unexpected status word (t->sw, t->step)
 * @retval TSE_ERR_PARSE the card's response has the wrong length or format
 * @retval TSE_ERR_DENIED the PSAM rejected the card's MAC1 (load), MAC2 or TAC
 * @retval TSE_ERR_NOT_FOUND the PSAM has no master key for the card (or a record is absent)
 * @retval other what transmit returned (e.g. TSE_ERR_TORN)
 */
void tse_wallet_term_init(struct tse_wallet_term *t, struct tse_psam *psam,
                          tse_wallet_transmit_fn transmit, void *user);
void tse_wallet_term_free(struct tse_wallet_term *t);
/** Date and time (BCD) for the next transactions. */
void tse_wallet_term_set_time(struct tse_wallet_term *t, const uint8_t date[4],
                              const uint8_t time[3]);
/** SELECT by AID (a prefix selects the first match) and take file 0x15 from the FCI. */
int tse_wallet_term_select(struct tse_wallet_term *t, const uint8_t *aid, size_t len);
/** READ BINARY of file 0x15 into t->card (for a purse selected by someone else). */
int tse_wallet_term_read_card(struct tse_wallet_term *t);
/** GET BALANCE (P1 00: spendable, overdraft allowance included). */
int tse_wallet_term_balance(struct tse_wallet_term *t, uint32_t *balance);
/** VERIFY PIN. SW 63Cx/6983 give TSE_ERR_STATE with t->sw. */
int tse_wallet_term_verify_pin(struct tse_wallet_term *t, const uint8_t *pin, size_t len);
/** Load `amount` (VERIFY PIN first when t->pin_len): INITIALIZE FOR LOAD, MAC1 check,
 *  CREDIT FOR LOAD, TAC check. */
int tse_wallet_term_load(struct tse_wallet_term *t, uint32_t amount, struct tse_wallet_result *r);
/** Purchase: INITIALIZE FOR PURCHASE, PSAM MAC1, DEBIT, MAC2 and TAC checks. */
int tse_wallet_term_purchase(struct tse_wallet_term *t, uint32_t amount,
                             struct tse_wallet_result *r);
/** Compound purchase: INITIALIZE FOR CAPP PURCHASE, one UPDATE CAPP DATA CACHE per record,
 *  DEBIT FOR CAPP PURCHASE, checks. */
int tse_wallet_term_capp_purchase(struct tse_wallet_term *t, uint32_t amount,
                                  const struct tse_wallet_capp_rec *recs, size_t n,
                                  struct tse_wallet_result *r);
/** Entry gate: compound purchase of 0 writing the rail record (status 01 entered) and a
 *  0x1E record of type 03. */
int tse_wallet_term_entry(struct tse_wallet_term *t, const struct tse_wallet_gate *g,
                          struct tse_wallet_result *r);
/** Exit gate: compound purchase of `fare` writing the rail record (status 02 exited) and a
 *  0x1E record of type 04. */
int tse_wallet_term_exit(struct tse_wallet_term *t, const struct tse_wallet_gate *g, uint32_t fare,
                         struct tse_wallet_result *r);
/**
 * GET TRANSACTION PROVE for (type, seq) where seq is the counter *after* the transaction.
 * @retval 0 mac2/tac filled; TSE_ERR_NOT_FOUND the card answered 9406 (no such transaction)
 */
int tse_wallet_term_prove(struct tse_wallet_term *t, uint8_t type, uint16_t seq, uint8_t mac2[4],
                          uint8_t tac[4]);
/**
 * READ RECORD `rec` (1 = newest in cyclic files) of file `sfi`, by number.
 * @retval 0 *len set; TSE_ERR_NOT_FOUND 6A83 (no such record)
 */
int tse_wallet_term_read_record(struct tse_wallet_term *t, uint8_t sfi, uint8_t rec, uint8_t *out,
                                size_t cap, size_t *len);

/** Build the 48-byte 0x1E process record (spec §2.5). */
void tse_wallet_record_1e(uint8_t out[48], uint8_t kind, const uint8_t term_id[6],
                          const struct tse_wallet_gate *g, uint32_t amount, uint32_t balance_after,
                          const uint8_t date[4], const uint8_t time[3]);

/* ---- Personalisation (issuer side) ---------------------------------------------------- */

/** One key of a key-set DGI entry (19 bytes on the wire: index, version, algorithm, key). */
struct tse_wallet_key_entry {
    uint8_t index;   /**< 00 = no key at this position */
    uint8_t version; /**< returned by INITIALIZE */
    uint8_t alg;     /**< algorithm identifier returned by INITIALIZE (00 = 3DES) */
    uint8_t key[16];
};

/** Everything the issuer puts into one purse instance. Zero-initialise, then fill. */
struct tse_wallet_perso {
    uint8_t ef15[30], ef16[55], ef17[60];
    bool have15, have16, have17;
    /** Key sets 1 (DGI B0A0) and 2 (DGI B1A0): entry u-1 holds the key of usage u. */
    struct tse_wallet_key_entry set[2][TSE_WALLET_KEY_USAGES];
    /** A second load key of set 1 (DGI B0A5) and of set 2 (DGI B1A5); index 00 = none. */
    struct tse_wallet_key_entry load2[2];
    uint8_t pin[6]; /**< reference PIN (BCD bytes), pin_len 2..6, DGI B0B0 */
    size_t pin_len;
    uint8_t pin_tries; /**< try limit (0 = the instance's configured limit) */
    bool have_limits;  /**< DGI B0C0 */
    uint32_t max_balance;
    uint32_t overdraft;
};

/** DGIs of the purse (docs/wallet.md has their layouts). */
#define TSE_WALLET_DGI_EF15   0xB001u
#define TSE_WALLET_DGI_EF16   0xB002u
#define TSE_WALLET_DGI_EF17   0xB003u
#define TSE_WALLET_DGI_KEYS1  0xB0A0u
#define TSE_WALLET_DGI_KEYS2  0xB1A0u
#define TSE_WALLET_DGI_LOAD2  0xB0A5u
#define TSE_WALLET_DGI_LOAD2B 0xB1A5u
#define TSE_WALLET_DGI_PIN    0xB0B0u
#define TSE_WALLET_DGI_LIMITS 0xB0C0u

/**
 * A test card: file 0x15 = issuer_id ‖ 02 01 ‖ asn ‖ 20240101 ‖ 20341231 ‖ 0000, anonymous
 * 0x16, 0x17 = 00000156 ‖ 0x15's province and city ‖ 0001 (interoperable) ‖ 01 ‖ 20.., key
 * set 1 = the PSAM test masters (tse_psam_load_test_keys) diversified for this card at index
 * 01, version 01, algorithm 00; PIN 123456; limits 1000.00 / 0.
 */
int tse_wallet_perso_test(struct tse_wallet_perso *p, const uint8_t issuer_id[8],
                          const uint8_t asn[10]);

/** Encrypt `len` bytes (a multiple of 16) with the data encryption key (e.g.
 *  tse_scp_host_encrypt_data()). Return 0 or a tse_err. */
typedef int (*tse_wallet_encrypt_fn)(void *user, const uint8_t *in, size_t len, uint8_t *out);
/** Receive one plain STORE DATA command (80 E2 P1 P2 Lc data). Return 0 or a tse_err. */
typedef int (*tse_wallet_emit_fn)(void *user, const uint8_t *cmd, size_t len);

/**
 * Build the STORE DATA sequence for `p` (docs/wallet.md, "The sequence the card manager sends"):
 * each DGI present (B001, B002, B003, B0A0, B1A0, B0A5, B1A5, B0B0, B0C0) starts a command of its
 * own and continues in the next ones when it is longer than 239 bytes (so SCP03 C-DEC padding
 * and a C-MAC still fit a short APDU); P2 = 00, 01, …; P1 = 08 (DGI format), | 80 on the last.
 * With `enc` each 16-byte key value and the PIN block are encrypted and P1 carries 60
 * (encrypted with the DEK); without it they go in clear.
 * @retval 0; TSE_ERR_INVALID_ARG nothing to personalise; errors of enc/emit are passed on
 */
int tse_wallet_perso_store_data(const struct tse_wallet_perso *p, tse_wallet_encrypt_fn enc,
                                void *enc_user, tse_wallet_emit_fn emit, void *emit_user);

#ifdef __cplusplus
}
#endif

#endif
