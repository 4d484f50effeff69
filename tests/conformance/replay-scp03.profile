# SPDX-License-Identifier: Apache-2.0
# The card of vector SCP03-kaoh-getstatus-L03 (tests/vectors/scp-vectors.txt): its keys, an
# all-zero CPLC (so the KDD is 00..00) and the ISD AID that feeds its pseudo-random challenge.
[isd]
aid = A000000151000000

[keyset]
kvn = 0x30
scp = 03
i = 70
enc = F995D0A069335C7DF42E590317FFEA6D
mac = 58563362EC5A4541ABCD32B34B1EAE7D
dek = 0A02A6D687406DCFA09DC70B3EDB7E38

[identity]
cplc = 00000000000000000000000000000000000000000000000000000000000000000000000000000000 0000

# the recorded card has no applications: no contactless registry service, no PPSE
[contactless]
registry = off
