"""LRN (``_lrn``, mixed into ``OpenclBackend``): on CPU devices a channel plane per
work-item in float8 blocks (``kernels/opencl/lrn_rows.cl``); GPUs keep
``normalization.cl``'s eight pixels per work-item."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.compiler import kernel_source
from hwbench.backends.opencl.gemm import i32, vec8_defines

# normalization.cl's work-groups (its softmax, the backend's other kernel there, too)
NORMALIZATION = {"softmax": (16, 4), "lrn": (16, 4, 1)}


class LrnOpencl:
    """``_lrn`` for ``OpenclBackend``."""

    def _lrn(self, p: Any, x: Any) -> Any:
        out = self._empty(p.shape)
        if self.dev.is_cpu:
            lrn_rows(self, p, x, out)
            return out
        n, c, h, w = p.shape
        self._program("normalization", NORMALIZATION).launch(
            "lrn", (-(-h * w // 8), c, n), self._buf(x), i32(c), i32(h * w), i32(n),
            i32(p.size), np.float32(p.alpha / p.size), np.float32(p.beta),
            np.float32(p.bias), out.data)
        return out


def lrn_rows(backend: Any, p: Any, x: Any, out: Any) -> None:
    """out = ONNX LRN of device array ``x`` (``p``: its checked ``spec.LrnProblem``)."""
    n, c, h, w = p.shape
    program = backend.compiler.program(
        "lrn_rows", vec8_defines(backend.dev), {"lrn_rows": (1, 16, 1)},
        source=kernel_source("vec8") + "\n" + kernel_source("lrn_rows"))
    program.launch("lrn_rows", (1, c, n), backend._buf(x), i32(c), i32(h * w), i32(n),
                   i32(p.size), np.float32(p.alpha / p.size), np.float32(p.beta),
                   np.float32(p.bias), out.data)
