"""FLOP counts of the ops that do a model's arithmetic, counted as the kernels count them
(``hwbench.kernels.spec``): a multiply-add is 2 FLOPs; integer ops count alike."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from hwbench.graph.ir import Node
from hwbench.kernels import spec


def _shaped(shape: tuple[int, ...]) -> SimpleNamespace:
    return SimpleNamespace(shape=tuple(shape), dtype=np.float32)


def conv_flops(weight_input: int):
    """FLOP count of a convolution whose weights are input ``weight_input``."""
    def count(node: Node, ins: list[Any]) -> int:
        w = ins[weight_input]
        attrs = node.attrs
        stride = tuple(attrs.get("strides", (1, 1)))
        dilation = tuple(attrs.get("dilations", (1, 1)))
        auto_pad = attrs.get("auto_pad", "NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        pads = spec.onnx_conv_padding(auto_pad, attrs.get("pads"), ins[0][2:], w[2:],
                                      stride, dilation)
        return spec.check_conv2d(_shaped(ins[0]), _shaped(w), None, stride, pads, dilation,
                                 attrs.get("group", 1)).flops
    return count


def gemm_flops(node: Node, ins: list[Any]) -> int:
    """Gemm/MatMul (2-D): the bias is left out."""
    trans_a = bool(node.attrs.get("transA", 0))
    trans_b = bool(node.attrs.get("transB", 0))
    return spec.check_gemm(_shaped(ins[0]), _shaped(ins[1]), None, trans_a, trans_b).flops


def matmul_flops(b_input: int):
    """FLOP count of an N-D integer matrix product whose right operand is ``b_input``."""
    def count(node: Node, ins: list[Any]) -> int:
        return 2 * int(np.prod(ins[0])) * int(ins[b_input][-1])
    return count
