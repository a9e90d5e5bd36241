#!/usr/bin/env bash
# Trains a TTT-Linear recipe on C4 (spec 4.2: global batch 256 x 2048, AdamW, warmup 10% +
# cosine to 1e-5, checkpoints every 1000 steps, milestones every 2000, a final model).
#
#   scripts/train_c4.sh SIZE [ttt-run flags...]       SIZE: 125m | 350m | 760m | 1b
#   scripts/train_c4.sh 125m --dry-run                batch math, tokens, memory; no training
#
# The per-device batch follows the GPU count (1 GPU: 16 x 16 accumulation, 2: 16 x 8,
# 4: 32 x 2, 8: 32 x 1), capped by what fits one H200 (docs/perf.md: 125m 32, 350m 16, 760m and
# 1b 8; the accumulation grows to keep the global batch). State passing is on, as in the seed's
# example command, on any number of GPUs (each rank carries its rows' states; checkpoints hold
# every row, so a run resumes on another GPU count); the paper's runs had none (every 2048-token
# window starts from W1/b1): STATE_PASSING=false turns it off.
# Environment: OUT (default runs/ttt_SIZE), BUILD_DIR (default build, under the source tree, or
# an absolute path), GPUS (default: counted with nvidia-smi), DATA (default c4), STATE_PASSING
# (default true), PLAN (a plan compiled beforehand on a machine with tttc, for GPU nodes without
# it: tttc models/ttt_SIZE.mlir --per-device-batch B --state-passing true|false). With --dry-run
# one process shows one device of the job (ttt-run --ranks).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size="${1:?usage: scripts/train_c4.sh 125m|350m|760m|1b [ttt-run flags]}"
shift
case "$size" in 125m | 350m | 760m | 1b) ;; *)
  echo "train_c4.sh: unknown size '$size' (125m, 350m, 760m, 1b)" >&2
  exit 2
  ;;
esac
build="${BUILD_DIR:-build}"
[[ "$build" == /* ]] || build="$root/$build"
bin="$build/bin"
out="${OUT:-runs/ttt_$size}"
gpus="${GPUS:-$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)}"
[[ "$gpus" -ge 1 ]] || gpus=1 # no GPU here: plan as for one (e.g. for --dry-run)
case "$gpus" in
1) batch=16 ;;
2) batch=16 ;;
4) batch=32 ;;
8) batch=32 ;;
*)
  echo "train_c4.sh: $gpus GPUs: the recipe table covers 1, 2, 4 or 8" >&2
  exit 2
  ;;
esac
case "$size" in 125m) cap=32 ;; 350m) cap=16 ;; *) cap=8 ;; esac
[[ "$batch" -le "$cap" ]] || batch=$cap
sp="${STATE_PASSING:-true}"
mkdir -p "$out"
if [[ -n "${PLAN:-}" ]]; then
  # Compiled beforehand (GPU nodes have no compiler): ttt-run checks its batch and state passing.
  cp "$PLAN" "$out/train.bin"
else
  "$bin/tttc" "$root/models/ttt_$size.mlir" --per-device-batch "$batch" --state-passing "$sp" \
    -o "$out/train.bin"
fi
cmd=("$bin/ttt-run" "$out/train.bin" --data "${DATA:-c4}" --backend cuda --state-passing "$sp"
  --output-dir "$out" "$@")
if [[ " $* " == *" --dry-run "* ]]; then
  cmd+=(--ranks "$gpus") # one process shows one device of the job
elif [[ "$gpus" -gt 1 ]]; then
  # One process per GPU through a torchrun-style environment (NCCL averages the gradients).
  cmd=(torchrun --standalone --nproc_per_node "$gpus" --no_python "${cmd[@]}")
fi
echo "+ ${cmd[*]}"
exec "${cmd[@]}"
