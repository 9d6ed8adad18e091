"""Integer and bool tensors at run time: ``int_binary`` (Add, Sub, Mul, Div, Mod, Max, Min
on int32/int64; And, Or, Xor on bool), ``int_unary`` (Neg, Abs on int32/int64; Not on
bool), ``cumsum`` (float32, int32, int64) and ``arg_reduce`` (ArgMax/ArgMin to int64).

Integer results are exact in the input's type and wrap on overflow (two's complement,
as NumPy and onnxruntime do); nothing goes through float. ONNX leaves integer division
and Mod by zero undefined: every backend gives 0 there (and INT_MIN / -1 wraps to
INT_MIN), so the backends agree with each other and with the reference.
"""

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
    check_nonempty,
    dtype_of,
)
from hwbench.kernels.spec.binary import BOOL, COMPARE_DTYPES, broadcast, check_same_dtype

INT32, INT64 = np.dtype(np.int32), np.dtype(np.int64)
INT_DTYPES = (INT32, INT64)
# int_binary(a, b, op): integer arithmetic (div truncates toward zero, mod takes the
# divisor's sign as ONNX Mod with fmod=0, fmod the dividend's as C's %)
INT_ARITHMETIC = ("add", "sub", "mul", "div", "mod", "fmod", "max", "min")
LOGICAL_OPS = ("and", "or", "xor")  # on bool
INT_BINARY_OPS = INT_ARITHMETIC + LOGICAL_OPS
INT_UNARY_OPS = ("neg", "abs", "not")  # not: on bool
ARG_OPS = ("argmax", "argmin")
SCAN_DTYPES = (FLOAT32, INT32, INT64)  # cumsum, arg_reduce


def _check_op(op: Any, allowed: tuple[str, ...], kernel: str) -> str:
    if not isinstance(op, str) or op not in allowed:
        raise ArgumentError(f"{kernel}: argument 'op' must be one of {', '.join(allowed)}, "
                            f"got {op!r}")
    return op


class _OneOpPerElement:
    """Cost of an op that does one operation per result element and writes the inputs'
    dtype (``shape`` and ``dtype`` are the subclass's fields)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return self.size

    @property
    def output_bytes(self) -> int:
        return self.dtype.itemsize * self.size


@dataclass(frozen=True)
class IntBinaryProblem(_OneOpPerElement):
    """A broadcasting integer (or bool) binary op; the result has the inputs' dtype."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    shape: tuple[int, ...]
    op: str
    dtype: np.dtype

    @property
    def bytes(self) -> int:
        return self.dtype.itemsize * (math.prod(self.a_shape) + math.prod(self.b_shape)
                                      + self.size)


def check_int_binary(a: Any, b: Any, op: Any) -> IntBinaryProblem:
    """``int_binary(a, b, op)``: int32/int64 a and b of one dtype for arithmetic, bool
    for and/or/xor, broadcasting."""
    op = _check_op(op, INT_BINARY_OPS, "int_binary")
    sa, sb = array_shape(a, "a", "int_binary"), array_shape(b, "b", "int_binary")
    check_nonempty(sa, "a", "int_binary")
    check_nonempty(sb, "b", "int_binary")
    allowed = (BOOL,) if op in LOGICAL_OPS else INT_DTYPES
    dtype = check_same_dtype(a, b, allowed, f"int_binary ({op})")
    shape = broadcast((sa, sb), ("a", "b"), "int_binary")
    return IntBinaryProblem(sa, sb, shape, op, dtype)


@dataclass(frozen=True)
class IntUnaryProblem(_OneOpPerElement):
    shape: tuple[int, ...]
    op: str
    dtype: np.dtype

    @property
    def bytes(self) -> int:
        return 2 * self.output_bytes


def check_int_unary(x: Any, op: Any) -> IntUnaryProblem:
    """``int_unary(x, op)``: neg and abs of int32/int64 (wrapping: abs(INT_MIN) is
    INT_MIN), not of bool."""
    op = _check_op(op, INT_UNARY_OPS, "int_unary")
    shape = array_shape(x, "x", "int_unary")
    check_nonempty(shape, "x", "int_unary")
    dtype = check_dtype(x, (BOOL,) if op == "not" else INT_DTYPES, "x", f"int_unary ({op})")
    return IntUnaryProblem(shape, op, dtype)


def _flag(value: Any, name: str, op: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer))
                                              and value in (0, 1)):
        return bool(value)
    raise ArgumentError(f"{op}: argument '{name}' must be a bool (or 0/1), got {value!r}")


@dataclass(frozen=True)
class CumsumProblem(_OneOpPerElement):
    """ONNX CumSum along ``axis``: inclusive or ``exclusive``, forward or ``reverse``."""

    shape: tuple[int, ...]
    axis: int
    exclusive: bool
    reverse: bool
    dtype: np.dtype

    @property
    def bytes(self) -> int:
        return 2 * self.output_bytes


def check_cumsum(x: Any, axis: Any, exclusive: Any = False, reverse: Any = False
                 ) -> CumsumProblem:
    shape = array_shape(x, "x", "cumsum")
    if not shape:
        raise ArgumentError("cumsum: argument 'x' must have rank >= 1, got a scalar")
    check_nonempty(shape, "x", "cumsum")
    dtype = check_dtype(x, SCAN_DTYPES, "x", "cumsum")
    ax = check_axis(axis, len(shape), "cumsum")
    return CumsumProblem(shape, ax, _flag(exclusive, "exclusive", "cumsum"),
                         _flag(reverse, "reverse", "cumsum"), dtype)


@dataclass(frozen=True)
class ArgReduceProblem:
    """ONNX ArgMax/ArgMin along ``axis``: int64 indices (the first extreme, or the last
    with ``select_last``); NaN counts as the extreme, as NumPy's argmax does."""

    in_shape: tuple[int, ...]
    axis: int
    keepdims: bool
    select_last: bool
    op: str
    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        s = list(self.in_shape)
        if self.keepdims:
            s[self.axis] = 1
        else:
            del s[self.axis]
        return tuple(s)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return math.prod(self.in_shape)

    @property
    def output_bytes(self) -> int:
        return 8 * self.size

    @property
    def bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.in_shape) + self.output_bytes


def check_arg_reduce(x: Any, axis: Any, keepdims: Any = True, select_last: Any = False,
                     op: Any = "argmax") -> ArgReduceProblem:
    op = _check_op(op, ARG_OPS, "arg_reduce")
    shape = array_shape(x, "x", op)
    if not shape:
        raise ArgumentError(f"{op}: argument 'x' must have rank >= 1, got a scalar")
    check_nonempty(shape, "x", op)
    dtype = check_dtype(x, SCAN_DTYPES, "x", op)
    ax = check_axis(axis, len(shape), op)
    return ArgReduceProblem(shape, ax, _flag(keepdims, "keepdims", op),
                            _flag(select_last, "select_last", op), op, dtype)


__all__ = ["ARG_OPS", "ArgReduceProblem", "COMPARE_DTYPES", "CumsumProblem",
           "INT_ARITHMETIC", "INT_BINARY_OPS", "INT_DTYPES", "INT_UNARY_OPS",
           "IntBinaryProblem", "IntUnaryProblem", "LOGICAL_OPS", "SCAN_DTYPES",
           "check_arg_reduce", "check_cumsum", "check_int_binary", "check_int_unary",
           "check_same_dtype", "dtype_of"]
