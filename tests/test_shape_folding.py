"""Shape and mask arithmetic of exported models folds at load: the subgraphs
``torch.onnx.export`` writes for ``x.view(x.size(0), -1)``, a causal mask
(``triu(ones(s, s))`` -> Where) and position ids (Range) leave no Shape/Gather/Range/...
node once ``load_model`` fixes the dims, and the model still gives onnxruntime's outputs.
Also each new host evaluation against onnxruntime on small constant graphs."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference here")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hwbench  # noqa: E402
from hwbench.errors import ArgumentError, HwbenchError  # noqa: E402
from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.passes import fold_constants  # noqa: E402

SHAPE_OPS = {"Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Range",
             "ConstantOfShape", "Expand", "Equal", "Less", "Greater", "Not", "And", "Or",
             "Cast", "Constant", "Slice", "Mod", "Floor", "Ceil", "Trilu"}


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(value), name))


def _model(nodes, inputs, outputs, opset: int = 17, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(tmp_path, model, name="m.onnx") -> str:
    path = tmp_path / name
    onnx.save(model, path)
    return str(path)


def _ort(path: str, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)


def _flatten_view_model() -> onnx.ModelProto:
    """``y = relu(x).view(x.size(0), -1) - 0.5``: Shape -> Gather -> Unsqueeze -> Concat."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        _const("i0", np.int64(0)),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        _const("ax", np.asarray([0], np.int64)),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        _const("m1", np.asarray([-1], np.int64)),
        helper.make_node("Concat", ["n1", "m1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"]),
        _const("half", np.asarray(0.5, np.float32)),
        helper.make_node("Sub", ["flat", "half"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 60])
    return _model(nodes, [x], [y])


def _causal_attention_model() -> onnx.ModelProto:
    """Scores (batch, seq, seq) masked causally: seq from Shape, a triangle built with
    Range/Unsqueeze/LessOrEqual... as exporters write it, then Where(mask, scores, lowest float),
    plus position ids from Range cast to float and added."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=1, end=2),  # opset 15 start/end
        helper.make_node("Squeeze", ["s"], ["seq"]),  # opset 13: axes omitted
        _const("zero", np.int64(0)),
        _const("one", np.int64(1)),
        helper.make_node("Range", ["zero", "seq", "one"], ["pos"]),
        _const("a0", np.asarray([0], np.int64)),
        _const("a1", np.asarray([1], np.int64)),
        helper.make_node("Unsqueeze", ["pos", "a0"], ["row"]),  # (1, seq): key index
        helper.make_node("Unsqueeze", ["pos", "a1"], ["col"]),  # (seq, 1): query index
        helper.make_node("Greater", ["row", "col"], ["future"]),
        helper.make_node("Not", ["future"], ["allowed"]),
        # the same triangle as torch.tril(ones(s, s)) exports it: ConstantOfShape -> Trilu
        helper.make_node("Concat", ["s", "s"], ["ss"], axis=0),
        helper.make_node("ConstantOfShape", ["ss"], ["ones"],
                         value=numpy_helper.from_array(np.asarray([1], np.int64))),
        helper.make_node("Trilu", ["ones"], ["tril"], upper=0),
        helper.make_node("Cast", ["tril"], ["tril_b"], to=TensorProto.BOOL),
        helper.make_node("And", ["allowed", "tril_b"], ["both"]),
        helper.make_node("Unsqueeze", ["both", "a0"], ["mask"]),
        # the lowest float, as transformers masks (-inf would trip the softmax's screen)
        _const("ninf", np.asarray(np.finfo(np.float32).min, np.float32)),
        helper.make_node("Where", ["mask", "x", "ninf"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
        helper.make_node("Cast", ["pos"], ["posf"], to=TensorProto.FLOAT),
        _const("scale", np.asarray(0.25, np.float32)),
        helper.make_node("Mul", ["posf", "scale"], ["bias"]),
        helper.make_node("Add", ["p", "bias"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", "seq"])
    return _model(nodes, [x], [y], opset=17)


@pytest.mark.parametrize("batch", [1, 3])
def test_view_flatten_folds_and_matches_onnxruntime(tmp_path, backend, rng, batch):
    path = _save(tmp_path, _flatten_view_model())
    model = hwbench.load_model(path, batch=batch)
    left = set(model.graph.op_counts()) & SHAPE_OPS
    assert left == set(), left
    x = rng.standard_normal((batch, 3, 4, 5)).astype(np.float32)
    got = hwbench.Session(model, backend=backend).run({"x": x})[0]
    want = _ort(path, {"x": x})[0]
    assert got.shape == want.shape == (batch, 60)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seq", [1, 5])
def test_causal_mask_and_position_ids_fold_and_match_onnxruntime(tmp_path, backend, rng, seq):
    path = _save(tmp_path, _causal_attention_model())
    model = hwbench.load_model(path, batch=2, dims={"seq": seq})
    assert set(model.graph.op_counts()) & SHAPE_OPS == set()
    assert set(model.graph.op_counts()) >= {"Where", "Softmax"}
    x = rng.standard_normal((2, seq, seq)).astype(np.float32)
    got = hwbench.Session(model, backend=backend).run({"x": x})[0]
    want = _ort(path, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- host evaluations against onnxruntime, one constant graph each ---------------------------
I64 = np.int64
CASES = [
    # (op, inputs, attributes, opset)
    ("Size", [np.zeros((2, 3, 4), np.float32)], {}, 17),
    ("Shape", [np.zeros((2, 3, 4), np.float32)], {"start": -2}, 17),
    ("Shape", [np.zeros((2, 3, 4), np.float32)], {"start": 1, "end": -1}, 17),
    ("Range", [I64(2), I64(11), I64(3)], {}, 17),
    ("Range", [np.float32(1), np.float32(-2), np.float32(-0.75)], {}, 17),
    ("Range", [I64(5), I64(2), I64(1)], {}, 17),  # empty
    ("ConstantOfShape", [np.asarray([2, 3], I64)],
     {"value": numpy_helper.from_array(np.asarray([7], I64))}, 17),
    ("Expand", [np.asarray([[1], [2]], I64), np.asarray([2, 1, 3], I64)], {}, 17),
    ("Expand", [np.arange(3, dtype=np.float32), np.asarray([1], I64)], {}, 17),
    ("Equal", [np.asarray([1, 2, 3], I64), np.asarray([3, 2, 1], I64)], {}, 17),
    ("Less", [np.asarray([1, 2, 3], I64), I64(2)], {}, 17),
    ("Greater", [np.asarray([1.5, 2, -3], np.float32), np.float32(0)], {}, 17),
    ("LessOrEqual", [np.asarray([1, 2, 3], I64), I64(2)], {}, 17),
    ("GreaterOrEqual", [np.asarray([1, 2, 3], I64), I64(2)], {}, 17),
    ("Trilu", [np.ones((2, 3, 4), I64)], {}, 17),
    ("Trilu", [np.arange(12, dtype=np.float32).reshape(3, 4), I64(-1)], {"upper": 0}, 17),
    ("Trilu", [np.ones((4, 4), bool), I64(1)], {"upper": 1}, 17),
    ("Not", [np.asarray([True, False])], {}, 17),
    ("And", [np.asarray([True, False, True]), np.asarray([True])], {}, 17),
    ("Or", [np.asarray([False, False, True]), np.asarray([False, True, False])], {}, 17),
    ("Where", [np.asarray([[True], [False]]), np.asarray([1, 2], I64), I64(-1)], {}, 17),
    ("Mod", [np.asarray([-7, 7, -7, 7], I64), np.asarray([3, -3, -3, 3], I64)], {}, 17),
    ("Mod", [np.asarray([-7, 7, -7, 7], I64), np.asarray([3, -3, -3, 3], I64)],
     {"fmod": 1}, 17),
    ("Mod", [np.asarray([-7.5, 7.5], np.float32), np.asarray([2, -2], np.float32)],
     {"fmod": 1}, 17),
    ("Div", [np.asarray([-7, 7, -8, 9], I64), np.asarray([2, 2, 3, -4], I64)], {}, 17),
    ("Div", [np.asarray([-7, 7], np.float32), np.float32(2)], {}, 17),
    ("Sub", [np.asarray([5, 6], I64), I64(1)], {}, 17),
    ("Mul", [np.asarray([5, 6], I64), I64(3)], {}, 17),
    ("Add", [np.asarray([5, 6], I64), I64(3)], {}, 17),
    ("Pow", [np.asarray([2, 3], I64), np.asarray([3, 2], I64)], {}, 17),
    ("Pow", [np.asarray([2, 4], np.float32), np.asarray([0.5, -1], np.float32)], {}, 17),
    ("Pow", [np.asarray([2, 3], np.float32), I64(2)], {}, 17),
    ("Floor", [np.asarray([1.5, -1.5], np.float32)], {}, 17),
    ("Ceil", [np.asarray([1.5, -1.5], np.float32)], {}, 17),
    ("Max", [np.asarray([1, 5], I64), np.asarray([4, 2], I64), I64(3)], {}, 17),
    ("Min", [np.asarray([1, 5], I64), np.asarray([4, 2], I64), I64(3)], {}, 17),
    ("Max", [np.asarray([1.5, -2], np.float32)], {}, 17),
    ("Cast", [np.asarray([1.7, -1.7, 0], np.float32)], {"to": TensorProto.INT64}, 17),
    ("Cast", [np.asarray([2, 0], I64)], {"to": TensorProto.BOOL}, 17),
    ("Gather", [np.asarray([[1, 2], [3, 4], [5, 6]], I64), np.asarray([-1, 0], I64)],
     {"axis": 0}, 17),
    ("Gather", [np.asarray([4, 5, 6], I64), I64(1)], {}, 17),  # scalar index: rank 0
    ("Unsqueeze", [np.asarray([4, 5], I64)], {"axes": [0, -1]}, 11),
    ("Unsqueeze", [np.asarray([4, 5], I64), np.asarray([-1], I64)], {}, 13),
    ("Squeeze", [np.asarray([[4], [5]], I64)], {"axes": [1]}, 11),
    ("Squeeze", [np.asarray([[4, 5]], I64), np.asarray([0], I64)], {}, 13),
    ("Concat", [np.asarray([1], I64), np.asarray([2, 3], I64)], {"axis": 0}, 17),
    ("Slice", [np.arange(10, dtype=I64), np.asarray([1], I64), np.asarray([-1], I64)], {}, 17),
    ("Slice", [np.arange(12, dtype=I64).reshape(3, 4), np.asarray([-1, 9], I64),
               np.asarray([-2**63, 0], I64), np.asarray([0, 1], I64),
               np.asarray([-1, -2], I64)], {}, 17),
    ("Slice", [np.arange(12, dtype=np.float32).reshape(3, 4)],
     {"starts": [1], "ends": [1000], "axes": [1]}, 9),
    # shape[:0] as TorchScript's MultiheadAttention export writes it: an empty constant
    ("Slice", [np.asarray([2, 3], I64), np.asarray([0], I64), np.asarray([0], I64)], {}, 17),
    ("Slice", [np.arange(12, dtype=np.float32).reshape(3, 4), np.asarray([5], I64),
               np.asarray([9], I64), np.asarray([1], I64)], {}, 17),
    ("ScatterND", [np.zeros((4, 5), np.float32), np.asarray([[2], [0]], I64),
                   np.arange(10, dtype=np.float32).reshape(2, 5)], {}, 17),
    ("ScatterND", [np.zeros((3, 4), I64), np.asarray([[[0, 1], [2, -1]]], I64),
                   np.asarray([[5, 6]], I64)], {}, 17),
    ("ScatterND", [np.ones((2, 3), np.float32), np.asarray([[1, 1], [1, 1]], I64),
                   np.asarray([2, 3], np.float32)], {"reduction": "add"}, 18),
    ("Einsum", [np.arange(4, dtype=np.float32), np.arange(3, dtype=np.float32) / 7],
     {"equation": "i,j->ij"}, 17),
    ("Einsum", [np.arange(6, dtype=np.float32).reshape(2, 3),
                np.arange(12, dtype=np.float32).reshape(4, 3)], {"equation": "ik, jk"}, 17),
    ("Einsum", [np.arange(24, dtype=np.float32).reshape(2, 3, 4)],
     {"equation": "bij->bji"}, 17),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-opset{c[3]}-{c[2]}")
def test_host_evaluation_matches_onnxruntime(tmp_path, case):
    op, values, attrs, opset = case
    nodes, names = [], []
    for i, value in enumerate(values):
        nodes.append(_const(f"c{i}", value))
        names.append(f"c{i}")
    nodes.append(helper.make_node(op, names, ["y"], **attrs))
    want = _ort(_save(tmp_path, _model(nodes, [], [helper.make_empty_tensor_value_info("y")],
                                       opset)), {})[0]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(want.dtype),
                                        list(want.shape))
    graph = fold_constants(load_onnx(_model(nodes, [], [out], opset)))
    assert graph.nodes == []
    got = graph.initializers["y"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op, values, match", [
    ("Div", [np.asarray([1], I64), np.asarray([0], I64)], "division by zero"),
    ("Range", [I64(0), I64(5), I64(0)], "delta is 0"),
    ("Range", [I64(0), I64(10**12), I64(1)], "refusing"),
    ("Expand", [np.asarray([1, 2], I64), np.asarray([3], I64)], "does not broadcast"),
    ("Where", [np.ones((40000, 1), bool), np.ones((1, 40000), np.float32),
               np.float32(0)], "refusing"),
    ("ScatterND", [np.zeros((2, 2), np.float32), np.asarray([[2]], I64),
                   np.zeros((1, 2), np.float32)], "out of range"),
    ("ScatterND", [np.zeros((2, 2), np.float32), np.asarray([[1]], I64),
                   np.zeros((1, 3), np.float32)], "do not fit"),
])
def test_bad_constants_raise_naming_the_node(op, values, match):
    nodes = [_const(f"c{i}", v) for i, v in enumerate(values)]
    nodes.append(helper.make_node(op, [f"c{i}" for i in range(len(values))], ["y"], name="n"))
    model = _model(nodes, [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ArgumentError, match=f"{op} node 'n'.*{match}"):
        fold_constants(load_onnx(model))


def test_host_only_op_on_a_runtime_tensor_is_refused_by_name(tmp_path):
    nodes = [helper.make_node("Trilu", ["x"], ["y"])]  # folds on constants, never runs
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    path = _save(tmp_path, _model(nodes, [x], [y]))
    with pytest.raises(HwbenchError, match="Trilu"):
        hwbench.Session(hwbench.load_model(path), backend="numpy")
