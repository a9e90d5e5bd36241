"""--max-minutes: a run stops after the step in flight once the limit has passed, saves
checkpoint-N and exits 0 (as SIGTERM does); a resume from it continues with the same losses as an
uninterrupted run; over 2 MPI ranks both ranks stop after the same step (the limit is shared
through a sum, so one rank's clock is enough).

Usage: max_minutes.py WORKDIR PLAN
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run, train_log  # noqa: E402

work, plan = sys.argv[1], sys.argv[2]
ok = True


def verdict(what, good):
    global ok
    ok &= good
    print(f"{what}: {'ok' if good else 'FAIL'}")


def stopped(out, d):
    """The step the run stopped after, with its checkpoint and without a final model."""
    m = re.search(r"stopping after step (\d+) \(the --max-minutes limit of 0.01 min\)", out)
    n = int(m.group(1)) if m else -1
    good = (m is not None and 1 <= n < 100 and os.path.isdir(f"{d}/checkpoint-{n}")
            and not os.path.exists(f"{d}/final_model") and len(train_log(d)) == n)
    return n, good


out = run("ttt-run", plan, "--max-train-steps", "100", "--max-minutes", "0.01", "--output-dir",
          f"{work}/cut")
n, good = stopped(out, f"{work}/cut")
verdict("1 rank: stopped after the limit with checkpoint-N, exit 0", good)
run("ttt-run", plan, "--max-train-steps", str(n + 2), "--output-dir", f"{work}/whole")
run("ttt-run", plan, "--max-train-steps", str(n + 2), "--resume-from-checkpoint",
    f"{work}/cut/checkpoint-{n}", "--output-dir", f"{work}/resumed")
whole, resumed = train_log(f"{work}/whole"), train_log(f"{work}/resumed")
verdict("resumed from it: the next 2 losses equal the uninterrupted run's",
        [s["loss"] for s in whole[n:]] == [s["loss"] for s in resumed] and len(resumed) == 2)
out = run("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "ttt-run", plan,
          "--max-train-steps", "100", "--max-minutes", "0.01", "--output-dir", f"{work}/two")
n2, good = stopped(out, f"{work}/two")
verdict("2 ranks: both stopped after the same step (mpirun exit 0)", good)
sys.exit(0 if ok else 1)
