# tse built-in default card profile (docs/profile.md)
[card]
name = tse default
life_cycle = SECURED
persistent_memory = 256K
transient_memory = 8K
commit_buffer = 8K
logical_channels = 20
fsync = off

[contact]
# T=1 only (TD1 = 81), IFSC 254, historical bytes "tse-card"
atr = 3BF81300008131FE45 7473652D63617264 BB

[contactless]
uid = 08747365
atqa = 0004
sak = 20
ats = 0578807002

[isd]
aid = A000000151000000

[keyset]
kvn = 0x30
scp = 03
i = 70
type = aes
key = 404142434445464748494A4B4C4D4E4F

[identity]
cplc = 5453 0001 5453 6331 0001 6330 00000001 0001 5453 6331 5453 6331 0000 0000 00000000 0000 0000 00000000
iin = 00000001
cin = 0000000000000001

[counters]
scp02_sequence = 0 max 0xFFFF
scp03_sequence = 0 max 0xFFFFFF

[instance diag]
package = F0747365444941
module = F074736544494101
aid = F074736544494101
