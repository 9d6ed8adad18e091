"""ONNX ReduceX over a set of axes (keepdims, noop_with_empty_axes), and N-D batched
MatMul with NumPy's broadcasting of batch dimensions and promotion of 1-D operands."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    array_shape,
    check_axis,
    check_dtype,
    check_flag,
    check_nonempty,
)

# kernel op name -> ONNX op type; FLOPs per input element in REDUCE_FLOPS
REDUCE_OPS = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax",
              "min": "ReduceMin", "prod": "ReduceProd", "l1": "ReduceL1", "l2": "ReduceL2",
              "sum_square": "ReduceSumSquare", "log_sum": "ReduceLogSum",
              "log_sum_exp": "ReduceLogSumExp"}
REDUCE_FLOPS = {"sum_square": 2, "l1": 2, "l2": 2, "log_sum_exp": 4}


@dataclass(frozen=True)
class ReduceProblem:
    """``op`` over ``axes`` (sorted, non-negative; empty: a copy, ONNX's
    noop_with_empty_axes) of a ``shape`` array."""

    shape: tuple[int, ...]
    op: str
    axes: tuple[int, ...]
    keepdims: bool

    @property
    def kept_shape(self) -> tuple[int, ...]:
        """The output with every reduced axis kept as 1."""
        return tuple(1 if i in self.axes else d for i, d in enumerate(self.shape))

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.keepdims:
            return self.kept_shape
        return tuple(d for i, d in enumerate(self.shape) if i not in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def reduced(self) -> int:
        """Values combined into each output value."""
        return math.prod(self.shape[a] for a in self.axes)

    @property
    def flops(self) -> int:
        return REDUCE_FLOPS.get(self.op, 1) * self.size

    @property
    def output_bytes(self) -> int:
        return 4 * math.prod(self.output_shape)

    @property
    def bytes(self) -> int:
        return 4 * self.size + self.output_bytes


def check_reduce(x: Any, op: str, axes: Any = None, keepdims: Any = True,
                 noop_with_empty_axes: Any = False) -> ReduceProblem:
    """``axes`` None or empty: every axis, unless ``noop_with_empty_axes``."""
    name = "reduce"
    if op not in REDUCE_OPS:
        raise ArgumentError(f"{name}: argument 'op' must be one of {', '.join(REDUCE_OPS)}, "
                            f"got {op!r}")
    shape = array_shape(x, "x", name)
    check_nonempty(shape, "x", name)
    check_dtype(x, (FLOAT32,), "x", name)
    keep = check_flag(keepdims, "keepdims", name)
    noop = check_flag(noop_with_empty_axes, "noop_with_empty_axes", name)
    if axes is None:
        axes = ()
    if isinstance(axes, np.ndarray):
        axes = axes.reshape(-1).tolist()
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, (tuple, list)):
        raise ArgumentError(f"{name}: argument 'axes' must be a sequence of ints, got {axes!r}")
    picked = tuple(check_axis(a, len(shape), name, "axes") for a in axes)
    if len(set(picked)) != len(picked):
        raise ArgumentError(f"{name}: argument 'axes' names an axis twice: {tuple(axes)}")
    if not picked and not noop:
        picked = tuple(range(len(shape)))
    return ReduceProblem(shape, op, tuple(sorted(picked)), keep)


@dataclass(frozen=True)
class MatmulProblem:
    """``a @ b`` as NumPy's matmul: (batch..., m, k) @ (batch..., k, n), batch dimensions
    broadcast; a 1-D ``a`` is (1, k) and a 1-D ``b`` (k, 1), that 1 dropped again."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    batch: tuple[int, ...]  # the broadcast batch dimensions
    m: int
    n: int
    k: int

    @property
    def a_batch(self) -> tuple[int, ...]:
        """a's batch dimensions, left-padded with 1 to ``batch``'s rank."""
        own = self.a_shape[:-2] if len(self.a_shape) > 1 else ()
        return (1,) * (len(self.batch) - len(own)) + own

    @property
    def b_batch(self) -> tuple[int, ...]:
        own = self.b_shape[:-2] if len(self.b_shape) > 1 else ()
        return (1,) * (len(self.batch) - len(own)) + own

    @property
    def batches(self) -> int:
        return math.prod(self.batch)

    @property
    def output_shape(self) -> tuple[int, ...]:
        rows = (self.m,) if len(self.a_shape) > 1 else ()
        cols = (self.n,) if len(self.b_shape) > 1 else ()
        return self.batch + rows + cols

    @property
    def flops(self) -> int:
        return 2 * self.batches * self.m * self.n * self.k

    @property
    def output_bytes(self) -> int:
        return 4 * self.batches * self.m * self.n

    @property
    def bytes(self) -> int:
        return 4 * (math.prod(self.a_shape) + math.prod(self.b_shape)) + self.output_bytes


def check_matmul(a: Any, b: Any) -> MatmulProblem:
    op = "matmul"
    sa, sb = array_shape(a, "a", op), array_shape(b, "b", op)
    for name, s, x in (("a", sa, a), ("b", sb, b)):
        if not s:
            raise ArgumentError(f"{op}: argument '{name}' must have rank >= 1, got shape {s}")
        check_nonempty(s, name, op)
        check_dtype(x, (FLOAT32,), name, op)
    m, k = (1, sa[0]) if len(sa) == 1 else sa[-2:]
    kb, n = (sb[0], 1) if len(sb) == 1 else sb[-2:]
    if k != kb:
        raise ArgumentError(f"{op}: arguments 'a' {sa} and 'b' {sb}: inner dimensions "
                            f"differ ({k} and {kb})")
    ba, bb = sa[:-2], sb[:-2]
    rank = max(len(ba), len(bb))
    pa, pb = (1,) * (rank - len(ba)) + ba, (1,) * (rank - len(bb)) + bb
    for i, (da, db) in enumerate(zip(pa, pb, strict=True)):
        if da != db and 1 not in (da, db):
            raise ArgumentError(f"{op}: the batch dimensions of 'a' {sa} and 'b' {sb} do not "
                                f"broadcast: dimension {i} is {da} and {db}")
    batch = tuple(max(da, db) for da, db in zip(pa, pb, strict=True))
    return MatmulProblem(sa, sb, batch, m, n, k)
