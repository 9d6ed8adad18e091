"""The functional model: the values the accelerator computes, exactly, without its timing.

Integer work is exact: int8 × int8 products summed into int32 accumulators (a float64
BLAS product of the zero-point-shifted operands is exact for them, since every partial
sum stays far below 2**53, and ``hwbench.kernels.spec`` has already refused any problem
whose sums could leave int32), requantized by the shared gemmlowp arithmetic of
``hwbench.kernels.quantization``. Float32 work the array cannot do natively is served by
quantizing on the fly — activations per tensor to uint8 (asymmetric, the range widened
to hold 0), weights per output channel to int8 (symmetric) — then the exact integer
product, then a float32 dequantization: approximate, and said so in ``info()``. Sigmoid
goes through a lookup table on 16-bit fixed-point codes, as the TPU's activation unit
used tables.
"""

from __future__ import annotations

import math

import numpy as np

from hwbench.kernels.im2col import conv2d_int8_by_gemm
from hwbench.kernels.quantization import along_axis, int8_gemm_by_float64, quantize
from hwbench.kernels.spec import ConvProblem

UINT8_LEVELS = 255
INT8_MAX = 127


_HOST_GEMM: list = []  # [oneDNN binding or None], looked up once


def _host_int8_gemm():
    """oneDNN's exact BLAS-style int8 GEMM when the ``cpu`` extra is installed: the same
    int32 values as the float64 BLAS product below, 5-15x faster on the host (VNNI), which
    keeps whole-model simulations quick. None without it."""
    if not _HOST_GEMM:
        try:
            from hwbench.backends.cpu import onednn

            _HOST_GEMM.append(onednn.load() if onednn.availability()[0] else None)
        except Exception:  # noqa: BLE001 - any failure: the NumPy path serves
            _HOST_GEMM.append(None)
    return _HOST_GEMM[0]


def gemm_int8(a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point) -> np.ndarray:
    """Exact int32 ``(A - za) @ (B - zb)`` (za scalar or per row, zb scalar or per column)."""
    dnnl = _host_int8_gemm()
    if dnnl is not None and np.ndim(a_zero_point) == 0 and np.ndim(b_zero_point) == 0:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        out = np.empty((a.shape[0], b.shape[1]), np.int32)
        dnnl.gemm_int8(a, b, int(a_zero_point), int(b_zero_point), out)
        return out
    return int8_gemm_by_float64(a, b, a_zero_point, b_zero_point)


def conv2d_int8(x: np.ndarray, w: np.ndarray, p: ConvProblem, x_zero_point,
                w_zero_point) -> np.ndarray:
    """Exact int32 ConvInteger, lowered by the shared im2col to one array GEMM per group."""
    return conv2d_int8_by_gemm(np.asarray(x), np.asarray(w), p, x_zero_point, w_zero_point,
                               gemm_int8)


# -- float32 served by int8 ------------------------------------------------------------------
def activation_params(x: np.ndarray) -> tuple[np.float32, np.uint8]:
    """Per-tensor uint8 ``(scale, zero_point)`` covering ``[min(x, 0), max(x, 0)]``, so that
    a real 0 (padding, Relu) is exact."""
    lo = min(float(np.min(x)), 0.0)
    hi = max(float(np.max(x)), 0.0)
    if not math.isfinite(hi - lo):  # NaN or inf: no scale fits, and the result is poisoned
        return np.float32(np.nan), np.uint8(0)
    if hi == lo:
        return np.float32(1.0), np.uint8(0)
    scale = np.float32((hi - lo) / UINT8_LEVELS)
    zero_point = np.uint8(np.clip(np.rint(-lo / float(scale)), 0, UINT8_LEVELS))
    return scale, zero_point


def weight_scales(w: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric int8 scales per slice along ``axis`` (max |w| / 127; 1 for all-zero)."""
    others = tuple(i for i in range(w.ndim) if i != axis)
    peak = np.max(np.abs(w), axis=others).astype(np.float32)
    scales = peak / np.float32(INT8_MAX)  # NaN or inf where a slice holds them
    scales[peak == 0] = 1.0
    return scales


def _quantize(x: np.ndarray, scale, zero_point, dtype, axis: int | None = None) -> np.ndarray:
    """``quantize``, except that slices whose scale is not finite (they hold NaN or inf)
    become zero codes: their dequantization by that scale makes the results NaN, as an
    unscreened float input's results would be, instead of casting NaN to an integer."""
    scale = np.asarray(scale, np.float32)
    bad = ~np.isfinite(scale)
    if not bad.any():
        return quantize(x, scale, zero_point, dtype, axis)
    clean = np.where(np.isfinite(x), x, np.float32(0)).astype(np.float32)
    return quantize(clean, np.where(bad, np.float32(1), scale), zero_point, dtype, axis)


def quantized_weights(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights with one scale per slice along ``axis``, and the scales."""
    sw = weight_scales(w, axis=axis)
    return _quantize(w, sw, np.zeros(sw.shape, np.int8), np.int8, axis=axis), sw


def quantized_gemm(a: np.ndarray, b: np.ndarray,
                   qb: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """float32 ``A @ B`` through the int8 array: A per tensor, B per column; float32 out.
    ``qb``: B's ``quantized_weights`` when the caller has them already."""
    sa, za = activation_params(a)
    qb_, sb = qb if qb is not None else quantized_weights(b, axis=1)
    qa = _quantize(a, sa, za, np.uint8)
    acc = gemm_int8(qa, qb_, za, np.int8(0))
    return dequantize_accumulators(acc, sa * sb, axis=1)


def quantized_conv2d(x: np.ndarray, w: np.ndarray, p: ConvProblem,
                     qw: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """float32 convolution through the int8 array: x per tensor, w per filter. ``qw``:
    w's ``quantized_weights`` when the caller has them already."""
    sx, zx = activation_params(x)
    qw_, sw = qw if qw is not None else quantized_weights(w, axis=0)
    qx = _quantize(x, sx, zx, np.uint8)
    acc = conv2d_int8(qx, qw_, p, zx, np.int8(0))
    return dequantize_accumulators(acc, sx * sw, axis=1)


def dequantize_accumulators(acc: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    """int32 accumulators times their float32 scales (per channel along ``axis``), float32;
    the product is formed in float64 so that sums past 2**24 lose nothing before it."""
    out = acc.astype(np.float64)
    out *= along_axis(np.asarray(scale, np.float32).astype(np.float64), axis, acc.ndim)
    return out.astype(np.float32)


# -- the activation unit's sigmoid table -------------------------------------------------------
SIGMOID_INPUT_FRACTION_BITS = 11  # input codes: int16, steps of 2**-11, covering [-16, 16)
SIGMOID_OUTPUT_BITS = 16          # output codes: uint16 fractions of 2**16
_SIGMOID_TABLE: np.ndarray | None = None


def sigmoid_table() -> np.ndarray:
    """σ at every int16 input code, as uint16 output codes (index: code + 32768)."""
    global _SIGMOID_TABLE
    if _SIGMOID_TABLE is None:
        codes = np.arange(-(1 << 15), 1 << 15, dtype=np.float64)
        x = codes / (1 << SIGMOID_INPUT_FRACTION_BITS)
        sigma = 0.5 * np.tanh(0.5 * x) + 0.5
        table = np.clip(np.rint(sigma * (1 << SIGMOID_OUTPUT_BITS)), 0,
                        (1 << SIGMOID_OUTPUT_BITS) - 1)
        _SIGMOID_TABLE = table.astype(np.uint16)
    return _SIGMOID_TABLE


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) by table lookup: x quantized to 16-bit fixed point (saturating at ±16, where σ
    is within 1.2e-7 of 0 or 1), the table's uint16 code scaled back to float32. Error at
    most 2**-14 (input rounding, σ' <= 1/4) + 2**-17 (output rounding)."""
    if np.ndim(x) == 0:  # ufuncs of 0-d input return scalars, which cannot be indexed
        return sigmoid(np.reshape(x, (1,))).reshape(())
    scale = np.float32(1 << SIGMOID_INPUT_FRACTION_BITS)
    codes = np.rint(np.multiply(x, scale, dtype=np.float32))
    nan = np.isnan(codes)
    has_nan = bool(nan.any())
    if has_nan:  # only an unscreened input (check_finite=False) gets here: NaN stays NaN
        codes[nan] = 0
    np.clip(codes, -(1 << 15), (1 << 15) - 1, out=codes)
    index = codes.astype(np.int32) + (1 << 15)
    out = sigmoid_table()[index].astype(np.float32)
    out *= np.float32(2.0 ** -SIGMOID_OUTPUT_BITS)
    if has_nan:
        out[nan] = np.nan
    return out
