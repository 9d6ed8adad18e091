"""Reference math of the integer/bool kernels (``spec.integer``), exact in the inputs'
types (NumPy's integer ufuncs wrap on overflow, as the device kernels do), shared by the
numpy, cpu and systolic backends and the tests. Float32 cumsum accumulates in float32
here (the tests compare it with a float64 sum)."""

from __future__ import annotations

import numpy as np


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Truncating integer division; x / 0 is 0, INT_MIN / -1 wraps to INT_MIN."""
    dtype = np.result_type(a, b)
    a, b = np.broadcast_arrays(a.astype(dtype), b.astype(dtype))
    zero = b == 0
    safe = np.where(zero | (b == -1), 1, b)
    q = np.floor_divide(a, safe)
    q = q + ((q < 0) & (q * safe != a)).astype(dtype)  # floor -> toward zero
    q = np.where(b == -1, np.negative(a), q)  # wraps for INT_MIN, as C does
    return np.where(zero, dtype.type(0), q).astype(dtype)


def _remainder(fn):
    def run(a, b):
        dtype = np.result_type(a, b)
        a, b = np.broadcast_arrays(a.astype(dtype), b.astype(dtype))
        safe = np.where((b == 0) | (b == -1), 1, b)  # x mod -1 is 0 either way
        return np.where((b == 0) | (b == -1), dtype.type(0), fn(a, safe)).astype(dtype)
    return run


INT_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _div,
    "mod": _remainder(np.mod), "fmod": _remainder(np.fmod), "max": np.maximum,
    "min": np.minimum, "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
}
INT_UNARY = {"neg": np.negative, "abs": np.abs, "not": np.logical_not}
COMPARE = {"equal": np.equal, "less": np.less, "greater": np.greater,
           "less_equal": np.less_equal, "greater_equal": np.greater_equal}


def int_binary(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    with np.errstate(over="ignore"):
        return np.asarray(INT_BINARY[op](a, b)).astype(a.dtype, copy=False)


def int_unary(x: np.ndarray, op: str) -> np.ndarray:
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return np.asarray(INT_UNARY[op](x)).astype(x.dtype, copy=False)


def compare(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    return COMPARE[op](np.asarray(a), np.asarray(b))


def where(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.where(np.asarray(condition).astype(bool), x, y).astype(x.dtype, copy=False)


def cumsum(x: np.ndarray, axis: int, exclusive: bool = False, reverse: bool = False,
           accumulate: np.dtype | None = None) -> np.ndarray:
    """ONNX CumSum, accumulating in ``accumulate`` (default: x's dtype)."""
    x = np.asarray(x)
    acc = np.dtype(accumulate or x.dtype)
    v = np.flip(x, axis) if reverse else x
    if exclusive:  # the sum before each element: shift by one along the axis
        body = [slice(None)] * x.ndim
        body[axis] = slice(0, -1)
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 0)
        v = np.pad(v[tuple(body)], pad)
    with np.errstate(over="ignore"):
        out = np.cumsum(v, axis=axis, dtype=acc)
    out = np.flip(out, axis) if reverse else out
    return np.ascontiguousarray(out)


def arg_reduce(x: np.ndarray, axis: int, keepdims: bool = True, select_last: bool = False,
               op: str = "argmax") -> np.ndarray:
    """ONNX ArgMax/ArgMin: int64 indices of the first (or last) extreme along ``axis``."""
    x = np.asarray(x)
    fn = np.argmax if op == "argmax" else np.argmin
    if select_last:
        idx = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
    else:
        idx = fn(x, axis=axis)
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if keepdims else idx
