#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make bench`: tse-bench (the in-process card: APDUs, gate transactions and their modelled
# ISO 14443 transaction time, SCP03, image open, memory per card, cards per process), then
# the PC/SC path (scripts/bench-pcsc.sh), then one JSON file with everything:
# OUT_DIR/bench.json (default BUILD_DIR/bench).
#   bench.sh BUILD_DIR [OUT_DIR]      extra tse-bench options in TSE_BENCH_ARGS
set -u
BUILD="$1"
OUT="${2:-$1/bench}"
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/card.json" "$OUT/pcsc-unpinned.json" "$OUT/pcsc-pinned.json" "$OUT/pcsc-mode.txt" \
    "$OUT/bench.json"
start=$(date +%s)

# shellcheck disable=SC2086
"$BUILD/bin/tse-bench" --json "$OUT/card.json" ${TSE_BENCH_ARGS:-} || exit 1

echo
pcsc_rc=0
sh "$SRC/scripts/bench-pcsc.sh" "$BUILD" "$OUT" || pcsc_rc=$?
[ $pcsc_rc -ne 0 ] && echo "bench: the PC/SC part did not complete (exit $pcsc_rc); its figures are null"

# One JSON document; a part that did not run is null.
part() { if [ -s "$1" ]; then cat "$1"; else printf 'null'; fi; }
mode="not run"
[ -s "$OUT/pcsc-mode.txt" ] && mode=$(cat "$OUT/pcsc-mode.txt")
# (the modelled typical transaction time is part of tse-bench's results: txn_time_*)
{
    printf '{\n"in_process": '
    part "$OUT/card.json"
    printf ',\n"pcsc": {"mode": "%s", "unpinned": ' "$mode"
    part "$OUT/pcsc-unpinned.json"
    printf ', "pinned": '
    part "$OUT/pcsc-pinned.json"
    printf '}\n}\n'
} >"$OUT/bench.json"
echo
echo "bench: $OUT/bench.json ($(($(date +%s) - start)) s)"
exit $pcsc_rc
