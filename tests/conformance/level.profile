# SPDX-License-Identifier: Apache-2.0
# content management only under C-MAC and C-DECRYPTION
[isd]
aid = A000000151000000
management_level = mac+enc
