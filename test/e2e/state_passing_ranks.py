"""State passing over several ranks on the CPU backend over MPI (fp64, tiny model, per-device
batch 2, global batch 8, every row its own stream carrying its inner states and conv histories
from step to step): 2 ranks (accumulation 2) equal 1 rank (accumulation 4) within 1e-10 over 5
steps, in losses, gradient norms, final weights and the carried states of checkpoint-3 (which
hold every row in global row order, [8, ...], whichever rank count wrote them), and so do 4
ranks (accumulation 1); a 2-rank
checkpoint resumes on 1 rank and a 1-rank one on 2 ranks with the same following losses. A
control shows the rows land where they belong: the same checkpoint with its rows rotated by 4
(each rank's rows given to the other) changes the following loss. A checkpoint in the per-slot
layout of earlier versions still resumes; one of another global batch is refused with one line.

Usage: state_passing_ranks.py WORKDIR PLAN PLAN_GLOBAL4
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report, load, rel, run, steps_worst, train_log as log  # noqa: E402
import safetensors_io  # noqa: E402

work, plan, plan4 = sys.argv[1], sys.argv[2], sys.argv[3]
mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]
report = Report()

common = ["--max-train-steps", "5", "--save-every", "3"]
out = run("ttt-run", plan, *common, "--output-dir", f"{work}/one")
assert "(state passing)" in out and "accumulation 4 x 2)" in out, out
out = run(*mpirun, "ttt-run", plan, *common, "--output-dir", f"{work}/two")
assert "accumulation 2 x 2 x 2 ranks" in out, out
one, two = log(f"{work}/one"), log(f"{work}/two")
assert len(one) == len(two) == 5, (len(one), len(two))
report("2 ranks x 2 (accumulation 2) vs 1 rank x 2 (accumulation 4), 5 steps", steps_worst(one, two))
report("final weights", rel(load(f"{work}/one/final_model/model.safetensors"),
                            load(f"{work}/two/final_model/model.safetensors")))
s1 = load(f"{work}/one/checkpoint-3/streams.safetensors")
s2 = load(f"{work}/two/checkpoint-3/streams.safetensors")
shapes = {k: tuple(v.shape) for k, v in s2.items()}
rows_ok = all(s[0] == 8 for s in shapes.values()) and shapes["state:layers.0.ttt.W"] == (8, 4, 16, 16)
nonzero = all(v.abs().max().item() > 0 for v in s2.values())
report(f"carried states of checkpoint-3 ({len(s2)} tensors, [8, ...], none all zero)",
       rel(s1, s2), rows_ok and nonzero)

# 4 ranks (accumulation 1): each rank carries 2 of the 8 rows; checkpoint-3 the same.
run("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "4", "ttt-run", plan, *common,
    "--output-dir", f"{work}/four")
four = log(f"{work}/four")
report("4 ranks x 2 (accumulation 1) vs 1 rank, 5 steps, and checkpoint-3's carried states",
       max(steps_worst(one, four), rel(s1, load(f"{work}/four/checkpoint-3/streams.safetensors"))),
       len(four) == 5)

# The 2-rank checkpoint continues on one rank, the 1-rank one on two.
run("ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint",
    f"{work}/two/checkpoint-3", "--output-dir", f"{work}/resumed1")
resumed = log(f"{work}/resumed1")
report("2-rank checkpoint-3 resumed on 1 rank, steps 4-5", steps_worst(two[3:], resumed),
       len(resumed) == 2)
run(*mpirun, "ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint",
    f"{work}/one/checkpoint-3", "--output-dir", f"{work}/resumed2")
resumed = log(f"{work}/resumed2")
report("1-rank checkpoint-3 resumed on 2 ranks, steps 4-5", steps_worst(one[3:], resumed),
       len(resumed) == 2)

# Control: rows rotated by 4 (rank 0's rows to rank 1 and back) must change step 4's loss.
shutil.copytree(f"{work}/two/checkpoint-3", f"{work}/rotated")
safetensors_io.save_file(f"{work}/rotated/streams.safetensors",
                         {k: v.roll(4, dims=0).contiguous() for k, v in s2.items()})
run("ttt-run", plan, "--max-train-steps", "4", "--resume-from-checkpoint", f"{work}/rotated",
    "--output-dir", f"{work}/resumed_rotated")
moved = abs(log(f"{work}/resumed_rotated")[0]["loss"] - two[3]["loss"]) / two[3]["loss"]
ok = moved > 1e-8
report.failed |= not ok
print(f"rows rotated between the ranks: step 4's loss moves by {moved:.1e} {'ok' if ok else 'FAIL'}")

# A checkpoint of an earlier version (one rank, states per micro-batch slot, flat) still loads.
shutil.copytree(f"{work}/one/checkpoint-3", f"{work}/per_slot")
s1_slots = {f"slot{a}/{k}": v[2 * a:2 * a + 2].reshape(-1).contiguous()
            for k, v in s1.items() for a in range(4)}
safetensors_io.save_file(f"{work}/per_slot/streams.safetensors", s1_slots)
run("ttt-run", plan, "--max-train-steps", "5", "--resume-from-checkpoint", f"{work}/per_slot",
    "--output-dir", f"{work}/resumed_per_slot")
resumed = log(f"{work}/resumed_per_slot")
report("a per-slot checkpoint (earlier versions) resumed, steps 4-5", steps_worst(one[3:], resumed),
       len(resumed) == 2)

# A plan of global batch 4 cannot continue 8 row streams.
bad = subprocess.run(["ttt-run", plan4, "--max-train-steps", "5", "--resume-from-checkpoint",
                      f"{work}/one/checkpoint-3"], capture_output=True, text=True)
print(f"global batch 4 from an 8-row checkpoint: rc {bad.returncode}: {bad.stderr.strip()}")
sys.exit(1 if report.failed else 0)
