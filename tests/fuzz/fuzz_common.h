/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TSE_FUZZ_COMMON_H
#define TSE_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A scratch file name for this fuzzer process (under $TSE_TEST_TMP, else /tmp). */
static inline void fuzz_path(char *out, size_t cap, const char *tag)
{
    const char *dir = getenv("TSE_TEST_TMP");
    snprintf(out, cap, "%s/fuzz-%s-%ld.img", dir && *dir ? dir : "/tmp", tag, (long)getpid());
}

#endif
