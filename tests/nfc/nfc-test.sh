#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# NFC integration: tse-pn532sim on pseudo-terminals with Debian's stock libnfc (pn532_uart
# driver), stock nfc-list and nfc-emulate-forum-tag4, tse-card --nfc and tse-tap.
# Usage: nfc-test.sh BIN_DIR RUN_DIR SRC_DIR
# Exit 0 all checks passed, 1 a check failed, 77 libnfc's tools are not installed.
set -u
BIN="$1"
RUN="$2/nfc-test"
SRC="$3"
. "$SRC/tests/nfc/nfc-lib.sh"

for tool in nfc-list nfc-emulate-forum-tag4; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "nfc-test: $tool not found (Debian packages libnfc-bin, libnfc-examples)" >&2
        exit 77
    fi
done
rm -rf "$RUN" && mkdir -p "$RUN"
passed=0
failed=0
SIM_PID=
CARD_PID=
EMU_PID=
cleanup() {
    [ -n "$EMU_PID" ] && stop_pid "$EMU_PID"
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$SIM_PID" ] && stop_pid "$SIM_PID"
}
trap cleanup EXIT INT TERM

ISD=A000000151000000
DIAG=F074736544494101

# ---- card mode: the simulated PN532 is a reader, the card is in its field ----------------
start_sim "$RUN/sim-card.log" card --card "$RUN/card.img" --link "$RUN/pn532" \
    --log "$RUN/sim-card.json" || exit 1

nfc_list_card() {
    out=$(LIBNFC_DEVICE="pn532_uart:$RUN/pn532" timeout 20 nfc-list) || return 1
    echo "$out"
    echo "$out" | grep -q "1 ISO14443A passive target(s) found" &&
        echo "$out" | grep -q "ATQA (SENS_RES): 00  04" &&
        echo "$out" | grep -q "UID (NFCID3): 08  74  73  65" &&
        echo "$out" | grep -q "SAK (SEL_RES): 20" &&
        echo "$out" | grep -q "ATS: 78  80  70  02"
}
check "card mode: stock nfc-list sees the profile's UID, ATQA, SAK and ATS" nfc_list_card

tap_card() {
    out=$(timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/pn532" \
        --apdu "00A4040008${ISD}=>6F * 9000" --apdu "00A4040008${DIAG}=>6F0A8408${DIAG} 9000" \
        --apdu "8024000010=>XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX 9000" --svg "$RUN/card.svg") ||
        return 1
    echo "$out"
    echo "$out" | grep -q "^<- 6F108408${ISD}" &&
        echo "$out" | grep -q "typical transaction time" &&
        grep -q "<svg" "$RUN/card.svg" && grep -q "activation" "$RUN/card.svg"
}
check "card mode: tse-tap selects the ISD and the diag applet (6F.. 9000), SVG written" tap_card

limits_card() {
    # the longest C-APDU libnfc can send (262 bytes, extended Lc) and a 258-byte R-APDU
    data=$(i=0; while [ $i -lt 255 ]; do printf 'A5'; i=$((i + 1)); done)
    out=$(timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/pn532" --quiet --no-report \
        --apdu "00A4040008${DIAG}=>*9000" --apdu "80100000 0000FF ${data}=>${data} 9000" \
        --apdu "8010010000=>* 9000") || return 1
    # an extended-length answer libnfc cannot take: an error for the reader, no crash ...
    timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/pn532" --no-report \
        --apdu "00A4040008${DIAG}" --apdu "8010012000 0000" && return 1
    # ... and the simulator and the card still serve the next tap
    timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/pn532" --quiet --no-report \
        --apdu "00A4040008${DIAG}=>*9000"
}
check "card mode: 262-byte C-APDU and 258-byte R-APDU pass; a longer answer fails cleanly" \
    limits_card

garbage_card() {
    # bad checksums, a truncated extended frame, junk, a host error frame, an unknown command
    printf '\000\000\377\003\374\324\002\052\000' >"$RUN/pn532"
    printf '\000\000\377\377\377\001\000\377\324' >"$RUN/pn532"
    printf 'junk\125\125\000\000\377\001\377\177\201\000' >"$RUN/pn532"
    printf '\000\000\377\002\376\324\376\056\000' >"$RUN/pn532"
    sleep 0.2
    nfc_list_card
}
check "card mode: malformed frames are survived, nfc-list still works" garbage_card

stop_pid "$SIM_PID"
SIM_PID=
check "card mode: the simulator removed its symlink on exit" test ! -e "$RUN/pn532"

start_sim "$RUN/sim-uid7.log" card --card "$RUN/uid7.img" --profile "$SRC/tests/nfc/uid7.profile" \
    --link "$RUN/pn532u7" || exit 1
nfc_list_uid7() {
    out=$(LIBNFC_DEVICE="pn532_uart:$RUN/pn532u7" timeout 20 nfc-list) || return 1
    echo "$out"
    echo "$out" | grep -q "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" &&
        echo "$out" | grep -q "ATQA (SENS_RES): 00  44" &&
        echo "$out" | grep -q "ATS: 78  80  70  02  c1  c2"
}
check "card mode: a 7-byte UID profile is shown as it is" nfc_list_uid7
stop_pid "$SIM_PID"
SIM_PID=

# ---- bridge: libnfc reader on one pty, tse-card --nfc (libnfc target) on the other --------
start_sim "$RUN/sim-bridge.log" bridge --link "$RUN/rd" --link2 "$RUN/em" \
    --log "$RUN/sim-bridge.json" || exit 1
start_card "$RUN/card-bridge.log" --card "$RUN/bridge.img" --nfc "pn532_uart:$RUN/em" \
    --no-vpcd --trace || exit 1

nfc_list_bridge() {
    out=$(LIBNFC_DEVICE="pn532_uart:$RUN/rd" timeout 20 nfc-list) || return 1
    echo "$out"
    # through libnfc target mode the PN532 shows its own UID (08 + 3 bytes) and ATS
    echo "$out" | grep -q "1 ISO14443A passive target(s) found" &&
        echo "$out" | grep -q "UID (NFCID3): 08  74  73  65" &&
        echo "$out" | grep -q "ATS: 75  33  92  03"
}
check "bridge: stock nfc-list sees tse-card --nfc (UID 08747365, PN532 ATS)" nfc_list_bridge

tap_bridge() {
    out=$(timeout 60 "$BIN/tse-tap" --device "pn532_uart:$RUN/rd" --repeat 3 \
        --apdu "00A4040008${ISD}=>6F * 9000" --apdu "00A4040008${DIAG}=>6F0A8408${DIAG} 9000" \
        --apdu "8070000000=>01 00 * 9000") || return 1
    echo "$out"
    [ "$(echo "$out" | grep -c "typical transaction time")" -eq 3 ] &&
        wait_for grep -q "released the card after 3 APDU" "$RUN/card-bridge.log" &&
        [ "$(count_in "$RUN/card-bridge.log" "activated by a reader")" -ge 4 ]
}
check "bridge: tse-tap exchanges APDUs with tse-card --nfc, 3 taps (release, re-select)" \
    tap_bridge

script_bridge() {
    timeout 60 "$BIN/tse-tap" --device "pn532_uart:$RUN/rd" \
        -f "$SRC/tests/nfc/contactless.tse" --no-report
}
check "bridge: an apdu-shell script through tse-tap and tse-card --nfc" script_bridge

sigterm_card() {
    kill -TERM "$CARD_PID"
    wait_for sh -c "! kill -0 $CARD_PID 2>/dev/null" || return 1
    wait "$CARD_PID"
    rc=$?
    CARD_PID=
    cat "$RUN/card-bridge.log"
    [ $rc -eq 0 ] && grep -q "stopped, image" "$RUN/card-bridge.log"
}
check "bridge: tse-card --nfc stops at SIGTERM while waiting for a reader" sigterm_card

emulator_bridge() {
    LIBNFC_DEVICE="pn532_uart:$RUN/em" timeout 30 nfc-emulate-forum-tag4 >"$RUN/tag4.log" 2>&1 &
    EMU_PID=$!
    sleep 0.5
    out=$(timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/rd" --no-report \
        --apdu "00A4040007D276000085010100=>9000" --apdu "00A4000C02E103=>9000" \
        --apdu "00B000000F=>000F20 * 9000" --apdu "00A4000C02E104=>9000" \
        --apdu "00B0000002=>0021 9000" --apdu "00B0000221=>D1 * 9000")
    rc=$?
    echo "$out"
    stop_pid "$EMU_PID"
    EMU_PID=
    [ $rc -eq 0 ]
}
check "bridge: stock nfc-emulate-forum-tag4 read by tse-tap (the NDEF file)" emulator_bridge
stop_pid "$SIM_PID"
SIM_PID=

# ---- reader mode: the simulated reader runs a script against tse-card --nfc --------------
start_sim "$RUN/sim-reader.log" reader --link "$RUN/em2" -f "$SRC/tests/nfc/contactless.tse" \
    --repeat 3 --wait 20 --log "$RUN/sim-reader.json" || exit 1
start_card "$RUN/card-reader.log" --card "$RUN/reader.img" --nfc "pn532_uart:$RUN/em2" \
    --no-vpcd || exit 1
reader_mode() {
    wait "$SIM_PID"
    rc=$?
    SIM_PID=
    cat "$RUN/sim-reader.log"
    cat "$RUN/card-reader.log"
    [ $rc -eq 0 ] && grep -q "3 activation(s), 0 failure(s)" "$RUN/sim-reader.log" &&
        [ "$(count_in "$RUN/card-reader.log" "released the card")" -ge 3 ]
}
check "reader mode: tse-pn532sim runs a script 3 times against tse-card --nfc" reader_mode
stop_pid "$CARD_PID"
CARD_PID=

# ---- reader mode with the purse: the simulated reader is a gate running wallet commands -----
start_sim "$RUN/sim-reader-purse.log" reader --link "$RUN/em3" \
    -f "$SRC/tests/nfc/purse-reader.tse" --wait 20 --log "$RUN/sim-reader-purse.json" || exit 1
start_card "$RUN/card-reader-purse.log" --card "$RUN/reader-purse.img" \
    --profile "$SRC/tests/nfc/purse.profile" --nfc "pn532_uart:$RUN/em3" --no-vpcd || exit 1
reader_mode_purse() {
    wait "$SIM_PID"
    rc=$?
    SIM_PID=
    cat "$RUN/sim-reader-purse.log"
    [ $rc -eq 0 ] && grep -q "1 activation(s), 0 failure(s)" "$RUN/sim-reader-purse.log" &&
        grep -q "exit at station 0017, fare 2.00: balance 8.00.*(verified)" "$RUN/sim-reader-purse.log"
}
check "reader mode: a gate script (load, entry, exit, TAC verified) against tse-card --nfc" \
    reader_mode_purse
stop_pid "$CARD_PID"
CARD_PID=

# ---- real-time pacing: measured times follow the model -----------------------------------
start_sim "$RUN/sim-rt.log" card --card "$RUN/card.img" --link "$RUN/pn532rt" --realtime \
    --log "$RUN/sim-rt.json" || exit 1
realtime() {
    out=$(timeout 30 "$BIN/tse-tap" --device "pn532_uart:$RUN/pn532rt" --quiet \
        --device-model sim-realtime --apdu "00A4040008${DIAG}" --apdu "8010010000") || return 1
    echo "$out"
    # exchange 2: 258-byte answer, 2 blocks at FSD 256: about 23.8 ms of air; the round trip
    # must not be shorter than the modelled air time
    echo "$out" | awk '$1 == "2" { air = $(NF - 2); wall = $NF } END { exit !(air > 20 && wall >= air) }'
}
check "real-time pacing: a paced round trip lasts at least the modelled air time" realtime
stop_pid "$SIM_PID"
SIM_PID=

echo "nfc-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
