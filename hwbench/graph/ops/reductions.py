"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp on the backends' ``reduce``.

``axes`` is an attribute before opset 18 (13 for ReduceSum) and an optional input from
then on; that input is read on the host and must be a constant (an initializer, or
folded to one), since output shapes are resolved statically."""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.kernels import reductions_reference
from hwbench.kernels.spec.reductions import REDUCE_FLOPS, REDUCE_OPS

KERNEL_OP = {onnx: op for op, onnx in REDUCE_OPS.items()}


def _axes_from(node: Node, value) -> tuple[int, ...] | None:
    """The node's axes: its input's value (from the host) or its attribute; None: unset."""
    if value is not None:
        return tuple(int(a) for a in np.asarray(value).reshape(-1))
    axes = node.attrs.get("axes")
    return None if axes is None else tuple(int(a) for a in axes)


def _graph_axes(node: Node, graph: Graph) -> tuple[int, ...] | None:
    if len(node.inputs) > 1 and node.inputs[1]:
        value = graph.initializers.get(node.inputs[1])
        if value is None:
            raise UnsupportedError(f"{node.label()}: its axes input must be a constant "
                                   f"(output shapes are resolved before running)")
        return _axes_from(node, value)
    return _axes_from(node, None)


def _resolve(node: Node, shape: Shape, axes: tuple[int, ...] | None) -> tuple[int, ...]:
    rank = len(shape)
    noop = bool(node.attrs.get("noop_with_empty_axes", 0))
    if not axes:
        return () if noop else tuple(range(rank))
    for a in axes:
        if not -rank <= a < rank:
            raise ArgumentError(f"{node.label()}: axis {a} out of range for {shape}")
    return tuple(sorted({a % rank for a in axes}))


def _reduce_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    axes = _resolve(node, x, _graph_axes(node, graph))
    if node.attrs.get("keepdims", 1):
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _run_reduce(be, x, s: Step):
    axes = _resolve(s.node, s.in_shapes[0], _axes_from(s.node, x[1] if len(x) > 1 else None))
    noop = bool(s.node.attrs.get("noop_with_empty_axes", 0))
    return be.reduce(x[0], KERNEL_OP[s.node.op_type], axes,
                     keepdims=bool(s.node.attrs.get("keepdims", 1)),
                     noop_with_empty_axes=noop and not axes)


def _host_reduce(node: Node, args, opset: int):
    x = np.asarray(args[0])
    axes = _resolve(node, x.shape, _axes_from(node, args[1] if len(args) > 1 else None))
    if not axes:
        return [x.copy()]
    out = reductions_reference.reduce(x, KERNEL_OP[node.op_type], axes,
                                      keepdims=bool(node.attrs.get("keepdims", 1)))
    return [np.asarray(out, dtype=x.dtype)]


def _reduce_flops(node: Node, ins) -> int:
    return REDUCE_FLOPS.get(KERNEL_OP[node.op_type], 1) * math.prod(ins[0])


DEFS = tuple(
    OpDef(onnx, shape=_reduce_shape, run=_run_reduce, kernels=("reduce",), host_inputs=(1,),
          host=_host_reduce, flops=_reduce_flops)
    for onnx in REDUCE_OPS.values())
