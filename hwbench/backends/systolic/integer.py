"""The systolic backend's integer/bool kernels: one vector-unit op per output element (an
input element for cumsum and arg_reduce), values from the NumPy backend's functional code
(``integer_reference``: exact integer math)."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import spec


class IntegerVectorKernels:
    """``_int_binary``, ``_int_unary``, ``_cumsum`` and ``_arg_reduce`` of
    ``SystolicBackend``, counted on the vector unit before the values are computed."""

    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> np.ndarray:
        self._vector(f"int_{p.op}", p.size)
        return super()._int_binary(p, a, b)

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> np.ndarray:
        self._vector(f"int_{p.op}", p.size)
        return super()._int_unary(p, x)

    def _cumsum(self, p: spec.CumsumProblem, x) -> np.ndarray:
        self._vector("cumsum", p.size)
        return super()._cumsum(p, x)

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> np.ndarray:
        self._vector(p.op, p.flops)
        return super()._arg_reduce(p, x)
