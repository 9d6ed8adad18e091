"""Models quantized by onnxruntime's ``quantize_static`` (QDQ and QOperator formats) run on
every backend and agree with onnxruntime; the QDQ fusion turns every group into its
integer op (counted, so a missed group fails)."""

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

from hwbench.graph.executor import Executor  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.passes import optimize  # noqa: E402

SHAPE = (1, 4, 6, 6)


def _w(inits, rng, name, shape, scale=0.3):
    inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale)
                                         .astype(np.float32), name))
    return name


def _model(kind: str, seed: int = 0, alias: bool = True):
    """A small float model exercising one op family; input 'x' (1, 4, 6, 6)."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(x, co, y, relu=False, bias_name=None):
        bias = bias_name or _w(inits, rng, f"{y}_b", (co,))
        nodes.append(helper.make_node("Conv", [x, _w(inits, rng, f"{y}_w", (co, 4, 3, 3)),
                                               bias], [y + ("_c" if relu else "")],
                                      pads=[1, 1, 1, 1]))
        if relu:
            nodes.append(helper.make_node("Relu", [y + "_c"], [y]))
        return y

    out_shape = [1, 10]
    if kind == "classifier":
        # the bias initializer shared by two convs (one DequantizeLinear, two readers),
        # one read through an Identity, as torch.onnx.export writes a deduplicated one
        # (QDQ only: onnxruntime's QOperator quantizer fails on a bias it cannot see)
        inits.append(numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * .1,
                                             "shared_b"))
        nodes.append(helper.make_node("Identity", ["shared_b"], ["shared_alias"]))
        a = conv("x", 4, "a", relu=True, bias_name="shared_b")
        b = conv(a, 4, "b", bias_name="shared_alias" if alias else "shared_b")
        nodes.append(helper.make_node("Add", [a, b], ["res"]))
        nodes.append(helper.make_node("MaxPool", ["res"], ["mp"], kernel_shape=[2, 2],
                                      strides=[2, 2]))
        nodes.append(helper.make_node("LeakyRelu", ["mp"], ["lr"], alpha=0.1))
        c = conv("x", 4, "c")
        nodes.append(helper.make_node("Sigmoid", [c], ["sg"]))
        nodes.append(helper.make_node("AveragePool", ["sg"], ["ap"], kernel_shape=[2, 2],
                                      strides=[2, 2]))
        nodes.append(helper.make_node("Mul", ["lr", "ap"], ["m"]))
        nodes.append(helper.make_node("Concat", ["m", "ap"], ["cat"], axis=1))
        nodes.append(helper.make_node("GlobalAveragePool", ["cat"], ["gap"]))
        nodes.append(helper.make_node("Flatten", ["gap"], ["fl"]))
        nodes.append(helper.make_node("Gemm", ["fl", _w(inits, rng, "fc_w", (10, 8)),
                                               _w(inits, rng, "fc_b", (10,))], ["y"],
                                      transB=1))
    elif kind == "matmul":
        nodes.append(helper.make_node("Reshape", ["x", _shape(inits, [1, 24, 6])], ["r"]))
        nodes.append(helper.make_node("MatMul", ["r", _w(inits, rng, "mm_w", (6, 5))],
                                      ["mm"]))
        nodes.append(helper.make_node("Relu", ["mm"], ["y"]))
        out_shape = [1, 24, 5]
    graph = helper.make_graph(
        nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _shape(inits, values):
    inits.append(numpy_helper.from_array(np.asarray(values, np.int64), "shape"))
    return "shape"


class _Reader(CalibrationDataReader):
    def __init__(self, count: int = 4) -> None:
        rng = np.random.default_rng(7)
        self.feeds = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)}
                           for _ in range(count)])

    def get_next(self):
        return next(self.feeds, None)


@pytest.fixture(scope="module", params=["classifier", "matmul"])
def quantized(request, tmp_path_factory):
    """{format: path} of one model quantized by onnxruntime, both formats."""
    folder = tmp_path_factory.mktemp(request.param)
    paths = {}
    for name, fmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
        src = folder / f"float_{name}.onnx"
        onnx.save(_model(request.param, alias=name == "qdq"), src)
        paths[name] = folder / f"{name}.onnx"
        quantize_static(str(src), str(paths[name]), _Reader(), quant_format=fmt,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    return request.param, paths


def _ort(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_matches_onnxruntime(backend, quantized, fmt):
    kind, paths = quantized
    graph = optimize(load_onnx(str(paths[fmt])))
    executor = Executor(graph, backend)
    for seed in range(3):
        x = np.random.default_rng(100 + seed).standard_normal(SHAPE).astype(np.float32)
        ref, out = _ort(paths[fmt], x), executor.run({"x": x})[0]
        assert out.shape == ref.shape and out.dtype == ref.dtype
        if kind == "classifier":
            assert out.argmax(-1) == ref.argmax(-1)
        # the output is the DequantizeLinear of codes (matmul: of a QLinearMatMul) or the
        # float QGemm: equal, or 1 LSB of the last requantization where onnxruntime's float
        # rounding order differs (QLinearAdd/Mul, table ops, the shared-bias conv)
        lsb = _output_step(graph)
        assert np.abs(out - ref).max() <= 1.01 * lsb, (np.abs(out - ref).max(), lsb)
        assert np.mean(np.abs(out - ref) > 1e-6) <= 0.2


def _output_step(graph) -> float:
    """The largest quantization step among the graph's scale initializers (1 LSB of the
    coarsest tensor: what one rounding difference upstream can move a float output by)."""
    return max(float(np.max(v)) for k, v in graph.initializers.items()
               if v.dtype == np.float32 and k.endswith("scale"))


# -- fusion ------------------------------------------------------------------------------
EXPECTED = {  # op -> count once every QDQ group is fused (the QOperator file's own ops)
    "classifier": {"QLinearConv": 3, "com.microsoft:QLinearAdd": 1,
                   "com.microsoft:QLinearMul": 1, "com.microsoft:QLinearSigmoid": 1,
                   "com.microsoft:QLinearLeakyRelu": 1, "com.microsoft:QLinearAveragePool": 1,
                   "com.microsoft:QLinearConcat": 1,
                   "com.microsoft:QLinearGlobalAveragePool": 1, "com.microsoft:QGemm": 1},
    "matmul": {"QLinearMatMul": 1},
}
FLOAT_OPS = {"Conv", "Add", "Mul", "Sigmoid", "LeakyRelu", "AveragePool", "Concat",
             "GlobalAveragePool", "Gemm", "MatMul"}


def test_qdq_fusion_finds_every_group(quantized):
    kind, paths = quantized
    counts = optimize(load_onnx(str(paths["qdq"]))).op_counts()
    for op, n in EXPECTED[kind].items():
        assert counts.get(op, 0) == n, (op, dict(counts))
    assert not FLOAT_OPS & set(counts), dict(counts)
    # the QOperator file holds the same integer ops (so both formats run the same kernels)
    qop = optimize(load_onnx(str(paths["qop"]))).op_counts()
    for op, n in EXPECTED[kind].items():
        assert qop.get(op, 0) == n, (op, dict(qop))



@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_hwbench_run_takes_a_quantized_file(quantized, fmt, tmp_path) -> None:
    """A user's quantized file through the whole harness: the float64 reference quantizes
    its float64 activations (QuantizeLinear from float32, as ONNX defines it) and the row's
    work counts every integer op (QGemm's A x B)."""
    import json

    from hwbench.cli import main

    kind, paths = quantized
    code = main(["run", "--backend", "numpy", "--model", str(paths[fmt]), "--batch", "1",
                 "--threads", "1", "--no-roofline", "--output", str(tmp_path),
                 "--repeats", "1", "--min-time", "0", "--max-time", "0.01"])
    assert code == 0
    (row,) = json.loads(next(tmp_path.rglob("*.json")).read_text())["rows"]
    assert row["status"] == "ok", row
    assert row["rel_error"] == 0.0 and row["flops"] > 0  # numpy's codes are the reference's
    if kind == "classifier":  # its QGemm: 2·M·K·N from A's and B's shapes
        from hwbench.graph.ops import OP_DEFS
        from hwbench.graph.shape_inference import infer_shapes

        graph = optimize(load_onnx(str(paths[fmt])))
        shapes = infer_shapes(graph)
        (node,) = [n for n in graph.nodes if n.op_type == "QGemm"]
        a, b = shapes[node.inputs[0]], shapes[node.inputs[3]]
        m, k = a[::-1] if node.attrs.get("transA", 0) else a
        n = b[0] if node.attrs.get("transB", 0) else b[1]
        ins = [shapes.get(name) for name in node.inputs]
        assert OP_DEFS.of(node).flops(node, ins) == 2 * m * k * n > 0

# -- dynamic quantization (DynamicQuantizeLinear + MatMulInteger + Cast/Mul) --------------
def test_quantize_dynamic_matches_onnxruntime(backend, tmp_path):
    from onnxruntime.quantization import quantize_dynamic

    src, dst = tmp_path / "float.onnx", tmp_path / "dynamic.onnx"
    onnx.save(_model("matmul"), src)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    ops = {n.op_type for n in onnx.load(str(dst)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger", "Cast"} <= ops
    graph = optimize(load_onnx(str(dst)))
    assert "MatMulInteger" in graph.op_counts()
    executor = Executor(graph, backend)
    for seed in range(3):
        x = np.random.default_rng(200 + seed).standard_normal(SHAPE).astype(np.float32)
        ref, out = _ort(dst, x), executor.run({"x": x})[0]
        # integer product exact; the float scale multiply may round once differently
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
