#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The PC/SC part of `make bench` (called by scripts/bench.sh): pcscd with vpcd and tse-card,
# a short command sent by tse-bench-pcsc, once with the default scheduling and once with
# every process on one CPU (docs/performance.md explains why both are shown).
#   bench-pcsc.sh BUILD_DIR OUT_DIR   writes OUT_DIR/pcsc-unpinned.json, pcsc-pinned.json
set -u
BIN="$1/bin"
OUT="$2"
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/scripts/pcsc-env.sh"
pcsc_isolate "$0" "$@"
RUNS=${TSE_BENCH_PCSC_RUNS:-3}
N=${TSE_BENCH_PCSC_N:-10000}
echo "tse-bench-pcsc: pcscd in $PCSC_MODE; $RUNS runs x $N x 80 24 (18-byte response), T=1"
echo "$PCSC_MODE" >"$OUT/pcsc-mode.txt"
RUN=$(mktemp -d)
rc=0
for name in unpinned pinned; do
    PCSC_PREFIX=
    [ "$name" = pinned ] && PCSC_PREFIX="taskset -c 0"
    PCSCD_FLAGS= pcsc_start "$RUN" || { rc=1; break; }
    # shellcheck disable=SC2086
    $PCSC_PREFIX "$BIN/tse-card" --card "$RUN/bench.img" >"$RUN/card.log" 2>&1 &
    CARD=$!
    if pcsc_wait_card 0; then
        # shellcheck disable=SC2086
        $PCSC_PREFIX "$BIN/tse-bench-pcsc" --runs "$RUNS" --json "$OUT/pcsc-$name.json" \
            --name "$name" "Virtual PCD 00 00" "$N" || rc=1
    else
        rc=1
    fi
    stop_pid "$CARD"
    pcsc_stop
    rm -f "$RUN/bench.img"
done
rm -rf "$RUN"
exit $rc
