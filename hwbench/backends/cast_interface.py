"""The kernel interface's run-time Cast: ``cast(x, to)`` between float32, float64,
float16, int64, int32, int8, uint8 and bool, with ONNX's rules (``spec.check_cast``)."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec


class CastKernels:
    """Mixed into ``Backend``: ``cast`` and its default (``UnsupportedError``) hook."""

    def cast(self, x: Any, to: Any) -> Any:
        """``x`` converted to dtype ``to`` (ONNX Cast): float -> integer truncates toward
        zero, anything -> bool is nonzero, bool -> a number is 0 or 1. A float input cast
        to an integer is screened for NaN and infinities (they have no integer value)."""
        self._check_foreign("cast", x=x)
        problem = spec.check_cast(x, to)
        self._begin_kernel("cast", problem)
        if problem.float_to_integer:
            self._screen("cast", x=x)
        return self._cast(problem, x)

    def _cast(self, p: spec.CastProblem, x: Any) -> Any:
        raise self._unsupported("cast")
