"""Shape arithmetic several op families share: padding and windows, Reshape's 0/-1,
Flatten, Transpose's perm, and the two generic shape rules (same shape, broadcast)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import Shape
from hwbench.kernels.spec import onnx_conv_padding


def resolve_reshape(in_shape: Sequence[int], target: Sequence[int], allowzero: bool = False,
                    where: str = "Reshape") -> Shape:
    """ONNX Reshape's target -> a concrete shape: 0 copies the input's dimension (unless
    ``allowzero``), one -1 takes what is left."""
    target = [int(t) for t in target]
    out: list[int] = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if i >= len(in_shape):
                raise ArgumentError(f"{where}: target {tuple(target)} copies dimension {i} "
                                    f"(0), but the input has shape {tuple(in_shape)}")
            out.append(int(in_shape[i]))
        elif t < -1:
            raise ArgumentError(f"{where}: target {tuple(target)} has a negative dimension")
        else:
            out.append(t)
    size = math.prod(in_shape)
    if out.count(-1) > 1:
        raise ArgumentError(f"{where}: target {tuple(target)} has more than one -1")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or size % rest:
            raise ArgumentError(f"{where}: cannot reshape {tuple(in_shape)} to {tuple(target)}")
        out[out.index(-1)] = size // rest
    if math.prod(out) != size:
        raise ArgumentError(
            f"{where}: cannot reshape {tuple(in_shape)} ({size} values) to {tuple(target)}")
    return tuple(out)


def reshape_target(node: Node, graph: Graph) -> np.ndarray:
    """Reshape's target: an initializer (ONNX ≥ 5) or the old ``shape`` attribute."""
    if len(node.inputs) > 1 and node.inputs[1]:
        target = graph.initializers.get(node.inputs[1])
        if target is None:
            raise UnsupportedError(f"{node.label()}: the target shape must be a constant")
        return target
    return np.asarray(node.attrs["shape"], np.int64)


def conv_params(node: Node, x_shape: Shape, kernel: Sequence[int]) -> dict:
    """Conv/MaxPool/AveragePool attributes -> stride, (t, l, b, r) padding, dilation."""
    a = node.attrs
    if len(x_shape) != 4 or len(kernel) != 2:
        raise UnsupportedError(f"{node.label()}: only 2-D (NCHW) inputs are supported, "
                               f"got input shape {x_shape} and kernel {tuple(kernel)}")
    strides = tuple(a.get("strides") or (1, 1))
    dilations = tuple(a.get("dilations") or (1, 1))
    pads = onnx_conv_padding(a.get("auto_pad", "NOTSET"), a.get("pads"), x_shape[2:],
                             tuple(kernel), strides, dilations)
    return {"stride": strides, "padding": pads, "dilation": dilations}


def pool_output_hw(in_hw: Sequence[int], kernel: Sequence[int], p: dict,
                   ceil_mode: bool) -> tuple[int, int]:
    """Output size of a pooling window; with ``ceil_mode`` a last window that would start
    in the end padding is dropped (the rule PyTorch and onnxruntime apply)."""
    out = []
    for i in range(2):
        span = in_hw[i] + p["padding"][i] + p["padding"][i + 2]
        eff = p["dilation"][i] * (kernel[i] - 1) + 1
        s = p["stride"][i]
        n = (-(-(span - eff) // s) if ceil_mode else (span - eff) // s) + 1
        if ceil_mode and (n - 1) * s >= in_hw[i] + p["padding"][i]:
            n -= 1
        out.append(n)
    return out[0], out[1]


def flatten_shape(shape: Shape, axis: int) -> Shape:
    axis = axis + len(shape) if axis < 0 else axis
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def transpose_perm(node: Node, rank: int) -> tuple[int, ...]:
    perm = node.attrs.get("perm")
    perm = tuple(range(rank))[::-1] if perm is None else tuple(int(p) for p in perm)
    if sorted(perm) != list(range(rank)):
        raise ArgumentError(f"{node.label()}: perm {perm} does not fit rank {rank}")
    return perm


def input_index(node: Node, index: int) -> int:
    """Position of input ``index`` among the node's *named* inputs (what rules receive)."""
    return sum(1 for name in node.inputs[:index] if name)


def same_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    """Shape rule of an op whose every output has its first input's shape."""
    return [shapes[0]] * len(node.outputs)


def broadcast_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    """Shape rule of a NumPy-broadcasting op."""
    try:
        return [tuple(np.broadcast_shapes(*shapes))]
    except ValueError:
        raise ArgumentError(f"{node.label()}: input shapes {shapes} do not broadcast") from None


def conv_output_shape(node: Node, x: Shape, w: Shape) -> Shape:
    """(N, M, H', W') of a 2-D convolution of ``x`` by OIHW weights ``w``."""
    kernel = tuple(node.attrs.get("kernel_shape") or w[2:])
    h, wd = pool_output_hw(x[2:], kernel, conv_params(node, x, kernel), ceil_mode=False)
    if h < 1 or wd < 1:
        raise ArgumentError(f"{node.label()}: kernel {kernel} larger than padded input {x}")
    return (x[0], w[0], h, wd)
