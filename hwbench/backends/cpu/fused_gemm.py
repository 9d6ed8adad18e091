"""Gemm + bias + activation as one oneDNN matmul primitive (issue 16): the bias and the
activation (an eltwise post-op) applied while the product is still in registers, one
call where the unfused graph made two (``dnnl_sgemm`` over a bias-filled output, then an
eltwise primitive). Small models' dense layers (mlp, autoencoder, LeNet's classifier)
are such chains, and at their sizes each call costs more than its arithmetic.

A Gemm of ``PACK_MIN_ROWS`` or more rows with no activation runs on the same primitive
(``packs``): a weight's B packed once in oneDNN's layout is 5-45 % faster than ``dnnl_sgemm`` or
the matmul primitive on plain B at a transformer's shapes (one thread, CPU time, Zen 4:
32×768×3072 1.49 ms against 1.72 ms sgemm and 2.13 ms plain matmul; 197×768×3072 8.5
against 9.2 and 11.3 ms; 1×2048×1000 125 against 152 µs), and the bias is fused too."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.conv_epilogue import apply_activation
from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.gemv import GemvConv, runs_as_gemv
from hwbench.backends.cpu.onednn import ARG_BIAS, ARG_DST, ARG_SRC, ARG_WEIGHTS, Primitive
from hwbench.backends.cpu.primitives import ONEDNN_ACTIVATIONS, reorder
from hwbench.kernels import spec

# The packed copy of B is kept beside the weight itself: up to this many bytes of B that
# memory buys the speed (GPT-2's LM head, 768×50257, 154 MB: 24.6 against 33.4 ms with
# ``dnnl_sgemm`` at 32 tokens, one thread; a transformer's 768×3072 layers, 9.4 MB).
# Above it (VGG19's first classifier layer: 411 MB) a GEMM runs as before,
# ``dnnl_sgemm`` then the activation's kernel.
FUSED_MAX_WEIGHT_BYTES = 256 << 20
# Fewer rows than this: a plain Gemm stays on ``dnnl_sgemm``, except one row by a large
# weight (a classifier at batch 1), which ``cpu/gemv.py`` runs as a 1×1 convolution.
PACK_MIN_ROWS = 8


def fuses(p: spec.GemmProblem) -> bool:
    """Whether ``fused_gemm`` runs ``p`` as one matmul primitive: a bias of one value per
    column (or none), and B of at most ``FUSED_MAX_WEIGHT_BYTES``."""
    return bias_dims(p) is not False and 4 * p.k * p.n <= FUSED_MAX_WEIGHT_BYTES


def packs(be: Any, p: spec.GemmProblem) -> bool:
    """Whether a Gemm without an activation runs on a packed primitive too: one that
    ``fuses``, of at least ``PACK_MIN_ROWS`` rows (the matmul), or of one row by a large
    weight (``gemv.runs_as_gemv``: the 1×1 convolution). Decided by the problem alone, so
    a compiled plan's replay (whose feeds are not frozen) gives the normal path's bits; a
    weight (frozen) is packed once per session, any other B on every call (a reorder of
    B: at most a few % of a GEMM of that many rows; as much as the product at one row)."""
    return be.mkl is None and (p.m >= PACK_MIN_ROWS or runs_as_gemv(p)) and fuses(p)


def bias_dims(p: spec.GemmProblem) -> tuple[int, int] | None | bool:
    """The bias as the matmul primitive reads it: None (no bias), (1, n) for a bias of one
    value per output column ((n,) or (1, n)), False for any other broadcast (the
    unfused kernels apply those)."""
    if p.bias_shape is None:
        return None
    return (1, p.n) if tuple(p.bias_shape) in ((p.n,), (1, p.n)) else False


class FusedMatmul:
    """``activation(op(A) @ op(B) + bias)``: float32 matmul with the weights in the
    layout oneDNN chose (``pack_weights``) and the activation (if any) as a post-op."""

    def __init__(self, d: onednn.OneDNN, p: spec.GemmProblem, activation: str | None) -> None:
        bias = bias_dims(p)
        src = d.memory_desc((p.m, p.k), "f32", tag="ba" if p.trans_a else "ab")
        user_wei = d.memory_desc((p.k, p.n), "f32", tag="ba" if p.trans_b else "ab")
        wei = d.memory_desc((p.k, p.n), "f32", tag="any")
        dst = d.memory_desc((p.m, p.n), "f32", tag="ab")
        bias_md = d.memory_desc(bias, "f32", tag="ab") if bias else None
        post_ops = [] if activation is None else [("eltwise", *ONEDNN_ACTIVATIONS[activation])]
        attr = d.attr(post_ops=post_ops)
        pd = d.create_pd("dnnl_matmul_primitive_desc_create", d.engine, src.handle,
                         wei.handle, bias_md.handle if bias_md else None, dst.handle,
                         attr.handle)
        args: dict[int, Any] = {ARG_SRC: src, ARG_WEIGHTS: onednn.QUERY_WEIGHTS_MD,
                                ARG_DST: dst}
        if bias_md is not None:
            args[ARG_BIAS] = bias_md
        self.prim = Primitive(d, pd, args)
        self.wei_reorder = reorder(d, user_wei, self.prim.mds[ARG_WEIGHTS])

    def pack_weights(self, w: np.ndarray) -> np.ndarray:
        """B (as stored: (k, n), or (n, k) when transposed) in the primitive's layout."""
        w = np.ascontiguousarray(w)
        if self.wei_reorder is None:
            return w
        packed = aligned_empty(self.prim.mds[ARG_WEIGHTS].size, np.uint8)
        self.wei_reorder.execute({ARG_SRC: w, ARG_DST: packed})
        return packed


def matmul_for(be: Any, p: spec.GemmProblem,
               activation: str | None) -> FusedMatmul | GemvConv:
    """The backend's cached primitive for ``p`` at the kernel's thread count: a one-row
    product by a large weight as a 1×1 convolution (``cpu/gemv.py``)."""
    kind = GemvConv if runs_as_gemv(p) else FusedMatmul
    return be._primitive(("fused_gemm", p, activation), lambda: kind(be.dnnl, p, activation))


def packed_weights(be: Any, mm: FusedMatmul | GemvConv, p: spec.GemmProblem,
                   activation: str | None, b: np.ndarray) -> np.ndarray:
    """B packed for ``mm``, kept per frozen B (a weight: packed once per session)."""
    tag = ("fused_gemm", p, activation, be._threads_now)
    return be._once_per_array(b, tag, mm.pack_weights)


def fused_gemm(be: Any, p: spec.GemmProblem, a: Any, b: Any, bias: Any,
               activation: str | None) -> np.ndarray:
    """The cpu backend's ``_gemm(..., activation=)`` (and ``_gemm`` where it ``packs``):
    one matmul primitive where it ``fuses``, else ``_gemm`` then the activation's own
    kernel."""
    if not fuses(p):
        return apply_activation(be, be._gemm(p, a, b, bias), activation)
    a = np.ascontiguousarray(be._plain(a))
    b = np.asarray(be._plain(b))
    be.dnnl.set_num_threads(be._threads_now)
    mm = matmul_for(be, p, activation)
    buffers = {ARG_SRC: a, ARG_WEIGHTS: packed_weights(be, mm, p, activation, b)}
    if bias is not None:
        buffers[ARG_BIAS] = np.ascontiguousarray(bias).reshape(1, p.n)
    out = be._buffers.empty((p.m, p.n), np.float32)
    buffers[ARG_DST] = out
    mm.prim.execute(buffers)
    return out
