"""The onnx wheel's node tests for the unary family (issue 15), run through every
backend's ``unary`` kernel. The adapter maps each node's attributes (and Clip's min/max
inputs) onto ``unary(x, op, alpha=, beta=)`` with the graph layer's own mapping
(``hwbench.graph.ops.unary``); tests/test_onnx_node_graph.py runs the same cases as
whole models.

Every float32 case at opsets 13-22 is listed (the cases of Cos, Sin, Elu, HardSigmoid,
HardSwish and Softplus are opset 22, which only added bfloat16 types). Left out:
- test_clip_default_int8_{min,max,inbounds}: int8 inputs; the kernel is float32.
- test_*_expanded*, test_*_expanded_ver18: multi-node decompositions of the op (Less,
  Where, Mul, ...), not one kernel call.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import case_opset, listed_node, outputs_beside_expected

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

from hwbench.graph.ir import Node  # noqa: E402
from hwbench.graph.ops.unary import clip_bounds, kernel_call  # noqa: E402

NODE_TESTS = {
    "Erf": ["test_erf"],
    "Sqrt": ["test_sqrt", "test_sqrt_example"],
    "Clip": [f"test_clip{s}" for s in (
        "", "_example", "_inbounds", "_outbounds", "_splitbounds", "_min_greater_than_max",
        "_default_min", "_default_max", "_default_inbounds")],
    "HardSigmoid": ["test_hardsigmoid", "test_hardsigmoid_example", "test_hardsigmoid_default"],
    "HardSwish": ["test_hardswish"],
    "Tanh": ["test_tanh", "test_tanh_example"],
    "Gelu": ["test_gelu_default_1", "test_gelu_default_2", "test_gelu_tanh_1",
             "test_gelu_tanh_2"],
    "LeakyRelu": ["test_leakyrelu", "test_leakyrelu_example", "test_leakyrelu_default"],
    "Exp": ["test_exp", "test_exp_example"],
    "Log": ["test_log", "test_log_example"],
    "Abs": ["test_abs"],
    "Neg": ["test_neg", "test_neg_example"],
    "Reciprocal": ["test_reciprocal", "test_reciprocal_example"],
    "Softplus": ["test_softplus", "test_softplus_example"],
    "Elu": ["test_elu", "test_elu_example", "test_elu_default"],
    "Sin": ["test_sin", "test_sin_example"],
    "Cos": ["test_cos", "test_cos_example"],
    "Floor": ["test_floor", "test_floor_example"],
    "Ceil": ["test_ceil", "test_ceil_example"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def run_node(be, onnx_node, inputs: list[np.ndarray], opset: int) -> np.ndarray:
    """Run one ONNX node through the backend's ``unary`` kernel (host arrays in and out)."""
    attrs = {a.name: get_attribute_value(a) for a in onnx_node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    node = Node(onnx_node.op_type, list(onnx_node.input), list(onnx_node.output), attrs,
                name=onnx_node.name)
    # inputs arrive in the node's order; an omitted optional input ("") is None
    feeds = iter(inputs)
    args = [next(feeds) if name else None for name in onnx_node.input]
    x = be.asarray(args[0])
    if node.op_type == "Clip":
        lo, hi = clip_bounds(node, args, opset)
        out = be.unary(x, "clip", alpha=lo, beta=hi)
    else:
        op, params = kernel_call(node)
        out = be.unary(x, op, **params)
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node, opset = listed_node(case, NODE_TESTS, name), case_opset(case)
    for got, want in outputs_beside_expected(
            case, lambda inputs: run_node(backend, node, inputs, opset)):
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
