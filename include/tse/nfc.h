/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nfc.h
 * @brief libnfc on both sides of the air: a card's contactless interface served as an
 * ISO 14443-4A PICC through libnfc target mode (tse-card --nfc), and a reader session for
 * initiator tools that records every exchange with the modelled air time (tse-tap).
 *
 * These functions live in the separate library tse_nfc (link libnfc). They work on real
 * PN53x hardware and on tse-pn532sim (connstring pn532_uart:/dev/pts/N). docs/contactless.md
 * has the set-ups and the limits of libnfc 1.8.0 target mode.
 */
#ifndef TSE_NFC_H
#define TSE_NFC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tse/airtime.h"
#include "tse/card.h"
#include "tse/pn532.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Card side ---------------------------------------------------------------------- */

struct tse_nfc_target_options {
    const char *connstring;      /**< libnfc device; NULL: libnfc's default device */
    bool retry;                  /**< device missing or failing: retry every second */
    FILE *log;                   /**< messages and trace; NULL = stderr */
    bool trace;                  /**< log every APDU pair with the card's time */
    volatile sig_atomic_t *stop; /**< set (e.g. by a signal handler) to end serving */
};

/**
 * What a reader sees of the card through libnfc target mode on a PN532: UID 08 + three bytes
 * of the profile UID (its last three), the profile ATQA with the UID-size bits cleared, the
 * profile SAK with bit 0x20 (ISO 14443-4) set, and the ATS the chip builds:
 * TL 75 33 92 03 + the profile's historical bytes. Written to *as.
 * @retval 0; TSE_ERR_INVALID_ARG
 */
int tse_nfc_emulated_params(struct tse_card *card, struct tse_pn532_card_info *as);

/**
 * Serve the card's contactless interface through libnfc target mode until *stop is set:
 * wait for a reader (nfc_target_init), power the contactless interface on (a new session),
 * answer C-APDUs (nfc_target_receive_bytes / tse_card_transmit / nfc_target_send_bytes)
 * until the reader releases the card, power it off, and wait again. The contact interface is
 * not touched, so it can be served at the same time from another thread (tse_vpcd_serve).
 * An R-APDU longer than libnfc can send (TSE_PN532_MAX_RAPDU; only extended-length APDUs
 * produce one) is replaced by 6700 and logged.
 * @retval 0 stopped by *stop
 * @retval TSE_ERR_IO the device cannot be opened or failed (without retry); the message
 *         names the connstring
 * @retval TSE_ERR_NO_MEMORY libnfc could not be initialised
 */
int tse_nfc_serve(struct tse_card *card, const struct tse_nfc_target_options *opt);

/* ---- Reader side ---------------------------------------------------------------------- */

/** One recorded exchange of a tap. */
struct tse_tap_record {
    char label[32]; /**< from the caller, or the INS name ("SELECT") */
    uint8_t *c, *r; /**< the C-APDU and R-APDU (owned by the tap) */
    size_t clen, rlen;
    double wall_us;              /**< measured round trip through the transport */
    double card_us;              /**< card processing: exact in-process; else an estimate */
    double host_before_us;       /**< reader/PSAM time noted before this exchange */
    struct tse_air_exchange air; /**< modelled at the tap's rate, with card_us */
};

/** How card_us is derived from a libnfc round trip. */
enum tse_tap_device {
    TSE_TAP_DEV_SIM = 0,      /**< tse-pn532sim without pacing: card_us = wall time */
    TSE_TAP_DEV_PN532,        /**< real PN532 over UART: wall minus modelled HSU and air time */
    TSE_TAP_DEV_SIM_REALTIME, /**< tse-pn532sim --realtime (scale 1): wall minus modelled air */
};

/**
 * A reader of another kind (e.g. a PC/SC reader) for tse_tap_open(): the tap calls these
 * instead of libnfc. card_us of each exchange is then the measured round trip (an upper bound:
 * it includes the reader and its driver).
 */
struct tse_tap_transport {
    const char *name; /**< for the report, e.g. "PC/SC reader Virtual PCD 00 00" */
    void *user;
    /**
     * Power the card and connect to it, trying for up to wait_ms. Fill what is known of the
     * card (uid_len and ats_len may be 0: then activation is not modelled).
     * @retval 0; TSE_ERR_NOT_FOUND no card within wait_ms; TSE_ERR_IO reader error
     */
    int (*activate)(void *user, int wait_ms, struct tse_pn532_card_info *card);
    /**
     * One APDU exchange.
     * @retval 0 *rlen set; TSE_ERR_IO the card or the reader is gone;
     *         TSE_ERR_BUFFER_TOO_SMALL rcap too small; TSE_ERR_INVALID_ARG bad C-APDU
     */
    int (*transmit)(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                    size_t *rlen);
    /** Let the card go (it may be activated again). @retval 0; TSE_ERR_IO */
    int (*release)(void *user);
};

struct tse_tap_options {
    const char *connstring; /**< libnfc device (NULL: default device) … */
    struct tse_card *card;  /**< … or an in-process card (its contactless interface) … */
    const struct tse_tap_transport *transport; /**< … or another reader (it wins) */
    enum tse_air_rate rate; /**< bit rate of the model; 212/424 are also asked of libnfc */
    enum tse_tap_device device;
    int wait_ms;    /**< how long tse_tap_activate() looks for a card */
    int timeout_ms; /**< per exchange (libnfc); default 5000 */
};

struct tse_tap;

/**
 * Open the reader (libnfc: nfc_open + nfc_initiator_init), or take the in-process card or the
 * transport (nothing is opened for those).
 * @retval 0; TSE_ERR_IO the device cannot be opened (err says which); TSE_ERR_NO_MEMORY
 */
int tse_tap_open(struct tse_tap **tap, const struct tse_tap_options *opt, char *err, size_t errlen);
void tse_tap_close(struct tse_tap *tap);

/**
 * Look for a type A card for up to wait_ms and activate it (ISO 14443-4), starting a new
 * recording: records of a previous activation are dropped.
 * @retval 0 and *card (what the reader saw); TSE_ERR_NOT_FOUND no card within wait_ms;
 *         TSE_ERR_IO device error
 */
int tse_tap_activate(struct tse_tap *tap, struct tse_pn532_card_info *card);

/**
 * Exchange one APDU with the activated card and record it. label may be NULL (then the INS
 * name is used). Through libnfc the C-APDU is at most TSE_PN532_MAX_CAPDU bytes and the
 * R-APDU at most TSE_PN532_MAX_RAPDU.
 * @retval 0; TSE_ERR_POWERED_OFF not activated; TSE_ERR_IO the card did not answer (gone);
 *         TSE_ERR_INVALID_ARG too long; TSE_ERR_BUFFER_TOO_SMALL rcap too small
 */
int tse_tap_transmit(struct tse_tap *tap, const char *label, const uint8_t *c, size_t clen,
                     uint8_t *r, size_t rcap, size_t *rlen);

/** Note reader-side work (e.g. a PSAM computation) before the next exchange; it is shown
 * beside the card's time, never in it. Work noted after the last exchange of a recording
 * (e.g. checking the last MAC) counts too: the totals and the SVG end with it. */
void tse_tap_note_host(struct tse_tap *tap, double us);

/** Deselect the card (it may be activated again). */
int tse_tap_release(struct tse_tap *tap);

/** The card seen at the last activation and the link the model uses. */
const struct tse_pn532_card_info *tse_tap_card(const struct tse_tap *tap);
const struct tse_air_link *tse_tap_link(const struct tse_tap *tap);

/** Records since the last activation. */
const struct tse_tap_record *tse_tap_records(const struct tse_tap *tap, size_t *n);

/** Totals of the current recording at one rate. */
struct tse_tap_totals {
    double activation_us; /**< modelled activation (REQA .. ATS, SFGT) */
    double air_us;        /**< modelled air time of the exchanges */
    double card_us;       /**< card processing */
    double txn_us;        /**< typical transaction time: sum of exchange totals (first
                               command bit .. last response bit; activation excluded) */
    double host_us;       /**< reader-side work noted between exchanges and after the
                               last one (excluded) */
    double wall_us;       /**< measured round trips */
};
void tse_tap_totals(const struct tse_tap *tap, enum tse_air_rate rate, struct tse_tap_totals *t);

/** Print the exchanges and totals at 106/212/424/848 kbit/s (848: model only). */
void tse_tap_report(const struct tse_tap *tap, FILE *f);

/**
 * Write an SVG timeline of the recording (modelled time at the tap's rate: activation, then
 * for each exchange command blocks, card processing, response blocks).
 * @retval 0; TSE_ERR_IO cannot write path
 */
int tse_tap_svg(const struct tse_tap *tap, const char *path);

/** Short name of an INS byte for labels ("SELECT", "READ BINARY", …) or NULL. */
const char *tse_tap_ins_name(uint8_t cla, uint8_t ins);

#ifdef __cplusplus
}
#endif

#endif
