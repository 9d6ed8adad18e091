"""Ops that exported models use for shape and mask arithmetic, evaluated on the host
when their inputs are constants (constant folding, once the model's dims are fixed):
Size, Range, Trilu, Not, And, Or. None of these runs on a backend yet, so one left reading
a run-time tensor is refused by name. (Slice, Expand, Gather, Squeeze and Unsqueeze fold
and run: ``tensor_ops``; Floor and Ceil: ``unary``.)"""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Node
from hwbench.graph.ops.binary import on_constants
from hwbench.graph.ops.limits import MAX_FOLDED_BYTES
from hwbench.graph.ops.opdef import OpDef

INT64_MAX = np.iinfo(np.int64).max


def _refuse_large(node: Node, shape: tuple[int, ...], itemsize: int) -> None:
    if any(d < 0 for d in shape) or math.prod(shape) * itemsize > MAX_FOLDED_BYTES:
        raise ArgumentError(f"{node.label()}: refusing to build a constant of shape {shape}")


def _size(node, args, opset):
    return [np.asarray(np.asarray(args[0]).size, np.int64)]


def _scalar(value, name: str, node: Node):
    value = np.asarray(value)
    if value.size != 1:
        raise ArgumentError(f"{node.label()}: input {name!r} must be a scalar, got shape "
                            f"{value.shape}")
    return value.reshape(())


def _range(node, args, opset):
    start, limit, delta = (_scalar(a, n, node) for a, n in
                           zip(args, ("start", "limit", "delta"), strict=True))
    if delta == 0:
        raise ArgumentError(f"{node.label()}: delta is 0")
    count = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    _refuse_large(node, (count,), start.itemsize)
    # ONNX: start + i * delta, in the inputs' type
    return [(start + np.arange(count, dtype=start.dtype) * delta).astype(start.dtype)]


def _trilu(node, args, opset):
    """ONNX Trilu: the upper (default) or lower triangle of the last two axes, from
    diagonal k (input 1, default 0)."""
    x = np.asarray(args[0])
    if x.ndim < 2:
        raise ArgumentError(f"{node.label()}: input must have rank >= 2, got {x.shape}")
    k = 0 if len(args) < 2 or args[1] is None else int(_scalar(args[1], "k", node))
    return [np.triu(x, k) if node.attrs.get("upper", 1) else np.tril(x, k)]


def _unary(fn):
    return lambda node, args, opset: [fn(np.asarray(args[0]))]


def _logical(fn):
    return on_constants(lambda node, a, b: fn(a, b))


DEFS = (
    OpDef("Size", host=_size, static_shape_host=True),
    OpDef("Range", host=_range),
    OpDef("Trilu", host=_trilu),
    OpDef("Not", host=_unary(np.logical_not)),
    OpDef("And", host=_logical(np.logical_and)),
    OpDef("Or", host=_logical(np.logical_or)),
)
