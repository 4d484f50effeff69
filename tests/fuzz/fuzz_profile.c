/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the card profile parser: any text gets 0 or a located error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tse/error.h"
#include "tse/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tse_profile p;
    char err[256];
    err[0] = '\0';
    int rc = tse_profile_parse(&p, (const char *)data, size, "fuzz", err, sizeof(err));
    if (rc != 0 && (rc != TSE_ERR_PROFILE || strncmp(err, "fuzz:", 5) != 0))
        abort(); /* every refusal names the file and line */
    if (rc == 0 && (p.logical_channels < 1 || p.logical_channels > 20 || p.atr_len < 2))
        abort();
    return 0;
}
