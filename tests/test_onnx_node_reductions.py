"""The onnx wheel's node tests for ReduceX and (N-D, batched) MatMul, through every
backend's ``reduce`` and ``matmul`` kernels.

Included: every float32 ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum case and every
MatMul case. Left out, with the reason:
- test_reduce_*_empty_set*, test_reduce_sum_empty_set_non_reduced_axis_zero: zero-size
  inputs; every kernel refuses zero-size arrays.
- test_reduce_{max,min}_bool_inputs: bool data; these kernels are float32.
- test_reduce_log_sum_exp_* (except empty_set, above): float64 data (the kernels are
  float32).
- test_reduce_*_expanded: multi-node decompositions, not one kernel call.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected, run_with_constant_inputs
from tolerances import assert_node_close

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

from hwbench.kernels.spec import REDUCE_OPS  # noqa: E402

KERNEL_OP = {onnx_name: op for op, onnx_name in REDUCE_OPS.items()}
STANDARD = ["default_axes_keepdims_example", "default_axes_keepdims_random",
            "do_not_keepdims_example", "do_not_keepdims_random", "keepdims_example",
            "keepdims_random", "negative_axes_keepdims_example",
            "negative_axes_keepdims_random"]
L_NORM = ["default_axes_keepdims_example", "default_axes_keepdims_random",
          "do_not_keepdims_example", "do_not_keepdims_random", "keep_dims_example",
          "keep_dims_random", "negative_axes_keep_dims_example", "negative_axes_keep_dims_random"]
NODE_TESTS = {
    "ReduceSum": [f"test_reduce_sum_{s}" for s in STANDARD]
    + ["test_reduce_sum_empty_axes_input_noop", "test_reduce_sum_empty_axes_input_noop_example"],
    "ReduceMean": [f"test_reduce_mean_{s}" for s in STANDARD],
    "ReduceMax": [f"test_reduce_max_{s}" for s in STANDARD
                  if s != "default_axes_keepdims_example"]
    + ["test_reduce_max_default_axes_keepdim_example"],
    "ReduceMin": [f"test_reduce_min_{s}" for s in STANDARD],
    "ReduceProd": [f"test_reduce_prod_{s}" for s in STANDARD],
    "ReduceSumSquare": [f"test_reduce_sum_square_{s}" for s in STANDARD],
    "ReduceL1": [f"test_reduce_l1_{s}" for s in L_NORM],
    "ReduceL2": [f"test_reduce_l2_{s}" for s in L_NORM],
    "ReduceLogSum": [f"test_reduce_log_sum_{s}" for s in ("asc_axes", "default", "desc_axes",
                                                          "negative_axes")],
    "MatMul": [f"test_matmul_{s}" for s in ("1d_1d", "1d_3d", "2d", "3d", "4d", "4d_1d",
                                            "bcast")],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]
# Cases whose axes arrive as a run-time graph input (opset >= 18, 13 for ReduceSum): the
# graph layer needs them constant, so tests/test_onnx_node_graph.py leaves them to
# test_node_test_with_constant_axes_through_the_graph_layer here, which makes them one.
RUNTIME_AXES_CASES = {name for op, names in NODE_TESTS.items() if op.startswith("Reduce")
                      for name in names} - {f"test_reduce_{op}_default_axes_keepdims_{kind}"
                                            for op in ("max", "min", "prod")
                                            for kind in ("example", "random")} - {
    "test_reduce_max_default_axes_keepdim_example"}

def run_node(be, node, inputs: list[np.ndarray]) -> np.ndarray:
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    dev = be.asarray
    if node.op_type == "MatMul":
        return be.to_numpy(be.matmul(dev(inputs[0]), dev(inputs[1])))
    axes = attrs.get("axes")
    if len(inputs) > 1:
        axes = [int(a) for a in inputs[1].ravel()]
    out = be.reduce(dev(inputs[0]), KERNEL_OP[node.op_type], axes,
                    keepdims=bool(attrs.get("keepdims", 1)),
                    noop_with_empty_axes=bool(attrs.get("noop_with_empty_axes", 0)))
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name)
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        assert_node_close(backend, node.op_type, got, want, case.rtol, case.atol)


@pytest.mark.node_test(level="graph")
@pytest.mark.parametrize("name", sorted(RUNTIME_AXES_CASES))
def test_node_test_with_constant_axes_through_the_graph_layer(backend, node_tests, name):
    """The case's axes input made an initializer: import, folding, shape inference and the
    executor then run it as a model with constant axes would."""
    case = node_tests[name]
    assert [i.name for i in case.model.graph.input][1:] == ["axes"]
    for inputs, expected in case.data_sets:
        got = run_with_constant_inputs(case, name, inputs, backend)
        assert got.shape == expected[0].shape
        np.testing.assert_allclose(got, expected[0], rtol=case.rtol, atol=case.atol)


def test_runtime_axes_are_refused_naming_the_node(onnx_node_cases):
    from hwbench.errors import UnsupportedError
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes

    case = onnx_node_cases["test_reduce_mean_keepdims_example"]
    with pytest.raises(UnsupportedError, match="ReduceMean node 'reduced'.*axes.*constant"):
        set_output_shapes(fold_constants(load_onnx(case.model)))
