"""The kernel interface's reductions family: ``reduce`` (ONNX ReduceSum, ReduceMean,
ReduceMax, ...) and N-D batched ``matmul`` (ONNX MatMul).

Mixed into ``Backend``: each public method checks its arguments once for every backend,
then calls the backend's ``_reduce`` / ``_matmul``; a backend without one says so.
"""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class ReductionKernels:
    """``reduce`` and ``matmul`` and their default (``UnsupportedError``) implementations."""

    def reduce(self, x: Any, op: str, axes: Any = None, keepdims: bool = True,
               noop_with_empty_axes: bool = False) -> Any:
        """ONNX Reduce``op`` over ``axes`` (None or empty: every axis, or none when
        ``noop_with_empty_axes``); ``op`` is one of ``spec.REDUCE_OPS`` (sum, mean, max,
        min, prod, l1, l2, sum_square, log_sum, log_sum_exp). float32 in and out."""
        self._check_foreign("reduce", x=x)
        problem = spec.check_reduce(x, op, axes, keepdims, noop_with_empty_axes)
        self._begin_kernel("reduce", problem)
        self._screen("reduce", x=x)
        return self._reduce(problem, x)

    def matmul(self, a: Any, b: Any) -> Any:
        """float32 ``a @ b`` with NumPy's (and ONNX MatMul's) rules: batch dimensions
        broadcast, a 1-D operand promoted to a matrix and that dimension dropped again."""
        self._check_foreign("matmul", a=a, b=b)
        problem = spec.check_matmul(a, b)
        self._begin_kernel("matmul", problem)
        self._screen("matmul", a=a, b=b)
        return self._matmul(problem, a, b)

    def _reduce(self, p: spec.ReduceProblem, x: Any) -> Any:
        raise self._unsupported("reduce")

    def _matmul(self, p: spec.MatmulProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("matmul")
