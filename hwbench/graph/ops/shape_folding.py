"""Ops that exported models use for shape and mask arithmetic, evaluated on the host
when their inputs are constants (constant folding, once the model's dims are fixed):
Size, Range, Trilu, ScatterND (Swin's shifted-window mask is built by
index assignment), Einsum (``torch.outer`` of positions and frequencies: rotary tables).
None of these runs on a backend yet, so one left reading
a run-time tensor is refused by name. (Slice, Expand, Gather, Squeeze and Unsqueeze fold
and run: ``tensor_ops``; Floor and Ceil: ``unary``; Not, And, Or: ``integer``.)"""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Node
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


_SCATTER_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum,
                       "min": np.minimum}


def _scatter_nd(node, args, opset):
    """ONNX ScatterND: ``data`` with the slices at ``indices`` (last axis: a position in
    ``data``'s leading axes) replaced by ``updates`` (or combined, ``reduction``)."""
    data, indices, updates = (np.asarray(a) for a in args[:3])
    if indices.dtype.kind not in "iu" or indices.ndim < 1:
        raise ArgumentError(f"{node.label()}: indices must be an integer array of rank >= 1")
    k = indices.shape[-1]
    if k > data.ndim or updates.shape != indices.shape[:-1] + data.shape[k:]:
        raise ArgumentError(f"{node.label()}: updates of shape {updates.shape} do not fit "
                            f"indices {indices.shape} into data {data.shape}")
    out = data.copy()
    reduction = node.attrs.get("reduction", "none")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    combine = _SCATTER_REDUCTIONS.get(reduction)
    if reduction != "none" and combine is None:
        raise ArgumentError(f"{node.label()}: unknown reduction {reduction!r}")
    flat_idx = indices.reshape(-1, k).astype(np.int64)
    flat_upd = updates.reshape((-1,) + data.shape[k:])
    for pos, update in zip(flat_idx, flat_upd, strict=True):
        if np.any(pos < -np.asarray(data.shape[:k])) or np.any(pos >= data.shape[:k]):
            raise ArgumentError(f"{node.label()}: index {tuple(pos)} is out of range for "
                                f"data of shape {data.shape}")
        where = tuple(int(i) for i in pos)
        out[where] = update if combine is None else combine(out[where], update)
    return [out]


def _einsum(node, args, opset):
    equation = node.attrs["equation"]
    equation = equation.decode() if isinstance(equation, bytes) else equation
    out = np.einsum(equation.replace(" ", ""), *(np.asarray(a) for a in args))
    return [np.asarray(out, dtype=np.result_type(*args))]


DEFS = (
    OpDef("Size", host=_size, static_shape_host=True),
    OpDef("Range", host=_range),
    OpDef("Trilu", host=_trilu),
    OpDef("ScatterND", host=_scatter_nd),
    OpDef("Einsum", host=_einsum),
)
