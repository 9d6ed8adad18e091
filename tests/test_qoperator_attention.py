"""What transformer exports quantized by onnxruntime need: com.microsoft QLinearSoftmax
against onnxruntime on every backend, node by node; attention's QDQ groups (Softmax,
MatMul of two activations, Reshape/Transpose between DequantizeLinear and QuantizeLinear)
fused as onnxruntime's QOperator file writes them; a one-element scale read as per tensor
(ConvNeXt's LayerNormalization bias)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (the reference)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from hwbench.backends import get_backend  # noqa: E402
from hwbench.errors import ArgumentError, UnsupportedError  # noqa: E402
from hwbench.graph.executor import Executor  # noqa: E402
from hwbench.graph.ir import Graph, Node, ValueInfo  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.passes import optimize  # noqa: E402


def _softmax_model(shape, axis, opset, x_scale, x_zero, y_scale, y_zero):
    inits = [numpy_helper.from_array(np.asarray(v, dt), n) for v, dt, n in (
        (x_scale, np.float32, "xs"), (x_zero, np.uint8, "xz"), (y_scale, np.float32, "ys"),
        (y_zero, np.uint8, "yz"))]
    attrs = {"opset": opset} if axis is None else {"opset": opset, "axis": axis}
    node = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"],
                            domain="com.microsoft", **attrs)
    graph = helper.make_graph([node], "qsoftmax",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, shape)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)])


CASES = [  # shape, axis (None: the opset's default), opset, x_scale, x_zero, y_scale, y_zero
    ((2, 3, 17, 17), -1, 13, 0.05, 128, 1 / 256, 0),   # attention scores (ViT)
    ((4, 10), None, 13, 0.1, 100, 1 / 256, 0),
    ((2, 5, 7), 1, 13, 0.02, 30, 1 / 256, 0),          # not the last axis: transposed
    ((2, 5, 7), 1, 11, 0.03, 0, 1 / 256, 0),           # opset 11: flattened from axis 1
    ((2, 5, 7), 0, 11, 0.03, 0, 1 / 256, 0),           # ... from axis 0
    ((3, 33), -1, 13, 0.2, 7, 1 / 200.5, 3),           # Y_scale whose inverse is no integer
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_qlinear_softmax_matches_onnxruntime(backend, tmp_path, case):
    shape, axis, opset, *params = CASES[case]
    model = _softmax_model(shape, axis, opset, *params)
    path = tmp_path / "qsoftmax.onnx"
    onnx.save(model, path)
    graph = optimize(load_onnx(str(path)))
    assert graph.op_counts() == {"com.microsoft:QLinearSoftmax": 1}
    executor = Executor(graph, backend)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(case)
    for _ in range(3):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        ref = session.run(None, {"x": x})[0]
        got = executor.run({"x": x})[0]
        assert got.dtype == np.uint8 and got.shape == ref.shape
        # onnxruntime sums float32 exps in its own order: a product within an ulp of a
        # rounding tie may land 1 code the other way
        diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))
        assert diff.max() <= 1 and np.mean(diff) <= 0.01, (diff.max(), np.mean(diff))


def test_qlinear_softmax_rejects_bad_attributes():
    be = get_backend("numpy")
    for axis, opset, y_scale, why in ((3, 13, 1 / 256, ArgumentError),
                                      (-1, 13, 2.0, ArgumentError),
                                      (None, 11, 1 / 256, UnsupportedError)):
        graph = Graph("g", [ValueInfo("x", (2, 4, 5), np.dtype(np.uint8))],
                      [ValueInfo("y", (2, 4, 5), np.dtype(np.uint8))], {}, [], 17)
        xs = graph.add_initializer("xs", np.float32(0.1))
        xz = graph.add_initializer("xz", np.uint8(0))
        ys = graph.add_initializer("ys", np.float32(y_scale))
        yz = graph.add_initializer("yz", np.uint8(0))
        attrs = {"opset": opset} if axis is None else {"axis": axis, "opset": opset}
        graph.nodes = [Node("QLinearSoftmax", ["x", xs, xz, ys, yz], ["y"], attrs, "s",
                            "com.microsoft")]
        with pytest.raises(why, match="axis" if axis != -1 else "Y_scale"):
            Executor(graph, be).run({"x": np.zeros((2, 4, 5), np.uint8)})


# -- attention's QDQ groups --------------------------------------------------------------
SHAPE = (2, 6, 8)  # batch, tokens, width


def _attention():
    """Single-head self-attention on (2, 6, 8): q/k/v projections, q·kᵀ, Softmax, ·v, with
    the Reshape/Transpose an exporter writes between them."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name, shape):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.4)
                                             .astype(np.float32), name))
        return name

    inits.append(numpy_helper.from_array(np.asarray([2, 6, 1, 8], np.int64), "heads"))
    inits.append(numpy_helper.from_array(np.asarray([2, 6, 8], np.int64), "back"))
    for p in "qkv":
        nodes.append(helper.make_node("MatMul", ["x", weight(f"w{p}", (8, 8))], [f"{p}0"]))
        nodes.append(helper.make_node("Reshape", [f"{p}0", "heads"], [f"{p}1"]))
        nodes.append(helper.make_node("Transpose", [f"{p}1"], [f"{p}"],
                                      perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3]))
    nodes.append(helper.make_node("MatMul", ["q", "k"], ["scores"]))
    nodes.append(helper.make_node("Softmax", ["scores"], ["attn"], axis=-1))
    nodes.append(helper.make_node("MatMul", ["attn", "v"], ["ctx"]))
    nodes.append(helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]))
    nodes.append(helper.make_node("Reshape", ["ctx_t", "back"], ["r"]))
    nodes.append(helper.make_node("MatMul", ["r", weight("wo", (8, 8))], ["y"]))
    graph = helper.make_graph(
        nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class _Reader(CalibrationDataReader):
    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.feeds = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)}
                           for _ in range(4)])

    def get_next(self):
        return next(self.feeds, None)


@pytest.fixture(scope="module")
def attention(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attention")
    onnx.save(_attention(), folder / "float.onnx")
    paths = {}
    for name, fmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
        paths[name] = str(folder / f"{name}.onnx")
        quantize_static(str(folder / "float.onnx"), paths[name], _Reader(), quant_format=fmt,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    return paths


def test_attention_qdq_fuses_like_qoperator(attention):
    counts = {k: optimize(load_onnx(p)).op_counts() for k, p in attention.items()}
    qop = {op: n for op, n in counts["qop"].items() if "QuantizeLinear" not in op}
    assert qop.get("QLinearMatMul") == 6 and qop.get("com.microsoft:QLinearSoftmax") == 1, qop
    for op, n in qop.items():
        assert counts["qdq"].get(op, 0) == n, (op, counts)
    assert not {"MatMul", "Softmax", "Reshape", "Transpose"} & {
        op for op, n in counts["qdq"].items() if n > qop.get(op, 0)}, counts
    # left: the input's QuantizeLinear and the output's DequantizeLinear
    assert counts["qdq"].get("QuantizeLinear") == counts["qdq"].get("DequantizeLinear") == 1


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_attention_matches_onnxruntime(backend, attention, fmt):
    graph = optimize(load_onnx(attention[fmt]))
    executor = Executor(graph, backend)
    session = ort.InferenceSession(attention[fmt], providers=["CPUExecutionProvider"])
    y_step = max(float(v) for k, v in graph.initializers.items()
                 if k.startswith("y_scale") or k == "y_scale")
    for seed in range(3):
        x = np.random.default_rng(50 + seed).standard_normal(SHAPE).astype(np.float32)
        ref, got = session.run(None, {"x": x})[0], executor.run({"x": x})[0]
        # integer products exact; QLinearSoftmax may round a tie the other way (1 code
        # of attn, which moves the output by a few of its steps)
        diff = np.abs(got - ref)
        assert diff.max() <= 4 * y_step and np.mean(diff > 1e-6) <= 0.1, (diff.max(), y_step)


# -- a one-element scale is per tensor ----------------------------------------------------
def test_one_element_scale_is_per_tensor(backend):
    """onnxruntime quantizes a LayerNormalization's bias as DequantizeLinear(int32 codes,
    scale of shape (1,)) with the default axis 1 on a 1-D tensor (ConvNeXt): ONNX's
    reference reads a one-element scale as per tensor, whatever the axis."""
    codes = np.arange(-5, 6, dtype=np.int32)
    got = backend.to_numpy(backend.dequantize_linear(
        backend.asarray(codes), np.asarray([0.25], np.float32), np.asarray([0], np.int32),
        axis=1))
    np.testing.assert_array_equal(got, codes.astype(np.float32) * np.float32(0.25))
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    got = backend.to_numpy(backend.quantize_linear(
        backend.asarray(x), np.asarray([0.5], np.float32), np.asarray([10], np.uint8),
        axis=1))
    np.testing.assert_array_equal(got, (np.rint(x / 0.5) + 10).astype(np.uint8))
    with pytest.raises(ArgumentError, match="axis"):  # a real per-axis scale still checks
        backend.dequantize_linear(backend.asarray(codes), np.ones(2, np.float32),
                                  np.zeros(2, np.int32), axis=1)
