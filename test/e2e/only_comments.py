"""Reads file names on stdin; fails if 'mlir' appears in any of them outside a comment."""
import sys

bad = []
for path in sys.stdin.read().split():
    for n, line in enumerate(open(path, errors="replace"), 1):
        if "mlir" not in line.lower():
            continue
        code = line.split("//", 1)[0].split("#", 1)[0] if not path.endswith((".py", ".cmake", ".txt")) else line.split("#", 1)[0]
        if "mlir" in code.lower() and not code.strip().startswith("*"):
            bad.append(f"{path}:{n}: {line.strip()}")
print("\n".join(bad) or "ok")
sys.exit(1 if bad else 0)
