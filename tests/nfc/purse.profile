# SPDX-License-Identifier: Apache-2.0
# A phone SE with two transit purses (test cards, docs/wallet.md) as gates find them: the
# Beijing purse is in the contactless PPSE under the label MOT_T_EP (priority 1); the Suzhou
# purse is listed too (priority 2) but not activated for contactless, so the PPSE omits it.
# Used by tests/nfc/purse-test.sh and purse-pcsc-test.sh (tse-tap --txn purse).

[card]
name = tse transit SE

[contactless]
uid = 08747365

[instance beijing]
package = A0000006320101
module = A000000632010105
aid = A00000063201010510009156000014A1
params = 8E08 01011000FFFFFFFF 8F0A 03105170010170907984 8401 0A
contactless_label = MOT_T_EP
contactless_priority = 1

[instance suzhou]
package = A0000006320101
module = A000000632010105
aid = A000000632010105215053555A484F55
params = 8E08 02152150FFFFFFFF 8F0A 03104895000000001234
contactless_label = MOT_T_EP
contactless_priority = 2
contactless = deactivated
