/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_PROFILE_INTERNAL_H
#define TSE_PROFILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Check an ATR's structure (TS, T0, interface bytes, historical bytes, TCK). *protocols gets
 * a bit mask of the protocols it announces (bit 0 = T=0, bit 1 = T=1). 0 or TSE_ERR_PARSE. */
int tse_atr_check(const uint8_t *atr, size_t len, unsigned *protocols);
/* Check an ATS (TL, T0 and the presence of TA1/TB1/TC1). 0 or TSE_ERR_PARSE. */
int tse_ats_check(const uint8_t *ats, size_t len);
/* Read a whole text file (up to 1 MiB) into a malloc'd buffer. */
int tse_profile_read_file(const char *path, char **text, size_t *len, char *err, size_t errlen);

struct tse_profile;

/*
 * Parsed profiles shared between cards (profile_share.c). A card needs its profile for as
 * long as it lives (6.8 KiB parsed); a farm of cards made from one profile would hold as many
 * identical copies. tse_profile_share() returns the parsed profile of `text`, parsing it only
 * when no live card holds the same text, and counts a reference; tse_profile_unshare() drops
 * it (the last one frees). The profile is read-only for everyone. Thread-safe (one lock,
 * taken only here, at card open, create and free).
 * @retval 0, *out set; the errors of tse_profile_parse(); TSE_ERR_NO_MEMORY
 */
int tse_profile_share(const char *text, size_t len, const char *name, char *err, size_t errlen,
                      const struct tse_profile **out);
void tse_profile_unshare(const struct tse_profile *p);

#endif
