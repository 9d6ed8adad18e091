"""QLinearConv -> DequantizeLinear -> Relu/Clip -> QuantizeLinear (what hwbench's own
``quantize_model`` leaves between two int8 convolutions) as one oneDNN int8 convolution
in the ``float32-requant`` mode (issue 16; the graph's ``QLinearConvRequant`` node,
``graph/qconv_requant_fusion.py``).

The convolution computes its value ``v`` in the conv's output units, as the fused
QLinearConv does, and post-ops then redo each op's float32 arithmetic in order:
``v + a_zero`` rounded to nearest even and saturated to the conv's code range (the
conv's codes, as its own primitive writes them), less ``a_zero``, times ``a_scale``
(DequantizeLinear), the Clip or Relu, divided by ``y_scale`` (a broadcast binary
division: QuantizeLinear's ``x / y_scale``, not a reciprocal's product) and rounded; the
dst zero point and its saturation are QuantizeLinear's. Where oneDNN rounds as NumPy
does, the codes are the unfused ops' (the mode's conv, then the exact float ops); the
test allows 1 LSB. Three float32 passes over the activation (dequantize, clip,
quantize: 6.4 of MobileNet v2's 11.4 ms) become a few instructions per value inside
the convolution. ``qconv_dequant_add`` does the same for QLinearConv ->
DequantizeLinear -> Add of a float32 residual (-> Relu), the float residual stream
``quantize_model`` keeps in ResNets and MobileNets: a float32 output, the residual read by
a binary post-op (``QLinearConvDequantAdd``). Either takes an ``activation`` of
``spec.ACTIVATIONS`` after the dequantization (MobileNet v3's HardSwish, EfficientNet's
SiLU) as one more eltwise post-op, oneDNN's float32 arithmetic for NumPy's: a few ulp apart,
so a code at a rounding tie may land 1 LSB the other way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu.float32_requant import (
    _scalar,
    as_int8,
    fused_or_none,
    symmetric_zero_point,
)
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_WEIGHTS, arg_post_op
from hwbench.backends.cpu.primitives import ONEDNN_ACTIVATIONS, QConv, reorder
from hwbench.kernels import spec


def dequant_post_ops(a_dtype: np.dtype, za: int, sa: float) -> list[tuple]:
    """The post-ops from the conv's value to DequantizeLinear's of its codes."""
    info = np.iinfo(a_dtype)
    ops: list[tuple] = []
    if za:  # as the conv's own primitive adds its dst zero point: before rounding
        ops.append(("eltwise", "eltwise_linear", 1.0, float(za)))
    ops += [("eltwise", "eltwise_round", 0.0, 0.0),
            ("eltwise", "eltwise_clip", float(info.min), float(info.max))]
    if za:
        ops.append(("eltwise", "eltwise_linear", 1.0, float(-za)))
    ops.append(("eltwise", "eltwise_linear", float(sa), 0.0))
    return ops


def activation_post_ops(activation: str | None) -> list[tuple]:
    """``activation`` (one of ``spec.ACTIVATIONS``, or None) as eltwise post-ops."""
    if activation is None:
        return []
    return [("eltwise", *ONEDNN_ACTIVATIONS[activation])]


def requant_post_ops(a_dtype: np.dtype, za: int, sa: float, lo: float | None,
                     hi: float | None, divisor_md: Any,
                     activation: str | None = None) -> tuple[tuple, int]:
    """The post-ops from the conv's value to QuantizeLinear's rounded value, and the index
    of the division's operand (``y_scale``, one float32 value)."""
    ops = dequant_post_ops(a_dtype, za, sa)
    if lo is not None or hi is not None:
        ops.append(("eltwise", "eltwise_clip", -np.inf if lo is None else float(lo),
                    np.inf if hi is None else float(hi)))
    ops += activation_post_ops(activation)
    divide = len(ops)
    ops += [("binary", "binary_div", divisor_md), ("eltwise", "eltwise_round", 0.0, 0.0)]
    return tuple(ops), divide


class ConvRequantKernels:
    """``qconv_requant``, mixed into ``CpuBackend`` (with ``Float32RequantKernels``)."""

    def qconv_requant(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero, bias,
                      y_scale, y_zero, lo=None, hi=None, activation: str | None = None,
                      stride=1, padding=0, dilation=1,
                      groups: int = 1) -> ChannelsLastArray | None:
        """``QLinearConvRequant`` as one convolution, or None where it does not apply
        (the op function runs the conv, then the three ops)."""
        x = self._held_codes(x)
        plan = self.qconv_requant_plan(x, x_scale, x_zero, w, w_scale, w_zero, a_scale,
                                       a_zero, bias, y_scale, y_zero, lo, hi, stride, padding,
                                       dilation, groups, activation)
        if plan is None:
            return None
        conv, bound, out_shape, y_dtype = plan
        out = self._buffers.empty(out_shape, y_dtype)
        conv.prim.execute({ARG_SRC: x.nhwc, ARG_DST: out, **bound})
        result = ChannelsLastArray(out)
        self._traced_fused = (result, plan)  # a compiled plan binds it (``int8_steps``)
        return result

    def _held_codes(self, x):
        """``x`` as the fused convs read it: plain NCHW 8-bit codes (a Reshape's: BEGAN's
        first conv, after its Gemm) as channels-last codes, by one reorder; anything else
        (or another mode) as it is."""
        if self.requantization != "float32" or not self.keep_blocked \
                or type(x) is not np.ndarray or x.ndim != 4 \
                or x.dtype not in (np.uint8, np.int8) or not x.flags.c_contiguous:
            return x
        n, c, h, w = x.shape
        out = self._buffers.empty((n, h, w, c), x.dtype)
        prim = self._codes_transpose(x.shape, x.dtype)
        if prim is None:  # one channel or one pixel: the same bytes
            out.reshape(-1)[...] = x.reshape(-1)
        else:
            self.dnnl.set_num_threads(self._threads_now)
            prim.execute({ARG_SRC: x, ARG_DST: out})
        return ChannelsLastArray(out)

    def _codes_transpose(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """The cached NCHW -> NHWC reorder of 8-bit codes of ``shape``, or None where
        the bytes are the same (one channel or pixel)."""
        d = self.dnnl
        return self._primitive(("nchw-to-nhwc", tuple(shape), np.dtype(dtype).str),
                               lambda: reorder(d, d.memory_desc(shape, dtype, tag="abcd"),
                                               d.memory_desc(shape, dtype, tag="acdb")))

    def qconv_requant_plan(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero,
                           bias, y_scale, y_zero, lo, hi, stride, padding, dilation,
                           groups, activation=None) -> tuple | None:
        """(``QConv`` with the post-ops, every bound argument, output NHWC shape, dtype),
        or None (threads set; ``int8_steps`` binds it once)."""
        if self.requantization != "float32" or not self.keep_blocked \
                or type(x) is not ChannelsLastArray or not x.nhwc.flags.c_contiguous:
            return None
        p, zx, zw = spec.check_conv2d_int8(x, w, x_zero, w_zero, stride, padding, dilation,
                                           groups, bias, op="qconv2d")
        fixed, za = spec.check_requantization(x_scale, w_scale, a_scale, a_zero, p.k,
                                              ("x_scale", "w_scale"), "qconv2d")
        y_zero = np.zeros((), np.uint8) if y_zero is None else np.asarray(y_zero)
        sa, sy, zy = (_scalar(v) for v in (a_scale, y_scale, y_zero))
        if None in (sa, sy, zy) or not sy > 0 or y_zero.dtype not in (np.uint8, np.int8) \
                or symmetric_zero_point(w.dtype, zw) is None or w not in self.frozen \
                or not (bias is None or bias in self.frozen):
            return None
        x_dtype, y_dtype = np.dtype(p.x_dtype), y_zero.dtype
        self.dnnl.set_num_threads(self._threads_now)
        key = ("qconv-requant", p, x_dtype.str, za.dtype.str, y_dtype.str, int(zx) != 0,
               int(za), float(np.float32(sa)), lo, hi, int(zy), activation)
        divisor_md = self.dnnl.memory_desc((1, 1, 1, 1), np.float32, tag="abcd")
        post_ops, divide = requant_post_ops(za.dtype, int(za), float(np.float32(sa)), lo, hi,
                                            divisor_md, activation)
        conv = self._primitive(key, lambda: fused_or_none(lambda: QConv(
            self.dnnl, p, x_dtype, y_dtype, (int(zx) != 0, zy != 0), post_ops)))
        if conv is None:
            return None
        packed = self._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
        # the conv's scales as the fused QLinearConv's; the dst zero point QuantizeLinear's
        bound = {ARG_WEIGHTS: packed, **self._qconv_args(p, w, key, zx, bias, fixed, y_zero),
                 arg_post_op(divide): np.full((1, 1, 1, 1), sy, np.float32)}
        return conv, bound, (p.n, p.out_h, p.out_w, p.k), y_dtype

    def qconv_dequant_add(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero,
                          bias, r, relu: bool = False, activation: str | None = None,
                          stride=1, padding=0, dilation=1,
                          groups: int = 1) -> ChannelsLastArray | None:
        """``QLinearConvDequantAdd`` as one convolution with a float32 output, or None
        (the op function runs the conv, DequantizeLinear, Add and Relu)."""
        x = self._held_codes(x)
        plan = self.qconv_dequant_add_plan(x, x_scale, x_zero, w, w_scale, w_zero, a_scale,
                                           a_zero, bias, r, relu, stride, padding, dilation,
                                           groups, activation)
        if plan is None:
            return None
        conv, bound, out_shape, residual = plan
        out = self._buffers.empty(out_shape, np.float32)
        buffers = {ARG_SRC: x.nhwc, ARG_DST: out, **bound}
        if residual is not None:
            buffers[arg_post_op(residual)] = r.nhwc
        conv.prim.execute(buffers)
        result = ChannelsLastArray(out)
        self._traced_fused = (result, plan)  # a compiled plan binds it (``int8_steps``)
        return result

    def qconv_dequant_add_plan(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale,
                               a_zero, bias, r, relu, stride, padding, dilation,
                               groups, activation=None) -> tuple | None:
        """(``QConv`` with the post-ops, its bound arguments, output NHWC shape, index of
        the residual's post-op), or None (threads set; ``int8_steps`` binds it once)."""
        if self.requantization != "float32" or not self.keep_blocked \
                or type(x) is not ChannelsLastArray or not x.nhwc.flags.c_contiguous \
                or r is not None and (type(r) is not ChannelsLastArray or r.dtype != np.float32
                                      or not r.nhwc.flags.c_contiguous):
            return None
        p, zx, zw = spec.check_conv2d_int8(x, w, x_zero, w_zero, stride, padding, dilation,
                                           groups, bias, op="qconv2d")
        fixed, za = spec.check_requantization(x_scale, w_scale, a_scale, a_zero, p.k,
                                              ("x_scale", "w_scale"), "qconv2d")
        sa = _scalar(a_scale)
        out_shape = (p.n, p.out_h, p.out_w, p.k)
        if sa is None or r is not None and r.nhwc.shape != out_shape \
                or symmetric_zero_point(w.dtype, zw) is None \
                or w not in self.frozen or not (bias is None or bias in self.frozen):
            return None
        x_dtype = np.dtype(p.x_dtype)
        self.dnnl.set_num_threads(self._threads_now)
        key = ("qconv-dequant-add", p, x_dtype.str, za.dtype.str, int(zx) != 0, int(za),
               float(np.float32(sa)), bool(relu), r is not None, activation)
        post_ops = dequant_post_ops(za.dtype, int(za), float(np.float32(sa)))
        residual = None
        if r is not None:
            r_md = self.dnnl.memory_desc((p.n, p.k, p.out_h, p.out_w), np.float32,
                                         tag="acdb")
            residual = len(post_ops)
            post_ops.append(("binary", "binary_add", r_md))
        if relu:
            post_ops.append(("eltwise", "eltwise_relu", 0.0, 0.0))
        post_ops += activation_post_ops(activation)
        conv = self._primitive(key, lambda: fused_or_none(lambda: QConv(
            self.dnnl, p, x_dtype, np.float32, (int(zx) != 0, False), tuple(post_ops))))
        if conv is None:
            return None
        packed = self._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
        no_zero = np.zeros((), np.uint8)  # a float32 output: no dst zero point
        bound = {ARG_WEIGHTS: packed, **self._qconv_args(p, w, key, zx, bias, fixed, no_zero)}
        return conv, bound, out_shape, residual
