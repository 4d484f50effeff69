/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file airtime.h
 * @brief ISO/IEC 14443 type A air-time model: frame times, frame delay and waiting times,
 * activation and APDU exchanges at 106/212/424/848 kbit/s, and the PN532 host-link time.
 *
 * Every time is in microseconds (double). The model counts what a reader and a card put on
 * the air, at the minimum delays the standard allows; it never sleeps. Method and figures:
 * docs/contactless.md ("Air-time model").
 *
 *  - etu = 128 / (D * fc), fc = 13.56 MHz, D = 1/2/4/8 for 106/212/424/848 kbit/s;
 *  - a standard frame of n bytes (type A: 8 data bits + odd parity each, start and end
 *    bit) lasts (9n + 2) etu; REQA/WUPA are a 9-etu short frame;
 *  - the frame delay time between two frames, either way, is at least 1172/fc (86.4 us);
 *  - an ISO 14443-4 block is PCB [CID] INF CRC_A; a C-APDU longer than FSC - 3 bytes
 *    of INF is chained, each chained block answered by an R(ACK) (3 bytes), and the same
 *    for an R-APDU longer than FSD - 3;
 *  - FWT = 4096/fc * 2^FWI, SFGT = 4096/fc * 2^SFGI (SFGI 0: none).
 */
#ifndef TSE_AIRTIME_H
#define TSE_AIRTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Carrier frequency fc in Hz. */
#define TSE_AIR_FC_HZ 13560000.0

/** Bit rates, by their divisor D = 1 << rate. */
enum tse_air_rate {
    TSE_AIR_106 = 0,
    TSE_AIR_212 = 1,
    TSE_AIR_424 = 2,
    TSE_AIR_848 = 3,
};

/** kbit/s of a rate (106, 212, 424 or 848; 0 for an unknown value). */
unsigned tse_air_rate_kbps(enum tse_air_rate br);
/**
 * Parse "106", "212", "424" or "848".
 * @retval 0 *br set; TSE_ERR_INVALID_ARG anything else
 */
int tse_air_rate_parse(const char *s, enum tse_air_rate *br);

/** One elementary time unit: 128 / (D * fc). 9.44 us at 106 kbit/s. */
double tse_air_etu_us(enum tse_air_rate br);
/** A standard frame of n bytes (CRC included by the caller): (9n + 2) etu; 0 for n = 0. */
double tse_air_frame_us(size_t n, enum tse_air_rate br);
/** REQA/WUPA short frame: 9 etu at 106 kbit/s (85 us). */
double tse_air_short_frame_us(void);
/** Minimum frame delay time used between any two frames: 1172/fc (86.4 us). */
double tse_air_fdt_min_us(void);
/** Frame waiting time 4096/fc * 2^fwi (fwi 0..14; 15 is RFU and read as the default 4). */
double tse_air_fwt_us(unsigned fwi);
/** Start-up frame guard time after the ATS: 4096/fc * 2^sfgi; 0 for sfgi 0 or 15 (RFU). */
double tse_air_sfgt_us(unsigned sfgi);
/**
 * Frame size from FSCI (card, ATS T0) or FSDI (reader, RATS): 16 24 32 40 48 64 96 128 256,
 * then 512 1024 2048 4096 for 9..12 (ISO/IEC 14443-4:2016); 13..15 are RFU, read as 256.
 */
size_t tse_air_fsc_bytes(unsigned fsci);

/** The link parameters a reader works with once the card is activated. */
struct tse_air_link {
    enum tse_air_rate rate; /**< bit rate both ways after activation (PPS) */
    size_t fsc;             /**< card's max frame (ATS FSCI), bytes incl. PCB, CID, CRC */
    size_t fsd;             /**< reader's max frame (RATS FSDI), same */
    unsigned fwi;           /**< ATS TB1 high nibble (default 4) */
    unsigned sfgi;          /**< ATS TB1 low nibble (default 0) */
    bool cid;               /**< blocks carry a CID byte */
};

/** Defaults of ISO 14443-4 without an ATS: 106 kbit/s, FSC 32, FSD 256, FWI 4, SFGI 0. */
void tse_air_link_default(struct tse_air_link *l);

/**
 * Fill FSC, FWI and SFGI from an ATS (TL T0 [TA1] [TB1] [TC1] historical bytes). Fields
 * the ATS does not carry keep the ISO defaults (FSCI 2, FWI 4, SFGI 0). rate, fsd and cid
 * are left as they are.
 * @retval 0 success
 * @retval TSE_ERR_PARSE TL does not match len, or T0 announces bytes that are absent
 * @retval TSE_ERR_INVALID_ARG NULL pointers
 */
int tse_air_link_from_ats(struct tse_air_link *l, const uint8_t *ats, size_t len);

/** Modelled air time of one APDU exchange, split by direction. */
struct tse_air_exchange {
    double cmd_us;       /**< C-APDU I-blocks, R(ACK)s of command chaining, their FDTs */
    double wait_us;      /**< card processing beyond the minimum FDT: max(0, t_card - FDT) */
    double wtx_us;       /**< S(WTX) request/response pairs when t_card exceeds FWT */
    double rsp_us;       /**< R-APDU I-blocks, R(ACK)s of response chaining, their FDTs */
    double air_us;       /**< cmd_us + rsp_us + wtx_us: what the air carries */
    double total_us;     /**< cmd_us + wait_us + rsp_us: first bit sent .. last bit received (S(WTX)
                          *   frames overlap the card's processing, so they add nothing) */
    unsigned cmd_blocks; /**< I-blocks for the C-APDU */
    unsigned rsp_blocks; /**< I-blocks for the R-APDU */
    unsigned wtx;        /**< S(WTX) requests the card needs (0 when t_card <= FWT) */
};

/**
 * Model one exchange of a clen-byte C-APDU and an rlen-byte R-APDU (data + SW) with card
 * processing time card_us, on link l:
 *   cmd = sum over C blocks [frame(inf + 3) + FDT] + (blocks - 1) [frame(3) + FDT]
 *   rsp = the same for R with FSD
 *   wait = max(0, card_us - FDT)
 *   wtx = ceil(card_us / FWT) - 1 pairs of S(WTX) (4-byte frames each way, with FDTs)
 * (3 becomes 4 with a CID.) clen or rlen 0 counts as one empty I-block.
 * @retval 0 success; TSE_ERR_INVALID_ARG NULL pointers, or FSC/FSD too small for a block
 */
int tse_air_exchange(const struct tse_air_link *l, size_t clen, size_t rlen, double card_us,
                     struct tse_air_exchange *out);

/**
 * Activation at 106 kbit/s of a type A card: REQA/ATQA, one anticollision + select per
 * cascade level (4, 7 or 10-byte UID: 1, 2 or 3 levels), RATS/ATS (ats_len = TL, the ATS
 * length including TL; 0 = no RATS, a type A card without ISO 14443-4), then SFGT.
 * @return microseconds, or a negative value when uid_len is not 4, 7 or 10
 */
double tse_air_activation_us(size_t uid_len, size_t ats_len, unsigned sfgi);

/**
 * PN532 high-speed UART time of one InDataExchange: the host frame (C-APDU + 10 bytes: preamble,
 * start code, LEN, LCS, TFI, CC, Tg, DCS, postamble), the 6-byte ACK and the answer frame
 * (R-APDU + 10: status instead of Tg), each 3 bytes longer when it needs the extended form,
 * at baud 8N1 (10 bits per byte). baud 0 means 115200.
 */
double tse_air_hsu_exchange_us(size_t clen, size_t rlen, unsigned baud);

#ifdef __cplusplus
}
#endif

#endif
