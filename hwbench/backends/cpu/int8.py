"""The cpu backend's int8 kernels: exact int32 GEMMs and convolutions on oneDNN's (or
MKL's) integer GEMM, activations kept channels-last between an int8 model's layers.

ConvInteger and QLinearConv run as one ``dnnl_gemm_u8s8s32`` of pixel-major patches, so
their product comes out NHWC; in a session it stays a ``ChannelsLastArray``. The
``float32-requant`` mode's fused paths (``float32_requant``) are tried first where chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu.int8_affine_quantize import AffineQuantizeKernels
from hwbench.backends.cpu.int8_bracket import qconv2d_bracket
from hwbench.backends.cpu.int8_conv_add import ConvAddKernels
from hwbench.backends.cpu.int8_conv_requant import ConvRequantKernels
from hwbench.backends.cpu.int8_direct import conv_s32_rows
from hwbench.backends.cpu.int8_steps import prepared_int8_step
from hwbench.backends.cpu.int8_tables import qlinear_binary, qlinear_concat, qlinear_unary
from hwbench.backends.cpu.layouts import ChannelsLastArray, nhwc_axis
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC
from hwbench.backends.cpu.primitives import build_pooling
from hwbench.backends.cpu.tensor_ops import channel_copier
from hwbench.kernels import spec
from hwbench.kernels.im2col import conv2d_int8_by_gemm, im2row
from hwbench.kernels.quantization import dequantize, quantize, requantize, zero_point_correction

# requantize(threads=) shares its chunks among threads; off until measured where a core is
# free: on the busy 2-core VM (load 7-11) two threads were 0.89-0.94x of one.
REQUANTIZE_THREADS = 1


class Int8Kernels(ConvAddKernels, ConvRequantKernels, AffineQuantizeKernels):
    """MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv and (de)quantization, mixed
    into ``CpuBackend`` (whose libraries, buffers, frozen arrays and thread count they use)."""

    def qlinear_concat(self, parts, params, y_scale, y_zero, axis: int, order=None):
        """QLinearConcat by one table lookup or copy per input (``int8_tables``), or None;
        the ``float32-requant`` mode requantizes channels-last inputs straight into the
        output first (``_qconcat_fused``). ``order``: the result's channels gathered in
        this order (``gather_channels``); a channel shuffle of the inputs is written
        directly in that mode (``_qconcat_shuffled``)."""
        out = None
        if self.requantization == "float32":
            if order is not None:
                out = self._qconcat_shuffled(parts, params, y_scale, y_zero, axis, order)
                if out is not None:
                    return out
            out = self._qconcat_fused(parts, params, y_scale, y_zero, axis)
        if out is None:
            out = qlinear_concat(self, parts, params, y_scale, y_zero, axis)
        if out is None or order is None:
            return out
        if type(out) is ChannelsLastArray and axis == 1:
            return self._gather_channels(out, order)
        return self.gather(out, np.asarray(order, np.int64), axis)

    def _gather_channels(self, x: ChannelsLastArray, order) -> ChannelsLastArray:
        """``x``'s channels in ``order`` (a node's attribute: the same list every run)
        by the copy a plan's channel Gather replays (``tensor_ops.channel_copier``: one
        strided copy per shuffle group), chosen once per list."""
        nhwc = x.nhwc
        seen, copy = self._primitive(
            ("channel-copier", id(order), nhwc.shape[3]),
            lambda: (order, channel_copier(np.asarray(order, np.int64), nhwc.shape[3])))
        if seen is not order:  # another list at a recycled id: no cache
            copy = channel_copier(np.asarray(order, np.int64), nhwc.shape[3])
        out = self._buffers.empty(nhwc.shape[:3] + (len(order),), nhwc.dtype)
        copy(nhwc, out)
        return ChannelsLastArray(out)

    def _prepared_step(self, step: Any, args: list, out: Any, problem: Any) -> Any:
        """A compiled plan's replay of a node that began no checked kernel: onnxruntime's
        and hwbench's int8 nodes in the ``float32-requant`` mode, bound (``int8_steps``);
        else the tensor ops' (Gather, an RNN's lengths)."""
        if step.node.domain and getattr(self, "fast_replay", True):
            return prepared_int8_step(self, step, args, out)
        return super()._prepared_step(step, args, out, problem)

    def qlinear_unary(self, fn, key: tuple, codes, x_scale, x_zero, y_scale, y_zero):
        """QLinearSigmoid/QLinearLeakyRelu by one 256-entry table lookup, or None."""
        return qlinear_unary(self, fn, key, codes, x_scale, x_zero, y_scale, y_zero)

    def qlinear_binary(self, kind: str, a, a_scale, a_zero, b, b_scale, b_zero, y_scale,
                       y_zero, relu: bool = False):
        """QLinearAdd/QLinearMul (then Relu, ``relu``) by one 65,536-entry table lookup
        (``int8_tables``), or None; the ``float32-requant`` mode runs an Add as one oneDNN
        binary in float32 first (``_qadd_fused``)."""
        if self.requantization == "float32" and kind == "add":
            out = self._qadd_fused(a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero,
                                   relu)
            if out is not None:
                return out
        return qlinear_binary(self, kind, a, a_scale, a_zero, b, b_scale, b_zero, y_scale,
                              y_zero, relu)

    def qlinear_global_avg_pool(self, x, x_scale, x_zero, y_scale, y_zero):
        """QLinearGlobalAveragePool as one pooling in the ``float32-requant`` mode
        (``_qgap_fused``), or None (the op's dequantize, pool, quantize)."""
        if self.requantization != "float32":
            return None
        return self._qgap_fused(x, x_scale, x_zero, y_scale, y_zero)

    def max_pool2d_codes(self, x, kernel, stride=None, padding=0, dilation=1,
                         ceil_mode: bool = False):
        """ONNX MaxPool on 8-bit codes as they are: codes map to values monotonically, so
        the largest code is the code of the largest value (exact in every mode). One
        oneDNN pooling in the codes' dtype, channels-last kept, where the op function's
        dequantize -> float32 pool -> quantize took three passes."""
        self._check_foreign("max_pool2d", x=x)
        p = spec.check_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, codes=True)
        self._begin_kernel("max_pool2d", p)
        return self._max_pool2d_codes(p, x)

    def _max_pool2d_codes(self, p: spec.PoolProblem, x):
        self.dnnl.set_num_threads(self._threads_now)
        dtype = np.dtype(x.dtype)
        n, c, oh, ow = p.output_shape
        if isinstance(x, ChannelsLastArray):
            src, shape, tag = x.nhwc, (n, oh, ow, c), "acdb"
        else:
            src, shape, tag = np.ascontiguousarray(self._plain(x)), p.output_shape, "abcd"
        prim = self._primitive(("pool-codes", p, tag, dtype.str),
                               lambda: build_pooling(self.dnnl, p, tag, dtype))
        out = self._buffers.empty(shape, dtype)
        prim.execute({ARG_SRC: src, ARG_DST: out})
        return ChannelsLastArray(out) if tag == "acdb" else out

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> np.ndarray:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)  # int8: never blocked
        self.dnnl.set_num_threads(self._threads_now)
        if self.mkl is not None:
            return self.mkl.gemm_s8u8s32(a, b, za, zb)
        # dnnl_gemm_{u8,s8}s8s32 rather than the matmul primitive: the primitive's int32
        # results lost precision once |A·B| passed 2**24 (K >= 8500 at the extremes:
        # 275272512 for 275272500), and the GEMM API is faster too (850 vs ~770 GOP/s at
        # 2048³). Scalar zero points go to the library; per-row/column ones are corrected.
        scalar_zp = za.ndim == 0 and zb.ndim == 0
        out = self._buffers.empty((p.m, p.n), np.int32)
        self.dnnl.gemm_int8(a, b, int(za) if scalar_zp else 0, int(zb) if scalar_zp else 0, out)
        if not scalar_zp:
            out = zero_point_correction(out, a, b, za, zb)
        return out

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> np.ndarray:
        if self.requantization == "float32":
            out = self._qgemm_fused(p, np.asarray(a), np.asarray(b), za, zb, fixed, zy)
            if out is not None:
                return out
        return requantize(self._gemm_int8(p, a, b, za, zb), fixed, zy.item(), zy.dtype,
                          threads=REQUANTIZE_THREADS)

    # (De)quantization straight on host arrays: base's default would copy the result
    # once more through ``asarray``.
    # A ChannelsLastArray stays one (its NCHW axis mapped to NHWC's); with float32
    # requantization a per-tensor one goes through a oneDNN reorder with a scale and zero
    # point (one multithreaded pass; quantizing multiplies by 1/scale there, so a value
    # may land 1 LSB from the exact division).
    def _quantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point):
        if self.requantization == "float32" and scale.size == 1 and self.keep_blocked \
                and type(x) is np.ndarray and x.ndim == 4 and x.dtype == np.float32:
            # a session's NCHW input straight to the NHWC codes the int8 convs read
            n, c, h, w = x.shape
            out = self._buffers.empty((n, h, w, c), zero_point.dtype)
            self._scaling_reorder("quantize", np.ascontiguousarray(x), out, scale, zero_point,
                                  to_nhwc=True)
            return ChannelsLastArray(out)
        if not isinstance(x, ChannelsLastArray):
            return quantize(self._plain(x), scale, zero_point, zero_point.dtype, p.axis)
        out = self._buffers.empty(x.nhwc.shape, zero_point.dtype)
        if self.requantization == "float32" and scale.size == 1:
            self._scaling_reorder("quantize", x.nhwc, out, scale, zero_point)
        else:
            quantize(x.nhwc, scale, zero_point, zero_point.dtype, nhwc_axis(p.axis), out=out)
        return ChannelsLastArray(out)

    def _dequantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point):
        if not isinstance(x, ChannelsLastArray) or x.dtype not in (np.uint8, np.int8):
            return dequantize(self._plain(x), scale, zero_point, p.axis)
        out = self._buffers.empty(x.nhwc.shape, np.float32)
        if self.requantization == "float32" and scale.size == 1:
            self._scaling_reorder("dequantize", x.nhwc, out, scale, zero_point)
        else:
            dequantize(x.nhwc, scale, zero_point, nhwc_axis(p.axis), out=out)
        return ChannelsLastArray(out)

    def _conv2d_int8(self, p: spec.Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
        rows = None
        if p.groups != 1:  # grouped/depthwise: one oneDNN conv where provably exact
            rows = conv_s32_rows(self, p, x, np.asarray(w), zx, zw)
        elif zw.ndim == 0:
            rows = self._int8_conv_rows(p, x, w, zx, zw)
        if rows is not None:
            return np.ascontiguousarray(
                rows.reshape(p.n, p.out_h, p.out_w, p.k).transpose(0, 3, 1, 2))
        return conv2d_int8_by_gemm(self._plain(x), np.asarray(w), p, zx, zw, self.gemm_int8)

    def _qconv2d(self, p: spec.Int8ConvProblem, x, w, zx, zw, bias, fixed, zy):
        if self.requantization == "float32":
            out = self._qconv2d_fused(p, x, np.asarray(w), zx, zw, bias, fixed, zy)
            if out is not None:
                return out
        elif self.requantization == "exact":  # codes bracketed by two float32 roundings
            nhwc = qconv2d_bracket(self, p, x, np.asarray(w), zx, zw, bias, fixed, zy)
            if nhwc is not None:
                return self._nhwc_codes(nhwc)
        rows = None  # (pixels, filters) int32: scales per column
        if p.groups != 1:  # grouped/depthwise: one oneDNN conv where provably exact
            rows = conv_s32_rows(self, p, x, np.asarray(w), zx, zw)
        elif zw.ndim == 0:
            rows = self._int8_conv_rows(p, x, w, zx, zw)
        if rows is None:
            return super()._qconv2d(p, self._plain(x), w, zx, zw, bias, fixed, zy)
        q = requantize(rows, fixed, zy.item(), zy.dtype, bias, threads=REQUANTIZE_THREADS)
        return self._nhwc_codes(q.reshape(p.n, p.out_h, p.out_w, p.k))

    def _nhwc_codes(self, nhwc: np.ndarray):
        """A conv's NHWC codes as a session keeps them (the next int8 conv reads NHWC as
        it is), else as NCHW."""
        if self.keep_blocked:
            return ChannelsLastArray(nhwc)
        return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))

    def _int8_conv_rows(self, p: spec.Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
        """ConvInteger (groups 1, one w zero point) as one ``dnnl_gemm_u8s8s32``: pixel-major
        uint8 patches (``im2row`` on NHWC) times the filters as a (R·S·C, K) int8 matrix,
        exact int32, channels-last. That orientation is oneDNN's fast one (u8 A, s8 B: 5x
        the s8s8 rate); int8 x or uint8 w are moved there by flipping the top bit, zero
        points alike."""
        nhwc = x.nhwc if isinstance(x, ChannelsLastArray) else np.ascontiguousarray(
            np.asarray(x).transpose(0, 2, 3, 1))
        zx_i, zw_i = int(zx), int(zw)
        if nhwc.dtype == np.int8:
            nhwc, zx_i = nhwc.view(np.uint8) ^ np.uint8(128), zx_i + 128
        patches = im2row(nhwc, p, pad_value=zx_i)
        filters = self._int8_filters(np.asarray(w))
        if filters.dtype != np.int8:
            raise AssertionError("filters must be int8 here")
        if np.asarray(w).dtype == np.uint8:
            zw_i -= 128
        out = self._buffers.empty((patches.shape[0], p.k), np.int32)
        self.dnnl.set_num_threads(self._threads_now)
        self.dnnl.gemm_int8(patches, filters, zx_i, zw_i, out)
        return out

    def _int8_filters(self, w: np.ndarray) -> np.ndarray:
        """OIHW 8-bit filters as an (R·S·C, K) int8 matrix; once per frozen array."""

        def build(w: np.ndarray) -> np.ndarray:
            flat = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])  # (R·S·C, K): im2row's
            if w.dtype == np.uint8:
                flat = flat.view(np.int8) ^ np.int8(-128)
            return np.ascontiguousarray(flat)

        return self._once_per_array(w, "int8-filters", build)
