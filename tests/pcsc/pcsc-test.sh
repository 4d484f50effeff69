#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# PC/SC integration: pcscd + vpcd + tse-card, driven by real PC/SC clients (opensc-tool,
# scriptor, pyscard, apdu-shell --reader). Usage: pcsc-test.sh BIN_DIR RUN_DIR SRC_DIR
# Exit 0 all checks passed, 1 a check failed, 77 cannot run here (ctest: skipped).
set -u
. "$3/scripts/pcsc-env.sh"
pcsc_isolate "$0" "$@"

BIN="$1"
RUN="$2/pcsc-test"
SRC="$3"
rm -rf "$RUN" && mkdir -p "$RUN"
passed=0
failed=0
CARD_PID=
CARD2_PID=

check() { # check NAME CMD...: run CMD, count the result
    name="$1"
    shift
    if "$@" >"$RUN/last.out" 2>&1; then
        passed=$((passed + 1))
        echo "PASS $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        sed 's/^/    /' "$RUN/last.out"
    fi
}

cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$CARD2_PID" ] && stop_pid "$CARD2_PID"
    pcsc_stop
}
trap cleanup EXIT INT TERM

echo "pcsc-test: pcscd in $PCSC_MODE"
pcsc_start "$RUN" || exit 1

start_card() { # start_card LOG ARGS...
    log="$1"
    shift
    "$BIN/tse-card" "$@" >"$log" 2>&1 &
    LAST_PID=$!
}

start_card "$RUN/card.log" --card "$RUN/card.img" --trace
CARD_PID=$LAST_PID
pcsc_wait_card 0 || { cat "$RUN/card.log"; exit 1; }

# opensc-tool sends exactly the given APDUs with the default driver
opensc_select() {
    out=$(opensc-tool -c default -r 0 -s 00A4040008F074736544494101 -s 8024000010) || return 1
    echo "$out"
    echo "$out" | grep -q "6F 0A 84 08 F0 74 73 65 44 49 41 01" &&
        echo "$out" | grep -q "00 00 03 E8 00 00 00 00" &&
        [ "$(echo "$out" | grep -c 'SW1=0x90, SW2=0x00')" -eq 2 ]
}
check "opensc-tool: SELECT and a read" opensc_select

# scriptor (pcsc-tools), with a warm reset in the middle
scriptor_run() {
    printf '00A4040008F074736544494101\n802200000400000064\nreset\n8024000010\n' >"$RUN/s.txt"
    out=$(scriptor -r "Virtual PCD 00 00" "$RUN/s.txt") || return 1
    echo "$out"
    echo "$out" | grep -q "Using T=1 protocol" &&
        echo "$out" | grep -q "< 00 00 03 84 00 00 00 64 00 00 00 01 90 00" &&
        echo "$out" | grep -q "OK: 3B F8 13 00 00 81 31 FE 45 74 73 65 2D 63 61 72 64 BB" &&
        echo "$out" | grep -q "< 6D 00" # the reset ended the selection
}
check "scriptor: transfer, reset, selection gone" scriptor_run

# pyscard (python3-pyscard)
pyscard_run() {
    /usr/bin/python3 - <<'PY'
from smartcard.System import readers
from smartcard.scard import SCARD_RESET_CARD
r = [x for x in readers() if "Virtual PCD 00 00" in str(x)][0]
c = r.createConnection()
c.connect()
atr = bytes(c.getATR())
assert atr.hex().upper() == "3BF81300008131FE457473652D63617264BB", atr.hex()
data, sw1, sw2 = c.transmit(list(bytes.fromhex("00A4040008F074736544494101")))
assert (sw1, sw2) == (0x90, 0x00) and bytes(data).hex().upper() == "6F0A8408F074736544494101"
# a long response through T=1: 256 bytes and 61 20, then GET RESPONSE
data, sw1, sw2 = c.transmit(list(bytes.fromhex("8010012000")))
assert len(data) == 256 and (sw1, sw2) == (0x61, 0x20), (len(data), sw1, sw2)
data, sw1, sw2 = c.transmit([0x00, 0xC0, 0x00, 0x00, 0x20])
assert len(data) == 32 and (sw1, sw2) == (0x90, 0x00)
# an extended APDU both ways
cmd = bytes.fromhex("80100000000400") + bytes(range(256)) * 4 + bytes.fromhex("0000")
data, sw1, sw2 = c.transmit(list(cmd))
assert len(data) == 1024 and (sw1, sw2) == (0x90, 0x00)
c.reconnect(disposition=SCARD_RESET_CARD)
data, sw1, sw2 = c.transmit(list(bytes.fromhex("8024000010")))
assert (sw1, sw2) == (0x6D, 0x00), (sw1, sw2)
c.disconnect()
print("pyscard ok")
PY
}
check "pyscard: ATR, SELECT, 61xx, extended length, reconnect" pyscard_run

# the same conformance script, over PC/SC and in-process: identical transcripts
diff_run() {
    "$BIN/apdu-shell" --reader 0 -f "$SRC/tests/conformance/core-apdu.tse" \
        >"$RUN/pcsc.transcript" || return 1
    rm -f "$RUN/fresh.img"
    "$BIN/apdu-shell" --card "$RUN/fresh.img" -f "$SRC/tests/conformance/core-apdu.tse" \
        >"$RUN/local.transcript" || return 1
    diff -u "$RUN/local.transcript" "$RUN/pcsc.transcript" &&
        [ "$(grep -c '^-> ' "$RUN/pcsc.transcript")" -ge 20 ]
}
check "apdu-shell --reader: core-apdu.tse passes, transcript = in-process" diff_run

# a too-short APDU is refused by the PC/SC target, not sent to vpcd (which would hang)
short_run() {
    printf '00\n' | "$BIN/apdu-shell" --reader 0 >"$RUN/short.out" 2>&1
    [ $? -eq 1 ] && grep -q "at least 4 bytes" "$RUN/short.out"
}
check "apdu-shell --reader: 1-byte APDU refused with a message" short_run

# second slot, contactless interface: PC/SC part 3 ATR from the ATS
start_card "$RUN/card2.log" --card "$RUN/card2.img" --slot 1 --interface contactless
CARD2_PID=$LAST_PID
slot2_run() {
    pcsc_wait_card 1 || return 1
    out=$(printf 'atr\n00A4040008F074736544494101 => *9000\n8070000000 => 01 00 * 9000\n' |
        "$BIN/apdu-shell" --reader "PCD 00 01") || return 1
    echo "$out"
    echo "$out" | grep -q "ATR: 3B80800101"
}
check "slot 1: contactless interface with its PC/SC ATR" slot2_run

# pcscd restarts: the card reconnects by itself
restart_run() {
    pcsc_stop
    pcsc_start "$RUN/restart" || return 1
    pcsc_wait_card 0 || return 1
    opensc-tool -c default -r 0 -s 00A4040008F074736544494101 -s 8024000010 |
        grep -q "00 00 03 84 00 00 00 64" &&
        grep -q "reconnecting" "$RUN/card.log" || { cat "$RUN/card.log"; false; }
}
check "tse-card reconnects after pcscd restarts" restart_run

# SIGTERM: clean stop, image consistent
stop_run() {
    kill "$CARD_PID"
    wait "$CARD_PID"
    rc=$?
    CARD_PID=
    [ $rc -eq 0 ] && grep -q "stopped, image" "$RUN/card.log" &&
        printf '00A4040008F074736544494101\n8024000010 => 00000384 00000064 00000001 00000000 9000\n' |
        "$BIN/apdu-shell" --card "$RUN/card.img"
}
check "SIGTERM stops tse-card cleanly; the image reopens" stop_run

# no vpcd: a clear message
novpcd_run() {
    pcsc_stop
    "$BIN/tse-card" --card "$RUN/card.img" --no-retry >"$RUN/novpcd.log" 2>&1
    [ $? -eq 1 ] && grep -q "is pcscd running with the vpcd driver" "$RUN/novpcd.log"
}
check "no vpcd: tse-card says so and exits 1" novpcd_run

echo "pcsc-test: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
