"""The kernel interface's argument contracts, checked once for every backend.

Each ``check_*`` function validates shapes, dtypes, ranks and attribute values the way
NumPy does (naming the argument, its shape and what was expected) and returns a small
frozen *problem* object. Backends receive only validated problems, so no bad size or
pointer ever reaches a native library. FLOP and byte counts live on the problems so that
every report counts work the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.quantization import QUANTIZED_DTYPES, int32_accumulation_is_safe

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
    dtype = dtype_of(x)
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
        return int(np.prod(self.shape))

    @property
    def flops(self) -> int:
        return self.flops_per_element * self.size

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
    sx, sw = _shape(x, "x", op), _shape(w, "w", op)
    _check_rank(sx, 4, "x", op)
    _check_rank(sw, 4, "w", op)
    _check_dtype(x, (FLOAT32,), "x", op)
    _check_dtype(w, (FLOAT32,), "w", op)
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
        _check_dtype(bias, (FLOAT32,), "bias", op)
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


def _check_zero_point(zp: Any, dtype: np.dtype, name: str, op: str,
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
    za = _check_zero_point(a_zero_point, a_dtype, "a_zero_point", op, m, "row of a")
    zb = _check_zero_point(b_zero_point, b_dtype, "b_zero_point", op, n, "column of b")
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
