"""Whole-model A/B of ``cpu/binary_in_place.py``: a plan whose blocked Mul/Add writes
into its dying operand against one that writes a fresh buffer (issue 16, SE gates).

    PYTHONPATH=. python scripts/in_place_ab.py [--batch 1] [--repeats 80] model ...

Two sessions of the model on one thread, built with the switch off and on, run
alternately in one process (order swapped each round) and timed by the calling
thread's CPU seconds. Prints whether their outputs agree bit for bit, each one's median
and least ms per run, and the ratio of medians (> 1: in place faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hwbench.backends.cpu import binary_in_place
from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session


def session(model, feeds: dict, in_place: bool) -> Session:
    """A warmed session whose fast paths were built with the switch ``in_place``."""
    binary_in_place.ENABLED = in_place
    try:
        sess = Session(model, "cpu", threads=1)
        for _ in range(3):  # trace, build, one replay
            sess.run(feeds)
    finally:
        binary_in_place.ENABLED = True
    return sess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=80)
    args = ap.parse_args()
    for name in args.models:
        model = load_model(name, batch=args.batch)
        feeds, _ = batch_feeds(model.graph, args.batch, seed=0)
        pair = {"out": session(model, feeds, False), "in": session(model, feeds, True)}
        same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
                   zip(pair["out"].run(feeds), pair["in"].run(feeds), strict=True))
        times: dict[str, list[float]] = {"out": [], "in": []}
        for i in range(args.repeats):
            for key in ("out", "in") if i % 2 else ("in", "out"):
                t = time.thread_time()
                pair[key].run(feeds)
                times[key].append(time.thread_time() - t)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"{name} b{args.batch}: bit for bit {same}; median ms out {med['out']:.3f} "
              f"in {med['in']:.3f} (least {min(times['out']) * 1e3:.3f} / "
              f"{min(times['in']) * 1e3:.3f}); out/in {med['out'] / med['in']:.3f}")


if __name__ == "__main__":
    main()
