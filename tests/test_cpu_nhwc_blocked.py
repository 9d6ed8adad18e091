"""Pooling and channel concat of activations in the NHWC layout oneDNN chose for a
grouped conv (``cpu/blocked_layout.py``): ShuffleNet's AveragePools and downsampling
Concats ran in that layout's ``BlockedArray`` instead of reordering to NCHW through the
kernels' whole path; values as float64's, and the plan replays them prepared, bit for
bit the normal path."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.backends import get_backend
from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.kernels import reference as ref
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")
F32 = np.float32
C, G = 136, 4  # 34 channels a group: oneDNN picks NHWC for the grouped 1x1 conv


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert float(np.abs(got - want).max()) <= 1e-5 * float(np.abs(want).max())


def test_pool_and_concat_keep_a_grouped_convs_nhwc_layout():
    be = get_backend("cpu", keep_blocked=True, check_finite=False)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, C, 14, 14)).astype(F32)
    w = (0.2 * rng.standard_normal((C, C // G, 1, 1))).astype(F32)
    y = be.conv2d(be.asarray(x), be.asarray(w), groups=G)
    nhwc = be.dnnl.memory_desc(y.shape, "f32", tag="acdb")
    assert isinstance(y, BlockedArray) and y.md == nhwc
    y64 = ref.conv2d(x, w, groups=G)
    pooled = be.avg_pool2d(y, 3, 2, 1)
    assert isinstance(pooled, BlockedArray)  # no reorder to NCHW
    _close(be.to_numpy(pooled), ref.avg_pool2d(y64, 3, 2, 1))
    biggest = be.max_pool2d(y, 2, 2)
    both = be.concat([pooled, biggest], 1)
    assert isinstance(both, BlockedArray)
    _close(be.to_numpy(both), np.concatenate([ref.avg_pool2d(y64, 3, 2, 1),
                                              ref.max_pool2d(y64, 2, 2)], axis=1))


def downsampling_unit(path) -> tuple[hwbench.Model, list[np.ndarray]]:
    """Grouped 1x1 conv, then its AveragePool 3x3/2 beside a stride-2 grouped conv of it,
    their Concat, Relu, a global average pool and a Flatten (ShuffleNet's stage ends)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    ws = [(0.2 * rng.standard_normal((C, C // G, 1, 1))).astype(F32) for _ in range(2)]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], group=G),
        helper.make_node("AveragePool", ["a"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w1"], ["b"], group=G, strides=[2, 2]),
        helper.make_node("Concat", ["b", "p"], ["c"], axis=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "unit", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2 * C])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return hwbench.load_model(str(path)), ws


def test_plan_replays_nhwc_pool_concat_and_flatten_prepared(tmp_path):
    model, ws = downsampling_unit(tmp_path / "unit.onnx")
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        feeds = batch_feeds(model.graph, 1, seed=seed)[0]
        run_both(sess, feeds)
    calls = prepared(sess)
    assert len(calls) == 7 and all(k.fast() for k in calls)
    a = ref.conv2d(feeds["x"].astype(np.float64), ws[0], groups=G)
    c = np.concatenate([ref.conv2d(a, ws[1], groups=G, stride=2),
                        ref.avg_pool2d(a, 3, 2, 1)], axis=1)
    _close(sess.run(feeds)[0], np.maximum(c, 0).mean(axis=(2, 3)))


def test_concat_of_nhwc_and_nchw16c_parts_reorders_the_second_once(tmp_path):
    """ShuffleNet's first downsampling unit: a grouped conv's NHWC output beside an
    AveragePool of an nChw16c activation (24 channels, padded)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(6)
    w0 = (0.2 * rng.standard_normal((112, 24, 3, 3))).astype(F32)  # ungrouped: nChw16c
    w1 = (0.2 * rng.standard_normal((112, 28, 1, 1))).astype(F32)  # 4 groups: NHWC
    w2 = (0.2 * rng.standard_normal((24, 24, 3, 3))).astype(F32)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w1"], ["b"], group=4, strides=[2, 2]),
        helper.make_node("Conv", ["x", "w2"], ["c"], pads=[1, 1, 1, 1]),  # nChw16c
        helper.make_node("AveragePool", ["c"], ["q"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["b", "q"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 136, 7, 7])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate((w0, w1, w2))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "mixed.onnx"))
    model = hwbench.load_model(str(tmp_path / "mixed.onnx"))
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):
        feeds = batch_feeds(model.graph, 1, seed=seed)[0]
        run_both(sess, feeds)
    concat = next(k for k in prepared(sess) if k.kernel.__name__ == "_concat")
    assert concat.fast()
    x = feeds["x"].astype(np.float64)
    want = np.concatenate([ref.conv2d(ref.conv2d(x, w0, padding=1), w1, groups=4, stride=2),
                           ref.avg_pool2d(ref.conv2d(x, w2, padding=1), 3, 2, 1)], axis=1)
    _close(sess.run(feeds)[0], want)
