"""The kernel interface's argument contracts, checked once for every backend.

Each ``check_*`` function validates shapes, dtypes, ranks and attribute values the way
NumPy does (naming the argument, its shape and what was expected) and returns a small
frozen *problem* object. Backends receive only validated problems, so no bad size or
pointer ever reaches a native library. FLOP and byte counts live on the problems so that
every report counts work the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.quantization import (
    QUANTIZED_DTYPES,
    FixedPointMultiplier,
    combined_scale,
    int32_accumulation_is_safe,
    quantize_multiplier,
)

FLOAT32 = np.dtype(np.float32)
INT8_DTYPES = QUANTIZED_DTYPES


def _shape(x: Any, name: str, op: str) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        raise ArgumentError(f"{op}: argument '{name}' must be an array, got {type(x).__name__}")
    return tuple(int(d) for d in shape)


def _check_rank(shape: tuple[int, ...], rank: int, name: str, op: str) -> None:
    if len(shape) != rank:
        raise ArgumentError(
            f"{op}: argument '{name}' must have rank {rank}, got shape {shape} (rank {len(shape)})"
        )
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")


def dtype_of(x: Any) -> np.dtype:
    """NumPy dtype of any backend's array (CuPy and NumPy share dtypes; torch spells them
    ``torch.float32``)."""
    try:
        return np.dtype(x.dtype)
    except TypeError:
        return np.dtype(str(x.dtype).rsplit(".", 1)[-1])


def _check_dtype(x: Any, allowed: tuple[np.dtype, ...], name: str, op: str) -> np.dtype:
    if not hasattr(x, "dtype"):  # not an array at all (a str, a list): say so
        _shape(x, name, op)
    try:
        dtype = dtype_of(x)
    except TypeError as exc:  # a ``dtype`` attribute NumPy cannot read (no numeric dtype)
        raise DTypeError(f"{op}: argument '{name}' has no numeric dtype: "
                         f"{getattr(x, 'dtype', None)!r} ({exc})") from exc
    if dtype not in allowed:
        names = " or ".join(str(d) for d in allowed)
        raise DTypeError(f"{op}: argument '{name}' must have dtype {names}, got {dtype}")
    return dtype


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
            raise ArgumentError(f"{op}: argument '{name}' must hold integers, got {value!r}")
        pair = (int(pair[0]), int(pair[1]))
    else:
        raise ArgumentError(
            f"{op}: argument '{name}' must be an int or an (h, w) pair, got {value!r}")
    if min(pair) < minimum:
        raise ArgumentError(f"{op}: argument '{name}' must be >= {minimum}, got {value!r}")
    return pair


def normalize_padding(padding: Any, op: str = "conv2d") -> tuple[int, int, int, int]:
    """int, (h, w) or ONNX's (h_begin, w_begin, h_end, w_end) -> the ONNX 4-tuple."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in padding):
            raise ArgumentError(f"{op}: argument 'padding' must hold integers, got {padding!r}")
        pads = tuple(int(p) for p in padding)
        if min(pads) < 0:
            raise ArgumentError(f"{op}: argument 'padding' must be >= 0, got {padding!r}")
        return pads  # type: ignore[return-value]
    ph, pw = _pair(padding, "padding", op, minimum=0)
    return (ph, pw, ph, pw)


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
    sa, sb = _shape(a, "a", op), _shape(b, "b", op)
    _check_rank(sa, 2, "a", op)
    _check_rank(sb, 2, "b", op)
    _check_dtype(a, (FLOAT32,), "a", op)
    _check_dtype(b, (FLOAT32,), "b", op)
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
        bias_shape = _shape(bias, "bias", op)
        _check_dtype(bias, (FLOAT32,), "bias", op)
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
    _shape(x, "x", op), _shape(w, "w", op)  # arrays at all, before their dtypes
    _check_dtype(x, (FLOAT32,), "x", op)
    _check_dtype(w, (FLOAT32,), "w", op)
    if bias is not None:
        _check_dtype(bias, (FLOAT32,), "bias", op)
    return conv_problem(x, w, bias, stride, padding, dilation, groups, op)


def conv_problem(x: Any, w: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                 groups: Any, op: str) -> ConvProblem:
    """The shape rules every convolution shares (float or integer; dtypes checked by the
    caller): ranks, groups, channels, bias length, and an output of at least 1×1."""
    sx, sw = _shape(x, "x", op), _shape(w, "w", op)
    _check_rank(sx, 4, "x", op)
    _check_rank(sw, 4, "w", op)
    strides = _pair(stride, "stride", op, minimum=1)
    dilations = _pair(dilation, "dilation", op, minimum=1)
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
        sbias = _shape(bias, "bias", op)
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


# Activations a kernel may fuse into its output (``conv2d(..., activation=...)``).
ACTIVATIONS = ("relu",)


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
        shape = _shape(residual, "residual", op)
        _check_dtype(residual, (FLOAT32,), "residual", op)
        if shape != problem.output_shape:
            raise ArgumentError(f"{op}: argument 'residual' must have the output's shape "
                                f"{problem.output_shape}, got {shape}")


def check_unary(x: Any, name: str, op: str) -> ElementwiseProblem:
    shape = _shape(x, name, op)
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")
    _check_dtype(x, (FLOAT32,), name, op)
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


def check_zero_point(zp: Any, dtype: np.dtype, name: str, op: str,
                      length: int, axis_name: str) -> np.ndarray:
    """A zero point is a scalar, or a 1-D array of ``length`` (per row/column), of ``dtype``."""
    zp_arr = np.asarray(zp)
    if isinstance(zp, int) and not isinstance(zp, bool):
        info = np.iinfo(dtype)
        if not info.min <= int(zp) <= info.max:
            raise ArgumentError(
                f"{op}: argument '{name}'={int(zp)} is outside the range of {dtype} "
                f"[{info.min}, {info.max}]"
            )
        return np.asarray(zp, dtype=dtype)
    if not hasattr(zp, "dtype") or zp_arr.dtype != dtype:
        got = getattr(zp, "dtype", type(zp).__name__)
        raise DTypeError(f"{op}: argument '{name}' must be an int or have dtype {dtype}, got {got}")
    if zp_arr.ndim == 0 or zp_arr.shape == (1,):
        return zp_arr.reshape(())
    if zp_arr.shape != (length,):
        raise ArgumentError(
            f"{op}: argument '{name}' must be a scalar or have shape ({length},) "
            f"(one per {axis_name}), got {zp_arr.shape}"
        )
    if np.all(zp_arr == zp_arr[0]):  # uniform (symmetric weights: all 0): one scalar, so
        return zp_arr[0].reshape(())  # backends take their library's scalar-offset path
    return zp_arr


@dataclass(frozen=True)
class Int8GemmProblem(GemmProblem):
    """``(A - za) @ (B - zb)`` with exact int32 accumulation (ONNX MatMulInteger)."""

    a_dtype: str = "uint8"
    b_dtype: str = "int8"

    @property
    def bytes(self) -> int:
        return self.m * self.k + self.k * self.n + 4 * self.m * self.n


def check_gemm_int8(a: Any, b: Any, a_zero_point: Any = 0, b_zero_point: Any = 0,
                    op: str = "gemm_int8") -> tuple[Int8GemmProblem, np.ndarray, np.ndarray]:
    """Validate an int8 GEMM; returns the problem and the zero points as NumPy arrays."""
    sa, sb = _shape(a, "a", op), _shape(b, "b", op)
    _check_rank(sa, 2, "a", op)
    _check_rank(sb, 2, "b", op)
    a_dtype = _check_dtype(a, INT8_DTYPES, "a", op)
    b_dtype = _check_dtype(b, INT8_DTYPES, "b", op)
    m, k = sa
    kb, n = sb
    if k != kb:
        raise ArgumentError(
            f"{op}: inner dimensions differ: a has shape {sa} and b has shape {sb}"
        )
    za = check_zero_point(a_zero_point, a_dtype, "a_zero_point", op, m, "row of a")
    zb = check_zero_point(b_zero_point, b_dtype, "b_zero_point", op, n, "column of b")
    if not int32_accumulation_is_safe(k, a_dtype, za, b_dtype, zb):
        raise ArgumentError(
            f"{op}: K={k} is too long for exact int32 accumulation of {a_dtype} x {b_dtype} "
            "products with these zero points; split K"
        )
    problem = Int8GemmProblem(m, n, k, dtype="int8", a_dtype=str(a_dtype), b_dtype=str(b_dtype))
    return problem, za, zb


def check_scale(scale: Any, name: str, op: str, length: int | None = None) -> np.ndarray:
    """A positive finite float32 scale: scalar, or per column when ``length`` is given."""
    arr = np.asarray(scale)
    if arr.dtype.kind not in "fiu":
        raise DTypeError(f"{op}: argument '{name}' must be a float, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.ndim == 1 and arr.shape == (1,):
        arr = arr.reshape(())
    if arr.ndim != 0 and (length is None or arr.shape != (length,)):
        expect = "a scalar" if length is None else f"a scalar or shape ({length},)"
        raise ArgumentError(f"{op}: argument '{name}' must be {expect}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ArgumentError(f"{op}: argument '{name}' must be finite and > 0, got {arr}")
    return arr


@dataclass(frozen=True)
class Int8ConvProblem(ConvProblem):
    """ONNX ConvInteger (int32 out) or QLinearConv (8-bit out) on 8-bit NCHW/OIHW data."""

    x_dtype: str = "uint8"
    w_dtype: str = "int8"
    out_itemsize: int = 4  # int32 accumulators; 1 once requantized

    @property
    def reduction(self) -> int:
        """K of the lowered GEMM: the taps each output sums."""
        return (self.c // self.groups) * self.r * self.s

    @property
    def bytes(self) -> int:
        weights = self.k * self.reduction
        outputs = self.n * self.k * self.out_h * self.out_w
        return self.n * self.c * self.h * self.w + weights + self.out_itemsize * outputs


def check_conv2d_int8(x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0,
                      stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
                      bias: Any = None, op: str = "conv2d_int8",
                      ) -> tuple[Int8ConvProblem, np.ndarray, np.ndarray]:
    """Validate ONNX ConvInteger: 8-bit x and w, a scalar x zero point, a scalar or
    per-output-channel w zero point; returns the problem and both zero points.

    Rejects (rather than wraps) a reduction long enough to overflow int32. ``bias``
    (int32, QLinearConv's) is only shape-checked here: it is added in int64.
    """
    _shape(x, "x", op), _shape(w, "w", op)  # arrays at all, before their dtypes
    x_dtype = _check_dtype(x, INT8_DTYPES, "x", op)
    w_dtype = _check_dtype(w, INT8_DTYPES, "w", op)
    if bias is not None:
        _check_dtype(bias, (np.dtype(np.int32),), "bias", op)
    base = conv_problem(x, w, bias, stride, padding, dilation, groups, op)
    zx = check_zero_point(x_zero_point, x_dtype, "x_zero_point", op, 1, "tensor")
    zw = check_zero_point(w_zero_point, w_dtype, "w_zero_point", op, base.k,
                          "output channel of w")
    problem = Int8ConvProblem(**vars(base), x_dtype=str(x_dtype), w_dtype=str(w_dtype),
                              out_itemsize=4 if op == "conv2d_int8" else 1)
    if not int32_accumulation_is_safe(problem.reduction, x_dtype, zx, w_dtype, zw):
        raise ArgumentError(
            f"{op}: filters of {problem.reduction} taps are too long for exact int32 "
            f"accumulation of {x_dtype} x {w_dtype} products with these zero points")
    return problem, zx.reshape(()), zw


@dataclass(frozen=True)
class QuantizeProblem:
    """QuantizeLinear (float32 -> 8 bit) or DequantizeLinear (8 bit -> float32), with a
    per-tensor scale or one per index of ``axis``."""

    shape: tuple[int, ...]
    axis: int | None  # None: per tensor
    out_dtype: str
    op: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return 2 * self.size  # scale and shift

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return (1 if self.out_dtype in ('int8', 'uint8') else 4) * self.size

    @property
    def bytes(self) -> int:
        return 5 * self.size  # one float32 and one byte per element


def _quantize_params(shape: tuple[int, ...], scale: Any, zero_point: Any, axis: Any,
                     zp_dtypes: tuple[np.dtype, ...], op: str,
                     ) -> tuple[int | None, np.ndarray, np.ndarray]:
    """Scale and zero point: both per tensor, or both 1-D along ``axis``."""
    s = np.asarray(scale)
    ax = _check_axis(axis, max(len(shape), 1), op) if s.ndim else None
    length = shape[ax] if ax is not None and shape else None
    sc = check_scale(scale, "scale", op, length=length)
    if sc.ndim == 0:
        ax = None
    if zero_point is None:
        zp = np.zeros(sc.shape, np.uint8)
    else:
        zp = np.asarray(zero_point)
        if zp.dtype not in zp_dtypes:
            raise DTypeError(f"{op}: argument 'zero_point' must have dtype "
                             f"{' or '.join(map(str, zp_dtypes))}, got {zp.dtype}")
        if zp.size == 1 and sc.ndim == 0:
            zp = zp.reshape(())
        elif zp.shape != sc.shape:
            raise ArgumentError(f"{op}: argument 'zero_point' must have the shape of "
                                f"'scale' {sc.shape}, got {zp.shape}")
    return ax, sc, zp


def check_quantize_linear(x: Any, scale: Any, zero_point: Any = None, axis: Any = 1,
                          ) -> tuple[QuantizeProblem, np.ndarray, np.ndarray]:
    """Validate ONNX QuantizeLinear (8-bit outputs; the zero point's dtype picks int8 or
    uint8, uint8 when it is omitted)."""
    op = "quantize_linear"
    sx = _shape(x, "x", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    ax, sc, zp = _quantize_params(sx, scale, zero_point, axis, INT8_DTYPES, op)
    return QuantizeProblem(sx, ax, str(zp.dtype), op), sc, zp


def check_dequantize_linear(x: Any, scale: Any, zero_point: Any = None, axis: Any = 1,
                            ) -> tuple[QuantizeProblem, np.ndarray, np.ndarray]:
    """Validate ONNX DequantizeLinear of int8, uint8 or int32 data (int32: the bias form,
    whose zero point must be 0)."""
    op = "dequantize_linear"
    sx = _shape(x, "x", op)
    x_dtype = _check_dtype(x, INT8_DTYPES + (np.dtype(np.int32),), "x", op)
    ax, sc, zp = _quantize_params(sx, scale, zero_point, axis, (x_dtype,) if zero_point
                                  is not None else INT8_DTYPES, op)
    if zero_point is None:
        zp = zp.astype(x_dtype)
    if x_dtype == np.int32 and np.any(zp != 0):
        raise ArgumentError(f"{op}: int32 data needs zero_point 0, got {zp}")
    return QuantizeProblem(sx, ax, "float32", op), sc, zp


def check_requantization(in_scale: Any, w_scale: Any, y_scale: Any, y_zero_point: Any,
                         channels: int, names: tuple[str, str], op: str,
                         ) -> tuple[FixedPointMultiplier, np.ndarray]:
    """The scales and output zero point of a requantizing op (QLinearMatMul/QLinearConv):
    the fixed-point multiplier of ``in_scale * w_scale / y_scale`` (``w_scale`` may be one
    per output channel) and the zero point, whose dtype is the output's."""
    s_in = check_scale(in_scale, names[0], op)
    s_w = check_scale(w_scale, names[1], op, length=channels)
    s_y = check_scale(y_scale, "y_scale", op)
    zy = np.asarray(y_zero_point)
    if zy.dtype not in INT8_DTYPES or zy.size != 1:
        raise ArgumentError(
            f"{op}: argument 'y_zero_point' must be one int8 or uint8 value (its dtype "
            f"sets the output's), got {getattr(y_zero_point, 'dtype', type(y_zero_point))}")
    return quantize_multiplier(combined_scale(s_in, s_w, s_y)), zy.reshape(())


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


# -- the ops full CNNs need (ONNX semantics, float32, NCHW) ------------------------------
LAYOUT_DTYPES = (FLOAT32, np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32))


def _check_flag(value: Any, name: str, op: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{op}: argument '{name}' must be a bool, got {value!r}")
    return bool(value)


def _check_axis(axis: Any, rank: int, op: str, name: str = "axis") -> int:
    """An ONNX axis in [-rank, rank) -> its non-negative value."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ArgumentError(f"{op}: argument '{name}' must be an int, got {axis!r}")
    if not -rank <= int(axis) < rank:
        raise ArgumentError(
            f"{op}: argument '{name}'={int(axis)} is out of range for rank {rank} "
            f"(expected {-rank} <= {name} < {rank})")
    return int(axis) % rank


def _check_nonempty(shape: tuple[int, ...], name: str, op: str) -> None:
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")


def _pool_out(size: int, pad_begin: int, pad_end: int, span: int, stride: int,
              ceil_mode: bool) -> int:
    """ONNX's pooled length: floor, or ceil minus the window that would start past the input
    (a window must start inside the input or its begin padding)."""
    room = size + pad_begin + pad_end - span
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolProblem:
    """ONNX MaxPool / AveragePool / GlobalAveragePool on NCHW float32.

    ``padding`` is the explicit ONNX padding; in ceil mode the last window may reach past
    it by ``ceil_extra`` more pixels at the end, which never count (not even with
    ``count_include_pad``, as in ONNX's reference and PyTorch).
    """

    n: int
    c: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    kind: str = "max"  # "max" or "avg"
    count_include_pad: bool = False

    @property
    def span(self) -> tuple[int, int]:
        """Extent of a dilated window in pixels."""
        return (self.dilation[0] * (self.kernel[0] - 1) + 1,
                self.dilation[1] * (self.kernel[1] - 1) + 1)

    @property
    def out_h(self) -> int:
        return _pool_out(self.h, self.padding[0], self.padding[2], self.span[0], self.stride[0],
                         self.ceil_mode)

    @property
    def out_w(self) -> int:
        return _pool_out(self.w, self.padding[1], self.padding[3], self.span[1], self.stride[1],
                         self.ceil_mode)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.out_h, self.out_w)

    @property
    def ceil_extra(self) -> tuple[int, int]:
        """Pixels past the end padding that the last window reaches in ceil mode (h, w)."""
        eh = (self.out_h - 1) * self.stride[0] + self.span[0] - (
            self.h + self.padding[0] + self.padding[2])
        ew = (self.out_w - 1) * self.stride[1] + self.span[1] - (
            self.w + self.padding[1] + self.padding[3])
        return (max(0, eh), max(0, ew))

    @property
    def floor_end_padding(self) -> tuple[int, int]:
        """The least end padding (h, w) for which the usual floor formula (oneDNN's,
        cuDNN's) gives this output size: ONNX's ceil mode folded into the padding. It is
        larger than ``padding`` where ceil mode overhangs it (the overhang never counts) and
        smaller where the last windows never reach it (oneDNN refuses padding >= kernel)."""
        pads = []
        for axis in (0, 1):
            size, begin = (self.h, self.padding[0]) if axis == 0 else (self.w, self.padding[1])
            out, stride = (self.out_h, self.out_w)[axis], self.stride[axis]
            # the last window ends at size + low: any pad in [low, low + stride - 1] floors
            # to `out` windows, and low + stride - 1 >= 0 always
            low = (out - 1) * stride + self.span[axis] - size - begin
            pads.append(max(0, low))
        return (pads[0], pads[1])

    def window_counts(self, axis: int) -> np.ndarray:
        """Per output position along ``axis`` (0: h, 1: w), how many taps an average divides
        by: taps inside the input, or inside input + explicit padding with
        ``count_include_pad``. Taps in the ceil-mode overhang never count."""
        size, begin, end = ((self.h, self.padding[0], self.padding[2]) if axis == 0
                            else (self.w, self.padding[1], self.padding[3]))
        out, stride = (self.out_h, self.out_w)[axis], self.stride[axis]
        k, d = self.kernel[axis], self.dilation[axis]
        lo, hi = (-begin, size + end) if self.count_include_pad else (0, size)
        taps = np.arange(out)[:, None] * stride - begin + np.arange(k)[None, :] * d
        return ((taps >= lo) & (taps < hi)).sum(axis=1)

    @property
    def flops(self) -> int:
        return self.n * self.c * self.out_h * self.out_w * self.kernel[0] * self.kernel[1]

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.n * self.c * self.out_h * self.out_w

    @property
    def bytes(self) -> int:
        return 4 * (self.n * self.c * self.h * self.w + self.n * self.c * self.out_h * self.out_w)


def _check_pool(op: str, kind: str, x: Any, kernel: Any, stride: Any, padding: Any,
                dilation: Any, ceil_mode: Any, count_include_pad: Any) -> PoolProblem:
    sx = _shape(x, "x", op)
    _check_rank(sx, 4, "x", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    kernels = _pair(kernel, "kernel", op, minimum=1)
    strides = _pair(1 if stride is None else stride, "stride", op, minimum=1)
    pads = normalize_padding(padding, op)
    dilations = _pair(dilation, "dilation", op, minimum=1)
    ceil = _check_flag(ceil_mode, "ceil_mode", op)
    include = _check_flag(count_include_pad, "count_include_pad", op)
    n, c, h, w = sx
    p = PoolProblem(n, c, h, w, kernels, strides, pads, dilations, ceil, kind, include)
    padded = (h + pads[0] + pads[2], w + pads[1] + pads[3])
    if p.span[0] > padded[0] or p.span[1] > padded[1]:
        raise ArgumentError(
            f"{op}: argument 'kernel' {kernels} (dilation {dilations}, so a window spans "
            f"{p.span}) is larger than argument 'x' padded: {padded}")
    # A window holding padding only has no defined max (and avg excluding padding is 0/0).
    inside = replace(p, count_include_pad=False)
    for axis, name in ((0, "h"), (1, "w")):
        empty = _empty_windows(inside, axis)
        if empty.size:
            raise ArgumentError(
                f"{op}: argument 'padding' {padding!r} leaves output {name}={int(empty[0])} "
                f"with a window of padding only (kernel {kernels}, stride {strides}, "
                f"dilation {dilations}, x.shape={sx})")
    return p


def _empty_windows(p: PoolProblem, axis: int) -> np.ndarray:
    """Output positions along ``axis`` whose window holds no input pixel.

    Window starts only grow, so where the dilation is no longer than the input (no window
    can jump over it) only the first and the last window can be empty: checking those two
    keeps a huge padding or input (a broadcast view) from making an array of every
    window. Otherwise (or for few windows) every window is counted."""
    size = (p.h, p.w)[axis]
    out = (p.out_h, p.out_w)[axis]
    if p.dilation[axis] > size and out <= 1 << 20 or out <= 2:
        return np.flatnonzero(p.window_counts(axis) == 0)
    begin, stride = p.padding[axis], p.stride[axis]
    k, d = p.kernel[axis], p.dilation[axis]
    empty = []
    for i in (0, out - 1):
        first = i * stride - begin
        j = max(0, -(first // d))  # the first tap at or after pixel 0: ceil(-first / d)
        if not (j < k and first + j * d < size):
            empty.append(i)
    return np.asarray(empty, np.int64)


def check_max_pool2d(x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                     dilation: Any = 1, ceil_mode: bool = False) -> PoolProblem:
    """Validate ONNX MaxPool (2-D, NCHW float32); ``stride`` defaults to 1 as in ONNX."""
    return _check_pool("max_pool2d", "max", x, kernel, stride, padding, dilation, ceil_mode,
                       False)


def check_avg_pool2d(x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                     ceil_mode: bool = False, count_include_pad: bool = False) -> PoolProblem:
    """Validate ONNX AveragePool (2-D, NCHW float32, no dilation)."""
    return _check_pool("avg_pool2d", "avg", x, kernel, stride, padding, 1, ceil_mode,
                       count_include_pad)


def check_global_avg_pool2d(x: Any) -> PoolProblem:
    """Validate ONNX GlobalAveragePool: an average pool whose kernel is the whole image."""
    op = "global_avg_pool2d"
    sx = _shape(x, "x", op)
    _check_rank(sx, 4, "x", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    n, c, h, w = sx
    return PoolProblem(n, c, h, w, (h, w), kind="avg")


@dataclass(frozen=True)
class SoftmaxProblem:
    """ONNX Softmax (opset >= 13): along one axis; ~5 FLOPs per element (max, subtract,
    exp, sum, divide)."""

    shape: tuple[int, ...]
    axis: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return 5 * self.size

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 8 * self.size


def check_softmax(x: Any, axis: Any = -1) -> SoftmaxProblem:
    op = "softmax"
    shape = _shape(x, "x", op)
    if not shape:
        raise ArgumentError(f"{op}: argument 'x' must have rank >= 1, got shape {shape}")
    _check_nonempty(shape, "x", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    return SoftmaxProblem(shape, _check_axis(axis, len(shape), op))


@dataclass(frozen=True)
class BinaryProblem:
    """ONNX Add / Mul with multidirectional (NumPy) broadcasting; 1 FLOP per output."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    shape: tuple[int, ...]  # the broadcast output shape
    op: str = "add"

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return self.size

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 4 * (math.prod(self.a_shape) + math.prod(self.b_shape) + self.size)


def check_binary(a: Any, b: Any, op: str) -> BinaryProblem:
    sa, sb = _shape(a, "a", op), _shape(b, "b", op)
    _check_nonempty(sa, "a", op)
    _check_nonempty(sb, "b", op)
    _check_dtype(a, (FLOAT32,), "a", op)
    _check_dtype(b, (FLOAT32,), "b", op)
    rank = max(len(sa), len(sb))
    pa, pb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    for i, (da, db) in enumerate(zip(pa, pb, strict=True)):
        if da != db and 1 not in (da, db):
            raise ArgumentError(
                f"{op}: arguments 'a' {sa} and 'b' {sb} do not broadcast: dimension "
                f"{i - rank} is {da} in a and {db} in b")
    shape = tuple(max(da, db) for da, db in zip(pa, pb, strict=True))
    return BinaryProblem(sa, sb, shape, op)


@dataclass(frozen=True)
class ConcatProblem:
    """ONNX Concat: ``shapes`` joined along ``axis``; no FLOPs, bytes read and written."""

    shapes: tuple[tuple[int, ...], ...]
    axis: int

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.shapes[0]
        total = sum(s[self.axis] for s in self.shapes)
        return first[:self.axis] + (total,) + first[self.axis + 1:]

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return 8 * math.prod(self.shape)


def check_concat(arrays: Any, axis: Any) -> ConcatProblem:
    op = "concat"
    if not isinstance(arrays, (list, tuple)):
        raise ArgumentError(
            f"{op}: argument 'arrays' must be a list or tuple of arrays, got "
            f"{type(arrays).__name__}")
    if not arrays:
        raise ArgumentError(f"{op}: argument 'arrays' is empty: nothing to concatenate")
    shapes = []
    for i, arr in enumerate(arrays):
        shape = _shape(arr, "arrays", op)
        _check_nonempty(shape, "arrays", op)
        dtype = _check_dtype(arr, LAYOUT_DTYPES, "arrays", op)
        if dtype != FLOAT32:
            raise DTypeError(
                f"{op}: argument 'arrays' item {i} must have dtype float32, got {dtype}")
        if not shape:
            raise ArgumentError(f"{op}: argument 'arrays' item {i} is 0-d: it has no axis")
        shapes.append(shape)
    first = shapes[0]
    ax = _check_axis(axis, len(first), op)
    for i, shape in enumerate(shapes[1:], start=1):
        if len(shape) != len(first) or any(
                s != f for d, (s, f) in enumerate(zip(shape, first, strict=True)) if d != ax):
            raise ArgumentError(
                f"{op}: argument 'arrays' item {i} has shape {shape}, item 0 has {first}: "
                f"they must have one rank and agree on every axis but axis {ax}")
    return ConcatProblem(tuple(shapes), ax)


@dataclass(frozen=True)
class LrnProblem:
    """ONNX LRN across channels on NCHW float32:
    ``y = x / (bias + alpha / size * sum of x**2 over `size` channels)**beta``.

    ~(size + 4) FLOPs per element: the window's squares and sum, then scale, add, power,
    divide.
    """

    shape: tuple[int, int, int, int]
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return (self.size + 4) * self.elements

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        n, c, h, w = self.shape  # the output, and the squares padded by the window
        return 4 * self.elements + 4 * n * (c + self.size - 1) * h * w

    @property
    def bytes(self) -> int:
        return 8 * self.elements


def _check_real(value: Any, name: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{op}: argument '{name}' must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ArgumentError(f"{op}: argument '{name}' must be finite, got {value!r}")
    return float(value)


def check_lrn(x: Any, size: Any, alpha: Any = 1e-4, beta: Any = 0.75,
              bias: Any = 1.0) -> LrnProblem:
    """Validate ONNX LRN. ``size`` must be odd: an even window is not centred (ONNX puts the
    extra channel after, oneDNN before), so no backend could agree with the reference."""
    op = "lrn"
    sx = _shape(x, "x", op)
    _check_rank(sx, 4, "x", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    if (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1
            or size % 2 == 0):
        raise ArgumentError(f"{op}: argument 'size' must be a positive odd int, got {size!r}")
    a, b, k = _check_real(alpha, "alpha", op), _check_real(beta, "beta", op), _check_real(
        bias, "bias", op)
    if a < 0:
        raise ArgumentError(f"{op}: argument 'alpha' must be >= 0, got {alpha!r}")
    if k <= 0:
        raise ArgumentError(f"{op}: argument 'bias' must be > 0, got {bias!r}")
    return LrnProblem(sx, int(size), a, b, k)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LayoutProblem:
    """Reshape (``perm`` None) or Transpose: no FLOPs; bytes read and written."""

    in_shape: tuple[int, ...]
    shape: tuple[int, ...]
    perm: tuple[int, ...] | None = None
    itemsize: int = 4

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return self.itemsize * math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return 2 * self.itemsize * math.prod(self.shape)


def check_reshape(x: Any, shape: Any) -> LayoutProblem:
    """Validate a reshape: ``shape`` holds positive ints and at most one -1 (inferred).

    0 is not special (ONNX's "copy this dimension" is resolved by the graph layer).
    """
    op = "reshape"
    sx = _shape(x, "x", op)
    _check_nonempty(sx, "x", op)
    dtype = _check_dtype(x, LAYOUT_DTYPES, "x", op)
    if isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
        shape = shape.tolist()
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
        raise ArgumentError(f"{op}: argument 'shape' must be a tuple of ints, got {shape!r}")
    dims = tuple(int(d) for d in shape)
    if dims.count(-1) > 1:
        raise ArgumentError(f"{op}: argument 'shape' {dims} has more than one -1")
    if any(d < 1 and d != -1 for d in dims):
        raise ArgumentError(
            f"{op}: argument 'shape' {dims} must hold positive ints and at most one -1")
    size = math.prod(sx)
    known = math.prod([d for d in dims if d != -1])
    if -1 in dims:
        if size % known:
            raise ArgumentError(
                f"{op}: argument 'shape' {dims} cannot hold the {size} elements of x.shape={sx}")
        dims = tuple(size // known if d == -1 else d for d in dims)
    elif known != size:
        raise ArgumentError(
            f"{op}: argument 'shape' {dims} has {known} elements, x.shape={sx} has {size}")
    return LayoutProblem(sx, dims, None, dtype.itemsize)


def check_transpose(x: Any, perm: Any) -> LayoutProblem:
    """Validate a transpose; ``perm`` None reverses the axes (ONNX's default)."""
    op = "transpose"
    sx = _shape(x, "x", op)
    _check_nonempty(sx, "x", op)
    dtype = _check_dtype(x, LAYOUT_DTYPES, "x", op)
    if perm is None:
        perm = tuple(reversed(range(len(sx))))
    if not isinstance(perm, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in perm):
        raise ArgumentError(f"{op}: argument 'perm' must be a tuple of ints, got {perm!r}")
    axes = tuple(int(d) for d in perm)
    if sorted(axes) != list(range(len(sx))):
        raise ArgumentError(
            f"{op}: argument 'perm' {axes} is not a permutation of the {len(sx)} axes of "
            f"x.shape={sx}")
    return LayoutProblem(sx, tuple(sx[d] for d in axes), axes, dtype.itemsize)
