"""The onnx wheel's node tests on integer and bool tensors, run through every backend's
``int_binary``/``int_unary``/``compare``/``where``/``cumsum``/``arg_reduce`` kernels: the
comparisons and Where on int32/int64, Div/Mod/Max/Min on int32/int64, Not/And/Or/Xor on
bool, CumSum on int32, ArgMax/ArgMin (float32 in, int64 out).

Left out, with the reason:
- test_{add,sub,mul,div,max,min,equal,less,greater,less_equal,greater_equal,mod}_{int8,
  int16,uint8,uint16,uint32,uint64} and test_mod_mixed_sign_{int8,int16}: 8/16-bit and
  unsigned element types; the integer kernels take int32 and int64 (what exported models
  compute on). The wheel has no int32/int64 Add, Sub or Mul case: the kernel tests
  (tests/test_integer_kernels.py) cover them.
- test_equal_string*: strings.
- test_cumsum_1d, _1d_exclusive, _1d_reverse, _1d_reverse_exclusive, _2d_axis_0,
  _2d_axis_1, _2d_negative_axis: float64 tensors (cumsum takes float32, int32, int64;
  the float32 forms of these cases are in tests/test_integer_kernels.py).
- *_expanded: multi-node decompositions, not one kernel call.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.graph.passes import fold_constants, set_output_shapes  # noqa: E402
from hwbench.models import Model, Session  # noqa: E402

LOGIC = ("2d", "3d", "4d", "_bcast3v1d", "_bcast3v2d", "_bcast4v2d", "_bcast4v3d",
         "_bcast4v4d")
ARG = [f"{axis}_{kind}{last}" for axis in ("default_axis", "keepdims", "no_keepdims",
                                           "negative_axis_keepdims")
       for kind in ("example", "random") for last in ("", "_select_last_index")]
NODE_TESTS = {
    "Equal": ["test_equal", "test_equal_bcast"],
    "Div": ["test_div_int32_trunc"],
    "Max": ["test_max_int32", "test_max_int64"],
    "Min": ["test_min_int32", "test_min_int64"],
    "Mod": ["test_mod_broadcast", "test_mod_int64_fmod", "test_mod_mixed_sign_int32",
            "test_mod_mixed_sign_int64"],
    "Where": ["test_where_long_example"],
    "Not": ["test_not_2d", "test_not_3d", "test_not_4d"],
    "And": [f"test_and{s}" for s in LOGIC],
    "Or": [f"test_or{s}" for s in LOGIC],
    "Xor": [f"test_xor{s}" for s in LOGIC],
    "CumSum": ["test_cumsum_1d_int32_exclusive", "test_cumsum_2d_int32"],
    "ArgMax": [f"test_argmax_{a}" for a in ARG],
    "ArgMin": [f"test_argmin_{a}" for a in ARG],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]
# Not (opset 1) and And/Or/Xor (opset 7) cases are older than the opsets hwbench reads (9+):
# the graph-level run (test_onnx_node_graph.py) skips them, and test_logical_through_the_
# graph_layer below runs them converted to opset 13, where these ops are unchanged.
OLD_OPSET_CASES = {name for op in ("Not", "And", "Or", "Xor") for name in NODE_TESTS[op]}
INT_BINARY = {"Div": "div", "Max": "max", "Min": "min", "And": "and", "Or": "or",
              "Xor": "xor"}


def run_node(be, node, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one ONNX node through the backend's kernels (host arrays in and out)."""
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "CumSum":
        out = be.cumsum(be.asarray(inputs[0]), int(inputs[1].reshape(())) % inputs[0].ndim,
                        attrs.get("exclusive", 0), attrs.get("reverse", 0))
        return be.to_numpy(out)
    dev = [be.asarray(x) for x in inputs]
    if op in INT_BINARY:
        out = functools.reduce(lambda a, b: be.int_binary(a, b, INT_BINARY[op]), dev)
    elif op == "Mod":
        out = be.int_binary(dev[0], dev[1], "fmod" if attrs.get("fmod", 0) else "mod")
    elif op == "Equal":
        out = be.compare(dev[0], dev[1], "equal")
    elif op == "Where":
        out = be.where(*dev)
    elif op == "Not":
        out = be.int_unary(dev[0], "not")
    elif op in ("ArgMax", "ArgMin"):
        axis = attrs.get("axis", 0) % inputs[0].ndim
        out = be.arg_reduce(dev[0], axis, attrs.get("keepdims", 1),
                            attrs.get("select_last_index", 0), op.lower())
    else:
        raise AssertionError(f"no adapter for {op}")
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name)
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        np.testing.assert_array_equal(got, want)  # integers, bools and indices are exact


@pytest.mark.node_test(level="graph")
@pytest.mark.parametrize("name", sorted(OLD_OPSET_CASES))
def test_logical_through_the_graph_layer(backend, node_tests, name):
    from onnx import version_converter

    case = node_tests[name]
    model = version_converter.convert_version(case.model, 13)
    graph = set_output_shapes(fold_constants(load_onnx(model)))
    session = Session(Model(name, graph), backend=backend)
    for inputs, expected in case.data_sets:
        got = session.run(dict(zip(graph.input_names, inputs, strict=True)))[0]
        assert got.dtype == np.bool_ and got.shape == expected[0].shape
        np.testing.assert_array_equal(got, expected[0])
