#!/usr/bin/env python3
"""Greedy seed pick for make-seeds.sh.

    pick-seeds.py CONTROL-FILE VECTOR-DIR MAX-PICKS OUT-DIR

CONTROL-FILE is a libFuzzer merge control file: the number of inputs, the number in the first
corpus, one path per input, then per input `STARTED i size`, `FT i features...` (with -use_counters=0 -use_cmp=0, the edges the input reaches), `COV i ...`.
The inputs under VECTOR-DIR are kept; then, at most MAX-PICKS times, the input that adds most
uncovered edges is copied to OUT-DIR (ties: the smaller input, then the path). Prints the edges
covered by the vectors, by all inputs and by the seeds.
"""

import os
import shutil
import sys

ctl, vec_dir, max_picks, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(ctl).read().splitlines()
n = int(lines[0])
paths = lines[2 : 2 + n]
cov, size = {}, {}
for line in lines[2 + n :]:
    f = line.split()
    if f[0] == "STARTED":
        size[int(f[1])] = int(f[2])
    elif f[0] == "FT":
        cov[int(f[1])] = set(f[2:])
vec_dir = os.path.abspath(vec_dir)
vectors = [i for i in range(n) if os.path.abspath(paths[i]).startswith(vec_dir + os.sep)]
everything = set().union(*cov.values())
covered = set().union(*(cov.get(i, set()) for i in vectors))
by_vectors = len(covered)
rest = {i: cov[i] - covered for i in cov if i not in vectors}
picks = 0
while picks < max_picks:
    best = min(rest, key=lambda i: (-len(rest[i]), size.get(i, 0), paths[i]), default=None)
    if best is None or not rest[best]:
        break
    gain = rest.pop(best)
    covered |= gain
    for i in rest:
        rest[i] -= gain
    shutil.copy(paths[best], os.path.join(out, os.path.basename(paths[best])))
    picks += 1
print(
    f"{len(vectors)} vectors reach {by_vectors} edges; all {n} inputs {len(everything)};"
    f" vectors + {picks} picked inputs {len(covered)}"
    f" ({100 * len(covered) / max(len(everything), 1):.1f}%)"
)
