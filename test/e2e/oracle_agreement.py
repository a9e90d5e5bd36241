"""The compiled eval_step (tttc -> ttt-run, dual form, CPU backend) against the independent
per-token primal PyTorch oracle (test/oracle/ttt_primal.py) on the same weights and batch.

Usage: oracle_agreement.py WORKDIR SRC_DIR
Checks, for a tiny model with every parameter random and nonzero, and for the plan's own init:
  fp64 plan vs fp64 oracle: relative difference < 1e-10
  fp32 plan vs fp64 oracle: relative difference < 1e-5
Prints the measured differences.
"""
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402

work, src = sys.argv[1], sys.argv[2]
py = sys.executable
oracle_dir = os.path.join(src, "test", "oracle")


def oracle_loss(case, weights):
    out = run(py, os.path.join(oracle_dir, "ttt_primal.py"), "--config", f"{case}/config.json",
              "--weights", weights, "--batch", f"{case}/batch.txt", "--dtype", "fp64")
    return json.loads(out)


def plan_loss(plan, case, *extra):
    return json.loads(run("ttt-run", plan, "--loss", f"{case}/batch.txt", *extra))


os.makedirs(work, exist_ok=True)
case = os.path.join(work, "case")
run(py, os.path.join(oracle_dir, "make_case.py"), "--out", case, "--seed", "7", "--vocab", "32000",
    "--hidden", "64", "--intermediate", "128", "--layers", "2", "--heads", "4", "--batch", "2",
    "--seq", "64", "--dtype", "fp64")
run("tttc", "import-hf", f"{case}/config.json", "--recipe", "tiny", "--seq-len", "64",
    "--global-batch", "2", "-o", f"{work}/model.mlir")
for precision in ("fp64", "fp32"):
    run("tttc", f"{work}/model.mlir", "--target", "cpu", "--precision", precision,
        "-o", f"{work}/{precision}.bin")

failures = []


def check(label, got, want, bound):
    rel = abs(got["loss"] - want["loss"]) / abs(want["loss"])
    ok = rel < bound and got["tokens"] == want["tokens"]
    print(f"{label}: plan {got['loss']!r} oracle {want['loss']!r} relative {rel:.3e} "
          f"(bound {bound:g}) tokens {got['tokens']}/{want['tokens']} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(label)


reference = oracle_loss(case, f"{case}/model.safetensors")
check("random weights, fp64", plan_loss(f"{work}/fp64.bin", case, "--weights",
                                        f"{case}/model.safetensors"), reference, 1e-10)
check("random weights, fp32", plan_loss(f"{work}/fp32.bin", case, "--weights",
                                        f"{case}/model.safetensors"), reference, 1e-5)

# The plan's own initialization, exported through safetensors with HF names.
init = plan_loss(f"{work}/fp64.bin", case, "--seed", "3", "--save-weights", f"{work}/init.safetensors")
check("init weights (seed 3), fp64", init, oracle_loss(case, f"{work}/init.safetensors"), 1e-10)

sys.exit(f"disagreement: {failures}" if failures else 0)
