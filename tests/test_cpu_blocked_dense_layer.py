"""DenseNet's dense layer stays blocked on cpu, on bound prepared calls: the channel
Concat of blocked conv outputs (``prepared_kernels.blocked_concat``; convs writing into
its buffer: ``concat_in_place``), the BatchNorm's
per-channel Mul and Add by constants (``_blocked_constant``) and the Relu
(``BlockedOps._blocked_eltwise``, replayed by ``bound_primitive.blocked_call``): no
reorder to NCHW and back. Same
bits as the plain kernels; the channel padding stays zero."""

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


@pytest.mark.parametrize("c", [32, 40], ids=["whole-blocks", "padded"])
def test_relu_of_a_blocked_activation_stays_blocked(rng, c):
    be = get_backend("cpu", keep_blocked=True, threads=1)
    x = rng.standard_normal((2, c, 5, 6)).astype(np.float32)
    eye = be.asarray(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1))
    xb = be.conv2d(be.asarray(x), eye, bias=be.asarray(np.full(c, -0.25, np.float32)))
    got = be.relu(xb)
    assert isinstance(got, BlockedArray) and got.md == xb.md
    want = np.maximum(x + np.float32(-0.25), 0)
    assert be.to_numpy(got).tobytes() == want.tobytes()
    blocks = -(-c // 16)  # nChw16c: (N, C/16, H, W, 16), the last block's lanes >= C padding
    lanes = got.buffer.view(np.float32)[:2 * blocks * 5 * 6 * 16].reshape(2, blocks, 5, 6, 16)
    assert not lanes[:, -1, :, :, c - 16 * (blocks - 1):].any()
    plain = get_backend("cpu", threads=1).relu(be.to_numpy(xb))  # a direct call: plain
    assert type(plain) is np.ndarray and plain.tobytes() == want.tobytes()


def _dense_layer(path: str, c: int, hw: int) -> None:
    """Concat of two conv outputs → per-channel Mul → Add → Relu → 1×1 conv."""
    rng = np.random.default_rng(2)
    half = c // 2
    init = [helper.make_tensor(name, TensorProto.FLOAT, list(a.shape), a.ravel())
            for name, a in (("w0", rng.standard_normal((half, 3, 3, 3)).astype(np.float32)),
                            ("w1", rng.standard_normal((half, 3, 1, 1)).astype(np.float32)),
                            ("s", rng.random((c, 1, 1)).astype(np.float32) + 0.5),
                            ("t", rng.standard_normal((c, 1, 1)).astype(np.float32)),
                            ("w2", rng.standard_normal((16, c, 1, 1)).astype(np.float32)))]
    node = helper.make_node
    nodes = [node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             node("Conv", ["x", "w1"], ["b"]),
             node("Concat", ["a", "b"], ["cat"], axis=1),
             node("Mul", ["cat", "s"], ["m"]), node("Add", ["m", "t"], ["n"]),
             node("Relu", ["n"], ["r"]), node("Conv", ["r", "w2"], ["y"])]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "dense", [value("x", TensorProto.FLOAT, [1, 3, hw, hw])],
                              [value("y", TensorProto.FLOAT, [1, 16, hw, hw])], init)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("c", [64, 48], ids=["whole-blocks", "padded"])
def test_a_dense_layer_in_a_session_is_the_plain_kernels_bit_for_bit(tmp_path, rng, c):
    hw = 7
    path = str(tmp_path / "d.onnx")
    _dense_layer(path, c, hw)
    init = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    sess = hwbench.Session(hwbench.load_model(path), "cpu", threads=1)
    plain = get_backend("cpu", threads=1)
    for _ in range(3):  # traced, then replayed
        x = rng.standard_normal((1, 3, hw, hw)).astype(np.float32)
        cat = plain.concat([plain.conv2d(x, init["w0"], padding=1), plain.conv2d(x, init["w1"])],
                           axis=1)
        r = plain.relu(plain.add(plain.mul(cat, init["s"]), init["t"]))
        want = plain.to_numpy(plain.conv2d(r, init["w2"]))
        (got,) = sess.run({"x": x})
        assert np.asarray(got).tobytes() == want.tobytes()
    calls = {k.kernel.__name__: k.impl[0].__qualname__.split(".")[0] for k in prepared(sess)}
    # batch 1, parts of whole 16-channel blocks: the convs write into the concat's
    # buffer (``concat_in_place``)
    concat = "in_place" if c // 2 % 16 == 0 else "_concat_call"
    assert calls == {"_conv2d": "_conv", "_concat": concat, "_relu": "blocked_call",
                     "_mul": "_blocked_constant", "_add": "_blocked_constant"}
