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
(``conv2d(..., residual=, activation=)``) as oneDNN post-ops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.base import Backend, all_finite
from hwbench.backends.cpu import blocked_layout, float32_requant, layouts, onednn, thread_policy
from hwbench.backends.cpu.binary import BinaryKernelsCpu
from hwbench.backends.cpu.blas_layout import row_major
from hwbench.backends.cpu.blocked_layout import concat_in_layout, pool_in_layout
from hwbench.backends.cpu.blocked_ops import BlockedOps, LrnKernel
from hwbench.backends.cpu.buffer_pool import BufferPool, aligned_empty
from hwbench.backends.cpu.cast import CastKernelsCpu
from hwbench.backends.cpu.channel_transpose import transpose_activation
from hwbench.backends.cpu.conv_residual import residual_in_place
from hwbench.backends.cpu.conv_weights import packed_conv_weights
from hwbench.backends.cpu.float32_requant import Float32RequantKernels
from hwbench.backends.cpu.fused_gemm import fused_gemm, packs
from hwbench.backends.cpu.int8 import Int8Kernels
from hwbench.backends.cpu.integer import IntegerKernelsCpu
from hwbench.backends.cpu.layouts import (
    CONV_LAYOUTS,
    BlockedArray,
    ChannelsLastArray,
)
from hwbench.backends.cpu.mkl import load_mkl, mkl_available
from hwbench.backends.cpu.onednn import (
    ARG_BIAS,
    ARG_DIFF_DST,
    ARG_DIFF_SRC,
    ARG_DST,
    ARG_MULTIPLE_SRC,
    ARG_SRC,
    ARG_SRC_1,
    ARG_WEIGHTS,
)
from hwbench.backends.cpu.pointwise import (  # noqa: F401
    POINTWISE_MIN_PIXELS,
    is_pointwise,
    runs_as_gemm,
)
from hwbench.backends.cpu.prepared import prepared_call
from hwbench.backends.cpu.primitives import (
    CONCAT_MIN_BYTES,
    ONEDNN_ACTIVATIONS,
    Conv,
    Epilogue,
    build_binary,
    build_concat,
    build_eltwise,
    build_logistic_backward,
    build_pooling,
    build_softmax,
)
from hwbench.backends.cpu.reductions import ReductionKernels
from hwbench.backends.cpu.rnn import RnnKernelsCpu
from hwbench.backends.cpu.rnn_lengths import RnnLengthsCpu
from hwbench.backends.cpu.tensor_ops import TensorOpsKernels
from hwbench.backends.cpu.unary import UnaryKernels
from hwbench.backends.cpu.upsampling import UpsamplingKernels
from hwbench.backends.frozen import FrozenArrays, frozen_copy
from hwbench.errors import ArgumentError
from hwbench.kernels import spec

FLAVOURS = ("onednn", "mkl")  # the devices: which library runs GEMMs (convs: oneDNN)
# Problems below both run on one thread (CpuBackend.threads_for). Break-even of 1 against
# 2 threads measured on the 2-core VM with PASSIVE threads: conv ~58 MFLOP (3×3, 64 ch,
# 28²: 561 vs 568 µs), gemm ~30 MFLOP (256³: 343 vs 283 µs; 128³: 54 vs 132 µs), sigmoid
# ~2^19 values (2^18: 124 vs 156 µs; 2^20: 555 vs 331 µs).
SMALL_PROBLEM_FLOPS = 32_000_000
SMALL_PROBLEM_BYTES = 2 << 20
# With spinning threads (OMP_WAIT_POLICY=ACTIVE or a GOMP_SPINCOUNT: the user's choice for
# a dedicated, idle machine; onednn.spins) a region costs no wake-up: gemm 64³ (0.5 MFLOP)
# took 23-30 µs on 2 spinning threads against 21-22 on one, idle (results.md). So only
# problems about that small stay on one thread; the rest split as onnxruntime's do.
SPINNING_SMALL_PROBLEM_FLOPS = 1_000_000
SPINNING_SMALL_PROBLEM_BYTES = 256 << 10


def _parse_device(device: str | None) -> tuple[str, str | None]:
    """``None``/"onednn"/"mkl", optionally ``+float32-requant`` (alone: onednn's) ->
    (flavour, the requantization the name says, or None)."""
    flavour, requantization = float32_requant.split_name(device)
    flavour = "onednn" if flavour is None else flavour
    if flavour not in FLAVOURS:
        mode = float32_requant.FLOAT32_REQUANT
        raise ArgumentError(
            f"argument 'backend': cpu has flavours {', '.join(FLAVOURS)}, each optionally "
            f"with +{mode} ({mode} alone: onednn's), got {device!r}")
    return flavour, requantization


class CpuBackend(IntegerKernelsCpu, Int8Kernels, Float32RequantKernels, ReductionKernels,
                 UnaryKernels, TensorOpsKernels, BinaryKernelsCpu, RnnKernelsCpu,
                 RnnLengthsCpu, UpsamplingKernels, CastKernelsCpu, BlockedOps, LrnKernel,
                 Backend):
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
        ``float32_requant``); the name spelling ``float32-requant`` names the latter."""
        flavour, named = _parse_device(device)
        requantization = float32_requant.choose(named, requantization, device)
        if conv_layout not in CONV_LAYOUTS:
            raise ArgumentError(
                f"argument 'conv_layout' must be one of {CONV_LAYOUTS}, got {conv_layout!r}")
        # The device is the flavour (None: the default); the math mode is not a device.
        super().__init__(None if flavour == "onednn" else flavour, threads=threads,
                         check_finite=check_finite)
        self.flavour = flavour
        self.requantization = requantization
        self.conv_layout = conv_layout
        self.pointwise_as_gemm = bool(pointwise_as_gemm)
        self.keep_blocked = bool(keep_blocked)
        self.dnnl = onednn.load()
        self.mkl = None
        if flavour == "mkl":
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
        if mkl_available()[0]:
            out["mkl"] = load_mkl().version
        return out

    @property
    def full_name(self) -> str:
        return float32_requant.full_name(super().full_name, self.requantization)

    def info(self) -> dict[str, Any]:
        info = super().info()
        if self.requantization == "float32":  # int8 results may differ from exact by 1 LSB
            info["math_mode"] = "fp32; int8 float32-requant"
        info.update(flavour=self.flavour, requantization=self.requantization,
                    conv_layout=self.conv_layout,
                    pointwise_as_gemm=self.pointwise_as_gemm, keep_blocked=self.keep_blocked,
                    small_problems=thread_policy.describe(*self.small_problem, self.dnnl.spinning),
                    gemm_library="mkl" if self.mkl else "onednn", conv_library="onednn")
        return info

    # -- memory --------------------------------------------------------------------------
    def asarray(self, x: Any) -> np.ndarray:
        """A 64-byte aligned copy that no NumPy call can make writable (``frozen.py``):
        the data cannot change behind a cached, reordered copy or NaN verdict."""
        return self.frozen.freeze(x)

    def asarray_feed(self, x: Any) -> np.ndarray:
        """A feed of one run, read-only but not registered (nothing derived from it is
        kept: ~0.7 µs, not ~3), unless ``check_finite`` caches its NaN screen."""
        return self.frozen.freeze(x) if self.check_finite else frozen_copy(x)

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

    def _prepared_kernel(self, op: str, problem: Any, kernel: Any, threads: int | None = None
                         ) -> Any:
        """A compiled plan's call of a checked kernel (``cpu/prepared.py``)."""
        return prepared_call(self, problem, kernel, threads)

    def _plan_threads(self, problems: list[Any]) -> list[int | None]:
        """A plan's thread count per step (``thread_policy.plan_threads``)."""
        return thread_policy.plan_threads(self, problems)

    def threads_for(self, problem: Any) -> int:
        """1 for a problem too small to pay for waking another thread, else ``threads``.

        With ``OMP_WAIT_POLICY=PASSIVE`` (what degrades gracefully on a busy machine) each
        parallel region wakes sleeping threads, tens of µs: on the 2-core VM gemm 64³ took
        ~85 µs on 2 threads against ~20 µs on one, LeNet b1 ~0.85 against ~0.24 ms. Below
        ``SMALL_PROBLEM_FLOPS`` (of one parallel region: an RNN's ``region_flops``) and
        ``SMALL_PROBLEM_BYTES`` of output one thread is faster. Spinning: far lower."""
        return 1 if thread_policy.small(problem, *self.small_problem) else self.threads

    @property
    def small_problem(self) -> tuple[float, float]:
        """(FLOPs, output bytes) below both of which a problem runs on one thread: the
        ``SPINNING_`` pair where libgomp's threads spin (``dnnl.spinning``)."""
        if self.dnnl.spinning:
            return SPINNING_SMALL_PROBLEM_FLOPS, SPINNING_SMALL_PROBLEM_BYTES
        return SMALL_PROBLEM_FLOPS, SMALL_PROBLEM_BYTES

    # -- cache ---------------------------------------------------------------------------
    def _primitive(self, key: tuple, build) -> Any:
        """``build()`` once per key and thread count (oneDNN splits a primitive's work
        for the threads it was created with); a None result too ("no primitive")."""
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
    gemm_fused_activations = frozenset(ONEDNN_ACTIVATIONS)

    def _gemm(self, p: spec.GemmProblem, a, b, bias, activation: str | None = None):
        if activation is not None or packs(self, p):  # one matmul primitive, B packed
            return fused_gemm(self, p, a, b, bias, activation)
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
        sa, ta = row_major(a, spec.FLOAT32, p.trans_a)
        sb, tb = row_major(b, spec.FLOAT32, p.trans_b)
        self.dnnl.sgemm(sa, sb, ta, tb, out, beta)
        return out

    def _once_per_array(self, w: np.ndarray, tag: Any, build) -> np.ndarray:
        """``build(w)``, kept per frozen array (from ``asarray``: it can never change, so
        the result cannot go stale; dropped with the array); others are built per call."""
        return self.frozen.derived(w, tag, build)

    # -- conv ----------------------------------------------------------------------------
    fuses_conv_epilogue = True
    fused_activations = frozenset(ONEDNN_ACTIVATIONS)

    def _conv2d(self, p: spec.ConvProblem, x, w, bias, residual=None,
                activation: str | None = None) -> np.ndarray | BlockedArray:
        """Conv with the epilogue fused: oneDNN post-ops on the primitive (a blocked
        shortcut as a binary-add post-op read in place, a plain one summed into the dst),
        or one in-place pass after each image's GEMM on the pointwise path."""
        self.dnnl.set_num_threads(self._threads_now)
        if runs_as_gemm(self, p, isinstance(x, BlockedArray)):
            return self._pointwise_conv(p, np.asarray(self._plain(x)), np.asarray(w), bias,
                                        self._plain(residual), activation)
        conv = self._conv_primitive(p, residual, activation, x)
        packed = self._packed(conv, w)
        if isinstance(x, BlockedArray) and x.md == conv.prim.mds[ARG_SRC]:
            src = x.buffer  # already in the layout the primitive reads
        elif isinstance(x, BlockedArray):  # another layout: one reorder, not two via NCHW
            src = self._buffers.empty(conv.prim.mds[ARG_SRC].size, np.uint8)
            conv.reorder_from(self.dnnl, x.md).execute({ARG_SRC: x.buffer, ARG_DST: src})
        else:
            x = np.ascontiguousarray(self._plain(x))
            src = x
            if conv.src_reorder is not None:
                src = self._buffers.empty(conv.prim.mds[ARG_SRC].size, np.uint8)
                conv.src_reorder.execute({ARG_SRC: x, ARG_DST: src})
        keep = self.keep_blocked and conv.dst_reorder is not None
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

    def _conv_primitive(self, p: spec.ConvProblem, residual, activation: str | None,
                        x: Any = None) -> Conv:
        """The cached ``Conv`` for this call (``layouts.nhwc_depthwise``: NHWC). A
        ``BlockedArray`` shortcut is read in place (a binary-add post-op) only where its
        layout is exactly the dst's (``conv_residual``); any other is written into the
        dst first (a sum post-op), converted to the dst's layout."""
        if residual is None and layouts.nhwc_depthwise(self, p, x):
            return self._primitive(("conv", p, "nhwc", None, activation),
                                   lambda: Conv(self.dnnl, p, "nhwc", None, activation))
        mode = None if residual is None else "plain"
        conv = self._primitive(("conv", p, self.conv_layout, mode, activation),
                               lambda: Conv(self.dnnl, p, self.conv_layout, mode, activation))
        if isinstance(residual, BlockedArray):
            return residual_in_place(self, conv, residual, activation) or conv
        return conv

    def _fill_with_residual(self, conv: Conv, dst: np.ndarray, residual) -> None:
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

    def _pointwise_conv(self, p: spec.ConvProblem, x: np.ndarray, w: np.ndarray, bias,
                        residual=None, activation: str | None = None) -> np.ndarray:
        """A 1×1, stride-1, unpadded conv on NCHW is one GEMM per image: W[K,C] @ X[C,HW]
        (grouped: one per group, W[K/g, C/g] @ X[C/g rows of group i, HW]).

        No reorders at all, which is what such a low-intensity conv's time is made of in
        a blocked layout. Bias, shortcut and relu follow each image's GEMM as one
        in-place oneDNN pass while that image's output is still in cache (``Epilogue``);
        pre-filling the output for beta=1 instead cost 6 % of ResNet-50 in NumPy copies."""
        out = self._buffers.empty(p.output_shape, np.float32)
        g, cg, kg = p.groups, p.c // p.groups, p.k // p.groups
        wmat, _ = row_major(w.reshape(p.k, cg), spec.FLOAT32, False)
        x = np.ascontiguousarray(x)
        pixels = p.h * p.w
        epilogue = None
        if bias is not None or residual is not None or activation is not None:
            key = ("pointwise_epilogue", p.k, pixels, bias is not None, residual is not None,
                   activation)
            epilogue = self._primitive(key, lambda: Epilogue(
                self.dnnl, p.k, pixels, bias is not None, residual is not None, activation))
            if bias is not None:
                bias = np.ascontiguousarray(bias)
            if residual is not None:
                residual = np.ascontiguousarray(residual)
        for image in range(p.n):
            c = out[image].reshape(p.k, pixels)
            src = x[image].reshape(p.c, pixels)
            for i in range(g):  # blocks of whole rows: each one contiguous
                rows, cols = slice(i * kg, (i + 1) * kg), slice(i * cg, (i + 1) * cg)
                self.dnnl.sgemm(wmat[rows], src[cols], False, False, c[rows], 0.0)
            if epilogue is not None:
                epilogue.execute(c, bias, None if residual is None else residual[image])
        return out

    def _packed(self, conv: Conv, w: np.ndarray) -> np.ndarray:
        """Weights in the layout the convolution chose (``conv_weights``)."""
        return packed_conv_weights(self, conv, w)

    # -- elementwise ---------------------------------------------------------------------
    def _eltwise(self, alg: str, p: spec.ElementwiseProblem, x) -> np.ndarray | ChannelsLastArray:
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("eltwise", alg, p.size),
                               lambda: build_eltwise(self.dnnl, alg, p.size))
        if isinstance(x, ChannelsLastArray):  # elementwise: any layout will do
            out = self._buffers.empty(x.nhwc.shape, np.float32)
            prim.execute({ARG_SRC: x.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        if (blocked := self._blocked_eltwise(alg, x)) is not None:
            return blocked
        x = np.ascontiguousarray(self._plain(x))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out

    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        return self._eltwise("eltwise_logistic", p, x)

    def _relu(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        return self._eltwise("eltwise_relu", p, x)

    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> np.ndarray:
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("eltwise_bwd", "logistic", p.size),
                               lambda: build_logistic_backward(self.dnnl, p.size))
        out = self._buffers.empty(p.shape, np.float32)
        y, dy = self._plain(y), self._plain(dy)
        prim.execute({ARG_DST: np.ascontiguousarray(y), ARG_DIFF_DST: np.ascontiguousarray(dy),
                      ARG_DIFF_SRC: out})
        return out

    # -- the ops full CNNs need ------------------------------------------------------------
    def _pool(self, p: spec.PoolProblem, x) -> np.ndarray | BlockedArray:
        self.dnnl.set_num_threads(self._threads_now)
        rescale = p.kind == "avg" and p.count_include_pad and any(p.ceil_extra)
        pool = None
        if isinstance(x, BlockedArray) and not rescale:
            # Pool in x's layout (ResNet's stem max pool: no reorders; ``blocked_layout``)
            pool = pool_in_layout(self, p, x)
        if pool is not None:
            out = self._buffers.empty(pool.prim.mds[ARG_DST].size, np.uint8)
            pool.prim.execute({ARG_SRC: x.buffer, ARG_DST: out})
            result = BlockedArray(out, p.output_shape, pool.prim.mds[ARG_DST], pool.to_plain)
            return result if self.keep_blocked else self._plain(result)
        if isinstance(x, ChannelsLastArray) and x.dtype == np.float32 and not rescale:
            prim = self._primitive(("pool", p, "acdb"),
                                   lambda: build_pooling(self.dnnl, p, "acdb"))
            n, c, oh, ow = p.output_shape
            out = self._buffers.empty((n, oh, ow, c), np.float32)
            prim.execute({ARG_SRC: x.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        x = self._plain(x)
        prim = self._primitive(("pool", p), lambda: build_pooling(self.dnnl, p))
        out = self._buffers.empty(p.output_shape, np.float32)
        prim.execute({ARG_SRC: np.ascontiguousarray(x), ARG_DST: out})
        if rescale:
            # oneDNN divides by kh*kw everywhere; ONNX leaves ceil mode's overhang (past
            # the explicit padding) out of the divisor, so rescale the last row/column.
            counts = np.outer(p.window_counts(0), p.window_counts(1))
            out *= (p.kernel[0] * p.kernel[1] / counts).astype(np.float32)
        return out

    _max_pool2d = _avg_pool2d = _global_avg_pool2d = _pool

    def _softmax(self, p: spec.SoftmaxProblem, x) -> np.ndarray:
        # Any rank as (outer, axis, inner): one plain 3-D primitive per collapsed shape.
        outer = math.prod(p.shape[:p.axis])
        inner = math.prod(p.shape[p.axis + 1:])
        dims = (outer, p.shape[p.axis], inner)
        x = self._plain(x)
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("softmax", dims), lambda: build_softmax(self.dnnl, dims))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: np.ascontiguousarray(x), ARG_DST: out})
        return out

    def _binary(self, alg: str, p: spec.BinaryProblem, a, b) -> np.ndarray | ChannelsLastArray:
        if (isinstance(a, ChannelsLastArray) and isinstance(b, ChannelsLastArray)
                and a.shape == b.shape == p.shape):  # same layout, no broadcast: flat
            self.dnnl.set_num_threads(self._threads_now)
            flat = (p.size,)
            prim = self._primitive(("binary", alg, flat, flat),
                                   lambda: build_binary(self.dnnl, alg, flat, flat))
            out = self._buffers.empty(a.nhwc.shape, np.float32)
            prim.execute({ARG_SRC: a.nhwc, ARG_SRC_1: b.nhwc, ARG_DST: out})
            return ChannelsLastArray(out)
        if isinstance(a, BlockedArray) or isinstance(b, BlockedArray):
            blocked = self._blocked_binary(alg, p, a, b)
            if blocked is not None:
                return blocked
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
                               lambda: build_binary(self.dnnl, alg, p.shape, sb))
        prim.execute({ARG_SRC: np.ascontiguousarray(a),
                      ARG_SRC_1: np.ascontiguousarray(b).reshape(sb), ARG_DST: out})
        return out

    def _add(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        return self._binary("binary_add", p, a, b)

    def _mul(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        return self._binary("binary_mul", p, a, b)

    def _concat(self, p: spec.ConcatProblem, arrays) -> np.ndarray | BlockedArray:
        self.dnnl.set_num_threads(self._threads_now)
        if (nhwc := blocked_layout.channels_last_concat(self, p, arrays)) is not None:
            return nhwc  # an int8 model's channels-last floats stay so
        concat = None  # nChw16c (SqueezeNet's fire modules) or NHWC: no reorders
        if p.axis == 1 and all(isinstance(a, BlockedArray) for a in arrays):
            concat = concat_in_layout(self, p, arrays)
        if concat is not None:
            out = self._buffers.empty(concat.prim.mds[ARG_DST].size, np.uint8)
            buffers = dict(enumerate(concat.sources(self, arrays), ARG_MULTIPLE_SRC))
            buffers[ARG_DST] = out
            concat.prim.execute(buffers)
            result = BlockedArray(out, p.shape, concat.prim.mds[ARG_DST], concat.to_plain)
            return result if self.keep_blocked else self._plain(result)
        arrays = [self._plain(a) for a in arrays]
        out = self._buffers.empty(p.shape, p.dtype)
        if out.nbytes < CONCAT_MIN_BYTES or p.dtype != np.float32:  # oneDNN's: float32
            return np.concatenate(arrays, axis=p.axis, out=out)
        prim = self._primitive(("concat", p), lambda: build_concat(self.dnnl, p))
        buffers = {ARG_MULTIPLE_SRC + i: np.ascontiguousarray(a) for i, a in enumerate(arrays)}
        buffers[ARG_DST] = out
        prim.execute(buffers)
        return out

    def _reshape(self, p: spec.LayoutProblem, x) -> np.ndarray:
        if x in self.frozen:  # a weight (QGemm's B): one frozen copy kept with it, the same
            # every run, so what kernels derive from it (packed filters) is kept too
            return self.frozen.derived(x, ("reshape", p.shape),
                                       lambda w: self.frozen.freeze(np.reshape(w, p.shape)))
        return np.reshape(self._plain(x), p.shape)  # a view of a contiguous array: no copy

    def _transpose(self, p: spec.LayoutProblem, x) -> np.ndarray:
        if x in self.frozen:  # as _reshape's
            return self.frozen.derived(x, ("transpose", p.perm),
                                       lambda w: self.frozen.freeze(np.transpose(w, p.perm)))
        return transpose_activation(self, p, x)  # NCHW <-> NHWC: one oneDNN reorder
