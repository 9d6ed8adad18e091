"""The opencl backend's run-time data movement (Slice, Gather, Expand, Pad, Tile): one
``take`` kernel (``kernels/opencl/tensor_ops.cl``) reading the per-axis index tables
``spec`` built on the host, uploaded as one small int32 buffer."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import CL_TYPES, LOCAL, i32
from hwbench.backends.opencl.permute import ROW_MIN, PermuteKernels
from hwbench.kernels import spec

LONG_ROWS = 512  # rows at least this long: take_rows8, work-groups along the row
LONG_LOCAL = 16
CACHED_TABLES = 4096  # index tables up to this many entries stay on the device, by value


def _run(table: np.ndarray) -> bool:
    """Whether ``table`` is one ascending run of consecutive indices (no fill)."""
    return (len(table) > 0 and table[0] >= 0 and int(table[-1]) - int(table[0]) == len(table) - 1
            and bool(np.all(np.diff(table) == 1)))


def collapsed(p: spec.TakeProblem) -> tuple[tuple[int, ...], list[np.ndarray], list[int]]:
    """``p``'s (take shape, tables, input strides) with trailing axes merged while the last
    takes its whole axis in order and the one before it is a run: a channel Gather of
    (8, 112, 56, 56) becomes rows of 3136 elements, not of 56 (``take_rows``: 3.6 -> 1 ms
    on PoCL, busy). The merged table is the same elements in the same order."""
    shape, tables = list(p.take_shape), list(p.tables)
    extents, strides = list(p.in_shape), list(p.in_strides())
    while len(tables) > 1:
        last, prev = tables[-1], tables[-2]
        if len(last) != extents[-1] or int(last[0]) != 0 or not _run(last) or not _run(prev):
            break
        inner = extents[-1]
        tables[-2:] = [np.arange(int(prev[0]) * inner, (int(prev[0]) + len(prev)) * inner)]
        shape[-2:] = [len(prev) * inner]
        extents[-2:] = [extents[-2] * inner]
        strides[-2:] = [strides[-1]]
    return tuple(shape), tables, strides


def row_runs(tables: list[np.ndarray]) -> bool:
    """Whether ``take_rows`` serves a take of these tables: its last table one contiguous
    run at least ``ROW_MIN`` long and no table entry a fill (-1)."""
    last = tables[-1] if tables else None
    if last is None or len(last) < ROW_MIN or not _run(last):
        return False
    return not any(bool((t < 0).any()) for t in tables[:-1])


def take_layout(p: spec.TakeProblem) -> tuple[tuple[int, ...], bool, tuple[int, ...],
                                              np.ndarray]:
    """(take shape, whether ``take_rows`` serves it, the kernel's metadata, the index
    tables as one array) of ``p``: what ``_take`` launches, a pure function of ``p`` (the
    recorded Gather of ``host_feeds`` recomputes it from each run's ids)."""
    take_shape, tables_list, strides = collapsed(p)
    rows = row_runs(tables_list)
    if rows:  # take_rows reads only the last table's start
        tables_list[-1] = tables_list[-1][:1]
    offsets = np.cumsum([0] + [len(t) for t in tables_list])[:-1]
    meta = (len(take_shape), *take_shape, *strides, *(int(o) for o in offsets))
    return take_shape, rows, meta, np.concatenate(tables_list)


class TensorOpsKernels(PermuteKernels):
    """Mixed into ``OpenclBackend`` (whose compiler, buffers and metadata cache it uses);
    Transpose's collapsed form comes from ``permute``."""

    def _gathered_before(self, p: spec.TakeProblem) -> bool:
        """Whether this Gather problem ran before: a replayed plan calls ``_gather`` again
        with the same problem (constant indices: ShuffleNet's channel Gathers), whose
        tables are then cached like Slice's; new indices (token ids) are a new problem,
        uploaded. Each such upload was a command of a recorded run that made the host
        wait for the kernels before it (PoCL ``pthread``: 16 of ShuffleNet's 136)."""
        seen = self.__dict__.get("_gathers")
        if seen is None:
            seen = self.__dict__["_gathers"] = weakref.WeakSet()
        if p in seen:
            return True
        seen.add(p)
        return False

    def _take(self, p: spec.TakeProblem, x: Any) -> Any:
        dtype = np.dtype(x.dtype)
        i32(p.size)  # the kernel's int32 indices: larger sizes are refused, not wrapped
        i32(int(np.prod(p.in_shape, dtype=np.int64)))
        take_shape, rows, meta, flat = take_layout(p)
        if flat.size <= CACHED_TABLES and (p.op != "gather" or self._gathered_before(p)):
            tables = self._meta_buffer(tuple(flat.tolist()))  # the same every call: cached
        else:  # token ids change every call
            tables = self._upload(flat.astype(np.int32)).data  # (a fresh array: no wait)
        out = self._empty(p.shape, dtype)
        if out.size == 0:
            return out
        program = self.compiler.program("tensor_ops", {"T": CL_TYPES[dtype]},
                                        {"take": (LOCAL,), "take_rows": (1, 16),
                                         "take_rows8": (LONG_LOCAL, 1)})
        if rows:
            length = take_shape[-1]
            rows = p.size // length
            if length >= LONG_ROWS:
                program.launch("take_rows8", (-(-length // 8), rows), i32(rows), i32(length),
                               self._meta_buffer(meta), tables, self._buf(x), out.data)
                return out
            program.launch("take_rows", (-(-length // 16), rows), i32(rows), i32(length),
                           self._meta_buffer(meta), tables, self._buf(x), out.data)
            return out
        program.launch("take", (p.size,), i32(p.size), self._meta_buffer(meta), tables,
                       self._buf(x), out.data,
                       (np.uint8 if dtype == np.bool_ else dtype.type)(p.fill))  # bool: uchar
        return out
