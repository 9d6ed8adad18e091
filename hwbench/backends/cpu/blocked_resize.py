"""Resize of a blocked activation in its own layout (issue 16): BEGAN's generator runs
conv → Elu → nearest ×2 → conv, and the cpu backend's convs keep their outputs nChw16c
(``BlockedArray``). The kernel reads a plain array, so the upsampling cost a reorder to
NCHW, a host resize and a reorder back into the next conv's layout (~24 µs of a ~60 µs
batch-1 run); oneDNN's resampling primitive reads and writes nChw16c itself. Built on a
plan's first replay like the other prepared calls (``prepared.py``), for the Resizes
``upsampling.native_resampling`` computes exactly; the output is a ``BlockedArray`` that
the next conv reads as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwbench.backends.cpu.bound_primitive import blocked_call
from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC
from hwbench.backends.cpu.primitives import reorder
from hwbench.backends.cpu.upsampling import build_resampling, native_resampling


class BlockedResampling:
    """The resampling primitive on nChw16c source and destination, and the reorder of
    its output to NCHW for readers that need plain memory."""

    def __init__(self, be: Any, alg: str, shape: tuple[int, ...],
                 out_shape: tuple[int, ...]) -> None:
        d = be.dnnl
        self.prim = build_resampling(d, alg, shape, out_shape, BLOCKED_TAG)
        self.to_plain = reorder(d, self.prim.mds[ARG_DST],
                                d.memory_desc(out_shape, "f32", tag="abcd"))


def blocked_resize(be: Any, p: Any, kernel: Callable, args: tuple,
                   kwargs: dict) -> Callable | None:
    """``_resize``'s prepared call for an nChw16c ``BlockedArray`` input (4-D, a Resize
    oneDNN computes exactly), or None (the plain builder's turn)."""
    x = args[0] if len(args) == 1 and not kwargs else None
    if type(x) is not BlockedArray or not be.keep_blocked or len(p.shape) != 4 \
            or tuple(x.shape) != tuple(p.shape):
        return None
    alg = native_resampling(p)
    if alg is None:
        return None
    shape, out_shape = tuple(p.shape), tuple(p.output_shape)
    op = be._primitive(("blocked_resampling", alg, shape, out_shape),
                       lambda: BlockedResampling(be, alg, shape, out_shape))
    src_md = op.prim.mds[ARG_SRC]
    if x.md != src_md:  # another blocking (a conv that chose its own): the plain way
        return None
    return blocked_call(be, op.prim, src_md, op.prim.mds[ARG_DST], out_shape, op.to_plain,
                        kernel, p)
