"""The ONNX node tests that ship in the onnx wheel, run through every backend's kernels.

Each test case is a one-node model with its inputs and expected outputs; a small adapter
maps the node's attributes onto the kernel interface (the graph layer will do the same).
"""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_node_close

from hwbench.kernels.spec import onnx_conv_padding

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx.helper import get_attribute_value  # noqa: E402

NODE_TESTS = {
    "Gemm": ["test_gemm_default_zero_bias", "test_gemm_default_no_bias",
             "test_gemm_default_scalar_bias", "test_gemm_default_single_elem_vector_bias",
             "test_gemm_default_vector_bias", "test_gemm_default_matrix_bias",
             "test_gemm_transposeA", "test_gemm_transposeB", "test_gemm_alpha",
             "test_gemm_beta", "test_gemm_all_attributes"],
    "Conv": ["test_basic_conv_with_padding", "test_basic_conv_without_padding",
             "test_conv_with_strides_padding", "test_conv_with_strides_no_padding",
             "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_autopad_same"],
    "Sigmoid": ["test_sigmoid", "test_sigmoid_example"],
    "MatMulInteger": ["test_matmulinteger"],
    "QLinearMatMul": [f"test_qlinearmatmul_{d}_{t}_{s}" for d in ("2D", "3D")
                      for t in ("uint8", "int8") for s in ("float32", "float16")],
    # onnxruntime fails test_convinteger_with_padding (a per-filter w zero point).
    "ConvInteger": ["test_convinteger_without_padding", "test_convinteger_with_padding"],
    "QLinearConv": ["test_qlinearconv"],
    "QuantizeLinear": ["test_quantizelinear", "test_quantizelinear_axis"],
    "DequantizeLinear": ["test_dequantizelinear", "test_dequantizelinear_axis"],
}
ALL_NAMES = [name for names in NODE_TESTS.values() for name in names]


def _attrs(node) -> dict:
    return {a.name: get_attribute_value(a) for a in node.attribute}


def run_node(be, node, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one ONNX node through the backend's kernels (host arrays in and out)."""
    attrs = _attrs(node)
    dev = be.asarray
    if node.op_type == "Gemm":
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        a = inputs[0] * np.float32(alpha) if alpha != 1.0 else inputs[0]
        bias = None
        if len(inputs) > 2:
            bias = inputs[2] * np.float32(beta) if beta != 1.0 else inputs[2]
            bias = dev(bias.astype(np.float32))
        out = be.gemm(dev(a), dev(inputs[1]), bias, trans_a=bool(attrs.get("transA", 0)),
                      trans_b=bool(attrs.get("transB", 0)))
    elif node.op_type == "Conv":
        x, w = inputs[0], inputs[1]
        kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
        strides = tuple(attrs.get("strides", (1, 1)))
        dilations = tuple(attrs.get("dilations", (1, 1)))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        pads = onnx_conv_padding(auto_pad, attrs.get("pads"), x.shape[2:], kernel, strides,
                                 dilations)
        bias = dev(inputs[2]) if len(inputs) > 2 else None
        out = be.conv2d(dev(x), dev(w), bias, stride=strides, padding=pads,
                        dilation=dilations, groups=attrs.get("group", 1))
    elif node.op_type == "Sigmoid":
        flat = inputs[0].reshape(-1)
        return be.to_numpy(be.sigmoid(dev(flat))).reshape(inputs[0].shape)
    elif node.op_type == "MatMulInteger":
        za = inputs[2] if len(inputs) > 2 else 0
        zb = inputs[3] if len(inputs) > 3 else 0
        out = be.gemm_int8(dev(inputs[0]), dev(inputs[1]), za, zb)
    elif node.op_type == "QLinearMatMul":
        a, sa, za, b, sb, zb, sy, zy = inputs
        if a.ndim == 2:
            return be.to_numpy(be.qgemm(dev(a), sa, za, dev(b), sb, zb, sy, zy))
        return np.stack([be.to_numpy(be.qgemm(dev(a[i]), sa, za, dev(b[i]), sb, zb, sy, zy))
                         for i in range(a.shape[0])])
    elif node.op_type == "ConvInteger":
        x, w = inputs[0], inputs[1]
        zx = inputs[2] if len(inputs) > 2 else np.zeros((), x.dtype)
        zw = inputs[3] if len(inputs) > 3 else np.zeros((), w.dtype)
        out = be.conv2d_int8(dev(x), dev(w), zx, zw, padding=tuple(attrs.get("pads", (0,) * 4)))
    elif node.op_type == "QLinearConv":
        x, sx, zx, w, sw, zw, sy, zy = inputs[:8]
        bias = dev(inputs[8]) if len(inputs) > 8 else None
        out = be.qconv2d(dev(x), sx, zx, dev(w), sw, zw, sy, zy, bias,
                         padding=tuple(attrs.get("pads", (0,) * 4)))
    elif node.op_type == "QuantizeLinear":
        out = be.quantize_linear(dev(inputs[0]), inputs[1], inputs[2], attrs.get("axis", 1))
    elif node.op_type == "DequantizeLinear":
        out = be.dequantize_linear(dev(inputs[0]), inputs[1], inputs[2], attrs.get("axis", 1))
    else:
        raise AssertionError(f"no adapter for {node.op_type}")
    return be.to_numpy(out)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_onnx_node(backend, node_tests, name):
    case = node_tests[name]
    node = case.model.graph.node[0]
    for inputs, expected in case.data_sets:
        result = run_node(backend, node, list(inputs))
        want = expected[0]
        assert result.shape == want.shape
        if want.dtype.kind in "iu":
            assert result.dtype == want.dtype
            np.testing.assert_array_equal(result, want)
        else:
            assert_node_close(backend, node.op_type, result, want, case.rtol, case.atol)
