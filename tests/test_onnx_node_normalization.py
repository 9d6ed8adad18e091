"""The onnx wheel's LayerNormalization node tests through every backend's ``layer_norm``
kernel, all three outputs (Y, Mean, InvStdDev) compared; InstanceNormalization's through
the graph layer's composition of kernels (layer_norm, reshape, mul, add).

Included: every float32 test_layer_normalization_* case, both test_instancenorm_* cases.
Left out, with the reason:
- test_layer_normalization_*_expanded{,_ver18}: function expansions into ReduceMean, Sub,
  Pow, Sqrt, Div, ... (ops of other families, run-time axes inputs), not one kernel call.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected
from tolerances import assert_node_close

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

from hwbench.graph.ops.normalization import instance_norm  # noqa: E402

LAYER_NORM = ["2d_axis0", "2d_axis1", "2d_axis_negative_1", "2d_axis_negative_2",
              "3d_axis0_epsilon", "3d_axis1_epsilon", "3d_axis2_epsilon",
              "3d_axis_negative_1_epsilon", "3d_axis_negative_2_epsilon",
              "3d_axis_negative_3_epsilon", "4d_axis0", "4d_axis1", "4d_axis2", "4d_axis3",
              "4d_axis_negative_1", "4d_axis_negative_2", "4d_axis_negative_3",
              "4d_axis_negative_4", "default_axis"]
NODE_TESTS = {"LayerNormalization": [f"test_layer_normalization_{s}" for s in LAYER_NORM],
              "InstanceNormalization": ["test_instancenorm_epsilon", "test_instancenorm_example"]}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def run_node(be, node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    dev = be.asarray
    if node.op_type == "InstanceNormalization":  # the graph layer's composition of kernels
        y = instance_norm(be, dev(inputs[0]), dev(inputs[1]), dev(inputs[2]), inputs[0].shape,
                          attrs.get("epsilon", 1e-5))
        return [be.to_numpy(y)]
    bias = dev(inputs[2]) if len(inputs) > 2 else None
    outs = be.layer_norm(dev(inputs[0]), dev(inputs[1]), bias, axis=attrs.get("axis", -1),
                         epsilon=attrs.get("epsilon", 1e-5), stats=len(node.output) > 1)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return [be.to_numpy(o) for o in outs]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name)
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        assert_node_close(backend, node.op_type, got, want, case.rtol, case.atol)
