"""The cpu backend's run-time data movement (Slice, Gather, Expand, Pad, Tile): the
axis-wise take of ``spec.TakeProblem`` on the plain host array (a oneDNN blocked one is
reordered first), as the backend's transpose does: these ops only copy."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import spec


class TensorOpsKernels:
    """Mixed into ``CpuBackend`` (whose ``_plain`` converts its blocked layouts)."""

    def _take(self, p: spec.TakeProblem, x) -> np.ndarray:
        return p.apply(np.asarray(self._plain(x)))
