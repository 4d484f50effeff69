/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file pn532.h
 * @brief A simulated NXP PN532 as libnfc's `pn532_uart` driver sees it: host framing and the
 * command set libnfc 1.8.0 uses, as an initiator (a reader with cards in its field) and as
 * an ISO 14443-4A PICC emulator (target mode).
 *
 * The chip is a state machine fed with the bytes the host writes
 * (tse_pn532_input()). It answers through callbacks: every command is acknowledged at once
 * (ACK frame), its answer follows at once or later. What is "in the field" is not the chip's
 * business: in initiator mode it asks its owner to poll, exchange and deselect; in target
 * mode its owner plays the reader (tse_pn532_tg_activate(), _tg_deliver(), _tg_release()).
 * tools/tse-pn532sim (src/io/pn532sim.c) puts chips on pseudo-terminals.
 *
 * Nothing the chip sends can crash a libnfc 1.8.0 client: status bytes never have bit 0x80
 * (libnfc aborts on NAD), answers never carry more than 264 bytes after the command code,
 * an R-APDU is at most 263 bytes, TgInitAsTarget answers carry a byte after the mode byte,
 * and ATS lengths are consistent (../shared/spec/contactless.md §5, §6).
 *
 * Not thread-safe: one thread drives a chip and its callbacks.
 */
#ifndef TSE_PN532_H
#define TSE_PN532_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/airtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Host framing (UM0701 §6.2) ------------------------------------------------------- */

#define TSE_PN532_TFI_HOST 0xD4 /**< frame identifier host -> chip */
#define TSE_PN532_TFI_CHIP 0xD5 /**< chip -> host */
/** Most bytes after TFI in one frame: a chip answer of CC + 264 bytes, the most libnfc reads
 * (host frames carry at most 264 with the command code). */
#define TSE_PN532_MAX_DATA 265
/** Longest frame: 00 00 FF FF FF LENm LENl LCS TFI <265> DCS 00. */
#define TSE_PN532_MAX_FRAME (TSE_PN532_MAX_DATA + 11)
/** Longest C-APDU libnfc 1.8.0 sends through InDataExchange without overflowing. */
#define TSE_PN532_MAX_CAPDU 262
/** Longest R-APDU libnfc 1.8.0 accepts from InDataExchange or sends with TgSetData. */
#define TSE_PN532_MAX_RAPDU 263
/** Longest ATS (TL included) the chip reports for a card. */
#define TSE_PN532_MAX_ATS 64

enum tse_pn532_frame_type {
    TSE_PN532_FRAME_NONE = 0, /**< no complete frame yet */
    TSE_PN532_FRAME_INFO,     /**< a normal or extended information frame */
    TSE_PN532_FRAME_ACK,      /**< 00 00 FF 00 FF 00 (from the host: abort) */
    TSE_PN532_FRAME_NACK,     /**< 00 00 FF FF 00 00 (from the host: send the answer again) */
    TSE_PN532_FRAME_BAD,      /**< a frame with a bad length or data checksum */
};

/** One parsed frame. For INFO, data points into the parser and is valid until the next call. */
struct tse_pn532_frame {
    enum tse_pn532_frame_type type;
    uint8_t tfi;         /**< INFO: D4 (host) or D5 (chip); others possible (a syntax error) */
    const uint8_t *data; /**< INFO: the command code and its data */
    size_t len;          /**< INFO: 0..TSE_PN532_MAX_DATA (0: TFI only, as in the error frame) */
    bool extended;       /**< INFO: extended length form */
    const char *why;     /**< BAD: static text */
};

/** Incremental parser state; zero it with tse_pn532_parser_init(). */
struct tse_pn532_parser {
    int state;
    size_t len;  /**< LEN of the frame being read (TFI + data) */
    size_t have; /**< bytes of TFI + data + DCS read so far */
    uint8_t lenm;
    bool ext;                            /**< the frame being read has the extended form */
    uint8_t buf[TSE_PN532_MAX_DATA + 2]; /* TFI, data, DCS */
};

void tse_pn532_parser_init(struct tse_pn532_parser *p);

/**
 * Read bytes until one frame is complete or the input is used up. Bytes before a start
 * code (00 FF), such as preambles, postambles and the HSU wake-up sequence 55 55 00…, are
 * skipped. A frame whose LEN and LCS disagree or whose LEN is out of range is reported BAD
 * and the search restarts after the bytes read so far.
 * @return bytes consumed (<= len). f->type is NONE when more input is needed.
 */
size_t tse_pn532_parse(struct tse_pn532_parser *p, const uint8_t *in, size_t len,
                       struct tse_pn532_frame *f);

/**
 * Build an information frame: TFI then len bytes (command code + data), the extended form
 * when len > 254.
 * @retval >0 bytes written
 * @retval TSE_ERR_INVALID_ARG len is 0 or above TSE_PN532_MAX_DATA
 * @retval TSE_ERR_BUFFER_TOO_SMALL cap is too small (TSE_PN532_MAX_FRAME always suffices)
 */
int tse_pn532_build(uint8_t tfi, const uint8_t *data, size_t len, uint8_t *out, size_t cap);

extern const uint8_t tse_pn532_ack_frame[6];   /**< 00 00 FF 00 FF 00 */
extern const uint8_t tse_pn532_nack_frame[6];  /**< 00 00 FF FF 00 00 */
extern const uint8_t tse_pn532_error_frame[8]; /**< 00 00 FF 01 FF 7F 81 00 */

/* ---- Commands and status bytes (UM0701 §7) -------------------------------------------- */

enum tse_pn532_cmd {
    TSE_PN532_DIAGNOSE = 0x00,
    TSE_PN532_GET_FIRMWARE_VERSION = 0x02,
    TSE_PN532_GET_GENERAL_STATUS = 0x04,
    TSE_PN532_READ_REGISTER = 0x06,
    TSE_PN532_WRITE_REGISTER = 0x08,
    TSE_PN532_READ_GPIO = 0x0C,
    TSE_PN532_WRITE_GPIO = 0x0E,
    TSE_PN532_SET_PARAMETERS = 0x12,
    TSE_PN532_SAM_CONFIGURATION = 0x14,
    TSE_PN532_POWER_DOWN = 0x16,
    TSE_PN532_RF_CONFIGURATION = 0x32,
    TSE_PN532_IN_DATA_EXCHANGE = 0x40,
    TSE_PN532_IN_COMMUNICATE_THRU = 0x42,
    TSE_PN532_IN_DESELECT = 0x44,
    TSE_PN532_IN_LIST_PASSIVE_TARGET = 0x4A,
    TSE_PN532_IN_PSL = 0x4E,
    TSE_PN532_IN_ATR = 0x50,
    TSE_PN532_IN_RELEASE = 0x52,
    TSE_PN532_IN_SELECT = 0x54,
    TSE_PN532_IN_JUMP_FOR_DEP = 0x56,
    TSE_PN532_IN_AUTO_POLL = 0x60,
    TSE_PN532_TG_GET_DATA = 0x86,
    TSE_PN532_TG_GET_INITIATOR_COMMAND = 0x88,
    TSE_PN532_TG_INIT_AS_TARGET = 0x8C,
    TSE_PN532_TG_SET_DATA = 0x8E,
    TSE_PN532_TG_RESPONSE_TO_INITIATOR = 0x90,
};

#define TSE_PN532_ST_OK          0x00
#define TSE_PN532_ST_TIMEOUT     0x01 /**< the target did not answer */
#define TSE_PN532_ST_SMALLBUF    0x07 /**< answer too long for the chip's buffer */
#define TSE_PN532_ST_BAD_CONTEXT 0x27 /**< command not acceptable in the current state */
#define TSE_PN532_ST_RELEASED    0x29 /**< target mode: the initiator released the target */

/** Short name of a command code ("InDataExchange"), or NULL for an unknown one. */
const char *tse_pn532_cmd_name(uint8_t cc);

/* ---- The chip ---------------------------------------------------------------------- */

/** A type A card as a reader sees it after activation (ATS present with ISO 14443-4). */
struct tse_pn532_card_info {
    uint8_t atqa[2]; /**< as libnfc prints it (first byte first on the air's MSB side) */
    uint8_t sak;
    uint8_t uid[10];
    size_t uid_len; /**< 4, 7 or 10 */
    uint8_t ats[TSE_PN532_MAX_ATS];
    size_t ats_len; /**< TL included; 0: no ATS */
};

/** One completed InDataExchange, for logs: bytes, model and measured card time. */
struct tse_pn532_apdu_info {
    const uint8_t *c, *r;
    size_t clen, rlen;
    uint8_t status;              /**< PN532 status of the answer (0 = R-APDU delivered) */
    double card_us;              /**< wall time the card took (as measured by the owner) */
    struct tse_air_link link;    /**< link parameters used by the model */
    struct tse_air_exchange air; /**< modelled air time with card_us as processing time */
};

struct tse_pn532;

/**
 * What the chip needs from its owner. `output` is required; a NULL initiator callback means
 * "no card in the field", a NULL target callback is simply not called.
 */
struct tse_pn532_ops {
    /** Bytes for the host, in order. delay_us > 0: write them no earlier than that from now
     * (pacing from the air-time model), and never before bytes passed earlier. */
    void (*output)(void *user, const uint8_t *b, size_t len, double delay_us);
    /** Drop output not yet written and any delivery scheduled for the chip: the host sent
     * a new command or aborted. */
    void (*cancel)(void *user);
    /** Informative: a command frame arrived (cc, data length). */
    void (*command)(void *user, uint8_t cc, size_t len);

    /* Initiator mode: the chip is a reader. */
    /** RF field switched on or off. */
    void (*field)(void *user, bool on);
    /** Look for one type A card that answers REQA (not halted). 1: *card filled; 0: none. */
    int (*poll)(void *user, struct tse_pn532_card_info *card);
    /** The selected card is deselected (S(DESELECT), card goes to HALT) or released. */
    void (*deselect)(void *user);
    /**
     * Send a C-APDU to the selected card, no earlier than delay_us from now (the modelled
     * time of the command blocks). The owner calls tse_pn532_in_complete() with `token` when
     * the card has answered (it may do so from inside this callback).
     * @retval 0 accepted; <0 the card is gone (the host gets a timeout status)
     */
    int (*exchange)(void *user, const uint8_t *c, size_t clen, double delay_us, unsigned token);
    /** Informative: an exchange completed (for logs). */
    void (*apdu)(void *user, const struct tse_pn532_apdu_info *info);

    /* Target mode: the chip is a card emulator. */
    /** TgInitAsTarget: the chip now waits for a reader and will show itself as *as. */
    void (*tg_init)(void *user, const struct tse_pn532_card_info *as);
    /** TgSetData: the host's R-APDU for the reader. */
    void (*tg_response)(void *user, const uint8_t *r, size_t rlen);
    /** The host left target mode (abort, new command, InRelease, PowerDown). */
    void (*tg_gone)(void *user);
};

/**
 * Create a chip in its power-on state (field off, idle, registers zero).
 * @param pace 0: answer as soon as possible; s > 0: ask for s times the modelled air time
 *        as output delay (real-time pacing with s = 1).
 * @retval 0 and *chip; TSE_ERR_NO_MEMORY; TSE_ERR_INVALID_ARG (no output callback)
 */
int tse_pn532_new(struct tse_pn532 **chip, const struct tse_pn532_ops *ops, void *user,
                  double pace);
void tse_pn532_free(struct tse_pn532 *chip);

/** Feed bytes written by the host; answers go out through the callbacks. */
void tse_pn532_input(struct tse_pn532 *chip, const uint8_t *b, size_t len);

/**
 * The host line has been idle for a while (the owner decides; a frame from libnfc arrives in
 * one write): a partly received frame is dropped, as a UART receiver times out. Without this
 * a truncated frame with a large LEN would swallow the commands that follow it.
 */
void tse_pn532_line_idle(struct tse_pn532 *chip);

/**
 * The card answered the exchange `token` (see ops->exchange). status != 0 (a PN532 status,
 * e.g. TSE_PN532_ST_TIMEOUT) reports a failed exchange. A stale token (the host moved on) is
 * ignored. An R-APDU longer than TSE_PN532_MAX_RAPDU is answered with status
 * TSE_PN532_ST_SMALLBUF, as libnfc itself would conclude.
 */
void tse_pn532_in_complete(struct tse_pn532 *chip, unsigned token, uint8_t status, const uint8_t *r,
                           size_t rlen, double card_us);

/** Something entered the field: a pending InListPassiveTarget/InAutoPoll polls again. */
void tse_pn532_field_event(struct tse_pn532 *chip);

/** true when the RF field of an initiator-mode chip is on. */
bool tse_pn532_field_on(const struct tse_pn532 *chip);

/** Target-mode state, for the owner playing the reader. */
enum tse_pn532_tg_state {
    TSE_PN532_TG_NONE = 0, /**< not in target mode */
    TSE_PN532_TG_WAITING,  /**< TgInitAsTarget pending: waiting for a reader */
    TSE_PN532_TG_ACTIVE,   /**< activated (RATS answered), exchanging APDUs */
    TSE_PN532_TG_RELEASED, /**< the reader let go; the host has not noticed yet */
};
enum tse_pn532_tg_state tse_pn532_tg_state(const struct tse_pn532 *chip);

/**
 * A reader activates the waiting target (REQA … RATS with parameter byte `rats_param`,
 * e.g. 0x80 = FSD 256, CID 0). The chip answers the host's TgInitAsTarget and fills *as
 * with what the reader sees: UID 08 + 3 bytes from the host, the host's ATQA/SAK, and the
 * ATS the PN532 builds itself (TL 75 33 92 03 + the host's historical bytes).
 * @retval 0 success; TSE_ERR_STATE the chip is not waiting as a target
 */
int tse_pn532_tg_activate(struct tse_pn532 *chip, uint8_t rats_param,
                          struct tse_pn532_card_info *as);

/**
 * The reader sends a C-APDU (at most TSE_PN532_MAX_CAPDU bytes) to the active target: a
 * pending TgGetData is answered now, else the APDU waits for the next TgGetData.
 * @retval 0; TSE_ERR_STATE not active; TSE_ERR_INVALID_ARG too long
 */
int tse_pn532_tg_deliver(struct tse_pn532 *chip, const uint8_t *c, size_t clen);

/** The reader deselects, releases or switches its field off: a pending TgGetData answers
 * status 29 (libnfc: NFC_ETGRELEASED), or the next one will. No effect when not active. */
void tse_pn532_tg_release(struct tse_pn532 *chip);

#ifdef __cplusplus
}
#endif

#endif
