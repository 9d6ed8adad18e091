"""Float64 references for the binary arithmetic, comparison and Where kernels."""

from __future__ import annotations

import numpy as np

_BINARY = {"sub": np.subtract, "div": np.divide, "pow": np.power, "max": np.maximum,
           "min": np.minimum, "fmod": np.fmod}
_COMPARE = {"equal": np.equal, "less": np.less, "greater": np.greater,
            "less_equal": np.less_equal, "greater_equal": np.greater_equal}


def binary(a, b, op: str) -> np.ndarray:
    """``a <op> b`` in float64 with NumPy broadcasting (fmod: C's fmod, sign of a)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _BINARY[op](np.asarray(a, np.float64), np.asarray(b, np.float64))


def compare(a, b, op: str) -> np.ndarray:
    """The bool result of comparing a and b (exact: float32 values compare exactly)."""
    return _COMPARE[op](np.asarray(a, np.float64), np.asarray(b, np.float64))


def where(condition, x, y) -> np.ndarray:
    """``condition ? x : y`` (nonzero condition is true), float64."""
    return np.where(np.asarray(condition).astype(bool), np.asarray(x, np.float64),
                    np.asarray(y, np.float64))
