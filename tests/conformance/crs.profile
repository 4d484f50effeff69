# SPDX-License-Identifier: Apache-2.0
# Contactless registry tests (crs-registry.tse): the two T-Union applications of the PPSE
# sample in the wallet spec (1.2), a second EP instance whose PPSE entry shows the EP's
# 8-byte AID (a second city card), and two diagnostic applets that may be implicitly
# selected on the contactless interface. All are diag instances under these AIDs.
[instance ep]
package = F0747365444941
module = F074736544494101
aid = A000000632010105
contactless_label = MOT_T_EP
contactless_priority = 2

[instance cash]
package = F0747365444941
module = F074736544494101
aid = A000000632010106
contactless_label = MOT_T_CASH
contactless_priority = 1

[instance city2]
package = F0747365444941
module = F074736544494101
aid = A000000632010105215053555A484F55
contactless = deactivated
contactless_ppse_aid = A000000632010105
contactless_label = MOT_T_EP
contactless_priority = 2

[instance diag]
package = F0747365444941
module = F074736544494101
aid = F074736544494101
contactless = deactivated
contactless_default = yes

[instance diag2]
package = F0747365444941
module = F074736544494101
aid = F074736544494201
contactless_default = yes
