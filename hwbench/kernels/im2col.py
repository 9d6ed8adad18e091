"""im2col: the lowering of a convolution to one GEMM, as the talk's Op layer shows.

Every backend without a native convolution uses this one routine (or its device twin
written against the same index arithmetic), so the lowering is defined in one place.
The column matrix is laid out (C/groups·R·S) × (N·OH·OW) per group, so that
``W_g[K/g, C/g·R·S] @ cols_g`` gives the output of group g.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwbench.kernels.spec import ConvProblem


def im2col(x: np.ndarray, p: ConvProblem, pad_value: int | float = 0) -> np.ndarray:
    """NCHW input -> (groups, C/g·R·S, N·OH·OW) columns, in ``x``'s dtype.

    ``pad_value``: what the padding holds; a quantized input pads with its zero point
    (the code of a real 0).
    """
    pt, pl, pb, pr = p.padding
    xp = (np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
          if any(p.padding) else x)
    sh, sw = p.stride
    dh, dw = p.dilation
    oh, ow = p.out_h, p.out_w
    n_, c_, hp, wp = xp.shape
    s0, s1, s2, s3 = xp.strides
    # A zero-copy 6-D view (N, C, R, S, OH, OW) of every tap, then one reshape copy.
    view = np.lib.stride_tricks.as_strided(
        xp,
        shape=(n_, c_, p.r, p.s, oh, ow),
        strides=(s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw),
        writeable=False,
    )
    cg = p.c // p.groups
    cols = view.reshape(p.n, p.groups, cg, p.r, p.s, oh, ow).transpose(1, 2, 3, 4, 0, 5, 6)
    return np.ascontiguousarray(cols).reshape(p.groups, cg * p.r * p.s, p.n * oh * ow)


def im2row(x_nhwc: np.ndarray, p: ConvProblem, pad_value: int | float = 0) -> np.ndarray:
    """NHWC input -> (N·OH·OW, R·S·C) patches, one row per output pixel (groups == 1).

    The transpose of ``im2col``'s layout, gathered from channels-last data so that each
    tap copies a contiguous run of C values: with patches as the GEMM's A operand and
    the filters as an (R·S·C, K) B, the product comes out channels-last, and BLAS-style
    int8 GEMMs want the 8-bit activations unsigned in A. A 1×1, stride-1 conv needs no
    copy at all.
    """
    if p.groups != 1:
        raise ValueError("im2row: groups must be 1")
    if (p.r, p.s, p.stride, p.padding) == (1, 1, (1, 1), (0, 0, 0, 0)):
        return x_nhwc.reshape(-1, p.c)
    pt, pl, pb, pr = p.padding
    xp = (np.pad(x_nhwc, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
          if any(p.padding) else x_nhwc)
    s0, s1, s2, s3 = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, shape=(p.n, p.out_h, p.out_w, p.r, p.s, p.c),
        strides=(s0, s1 * p.stride[0], s2 * p.stride[1], s1 * p.dilation[0],
                 s2 * p.dilation[1], s3),
        writeable=False)
    return np.ascontiguousarray(view).reshape(p.n * p.out_h * p.out_w, p.r * p.s * p.c)


def col2output(y: np.ndarray, p: ConvProblem) -> np.ndarray:
    """(groups, K/g, N·OH·OW) GEMM result -> NCHW output."""
    out = y.reshape(p.groups, p.k // p.groups, p.n, p.out_h, p.out_w)
    return np.ascontiguousarray(out.transpose(2, 0, 1, 3, 4)).reshape(p.output_shape)


def col2im(cols: np.ndarray, p: ConvProblem) -> np.ndarray:
    """The adjoint of ``im2col``: (groups, C/g·R·S, N·OH·OW) columns summed back into NCHW.

    This is the data gradient of a convolution lowered to GEMM: every column entry is
    added to the input pixel it was read from (overlapping windows accumulate).
    """
    pt, pl, pb, pr = p.padding
    sh, sw = p.stride
    dh, dw = p.dilation
    oh, ow = p.out_h, p.out_w
    cg = p.c // p.groups
    taps = cols.reshape(p.groups, cg, p.r, p.s, p.n, oh, ow).transpose(4, 0, 1, 2, 3, 5, 6)
    taps = taps.reshape(p.n, p.c, p.r, p.s, oh, ow)
    padded = np.zeros((p.n, p.c, p.h + pt + pb, p.w + pl + pr), dtype=cols.dtype)
    for i in range(p.r):
        for j in range(p.s):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            columns = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            padded[:, :, rows, columns] += taps[:, :, i, j]
    return padded[:, :, pt:pt + p.h, pl:pl + p.w]


def conv2d_int8_by_gemm(x: np.ndarray, w: np.ndarray, p: ConvProblem, x_zero_point: np.ndarray,
                        w_zero_point: np.ndarray, gemm_int8: Callable) -> np.ndarray:
    """ConvInteger lowered to im2col + one int8 GEMM per group: ``W_g - zw`` (per-row zero
    points) times ``cols_g - zx``; ``gemm_int8(a, b, a_zero_point, b_zero_point)`` is the
    backend's exact int8 GEMM on host arrays. Returns int32 NCHW."""
    cols = im2col(x, p, pad_value=int(x_zero_point))
    kg = p.k // p.groups
    wmat = np.ascontiguousarray(w).reshape(p.groups, kg, -1)
    per_row = np.ndim(w_zero_point) > 0
    zw = np.asarray(w_zero_point).reshape(p.groups, kg) if per_row else w_zero_point
    out = np.empty((p.groups, kg, cols.shape[2]), dtype=np.int32)
    for g in range(p.groups):
        out[g] = gemm_int8(wmat[g], cols[g], zw[g] if per_row else zw, x_zero_point)
    return col2output(out, p)
