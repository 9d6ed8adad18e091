"""Float64 references for LayerNormalization (and its Mean / InvStdDev outputs)."""

from __future__ import annotations

import numpy as np


def layer_norm(x, scale, bias=None, axis: int = -1, epsilon: float = 1e-5,
               stats: bool = False):
    """ONNX LayerNormalization in float64: over axes ``axis..rank-1``."""
    x64 = np.asarray(x, dtype=np.float64)
    axes = tuple(range(axis % x64.ndim, x64.ndim))
    mean = x64.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x64 - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
    y = (x64 - mean) * inv_std * np.asarray(scale, np.float64)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return (y, mean, inv_std) if stats else y
