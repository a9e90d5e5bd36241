#!/usr/bin/env bash
# Every CUDA kernel against fp64 CPU references on the GPU machine: `ttt-run kernel-check`
# (docs/cli.md) with the references computed here and shipped.
#
#   scripts/gpu_kernel_check.sh prepare [DIR]   on the build machine (default DIR
#       .device/kernel-check): `ttt-run kernel-check prepare` (random inputs + fp64 CPU references
#       of every case), and ttt-run with the libraries a GPU node lacks, packed into
#       DIR/bundle.tar.xz.
#   scripts/gpu_kernel_check.sh check [DIR]     on the GPU machine: unpacks it and runs
#       `ttt-run kernel-check check` (each case twice; one line per case, the summary last;
#       exit 1 on any failure). The JSON report goes to $OUT/kernel_check.json when OUT is set.
#
# Environment: BUILD (prepare; default build-cuda), SEED (prepare; default 1), DEVICE (check;
# cuda, or cpu to try the bundle without a GPU).
# From the build machine, through the device tool:
#   scripts/gpu_kernel_check.sh prepare && run: scripts/gpu_kernel_check.sh check (carry .device/kernel-check)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-}
DIR=${2:-.device/kernel-check}

prepare() {
  local build=${BUILD:-$ROOT/build-cuda}
  rm -rf "$DIR" && mkdir -p "$DIR/stage/bin" "$DIR/stage/lib"
  local st=$DIR/stage
  "$build/bin/ttt-run" kernel-check prepare "$st/cases" --seed "${SEED:-1}" | tail -n 1
  cp "$build/bin/ttt-run" "$st/bin/"
  # What the GPU node lacks or has in another version (as scripts/gpu_parity.sh): Debian's
  # sentencepiece (GPU.md) and OpenBLAS with its Fortran runtime.
  for l in libsentencepiece.so.0 libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
    local src
    src=$(ldd "$build/bin/ttt-run" | awk -v l=$l '$1 == l {print $3}')
    if [ -n "$src" ]; then cp -L "$src" "$st/lib/$l"; fi
  done
  XZ_OPT=-T0 tar -C "$st" -cJf "$DIR/bundle.tar.xz" .
  rm -rf "$st"
  ls -la "$DIR"
}

check() {
  local st=/tmp/ttt-kernel-check
  rm -rf "$st" && mkdir -p "$st"
  tar -C "$st" -xJf "$DIR/bundle.tar.xz"
  export LD_LIBRARY_PATH=$st/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
  "$st/bin/ttt-run" --version
  local args=(kernel-check check "$st/cases" --device "${DEVICE:-cuda}")
  if [ -n "${OUT:-}" ]; then args+=(--json "$OUT/kernel_check.json"); fi
  "$st/bin/ttt-run" "${args[@]}"
}

case "$MODE" in
prepare) prepare ;;
check) check ;;
*) echo "usage: $0 prepare|check [DIR]" >&2; exit 2 ;;
esac
