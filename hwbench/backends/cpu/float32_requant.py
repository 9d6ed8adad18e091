"""The ``float32-requant`` math mode of the cpu backend: int8 requantization in float32.

A math mode, not a device: it changes how ``qgemm``/``qconv2d`` (and, per tensor,
(de)quantization of channels-last activations) map int32 accumulators back to 8 bits,
on either flavour. It is chosen with ``requantization="float32"`` or, as users spell it
in a backend name, ``cpu:float32-requant`` (``cpu:mkl+float32-requant``): the name's
device part is split here into the flavour (the device) and this mode.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import (
    ARG_ATTR_SCALES,
    ARG_ATTR_ZERO_POINTS,
    ARG_BIAS,
    ARG_DST,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
)
from hwbench.backends.cpu.primitives import (
    QConv,
    QMatmul,
    build_qadd,
    build_qglobal_avg_pool,
    build_requant_into,
    build_scaling_reorder,
    reorder,
)
from hwbench.errors import ArgumentError, NativeLibraryError
from hwbench.kernels import spec
from hwbench.kernels.quantization import FixedPointMultiplier, float32_bias, float32_scale

# How qconv2d/qgemm map int32 accumulators back to 8 bits. "exact" (the default): the
# shared fixed-point requantization, bit-identical on every backend. "float32": fused in
# oneDNN's int8 convolution/matmul primitives with float32 scales (oneDNN's and
# onnxruntime's convention), within 1 LSB of exact, several times faster. Named as the
# ``requantization=`` option or the name spelling ``cpu:float32-requant``
# (``cpu:mkl+float32-requant``), which ``hwbench run --backend`` accepts.
REQUANTIZATIONS = ("exact", "float32")
FLOAT32_REQUANT = "float32-requant"


def split_name(device: str | None) -> tuple[str | None, str | None]:
    """The part of a cpu backend name after ``cpu:`` -> (flavour, requantization it names):
    ``"mkl+float32-requant"`` -> ``("mkl", "float32")``, ``"float32-requant"`` ->
    ``(None, "float32")`` (the default flavour's), ``"mkl"`` -> ``("mkl", None)``."""
    if device is None:
        return None, None
    if device == FLOAT32_REQUANT:
        return None, "float32"
    flavour, plus, mode = device.rpartition("+")
    if plus and mode == FLOAT32_REQUANT:
        return flavour, "float32"
    return device, None


def choose(named: str | None, requantization: str | None, device: str | None) -> str:
    """The requantization a backend runs with: the one its name says, or the option's
    (which must not contradict the name), else "exact"."""
    if requantization is not None and requantization not in REQUANTIZATIONS:
        raise ArgumentError(f"argument 'requantization' must be one of "
                            f"{', '.join(map(repr, REQUANTIZATIONS))}, got {requantization!r}")
    if named and requantization not in (None, named):
        raise ArgumentError(f"argument 'requantization': {requantization!r} contradicts "
                            f"the backend name cpu:{device}")
    return named or requantization or "exact"


def full_name(name: str, requantization: str) -> str:
    """``cpu``/``cpu:mkl`` with the mode spelt the way users name it, so that result rows
    labelled by full name differ: ``cpu:float32-requant``, ``cpu:mkl+float32-requant``."""
    if requantization != "float32":
        return name
    return f"{name}{'+' if ':' in name else ':'}{FLOAT32_REQUANT}"


def symmetric_zero_point(dtype: np.dtype, zero_point: np.ndarray) -> int | None:
    """The weights' zero point if it is the one oneDNN's int8 primitives take once moved to
    int8 (0 for int8 weights, 128 for uint8 ones, every channel alike), else None."""
    want = 0 if np.dtype(dtype) == np.int8 else 128
    return want if np.all(np.asarray(zero_point, np.int64) == want) else None


def as_int8(w: np.ndarray) -> np.ndarray:
    """int8 weights as they are; uint8 ones with zero point 128 moved to int8 exactly."""
    w = np.ascontiguousarray(w)
    return w if w.dtype == np.int8 else w.view(np.int8) ^ np.int8(-128)


def fused_or_none(build):
    """``build()``, or None when oneDNN has no implementation for it (the exact path runs;
    the None is cached so that the search is not repeated)."""
    try:
        return build()
    except NativeLibraryError as exc:
        if "unimplemented" in str(exc):
            return None
        raise


def _codes(x) -> np.ndarray | None:
    """The C-contiguous 8-bit codes of ``x`` (a ``ChannelsLastArray``'s NHWC ones), or None."""
    codes = x.nhwc if isinstance(x, ChannelsLastArray) else x
    if type(codes) is not np.ndarray or codes.dtype not in (np.uint8, np.int8) \
            or not codes.flags.c_contiguous:
        return None
    return codes


def _scalar(v) -> float | None:
    """A per-tensor parameter's one value as a Python number, or None (per channel)."""
    if not isinstance(v, np.ndarray | np.generic):
        v = np.asarray(v)
    return v.item() if v.size == 1 else None


def _concat_codes(parts: list, params: list, y_scale, y_zero, axis: int):
    """(codes, scales, y scale, y dtype) of a QLinearConcat the fused paths take:
    channels-last inputs of one size and the output's dtype on channels (axis 1), every
    zero point 0 (this oneDNN's reorder drops them into a strided destination); else
    None."""
    if axis != 1 or not all(isinstance(p, ChannelsLastArray) for p in parts):
        return None
    codes = [_codes(p) for p in parts]
    values = [(_scalar(s), _scalar(z)) for s, z in params]
    sy, zy = _scalar(y_scale), _scalar(y_zero)
    y_dtype = np.asarray(y_zero).dtype
    if any(c is None or c.shape[:3] != codes[0].shape[:3] or c.dtype != y_dtype
           for c in codes) or sy is None or zy != 0 or any(z != 0 for _, z in values):
        return None
    return codes, [sx for sx, _ in values], sy, y_dtype


def quantization_args(scale: np.ndarray, src_zero_point, dst_zero_point) -> dict[int, Any]:
    """Execution buffers of a fused int8 primitive: the weights' float32 scales (the whole
    requantization scale: src and dst scales stay 1) and the src/dst zero points (s32)."""
    return {ARG_ATTR_SCALES | ARG_WEIGHTS: np.ascontiguousarray(scale, np.float32),
            ARG_ATTR_ZERO_POINTS | ARG_SRC: np.full(1, int(src_zero_point), np.int32),
            ARG_ATTR_ZERO_POINTS | ARG_DST: np.full(1, int(dst_zero_point), np.int32)}


class Float32RequantKernels:
    """The fused int8 paths this mode runs, mixed into ``CpuBackend`` (whose primitive
    cache, buffers, frozen arrays and thread count they use); each returns None where it
    does not apply and the exact path runs instead."""

    def _qgemm_fused(self, p: spec.Int8GemmProblem, a: np.ndarray, b: np.ndarray, za, zb,
                     fixed: FixedPointMultiplier, zy: np.ndarray) -> np.ndarray | None:
        """QLinearMatMul as one oneDNN int8 matmul with requantization fused (float32
        scales); None where it does not apply (a per-row A zero point, B's zero point not
        the symmetric one) or oneDNN has no implementation, and the exact path runs."""
        zb_sym = symmetric_zero_point(b.dtype, zb)
        if za.ndim != 0 or zb_sym is None:
            return None
        key = ("qmatmul", p, a.dtype.str, b.dtype.str, zy.dtype.str, fixed.multiplier.size)
        mm = self._primitive(key, lambda: fused_or_none(lambda: QMatmul(
            self.dnnl, p, a.dtype, zy.dtype, per_column=fixed.multiplier.size > 1)))
        if mm is None:
            return None
        self.dnnl.set_num_threads(self._threads_now)
        packed = self._once_per_array(b, key, lambda b: mm.pack_weights(as_int8(b)))
        out = self._buffers.empty((p.m, p.n), zy.dtype)
        mm.prim.execute({ARG_SRC: np.ascontiguousarray(a), ARG_WEIGHTS: packed, ARG_DST: out,
                         **quantization_args(float32_scale(fixed), za, zy)})
        return out

    def _scaling_reorder(self, kind: str, src: np.ndarray, dst: np.ndarray, scale,
                         zero_point, to_nhwc: bool = False) -> None:
        """``dst = saturate(rint(src / scale) + zp)`` (quantize) or ``(src - zp) · scale``
        (dequantize) over flat buffers, as one oneDNN reorder; ``to_nhwc``: an NCHW
        ``src`` into an NHWC ``dst``, transposed first by a plain reorder (that and the
        flat pass took 63 µs at 3x224x224 where one transposing, scaling reorder took
        115 µs; the same codes)."""
        self.dnnl.set_num_threads(self._threads_now)
        transpose, prim = self._scaling_primitives(kind, src.shape, src.dtype, dst.dtype,
                                                   to_nhwc)
        if transpose is not None:
            n, c, h, w = src.shape
            nhwc = self._buffers.empty((n, h, w, c), src.dtype)
            transpose.execute({ARG_SRC: src, ARG_DST: nhwc})
            src = nhwc
        arg = ARG_DST if kind == "quantize" else ARG_SRC
        prim.execute({ARG_SRC: src, ARG_DST: dst,
                      ARG_ATTR_SCALES | arg: np.asarray(scale, np.float32).reshape(1),
                      ARG_ATTR_ZERO_POINTS | arg: np.full(1, int(zero_point), np.int32)})

    def _scaling_primitives(self, kind: str, shape: tuple[int, ...], src_dtype: np.dtype,
                            dst_dtype: np.dtype, to_nhwc: bool = False) -> tuple[Any, Any]:
        """``_scaling_reorder``'s (NCHW -> NHWC transpose or None, scaling reorder), cached
        (a plan's replay binds the same ones: ``int8_links``)."""
        d, transpose = self.dnnl, None
        if to_nhwc:  # None: one channel or pixel, the same bytes
            key = ("nchw-to-nhwc", tuple(shape), src_dtype.str)
            transpose = self._primitive(key, lambda: reorder(
                d, d.memory_desc(shape, src_dtype, tag="abcd"),
                d.memory_desc(shape, src_dtype, tag="acdb")))
        size = int(np.prod(shape))
        key = ("scaling_reorder", kind, size, src_dtype.str, dst_dtype.str)
        return transpose, self._primitive(key, lambda: build_scaling_reorder(
            d, kind, size, src_dtype, dst_dtype))

    def _qconv2d_fused(self, p: spec.Int8ConvProblem, x, w: np.ndarray, zx, zw, bias,
                       fixed: FixedPointMultiplier, zy: np.ndarray):
        """QLinearConv as oneDNN's int8 convolution, requantization fused (float32 scales:
        within 1 LSB of exact), channels-last in and out: a session's activations go from
        one such conv to the next without a copy. None where it does not apply (w's zero
        point not the symmetric one) or oneDNN has no implementation."""
        if symmetric_zero_point(w.dtype, zw) is None:
            return None
        key, conv = self._qconv_primitive(p, zx, zy)
        if conv is None:
            return None
        self.dnnl.set_num_threads(self._threads_now)
        # Keyed by the primitive: its layout (and the compensation oneDNN appends for an
        # int8 src) depends on the dtypes as well as the problem.
        packed = self._once_per_array(w, key, lambda w: conv.pack_weights(as_int8(w)))
        if isinstance(x, ChannelsLastArray):
            src = x.nhwc
        else:  # NCHW -> NHWC once; oneDNN's int8 kernels want channels last
            src = self._buffers.empty((p.n, p.h, p.w, p.c), np.dtype(p.x_dtype))
            np.copyto(src, np.asarray(x).transpose(0, 2, 3, 1))
        out = self._buffers.empty((p.n, p.out_h, p.out_w, p.k), zy.dtype)
        buffers = {ARG_SRC: src, ARG_WEIGHTS: packed, ARG_DST: out,
                   **self._qconv_args(p, w, key, zx, bias, fixed, zy)}
        conv.prim.execute(buffers)
        if self.keep_blocked:
            return ChannelsLastArray(out)
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def _qconv_primitive(self, p: spec.Int8ConvProblem, zx, zy: np.ndarray) -> tuple[tuple, Any]:
        """The fused conv's cache key and ``QConv`` (None: no oneDNN implementation),
        built without the zero points that are 0."""
        x_dtype = np.dtype(p.x_dtype)
        zero_points = (int(zx) != 0, int(zy) != 0)
        key = ("qconv", p, x_dtype.str, zy.dtype.str, zero_points)
        return key, self._primitive(key, lambda: fused_or_none(
            lambda: QConv(self.dnnl, p, x_dtype, zy.dtype, zero_points)))

    def _qconv_args(self, p: spec.Int8ConvProblem, w: np.ndarray, key: tuple, zx, bias,
                    fixed: FixedPointMultiplier, zy: np.ndarray) -> dict[int, Any]:
        """The fused conv's scales, zero points and float32 bias: kept with the frozen
        weights (and bias), keyed by the values they are derived from, so that a graph's
        runs do not rebuild them."""
        values = (fixed.multiplier.tobytes(), fixed.right_shift.tobytes(), int(zx), int(zy))

        def build(_w):
            scale = np.ascontiguousarray(np.broadcast_to(float32_scale(fixed), (p.k,)))
            args = quantization_args(scale, zx, zy)
            for arg, value in ((ARG_SRC, zx), (ARG_DST, zy)):
                if int(value) == 0:  # the primitive has none (``_qconv_primitive``)
                    del args[ARG_ATTR_ZERO_POINTS | arg]
            return scale, args

        scale, args = self._once_per_array(w, (key, "qargs", values), build)
        if bias is None:
            return args
        f32 = self._once_per_array(bias, ("f32-bias", scale.tobytes()),
                                   lambda b: float32_bias(self._plain(b), scale))
        return {**args, ARG_BIAS: f32}

    def _qadd_fused(self, a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero,
                    relu: bool):
        """QLinearAdd (then Relu) of two 8-bit code arrays of one shape and layout as one
        oneDNN binary in float32 (``build_qadd``): the exact codes or 1 LSB away (the
        rounding of ``ra·a + rb·b + offset`` near a tie), one multithreaded pass where
        the exact table took three; None where it does not apply."""
        ca, cb = _codes(a), _codes(b)
        params = [_scalar(v) for v in (a_scale, a_zero, b_scale, b_zero, y_scale, y_zero)]
        if ca is None or cb is None or ca.shape != cb.shape or None in params \
                or isinstance(a, ChannelsLastArray) != isinstance(b, ChannelsLastArray):
            return None
        y_dtype = np.asarray(y_zero).dtype
        self.dnnl.set_num_threads(self._threads_now)
        run = self._qadd_runner(ca, cb, y_dtype, params, bool(relu))
        if run is None:
            return None
        out = self._buffers.empty(ca.shape, y_dtype)
        run(address(ca), address(cb), address(out))  # sizes: the key's, contiguous
        return ChannelsLastArray(out) if isinstance(a, ChannelsLastArray) else out

    def _qadd_runner(self, ca: np.ndarray, cb: np.ndarray, y_dtype: np.dtype, params: list,
                     relu: bool) -> Any:
        """The cached ``_build_qadd`` runner (a compiled plan's step replays it too)."""
        return self._primitive(
            ("qadd", ca.size, ca.dtype.str, cb.dtype.str, y_dtype.str, *params, relu),
            lambda: self._build_qadd(ca, cb, y_dtype, params, relu))

    def _build_qadd(self, ca: np.ndarray, cb: np.ndarray, y_dtype: np.dtype, params: list,
                    relu: bool) -> Any:
        """``_qadd_fused``'s primitive, its scales bound once: ``run(a, b, out)`` on the
        three addresses (None: no oneDNN implementation)."""
        sa, za, sb, zb, sy, zy = params
        ra, rb = np.float32(sa / sy), np.float32(sb / sy)
        offset = -(float(ra) * za + float(rb) * zb)
        prim = fused_or_none(lambda: build_qadd(self.dnnl, ca.size, ca.dtype, cb.dtype,
                                                y_dtype, offset, relu, zy))
        if prim is None:
            return None
        scales = {ARG_ATTR_SCALES | ARG_SRC: np.full(1, ra, np.float32),
                  ARG_ATTR_SCALES | ARG_SRC_1: np.full(1, rb, np.float32)}
        return BoundPrimitive(prim, scales, (ARG_SRC, ARG_SRC_1, ARG_DST)).runner()

    def _build_requant_into(self, shape: tuple[int, ...], channels: int, start: int,
                            x_dtype: np.dtype, y_dtype: np.dtype, x_scale: float,
                            y_scale: float, interleave: int = 1) -> Any:
        """``_qconcat_fused``'s reorder for one input, its scales bound once (none where
        they are equal: a copy): ``run(src, whole output)`` on two addresses."""
        scaled = np.float32(x_scale) != np.float32(y_scale)
        prim = build_requant_into(self.dnnl, shape, channels, start, x_dtype, y_dtype, scaled,
                                  interleave)
        scales = {ARG_ATTR_SCALES | ARG_SRC: np.full(1, x_scale, np.float32),
                  ARG_ATTR_SCALES | ARG_DST: np.full(1, y_scale, np.float32)} if scaled else {}
        return BoundPrimitive(prim, scales, (ARG_SRC, ARG_DST)).runner()

    def _qconcat_fused(self, parts: list, params: list, y_scale, y_zero, axis: int):
        """QLinearConcat on channels of channels-last 8-bit codes whose zero points are all
        0 (every one after a ReLU): each input requantized straight into its channels of
        the NHWC output by one oneDNN reorder in float32 (``build_requant_into``: the
        exact codes or 1 LSB away; a copy where the scales are equal), where the exact
        path looked each input up into a scratch array and copied that in with a stride;
        None where it does not apply."""
        found = _concat_codes(parts, params, y_scale, y_zero, axis)
        if found is None:
            return None
        codes, scales, sy, y_dtype = found
        n, h, w, _ = codes[0].shape
        channels = sum(c.shape[3] for c in codes)
        out = self._buffers.empty((n, h, w, channels), y_dtype)
        self.dnnl.set_num_threads(self._threads_now)
        start, a_out = 0, address(out)
        for c, sx in zip(codes, scales, strict=True):
            self._requant_runner(c, channels, start, y_dtype, sx, sy)(address(c), a_out)
            start += c.shape[3]
        return ChannelsLastArray(out)

    def _requant_runner(self, c: np.ndarray, channels: int, start: int, y_dtype: np.dtype,
                        sx: float, sy: float, interleave: int = 1) -> Any:
        """The cached ``_build_requant_into`` runner for NHWC codes ``c`` (sizes: the
        key's; ``c`` contiguous)."""
        n, h, w, k = c.shape
        shape = (n, k, h, w)
        return self._primitive(
            ("requant-into", shape, channels, start, c.dtype.str, sx, sy, interleave),
            partial(self._build_requant_into, shape, channels, start, c.dtype, y_dtype,
                    sx, sy, interleave))

    def _qconcat_shuffled(self, parts: list, params: list, y_scale, y_zero, axis: int,
                          order) -> ChannelsLastArray | None:
        """QLinearConcat of g inputs of C/g channels each, then its channel shuffle of g
        groups (``gather_channels``: ShuffleNet v2's, ``out[j·g + i] = part_i[j]``): each
        input goes straight to its interleaved channels (one strided copy; requantized
        first by one dense reorder where its scale is not the output's), where the
        concatenated codes were written and then copied again by the Gather. None where
        it does not apply."""
        found = _concat_codes(parts, params, y_scale, y_zero, axis)
        if found is None:
            return None
        codes, scales, sy, y_dtype = found
        groups, per = len(codes), codes[0].shape[3]
        if any(c.shape[3] != per for c in codes) or not self._is_shuffle(order, groups, per):
            return None
        n, h, w, _ = codes[0].shape
        out = self._buffers.empty((n, h, w, groups * per), y_dtype)
        self.dnnl.set_num_threads(self._threads_now)
        a_out = address(out)
        for g, (c, sx) in enumerate(zip(codes, scales, strict=True)):
            run = self._requant_runner(c, groups * per, 0, y_dtype, sx, sy, groups)
            run(address(c), a_out + g * out.itemsize)  # the group's first channel
        return ChannelsLastArray(out)

    def _is_shuffle(self, order, groups: int, per: int) -> bool:
        """Whether ``order`` (a node's attribute: the same list every run, so checked
        once per list) is the channel shuffle of ``groups`` groups of ``per``."""
        def check() -> tuple:
            shuffle = np.arange(groups * per).reshape(groups, per).T.reshape(-1)
            return order, len(order) == shuffle.size and np.array_equal(order, shuffle)
        seen, ok = self._primitive(("shuffle-order", id(order), groups, per), check)
        return seen is order and ok

    def _qgap_fused(self, x, x_scale, x_zero, y_scale, y_zero):
        """QLinearGlobalAveragePool of 8-bit codes (NCHW or channels-last) as one oneDNN
        average pooling with the requantization as a post-op (``build_qglobal_avg_pool``):
        the exact codes or 1 LSB away, where dequantize, pool and quantize took three
        kernel calls; None where it does not apply."""
        held = isinstance(x, ChannelsLastArray)
        codes = _codes(x)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._qgap_primitive(x, x_scale, x_zero, y_scale, y_zero)
        if prim is None:
            return None
        y_dtype = np.asarray(y_zero).dtype
        n, c = (codes.shape[0], codes.shape[3]) if held else codes.shape[:2]
        out = self._buffers.empty((n, 1, 1, c) if held else (n, c, 1, 1), y_dtype)
        prim.execute({ARG_SRC: codes, ARG_DST: out})
        return ChannelsLastArray(out) if held else out

    def _qgap_primitive(self, x, x_scale, x_zero, y_scale, y_zero) -> Any:
        """``_qgap_fused``'s cached pooling for ``x``'s codes (NCHW or channels-last), or
        None where it does not apply (a compiled plan's step replays it too)."""
        held = isinstance(x, ChannelsLastArray)
        codes = _codes(x)
        params = [_scalar(v) for v in (x_scale, x_zero, y_scale, y_zero)]
        if codes is None or codes.ndim != 4 or None in params:
            return None
        sx, zx, sy, zy = params
        y_dtype = np.asarray(y_zero).dtype
        alpha = float(np.float32(sx / sy))
        shape = (codes.shape[0], codes.shape[3], *codes.shape[1:3]) if held else codes.shape
        tag = "acdb" if held else "abcd"
        return self._primitive(
            ("qgap", shape, tag, codes.dtype.str, y_dtype.str, alpha, zx, zy),
            lambda: fused_or_none(lambda: build_qglobal_avg_pool(
                self.dnnl, shape, tag, codes.dtype, y_dtype, alpha, zy - alpha * zx)))

    def qgemm_requant(self, a, a_scale, a_zero, b_nk, b_scale, b_zero, y_scale, y_zero,
                      bias):
        """QGemm with an 8-bit output (``A·Bᵀ`` for ``b_nk`` of shape (N, K), frozen) in
        the ``float32-requant`` mode: ``_qconv2d_fused`` as a 1x1 conv straight on A's
        rows read as NHWC pixels, where the op's path took four reshapes and a transpose
        around ``qconv2d``; None where it does not apply (the op's path)."""
        conv = self._qgemm_as_conv(a, a_scale, a_zero, b_nk, b_scale, b_zero, y_scale,
                                   y_zero, bias)
        out = None if conv is None else self._qconv2d_fused(*conv)
        if out is None:
            return None
        return (out.nhwc if isinstance(out, ChannelsLastArray) else out).reshape(a.shape[0], -1)

    def _qgemm_as_conv(self, a, a_scale, a_zero, b_nk, b_scale, b_zero, y_scale, y_zero,
                       bias) -> tuple | None:
        """``qgemm_requant``'s 1x1 conv: the checked ``_qconv2d_fused`` arguments
        ``(p, x, w, zx, zw, bias, fixed, zy)`` (a compiled plan's step binds them once),
        or None where it does not apply."""
        if self.requantization != "float32" or type(a) is not np.ndarray or a.ndim != 2 \
                or b_nk not in self.frozen or np.ndim(b_nk) != 2 \
                or not (bias is None or (bias in self.frozen and np.ndim(bias) == 1)):
            return None
        (m, k), n = a.shape, b_nk.shape[0]
        w = self.frozen.derived(b_nk, ("reshape", (n, k, 1, 1)),
                                lambda w: self.frozen.freeze(np.reshape(w, (n, k, 1, 1))))
        x = ChannelsLastArray(np.ascontiguousarray(a).reshape(m, 1, 1, k))
        p, zx, zw = spec.check_conv2d_int8(x, w, a_zero, b_zero, bias=bias, op="qgemm")
        fixed, zy = spec.check_requantization(a_scale, b_scale, y_scale, y_zero, n,
                                              ("a_scale", "b_scale"), "qgemm")
        return p, x, w, zx, zw, bias, fixed, zy
