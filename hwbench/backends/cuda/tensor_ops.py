"""The cuda backend's run-time data movement (Slice, Gather, Expand, Pad, Tile): the
axis-wise take of ``spec.TakeProblem`` with CuPy's indexing, on the GPU (the index tables
are uploaded; the data never leaves the device). Import-safe without CuPy."""

from __future__ import annotations

from typing import Any

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec


class TensorOpsKernels:
    """Mixed into ``CudaBackend`` (``self.cp`` is CuPy, ``self._dev`` a device array)."""

    def _take(self, p: spec.TakeProblem, x: Any) -> Any:
        with runtime.gpu_errors(p.op):
            return p.apply(self.cp.ascontiguousarray(self._dev(x)), self.cp)
