"""Float64 (and exact integer) references for every kernel of the interface.

Written for obviousness, not speed: the conv reference sums over filter taps with strided
slices instead of using im2col, so a bug in the shared im2col cannot hide in both the
reference and a backend. Conformance tests compare every backend against these.
"""

from __future__ import annotations

import numpy as np

from hwbench.kernels.quantization import combined_scale, quantize_multiplier, requantize
from hwbench.kernels.spec import normalize_padding


def gemm(a, b, bias=None, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    out = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return out


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
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
    return out


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
