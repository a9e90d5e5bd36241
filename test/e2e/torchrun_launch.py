"""torchrun-style launches of ttt-run (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; no MPI):
one rank trains exactly as a plain run (fp64, 3 steps, equal losses); two ranks of the CPU
backend meet at rank 0 and are both refused with the message that the CPU backend reduces over
MPI; a rank whose rank 0 never comes stops within TTT_RENDEZVOUS_TIMEOUT; under torchrun
(TORCHELASTIC_RUN_ID), whose agent holds MASTER_PORT, the ranks meet on the next port.

Usage: torchrun_launch.py WORKDIR PLAN
"""
import json
import os
import socket
import subprocess
import sys
import time

work, plan = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(rank, size, port, *args, extra=None):
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TTT_RENDEZVOUS_TIMEOUT="20")
    env.update(extra or {})
    return subprocess.Popen(["ttt-run", plan, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def losses(d):
    return [json.loads(line)["loss"] for line in open(f"{d}/train_log.jsonl") if '"loss"' in line]


subprocess.run(["ttt-run", plan, "--max-train-steps", "3", "--output-dir", f"{work}/plain"],
               check=True, stdout=subprocess.DEVNULL)
p = launch(0, 1, free_port(), "--max-train-steps", "3", "--output-dir", f"{work}/one")
out = p.communicate()[0]
assert p.returncode == 0, out
assert losses(f"{work}/one") == losses(f"{work}/plain"), (losses(f"{work}/one"), losses(f"{work}/plain"))
print("1 torchrun rank = plain run, 3 steps: ok")

port = free_port()
procs = [launch(r, 2, port, "--max-train-steps", "1") for r in (0, 1)]
outs = [q.communicate(timeout=60)[0] for q in procs]
for r, (q, o) in enumerate(zip(procs, outs)):
    assert q.returncode == 1, (r, o)
    assert "the CPU backend reduces gradients over MPI" in o, (r, o)
print("2 torchrun ranks on the CPU backend: both refused: ok")

start = time.time()
q = launch(1, 2, free_port(), "--max-train-steps", "1", extra={"TTT_RENDEZVOUS_TIMEOUT": "2"})
o = q.communicate(timeout=60)[0]
took = time.time() - start
assert q.returncode == 1 and "could not reach rank 0" in o and took < 15, (q.returncode, o, took)
print(f"rank 1 without rank 0: stopped after {took:.0f} s: ok")

# Under torchrun (TORCHELASTIC_RUN_ID) the agent's own store holds MASTER_PORT: the ranks meet on
# the next port (and are then refused as above, which shows that they met).
while True:
    port = free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            continue
with socket.socket() as store:
    store.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    store.bind(("0.0.0.0", port))
    store.listen()
    procs = [launch(r, 2, port, "--max-train-steps", "1", extra={"TORCHELASTIC_RUN_ID": "t"})
             for r in (0, 1)]
    outs = [q.communicate(timeout=60)[0] for q in procs]
for r, (q, o) in enumerate(zip(procs, outs)):
    assert q.returncode == 1 and "the CPU backend reduces gradients over MPI" in o, (r, o)
print("2 torchrun ranks beside torchrun's store on MASTER_PORT: met on the next port: ok")
