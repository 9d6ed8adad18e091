"""A float32 channel shuffle on the cpu backend as one oneDNN reorder (issue 16).

Why: ShuffleNet's shuffle (``passes.optimize`` turns it into one ``Gather`` of channels,
``shuffle_fold.shuffles_as_gathers``) reads the output of a grouped 1x1 convolution,
which oneDNN writes NHWC. Run as written, the shuffle was a reorder of that NHWC buffer
to NCHW, NumPy's 5-D transpose, and the depthwise conv's reorder of the result to
nChw16c; at batch 8 the first two cost 15x what onnxruntime spends on the shuffle.
A shuffle of g groups, ``out[j*g + k] = in[k*C/g + j]``, is a 5-D transpose of
(N, g, C/g, H, W): oneDNN reorders between two strided views of it, so the whole
shuffle is one pass from the NHWC input into an NHWC output, kept as a ``BlockedArray``
whose next convolution reorders it straight to its own layout (a plain NCHW input gives
a plain NCHW output: whole H*W planes moved). A reorder
only moves values: the results are the same bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC
from hwbench.backends.cpu.primitives import reorder

NHWC = "acdb"


def shuffle_groups(table: np.ndarray, channels: int) -> int:
    """g where ``table`` is the channel shuffle of g groups (``out[j·g + k] = in[k·C/g +
    j]``, ShuffleNet's), else 0."""
    per = int(table[1]) if table.size == channels > 1 else 0
    if per < 2 or channels % per or channels == per:  # per 1: the identity
        return 0
    groups = channels // per
    shuffle = np.arange(channels).reshape(groups, per).T.reshape(-1)
    return groups if np.array_equal(table, shuffle) else 0


def float_shuffle_groups(p: Any, x: Any) -> int:
    """g where the take ``p`` (a ``spec.TakeProblem``) is ShuffleNet's channel shuffle of
    g groups of float32 ``x`` (every other axis whole), else 0."""
    if x.dtype != np.float32 or len(p.shape) != 4 or tuple(p.in_shape) != tuple(x.shape) \
            or tuple(p.take_shape) != tuple(p.shape):
        return 0
    if any(not np.array_equal(p.tables[a], np.arange(p.shape[a])) for a in (0, 2, 3)):
        return 0
    return shuffle_groups(p.tables[1], int(x.shape[1]))


def _views(n: int, c: int, h: int, w: int, groups: int,
           nhwc: bool) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(dims, src strides, dst strides) of the shuffle as a 5-D copy over (n, k, j, h, w):
    input channel k*per + j to output channel j*groups + k, both NHWC or both NCHW (the
    same layout both sides: oneDNN's jit reorder ran 4-9x slower across the two)."""
    per = c // groups
    dims = (n, groups, per, h, w)
    if nhwc:
        return dims, (h * w * c, per, 1, w * c, c), (h * w * c, 1, groups, w * c, c)
    return dims, (c * h * w, per * h * w, h * w, w, 1), (c * h * w, h * w, groups * h * w, w, 1)


def _prepare(be: Any, x: Any, groups: int) -> tuple[Any, bool, Any, Any] | None:
    """(reorder, whether NHWC, the NHWC descriptor, its reorder to NCHW) for shuffling
    ``x``, or None where the shuffle takes another way (not float32 rank 4, or a blocked
    layout other than NHWC: the caller's take)."""
    if x.dtype != np.float32 or len(x.shape) != 4:
        return None
    n, c, h, w = (int(v) for v in x.shape)
    d = be.dnnl
    nhwc_md = be._primitive(("nhwc_md", (n, c, h, w)),
                            lambda: d.memory_desc((n, c, h, w), "f32", tag=NHWC))
    if isinstance(x, BlockedArray):
        if x.md != nhwc_md:
            return None
        nhwc = True
    elif type(x) is np.ndarray and x.flags.c_contiguous:
        nhwc = False
    else:
        return None

    def build() -> tuple[Any, Any]:
        dims, src, dst = _views(n, c, h, w, groups, nhwc)
        move = reorder(d, d.strided_memory_desc(dims, "f32", src),
                       d.strided_memory_desc(dims, "f32", dst))
        return move, reorder(d, nhwc_md, d.memory_desc((n, c, h, w), "f32", tag="abcd"))
    move, to_plain = be._primitive(("channel_shuffle", (n, c, h, w), groups, nhwc), build)
    return move, nhwc, nhwc_md, to_plain


def shuffle(be: Any, x: Any, groups: int) -> BlockedArray | np.ndarray | None:
    """``x`` (float32, NCHW logical shape) shuffled in ``groups`` groups: an NHWC
    ``BlockedArray`` from one, a plain array from a plain one; None where ``_prepare``
    finds no reorder."""
    prepared = _prepare(be, x, groups)
    if prepared is None:
        return None
    move, nhwc, nhwc_md, to_plain = prepared
    be.dnnl.set_num_threads(be._threads_now)
    if not nhwc:
        out = be._buffers.empty(tuple(x.shape), np.float32)
        move.execute({ARG_SRC: x, ARG_DST: out})
        return out
    out = be._buffers.empty(nhwc_md.size, np.uint8)
    move.execute({ARG_SRC: x.buffer, ARG_DST: out})
    return BlockedArray(out, tuple(x.shape), nhwc_md, to_plain)


def prepared(be: Any, p: Any, kernel: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """A plan's fast path for the traced shuffle (``prepared.builder_for``): the reorder
    bound once, the input's layout checked by identity first; any other input goes to
    ``kernel`` itself. Without it each call built the take's tables and looked the
    primitive up again (~30 us a call)."""
    from hwbench.backends.cpu.bound_primitive import blocked_call, plain_call

    if kwargs or len(args) != 1:
        return None
    x = args[0]
    groups = float_shuffle_groups(p, x)
    found = _prepare(be, x, groups) if groups else None
    if found is None:
        return None
    move, nhwc, md, to_plain = found
    if nhwc:
        return blocked_call(be, move, md, md, tuple(x.shape), to_plain, kernel, p)
    return plain_call(be, move, tuple(x.shape), tuple(x.shape), kernel, p)
