#!/usr/bin/env bash
# kubepki against OpenSSL, measured in one run on this machine. Prints one line per comparison:
#   ratio NAME=X.XX      (ours over OpenSSL; higher is better)
#   measure NAME=VALUE   (absolute figures the targets in docs/performance.md refer to)
#
# usage: benches/compare-openssl.sh [SECONDS]     (default 10 s per throughput measurement)
# Needs: openssl, python3 (to read criterion's JSON), bc, /usr/bin/time (Debian packages `bc`, `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -p kubepki-cli >/dev/null 2>&1
bin=target/release/kubepki

criterion_rate() { # group/function -> operations per second (from the mean)
    python3 - "$1" <<'PY'
import json, sys
est = json.load(open(f"target/criterion/{sys.argv[1]}/new/estimates.json"))
print(f"{1e9 / est['mean']['point_estimate']:.1f}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

wall() { # command... -> seconds
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
}

# 1. RSA-3072 signing: openssl speed vs our sign and full issuance.
ossl_sign=$(openssl speed -seconds "$secs" rsa3072 2>/dev/null | awk '/^rsa 3072 bits/ {print $6}')
cargo bench -p kubepki-benches --bench sign_hot_path -- --measurement-time "$secs" \
    'sign_hot_path/RSA-3072|issue_leaf|issue_from_csr' >/dev/null 2>&1
our_sign=$(criterion_rate sign_hot_path/RSA-3072)
our_issue=$(criterion_rate issue_leaf/RSA-3072)
our_csr=$(criterion_rate issue_from_csr/RSA-3072)
echo "measure openssl_speed_rsa3072_sign_per_s=$ossl_sign"
echo "measure sign_rsa3072_per_s=$our_sign"
echo "measure issue_leaf_rsa3072_per_s=$our_issue"
echo "measure issue_from_csr_rsa3072_per_s=$our_csr"
echo "ratio sign_rsa3072=$(echo "$our_sign / $ossl_sign" | bc -l | xargs printf %.2f)"
echo "ratio issue_leaf_rsa3072=$(echo "$our_issue / $ossl_sign" | bc -l | xargs printf %.2f)"
echo "measure issuance_overhead_pct=$(echo "($our_sign / $our_issue - 1) * 100" | bc -l | xargs printf %.1f)"

# 2. A whole RSA-3072 tree: the OpenSSL CLI script (sequential) vs `kubepki init` (median of 5).
ossl_tree=$(for i in 1 2 3; do wall bash benches/scripts/openssl-tree.sh "$work/o$i" rsa3072; done | median)
our_tree=$(for i in 1 2 3 4 5; do
    wall "$bin" init --cert-dir "$work/k$i/pki" --kubeconfig-dir "$work/k$i" \
        --apiserver-advertise-address 192.0.2.10 --node-name cp1 --encryption-algorithm RSA-3072
done | median)
echo "measure openssl_cli_tree_rsa3072_s=$ossl_tree"
echo "measure kubepki_init_rsa3072_s=$our_tree"
echo "ratio tree_rsa3072=$(echo "$ossl_tree / $our_tree" | bc -l | xargs printf %.2f)"

# 3. Whole processes on an ECDSA-P256 tree: init, check-expiration, verify (medians of 9), and
#    init's peak RSS.
flags=(--cert-dir "$work/p/pki" --kubeconfig-dir "$work/p" --apiserver-advertise-address 192.0.2.10 --node-name cp1)
p256=$(for i in $(seq 9); do rm -rf "$work/p"; wall "$bin" init "${flags[@]}" --encryption-algorithm ECDSA-P256; done | median)
rm -rf "$work/p"
rss=$(/usr/bin/time -f %M "$bin" init "${flags[@]}" --encryption-algorithm ECDSA-P256 2>&1 >/dev/null | tail -1)
check=$(for i in $(seq 9); do wall "$bin" certs check-expiration "${flags[@]}"; done | median)
ver=$(for i in $(seq 9); do wall "$bin" verify "${flags[@]}"; done | median)
echo "measure init_p256_ms=$(echo "$p256 * 1000" | bc -l | xargs printf %.1f)"
echo "measure init_peak_rss_mb=$(echo "$rss / 1024" | bc -l | xargs printf %.1f)"
echo "measure check_expiration_ms=$(echo "$check * 1000" | bc -l | xargs printf %.1f)"
echo "measure verify_ms=$(echo "$ver * 1000" | bc -l | xargs printf %.1f)"
grep -q avx512ifma /proc/cpuinfo && echo "measure cpu_avx512ifma=yes" || echo "measure cpu_avx512ifma=no"

# 4. The ECDSA-P256 tree in memory and through the folder sink (criterion, in-process) against
#    the same tree made by the OpenSSL CLI script (median of 5, whole processes, no fsync).
cargo bench -p kubepki-benches --bench tree -- --measurement-time "$secs" sinks >/dev/null 2>&1
mem=$(criterion_rate sinks/in_memory/ECDSA-P256)
folder=$(criterion_rate sinks/folder_sink/ECDSA-P256)
ossl_p256=$(for i in 1 2 3 4 5; do wall bash benches/scripts/openssl-tree.sh "$work/e$i" p256; done | median)
echo "measure tree_p256_in_memory_ms=$(echo "1000 / $mem" | bc -l | xargs printf %.2f)"
echo "measure tree_p256_folder_sink_ms=$(echo "1000 / $folder" | bc -l | xargs printf %.2f)"
echo "measure openssl_cli_tree_p256_ms=$(echo "$ossl_p256 * 1000" | bc -l | xargs printf %.1f)"
echo "ratio tree_p256_in_memory=$(echo "$ossl_p256 * $mem" | bc -l | xargs printf %.1f)"
echo "ratio tree_p256_folder_sink=$(echo "$ossl_p256 * $folder" | bc -l | xargs printf %.1f)"
