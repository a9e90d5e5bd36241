"""Preemption and crash safety of ttt-run's checkpoints.

1. SIGTERM during training: the step finishes, checkpoint-N is written, exit code 0, and the run
   resumes from it.
2. kill -9 at random moments while checkpoints are being written (every step): afterwards every
   checkpoint-N directory is complete and resumable; half-written data only ever sits in hidden
   .tmp-* directories.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time

work, src = sys.argv[1], sys.argv[2]
plan = f"{work}/tiny.bin"


def start(out, *extra):
    return subprocess.Popen(["ttt-run", plan, "--max-train-steps", "200", "--output-dir", out,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# 1. SIGTERM once the second step has been logged.
proc = start(f"{work}/term")
lines = []
for line in proc.stdout:
    lines.append(line)
    if line.startswith("step     2/"):
        proc.send_signal(signal.SIGTERM)
rc = proc.wait()
text = "".join(lines)
m = re.search(r"stopping after step (\d+) \(signal SIGTERM\)", text)
assert rc == 0 and m, (rc, text)
step = int(m.group(1))
ckpt = f"{work}/term/checkpoint-{step}"
assert os.path.isdir(ckpt), os.listdir(f"{work}/term")
print(f"sigterm: exit {rc}, stopped after step {step}, checkpoint-{step} saved")
out = subprocess.run(["ttt-run", plan, "--max-train-steps", str(step + 1), "--resume-from-checkpoint",
                      ckpt, "--output-dir", f"{work}/term-resumed"], capture_output=True, text=True)
assert out.returncode == 0 and f"step     {step + 1}/" in out.stdout, out.stdout + out.stderr
print("resume after sigterm: ok")

# 2. kill -9 at random moments right after a checkpoint save began (one is written after every
#    step, and a step is shorter than a save's tail), then resume from the newest checkpoint.
random.seed(1)
kills = 0
out_dir = f"{work}/crash"


def newest_checkpoint():
    if not os.path.isdir(out_dir):
        return []
    names = [d for d in os.listdir(out_dir) if d.startswith("checkpoint-")]
    if not names:
        return []
    best = max(names, key=lambda d: int(d.split("-")[1]))
    return ["--resume-from-checkpoint", os.path.join(out_dir, best)]


for attempt in range(6):
    proc = start(out_dir, "--save-every", "1", "--keep-checkpoints", "100", *newest_checkpoint())
    saves = 0
    for line in proc.stdout:
        if line.startswith("saved "):
            saves += 1
            if saves == 2:
                break
    time.sleep(random.uniform(0.0, 0.5))
    proc.kill()
    proc.wait()
    kills += 1
complete = sorted((d for d in os.listdir(out_dir) if d.startswith("checkpoint-")),
                  key=lambda d: int(d.split("-")[1]))
assert complete, os.listdir(out_dir)
for d in complete:
    files = set(os.listdir(os.path.join(out_dir, d)))
    need = {"model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json", "tokenizer.model"}
    assert need <= files, (d, files)
latest = os.path.join(out_dir, complete[-1])
step = int(complete[-1].split("-")[1])
out = subprocess.run(["ttt-run", plan, "--max-train-steps", str(step + 1), "--resume-from-checkpoint",
                      latest, "--output-dir", f"{work}/crash-resumed"], capture_output=True, text=True)
assert out.returncode == 0, out.stdout + out.stderr
# 3. Deterministic: SIGKILL in the middle of writing checkpoint-3 (fault injection).
fault_dir = f"{work}/fault"
env = dict(os.environ, TTT_FAULT_KILL_IN_SAVE="checkpoint-3")
out = subprocess.run(["ttt-run", plan, "--max-train-steps", "6", "--save-every", "1", "--output-dir",
                      fault_dir], capture_output=True, text=True, env=env)
assert out.returncode == -signal.SIGKILL, (out.returncode, out.stdout, out.stderr)
names = sorted(os.listdir(fault_dir))
assert "checkpoint-2" in names and "checkpoint-3" not in names, names
assert any(n.startswith(".tmp-checkpoint-3") for n in names), names
out = subprocess.run(["ttt-run", plan, "--max-train-steps", "3", "--resume-from-checkpoint",
                      f"{fault_dir}/checkpoint-2", "--output-dir", f"{work}/fault-resumed"],
                     capture_output=True, text=True)
assert out.returncode == 0 and "step     3/3" in out.stdout, out.stdout + out.stderr
kills += 1
print(f"kill -9 during saves: {kills} kills, previous checkpoints intact and loadable "
      f"({len(complete)} complete, latest {complete[-1]}; killed inside checkpoint-3: "
      f"checkpoint-2 intact, only a .tmp left)")
