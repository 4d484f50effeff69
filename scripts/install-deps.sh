#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages tse needs, and only those that are missing. Idempotent;
# works as root and through sudo. `make demo`, `make check` and `make bench` call it first.
set -eu

PACKAGES="build-essential cmake pkg-config clang libclang-rt-14-dev \
libmbedtls-dev libcmocka-dev libedit-dev zlib1g-dev libzip-dev \
pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools python3-pyscard iproute2 \
libnfc-dev libnfc-bin libnfc-examples"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root (or install sudo) to install them" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
