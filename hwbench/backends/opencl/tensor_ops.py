"""The opencl backend's run-time data movement (Slice, Gather, Expand, Pad, Tile): one
``take`` kernel (``kernels/opencl/tensor_ops.cl``) reading the per-axis index tables
``spec`` built on the host, uploaded as one small int32 buffer."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import CL_TYPES, LOCAL, i32
from hwbench.backends.opencl.permute import ROW_MIN, PermuteKernels
from hwbench.kernels import spec

CACHED_TABLES = 4096  # index tables up to this many entries stay on the device, by value


def row_runs(p: spec.TakeProblem) -> bool:
    """Whether ``take_rows`` serves ``p``: its last table one contiguous run at least
    ``ROW_MIN`` long and no table entry a fill (-1)."""
    last = p.tables[-1] if p.tables else None
    if last is None or len(last) < ROW_MIN or last[0] < 0:
        return False
    if int(last[-1]) - int(last[0]) != len(last) - 1 or not np.all(np.diff(last) == 1):
        return False
    return not any(bool((t < 0).any()) for t in p.tables[:-1])


class TensorOpsKernels(PermuteKernels):
    """Mixed into ``OpenclBackend`` (whose compiler, buffers and metadata cache it uses);
    Transpose's collapsed form comes from ``permute``."""

    def _take(self, p: spec.TakeProblem, x: Any) -> Any:
        dtype = np.dtype(x.dtype)
        i32(p.size)  # the kernel's int32 indices: larger sizes are refused, not wrapped
        i32(int(np.prod(p.in_shape, dtype=np.int64)))
        rank = len(p.take_shape)
        offsets = np.cumsum([0] + [len(t) for t in p.tables])[:-1]
        meta = (rank, *p.take_shape, *p.in_strides(), *(int(o) for o in offsets))
        flat = np.concatenate(p.tables)
        if p.op != "gather" and flat.size <= CACHED_TABLES:  # the same every call: cached
            tables = self._meta_buffer(tuple(flat.tolist()))
        else:  # token ids change every call
            tables = self._upload(flat.astype(np.int32)).data  # (a fresh array: no wait)
        out = self._empty(p.shape, dtype)
        if out.size == 0:
            return out
        program = self.compiler.program("tensor_ops", {"T": CL_TYPES[dtype]},
                                        {"take": (LOCAL,), "take_rows": (1, 16)})
        if row_runs(p):
            length = p.take_shape[-1]
            rows = p.size // length
            program.launch("take_rows", (-(-length // 16), rows), i32(rows), i32(length),
                           self._meta_buffer(meta), tables, self._buf(x), out.data)
            return out
        program.launch("take", (p.size,), i32(p.size), self._meta_buffer(meta), tables,
                       self._buf(x), out.data,
                       (np.uint8 if dtype == np.bool_ else dtype.type)(p.fill))  # bool: uchar
        return out
