"""Elementwise ops on activations left in oneDNN's blocked layout (``BlockedArray``).

A squeeze-and-excitation block (EfficientNet, MobileNet v3) multiplies a blocked
activation by a per-channel gate of shape (N, C, 1, 1); a residual Add joins two blocked
activations. Converting them to NCHW and the next convolution converting back cost two
reorders of the whole activation each; here one oneDNN binary primitive reads the blocked
operand as it is and writes the same layout (``BlockedBinary``), the gate broadcast in
nChw16c too (a plain gate there runs oneDNN's reference kernel, 200x slower). A Relu of
a blocked activation (DenseNet's, after each BatchNorm of a Concat) runs over the whole
buffer as it is: elementwise, and relu(0) = 0 keeps the channel padding zero. Anything
else returns None and goes the plain way. LRN (Inception v1's, between a max pool and a
conv, or before a max pool) runs on nChw16c too: oneDNN's LRN reads the logical channels
only, so the max pool after it reads it as it is (on plain NCHW it ran ~3x slower).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1, Primitive
from hwbench.backends.cpu.primitives import build_eltwise, build_lrn, reorder
from hwbench.kernels import spec

# Eltwise algorithms with f(0) = 0, run on a blocked buffer padding and all.
PADDING_KEEPING = frozenset({"eltwise_relu"})


class BlockedBinary:
    """src0 in nChw16c (full shape) <alg> src1 (nChw16c of the same shape, or plain NCHW
    broadcast along H, W) -> nChw16c, plus the reorder of its output to NCHW."""

    def __init__(self, d: onednn.OneDNN, alg: str, shape: tuple[int, ...],
                 src1_shape: tuple[int, ...]) -> None:
        src0 = d.memory_desc(shape, "f32", tag=BLOCKED_TAG)
        same = tuple(src1_shape) == tuple(shape)
        src1 = src0 if same else d.memory_desc(src1_shape, "f32", tag=BLOCKED_TAG)
        attr = d.attr()
        pd = d.create_pd("dnnl_binary_primitive_desc_create", d.engine, d.alg[alg],
                         src0.handle, src1.handle, src0.handle, attr.handle)
        self.prim = Primitive(d, pd, {ARG_SRC: src0, ARG_SRC_1: src1, ARG_DST: src0})
        self.to_plain = reorder(d, self.prim.mds[ARG_DST],
                                d.memory_desc(shape, "f32", tag="abcd"))


class BlockedOps:
    """``_blocked_binary`` mixed into ``CpuBackend`` (its oneDNN handle, primitive cache,
    buffers, ``_plain`` and ``keep_blocked``)."""

    def _blocked_binary(self, alg: str, p: spec.BinaryProblem, a: Any,
                        b: Any) -> BlockedArray | None:
        """``a <alg> b`` in the blocked layout, or None where it does not apply: one
        operand a rank-4 ``BlockedArray`` of the full shape, the other of the same
        layout and shape or a per-(image, channel) tensor (N or 1, C, 1, 1)."""
        if len(p.shape) != 4 or alg not in ("binary_add", "binary_mul"):
            return None
        if not (isinstance(a, BlockedArray) and a.shape == p.shape):
            a, b = b, a  # add and mul commute exactly
        if not (isinstance(a, BlockedArray) and a.shape == p.shape):
            return None
        n, c = p.shape[:2]
        src1 = None
        if isinstance(b, BlockedArray) and b.shape == p.shape:
            if b.md != a.md:
                return None
            sb, src1 = p.shape, b.buffer
        else:
            sb = (1,) * (4 - len(b.shape)) + tuple(b.shape)
            if sb[1:] != (c, 1, 1) or sb[0] not in (1, n):
                return None
        self.dnnl.set_num_threads(self._threads_now)
        op = self._primitive(("blocked_binary", alg, p.shape, sb),
                             lambda: BlockedBinary(self.dnnl, alg, p.shape, sb))
        if op.prim.mds[ARG_SRC] != a.md:
            return None
        if src1 is None:  # a gate (also one of the full shape where H = W = 1)
            src1 = self._gate(b, op.prim.mds[ARG_SRC_1], sb)
        out = self._buffers.empty(a.md.size, np.uint8)
        op.prim.execute({ARG_SRC: a.buffer, ARG_SRC_1: src1, ARG_DST: out})
        result = BlockedArray(out, p.shape, op.prim.mds[ARG_DST], op.to_plain)
        return result if self.keep_blocked else self._plain(result)

    def _blocked_eltwise(self, alg: str, x: Any) -> BlockedArray | None:
        """``alg`` of a blocked ``x`` in its own layout, or None where it does not apply
        (not ``PADDING_KEEPING``, not blocked, or a backend returning plain arrays)."""
        if alg not in PADDING_KEEPING or not self.keep_blocked \
                or not isinstance(x, BlockedArray):
            return None
        size = x.md.size // 4
        prim = self._primitive(("eltwise", alg, size),
                               lambda: build_eltwise(self.dnnl, alg, size))
        out = self._buffers.empty(x.md.size, np.uint8)
        prim.execute({ARG_SRC: x.buffer, ARG_DST: out})
        return BlockedArray(out, x.shape, x.md, x._to_plain)

    def _gate(self, b: Any, md: onednn.MemoryDesc, shape: tuple[int, ...]) -> np.ndarray:
        """A (N, C, 1, 1) operand in nChw16c: as it is if it is laid out so already, else
        its channels zero-padded to whole blocks of 16 (that layout for one pixel)."""
        if isinstance(b, BlockedArray) and b.md == md:
            return b.buffer
        n, c = shape[0], shape[1]
        padded = -(-c // 16) * 16
        out = np.zeros((n, padded), np.float32)
        out[:, :c] = np.asarray(self._plain(b), np.float32).reshape(n, c)
        return out


BLOCKED_LRN = True  # ``_lrn`` on nChw16c (a switch for A/B measurements)


class BlockedLrn:
    """LRN from and to nChw16c, plus the reorder of its output to NCHW."""

    def __init__(self, d: onednn.OneDNN, p: spec.LrnProblem) -> None:
        self.prim = build_lrn(d, p, BLOCKED_TAG)
        self.to_plain = reorder(d, self.prim.mds[ARG_DST],
                                d.memory_desc(p.shape, "f32", tag="abcd"))


class LrnKernel:
    """``CpuBackend._lrn``: a blocked activation stays blocked (``BlockedLrn``), any other
    runs on plain NCHW."""

    def _lrn(self, p: spec.LrnProblem, x: Any) -> Any:
        self.dnnl.set_num_threads(self._threads_now)
        if BLOCKED_LRN and self.keep_blocked and type(x) is BlockedArray:
            lrn = self._primitive(("lrn", p, BLOCKED_TAG), lambda: BlockedLrn(self.dnnl, p))
            if x.md == lrn.prim.mds[ARG_SRC]:
                out = self._buffers.empty(lrn.prim.mds[ARG_DST].size, np.uint8)
                lrn.prim.execute({ARG_SRC: x.buffer, ARG_DST: out})
                return BlockedArray(out, tuple(p.shape), lrn.prim.mds[ARG_DST], lrn.to_plain)
        x = np.ascontiguousarray(self._plain(x))
        prim = self._primitive(("lrn", p), lambda: build_lrn(self.dnnl, p))
        out = self._buffers.empty(p.shape, np.float32)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out
