"""Shared helpers of the end-to-end agreement scripts: run a tool, read safetensors with the
oracle's own reader, compare gradient sets."""
import json
import os
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORACLE = os.path.join(SRC, "test", "oracle")
sys.path.insert(0, ORACLE)
import safetensors_io  # noqa: E402


def run(*cmd, env=None):
    """Runs cmd; exits with its output if it fails; returns its stdout."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{out.stdout}{out.stderr}")
    return out.stdout


def load(path):
    """The tensors of a safetensors file (name -> torch tensor)."""
    tensors = safetensors_io.load_file(path)
    return tensors[0] if isinstance(tensors, tuple) else tensors


def case_with_oracle_grads(work, seed):
    """A random tiny-model case (vocab 32000, hidden 64, 2 layers, 4 heads, 2 x 64 tokens, fp64)
    in WORK/case and the oracle's autograd gradients of its loss. Returns (case dir, grads)."""
    case = os.path.join(work, "case")
    run(sys.executable, os.path.join(ORACLE, "make_case.py"), "--out", case, "--seed", str(seed),
        "--vocab", "32000", "--hidden", "64", "--intermediate", "128", "--layers", "2",
        "--heads", "4", "--batch", "2", "--seq", "64", "--dtype", "fp64")
    run(sys.executable, os.path.join(ORACLE, "ttt_primal.py"), "--config", f"{case}/config.json",
        "--weights", f"{case}/model.safetensors", "--batch", f"{case}/batch.txt", "--dtype",
        "fp64", "--grads", f"{work}/oracle_grads.safetensors")
    return case, load(f"{work}/oracle_grads.safetensors")


def plan_losses_and_grads(plan, case, grads):
    """Runs PLAN on CASE's batch and weights: (micro_step loss, eval_step loss, gradients), the
    gradients written to GRADS by --save-grads."""
    common = ("ttt-run", plan, "--loss", f"{case}/batch.txt", "--weights",
              f"{case}/model.safetensors")
    micro = json.loads(run(*common, "--save-grads", grads))["loss"]
    evaluated = json.loads(run(*common))["loss"]
    return micro, evaluated, load(grads)


def worst_abs(got, want):
    """(largest absolute difference, its tensor name) over two gradient sets."""
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    name, err = max(((k, (got[k].double() - want[k].double()).abs().max().item()) for k in got),
                    key=lambda t: t[1])
    return err, name


def worst(got, want):
    """(largest relative error by norm, its tensor name) over two gradient sets."""
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    errs = {k: ((got[k].double() - want[k].double()).norm() / want[k].double().norm()).item()
            for k in want}
    name = max(errs, key=errs.get)
    return errs[name], name


# --- multi-rank comparisons (multi_rank.py, state_passing_ranks.py) ------------------------------
def train_log(d):
    """The logged training steps of output directory D (train_log.jsonl)."""
    return [json.loads(line) for line in open(f"{d}/train_log.jsonl") if '"loss"' in line]


def rel(a, b):
    """Largest relative difference by norm over two tensor sets with the same names."""
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    return max(((a[k] - b[k]).norm() / max(a[k].norm(), 1e-300)).item() for k in a)


def steps_worst(a, b, keys=("loss", "grad_norm")):
    """Largest relative difference of the logged KEYS over two runs' steps."""
    return max(abs(x[k] - y[k]) / abs(x[k]) for x, y in zip(a, b) for k in keys)


class Report:
    """Prints one verdict line per check (bound 1e-10); `failed` says whether any failed."""
    failed = False

    def __call__(self, what, worst, extra=True):
        ok = worst < 1e-10 and extra
        self.failed |= not ok
        print(f"{what}: worst relative difference {worst:.2e} {'ok' if ok else 'FAIL'}")

