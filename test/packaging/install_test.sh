#!/usr/bin/env bash
# `cmake --install` of this build directory into a temporary prefix (docs/packaging.md): the
# layout, RUNPATHs that start at $ORIGIN/../lib, the installed ttt-run, and (compiler builds) the
# installed tttc compiling the installed tiny model; under mpirun the installed ttt-run loads its
# MPI plugin from PREFIX/lib.
#
#   install_test.sh BUILD_DIR ON|OFF   (OFF: a runtime-only build, no tttc/ttt-opt installed)
set -euo pipefail
build=$(realpath "$1")
compiler=$2
p=$(mktemp -d)
trap 'rm -rf "$p"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$p" >/dev/null
files=(bin/ttt-run share/ttt/models/ttt_tiny.mlir share/ttt/models/ttt_125m.mlir
       share/doc/ttt/README.md share/doc/ttt/docs/cli.md share/doc/ttt/docs/packaging.md)
[[ -f $build/bin/libttt_mpi.so ]] && files+=(lib/libttt_mpi.so)
[[ $compiler == ON ]] && files+=(bin/tttc bin/ttt-opt)
for f in "${files[@]}"; do [[ -f $p/$f ]] || fail "not installed: $f"; done
[[ $compiler == ON || ! -e $p/bin/tttc ]] || fail "tttc installed by a runtime-only build"
diff -r "$(dirname "$0")/../../data/sample/en" "$p/share/ttt/sample/en" >/dev/null || fail "no C4 sample"

for exe in "$p"/bin/*; do
  rp=$(readelf -d "$exe" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]$/\1/p')
  # shellcheck disable=SC2016  # a literal $ORIGIN
  [[ $rp == '$ORIGIN/../lib'* ]] || fail "$exe: RUNPATH '$rp'"
  ! ldd "$exe" | grep -q "not found" || fail "$exe: $(ldd "$exe" | grep 'not found')"
done
out=$("$p/bin/ttt-run" --version) || fail "installed ttt-run --version: $out"
[[ $out == "$("$build/bin/ttt-run" --version)" ]] || fail "installed ttt-run --version says $out"

if [[ $compiler == ON ]]; then
  "$p/bin/tttc" "$p/share/ttt/models/ttt_tiny.mlir" --target cpu --per-device-batch 4 -o "$p/tiny.bin"
  "$p/bin/tttc" --version >/dev/null
  "$p/bin/ttt-opt" --version >/dev/null
  "$p/bin/ttt-run" "$p/tiny.bin" --dry-run | grep -q "1 rank(s)" || fail "installed --dry-run"
  if [[ -f $p/lib/libttt_mpi.so ]] && command -v mpirun >/dev/null; then
    # Two processes started by mpirun: the installed ttt-run dlopens PREFIX/lib/libttt_mpi.so.
    out=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$p/bin/ttt-run" "$p/tiny.bin" --dry-run 2>&1) ||
      fail "mpirun: $out"
    grep -q "x 2 rank(s)" <<<"$out" || fail "mpirun --dry-run: $out"
  fi
fi
echo "install: PASS ($(du -sh "$p" | cut -f1) in the prefix)"
