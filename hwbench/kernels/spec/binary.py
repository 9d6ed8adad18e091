"""Broadcasting binary arithmetic (Sub, Div, Pow, Max, Min, Mod with fmod), comparisons
(Equal, Less, Greater, LessOrEqual, GreaterOrEqual) and Where (select), ONNX semantics
with NumPy multidirectional broadcasting, float32 values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    array_shape,
    broadcast,
    check_dtype,
    check_nonempty,
    dtype_of,
)
from hwbench.kernels.spec.model_ops import BinaryProblem, check_binary

# binary(a, b, op): op -> what it computes (float32; fmod: C's fmod, ONNX Mod with fmod=1)
BINARY_OPS = ("sub", "div", "pow", "max", "min", "fmod")
# compare(a, b, op): op -> a bool result
COMPARISONS = ("equal", "less", "greater", "less_equal", "greater_equal")
CONDITION_DTYPES = (np.dtype(np.bool_), np.dtype(np.uint8))
BOOL = np.dtype(np.bool_)
# compare's operands and where's branches: float32, or exact int32/int64/bool
COMPARE_DTYPES = (FLOAT32, np.dtype(np.int32), np.dtype(np.int64), BOOL)


def broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-contiguous ``shape`` read at ``out_shape``'s indices (0 along
    broadcast axes): what index-computing device kernels take."""
    padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    strides, step = [], 1
    for extent in reversed(padded):
        strides.append(0 if extent == 1 else step)
        step *= extent
    return tuple(reversed(strides))


def check_same_dtype(a: Any, b: Any, allowed: tuple[np.dtype, ...], op: str,
                     names: tuple[str, str] = ("a", "b")) -> np.dtype:
    """The dtype ``a`` and ``b`` share, one of ``allowed`` (a DTypeError naming them)."""
    da = check_dtype(a, allowed, names[0], op)
    db = check_dtype(b, allowed, names[1], op)
    if da != db:
        raise DTypeError(f"{op}: arguments '{names[0]}' and '{names[1]}' must have the same "
                         f"dtype, got {da} and {db}")
    return da



def _check_op(op: Any, allowed: tuple[str, ...], kernel: str) -> str:
    if not isinstance(op, str) or op not in allowed:
        raise ArgumentError(f"{kernel}: argument 'op' must be one of {', '.join(allowed)}, "
                            f"got {op!r}")
    return op


def check_binary_op(a: Any, b: Any, op: Any) -> BinaryProblem:
    """``binary(a, b, op)``: float32 a, b broadcasting; ``op`` one of ``BINARY_OPS``."""
    op = _check_op(op, BINARY_OPS, "binary")
    return check_binary(a, b, op)


@dataclass(frozen=True)
class CompareProblem:
    """A broadcasting comparison of float32 a and b: one bool per output element."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    shape: tuple[int, ...]
    op: str
    dtype: np.dtype = FLOAT32  # the operands' (float32, int32, int64 or bool)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return self.size

    @property
    def output_bytes(self) -> int:
        return self.size

    @property
    def bytes(self) -> int:
        return (self.dtype.itemsize * (math.prod(self.a_shape) + math.prod(self.b_shape))
                + self.size)


def compare_dtype(a: Any, b: Any, op: str) -> np.dtype:
    """``compare``'s operands: one dtype of float32, int32, int64 or bool (bool: equal
    only, as ONNX's comparisons other than Equal take numbers)."""
    dtype = check_same_dtype(a, b, COMPARE_DTYPES, f"compare ({op})")
    if dtype == BOOL and op != "equal":
        raise DTypeError(f"compare ({op}): arguments 'a' and 'b' are bool; only equal "
                         f"compares bools")
    return dtype


def where_dtype(x: Any, y: Any) -> np.dtype:
    return check_same_dtype(x, y, COMPARE_DTYPES, "where", ("x", "y"))



def check_compare(a: Any, b: Any, op: Any) -> CompareProblem:
    """``compare(a, b, op)``: a and b of one dtype (float32, int32, int64; bool for equal),
    broadcasting; integers compare exactly."""
    op = _check_op(op, COMPARISONS, "compare")
    sa, sb = array_shape(a, "a", "compare"), array_shape(b, "b", "compare")
    check_nonempty(sa, "a", "compare")
    check_nonempty(sb, "b", "compare")
    dtype = compare_dtype(a, b, op)
    shape = broadcast((sa, sb), ("a", "b"), "compare")
    return CompareProblem(sa, sb, shape, op, dtype)


@dataclass(frozen=True)
class WhereProblem:
    """ONNX Where: ``condition ? x : y`` with three-way broadcasting; a select, no FLOPs."""

    condition_shape: tuple[int, ...]
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype = FLOAT32  # x's and y's (float32, int32, int64 or bool)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        return self.dtype.itemsize * self.size

    @property
    def bytes(self) -> int:
        n = self.dtype.itemsize
        return (math.prod(self.condition_shape) + n * math.prod(self.x_shape)
                + n * math.prod(self.y_shape) + n * self.size)


def check_where(condition: Any, x: Any, y: Any) -> WhereProblem:
    """``where(condition, x, y)``: a bool (or uint8, nonzero = true) condition, x and y of one
    dtype (float32, int32, int64 or bool), all three broadcasting together."""
    sc = array_shape(condition, "condition", "where")
    sx, sy = array_shape(x, "x", "where"), array_shape(y, "y", "where")
    for shape, name in ((sc, "condition"), (sx, "x"), (sy, "y")):
        check_nonempty(shape, name, "where")
    dtype = dtype_of(condition)
    if dtype not in CONDITION_DTYPES:
        raise DTypeError(f"where: argument 'condition' must have dtype bool or uint8, got "
                         f"{dtype}")
    value_dtype = where_dtype(x, y)
    shape = broadcast((sc, sx, sy), ("condition", "x", "y"), "where")
    return WhereProblem(sc, sx, sy, shape, value_dtype)
