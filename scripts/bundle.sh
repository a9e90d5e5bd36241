#!/usr/bin/env bash
# The relocatable runtime bundle (docs/packaging.md): ttt-run, its MPI plugin and the non-system
# shared libraries they need, found through $ORIGIN, so that a GPU node runs plans without a
# compiler and without LD_LIBRARY_PATH.
#
#   scripts/bundle.sh [--no-tarball] BUILD_DIR OUT_DIR
#
# OUT_DIR (replaced; it must not exist or be a bundle already): bin/ttt-run, lib/libttt_mpi.so
# (when the build found MPI), lib/ with the bundled libraries, share/ttt/sample/en (the C4 sample
# of `--data sample`), README; and OUT_DIR.tar.xz (unless
# --no-tarball), which unpacks to a folder named like OUT_DIR. `ninja -C BUILD_DIR bundle` runs it
# into BUILD_DIR/ttt-run-bundle. Needs a built BUILD_DIR (it runs `cmake --install --component
# runtime`) and patchelf (scripts/apt-packages.txt).
#
# Which libraries: each one that ttt-run or the plugin needs (readelf NEEDED, resolved by ldd on
# this machine) and, recursively, those libraries' own, except what a node provides itself:
# glibc and the GCC runtime, zlib and libcurl (with all they pull in), the node's CUDA, cuBLAS,
# NCCL and driver, and its MPI (which must match its mpirun). From Debian 12 that leaves
# sentencepiece (GPU nodes have another version), OpenBLAS, libgfortran and libquadmath.
# RUNPATH: bin/ttt-run gets $ORIGIN/../lib, then (CUDA builds) /usr/local/cuda/lib64 and
# /usr/local/cuda/targets/x86_64-linux/lib, where cuBLAS is but the loader does not look; a
# library in lib/ that needs another bundled one gets $ORIGIN first (a RUNPATH only serves the
# object's own dependencies). Nothing is stripped: backtraces keep their symbols.
set -euo pipefail

die() { echo "bundle.sh: $*" >&2; exit 1; }
tarball=1
if [[ ${1:-} == --no-tarball ]]; then tarball=0; shift; fi
[[ $# -eq 2 ]] || die "usage: scripts/bundle.sh [--no-tarball] BUILD_DIR OUT_DIR"
build=$(realpath "$1") || die "no build directory $1"
out=$(realpath -m "$2")
[[ -x $build/bin/ttt-run ]] || die "$build/bin/ttt-run is not built (ninja -C $1 ttt-run)"
command -v patchelf >/dev/null || die "patchelf is missing: apt-get install patchelf (scripts/apt-packages.txt)"
if [[ -e $out ]]; then
  [[ -x $out/bin/ttt-run || -z $(ls -A "$out") ]] || die "$out exists and is not a bundle; remove it first"
  rm -rf "$out"
fi

# What the node provides (see above); everything else ttt-run needs comes along.
from_node() {
  case "$1" in
  ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libdl.so.* | librt.so.* | \
    libpthread.so.* | libresolv.so.* | libutil.so.* | libstdc++.so.* | libgcc_s.so.*) return 0 ;;
  libz.so.* | libcurl.so.*) return 0 ;;
  libcuda.so.* | libcudart.so.* | libcublas.so.* | libcublasLt.so.* | libnccl.so.* | libnvidia-*) return 0 ;;
  libmpi.so.* | libmpi_cxx.so.* | libopen-pal.so.* | libopen-rte.so.*) return 0 ;;
  esac
  return 1
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
resolved() { ldd "$1" | awk -v l="$2" '$1 == l && $2 == "=>" && $3 ~ /^\// {print $3}'; }

cmake --install "$build" --prefix "$out" --component runtime >/dev/null
mkdir -p "$out/lib"
objects=("$out/bin/ttt-run")
[[ -f $out/lib/libttt_mpi.so ]] && objects+=("$out/lib/libttt_mpi.so")

# Walk the NEEDED graph first (ldd resolves as on this machine), then copy and set RUNPATHs.
declare -A source=()   # bundled soname -> the file it is copied from
declare -A name=()     # that file -> soname
declare -A origin=()   # object that will be in lib/ and needs a bundled library -> 1
queue=("${objects[@]}")
while ((${#queue[@]})); do
  obj=${queue[0]}
  queue=("${queue[@]:1}")
  for so in $(needed "$obj"); do
    from_node "$so" && continue
    [[ $obj == "$out/bin/ttt-run" ]] || origin[$obj]=1
    [[ -n ${source[$so]:-} ]] && continue
    path=$(resolved "$obj" "$so")
    [[ -n $path ]] || die "$obj needs $so, which ldd does not find here"
    source[$so]=$path
    name[$path]=$so
    queue+=("$path")
  done
done
for so in "${!source[@]}"; do
  cp -L "${source[$so]}" "$out/lib/$so"
  chmod 644 "$out/lib/$so"
done
for obj in "${!origin[@]}"; do
  [[ -n ${name[$obj]:-} ]] && obj=$out/lib/${name[$obj]}
  old=$(patchelf --print-rpath "$obj")
  patchelf --set-rpath "\$ORIGIN${old:+:$old}" "$obj"
done
# shellcheck disable=SC2016  # a literal $ORIGIN, for the loader
rpath='$ORIGIN/../lib'
if needed "$out/bin/ttt-run" | grep -q '^libcublas'; then
  rpath+=:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib
fi
patchelf --set-rpath "$rpath" "$out/bin/ttt-run"

# README: what it is and how to run it.
version=$("$out/bin/ttt-run" --version | head -1)
backends=$("$out/bin/ttt-run" --version | sed -n 's/^backends: //p')
glibc=$(objdump -T "$out/bin/ttt-run" "$out"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
{
  echo "$version runtime bundle (backends: $backends), relocatable: move or unpack it anywhere."
  echo "Run: bin/ttt-run PLAN [flags] | bin/ttt-run devices | bin/ttt-run --help (plans come from tttc"
  echo "on a build machine; no compiler and no LD_LIBRARY_PATH needed here; --data sample reads"
  echo "share/ttt/sample/en). lib/ holds:"
  for so in $(printf '%s\n' "${!source[@]}" | sort); do echo "  $so (from ${source[$so]})"; done
  [[ -f $out/lib/libttt_mpi.so ]] && echo "  libttt_mpi.so (ttt-run's MPI plugin, loaded only under mpirun/srun; needs the node's OpenMPI)"
  echo "The node provides: glibc >= ${glibc#GLIBC_}, libstdc++, libcurl, zlib$(
    [[ $rpath == *cuda* ]] && echo ", the NVIDIA driver and CUDA 13 cuBLAS(Lt) (/usr/local/cuda/lib64)")."
} > "$out/README"

if ((tarball)); then
  tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 > "$out.tar.xz"
fi
echo "bundle: $out ($(du -sh "$out" | cut -f1)$( ((tarball)) && echo ", $(basename "$out").tar.xz $(du -h "$out.tar.xz" | cut -f1)"))"
echo "  bin/ttt-run RUNPATH $rpath; lib/: $(ls "$out/lib" | tr '\n' ' ')"
