"""The unary family's kernel interface: ``unary(x, op, alpha=, beta=)`` (a mixin of
``Backend``): elementwise float32 math and activations, one kernel for all of
``spec.UNARY_OPS`` (erf, sqrt, clip, hard_sigmoid, ..., floor, ceil)."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class UnaryInterface:
    """``unary`` checks its arguments once for every backend, then calls ``_unary_op``
    (not ``_unary``: the opencl backend's elementwise launcher has that name)."""

    def unary(self, x: Any, op: str, *, alpha: float | None = None,
              beta: float | None = None) -> Any:
        """``op`` elementwise on float32 ``x`` of any shape; ``op`` one of
        ``spec.UNARY_OPS``, whose table says which of ``alpha``/``beta`` the op takes and
        their defaults (None: the default). Clip's are its min and max (±inf when None)."""
        self._check_foreign("unary", x=x)
        problem = spec.check_unary_op(x, op, alpha, beta)
        self._begin_kernel("unary", problem)
        self._screen(f"unary({op!r})", x=x)
        return self._unary_op(problem, x)

    def _unary_op(self, p: spec.UnaryProblem, x: Any) -> Any:
        raise self._unsupported("unary")
