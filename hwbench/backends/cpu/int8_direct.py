"""Exact int32 accumulators of grouped and depthwise int8 convolutions on oneDNN.

The exact mode's GEMM path (``Int8Kernels._int8_conv_rows``) serves groups == 1; grouped
and depthwise convolutions (MobileNet, EfficientNet, RegNet) used to run one small int8
GEMM per group from Python, ~10x slower than the float model. Here they run as one oneDNN
int8 convolution with an s32 dst and no scales: oneDNN accumulates in int32 but converts
the accumulator (and the src zero point's compensation) through float32 before storing
it, which is exact only while every partial value stays below 2**24 in magnitude. That is
proved per filter before the primitive is used: every term (``x·w`` sums with x in
[0, 255] after oneDNN's +128 shift of int8 src, and ``zp·Σw``) is at most
``256·Σ|w|``, and two of them added at most twice that, so ``512·Σ|w| < 2**24`` makes the
float path exact. Otherwise (or without a symmetric weight zero point, or without an
implementation) the caller's exact path runs. The shared fixed-point requantization
then maps the int32 result to 8 bits, so the output is bit for bit the reference's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.float32_requant import as_int8, fused_or_none, symmetric_zero_point
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import (
    ARG_ATTR_ZERO_POINTS,
    ARG_DST,
    ARG_SRC,
    ARG_WEIGHTS,
    QUERY_WEIGHTS_MD,
    Primitive,
)
from hwbench.backends.cpu.primitives import reorder
from hwbench.kernels import spec

EXACT_LIMIT = 2 ** 24  # float32 represents every integer of smaller magnitude


def float_path_exact(w: np.ndarray) -> bool:
    """True when oneDNN's float32 conversion of an int8 conv's accumulators is exact for
    these (symmetric, moved-to-int8) OIHW filters: ``512·Σ|w| < 2**24`` per filter."""
    per_filter = np.abs(w.reshape(w.shape[0], -1).astype(np.int64)).sum(axis=1)
    return bool(per_filter.size == 0 or 512 * int(per_filter.max()) < EXACT_LIMIT)


class QConvS32:
    """oneDNN's int8 convolution, u8/s8 NHWC src with a zero point, s8 (grouped) weights,
    s32 NHWC dst: the plain accumulator ``Σ (x - zx)·w``, no bias, no scales."""

    def __init__(self, d: onednn.OneDNN, p: spec.Int8ConvProblem, x_dtype: np.dtype) -> None:
        g = p.groups
        wshape = (p.k, p.c, p.r, p.s) if g == 1 else (g, p.k // g, p.c // g, p.r, p.s)
        src = d.memory_desc((p.n, p.c, p.h, p.w), x_dtype, tag="acdb")
        wei = d.memory_desc(wshape, "s8", tag="any")
        dst = d.memory_desc(p.output_shape, "s32", tag="acdb")
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        attr = d.attr(zero_points={ARG_SRC: 0})
        pd = d.create_pd(
            "dnnl_convolution_forward_primitive_desc_create", d.engine,
            d.prop["forward_inference"], d.alg["convolution_direct"], src.handle, wei.handle,
            None, dst.handle, onednn.Dims(*p.stride), onednn.Dims(*dil),
            onednn.Dims(pt, pl), onednn.Dims(pb, pr), attr.handle)
        args: dict[int, Any] = {ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst,
                                ARG_ATTR_ZERO_POINTS | ARG_SRC: d.memory_desc((1,), "s32")}
        self.prim = Primitive(d, pd, args)
        self.wei_reorder = reorder(d, d.memory_desc(wshape, "s8"), self.prim.mds[ARG_WEIGHTS])

    def pack_weights(self, w: np.ndarray) -> np.ndarray:
        """int8 OIHW filters in the primitive's layout (with oneDNN's compensation)."""
        if self.wei_reorder is None:
            return w
        packed = aligned_empty(self.prim.mds[ARG_WEIGHTS].size, np.uint8)
        self.wei_reorder.execute({ARG_SRC: w, ARG_DST: packed})
        return packed


def conv_s32_rows(backend: Any, p: spec.Int8ConvProblem, x, w: np.ndarray, zx,
                  zw) -> np.ndarray | None:
    """ConvInteger's exact int32 result as (pixels, filters) rows, NHWC order, from one
    oneDNN int8 convolution; None where that is not provably exact (see the module
    docstring) or oneDNN has no implementation, and the caller's exact path runs."""
    if np.ndim(zx) != 0 or symmetric_zero_point(w.dtype, zw) is None:
        return None
    x_dtype = np.dtype(p.x_dtype)
    key = ("qconv-s32", p, x_dtype.str)
    conv = backend._primitive(key, lambda: fused_or_none(
        lambda: QConvS32(backend.dnnl, p, x_dtype)))
    if conv is None:
        return None

    def build(w: np.ndarray):
        w8 = as_int8(w)
        return conv.pack_weights(w8) if float_path_exact(w8) else None

    packed = backend._once_per_array(w, key, build)
    if packed is None:
        return None
    if isinstance(x, ChannelsLastArray):
        src = x.nhwc
    else:
        src = backend._buffers.empty((p.n, p.h, p.w, p.c), x_dtype)
        np.copyto(src, np.asarray(x).transpose(0, 2, 3, 1))
    out = backend._buffers.empty((p.n * p.out_h * p.out_w, p.k), np.int32)
    backend.dnnl.set_num_threads(backend._threads_now)
    conv.prim.execute({ARG_SRC: src, ARG_WEIGHTS: packed, ARG_DST: out,
                       ARG_ATTR_ZERO_POINTS | ARG_SRC: np.full(1, int(zx), np.int32)})
    return out
