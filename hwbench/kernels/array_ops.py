"""float32 LayerNormalization, ReduceX and batched MatMul written once over any NumPy-like
array module ``xp`` (NumPy on the host backends, CuPy on cuda): the device keeps the data,
the formula lives here."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.kernels.spec.normalization import LayerNormProblem
from hwbench.kernels.spec.reductions import ReduceProblem


def layer_norm(xp: Any, x: Any, scale: Any, bias: Any, p: LayerNormProblem) -> Any:
    """Two passes per row in float32: mean, then the mean of squared deviations."""
    rows = xp.reshape(x, (p.rows, p.cols))
    mean = xp.mean(rows, axis=1, keepdims=True, dtype=xp.float32)
    centred = rows - mean
    var = xp.mean(centred * centred, axis=1, keepdims=True, dtype=xp.float32)
    inv_std = (1.0 / xp.sqrt(var + np.float32(p.epsilon))).astype(xp.float32)
    y = centred * inv_std
    y *= xp.reshape(scale, (1, p.cols))
    if bias is not None:
        y += xp.reshape(bias, (1, p.cols))
    y = xp.reshape(y.astype(xp.float32, copy=False), p.shape)
    if p.stats:
        return y, xp.reshape(mean, p.stats_shape), xp.reshape(inv_std, p.stats_shape)
    return y


def reduce(xp: Any, x: Any, p: ReduceProblem) -> Any:
    """ONNX ReduceX in float32 over ``p.axes`` (a copy where there are none)."""
    if not p.axes:
        return xp.array(x, dtype=xp.float32, copy=True)
    kw = dict(axis=p.axes, keepdims=p.keepdims)
    f32 = xp.float32
    if p.op == "sum":
        out = xp.sum(x, dtype=f32, **kw)
    elif p.op == "mean":
        out = xp.mean(x, dtype=f32, **kw)
    elif p.op == "max":
        out = xp.max(x, **kw)
    elif p.op == "min":
        out = xp.min(x, **kw)
    elif p.op == "prod":
        out = xp.prod(x, dtype=f32, **kw)
    elif p.op == "l1":
        out = xp.sum(xp.abs(x), dtype=f32, **kw)
    elif p.op in ("l2", "sum_square"):
        out = xp.sum(x * x, dtype=f32, **kw)
        if p.op == "l2":
            out = xp.sqrt(out)
    elif p.op == "log_sum":
        out = xp.log(xp.sum(x, dtype=f32, **kw))
    else:  # log_sum_exp: the max taken out first, so exp never overflows
        top = xp.max(x, axis=p.axes, keepdims=True)
        out = xp.log(xp.sum(xp.exp(x - top), axis=p.axes, keepdims=True, dtype=f32)) + top
        if not p.keepdims:
            out = xp.reshape(out, p.output_shape)
    return xp.reshape(xp.asarray(out, dtype=f32), p.output_shape)
