"""A float activation between a QLinearConv's DequantizeLinear and the QuantizeLinear after
it (MobileNet v3's HardSwish and HardSigmoid, EfficientNet's SiLU, a Sigmoid), or ending a
float output, as one more post-op of the fused convolution (``QLinearConvRequant`` and
``QLinearConvDequantAdd`` with ``activation``: ``graph/qconv_requant_fusion.py``,
``backends/cpu/int8_conv_requant.py``) in the ``cpu:float32-requant`` mode: the unfused
ops' codes or 1 LSB away, and the unfused ops bit for bit on every other backend."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qconv_draws import draw_qconv, held

from hwbench.backends import get_backend
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import optimize
from hwbench.graph.qconv_requant_fusion import (
    POST_OP_ACTIVATIONS,
    fuse_qconv_dequant_add,
    fuse_qconv_requant,
)
from hwbench.kernels import reference
from hwbench.kernels.quantization import dequantize, quantize
from hwbench.models.session import Session, session_backend
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")


@pytest.fixture(scope="module")
def fast():
    return session_backend("cpu:float32-requant", threads=1)  # channels-last, as a Session


def _conv_args(g: dict) -> tuple[list, dict]:
    """QLinearConv's nine arguments for the drawn geometry, with an ``a_scale`` that puts
    typical outputs ~40 codes from the zero point (the activations' interesting range)."""
    rng, (k, cg, r, s) = g["rng"], g["w_shape"]
    info = np.iinfo(g["x_dtype"])
    x = rng.integers(info.min, info.max + 1, g["x_shape"]).astype(g["x_dtype"])
    zx = g["x_dtype"](rng.integers(info.min, info.max + 1))
    w = rng.integers(-127, 128, g["w_shape"]).astype(np.int8)
    sx = np.float32(rng.uniform(0.005, 0.05))
    sw = np.asarray(rng.uniform(0.001, 0.05, k), np.float32)
    sa = np.float32(np.sqrt(cg * r * s) * 80 * 70 * sx * sw.mean() / 40)
    a_dtype = g["y_dtype"]
    a_info = np.iinfo(a_dtype)
    za = a_dtype(rng.integers(a_info.min // 2 + 64, a_info.max // 2 + 64))
    bias = rng.integers(-20_000, 20_000, k).astype(np.int32)
    conv = {key: g[key] for key in ("stride", "padding", "dilation", "groups")}
    return [x, sx, zx, w, sw, np.int8(0), sa, za, bias], conv


def _mode_conv_then_float_ops(be, args, conv, activation, sy, zy,
                              ) -> tuple[np.ndarray, np.ndarray]:
    """The mode's own conv codes, then NumPy's DequantizeLinear, the activation (float64,
    rounded to float32) and QuantizeLinear: what the unfused ops compute; and the
    activation's float64 value in output steps (``f / sy + zy``, before rounding)."""
    x, sx, zx, w, sw, zw, sa, za, bias = args
    a = be.to_numpy(be.qconv2d(held(x), sx, zx, be.asarray(w), sw, zw, sa, za,
                               be.asarray(bias), **conv))
    f = reference.activation64(dequantize(a, sa, za), activation)
    return quantize(f.astype(np.float32), sy, zy, zy.dtype), f / float(sy) + float(zy)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fused_conv_activation_requant_is_the_unfused_ops_codes(fast, data):
    """Random convolutions (strides, padding, dilation, groups, depthwise, code dtypes and
    zero points), each post-op activation, and a QuantizeLinear of another scale."""
    g = draw_qconv(data, max_c_per_group=5, max_hw=9)
    args, conv = _conv_args(g)
    activation = data.draw(st.sampled_from(POST_OP_ACTIVATIONS), label="activation")
    sa = float(args[6])
    # the activations' outputs span less than the conv's: sigmoid's (0, 1) gets a fine scale
    span = 1.0 if activation in ("sigmoid", "hardsigmoid", "tanh") else 40 * sa
    sy = np.float32(span / 60 * data.draw(st.floats(0.3, 3.0), label="y_scale spread"))
    info = np.iinfo(g["y_dtype"])
    zy = g["y_dtype"](g["rng"].integers(info.min // 2 + 64, info.max // 2 + 64))
    x, *rest = args
    got = fast.qconv_requant(held(x), *rest[:2], fast.asarray(rest[2]), *rest[3:7],
                             fast.asarray(rest[7]), sy, zy, activation=activation, **conv)
    assert got is not None, "the fused convolution declined"
    want, steps = _mode_conv_then_float_ops(fast, args, conv, activation, sy, zy)
    got = fast.to_numpy(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1  # the mode's contract
    # and a code differs only where the exact value sits at a rounding boundary (within
    # the post-op's float32 error): one such conv code can repeat at many positions
    ties = np.abs(np.abs(steps - np.floor(steps)) - 0.5)
    assert np.all(ties[diff != 0] < 1e-3), steps[diff != 0]


# -- the graph pass and sessions --------------------------------------------------------
SHAPE = [1, 8, 6, 6]


def _model(tmp_path, activation: str, quantized: bool) -> str:
    """x quantized -> QLinearConv (3x3) -> DequantizeLinear -> the activation as ONNX
    writes it (SiLU: Sigmoid and Mul) [-> QuantizeLinear]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0),
              "w": rng.integers(-127, 128, (8, 8, 3, 3)).astype(np.int8),
              "sw": np.asarray(rng.uniform(0.001, 0.01, 8), np.float32), "zw": np.int8(0),
              "sa": np.float32(0.05), "za": np.uint8(128),
              "bias": rng.integers(-2000, 2000, 8).astype(np.int32),
              "sy": np.float32(4 / 255), "zy": np.uint8(40)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sa", "za",
                                              "bias"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["f"])]
    if activation == "silu":
        nodes += [helper.make_node("Sigmoid", ["f"], ["s"]),
                  helper.make_node("Mul", ["s", "f"], ["g"])]
    elif activation == "hardsigmoid":
        nodes.append(helper.make_node("HardSigmoid", ["f"], ["g"], alpha=1 / 6, beta=0.5))
    else:
        kind = {"sigmoid": "Sigmoid", "hardswish": "HardSwish", "tanh": "Tanh"}[activation]
        nodes.append(helper.make_node(kind, ["f"], ["g"]))
    if quantized:
        nodes.append(helper.make_node("QuantizeLinear", ["g", "sy", "zy"], ["y"]))
    out = helper.make_tensor_value_info("y" if quantized else "g",
                                        TensorProto.UINT8 if quantized else TensorProto.FLOAT,
                                        SHAPE)
    graph = helper.make_graph(
        nodes, "conv_activation", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                 SHAPE)],
        [out], [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / f"conv_{activation}_{quantized}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _x(seed: int) -> dict:
    return {"x": (np.random.default_rng(seed).standard_normal(SHAPE) * 2).astype(np.float32)}


def _built(sess: Session, kind: str) -> int:
    """How many fused primitives of ``kind`` the session's backend built (not None)."""
    return sum(1 for k, v in sess.backend._primitives.items() if k[0] == kind and v is not None)


@pytest.mark.parametrize(("activation", "quantized"), [
    (a, q) for a in POST_OP_ACTIVATIONS for q in (True, False)
    if (a, q) != ("sigmoid", True)])  # (that one optimize makes a QLinearSigmoid table)
def test_sessions_fuse_the_activation_and_keep_the_unfused_ops_values(tmp_path, activation,
                                                                      quantized):
    path = _model(tmp_path, activation, quantized)
    fuse = fuse_qconv_requant if quantized else fuse_qconv_dequant_add
    kind = "QLinearConvRequant" if quantized else "QLinearConvDequantAdd"
    fused_graph = fuse(optimize(load_onnx(path)))
    assert [n.op_type for n in fused_graph.nodes] == ["QuantizeLinear", kind]
    assert fused_graph.nodes[1].attrs["activation"] == activation
    sess = Session(path, "cpu:float32-requant")
    assert [n.op_type for n in sess.graph.nodes] == ["QuantizeLinear", kind]
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    for seed in range(3):  # traced, then the bound host step
        got, want = sess.run(_x(seed))[0], unfused.run(_x(seed))[0]
        assert got.dtype == want.dtype
        if quantized:  # oneDNN's float32 activation: a value at a tie may round apart
            diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
            assert diff.max() <= 1 and np.count_nonzero(diff) <= got.size // 50
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert _built(sess, "qconv-requant" if quantized else "qconv-dequant-add") == 1
    for backend in ("numpy", "cpu"):  # elsewhere: the ops, bit for bit
        want = Executor(optimize(load_onnx(path)), get_backend(backend)).run(_x(1))[0]
        got = Executor(fused_graph, get_backend(backend)).run(_x(1))[0]
        assert got.tobytes() == want.tobytes()


def _with_outputs(path: str, *names: str) -> str:
    model = onnx.load(path)
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, SHAPE))
    onnx.save(model, path)
    return path


def test_an_activation_read_twice_ends_a_float_output(tmp_path):
    """A HardSwish whose output a second reader takes (here the graph's output) is the
    end of a float32 fused conv; its QuantizeLinear stays a node, and the values are the
    unfused ops'."""
    path = _with_outputs(_model(tmp_path, "hardswish", quantized=True), "g")
    graph = fuse_qconv_dequant_add(fuse_qconv_requant(optimize(load_onnx(path))))
    assert [n.op_type for n in graph.nodes] == ["QuantizeLinear", "QLinearConvDequantAdd",
                                                "QuantizeLinear"]
    assert graph.nodes[1].attrs["activation"] == "hardswish"
    sess = Session(path, "cpu:float32-requant")
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    for seed in range(2):
        (y, g), (want_y, want_g) = sess.run(_x(seed)), unfused.run(_x(seed))
        np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-6)
        assert np.abs(y.astype(np.int64) - want_y.astype(np.int64)).max() <= 1


def test_a_dequantized_value_read_elsewhere_keeps_its_activation_apart(tmp_path):
    """The conv's dequantized values are a graph output too: the activation is no post-op
    (the fused conv would not write them)."""
    path = _with_outputs(_model(tmp_path, "hardswish", quantized=True), "f")
    graph = fuse_qconv_dequant_add(fuse_qconv_requant(optimize(load_onnx(path))))
    assert [n.op_type for n in graph.nodes] == ["QuantizeLinear", "QLinearConvDequantAdd",
                                                "HardSwish", "QuantizeLinear"]
    assert "activation" not in graph.nodes[1].attrs


def test_a_residual_from_a_channel_concat_is_fused(tmp_path):
    """A float residual made by a Relu of a channel Concat of channels-last values (the
    start of a ShuffleNet v1 stage: a conv's dequantized values beside the pooled ones of
    a second) is held channels-last, so the conv, its DequantizeLinear and the Add are
    one convolution; the values are the unfused ops'."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(6)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0), "sa": np.float32(0.05),
              "za": np.uint8(128), "zw": np.int8(0),
              "w1": rng.integers(-127, 128, (4, 8, 3, 3)).astype(np.int8),
              "w2": rng.integers(-127, 128, (8, 8, 3, 3)).astype(np.int8),
              "sw1": np.asarray(rng.uniform(0.001, 0.01, 4), np.float32),
              "sw2": np.asarray(rng.uniform(0.001, 0.01, 8), np.float32)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w0", "sw1", "zw", "sa",
                                              "za"], ["a0"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a0", "sa", "za"], ["d"]),
             helper.make_node("AveragePool", ["d"], ["p4"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], count_include_pad=1),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w1", "sw1", "zw", "sa",
                                              "za"], ["a1"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a1", "sa", "za"], ["f1"]),
             helper.make_node("Concat", ["f1", "p4"], ["c"], axis=1),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sx", "zx"], ["rq"]),
             helper.make_node("QLinearConv", ["rq", "sx", "zx", "w2", "sw2", "zw", "sa",
                                              "za"], ["a2"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a2", "sa", "za"], ["f2"]),
             helper.make_node("Add", ["f2", "r"], ["y"])]
    params["w0"] = rng.integers(-127, 128, (4, 8, 3, 3)).astype(np.int8)
    graph = helper.make_graph(
        nodes, "concat_residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = str(tmp_path / "concat_residual.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    sess = Session(path, "cpu:float32-requant")
    fused = [n for n in sess.graph.nodes if n.op_type == "QLinearConvDequantAdd"]
    assert [bool(n.inputs[9]) for n in fused] == [False, False, True]  # the last: the Add
    assert "Add" not in {n.op_type for n in sess.graph.nodes}
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    feeds = {"x": (np.random.default_rng(0).standard_normal((1, 8, 6, 6)) * 2)
             .astype(np.float32)}
    for _ in range(3):  # traced, then the bound host step
        np.testing.assert_allclose(sess.run(feeds)[0], unfused.run(feeds)[0], rtol=1e-6,
                                   atol=1e-6)
    assert sum(1 for k, v in sess.backend._primitives.items()
               if k[0] == "qconv-dequant-add" and k[8] and v is not None) == 1  # residual
