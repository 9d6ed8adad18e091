"""Cheap device arrays for the per-launch path.

``pyopencl.array.empty`` spends ~20 us of Python per array on shape and stride checks
(measured on PoCL, busy 2-core VM), which a replayed plan pays for every node's output:
on ShuffleNet that was most of the host time per run. A shape and dtype seen once are
settled here (strides, size, bytes) and later arrays of them are built through
pyopencl's own constructor with those checks skipped (its ``_fast`` path, the one
``Array`` uses for its own views) and its flags (contiguity, which ``_buf`` reads: ~6 us
an array to work out) shared: ~1.5 us. The buffer still comes from the backend's
memory pool, so a freed output's buffer is reused by the next array of its size.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

MAX_SHAPES = 4096  # settled (shape, dtype) entries kept; past it the table starts afresh


class ArrayMaker:
    """``empty(shape, dtype)`` on one queue and memory pool, checks settled per shape."""

    def __init__(self, cl: Any, queue: Any, pool: Any) -> None:
        self._cl, self._queue, self._pool = cl, queue, pool
        self._context = queue.context
        self._settled: dict[tuple[Any, Any], tuple[Any, ...]] = {}
        self._views: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        params = inspect.signature(cl.array.Array.__init__).parameters
        # Without the private fast path (another pyopencl), every array takes the checks.
        self._fast = all(p in params for p in ("_fast", "_flags", "_context", "_queue", "_size"))

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A C-contiguous device array of ``shape`` and ``dtype``, its contents undefined."""
        key = (shape, dtype)
        try:
            made = self._settled.get(key)
        except TypeError:  # an unhashable shape (a list): the checked path
            made, key = None, None
        if made is None:
            array = self._cl.array.empty(self._queue, tuple(shape), np.dtype(dtype),
                                         allocator=self._pool)
            if key is not None and self._fast and array.nbytes > 0:
                if len(self._settled) >= MAX_SHAPES:
                    self._settled.clear()
                self._settled[key] = (array.shape, array.dtype, array.strides, array.size,
                                      array.nbytes, array.flags)
            return array
        shape, dtype, strides, size, nbytes, flags = made
        return self._cl.array.Array(None, shape, dtype, allocator=self._pool, strides=strides,
                                    data=self._pool(nbytes), offset=0, _flags=flags, _fast=True,
                                    _context=self._context, _queue=self._queue, _size=size)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        """``x.reshape(shape)`` (pyopencl's: a view on the same buffer, sharing its events),
        settled per (old shape, old strides, new shape, dtype): pyopencl's own reshape
        works the strides out and checks the shape on every call (~20 us)."""
        key = (x.shape, x.strides, shape, x.dtype)
        try:
            made = self._views.get(key) if self._fast else None
        except TypeError:  # an unhashable shape: pyopencl's path
            return x.reshape(shape)
        if made is None:
            view = x.reshape(shape)
            if self._fast and view.size:  # (an empty one is a fresh array, not a view)
                if len(self._views) >= MAX_SHAPES:
                    self._views.clear()
                self._views[key] = (view.shape, view.strides, view.size, view.flags)
            return view
        shape, strides, size, flags = made
        return self._cl.array.Array(None, shape, x.dtype, allocator=x.allocator,
                                    strides=strides, data=x.base_data, offset=x.offset,
                                    events=x.events, _flags=flags, _fast=True,
                                    _context=x.context, _queue=x.queue, _size=size)
