"""Checks a ttt-run train_log.jsonl: STEPS steps, finite losses starting near ln(32000), the
first update with lr 0 (the reference's schedule), and a falling loss: the mean of the last
quarter at least 0.5 below the mean of the first quarter."""
import json
import math
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
steps = int(sys.argv[2])
assert len(rows) == steps, (len(rows), steps)
assert [r["step"] for r in rows] == list(range(1, steps + 1))
losses = [r["loss"] for r in rows]
assert all(math.isfinite(x) for x in losses), losses
assert abs(losses[0] - math.log(32000)) < 0.2, losses[0]
assert rows[0]["lr"] == 0.0, rows[0]["lr"]
q = max(1, steps // 4)
first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; first quarter mean {first:.4f}, last {last:.4f}")
assert last < first - 0.5, (first, last)
