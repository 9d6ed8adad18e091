"""The cuda backend's normalization and reductions family on CuPy (imported only through
the backend's ``self.cp``, so this module loads without cupy): LayerNormalization and
ReduceX with the shared float32 formulas of ``kernels.array_ops`` (CuPy's reductions),
N-D batched MatMul with ``cupy.matmul`` (cuBLAS's batched GEMM, batch dims broadcast)."""

from __future__ import annotations

from typing import Any

from hwbench.backends.cuda import runtime
from hwbench.kernels import array_ops, spec


class ReductionKernels:
    """``_layer_norm``, ``_reduce`` and ``_matmul`` mixed into ``CudaBackend``."""

    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias) -> Any:
        with runtime.gpu_errors("layer_norm"):
            return array_ops.layer_norm(self.cp, self._dev(x), self._dev(scale),
                                        None if bias is None else self._dev(bias), p)

    def _reduce(self, p: spec.ReduceProblem, x) -> Any:
        with runtime.gpu_errors("reduce"):
            return array_ops.reduce(self.cp, self._dev(x), p)

    def _matmul(self, p: spec.MatmulProblem, a, b) -> Any:
        with runtime.gpu_errors("matmul"):
            return self.cp.matmul(self._dev(a), self._dev(b))
