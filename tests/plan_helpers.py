"""What the plan and chained-run tests share: the plan's prepared calls, outputs checked
byte for byte, and a one-input session's seeded feeds."""

from __future__ import annotations

import numpy as np

import hwbench


def prepared(sess: hwbench.Session) -> list:
    """The prepared kernel calls of the session's plan, in the plan's order."""
    ns = sess.executor.plan._fn.__globals__
    return [ns[k] for k in sorted((k for k in ns if k.startswith("K")), key=lambda k: int(k[1:]))]


def run_both(sess: hwbench.Session, feeds: dict) -> None:
    """The plan's outputs against the normal path's, byte for byte."""
    expected = sess.executor.run(feeds)
    same_bytes(sess.run(feeds), expected)


def same_bytes(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Every output of the same dtype, shape and bytes."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


def one_input_feeds(sess: hwbench.Session, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard normal float32 feeds for a one-input session's input."""
    v = sess.graph.inputs[0]
    x = np.random.default_rng(seed).standard_normal(tuple(v.shape)).astype(np.float32)
    return {v.name: x}
