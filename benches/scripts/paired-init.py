#!/usr/bin/env python3
"""Paired whole-process `init` runs of several kubepki executables against the Go peer.

    python3 benches/scripts/paired-init.py ROUNDS ALG GO_ALG PEER KUBEPKI [KUBEPKI ...]
    e.g. python3 benches/scripts/paired-init.py 21 ECDSA-P256 ecdsa-p256 /tmp/kubeadm-peer \\
             /tmp/kubepki-before target/release/kubepki

Each round runs every executable once, then the peer (built from scripts/kubeadm-peer), each into
a fresh folder under ./paired-init.tmp after removing the previous one and an untimed
`os.sync()`, so that no program pays for another's unwritten files. Prints each one's median,
Go ÷ it by the medians and the median of the per-round ratios (docs/performance.md, "The
changes one by one").
"""
import os
import shutil
import statistics
import subprocess
import sys

import time

rounds, alg, go_alg, peer = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
bins = sys.argv[5:]
work = os.path.abspath("paired-init.tmp")
d = os.path.join(work, "t")


def timed(argv):
    shutil.rmtree(d, ignore_errors=True)
    os.sync()
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


res = {b: [] for b in bins + ["go"]}
for _ in range(rounds):
    for b in bins:
        res[b].append(timed([b, "init", "--cert-dir", d + "/pki", "--kubeconfig-dir", d,
                             "--apiserver-advertise-address", "192.0.2.10", "--node-name", "cp1",
                             "--encryption-algorithm", alg, "-q"]))
    res["go"].append(timed([peer, d, go_alg]))
shutil.rmtree(work, ignore_errors=True)
med = statistics.median
for b, v in res.items():
    paired = med([g / x for g, x in zip(res["go"], v)])
    print(f"{b}: median {med(v) * 1000:.2f} ms, go/this {med(res['go']) / med(v):.3f}, paired {paired:.3f}")
print("load", os.getloadavg())
