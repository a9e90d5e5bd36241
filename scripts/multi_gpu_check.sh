#!/usr/bin/env bash
# Several GPUs (issue 12), on all GPUs of the machine (2, 4 or 8), launched the way the recipe
# scripts launch (torchrun --standalone --no_python), with NCCL_NVLS_ENABLE=0. Uses the bundle of
# `scripts/gpu_check.sh prepare` (the runtime, the tokenizer and the plans).
#
#   scripts/multi_gpu_check.sh [DIR]      DIR: .device/gpu-check
#
# 1. Equivalence: 125M bf16 (per-device batch 16, global 256), 20 steps on the embedded sample:
#    N GPUs (accumulation 16/N) against 1 GPU (accumulation 16, the same rows by accumulation).
#    Bound: step 1 (same weights, only the reduction order differs) within 1e-5 relative, every
#    step within 1e-3 (bf16 matmuls: the updates differ in the last bits from step 1 on and the
#    difference grows; 300 steps of bf16 against fp32 differ by 0.03% on average, docs/perf.md).
# 2. Scaling: tokens/s per GPU at N over tokens/s at 1, from the same runs (seconds per step after
#    the first), at least 0.90; and the overlap: N GPUs with --no-overlap (the reduction after the
#    micro-steps) for 8 steps, the seconds per step against the default (reduced per bucket during
#    the last micro-step's backward), and step 2's reduction timeline (ttt-run --comm-timeline,
#    timeline_125m.json: a Chrome trace of the backward and each bucket's reduction).
# 3. The 350M recipe through scripts/train_350m_c4.sh (PLAN given: no compiler here) on the
#    sample: STEPS350 steps (default 20) with a checkpoint every SAVE350 (default 10), for at most
#    MIN350 minutes if set (ttt-run --max-minutes: it stops with a checkpoint), then a second run
#    resumed from the newest checkpoint before the first run's last step, to that step: losses
#    against the first run (or, if the first run saved no earlier one, 5 more steps from its
#    last), tokens/s and memory per GPU. RESUME350 (if set) caps the resumed run's steps, so that
#    both runs fit in one call of the device tool (a 350M checkpoint, ~5 GB, cannot leave it).
# PART=125m or PART=350m runs only 1-2 or only 3 (default: all). PART=350m-first runs only 3's
# first run and PART=350m-resume only its resume and the verdict, so that each can take a whole
# device call: the second reuses the first's files, so it must run on the same machine (still
# warm) with the same WORK, a folder kept between calls (default /tmp; e.g. .device/mg, ignored
# in the repository copy). RUN_LIMIT (default 900) bounds each run's seconds. With OUT set, the
# summary and the logs (not the checkpoints) are copied there, each run's as soon as it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/.device/gpu-check}
work=$(mkdir -p "${WORK:-/tmp}" && cd "${WORK:-/tmp}" && pwd)
st=$work/ttt-multi-gpu
out=$work/ttt-multi-gpu-out
part=${PART:-all}
case "$part" in
all | 125m | 350m | 350m-first) rm -rf "$st" "$out" && mkdir -p "$st" "$out" &&
  tar -C "$st" -xJf "$DIR/bundle.tar.xz" ;;
350m-resume) if [ ! -f "$out/r350_first.jsonl" ]; then
  echo "multi_gpu_check: no first 350M run in $out (PART=350m-first on this machine, same WORK)" >&2
  exit 2
fi ;;
*)
  echo "multi_gpu_check: PART must be all, 125m, 350m, 350m-first or 350m-resume, not '$part'" >&2
  exit 2
  ;;
esac
run=$st/runtime/bin/ttt-run
tok=$st/tokenizer.model
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$gpus" -lt 2 ]; then
  echo "multi_gpu_check: this machine has fewer than 2 GPUs" >&2
  exit 2
fi
export NCCL_NVLS_ENABLE=0
cd "$st"
nvidia-smi -L
steps350=${STEPS350:-20}
save350=${SAVE350:-10}
limit=${RUN_LIMIT:-900} # seconds per run, then it counts as failed

train() { # NAME GPUS PLAN STEPS FLAGS...
  local name=$1 n=$2 plan=$3 steps=$4
  shift 4
  local launch=()
  [ "$n" -gt 1 ] && launch=(torchrun --standalone --nproc_per_node "$n" --no_python)
  timeout "$limit" ${launch[@]+"${launch[@]}"} "$run" "plans/$plan.bin" --backend cuda \
    --data sample --tokenizer "$tok" --max-train-steps "$steps" --output-dir "$out/$name" "$@" \
    > "$out/$name.txt" 2>&1 || echo "multi_gpu_check: $name failed or passed $limit s (see $name.txt)"
  grep -h "^nccl\|^device\|^step " "$out/$name.txt" | tail -n 2 || true
  keep "$name"
}
keep() { # a run's log and step log to OUT at once (a later run may not finish)
  [ -n "${OUT:-}" ] || return 0
  mkdir -p "$OUT"
  cp "$out/$1.txt" "$OUT/" 2>/dev/null || true
  cp "$out/$1/train_log.jsonl" "$OUT/$1.jsonl" 2>/dev/null || true
}
with125=$([ "$part" = all ] || [ "$part" = 125m ] && echo 1 || true)
if [ -n "$with125" ]; then
  train many "$gpus" 125m_bf16_b16 20
  train one 1 125m_bf16_b16 20
fi
ck=0
rec=(env GPUS="$gpus" PLAN="plans/350m_bf16_b16_sp.bin" BUILD_DIR="$st/runtime" DATA=sample
  OUT="$out/r350" "$ROOT/scripts/train_350m_c4.sh" --tokenizer "$tok")
if [ "$part" = all ] || [ "$part" = 350m ] || [ "$part" = 350m-first ]; then
  first=(--max-train-steps "$steps350" --save-every "$save350")
  [ -n "${MIN350:-}" ] && first+=(--max-minutes "$MIN350")
  timeout "$limit" "${rec[@]}" "${first[@]}" > "$out/r350.txt" 2>&1 ||
    echo "multi_gpu_check: the 350M run failed (see r350.txt)"
  tail -n 3 "$out/r350.txt"
  cp "$out/r350/train_log.jsonl" "$out/r350_first.jsonl" 2>/dev/null || true
  keep r350
  if [ "$part" = 350m-first ]; then
    echo "multi_gpu_check: the first 350M run is in $out; PART=350m-resume goes on from it"
    exit 0
  fi
fi
if [ "$part" != 125m ]; then
  last=$(python3 -c 'import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1]) if "\"loss\"" in l]
print(steps[-1] if steps else 0)' "$out/r350_first.jsonl" 2>/dev/null || echo 0)
  # the newest checkpoint before the last step (the first run went on from it), else the last
  ck=$(find "$out/r350" -maxdepth 1 -name 'checkpoint-*' | sed 's/.*checkpoint-//' | sort -n |
    awk -v l="$last" '$1 < l' | tail -1)
  [ -n "$ck" ] || ck=$last
  end=$((ck < last ? last : last + 5))
  [ -n "${RESUME350:-}" ] && [ "$end" -gt $((ck + RESUME350)) ] && end=$((ck + RESUME350))
  timeout "$limit" "${rec[@]}" --max-train-steps "$end" \
    --resume-from-checkpoint "$out/r350/checkpoint-$ck" > "$out/r350_resumed.txt" 2>&1 ||
    echo "multi_gpu_check: the 350M resume failed (see r350_resumed.txt)"
  tail -n 3 "$out/r350_resumed.txt"
fi
if [ -n "$with125" ]; then
  train many_after "$gpus" 125m_bf16_b16 8 --no-overlap
  # The overlap in a profile: step 2's reduction timeline (Chrome trace) on rank 0.
  train timeline "$gpus" 125m_bf16_b16 2 --comm-timeline "$out/timeline_125m.json"
  [ -z "${OUT:-}" ] || cp "$out/timeline_125m.json" "$OUT/" 2>/dev/null || true
  grep -h "^comm timeline" "$out/timeline.txt" || true
fi

set +e # the logs are copied to OUT whatever the verdict
python3 - "$out" "$gpus" "$ck" "${part%-resume}" <<'PY' | tee "$out/summary.txt"
import json, re, sys
out, n, save, part = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ok = True

def log(path):
    try:
        return [json.loads(l) for l in open(path) if '"loss"' in l]
    except OSError:
        return []

def row(name, good, what):
    global ok
    ok &= good
    print(f"  {'PASS' if good else 'FAIL'}  {name}: {what}")

def per_step(steps):
    return (steps[-1]["seconds"] - steps[0]["seconds"]) / (len(steps) - 1) if len(steps) > 1 else 0

def memory(name):
    try:
        lines = [l for l in open(f"{out}/{name}.txt") if l.startswith("step ")]
        return lines[-1].split("mem")[-1].strip() if lines else "?"
    except OSError:
        return "?"

one, many, after = log(f"{out}/one/train_log.jsonl"), log(f"{out}/many/train_log.jsonl"), \
    log(f"{out}/many_after/train_log.jsonl")
if part != "350m" and len(one) == len(many) == 20:
    rel = [abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(one, many)]
    row(f"125M, {n} GPUs vs 1 GPU by accumulation, 20 steps",
        rel[0] <= 1e-5 and max(rel) <= 1e-3,
        f"step 1 {rel[0]:.1e}, worst {max(rel):.1e} (step {rel.index(max(rel)) + 1}), last "
        f"{rel[-1]:.1e}; loss {one[0]['loss']:.4f} -> {one[-1]['loss']:.4f} (1 GPU), "
        f"{many[-1]['loss']:.4f} ({n} GPUs)")
    t1, tn = per_step(one), per_step(many)
    tok = 256 * 2048
    scale = (tok / tn / n) / (tok / t1)
    row(f"125M scaling at {n} GPUs", scale >= 0.90,
        f"1 GPU {t1:.3f} s/step = {tok / t1:,.0f} tokens/s; {n} GPUs {tn:.3f} s/step = "
        f"{tok / tn:,.0f} tokens/s = {tok / tn / n:,.0f} per GPU: {scale:.3f} of 1 GPU; "
        f"memory {memory('one')} (1 GPU), {memory('many')} ({n} GPUs, per GPU)")
    if len(after) > 1:
        print(f"  info  reduction overlap: {n} GPUs {tn:.3f} s/step per bucket during the "
              f"backward (default), {per_step(after):.3f} s/step with --no-overlap")
    try:
        tl = json.load(open(f"{out}/timeline_125m.json"))["otherData"]
        print(f"  info  reduction timeline (timeline_125m.json, step 2, rank 0, eager): "
              f"{tl['reduce_ms']:.2f} ms of reductions, {tl['hidden_ms']:.2f} ms under the "
              f"backward ({tl['backward_end_ms']:.2f} ms), {tl['exposed_ms']:.2f} ms after it")
    except (OSError, KeyError, ValueError):
        print("  info  no reduction timeline (see timeline.txt)")
elif part != "350m":
    row(f"125M, {n} GPUs vs 1 GPU", False, f"{len(one)} / {len(many)} steps logged")
first, both = log(f"{out}/r350_first.jsonl"), log(f"{out}/r350/train_log.jsonl")
resumed = both[len(first):]  # the resumed run appends to the first run's log
if part != "125m" and len(first) > 1 and resumed:
    later = [s for s in first if save < s["step"] <= resumed[-1]["step"]]
    gaps = sorted(b["seconds"] - a["seconds"] for a, b in zip(first, first[1:]))
    t = gaps[len(gaps) // 2]  # the median step: checkpoint writes left out
    speed = (f"{t:.3f} s/step = {256 * 2048 / t:,.0f} tokens/s ({256 * 2048 / t / n:,.0f} per "
             f"GPU); memory per GPU {memory('r350')}")
    if later:
        pairs = [(a, b) for a in later for b in resumed if a["step"] == b["step"]]
        rel = max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in pairs) if pairs else 1.0
        row(f"350M recipe on {n} GPUs, resumed from checkpoint-{save}",
            rel <= 1e-5 and len(pairs) == len(later),
            f"{len(first)} steps, loss {first[0]['loss']:.4f} -> {first[-1]['loss']:.4f}; steps "
            f"{save + 1}-{later[-1]['step']} resumed within {rel:.1e} of the first run; {speed}")
    else:
        row(f"350M recipe on {n} GPUs, resumed from its last checkpoint-{save}", len(resumed) == 5,
            f"{len(first)} steps, loss {first[0]['loss']:.4f} -> {first[-1]['loss']:.4f}; "
            f"{len(resumed)} more steps, loss {resumed[-1]['loss']:.4f}; {speed}")
    print("  350M losses: " + ", ".join(f"{s['step']}: {s['loss']:.4f}" for s in first
                                        if s["step"] % 10 == 0 or s is first[0] or s is first[-1]))
elif part != "125m":
    row(f"350M recipe on {n} GPUs", False, f"{len(first)} steps, {len(resumed)} resumed steps logged")
print("ALL PASS" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
rc=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$out"/*.txt "$out"/*.jsonl "$OUT/" 2>/dev/null || true
  for d in one many many_after r350; do
    cp "$out/$d/train_log.jsonl" "$OUT/$d.jsonl" 2>/dev/null || true
  done
fi
exit "$rc"
