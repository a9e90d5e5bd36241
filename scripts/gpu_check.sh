#!/usr/bin/env bash
# The GPU test of the repository (issue 8): parity of the CUDA backend with fp64/fp32 CPU
# references computed on the build machine, and the benchmark table.
#
#   scripts/gpu_check.sh prepare [DIR]   build machine (default DIR .device/gpu-check): the
#       runtime bundle (scripts/bundle.sh), the kernel-check cases with their fp64 references
#       (ttt-run kernel-check prepare), the plans (tiny fp32 fused/unfused/bf16, 125M fp32 at
#       1 x 512 for the step parity, 125M bf16 at batch 16 (also with state passing) and 32,
#       125M fp32 at 16, 1B bf16 at 8, tiny fp32 with state passing), the CPU references (tiny:
#       loss and every gradient; 125M: loss and gradient norm; 5 state-passing steps), packed
#       into DIR/bundle.tar.xz.
#   scripts/gpu_check.sh check [DIR]     GPU machine: every check below, a table last; exit 1 on a
#       failed parity check. With OUT set, the summary, the kernel-check and profile logs and an
#       archive of every log land there.
#   scripts/gpu_check.sh nccl1 [DIR]     GPU machine: the NCCL path with one rank (torchrun-style
#       WORLD_SIZE=1) against a plain run: equal losses, and the step time of each.
#
# Checks and bounds (issue 8):
#   kernels     every CUDA kernel vs fp64 references, fresh random inputs: fp32 mode < 1e-5,
#               bf16 < 1e-2 relative by norm, NaN fails, two runs bit-identical
#   tiny step   fp32 plans (fused, unfused), TF32 off: loss within 1e-4, every gradient within 1e-4
#               relative by norm (the gradient norm within 1e-3), two runs bit-identical
#   125M step   fp32, 1 x 512 tokens: loss within 1e-4, gradient norm within 1e-3
#   state pass. tiny fp32, 4 micro-batch slots whose states stay on the device: 5 steps' losses
#               within 1e-6 of the CPU's, and a resume from checkpoint-3 within 1e-6 of the
#               uninterrupted run
#   300 steps   tiny model on the sample, bf16 vs fp32 on the GPU: mean loss over steps 250-300
#               within 2%, every step within 5%; the bf16 plan and the same plan compiled with
#               --no-bf16-storage: every loss bit-identical
#   2 GPUs      (when the machine has two) mpirun -np 2 with NCCL vs one GPU with accumulation 2:
#               5 steps, loss within 1e-5, gradient norm within 1e-4
#   errors      a plan too big for the GPU: one line with the memory breakdown and what to change
#               (a smaller --per-device-batch, or --no-inner-loop-cache when the plan has the cache)
#   cache       125M bf16, 2 training steps with the inner-loop cache and with --no-inner-loop-cache:
#               losses and gradient norms bit-identical
#   benchmark   ttt-run --benchmark (125M bf16 batch 16 with and without the inner-loop cache, bf16
#               storage and state passing, and 32; 125M fp32 16, 1B bf16 8) and one
#               --profile of 125M bf16 batch 16
#
# Through the device tool: scripts/gpu_check.sh prepare, then
#   run: scripts/gpu_check.sh check   with carry [".device/gpu-check/bundle.tar.xz"]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-}
DIR=${2:-$ROOT/.device/gpu-check}

prepare() {
  local build=${BUILD:-$ROOT/build-cuda}
  local tttc=$build/bin/tttc run=$build/bin/ttt-run st=$DIR/stage
  rm -rf "$DIR" && mkdir -p "$st/plans" "$st/ref"
  "$ROOT/scripts/bundle.sh" --no-tarball "$build" "$st/runtime" > /dev/null
  "$run" kernel-check prepare "$st/kc" > /dev/null
  cp "$ROOT/.device/tokenizer.model" "$st/"
  local tiny=$ROOT/models/ttt_tiny.mlir m125=$ROOT/models/ttt_125m.mlir
  "$tttc" "$tiny" --target sm_90 --precision fp32 -o "$st/plans/tiny_fused.bin"
  "$tttc" "$tiny" --target sm_90 --precision fp32 --no-fuse-inner-loop --no-fuse-elementwise \
    -o "$st/plans/tiny_unfused.bin"
  "$tttc" "$tiny" --target sm_90 --precision bf16 -o "$st/plans/tiny_bf16.bin"
  "$tttc" "$tiny" --target sm_90 --precision bf16 --no-bf16-storage \
    -o "$st/plans/tiny_bf16_f32store.bin"
  "$tttc" "$tiny" --target sm_90 --precision fp32 --per-device-batch 4 -o "$st/plans/tiny_b4.bin"
  "$tttc" "$tiny" --target sm_90 --precision fp32 --per-device-batch 2 --state-passing true \
    -o "$st/plans/tiny_sp.bin"
  "$tttc" "$m125" --target sm_90 --precision bf16 --per-device-batch 16 --state-passing true \
    -o "$st/plans/125m_bf16_b16_sp.bin"
  # scripts/multi_gpu_check.sh: the 350M recipe's plan for 2-8 GPUs (per-device batch 16).
  "$tttc" "$ROOT/models/ttt_350m.mlir" --target sm_90 --precision bf16 --per-device-batch 16 \
    --state-passing true -o "$st/plans/350m_bf16_b16_sp.bin"
  "$tttc" "$m125" --target sm_90 --precision fp32 --per-device-batch 1 --seq-len 512 \
    -o "$st/plans/125m_parity.bin"
  "$tttc" "$m125" --target sm_90 --precision bf16 --per-device-batch 16 -o "$st/plans/125m_bf16_b16.bin"
  "$tttc" "$m125" --target sm_90 --precision bf16 --per-device-batch 16 --no-bf16-storage \
    -o "$st/plans/125m_bf16_b16_f32store.bin"
  "$tttc" "$m125" --target sm_90 --precision bf16 --per-device-batch 16 --no-inner-loop-cache \
    -o "$st/plans/125m_bf16_b16_nocache.bin"
  "$tttc" "$m125" --target sm_90 --precision bf16 --per-device-batch 32 -o "$st/plans/125m_bf16_b32.bin"
  "$tttc" "$m125" --target sm_90 --precision fp32 --per-device-batch 16 -o "$st/plans/125m_fp32_b16.bin"
  "$tttc" "$ROOT/models/ttt_1b.mlir" --target sm_90 --precision bf16 --per-device-batch 8 \
    -o "$st/plans/1b_bf16_b8.bin"
  # Too big for any GPU (~750 GiB): the out-of-memory message.
  "$tttc" "$ROOT/models/ttt_1b.mlir" --target sm_90 --precision bf16 --per-device-batch 64 \
    -o "$st/plans/1b_bf16_b64.bin"
  # Random token batches of the plans' shapes (seeded), and the CPU references from init weights.
  /usr/bin/python3 - "$st/ref" <<'EOF'
import random, sys
out = sys.argv[1]
random.seed(11)
for name, rows, seq in (("tiny", 8, 128), ("125m", 1, 512)):
    with open(f"{out}/{name}_batch.txt", "w") as f:
        for _ in range(rows):
            f.write(" ".join(str(random.randrange(3, 32000)) for _ in range(seq + 1)) + "\n")
EOF
  # One CPU reference for both tiny plans: on the CPU the fused and unfused programs agree to
  # 1e-16 (test/e2e/fuse-*-agreement.test), and the bundle must stay under the carry limit.
  "$run" "$st/plans/tiny_fused.bin" --loss "$st/ref/tiny_batch.txt" --seed 5 \
    --save-grads "$st/ref/tiny.safetensors" > "$st/ref/tiny.json"
  "$run" "$st/plans/125m_parity.bin" --loss "$st/ref/125m_batch.txt" --seed 5 \
    --save-grads /tmp/125m_grads.safetensors > "$st/ref/125m.json"
  rm -f /tmp/125m_grads.safetensors
  # State passing, 5 steps on the CPU (4 micro-batch slots carrying their rows' states).
  "$run" "$st/plans/tiny_sp.bin" --data sample --tokenizer "$st/tokenizer.model" \
    --max-train-steps 5 --output-dir /tmp/tiny_sp_cpu > /dev/null
  cp /tmp/tiny_sp_cpu/train_log.jsonl "$st/ref/tiny_sp_cpu.jsonl"
  rm -rf /tmp/tiny_sp_cpu
  cat "$st"/ref/*.json
  tar -C "$st" -cJf "$DIR/bundle.tar.xz" .
  rm -rf "$st"
  ls -la "$DIR"
}

check() {
  local st=/tmp/ttt-gpu-check out=/tmp/ttt-gpu-check-out rc=0
  rm -rf "$st" "$out" && mkdir -p "$st" "$out"
  tar -C "$st" -xJf "$DIR/bundle.tar.xz"
  local run=$st/runtime/bin/ttt-run tok=$st/tokenizer.model
  cd "$st"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  "$run" --version | head -3
  "$run" kernel-check check "$st/kc" --json "$out/kernel_check.json" > "$out/kernel_check.txt" 2>&1 \
    && kc=PASS || kc=FAIL
  tail -n 4 "$out/kernel_check.txt"
  grep -E "FAIL" "$out/kernel_check.txt" | head -20 || true
  for p in tiny_fused tiny_unfused; do
    for i in 1 2; do
      "$run" plans/$p.bin --backend cuda --loss ref/tiny_batch.txt --seed 5 \
        --save-grads "$st/cuda_${p}_$i.safetensors" > "$out/cuda_${p}_$i.json"
    done
  done
  "$run" plans/tiny_bf16.bin --backend cuda --loss ref/tiny_batch.txt --seed 5 > "$out/cuda_tiny_bf16.json"
  "$run" plans/125m_parity.bin --backend cuda --loss ref/125m_batch.txt --seed 5 \
    --save-grads "$st/cuda_125m.safetensors" > "$out/cuda_125m.json"
  for prec in fp32 bf16 bf16_f32store; do
    local plan=plans/tiny_fused.bin
    [ $prec = bf16 ] && plan=plans/tiny_bf16.bin
    [ $prec = bf16_f32store ] && plan=plans/tiny_bf16_f32store.bin
    "$run" $plan --backend cuda --data sample --tokenizer "$tok" --max-train-steps 300 \
      --output-dir "$out/tiny300_$prec" > "$out/tiny300_$prec.txt" 2>&1
    tail -n 2 "$out/tiny300_$prec.txt"
  done
  # State passing with the carried states on the device: 5 steps against the CPU's, and a resume
  # from checkpoint-3 against the uninterrupted run.
  "$run" plans/tiny_sp.bin --backend cuda --data sample --tokenizer "$tok" --max-train-steps 5 \
    --save-every 3 --output-dir "$out/sp" > "$out/sp.txt" 2>&1 || true
  "$run" plans/tiny_sp.bin --backend cuda --data sample --tokenizer "$tok" --max-train-steps 5 \
    --resume-from-checkpoint "$out/sp/checkpoint-3" --output-dir "$out/sp_resumed" \
    > "$out/sp_resumed.txt" 2>&1 || true
  tail -n 2 "$out/sp.txt" "$out/sp_resumed.txt"
  # Data parallel over 2 GPUs (NCCL) against one GPU with accumulation 2, when there are two.
  if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
    mpirun --allow-run-as-root -np 2 "$run" plans/tiny_b4.bin --backend cuda --data sample \
      --tokenizer "$tok" --max-train-steps 5 --output-dir "$out/dp2" > "$out/dp2.txt" 2>&1 || true
    "$run" plans/tiny_b4.bin --backend cuda --data sample --tokenizer "$tok" --max-train-steps 5 \
      --output-dir "$out/dp1" > "$out/dp1.txt" 2>&1 || true
    tail -n 3 "$out/dp2.txt" "$out/dp1.txt"
  fi
  "$run" plans/1b_bf16_b64.bin --backend cuda --max-train-steps 1 > "$out/oom.txt" 2>&1 || true
  cat "$out/oom.txt"
  # 125M training with the inner-loop cache and without it: the same operations, the same bits.
  for p in 125m_bf16_b16 125m_bf16_b16_nocache; do
    "$run" plans/$p.bin --backend cuda --data sample --tokenizer "$tok" --max-train-steps 2 \
      --output-dir "$out/train_$p" > "$out/train_$p.txt" 2>&1 || true
    tail -n 2 "$out/train_$p.txt"
  done
  for p in 125m_bf16_b16 125m_bf16_b16_nocache 125m_bf16_b16_f32store 125m_bf16_b16_sp 125m_bf16_b32 125m_fp32_b16 1b_bf16_b8; do
    timeout 150 "$run" plans/$p.bin --backend cuda --benchmark 5 > "$out/bench_$p.txt" 2>&1 || true
    tail -n 3 "$out/bench_$p.txt"
  done
  "$run" plans/125m_bf16_b16.bin --backend cuda --profile --profile-json "$out/profile_125m.json" \
    > "$out/profile_125m.txt" 2>&1 || true
  head -40 "$out/profile_125m.txt"
  python3 - "$st" "$out" "$kc" <<'EOF' | tee "$out/summary.txt" || rc=$?
import json, math, struct, sys
import numpy as np
st, out, kc = sys.argv[1], sys.argv[2], sys.argv[3]

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    res = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64}[meta["dtype"]]
        res[name] = np.frombuffer(data[a:b], dtype=dt).astype(np.float64)
    return res

rows, ok = [], kc == "PASS"
rows.append(("kernel-check (every kernel vs fp64)", "", "", kc == "PASS"))
for p in ("tiny_fused", "tiny_unfused"):
    ref = json.load(open(f"{st}/ref/tiny.json"))
    runs = [json.load(open(f"{out}/cuda_{p}_{i}.json")) for i in (1, 2)]
    g_ref = load(f"{st}/ref/tiny.safetensors")
    g1, g2 = load(f"{st}/cuda_{p}_1.safetensors"), load(f"{st}/cuda_{p}_2.safetensors")
    loss_rel = abs(runs[0]["loss"] - ref["loss"]) / abs(ref["loss"])
    worst, name = 0.0, ""
    for k, r in g_ref.items():
        g = g1[k]
        e = np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30)
        if not np.all(np.isfinite(g)):
            e = math.inf
        if e > worst or math.isnan(e):
            worst, name = e, k
    norm_rel = abs(runs[0]["grad_norm"] - ref["grad_norm"]) / ref["grad_norm"]
    det = runs[0]["loss"] == runs[1]["loss"] and all(np.array_equal(g1[k], g2[k]) for k in g1)
    good = loss_rel <= 1e-4 and worst <= 1e-4 and norm_rel <= 1e-3 and det
    ok &= good
    rows.append((f"{p} fp32 step", f"loss {loss_rel:.1e}, grad norm {norm_rel:.1e}",
                 f"worst grad {worst:.1e} ({name.split('.')[-2] if '.' in name else name}), "
                 f"bitwise repeat {'yes' if det else 'NO'}", good))
bf = json.load(open(f"{out}/cuda_tiny_bf16.json"))["loss"]
ref = json.load(open(f"{st}/ref/tiny.json"))["loss"]
rows.append(("tiny bf16 loss vs fp32 reference", f"{abs(bf - ref) / ref:.1e}", "(information)", True))
ref = json.load(open(f"{st}/ref/125m.json"))
cu = json.load(open(f"{out}/cuda_125m.json"))
lr, nr = abs(cu["loss"] - ref["loss"]) / ref["loss"], abs(cu["grad_norm"] - ref["grad_norm"]) / ref["grad_norm"]
good = lr <= 1e-4 and nr <= 1e-3
ok &= good
rows.append(("125M fp32 step (1 x 512)", f"loss {lr:.1e}, grad norm {nr:.1e}",
             f"cpu {ref['loss']:.6f} / {ref['grad_norm']:.6f}, cuda {cu['loss']:.6f} / {cu['grad_norm']:.6f}", good))
oom = open(f"{out}/oom.txt").read().strip().splitlines()
good = (len(oom) == 1 and oom[0].startswith("ttt-run: error: out of GPU memory: the plan needs")
        and "--per-device-batch" in oom[0] and "--no-inner-loop-cache (" in oom[0])
ok &= good
rows.append(("out of memory (1B at batch 64)", "one line, breakdown + suggestion" if good else "",
             (oom[0][:90] + "...") if oom else "(no output)", good))
import os
if os.path.exists(f"{out}/dp2.txt"):
    def log(d):
        try:
            return [json.loads(l) for l in open(f"{out}/{d}/train_log.jsonl") if '"loss"' in l]
        except OSError:
            return []
    a, b = log("dp1"), log("dp2")
    if len(a) == len(b) == 5:
        lr = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a, b))
        nr = max(abs(x["grad_norm"] - y["grad_norm"]) / x["grad_norm"] for x, y in zip(a, b))
        good = lr <= 1e-5 and nr <= 1e-4
        rows.append(("2 GPUs (NCCL) vs 1 GPU x accumulation 2", f"loss {lr:.1e}, grad norm {nr:.1e}",
                     "5 steps of the tiny model, per-device batch 4", good))
    else:
        good = False
        rows.append(("2 GPUs (NCCL) vs 1 GPU x accumulation 2", f"{len(a)} / {len(b)} steps logged", "see dp2.txt", False))
    ok &= good
def train_log(path):
    try:
        return [json.loads(l) for l in open(path) if '"loss"' in l]
    except OSError:
        return []
cpu, sp, resumed = (train_log(p) for p in (f"{st}/ref/tiny_sp_cpu.jsonl", f"{out}/sp/train_log.jsonl",
                                         f"{out}/sp_resumed/train_log.jsonl"))
if len(cpu) == len(sp) == 5 and len(resumed) == 2:
    lr = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(cpu, sp))
    rr = max(abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(sp[3:], resumed))
    good = lr <= 1e-6 and rr <= 1e-6
    rows.append(("state passing (tiny fp32, 4 slots)", f"5 steps vs CPU {lr:.1e}",
                 f"resumed steps 4-5 vs uninterrupted {rr:.1e}", good))
else:
    good = False
    rows.append(("state passing (tiny fp32, 4 slots)", f"{len(cpu)}/{len(sp)}/{len(resumed)} steps logged",
                 "see sp.txt, sp_resumed.txt", False))
ok &= good
curves = {}
for prec in ("fp32", "bf16", "bf16_f32store"):
    path = f"{out}/tiny300_{prec}/train_log.jsonl"
    try:
        curves[prec] = [json.loads(l)["loss"] for l in open(path) if '"loss"' in l]
    except OSError:
        curves[prec] = []
a, b = np.array(curves["fp32"]), np.array(curves["bf16"])
if len(a) == len(b) == 300:
    mean_rel = abs(b[249:].mean() - a[249:].mean()) / a[249:].mean()
    step_rel = np.max(np.abs(b - a) / a)
    good = mean_rel <= 0.02 and step_rel <= 0.05
    rows.append(("tiny 300 steps bf16 vs fp32", f"mean 250-300 {mean_rel:.2%}, worst step {step_rel:.2%}",
                 f"loss {a[0]:.3f} -> {a[249:].mean():.3f} (fp32), {b[249:].mean():.3f} (bf16)", good))
else:
    good = False
    rows.append(("tiny 300 steps bf16 vs fp32", f"{len(a)} / {len(b)} steps logged", "", False))
ok &= good
# ttt-store-bf16 changes where the rounding to bf16 happens, not what is rounded: the same bits.
c = curves["bf16_f32store"]
good = len(c) == 300 and c == curves["bf16"]
rows.append(("bf16 storage = --no-bf16-storage", "300 losses bit-identical" if good else "DIFFER",
             f"{len(c)} steps logged", good))
ok &= good
# The inner-loop cache keeps what the backward would recompute: the same bits.
logs = {}
for p in ("125m_bf16_b16", "125m_bf16_b16_nocache"):
    try:
        logs[p] = [(r["loss"], r["grad_norm"]) for r in map(json.loads, open(f"{out}/train_{p}/train_log.jsonl"))
                   if "loss" in r and "grad_norm" in r]
    except OSError:
        logs[p] = []
good = len(logs["125m_bf16_b16"]) == 2 and logs["125m_bf16_b16"] == logs["125m_bf16_b16_nocache"]
rows.append(("inner-loop cache = --no-inner-loop-cache", "125M 2 steps bit-identical" if good else "DIFFER",
             f"loss, grad norm {logs['125m_bf16_b16'][:1]} / {logs['125m_bf16_b16_nocache'][:1]}", good))
ok &= good
print()
print("CUDA backend checks (H200)")
for name, err, info, good in rows:
    print(f"  {'PASS' if good else 'FAIL'}  {name:36} {err:40} {info}")
print()
print("| model | precision | batch | micro-step ms | optimizer ms | step s | tokens/s | MFU (989) | of GEMM ceiling (790) | plan memory | device used |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for p in ("125m_bf16_b16", "125m_bf16_b16_nocache", "125m_bf16_b16_f32store", "125m_bf16_b16_sp", "125m_bf16_b32", "125m_fp32_b16", "1b_bf16_b8"):
    try:
        line = [l for l in open(f"{out}/bench_{p}.txt") if l.startswith("| ttt_")]
        if line and p.endswith("_f32store"):
            line[0] = line[0].replace("| bf16 |", "| bf16, --no-bf16-storage |", 1)
        if line and p.endswith("_nocache"):
            line[0] = line[0].replace("| bf16 |", "| bf16, --no-inner-loop-cache |", 1)
        if line and p.endswith("_sp"):
            line[0] = line[0].replace("| bf16 |", "| bf16, state passing |", 1)
        print(line[0].rstrip() if line else f"| {p} | (no result: see bench_{p}.txt) |")
    except OSError:
        print(f"| {p} | (not run) |")
print("ALL PASS" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
  # With OUT set (the device tool brings back a few files only): the summary, the kernel-check
  # and profile logs, and every text log in one archive.
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    cp "$out/summary.txt" "$out/kernel_check.txt" "$out/profile_125m.txt" "$OUT/" 2>/dev/null || true
    tar -C "$out" -czf "$OUT/gpu-check-logs.tar.gz" --exclude='*.safetensors' . || true
  fi
  return $rc
}

# The NCCL path with one rank (a torchrun-style launch, WORLD_SIZE=1): the same losses as a plain
# run, and its cost on a 125M step.
nccl1() {
  local st=/tmp/ttt-gpu-check out=${OUT:-/tmp/ttt-gpu-check-out}
  rm -rf "$st" && mkdir -p "$st" "$out"
  tar -C "$st" -xJf "$DIR/bundle.tar.xz"
  local run=$st/runtime/bin/ttt-run tok=$st/tokenizer.model
  cd "$st"
  local one="env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29513"
  for p in tiny_fused:5 125m_bf16_b16:3; do
    local plan=${p%:*} steps=${p#*:}
    "$run" plans/$plan.bin --backend cuda --data sample --tokenizer "$tok" --max-train-steps $steps \
      --output-dir "$out/plain_$plan" > "$out/plain_$plan.txt" 2>&1
    $one "$run" plans/$plan.bin --backend cuda --data sample --tokenizer "$tok" \
      --max-train-steps $steps --output-dir "$out/nccl_$plan" > "$out/nccl_$plan.txt" 2>&1
    grep -h "nccl\|step " "$out/nccl_$plan.txt" | tail -2
  done
  # The reduction timeline of a per-bucket run (one rank: NCCL's reductions are local copies).
  $one "$run" plans/125m_bf16_b16.bin --backend cuda --data sample --tokenizer "$tok" \
    --max-train-steps 2 --comm-timeline "$out/timeline_125m.json" --output-dir "$out/timeline" \
    > "$out/timeline.txt" 2>&1 || true
  grep -h "comm timeline\|error" "$out/timeline.txt" || true
  python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
ok = True
for plan in ("tiny_fused", "125m_bf16_b16"):
    a, b = ([json.loads(l) for l in open(f"{out}/{k}_{plan}/train_log.jsonl") if '"loss"' in l]
            for k in ("plain", "nccl"))
    same = [x["loss"] for x in a] == [x["loss"] for x in b]
    # Time of the steps after the first (graph capture) one.
    ta, tb = a[-1]["seconds"] - a[0]["seconds"], b[-1]["seconds"] - b[0]["seconds"]
    ok &= same and len(a) == len(b) > 1
    print(f"  {'PASS' if same else 'FAIL'}  {plan}: NCCL (1 rank) losses {'equal' if same else 'DIFFER'}; "
          f"steps 2-{len(a)}: plain {ta:.3f} s, NCCL {tb:.3f} s ({100 * (tb - ta) / ta:+.1f}%)")
try:
    doc = json.load(open(f"{out}/timeline_125m.json"))
    bk = [e for e in doc["traceEvents"] if e.get("tid") == 2 and e["ph"] == "X"]
    ready = {e["name"].replace(" ready", ""): e["ts"] for e in doc["traceEvents"] if e["ph"] == "i"}
    good = len(bk) > 1 and all(e["ts"] >= ready[e["name"].replace(" reduce", "")] for e in bk)
    # With one rank the per-bucket path runs only for the timeline: the same losses as plain.
    t = [json.loads(l)["loss"] for l in open(f"{out}/timeline/train_log.jsonl") if '"loss"' in l]
    p = [json.loads(l)["loss"] for l in open(f"{out}/plain_125m_bf16_b16/train_log.jsonl") if '"loss"' in l]
    good &= len(t) == 2 and t == p[:2]
    d = doc["otherData"]
    print(f"  {'PASS' if good else 'FAIL'}  comm timeline: {len(bk)} bucket reductions, each after "
          f"its bucket was ready; {d['hidden_ms']:.2f} of {d['reduce_ms']:.2f} ms under the backward; "
          f"losses per bucket {'equal' if t == p[:2] else 'DIFFER'} {t}")
except (OSError, KeyError, ValueError) as e:
    good = False
    print(f"  FAIL  comm timeline: {e}")
ok &= good
print("ALL PASS" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
}

case "$MODE" in
prepare) prepare ;;
check) check ;;
nccl1) nccl1 ;;
*) echo "usage: $0 prepare|check|nccl1 [DIR]" >&2; exit 2 ;;
esac

