"""Checkpoints written in the background (rank 0 writes each periodic checkpoint on a thread of its
own while the steps go on).

0. A step that is a milestone and a checkpoint writes both from one snapshot: the same files.

1. A checkpoint-2 whose write takes 3 s longer (TTT_FAULT_SLOW_SAVE): step 3 is logged before
   "saved .../checkpoint-2" (the steps did not wait for it); every loss, and checkpoint-2's
   weights, AdamW moments and step, are those of a run without the delay (the snapshot is the
   state after step 2, not what the steps after it changed); resuming from it gives steps 3-4
   of the uninterrupted run.
2. A checkpoint-2 whose write fails (TTT_FAULT_FAIL_SAVE): the run stops with that error in one
   line and exit code 1 before step 5; over 2 MPI ranks, both ranks stop (no hang), rank 1 with
   a line pointing at rank 0's error.

Usage: checkpoint_background.py WORKDIR PLAN PLAN_B4 (per-device batch 4, for 2 ranks)
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run, train_log as log  # noqa: E402

work, plan, plan4 = sys.argv[1], sys.argv[2], sys.argv[3]
common = ["--max-train-steps", "6", "--save-every", "2", "--milestone-every", "4"]


def same_bytes(a, b):
    return open(a, "rb").read() == open(b, "rb").read()


run("ttt-run", plan, *common, "--output-dir", f"{work}/ref")
# Step 4 is a milestone and a checkpoint: both written from one snapshot, the same files.
a, b = f"{work}/ref/milestone-4", f"{work}/ref/checkpoint-4"
print(f"milestone-4 = checkpoint-4: {same_bytes(f'{a}/model.safetensors', f'{b}/model.safetensors')} "
      f"{same_bytes(f'{a}/optimizer.safetensors', f'{b}/optimizer.safetensors')}")
env = dict(os.environ, TTT_FAULT_SLOW_SAVE="checkpoint-2")
slow = subprocess.run(["ttt-run", plan, *common, "--output-dir", f"{work}/slow"],
                      capture_output=True, text=True, env=env)
assert slow.returncode == 0, slow.stdout + slow.stderr
lines = slow.stdout.splitlines()
step3 = next(i for i, l in enumerate(lines) if l.startswith("step     3/"))
saved2 = next(i for i, l in enumerate(lines) if l.startswith("saved ") and l.endswith("/checkpoint-2"))
print(f"slow checkpoint-2: step 3 logged before it was saved: {step3 < saved2}")
ref, got = log(f"{work}/ref"), log(f"{work}/slow")
print(f"slow checkpoint-2: losses as without the delay: "
      f"{[s['loss'] for s in ref] == [s['loss'] for s in got] and len(got) == 6}")
a, b = f"{work}/ref/checkpoint-2", f"{work}/slow/checkpoint-2"
step = json.load(open(f"{b}/trainer_state.json"))["step"]
print(f"slow checkpoint-2: weights, moments and step those after step 2: "
      f"{same_bytes(f'{a}/model.safetensors', f'{b}/model.safetensors')} "
      f"{same_bytes(f'{a}/optimizer.safetensors', f'{b}/optimizer.safetensors')} {step}")
run("ttt-run", plan, "--max-train-steps", "4", "--resume-from-checkpoint", b, "--output-dir",
    f"{work}/resumed")
resumed = log(f"{work}/resumed")
print(f"resumed from it, steps 3-4 as uninterrupted: "
      f"{[s['loss'] for s in resumed] == [s['loss'] for s in ref[2:4]]}")

env = dict(os.environ, TTT_FAULT_FAIL_SAVE="checkpoint-2")
bad = subprocess.run(["ttt-run", plan, *common, "--output-dir", f"{work}/fail"],
                     capture_output=True, text=True, env=env)
print(f"failed checkpoint-2: rc {bad.returncode}, after step 2: {'step     2/' in bad.stdout}, "
      f"before step 5: {'step     5/' not in bad.stdout}: {bad.stderr.strip()}")
two = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "ttt-run",
                      plan4, *common, "--output-dir", f"{work}/fail2"],
                     capture_output=True, text=True, env=env, timeout=120)
errors = sorted(l for l in two.stderr.splitlines() if l.startswith("ttt-run: error:"))
print(f"failed checkpoint-2 on 2 ranks: rc {two.returncode != 0}, after step 2: "
      f"{'step     2/' in two.stdout}, before step 5: {'step     5/' not in two.stdout}")
for line in errors:  # each rank's error, one whole line each
    print(line.replace(work, "WORK"))
