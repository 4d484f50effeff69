# SPDX-License-Identifier: Apache-2.0
# Shell functions (sourced) for the NFC integration tests: the PN532 simulator on ptys,
# tse-card --nfc, libnfc clients. Everything is local (pseudo-terminals and symlinks in RUN).

# Only the user devices the tests name; no USB/serial probing.
export LIBNFC_AUTO_SCAN=false
unset LIBNFC_DEFAULT_DEVICE LIBNFC_INTRUSIVE_SCAN

check() { # check NAME CMD...: run CMD, count the result (needs RUN, passed, failed)
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

# wait_for COND_CMD... : up to 10 s
wait_for() {
    i=0
    until "$@"; do
        i=$((i + 1))
        [ $i -gt 100 ] && return 1
        sleep 0.1
    done
}

# stop_pid PID: TERM, wait up to 5 s, then KILL. Returns the process's exit status (or 137).
stop_pid() {
    kill "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return $?; }
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 50 ] && { kill -9 "$1" 2>/dev/null; break; }
        sleep 0.1
    done
    wait "$1" 2>/dev/null
}

# start_sim LOG ARGS...: start tse-pn532sim, wait for the symlinks it was given (--link,
# --link2); SIM_PID is set.
start_sim() {
    log="$1"
    shift
    "$BIN/tse-pn532sim" "$@" >"$log" 2>&1 &
    SIM_PID=$!
    links=""
    prev=""
    for a in "$@"; do
        case "$prev" in --link | --link2) links="$links $a" ;; esac
        prev="$a"
    done
    for l in $links; do
        wait_for test -L "$l" || { echo "simulator did not start:"; cat "$log"; return 1; }
    done
}

# start_card LOG ARGS...: start tse-card (e.g. --nfc CONNSTRING --no-vpcd), wait until its
# NFC device is open; CARD_PID is set.
start_card() {
    log="$1"
    shift
    "$BIN/tse-card" "$@" >"$log" 2>&1 &
    CARD_PID=$!
    wait_for grep -q "as ISO 14443-4A target" "$log" ||
        { echo "tse-card --nfc did not open its device:"; cat "$log"; return 1; }
}

count_in() { # count_in FILE PATTERN
    grep -c "$2" "$1" 2>/dev/null || true
}
