"""Float64 (and exact integer) references for every kernel of the interface.

Written for obviousness, not speed: the conv reference sums over filter taps with strided
slices instead of using im2col, so a bug in the shared im2col cannot hide in both the
reference and a backend. Conformance tests compare every backend against these.
"""

from __future__ import annotations

import numpy as np

from hwbench.kernels import unary_reference
from hwbench.kernels.quantization import (
    add_bias,
    combined_scale,
    quantize_multiplier,
    requantize,
)
from hwbench.kernels.spec import normalize_padding
from hwbench.kernels.spec.activations import ACTIVATIONS


def gemm(a, b, bias=None, trans_a: bool = False, trans_b: bool = False,
         activation: str | None = None) -> np.ndarray:
    """``activation(op(a) @ op(b) + bias)`` in float64 (ONNX Gemm, then FusedGemm's
    activation)."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    out = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return activation64(out, activation)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups: int = 1, *,
           residual=None, activation: str | None = None) -> np.ndarray:
    """ONNX Conv in float64, then the fused epilogue: ``activation(conv + residual)``."""
    x64 = np.asarray(x, dtype=np.float64)
    w64 = np.asarray(w, dtype=np.float64)
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    pt, pl, pb, pr = normalize_padding(padding)
    n, c, h, wd = x64.shape
    k, cg, r, s = w64.shape
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x64
    oh = (h + pt + pb - dh * (r - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (s - 1) - 1) // sw + 1
    kg = k // groups
    out = np.zeros((n, k, oh, ow))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w64[g * kg:(g + 1) * kg]
        for i in range(r):
            for j in range(s):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
                # (n, c, oh, ow) x (k, c) -> (n, oh, ow, k), one BLAS call per tap
                tap = np.tensordot(patch, wg[:, :, i, j], axes=([1], [1]))
                out[:, g * kg:(g + 1) * kg] += tap.transpose(0, 3, 1, 2)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64).reshape(1, k, 1, 1)
    if residual is not None:
        out += np.asarray(residual, dtype=np.float64)
    return activation64(out, activation)


def activation64(x, activation: str | None) -> np.ndarray:
    """One of ``spec.ACTIVATIONS`` (or None: ``x`` itself) in float64."""
    if activation is None:
        return np.asarray(x, dtype=np.float64)
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    x = np.asarray(x, dtype=np.float64)
    a = ACTIVATIONS[activation]
    if a.unary is not None:
        return unary_reference.unary(x, a.unary, a.alpha, a.beta)
    if activation == "relu":
        return np.maximum(x, 0.0)
    s = sigmoid(x)
    return s if activation == "sigmoid" else x * s  # silu


def sigmoid(x) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x64))


def sigmoid_backward(y, dy) -> np.ndarray:
    y64 = np.asarray(y, dtype=np.float64)
    return np.asarray(dy, dtype=np.float64) * y64 * (1.0 - y64)


def relu(x) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def gemm_int8(a, b, a_zero_point=0, b_zero_point=0) -> np.ndarray:
    """Exact ``(A - za) @ (B - zb)`` as int64 (za per row or scalar, zb per column or scalar).

    Computed with float64 BLAS, which is exact here: each product is at most 255·255 and a
    sum of K of them stays below 2**53 for any K under 10**11. (NumPy's integer matmul
    has no BLAS and takes minutes at 2048³.) Tests cross-check it with int64 matmul.
    """
    za = np.asarray(a_zero_point, dtype=np.float64)
    zb = np.asarray(b_zero_point, dtype=np.float64)
    a64 = np.asarray(a, dtype=np.float64) - (za.reshape(-1, 1) if za.ndim else za)
    b64 = np.asarray(b, dtype=np.float64) - (zb.reshape(1, -1) if zb.ndim else zb)
    return (a64 @ b64).astype(np.int64)


def qgemm(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point,
          ) -> np.ndarray:
    """ONNX QLinearMatMul through exact int64 accumulation and fixed-point requantization."""
    acc = gemm_int8(a, b, a_zero_point, b_zero_point)
    fixed = quantize_multiplier(combined_scale(a_scale, b_scale, y_scale))
    y_dtype = np.asarray(y_zero_point).dtype
    return requantize(acc, fixed, np.asarray(y_zero_point).item(), y_dtype)


def conv2d_int8(x, w, x_zero_point=0, w_zero_point=0, stride=1, padding=0, dilation=1,
                groups: int = 1) -> np.ndarray:
    """Exact ONNX ConvInteger as int64: the float64 conv of ``x - zx`` and ``w - zw``
    (per output channel), which pads with the zero point, i.e. with a real 0."""
    zw = np.asarray(w_zero_point, dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64) - float(np.asarray(x_zero_point))
    w64 = np.asarray(w, dtype=np.float64) - (zw.reshape(-1, 1, 1, 1) if zw.ndim else zw)
    return conv2d(x64, w64, None, stride, padding, dilation, groups).astype(np.int64)


def qconv2d(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
            bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """ONNX QLinearConv: exact accumulators plus int32 bias (saturated to int32), requantized
    per output channel with the fixed-point multiplier of ``x_scale * w_scale / y_scale``."""
    acc = conv2d_int8(x, w, x_zero_point, w_zero_point, stride, padding, dilation, groups)
    acc = add_bias(acc, bias, axis=1)
    fixed = quantize_multiplier(combined_scale(x_scale, w_scale, y_scale)).along(1, 4)
    zy = np.asarray(y_zero_point)
    return requantize(acc, fixed, zy.item(), zy.dtype)


# -- the ops full CNNs need -----------------------------------------------------------------
# Pooling is written per output pixel in input coordinates: each window lists its taps,
# keeps those inside the input (or the explicit padding, for count_include_pad), and
# reduces. No padded copy and no sliding-window views, unlike the backends.
def _pool_axis_taps(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int,
                    ceil_mode: bool) -> list[list[int]]:
    span = dilation * (kernel - 1) + 1
    exact = (size + begin + end - span) / stride + 1
    out = int(np.ceil(exact)) if ceil_mode else int(np.floor(exact))
    if ceil_mode and (out - 1) * stride >= size + begin:
        out -= 1  # ONNX: no window may start in the end padding
    return [[o * stride - begin + t * dilation for t in range(kernel)] for o in range(out)]


def _pool2d(x, kernel, stride, padding, dilation, ceil_mode, reduce):
    x64 = np.asarray(x, dtype=np.float64)
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    stride = 1 if stride is None else stride
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    pt, pl, pb, pr = normalize_padding(padding)
    n, c, h, w = x64.shape
    rows = _pool_axis_taps(h, kh, sh, dh, pt, pb, ceil_mode)
    cols = _pool_axis_taps(w, kw, sw, dw, pl, pr, ceil_mode)
    out = np.empty((n, c, len(rows), len(cols)))
    for i, row_taps in enumerate(rows):
        for j, col_taps in enumerate(cols):
            out[:, :, i, j] = reduce(x64, row_taps, col_taps, (h, w), (pt, pl, pb, pr))
    return out


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False) -> np.ndarray:
    def window_max(x64, row_taps, col_taps, hw, pads):
        r = [t for t in row_taps if 0 <= t < hw[0]]
        c = [t for t in col_taps if 0 <= t < hw[1]]
        return x64[:, :, r][:, :, :, c].max(axis=(2, 3))

    return _pool2d(x, kernel, stride, padding, dilation, ceil_mode, window_max)


def avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False,
               count_include_pad=False) -> np.ndarray:
    def window_mean(x64, row_taps, col_taps, hw, pads):
        r = [t for t in row_taps if 0 <= t < hw[0]]
        c = [t for t in col_taps if 0 <= t < hw[1]]
        total = x64[:, :, r][:, :, :, c].sum(axis=(2, 3))
        if not count_include_pad:
            return total / (len(r) * len(c))
        # padded pixels count as zeros, the ceil-mode overhang past the padding does not
        pr = [t for t in row_taps if -pads[0] <= t < hw[0] + pads[2]]
        pc = [t for t in col_taps if -pads[1] <= t < hw[1] + pads[3]]
        return total / (len(pr) * len(pc))

    return _pool2d(x, kernel, stride, padding, 1, ceil_mode, window_mean)


def global_avg_pool2d(x) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    return x64.sum(axis=(2, 3), keepdims=True) / (x64.shape[2] * x64.shape[3])


def softmax(x, axis: int = -1) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    e = np.exp(x64 - x64.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def add(a, b) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) + np.asarray(b, dtype=np.float64)


def mul(a, b) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)


def concat(arrays, axis: int) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays], axis=axis)


def lrn(x, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0) -> np.ndarray:
    """ONNX LRN: channel c sums squares over [c - floor((size-1)/2), c + ceil((size-1)/2)]."""
    x64 = np.asarray(x, dtype=np.float64)
    channels = x64.shape[1]
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    out = np.empty_like(x64)
    for c in range(channels):
        lo, hi = max(0, c - before), min(channels, c + after + 1)
        square_sum = (x64[:, lo:hi] ** 2).sum(axis=1)
        out[:, c] = x64[:, c] / (bias + alpha / size * square_sum) ** beta
    return out


def reshape(x, shape) -> np.ndarray:
    return np.asarray(x).reshape(tuple(shape))


def transpose(x, perm) -> np.ndarray:
    return np.asarray(x).transpose(None if perm is None else tuple(perm))
