"""LayerNormalization (ONNX opset 17): normalize over the trailing axes ``axis..rank-1``,
then scale and shift, in float32 with float32 statistics (``stash_type`` 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hwbench.errors import ArgumentError
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    array_shape,
    check_axis,
    check_dtype,
    check_flag,
    check_nonempty,
    check_real,
)


@dataclass(frozen=True)
class LayerNormProblem:
    """``x`` viewed as (rows, cols): rows = prod(shape[:axis]), cols = prod(shape[axis:]);
    each row normalized, times ``scale`` (cols values) plus ``bias`` (cols values, or
    none). ``stats``: the kernel also returns each row's mean and 1/sqrt(var + epsilon),
    shaped ``stats_shape`` (ONNX's Mean and InvStdDev)."""

    shape: tuple[int, ...]
    axis: int
    epsilon: float
    has_bias: bool
    stats: bool = False

    @property
    def rows(self) -> int:
        return math.prod(self.shape[:self.axis])

    @property
    def cols(self) -> int:
        return math.prod(self.shape[self.axis:])

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stats_shape(self) -> tuple[int, ...]:
        return self.shape[:self.axis] + (1,) * (len(self.shape) - self.axis)

    @property
    def flops(self) -> int:
        # mean (1), centre and square (2), variance sum (1), normalize (2), scale/shift (2)
        return 8 * self.size

    @property
    def output_bytes(self) -> int:
        return 4 * self.size + (8 * self.rows if self.stats else 0)

    @property
    def bytes(self) -> int:
        params = (2 if self.has_bias else 1) * self.cols
        return 4 * (2 * self.size + params) + (8 * self.rows if self.stats else 0)


def check_layer_norm(x: Any, scale: Any, bias: Any = None, axis: Any = -1,
                     epsilon: Any = 1e-5, stats: Any = False) -> LayerNormProblem:
    op = "layer_norm"
    shape = array_shape(x, "x", op)
    if not shape:
        raise ArgumentError(f"{op}: argument 'x' must have rank >= 1, got shape {shape}")
    check_nonempty(shape, "x", op)
    check_dtype(x, (FLOAT32,), "x", op)
    ax = check_axis(axis, len(shape), op)
    eps = check_real(epsilon, "epsilon", op)
    if eps < 0:
        raise ArgumentError(f"{op}: argument 'epsilon' must be >= 0, got {epsilon!r}")
    normalized = shape[ax:]
    for name, value in (("scale", scale), ("bias", bias)):
        if value is None:
            if name == "scale":
                raise ArgumentError(f"{op}: argument 'scale' is required")
            continue
        s = array_shape(value, name, op)
        check_dtype(value, (FLOAT32,), name, op)
        trimmed = s[len(s) - len(normalized):] if len(s) >= len(normalized) else s
        if (len(s) < len(normalized) or trimmed != normalized
                or any(d != 1 for d in s[:len(s) - len(normalized)])):
            raise ArgumentError(
                f"{op}: argument '{name}' must have the normalized shape {normalized} "
                f"(x's dimensions from axis {ax}), got {s}")
    return LayerNormProblem(shape, ax, eps, bias is not None, check_flag(stats, "stats", op))
