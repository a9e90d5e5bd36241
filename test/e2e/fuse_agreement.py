"""The fused inner loop (ttt-fuse-inner-loop: tttp.inner_loop_fwd / inner_loop_bwd and their
direct CPU kernels) against the unfused scans (tttc --no-fuse-inner-loop) and the oracle.

Usage: fuse_agreement.py WORKDIR SRC_DIR
For the tiny model (2 layers, fp64), remat groups 1, 2 and 4:
  fused vs unfused: the loss and every parameter's gradient, max |difference| < 1e-12
  fused vs the PyTorch oracle's autograd gradients: relative error by norm < 1e-9 (remat 4)
Also checks that the fused plan has no scan left and the unfused one no fused op.
"""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run, worst, worst_abs, plan_losses_and_grads, case_with_oracle_grads  # noqa: E402

work, src = sys.argv[1], sys.argv[2]


os.makedirs(work, exist_ok=True)
case, oracle = case_with_oracle_grads(work, 11)

failures = []


def check(label, err, bound):
    ok = err < bound
    print(f"{label}: {err:.3e}, bound {bound:g} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(label)


for remat in (1, 2, 4):
    model = f"{work}/model{remat}.mlir"
    run("tttc", "import-hf", f"{case}/config.json", "--recipe", "tiny", "--seq-len", "64",
        "--global-batch", "2", "--remat-group", str(remat), "-o", model)
    results = {}
    for variant, flags in (("fused", []), ("unfused", ["--no-fuse-inner-loop"])):
        plan = f"{work}/{variant}_r{remat}.bin"
        run("tttc", model, "--target", "cpu", "--precision", "fp64", "-o", plan, *flags)
        dump = open(plan, "rb").read()  # the instruction names are plain strings in the plan
        grads = f"{work}/grads_{variant}_r{remat}.safetensors"
        results[variant] = (*plan_losses_and_grads(plan, case, grads), dump)
    fl, fe, fg, fdump = results["fused"]
    ul, ue, ug, udump = results["unfused"]
    if remat == 4:
        print(f"fused plan: inner_loop_fwd {b'inner_loop_fwd' in fdump}, "
              f"inner_loop_bwd {b'inner_loop_bwd' in fdump}, scan {b'scan' in fdump}")
        print(f"unfused plan: inner_loop_fwd {b'inner_loop_fwd' in udump}, "
              f"scan {b'scan' in udump}")
    diff, diff_name = worst_abs(fg, ug)
    check(f"remat {remat} loss fused vs unfused (micro_step)", abs(fl - ul), 1e-12)
    check(f"remat {remat} loss fused vs unfused (eval_step)", abs(fe - ue), 1e-12)
    check(f"remat {remat} grads fused vs unfused, max abs ({diff_name})", diff, 1e-12)
    if remat == 4:
        err, name = worst(fg, oracle)
        check(f"fused vs oracle, worst relative ({name})", err, 1e-9)
sys.exit(f"disagreement: {failures}" if failures else 0)
