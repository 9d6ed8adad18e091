"""What the cpu prepared-kernel tests share: the plan's prepared calls, and the plan's
outputs checked byte for byte against the normal path's."""

from __future__ import annotations

import hwbench


def prepared(sess: hwbench.Session) -> list:
    """The prepared kernel calls of the session's plan, in the plan's order."""
    ns = sess.executor.plan._fn.__globals__
    return [ns[k] for k in sorted((k for k in ns if k.startswith("K")), key=lambda k: int(k[1:]))]


def run_both(sess: hwbench.Session, feeds: dict) -> None:
    """The plan's outputs against the normal path's, byte for byte."""
    expected = sess.executor.run(feeds)
    got = sess.run(feeds)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
