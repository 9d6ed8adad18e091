"""Mul by per-channel factors -> [Add] -> [Relu] -> QuantizeLinear as one
``AffineQuantizeLinear`` node (``graph/affine_quantize_fusion.py``,
``backends/cpu/int8_affine_quantize.py``) in the ``cpu:float32-requant`` mode: DenseNet's
BatchNormalization and Relu before a QuantizeLinear, a squeeze-and-excitation gate's Mul;
the unfused ops' codes or 1 LSB away, and the unfused ops bit for bit on every other
backend. Also the channel Concat of channels-last floats, which stays NHWC."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from qconv_draws import held

from hwbench.backends import get_backend
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.graph.affine_quantize_fusion import fuse_affine_quantize
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import optimize
from hwbench.kernels.quantization import quantize
from hwbench.models.session import Session, session_backend
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")


@pytest.fixture(scope="module")
def fast():
    return session_backend("cpu:float32-requant", threads=1)  # channels-last, as a Session


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 40), hw=st.integers(1, 9),
       gate=st.booleans(), shifted=st.booleans(), relu=st.booleans(),
       y_dtype=st.sampled_from([np.uint8, np.int8]), seed=st.integers(0, 2**32 - 1))
def test_the_fused_affine_quantize_is_the_unfused_ops_codes(fast, n, c, hw, gate, shifted,
                                                            relu, y_dtype, seed):
    """Random shapes, constant or per-image (gate) factors, a shift or none, a Relu or
    none, uint8/int8 codes with random zero points: NumPy's float32 Mul, Add, Relu, then
    QuantizeLinear, within 1 LSB (rarely off)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c, hw, hw)) * 3).astype(np.float32)
    scale = rng.uniform(-2, 2, (n, c, 1, 1) if gate else (1, c, 1, 1)).astype(np.float32)
    shift = rng.uniform(-2, 2, (1, c, 1, 1)).astype(np.float32) if shifted else None
    info = np.iinfo(y_dtype)
    sy = np.float32(rng.uniform(0.01, 0.1))
    zy = y_dtype(rng.integers(info.min, info.max + 1))
    args = [fast.frozen.freeze(v) if v is not None else None for v in (scale, shift)]
    if gate:
        args[0] = held(scale)  # computed at run time: channels-last, as the conv wrote it
    got = fast.affine_quantize(held(x), args[0], args[1], sy, zy, relu)
    assert got is not None, "the fused primitive declined"
    f = x * scale
    if shifted:
        f = f + shift
    if relu:
        f = np.maximum(f, np.float32(0))
    want = quantize(f.astype(np.float32), sy, zy, np.dtype(y_dtype))
    got = fast.to_numpy(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1 and np.count_nonzero(diff) <= max(1, got.size // 200)


SHAPE = [2, 6, 5, 5]


def _model(tmp_path, kind: str) -> str:
    """x quantized -> two QLinearConvs dequantized -> Concat -> (``bn``: Mul, Add, Relu;
    ``gate``: Mul by an SE gate made from the Concat's pooled values) -> QuantizeLinear."""
    rng = np.random.default_rng(4)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0), "sa": np.float32(0.05),
              "za": np.uint8(128), "zw": np.int8(0),
              "w1": rng.integers(-127, 128, (3, 6, 3, 3)).astype(np.int8),
              "w2": rng.integers(-127, 128, (3, 6, 3, 3)).astype(np.int8),
              "sw": np.asarray(rng.uniform(0.001, 0.01, 3), np.float32),
              "scale": rng.uniform(0.5, 2, (1, 6, 1, 1)).astype(np.float32),
              "shift": rng.uniform(-1, 1, (1, 6, 1, 1)).astype(np.float32),
              "sy": np.float32(6 / 255), "zy": np.uint8(0 if kind == "bn" else 60)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"])]
    for i in (1, 2):
        nodes += [helper.make_node("QLinearConv", ["q", "sx", "zx", f"w{i}", "sw", "zw",
                                                   "sa", "za"], [f"a{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("DequantizeLinear", [f"a{i}", "sa", "za"], [f"f{i}"])]
    nodes.append(helper.make_node("Concat", ["f1", "f2"], ["c"], axis=1))
    if kind == "bn":
        nodes += [helper.make_node("Mul", ["c", "scale"], ["m"]),
                  helper.make_node("Add", ["shift", "m"], ["b"]),
                  helper.make_node("Relu", ["b"], ["r"])]
    else:  # the gate as an SE block makes it: pooled, quantized, a 1x1 conv, a sigmoid
        params.update({"w3": rng.integers(-127, 128, (6, 6, 1, 1)).astype(np.int8),
                       "sw3": np.asarray(rng.uniform(0.001, 0.01, 6), np.float32)})
        nodes += [helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                  helper.make_node("QuantizeLinear", ["p", "sa", "za"], ["pq"]),
                  helper.make_node("QLinearConv", ["pq", "sa", "za", "w3", "sw3", "zw", "sa",
                                                   "za"], ["g8"]),
                  helper.make_node("DequantizeLinear", ["g8", "sa", "za"], ["gf"]),
                  helper.make_node("Sigmoid", ["gf"], ["g"]),
                  helper.make_node("Mul", ["g", "c"], ["r"])]
    nodes.append(helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"]))
    graph = helper.make_graph(
        nodes, f"affine_{kind}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, SHAPE)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / f"affine_{kind}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _x(seed: int) -> dict:
    return {"x": (np.random.default_rng(seed).standard_normal(SHAPE) * 2).astype(np.float32)}


@pytest.mark.parametrize("kind", ["bn", "gate"])
def test_sessions_fuse_the_chain_and_keep_the_unfused_ops_codes(tmp_path, kind):
    path = _model(tmp_path, kind)
    fused = fuse_affine_quantize(optimize(load_onnx(path)))
    ops = [n.op_type for n in fused.nodes]
    assert ops.count("AffineQuantizeLinear") == 1
    node = next(n for n in fused.nodes if n.op_type == "AffineQuantizeLinear")
    assert not {"Mul", "Add", "Relu"} & set(ops) and node.outputs == ["y"]
    assert node.attrs["relu"] == int(kind == "bn") and bool(node.inputs[2]) == (kind == "bn")
    sess = Session(path, "cpu:float32-requant")
    assert "AffineQuantizeLinear" in {n.op_type for n in sess.graph.nodes}
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    for seed in range(3):  # traced, then the bound host step
        got, want = sess.run(_x(seed))[0], unfused.run(_x(seed))[0]
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert diff.max() <= 1 and np.count_nonzero(diff) <= got.size // 50
        assert np.count_nonzero(got != sess.run(_x(seed + 1))[0])  # not stale outputs
    assert sum(1 for k, v in sess.backend._primitives.items()
               if k[0] == "affine-quantize" and v is not None) == 1
    ex = sess.executor  # the plan replays it as a bound host step (the gate read each run)
    hosts = [ex._steps[int(k[1:])].node.op_type for k in ex.plan._fn.__globals__
             if k[0] == "H" and k[1:].isdigit()]
    assert "AffineQuantizeLinear" in hosts
    for backend in ("numpy", "cpu"):  # elsewhere: the ops, bit for bit
        want = Executor(optimize(load_onnx(path)), get_backend(backend)).run(_x(1))[0]
        got = Executor(fused, get_backend(backend)).run(_x(1))[0]
        assert got.tobytes() == want.tobytes()


def test_a_value_read_twice_is_not_fused(tmp_path):
    """The Mul's product is a graph output too: the chain stays ops."""
    path = _model(tmp_path, "bn")
    model = onnx.load(path)
    model.graph.output.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, SHAPE))
    onnx.save(model, path)
    fused = fuse_affine_quantize(optimize(load_onnx(path)))
    assert "AffineQuantizeLinear" not in {n.op_type for n in fused.nodes}


def test_a_concat_of_channels_last_floats_stays_channels_last(fast):
    """The parts' NHWC values concatenated on channels, NHWC kept (no NCHW round trip)."""
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((2, c, 4, 3)).astype(np.float32) for c in (3, 5, 1)]
    got = fast.concat([held(p) for p in parts], axis=1)
    assert type(got) is ChannelsLastArray
    np.testing.assert_array_equal(fast.to_numpy(got), np.concatenate(parts, axis=1))
    plain = fast.concat([held(parts[0]), parts[1]], axis=1)  # mixed: the plain concat
    np.testing.assert_array_equal(fast.to_numpy(plain), np.concatenate(parts[:2], axis=1))


@pytest.mark.parametrize("kind", ["bn", "gate"])
def test_the_exact_mode_keeps_the_ops_and_numpys_bits(tmp_path, kind):
    """The exact mode runs no float32-requant fusion: the ops, and (its float concat now
    channels-last) the same codes as ``numpy``, bit for bit."""
    path = _model(tmp_path, kind)
    sess = Session(path, "cpu")
    assert "AffineQuantizeLinear" not in {n.op_type for n in sess.graph.nodes}
    want = Executor(optimize(load_onnx(path)), get_backend("numpy")).run(_x(0))[0]
    for _ in range(2):  # traced, then the plan
        assert sess.run(_x(0))[0].tobytes() == want.tobytes()
