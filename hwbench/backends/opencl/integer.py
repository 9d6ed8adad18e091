"""The opencl backend's integer/bool kernels (``kernels/opencl/integer.cl``, built per
element type: int, long, bool as uchar, float for cumsum and arg_reduce), and the
integer/bool cases of compare and where (float32 stays on ``binary.cl``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import i32
from hwbench.kernels import spec

LOCAL = 256
# element type, its unsigned twin (where overflow wraps), whether it is float
CL_TYPES = {np.dtype(np.int32): ("int", "uint", 0), np.dtype(np.int64): ("long", "ulong", 0),
            np.dtype(np.bool_): ("uchar", "uchar", 0), np.dtype(np.float32): ("float", "uint", 1)}
INT_BINARY_CODES = {op: i for i, op in enumerate(spec.INT_BINARY_OPS)}
INT_UNARY_CODES = {op: i for i, op in enumerate(spec.INT_UNARY_OPS)}
COMPARE_CODES = {op: i for i, op in enumerate(spec.COMPARISONS)}
KERNELS = ("int_binary", "int_unary", "compare_int", "where_int", "cumsum", "arg_reduce")


class IntegerKernelsOpencl:
    """``_int_binary``, ``_int_unary``, ``_cumsum``, ``_arg_reduce``, and ``_compare`` /
    ``_where`` on integer and bool operands, of ``OpenclBackend``."""

    def _integer_program(self, dtype: np.dtype) -> Any:
        t, ut, is_float = CL_TYPES[np.dtype(dtype)]
        launches = {k: (LOCAL,) for k in KERNELS
                    if not is_float or k in ("cumsum", "arg_reduce")}
        return self.compiler.program("integer", {"T": t, "UT": ut, "IS_FLOAT": is_float},
                                     launches)

    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> Any:
        out = self._empty(p.shape, p.dtype)
        self._integer_program(p.dtype).launch(
            "int_binary", (p.size,), i32(p.size),
            self._strided_meta(p.shape, p.a_shape, p.b_shape), self._buf(a), self._buf(b),
            out.data, i32(INT_BINARY_CODES[p.op]))
        return out

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> Any:
        out = self._empty(p.shape, p.dtype)
        self._integer_program(p.dtype).launch(
            "int_unary", (p.size,), i32(p.size), self._buf(x), out.data,
            i32(INT_UNARY_CODES[p.op]))
        return out

    def _compare(self, p: spec.CompareProblem, a, b) -> Any:
        if p.dtype == spec.FLOAT32:
            return super()._compare(p, a, b)
        out = self._empty(p.shape, np.bool_)
        self._integer_program(p.dtype).launch(
            "compare_int", (p.size,), i32(p.size),
            self._strided_meta(p.shape, p.a_shape, p.b_shape), self._buf(a), self._buf(b),
            out.data, i32(COMPARE_CODES[p.op]))
        return out

    def _where(self, p: spec.WhereProblem, condition, x, y) -> Any:
        if p.dtype == spec.FLOAT32:
            return super()._where(p, condition, x, y)
        out = self._empty(p.shape, p.dtype)
        self._integer_program(p.dtype).launch(
            "where_int", (p.size,), i32(p.size),
            self._strided_meta(p.shape, p.condition_shape, p.x_shape, p.y_shape),
            self._buf(condition), self._buf(x), self._buf(y), out.data)
        return out

    @staticmethod
    def _lines(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
        inner = math.prod(shape[axis + 1:])
        return math.prod(shape) // shape[axis], shape[axis], inner

    def _cumsum(self, p: spec.CumsumProblem, x) -> Any:
        out = self._empty(p.shape, p.dtype)
        lines, length, inner = self._lines(p.shape, p.axis)
        self._integer_program(p.dtype).launch(
            "cumsum", (lines,), i32(lines), i32(length), i32(inner), self._buf(x), out.data,
            i32(int(p.exclusive)), i32(int(p.reverse)))
        return out

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> Any:
        out = self._empty(p.shape, np.int64)
        lines, length, inner = self._lines(p.in_shape, p.axis)
        self._integer_program(p.dtype).launch(
            "arg_reduce", (lines,), i32(lines), i32(length), i32(inner), self._buf(x),
            out.data, i32(int(p.op == "argmin")), i32(int(p.select_last)))
        return out
