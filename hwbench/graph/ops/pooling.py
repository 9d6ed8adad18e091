"""Pooling: MaxPool, AveragePool, GlobalAveragePool (2-D, NCHW)."""

from __future__ import annotations

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.shapes import conv_params, pool_output_hw
from hwbench.graph.ops.types import array_dtype


def _pool_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    kernel = tuple(node.attrs["kernel_shape"])
    if node.attrs.get("storage_order", 0):
        raise UnsupportedError(f"{node.label()}: storage_order=1 is not supported")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise UnsupportedError(f"{node.label()}: the Indices output is not supported")
    p = conv_params(node, x, kernel)
    h, w = pool_output_hw(x[2:], kernel, p, bool(node.attrs.get("ceil_mode", 0)))
    if h < 1 or w < 1:
        raise ArgumentError(f"{node.label()}: window {kernel} larger than padded input {x}")
    return [(x[0], x[1], h, w)]


def _global_pool_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    if len(x) != 4:
        raise UnsupportedError(f"{node.label()}: only NCHW inputs are supported, got {x}")
    return [(x[0], x[1], 1, 1)]


def _pool_args(s: Step) -> tuple[tuple[int, ...], dict]:
    kernel = tuple(s.node.attrs["kernel_shape"])
    return kernel, conv_params(s.node, s.in_shapes[0], kernel)


# MaxPool only picks the largest value of each window: on these types it runs exactly
# through float32 (every value is a float32), pooled, and back
_SMALL_INTS = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.uint16, np.bool_))


def _run_max_pool(be, x, s: Step):
    kernel, p = _pool_args(s)
    data, dtype = x[0], array_dtype(x[0])
    by_codes = getattr(be, "max_pool2d_codes", None)  # cpu: one pass on the codes
    if dtype in (np.uint8, np.int8) and by_codes is not None:
        return by_codes(data, kernel, stride=p["stride"], padding=p["padding"],
                        dilation=p["dilation"], ceil_mode=bool(s.node.attrs.get("ceil_mode", 0)))
    if dtype in (np.uint8, np.int8):  # 8-bit codes (QOperator models): as codes
        zero = np.zeros((), dtype)
        data = be.dequantize_linear(data, np.float32(1), zero)
    elif dtype in _SMALL_INTS:  # 16-bit integers, bool: by Cast
        data = be.cast(data, np.float32)
    y = be.max_pool2d(data, kernel, stride=p["stride"], padding=p["padding"],
                      dilation=p["dilation"], ceil_mode=bool(s.node.attrs.get("ceil_mode", 0)))
    if data is x[0]:
        return y
    if dtype in (np.uint8, np.int8):
        return be.quantize_linear(y, np.float32(1), zero)
    return be.cast(y, dtype)


def _run_avg_pool(be, x, s: Step):
    kernel, p = _pool_args(s)
    if p["dilation"] != (1, 1):
        raise UnsupportedError(f"{s.node.label()}: dilated AveragePool is not supported")
    return be.avg_pool2d(x[0], kernel, stride=p["stride"], padding=p["padding"],
                         ceil_mode=bool(s.node.attrs.get("ceil_mode", 0)),
                         count_include_pad=bool(s.node.attrs.get("count_include_pad", 0)))


DEFS = (
    OpDef("MaxPool", shape=_pool_shape, run=_run_max_pool, kernels=("max_pool2d",),
          in_types=(np.dtype(np.float32), *_SMALL_INTS)),
    OpDef("AveragePool", shape=_pool_shape, run=_run_avg_pool, kernels=("avg_pool2d",)),
    OpDef("GlobalAveragePool", shape=_global_pool_shape,
          run=lambda be, x, s: be.global_avg_pool2d(x[0]), kernels=("global_avg_pool2d",)),
)
