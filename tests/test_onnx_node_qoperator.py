"""The onnx wheel's DynamicQuantizeLinear node tests, run through every backend's kernels
(``reduce`` min/max on the device, the scale and zero point from those two scalars,
``quantize_linear``), as the graph layer runs the op.

Left out: test_dynamicquantizelinear*_expanded (multi-node decompositions, not this op).
onnxruntime's com.microsoft QOperator ops have no ONNX node tests; tests/test_qoperator.py
checks them against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.graph.ops.qoperator import _run_dynamic_quantize

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")

NODE_TESTS = {
    "DynamicQuantizeLinear": ["test_dynamicquantizelinear",
                              "test_dynamicquantizelinear_max_adjusted",
                              "test_dynamicquantizelinear_min_adjusted"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    assert case.model.graph.node[0].op_type == "DynamicQuantizeLinear"
    for inputs, expected in case.data_sets:
        outs = _run_dynamic_quantize(backend, [backend.asarray(inputs[0])], None)
        for got, want in zip(outs, expected, strict=True):
            got = backend.to_numpy(got)
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
