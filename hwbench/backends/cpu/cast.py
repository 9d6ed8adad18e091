"""The cpu backend's run-time Cast. oneDNN's reorder converts between f32/f16/s32/s8/u8
but rounds float -> integer to nearest (ONNX truncates) and has no int64 or bool, so Cast
runs ``cast_reference`` with NumPy on the plain host array (the cpu backend's arrays are
host memory: nothing moves between devices), as the backend's transpose does."""

from __future__ import annotations

import numpy as np

from hwbench.kernels import cast_reference, spec


class CastKernelsCpu:
    """``_cast`` of ``CpuBackend`` (a oneDNN blocked array is reordered to plain first)."""

    def _cast(self, p: spec.CastProblem, x) -> np.ndarray:
        return cast_reference.cast(np.asarray(self._plain(x)), p.target)
