"""The systolic backend's run-time Cast: one vector-unit op per element, values from the
NumPy backend's functional code (``cast_reference``)."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import spec


class CastVectorKernels:
    """``_cast`` of ``SystolicBackend``, counted on the vector unit first."""

    def _cast(self, p: spec.CastProblem, x) -> np.ndarray:
        self._vector("cast", p.size)
        return super()._cast(p, x)
