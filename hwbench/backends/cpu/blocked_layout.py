"""The layout a pooling or a channel concat of ``BlockedArray``s runs in: their own.

A session keeps activations in the layout their producer wrote: nChw16c after most
convolutions, NHWC where oneDNN chose it for a grouped conv ("any": ShuffleNet's
1×1 group convs, 34 or 68 channels a group). Pooling and concat were built for nChw16c
only, so ShuffleNet's AveragePools and the Concats of its downsampling units reordered
their NHWC inputs to NCHW through the kernels' whole path and handed the next layers
plain arrays (one reorder back each). Both now run in the NHWC layout too, with no
reorder before or after (oneDNN's jit pooling and its ``simple`` concat read it as is).
"""

from __future__ import annotations

from typing import Any

from hwbench.backends.cpu.layouts import BLOCKED_TAG, BlockedArray
from hwbench.backends.cpu.onednn import ARG_MULTIPLE_SRC, ARG_SRC

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


def concat_in_layout(be: Any, p: Any, parts: list[BlockedArray]) -> Any:
    """The cached ``BlockedConcat`` of ``p`` whose sources are ``parts``' layouts (all
    one tag, the output in it too), or None."""
    from hwbench.backends.cpu.primitives import BlockedConcat

    for tag in TAGS:
        concat = be._primitive(("concat", p, tag),
                               lambda tag=tag: BlockedConcat(be.dnnl, p, tag))
        if all(x.md == concat.prim.mds[ARG_MULTIPLE_SRC + i] for i, x in enumerate(parts)):
            return concat
    return None
