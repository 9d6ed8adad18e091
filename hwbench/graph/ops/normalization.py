"""Normalization: LRN and LayerNormalization run on backends; BatchNormalization is folded
away by ``passes.fold_batchnorm`` (into the Conv before it, else a per-channel Mul + Add)."""

from __future__ import annotations

import math

import numpy as np

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


def _layer_norm_axis(node: Node, rank: int) -> int:
    axis = int(node.attrs.get("axis", -1))
    if not -rank <= axis < rank:
        raise ArgumentError(f"{node.label()}: axis {axis} out of range for rank {rank}")
    if int(node.attrs.get("stash_type", 1)) != 1:
        raise UnsupportedError(f"{node.label()}: stash_type "
                               f"{node.attrs['stash_type']} (only 1, float32 statistics)")
    return axis % rank


def _layer_norm_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    axis = _layer_norm_axis(node, len(x))
    normalized = x[axis:]
    for name, s in zip(("Scale", "B"), shapes[1:], strict=False):
        if s[max(len(s) - len(normalized), 0):] != normalized or len(s) < len(normalized) \
                or any(d != 1 for d in s[:len(s) - len(normalized)]):
            raise UnsupportedError(f"{node.label()}: {name} of shape {s} (hwbench takes "
                                   f"the normalized shape {normalized})")
    stats = x[:axis] + (1,) * (len(x) - axis)
    return [x, stats, stats][:len(node.outputs)]


def _run_layer_norm(be, x, s: Step):
    node = s.node
    stats = any(node.outputs[1:])  # Mean / InvStdDev read by someone
    return be.layer_norm(x[0], x[1], x[2] if len(x) > 2 else None,
                         axis=_layer_norm_axis(node, len(s.in_shapes[0])),
                         epsilon=float(node.attrs.get("epsilon", 1e-5)), stats=stats)


def _layer_norm_flops(node: Node, ins) -> int:
    return 8 * math.prod(ins[0])


def _instance_norm_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    if len(x) < 3 or any(s != (x[1],) for s in shapes[1:3]):
        raise ArgumentError(f"{node.label()}: input {x} with scale/bias {shapes[1:3]} "
                            f"(expected (N, C, D1, ...) and (C,) each)")
    return [x]


def instance_norm(be, x, scale, bias, shape: Shape, epsilon: float):
    """InstanceNormalization on the backend's kernels: each (n, c) image normalized as a
    row of ``layer_norm`` (unit scale), then scaled and shifted per channel."""
    n, c = shape[0], shape[1]
    spatial = math.prod(shape[2:])
    rows = be.reshape(x, (n * c, spatial))
    normalized = be.layer_norm(rows, np.ones(spatial, np.float32), None, axis=1,
                               epsilon=epsilon)
    per_channel = (c,) + (1,) * (len(shape) - 2)
    y = be.mul(be.reshape(normalized, shape), be.reshape(scale, per_channel))
    return be.add(y, be.reshape(bias, per_channel))


def _run_instance_norm(be, x, s: Step):
    return instance_norm(be, x[0], x[1], x[2], s.in_shapes[0],
                         float(s.node.attrs.get("epsilon", 1e-5)))


DEFS = (
    OpDef("InstanceNormalization", shape=_instance_norm_shape, run=_run_instance_norm,
          kernels=("layer_norm", "reshape", "mul", "add"), flops=_layer_norm_flops),
    OpDef("LayerNormalization", shape=_layer_norm_shape, run=_run_layer_norm,
          kernels=("layer_norm",), flops=_layer_norm_flops),
    OpDef("LRN", shape=_lrn_shape, run=_run_lrn, kernels=("lrn",)),
    OpDef("BatchNormalization", shape=_batchnorm_shape, lowered_by="fold_batchnorm"),
)
