"""The cpu backend's normalization and reductions family: LayerNormalization (NumPy
float32 on the same host memory, see below), ReduceX (oneDNN's reduction primitive) and
N-D batched MatMul (the matmul primitive, batch dimensions broadcast by oneDNN; a tiny
one, ``numpy_matmul``, by NumPy: see ``NUMPY_MATMUL_MAX_MACS``).

LayerNormalization is ``kernels.array_ops.layer_norm``, the numpy backend's formula, not
oneDNN's layer normalization primitive: oneDNN sums a row in its own order and fuses the
scale, so its outputs sit 1-2 ulp from NumPy's in about a third of the elements; between
the codes of an int8 model (Swin-T exported by torch and quantized by onnxruntime in
QOperator format) that moved a later QuantizeLinear by one code and the logits by up to
0.041. The same formula keeps cpu bit-identical to numpy (about 2x the primitive's time
for this op alone: a small share of a transformer's run).

oneDNN's reduction has sum, mean, max, min, mul and the L^p norms; ReduceL1 is
norm_lp_sum with p = 1, ReduceL2 with p = 2, ReduceSumSquare norm_lp_power_p_sum with
p = 2; ReduceLogSum and ReduceLogSumExp are composed in NumPy float32 on the same host
memory (``kernels.array_ops``).
"""

from __future__ import annotations

import ctypes

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_WEIGHTS, Primitive
from hwbench.kernels import array_ops, spec

# ONNX reduction -> (oneDNN algorithm, p); None: composed in NumPy
DNNL_REDUCTIONS = {"sum": ("reduction_sum", 0.0), "mean": ("reduction_mean", 0.0),
                   "max": ("reduction_max", 0.0), "min": ("reduction_min", 0.0),
                   "prod": ("reduction_mul", 0.0), "l1": ("reduction_norm_lp_sum", 1.0),
                   "l2": ("reduction_norm_lp_sum", 2.0),
                   "sum_square": ("reduction_norm_lp_power_p_sum", 2.0)}

# At most this many multiply-adds (batch x m x k x n), a MatMul runs as ``np.matmul``:
# the matmul primitive's fixed cost per execute (~2-3 us on the 2-core VM, 1 thread)
# outweighs the work. The translator's decoder step (attention: (B,1,32) @ (B,32,32))
# took 3.7 us a call on the primitive against 1.5 us in NumPy at B = 8, its encoder's
# keys ((8,32,32) @ (32,32)) 8.2 against 6.1 us (thread CPU time, busy host; the same bits
# on these shapes). Below OpenBLAS' own threading threshold (65536 x 4 MNK), so NumPy
# stays on the calling thread.
NUMPY_MATMUL_MAX_MACS = 1 << 18


def numpy_matmul(p: spec.MatmulProblem) -> bool:
    """Whether ``_matmul`` runs ``p`` as ``np.matmul`` (a problem too small to pay for a
    primitive's execute)."""
    return len(p.batch) + 2 > onednn.MAX_NDIMS or \
        int(np.prod(p.batch, dtype=np.int64)) * p.m * p.k * p.n <= NUMPY_MATMUL_MAX_MACS


# NCHW axis -> where a ChannelsLastArray's NHWC memory holds it
_NHWC_AXIS = (0, 3, 1, 2)


def _reduce_channels_last(p: spec.ReduceProblem, x: ChannelsLastArray) -> np.ndarray | None:
    """ReduceSum/ReduceMean of channels-last float32 activations (an int8 model's global
    pool left in float: dequantize -> ReduceMean over H, W -> quantize) in NumPy float32
    on the NHWC memory, where the kept axes come out in NCHW order (C reduced, or H and W
    both): ShuffleNet v2's 7x7x1024 mean 13 µs, where the transpose to NCHW and oneDNN's
    reduction took 230 µs (oneDNN's reduction over NHWC's pixels: 850 µs). Float sums in
    another order than NCHW's: within float32 rounding of them, as before (the numpy
    backend's are a third order). None where it does not apply."""
    nhwc = x.nhwc
    if p.op not in ("sum", "mean") or nhwc.dtype != np.float32 or nhwc.ndim != 4 \
            or not p.axes:
        return None
    kept = [_NHWC_AXIS[a] for a in range(4) if a not in p.axes]
    if kept != sorted(kept):
        return None
    axes = tuple(_NHWC_AXIS[a] for a in p.axes)
    reduce = np.mean if p.op == "mean" else np.sum
    return reduce(nhwc, axis=axes, dtype=np.float32).reshape(p.output_shape)


def _declare(d: onednn.OneDNN) -> None:
    """Argument types of the entry points this module adds (once per library)."""
    if getattr(d, "_reductions_declared", False):
        return
    c_void_p, c_int, c_float = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    p = ctypes.POINTER(c_void_p)
    sigs = {
        # (pd, engine, alg, src, dst, p, eps, attr)
        "dnnl_reduction_primitive_desc_create":
            [p, c_void_p, c_int, c_void_p, c_void_p, c_float, c_float, c_void_p],
    }
    for name, argtypes in sigs.items():
        fn = getattr(d.lib, name)
        fn.argtypes, fn.restype = argtypes, c_int
    d._reductions_declared = True


def build_reduction(d: onednn.OneDNN, alg: str, power: float, src_shape: tuple[int, ...],
                    dst_shape: tuple[int, ...]) -> Primitive:
    _declare(d)
    src = d.memory_desc(src_shape, "f32")
    dst = d.memory_desc(dst_shape, "f32")
    attr = d.attr()
    pd = d.create_pd("dnnl_reduction_primitive_desc_create", d.engine, d.alg[alg],
                     src.handle, dst.handle, power, 0.0, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_DST: dst})


def build_matmul(d: onednn.OneDNN, a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                 out_shape: tuple[int, ...]) -> Primitive:
    src, wei, dst = (d.memory_desc(s, "f32") for s in (a_shape, b_shape, out_shape))
    attr = d.attr()
    pd = d.create_pd("dnnl_matmul_primitive_desc_create", d.engine, src.handle, wei.handle,
                     None, dst.handle, attr.handle)
    return Primitive(d, pd, {ARG_SRC: src, ARG_WEIGHTS: wei, ARG_DST: dst})


def _collapse(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[tuple[int, ...],
                                                                         tuple[int, ...]]:
    """Merge neighbouring axes that are both reduced or both kept (and drop 1s): the
    same reduction on fewer dimensions, so any rank fits oneDNN's 12."""
    src: list[int] = []
    dst: list[int] = []
    last = None
    for i, size in enumerate(shape):
        if size == 1:
            continue
        reduced = i in axes
        if reduced == last:
            src[-1] *= size
            dst[-1] = 1 if reduced else dst[-1] * size
        else:
            src.append(size)
            dst.append(1 if reduced else size)
            last = reduced
    return (tuple(src), tuple(dst)) if src else ((1,), (1,))


class ReductionKernels:
    """``_layer_norm``, ``_reduce`` and ``_matmul`` mixed into ``CpuBackend`` (whose
    library, primitive cache, buffers and thread count they use)."""

    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias):
        # NumPy's formula, bit for bit (the module docstring says why not oneDNN's).
        return array_ops.layer_norm(np, np.asarray(self._plain(x)),
                                    np.asarray(self._plain(scale)),
                                    None if bias is None else np.asarray(self._plain(bias)), p)

    def _reduce(self, p: spec.ReduceProblem, x):
        if type(x) is ChannelsLastArray:
            out = _reduce_channels_last(p, x)
            if out is not None:
                return out
        x = np.ascontiguousarray(self._plain(x))
        native = DNNL_REDUCTIONS.get(p.op)
        src, dst = _collapse(p.shape, p.axes)
        if native is None or not p.axes or src == dst or len(src) > onednn.MAX_NDIMS:
            # composed ops, no axes, only 1-sized axes reduced, or more alternating
            # kept/reduced axes than oneDNN has dimensions: NumPy float32 here
            return array_ops.reduce(np, x, p)
        alg, power = native
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("reduce", alg, power, src, dst),
                               lambda: build_reduction(self.dnnl, alg, power, src, dst))
        out = self._buffers.empty(p.output_shape, np.float32)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out

    def _matmul(self, p: spec.MatmulProblem, a, b):
        a = np.ascontiguousarray(self._plain(a))
        b = np.ascontiguousarray(self._plain(b))
        a_shape = (*p.a_batch, p.m, p.k)
        b_shape = (*p.b_batch, p.k, p.n)
        out_shape = (*p.batch, p.m, p.n)
        if numpy_matmul(p):  # tiny, or more batch dimensions than oneDNN has
            out = np.empty(p.output_shape, np.float32)  # an array even for 1-D @ 1-D
            np.matmul(a.reshape(a_shape), b.reshape(b_shape), out=out.reshape(out_shape))
            return out
        self.dnnl.set_num_threads(self._threads_now)
        prim = self._primitive(("matmul", a_shape, b_shape),
                               lambda: build_matmul(self.dnnl, a_shape, b_shape, out_shape))
        out = self._buffers.empty(p.output_shape, np.float32)
        prim.execute({ARG_SRC: a.reshape(a_shape), ARG_WEIGHTS: b.reshape(b_shape),
                      ARG_DST: out.reshape(out_shape)})
        return out


__all__ = ["NUMPY_MATMUL_MAX_MACS", "ReductionKernels", "build_matmul", "build_reduction",
           "numpy_matmul"]
