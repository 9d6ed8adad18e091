"""The binary-arithmetic kernels of the interface: ``binary(a, b, op)`` (sub, div, pow,
max, min, fmod), ``compare(a, b, op)`` and ``where(condition, x, y)``, all with NumPy
multidirectional broadcasting. A mixin of ``Backend``: the public methods check their
arguments once (``spec``) and call the backend's ``_binary_op``/``_compare``/``_where``.
"""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class BinaryKernels:
    """Public binary kernels, and defaults that say a backend lacks them."""

    def binary(self, a: Any, b: Any, op: str) -> Any:
        """float32 ``a <op> b`` broadcasting, ``op`` one of ``spec.BINARY_OPS``: sub, div,
        pow, max, min, fmod (C's fmod: the result has a's sign, ONNX Mod with fmod=1)."""
        self._check_foreign("binary", a=a, b=b)
        problem = spec.check_binary_op(a, b, op)
        self._begin_kernel("binary", problem)
        self._screen(f"binary ({op})", a=a, b=b)
        return self._binary_op(problem, a, b)

    def compare(self, a: Any, b: Any, op: str) -> Any:
        """The bool array of ``a <op> b`` (float32, broadcasting), ``op`` one of
        ``spec.COMPARISONS``: equal, less, greater, less_equal, greater_equal. NaN compares
        false, as in NumPy and ONNX."""
        self._check_foreign("compare", a=a, b=b)
        problem = spec.check_compare(a, b, op)
        self._begin_kernel("compare", problem)
        return self._compare(problem, a, b)

    def where(self, condition: Any, x: Any, y: Any) -> Any:
        """ONNX Where: ``condition ? x : y`` elementwise with three-way broadcasting;
        ``condition`` bool (or uint8, nonzero = true), x and y float32. A select, exact for
        every value: x and y are not screened for infinities, which masks use (-inf)."""
        self._check_foreign("where", condition=condition, x=x, y=y)
        problem = spec.check_where(condition, x, y)
        self._begin_kernel("where", problem)
        return self._where(problem, condition, x, y)

    # -- what a backend implements -----------------------------------------------------
    def _binary_op(self, p: spec.BinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("binary")

    def _compare(self, p: spec.CompareProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("compare")

    def _where(self, p: spec.WhereProblem, condition: Any, x: Any, y: Any) -> Any:
        raise self._unsupported("where")
