"""The int8 ops (ONNX MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv,
QuantizeLinear, DequantizeLinear): zero points, scales and the requantization multiplier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.quantization import (
    FixedPointMultiplier,
    combined_scale,
    int32_accumulation_is_safe,
    quantize_multiplier,
)
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    INT8_DTYPES,
    array_shape,
    check_axis,
    check_dtype,
    check_rank,
)
from hwbench.kernels.spec.dense import (
    ConvProblem,
    GemmProblem,
    conv_problem,
)
from hwbench.kernels.spec.memo import memoized, typed


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
    sa, sb = array_shape(a, "a", op), array_shape(b, "b", op)
    check_rank(sa, 2, "a", op)
    check_rank(sb, 2, "b", op)
    a_dtype = check_dtype(a, INT8_DTYPES, "a", op)
    b_dtype = check_dtype(b, INT8_DTYPES, "b", op)
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
    """``_check_conv2d_int8``, remembered (``memo``) per x, w and bias shape and dtype and
    the zero points' values: a graph passes the same ones every run."""
    args = (x, w, x_zero_point, w_zero_point, stride, padding, dilation, groups, bias, op)
    facts = [(type(a), getattr(a, "shape", None), str(getattr(a, "dtype", None)))
             for a in (x, w)]
    if any(not isinstance(shape, tuple) for _, shape, _ in facts) or not (
            bias is None or isinstance(bias, np.ndarray)):
        return _check_conv2d_int8(*args)
    bias_facts = None if bias is None else (bias.shape, bias.dtype.str)
    key = (*facts, bias_facts, typed((stride, padding, dilation, groups)), op)
    return memoized("conv2d_int8", key, (x_zero_point, w_zero_point),
                    lambda: _check_conv2d_int8(*args))


def _check_conv2d_int8(x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0,
                       stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
                       bias: Any = None, op: str = "conv2d_int8",
                       ) -> tuple[Int8ConvProblem, np.ndarray, np.ndarray]:
    """Validate ONNX ConvInteger: 8-bit x and w, a scalar x zero point, a scalar or
    per-output-channel w zero point; returns the problem and both zero points.

    Rejects (rather than wraps) a reduction long enough to overflow int32. ``bias``
    (int32, QLinearConv's) is only shape-checked here: it is added in int64.
    """
    array_shape(x, "x", op), array_shape(w, "w", op)  # arrays at all, before their dtypes
    x_dtype = check_dtype(x, INT8_DTYPES, "x", op)
    w_dtype = check_dtype(w, INT8_DTYPES, "w", op)
    if bias is not None:
        check_dtype(bias, (np.dtype(np.int32),), "bias", op)
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
    if s.ndim == 1 and s.size == 1:  # one value: per tensor, as ONNX's reference reads it
        scale = s = s.reshape(())
        if zero_point is not None and np.asarray(zero_point).size == 1:
            zero_point = np.asarray(zero_point).reshape(())
    ax = check_axis(axis, max(len(shape), 1), op) if s.ndim else None
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
    sx = array_shape(x, "x", op)
    check_dtype(x, (FLOAT32,), "x", op)
    ax, sc, zp = _quantize_params(sx, scale, zero_point, axis, INT8_DTYPES, op)
    return QuantizeProblem(sx, ax, str(zp.dtype), op), sc, zp


def check_dequantize_linear(x: Any, scale: Any, zero_point: Any = None, axis: Any = 1,
                            ) -> tuple[QuantizeProblem, np.ndarray, np.ndarray]:
    """Validate ONNX DequantizeLinear of int8, uint8 or int32 data (int32: the bias form,
    whose zero point must be 0)."""
    op = "dequantize_linear"
    sx = array_shape(x, "x", op)
    x_dtype = check_dtype(x, INT8_DTYPES + (np.dtype(np.int32),), "x", op)
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
    per output channel) and the zero point, whose dtype is the output's. Remembered per
    argument values (``memo``)."""
    return memoized("requantization", typed((channels, names, op)),
                    (in_scale, w_scale, y_scale, y_zero_point),
                    lambda: _check_requantization(in_scale, w_scale, y_scale, y_zero_point,
                                                  channels, names, op))


def _check_requantization(in_scale: Any, w_scale: Any, y_scale: Any, y_zero_point: Any,
                          channels: int, names: tuple[str, str], op: str,
                          ) -> tuple[FixedPointMultiplier, np.ndarray]:
    s_in = check_scale(in_scale, names[0], op)
    s_w = check_scale(w_scale, names[1], op, length=channels)
    s_y = check_scale(y_scale, "y_scale", op)
    zy = np.asarray(y_zero_point)
    if zy.dtype not in INT8_DTYPES or zy.size != 1:
        raise ArgumentError(
            f"{op}: argument 'y_zero_point' must be one int8 or uint8 value (its dtype "
            f"sets the output's), got {getattr(y_zero_point, 'dtype', type(y_zero_point))}")
    return quantize_multiplier(combined_scale(s_in, s_w, s_y)), zy.reshape(())
