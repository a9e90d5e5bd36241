#!/usr/bin/env bash
# The relocatable runtime bundle (scripts/bundle.sh, docs/packaging.md), built from this build
# directory into a temporary folder, then used the way a GPU node does: a clean environment
# (env -i, no LD_LIBRARY_PATH), libraries found through $ORIGIN, the folder moved elsewhere and
# the tarball unpacked elsewhere.
#
#   bundle_test.sh BUILD_DIR [TTTC]   with TTTC: also compiles the tiny model and checks that the
#                                     bundle's ttt-run (its OpenBLAS) computes the build's loss.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "$1")
tttc=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
clean() { env -i PATH=/usr/bin:/bin "$@"; }

# xz -0: the tarball's compression level does not matter here, its time does.
XZ_OPT=-0 "$root/scripts/bundle.sh" "$build" "$tmp/a/ttt-run-bundle"
[[ -f $tmp/a/ttt-run-bundle.tar.xz ]] || fail "no tarball"
grep -q "runtime bundle" "$tmp/a/ttt-run-bundle/README" || fail "no README"

if [[ -n $tttc ]]; then
  "$tttc" "$root/models/ttt_tiny.mlir" --target cpu --seq-len 64 --per-device-batch 1 -o "$tmp/tiny.bin"
  seq 100 487 31900 | head -65 | tr '\n' ' ' > "$tmp/batch.txt"
  want=$("$build/bin/ttt-run" "$tmp/tiny.bin" --loss "$tmp/batch.txt" | grep -o '"loss": [^,]*')
fi

check() { # the bundle at $1
  local b=$1 exe=$1/bin/ttt-run deps path so out rc
  deps=$(clean ldd "$exe")
  ! grep -q "not found" <<<"$deps" || fail "$b: unresolved libraries: $deps"
  # Debian's sentencepiece and OpenBLAS, and every other library the bundle carries, come from it.
  for so in libsentencepiece.so.0 libopenblas.so.0 $(ls "$b/lib"); do
    path=$(awk -v l="$so" '$1 == l {print $3}' <<<"$deps")
    [[ $so == libttt_mpi.so || $(realpath "$path") == "$(realpath "$b/lib/$so")" ]] ||
      fail "$b: $so resolves to '$path', not $b/lib/$so"
  done
  diff -r "$root/data/sample/en" "$b/share/ttt/sample/en" >/dev/null || fail "$b: no C4 sample"
  out=$(clean "$exe" --version) || fail "$b: --version failed: $out"
  [[ $out == "$("$build/bin/ttt-run" --version)" ]] || fail "$b: --version says $out"
  # No GPU in CI: `devices` must run and say so itself (exit 1), not fail to load (127).
  rc=0
  out=$(clean "$exe" devices 2>&1) || rc=$?
  [[ $rc -eq 0 || ($rc -eq 1 && $out == "ttt-run: error: "*) ]] || fail "$b: devices: rc $rc: $out"
  if [[ -n $tttc ]]; then
    out=$(clean "$exe" "$tmp/tiny.bin" --loss "$tmp/batch.txt") || fail "$b: --loss: $out"
    [[ $(grep -o '"loss": [^,]*' <<<"$out") == "$want" ]] || fail "$b: $out, build tree: $want"
  fi
  echo "ok: $b"
}

check "$tmp/a/ttt-run-bundle"
mv "$tmp/a" "$tmp/moved"
check "$tmp/moved/ttt-run-bundle"
mkdir "$tmp/unpacked"
tar -C "$tmp/unpacked" -xJf "$tmp/moved/ttt-run-bundle.tar.xz"
check "$tmp/unpacked/ttt-run-bundle"
# The bundle's sentencepiece loads the Llama-2 tokenizer (found through HOME, as for a user) and
# tokenizes the bundle's sample; skipped where no tokenizer was fetched.
rc=0
out=$(env -i PATH=/usr/bin:/bin ${HOME:+HOME=$HOME} "$tmp/unpacked/ttt-run-bundle/bin/ttt-run" data \
  --data sample --train-shards 1 --documents 1 --batches 1 --no-throughput --seq-len 64 --batch 2 2>&1) || rc=$?
if [[ $rc -ne 0 && $out == *"tokenizer.model not found"* ]]; then
  echo "skipped: ttt-run data --data sample (no tokenizer)"
else
  [[ $rc -eq 0 && $out == *"tokenized: "* ]] || fail "data --data sample: rc $rc: $out"
  echo "ok: data --data sample: $(grep '^tokenized:' <<<"$out")"
fi
echo "bundle: PASS"
