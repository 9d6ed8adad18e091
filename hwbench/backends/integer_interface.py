"""The integer/bool kernels of the interface (``spec.integer``): ``int_binary(a, b, op)``,
``int_unary(x, op)``, ``cumsum(x, axis, exclusive, reverse)`` and
``arg_reduce(x, axis, keepdims, select_last, op)``. A mixin of ``Backend``: the public
methods check their arguments once and call the backend's ``_int_binary``... Integer
values are exact; they are not screened (no NaN or infinity can be in them)."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class IntegerKernels:
    """Public integer kernels, and defaults that say a backend lacks them."""

    def int_binary(self, a: Any, b: Any, op: str) -> Any:
        """``a <op> b`` broadcasting, in a's and b's dtype: int32/int64 add, sub, mul, div
        (truncating), mod (the divisor's sign), fmod (the dividend's), max, min; bool and,
        or, xor. Integer division and mod by 0 give 0."""
        self._check_foreign("int_binary", a=a, b=b)
        problem = spec.check_int_binary(a, b, op)
        self._begin_kernel("int_binary", problem)
        return self._int_binary(problem, a, b)

    def int_unary(self, x: Any, op: str) -> Any:
        """neg or abs of int32/int64 (wrapping), not of bool."""
        self._check_foreign("int_unary", x=x)
        problem = spec.check_int_unary(x, op)
        self._begin_kernel("int_unary", problem)
        return self._int_unary(problem, x)

    def cumsum(self, x: Any, axis: int, exclusive: bool = False, reverse: bool = False) -> Any:
        """ONNX CumSum of float32/int32/int64 ``x`` along ``axis`` (integers exact)."""
        self._check_foreign("cumsum", x=x)
        problem = spec.check_cumsum(x, axis, exclusive, reverse)
        self._begin_kernel("cumsum", problem)
        if problem.dtype.kind == "f":
            self._screen("cumsum", x=x)
        return self._cumsum(problem, x)

    def arg_reduce(self, x: Any, axis: int, keepdims: bool = True, select_last: bool = False,
                   op: str = "argmax") -> Any:
        """ONNX ArgMax/ArgMin (``op``) of float32/int32/int64 ``x``: int64 indices."""
        self._check_foreign("arg_reduce", x=x)
        problem = spec.check_arg_reduce(x, axis, keepdims, select_last, op)
        self._begin_kernel("arg_reduce", problem)
        if problem.dtype.kind == "f":
            self._screen(op, x=x)
        return self._arg_reduce(problem, x)

    # -- what a backend implements -----------------------------------------------------
    def _int_binary(self, p: spec.IntBinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("int_binary")

    def _int_unary(self, p: spec.IntUnaryProblem, x: Any) -> Any:
        raise self._unsupported("int_unary")

    def _cumsum(self, p: spec.CumsumProblem, x: Any) -> Any:
        raise self._unsupported("cumsum")

    def _arg_reduce(self, p: spec.ArgReduceProblem, x: Any) -> Any:
        raise self._unsupported("arg_reduce")
