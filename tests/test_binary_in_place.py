"""A plan's blocked Mul/Add written into its dying operand (``cpu/binary_in_place.py``):
taken for a squeeze-and-excitation gate whose activation nothing reads later, bit for bit
the normal path's and within float32 rounding of the numpy backend's; refused where the
activation is still read, or aliased, after the Mul."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import run_both, se_model

import hwbench
from hwbench.backends.cpu import binary_in_place
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")


def in_place_runs(model: hwbench.Model, monkeypatch, runs: int = 3) -> int:
    """How many Mul calls (40 channels) wrote into their operand over ``runs`` plan runs, each
    checked byte for byte against the normal path and against the numpy backend."""
    written: list[int] = []
    real = binary_in_place._blocked

    def spy(buffer, shape, *rest):
        if shape[1] == 40:  # the Mul, not a tail's Add
            written.append(buffer.ctypes.data)
        return real(buffer, shape, *rest)
    monkeypatch.setattr(binary_in_place, "_blocked", spy)
    sess = hwbench.Session(model, "cpu", threads=1)
    ref = hwbench.Session(model, "numpy")
    for seed in range(runs):
        feeds = batch_feeds(model.graph, 1, seed=seed)[0]
        run_both(sess, feeds)
        got, want = sess.run(feeds)[0], ref.run(feeds)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    return len(written)


def test_a_gate_mul_whose_activation_dies_writes_into_it(tmp_path, monkeypatch):
    model = se_model(tmp_path / "se.onnx", [("Conv", ["m", "w3"], ["y"])])
    # two plan runs a seed; the first traces, the second builds the fast path (its
    # ``*args`` hold the operand): every later one writes in place
    assert in_place_runs(model, monkeypatch, runs=4) == 4 * 2 - 2
    monkeypatch.setattr(binary_in_place, "ENABLED", False)
    assert in_place_runs(model, monkeypatch) == 0


@pytest.mark.parametrize("tail", [
    # c1 read again after the Mul: the plan does not drop it there
    [("Conv", ["m", "w3"], ["y1"]), ("Conv", ["c1", "w3"], ["y2"]), ("Add", ["y1", "y2"], ["y"])],
    # c1 dropped at the Mul, but an Identity's alias of it read later
    [("Identity", ["c1"], ["a"]), ("Conv", ["m", "w3"], ["y1"]), ("Conv", ["a", "w3"], ["y2"]),
     ("Add", ["y1", "y2"], ["y"])],
], ids=["read-later", "aliased"])
def test_an_activation_read_after_the_mul_is_not_overwritten(tmp_path, monkeypatch, tail):
    model = se_model(tmp_path / "se.onnx", tail)
    assert in_place_runs(model, monkeypatch) == 0


def test_exclusive_refuses_an_aliased_operand_a_viewed_buffer_and_one_of_no_pool():
    """``exclusive`` as the plan's call meets it (a local, the call's parameter and
    local): True for a pool buffer nothing else holds, False with one more reference
    to the operand, to its memory, or for memory the pool does not hold."""
    from hwbench.backends import get_backend
    from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray

    be = get_backend("cpu", keep_blocked=True, threads=1)
    md = be.dnnl.memory_desc((1, 32, 32, 32), "f32", tag=BLOCKED_TAG)

    def call(a):  # the plan's call: its parameter and its local
        full = a
        return binary_in_place.exclusive(be, full)

    x = BlockedArray(be._buffers.empty(md.size, np.uint8), (1, 32, 32, 32), md, None)
    # (each result taken before its assert: pytest's rewritten asserts hold the argument)
    alone = call(x)
    alias = x
    aliased = call(x)
    del alias
    view = x.buffer[:64]
    viewed = call(x)
    del view
    again = call(x)
    raw = np.empty(md.size + 64, np.uint8)  # memory no pool holds, one other holder
    y = BlockedArray(raw[:md.size], (1, 32, 32, 32), md, None)
    foreign = call(y)
    assert (alone, aliased, viewed, again, foreign) == (True, False, False, True, False)
