"""The onnx wheel's node tests for the binary ops (Sub, Div, Pow, Max, Min, Mod, the
comparisons, Where), run through every backend's ``binary``/``compare``/``where`` kernels.

Included: every float32 case of these ops. Left out, with the reason:
- test_{sub,div}_{int8,int16,uint8,uint16,uint32,uint64}, test_div_int32_trunc,
  test_{max,min}_{int*,uint*,float16,float64}, test_where_long_example (int64),
  test_mod_mixed_sign_{int*,float16,float64}, test_mod_uint*, test_mod_int64_fmod,
  test_mod_broadcast (int32), test_mod_{float64,float16}_*, test_equal, test_equal_bcast
  (int32), test_{equal,less,greater,less_equal,greater_equal}_{int*,uint*},
  test_equal_string*: not float32 (the int32/int64 ones run through the integer
  family's kernels: tests/test_onnx_node_integer.py).
- test_pow_types_*: the exponent (or the base) is an integer tensor.
- test_mod_float32_mixed_sign_fmod_0, test_mod_float_edge_cases_fmod_0_float32: fmod=0
  (Python's modulo) on floats; the float kernel is C's fmod (fmod=1); fmod=0 folds on
  constants only and is refused at run time by name.
- test_{less,greater}_equal*_expanded: multi-node decompositions, not one kernel call.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

CMP = ("", "_bcast")
NODE_TESTS = {
    "Sub": ["test_sub_example", "test_sub", "test_sub_bcast"],
    "Div": ["test_div_example", "test_div", "test_div_bcast"],
    "Pow": ["test_pow_example", "test_pow", "test_pow_bcast_scalar", "test_pow_bcast_array"],
    "Max": ["test_max_example", "test_max_one_input", "test_max_two_inputs",
            "test_max_float32"],
    "Min": ["test_min_example", "test_min_one_input", "test_min_two_inputs",
            "test_min_float32"],
    "Mod": ["test_mod_mixed_sign_float32"],
    "Less": [f"test_less{s}" for s in CMP],
    "Greater": [f"test_greater{s}" for s in CMP],
    "LessOrEqual": [f"test_less_equal{s}" for s in CMP],
    "GreaterOrEqual": [f"test_greater_equal{s}" for s in CMP],
    "Where": ["test_where_example"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]
BINARY = {"Sub": "sub", "Div": "div", "Pow": "pow", "Max": "max", "Min": "min"}
COMPARE = {"Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
           "GreaterOrEqual": "greater_equal", "Equal": "equal"}


def run_node(be, node, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one ONNX node through the backend's kernels (host arrays in and out)."""
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    dev = [be.asarray(x) for x in inputs]
    op = node.op_type
    if op in BINARY:  # Max/Min are variadic: a chain
        out = functools.reduce(lambda a, b: be.binary(a, b, BINARY[op]), dev)
    elif op == "Mod":
        assert attrs.get("fmod", 0) == 1
        out = be.binary(dev[0], dev[1], "fmod")
    elif op in COMPARE:
        out = be.compare(dev[0], dev[1], COMPARE[op])
    elif op == "Where":
        out = be.where(*dev)
    else:
        raise AssertionError(f"no adapter for {op}")
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name)
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        if want.dtype == bool:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
