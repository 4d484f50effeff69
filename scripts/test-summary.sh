#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Print what each test runner reported (cmocka totals, tear/kill figures, fuzz executions,
# apdu-shell totals) from the last ctest run in the given build directory.
log="$1/Testing/Temporary/LastTest.log"
[ -f "$log" ] || { echo "test-summary: no $log" >&2; exit 0; }
echo
echo "== test runner summaries =="
awk '
/^[0-9]+\/[0-9]+ Testing: / { name = $3 }
/\[  PASSED  \] [0-9]+ test/ { sub(/^.*\[  PASSED  \] /, ""); printf "%-28s passed %s\n", name, $0 }
/\[  FAILED  \] [0-9]+ test/ { printf "%-28s FAILED: %s\n", name, $0 }
/tear sweep|kill -9:|transitions checked/ { printf "%-28s %s\n", name, $0 }
/^Done [0-9]+ runs/ { printf "%-28s fuzz: %s\n", name, $0 }
/^apdu-shell: [0-9]+ exchanges/ { printf "%-28s %s\n", name, $0 }
/^pcsc-test: / { printf "%-28s %s\n", name, $0 }
' "$log"
