"""Transpose as one strided copy over the fewest axes (``strided3`` in
``kernels/opencl/layout.cl``).

Axes of extent 1 are dropped and input axes that stay neighbours, in order, in the
output are merged: NCHW -> NHWC is a 2-D transpose of (C, H*W) per image, (N, C, H*W)
-> (N, H*W, C). Up to three axes remain for most model transposes; the sizes and
strides go by value (no index table, no loop over the rank). More axes: None (the
caller's general gather).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import i32, layout_program

MAX_RANK = 3


@functools.lru_cache(maxsize=512)
def collapse(in_shape: tuple[int, ...], perm: tuple[int, ...]
             ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(output extents, the input's element stride along each) of the transpose of a
    C-contiguous ``in_shape`` by ``perm`` over the fewest axes."""
    kept = [d for d in range(len(in_shape)) if in_shape[d] != 1]
    order = [d for d in perm if in_shape[d] != 1]  # output order, input axis labels
    groups: list[list[int]] = []
    for d in order:
        if groups and kept.index(d) == kept.index(groups[-1][-1]) + 1:
            groups[-1].append(d)
        else:
            groups.append([d])
    by_input = sorted(groups, key=lambda g: g[0])
    extent = {g[0]: math.prod(in_shape[d] for d in g) for g in groups}
    stride, step = {}, 1
    for g in reversed(by_input):
        stride[g[0]] = step
        step *= extent[g[0]]
    return (tuple(extent[g[0]] for g in groups), tuple(stride[g[0]] for g in groups))


class PermuteKernels:
    """``_transpose3`` mixed into ``OpenclBackend``."""

    def _transpose3(self, in_shape: tuple[int, ...], perm: tuple[int, ...],
                    shape: tuple[int, ...], x: Any) -> Any:
        """The transpose in one ``strided3`` launch, or None past three collapsed axes."""
        extents, strides = collapse(tuple(in_shape), tuple(perm))
        if len(extents) > MAX_RANK:
            return None
        pad = MAX_RANK - len(extents)
        extents, strides = (1,) * pad + extents, (0,) * pad + strides
        dtype = np.dtype(x.dtype)
        out = self.empty(tuple(shape), dtype)
        if out.size == 0:
            return out
        layout_program(self.compiler, dtype).launch(
            "strided3", (out.size,), i32(out.size), i32(extents[1]), i32(extents[2]),
            i32(strides[0]), i32(strides[1]), i32(strides[2]), self._buf(x), out.data)
        return out

    def _transpose(self, p: Any, x: Any) -> Any:
        """``_transpose3``, else one gather over every axis (strides in a table)."""
        fast = self._transpose3(p.in_shape, p.perm, p.shape, x)
        if fast is not None:
            return fast
        dtype = np.dtype(x.dtype)
        out = self.empty(p.shape, dtype)
        in_strides = [math.prod(p.in_shape[d + 1:]) for d in range(len(p.in_shape))]
        meta = (len(p.shape), *p.shape, *(in_strides[d] for d in p.perm))
        layout_program(self.compiler, dtype).launch(
            "gather", (out.size,), i32(out.size), self._meta_buffer(meta), self._buf(x),
            out.data)
        return out
