"""The cuda backend's binary kernels, as CuPy ufuncs on the GPU (broadcasting natively):
sub, div, pow, max, min, fmod, the comparisons (a bool result) and Where. Importable
without CuPy: ``self.cp`` is the module the backend loaded."""

from __future__ import annotations

from typing import Any

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec

CUPY_BINARY = {"sub": "subtract", "div": "divide", "pow": "power", "max": "maximum",
               "min": "minimum", "fmod": "fmod"}
CUPY_COMPARE = {"equal": "equal", "less": "less", "greater": "greater",
                "less_equal": "less_equal", "greater_equal": "greater_equal"}


class BinaryKernelsCuda:
    """``_binary_op``, ``_compare`` and ``_where`` of ``CudaBackend``."""

    def _binary_op(self, p: spec.BinaryProblem, a, b) -> Any:
        with runtime.gpu_errors("binary"):
            return getattr(self.cp, CUPY_BINARY[p.op])(self._dev(a), self._dev(b))

    def _compare(self, p: spec.CompareProblem, a, b) -> Any:
        with runtime.gpu_errors("compare"):
            return getattr(self.cp, CUPY_COMPARE[p.op])(self._dev(a), self._dev(b))

    def _where(self, p: spec.WhereProblem, condition, x, y) -> Any:
        with runtime.gpu_errors("where"):
            cp = self.cp
            cond = self._dev(condition).astype(cp.bool_, copy=False)
            return cp.ascontiguousarray(cp.where(cond, self._dev(x), self._dev(y)))
