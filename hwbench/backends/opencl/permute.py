"""Transpose as one strided copy over the fewest axes (``strided3`` in
``kernels/opencl/layout.cl``), and Concat as copies.

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
ROW_MIN = 16  # a contiguous last axis at least this long: strided3_rows' row copies
TILE_MIN = 8  # a 2-D transpose (input contiguous along d1) this wide: strided3_tiles


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
    """``_transpose``, ``_transpose3`` and ``_concat`` mixed into ``OpenclBackend``."""

    def _concat(self, p: Any, arrays: list[Any]) -> Any:
        """Each input into its slot: with one outer block (a batch-1 channel concat) one
        buffer copy each (the driver's memcpy), else on CPUs one rectangular copy (a
        memcpy per outer block, one command), on GPUs a ``copy2d`` of its rows. copy2d's
        16 x 16 work-groups over a single row ran 16x the work-items needed: SqueezeNet's
        and DenseNet's concats took 10-25x NumPy on PoCL; at batch 8 (an element per
        work-item) SqueezeNet's 8x(64+64)x55x55 2.1 ms, as rectangles 0.86 (device time,
        busy; NumPy 0.7)."""
        dtype = np.dtype(p.dtype)
        out = self._empty(p.shape, dtype)
        inner = math.prod(p.shape[p.axis + 1:])
        outer = math.prod(p.shape[:p.axis])
        total = p.shape[p.axis] * inner
        offset = 0
        for array, shape in zip(arrays, p.shapes, strict=True):
            cols = shape[p.axis] * inner
            if cols == 0:
                continue
            if outer == 1:
                self.dev.cl.enqueue_copy(self.dev.queue, out.data, self._buf(array),
                                         byte_count=cols * dtype.itemsize,
                                         dst_offset=offset * dtype.itemsize)
            elif self.dev.is_cpu:
                size = dtype.itemsize
                self.dev.cl.enqueue_copy(self.dev.queue, out.data, self._buf(array),
                                         src_origin=(0, 0), dst_origin=(offset * size, 0),
                                         region=(cols * size, outer),
                                         src_pitches=(cols * size,),
                                         dst_pitches=(total * size,))
            else:
                layout_program(self.compiler, dtype).launch(
                    "copy2d", (cols, outer), i32(outer), i32(cols), self._buf(array),
                    i32(cols), i32(0), out.data, i32(total), i32(offset))
            offset += cols
        return out

    def _transpose3(self, in_shape: tuple[int, ...], perm: tuple[int, ...],
                    shape: tuple[int, ...], x: Any) -> Any:
        """The transpose in one ``strided3`` launch, or None past three collapsed axes."""
        extents, strides = collapse(tuple(in_shape), tuple(perm))
        if len(extents) > MAX_RANK:
            return None
        pad = MAX_RANK - len(extents)
        extents, strides = (1,) * pad + extents, (0,) * pad + strides
        dtype = np.dtype(x.dtype)
        out = self._empty(tuple(shape), dtype)
        if out.size == 0:
            return out
        program = layout_program(self.compiler, dtype)
        if strides[2] == 1 and extents[2] >= ROW_MIN:
            rows = extents[0] * extents[1]
            program.launch("strided3_rows", (-(-extents[2] // 16), rows), i32(rows),
                           i32(extents[1]), i32(extents[2]), i32(strides[0]),
                           i32(strides[1]), self._buf(x), out.data)
            return out
        if strides[1] == 1 and min(extents[1], extents[2]) >= TILE_MIN:
            program.launch("strided3_tiles", (-(-extents[2] // 16), -(-extents[1] // 16),
                                              extents[0]), i32(extents[1]), i32(extents[2]),
                           i32(strides[0]), i32(strides[2]), self._buf(x), out.data)
            return out
        program.launch(
            "strided3", (out.size,), i32(out.size), i32(extents[1]), i32(extents[2]),
            i32(strides[0]), i32(strides[1]), i32(strides[2]), self._buf(x), out.data)
        return out

    def _transpose(self, p: Any, x: Any) -> Any:
        """``_transpose3``, else one gather over every axis (strides in a table)."""
        fast = self._transpose3(p.in_shape, p.perm, p.shape, x)
        if fast is not None:
            return fast
        dtype = np.dtype(x.dtype)
        out = self._empty(p.shape, dtype)
        in_strides = [math.prod(p.in_shape[d + 1:]) for d in range(len(p.in_shape))]
        meta = (len(p.shape), *p.shape, *(in_strides[d] for d in p.perm))
        layout_program(self.compiler, dtype).launch(
            "gather", (out.size,), i32(out.size), self._meta_buffer(meta), self._buf(x),
            out.data)
        return out
