"""Float64 references for the upsampling family, and the shared host application of a
Resize table (``resize_axis``), which the host backends run in float32.

``conv_transpose2d`` here is written directly (every tap of every input pixel added into
the output it reaches), independent of the col2im lowering the backends use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.kernels.resize_tables import AxisTable
from hwbench.kernels.spec.upsampling import ConvTransposeProblem, ResizeProblem


def window(full: Any, p: ConvTransposeProblem, xp: Any = np) -> Any:
    """The output window of the uncropped result ``full`` (n, k, full_h, full_w): rows
    from ``pad_begin``, a negative pad or end pad extending with zeros."""
    pt, pl = p.padding[0], p.padding[1]
    if (pt, pl, p.out_h, p.out_w) == (0, 0, p.full_h, p.full_w):
        return full
    out = xp.zeros(p.output_shape, dtype=full.dtype)
    r0, c0 = max(pt, 0), max(pl, 0)
    r1, c1 = min(pt + p.out_h, p.full_h), min(pl + p.out_w, p.full_w)
    if r1 > r0 and c1 > c0:
        out[:, :, r0 - pt:r1 - pt, c0 - pl:c1 - pl] = full[:, :, r0:r1, c0:c1]
    return out


def conv_transpose2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                     p: ConvTransposeProblem) -> np.ndarray:
    """ONNX ConvTranspose in float64."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
    (sh, sw), (dh, dw) = p.stride, p.dilation
    full = np.zeros((p.n, p.k, p.full_h, p.full_w))
    for gi in range(g):
        xg = x[:, gi * cg:(gi + 1) * cg]
        wg = w[gi * cg:(gi + 1) * cg]  # (cg, kg, r, s)
        for i in range(p.r):
            for j in range(p.s):
                contrib = np.einsum("nchw,ck->nkhw", xg, wg[:, :, i, j])
                full[:, gi * kg:(gi + 1) * kg, i * dh:i * dh + sh * (p.h - 1) + 1:sh,
                     j * dw:j * dw + sw * (p.w - 1) + 1:sw] += contrib
    out = window(full, p)
    if bias is not None:
        out = out + np.asarray(bias, np.float64).reshape(1, -1, 1, 1)
    return out


def resize_axis(x: Any, t: AxisTable, extrapolation_value: float, dtype: Any = np.float32,
                xp: Any = np) -> Any:
    """One table applied along its axis, in ``dtype`` (``xp``: NumPy or CuPy)."""
    index = xp.asarray(t.index)
    weight = xp.asarray(t.weight.astype(dtype))
    shape = (1,) * t.axis + (t.out_len,) + (1,) * (x.ndim - t.axis - 1)
    out = None
    for k in range(t.taps):
        term = xp.take(x, index[:, k], axis=t.axis) * weight[:, k].reshape(shape)
        out = term if out is None else out + term
    if t.outside is not None:
        out = xp.where(xp.asarray(t.outside).reshape(shape), dtype(extrapolation_value), out)
    return out.astype(dtype, copy=False)


def resize(x: Any, p: ResizeProblem, dtype: Any = np.float64) -> np.ndarray:
    """ONNX Resize in ``dtype`` (float64: the reference)."""
    out = np.asarray(x, dtype)
    for t in p.tables:
        out = resize_axis(out, t, p.extrapolation_value, dtype)
    return np.ascontiguousarray(out, dtype)
