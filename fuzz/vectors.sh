#!/bin/bash
# Copies the project's test vectors that a fuzz target parses into a folder, as starting inputs
# of a run (README.md, "Seeds and corpora"). The vectors stay in their own folders in git
# (tests/data/..., crates/kubepki-kubeadm/tests/data); the copies go to a folder git ignores
# (corpus/TARGET) or a temporary one, named v--FOLDER--FILE.
#
#   fuzz/vectors.sh TARGET DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
all=(private_key certificate csr kube_csr kubeconfig kubeadm_config inspect)

# The test vectors each target reads (globs relative to the repository root).
vectors() {
  local any="tests/data/malformed/any--*"
  case $1 in
    private_key) echo "tests/data/keys/* tests/data/malformed/key--* $any" ;;
    certificate) echo "tests/data/keys/*.crt tests/data/malformed/cert--* $any" ;;
    csr) echo "tests/data/csr/* tests/data/hostile/requests/csr--* tests/data/malformed/csr--* $any" ;;
    kube_csr) echo "tests/data/hostile/requests/manifest--* tests/data/malformed/manifest--* $any" ;;
    kubeconfig) echo "crates/kubepki-kubeadm/tests/data/kubeconfigs/*.conf.in tests/data/malformed/kubeconfig--* $any" ;;
    kubeadm_config) echo "crates/kubepki-kubeadm/tests/data/v1beta*.yaml tests/data/malformed/config--* $any" ;;
    inspect) for t in "${all[@]}"; do [ "$t" = inspect ] || vectors "$t"; done | tr '\n' ' ' ;;
    *) ;; # pkcs11_uri: its seeds are hand-written, in seeds/pkcs11_uri
  esac
}

mkdir -p "$2"
globs=$(vectors "$1")
[ -n "$globs" ] || exit 0
for f in $(cd "$repo" && eval "ls -d $globs" | sort -u); do
  [ -f "$repo/$f" ] || continue
  cp "$repo/$f" "$2/v--$(basename "$(dirname "$f")")--$(basename "$f")"
done
