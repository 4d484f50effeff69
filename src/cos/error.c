/* SPDX-License-Identifier: Apache-2.0 */
#include "tse/error.h"

const char *tse_strerror(int err)
{
    switch (err) {
    case TSE_OK:
        return "success";
    case TSE_ERR_INVALID_ARG:
        return "invalid argument";
    case TSE_ERR_NO_MEMORY:
        return "out of host memory";
    case TSE_ERR_IO:
        return "card image input/output error";
    case TSE_ERR_CORRUPT:
        return "card image is corrupt or truncated";
    case TSE_ERR_VERSION:
        return "card image format version not supported";
    case TSE_ERR_PROFILE:
        return "invalid card profile";
    case TSE_ERR_POWERED_OFF:
        return "interface is powered off";
    case TSE_ERR_TORN:
        return "power cut during a store write";
    case TSE_ERR_BUFFER_TOO_SMALL:
        return "output buffer too small";
    case TSE_ERR_NOT_FOUND:
        return "not found";
    case TSE_ERR_EXISTS:
        return "already exists";
    case TSE_ERR_NO_SPACE:
        return "not enough memory on the card (capacity or quota)";
    case TSE_ERR_TXN_NESTED:
        return "transaction already in progress (nesting refused)";
    case TSE_ERR_TXN_NONE:
        return "no transaction in progress";
    case TSE_ERR_TXN_FULL:
        return "transaction commit buffer full";
    case TSE_ERR_STATE:
        return "not allowed in the current state";
    case TSE_ERR_PARSE:
        return "malformed input";
    case TSE_ERR_DENIED:
        return "refused";
    default:
        return "unknown error";
    }
}
