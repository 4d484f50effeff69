#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make bench`: the in-process card, then a short command through pcscd and vpcd to
# tse-card, once with the default scheduling and once with every process on one CPU
# (docs/performance.md explains why both are shown).
set -u
BIN="$1/bin"
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/scripts/pcsc-env.sh"
if [ -z "${TSE_PCSC_NS:-}" ]; then
    "$BIN/tse-bench" || exit 1
fi
pcsc_isolate "$0" "$@"
echo "tse-bench-pcsc: pcscd in $PCSC_MODE, 20000 x 80 24 (18-byte response), T=1"
RUN=$(mktemp -d)
rc=0
for PCSC_PREFIX in "" "taskset -c 0"; do
    PCSCD_FLAGS= pcsc_start "$RUN" || exit 1
    # shellcheck disable=SC2086
    $PCSC_PREFIX "$BIN/tse-card" --card "$RUN/bench.img" >"$RUN/card.log" 2>&1 &
    CARD=$!
    if pcsc_wait_card 0; then
        printf '%s ' "${PCSC_PREFIX:-unpinned}:"
        # shellcheck disable=SC2086
        $PCSC_PREFIX "$BIN/tse-bench-pcsc" "Virtual PCD 00 00" 20000 || rc=1
    else
        rc=1
    fi
    stop_pid "$CARD"
    pcsc_stop
done
rm -rf "$RUN"
exit $rc
