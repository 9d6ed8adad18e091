"""Activations: Relu, Sigmoid, Softmax."""

from __future__ import annotations

import math

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.shapes import same_shape


def _softmax_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    rank = len(shapes[0])
    axis = node.attrs.get("axis", 1 if graph.opset < 13 else -1)
    if not -rank <= axis < rank:
        raise ArgumentError(f"{node.label()}: axis {axis} out of range for {shapes[0]}")
    return [shapes[0]]


def _run_softmax(be, x, s: Step):
    shape = s.in_shapes[0]
    rank = len(shape)
    if s.opset >= 13:
        return be.softmax(x[0], axis=s.node.attrs.get("axis", -1) % rank)
    # Before opset 13, Softmax flattens its input to 2-D at `axis` (default 1) and
    # normalizes each row: the same as softmax over the last axis of that 2-D view.
    axis = s.node.attrs.get("axis", 1) % rank
    rows = math.prod(shape[:axis])
    if all(d == 1 for d in shape[axis + 1:]):  # the 2-D view's rows are the axis itself
        return be.softmax(x[0], axis=axis)  # (a classifier's [N, 1000, 1, 1]): one kernel
    flat = be.reshape(x[0], (rows, math.prod(shape[axis:])))
    return be.reshape(be.softmax(flat, axis=1), shape)


DEFS = (
    OpDef("Relu", shape=same_shape, run=lambda be, x, s: be.relu(x[0]), kernels=("relu",)),
    OpDef("Sigmoid", shape=same_shape, run=lambda be, x, s: be.sigmoid(x[0]),
          kernels=("sigmoid",)),
    OpDef("Softmax", shape=_softmax_shape, run=_run_softmax, kernels=("softmax", "reshape")),
)
