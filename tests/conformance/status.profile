# SPDX-License-Identifier: Apache-2.0
# Eight diag instances, so the registry does not fit one GET STATUS answer.
[instance d1]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010001
[instance d2]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010002
[instance d3]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010003
[instance d4]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010004
[instance d5]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010005
[instance d6]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010006
[instance d7]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010007
[instance d8]
package = F0747365444941
module = F074736544494101
aid = F0747365444941010008

# the ISD listing alone (tests/conformance/crs-*.tse cover the registry service)
[contactless]
registry = off
