"""Data parallelism over 4 and 8 MPI ranks on the CPU backend (fp64, tiny model, global batch 8,
clip active, 50 KB buckets): the CPU stand-in for the 4- and 8-GPU nodes the GPU runs have not
had. N ranks x batch 8/N with ZeRO-1 and the per-bucket reduction (the defaults: each rank owns
1/N of the flat parameter space, the buckets are cut across several owners) equal 1 rank x batch
2 with accumulation 4 (the same rows), within 1e-10 relative over 4 steps in loss, gradient norm,
final weights and final AdamW moments; a 4-rank checkpoint resumes on 8 ranks (each slice
re-cut) with the same losses as the 4-rank run.

Usage: multi_rank_many.py WORKDIR PLAN_B2 PLAN_B1
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report, load, rel, run, steps_worst, train_log as log  # noqa: E402

work, plans = sys.argv[1], {4: sys.argv[2], 8: sys.argv[3]}
report = Report()


def mpirun(n):
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(n)]


# The reference: 1 rank x batch 2 with accumulation 4, the same 8 rows per step.
one = f"{work}/one"
run("ttt-run", plans[4], "--max-train-steps", "4", "--output-dir", one)
for n, plan in plans.items():
    many = f"{work}/ranks{n}"
    out = run(*mpirun(n), "ttt-run", plan, "--max-train-steps", "4", "--save-every", "2",
              "--output-dir", many)
    assert f"x {n} ranks, mpi, ZeRO-1, reduced per bucket)" in out, out
    a, b = log(one), log(many)
    assert len(a) == len(b) == 4, (len(a), len(b))
    report(f"{n} ranks x {8 // n} vs 1 rank x 2 (accumulation 4), 4 steps", steps_worst(a, b))
    report(f"{n} ranks: final weights", rel(load(f"{one}/final_model/model.safetensors"),
                                            load(f"{many}/final_model/model.safetensors")))
    report(f"{n} ranks: final AdamW moments",
           rel(load(f"{one}/final_model/optimizer.safetensors"),
               load(f"{many}/final_model/optimizer.safetensors")))

# 4 ranks' checkpoint-2 (rank 0 gathered the 4 moment slices) goes on over 8 ranks, which need
# the per-device batch 1 plan to keep the global batch: the same model, the same rows per step.
run(*mpirun(8), "ttt-run", plans[8], "--max-train-steps", "4", "--resume-from-checkpoint",
    f"{work}/ranks4/checkpoint-2", "--output-dir", f"{work}/resumed")
resumed = log(f"{work}/resumed")
report("4-rank checkpoint-2 resumed on 8 ranks, steps 3-4",
       steps_worst(log(f"{work}/ranks4")[2:], resumed), len(resumed) == 2)
sys.exit(1 if report.failed else 0)
