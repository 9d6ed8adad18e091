"""The onnx wheel's node tests for the ops whole CNNs need, run through every backend.

Same fixture pattern as ``test_onnx_node.py``: each case is a one-node model; a small
adapter maps the node's attributes onto the kernel interface the way the graph layer does
(ONNX's ``auto_pad`` to explicit padding, Reshape's 0 "copy this dimension" resolved
before the kernel, which treats 0 as nothing special).

Included: every 2-D MaxPool/AveragePool test, GlobalAveragePool, the opset-13 Softmax
tests, float32 Add/Mul (with broadcasting), every Concat, LRN, Reshape and Transpose test
that fits the interface. Left out, with the reason:
- test_{add,mul}_{int8,int16,uint8,uint16,uint32,uint64}: integer inputs; these kernels
  are float32. (test_maxpool_2d_uint8 runs as the graph layer runs MaxPool on 8-bit codes:
  to float32, exactly, pooled, and back.)
- test_maxpool_with_argmax_*: a second output (Indices) the kernel does not produce.
- test_averagepool_2d_dilations: avg_pool2d has no dilation argument (ONNX added it in
  opset 19; no model of the zoo uses it).
- test_{maxpool,averagepool,lppool}_{1d,3d}_*, test_lppool_*, test_globalmaxpool*: not
  2-D or not these ops.
- test_softmax_*_expanded*: multi-node decompositions of Softmax, not one kernel call.
- test_reshape_allowzero_reordered: allowzero=1 with a zero-size input; zero-size arrays
  are refused by every kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from node_cases import listed_node, outputs_beside_expected

from hwbench.kernels.spec import onnx_conv_padding

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

POOL_2D = ["default", "pads", "precomputed_pads", "precomputed_same_upper",
           "precomputed_strides", "same_lower", "same_upper", "strides", "ceil"]
NODE_TESTS = {
    "MaxPool": [f"test_maxpool_2d_{s}" for s in POOL_2D]
    + ["test_maxpool_2d_dilations", "test_maxpool_2d_ceil_output_size_reduce_by_one",
       "test_maxpool_2d_uint8"],
    "AveragePool": [f"test_averagepool_2d_{s}" for s in POOL_2D]
    + ["test_averagepool_2d_pads_count_include_pad",
       "test_averagepool_2d_precomputed_pads_count_include_pad",
       "test_averagepool_2d_ceil_last_window_starts_on_pad"],
    "GlobalAveragePool": ["test_globalaveragepool", "test_globalaveragepool_precomputed"],
    "Softmax": [f"test_softmax_{s}" for s in ("axis_0", "axis_1", "axis_2", "default_axis",
                                              "example", "large_number", "negative_axis")],
    "Add": ["test_add", "test_add_bcast"],
    "Mul": ["test_mul", "test_mul_bcast", "test_mul_example"],
    "Concat": ["test_concat_1d_axis_0", "test_concat_1d_axis_negative_1"]
    + [f"test_concat_2d_axis_{a}" for a in ("0", "1", "negative_1", "negative_2")]
    + [f"test_concat_3d_axis_{a}" for a in ("0", "1", "2", "negative_1", "negative_2",
                                            "negative_3")],
    "LRN": ["test_lrn", "test_lrn_default"],
    "Reshape": [f"test_reshape_{s}" for s in (
        "extended_dims", "negative_dim", "negative_extended_dims", "one_dim", "reduced_dims",
        "reordered_all_dims", "reordered_last_dims", "zero_and_negative_dim", "zero_dim")],
    "Transpose": [f"test_transpose_all_permutations_{i}" for i in range(6)]
    + ["test_transpose_default"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def _attrs(node) -> dict:
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}


def _pool_args(attrs: dict, x: np.ndarray) -> dict:
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    pads = onnx_conv_padding(attrs.get("auto_pad", "NOTSET"), attrs.get("pads"), x.shape[2:],
                             kernel, strides, dilations)
    return dict(kernel=kernel, stride=strides, padding=pads,
                ceil_mode=bool(attrs.get("ceil_mode", 0)))


def run_node(be, node, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one ONNX node through the backend's kernels (host arrays in and out)."""
    attrs = _attrs(node)
    dev = be.asarray
    op = node.op_type
    if op == "MaxPool":
        x = dev(inputs[0])
        codes = inputs[0].dtype if inputs[0].dtype in (np.uint8, np.int8) else None
        if codes is not None:  # as graph.ops.pooling: 8-bit codes through float32, exactly
            x = be.dequantize_linear(x, np.float32(1), np.zeros((), codes))
        out = be.max_pool2d(x, dilation=tuple(attrs.get("dilations", (1, 1))),
                            **_pool_args(attrs, inputs[0]))
        if codes is not None:
            out = be.quantize_linear(out, np.float32(1), np.zeros((), codes))
    elif op == "AveragePool":
        out = be.avg_pool2d(dev(inputs[0]), **_pool_args(attrs, inputs[0]),
                            count_include_pad=bool(attrs.get("count_include_pad", 0)))
    elif op == "GlobalAveragePool":
        out = be.global_avg_pool2d(dev(inputs[0]))
    elif op == "Softmax":
        out = be.softmax(dev(inputs[0]), axis=attrs.get("axis", -1))
    elif op in ("Add", "Mul"):
        out = getattr(be, op.lower())(dev(inputs[0]), dev(inputs[1]))
    elif op == "Concat":
        out = be.concat([dev(x) for x in inputs], attrs["axis"])
    elif op == "LRN":
        out = be.lrn(dev(inputs[0]), attrs["size"], alpha=attrs.get("alpha", 1e-4),
                     beta=attrs.get("beta", 0.75), bias=attrs.get("bias", 1.0))
    elif op == "Reshape":
        assert not attrs.get("allowzero", 0)
        x, shape = inputs
        # ONNX's 0 copies the input's dimension (allowzero=0): the graph layer's job.
        resolved = tuple(x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape))
        out = be.reshape(dev(x), resolved)
    elif op == "Transpose":
        out = be.transpose(dev(inputs[0]), attrs.get("perm"))
    else:
        raise AssertionError(f"no adapter for {op}")
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = listed_node(case, NODE_TESTS, name)
    for got, want in outputs_beside_expected(case, lambda inputs: run_node(backend, node, inputs)):
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
