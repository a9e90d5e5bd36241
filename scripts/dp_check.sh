#!/usr/bin/env bash
# Data parallel on 2 GPUs (issue 11): ZeRO-1 and the per-bucket reduction overlapped with the
# backward, against one GPU with accumulation. Uses the bundle of `scripts/gpu_check.sh prepare`
# (the runtime, tokenizer.model, plans/tiny_b4.bin and plans/125m_bf16_b16.bin).
#
#   scripts/dp_check.sh [DIR]     a machine with 2+ GPUs and mpirun (DIR: .device/gpu-check)
#
# Checks (tiny model, fp32, per-device batch 4, global 8, 5 steps; 1 GPU x accumulation 2 is
# the reference):
#   every mode   (ZeRO-1 + overlap, the default; --no-overlap; --zero 0; --zero 0 --no-overlap)
#                on 2 GPUs: loss within 1e-5, gradient norm within 1e-4 relative, every step; the
#                final weights and AdamW moments within 1e-5 relative by norm
#   repeat       the default mode twice: every loss bit-identical
#   resume       the default mode's checkpoint-3 (moment slices gathered by rank 0) on 1 GPU:
#                steps 4-5 within 1e-5 of the 2-GPU run
# and the time (125M bf16, per-device batch 16, 2 GPUs x accumulation 8, 4 steps): seconds per
# step after the first, and the device memory of each mode.
#
# Through the device tool: scripts/gpu_check.sh prepare here, then
#   run: scripts/dp_check.sh   kind nvidia-h200-x2, carry [".device/gpu-check/bundle.tar.xz"]
# With OUT set, the summary and the logs land there. BACKEND=cpu TIME=0 runs the same checks on the
# CPU backend (a bundle whose tiny_b4 plan was compiled for the CPU; to check this script).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/.device/gpu-check}
st=/tmp/ttt-dp-check
out=${OUT:-/tmp/ttt-dp-check-out}
rm -rf "$st" && mkdir -p "$st" "$out"
tar -C "$st" -xJf "$DIR/bundle.tar.xz"
run=$st/runtime/bin/ttt-run
tok=$st/tokenizer.model
cd "$st"
backend=${BACKEND:-cuda}
if [ "$backend" = cuda ]; then
  if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -lt 2 ]; then
    echo "dp_check: this machine has fewer than 2 GPUs" >&2
    exit 2
  fi
  nvidia-smi -L
fi
mpi="mpirun --allow-run-as-root -np 2"
[ "$backend" = cpu ] && mpi="$mpi --oversubscribe"
train() { # NAME PLAN STEPS LAUNCH... -- FLAGS...
  local name=$1 plan=$2 steps=$3
  shift 3
  local launch=()
  while [ "$1" != "--" ]; do launch+=("$1"); shift; done
  shift
  ${launch[@]+"${launch[@]}"} "$run" "plans/$plan.bin" --backend "$backend" --data sample \
    --tokenizer "$tok" --max-train-steps "$steps" --output-dir "$out/$name" "$@" \
    > "$out/$name.txt" 2>&1 || echo "dp_check: $name failed (see $out/$name.txt)"
  grep -h "^nccl\|^device\|^step " "$out/$name.txt" | tail -n 3 || true
}

train one tiny_b4 5 -- --save-every 3
for mode in zero1_overlap:"" zero1_after:"--no-overlap" full_overlap:"--zero 0" \
            full_after:"--zero 0 --no-overlap"; do
  # shellcheck disable=SC2086
  train "dp2_${mode%%:*}" tiny_b4 5 $mpi -- --save-every 3 ${mode#*:}
done
train dp2_zero1_overlap_again tiny_b4 5 $mpi --
train resumed tiny_b4 5 -- --resume-from-checkpoint "$out/dp2_zero1_overlap/checkpoint-3"
if [ "${TIME:-1}" != 0 ]; then
  for mode in zero1_overlap:"" full_after:"--zero 0 --no-overlap"; do
    # shellcheck disable=SC2086
    train "time_${mode%%:*}" 125m_bf16_b16 4 $mpi -- ${mode#*:}
  done
fi

python3 - "$out" <<'EOF' | tee "$out/summary.txt"
import array, json, struct, sys
out = sys.argv[1]
ok = True

def log(d):
    try:
        return [json.loads(l) for l in open(f"{out}/{d}/train_log.jsonl") if '"loss"' in l]
    except OSError:
        return []

def tensors(path):
    """name -> list of floats of an F32 safetensors file (no numpy on the GPU machine)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    res = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        res[k] = array.array("f", data[a:b])
    return res

def rel(x, y):
    assert set(x) == set(y)
    worst = 0.0
    for k in x:
        d = sum((p - q) ** 2 for p, q in zip(x[k], y[k])) ** 0.5
        n = sum(p * p for p in x[k]) ** 0.5
        worst = max(worst, d / max(n, 1e-30))
    return worst

def row(name, good, what):
    global ok
    ok &= good
    print(f"  {'PASS' if good else 'FAIL'}  {name}: {what}")

ref = log("one")
for mode in ("zero1_overlap", "zero1_after", "full_overlap", "full_after"):
    got = log(f"dp2_{mode}")
    if len(got) != 5 or len(ref) != 5:
        row(mode, False, f"{len(ref)} / {len(got)} steps logged")
        continue
    lr = max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(ref, got))
    nr = max(abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"] for a, b in zip(ref, got))
    w = rel(tensors(f"{out}/one/final_model/model.safetensors"),
            tensors(f"{out}/dp2_{mode}/final_model/model.safetensors"))
    m = rel(tensors(f"{out}/one/final_model/optimizer.safetensors"),
            tensors(f"{out}/dp2_{mode}/final_model/optimizer.safetensors"))
    row(f"2 GPUs {mode} vs 1 GPU x 2", lr <= 1e-5 and nr <= 1e-4 and w <= 1e-5 and m <= 1e-5,
        f"loss {lr:.1e}, grad norm {nr:.1e}, weights {w:.1e}, moments {m:.1e}")
a, b = log("dp2_zero1_overlap"), log("dp2_zero1_overlap_again")
row("2 GPUs, default mode twice", len(a) == 5 and [x["loss"] for x in a] == [x["loss"] for x in b],
    "losses bit-identical" if a and [x["loss"] for x in a] == [x["loss"] for x in b] else "differ")
res = log("resumed")
if len(res) == 2 and len(a) == 5:
    r = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a[3:], res))
    row("ZeRO-1 2-GPU checkpoint-3 on 1 GPU", r <= 1e-5, f"steps 4-5 loss {r:.1e}")
else:
    row("ZeRO-1 2-GPU checkpoint-3 on 1 GPU", False, f"{len(res)} steps logged")
for mode in ("zero1_overlap", "full_after"):
    t = log(f"time_{mode}")
    if len(t) > 1:
        mem = [l for l in open(f"{out}/time_{mode}.txt") if l.startswith("step ")]
        per = (t[-1]["seconds"] - t[0]["seconds"]) / (len(t) - 1)
        print(f"  time  125M bf16 b16, 2 GPUs, {mode}: {per:.3f} s per step, "
              f"{mem[-1].split('mem')[-1].strip() if mem else '?'} on the device")
print("ALL PASS" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
