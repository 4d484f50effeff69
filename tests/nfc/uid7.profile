# SPDX-License-Identifier: Apache-2.0
# A transit-like contactless identity: 7-byte UID (double size), ATS with FSC 256, FWI 7 and
# two historical bytes. Used by tests/nfc/nfc-test.sh (card mode shows it as it is).
[card]
name = nfc uid7

[contactless]
uid = 04A1B2C3D4E5F6
atqa = 0044
sak = 20
ats = 0778807002C1C2

[instance diag]
package = F0747365444941
module = F074736544494101
aid = F074736544494101
