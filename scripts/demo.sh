#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make demo`: an end-to-end transit session on a freshly created emulated card.
set -eu
build="${1:-build}"
shell="${TSE_DEMO_SHELL:-$build/bin/apdu-shell}"
dir="$build/demo"
mkdir -p "$dir"
img="$dir/demo.img"
rm -f "$img" "$img.tmp"
echo "tse demo: a transit session on a new card ($img, default profile)"
"$shell" --card "$img" -f examples/demo-transit.tse
echo
echo "tse demo: the same image opened again by a new process"
"$shell" --card "$img" -f examples/demo-reopen.tse
echo
cat <<SUMMARY
tse demo summary:
  card manager  SCP03 (C-MAC + C-DEC); security domain A0000006325344010001 created with
                Authorized Management and its own keys (KVN 31)
  purse         A00000063201010510009156000014A1 installed and personalised through that
                domain; listed in the contactless PPSE as MOT_T_EP
  session       load 50.00, entry gate station 5, exit gate station 17 fare 3.00:
                balance 47.00, every MAC2 and TAC verified by the simulated PSAM
  persistence   a second process reads the same balance and the last debit's proof
Try it yourself: $shell --card $img   (then: interface contactless, wallet select, wallet balance)
SUMMARY
