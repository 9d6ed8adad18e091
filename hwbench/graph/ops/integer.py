"""Integer and bool ops at run time: Not, And, Or, Xor (bool), CumSum (float32, int32,
int64; axis a constant), ArgMax and ArgMin (int64 indices), on the backends'
``int_binary``/``int_unary``/``cumsum``/``arg_reduce`` kernels; each also folds on
constants. Add, Sub, Mul, Div, Mod, Max, Min, Neg and Abs take int32/int64 through the
same kernels (``run_integer`` below is how their runs choose), and the comparisons and
Where take integers through ``compare``/``where``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.binary import on_constants
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.shapes import broadcast_shape, same_shape
from hwbench.graph.ops.types import BOOL, NUMBERS, const_type
from hwbench.kernels import integer_reference


def _axis(node: Node, value: Any) -> int:
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "iu":
        raise ArgumentError(f"{node.label()}: input 'axis' must be one integer, got "
                            f"{array.dtype} of shape {array.shape}")
    return int(array.reshape(()))


def _cumsum_args(node: Node, x: Any, axis: Any) -> tuple[int, bool, bool]:
    ax = _axis(node, axis)
    rank = len(np.shape(x)) if not hasattr(x, "ndim") else x.ndim
    if not -rank <= ax < rank:
        raise ArgumentError(f"{node.label()}: axis {ax} is out of range for rank {rank}")
    return (ax % rank, bool(node.attrs.get("exclusive", 0)),
            bool(node.attrs.get("reverse", 0)))


def _cumsum_host(node, args, opset):
    x = np.asarray(args[0])
    axis, exclusive, reverse = _cumsum_args(node, x, args[1])
    return [integer_reference.cumsum(x, axis, exclusive, reverse)]


def _run_cumsum(be, x, s: Step):
    axis = x[1]
    if not isinstance(axis, (np.ndarray, np.generic, int)):  # a device copy: one value
        axis = be.to_numpy(axis)
    axis, exclusive, reverse = _cumsum_args(s.node, np.empty(s.in_shapes[0]), axis)
    return be.cumsum(x[0], axis, exclusive, reverse)


def _arg_attrs(node: Node, rank: int) -> tuple[int, bool, bool]:
    axis = int(node.attrs.get("axis", 0))
    if not -rank <= axis < rank:
        raise ArgumentError(f"{node.label()}: axis {axis} is out of range for rank {rank}")
    return (axis % rank, bool(node.attrs.get("keepdims", 1)),
            bool(node.attrs.get("select_last_index", 0)))


def _arg_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    axis, keepdims, _ = _arg_attrs(node, len(shapes[0]))
    s = list(shapes[0])
    if keepdims:
        s[axis] = 1
    else:
        del s[axis]
    return [tuple(s)]


def _arg_host(node, args, opset):
    x = np.asarray(args[0])
    axis, keepdims, last = _arg_attrs(node, x.ndim)
    return [integer_reference.arg_reduce(x, axis, keepdims, last, node.op_type.lower())]


def _run_arg(be, x, s: Step):
    axis, keepdims, last = _arg_attrs(s.node, len(s.in_shapes[0]))
    return be.arg_reduce(x[0], axis, keepdims, last, s.node.op_type.lower())


def _elements(node: Node, ins: list) -> int:
    return math.prod(np.broadcast_shapes(*[tuple(s) for s in ins if s is not None]))


def _logical(name: str) -> OpDef:
    fn = getattr(np, f"logical_{name.lower()}")
    return OpDef(name, shape=broadcast_shape, host=on_constants(lambda n, a, b: fn(a, b)),
                 run=lambda be, x, s: be.int_binary(x[0], x[1], name.lower()),
                 kernels=("int_binary",), flops=_elements, output_itemsize=1,
                 out_types=const_type(BOOL), in_types=(BOOL,), same_types=0)


DEFS = (
    OpDef("Not", shape=same_shape, host=lambda n, a, o: [np.logical_not(np.asarray(a[0]))],
          run=lambda be, x, s: be.int_unary(x[0], "not"), kernels=("int_unary",),
          flops=lambda n, ins: math.prod(ins[0]), output_itemsize=1,
          out_types=const_type(BOOL), in_types=(BOOL,)),
    _logical("And"),
    _logical("Or"),
    _logical("Xor"),
    OpDef("CumSum", shape=same_shape, host=_cumsum_host, run=_run_cumsum,
          kernels=("cumsum",), host_inputs=(1,), flops=lambda n, ins: math.prod(ins[0]),
          in_types=NUMBERS),
    OpDef("ArgMax", shape=_arg_shape, host=_arg_host, run=_run_arg, kernels=("arg_reduce",),
          flops=lambda n, ins: math.prod(ins[0]), output_itemsize=8,
          out_types=const_type(np.int64), in_types=NUMBERS),
    OpDef("ArgMin", shape=_arg_shape, host=_arg_host, run=_run_arg, kernels=("arg_reduce",),
          flops=lambda n, ins: math.prod(ins[0]), output_itemsize=8,
          out_types=const_type(np.int64), in_types=NUMBERS),
)
