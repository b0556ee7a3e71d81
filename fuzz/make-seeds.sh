#!/bin/bash
# Rebuilds the committed seed sets fuzz/seeds/<target>/ (see README.md, "Seeds and corpora").
#
#   [TARGETS="t1 t2"] [MAX_PICKS=150] fuzz/make-seeds.sh [CORPUS-ROOT]
#
# For each target, the seeds are
#   at most $MAX_PICKS inputs of CORPUS-ROOT/<target>/, picked greedily for the edge coverage
#   they add to the project's test vectors that target parses (vectors.sh, which every run
#   copies into corpus/<target>; the vectors themselves stay in their own folders).
#   The coverage comes from a libFuzzer merge pass,
#        <target> -set_cover_merge=1 -merge_control_file=CTL -use_counters=0 -use_cmp=0 OUT VECTORS CORPUS
#      whose control file lists every edge (FT lines) each input reaches (a plain -merge=1 lists
#      only the edges not seen in a smaller input). An exact set cover
#      (the files that pass copies to OUT) takes 250-1,700 files a target, too many to commit; the greedy pick
#      keeps the inputs that add most edges first and prints how many edges the seeds keep.
# CORPUS-ROOT defaults to the grown corpora as last committed (commit $CORPUS_REV, before they
# left git), extracted with `git archive`; pass fuzz/corpus to reseed from a locally grown corpus.
# Needs cargo-fuzz and RUSTC_BOOTSTRAP=1 (README.md). The picked files depend on the compiler's
# instrumentation, so another toolchain may pick a slightly different set.
set -euo pipefail
cd "$(dirname "$0")"
CORPUS_REV=03c5d73a
MAX_PICKS=${MAX_PICKS:-150}
all=(private_key certificate csr kube_csr kubeconfig kubeadm_config inspect)
read -r -a targets <<< "${TARGETS:-${all[*]}}"   # TARGETS="csr inspect" remakes only those
repo=..

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $# -gt 0 ]; then
  corpus=$(cd "$1" && pwd)
else
  git -C "$repo" archive "$CORPUS_REV" fuzz/corpus | tar -x -C "$tmp"
  corpus=$tmp/fuzz/corpus
fi

RUSTC_BOOTSTRAP=1 cargo fuzz build -O
bin=target/x86_64-unknown-linux-gnu/release

for t in "${targets[@]}"; do
  rm -rf "seeds/$t" "$tmp/v" "$tmp/out"
  mkdir -p "seeds/$t" "$tmp/out"
  # The vectors are the baseline the picks must add to; they are not copied into seeds/ (a run
  # copies them into corpus/: vectors.sh).
  ./vectors.sh "$t" "$tmp/v"
  if [ -d "$corpus/$t" ]; then
    "$bin/$t" -set_cover_merge=1 -merge_control_file="$tmp/$t.ctl" -use_counters=0 -use_cmp=0 \
      "$tmp/out" "$tmp/v" "$corpus/$t" > "$tmp/$t.log" 2>&1 || { cat "$tmp/$t.log"; exit 1; }
    python3 pick-seeds.py "$tmp/$t.ctl" "$tmp/v" "$MAX_PICKS" "seeds/$t" | sed "s/^/$t: /"
  fi
  echo "$t: $(find "seeds/$t" -type f | wc -l) seeds"
done
