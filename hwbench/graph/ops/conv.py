"""Convolution: ONNX's Conv, and hwbench's FusedConv (Conv + residual Add + an activation of
``spec.ACTIVATIONS``, made by ``passes.fuse_conv_epilogues``)."""

from __future__ import annotations

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import FUSED_CONV, FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.counting import conv_flops
from hwbench.graph.ops.opdef import Int8Weights, OpDef, Shape, Step
from hwbench.graph.ops.shapes import conv_output_shape, conv_params


def conv_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x, w = shapes[0], shapes[1]
    if len(w) != 4:
        raise UnsupportedError(f"{node.label()}: only 2-D convolutions are supported, "
                               f"weight shape {w}")
    groups = node.attrs.get("group", 1)
    if len(x) != 4 or x[1] != w[1] * groups or w[0] % groups:
        raise ArgumentError(f"{node.label()}: input {x} and weight {w} do not match "
                            f"with group={groups}")
    if len(shapes) > 2 and shapes[2] != (w[0],):
        raise ArgumentError(f"{node.label()}: bias shape {shapes[2]}, expected {(w[0],)}")
    return [conv_output_shape(node, x, w)]


def _fused_conv_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    """Inputs (x, w, bias or "", residual or ""); ``shapes`` holds only the named ones."""
    has_bias = bool(node.inputs[2])
    out = conv_shape(node, shapes[:3 if has_bias else 2], graph)
    if len(node.inputs) > 3 and node.inputs[3] and shapes[-1] != out[0]:
        raise ArgumentError(f"{node.label()}: residual shape {shapes[-1]}, expected {out[0]}")
    return out


def _conv_args(s: Step) -> dict:
    kernel = tuple(s.node.attrs.get("kernel_shape", None) or s.in_shapes[1][2:])
    return conv_params(s.node, s.in_shapes[0], kernel)


def _run_conv(be, x, s: Step):
    bias = x[2] if len(x) > 2 else None
    return be.conv2d(x[0], x[1], bias, groups=s.node.attrs.get("group", 1), **_conv_args(s))


def _run_fused_conv(be, x, s: Step):
    return be.conv2d(x[0], x[1], x[2], groups=s.node.attrs.get("group", 1),
                     residual=x[3] if len(x) > 3 else None,
                     activation=s.node.attrs.get("activation", None), **_conv_args(s))


def _conv_int8(graph: Graph, node: Node) -> Int8Weights | None:
    """A Conv with constant weights becomes a QLinearConv (its bias too, if constant)."""
    if node.inputs[1] not in graph.initializers:
        return None
    bias = graph.initializers.get(node.inputs[2]) if len(node.inputs) > 2 else None
    return Int8Weights(graph.initializers[node.inputs[1]].astype(np.float32), bias,
                       dict(node.attrs), as_1x1=False)


DEFS = (
    OpDef("Conv", shape=conv_shape, run=_run_conv, kernels=("conv2d",), int8=_conv_int8,
          flops=conv_flops(1)),
    OpDef(FUSED_CONV, domain=FUSED_DOMAIN, shape=_fused_conv_shape, run=_run_fused_conv,
          kernels=("conv2d", "add", "relu"), flops=conv_flops(1)),
)
