"""The layout a pooling or a channel concat of ``BlockedArray``s runs in: their own.

A session keeps activations in the layout their producer wrote: nChw16c after most
convolutions, NHWC where oneDNN chose it for a grouped conv ("any": ShuffleNet's
1×1 group convs, 34 or 68 channels a group). Pooling and concat were built for nChw16c
only, so ShuffleNet's AveragePools and the Concats of its downsampling units reordered
their NHWC inputs to NCHW through the kernels' whole path and handed the next layers
plain arrays (one reorder back each). Both now run in the NHWC layout too, with no
reorder before or after (oneDNN's jit pooling and its ``simple`` concat read it as is);
a concat of parts in both layouts runs in its first part's, the others reordered once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.bound_primitive import BoundPrimitive, out_factory
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray, ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_MULTIPLE_SRC, ARG_SRC

TAGS = (BLOCKED_TAG, "acdb")  # the blocked layouts pooling and concat run in


def pool_in_layout(be: Any, p: Any, x: BlockedArray) -> Any:
    """The cached ``BlockedPool`` of ``p`` that reads ``x``'s layout (and writes it),
    or None for a layout of neither tag."""
    from hwbench.backends.cpu.primitives import BlockedPool

    for tag in TAGS:
        pool = be._primitive(("pool", p, tag), lambda tag=tag: BlockedPool(be.dnnl, p, tag))
        if x.md == pool.prim.mds[ARG_SRC]:
            return pool
    return None


class LayoutConcat:
    """A ``BlockedConcat`` in one layout and, per part, the reorder (or None) that
    brings a part of the other layout to it (ShuffleNet's first downsampling Concat: a
    grouped conv's NHWC output beside an AveragePool's nChw16c one)."""

    def __init__(self, concat: Any, reorders: list[Any]) -> None:
        self.concat, self.reorders = concat, reorders
        self.prim, self.to_plain, self.tag = concat.prim, concat.to_plain, concat.tag

    def sources(self, be: Any, parts: list[BlockedArray]) -> list[Any]:
        """The parts' buffers in the concat's layout (the kernel path's: reordered into
        pool buffers where needed)."""
        out = []
        for i, (x, step) in enumerate(zip(parts, self.reorders, strict=True)):
            if step is not None:
                buffer = be._buffers.empty(self.prim.mds[ARG_MULTIPLE_SRC + i].size, np.uint8)
                step.execute({ARG_SRC: x.buffer, ARG_DST: buffer})
            out.append(x.buffer if step is None else buffer)
        return out


    def bound_sources(self, be: Any) -> Callable[[list[BlockedArray]], tuple[list[int], list]]:
        """A plan's ``sources``: ``(addresses, kept)`` of the parts in the concat's layout,
        the reorders bound once, their outputs fresh (``kept`` holds them until the concat
        has read them)."""
        steps = [(i, BoundPrimitive(step, {}, (ARG_SRC, ARG_DST)).runner(),
                  out_factory(be, self.prim.mds[ARG_MULTIPLE_SRC + i].size, np.uint8))
                 for i, step in enumerate(self.reorders) if step is not None]

        def sources(parts: list[BlockedArray]) -> tuple[list[int], list]:
            addresses = [address(x.buffer) for x in parts]
            kept = []
            for i, run, new in steps:
                buffer, at = new()
                run(addresses[i], at)
                addresses[i] = at
                kept.append(buffer)
            return addresses, kept
        return sources


def channels_last_concat(be: Any, p: Any, parts: list) -> Any:
    """The channel concat of an int8 model's channels-last activations (DenseNet's float
    features between its int8 convs) as one NHWC ``ChannelsLastArray``, or None for
    anything else: the plain concat had transposed every part to NCHW, and the
    QuantizeLinear after it transposed the result back."""
    if p.axis != 1 or not all(type(x) is ChannelsLastArray for x in parts):
        return None
    n, c, h, w = p.shape
    out = be._buffers.empty((n, h, w, c), p.dtype)
    np.concatenate([x.nhwc for x in parts], axis=3, out=out)
    return ChannelsLastArray(out)


def _tag_of(be: Any, x: BlockedArray) -> str | None:
    """Which of ``TAGS`` ``x`` is laid out in, or None."""
    for tag in TAGS:
        shape = tuple(x.shape)
        md = be._primitive(("blocked_md", shape, tag),
                           lambda tag=tag, shape=shape: be.dnnl.memory_desc(shape, "f32", tag=tag))
        if x.md == md:
            return tag
    return None


def concat_in_layout(be: Any, p: Any, parts: list[BlockedArray]) -> LayoutConcat | None:
    """The channel concat of ``parts`` in their layout (one of ``TAGS``); parts of
    mixed layouts: in the first part's, the others reordered to it once each; None
    for a layout of neither tag."""
    from hwbench.backends.cpu.primitives import BlockedConcat, reorder

    tags = [_tag_of(be, x) for x in parts]
    if None in tags:
        return None
    tag = tags[0]
    concat = be._primitive(("concat", p, tag), lambda: BlockedConcat(be.dnnl, p, tag))
    reorders = []
    for i, (x, own) in enumerate(zip(parts, tags, strict=True)):
        md = concat.prim.mds[ARG_MULTIPLE_SRC + i]
        if own == tag and x.md == md:
            reorders.append(None)
            continue
        shape = tuple(x.shape)
        reorders.append(be._primitive(
            ("concat_part", p, i, own, tag),
            lambda own=own, md=md, shape=shape: reorder(
                be.dnnl, be.dnnl.memory_desc(shape, "f32", tag=own), md)))
    return LayoutConcat(concat, reorders)
