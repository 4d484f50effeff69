# SPDX-License-Identifier: Apache-2.0
# A phone secure element with two transit purse instances (JT/T 978 EP, docs/wallet.md), both
# personalised at creation as *test cards*: files 0x15-0x17 from the issuer identifier (8E) and
# card number (8F), keys diversified from the documented test master keys, PIN 123456,
# maximum balance 1000.00. Real cards are personalised through the card manager instead
# (INSTALL [for personalization] + STORE DATA, docs/wallet.md).
#
#   apdu-shell --card se.img --profile profiles/wallet.profile
#   wallet select            # the first purse (partial AID A000000632010105)
#   wallet load 50.00
#   wallet entry 5
#   wallet exit 17 3.00
#   wallet log

[card]
name = tse transit SE

[contactless]
uid = 08747365

# Beijing-style instance (the AID a Beijing wallet selects), load log 0x1F kept
[instance beijing]
package = A0000006320101
module = A000000632010105
aid = A00000063201010510009156000014A1
params = 8E08 01011000FFFFFFFF 8F0A 03105170010170907984 8401 0A
default = contactless

# Suzhou-style instance
[instance suzhou]
package = A0000006320101
module = A000000632010105
aid = A000000632010105215053555A484F55
params = 8E08 02152150FFFFFFFF 8F0A 03104895000000001234
