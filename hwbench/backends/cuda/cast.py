"""The cuda backend's run-time Cast: ``cast_reference`` with CuPy on the device array
(CuPy's ``astype`` and ``trunc`` are elementwise GPU kernels). Import-safe without cupy."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import cast_reference, spec


class CastKernelsCuda:
    """``_cast`` of ``CudaBackend``."""

    def _cast(self, p: spec.CastProblem, x: Any) -> Any:
        return cast_reference.cast(x, p.target, self.cp)
