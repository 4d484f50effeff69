#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make demo`: an end-to-end session on a freshly created emulated card.
set -eu
build="${1:-build}"
shell="$build/bin/apdu-shell"
dir="$build/demo"
mkdir -p "$dir"
img="$dir/demo.img"
rm -f "$img" "$img.tmp"
echo "tse demo: creating $img from the default profile"
"$shell" --card "$img" --timing -f examples/demo-core.tse
echo
echo "tse demo: reopening $img in a new process"
"$shell" --card "$img" -f examples/demo-reopen.tse
echo
echo "tse demo: done. Try it yourself: $shell --card $img"
