# SPDX-License-Identifier: Apache-2.0
# Purse conformance card: profiles/wallet.profile with a fixed RNG and clock.
[card]
name = tse transit SE (conformance)

[deterministic]
seed = 5457414C4C4554
clock = 2024-05-01T08:30:00Z

[instance beijing]
package = A0000006320101
module = A000000632010105
aid = A00000063201010510009156000014A1
params = 8E08 01011000FFFFFFFF 8F0A 03105170010170907984 8401 0A
default = contactless

[instance suzhou]
package = A0000006320101
module = A000000632010105
aid = A000000632010105215053555A484F55
params = 8E08 02152150FFFFFFFF 8F0A 03104895000000001234

# the bare 8-byte AID, unpersonalised
[instance bare]
package = A0000006320101
module = A000000632010105
aid = A000000632010105
