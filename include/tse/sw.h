/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file sw.h
 * @brief ISO/IEC 7816-4 status words used by the card and its applets.
 */
#ifndef TSE_SW_H
#define TSE_SW_H

#include <stdint.h>

#define SW_NO_ERROR                       0x9000u
#define SW_BYTES_REMAINING_00             0x6100u /* | remaining (00 = 256 or more) */
#define SW_WARNING_STATE_UNCHANGED        0x6200u
#define SW_WARNING_SELECTED_FILE_INVALID  0x6283u
#define SW_MORE_DATA_AVAILABLE            0x6310u
#define SW_AUTHENTICATION_FAILED          0x6300u /* GP: host cryptogram rejected */
#define SW_VERIFY_FAILED_00               0x63C0u /* | retries left */
#define SW_EXECUTION_ERROR                0x6400u
#define SW_MEMORY_FAILURE                 0x6581u
#define SW_WRONG_LENGTH                   0x6700u
#define SW_LOGICAL_CHANNEL_NOT_SUPPORTED  0x6881u
#define SW_SECURE_MESSAGING_NOT_SUPPORTED 0x6882u
#define SW_LAST_COMMAND_EXPECTED          0x6883u
#define SW_COMMAND_CHAINING_NOT_SUPPORTED 0x6884u
#define SW_COMMAND_NOT_ALLOWED            0x6900u
#define SW_COMMAND_INCOMPATIBLE           0x6981u /* with the file structure */
#define SW_SECURITY_STATUS_NOT_SATISFIED  0x6982u
#define SW_FILE_INVALID                   0x6983u
#define SW_AUTH_METHOD_BLOCKED            0x6983u /* PIN blocked (same value as above) */
#define SW_DATA_INVALID                   0x6984u
#define SW_CONDITIONS_NOT_SATISFIED       0x6985u
#define SW_COMMAND_NOT_ALLOWED_NO_EF      0x6986u
#define SW_SM_DATA_MISSING                0x6987u
#define SW_SM_DATA_INCORRECT              0x6988u
#define SW_APPLET_SELECT_FAILED           0x6999u
#define SW_WRONG_DATA                     0x6A80u
#define SW_FUNC_NOT_SUPPORTED             0x6A81u
#define SW_FILE_NOT_FOUND                 0x6A82u
#define SW_RECORD_NOT_FOUND               0x6A83u
#define SW_FILE_FULL                      0x6A84u
#define SW_INCORRECT_P1P2                 0x6A86u
#define SW_LC_INCONSISTENT_WITH_P1P2      0x6A87u
#define SW_REFERENCED_DATA_NOT_FOUND      0x6A88u
#define SW_WRONG_P1P2                     0x6B00u
#define SW_CORRECT_LENGTH_00              0x6C00u /* | exact Ne (00 = 256) */
#define SW_INS_NOT_SUPPORTED              0x6D00u
#define SW_CLA_NOT_SUPPORTED              0x6E00u
#define SW_UNKNOWN                        0x6F00u

/* JT/T 978 / PBOC electronic purse (docs/wallet.md) */
#define SW_WALLET_MAC_INVALID     0x9302u /* MAC1 (DEBIT) or MAC2 (CREDIT) wrong */
#define SW_WALLET_APP_LOCKED      0x9303u /* application permanently blocked */
#define SW_WALLET_INSUFFICIENT    0x9401u /* insufficient balance */
#define SW_WALLET_COUNTER_LIMIT   0x9402u /* transaction counter at its maximum */
#define SW_WALLET_KEY_NOT_FOUND   0x9403u /* key index not supported */
#define SW_WALLET_PROOF_NOT_FOUND 0x9406u /* no MAC/TAC for GET TRANSACTION PROVE */

#endif
