"""The cpu backend's upsampling family, on oneDNN:

- ConvTranspose: oneDNN's deconvolution primitive (``dnnl_deconvolution_forward``),
  bias fused, weights reordered once per uploaded array into the layout it chose. ONNX's
  (C, K/g, R, S) weights are oneDNN's (K, C, R, S) deconvolution weights stored "bacd"
  (grouped: (g, K/g, C/g, R, S) stored "acbde"). ``output_padding`` and an
  ``output_shape`` past the natural size are negative end pads, which oneDNN takes while
  they stay within a stride; pads it refuses (a negative begin pad: SAME_UPPER with a
  larger output_shape) run cleared, the result then placed in zeros plus bias.
- Resize: oneDNN's resampling primitive where its semantics are ONNX's exactly (see
  ``native_resampling``); every other mode runs the shared per-axis tables in float32 on
  the host arrays this backend computes on.
"""

from __future__ import annotations

import ctypes
from dataclasses import replace
from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import (
    ARG_BIAS,
    ARG_DST,
    ARG_SRC,
    ARG_WEIGHTS,
    QUERY_WEIGHTS_MD,
    Primitive,
)
from hwbench.backends.cpu.primitives import reorder
from hwbench.errors import NativeLibraryError
from hwbench.kernels import spec, upsampling_reference

DECONV = "dnnl_deconvolution_forward_primitive_desc_create"
RESAMPLING = "dnnl_resampling_forward_primitive_desc_create"


def _declare(d: onednn.OneDNN) -> None:
    """The two constructors' signatures (the deconvolution's is the convolution's)."""
    lib = d.lib
    conv = lib.dnnl_convolution_forward_primitive_desc_create.argtypes
    getattr(lib, DECONV).argtypes = conv
    getattr(lib, DECONV).restype = ctypes.c_int
    # (pd, engine, prop, alg, factors (NULL: from the dims), src, dst, attr)
    getattr(lib, RESAMPLING).argtypes = [conv[0], ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                         ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_void_p]
    getattr(lib, RESAMPLING).restype = ctypes.c_int


class Deconv:
    """A deconvolution primitive on plain NCHW src/dst and the reorder into its weights."""

    def __init__(self, d: onednn.OneDNN, p: spec.ConvTransposeProblem) -> None:
        _declare(d)
        g = p.groups
        if g == 1:
            wshape, user_tag = (p.k, p.c, p.r, p.s), "bacd"
        else:
            wshape, user_tag = (g, p.k // g, p.c // g, p.r, p.s), "acbde"
        src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag="abcd")
        dst = d.memory_desc(p.output_shape, "f32", tag="abcd")
        wei = d.memory_desc(wshape, "f32", tag="any")
        user_wei = d.memory_desc(wshape, "f32", tag=user_tag)
        bias = d.memory_desc((p.k,), "f32", tag="a") if p.has_bias else None
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        attr = d.attr()
        pd = d.create_pd(DECONV, d.engine, d.prop["forward_inference"],
                         d.alg["deconvolution_direct"], src.handle, wei.handle,
                         bias.handle if bias else None, dst.handle, onednn.Dims(*p.stride),
                         onednn.Dims(*dil), onednn.Dims(pt, pl), onednn.Dims(pb, pr),
                         attr.handle)
        args: dict[int, Any] = {ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst}
        if bias:
            args[ARG_BIAS] = bias
        self.prim = Primitive(d, pd, args)
        self.wei_reorder = reorder(d, user_wei, self.prim.mds[ARG_WEIGHTS])
        self.impl = self.prim.impl


def native_resampling(p: spec.ResizeProblem) -> str | None:
    """oneDNN's resampling algorithm computing exactly this Resize, or None.

    oneDNN resamples the spatial axes (2..) of a 3-D to 5-D tensor with factor
    out/in per axis and source coordinate (dst + 0.5)/factor − 0.5: ONNX's half_pixel
    (pytorch_half_pixel where no resized axis has length 1; half_pixel_symmetric when the
    sizes are exact multiples) for every axis whose scale is exactly out/in. Linear
    clamps at the edges as ONNX does; nearest rounds half up, which is ONNX's
    round_prefer_ceil, and any nearest mode whose picks are the same with no tie
    (``_picks_as_onednn``). Antialias, cubic and the other modes have no primitive."""
    if not 3 <= len(p.shape) <= 5 or p.antialias or not p.tables:
        return None
    if any(t.axis < 2 or t.scale != t.out_len / t.in_len for t in p.tables):
        return None
    ctm = p.coordinate_mode
    if ctm == "pytorch_half_pixel" and all(t.out_len > 1 for t in p.tables):
        ctm = "half_pixel"
    if ctm not in ("half_pixel", "half_pixel_symmetric"):
        return None
    if p.mode == "linear":
        return "resampling_linear"
    if p.mode == "nearest" and (p.nearest_mode == "round_prefer_ceil"
                                or all(_picks_as_onednn(t) for t in p.tables)):
        return "resampling_nearest"
    return None


def _picks_as_onednn(t: Any) -> bool:
    """Whether a nearest table picks, for every output, the source oneDNN's nearest
    picks (its coordinate rounded half up) with no coordinate within 1e-3 of a tie:
    then the rounding rule does not matter (BEGAN's ×2 upsampling with ONNX's default
    round_prefer_floor: coordinates k ± 0.25, never a tie) and the copy is exact."""
    x = (np.arange(t.out_len, dtype=np.float64) + 0.5) * (t.in_len / t.out_len) - 0.5
    if np.any(np.abs(x - np.floor(x) - 0.5) < 1e-3):
        return False
    picks = np.clip(np.floor(x + 0.5), 0, t.in_len - 1).astype(np.int64)
    ones = t.weight == 1.0  # a nearest table's taps: the picked one weighs 1, others 0
    if t.outside is not None or not np.all(ones | (t.weight == 0.0)) \
            or not np.all(ones.sum(axis=1) == 1):
        return False
    return np.array_equal(picks, t.index[np.arange(t.out_len), ones.argmax(axis=1)])


def build_resampling(d: onednn.OneDNN, alg: str, shape: tuple[int, ...],
                     out_shape: tuple[int, ...], tag: str | None = None) -> Primitive:
    """The resampling primitive from ``shape`` to ``out_shape``, both in format ``tag``
    (default plain; ``layouts.BLOCKED_TAG`` for a blocked activation)."""
    _declare(d)
    tag = tag or "abcde"[:len(shape)]
    src = d.memory_desc(shape, "f32", tag=tag)
    dst = d.memory_desc(out_shape, "f32", tag=tag)
    attr = d.attr()
    pd = d.create_pd(RESAMPLING, d.engine, d.prop["forward_inference"], d.alg[alg], None,
                     src.handle, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


class UpsamplingKernels:
    """``_conv_transpose2d`` and ``_resize`` mixed into ``CpuBackend`` (its oneDNN handle,
    primitive cache, buffers and thread count)."""

    def _deconv(self, p: spec.ConvTransposeProblem) -> Deconv | None:
        """The cached primitive for ``p``, or None where oneDNN refuses its pads."""
        def build() -> Deconv | None:
            try:
                return Deconv(self.dnnl, p)
            except NativeLibraryError:
                return None

        return self._primitive(("deconv", p), build)

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> np.ndarray:
        self.dnnl.set_num_threads(self._threads_now)
        run, deconv = p, self._deconv(p)
        if deconv is None:  # negative pads oneDNN refuses: run with them cleared, then place
            run = replace(p, padding=tuple(max(v, 0) for v in p.padding), has_bias=False)
            deconv = self._deconv(run)
        packed = np.ascontiguousarray(w)
        if deconv.wei_reorder is not None:
            def build(w: np.ndarray) -> np.ndarray:
                out = aligned_empty(deconv.prim.mds[ARG_WEIGHTS].size, np.uint8)
                deconv.wei_reorder.execute({ARG_SRC: np.ascontiguousarray(w), ARG_DST: out})
                return out

            packed = self._once_per_array(w, ("deconv-weights", run), build)
        out = self._buffers.empty(run.output_shape, np.float32)
        buffers = {ARG_SRC: np.ascontiguousarray(self._plain(x)), ARG_WEIGHTS: packed,
                   ARG_DST: out}
        if run.has_bias:
            buffers[ARG_BIAS] = np.ascontiguousarray(bias)
        deconv.prim.execute(buffers)
        if run is p:
            return out
        # out[i] is full[i + max(pt, 0)]; the output's row i is full[i + pt]
        placed = np.zeros(p.output_shape, np.float32)
        dh, dw = max(p.padding[0], 0) - p.padding[0], max(p.padding[1], 0) - p.padding[1]
        rows, cols = min(p.out_h - dh, run.out_h), min(p.out_w - dw, run.out_w)
        if rows > 0 and cols > 0:
            placed[:, :, dh:dh + rows, dw:dw + cols] = out[:, :, :rows, :cols]
        if bias is not None:
            placed += np.asarray(bias).reshape(1, -1, 1, 1)
        return placed

    def _resize(self, p: spec.ResizeProblem, x) -> np.ndarray:
        alg = native_resampling(p)
        if alg == "resampling_nearest" and type(x) is ChannelsLastArray and x.ndim == 4 \
                and x.dtype == np.float32 and x.nhwc.flags.c_contiguous:
            return self._resize_nhwc(p, x)
        x = np.ascontiguousarray(self._plain(x))
        if alg is None:  # the shared tables, in float32 on the host arrays
            return upsampling_reference.resize(x, p, np.float32)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("resampling", alg, p.shape, p.output_shape),
                               lambda: build_resampling(self.dnnl, alg, p.shape,
                                                        p.output_shape))
        out = self._buffers.empty(p.output_shape, np.float32)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out

    def _resize_nhwc(self, p: spec.ResizeProblem, x: ChannelsLastArray) -> ChannelsLastArray:
        """A nearest Resize of a channels-last float32 activation (BEGAN's int8 generator:
        a fused conv's output) kept channels-last: the same picks, so the same values, with
        no transpose either side (the next QuantizeLinear and conv read NHWC)."""
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._resize_nhwc_primitive(p)
        n, c, h, w = p.output_shape
        out = self._buffers.empty((n, h, w, c), np.float32)
        prim.execute({ARG_SRC: x.nhwc, ARG_DST: out})
        return ChannelsLastArray(out)

    def _resize_nhwc_primitive(self, p: spec.ResizeProblem) -> Any:
        """The cached nearest resampling of NHWC float32 (``_resize_nhwc``, its replay)."""
        return self._primitive(("resampling-nhwc", p.shape, p.output_shape),
                               lambda: build_resampling(self.dnnl, "resampling_nearest",
                                                        p.shape, p.output_shape, "acdb"))
