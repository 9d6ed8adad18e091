"""The data-movement ops move every layout element type on every backend (issue 15: a QDQ
or mask graph with Transpose/Concat/Slice/Gather/Pad/... on int8, uint8, int16, uint16 or
bool was refused at load, or accepted and then refused by the kernel; Resize in nearest
mode only picks values too): one-node ONNX
graphs through the importer, the load-time type check and the executor, against NumPy's
result; and the check still refuses what a kernel cannot take, naming node, input, type."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.errors import UnsupportedError
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import helper, numpy_helper  # noqa: E402
from onnx.helper import np_dtype_to_tensor_dtype  # noqa: E402

BACKENDS = ["numpy", "cpu", "opencl", "systolic", "cuda"]
TYPES = ["int8", "uint8", "int16", "uint16", "bool"]
SHAPE = (2, 3, 4)


def _ints(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


# op -> (node attributes, extra initializer inputs, NumPy's result for x)
CASES = {
    "Transpose": ({"perm": [2, 0, 1]}, [], lambda x: x.transpose(2, 0, 1)),
    "Reshape": ({}, [_ints("s", [6, 4])], lambda x: x.reshape(6, 4)),
    "Flatten": ({"axis": 2}, [], lambda x: x.reshape(6, 4)),
    "Squeeze": ({}, [], None),  # built with a unit axis below
    "Unsqueeze": ({}, [_ints("a", [1])], lambda x: x[:, None]),
    "Concat": ({"axis": 1}, [], lambda x: np.concatenate([x, x], 1)),
    "Slice": ({}, [_ints("st", [1]), _ints("en", [3]), _ints("ax", [2])], lambda x: x[:, :, 1:3]),
    "Gather": ({"axis": 2}, [_ints("i", [3, 0, 0])], lambda x: x[:, :, [3, 0, 0]]),
    "Expand": ({}, [_ints("e", [2, 2, 3, 4])], lambda x: np.broadcast_to(x, (2, 2, 3, 4))),
    "Tile": ({}, [_ints("r", [1, 2, 1])], lambda x: np.tile(x, (1, 2, 1))),
    "Pad": ({}, [_ints("p", [0, 1, 0, 0, 0, 2])], lambda x: np.pad(x, [(0, 0), (1, 0), (0, 2)])),
    "Split": ({"axis": 2}, [_ints("sp", [1, 3])], lambda x: x[:, :, :1]),
    "Identity": ({}, [], lambda x: x),
    # nearest (round_prefer_floor, half_pixel): (2, 3, 4) -> (2, 6, 6); a take of the input
    "Resize": ({"mode": "nearest"},
               [numpy_helper.from_array(np.array([1, 2, 1.5], np.float32), "sc")],
               lambda x: x[:, [0, 0, 1, 1, 2, 2]][:, :, [0, 0, 1, 2, 2, 3]]),
}


def _graph(op: str, dtype: np.dtype):
    attrs, inits, _ = CASES[op]
    elem = np_dtype_to_tensor_dtype(dtype)
    shape = (2, 1, 4) if op == "Squeeze" else SHAPE
    inputs = (["x", "x"] if op == "Concat" else ["x", "", "sc"] if op == "Resize"
              else ["x", *(t.name for t in inits)])
    outputs = ["y", "z"] if op == "Split" else ["y"]
    node = helper.make_node(op, inputs, outputs, **attrs)
    zeros = np.zeros(shape, dtype)
    out_shapes = ([zeros[:, 0].shape] if op == "Squeeze" else
                  [(2, 3, 1), (2, 3, 3)] if op == "Split" else [CASES[op][2](zeros).shape])
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info(o, elem, s)
                               for o, s in zip(outputs, out_shapes, strict=True)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return load_onnx(model), shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", TYPES)
@pytest.mark.parametrize("op", list(CASES))
def test_data_movement_runs_on_every_type(backend, dtype, op):
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"{backend} unavailable: {why}")
    graph, shape = _graph(op, np.dtype(dtype))
    rng = np.random.default_rng(len(op) + len(dtype))
    if dtype == "bool":
        x = rng.integers(0, 2, shape).astype(bool)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    want = x[:, 0] if op == "Squeeze" else CASES[op][2](x)
    got = Executor(graph, get_backend(backend)).run({"x": x})[0]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)


def test_the_load_check_still_names_what_a_kernel_cannot_take():
    """Resize and AveragePool compute on floats: int16 there is refused before any run,
    every such node, input and type named."""
    x = helper.make_tensor_value_info("x", np_dtype_to_tensor_dtype(np.dtype("int16")),
                                      [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", np_dtype_to_tensor_dtype(np.dtype("int16")),
                                      [1, 1, 7, 7])
    nodes = [helper.make_node("Resize", ["x", "", "sc"], ["r"], name="up", mode="linear"),
             helper.make_node("AveragePool", ["r"], ["y"], name="avg", kernel_shape=[2, 2])]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [scales]),
                              opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(UnsupportedError, match=r"node 'up' \(Resize\) input 0 'x' is int16.*"
                                               r"node 'avg' \(AveragePool\) input 0 'r' is "
                                               r"int16"):
        Executor(load_onnx(model), get_backend("numpy"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", TYPES)
def test_max_pool_picks_on_every_small_type(backend, dtype):
    """MaxPool only picks each window's largest value: 8-bit codes, 16-bit integers and
    bool run exactly (through float32, where every such value is exact, and back)."""
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"{backend} unavailable: {why}")
    elem = np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[1, 2],
                            pads=[1, 0, 0, 1])
    graph = helper.make_graph([node], "mp", [helper.make_tensor_value_info("x", elem,
                                                                            [1, 2, 4, 5])],
                              [helper.make_tensor_value_info("y", elem, [1, 2, 4, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(len(dtype))
    if dtype == "bool":
        x = rng.integers(0, 2, (1, 2, 4, 5)).astype(bool)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (1, 2, 4, 5), dtype=dtype, endpoint=True)
    padded = np.full((1, 2, 5, 6), np.iinfo(dtype).min if dtype != "bool" else False,
                     dtype=dtype)
    padded[:, :, 1:, :5] = x
    want = np.stack([np.stack([padded[:, :, i:i + 2, j:j + 3].max(axis=(2, 3))
                               for j in range(0, 4, 2)], -1) for i in range(4)], -2)
    got = Executor(load_onnx(model), get_backend(backend)).run({"x": x})[0]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)
