# SPDX-License-Identifier: Apache-2.0
# The card of vector SCP02-kaoh-getstatus-L01: keys 404142..4F at KVN 01, i = 15 (random card
# challenge), a CPLC whose fabricator/type and serial/batch bytes give KDD 000074746E6E6E626262.
[isd]
aid = A000000003000000

[keyset]
kvn = 0x01
scp = 02
i = 15
type = 3des
key = 404142434445464748494A4B4C4D4E4F

[identity]
cplc = 00007474 0000 0000 0000 0000 6E6E6E62 6262 0000 0000 0000 0000 0000 0000 00000000 0000 0000 00000000
