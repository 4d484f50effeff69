# SPDX-License-Identifier: Apache-2.0
# Only the security domain package is present from creation: tse.diag must be loaded.
[card]
rom_packages = none
