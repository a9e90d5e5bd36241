"""Three full training steps of the compiled plan (micro_step + apply_step: clip, AdamW, the
warmup-cosine schedule) against the independent PyTorch oracle's own AdamW, from the same
weights on the same batches.

Usage: train_agreement.py WORKDIR SRC_DIR [--state-passing]
Checks in fp64, relative by norm: the weights after 3 steps (< 1e-9) and the update itself,
weights after minus before (< 1e-9); the logged losses agree (< 1e-10). With --state-passing
the rows of each step continue those of the step before (one token stream per row) and both
sides carry the inner states and conv histories across steps without gradient. The same run on
2 MPI ranks of one row each gives the same losses (< 1e-10).
"""
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import load, run  # noqa: E402

work, src = sys.argv[1], sys.argv[2]
state_passing = "--state-passing" in sys.argv[3:]
sp_flags = ["--state-passing"] if state_passing else []
py = sys.executable
oracle = os.path.join(src, "test", "oracle")


steps, batch, lr, warmup = 3, 2, 3e-3, 1
os.makedirs(work, exist_ok=True)
case = os.path.join(work, "case")
run(py, os.path.join(oracle, "make_case.py"), "--out", case, "--seed", "5", "--vocab", "32000",
    "--hidden", "64", "--intermediate", "128", "--layers", "2", "--heads", "4", "--batch",
    str(batch), "--seq", "64", "--dtype", "fp64", "--steps", str(steps),
    *(["--stream"] if state_passing else []))
run("tttc", "import-hf", f"{case}/config.json", "--recipe", "tiny", "--seq-len", "64",
    "--global-batch", str(batch), "--state-passing", "true" if state_passing else "false",
    "-o", f"{work}/model.mlir")
run("tttc", f"{work}/model.mlir", "--target", "cpu", "--precision", "fp64", "-o", f"{work}/plan.bin")
total = 200  # the tiny recipe's total_steps (the schedule's decay length)
log = run("ttt-run", f"{work}/plan.bin", "--weights", f"{case}/model.safetensors", "--data",
          f"batches:{case}/batch.txt", "--max-train-steps", str(steps), "--learning-rate", str(lr),
          "--lr-warmup-steps", str(warmup), "--output-dir", f"{work}/run")
ours = [json.loads(line) for line in open(f"{work}/run/train_log.jsonl")]
theirs = [json.loads(line) for line in run(
    py, os.path.join(oracle, "ttt_primal.py"), "--config", f"{case}/config.json", "--weights",
    f"{case}/model.safetensors", "--train-batches", f"{case}/batch.txt", "--steps", str(steps),
    "--global-batch", str(batch), "--lr", str(lr), "--lr-end", "1e-5", "--warmup-steps",
    str(warmup), "--total-steps", str(total), "--out-weights", f"{work}/oracle.safetensors",
    "--dtype", "fp64", *sp_flags).splitlines()]

failures = []
for a, b in zip(ours, theirs):
    rel = abs(a["loss"] - b["loss"]) / abs(b["loss"])
    ok = rel < 1e-10 and abs(a["lr"] - b["lr"]) <= 1e-15
    print(f"step {a['step']}: loss {a['loss']!r} vs {b['loss']!r} (relative {rel:.2e}), "
          f"grad_norm {a['grad_norm']:.6f} vs {b['grad_norm']:.6f}, lr {a['lr']:.3e} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(f"step {a['step']}")

init, got, want = load(f"{case}/model.safetensors"), load(f"{work}/run/final_model/model.safetensors"), load(f"{work}/oracle.safetensors")
assert set(got) == set(want), sorted(set(got) ^ set(want))
worst_w = worst_u = 0.0
for k in want:
    w0, g, o = init[k].double(), got[k].double(), want[k].double()
    worst_w = max(worst_w, ((g - o).norm() / o.norm()).item())
    worst_u = max(worst_u, ((g - o).norm() / (o - w0).norm()).item())
for label, err in (("weights after 3 steps", worst_w), ("update (after - before)", worst_u)):
    ok = err < 1e-9
    print(f"{label}: worst relative error {err:.3e} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(label)

# The same batches on 2 MPI ranks of one row each: each rank trains on its own row of every
# global batch, so the losses equal the one-rank run's.
run("tttc", f"{work}/model.mlir", "--target", "cpu", "--precision", "fp64", "--per-device-batch",
    "1", "-o", f"{work}/plan_b1.bin")
run("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "ttt-run", f"{work}/plan_b1.bin",
    "--weights", f"{case}/model.safetensors", "--data", f"batches:{case}/batch.txt",
    "--max-train-steps", str(steps), "--learning-rate", str(lr), "--lr-warmup-steps", str(warmup),
    "--output-dir", f"{work}/run2")
two = [json.loads(line) for line in open(f"{work}/run2/train_log.jsonl")]
err = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(ours, two))
ok = err < 1e-10 and len(two) == len(ours)
print(f"2 ranks x 1 row: losses within {err:.2e} of 1 rank x 2 rows {'ok' if ok else 'FAIL'}")
if not ok:
    failures.append("2 ranks")
sys.exit(f"disagreement: {failures}" if failures else 0)
