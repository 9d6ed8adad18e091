"""ONNX's integer ops: QuantizeLinear, DequantizeLinear, ConvInteger, QLinearConv,
MatMulInteger and QLinearMatMul (opset 10 and later).

Their scales and zero points are parameters, not tensors: the executor keeps them on the
host (``host_inputs``), and a backend receives them as NumPy values, as its kernels'
signatures do. Only 8-bit data is supported; 16-bit, 4-bit, float8 and blocked
quantization are refused with a message that says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.counting import conv_flops, matmul_flops
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.shapes import conv_output_shape, conv_params, input_index
from hwbench.graph.ops.types import const_type, input_type

_EIGHT_BIT = {1: None, 2: np.uint8, 3: np.int8}  # ONNX TensorProto codes: FLOAT, UINT8, INT8


def _host(be: Any, value: Any) -> Any:
    """A parameter as a NumPy value (a graph input arrives on the device)."""
    if value is None or isinstance(value, np.ndarray):
        return value
    return be.to_numpy(value)


def _optional(x: list, i: int) -> Any:
    return x[i] if len(x) > i else None


def _check_plain_quantization(node: Node) -> None:
    if node.attrs.get("block_size", 0):
        raise UnsupportedError(f"{node.label()}: blocked quantization (block_size) is not "
                               f"supported; use per-tensor or per-axis scales")


def _conv_kwargs(s: Step, w_shape: Shape) -> dict:
    kernel = tuple(s.node.attrs.get("kernel_shape") or w_shape[2:])
    return {**conv_params(s.node, s.in_shapes[0], kernel),
            "groups": s.node.attrs.get("group", 1)}


def _run_quantize_linear(be, x, s: Step):
    _check_plain_quantization(s.node)
    zero_point = _host(be, _optional(x, 2))
    out_type = s.node.attrs.get("output_dtype", 0)
    if zero_point is None and out_type:
        if _EIGHT_BIT.get(out_type) is None:
            raise UnsupportedError(f"{s.node.label()}: output_dtype {out_type} is not 8-bit "
                                   f"(only int8 and uint8 are supported)")
        zero_point = np.zeros((), _EIGHT_BIT[out_type])
    return be.quantize_linear(x[0], _host(be, x[1]), zero_point,
                              axis=s.node.attrs.get("axis", 1))


def _run_dequantize_linear(be, x, s: Step):
    _check_plain_quantization(s.node)
    return be.dequantize_linear(x[0], _host(be, x[1]), _host(be, _optional(x, 2)),
                                axis=s.node.attrs.get("axis", 1))


def _zero(dtype: np.dtype) -> np.ndarray:
    return np.zeros((), dtype)


def _run_conv_integer(be, x, s: Step):
    zx = _host(be, _optional(x, 2))
    zw = _host(be, _optional(x, 3))
    return be.conv2d_int8(x[0], x[1], _zero(x[0].dtype) if zx is None else zx,
                          _zero(x[1].dtype) if zw is None else zw,
                          **_conv_kwargs(s, s.in_shapes[1]))


def _run_qlinear_conv(be, x, s: Step):
    h = [_host(be, v) if i not in (0, 3, 8) else v for i, v in enumerate(x)]
    return be.qconv2d(x[0], h[1], h[2], x[3], h[4], h[5], h[6], h[7], _optional(x, 8),
                      **_conv_kwargs(s, s.in_shapes[3]))


def _batched(be, s: Step, a_shape: Shape, b_shape: Shape, fn, a, b):
    """N-D MatMul as one 2-D kernel call per leading index (equal leading dimensions, or
    a 2-D ``b`` shared by all), results stacked on the device."""
    if len(a_shape) == 2 and len(b_shape) == 2:
        return fn(a, b)
    if len(b_shape) == 2:  # (..., K) @ (K, N): one 2-D product over the stacked rows
        rows = be.reshape(a, (int(np.prod(a_shape[:-1])), a_shape[-1]))
        return be.reshape(fn(rows, b), tuple(a_shape[:-1]) + (b_shape[-1],))
    if len(b_shape) == 2 or a_shape[:-2] != b_shape[:-2]:
        raise UnsupportedError(f"{s.node.label()}: batched {a_shape} @ {b_shape} needs equal "
                               f"leading dimensions")
    lead = a_shape[:-2]
    count = int(np.prod(lead))
    a3 = be.reshape(a, (count,) + a_shape[-2:])
    b3 = be.reshape(b, (count,) + b_shape[-2:])
    host_a, host_b = be.to_numpy(a3), be.to_numpy(b3)
    parts = [be.to_numpy(fn(be.asarray(host_a[i]), be.asarray(host_b[i])))
             for i in range(count)]
    return be.asarray(np.stack(parts).reshape(lead + parts[0].shape))


def _run_matmul_integer(be, x, s: Step):
    za, zb = _host(be, _optional(x, 2)), _host(be, _optional(x, 3))
    za = _zero(x[0].dtype) if za is None else za
    zb = _zero(x[1].dtype) if zb is None else zb
    return _batched(be, s, s.in_shapes[0], s.in_shapes[1],
                    lambda a, b: be.gemm_int8(a, b, za, zb), x[0], x[1])


def _run_qlinear_matmul(be, x, s: Step):
    h = [_host(be, v) if i not in (0, 3) else v for i, v in enumerate(x)]
    return _batched(be, s, s.in_shapes[0], s.in_shapes[3],
                    lambda a, b: be.qgemm(a, h[1], h[2], b, h[4], h[5], h[6], h[7]),
                    x[0], x[3])


# -- shape rules ------------------------------------------------------------------------
def _conv_shape(node: Node, x: Shape, w: Shape) -> Shape:
    groups = node.attrs.get("group", 1)
    if len(x) != 4 or len(w) != 4 or x[1] != w[1] * groups or w[0] % groups:
        raise ArgumentError(f"{node.label()}: input {x} and weight {w} do not match "
                            f"with group={groups}")
    return conv_output_shape(node, x, w)


def _matmul_shape(node: Node, a: Shape, b: Shape) -> Shape:
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise ArgumentError(f"{node.label()}: cannot multiply {a} by {b}")
    lead = a[:-2] if len(a) >= len(b) else b[:-2]
    return tuple(lead) + (a[-2], b[-1])


def _first_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [shapes[0]]


def _conv_integer_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [_conv_shape(node, shapes[0], shapes[1])]


def _qlinear_conv_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [_conv_shape(node, shapes[0], shapes[input_index(node, 3)])]


def _matmul_integer_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [_matmul_shape(node, shapes[0], shapes[1])]


def _qlinear_matmul_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [_matmul_shape(node, shapes[0], shapes[input_index(node, 3)])]


# (De)quantization and QLinearConv's requantization have shared defaults in ``Backend``:
# only the integer products are kernels a backend may lack.
DEFS = (
    OpDef("QuantizeLinear", shape=_first_shape, run=_run_quantize_linear,
          host_inputs=(1, 2), output_itemsize=1, out_types=input_type(2, np.uint8)),
    OpDef("DequantizeLinear", shape=_first_shape, run=_run_dequantize_linear,
          host_inputs=(1, 2), out_types=const_type(np.float32)),
    OpDef("ConvInteger", shape=_conv_integer_shape, run=_run_conv_integer,
          kernels=("conv2d_int8",), host_inputs=(2, 3), integer=True, flops=conv_flops(1),
          out_types=const_type(np.int32)),
    OpDef("QLinearConv", shape=_qlinear_conv_shape, run=_run_qlinear_conv,
          kernels=("conv2d_int8",), host_inputs=(1, 2, 4, 5, 6, 7), integer=True,
          flops=conv_flops(3), output_itemsize=1, out_types=input_type(7)),
    OpDef("MatMulInteger", shape=_matmul_integer_shape, run=_run_matmul_integer,
          kernels=("gemm_int8",), host_inputs=(2, 3), integer=True, flops=matmul_flops(1),
          out_types=const_type(np.int32)),
    OpDef("QLinearMatMul", shape=_qlinear_matmul_shape, run=_run_qlinear_matmul,
          kernels=("qgemm",), host_inputs=(1, 2, 4, 5, 6, 7), integer=True,
          flops=matmul_flops(3), output_itemsize=1, out_types=input_type(7)),
)
