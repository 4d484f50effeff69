# SPDX-License-Identifier: Apache-2.0
# Shell functions (sourced) that run pcscd with the vpcd driver and tse-card for tests and
# benchmarks. Call pcsc_isolate "$0" "$@" first: when the kernel allows it, the caller
# re-runs itself in private mount and network namespaces, so its pcscd has its own
# /run/pcscd and vpcd's port (bound to 0.0.0.0) is reachable from nowhere else.

pcsc_isolate() {
    if [ -z "${TSE_PCSC_NS:-}" ] && unshare --mount --net true 2>/dev/null; then
        TSE_PCSC_NS=1 exec unshare --mount --net sh "$@"
    fi
    if [ -n "${TSE_PCSC_NS:-}" ]; then
        mount --make-rprivate / &&
            mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd &&
            ip link set lo up || { echo "pcsc-env: namespace set-up failed" >&2; exit 1; }
        PCSC_MODE="private namespaces"
    else
        PCSC_MODE="host namespace (unshare not permitted)"
        if [ -S /run/pcscd/pcscd.comm ] && [ -f /run/pcscd/pcscd.pid ] &&
            kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; then
            echo "pcsc-env: a pcscd is already running and namespaces are not permitted;" \
                 "stop it to run these tests" >&2
            exit 77
        fi
    fi
}

# pcsc_start RUN_DIR: start pcscd in the foreground, wait for its socket.
pcsc_start() {
    PCSC_RUN="$1"
    mkdir -p "$PCSC_RUN"
    # PCSC_PREFIX (e.g. "taskset -c 0") and PCSCD_FLAGS (default --apdu) may be set.
    # shellcheck disable=SC2086
    setsid ${PCSC_PREFIX:-} pcscd --foreground ${PCSCD_FLAGS---apdu} >"$PCSC_RUN/pcscd.log" 2>&1 </dev/null &
    PCSCD_PID=$!
    i=0
    while [ ! -S /run/pcscd/pcscd.comm ]; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$PCSCD_PID" 2>/dev/null; then
            echo "pcsc-env: pcscd did not start; its log:" >&2
            cat "$PCSC_RUN/pcscd.log" >&2
            return 1
        fi
        sleep 0.05
    done
}

# pcsc_wait_card INDEX: wait until reader INDEX has a card (pcscd polls every ~0.4 s).
pcsc_wait_card() {
    i=0
    while ! opensc-tool -l 2>/dev/null | awk -v r="$1" '$1 == r && $2 == "Yes" { f = 1 } END { exit !f }'; do
        i=$((i + 1))
        [ $i -gt 60 ] && { echo "pcsc-env: no card in reader $1 after 6 s" >&2; return 1; }
        sleep 0.1
    done
}

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 50 ] && { kill -9 "$1" 2>/dev/null; break; }
        sleep 0.1
    done
    wait "$1" 2>/dev/null
    return 0
}

pcsc_stop() {
    [ -n "${PCSCD_PID:-}" ] && stop_pid "$PCSCD_PID"
    PCSCD_PID=
}
