"""Ops that exported models use for shape and mask arithmetic, evaluated on the host
when their inputs are constants (constant folding, once the model's dims are fixed):
Size, Range, Expand, Slice, Trilu, Not, And, Or, Floor, Ceil. Expand and Slice also have shape
rules (their shape/index inputs must be constants); none of these runs on a backend yet,
so one left reading a run-time tensor is refused by name. (Neg is left to the unary
family: the registry's tests and docs use it as the example of an op not defined yet.)"""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.binary import on_constants
from hwbench.graph.ops.limits import MAX_FOLDED_BYTES
from hwbench.graph.ops.opdef import OpDef, Shape

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


def _expand_target(node: Node, x_shape: Shape, target) -> Shape:
    target = tuple(int(d) for d in np.asarray(target).ravel())
    try:
        return tuple(np.broadcast_shapes(tuple(x_shape), target))
    except ValueError:
        raise ArgumentError(f"{node.label()}: input shape {tuple(x_shape)} does not "
                            f"broadcast to {target}") from None


def _expand(node, args, opset):
    x = np.asarray(args[0])
    shape = _expand_target(node, x.shape, args[1])
    _refuse_large(node, shape, x.itemsize)
    return [np.array(np.broadcast_to(x, shape))]


def _constant_input(node: Node, graph: Graph, index: int, what: str):
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    value = graph.initializers.get(node.inputs[index])
    if value is None:
        raise ArgumentError(f"{node.label()}: {what} must be a constant")
    return value


def _expand_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [_expand_target(node, shapes[0], _constant_input(node, graph, 1, "the shape"))]


def _slices(node: Node, rank: int, starts, ends, axes, steps) -> tuple[slice, ...]:
    """ONNX Slice's starts/ends/axes/steps as Python slices (which clamp the same way)."""
    starts = [int(s) for s in np.asarray(starts).ravel()]
    ends = [int(e) for e in np.asarray(ends).ravel()]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in
                                                          np.asarray(axes).ravel()]
    steps = [1] * len(starts) if steps is None else [int(s) for s in np.asarray(steps).ravel()]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ArgumentError(f"{node.label()}: starts, ends, axes and steps differ in length")
    out = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if not -rank <= axis < rank:
            raise ArgumentError(f"{node.label()}: axis {axis} out of range for rank {rank}")
        if step == 0:
            raise ArgumentError(f"{node.label()}: step 0 on axis {axis}")
        out[axis % rank] = slice(start, end, step)
    return tuple(out)


def _slice_args(node: Node, opset: int, values: list) -> tuple:
    """(starts, ends, axes, steps): attributes before opset 10, inputs from 10 on."""
    if opset < 10:
        a = node.attrs
        return a["starts"], a["ends"], a.get("axes"), None
    values = list(values) + [None] * (5 - len(values))
    return values[1], values[2], values[3], values[4]


def _slice(node, args, opset):
    x = np.asarray(args[0])
    return [np.array(x[_slices(node, x.ndim, *_slice_args(node, opset, args))])]


def _slice_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    values = [None] + [_constant_input(node, graph, i, "every index input")
                       for i in range(1, len(node.inputs))]
    view = np.broadcast_to(np.zeros((), np.float32), shapes[0])  # no memory: shapes only
    return [view[_slices(node, view.ndim, *_slice_args(node, graph.opset, values))].shape]


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
    OpDef("Expand", shape=_expand_shape, host=_expand),
    OpDef("Slice", shape=_slice_shape, host=_slice),
    OpDef("Trilu", host=_trilu),
    OpDef("Not", host=_unary(np.logical_not)),
    OpDef("And", host=_logical(np.logical_and)),
    OpDef("Or", host=_logical(np.logical_or)),
    OpDef("Floor", host=_unary(np.floor)),
    OpDef("Ceil", host=_unary(np.ceil)),
)
