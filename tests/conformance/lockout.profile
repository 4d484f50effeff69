# SPDX-License-Identifier: Apache-2.0
# Default-like card whose key set is blocked after two failed authentications.
[keyset]
kvn = 0x30
scp = 03
i = 70
key = 404142434445464748494A4B4C4D4E4F
max_failures = 2
