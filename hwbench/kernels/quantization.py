"""Integer quantization math shared by every backend (gemmlowp / ONNX semantics).

Requantization maps an int32 accumulator back to 8 bits with a fixed-point multiplier
and a right shift, as gemmlowp does, so that integer-only hardware can run it. The
multiplier represents a float32 scale *exactly* (31 fractional bits hold float32's 24),
and rounding is half to even with saturation, which makes the result equal to ONNX
QLinearMatMul's reference whenever that reference's float64 product is itself exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwbench.errors import ArgumentError

INT32_MAX = 2**31 - 1
QUANTIZED_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))


@dataclass(frozen=True)
class FixedPointMultiplier:
    """``real_scale == multiplier * 2**-right_shift`` with ``multiplier`` in [2**30, 2**31)."""

    multiplier: np.ndarray  # int64, scalar or per output channel
    right_shift: np.ndarray  # int64, same shape; always >= 1

    @property
    def real_scale(self) -> np.ndarray:
        return self.multiplier.astype(np.float64) * np.exp2(-self.right_shift.astype(np.float64))

    def along(self, axis: int, rank: int) -> FixedPointMultiplier:
        """Per-channel multipliers shaped to broadcast along ``axis`` of a rank-``rank``
        tensor (e.g. axis 1 of NCHW); a per-tensor one is returned as it is."""
        return FixedPointMultiplier(along_axis(self.multiplier, axis, rank),
                                    along_axis(self.right_shift, axis, rank))


def quantize_multiplier(real_scale: float | np.ndarray) -> FixedPointMultiplier:
    """Split positive scale(s) into a 31-bit fixed-point multiplier and a right shift.

    Exact for float32 scales; float64 scales are rounded to 31 significant bits.
    """
    scales = np.asarray(real_scale, dtype=np.float64)
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ArgumentError(f"requantization scale must be finite and > 0, got {scales}")
    mantissa, exponent = np.frexp(scales)  # scale = mantissa * 2**exponent, mantissa in [0.5, 1)
    multiplier = np.rint(mantissa * 2.0**31).astype(np.int64)
    carry = multiplier == 2**31
    multiplier = np.where(carry, 2**30, multiplier)
    exponent = exponent.astype(np.int64) + carry
    right_shift = 31 - exponent
    if np.any(right_shift < 1):
        raise ArgumentError(f"requantization scale {scales} is too large (must be < 2**30)")
    return FixedPointMultiplier(multiplier, right_shift)


def combined_scale(a_scale, b_scale, y_scale) -> np.ndarray:
    """``a_scale * b_scale / y_scale`` evaluated in float32, as ONNX's reference does."""
    a = np.asarray(a_scale, dtype=np.float32)
    b = np.asarray(b_scale, dtype=np.float32)
    y = np.asarray(y_scale, dtype=np.float32)
    return (a * b / y).astype(np.float32)


def rounding_right_shift(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``round(x / 2**shift)`` for int64 ``x``, exact, ties to even."""
    shift = np.asarray(shift, dtype=np.int64)
    big = shift >= 63  # |x| < 2**62 here, so the quotient rounds to 0
    s = np.where(big, 62, shift)
    q = x >> s
    r = x - (q << s)
    half = np.int64(1) << (s - 1)
    up = (r > half) | ((r == half) & ((q & 1) == 1))
    return np.where(big, 0, q + up)


# Largest right shift for which float64 arithmetic rounds exactly like the integer path.
# Proof sketch: the exact value v = acc * S has its fraction on a 2**-shift grid; float64
# computes v with error <= |v| * 2**-53, which is < 2**-44 while |v| < 2**9 (beyond that
# the result saturates either way). With shift <= 43 that error cannot carry v across a
# tie, and a value that *is* a tie (k + 1/2, few bits) is computed exactly.
FLOAT64_EXACT_MAX_SHIFT = 43


def requantize(
    acc: np.ndarray,
    fixed_point: FixedPointMultiplier,
    zero_point: int | np.integer,
    dtype: np.dtype | type,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """int32 accumulators (plus an int32 ``bias`` broadcast against them, the sum
    saturated to int32 as ``add_bias`` does) -> saturated int8/uint8, with a per-tensor
    scale or per-channel ones shaped to broadcast.

    Exact (round half to even of the rational ``acc * scale``) on both paths; the float64
    path, ~20x faster in NumPy, is taken only where it is provably exact (sums of two
    int32 values are exact in float64, so the bias changes nothing in that proof).
    """
    dtype = np.dtype(dtype)
    if dtype not in QUANTIZED_DTYPES:
        raise ArgumentError(f"requantize: dtype must be int8 or uint8, got {dtype}")
    if np.max(fixed_point.right_shift) <= FLOAT64_EXACT_MAX_SHIFT:
        return _requantize_float64(acc, fixed_point, zero_point, dtype, bias)
    if bias is not None:
        acc = np.clip(acc.astype(np.int64) + bias, -INT32_MAX - 1, INT32_MAX)
    return _requantize_integer(acc, fixed_point, zero_point, dtype)


def add_bias(acc: np.ndarray, bias: np.ndarray | None, axis: int) -> np.ndarray:
    """int32 accumulators plus an int32 bias along ``axis`` (QLinearConv's), saturated to
    int32: the sum of two int32 values can leave int32, and requantization's int64
    product assumes it does not."""
    if bias is None:
        return acc
    total = acc.astype(np.int64) + along_axis(np.asarray(bias, np.int64), axis, acc.ndim)
    return np.clip(total, -INT32_MAX - 1, INT32_MAX)


def _requantize_integer(acc, fixed_point: FixedPointMultiplier, zero_point,
                        dtype: np.dtype) -> np.ndarray:
    """gemmlowp's integer-only form: int64 product, rounding right shift, saturate."""
    product = acc.astype(np.int64) * fixed_point.multiplier
    scaled = rounding_right_shift(product, fixed_point.right_shift) + np.int64(zero_point)
    info = np.iinfo(dtype)
    return np.clip(scaled, info.min, info.max).astype(dtype)


def _requantize_float64(acc, fixed_point: FixedPointMultiplier, zero_point,
                        dtype: np.dtype, bias: np.ndarray | None = None) -> np.ndarray:
    info = np.iinfo(dtype)
    y = acc.astype(np.float64)
    if bias is not None:
        y += bias
        np.clip(y, -INT32_MAX - 1, INT32_MAX, out=y)
    y *= fixed_point.real_scale
    np.rint(y, out=y)  # ties to even
    y += float(zero_point)
    np.clip(y, info.min, info.max, out=y)
    return y.astype(dtype)


def along_axis(values: np.ndarray, axis: int | None, rank: int) -> np.ndarray:
    """Per-axis parameters shaped to broadcast against a rank-``rank`` tensor."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return values
    shape = [1] * rank
    shape[axis] = values.size
    return values.reshape(shape)


def quantize(x: np.ndarray, scale, zero_point, dtype, axis: int | None = None) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round_half_even(x / scale) + zero_point)``, the
    division in float32 as ONNX's reference does; per tensor or along ``axis``."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    x = np.asarray(x, np.float32)
    s = along_axis(np.asarray(scale, np.float32), axis, x.ndim)
    z = along_axis(np.asarray(zero_point, np.float32), axis, x.ndim)
    q = np.rint(x / s)
    q += z
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """ONNX DequantizeLinear: ``(q - zero_point) * scale`` in float32."""
    q = np.asarray(q)
    s = along_axis(np.asarray(scale, np.float32), axis, q.ndim)
    if q.dtype in QUANTIZED_DTYPES:  # q - z is a small integer: exact in float32
        out = q.astype(np.float32)
        out -= along_axis(np.asarray(zero_point, np.float32), axis, q.ndim)
        out *= s
        return out
    z = along_axis(np.asarray(zero_point, dtype=np.int32), axis, q.ndim)
    shifted = q.astype(np.int32) - z
    return (shifted * s).astype(np.float32)  # int32 * float32 is exact in float64


def max_abs_offset(dtype: np.dtype, zero_point: np.ndarray) -> int:
    """Largest ``|q - zero_point|`` any value of ``dtype`` can reach, for overflow bounds."""
    info = np.iinfo(dtype)
    zp = np.asarray(zero_point, dtype=np.int64)
    return int(max(np.max(info.max - zp), np.max(zp - info.min)))


def int32_accumulation_is_safe(k: int, a_dtype, a_zero_point, b_dtype, b_zero_point) -> bool:
    """Whether any K-long dot product of such inputs fits an int32 accumulator."""
    worst = k * max_abs_offset(np.dtype(a_dtype), a_zero_point)
    worst *= max_abs_offset(np.dtype(b_dtype), b_zero_point)
    return worst <= INT32_MAX


def zero_point_correction(
    raw: np.ndarray, a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point
) -> np.ndarray:
    """Turn ``A @ B`` into ``(A - za) @ (B - zb)`` for scalar, per-row or per-column zero points.

    Used by backends whose native int8 GEMM takes no (or only scalar) zero points.
    ``raw`` is the int32 product of ``a`` (M×K) and ``b`` (K×N).
    """
    za = np.asarray(a_zero_point, dtype=np.int64).reshape(-1, 1) if np.ndim(a_zero_point) else (
        np.int64(a_zero_point))
    zb = np.asarray(b_zero_point, dtype=np.int64).reshape(1, -1) if np.ndim(b_zero_point) else (
        np.int64(b_zero_point))
    k = a.shape[1]
    out = raw.astype(np.int64)
    if np.any(zb != 0):
        out -= a.sum(axis=1, dtype=np.int64).reshape(-1, 1) * zb
    if np.any(za != 0):
        out -= za * b.sum(axis=0, dtype=np.int64).reshape(1, -1)
        out += k * za * zb
    return out.astype(np.int32)

