#!/usr/bin/env python3
"""Loads ttt-run's TensorBoard event files with TensorBoard's own reader and prints the scalars.

Usage: check_with_tensorboard.py LOGDIR [--expect-sample STEPS]
Every directory under LOGDIR holding events.out.tfevents.* files is one run, read with
tensorboard's EventAccumulator (needs `pip install tensorboard`; not a Debian package, so this is
run by hand where TensorBoard is installed, not by ctest). Prints "run tag step value wall_time"
per scalar. With --expect-sample STEPS, LOGDIR must hold one file of ttt_tensorboard_write_sample
LOGDIR STEPS, and every value is checked against what that program writes; exits 1 on a mismatch.
"""
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def sample_scalars(steps):
    want = {}
    for step in range(1, steps + 1):
        for tag, value in (("train/loss", 10.0 / step), ("train/lr", step * 1e-4),
                           ("zero", 0.0), ("neg", -1.5 * step)):
            want.setdefault(tag, []).append((step, f32(value), 1.7e9 + step))
    return want


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    logdir, expect = args[0], None
    if "--expect-sample" in args:
        expect = int(args[args.index("--expect-sample") + 1])

    runs = sorted(d for d, _, files in os.walk(logdir)
                  if any("tfevents" in f for f in files))
    if not runs:
        sys.exit(f"check_with_tensorboard: no events.out.tfevents.* file under {logdir}")
    loaded = {}
    for run in runs:
        acc = EventAccumulator(run, size_guidance={"scalars": 0})  # 0: keep every point
        acc.Reload()
        name = os.path.relpath(run, logdir)
        loaded[name] = {}
        for tag in acc.Tags()["scalars"]:
            points = [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
            loaded[name][tag] = points
            for step, value, wall in points:
                print(f"{name} {tag} {step} {value!r} {wall:.3f}")
    total = sum(len(p) for tags in loaded.values() for p in tags.values())
    print(f"check_with_tensorboard: {len(runs)} run(s), {total} scalar points")

    if expect is not None:
        if len(loaded) != 1:
            sys.exit(f"check_with_tensorboard: expected one run, found {sorted(loaded)}")
        got = next(iter(loaded.values()))
        want = sample_scalars(expect)
        if sorted(got) != sorted(want):
            sys.exit(f"check_with_tensorboard: tags {sorted(got)}, expected {sorted(want)}")
        for tag, points in want.items():
            if got[tag] != points:
                sys.exit(f"check_with_tensorboard: {tag}: got {got[tag]}, expected {points}")
        print(f"check_with_tensorboard: OK, TensorBoard read the sample's {expect} steps exactly")


if __name__ == "__main__":
    main()
