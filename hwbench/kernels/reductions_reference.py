"""Float64 references for ONNX ReduceX and N-D batched MatMul."""

from __future__ import annotations

import numpy as np


def reduce(x, op: str, axes=None, keepdims: bool = True,
           noop_with_empty_axes: bool = False) -> np.ndarray:
    """ONNX ReduceX in float64; ``axes`` None or empty: all (or none with noop)."""
    x64 = np.asarray(x, dtype=np.float64)
    if not axes:
        if noop_with_empty_axes:
            return x64.copy()
        axes = tuple(range(x64.ndim))
    axes = tuple(int(a) % x64.ndim for a in axes)
    kw = dict(axis=axes, keepdims=bool(keepdims))
    if op == "sum":
        return np.sum(x64, **kw)
    if op == "mean":
        return np.mean(x64, **kw)
    if op == "max":
        return np.max(x64, **kw)
    if op == "min":
        return np.min(x64, **kw)
    if op == "prod":
        return np.prod(x64, **kw)
    if op == "l1":
        return np.sum(np.abs(x64), **kw)
    if op == "l2":
        return np.sqrt(np.sum(x64 * x64, **kw))
    if op == "sum_square":
        return np.sum(x64 * x64, **kw)
    if op == "log_sum":
        return np.log(np.sum(x64, **kw))
    if op == "log_sum_exp":
        top = np.max(x64, axis=axes, keepdims=True)
        out = np.log(np.sum(np.exp(x64 - top), axis=axes, keepdims=True)) + top
        return out if keepdims else np.squeeze(out, axis=axes)
    raise ValueError(f"unknown reduction {op!r}")


def matmul(a, b) -> np.ndarray:
    return np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))
