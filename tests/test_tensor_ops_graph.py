"""The graph layer's run-time data movement: the onnx wheel's Slice/Split/Expand/Pad/Tile/
(Un)Squeeze node tests with their shape-like inputs made constants (as an exported model
has them) through ``Session`` on every backend; an embedding lookup whose token ids are a
graph input kept on the host; old-opset attribute forms; int64 shape arithmetic folded."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import helper, numpy_helper  # noqa: E402
from test_onnx_node_graph import RUNTIME_SHAPE_CASES, RUNTIME_SHAPES  # noqa: E402
from test_onnx_node_tensor_ops import NODE_TESTS  # noqa: E402

from hwbench.errors import ArgumentError  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.ops import op_def  # noqa: E402
from hwbench.graph.passes import fold_constants, set_output_shapes  # noqa: E402
from hwbench.models import Model, Session  # noqa: E402

F32, I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
NAMES = [n for op, names in NODE_TESTS.items() for n in names
         if op in RUNTIME_SHAPES or n in RUNTIME_SHAPE_CASES]


def _session(model, backend, name="m"):
    graph = set_output_shapes(fold_constants(load_onnx(model)))
    return graph, Session(Model(name, graph), backend=backend)


def _constants(model, inputs):
    """``model`` with the node's host inputs (op_def's ``host_inputs``) as initializers."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g, node = model.graph, model.graph.node[0]
    host = {node.input[i] for i in op_def(node.op_type).host_inputs if i < len(node.input)}
    feeds = []
    for value, array in zip(list(g.input), inputs, strict=True):
        if value.name in host:
            g.input.remove(value)
            g.initializer.append(numpy_helper.from_array(np.asarray(array), value.name))
        else:
            feeds.append(array)
    return model, feeds


@pytest.fixture(scope="module")
def cases(onnx_node_cases):
    return onnx_node_cases


def test_the_list_covers_the_refused_graph_cases():
    assert "test_slice_neg_steps" in NAMES and "test_split_variable_parts_2d_opset18" in NAMES
    assert "test_split_equal_parts_2d" not in NAMES  # runs in test_onnx_node_graph.py


@pytest.mark.parametrize("name", NAMES)
def test_node_test_with_constant_shape_inputs(backend, cases, name):
    case = cases[name]
    for inputs, expected in case.data_sets:
        model, feeds = _constants(case.model, list(inputs))
        graph, session = _session(model, backend, name)
        outputs = session.run(dict(zip(graph.input_names, feeds, strict=True)))
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected, strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def _embedding_model(vocab=11, dim=6, opset=13):
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gather", ["weight", "ids"], ["emb"], axis=0),
         helper.make_node("Relu", ["emb"], ["y"])], "embed",
        [helper.make_tensor_value_info("ids", I64, [2, 3])],
        [helper.make_tensor_value_info("y", F32, [2, 3, dim])],
        [numpy_helper.from_array(weight, "weight")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), weight


def test_embedding_lookup_with_ids_as_a_host_feed(backend):
    model, weight = _embedding_model()
    graph, session = _session(model, backend)
    ids = np.array([[0, 10, -1], [3, 3, -11]], np.int64)
    (y,) = session.run({"ids": ids})
    np.testing.assert_array_equal(y, np.maximum(weight[ids], 0))
    with pytest.raises(ArgumentError, match="'indices' holds 11"):
        session.run({"ids": np.array([[0, 11, 1], [1, 1, 1]], np.int64)})


def _model(nodes, inputs, outputs, inits, opset):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info(n, F32, s)
                                       for n, s in inputs],
                          [helper.make_tensor_value_info(n, F32, ["?"]) for n in outputs],
                          [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_old_opset_attribute_forms(backend, rng):
    x = rng.standard_normal((4, 1, 6)).astype(np.float32)
    model = _model([
        helper.make_node("Slice", ["x"], ["s"], starts=[1, -5], ends=[100, -1], axes=[0, 2]),
        helper.make_node("Pad", ["s"], ["p"], pads=[0, 0, 1, 0, 0, 0], mode="edge"),
        helper.make_node("Squeeze", ["p"], ["q"], axes=[1]),
        helper.make_node("Unsqueeze", ["q"], ["u"], axes=[0]),
        helper.make_node("Split", ["u"], ["a", "b"], axis=2, split=[1, 4]),
    ], [("x", (4, 1, 6))], ["a", "b"], [], opset=9)
    graph, session = _session(model, backend)
    a, b = session.run({"x": x})
    s = np.pad(x[1:, :, 1:5], ((0, 0), (0, 0), (1, 0)), mode="edge")[None, :, 0]
    np.testing.assert_array_equal(a, s[:, :, :1])
    np.testing.assert_array_equal(b, s[:, :, 1:])


def test_int64_shape_arithmetic_folds_on_the_host():
    """Slice/Gather/Unsqueeze/Expand/Tile of int64 constants fold away (any dtype)."""
    shape = np.array([2, 3, 4, 5], np.int64)
    model = _model([
        helper.make_node("Slice", ["shape", "st", "en"], ["tail"]),
        helper.make_node("Gather", ["shape", "i0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Tile", ["n1", "two"], ["nn"]),
        helper.make_node("Concat", ["nn", "tail"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ], [("x", (2, 3, 4, 5))], ["y"],
        [("shape", shape), ("st", np.array([2])), ("en", np.array([100])),
         ("i0", np.array(0)), ("ax", np.array([0])), ("two", np.array([2]))], opset=13)
    graph = fold_constants(load_onnx(model))
    assert [n.op_type for n in graph.nodes] == ["Reshape"]
    target = graph.initializers[graph.nodes[0].inputs[1]]
    np.testing.assert_array_equal(target, [2, 2, 4, 5])
    assert target.dtype == np.int64


def test_after_a_convolution_against_onnxruntime(backend, rng):
    """Conv (whose cpu output may stay in oneDNN's blocked layout) -> Pad -> Slice ->
    Tile -> Expand, compared with onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    w = (rng.standard_normal((32, 3, 3, 3)) * 0.2).astype(np.float32)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    consts = [("w", w), ("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
              ("st", np.array([1, -2], np.int64)), ("en", np.array([30, 0], np.int64)),
              ("ax", np.array([1, 3], np.int64)), ("sp", np.array([3, -3], np.int64)),
              ("reps", np.array([1, 1, 2, 1], np.int64)),
              ("shape", np.array([2, 1, 1, 1, 1], np.int64))]
    model = _model([
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Pad", ["c", "pads"], ["p"], mode="reflect"),
        helper.make_node("Slice", ["p", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Tile", ["s", "reps"], ["t"]),
        helper.make_node("Expand", ["t", "shape"], ["y"]),
    ], [("x", (2, 3, 9, 9))], ["y"], consts, opset=13)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    graph, session = _session(model, backend)
    (got,) = session.run({"x": x})
    assert got.shape == want.shape
    tol = 0.1 if backend.name == "systolic" else 1e-4  # the int8 array computes the conv
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
