"""onnxruntime's int8 arithmetic (its CPU kernels, MLAS), for the ``onnxruntime-requant``
math mode: the same float32 steps in the same order, so that int8 files give
onnxruntime's codes bit for bit. Written from the facts of its source (what is computed
in float32 and in which order, how ties round), not from its code.

- Requantization (QLinearConv, QLinearMatMul, QGemm): the int32 accumulator (plus the
  int32 bias) converted to float32, times the float32 scale ``(a_scale * b_scale) /
  y_scale``, clamped to the codes less the zero point, rounded half to even, plus the
  zero point. The exact mode (``quantization.requantize``) rounds the rational product
  instead; the two differ by 1 LSB for about 1 code in 1e5.
- QLinearAdd: ``fma(a, ra, fma(b, rb, zc - fma(ra, za, rb * zb)))`` in float32 with
  ``ra = a_scale / c_scale``, ``rb = b_scale / c_scale`` (a scalar operand folds into
  the constant first), rounded half to even, saturated.
- QLinearMul: ``(a - za) * (b - zb)`` as float32 times ``a_scale * b_scale / c_scale``,
  plus ``zc``, then rounded half to even.
- QLinearSigmoid, QLinearLeakyRelu: a 256-entry table of
  ``quantize(f(dequantize(code)))``.
- QLinearGlobalAveragePool: the integer sum less ``za * count`` times the float32
  ``x_scale / (y_scale * count)``.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _saturate(y: np.ndarray, zero_point, dtype) -> np.ndarray:
    """float32 values in output units -> codes: clamp to the codes less the zero point,
    round half to even, add the zero point."""
    info = np.iinfo(dtype)
    zp = F32(zero_point)
    y = np.clip(y, F32(info.min) - zp, F32(info.max) - zp)
    return (np.rint(y) + zp).astype(dtype)


def output_scale(a_scale, b_scale, y_scale) -> np.ndarray:
    """``a_scale * b_scale / y_scale`` in float32, left to right (per channel if
    ``b_scale`` is)."""
    return (F32(np.asarray(a_scale, F32).reshape(())) * np.asarray(b_scale, F32)
            / F32(np.asarray(y_scale, F32).reshape(()))).astype(F32)


def requantize(acc: np.ndarray, scale, zero_point, dtype, bias=None) -> np.ndarray:
    """int32 accumulators (plus an int32 ``bias`` broadcast against them, wrapping as
    int32 addition does) -> codes by float32 multiplication, ``scale`` broadcast."""
    acc = np.asarray(acc).astype(np.int32, copy=False)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int32)
    return _saturate(acc.astype(F32) * np.asarray(scale, F32), zero_point, dtype)


def fused_multiply_add(x: np.ndarray, factor, addend) -> np.ndarray:
    """float32 ``x * factor + addend`` rounded once, as an FMA instruction does: the
    product of a float32 code (at most 9 bits) and a float32 factor is exact in
    float64, and so is the sum with a float32 of comparable size, so float64 rounds
    only at the final cast."""
    return (np.asarray(x, np.float64) * np.float64(factor)
            + np.asarray(addend, np.float64)).astype(F32)


def qlinear_add(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype) -> np.ndarray:
    """QLinearAdd of broadcastable codes ``a`` and ``b``: onnxruntime's AVX2 kernel
    (x86-64), ``fma(a, ra, fma(b, rb, fixed))``; a scalar operand folds into ``fixed``
    first."""
    ra = F32(a_scale) / F32(c_scale)
    rb = F32(b_scale) / F32(c_scale)
    # its compiler contracts ``ra * za + rb * zb`` (and, below, a scalar's ``fixed +
    # x * r``) into FMAs: measured, one code in 1e5 of ViT's adds depends on it
    fixed = F32(c_zp) - fused_multiply_add(ra, F32(a_zp), rb * F32(b_zp))
    a = np.asarray(a).astype(F32)
    b = np.asarray(b).astype(F32)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if b.size == 1 and a.size > 1:
        y = fused_multiply_add(a, ra, fused_multiply_add(b.reshape(()), rb, fixed))
    elif a.size == 1 and b.size > 1:
        y = fused_multiply_add(b, rb, fused_multiply_add(a.reshape(()), ra, fixed))
    else:
        y = fused_multiply_add(a, ra, fused_multiply_add(b, rb, fixed))
    return _saturate(np.broadcast_to(y, shape), 0, dtype)


def qlinear_mul(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype) -> np.ndarray:
    """QLinearMul of broadcastable codes. Unlike requantization, the output zero point
    is added before rounding (a tie like 177.5 + 1 rounds to 178, not 178 + 1): measured
    against onnxruntime with scales 1/16, where half the products are ties."""
    info = np.iinfo(dtype)
    ratio = F32(a_scale) * F32(b_scale) / F32(c_scale)
    a = np.asarray(a).astype(F32) - F32(a_zp)
    b = np.asarray(b).astype(F32) - F32(b_zp)
    y = (a * b) * ratio + F32(c_zp)
    return np.rint(np.clip(y, F32(info.min), F32(info.max))).astype(dtype)


def lookup_table(fn, x_scale, x_zp, y_scale, y_zp, dtype) -> np.ndarray:
    """256 codes: ``quantize(fn(dequantize(code)))``, indexed by the code's byte."""
    dtype = np.dtype(dtype)
    codes = np.arange(256, dtype=np.uint8).view(dtype)
    x = (codes.astype(F32) - F32(x_zp)) * F32(x_scale)
    y = np.asarray(fn(x), F32)
    return _saturate(y / F32(y_scale), y_zp, dtype)


def apply_table(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    return table[codes.view(np.uint8)]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (F32(1) / (F32(1) + np.exp(-x))).astype(F32)


def leaky_relu(alpha: float):
    def fn(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, x * F32(alpha)).astype(F32)
    return fn


def global_average_pool(x: np.ndarray, x_scale, x_zp, y_scale, y_zp, dtype) -> np.ndarray:
    """QLinearGlobalAveragePool of NCHW codes -> (N, C, 1, 1)."""
    n, c = x.shape[:2]
    count = int(np.prod(x.shape[2:]))
    scale = F32(x_scale) / (F32(y_scale) * F32(count))
    acc = np.asarray(x).reshape(n, c, count).astype(np.int64).sum(axis=2)
    acc = (acc - int(x_zp) * count).astype(np.int32)
    return _saturate(acc.astype(F32) * scale, y_zp, dtype).reshape(n, c, 1, 1)


def average_pool(x: np.ndarray, x_scale, x_zp, y_scale, y_zp, kernel, stride, pads,
                 out_hw, count_include_pad: bool, dtype) -> np.ndarray:
    """QLinearAveragePool of NCHW codes: each window's dequantized values summed in
    float32 row by row, divided by its count (the kernel's size, or only the values
    inside the image), then ``round(y / y_scale + y_zp)`` (the zero point added before
    rounding), saturated. ``pads``: (top, left, bottom, right)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    top, left = pads[0], pads[1]
    n, c, h, w = x.shape
    values = (np.asarray(x).astype(F32) - F32(x_zp)) * F32(x_scale)
    bottom = max(0, (oh - 1) * sh + kh - top - h)
    right = max(0, (ow - 1) * sw + kw - left - w)
    padded = np.zeros((n, c, top + h + bottom, left + w + right), F32)
    padded[:, :, top:top + h, left:left + w] = values
    acc = np.zeros((n, c, oh, ow), F32)
    for i in range(kh):  # row by row, as onnxruntime adds (a padded 0 adds nothing)
        for j in range(kw):
            acc += padded[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
    if count_include_pad:
        count = np.full((oh, ow), kh * kw)
    else:
        hs = np.arange(oh) * sh - top
        ws = np.arange(ow) * sw - left
        rows = np.minimum(hs + kh, h) - np.maximum(hs, 0)
        cols = np.minimum(ws + kw, w) - np.maximum(ws, 0)
        count = rows[:, None] * cols[None, :]
    y = acc / count.astype(F32)
    info = np.iinfo(dtype)
    q = np.rint(y / F32(y_scale) + F32(y_zp))
    return np.clip(q, info.min, info.max).astype(dtype)
