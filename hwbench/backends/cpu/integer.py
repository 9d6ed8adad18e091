"""The cpu backend's integer/bool kernels and its integer compare/where: oneDNN has no
int64 data type (and its s32 binary computes through float), so integer math runs as
NumPy's exact integer ufuncs (``integer_reference``) over the same host memory: the cpu
backend's device is the host. Float32 cumsum and argmax run the same way."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import integer_reference, spec


class IntegerKernelsCpu:
    """``_int_binary``, ``_int_unary``, ``_cumsum``, ``_arg_reduce`` of ``CpuBackend``, and
    the integer/bool cases of ``_compare`` and ``_where`` (float32 goes on to oneDNN)."""

    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> np.ndarray:
        return integer_reference.int_binary(a, b, p.op)

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> np.ndarray:
        return integer_reference.int_unary(x, p.op)

    def _cumsum(self, p: spec.CumsumProblem, x) -> np.ndarray:
        return integer_reference.cumsum(self._plain(x), p.axis, p.exclusive, p.reverse)

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> np.ndarray:
        return integer_reference.arg_reduce(self._plain(x), p.axis, p.keepdims,
                                            p.select_last, p.op)

    def _compare(self, p: spec.CompareProblem, a, b) -> np.ndarray:
        if p.dtype != spec.FLOAT32:
            return integer_reference.compare(a, b, p.op)
        return super()._compare(p, a, b)

    def _where(self, p: spec.WhereProblem, condition, x, y) -> np.ndarray:
        if p.dtype != spec.FLOAT32:
            return integer_reference.where(condition, x, y)
        return super()._where(p, condition, x, y)
