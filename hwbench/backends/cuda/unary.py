"""The cuda backend's unary family: one CuPy ElementwiseKernel per op of
``spec.UNARY_OPS``, built on first use (import-safe without CuPy: nothing here touches
it until a kernel runs). Status: written against CuPy's documented ElementwiseKernel
API, like ``kernels.py``; not yet compiled or run on a GPU here."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec

# op -> CUDA C body in x (float32), alpha, beta, writing y; the same math as unary.cl
BODIES: dict[str, str] = {
    "erf": "y = erff(x)",
    "sqrt": "y = sqrtf(x)",
    "clip": "y = fminf(fmaxf(x, alpha), beta)",
    "hard_sigmoid": "y = fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f)",
    "hard_swish": "y = x * fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f)",
    "tanh": "y = tanhf(x)",
    "gelu": "y = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f))",
    "gelu_tanh": "y = 0.5f * x * (1.0f + tanhf(0.79788456080286536f * "
                 "(x + 0.044715f * x * x * x)))",
    "leaky_relu": "y = x >= 0.0f ? x : alpha * x",
    "exp": "y = expf(x)",
    "log": "y = logf(x)",
    "abs": "y = fabsf(x)",
    "neg": "y = -x",
    "reciprocal": "y = 1.0f / x",
    "softplus": "y = fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)))",
    "elu": "y = x > 0.0f ? x : alpha * expm1f(x)",
    "sin": "y = sinf(x)",
    "cos": "y = cosf(x)",
    "floor": "y = floorf(x)",
    "ceil": "y = ceilf(x)",
}


class UnaryKernels:
    """``_unary_op`` mixed into ``CudaBackend`` (its CuPy module ``cp``, its kernel cache
    ``kernels`` and ``_dev``)."""

    def _unary_op(self, p: spec.UnaryProblem, x) -> Any:
        def build() -> Any:
            return self.kernels.cp.ElementwiseKernel(
                "float32 x, float32 alpha, float32 beta", "float32 y", BODIES[p.op],
                f"hwb_unary_{p.op}")

        with runtime.gpu_errors("unary"):
            kernel = self.kernels._get(("unary", p.op), build)
            return kernel(self._dev(x), np.float32(p.alpha), np.float32(p.beta))
