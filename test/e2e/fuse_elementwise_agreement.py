"""Elementwise fusion and the chunked lm_head + cross-entropy (ttt-fuse-elementwise:
tttp.fused_elementwise, tttp.lm_head_xent / lm_head_xent_bwd and their CPU kernels) against the
unfused programs (tttc --no-fuse-elementwise) and the oracle.

Usage: fuse_elementwise_agreement.py WORKDIR SRC_DIR
For the tiny model (2 layers, fp64), with the inner loop fused and not:
  fused vs unfused: the loss (micro_step and eval_step) and every parameter's gradient,
  max |difference| < 1e-12; fused vs the PyTorch oracle's gradients within 1e-9 by norm.
Also checks which ops each plan holds and that --dump reports fewer kernels and bytes.
"""
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run, worst, worst_abs, plan_losses_and_grads, case_with_oracle_grads  # noqa: E402

work, src = sys.argv[1], sys.argv[2]


os.makedirs(work, exist_ok=True)
case, oracle = case_with_oracle_grads(work, 13)
model = f"{work}/model.mlir"
run("tttc", "import-hf", f"{case}/config.json", "--recipe", "tiny", "--seq-len", "64",
    "--global-batch", "2", "--remat-group", "2", "-o", model)

failures = []


def check(label, err, bound):
    ok = err < bound
    print(f"{label}: {err:.3e}, bound {bound:g} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(label)


def compile_and_run(label, flags):
    plan = f"{work}/{label}.bin"
    run("tttc", model, "--target", "cpu", "--precision", "fp64", "-o", plan, *flags)
    grads = f"{work}/grads_{label}.safetensors"
    return (*plan_losses_and_grads(plan, case, grads), open(plan, "rb").read(), plan)


for inner, inner_flags in (("inner fused", []), ("inner unfused", ["--no-fuse-inner-loop"])):
    fl, fe, fg, fdump, fplan = compile_and_run(f"ew_{len(inner_flags)}", inner_flags)
    ul, ue, ug, udump, _ = compile_and_run(f"noew_{len(inner_flags)}",
                                           inner_flags + ["--no-fuse-elementwise"])
    print(f"{inner}: fused plan: fused_elementwise {b'fused_elementwise' in fdump}, "
          f"lm_head_xent {b'lm_head_xent' in fdump}, lm_head_xent_bwd "
          f"{b'lm_head_xent_bwd' in fdump}, softmax_xent {b'softmax_xent' in fdump}")
    print(f"{inner}: unfused plan: fused_elementwise {b'fused_elementwise' in udump}, "
          f"lm_head_xent {b'lm_head_xent' in udump}")
    diff, diff_name = worst_abs(fg, ug)
    check(f"{inner}: loss fused vs unfused (micro_step)", abs(fl - ul), 1e-12)
    check(f"{inner}: loss fused vs unfused (eval_step)", abs(fe - ue), 1e-12)
    check(f"{inner}: grads fused vs unfused, max abs ({diff_name})", diff, 1e-12)
    err, name = worst(fg, oracle)
    check(f"{inner}: fused vs oracle, worst relative ({name})", err, 1e-9)
    if not inner_flags:
        dump = json.loads(run("ttt-run", fplan, "--dump", "--json"))
        for c in dump["fusion"]:
            fewer = c["kernels"] < c["kernels_unfused"] and c["bytes"] < c["bytes_unfused"]
            print(f"cost {c['program']}: fewer kernels and bytes {fewer}")
sys.exit(f"disagreement: {failures}" if failures else 0)
