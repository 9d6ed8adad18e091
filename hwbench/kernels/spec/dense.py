"""float32 GEMM, convolution and elementwise ops: their problems and ``check_*``, plus
ONNX's ``auto_pad`` padding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.kernels.spec.activations import ACTIVATIONS
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    array_shape,
    check_dtype,
    check_rank,
    int_pair,
    normalize_padding,
)


@dataclass(frozen=True)
class GemmProblem:
    """``C[m, n] = op(A) @ op(B) (+ bias)``; op(A) is m×k."""

    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False
    bias_shape: tuple[int, ...] | None = None
    dtype: str = "float32"

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k + (self.m * self.n if self.bias_shape else 0)

    @property
    def output_bytes(self) -> int:
        """Bytes of the result a kernel allocates (what ``Backend._reserve`` checks)."""
        return 4 * self.m * self.n  # float32 or int32 results

    @property
    def bytes(self) -> int:
        item = np.dtype(self.dtype).itemsize
        out_item = 4  # float32 or int32 accumulators
        return item * (self.m * self.k + self.k * self.n) + out_item * self.m * self.n


@dataclass(frozen=True)
class ConvProblem:
    """ONNX Conv on NCHW input and OIHW weights."""

    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    has_bias: bool = False

    @property
    def out_h(self) -> int:
        span = self.dilation[0] * (self.r - 1) + 1
        return (self.h + self.padding[0] + self.padding[2] - span) // self.stride[0] + 1

    @property
    def out_w(self) -> int:
        span = self.dilation[1] * (self.s - 1) + 1
        return (self.w + self.padding[1] + self.padding[3] - span) // self.stride[1] + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.k, self.c // self.groups, self.r, self.s)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.k, self.out_h, self.out_w)

    @property
    def flops(self) -> int:
        macs = self.n * self.k * self.out_h * self.out_w * (self.c // self.groups) * self.r * self.s
        return 2 * macs + (self.n * self.k * self.out_h * self.out_w if self.has_bias else 0)

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.n * self.k * self.out_h * self.out_w

    @property
    def bytes(self) -> int:
        weights = self.k * (self.c // self.groups) * self.r * self.s
        elems = self.n * self.c * self.h * self.w + weights
        return 4 * (elems + self.n * self.k * self.out_h * self.out_w)


@dataclass(frozen=True)
class ElementwiseProblem:
    """An elementwise op over ``size`` float32 values, reading ``inputs`` arrays."""

    shape: tuple[int, ...]
    inputs: int = 1
    flops_per_element: int = 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return self.flops_per_element * self.size

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 4 * self.size * (self.inputs + 1)


def check_gemm(a: Any, b: Any, bias: Any = None, trans_a: bool = False,
               trans_b: bool = False) -> GemmProblem:
    """Validate a float32 GEMM call; ``bias`` broadcasts to (m, n) like ONNX Gemm's C."""
    op = "gemm"
    sa, sb = array_shape(a, "a", op), array_shape(b, "b", op)
    check_rank(sa, 2, "a", op)
    check_rank(sb, 2, "b", op)
    check_dtype(a, (FLOAT32,), "a", op)
    check_dtype(b, (FLOAT32,), "b", op)
    for flag, name in ((trans_a, "trans_a"), (trans_b, "trans_b")):
        if not isinstance(flag, (bool, np.bool_)):
            raise ArgumentError(f"{op}: argument '{name}' must be a bool, got {flag!r}")
    m, k = (sa[1], sa[0]) if trans_a else sa
    kb, n = (sb[1], sb[0]) if trans_b else sb
    if k != kb:
        raise ArgumentError(
            f"{op}: inner dimensions differ: op(a) has shape {(m, k)} and op(b) {(kb, n)} "
            f"(a.shape={sa}, trans_a={trans_a}, b.shape={sb}, trans_b={trans_b})"
        )
    bias_shape = None
    if bias is not None:
        bias_shape = array_shape(bias, "bias", op)
        check_dtype(bias, (FLOAT32,), "bias", op)
        if not _broadcasts(bias_shape, (m, n)):
            raise ArgumentError(
                f"{op}: argument 'bias' of shape {bias_shape} does not broadcast to {(m, n)}"
            )
    return GemmProblem(m, n, k, bool(trans_a), bool(trans_b), bias_shape)


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False))


def check_conv2d(x: Any, w: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1) -> ConvProblem:
    """Validate an NCHW/OIHW float32 convolution with ONNX Conv semantics."""
    op = "conv2d"
    array_shape(x, "x", op), array_shape(w, "w", op)  # arrays at all, before their dtypes
    check_dtype(x, (FLOAT32,), "x", op)
    check_dtype(w, (FLOAT32,), "w", op)
    if bias is not None:
        check_dtype(bias, (FLOAT32,), "bias", op)
    return conv_problem(x, w, bias, stride, padding, dilation, groups, op)


def conv_problem(x: Any, w: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                 groups: Any, op: str) -> ConvProblem:
    """The shape rules every convolution shares (float or integer; dtypes checked by the
    caller): ranks, groups, channels, bias length, and an output of at least 1×1."""
    sx, sw = array_shape(x, "x", op), array_shape(w, "w", op)
    check_rank(sx, 4, "x", op)
    check_rank(sw, 4, "w", op)
    strides = int_pair(stride, "stride", op, minimum=1)
    dilations = int_pair(dilation, "dilation", op, minimum=1)
    pads = normalize_padding(padding, op)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"{op}: argument 'groups' must be a positive int, got {groups!r}")
    n, c, h, wd = sx
    k, cg, r, s = sw
    if c % groups or k % groups:
        raise ArgumentError(
            f"{op}: groups={groups} must divide x's channels ({c}) and w's filters ({k})"
        )
    if cg != c // groups:
        raise ArgumentError(
            f"{op}: argument 'w' has {cg} input channels per group (shape {sw}); "
            f"x has {c} channels in {groups} group(s), so {c // groups} were expected"
        )
    if bias is not None:
        sbias = array_shape(bias, "bias", op)
        if sbias != (k,):
            raise ArgumentError(f"{op}: argument 'bias' must have shape {(k,)}, got {sbias}")
    problem = ConvProblem(n, c, h, wd, k, r, s, strides, pads, dilations, int(groups),
                          bias is not None)
    if problem.out_h < 1 or problem.out_w < 1:
        raise ArgumentError(
            f"{op}: argument 'w' has a dilated filter {(r, s)} (dilation {dilations}) larger "
            f"than argument 'x' padded: {(h + pads[0] + pads[2], wd + pads[1] + pads[3])}"
        )
    return problem


# Activations a kernel may fuse into its output: ``spec.activations.ACTIVATIONS``.


def check_activation(activation: Any, op: str) -> str | None:
    """None or one of ``ACTIVATIONS``."""
    if activation is not None and (not isinstance(activation, str)
                                   or activation not in ACTIVATIONS):
        raise ArgumentError(f"{op}: argument 'activation' must be None or one of "
                            f"{', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    return activation


def check_conv_epilogue(problem: ConvProblem, residual: Any, activation: Any) -> None:
    """``residual`` (None or a float32 array of exactly the conv's output shape) and
    ``activation`` (None or one of ``ACTIVATIONS``) of a fused ``act(conv(x) + residual)``."""
    op = "conv2d"
    check_activation(activation, op)
    if residual is not None:
        shape = array_shape(residual, "residual", op)
        check_dtype(residual, (FLOAT32,), "residual", op)
        if shape != problem.output_shape:
            raise ArgumentError(f"{op}: argument 'residual' must have the output's shape "
                                f"{problem.output_shape}, got {shape}")


def check_unary(x: Any, name: str, op: str) -> ElementwiseProblem:
    shape = array_shape(x, name, op)
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")
    check_dtype(x, (FLOAT32,), name, op)
    return ElementwiseProblem(shape, inputs=1, flops_per_element=4 if op == "sigmoid" else 1)


def check_sigmoid_backward(y: Any, dy: Any) -> ElementwiseProblem:
    op = "sigmoid_backward"
    problem = check_unary(y, "y", op)
    check_unary(dy, "dy", op)
    if tuple(dy.shape) != problem.shape:
        raise ArgumentError(
            f"{op}: arguments 'y' {problem.shape} and 'dy' {tuple(dy.shape)} must have one shape"
        )
    return ElementwiseProblem(problem.shape, inputs=2, flops_per_element=3)


def onnx_conv_padding(auto_pad: str, pads: tuple[int, ...] | None, in_hw: tuple[int, int],
                      kernel: tuple[int, int], strides: tuple[int, int],
                      dilations: tuple[int, int]) -> tuple[int, int, int, int]:
    """ONNX Conv's ``auto_pad``/``pads`` attributes -> our (h_begin, w_begin, h_end, w_end).

    SAME_UPPER puts the odd padding at the end, SAME_LOWER at the beginning (ONNX spec).
    """
    if auto_pad in ("", "NOTSET"):
        return normalize_padding(tuple(pads) if pads else 0, "Conv")
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ArgumentError(f"Conv: attribute 'auto_pad' has unknown value {auto_pad!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])
