#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Contact and contactless at the same time: one tse-card serves its contact interface to
# pcscd (vpcd) and its contactless interface to a libnfc reader (tse-pn532sim bridge). An
# apdu-shell script runs over PC/SC while tse-tap taps the card again and again; each side
# checks that it sees its own interface, selection and transient memory, and in the end the
# persistent state holds the transfers of both.
# Usage: nfc-pcsc-test.sh BIN_DIR RUN_DIR SRC_DIR
# Exit 0 passed, 1 failed, 77 cannot run here (ctest: skipped).
set -u
. "$3/scripts/pcsc-env.sh"
pcsc_isolate "$0" "$@"
BIN="$1"
RUN="$2/nfc-pcsc-test"
SRC="$3"
. "$SRC/tests/nfc/nfc-lib.sh"
command -v opensc-tool >/dev/null 2>&1 || { echo "nfc-pcsc-test: opensc-tool missing" >&2; exit 77; }
rm -rf "$RUN" && mkdir -p "$RUN"
passed=0
failed=0
SIM_PID=
CARD_PID=
cleanup() {
    [ -n "$CARD_PID" ] && stop_pid "$CARD_PID"
    [ -n "$SIM_PID" ] && stop_pid "$SIM_PID"
    pcsc_stop
}
trap cleanup EXIT INT TERM

echo "nfc-pcsc-test: pcscd in $PCSC_MODE"
pcsc_start "$RUN" || exit 1
start_sim "$RUN/sim.log" bridge --link "$RUN/rd" --link2 "$RUN/em" || exit 1
start_card "$RUN/card.log" --card "$RUN/card.img" --nfc "pn532_uart:$RUN/em" --trace || exit 1
pcsc_wait_card 0 || { cat "$RUN/card.log"; exit 1; }

DIAG=F074736544494101
CONTACT_N=150
TAPS=15
T32=00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF

# contact: select, fill clear-on-reset transient memory, then many rounds of INFO (contact,
# channel 0), transient read-back (must survive every contactless activation) and a transfer
{
    echo "00A4040008$DIAG => 6F0A8408$DIAG 9000"
    echo "8030010020 $T32 => 9000"
    i=0
    while [ $i -lt $CONTACT_N ]; do
        echo "8070000000 => 00 00 * 9000"
        echo "8032010020 => $T32 9000"
        echo "802200000400000001 => * 9000"
        i=$((i + 1))
    done
} >"$RUN/contact.tse"

# contactless, on every tap: its own transient area, INFO (contactless), one transfer
cat >"$RUN/cl.tse" <<EOF
00A4040008$DIAG => 6F0A8408$DIAG 9000
8032010020 => $(printf '%064d' 0) 9000
8030010020 FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100 => 9000
8070000000 => 01 00 * 9000
802200000400000001 => * 9000
8032010020 => FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100 9000
EOF

both() {
    "$BIN/tse-tap" --device "pn532_uart:$RUN/rd" --repeat $TAPS -f "$RUN/cl.tse" --quiet \
        --no-report >"$RUN/tap.out" 2>&1 &
    tap_pid=$!
    "$BIN/apdu-shell" --reader 0 -f "$RUN/contact.tse" >"$RUN/contact.out" 2>&1
    contact_rc=$?
    wait $tap_pid
    tap_rc=$?
    tail -3 "$RUN/contact.out"
    cat "$RUN/tap.out"
    echo "contact rc=$contact_rc contactless rc=$tap_rc"
    [ $contact_rc -eq 0 ] && [ $tap_rc -eq 0 ] &&
        [ "$(count_in "$RUN/card.log" "released the card after 6 APDU")" -eq $TAPS ]
}
check "contact (PC/SC) and contactless (libnfc) sessions at the same time, each intact" both

overlap() {
    # in the card's trace, contactless activations fall between the first and the last
    # contact APDU: the two sessions really ran at the same time
    [ "$(grep -c '^-> ' "$RUN/contact.out")" -eq $((2 + 3 * CONTACT_N)) ] &&
        awk '/^\[contact\]/ { if (!first) first = NR; last = NR }
             /activated by a reader/ { act[NR] = 1 }
             END { for (n in act) if (n + 0 > first && n + 0 < last) inside++;
                   print inside + 0, "activations inside the contact session";
                   exit !(inside >= 2) }' "$RUN/card.log"
}
check "the sessions overlapped (activations during the contact script)" overlap

state() {
    total=$((CONTACT_N + TAPS))
    seq=$(printf '%08X' $total)
    printf '00A4040008%s\n8024000010 => XXXXXXXX XXXXXXXX %s XXXXXXXX 9000\n' "$DIAG" "$seq" |
        "$BIN/apdu-shell" --reader 0
}
check "persistent state holds the transfers of both interfaces" state

stop_pid "$CARD_PID"
rc=$?
CARD_PID=
check "tse-card with --nfc and vpcd stops cleanly at SIGTERM" test $rc -eq 0

echo "nfc-pcsc-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
