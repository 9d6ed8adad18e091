"""ONNX Cast between hwbench's run-time types, written once for every array module
(NumPy here and in the host backends, CuPy in the cuda backend): float -> integer
truncates toward zero, anything -> bool is "nonzero", bool -> a number is 0 or 1."""

from __future__ import annotations

from typing import Any

import numpy as np


def cast(x: Any, to: Any, xp: Any = np) -> Any:
    """``x`` converted to dtype ``to`` with ONNX Cast's rules (a new C-contiguous array)."""
    to = np.dtype(to)
    x = xp.asarray(x)
    if to == np.bool_:
        out = x != 0
    elif x.dtype.kind == "f" and to.kind in "iu":
        with np.errstate(invalid="ignore"):  # (NaN/inf are screened before the kernels)
            out = xp.asarray(xp.trunc(x)).astype(to)
    else:
        out = x.astype(to)
    # (ascontiguousarray would make a 0-d result 1-d; a ufunc of 0-d input is a scalar)
    return xp.asarray(out, order="C")
