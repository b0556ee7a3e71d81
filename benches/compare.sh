#!/usr/bin/env bash
# kubepki against its peers, measured in one run on this machine: OpenSSL (`openssl speed`, and
# the OpenSSL command line making the kubeadm tree: scripts/openssl-tree.sh) and a
# kubeadm-equivalent Go program (scripts/kubeadm-peer: Go's crypto/rsa, crypto/ecdsa and
# x509.CreateCertificate, one key after another, os.WriteFile without fsync). Prints one line per
# comparison:
#   ratio NAME=X.XX      (kubepki over the peer: its rate over theirs, or their time over its;
#                        higher is better)
#   measure NAME=VALUE   (absolute figures the targets in docs/performance.md refer to)
#
# usage: benches/compare.sh [SECONDS [SECTIONS]]
#   SECONDS   per throughput measurement (default 10)
#   SECTIONS  which sections to run, e.g. "5" or "1 2 3 4 5" (default: all)
#   PAIRS=N   runs per side in section 5 (default 11, at least 11 for the documented figures)
# Needs: openssl, python3 (to read criterion's JSON and to time section 5), bc, /usr/bin/time
# (Debian packages `bc`, `time`), go (Debian package `golang-go`; section 5 only).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
sections=${2:-1 2 3 4 5}
pairs=${PAIRS:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want() { [[ " $sections " == *" $1 "* ]]; }

cargo build --release -p kubepki-cli >/dev/null 2>&1
bin=target/release/kubepki

criterion_rate() { # group/function -> operations per second (from the mean); criterion names the
    # folder of a function "a/b" a_b
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

if want 1; then
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

fi

if want 2; then
# 2. A whole RSA-3072 tree: the OpenSSL CLI script (sequential) vs `kubepki init` (median of 5).
ossl_tree=$(for i in 1 2 3; do wall bash benches/scripts/openssl-tree.sh "$work/o$i" rsa3072; done | median)
our_tree=$(for i in 1 2 3 4 5; do
    wall "$bin" init --cert-dir "$work/k$i/pki" --kubeconfig-dir "$work/k$i" \
        --apiserver-advertise-address 192.0.2.10 --node-name cp1 --encryption-algorithm RSA-3072
done | median)
echo "measure openssl_cli_tree_rsa3072_s=$ossl_tree"
echo "measure kubepki_init_rsa3072_s=$our_tree"
echo "ratio tree_rsa3072=$(echo "$ossl_tree / $our_tree" | bc -l | xargs printf %.2f)"

fi

if want 3; then
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

fi

if want 4; then
# 4. The ECDSA-P256 tree in memory and through the folder sink (criterion, in-process) against
#    the same tree made by the OpenSSL CLI script (median of 5, whole processes, no fsync).
cargo bench -p kubepki-benches --bench tree -- --measurement-time "$secs" sinks >/dev/null 2>&1
mem=$(criterion_rate sinks/in_memory_ECDSA-P256)
folder=$(criterion_rate sinks/folder_sink_ECDSA-P256)
ossl_p256=$(for i in 1 2 3 4 5; do wall bash benches/scripts/openssl-tree.sh "$work/e$i" p256; done | median)
echo "measure tree_p256_in_memory_ms=$(echo "1000 / $mem" | bc -l | xargs printf %.2f)"
echo "measure tree_p256_folder_sink_ms=$(echo "1000 / $folder" | bc -l | xargs printf %.2f)"
echo "measure openssl_cli_tree_p256_ms=$(echo "$ossl_p256 * 1000" | bc -l | xargs printf %.1f)"
echo "ratio tree_p256_in_memory=$(echo "$ossl_p256 * $mem" | bc -l | xargs printf %.1f)"
echo "ratio tree_p256_folder_sink=$(echo "$ossl_p256 * $folder" | bc -l | xargs printf %.1f)"
fi

if want 5; then
# 5. Whole trees, whole processes, for RSA-2048, RSA-3072 and ECDSA-P256: `kubepki init` against
#    the Go peer and the OpenSSL CLI script, PAIRS rounds of one run each, in turn (kubepki, Go,
#    OpenSSL), each into a fresh folder after a sync (untimed); medians, the ratio of the medians
#    and the median of the per-round ratios.
command -v go >/dev/null || { echo "section 5 needs go (Debian package golang-go)" >&2; exit 1; }
# A build cache in the temp dir when Go has none (no HOME, as under some CI runners).
if ! go env GOCACHE >/dev/null 2>&1 || [ -z "$(go env GOCACHE 2>/dev/null)" ]; then
    export GOCACHE=$work/gocache GOPATH=$work/gopath
fi
(cd benches/scripts/kubeadm-peer && go build -o "$work/kubeadm-peer" .)
# The peer is a static executable, as Go builds it and as kubeadm ships; kubepki is measured both
# as `cargo build --release` makes it (dynamically linked) and as a static executable (glibc
# crt-static, the release binary an air-gapped site carries, built as a release is: `cargo
# dist-static`, docs/install.md): the ratios against Go use the static one, `init_dynamic` lines
# the other.
cargo dist-static >/dev/null 2>&1
static_bin=target/dist/kubepki-$(cargo pkgid -p kubepki-cli | sed 's/.*[#@]//')-x86_64-linux
file -L "$static_bin" | grep -q "static" || { echo "$static_bin: not static" >&2; exit 1; }
echo "measure go_version=$(go env GOVERSION)"
echo "measure cpu_avx512ifma_count=$(grep -c avx512ifma /proc/cpuinfo || true)"
python3 - "$static_bin" "$work" "$pairs" "$bin" <<'PY'
import os, shutil, statistics, subprocess, sys, time

kubepki, work, pairs, dynamic = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
peer = os.path.join(work, "kubeadm-peer")

def timed(argv, out):
    # Each program starts on a settled file system: the previous tree's removal, and whatever
    # the previous program left unwritten (the Go peer and the OpenSSL script never flush), are
    # written out first, untimed. Otherwise kubepki's flush (syncfs) would pay for the peers'
    # writes and deletions, and the order of the programs would decide the ratios.
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    return dt

for ours, go, ossl in [("RSA-2048", "rsa2048", "rsa2048"), ("RSA-3072", "rsa3072", "rsa3072"),
                       ("ECDSA-P256", "ecdsa-p256", "p256")]:
    k, g, o, kd = [], [], [], []
    load = [os.getloadavg()[0]]
    # Unwritten data in the system: above 16 MB, kubepki fsyncs each file instead of one syncfs.
    dirty = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("Dirty:"))
    for i in range(pairs):
        d = os.path.join(work, "t")
        init = ["init", "--cert-dir", d + "/pki", "--kubeconfig-dir", d,
                "--apiserver-advertise-address", "192.0.2.10", "--node-name", "cp1",
                "--encryption-algorithm", ours]
        k.append(timed([kubepki] + init, d))
        kd.append(timed([dynamic] + init, d))
        g.append(timed([peer, d, go], d))
        o.append(timed(["bash", "benches/scripts/openssl-tree.sh", d, ossl], d))
    load.append(os.getloadavg()[0])
    name = go.replace("-", "_")
    med = statistics.median
    print(f"measure kubepki_init_{name}_s={med(k):.4f}")
    print(f"measure kubepki_init_dynamic_{name}_s={med(kd):.4f}")
    print(f"measure go_peer_{name}_s={med(g):.4f}")
    print(f"measure openssl_cli_{name}_s={med(o):.4f}")
    print(f"measure loadavg_1min_{name}={load[0]:.2f}..{load[1]:.2f}")
    print(f"measure dirty_kb_at_start_{name}={dirty}")
    print(f"ratio init_vs_go_{name}={med(g) / med(k):.2f}")
    print(f"ratio init_vs_go_{name}_paired={med([b / a for a, b in zip(k, g)]):.2f}")
    print(f"ratio init_dynamic_vs_go_{name}={med(g) / med(kd):.2f}")
    print(f"ratio init_vs_openssl_{name}={med(o) / med(k):.2f}")
    print(f"ratio go_vs_openssl_{name}={med(o) / med(g):.2f}")
    sys.stdout.flush()
PY
fi
