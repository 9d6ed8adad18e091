"""Gather of run-time indices as a compiled plan replays it on a host-array backend
(issue 16: ``Backend._prepared_step``, ``hwbench.graph.plan``).

The token ids a decoder step or an encoder feeds change every run, so the plan cannot
replay Gather's checked kernel: its problem holds the index tables ``spec.check_gather``
built from the values (~20 µs a call at batch 1 with the op function's lookups). Here
the bounds check is ``np.take``'s own (mode ``raise``: negative indices count from the
end, anything outside [-dim, dim) raises before a byte is read), the same copy the
kernel makes (``TakeProblem.apply``: one take along the axis). An out-of-range index, or
any argument the call was not built for, runs the op function, which raises the
``ArgumentError`` naming ``indices`` as the normal path does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_ndarray = np.ndarray


def prepared_gather(backend: Any, step: Any, args: list[Any], out: Any) -> Callable | None:
    """``gather(x, indices)`` for the Gather ``step`` traced on ``args`` (giving ``out``):
    plain NumPy data of the traced shape and dtype and signed (or narrow unsigned)
    integer indices; None where the traced call was anything else."""
    if len(args) != 2:
        return None
    x, idx = args
    if type(x) is not _ndarray or type(idx) is not _ndarray or type(out) is not _ndarray \
            or x.dtype.hasobject or x.ndim == 0:
        return None
    kind, size = idx.dtype.kind, idx.dtype.itemsize
    if not (kind == "i" or kind == "u" and size < 8):  # what np.take reads as intp
        return None
    axis = int(step.node.attrs.get("axis", 0)) % x.ndim
    got = np.take(x, idx, axis=axis)
    if got.dtype != out.dtype or got.shape != out.shape or not np.array_equal(got, out):
        return None
    shape, dtype, idx_dtype, idx_shape = x.shape, x.dtype, idx.dtype, idx.shape
    fn, take = step.fn, np.take

    def gather(x: Any, idx: Any) -> Any:
        if type(x) is not _ndarray or type(idx) is not _ndarray or x.shape != shape \
                or x.dtype != dtype or idx.dtype != idx_dtype or idx.shape != idx_shape:
            return fn(backend, [x, idx], step)
        try:
            return take(x, idx, axis=axis)
        except IndexError:  # out of range: the op function names the argument
            return fn(backend, [x, idx], step)
    return gather
