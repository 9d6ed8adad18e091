"""A grouped conv's fused shortcut read in place (``cpu/conv_residual.py``).

ShuffleNet's residual units end in a grouped 1×1 conv + Add + Relu whose shortcut is
the previous unit's output: a ``BlockedArray`` in the layout oneDNN chose for the
grouped conv ("any": 34 or 68 channels a group do not block by 16). Such a shortcut
went through a sum post-op (copied into the dst first), which the compiled plan's
prepared conv does not bind, so every such conv ran the kernel's whole path. Now
a shortcut in exactly the dst's layout is read in place, and the plan replays it."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import prepared, run_both

import hwbench
from hwbench.backends import get_backend
from hwbench.kernels import reference as ref
from hwbench.models.sample_inputs import batch_feeds
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")
F32 = np.float32
C, G = 136, 4  # ShuffleNet v1 (g=4)'s stage-2 width: 34 channels a group


def _weights(rng: np.random.Generator) -> list[np.ndarray]:
    return [(0.2 * rng.standard_normal((C, C // G, 1, 1))).astype(F32) for _ in range(3)]


def residual_units(path) -> hwbench.Model:
    """Two ShuffleNet-style units: a grouped 1x1 conv + Relu, then grouped 1x1 convs
    whose Add of the unit's input and Relu fuse into the conv (the second unit's
    shortcut is the first one's fused conv output)."""
    from onnx import TensorProto, helper, numpy_helper

    ws = _weights(np.random.default_rng(3))
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], group=G),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], group=G),
        helper.make_node("Add", ["c1", "r0"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], group=G),
        helper.make_node("Add", ["c2", "r1"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "group_residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, 14, 14])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(path))
    return hwbench.load_model(str(path))


def test_grouped_conv_reads_a_shortcut_of_its_own_layout_in_place():
    be = get_backend("cpu", keep_blocked=True, check_finite=False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, 14, 14)).astype(F32)
    w0, w1, _ = _weights(rng)
    r = be.conv2d(be.asarray(x), be.asarray(w0), groups=G, activation="relu")
    y = be.conv2d(r, be.asarray(w1), groups=G, residual=r, activation="relu")
    r64 = ref.conv2d(x, w0, groups=G, activation="relu")
    want = ref.conv2d(r64, w1, groups=G, residual=r64, activation="relu")
    got = be.to_numpy(y)
    assert float(np.abs(got - want).max()) <= 1e-5 * float(np.abs(want).max())
    # the problem of the conv with a shortcut: the key of its sum-post-op form
    problem = next(k[1] for k in be._primitives if k[0] == "conv" and k[3] == "plain")
    conv = be._conv_primitive(problem, r, "relu", r)
    assert conv.residual == "blocked" and conv.residual_md == r.md


def test_plan_replays_grouped_residual_convs_prepared_and_bit_for_bit(tmp_path):
    model = residual_units(tmp_path / "units.onnx")
    sess = hwbench.Session(model, "cpu", threads=1)
    for seed in range(3):  # the traced run, the run that builds the fast paths, one more
        feeds = batch_feeds(model.graph, 1, seed=seed)[0]
        run_both(sess, feeds)
    convs = [s for s in sess.executor._steps if "Conv" in s.node.op_type]
    assert len(convs) == 3
    assert sum(k.fast() for k in prepared(sess)) >= 3
    x = feeds["x"].astype(np.float64)
    ws = _weights(np.random.default_rng(3))
    r = ref.conv2d(x, ws[0], groups=G, activation="relu")
    for w in ws[1:]:
        r = ref.conv2d(r, w, groups=G, residual=r, activation="relu")
    got = sess.run(feeds)[0]
    assert float(np.abs(got - r).max()) <= 1e-5 * float(np.abs(r).max())
