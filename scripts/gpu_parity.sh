#!/usr/bin/env bash
# CUDA backend parity with the CPU backend (issue 8), the GPU test of the repository.
#
#   scripts/gpu_parity.sh prepare [DIR]   on the build machine (default DIR .device/parity):
#       a random-weights tiny case (test/oracle/make_case.py, vocab 32000, batch 2, seq 64), its
#       fp32 plans fused (default) and unfused (--no-fuse-inner-loop --no-fuse-elementwise), the
#       CPU backend's loss and gradients of each (the references), and the runtime bundle
#       (scripts/bundle.sh: bin/ttt-run, lib/ with what a GPU node lacks), packed into DIR/bundle.tar.xz.
#   scripts/gpu_parity.sh check [DIR]     on the GPU machine: runs each plan's micro_step on
#       --backend cuda twice (loss + every gradient; the two runs must agree bit for bit), compares
#       with the references, and trains 3 steps on the embedded sample with each backend.
#       Prints a table last; exit 1 on any failure.
# Thresholds: loss within 1e-5 relative, every gradient within 1e-4 relative by norm, NaN fails.
#
# Environment (prepare): BUILD (default build-cuda: tttc, ttt-run built with CUDA),
# PYTHON (default /usr/bin/python3, with torch, for make_case.py).
# From the build machine, through the device tool:
#   scripts/gpu_parity.sh prepare && run: scripts/gpu_parity.sh check   (carry .device/parity)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-}
DIR=${2:-.device/parity}
PLANS="fused unfused"

prepare() {
  local build=${BUILD:-$ROOT/build-cuda} py=${PYTHON:-/usr/bin/python3}
  rm -rf "$DIR"
  local st=$DIR/stage
  # The stage starts as the relocatable runtime bundle (bin/ttt-run, lib/, README).
  "$ROOT/scripts/bundle.sh" --no-tarball "$build" "$st"
  mkdir -p "$st/case"
  "$py" "$ROOT/test/oracle/make_case.py" --out "$st/case" --seed 7 --batch 2 --seq 64 --dtype fp32
  "$build/bin/tttc" import-hf "$st/case/config.json" --recipe tiny --seq-len 64 --global-batch 2 \
    -o "$st/case/tiny.mlir"
  "$build/bin/tttc" "$st/case/tiny.mlir" --target cpu --precision fp32 -o "$st/fused.bin"
  "$build/bin/tttc" "$st/case/tiny.mlir" --target cpu --precision fp32 --no-fuse-inner-loop \
    --no-fuse-elementwise -o "$st/unfused.bin"
  for p in $PLANS; do
    "$build/bin/ttt-run" "$st/$p.bin" --loss "$st/case/batch.txt" --weights \
      "$st/case/model.safetensors" --save-grads "$st/ref_$p.safetensors" > "$st/ref_$p.json"
    echo "cpu reference $p: $(cat "$st/ref_$p.json")"
  done
  cp "$ROOT/.device/tokenizer.model" "$st/" 2>/dev/null || true
  rm -f "$st/case/model.safetensors.tmp"
  tar -C "$st" -cJf "$DIR/bundle.tar.xz" .
  rm -rf "$st"
  ls -la "$DIR"
}

check() {
  local st=/tmp/ttt-parity out=${OUT:-/tmp/ttt-parity-out}
  rm -rf "$st" && mkdir -p "$st" "$out"
  tar -C "$st" -xJf "$DIR/bundle.tar.xz"
  local run=$st/bin/ttt-run   # the bundle's: its libraries and cuBLAS through RUNPATH, no LD_LIBRARY_PATH
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
  "$run" --version
  "$run" devices
  for p in $PLANS; do
    for i in 1 2; do
      "$run" "$st/$p.bin" --backend cuda --loss "$st/case/batch.txt" --weights \
        "$st/case/model.safetensors" --save-grads "$st/cuda_${p}_$i.safetensors" \
        > "$st/cuda_${p}_$i.json"
      echo "cuda $p run $i: $(cat "$st/cuda_${p}_$i.json")"
    done
    # eval_step too (the plain --loss path).
    "$run" "$st/$p.bin" --backend cuda --loss "$st/case/batch.txt" --weights \
      "$st/case/model.safetensors" > "$st/cuda_${p}_eval.json"
    echo "cuda $p eval_step: $(cat "$st/cuda_${p}_eval.json")"
  done
  # Training: 3 steps of the fused plan on the embedded sample, each backend.
  local train_ok=1
  if [ -f "$st/tokenizer.model" ]; then
    for b in cpu cuda; do
      "$run" "$st/fused.bin" --data sample --tokenizer "$st/tokenizer.model" --backend $b \
        --max-train-steps 3 --output-dir "$st/train_$b" > "$st/train_$b.txt" 2>&1 || train_ok=0
      cat "$st/train_$b.txt"
    done
  fi
  cp "$st"/*.json "$out/" 2>/dev/null || true
  python3 - "$st" "$PLANS" "$train_ok" <<'EOF'
import json, math, os, struct, sys
import numpy as np

st, plans, train_ok = sys.argv[1], sys.argv[2].split(), sys.argv[3] == "1"

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64}[meta["dtype"]]
        out[name] = np.frombuffer(data[a:b], dtype=dt).astype(np.float64)
    return out

rows, ok = [], True
for p in plans:
    ref = json.load(open(f"{st}/ref_{p}.json"))["loss"]
    g_ref = load(f"{st}/ref_{p}.safetensors")
    runs = [json.load(open(f"{st}/cuda_{p}_{i}.json"))["loss"] for i in (1, 2)]
    ev = json.load(open(f"{st}/cuda_{p}_eval.json"))["loss"]
    g1, g2 = load(f"{st}/cuda_{p}_1.safetensors"), load(f"{st}/cuda_{p}_2.safetensors")
    loss_rel = max(abs(x - ref) / abs(ref) for x in runs + [ev])
    worst, worst_name = 0.0, ""
    for name, r in g_ref.items():
        g = g1[name]
        nr = np.linalg.norm(r)
        err = np.linalg.norm(g - r) / nr if nr > 0 else np.linalg.norm(g - r)
        if not np.all(np.isfinite(g)):
            err = math.inf
        if err > worst or math.isnan(err):
            worst, worst_name = err, name
    deterministic = runs[0] == runs[1] and all(np.array_equal(g1[n], g2[n]) for n in g1)
    missing = set(g_ref) ^ set(g1)
    good = (math.isfinite(loss_rel) and loss_rel <= 1e-5 and worst <= 1e-4 and deterministic
            and not missing)
    ok &= good
    rows.append((p, ref, runs[0], loss_rel, worst, worst_name, len(g_ref), deterministic, good))

train = {}
for b in ("cpu", "cuda"):
    path = f"{st}/train_{b}/train_log.jsonl"
    if os.path.exists(path):
        train[b] = [json.loads(l)["loss"] for l in open(path) if l.strip()]
if train_ok and len(train) == 2:
    tr = max(abs(a - b) / abs(b) for a, b in zip(train["cuda"], train["cpu"]))
    train_good = len(train["cuda"]) == len(train["cpu"]) == 3 and tr <= 1e-4
    ok &= train_good
else:
    tr, train_good = None, None

print()
print("CUDA parity (fp32, tiny, random weights, batch 2 x 64; thresholds loss 1e-5, grads 1e-4)")
print(f"{'plan':8} {'cpu loss':>18} {'cuda loss':>18} {'loss rel':>9} {'worst grad rel':>14} "
      f"{'(tensor)':40} {'grads':>5} {'determ.':>7} result")
for p, ref, cu, lr, w, wn, n, det, good in rows:
    print(f"{p:8} {ref:18.12f} {cu:18.12f} {lr:9.2e} {w:14.2e} {wn[-40:]:40} {n:5d} "
          f"{'yes' if det else 'NO':>7} {'PASS' if good else 'FAIL'}")
if tr is not None:
    print(f"train 3 steps (fused, sample data): cpu {['%.6f' % x for x in train['cpu']]} "
          f"cuda {['%.6f' % x for x in train['cuda']]} worst rel {tr:.2e} "
          f"{'PASS' if train_good else 'FAIL'}")
else:
    print("train: not run or failed" + ("" if train_ok else " (FAIL)"))
    ok &= train_ok
print("ALL PASS" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
}

case "$MODE" in
prepare) prepare ;;
check) check ;;
*) echo "usage: $0 prepare|check [DIR]" >&2; exit 2 ;;
esac
