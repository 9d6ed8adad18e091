"""A recorded command list whose Gather indices are a host feed (``host_feeds``):
each run's index table made from its ids, bit for bit the plan's results; ids out of
range still refused by name; ids that need another kernel layout run the plan."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend

import hwbench
from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.models.model import Model

pytestmark = needs_backend("opencl")

ROWS, WIDTH, BATCH = 40, 24, 4


def _sessions() -> tuple[hwbench.Session, hwbench.Session]:
    """Gather rows of a weight by host ids, then a Relu: recorded, and the plain plan."""
    table = np.random.default_rng(0).standard_normal((ROWS, WIDTH)).astype(np.float32)
    graph = Graph("gather_ids", [ValueInfo("ids", (BATCH,), np.dtype(np.int64))],
                  [ValueInfo("out", (BATCH, WIDTH))], {"table": table},
                  [Node("Gather", ["table", "ids"], ["rows"], {"axis": 0}),
                   Node("Relu", ["rows"], ["out"])], 17)
    model = Model("gather_ids", graph)
    return (hwbench.Session(model, backend="opencl"),
            hwbench.Session(model, backend="opencl", plan=False))


def test_recorded_once_and_every_runs_ids_honoured() -> None:
    sess, plain = _sessions()
    rng = np.random.default_rng(1)
    feeds = [{"ids": rng.integers(-ROWS, ROWS, BATCH)} for _ in range(8)]
    for f in feeds[:2]:
        sess.run(f)
    assert sess.executor.recorded and "_D" not in sess.executor._entry.__globals__
    for f in feeds:  # new ids each run: the table comes from them, not the recorded ones
        (got,), (want,) = sess.run(f), plain.run(f)
        assert got.tobytes() == want.tobytes()
    with pytest.raises(ArgumentError, match="out of range"):
        sess.run({"ids": np.array([0, 1, ROWS, 2])})


def test_ids_that_need_another_layout_run_the_plan() -> None:
    """Consecutive ids make one merged run of rows (another kernel layout than the
    recorded one): that run goes to the plan, and gives its answers."""
    sess, plain = _sessions()
    first = {"ids": np.array([7, 2, 30, 11])}
    sess.run(first)
    sess.run(first)
    assert sess.executor.recorded
    for ids in ([3, 4, 5, 6], [7, 2, 30, 11], [0, 0, 0, 0]):
        f = {"ids": np.array(ids)}
        assert sess.run(f)[0].tobytes() == plain.run(f)[0].tobytes()


SEQ, HIDDEN, FEATURES = 6, 8, 5


def _lstm_sessions() -> tuple[hwbench.Session, hwbench.Session]:
    """A bidirectional LSTM whose sequence lengths are a host feed: recorded, and plain."""
    rng = np.random.default_rng(2)
    weights = {"W": 0.5 * rng.standard_normal((2, 4 * HIDDEN, FEATURES)),
               "R": 0.5 * rng.standard_normal((2, 4 * HIDDEN, HIDDEN)),
               "B": rng.standard_normal((2, 8 * HIDDEN))}
    graph = Graph("lstm_lengths", [ValueInfo("x", (SEQ, BATCH, FEATURES)),
                                   ValueInfo("lengths", (BATCH,), np.dtype(np.int32))],
                  [ValueInfo("y", (SEQ, 2, BATCH, HIDDEN)), ValueInfo("y_h", (2, BATCH, HIDDEN))],
                  {k: v.astype(np.float32) for k, v in weights.items()},
                  [Node("LSTM", ["x", "W", "R", "B", "lengths"], ["y", "y_h"],
                        {"hidden_size": HIDDEN, "direction": "bidirectional"})], 17)
    model = Model("lstm_lengths", graph)
    return (hwbench.Session(model, backend="opencl"),
            hwbench.Session(model, backend="opencl", plan=False))


def test_an_lstms_host_lengths_remake_its_masks_every_run() -> None:
    """The sequence-end masks come from each run's lengths (both directions' uploads);
    lengths all full (no masks: another command list) run the plan; out of range ones
    are refused by name."""
    sess, plain = _lstm_sessions()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((SEQ, BATCH, FEATURES)).astype(np.float32)
    runs = [np.array([2, 6, 1, 4], np.int32), np.array([5, 3, 6, 2], np.int32),
            np.array([1, 1, 1, 1], np.int32), np.full(BATCH, SEQ, np.int32),
            np.array([6, 2, 3, 1], np.int32)]
    for lengths in runs[:2]:
        sess.run({"x": x, "lengths": lengths})
    assert sess.executor.recorded
    for lengths in runs:
        f = {"x": x, "lengths": lengths}
        for got, want in zip(sess.run(f), plain.run(f), strict=True):
            assert got.tobytes() == want.tobytes()
    with pytest.raises(ArgumentError, match="sequence_lens"):
        sess.run({"x": x, "lengths": np.array([0, 2, 3, 1], np.int32)})


def test_constant_gather_table_uploaded_once_in_a_recorded_run() -> None:
    """A channel Gather by constant indices (ShuffleNet's shuffle): a replay reuses its
    cached index table, so the recorded run holds no host upload, and its results stay
    the plan's, bit for bit."""
    order = np.random.default_rng(2).permutation(WIDTH)
    graph = Graph("gather_const", [ValueInfo("x", (BATCH, WIDTH))],
                  [ValueInfo("out", (BATCH, WIDTH))], {"order": order},
                  [Node("Gather", ["x", "order"], ["g"], {"axis": 1}),
                   Node("Relu", ["g"], ["out"])], 17)
    model = Model("gather_const", graph)
    sess = hwbench.Session(model, backend="opencl")
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((BATCH, WIDTH)).astype(np.float32) for _ in range(4)]
    for x in xs[:2]:
        sess.run({"x": x})
    assert sess.executor.recorded
    recorder = sess.executor._entry.__globals__["_recorded"][0]
    assert not [a for _, a, _ in recorder.calls if len(a) == 3 and isinstance(a[2], np.ndarray)]
    for x in xs:
        (got,) = sess.run({"x": x})
        np.testing.assert_array_equal(got, np.maximum(x[:, order], 0))
