# SPDX-License-Identifier: Apache-2.0
# An SCP02 card (GlobalPlatform 2.1.1/2.2 style), for GPShell's mode_211 scripts and gp's
# SCP02 sessions. Keys are the well-known test keys 404142...4F. See docs/profile.md.
[card]
name = tse SCP02 example
life_cycle = SECURED
persistent_memory = 256K
transient_memory = 8K
logical_channels = 4

[contact]
# T=1 only, IFSC 254, historical bytes "tse-card"
atr = 3BF81300008131FE45 7473652D63617264 BB

[contactless]
uid = 08747365
atqa = 0004
sak = 20
ats = 0578807002

[isd]
aid = A000000003000000

[keyset]
kvn = 0x20
scp = 02
i = 55
type = 3des
enc = 404142434445464748494A4B4C4D4E4F
mac = 404142434445464748494A4B4C4D4E4F
dek = 404142434445464748494A4B4C4D4E4F

[counters]
scp02_sequence = 0 max 0xFFFF

[instance diag]
package = F0747365444941
module = F074736544494101

# A second key set with R-MAC support (i = 75), for scripts that test R-MAC levels.
[keyset]
kvn = 0x21
scp = 02
i = 75
type = 3des
key = 404142434445464748494A4B4C4D4E4F
