"""The opencl backend's unary family: ``kernels/opencl/unary.cl``, one kernel per op of
``spec.UNARY_OPS`` (``unary_<op>``), all built in one program on first use."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import i32
from hwbench.kernels import spec

LOCAL_1D = 256  # work-items per group, as the backend's other elementwise kernels


class UnaryKernels:
    """``_unary_op`` mixed into ``OpenclBackend`` (its compiler, buffers and grid)."""

    def _unary_program(self) -> Any:
        return self.compiler.program("unary", {},
                                     {f"unary_{op}": (LOCAL_1D,) for op in spec.UNARY_OPS})

    def _unary_op(self, p: spec.UnaryProblem, x) -> Any:
        out = self._empty(p.shape)
        self._unary_program().launch(f"unary_{p.op}", (self._grid(p.size),), i32(p.size),
                                     np.float32(p.alpha), np.float32(p.beta), self._buf(x),
                                     out.data)
        return out
