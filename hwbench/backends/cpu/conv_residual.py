"""Which convolution reads a ``BlockedArray`` shortcut in place (issue 16).

A residual join fused into a conv is either a sum post-op (the shortcut copied or
reordered into the dst first) or a binary-add post-op that reads the shortcut where it
lies; the second needs the post-op's descriptor fixed when the primitive is created,
so it must equal the dst layout. For an nChw16c conv that layout is known beforehand; a
grouped conv (ShuffleNet's 1×1 convs, 34 or 68 channels a group) lets oneDNN choose
("any"), and the shortcut is the previous unit's output of the same choice: the conv of
the sum post-op is built first, and where the shortcut has exactly its dst layout, a
conv writing that layout with the binary post-op takes over (and the compiled plan's
prepared conv, which binds only the in-place form, replays it).
"""

from __future__ import annotations

from typing import Any

from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST
from hwbench.backends.cpu.primitives import Conv


def residual_in_place(be: Any, plain: Conv, residual: BlockedArray,
                      activation: str | None) -> Conv | None:
    """The cached conv of ``plain``'s problem that adds ``residual`` as a binary post-op
    reading it in place, or None where ``residual``'s layout is not ``plain``'s dst's
    (``plain``: the same conv with the shortcut as a sum post-op)."""
    if residual.md != plain.prim.mds[ARG_DST]:
        return None
    p, layout = plain.problem, be.conv_layout
    conv = be._primitive(("conv", p, layout, "blocked", activation),
                         lambda: Conv(be.dnnl, p, layout, "blocked", activation,
                                      dst_like=plain))
    return conv if residual.md == conv.residual_md else None
