"""The onnx wheel's node tests for Cast, run through every backend's ``cast`` kernel (and,
through tests/node_test_lists.py, through the graph layer as whole models).

Included: every Cast case between float32, float64 and float16 (the types the kernel
converts; the integer and bool targets have no node test of their own and are covered
by tests/test_cast_kernels.py against NumPy). Left out, with the reason:
- test_cast_*BFLOAT16*, *FLOAT8E4M3FN*, *FLOAT8E4M3FNUZ*, *FLOAT8E5M2*, *FLOAT8E5M2FNUZ*,
  test_cast_no_saturate_*, test_cast_e8m0_*: bfloat16 and the float8 types (and their
  'saturate'/'round_mode' attributes) are no NumPy dtype hwbench keeps.
- test_cast_*INT4*, *UINT4*, *INT2*, *UINT2*, *FLOAT4E2M1*: packed sub-byte types.
- test_cast_STRING_*/*_to_STRING (not in this onnx wheel): strings are not numbers.
- test_castlike_*: CastLike, another op (the target type comes from a second input).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import numpy_helper  # noqa: E402
from onnx.helper import get_attribute_value, tensor_dtype_to_np_dtype  # noqa: E402

TYPES = ("FLOAT", "DOUBLE", "FLOAT16")
NODE_TESTS = {"Cast": [f"test_cast_{a}_to_{b}" for a in TYPES for b in TYPES if a != b]}
ALL_NAMES = NODE_TESTS["Cast"]
# every one of them feeds NaN and infinities, which a Session refuses as graph inputs: the
# graph-level run (test_onnx_node_graph.py) leaves them out; test_cast_kernels.py runs
# Cast through the graph layer on finite values
NONFINITE_FEEDS = set(ALL_NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = case.model.graph.node[0]
    assert node.op_type == "Cast"
    to = tensor_dtype_to_np_dtype(get_attribute_value(node.attribute[0]))
    for inputs, expected in case.data_sets:
        x, want = (numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v
                   for v in (inputs[0], expected[0]))
        got = backend.to_numpy(backend.cast(backend.asarray(x), to))
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # one correctly rounded conversion
