"""Normalization: LRN runs on backends; BatchNormalization is folded away by
``passes.fold_batchnorm`` (into the Conv before it, else a per-channel Mul + Add)."""

from __future__ import annotations

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step


def _lrn_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    if len(shapes[0]) != 4:
        raise UnsupportedError(f"{node.label()}: only NCHW inputs are supported, "
                               f"got {shapes[0]}")
    return [shapes[0]]


def _run_lrn(be, x, s: Step):
    a = s.node.attrs
    return be.lrn(x[0], int(a["size"]), alpha=float(a.get("alpha", 1e-4)),
                  beta=float(a.get("beta", 0.75)), bias=float(a.get("bias", 1.0)))


def _batchnorm_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    if len(x) < 2 or any(s != (x[1],) for s in shapes[1:5]):
        raise ArgumentError(f"{node.label()}: input {x} with parameters {shapes[1:5]}")
    if node.attrs.get("spatial", 1) != 1:
        raise UnsupportedError(f"{node.label()}: spatial=0 is not supported")
    return [x]


DEFS = (
    OpDef("LRN", shape=_lrn_shape, run=_run_lrn, kernels=("lrn",)),
    OpDef("BatchNormalization", shape=_batchnorm_shape, lowered_by="fold_batchnorm"),
)
