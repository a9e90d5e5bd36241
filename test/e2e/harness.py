"""Shared helpers of the end-to-end agreement scripts: run a tool, read safetensors with the
oracle's own reader, compare gradient sets."""
import os
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORACLE = os.path.join(SRC, "test", "oracle")
sys.path.insert(0, ORACLE)
import safetensors_io  # noqa: E402


def run(*cmd, env=None):
    """Runs cmd; exits with its output if it fails; returns its stdout."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{out.stdout}{out.stderr}")
    return out.stdout


def load(path):
    """The tensors of a safetensors file (name -> torch tensor)."""
    tensors = safetensors_io.load_file(path)
    return tensors[0] if isinstance(tensors, tuple) else tensors


def worst(got, want):
    """(largest relative error by norm, its tensor name) over two gradient sets."""
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    errs = {k: ((got[k].double() - want[k].double()).norm() / want[k].double().norm()).item()
            for k in want}
    name = max(errs, key=errs.get)
    return errs[name], name
