"""How a NumPy matrix is handed to a row-major BLAS call (MKL's cblas, oneDNN's sgemm).

Shared by every BLAS-style binding so that the transpose folding and leading-dimension
checks, whose mistakes read out of bounds, exist once.
"""

from __future__ import annotations

import numpy as np


def row_major(x: np.ndarray, dtype: np.dtype, trans: bool) -> tuple[np.ndarray, bool]:
    """``(stored, flag)`` with ``stored`` C-contiguous, aligned, native ``dtype``, such that
    ``op(x)`` is ``stored.T if flag else stored``.

    An F-contiguous ``x`` is the C-contiguous ``x.T`` transposed: fold that into the flag
    rather than copying. Anything else (strided views, byte-swapped data) is copied.
    """
    if x.dtype == dtype and x.flags.aligned:
        if x.flags.c_contiguous:
            return x, trans
        if x.flags.f_contiguous:
            return x.T, not trans
    return np.ascontiguousarray(x, dtype=dtype), trans


def op_shape(stored: np.ndarray, trans: bool) -> tuple[int, int]:
    rows, cols = stored.shape
    return (cols, rows) if trans else (rows, cols)


def leading_dim(x: np.ndarray) -> int:
    """Row-major leading dimension of a 2-D array whose rows are contiguous.

    Checked here rather than trusted to the library: a legal but wrong ``ld`` reads out of
    bounds silently. Strides of length-1 axes are meaningless in NumPy and are ignored.
    """
    rows, cols = x.shape
    item = x.itemsize
    if cols > 1 and x.strides[1] != item:
        raise AssertionError(f"operand rows are not contiguous (strides {x.strides})")
    if rows <= 1:
        return max(1, cols)
    stride = x.strides[0]
    if stride % item or stride // item < max(1, cols):
        raise AssertionError(f"bad row stride {stride} for {cols} columns of {item} bytes")
    return stride // item
