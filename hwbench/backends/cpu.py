"""The ``cpu`` backend: oneDNN primitives (default) or MKL's CBLAS (``cpu:mkl``) via ctypes.

Device arrays are NumPy arrays. ``asarray`` returns *frozen* copies (``frozen.py``): no
array in their chain can be made writable, so an array the backend handed out cannot
change behind its back, which is what makes it safe to reorder a convolution's weights
into oneDNN's blocked layout once and reuse them (and to screen it for NaN once).
With ``keep_blocked=True`` (what ``Session`` uses) convolutions, pooling and channel
concat also return ``BlockedArray``: an activation left in oneDNN's nChw16c layout,
read as it is by the next such kernel and converted by every other one (and
``to_numpy``), so a CNN runs without reorders between layers.

Primitives are created once per (op, shapes, layouts, attributes) and cached; a cached
call only swaps data pointers (see ``onednn.Primitive``). Large outputs and scratch
buffers come from a ``BufferPool`` that reuses a buffer once nothing else holds it
(a fresh one would be page-faulted in on every run). Convolutions fuse their epilogue
(``conv2d(..., residual=, activation=)``) as oneDNN post-ops.
"""

from __future__ import annotations

import ctypes
import math
import sys
from typing import Any

import numpy as np

from hwbench.backends import onednn
from hwbench.backends.base import Backend, all_finite
from hwbench.backends.blas_layout import row_major
from hwbench.backends.frozen import FrozenArrays
from hwbench.backends.onednn import (
    ARG_ATTR_SCALES,
    ARG_ATTR_ZERO_POINTS,
    ARG_BIAS,
    ARG_DIFF_DST,
    ARG_DIFF_SRC,
    ARG_DST,
    ARG_MULTIPLE_SRC,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
    QUERY_DIFF_SRC_MD,
    QUERY_DST_MD,
    QUERY_SRC_MD,
    QUERY_WEIGHTS_MD,
    Primitive,
)
from hwbench.errors import ArgumentError, NativeLibraryError
from hwbench.kernels.im2col import conv2d_int8_by_gemm, im2row
from hwbench.kernels.quantization import (
    FixedPointMultiplier,
    dequantize,
    float32_bias,
    float32_scale,
    quantize,
    requantize,
    zero_point_correction,
)
from hwbench.kernels.spec import (
    FLOAT32,
    BinaryProblem,
    ConcatProblem,
    ConvProblem,
    ElementwiseProblem,
    GemmProblem,
    Int8ConvProblem,
    Int8GemmProblem,
    LayoutProblem,
    LrnProblem,
    PoolProblem,
    QuantizeProblem,
    SoftmaxProblem,
)

ALIGNMENT = 64  # bytes: one cache line, one AVX-512 register
SMALL_BYTES = 1 << 16
FLAVOURS = ("onednn", "mkl")
# How qconv2d/qgemm map int32 accumulators back to 8 bits. "exact" (the default): the
# shared fixed-point requantization, bit-identical on every backend. "float32": fused in
# oneDNN's int8 convolution/matmul primitives with float32 scales (oneDNN's and
# onnxruntime's convention), within 1 LSB of exact, several times faster. Named as the
# ``requantization=`` option or the device spelling ``cpu:float32-requant``
# (``cpu:mkl+float32-requant``), which ``hwbench run --backend`` accepts.
REQUANTIZATIONS = ("exact", "float32")
FLOAT32_REQUANT = "float32-requant"
# Activation layouts a convolution may run in (oneDNN format tags). "blocked" is
# nChw16c where the channels allow it: measured on Zen 4 at ResNet-50's 3x3 layers,
# batch 8, including the reorders from and to NCHW, it ran 4-9 % faster than letting
# oneDNN pick ("any" chose NHWC, brgconv) and 40-70 % faster than plain NCHW (gemm:jit).
CONV_LAYOUTS = {"blocked": "aBcd16b", "any": "any", "nhwc": "acdb", "nchw": "abcd"}


def aligned_empty(shape: tuple[int, ...] | int, dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary.

    Small arrays come straight from ``np.empty``: alignment only pays for large operands
    and the extra slicing would double a small call's overhead.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SMALL_BYTES:
        return np.empty(shape, dtype)
    return onednn.aligned_bytes(nbytes, ALIGNMENT).view(dtype).reshape(shape)


BLOCKED_TAG = CONV_LAYOUTS["blocked"]
# Problems below both run on one thread (CpuBackend.threads_for). Break-even of 1 against
# 2 threads measured on the 2-core VM with PASSIVE threads: conv ~58 MFLOP (3×3, 64 ch,
# 28²: 561 vs 568 µs), gemm ~30 MFLOP (256³: 343 vs 283 µs; 128³: 54 vs 132 µs), sigmoid
# ~2^19 values (2^18: 124 vs 156 µs; 2^20: 555 vs 331 µs).
SMALL_PROBLEM_FLOPS = 32_000_000
SMALL_PROBLEM_BYTES = 2 << 20


class BlockedArray:
    """A float32 NCHW activation held in a oneDNN blocked layout between cpu kernels.

    With ``keep_blocked=True`` a convolution returns one of these instead of reordering
    its output back to NCHW, and the next convolution (or pooling) reads it as it is:
    ResNet-50 then runs with no reorders between layers. ``shape`` and ``dtype`` are the
    logical ones (what the spec checks see); ``md`` is the exact memory descriptor the
    buffer is laid out by (format, blocking, channel padding): a kernel reads the buffer
    as it is only where its own descriptor for that argument is equal, and converts it
    otherwise. Every kernel that needs plain memory, and ``to_numpy``, converts it with
    one reorder (``CpuBackend._plain``).
    """

    __slots__ = ("buffer", "shape", "dtype", "md", "_to_plain")

    def __init__(self, buffer: np.ndarray, shape: tuple[int, ...], md: onednn.MemoryDesc,
                 to_plain: Primitive | None) -> None:
        if buffer.nbytes < md.size:
            raise AssertionError(f"a {buffer.nbytes}-byte buffer for a {md.size}-byte layout")
        self.buffer = buffer          # raw bytes, sized for the blocked descriptor
        self.shape = tuple(shape)
        self.dtype = FLOAT32
        self.md = md                  # the layout of ``buffer``
        self._to_plain = to_plain     # reorder primitive: this layout -> NCHW

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def plain(self, out: np.ndarray) -> np.ndarray:
        """Reorder into ``out`` (a C-contiguous float32 array of ``shape``)."""
        if self._to_plain is None:  # the layout is plain already
            np.copyto(out.reshape(-1), self.buffer.reshape(-1).view(np.float32)[:out.size])
        else:
            self._to_plain.execute({ARG_SRC: self.buffer, ARG_DST: out})
        return out

    def __repr__(self) -> str:
        return f"<BlockedArray {self.shape} float32 blocked>"


class ChannelsLastArray:
    """An NCHW activation held channels-last (NHWC) in an int8 model's session.

    The int8 convolution is one GEMM of pixel-major patches (or oneDNN's int8 primitive),
    whose product comes out NHWC; in a session (``keep_blocked``) it stays so, and the
    next int8 convolution reads it directly (a 1×1 one needs no copy at all). The float
    ops between int8 convolutions (DequantizeLinear, Add, Relu, MaxPool, QuantizeLinear)
    keep it NHWC too (8-bit or float32): they are elementwise or layout-aware, so no
    transpose runs between layers. ``shape`` is the logical NCHW one;
    ``CpuBackend._plain`` transposes for every other reader.
    """

    __slots__ = ("nhwc", "shape", "dtype")

    def __init__(self, nhwc: np.ndarray) -> None:
        self.nhwc = nhwc
        n, h, w, c = nhwc.shape
        self.shape = (n, c, h, w)
        self.dtype = nhwc.dtype

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return self.nhwc.size

    def __repr__(self) -> str:
        return f"<ChannelsLastArray {self.shape} {self.dtype} NHWC>"


def _conv_tags(p: ConvProblem, layout: str) -> tuple[str, str]:
    """The (src, dst) activation format tags a convolution's primitive is created with.

    "blocked" needs channels in multiples of 16 and no groups, else oneDNN chooses; a
    first layer with few input channels (RGB) reads plain NCHW and writes blocked, which
    oneDNN's jit kernel does directly.
    """
    if layout != "blocked":
        return CONV_LAYOUTS[layout], CONV_LAYOUTS[layout]
    if p.groups > 1 or p.k % 16:
        return "any", "any"
    if p.c % 16 == 0:
        return BLOCKED_TAG, BLOCKED_TAG
    return ("abcd", BLOCKED_TAG) if p.c < 16 else ("any", "any")


class BufferPool:
    """Large output and scratch buffers, reused once nothing outside the pool holds them.

    A fresh multi-megabyte ``np.empty`` comes from ``mmap`` and is page-faulted in on
    first touch, every run: measured on ResNet-50 at batch 8, ~3000 faults and 15 % of
    the run. A buffer is free again when its memory's owner is referenced only by the
    pool's own aligned view (``sys.getrefcount``: every NumPy view of it, however
    derived, holds the owner as its ``base``). The pool keeps at most the largest set
    of buffers of each size that were alive at one time.
    """

    def __init__(self, limit_bytes: int = 1 << 30) -> None:
        self._buckets: dict[int, list[np.ndarray]] = {}  # by size, least recently used first
        self.limit_bytes = limit_bytes

    def empty(self, shape: tuple[int, ...] | int, dtype: Any = np.float32) -> np.ndarray:
        """Like ``aligned_empty``; small arrays are not pooled (malloc reuses them)."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < SMALL_BYTES:
            return np.empty(shape, dtype)
        bucket = self._buckets.pop(nbytes, [])
        self._buckets[nbytes] = bucket  # now the most recently used size
        # Most recently handed out first: a short-lived buffer is the likeliest to still
        # be in cache (and writing to cached lines saves their reads from memory).
        for i in range(len(bucket) - 1, -1, -1):
            buffer = bucket[i]
            if sys.getrefcount(buffer.base) == 2:  # buffer.base's own, and the argument
                bucket.append(bucket.pop(i))
                return buffer.view(dtype).reshape(shape)
        buffer = onednn.aligned_bytes(nbytes, ALIGNMENT)
        bucket.append(buffer)
        self._trim()
        return buffer.view(dtype).reshape(shape)

    def _trim(self) -> None:
        """Past ``limit_bytes``, let go of free buffers, least recently used sizes first,
        so that a run over many shapes (a kernel sweep) does not keep them all."""
        excess = self.nbytes - self.limit_bytes
        for size in list(self._buckets):
            if excess <= 0:
                break
            kept = []
            for buffer in self._buckets[size]:
                if excess > 0 and sys.getrefcount(buffer.base) == 2:  # free: see empty()
                    excess -= size
                else:
                    kept.append(buffer)
            if kept:
                self._buckets[size] = kept
            else:
                del self._buckets[size]

    @property
    def nbytes(self) -> int:
        """Bytes the pool holds (free or in use)."""
        return sum(size * len(bucket) for size, bucket in self._buckets.items())


def _parse_device(device: str | None) -> tuple[str, str | None]:
    """``None``/"onednn"/"mkl", optionally ``+float32-requant`` (alone: onednn's) ->
    (flavour, "float32" or None)."""
    if device is None:
        return "onednn", None
    flavour, _, mode = device.rpartition("+") if "+" in device else (device, "", "")
    if not mode and device == FLOAT32_REQUANT:
        flavour, mode = "onednn", device
    if flavour not in FLAVOURS or mode not in ("", FLOAT32_REQUANT):
        raise ArgumentError(
            f"argument 'backend': cpu has flavours {', '.join(FLAVOURS)}, each optionally "
            f"with +{FLOAT32_REQUANT} ({FLOAT32_REQUANT} alone: onednn's), got {device!r}")
    return flavour, "float32" if mode else None


class CpuBackend(Backend):
    name = "cpu"
    runs_on_host_cpu = True
    # Whole graphs keep activations in oneDNN's blocked layout from conv to conv.
    session_options = {"keep_blocked": True}  # noqa: RUF012 - read only

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True, conv_layout: str = "blocked",
                 pointwise_as_gemm: bool = True, keep_blocked: bool = False,
                 requantization: str | None = None) -> None:
        """``keep_blocked``: convolutions in the blocked layout return ``BlockedArray``
        (no reorder back to NCHW) and read one without a reorder; other kernels and
        ``to_numpy`` convert. Sessions turn it on; direct kernel calls get NumPy arrays
        unless asked. ``requantization``: "exact" (default) or "float32" (see
        ``REQUANTIZATIONS``); the device spelling ``float32-requant`` names the latter."""
        flavour, named = _parse_device(device)
        if requantization is not None and requantization not in REQUANTIZATIONS:
            raise ArgumentError(f"argument 'requantization' must be one of "
                                f"{', '.join(map(repr, REQUANTIZATIONS))}, got {requantization!r}")
        if named and requantization not in (None, named):
            raise ArgumentError(f"argument 'requantization': {requantization!r} contradicts "
                                f"the backend name cpu:{device}")
        requantization = named or requantization or "exact"
        if conv_layout not in CONV_LAYOUTS:
            raise ArgumentError(
                f"argument 'conv_layout' must be one of {CONV_LAYOUTS}, got {conv_layout!r}")
        # The device names every non-default choice, so rows labelled by full_name differ.
        parts = ([] if flavour == "onednn" else [flavour]) + (
            [FLOAT32_REQUANT] if requantization == "float32" else [])
        super().__init__("+".join(parts) or None, threads=threads, check_finite=check_finite)
        self.flavour = flavour
        self.requantization = requantization
        self.conv_layout = conv_layout
        self.pointwise_as_gemm = bool(pointwise_as_gemm)
        self.keep_blocked = bool(keep_blocked)
        self.dnnl = onednn.load()
        self.mkl = None
        if flavour == "mkl":
            from hwbench.backends.mkl import load_mkl

            self.mkl = load_mkl()
            self.mkl.set_num_threads(self.threads)
        self._threads_now = self.threads  # what libgomp runs the next kernel with
        self.dnnl.set_num_threads(self.threads)
        self._primitives: dict[tuple, Any] = {}
        # Arrays from asarray, and what was derived from each: packed filters, NaN screen.
        self.frozen = FrozenArrays()
        self._buffers = BufferPool()

    # -- discovery -----------------------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        return onednn.availability()

    @classmethod
    def devices(cls) -> list[str]:
        from hwbench.backends.mkl import mkl_available

        return ["onednn", "mkl"] if mkl_available()[0] else ["onednn"]

    @classmethod
    def device_status(cls, device: str) -> str:
        """A flavour of ``devices()``, optionally ``+float32-requant`` (or that alone)."""
        try:
            flavour, _ = _parse_device(device)
        except ArgumentError as exc:
            return str(exc)
        return super().device_status(flavour)

    @classmethod
    def versions(cls) -> dict[str, str]:
        out: dict[str, str] = {}
        ok, _ = onednn.availability()
        if ok:
            dnnl = onednn.load()
            out.update(onednn=f"{dnnl.version} ({dnnl.git_hash[:8]})", cpu_isa=dnnl.cpu_isa)
        from hwbench.backends.mkl import load_mkl, mkl_available

        if mkl_available()[0]:
            out["mkl"] = load_mkl().version
        return out

    def info(self) -> dict[str, Any]:
        info = super().info()
        if self.requantization == "float32":  # int8 results may differ from exact by 1 LSB
            info["math_mode"] = "fp32; int8 float32-requant"
        info.update(flavour=self.flavour, requantization=self.requantization,
                    conv_layout=self.conv_layout,
                    pointwise_as_gemm=self.pointwise_as_gemm, keep_blocked=self.keep_blocked,
                    small_problems=f"1 thread below {SMALL_PROBLEM_FLOPS:.0e} FLOPs and "
                                   f"{SMALL_PROBLEM_BYTES >> 10} KiB of output",
                    gemm_library="mkl" if self.mkl else "onednn", conv_library="onednn")
        return info

    # -- memory --------------------------------------------------------------------------
    def asarray(self, x: Any) -> np.ndarray:
        """A 64-byte aligned copy that no NumPy call can make writable (``frozen.py``):
        the data cannot change behind a cached, reordered copy or NaN verdict."""
        return self.frozen.freeze(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(self._plain(x))

    def _plain(self, x: Any) -> Any:
        """``x`` itself, or a ``BlockedArray`` reordered to a plain NCHW array."""
        if isinstance(x, BlockedArray):
            self.dnnl.set_num_threads(self._threads_now)
            return x.plain(self._buffers.empty(x.shape, np.float32))
        if isinstance(x, ChannelsLastArray):
            return np.ascontiguousarray(x.nhwc.transpose(0, 3, 1, 2))
        return x

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        return aligned_empty(shape, dtype)

    def _all_finite(self, x: Any) -> bool:
        """Screen for NaN/inf; a frozen array (from ``asarray``) is screened only once."""
        if isinstance(x, BlockedArray):  # its padding holds no values: screen the plain copy
            return all_finite(self._plain(x))
        if isinstance(x, ChannelsLastArray):
            return all_finite(x.nhwc)
        return self.frozen.derived(x, "all-finite", all_finite)

    # -- threads -------------------------------------------------------------------------
    def _begin_kernel(self, op: str, problem: Any) -> None:
        """Choose the kernel's thread count before anything else runs, so that its
        primitives are created and run with the same one."""
        super()._begin_kernel(op, problem)
        self._threads_now = self.threads_for(problem)
        self.dnnl.set_num_threads(self._threads_now)  # libgomp's count is process-wide

    def threads_for(self, problem: Any) -> int:
        """1 for a problem too small to pay for waking another thread, else ``threads``.

        With ``OMP_WAIT_POLICY=PASSIVE`` (what degrades gracefully on a busy machine)
        each parallel region wakes sleeping threads, tens of µs: measured on the 2-core VM,
        gemm 64³ took ~85 µs on 2 threads against ~20 µs on one, and LeNet at batch 1
        ~0.85 ms against ~0.24 ms. Below ``SMALL_PROBLEM_FLOPS`` and
        ``SMALL_PROBLEM_BYTES`` of output one thread is faster, idle or busy.
        """
        small = (getattr(problem, "flops", 0) < SMALL_PROBLEM_FLOPS
                 and problem.output_bytes < SMALL_PROBLEM_BYTES)
        return 1 if small else self.threads

    # -- cache ---------------------------------------------------------------------------
    def _primitive(self, key: tuple, build) -> Any:
        """``build()`` once per key and thread count (oneDNN splits a primitive's work
        for the threads it was created with); a None result too ("no primitive for
        this")."""
        key = (*key, self._threads_now)
        try:
            return self._primitives[key]
        except KeyError:
            prim = self._primitives[key] = build()
            return prim

    @property
    def cached_primitives(self) -> int:
        return len(self._primitives)

    # -- gemm ----------------------------------------------------------------------------
    def _gemm(self, p: GemmProblem, a, b, bias) -> np.ndarray:
        a, b = np.asarray(self._plain(a)), np.asarray(self._plain(b))
        if self.mkl is not None:
            out = self.mkl.sgemm(a, b, p.trans_a, p.trans_b)
            if bias is not None:
                out += bias
            return out
        # dnnl_sgemm rather than the matmul primitive: 220 vs 215 GFLOP/s at 2048³ on Zen 4,
        # and beta=1 over a pre-filled C applies any ONNX-broadcastable bias in the GEMM.
        self.dnnl.set_num_threads(self._threads_now)
        out = self._buffers.empty((p.m, p.n), np.float32)
        beta = 0.0
        if bias is not None:
            out[...] = bias
            beta = 1.0
        sa, ta = row_major(a, FLOAT32, p.trans_a)
        sb, tb = row_major(b, FLOAT32, p.trans_b)
        self.dnnl.sgemm(sa, sb, ta, tb, out, beta)
        return out

    # -- int8 gemm -----------------------------------------------------------------------
    def _gemm_int8(self, p: Int8GemmProblem, a, b, za, zb) -> np.ndarray:
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

    def _qgemm(self, p: Int8GemmProblem, a, b, za, zb, fixed, zy) -> np.ndarray:
        if self.requantization == "float32":
            out = self._qgemm_fused(p, np.asarray(a), np.asarray(b), za, zb, fixed, zy)
            if out is not None:
                return out
        return requantize(self._gemm_int8(p, a, b, za, zb), fixed, zy.item(), zy.dtype)

    def _qgemm_fused(self, p: Int8GemmProblem, a: np.ndarray, b: np.ndarray, za, zb,
                     fixed: FixedPointMultiplier, zy: np.ndarray) -> np.ndarray | None:
        """QLinearMatMul as one oneDNN int8 matmul with requantization fused (float32
        scales); None where it does not apply (a per-row A zero point, B's zero point not
        the symmetric one) or oneDNN has no implementation, and the exact path runs."""
        zb_sym = _symmetric_zero_point(b.dtype, zb)
        if za.ndim != 0 or zb_sym is None:
            return None
        key = ("qmatmul", p, a.dtype.str, b.dtype.str, zy.dtype.str, fixed.multiplier.size)
        mm = self._primitive(key, lambda: _fused_or_none(lambda: _QMatmul(
            self.dnnl, p, a.dtype, zy.dtype, per_column=fixed.multiplier.size > 1)))
        if mm is None:
            return None
        self.dnnl.set_num_threads(self._threads_now)
        packed = self._once_per_array(b, key, lambda b: mm.pack_weights(_as_int8(b)))
        out = self._buffers.empty((p.m, p.n), zy.dtype)
        mm.prim.execute({ARG_SRC: np.ascontiguousarray(a), ARG_WEIGHTS: packed, ARG_DST: out,
                         **_quantization_args(float32_scale(fixed), za, zy)})
        return out

    # (De)quantization straight on host arrays: base's default would copy the result
    # once more through ``asarray``.
    # A ChannelsLastArray stays one (its NCHW axis mapped to NHWC's); with float32
    # requantization a per-tensor one goes through a oneDNN reorder with a scale and zero
    # point (one multithreaded pass; quantizing multiplies by 1/scale there, so a value
    # may land 1 LSB from the exact division).
    def _quantize_linear(self, p: QuantizeProblem, x, scale, zero_point):
        if not isinstance(x, ChannelsLastArray):
            return quantize(self._plain(x), scale, zero_point, zero_point.dtype, p.axis)
        out = self._buffers.empty(x.nhwc.shape, zero_point.dtype)
        if self.requantization == "float32" and scale.size == 1:
            self._scaling_reorder("quantize", x.nhwc, out, scale, zero_point)
        else:
            quantize(x.nhwc, scale, zero_point, zero_point.dtype, _nhwc_axis(p.axis), out=out)
        return ChannelsLastArray(out)

    def _dequantize_linear(self, p: QuantizeProblem, x, scale, zero_point):
        if not isinstance(x, ChannelsLastArray) or x.dtype not in (np.uint8, np.int8):
            return dequantize(self._plain(x), scale, zero_point, p.axis)
        out = self._buffers.empty(x.nhwc.shape, np.float32)
        if self.requantization == "float32" and scale.size == 1:
            self._scaling_reorder("dequantize", x.nhwc, out, scale, zero_point)
        else:
            dequantize(x.nhwc, scale, zero_point, _nhwc_axis(p.axis), out=out)
        return ChannelsLastArray(out)

    def _scaling_reorder(self, kind: str, src: np.ndarray, dst: np.ndarray, scale,
                         zero_point) -> None:
        """``dst = saturate(rint(src / scale) + zp)`` (quantize) or ``(src - zp) · scale``
        (dequantize) over flat buffers, as one oneDNN reorder."""
        self.dnnl.set_num_threads(self._threads_now)
        key = ("scaling_reorder", kind, src.size, src.dtype.str, dst.dtype.str)
        prim = self._primitive(key, lambda: _build_scaling_reorder(
            self.dnnl, kind, src.size, src.dtype, dst.dtype))
        arg = ARG_DST if kind == "quantize" else ARG_SRC
        prim.execute({ARG_SRC: src, ARG_DST: dst,
                      ARG_ATTR_SCALES | arg: np.asarray(scale, np.float32).reshape(1),
                      ARG_ATTR_ZERO_POINTS | arg: np.full(1, int(zero_point), np.int32)})

    def _conv2d_int8(self, p: Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
        if p.groups == 1 and zw.ndim == 0:
            rows = self._int8_conv_rows(p, x, w, zx, zw)
            return np.ascontiguousarray(
                rows.reshape(p.n, p.out_h, p.out_w, p.k).transpose(0, 3, 1, 2))
        return conv2d_int8_by_gemm(self._plain(x), np.asarray(w), p, zx, zw, self.gemm_int8)

    def _qconv2d(self, p: Int8ConvProblem, x, w, zx, zw, bias, fixed, zy):
        if self.requantization == "float32":
            out = self._qconv2d_fused(p, x, np.asarray(w), zx, zw, bias, fixed, zy)
            if out is not None:
                return out
        if p.groups != 1 or zw.ndim != 0:
            return super()._qconv2d(p, self._plain(x), w, zx, zw, bias, fixed, zy)
        rows = self._int8_conv_rows(p, x, w, zx, zw)  # (pixels, filters): scales per column
        q = requantize(rows, fixed, zy.item(), zy.dtype, bias)
        nhwc = q.reshape(p.n, p.out_h, p.out_w, p.k)
        if self.keep_blocked:  # a session: the next int8 conv reads NHWC as it is
            return ChannelsLastArray(nhwc)
        return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))

    def _qconv2d_fused(self, p: Int8ConvProblem, x, w: np.ndarray, zx, zw, bias,
                       fixed: FixedPointMultiplier, zy: np.ndarray):
        """QLinearConv as oneDNN's int8 convolution, requantization fused (float32 scales:
        within 1 LSB of exact), channels-last in and out: a session's activations go from
        one such conv to the next without a copy. None where it does not apply (w's zero
        point not the symmetric one) or oneDNN has no implementation."""
        if _symmetric_zero_point(w.dtype, zw) is None:
            return None
        x_dtype = np.dtype(p.x_dtype)
        key = ("qconv", p, x_dtype.str, zy.dtype.str)
        conv = self._primitive(key, lambda: _fused_or_none(
            lambda: _QConv(self.dnnl, p, x_dtype, zy.dtype)))
        if conv is None:
            return None
        self.dnnl.set_num_threads(self._threads_now)
        # Keyed by the primitive: its layout (and the compensation oneDNN appends for an
        # int8 src) depends on the dtypes as well as the problem.
        packed = self._once_per_array(w, key, lambda w: conv.pack_weights(_as_int8(w)))
        if isinstance(x, ChannelsLastArray):
            src = x.nhwc
        else:  # NCHW -> NHWC once; oneDNN's int8 kernels want channels last
            src = self._buffers.empty((p.n, p.h, p.w, p.c), x_dtype)
            np.copyto(src, np.asarray(x).transpose(0, 2, 3, 1))
        scale = np.broadcast_to(float32_scale(fixed), (p.k,))
        out = self._buffers.empty((p.n, p.out_h, p.out_w, p.k), zy.dtype)
        buffers = {ARG_SRC: src, ARG_WEIGHTS: packed, ARG_DST: out,
                   **_quantization_args(scale, zx, zy)}
        if bias is not None:
            buffers[ARG_BIAS] = float32_bias(self._plain(bias), scale)
        conv.prim.execute(buffers)
        if self.keep_blocked:
            return ChannelsLastArray(out)
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def _int8_conv_rows(self, p: Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
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

    def _once_per_array(self, w: np.ndarray, tag: Any, build) -> np.ndarray:
        """``build(w)``, kept per frozen array (from ``asarray``: it can never change, so
        the result cannot go stale; dropped with the array); others are built per call."""
        return self.frozen.derived(w, tag, build)

    # -- conv ----------------------------------------------------------------------------
    fuses_conv_epilogue = True

    def _conv2d(self, p: ConvProblem, x, w, bias, residual=None,
                activation: str | None = None) -> np.ndarray | BlockedArray:
        """Conv with the epilogue fused: oneDNN post-ops on the primitive (a blocked
        shortcut as a binary-add post-op read in place, a plain one summed into the dst),
        or one in-place pass after each image's GEMM on the pointwise path."""
        self.dnnl.set_num_threads(self._threads_now)
        tag = _conv_tags(p, self.conv_layout)[1]
        blocked = tag == BLOCKED_TAG and (self.keep_blocked or isinstance(x, BlockedArray))
        if self.pointwise_as_gemm and _is_pointwise(p) and not blocked:
            return self._pointwise_conv(p, np.asarray(self._plain(x)), np.asarray(w), bias,
                                        self._plain(residual), activation)
        conv = self._conv_primitive(p, residual, activation)
        packed = self._packed(conv, w)
        if isinstance(x, BlockedArray) and x.md == conv.prim.mds[ARG_SRC]:
            src = x.buffer  # already in the layout the primitive reads
        else:
            x = np.ascontiguousarray(self._plain(x))
            src = x
            if conv.src_reorder is not None:
                src = self._buffers.empty(conv.prim.mds[ARG_SRC].size, np.uint8)
                conv.src_reorder.execute({ARG_SRC: x, ARG_DST: src})
        keep = self.keep_blocked and tag == BLOCKED_TAG and conv.dst_reorder is not None
        out = None if keep else self._buffers.empty(p.output_shape, np.float32)
        dst = out
        if conv.dst_reorder is not None:
            dst = self._buffers.empty(conv.prim.mds[ARG_DST].size, np.uint8)
        buffers = {ARG_SRC: src, ARG_WEIGHTS: packed, ARG_DST: dst}
        if conv.residual == "blocked":
            buffers[onednn.arg_post_op(0)] = residual.buffer
        elif conv.residual == "plain":
            self._fill_with_residual(conv, dst, residual)
        if bias is not None:
            buffers[ARG_BIAS] = np.ascontiguousarray(bias)
        conv.prim.execute(buffers)
        if keep:
            return BlockedArray(dst, p.output_shape, conv.prim.mds[ARG_DST], conv.dst_reorder)
        if conv.dst_reorder is not None:
            conv.dst_reorder.execute({ARG_SRC: dst, ARG_DST: out})
        return out

    def _conv_primitive(self, p: ConvProblem, residual, activation: str | None) -> _Conv:
        """The cached ``_Conv`` for this call. A ``BlockedArray`` shortcut is read in place
        (a binary-add post-op) only where its memory descriptor is exactly the one that
        post-op was created with; any other shortcut is written into the dst first (a
        sum post-op), converted to the dst's layout."""
        mode = None if residual is None else "plain"
        if isinstance(residual, BlockedArray) and _conv_tags(p, self.conv_layout)[1] \
                == BLOCKED_TAG:
            blocked = self._primitive(
                ("conv", p, self.conv_layout, "blocked", activation),
                lambda: _Conv(self.dnnl, p, self.conv_layout, "blocked", activation))
            if residual.md == blocked.residual_md:
                return blocked
        return self._primitive(("conv", p, self.conv_layout, mode, activation),
                               lambda: _Conv(self.dnnl, p, self.conv_layout, mode, activation))

    def _fill_with_residual(self, conv: _Conv, dst: np.ndarray, residual) -> None:
        """Write the shortcut into ``dst`` in the primitive's dst layout (its sum post-op
        adds what dst holds): a raw copy where the layouts are equal, else a reorder."""
        if isinstance(residual, BlockedArray) and residual.md == conv.prim.mds[ARG_DST]:
            size = residual.md.size
            np.copyto(dst.reshape(-1).view(np.uint8)[:size],
                      residual.buffer.reshape(-1).view(np.uint8)[:size])
            return
        plain = np.ascontiguousarray(self._plain(residual), np.float32)
        if conv.residual_reorder is None:  # the dst is plain NCHW: so is ``dst`` here
            np.copyto(dst, plain)
        else:
            conv.residual_reorder.execute({ARG_SRC: plain, ARG_DST: dst})

    def _pointwise_conv(self, p: ConvProblem, x: np.ndarray, w: np.ndarray, bias,
                        residual=None, activation: str | None = None) -> np.ndarray:
        """A 1×1, stride-1, unpadded conv on NCHW is one GEMM per image: W[K,C] @ X[C,HW].

        No reorders at all, which is what such a low-intensity conv's time is made of in
        a blocked layout. Bias, shortcut and relu follow each image's GEMM as one
        in-place oneDNN pass while that image's output is still in cache (``_Epilogue``);
        pre-filling the output for beta=1 instead cost 6 % of ResNet-50 in NumPy copies.
        """
        out = self._buffers.empty(p.output_shape, np.float32)
        wmat, _ = row_major(w.reshape(p.k, p.c), FLOAT32, False)
        x = np.ascontiguousarray(x)
        pixels = p.h * p.w
        epilogue = None
        if bias is not None or residual is not None or activation is not None:
            key = ("pointwise_epilogue", p.k, pixels, bias is not None, residual is not None,
                   activation)
            epilogue = self._primitive(key, lambda: _Epilogue(
                self.dnnl, p.k, pixels, bias is not None, residual is not None, activation))
            if bias is not None:
                bias = np.ascontiguousarray(bias)
            if residual is not None:
                residual = np.ascontiguousarray(residual)
        for image in range(p.n):
            c = out[image].reshape(p.k, pixels)
            self.dnnl.sgemm(wmat, x[image].reshape(p.c, pixels), False, False, c, 0.0)
            if epilogue is not None:
                epilogue.execute(c, bias, None if residual is None else residual[image])
        return out

    def _packed(self, conv: _Conv, w: np.ndarray) -> np.ndarray:
        """Weights in the layout the convolution chose; reordered once per frozen array."""
        if conv.wei_reorder is None:
            return np.ascontiguousarray(w)

        def build(w: np.ndarray) -> np.ndarray:
            packed = aligned_empty(conv.prim.mds[ARG_WEIGHTS].size, np.uint8)
            conv.wei_reorder.execute({ARG_SRC: np.ascontiguousarray(w), ARG_DST: packed})
            return packed

        return self._once_per_array(w, conv.problem, build)

    # -- elementwise ---------------------------------------------------------------------
    def _eltwise(self, alg: str, p: ElementwiseProblem, x) -> np.ndarray | ChannelsLastArray:
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("eltwise", alg, p.size),
                               lambda: _build_eltwise(self.dnnl, alg, p.size))
        if isinstance(x, ChannelsLastArray):  # elementwise: any layout will do
            out = self._buffers.empty(x.nhwc.shape, np.float32)
            prim.execute({ARG_SRC: x.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        x = np.ascontiguousarray(self._plain(x))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out

    def _sigmoid(self, p: ElementwiseProblem, x) -> np.ndarray:
        return self._eltwise("eltwise_logistic", p, x)

    def _relu(self, p: ElementwiseProblem, x) -> np.ndarray:
        return self._eltwise("eltwise_relu", p, x)

    def _sigmoid_backward(self, p: ElementwiseProblem, y, dy) -> np.ndarray:
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("eltwise_bwd", "logistic", p.size),
                               lambda: _build_logistic_backward(self.dnnl, p.size))
        out = self._buffers.empty(p.shape, np.float32)
        y, dy = self._plain(y), self._plain(dy)
        prim.execute({ARG_DST: np.ascontiguousarray(y), ARG_DIFF_DST: np.ascontiguousarray(dy),
                      ARG_DIFF_SRC: out})
        return out


    # -- the ops full CNNs need ------------------------------------------------------------
    def _pool(self, p: PoolProblem, x) -> np.ndarray | BlockedArray:
        self.dnnl.set_num_threads(self._threads_now)
        rescale = p.kind == "avg" and p.count_include_pad and any(p.ceil_extra)
        pool = None
        if isinstance(x, BlockedArray) and not rescale:
            # Pool in the blocked layout: ResNet's stem max pool then needs no reorders.
            pool = self._primitive(("pool", p, BLOCKED_TAG),
                                   lambda: _BlockedPool(self.dnnl, p))
        if pool is not None and x.md == pool.prim.mds[ARG_SRC]:
            out = self._buffers.empty(pool.prim.mds[ARG_DST].size, np.uint8)
            pool.prim.execute({ARG_SRC: x.buffer, ARG_DST: out})
            result = BlockedArray(out, p.output_shape, pool.prim.mds[ARG_DST], pool.to_plain)
            return result if self.keep_blocked else self._plain(result)
        if isinstance(x, ChannelsLastArray) and x.dtype == np.float32 and not rescale:
            prim = self._primitive(("pool", p, "acdb"),
                                   lambda: _build_pooling(self.dnnl, p, "acdb"))
            n, c, oh, ow = p.output_shape
            out = self._buffers.empty((n, oh, ow, c), np.float32)
            prim.execute({ARG_SRC: x.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        x = self._plain(x)
        prim = self._primitive(("pool", p), lambda: _build_pooling(self.dnnl, p))
        out = self._buffers.empty(p.output_shape, np.float32)
        prim.execute({ARG_SRC: np.ascontiguousarray(x), ARG_DST: out})
        if rescale:
            # oneDNN divides by kh*kw everywhere; ONNX leaves ceil mode's overhang (past
            # the explicit padding) out of the divisor, so rescale the last row/column.
            counts = np.outer(p.window_counts(0), p.window_counts(1))
            out *= (p.kernel[0] * p.kernel[1] / counts).astype(np.float32)
        return out

    _max_pool2d = _avg_pool2d = _global_avg_pool2d = _pool

    def _softmax(self, p: SoftmaxProblem, x) -> np.ndarray:
        # Any rank as (outer, axis, inner): one plain 3-D primitive per collapsed shape.
        outer = math.prod(p.shape[:p.axis])
        inner = math.prod(p.shape[p.axis + 1:])
        dims = (outer, p.shape[p.axis], inner)
        x = self._plain(x)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("softmax", dims), lambda: _build_softmax(self.dnnl, dims))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: np.ascontiguousarray(x), ARG_DST: out})
        return out

    def _binary(self, alg: str, p: BinaryProblem, a, b) -> np.ndarray | ChannelsLastArray:
        if (isinstance(a, ChannelsLastArray) and isinstance(b, ChannelsLastArray)
                and a.shape == b.shape == p.shape):  # same layout, no broadcast: flat
            self.dnnl.set_num_threads(self._threads_now)
            flat = (p.size,)
            prim = self._primitive(("binary", alg, flat, flat),
                                   lambda: _build_binary(self.dnnl, alg, flat, flat))
            out = self._buffers.empty(a.nhwc.shape, np.float32)
            prim.execute({ARG_SRC: a.nhwc, ARG_SRC_1: b.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        a, b = np.asarray(self._plain(a)), np.asarray(self._plain(b))
        rank = len(p.shape)
        sa = (1,) * (rank - a.ndim) + a.shape
        sb = (1,) * (rank - b.ndim) + b.shape
        if sa != p.shape:  # oneDNN broadcasts src1 only; add and mul commute exactly
            a, b, sa, sb = b, a, sb, sa
        out = self._buffers.empty(p.shape, np.float32)
        if sa != p.shape or not 0 < rank <= onednn.MAX_NDIMS:
            # both sides broadcast (oneDNN cannot), or a rank oneDNN has no descriptor for
            ufunc = np.add if alg == "binary_add" else np.multiply
            return ufunc(a, b, out=out)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("binary", alg, p.shape, sb),
                               lambda: _build_binary(self.dnnl, alg, p.shape, sb))
        prim.execute({ARG_SRC: np.ascontiguousarray(a),
                      ARG_SRC_1: np.ascontiguousarray(b).reshape(sb), ARG_DST: out})
        return out

    def _add(self, p: BinaryProblem, a, b) -> np.ndarray:
        return self._binary("binary_add", p, a, b)

    def _mul(self, p: BinaryProblem, a, b) -> np.ndarray:
        return self._binary("binary_mul", p, a, b)

    def _concat(self, p: ConcatProblem, arrays) -> np.ndarray | BlockedArray:
        self.dnnl.set_num_threads(self._threads_now)
        concat = None
        if p.axis == 1 and all(isinstance(a, BlockedArray) for a in arrays):
            # Channel concat of nChw16c arrays (SqueezeNet's fire modules): every part
            # is whole 16-channel blocks, so the result is nChw16c too, with no reorders.
            concat = self._primitive(("concat", p, BLOCKED_TAG),
                                     lambda: _BlockedConcat(self.dnnl, p))
        if concat is not None and all(a.md == concat.prim.mds[ARG_MULTIPLE_SRC + i]
                                      for i, a in enumerate(arrays)):
            out = self._buffers.empty(concat.prim.mds[ARG_DST].size, np.uint8)
            buffers = {ARG_MULTIPLE_SRC + i: a.buffer for i, a in enumerate(arrays)}
            buffers[ARG_DST] = out
            concat.prim.execute(buffers)
            result = BlockedArray(out, p.shape, concat.prim.mds[ARG_DST], concat.to_plain)
            return result if self.keep_blocked else self._plain(result)
        arrays = [self._plain(a) for a in arrays]
        out = self._buffers.empty(p.shape, np.float32)
        if out.nbytes < CONCAT_MIN_BYTES:
            return np.concatenate(arrays, axis=p.axis, out=out)
        prim = self._primitive(("concat", p), lambda: _build_concat(self.dnnl, p))
        buffers = {ARG_MULTIPLE_SRC + i: np.ascontiguousarray(a) for i, a in enumerate(arrays)}
        buffers[ARG_DST] = out
        prim.execute(buffers)
        return out

    def _lrn(self, p: LrnProblem, x) -> np.ndarray:
        x = self._plain(x)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("lrn", p), lambda: _build_lrn(self.dnnl, p))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: np.ascontiguousarray(x), ARG_DST: out})
        return out

    def _reshape(self, p: LayoutProblem, x) -> np.ndarray:
        return np.reshape(self._plain(x), p.shape)  # a view of a contiguous array: no copy

    def _transpose(self, p: LayoutProblem, x) -> np.ndarray:
        x = self._plain(x)
        out = self._buffers.empty(p.shape, x.dtype)
        out[...] = np.transpose(x, p.perm)
        return out


# Concat outputs of at least this many bytes use oneDNN's concat primitive, smaller ones
# np.concatenate. Measured on the 2-core Zen 4 host (NCHW, axis 1, median of 30):
# 6.4 MB out 109 vs 169 us, 25.7 MB 1019 vs 1537 us, 1.8 MB 39 vs 45 us (oneDNN copies
# with every thread, NumPy with one), but 0.8 MB 29 vs 24 us and 0.2 MB 18 vs 9 us
# (a primitive call's ctypes overhead is ~10 us).
CONCAT_MIN_BYTES = 1 << 20
POINTWISE_MIN_PIXELS = 128


def _is_pointwise(p: ConvProblem) -> bool:
    """A 1×1/stride-1/unpadded conv on images big enough for the GEMM path to win.

    Measured on Zen 4 (GFLOP/s, GEMM path vs blocked conv with reorders): 56×56 206–217
    vs 86–181, 14×14 200 vs 188, but 7×7 148 vs 205: with only 49 columns the GEMM is
    too skinny, so small images stay on the convolution primitive.
    """
    shape_ok = (p.r, p.s, p.stride, p.dilation, p.groups) == (1, 1, (1, 1), (1, 1), 1)
    return shape_ok and not any(p.padding) and p.h * p.w >= POINTWISE_MIN_PIXELS


class _Conv:
    """A convolution primitive plus the reorders between NCHW/OIHW and its chosen layouts."""

    def __init__(self, d: onednn.OneDNN, p: ConvProblem, layout: str,
                 residual: str | None = None, activation: str | None = None) -> None:
        """``residual``: None, "plain" (summed into a dst pre-filled with it) or "blocked"
        (a binary-add post-op reading it in the dst's own blocked layout)."""
        self.problem = p
        self.residual = residual
        g = p.groups
        wshape = (p.k, p.c, p.r, p.s) if g == 1 else (g, p.k // g, p.c // g, p.r, p.s)
        user_src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag="abcd")
        user_wei = d.memory_desc(wshape, "f32")
        user_dst = d.memory_desc(p.output_shape, "f32", tag="abcd")
        src_tag, dst_tag = _conv_tags(p, layout)
        src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag=src_tag)
        wei = d.memory_desc(wshape, "f32", tag="any")
        dst = d.memory_desc(p.output_shape, "f32", tag=dst_tag)
        bias = d.memory_desc((p.k,), "f32", tag="a") if p.has_bias else None
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        post_ops: list[tuple] = []
        if residual == "plain":
            post_ops.append(("sum",))
        elif residual == "blocked":
            post_ops.append(("binary", "binary_add", dst))
        if activation == "relu":
            post_ops.append(("eltwise", "eltwise_relu", 0.0, 0.0))
        attr = d.attr(post_ops=post_ops)
        pd = d.create_pd(
            "dnnl_convolution_forward_primitive_desc_create", d.engine,
            d.prop["forward_inference"], d.alg["convolution_direct"], src.handle, wei.handle,
            bias.handle if bias else None, dst.handle, onednn.Dims(*p.stride),
            onednn.Dims(*dil), onednn.Dims(pt, pl), onednn.Dims(pb, pr), attr.handle)
        args: dict[int, Any] = {ARG_SRC: QUERY_SRC_MD, ARG_WEIGHTS: QUERY_WEIGHTS_MD,
                                ARG_DST: QUERY_DST_MD}
        if bias:
            args[ARG_BIAS] = bias
        # The layout a shortcut read in place must have (None: no such post-op).
        self.residual_md = dst if residual == "blocked" else None
        if residual == "blocked":
            args[onednn.arg_post_op(0)] = dst
        self.prim = Primitive(d, pd, args)
        self.src_reorder = _reorder(d, user_src, self.prim.mds[ARG_SRC])
        self.wei_reorder = _reorder(d, user_wei, self.prim.mds[ARG_WEIGHTS])
        self.dst_reorder = _reorder(d, self.prim.mds[ARG_DST], user_dst)
        self.residual_reorder = (_reorder(d, user_dst, self.prim.mds[ARG_DST])
                                 if residual == "plain" else None)
        self.impl = self.prim.impl


def _symmetric_zero_point(dtype: np.dtype, zero_point: np.ndarray) -> int | None:
    """The weights' zero point if it is the one oneDNN's int8 primitives take once moved to
    int8 (0 for int8 weights, 128 for uint8 ones, every channel alike), else None."""
    want = 0 if np.dtype(dtype) == np.int8 else 128
    return want if np.all(np.asarray(zero_point, np.int64) == want) else None


def _as_int8(w: np.ndarray) -> np.ndarray:
    """int8 weights as they are; uint8 ones with zero point 128 moved to int8 exactly."""
    w = np.ascontiguousarray(w)
    return w if w.dtype == np.int8 else w.view(np.int8) ^ np.int8(-128)


def _fused_or_none(build):
    """``build()``, or None when oneDNN has no implementation for it (the exact path runs;
    the None is cached so that the search is not repeated)."""
    try:
        return build()
    except NativeLibraryError as exc:
        if "unimplemented" in str(exc):
            return None
        raise


def _quantization_args(scale: np.ndarray, src_zero_point, dst_zero_point) -> dict[int, Any]:
    """Execution buffers of a fused int8 primitive: the weights' float32 scales (the whole
    requantization scale: src and dst scales stay 1) and the src/dst zero points (s32)."""
    return {ARG_ATTR_SCALES | ARG_WEIGHTS: np.ascontiguousarray(scale, np.float32),
            ARG_ATTR_ZERO_POINTS | ARG_SRC: np.full(1, int(src_zero_point), np.int32),
            ARG_ATTR_ZERO_POINTS | ARG_DST: np.full(1, int(dst_zero_point), np.int32)}


class _QConv:
    """oneDNN's int8 convolution with requantization fused: u8/s8 NHWC src with a zero
    point, s8 weights with one float32 scale per filter (the whole requantization scale),
    f32 bias in output units, u8/s8 NHWC dst with a zero point."""

    def __init__(self, d: onednn.OneDNN, p: Int8ConvProblem, x_dtype: np.dtype,
                 y_dtype: np.dtype) -> None:
        g = p.groups
        wshape = (p.k, p.c, p.r, p.s) if g == 1 else (g, p.k // g, p.c // g, p.r, p.s)
        src = d.memory_desc((p.n, p.c, p.h, p.w), x_dtype, tag="acdb")
        wei = d.memory_desc(wshape, "s8", tag="any")
        dst = d.memory_desc(p.output_shape, y_dtype, tag="acdb")
        bias = d.memory_desc((p.k,), "f32", tag="a") if p.has_bias else None
        pt, pl, pb, pr = p.padding
        dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
        # Filters are dim 0 of OIHW, dims 0 and 1 of grouped GOIHW: scales vary along them.
        attr = d.attr(scales={ARG_WEIGHTS: 1 if g == 1 else 3},
                      zero_points={ARG_SRC: 0, ARG_DST: 0})
        pd = d.create_pd(
            "dnnl_convolution_forward_primitive_desc_create", d.engine,
            d.prop["forward_inference"], d.alg["convolution_direct"], src.handle, wei.handle,
            bias.handle if bias else None, dst.handle, onednn.Dims(*p.stride),
            onednn.Dims(*dil), onednn.Dims(pt, pl), onednn.Dims(pb, pr), attr.handle)
        args: dict[int, Any] = {ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst,
                                ARG_ATTR_SCALES | ARG_WEIGHTS: d.memory_desc((p.k,), "f32"),
                                ARG_ATTR_ZERO_POINTS | ARG_SRC: d.memory_desc((1,), "s32"),
                                ARG_ATTR_ZERO_POINTS | ARG_DST: d.memory_desc((1,), "s32")}
        if bias:
            args[ARG_BIAS] = bias
        self.prim = Primitive(d, pd, args)
        self.wei_reorder = _reorder(d, d.memory_desc(wshape, "s8"), self.prim.mds[ARG_WEIGHTS])
        self.impl = self.prim.impl

    def pack_weights(self, w: np.ndarray) -> np.ndarray:
        """int8 OIHW filters in the layout the primitive chose (with the compensation for
        the src zero point that oneDNN's reorder appends)."""
        if self.wei_reorder is None:
            return w
        packed = aligned_empty(self.prim.mds[ARG_WEIGHTS].size, np.uint8)
        self.wei_reorder.execute({ARG_SRC: w, ARG_DST: packed})
        return packed


class _QMatmul:
    """oneDNN's int8 matmul with requantization fused: (M, K) u8/s8 A with a zero point,
    (K, N) s8 B with float32 scales (one, or one per column), u8/s8 (M, N) out."""

    def __init__(self, d: onednn.OneDNN, p: Int8GemmProblem, a_dtype: np.dtype,
                 y_dtype: np.dtype, per_column: bool) -> None:
        src = d.memory_desc((p.m, p.k), a_dtype, tag="ab")
        wei = d.memory_desc((p.k, p.n), "s8", tag="any")
        dst = d.memory_desc((p.m, p.n), y_dtype, tag="ab")
        attr = d.attr(scales={ARG_WEIGHTS: 2 if per_column else 0},
                      zero_points={ARG_SRC: 0, ARG_DST: 0})
        pd = d.create_pd("dnnl_matmul_primitive_desc_create", d.engine, src.handle,
                         wei.handle, None, dst.handle, attr.handle)
        count = p.n if per_column else 1
        self.prim = Primitive(d, pd, {
            ARG_SRC: src, ARG_WEIGHTS: QUERY_WEIGHTS_MD, ARG_DST: dst,
            ARG_ATTR_SCALES | ARG_WEIGHTS: d.memory_desc((count,), "f32"),
            ARG_ATTR_ZERO_POINTS | ARG_SRC: d.memory_desc((1,), "s32"),
            ARG_ATTR_ZERO_POINTS | ARG_DST: d.memory_desc((1,), "s32")})
        self.wei_reorder = _reorder(d, d.memory_desc((p.k, p.n), "s8"),
                                    self.prim.mds[ARG_WEIGHTS])

    pack_weights = _QConv.pack_weights


class _Epilogue:
    """``act(y + bias + residual)`` in place over one (K, pixels) plain image: a binary
    add primitive (src0 = dst = y) whose bias and relu are post-ops, or an in-place relu
    alone. Every variant is one multithreaded pass over y."""

    def __init__(self, d: onednn.OneDNN, k: int, pixels: int, bias: bool, residual: bool,
                 activation: str | None) -> None:
        # 3-D (1, K, pixels): the bias then broadcasts along dim 1, oneDNN's "per_oc",
        # which its jit binary kernels take as a post-op; (K, 1) against 2-D (K, pixels)
        # fell back to ref:any, 1000x slower.
        md = d.memory_desc((1, k, pixels), "f32", tag="abc")
        self.bias, self.residual = bias, residual
        self.bias_arg = ARG_SRC_1
        if not bias and not residual:  # relu alone
            self.prim = _build_eltwise(d, "eltwise_relu", k * pixels)
            return
        bias_md = d.memory_desc((1, k, 1), "f32", tag="abc")
        post_ops: list[tuple] = []
        if bias and residual:
            post_ops.append(("binary", "binary_add", bias_md))
            self.bias_arg = onednn.arg_post_op(0)
        if activation == "relu":
            post_ops.append(("eltwise", "eltwise_relu", 0.0, 0.0))
        src1 = md if residual else bias_md
        attr = d.attr(post_ops=post_ops)
        pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg["binary_add"],
                         md.handle, src1.handle, md.handle, attr.handle)
        args: dict[int, Any] = {ARG_SRC: md, ARG_SRC_1: src1, ARG_DST: md}
        if bias and residual:
            args[self.bias_arg] = bias_md
        self.prim = Primitive(d, pd, args)

    def execute(self, y: np.ndarray, bias: np.ndarray | None,
                residual: np.ndarray | None) -> None:
        buffers = {ARG_SRC: y, ARG_DST: y}
        if residual is not None:
            buffers[ARG_SRC_1] = residual
        if bias is not None:
            buffers[self.bias_arg] = bias
        self.prim.execute(buffers)


def _reorder(d: onednn.OneDNN, src: onednn.MemoryDesc,
             dst: onednn.MemoryDesc) -> Primitive | None:
    """A reorder primitive, or None when the two layouts are the same."""
    if src == dst:
        return None
    attr = d.attr()
    pd = d.create_pd("dnnl_reorder_primitive_desc_create", src.handle, d.engine, dst.handle,
                     d.engine, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def _nhwc_axis(axis: int | None) -> int | None:
    """An NCHW axis's position in NHWC (None: per tensor)."""
    return None if axis is None else (0, 3, 1, 2)[axis]


def _build_scaling_reorder(d: onednn.OneDNN, kind: str, size: int, src_dtype: np.dtype,
                           dst_dtype: np.dtype) -> Primitive:
    """A flat reorder that quantizes (dst scale and zero point) or dequantizes (src's)."""
    src = d.memory_desc((size,), src_dtype, tag="a")
    dst = d.memory_desc((size,), dst_dtype, tag="a")
    arg = ARG_DST if kind == "quantize" else ARG_SRC
    attr = d.attr(scales={arg: 0}, zero_points={arg: 0})
    pd = d.create_pd("dnnl_reorder_primitive_desc_create", src.handle, d.engine, dst.handle,
                     d.engine, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst,
                             ARG_ATTR_SCALES | arg: d.memory_desc((1,), "f32"),
                             ARG_ATTR_ZERO_POINTS | arg: d.memory_desc((1,), "s32")})


def _build_eltwise(d: onednn.OneDNN, alg: str, size: int) -> Primitive:
    md = d.memory_desc((size,), "f32", tag="a")
    attr = d.attr()
    pd = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], md.handle, md.handle, 0.0, 0.0,
                     attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


def _build_logistic_backward(d: onednn.OneDNN, size: int) -> Primitive:
    """σ'(x)·dy from σ's output y (``logistic_use_dst_for_bwd``): dy·y·(1−y)."""
    md = d.memory_desc((size,), "f32", tag="a")
    alg = d.alg["eltwise_logistic_use_dst_for_bwd"]
    attr = d.attr()
    hint = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                       d.prop["forward_training"], alg, md.handle, md.handle, 0.0, 0.0,
                       attr.handle)
    try:
        pd = d.create_pd("dnnl_eltwise_backward_primitive_desc_create", d.engine, alg, md.handle,
                         md.handle, md.handle, 0.0, 0.0, hint, attr.handle)
    finally:
        d.lib.dnnl_primitive_desc_destroy(hint)
    return Primitive(d, pd, {ARG_DIFF_SRC: QUERY_DIFF_SRC_MD, ARG_DIFF_DST: md, ARG_DST: md})


class _BlockedPool:
    """Pooling from and to nChw16c, plus the reorder of its output back to NCHW."""

    def __init__(self, d: onednn.OneDNN, p: PoolProblem) -> None:
        self.prim = _build_pooling(d, p, BLOCKED_TAG)
        self.to_plain = _reorder(d, self.prim.mds[ARG_DST],
                                 d.memory_desc(p.output_shape, "f32", tag="abcd"))


def _build_pooling(d: onednn.OneDNN, p: PoolProblem, tag: str = "abcd") -> Primitive:
    """Max or average pooling on plain NCHW. ONNX's ceil mode is oneDNN's floor formula
    with the end padding adjusted (``floor_end_padding``): padded pixels never win a max
    and never count in avg-exclude-padding (avg-include-padding is rescaled by the caller
    where ceil mode overhangs the explicit padding)."""
    if p.kind == "max":
        alg = "pooling_max"
    else:
        alg = "pooling_avg_include_padding" if p.count_include_pad else \
            "pooling_avg_exclude_padding"
    src = d.memory_desc((p.n, p.c, p.h, p.w), "f32", tag=tag)
    dst = d.memory_desc(p.output_shape, "f32", tag=tag)
    pt, pl = p.padding[:2]
    dil = (p.dilation[0] - 1, p.dilation[1] - 1)  # oneDNN counts dilation from 0
    attr = d.attr()
    pd = d.create_pd("dnnl_pooling_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], src.handle, dst.handle,
                     onednn.Dims(*p.stride), onednn.Dims(*p.kernel), onednn.Dims(*dil),
                     onednn.Dims(pt, pl), onednn.Dims(*p.floor_end_padding), attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def _build_softmax(d: onednn.OneDNN, dims: tuple[int, int, int]) -> Primitive:
    """Softmax over axis 1 of a plain (outer, axis, inner) tensor (``softmax_accurate``
    subtracts the max first)."""
    md = d.memory_desc(dims, "f32", tag="abc")
    attr = d.attr()
    pd = d.create_pd("dnnl_softmax_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg["softmax_accurate"], md.handle,
                     md.handle, 1, attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


def _build_binary(d: onednn.OneDNN, alg: str, shape: tuple[int, ...],
                  src1_shape: tuple[int, ...]) -> Primitive:
    """src0 (full ``shape``) <op> src1 (``src1_shape``, 1 where it broadcasts), plain."""
    src0 = d.memory_desc(shape, "f32")
    src1 = d.memory_desc(src1_shape, "f32")
    dst = d.memory_desc(shape, "f32")
    attr = d.attr()
    pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg[alg], src0.handle,
                     src1.handle, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src0, ARG_SRC_1: src1, ARG_DST: dst})


def _build_lrn(d: onednn.OneDNN, p: LrnProblem) -> Primitive:
    """LRN across channels. oneDNN's formula divides alpha by the window size exactly as
    ONNX does (checked against the float64 reference), so alpha passes unchanged; its
    window is centred like ONNX's for the odd sizes the spec allows."""
    md = d.memory_desc(p.shape, "f32", tag="abcd")
    attr = d.attr()
    pd = d.create_pd("dnnl_lrn_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg["lrn_across_channels"], md.handle,
                     md.handle, p.size, p.alpha, p.beta, p.bias, attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


class _BlockedConcat:
    """Channel concat from and to nChw16c, plus the reorder of its output to NCHW."""

    def __init__(self, d: onednn.OneDNN, p: ConcatProblem) -> None:
        self.prim = _build_concat(d, p, BLOCKED_TAG)
        self.to_plain = _reorder(d, self.prim.mds[ARG_DST],
                                 d.memory_desc(p.shape, "f32", tag="abcd"))


def _build_concat(d: onednn.OneDNN, p: ConcatProblem, tag: str | None = None) -> Primitive:
    """oneDNN's concat primitive (``simple:any``: parallel copies), plain unless ``tag``."""
    srcs = [d.memory_desc(shape, "f32", tag=tag) for shape in p.shapes]
    dst = d.memory_desc(p.shape, "f32", tag=tag)
    handles = (ctypes.c_void_p * len(srcs))(*[md.handle.value for md in srcs])
    attr = d.attr()
    pd = d.create_pd("dnnl_concat_primitive_desc_create", d.engine, dst.handle, len(srcs),
                     p.axis, handles, attr.handle)
    args: dict[int, Any] = {ARG_MULTIPLE_SRC + i: md for i, md in enumerate(srcs)}
    args[ARG_DST] = dst
    return Primitive(d, pd, args)


__all__ = ["BlockedArray", "BufferPool", "ChannelsLastArray", "CpuBackend", "NativeLibraryError",
           "aligned_empty"]
