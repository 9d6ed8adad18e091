"""The systolic backend's binary kernels: float ops on its vector unit (one vector op per
output element), computed by the NumPy backend's functional code."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import spec


class BinaryVectorKernels:
    """``_binary_op``, ``_compare`` and ``_where`` of ``SystolicBackend``, counted on the
    vector unit (``_vector``) before the values are computed (``NumpyBackend``)."""

    def _binary_op(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        self._vector(p.op, p.size)
        return super()._binary_op(p, a, b)

    def _compare(self, p: spec.CompareProblem, a, b) -> np.ndarray:
        self._vector(p.op, p.size)
        return super()._compare(p, a, b)

    def _where(self, p: spec.WhereProblem, condition, x, y) -> np.ndarray:
        self._vector("where", p.size)
        return super()._where(p, condition, x, y)
