"""The cpu backend's NCHW <-> NHWC Transposes as one oneDNN reorder each (issue 16).

Why: ConvNeXt (and any model with a channels-last LayerNorm or Linear between convs)
runs ``Transpose(0, 2, 3, 1)`` after a depthwise conv and ``Transpose(0, 3, 1, 2)``
before the next. Done plainly, the first is a reorder of the blocked conv output to NCHW
then NumPy's strided copy; the second NumPy's copy, then a reorder to nChw16c for the
conv. onnxruntime folds them into its own reorders. Here each is one reorder: a blocked
(or plain NCHW) activation straight into NHWC memory, and an NHWC array straight into
nChw16c, kept there as a ``BlockedArray`` in a session (``keep_blocked``) so that the
layer-scale Mul and residual Add run blocked (``blocked_ops``) and the depthwise conv
reads it as it is. A reorder only moves values: the results are the same bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC
from hwbench.backends.cpu.primitives import reorder
from hwbench.kernels import spec

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
MIN_CHANNELS = 16  # fewer: no whole channel block, and NumPy's copy is as fast


def applies(be: Any, p: spec.LayoutProblem, x: Any) -> bool:
    """Whether ``channel_transpose`` takes this call: float32, rank 4, a channel perm,
    at least ``MIN_CHANNELS`` channels and more than one pixel; NHWC -> NCHW only where
    the result may stay blocked (a session's backend)."""
    perm = tuple(p.perm)
    if len(p.shape) != 4 or perm not in (TO_NHWC, TO_NCHW) or x.dtype != np.float32:
        return False
    n, c, h, w = x.shape if perm == TO_NHWC else p.shape
    if c < MIN_CHANNELS or h * w == 1:
        return False
    if perm == TO_NHWC:
        return isinstance(x, BlockedArray) or _c_contiguous(x)
    return be.keep_blocked and _c_contiguous(x)


def _c_contiguous(x: Any) -> bool:
    return type(x) is np.ndarray and x.flags.c_contiguous


def channel_transpose(be: Any, p: spec.LayoutProblem, x: Any) -> Any:
    """``x`` transposed by ``p.perm`` (``applies`` must hold): a plain NHWC array, or an
    nChw16c ``BlockedArray`` of the NCHW result; None for a blocked input of a layout
    other than the one the cached reorder reads (the caller goes the plain way)."""
    d = be.dnnl
    d.set_num_threads(be._threads_now)
    if tuple(p.perm) == TO_NHWC:
        nchw = tuple(x.shape)
        src = x.md if isinstance(x, BlockedArray) else None
        key = ("to_nhwc", nchw, "blocked" if src is not None else "abcd")
        prim = be._primitive(key, lambda: reorder(
            d, src if src is not None else d.memory_desc(nchw, "f32", tag="abcd"),
            d.memory_desc(nchw, "f32", tag="acdb")))
        if src is not None and prim.mds[ARG_SRC] != src:  # another blocking: plain way
            return None
        out = be._buffers.empty(tuple(p.shape), np.float32)
        prim.execute({ARG_SRC: x.buffer if src is not None else x, ARG_DST: out})
        return out
    nchw = tuple(p.shape)

    def build() -> tuple[Any, Any]:
        blocked = d.memory_desc(nchw, "f32", tag=BLOCKED_TAG)
        return (reorder(d, d.memory_desc(nchw, "f32", tag="acdb"), blocked),
                reorder(d, blocked, d.memory_desc(nchw, "f32", tag="abcd")))
    to_blocked, to_plain = be._primitive(("to_nchw_blocked", nchw), build)
    md = to_blocked.mds[ARG_DST]
    out = be._buffers.empty(md.size, np.uint8)
    to_blocked.execute({ARG_SRC: x, ARG_DST: out})
    return BlockedArray(out, nchw, md, to_plain)


def transpose_activation(be: Any, p: spec.LayoutProblem, x: Any) -> Any:
    """``CpuBackend._transpose`` of an activation (not a frozen weight): a channel
    transpose where ``applies``, else NumPy's copy of its plain form into a fresh output."""
    if applies(be, p, x) and (moved := channel_transpose(be, p, x)) is not None:
        return moved
    x = be._plain(x)
    out = be._buffers.empty(p.shape, x.dtype)
    out[...] = np.transpose(x, p.perm)
    return out
