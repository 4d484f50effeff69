#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The transit purse over PC/SC and over both interfaces at once. One tse-card (purse profile)
# serves its contact interface to pcscd (vpcd) and its contactless interface to a libnfc
# reader (tse-pn532sim bridge):
#  - tse-tap --reader runs the gate transactions through pcscd and vpcd;
#  - a POS on the contact side (apdu-shell --reader, `wallet purchase`) and gates on the
#    contactless side (tse-tap --txn purse through the bridge) use the same purse at the same
#    time; every transaction must verify and the purse must hold exactly their sum.
# Usage: purse-pcsc-test.sh BIN_DIR RUN_DIR SRC_DIR
# Exit 0 passed, 1 failed, 77 cannot run here (ctest: skipped).
set -u
. "$3/scripts/pcsc-env.sh"
pcsc_isolate "$0" "$@"
BIN="$1"
RUN="$2/purse-pcsc-test"
SRC="$3"
. "$SRC/tests/nfc/nfc-lib.sh"
for tool in pcscd opensc-tool; do
    command -v "$tool" >/dev/null 2>&1 || { echo "purse-pcsc-test: $tool missing" >&2; exit 77; }
done
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

echo "purse-pcsc-test: pcscd in $PCSC_MODE"
pcsc_start "$RUN" || exit 1
start_sim "$RUN/sim.log" bridge --link "$RUN/rd" --link2 "$RUN/em" || exit 1
start_card "$RUN/card.log" --card "$RUN/se.img" --profile "$SRC/tests/nfc/purse.profile" \
    --nfc "pn532_uart:$RUN/em" --trace || exit 1
pcsc_wait_card 0 || { cat "$RUN/card.log"; exit 1; }

EP=A000000632010105
R="--reader 0"
D="--device pn532_uart:$RUN/rd"

gate() { # gate TRANSPORT ARGS...
    tr="$1"
    shift
    # shellcheck disable=SC2086
    timeout 60 "$BIN/tse-tap" $tr --txn purse "$@"
}

pcsc_gates() {
    out=$(gate "$R" --no-report --param mode=load --param amount=30.00 \
        --param time=20261126080000) || return 1
    echo "$out"
    # the contact interface has no PPSE: the gate selects the EP AID, as some readers do
    echo "$out" | grep -q "no MOT_T_EP entry in the PPSE: selecting the EP AID" &&
        echo "$out" | grep -q "purse: load, amount 30.00: balance 0.00 -> 30.00, online counter 0001, MAC1 and TAC [0-9A-F]* verified" ||
        return 1
    out=$(gate "$R" --quiet --no-report --param mode=entry --param station=21 \
        --param time=20261126080500) || return 1
    echo "$out"
    echo "$out" | grep -q "purse: entry at station 0021: balance 30.00 -> 30.00, offline counter 0001" ||
        return 1
    out=$(gate "$R" --quiet --param mode=exit --param station=33 --param fare=5.00 \
        --param time=20261126083000) || return 1
    echo "$out"
    echo "$out" | grep -q "purse: exit at station 0033 (entered at station 0021), fare 5.00: balance 30.00 -> 25.00, offline counter 0002, MAC2 and TAC [0-9A-F]* verified" &&
        echo "$out" | grep -q "card time: round trip through PC/SC reader '0'" &&
        echo "$out" | grep -q "activation not modelled" &&
        grep -q "^\[contact\]" "$RUN/card.log"
}
check "tse-tap --reader: load, entry and exit through pcscd and vpcd" pcsc_gates

pcsc_recover() {
    out=$(gate "$R" --quiet --no-report --repeat 2 --param mode=purchase --param amount=1.00 \
        --param cut=debit --param time=20261126090000) || return 1
    echo "$out"
    echo "$out" | grep -q "purse: recovered purchase 1.00 on re-tap: proof for counter 0003, MAC2 and TAC [0-9A-F]* verified; balance 24.00 (was 25.00), not debited again"
}
check "tse-tap --reader: a lost DEBIT answer recovered on the next connect" pcsc_recover

# ---- both interfaces on the same purse at the same time ---------------------------------
POS_N=300
GATE_N=6
{
    echo "wallet time 20261126100000"
    echo "wallet select"
    i=0
    while [ $i -lt $POS_N ]; do
        echo "wallet purchase 0.01"
        i=$((i + 1))
    done
    echo "wallet balance"
} >"$RUN/pos.tse"

both() {
    "$BIN/apdu-shell" --reader 0 -f "$RUN/pos.tse" >"$RUN/pos.out" 2>&1 &
    pos_pid=$!
    i=0
    : >"$RUN/gates.out"
    while [ $i -lt $GATE_N ]; do
        gate "$D" --quiet --no-report --param mode=entry --param station=1 \
            --param time=20261126100100 >>"$RUN/gates.out" 2>&1
        gate "$D" --quiet --no-report --param mode=exit --param station=2 --param fare=0.20 \
            --param time=20261126100200 >>"$RUN/gates.out" 2>&1
        i=$((i + 1))
    done
    wait $pos_pid
    cat "$RUN/gates.out"
    grep "^purchase\|error" "$RUN/pos.out" | tail -5
    # Each transaction either verifies or, when a transaction of the other interface
    # committed between its INITIALIZE and its DEBIT, is refused with 6985 (nothing written)
    pos_ok=$(grep -c "^purchase 0.01: .*(verified)" "$RUN/pos.out")
    pos_stale=$(grep -c "DEBIT FOR PURCHASE answered 6985" "$RUN/pos.out")
    gates_ok=$(grep -c "MAC2 and TAC [0-9A-F]* verified" "$RUN/gates.out")
    exits_ok=$(grep -c "^purse: exit at .*verified" "$RUN/gates.out")
    gates_stale=$(grep -c "failed: DEBIT FOR CAPP PURCHASE answered 6985" "$RUN/gates.out")
    gates_again=$(grep -c "answered 6985 (the purse changed during the transaction): running it again" \
        "$RUN/gates.out")
    echo "contact: $pos_ok verified, $pos_stale refused (6985);" \
        "contactless: $gates_ok verified ($gates_again after a second try), $gates_stale refused"
    # no two debits share a counter value
    dup=$(grep -ho "offline counter [0-9A-F]*" "$RUN/pos.out" "$RUN/gates.out" | sort | uniq -d)
    [ -z "$dup" ] || { echo "counter used twice: $dup"; return 1; }
    echo "$pos_ok $exits_ok $gates_ok" >"$RUN/counts"
    [ $((pos_ok + pos_stale)) -eq $POS_N ] && [ $((gates_ok + gates_stale)) -eq $((2 * GATE_N)) ] &&
        [ "$pos_ok" -gt 0 ] && [ "$gates_ok" -gt 0 ]
}
check "contact POS (PC/SC) and contactless gates (libnfc) on one purse at the same time" both

overlap() {
    # in the card's trace: contactless DEBITs fall between the first and the last contact
    # DEBIT (the two sides really ran at the same time); also counted: contactless DEBITs
    # inside a contact purchase (between its INITIALIZE and its DEBIT)
    awk '/^\[contact\]/ { side = "c"; next } /^\[contactless/ { side = "n"; next }
         /^-> 805001/ && side == "c" { open = 1 }
         /^-> 805401/ { if (side == "c") { if (!first) first = NR; last = NR; open = 0 }
                        else { cl[NR] = 1; if (open) inside++ } }
         END { for (n in cl) if (n + 0 > first && n + 0 < last) during++;
               printf "%d contactless debits during the contact session, %d inside a contact purchase\n", during, inside;
               exit !(during >= 2) }' "$RUN/card.log"
}
check "the two sides overlapped (contactless debits during the contact purchases)" overlap

final_state() {
    read -r pos_ok exits_ok gates_ok <"$RUN/counts" || return 1
    # 24.00 - the verified purchases and fares; the counter: 3 + every verified debit
    expect_bal=$(printf '%08X' $((2400 - pos_ok - 20 * exits_ok)))
    expect_seq=$(printf '%04X' $((3 + pos_ok + gates_ok)))
    # shellcheck disable=SC2086
    timeout 60 "$BIN/tse-tap" $R --no-report --apdu "00A4040008${EP}=>6F * 9000" \
        --apdu "805C000204=>$expect_bal 9000" --apdu "00B201C400=>$expect_seq * 9000"
}
check "the purse holds exactly the verified transactions of both sides, one counter each" \
    final_state

stop_pid "$CARD_PID"
rc=$?
CARD_PID=
check "tse-card stops cleanly at SIGTERM" test $rc -eq 0

echo "purse-pcsc-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
