"""Host buffers for the cpu backend: 64-byte aligned, and large ones reused.

A fresh multi-megabyte ``np.empty`` is page-faulted in on every run, so outputs and
scratch buffers come from a ``BufferPool`` that hands a buffer out again once nothing
else holds it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from hwbench.backends.memory import aligned_bytes

ALIGNMENT = 64  # bytes: one cache line, one AVX-512 register
SMALL_BYTES = 1 << 16


def aligned_empty(shape: tuple[int, ...] | int, dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary.

    Small arrays come straight from ``np.empty``: alignment only pays for large operands
    and the extra slicing would double a small call's overhead.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SMALL_BYTES:
        return np.empty(shape, dtype)
    return aligned_bytes(nbytes, ALIGNMENT).view(dtype).reshape(shape)


class BufferPool:
    """Large output and scratch buffers, reused once nothing outside the pool holds them.

    A fresh multi-megabyte ``np.empty`` comes from ``mmap`` and is page-faulted in on
    first touch, every run: measured on ResNet-50 at batch 8, ~3000 faults and 15 % of
    the run. A buffer is free again when its memory's owner is referenced only by the
    pool's own aligned view (``sys.getrefcount``: every NumPy view of it, however
    derived, holds the owner as its ``base``). The pool keeps at most the largest set
    of buffers of each size that were alive at one time.
    """

    def __init__(self, limit_bytes: int = 1 << 30) -> None:
        self._buckets: dict[int, list[np.ndarray]] = {}  # by size, least recently used first
        self.limit_bytes = limit_bytes

    def empty(self, shape: tuple[int, ...] | int, dtype: Any = np.float32) -> np.ndarray:
        """Like ``aligned_empty``; small arrays are not pooled (malloc reuses them)."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < SMALL_BYTES:
            return np.empty(shape, dtype)
        bucket = self._buckets.pop(nbytes, [])
        self._buckets[nbytes] = bucket  # now the most recently used size
        # Most recently handed out first: a short-lived buffer is the likeliest to still
        # be in cache (and writing to cached lines saves their reads from memory).
        for i in range(len(bucket) - 1, -1, -1):
            buffer = bucket[i]
            if sys.getrefcount(buffer.base) == 2:  # buffer.base's own, and the argument
                bucket.append(bucket.pop(i))
                return buffer.view(dtype).reshape(shape)
        buffer = aligned_bytes(nbytes, ALIGNMENT)
        bucket.append(buffer)
        self._trim()
        return buffer.view(dtype).reshape(shape)

    def _trim(self) -> None:
        """Past ``limit_bytes``, let go of free buffers, least recently used sizes first,
        so that a run over many shapes (a kernel sweep) does not keep them all."""
        excess = self.nbytes - self.limit_bytes
        for size in list(self._buckets):
            if excess <= 0:
                break
            kept = []
            for buffer in self._buckets[size]:
                if excess > 0 and sys.getrefcount(buffer.base) == 2:  # free: see empty()
                    excess -= size
                else:
                    kept.append(buffer)
            if kept:
                self._buckets[size] = kept
            else:
                del self._buckets[size]

    def holds(self, buffer: np.ndarray) -> bool:
        """Whether ``buffer`` views the memory of one of this pool's buffers."""
        owner = buffer.base
        return owner is not None and any(
            b.base is owner for b in self._buckets.get(buffer.nbytes, ()))

    @property
    def nbytes(self) -> int:
        """Bytes the pool holds (free or in use)."""
        return sum(size * len(bucket) for size, bucket in self._buckets.items())
