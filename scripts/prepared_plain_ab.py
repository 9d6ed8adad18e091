"""The translator's decoder step on cpu with and without the plan's prepared plain-array
kernels (``backends/cpu/prepared_plain.py``, issue 16), in one process, alternating
blocks of 500 steps at batch 1, so that a busy host slows both alike; checks the two
give the same bytes first. Usage: ``PYTHONPATH=. python scripts/prepared_plain_ab.py``."""

from __future__ import annotations

import time

import numpy as np

import hwbench
from hwbench.backends.cpu import prepared
from hwbench.datasets import dates
from hwbench.harness.suites.translator_suite import case_models
from hwbench.models.translator import export

BLOCK, ROUNDS = 500, 10


def step_session(model: hwbench.Model, feeds: dict, plain_builders: bool) -> hwbench.Session:
    """A step session whose plan was built with or without ``prepared_plain``'s builders
    (chosen when the plan is compiled: the first runs)."""
    saved = prepared.PLAIN_BUILDERS
    prepared.PLAIN_BUILDERS = saved if plain_builders else {}
    try:
        sess = hwbench.Session(model, "cpu")
        for _ in range(3):
            sess.run(feeds)
    finally:
        prepared.PLAIN_BUILDERS = saved
    return sess


def main() -> None:
    """Print each side's min and median step time (µs) and the ratios."""
    encoder_model, step_model = case_models(1)
    encoder = hwbench.Session(encoder_model, "cpu")
    states, keys_t, h = encoder.run(export.source_feeds(["monday, march 3, 2014"], 32))
    feeds = {"previous": np.full(1, dates.EOS, np.int64), "h": h, "c": np.zeros_like(h),
             "states": states, "keys_t": keys_t, "mask": np.zeros((1, 32), np.float32)}
    sessions = {"before": step_session(step_model, feeds, False),
                "after": step_session(step_model, feeds, True)}
    outs = [s.run(feeds) for s in sessions.values()]
    if any(a.tobytes() != b.tobytes() for a, b in zip(*outs, strict=True)):
        raise SystemExit("the two plans disagree")
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(ROUNDS):
        for name, sess in sessions.items():
            start = time.perf_counter()
            for _ in range(BLOCK):
                sess.run(feeds)
            times[name].append((time.perf_counter() - start) / BLOCK * 1e6)
    for name, v in times.items():
        v.sort()
        print(f"{name}: min {v[0]:.1f} median {v[len(v) // 2]:.1f} us a step")
    b, a = times["before"], times["after"]
    print(f"after/before: medians {a[len(a) // 2] / b[len(b) // 2]:.2f}, mins {a[0] / b[0]:.2f}")


if __name__ == "__main__":
    main()
