"""A convolution's weights packed in the layout its primitive chose, once per frozen array.

The layout depends on more than the problem: on the activation layout (nChw16c's
``jit_1x1`` wants OIhw16i16o, NHWC's ``brgconv`` a brgemm blocking) and, for NHWC's
brgemm kernels, on the thread count the primitive was created for (``CpuBackend._primitive``
builds one per count). So one weight array may need several packed copies: they are
kept per problem as (weights descriptor, buffer) pairs and looked up by descriptor
equality. Keyed by the problem alone, a plan that ran EfficientNet-B0's SE convs on one
thread in one place and two in another handed a 2-thread primitive the 1-thread copy
(``conv_layout="nhwc"``: a 221184-byte buffer for a 294912-byte descriptor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_WEIGHTS


def packed_conv_weights(be: Any, conv: Any, w: np.ndarray) -> np.ndarray:
    """``w`` (OIHW, or G×O×I×H×W) in ``conv``'s weights layout, reordered once per
    (frozen ``w``, layout); a non-frozen ``w`` is reordered per call."""
    if conv.wei_reorder is None:
        return np.ascontiguousarray(w)
    md = conv.prim.mds[ARG_WEIGHTS]
    kept: list = be._once_per_array(w, ("conv_weights", conv.problem), lambda _: [])
    for known, packed in kept:
        if known is md or known == md:
            return packed
    packed = aligned_empty(md.size, np.uint8)
    conv.wei_reorder.execute({ARG_SRC: np.ascontiguousarray(w), ARG_DST: packed})
    kept.append((md, packed))
    return packed
