"""QuantizeLinear of ``relu?(x · scale + shift)`` on channels-last float32 activations as one
oneDNN binary primitive in the ``float32-requant`` mode (issue 16; the graph's
``AffineQuantizeLinear`` node, ``graph/affine_quantize_fusion.py``).

DenseNet's BatchNormalization and Relu on each concatenation of features, then the
QuantizeLinear before the next int8 conv, and the squeeze-and-excitation Mul (by the
block's (N, C, 1, 1) gate) before a QuantizeLinear in MobileNet v3 and EfficientNet, had
each made a float32 pass (the Mul, Add and Relu on NCHW copies, the QuantizeLinear a
transposing one). Here ``binary_mul`` of the NHWC activation by the per-channel factors
(src1, broadcast over the pixels, or per image for a gate), then post-ops: the
per-channel Add, the Relu, and QuantizeLinear's ``· (1/y_scale) + y_zero`` (as this mode's
QuantizeLinear, the reciprocal's product); the dst conversion rounds to nearest even and
saturates. The codes are the unfused ops' or 1 LSB away (float32 rounding of the product
and of ``+ y_zero`` near a tie).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu.float32_requant import _scalar, fused_or_none
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1, Primitive, arg_post_op

SHIFT = 0  # the post-op index of the per-channel Add's operand, where there is one


def _gate(scale: Any, n: int, c: int) -> np.ndarray | None:
    """An (N, C, 1, 1) factor computed at run time as its contiguous float32 bytes, or None."""
    data = scale.nhwc if type(scale) is ChannelsLastArray else scale
    if type(data) is not np.ndarray or data.dtype != np.float32 or data.size != n * c \
            or not data.flags.c_contiguous or data.shape not in ((n, c, 1, 1), (n, 1, 1, c)):
        return None
    return data


def build_affine_quantize(d: Any, shape: tuple[int, ...], factors: tuple[int, ...],
                          shifted: bool, relu: bool, y_scale: float, y_zero: int,
                          y_dtype: np.dtype) -> Primitive:
    """The primitive over NHWC float32 ``shape`` (NCHW dims) with factors of dims
    ``factors`` ((1, C, 1, 1) or (N, C, 1, 1))."""
    n, c, _, _ = shape
    src = d.memory_desc(shape, "f32", tag="acdb")
    src1 = d.memory_desc(factors, "f32", tag="abcd")
    dst = d.memory_desc(shape, y_dtype, tag="acdb")
    post_ops: list[tuple] = []
    args: dict[int, Any] = {ARG_SRC: src, ARG_SRC_1: src1, ARG_DST: dst}
    if shifted:
        shift_md = d.memory_desc((1, c, 1, 1), "f32", tag="abcd")
        post_ops.append(("binary", "binary_add", shift_md))
        args[arg_post_op(SHIFT)] = shift_md
    if relu:
        post_ops.append(("eltwise", "eltwise_relu", 0.0, 0.0))
    post_ops.append(("eltwise", "eltwise_linear", float(np.float32(1) / np.float32(y_scale)),
                     float(y_zero)))
    attr = d.attr(post_ops=post_ops)
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg["binary_mul"],
                     src.handle, src1.handle, dst.handle, attr.handle)
    return Primitive(d, pd, args)


class AffineQuantizeKernels:
    """``affine_quantize``, mixed into ``CpuBackend`` (its primitive cache, buffers, frozen
    arrays and thread count)."""

    def affine_quantize(self, x, scale, shift, y_scale, y_zero,
                        relu: bool = False) -> ChannelsLastArray | None:
        """``AffineQuantizeLinear`` as one primitive, or None where it does not apply (the
        op function runs the Mul, Add, Relu and QuantizeLinear)."""
        plan = self.affine_quantize_plan(x, scale, shift, y_scale, y_zero, relu)
        if plan is None:
            return None
        prim, bound, gate, out_shape, y_dtype = plan
        out = self._buffers.empty(out_shape, y_dtype)
        buffers = {ARG_SRC: x.nhwc, ARG_DST: out, **bound}
        if gate is not None:
            buffers[ARG_SRC_1] = _gate(scale, out_shape[0], out_shape[3])
        prim.execute(buffers)
        result = ChannelsLastArray(out)
        self._traced_fused = (result, plan)  # a compiled plan binds it (``int8_steps``)
        return result

    def affine_quantize_plan(self, x, scale, shift, y_scale, y_zero, relu) -> tuple | None:
        """(the primitive, its bound constant arguments, the gate's (shape, dtype) or None,
        output NHWC shape, dtype), or None (threads set)."""
        if self.requantization != "float32" or not self.keep_blocked \
                or type(x) is not ChannelsLastArray or x.dtype != np.float32 \
                or not x.nhwc.flags.c_contiguous:
            return None
        n, h, w, c = x.nhwc.shape
        y_zero = np.zeros((), np.uint8) if y_zero is None else np.asarray(y_zero)
        sy, zy = _scalar(y_scale), _scalar(y_zero)
        if sy is None or zy is None or not sy > 0 or y_zero.dtype not in (np.uint8, np.int8):
            return None
        bound: dict[int, np.ndarray] = {}
        gate = None
        if type(scale) is np.ndarray and scale in self.frozen and scale.size == c \
                and scale.dtype == np.float32:
            bound[ARG_SRC_1] = np.ascontiguousarray(scale.reshape(c))
            factors = (1, c, 1, 1)
        elif (held := _gate(scale, n, c)) is not None:  # read each run
            gate, factors = (held.shape, np.dtype(np.float32)), (n, c, 1, 1)
        else:
            return None
        if shift is not None:
            if type(shift) is not np.ndarray or shift not in self.frozen or shift.size != c \
                    or shift.dtype != np.float32:
                return None
            bound[arg_post_op(SHIFT)] = np.ascontiguousarray(shift.reshape(c))
        self.dnnl.set_num_threads(self._threads_now)
        y_dtype = y_zero.dtype
        key = ("affine-quantize", (n, c, h, w), factors, shift is not None, bool(relu),
               float(np.float32(sy)), int(zy), y_dtype.str)
        prim = self._primitive(key, lambda: fused_or_none(lambda: build_affine_quantize(
            self.dnnl, (n, c, h, w), factors, shift is not None, bool(relu), sy, int(zy),
            y_dtype)))
        if prim is None:
            return None
        return prim, bound, gate, (n, h, w, c), y_dtype
