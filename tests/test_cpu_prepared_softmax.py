"""The prepared Softmax of a blocked activation (``cpu/prepared_softmax.py``): a
classifier head's GlobalAveragePool output, kept in nChw16c, is read by a bound
softmax (directly for one image of one pixel, after a bound reorder otherwise), bit
for bit the normal path's, and a plan falls back to the kernel for anything else."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")
K = 40  # not a multiple of 16: the blocked buffer has padding channels


def head(path, batch: int, pixels: int) -> tuple[hwbench.Model, np.ndarray]:
    """Conv (to K channels, blocked) -> GlobalAveragePool (or an AveragePool to
    ``pixels``×1 pixels) -> Softmax over the channels."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(5).standard_normal((K, 8, 3, 3)).astype(np.float32)
    pool = (helper.make_node("GlobalAveragePool", ["c"], ["g"]) if pixels == 1 else
            helper.make_node("AveragePool", ["c"], ["g"], kernel_shape=[6 // pixels, 6],
                             strides=[6 // pixels, 6]))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), pool,
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, K, pixels, 1])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return hwbench.load_model(str(path)), w


def softmax64(x: np.ndarray, w: np.ndarray, pixels: int) -> np.ndarray:
    from hwbench.kernels import reference as ref

    c = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    n = c.shape[0]
    g = c.reshape(n, K, pixels, 6 // pixels, 6).mean(axis=(3, 4))[..., None]
    e = np.exp(g - g.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("batch", "pixels"), [(1, 1), (2, 1), (1, 2)])
def test_softmax_of_a_blocked_head_is_prepared_and_the_normal_paths_bits(tmp_path, batch,
                                                                          pixels):
    model, w = head(tmp_path / "head.onnx", batch, pixels)
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        feeds = batch_feeds(model.graph, batch, seed=seed)[0]
        run_both(sess, feeds)
    softmaxes = [k for k in prepared(sess) if k.kernel.__name__ == "_softmax"]
    assert len(softmaxes) == 1 and softmaxes[0].fast()
    got = sess.run(feeds)[0]
    want = softmax64(feeds["x"], w, pixels)
    assert float(np.abs(got - want).max()) <= 1e-6


def test_prepared_softmax_falls_back_for_another_layout(tmp_path):
    model, _ = head(tmp_path / "head.onnx", 1, 1)
    sess = hwbench.Session(model, "cpu", threads=1)
    feeds = batch_feeds(model.graph, 1, seed=0)[0]
    for _ in range(2):
        sess.run(feeds)
    call = next(k for k in prepared(sess) if k.kernel.__name__ == "_softmax")
    plain = np.random.default_rng(1).standard_normal((1, K, 1, 1)).astype(np.float32)
    want = np.exp(plain - plain.max()) / np.exp(plain - plain.max()).sum()
    got = call.impl[0](plain)  # not the blocked layout it was built for: the kernel's
    assert np.allclose(got, want, rtol=1e-6, atol=0)
