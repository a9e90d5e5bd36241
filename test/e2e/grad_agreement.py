"""micro_step's gradients (tttc autodiff, reversed scan with rematerialization, CPU backend)
against the independent PyTorch oracle's autograd gradients (per-token primal form).

Usage: grad_agreement.py WORKDIR SRC_DIR
Checks every parameter's gradient, relative error by norm:
  fp64 plan, remat group 4: < 1e-9;   fp32 plan: < 1e-3
  remat groups 1 and 2 give the same gradients as 4 (fp64, < 1e-12)
Prints the worst parameter of each comparison.
"""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import load, run, worst, case_with_oracle_grads  # noqa: E402

work, src = sys.argv[1], sys.argv[2]


os.makedirs(work, exist_ok=True)
case, oracle = case_with_oracle_grads(work, 11)

grads = {}
for remat in (1, 2, 4):
    run("tttc", "import-hf", f"{case}/config.json", "--recipe", "tiny", "--seq-len", "64",
        "--global-batch", "2", "--remat-group", str(remat), "-o", f"{work}/model{remat}.mlir")
    for precision in ("fp64", "fp32") if remat == 4 else ("fp64",):
        plan = f"{work}/{precision}_r{remat}.bin"
        run("tttc", f"{work}/model{remat}.mlir", "--target", "cpu", "--precision", precision,
            "-o", plan)
        out = f"{work}/grads_{precision}_r{remat}.safetensors"
        run("ttt-run", plan, "--loss", f"{case}/batch.txt", "--weights",
            f"{case}/model.safetensors", "--save-grads", out)
        grads[(precision, remat)] = load(out)

failures = []


def check(label, got, want, bound):
    err, name = worst(got, want)
    ok = err < bound
    print(f"{label}: worst relative error {err:.3e} ({name}), bound {bound:g} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(label)


check("fp64 vs oracle", grads[("fp64", 4)], oracle, 1e-9)
check("fp32 vs oracle", grads[("fp32", 4)], oracle, 1e-3)
check("remat 1 vs 4", grads[("fp64", 1)], grads[("fp64", 4)], 1e-12)
check("remat 2 vs 4", grads[("fp64", 2)], grads[("fp64", 4)], 1e-12)
sys.exit(f"disagreement: {failures}" if failures else 0)
