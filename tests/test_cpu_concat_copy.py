"""A blocked channel concat as byte copies (``cpu/concat_copy.py``) or as its convs
writing into its buffer (``cpu/concat_in_place.py``): on one thread, parts of whole
nChw16c channel blocks (the last one may be padded) are copied per image, and at batch
1 produced in place; bit for bit what oneDNN's concat primitive gives, padding channels
zero for the conv that reads the result; parts of other channel counts keep the
primitive."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.kernels import reference as ref
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")


def fire(path, batch: int, ka: int, kb: int) -> tuple[hwbench.Model, list[np.ndarray]]:
    """A fire module: two convs of one input (1x1 to ``ka``, 3x3 to ``kb`` channels)
    with Relu, their channel Concat, and a 1x1 conv reading the concat."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    ws = [rng.standard_normal(s).astype(np.float32) * 0.3
          for s in [(ka, 16, 1, 1), (kb, 16, 3, 3), (24, ka + kb, 1, 1)]]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Conv", ["x", "w1"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["b"], ["rb"]),
        helper.make_node("Concat", ["ra", "rb"], ["c"], axis=1),
        helper.make_node("Conv", ["c", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "fire", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 24, 9, 9]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [batch, ka + kb, 9, 9])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return hwbench.load_model(str(path)), ws


@pytest.mark.parametrize(("batch", "ka", "kb", "how"), [
    (1, 64, 64, "in_place"), (2, 48, 32, "copied_concat"), (1, 32, 40, "in_place"),
    (2, 40, 48, "_concat_call")])
def test_blocked_concat_copies_give_the_primitives_bits(tmp_path, batch, ka, kb, how):
    """Batch 1 of whole blocks (the last part may be padded): the convs write into the
    concat's buffer (``concat_in_place``); batch 2: byte copies; a first part of 40
    channels: oneDNN's concat primitive."""
    model, ws = fire(tmp_path / "fire.onnx", batch, ka, kb)
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(4):  # the traced run, the run that builds the fast paths, two more
        feeds = batch_feeds(model.graph, batch, seed=seed)[0]
        run_both(sess, feeds)
    concat = next(k for k in prepared(sess) if k.kernel.__name__ == "_concat")
    assert concat.fast()
    assert concat.impl[0].__qualname__.split(".")[0] == how
    if how == "in_place":  # only the run that built it copied (its parts were written)
        assert concat.impl[0].copies == 1
    x = feeds["x"].astype(np.float64)
    c = np.concatenate([ref.conv2d(x, ws[0], activation="relu"),
                        ref.conv2d(x, ws[1], padding=1, activation="relu")], axis=1)
    y, c_got = sess.run(feeds)
    assert float(np.abs(c_got - c).max()) <= 1e-5 * float(np.abs(c).max())
    want = ref.conv2d(c, ws[2])  # padding channels read as zeros
    assert float(np.abs(y - want).max()) <= 1e-5 * float(np.abs(want).max())


def test_in_place_concat_copies_parts_that_are_not_in_its_buffer(tmp_path):
    """Parts from anywhere but the redirected convs of this run (another producer, a
    producer that fell back to its kernel) are copied, not taken for the shared buffer."""
    model, ws = fire(tmp_path / "fire.onnx", 1, 32, 32)
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):
        run_both(sess, batch_feeds(model.graph, 1, seed=seed)[0])
    concat = next(k for k in prepared(sess) if k.kernel.__name__ == "_concat")
    call = concat.impl[0]
    assert call.__qualname__.startswith("in_place") and call.copies == 1
    be = sess.executor.backend
    x = np.random.default_rng(3).standard_normal((1, 16, 9, 9)).astype(np.float32)
    parts = [be.conv2d(be.asarray(x), be.asarray(ws[0]), activation="relu"),
             be.conv2d(be.asarray(x), be.asarray(ws[1]), padding=1, activation="relu")]
    got = be.to_numpy(call(parts))
    assert call.copies == 2
    want = np.concatenate([be.to_numpy(a) for a in parts], axis=1)
    assert got.tobytes() == want.tobytes()
