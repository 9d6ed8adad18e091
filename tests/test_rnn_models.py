"""Small recurrent models through ``hwbench.Session`` on every backend, against
onnxruntime: an embedding (Gather) -> LSTM -> Gemm classifier, and a bidirectional GRU
(linear_before_reset, per-batch sequence lengths) whose Y and Y_h are both outputs. The
graph layer's side of the family too: shapes of omitted outputs, FLOPs, constant folding.
"""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import QUANTIZED_FLOAT_TOL, quantizes_float_math

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hwbench  # noqa: E402
from hwbench.graph.ir import Node  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.ops import op_def  # noqa: E402
from hwbench.graph.passes import fold_constants  # noqa: E402
from hwbench.models import Model  # noqa: E402

SEQ, BATCH, VOCAB, EMBED, HIDDEN, CLASSES = 7, 3, 11, 6, 5, 4


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def lstm_classifier(rng) -> onnx.ModelProto:
    f = np.float32
    inits = [
        _init("table", rng.standard_normal((VOCAB, EMBED)).astype(f)),
        _init("W", (0.4 * rng.standard_normal((1, 4 * HIDDEN, EMBED))).astype(f)),
        _init("R", (0.4 * rng.standard_normal((1, 4 * HIDDEN, HIDDEN))).astype(f)),
        _init("B", (0.1 * rng.standard_normal((1, 8 * HIDDEN))).astype(f)),
        _init("shape", np.array([BATCH, HIDDEN], np.int64)),
        _init("Wc", rng.standard_normal((CLASSES, HIDDEN)).astype(f)),
        _init("bc", rng.standard_normal(CLASSES).astype(f)),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("LSTM", ["emb", "W", "R", "B"], ["", "h", "c"], hidden_size=HIDDEN),
        helper.make_node("Reshape", ["h", "shape"], ["h2"]),
        helper.make_node("Gemm", ["h2", "Wc", "bc"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "lstm_classifier",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [SEQ, BATCH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, CLASSES]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, BATCH, HIDDEN])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])


def bidirectional_gru(rng) -> onnx.ModelProto:
    f = np.float32
    inits = [
        _init("W", (0.4 * rng.standard_normal((2, 3 * HIDDEN, EMBED))).astype(f)),
        _init("R", (0.4 * rng.standard_normal((2, 3 * HIDDEN, HIDDEN))).astype(f)),
        _init("B", (0.1 * rng.standard_normal((2, 6 * HIDDEN))).astype(f)),
        _init("lens", np.array([SEQ, 3, 5], np.int32)),
    ]
    node = helper.make_node("GRU", ["x", "W", "R", "B", "lens", "h0"], ["y", "h"],
                            hidden_size=HIDDEN, direction="bidirectional",
                            linear_before_reset=1)
    graph = helper.make_graph(
        [node], "bigru",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [SEQ, BATCH, EMBED]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [2, BATCH, HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [SEQ, 2, BATCH, HIDDEN]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, BATCH, HIDDEN])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])


def feeds_for(name, rng):
    if name == "lstm":
        return {"ids": rng.integers(0, VOCAB, (SEQ, BATCH)).astype(np.int64)}
    return {"x": rng.standard_normal((SEQ, BATCH, EMBED)).astype(np.float32),
            "h0": rng.standard_normal((2, BATCH, HIDDEN)).astype(np.float32)}


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_model_matches_onnxruntime(backend, rng, name):
    proto = (lstm_classifier if name == "lstm" else bidirectional_gru)(rng)
    feeds = feeds_for(name, rng)
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    session = hwbench.Session(Model(name, load_onnx(proto)), backend=backend)
    got = session.run(feeds)
    # int8-quantized float math (systolic): its own bound; else 1e-4 of the largest output
    tol = QUANTIZED_FLOAT_TOL if quantizes_float_math(backend) else 1e-4
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == np.float32
        scale = float(np.max(np.abs(w)))
        assert float(np.max(np.abs(g - w))) <= tol * scale


def test_graph_rules():
    gru = op_def("GRU")
    node = Node("GRU", ["x", "W", "R", "", "", "h0"], ["", "h"],
                {"hidden_size": 4, "direction": "bidirectional", "layout": 1})
    shapes = [(3, 7, 2), (2, 12, 2), (2, 12, 4), (3, 2, 4)]
    assert gru.shape(node, shapes, None)[1] == (3, 2, 4)
    assert gru.shape(node, shapes, None)[0] == (3, 7, 2, 4)
    flops = gru.flops(node, [(3, 7, 2), (2, 12, 2), (2, 12, 4), None, None, (3, 2, 4)])
    assert flops >= 2 * 2 * 7 * 3 * 12 * (2 + 4)
    bad = Node("GRU", ["x", "W", "R"], ["y"], {"hidden_size": 5})
    with pytest.raises(hwbench.errors.ArgumentError, match="hidden_size"):
        gru.shape(bad, shapes[:3], None)


def test_constant_lstm_folds(rng):
    """An LSTM whose inputs are all constants is evaluated at load (float64 reference)."""
    proto = lstm_classifier(rng)
    ids = rng.integers(0, VOCAB, (SEQ, BATCH)).astype(np.int64)
    proto.graph.initializer.append(_init("ids", ids))
    del proto.graph.input[:]
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {})
    graph = fold_constants(load_onnx(proto))
    assert "LSTM" not in graph.op_counts()
    got = hwbench.Session(Model("folded", graph), backend="numpy").run({})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
