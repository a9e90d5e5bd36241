"""A rank that hangs (SIGSTOP) in the middle of an MPI run: the other rank's step watchdog
stops it with one line naming the rank and the step, mpirun ends the job, all within a bounded
time, and the last checkpoint is intact (it loads and holds every parameter).

Usage: rank_hang.py WORKDIR PLAN
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import load  # noqa: E402

work, plan = sys.argv[1], sys.argv[2]
out_dir = os.path.join(work, "hang")
timeout = 20
job = subprocess.Popen(
    ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "ttt-run", plan,
     "--max-train-steps", "100000", "--save-every", "2", "--step-timeout", str(timeout),
     "--output-dir", out_dir],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def steps_logged():
    try:
        return sum('"loss"' in line for line in open(os.path.join(out_dir, "train_log.jsonl")))
    except OSError:
        return 0


def ranks():
    """PIDs of this job's ttt-run processes (not mpirun's)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(args[0]) == b"ttt-run" and out_dir.encode() in args:
            pids.append(int(pid))
    return pids


deadline = time.time() + 120
while steps_logged() < 3 and time.time() < deadline and job.poll() is None:
    time.sleep(0.2)
pids = ranks()
if steps_logged() < 3 or len(pids) != 2:
    job.kill()
    sys.exit(f"FAILED: the run did not reach step 3 with 2 ranks ({steps_logged()}, {pids}):\n"
             + job.communicate()[0])
os.kill(pids[1], signal.SIGSTOP)
stopped = time.time()
try:
    output = job.communicate(timeout=90)[0]
    ended = time.time() - stopped
except subprocess.TimeoutExpired:
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    job.kill()
    sys.exit("FAILED: the job still runs 90 s after a rank stopped\n" + job.communicate()[0])
for pid in pids:  # whatever the launcher left behind
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
lines = [line for line in output.splitlines() if "did not finish within" in line]
print(f"job exit status non-zero: {job.returncode != 0}")
print(f"ended within {timeout} s + 30 s of the hang: {ended < timeout + 30}")
print(lines[0] if lines else "(no watchdog line)\n" + output)
checkpoints = sorted(d for d in os.listdir(out_dir) if d.startswith("checkpoint-"))
last = os.path.join(out_dir, checkpoints[-1]) if checkpoints else None
ok = last is not None and len(load(os.path.join(last, "model.safetensors"))) > 0
print(f"last checkpoint loads: {ok}")
