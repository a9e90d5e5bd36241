"""Data parallelism on the CPU backend over MPI (fp64, tiny model, per-device batch 4, global 8):
2 ranks x batch 4 (accumulation 1) equals 1 rank x batch 8 (accumulation 2) within 1e-10
relative over 5 steps, in loss, gradient norm and final weights; a checkpoint written by the
2-rank run resumes on 1 rank with the same following losses.

Usage: multi_rank.py WORKDIR PLAN
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import load, run  # noqa: E402

work, plan = sys.argv[1], sys.argv[2]
mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]


def log(d):
    return [json.loads(line) for line in open(f"{d}/train_log.jsonl") if '"loss"' in line]


run("ttt-run", plan, "--max-train-steps", "5", "--output-dir", f"{work}/one")
out = run(*mpirun, "ttt-run", plan, "--max-train-steps", "5", "--save-every", "3",
          "--output-dir", f"{work}/two")
assert "x 2 ranks, mpi" in out, out
one, two = log(f"{work}/one"), log(f"{work}/two")
assert len(one) == len(two) == 5, (len(one), len(two))
worst = 0.0
for a, b in zip(one, two):
    for key in ("loss", "grad_norm"):
        worst = max(worst, abs(a[key] - b[key]) / abs(a[key]))
ok = worst < 1e-10
print(f"2 ranks x 4 vs 1 rank x 8 (accumulation 2), 5 steps: worst relative difference {worst:.2e} "
      f"{'ok' if ok else 'FAIL'}")
w1, w2 = load(f"{work}/one/final_model/model.safetensors"), load(f"{work}/two/final_model/model.safetensors")
wmax = max(((w1[k] - w2[k]).norm() / w1[k].norm()).item() for k in w1)
print(f"final weights: worst relative difference {wmax:.2e} {'ok' if wmax < 1e-10 else 'FAIL'}")

run("ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint",
    f"{work}/two/checkpoint-3", "--output-dir", f"{work}/resumed")
resumed = log(f"{work}/resumed")
rworst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(two[3:], resumed))
print(f"2-rank checkpoint-3 resumed on 1 rank, steps 4-5: worst relative difference {rworst:.2e} "
      f"{'ok' if rworst < 1e-10 else 'FAIL'}")
sys.exit(0 if ok and wmax < 1e-10 and rworst < 1e-10 and len(resumed) == 2 else 1)
