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
python3 - "$PWD/target/release/kubepki" "$n" <<'PY'
import os, shutil, statistics, subprocess, sys, tempfile, time

kubepki, n = sys.argv[1], int(sys.argv[2])
steps = [["init"], ["ca", "rotate", "start"], ["ca", "rotate", "reissue"], ["ca", "rotate", "finish"]]
for alg in ["RSA-2048", "ECDSA-P256"]:
    times = {i: [] for i in range(len(steps))}
    load = os.getloadavg()[0]
    for _ in range(n):
        d = tempfile.mkdtemp()
        for i, step in enumerate(steps):
            argv = [kubepki, *step, "--cert-dir", d + "/pki", "--kubeconfig-dir", d,
                    "--node-name", "cp1", "--apiserver-advertise-address", "192.0.2.10",
                    "--encryption-algorithm", alg]
            t = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[i].append(time.perf_counter() - t)
        shutil.rmtree(d)
    for i, step in enumerate(steps):
        print(f"measure {alg} {'_'.join(step)} median_s={statistics.median(times[i]):.4f} n={n}")
    print(f"measure {alg} loadavg_1min={load:.2f}..{os.getloadavg()[0]:.2f}")
PY
