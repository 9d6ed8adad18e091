"""Ops that move or view values without arithmetic: Identity, Dropout, Reshape, Flatten,
Transpose, Concat (Squeeze, Unsqueeze and the run-time data movement: ``tensor_ops``)."""

from __future__ import annotations

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape
from hwbench.graph.ops.shapes import (
    flatten_shape,
    reshape_target,
    resolve_reshape,
    same_shape,
    transpose_perm,
)


def _reshape_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [resolve_reshape(shapes[0], reshape_target(node, graph),
                            bool(node.attrs.get("allowzero", 0)), node.label())]


def _host_reshape(node, args, opset):
    target = args[1] if len(args) > 1 else np.asarray(node.attrs["shape"])
    return [args[0].reshape(resolve_reshape(args[0].shape, target,
                                            bool(node.attrs.get("allowzero", 0)), node.label()))]


def _flatten_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [flatten_shape(shapes[0], node.attrs.get("axis", 1))]


def _transpose_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    perm = transpose_perm(node, len(shapes[0]))
    return [tuple(shapes[0][p] for p in perm)]


def _concat_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    rank = len(shapes[0])
    axis = node.attrs["axis"]
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(s) != rank for s in shapes):
        raise ArgumentError(f"{node.label()}: axis {node.attrs['axis']} / ranks of {shapes}")
    rest = {s[:axis] + s[axis + 1:] for s in shapes}
    if len(rest) != 1:
        raise ArgumentError(f"{node.label()}: shapes {shapes} differ outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [tuple(out)]


def _reshape_on_device(be, x, s):
    return be.reshape(x[0], s.out_shapes[0])


DEFS = (
    OpDef("Identity", shape=same_shape, host=lambda n, a, o: [a[0]],
          run=lambda be, x, s: x[0], output_itemsize=0, in_types={}),
    OpDef("Dropout", shape=same_shape, lowered_by="remove_dropout"),
    # Reshape's target is resolved statically (shape inference): it stays on the host.
    OpDef("Reshape", shape=_reshape_shape, host=_host_reshape, run=_reshape_on_device,
          kernels=("reshape",), host_inputs=(1,), output_itemsize=0),
    OpDef("Flatten", shape=_flatten_shape, run=_reshape_on_device, kernels=("reshape",),
          host=lambda n, a, o: [a[0].reshape(flatten_shape(a[0].shape,
                                                           n.attrs.get("axis", 1)))],
          output_itemsize=0),
    OpDef("Transpose", shape=_transpose_shape,
          host=lambda n, a, o: [np.transpose(a[0], transpose_perm(n, a[0].ndim))],
          run=lambda be, x, s: be.transpose(x[0], transpose_perm(s.node, len(s.in_shapes[0]))),
          kernels=("transpose",)),
    OpDef("Concat", shape=_concat_shape,
          host=lambda n, a, o: [np.concatenate(a, axis=n.attrs["axis"])],
          run=lambda be, x, s: be.concat(list(x), axis=s.node.attrs["axis"]
                                         % len(s.in_shapes[0])),
          kernels=("concat",), same_types=0),
)
