"""NCHW <-> NHWC Transposes on cpu as one oneDNN reorder (``cpu/channel_transpose.py``):
the same bits as NumPy's transpose, blocked where a session's next ops read it so, and
ConvNeXt's block (dw conv, Transpose, LayerNorm, Transpose, layer scale, residual) in a
Session bit for bit as the plain kernels compute it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from plan_helpers import prepared

import hwbench
from hwbench.backends import backend_class, get_backend
from hwbench.backends.cpu import BlockedArray

pytestmark = pytest.mark.skipif(not backend_class("cpu").available()[0],
                                reason="needs the cpu backend (onednn wheel)")


def _blocked(be, x):
    """``x`` as a conv's blocked output (an identity 1x1 conv: the same values)."""
    c = x.shape[1]
    out = be.conv2d(be.asarray(x), be.asarray(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)))
    assert isinstance(out, BlockedArray)
    return out


@pytest.mark.parametrize("c", [32, 40], ids=["whole-blocks", "padded"])
def test_to_nhwc_from_blocked_and_plain_is_numpys_transpose(rng, c):
    be = get_backend("cpu", keep_blocked=True, threads=1)
    x = rng.standard_normal((2, c, 5, 7)).astype(np.float32)
    want = np.transpose(x, (0, 2, 3, 1))
    for source in (_blocked(be, x), x):
        got = be.transpose(source, (0, 2, 3, 1))
        assert type(got) is np.ndarray and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("keep_blocked", [True, False])
def test_to_nchw_stays_blocked_in_a_session_backend_only(rng, keep_blocked):
    be = get_backend("cpu", keep_blocked=keep_blocked, threads=1)
    x = rng.standard_normal((1, 6, 5, 40)).astype(np.float32)
    got = be.transpose(x, (0, 3, 1, 2))  # an activation (a frozen weight keeps its copy)
    assert isinstance(got, BlockedArray) == keep_blocked
    assert be.to_numpy(got).tobytes() == np.transpose(x, (0, 3, 1, 2)).tobytes()
    if keep_blocked:  # a constant layer scale and a residual then run blocked
        gamma = rng.standard_normal((40, 1, 1)).astype(np.float32)
        scaled = be.mul(got, be.asarray(gamma))
        assert isinstance(scaled, BlockedArray)
        assert be.to_numpy(scaled).tobytes() == (np.transpose(x, (0, 3, 1, 2)) * gamma).tobytes()


@pytest.mark.parametrize("shape, perm", [((1, 8, 5, 5), (0, 2, 3, 1)),  # under 16 channels
                                         ((1, 32, 1, 1), (0, 2, 3, 1)),  # one pixel
                                         ((1, 5, 5, 8), (0, 3, 1, 2)),
                                         ((1, 32, 5, 5), (0, 2, 1, 3))])  # not a channel perm
def test_other_transposes_keep_the_plain_way(rng, shape, perm):
    be = get_backend("cpu", keep_blocked=True, threads=1)
    x = rng.standard_normal(shape).astype(np.float32)
    got = be.transpose(x, perm)
    assert type(got) is np.ndarray and got.tobytes() == np.transpose(x, perm).tobytes()


def _convnext_block(path, c: int, hw: int) -> None:
    rng = np.random.default_rng(1)
    init = [helper.make_tensor(name, TensorProto.FLOAT, list(a.shape), a.ravel())
            for name, a in (("w", rng.standard_normal((c, 1, 7, 7)).astype(np.float32) / 7),
                            ("b", rng.standard_normal(c).astype(np.float32)),
                            ("s", rng.random(c).astype(np.float32) + 0.5),
                            ("t", rng.standard_normal(c).astype(np.float32)),
                            ("g", rng.standard_normal((c, 1, 1)).astype(np.float32)))]
    node = helper.make_node
    nodes = [node("Conv", ["x", "w", "b"], ["d"], group=c, pads=[3, 3, 3, 3]),
             node("Transpose", ["d"], ["n"], perm=[0, 2, 3, 1]),
             node("LayerNormalization", ["n", "s", "t"], ["l"], axis=-1, epsilon=1e-6),
             node("Transpose", ["l"], ["m"], perm=[0, 3, 1, 2]),
             node("Mul", ["g", "m"], ["k"]),
             node("Add", ["x", "k"], ["y"])]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "block", [value("x", TensorProto.FLOAT, [1, c, hw, hw])],
                              [value("y", TensorProto.FLOAT, [1, c, hw, hw])], init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_convnext_block_in_a_session_is_the_plain_kernels_bit_for_bit(tmp_path, rng):
    c, hw = 48, 9
    _convnext_block(str(tmp_path / "b.onnx"), c, hw)
    model = hwbench.load_model(str(tmp_path / "b.onnx"))
    sess = hwbench.Session(model, "cpu", threads=1)
    init = {t.name: onnx.numpy_helper.to_array(t)
            for t in onnx.load(str(tmp_path / "b.onnx")).graph.initializer}
    plain = get_backend("cpu", threads=1)  # every kernel plain NCHW in and out
    for _ in range(3):  # the first run traces, the next replay the plan
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        d = plain.conv2d(x, init["w"], init["b"], padding=3, groups=c)
        n = plain.transpose(d, (0, 2, 3, 1))
        l_ = plain.layer_norm(n, init["s"], init["t"], axis=-1, epsilon=1e-6)
        k = plain.mul(init["g"], plain.transpose(l_, (0, 3, 1, 2)))
        want = plain.to_numpy(plain.add(x, k))
        (got,) = sess.run({"x": x})
        assert np.asarray(got).tobytes() == want.tobytes()
    calls = prepared(sess)
    (to_nchw,) = [k for k in calls if tuple(getattr(k.problem, "perm", ())) == (0, 3, 1, 2)]
    (scale,) = [k for k in calls if getattr(k.problem, "op", "") == "mul"]
    assert isinstance(to_nchw(np.ones((1, hw, hw, c), np.float32)), BlockedArray)
    assert scale.impl[0].__qualname__.startswith("_blocked_constant")  # its gate bound once
