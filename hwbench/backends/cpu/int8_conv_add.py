"""QLinearConv then QLinearAdd (then its Relu) as one oneDNN int8 convolution in the
``float32-requant`` mode (issue 16; the graph's ``QLinearConvAdd`` node,
``graph/qconv_add_fusion.py``).

The convolution computes its value ``v`` in the conv's output units (float32: the fused
QLinearConv's scales and bias), and post-ops then do what the two ops did: round ``v``
to nearest even and saturate it to the conv's code range less its zero point (the
conv's codes ``a - za``), then ``rb·((ra/rb)·(a - za) - zb + b)`` with ``b`` the Add's
other codes (a binary post-op reading them as they are; ``ra``, ``rb``: the input
scales over the output's), the Add's Relu, and the output zero point: the float32
QLinearAdd (``_qadd_fused``: ``ra·a + rb·b + offset``) summed in another order.

The bound: the conv's codes are within 1 LSB of exact (the mode's contract; rounding
``v`` alone, not ``v + za`` in float32, can land 1 LSB from the unfused conv's at a
tie), and a code 1 LSB off moves the sum by ``ra``. Fused only where
``ra < RATIO_LIMIT``: the sum then stays less than one output step from the exact
one's, so the result is the exact conv-then-Add's codes or 1 LSB away. Elsewhere
(ResNet-18's blocks have ``ra`` 1.16-1.39; other layouts, per-channel parameters) the op
function runs the conv, then the Add.
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
from hwbench.backends.cpu.primitives import QConv
from hwbench.kernels import spec
from hwbench.kernels.quantization import FUSED_ADD_RATIO_LIMIT as RATIO_LIMIT

RESIDUAL = 3  # the index of the binary post-op reading the Add's other codes


def add_post_ops(d: Any, a_dtype: np.dtype, za: int, ra: float, rb: float, zb: int,
                 b_md: Any, relu: bool) -> tuple:
    """The post-ops turning the conv's value into the Add's, before the dst zero point."""
    info = np.iinfo(a_dtype)
    ops = (("eltwise", "eltwise_round", 0.0, 0.0),
           ("eltwise", "eltwise_clip", float(info.min - za), float(info.max - za)),
           ("eltwise", "eltwise_linear", float(np.float32(ra / rb)), float(-zb)),
           ("binary", "binary_add", b_md),
           ("eltwise", "eltwise_linear", float(rb), 0.0))
    return ops + ((("eltwise", "eltwise_relu", 0.0, 0.0),) if relu else ())


class ConvAddKernels:
    """``qconv_add``, mixed into ``CpuBackend`` (its primitive cache, frozen arrays,
    buffers and ``Float32RequantKernels``' conv arguments)."""

    def qconv_add(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero, bias, b,
                  b_scale, b_zero, y_scale, y_zero, relu: bool = False, stride=1, padding=0,
                  dilation=1, groups: int = 1) -> ChannelsLastArray | None:
        """``QLinearConvAdd`` as one convolution (the module's post-ops), or None where
        it does not apply (the op function runs the conv, then the Add)."""
        plan = self.qconv_add_plan(x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero,
                                   bias, b, b_scale, b_zero, y_scale, y_zero, relu, stride,
                                   padding, dilation, groups)
        if plan is None:
            return None
        conv, bound, out_shape, y_dtype = plan
        out = self._buffers.empty(out_shape, y_dtype)
        conv.prim.execute({ARG_SRC: x.nhwc, arg_post_op(RESIDUAL): b.nhwc, ARG_DST: out,
                           **bound})
        result = ChannelsLastArray(out)
        self._traced_fused = (result, plan)  # a compiled plan binds it (``int8_steps``)
        return result

    def qconv_add_plan(self, x, x_scale, x_zero, w, w_scale, w_zero, a_scale, a_zero, bias,
                       b, b_scale, b_zero, y_scale, y_zero, relu, stride, padding, dilation,
                       groups) -> tuple | None:
        """(``QConv`` with the post-ops, its bound weights/scales/zero points/bias, output
        NHWC shape, output dtype) for these arguments, or None (threads set; a compiled
        plan's step binds it once: ``int8_steps``)."""
        if self.requantization != "float32" or not self.keep_blocked \
                or type(x) is not ChannelsLastArray or type(b) is not ChannelsLastArray \
                or not x.nhwc.flags.c_contiguous or not b.nhwc.flags.c_contiguous:
            return None
        p, zx, zw = spec.check_conv2d_int8(x, w, x_zero, w_zero, stride, padding, dilation,
                                           groups, bias, op="qconv2d")
        fixed, za = spec.check_requantization(x_scale, w_scale, a_scale, a_zero, p.k,
                                              ("x_scale", "w_scale"), "qconv2d")
        b_zero = np.zeros((), b.dtype) if b_zero is None else b_zero
        y_zero = np.zeros((), za.dtype) if y_zero is None else np.asarray(y_zero)
        params = [_scalar(v) for v in (a_scale, b_scale, b_zero, y_scale, y_zero)]
        out_shape = (p.n, p.out_h, p.out_w, p.k)
        if None in params or symmetric_zero_point(w.dtype, zw) is None \
                or b.nhwc.shape != out_shape or w not in self.frozen \
                or not (bias is None or bias in self.frozen):
            return None
        sa, sb, zb, sy, zy = params
        ra, rb = float(np.float32(sa / sy)), float(np.float32(sb / sy))
        if not (0.0 < ra < RATIO_LIMIT and rb > 0.0):
            return None
        x_dtype, y_dtype = np.dtype(p.x_dtype), y_zero.dtype
        self.dnnl.set_num_threads(self._threads_now)
        key = ("qconv-add", p, x_dtype.str, za.dtype.str, b.dtype.str, y_dtype.str,
               int(zx) != 0, int(za), ra, rb, int(zb), int(zy), bool(relu))
        b_md = self.dnnl.memory_desc((p.n, p.k, p.out_h, p.out_w), b.dtype, tag="acdb")
        conv = self._primitive(key, lambda: fused_or_none(lambda: QConv(
            self.dnnl, p, x_dtype, y_dtype, (int(zx) != 0, zy != 0),
            add_post_ops(self.dnnl, za.dtype, int(za), ra, rb, int(zb), b_md, relu))))
        if conv is None:
            return None
        packed = self._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
        bound = {ARG_WEIGHTS: packed, **self._qconv_args(p, w, key, zx, bias, fixed, y_zero)}
        return conv, bound, out_shape, y_dtype
