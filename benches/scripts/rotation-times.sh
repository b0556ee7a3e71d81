#!/usr/bin/env bash
# Whole-process wall time of `kubepki init` and of each `kubepki ca rotate` phase on fresh trees
# (median of N runs per step), RSA-2048 and ECDSA-P256: the figures of docs/performance.md,
# "CA rotation". `reissue` makes a new key for every leaf and kubeconfig, so it should cost
# about what `init` costs.
#
# usage: benches/scripts/rotation-times.sh [N]      (default 7; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-7}
cargo build --release -p kubepki-cli >/dev/null 2>&1
bin=$PWD/target/release/kubepki
steps=("init" "ca rotate start" "ca rotate reissue" "ca rotate finish")
for alg in RSA-2048 ECDSA-P256; do
    declare -A times=()
    for _ in $(seq 1 "$n"); do
        d=$(mktemp -d)
        for step in "${steps[@]}"; do
            s=$(date +%s.%N)
            # shellcheck disable=SC2086
            "$bin" $step --cert-dir "$d/pki" --kubeconfig-dir "$d" --node-name cp1 \
                --apiserver-advertise-address 192.0.2.10 --encryption-algorithm "$alg" >/dev/null 2>&1
            e=$(date +%s.%N)
            times[$step]+="$(echo "$e - $s" | bc -l) "
        done
        rm -rf "$d"
    done
    for step in "${steps[@]}"; do
        m=$(tr ' ' '\n' <<<"${times[$step]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        printf 'measure %s %s median_s=%.3f n=%d\n' "$alg" "${step// /_}" "$m" "$n"
    done
    unset times
done
