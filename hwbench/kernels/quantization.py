"""Integer quantization math shared by every backend (gemmlowp / ONNX semantics).

Requantization maps an int32 accumulator back to 8 bits with a fixed-point multiplier
and a right shift, as gemmlowp does, so that integer-only hardware can run it. The
multiplier represents a float32 scale *exactly* (31 fractional bits hold float32's 24),
and rounding is half to even with saturation, which makes the result equal to ONNX
QLinearMatMul's reference whenever that reference's float64 product is itself exact.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hwbench.errors import ArgumentError

try:  # NumPy 2
    from numpy._core.umath import clip as _clip_ufunc
except ImportError:  # NumPy 1
    from numpy.core.umath import clip as _clip_ufunc

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


# cpu:float32-requant fuses a QLinearConv into the QLinearAdd reading it only where the
# conv's scale over the Add's output scale is below this: a conv code 1 LSB off then moves
# the sum by less than one output step (margin: float32 rounding of the sum). Shared by
# the graph pass (``graph/qconv_add_fusion.py``) and the kernel (``cpu/int8_conv_add.py``).
FUSED_ADD_RATIO_LIMIT = 0.99

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


# Float64 computes v = acc * scale with |error| <= |v| * 2**-53 < 2**-44 while |v| < 2**9
# (beyond that the result saturates either way). Only a value within that error of a tie
# k + 1/2 could round the wrong way. With right_shift <= 44 none can: v's fraction lies on
# a 2**-shift grid, so a non-tie is at least 2**-44 from a tie, and a tie (few significant
# bits) is computed exactly. With larger shifts, the rare values within NEAR_TIE of a tie
# are redone in integers (gemmlowp's form), so every result is exact either way.
FLOAT64_EXACT_MAX_SHIFT = 44
NEAR_TIE = 2.0**-43  # larger than the float64 error bound: every doubtful value is caught


def _clip(y: np.ndarray, low: float, high: float) -> None:
    """In place, by NumPy's clip ufunc itself: one pass, without ``np.clip``'s wrapper (a
    tenth of the work on small chunks), and ~4x faster than ``np.maximum`` then
    ``np.minimum`` on 64K float64 (15 against 64 µs: their NaN handling), which had been
    the exact requantization's largest cost. No NaN reaches it (integers scaled)."""
    _clip_ufunc(y, low, high, out=y)


def requantize(
    acc: np.ndarray,
    fixed_point: FixedPointMultiplier,
    zero_point: int | np.integer,
    dtype: np.dtype | type,
    bias: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """int32 accumulators (plus an int32 ``bias`` broadcast against them, the sum
    saturated to int32 as ``add_bias`` does) -> saturated int8/uint8, with a per-tensor
    scale or per-channel ones shaped to broadcast.

    Exact: round half to even of the rational ``acc * scale``. Computed in float64, chunk
    by chunk so that temporaries stay in cache, with the integer fix-up described above
    where the shift is large; the all-integer path serves only layouts the chunking does
    not cover. ``threads`` > 1: the chunks are shared among that many threads (NumPy's
    loops release the GIL; each chunk's codes are the same whichever thread makes them).
    """
    dtype = np.dtype(dtype)
    if dtype not in QUANTIZED_DTYPES:
        raise ArgumentError(f"requantize: dtype must be int8 or uint8, got {dtype}")
    acc = np.asarray(acc)
    view = as_matrix(acc, fixed_point.multiplier, fixed_point.right_shift, bias)
    if view is None:
        if bias is not None:
            acc = _saturating_sum(acc, bias)
        return _requantize_integer(acc, fixed_point, zero_point, dtype)
    matrix, (multiplier, shift, bias2) = view
    check_ties = int(np.max(fixed_point.right_shift)) > FLOAT64_EXACT_MAX_SHIFT
    scale = np.asarray(multiplier, np.float64) * np.exp2(-np.asarray(shift, np.float64))
    info = np.iinfo(dtype)
    out = np.empty(matrix.shape, dtype)
    rows = max(1, CHUNK_ELEMENTS // matrix.shape[1])
    # One temporary for every chunk: a fresh 512 KiB array each time would be mmap'd and
    # page-faulted anew (glibc's threshold), which cost more than the arithmetic.
    buffer = np.empty((min(rows, matrix.shape[0]), matrix.shape[1]))

    def rows_of(p: np.ndarray | None, part: slice) -> np.ndarray | None:
        return p if p is None or p.ndim < 2 or p.shape[0] == 1 else p[part]

    # One value per column, tiled to a whole chunk once where there are chunks enough to
    # pay for it: NumPy's loop over two full operands is ~1.7x faster than over a
    # broadcast row (13 against 23 µs per 64K).
    tiles = matrix.shape[0] >= 2 * rows
    tiled_scale, tiled_bias = (_tiled(p, buffer.shape) if tiles else None
                               for p in (scale, bias2))

    def operand(p: np.ndarray | None, tiled: np.ndarray | None, part: slice,
                n: int) -> np.ndarray | None:
        return rows_of(p, part) if tiled is None else tiled[:n]

    # acc + bias saturates to int32 first; that can change no code when every scale maps
    # int32's range far past the output's (then both sums saturate the output alike).
    int32_clip_needed = bias2 is not None and float(np.min(scale)) * INT32_MAX < 1024

    def chunks(starts: range, buffer: np.ndarray) -> None:
        for start in starts:
            one_chunk(start, buffer)

    def one_chunk(start: int, buffer: np.ndarray) -> None:
        part = slice(start, start + rows)
        chunk = matrix[part]
        y = buffer[:len(chunk)]
        b = rows_of(bias2, part)
        # int32 -> float64 (exact) alone, then float64 operands only: a mixed-type ufunc
        # casts through NumPy's buffered loop (36 against 10 + 13 µs per 64K)
        np.copyto(y, chunk)
        if b is not None:
            np.add(y, operand(bias2, tiled_bias, part, len(chunk)), out=y)  # exact
            if int32_clip_needed:
                _clip(y, -INT32_MAX - 1, INT32_MAX)
        np.multiply(y, operand(scale, tiled_scale, part, len(chunk)), out=y)
        doubtful = None
        if check_ties:
            frac = y - np.floor(y)
            doubtful = np.nonzero(np.abs(frac - 0.5) < NEAR_TIE)
        np.rint(y, out=y)  # ties to even
        zp = float(zero_point)
        _clip(y, info.min - zp, info.max - zp)  # saturate first: then + zp fits the dtype
        if doubtful is not None and len(doubtful[0]):
            exact = np.broadcast_to(chunk, y.shape)[doubtful].astype(np.int64)
            if b is not None:
                exact = _saturating_sum(exact, np.broadcast_to(b, y.shape)[doubtful])
            m = np.broadcast_to(rows_of(multiplier, part), y.shape)[doubtful]
            sh = np.broadcast_to(rows_of(shift, part), y.shape)[doubtful]
            fixed = rounding_right_shift(exact * m, sh)
            y[doubtful] = np.clip(fixed, info.min - zp, info.max - zp)
        y += zp  # then the cast alone: both float64-only loops, faster than one mixed pass
        np.copyto(out[part], y, casting="unsafe")

    starts = range(0, matrix.shape[0], rows)
    shared = min(threads, len(starts) // SHARED_CHUNKS)  # enough chunks to pay the hand-off
    if shared > 1:
        pool = _requantize_pool(shared - 1)
        others = [pool.submit(chunks, starts[k::shared], np.empty_like(buffer))
                  for k in range(1, shared)]
        chunks(starts[0::shared], buffer)
        for job in others:
            job.result()
    else:
        chunks(starts, buffer)
    return out.reshape(acc.shape)


SHARED_CHUNKS = 4  # chunks per thread, at least, before requantize shares them
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _requantize_pool(workers: int) -> ThreadPoolExecutor:
    """The worker threads ``requantize`` shares chunks with (made once per count)."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = ThreadPoolExecutor(workers, "hwbench-requantize")
    return pool


def _tiled(p: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A (1, cols) parameter as float64 of a whole chunk's ``shape``; None for any other
    (a scalar, one value per row)."""
    if p is None or p.ndim < 2 or p.shape[0] != 1 or shape[0] == 1:
        return None
    return np.ascontiguousarray(np.broadcast_to(np.asarray(p, np.float64), shape))


# -- float32 requantization (oneDNN's and onnxruntime's convention) ----------------------
# A fused int8 kernel (oneDNN's int8 convolution and matmul, onnxruntime's QLinearConv)
# requantizes in float32: acc · scale + bias·scale, rounded to nearest even, plus the zero
# point, saturated. Each float32 step rounds (relative error ~2**-24 each), so a value
# within ~1e-4 of a tie k + 1/2 may round the other way: the result is the exact one
# (``requantize``) or 1 LSB away. These helpers give such kernels their operands.
def float32_scale(fixed_point: FixedPointMultiplier) -> np.ndarray:
    """The requantization scale(s) as float32: exact, since the fixed-point multiplier
    represents a float32 ``a_scale * b_scale / y_scale`` exactly (``quantize_multiplier``)."""
    return fixed_point.real_scale.astype(np.float32)


def float32_bias(bias: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """An int32 bias in output units, ``bias · scale`` rounded once to float32, for
    kernels that add the bias after scaling the accumulators (oneDNN's int8 primitives)."""
    product = np.asarray(bias, np.float64) * np.asarray(scale, np.float64)
    return product.astype(np.float32)


def add_bias(acc: np.ndarray, bias: np.ndarray | None, axis: int) -> np.ndarray:
    """int32 accumulators plus an int32 bias along ``axis`` (QLinearConv's), saturated to
    int32: the sum of two int32 values can leave int32, and requantization's int64
    product assumes it does not."""
    if bias is None:
        return acc
    return _saturating_sum(acc, along_axis(np.asarray(bias), axis, acc.ndim))


def _saturating_sum(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``acc + bias`` (broadcast) in int64, saturated to int32."""
    total = np.asarray(acc).astype(np.int64) + np.asarray(bias, np.int64)
    return np.clip(total, -INT32_MAX - 1, INT32_MAX)


def _requantize_integer(acc, fixed_point: FixedPointMultiplier, zero_point,
                        dtype: np.dtype) -> np.ndarray:
    """gemmlowp's integer-only form: int64 product, rounding right shift, saturate."""
    product = acc.astype(np.int64) * fixed_point.multiplier
    scaled = rounding_right_shift(product, fixed_point.right_shift) + np.int64(zero_point)
    info = np.iinfo(dtype)
    return np.clip(scaled, info.min, info.max).astype(dtype)


CHUNK_ELEMENTS = 1 << 16  # 512 KiB of float64 temporaries: they stay in L2


def as_matrix(x: np.ndarray, *params: np.ndarray | None) -> tuple[np.ndarray, list] | None:
    """``x`` as a 2-D (rows, cols) view and each parameter (broadcastable to ``x``: a
    scalar, one value per index of one axis) as (rows, 1), (1, cols) or scalar; None when
    the parameters vary along more than one axis or ``x`` is not contiguous."""
    if not x.flags.c_contiguous or x.ndim == 0:
        return None
    if any(p is not None and np.ndim(p) > x.ndim for p in params):
        return None
    # NumPy's broadcasting: a parameter of lower rank lines up with x's trailing axes.
    params = tuple(None if p is None else np.asarray(p).reshape(
        (1,) * (x.ndim - np.ndim(p)) + np.shape(p)) for p in params)
    varying = {ax for p in params if p is not None and p.size > 1
               for ax in range(p.ndim) if p.shape[ax] > 1}
    if len(varying) > 1:
        return None
    axis = varying.pop() if varying else x.ndim - 1
    cols = int(np.prod(x.shape[axis + 1:])) if axis < x.ndim - 1 else x.shape[-1]
    matrix = x.reshape(-1, cols)
    out = []
    for p in params:
        if p is None or np.size(p) == 1:
            out.append(None if p is None else np.asarray(p).reshape(()))
        elif axis == x.ndim - 1:  # one value per column
            out.append(np.asarray(p).reshape(1, -1))
        else:  # one value per row: repeat over the leading axes (rows are few)
            lead = np.broadcast_to(np.asarray(p).reshape(np.shape(p)[:axis + 1]),
                                   x.shape[:axis + 1])
            out.append(np.ascontiguousarray(lead).reshape(-1, 1))
    return matrix, out


def along_axis(values: np.ndarray, axis: int | None, rank: int) -> np.ndarray:
    """Per-axis parameters shaped to broadcast against a rank-``rank`` tensor."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return values
    shape = [1] * rank
    shape[axis] = values.size
    return values.reshape(shape)


def quantize(x: np.ndarray, scale, zero_point, dtype, axis: int | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round_half_even(x / scale) + zero_point)``, the
    division in float32 as ONNX's reference does; per tensor or along ``axis``. ``out``:
    a C-contiguous array of ``x``'s shape and ``dtype`` to write into.

    A contiguous ``x`` with one scale goes chunk by chunk, so that the float32 temporary
    stays in cache (the same operations, so the same values; ~2x faster on large
    activations than whole-array passes, each of which went to memory)."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    x = np.asarray(x, np.float32)
    s = along_axis(np.asarray(scale, np.float32), axis, x.ndim)
    z = along_axis(np.asarray(zero_point, np.float32), axis, x.ndim)
    if out is None:
        out = np.empty(x.shape, dtype)
    if s.size == 1 and z.size == 1 and x.flags.c_contiguous:
        flat, dst = x.reshape(-1), out.reshape(-1)
        s, z = s.reshape(()), z.reshape(())
        buffer = np.empty(min(CHUNK_ELEMENTS, flat.size), np.float32)
        for start in range(0, flat.size, CHUNK_ELEMENTS):
            part = slice(start, start + CHUNK_ELEMENTS)
            q = buffer[:len(flat[part])]
            np.divide(flat[part], s, out=q)
            np.rint(q, out=q)
            q += z
            _clip(q, info.min, info.max)
            np.copyto(dst[part], q, casting="unsafe")
        return out
    q = np.rint(x / s)
    q += z
    np.clip(q, info.min, info.max, out=q)
    np.copyto(out, q, casting="unsafe")
    return out


def dequantize(q: np.ndarray, scale, zero_point, axis: int | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """ONNX DequantizeLinear: ``(q - zero_point) * scale`` in float32 (8-bit ``q``: into
    ``out`` if given, a float32 array of ``q``'s shape)."""
    q = np.asarray(q)
    s = along_axis(np.asarray(scale, np.float32), axis, q.ndim)
    if q.dtype in QUANTIZED_DTYPES:  # q - z is a small integer: exact in float32
        z = along_axis(np.asarray(zero_point, np.float32), axis, q.ndim)
        if out is None:
            out = np.empty(q.shape, np.float32)
        np.subtract(q, z, out=out, dtype=np.float32)
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


def int8_gemm_by_float64(a: np.ndarray, b: np.ndarray, a_zero_point,
                         b_zero_point) -> np.ndarray:
    """Exact int32 ``(A - za) @ (B - zb)`` (za scalar or per row, zb scalar or per column)
    through float64 BLAS: every partial sum of 8-bit products stays far below 2**53, and
    the caller's checks (``spec.check_gemm_int8``) keep the result inside int32. Far
    faster than NumPy's integer matmul, which has no BLAS."""
    za = np.asarray(a_zero_point, dtype=np.float64)
    zb = np.asarray(b_zero_point, dtype=np.float64)
    a64 = np.asarray(a, dtype=np.float64) - (za.reshape(-1, 1) if za.ndim else za)
    b64 = np.asarray(b, dtype=np.float64) - (zb.reshape(1, -1) if zb.ndim else zb)
    return np.matmul(a64, b64).astype(np.int32)


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

