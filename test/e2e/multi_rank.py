"""Data parallelism on the CPU backend over MPI (fp64, tiny model, per-device batch 4, global 8):
2 ranks x batch 4 (accumulation 1) equals 1 rank x batch 8 (accumulation 2) within 1e-10
relative over 5 steps, in loss, gradient norm, final weights and final AdamW moments, with
ZeRO-1 (the default: each rank keeps and updates the moments of its slice) and with --zero 0
(every rank a full copy), each with the gradients summed per bucket during the backward (the
default) and after the micro-steps (--no-overlap); a checkpoint written by the ZeRO-1 run (rank 0 gathers the moment
slices into the one-rank format) resumes on 1 rank with the same following losses, and a
1-rank checkpoint resumes on 2 ZeRO-1 ranks with the same following losses.

Usage: multi_rank.py WORKDIR PLAN
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report, load, rel, run, steps_worst, train_log as log  # noqa: E402

work, plan = sys.argv[1], sys.argv[2]
mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]
report = Report()

run("ttt-run", plan, "--max-train-steps", "5", "--save-every", "3", "--output-dir", f"{work}/one")
one = log(f"{work}/one")
final = f"{work}/one/final_model"
for name, flags, banner in (
        ("zero1", [], "x 2 ranks, mpi, ZeRO-1, reduced per bucket)"),
        ("zero1_after", ["--no-overlap"], "x 2 ranks, mpi, ZeRO-1)"),
        ("replicated", ["--zero", "0"], "x 2 ranks, mpi, reduced per bucket)"),
        ("replicated_after", ["--zero", "0", "--no-overlap"], "x 2 ranks, mpi)")):
    out = run(*mpirun, "ttt-run", plan, "--max-train-steps", "5", "--save-every", "3",
              "--output-dir", f"{work}/{name}", *flags)
    assert banner in out, out
    two = log(f"{work}/{name}")
    assert len(one) == len(two) == 5, (len(one), len(two))
    report(f"{name}: 2 ranks x 4 vs 1 rank x 8 (accumulation 2), 5 steps", steps_worst(one, two))
    got = f"{work}/{name}/final_model"
    report(f"{name}: final weights", rel(load(f"{final}/model.safetensors"),
                                         load(f"{got}/model.safetensors")))
    report(f"{name}: final AdamW moments", rel(load(f"{final}/optimizer.safetensors"),
                                               load(f"{got}/optimizer.safetensors")))

# The ZeRO-1 run's checkpoint (moment slices gathered by rank 0) continues on one rank.
zero1 = log(f"{work}/zero1")
run("ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint",
    f"{work}/zero1/checkpoint-3", "--output-dir", f"{work}/resumed1")
resumed = log(f"{work}/resumed1")
report("ZeRO-1 2-rank checkpoint-3 resumed on 1 rank, steps 4-5",
       steps_worst(zero1[3:], resumed, ("loss",)), len(resumed) == 2)
# A one-rank checkpoint continues on two ZeRO-1 ranks (each keeps its slice of the moments).
run(*mpirun, "ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint",
    f"{work}/one/checkpoint-3", "--output-dir", f"{work}/resumed2")
resumed = log(f"{work}/resumed2")
report("1-rank checkpoint-3 resumed on 2 ZeRO-1 ranks, steps 4-5",
       steps_worst(one[3:], resumed), len(resumed) == 2)
sys.exit(1 if report.failed else 0)
