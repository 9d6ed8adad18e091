"""The opencl backend's binary kernels (``kernels/opencl/binary.cl``): broadcasting
sub/div/pow/max/min/fmod, the comparisons (a bool result) and Where, each one kernel that
reads its operands through per-operand strides (0 along broadcast axes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.broadcast import BroadcastKernels
from hwbench.backends.opencl.gemm import i32
from hwbench.kernels import spec

BINARY_CODES = {op: i for i, op in enumerate(spec.BINARY_OPS)}
COMPARE_CODES = {op: i for i, op in enumerate(spec.COMPARISONS)}
LOCAL = 256


class BinaryKernelsOpencl(BroadcastKernels):
    """``_binary_op``, ``_compare`` and ``_where`` of ``OpenclBackend`` (arithmetic over
    at most three collapsed dimensions: ``broadcast``'s one launch)."""

    def _binary_program(self) -> Any:
        return self.compiler.program("binary", {}, {"binary_op": (LOCAL,), "compare": (LOCAL,),
                                                    "where": (LOCAL,)})

    def _strided_meta(self, shape: tuple[int, ...], *operands: tuple[int, ...]) -> Any:
        meta = (len(shape), *shape)
        for operand in operands:
            meta += spec.broadcast_strides(operand, shape)
        return self._meta_buffer(meta)

    def _binary_op(self, p: spec.BinaryProblem, a, b) -> Any:
        out = self._binary3(p.op, p.shape, p.a_shape, p.b_shape, a, b)
        if out is not None:
            return out
        out = self._empty(p.shape)
        self._binary_program().launch(
            "binary_op", (p.size,), i32(p.size), self._strided_meta(p.shape, p.a_shape,
                                                                     p.b_shape),
            self._buf(a), self._buf(b), out.data, i32(BINARY_CODES[p.op]))
        return out

    def _compare(self, p: spec.CompareProblem, a, b) -> Any:
        out = self._empty(p.shape, np.bool_)
        self._binary_program().launch(
            "compare", (p.size,), i32(p.size), self._strided_meta(p.shape, p.a_shape,
                                                                  p.b_shape),
            self._buf(a), self._buf(b), out.data, i32(COMPARE_CODES[p.op]))
        return out

    def _where(self, p: spec.WhereProblem, condition, x, y) -> Any:
        fast = self._where3(p, condition, x, y)
        if fast is not None:
            return fast
        out = self._empty(p.shape)
        self._binary_program().launch(
            "where", (p.size,), i32(p.size),
            self._strided_meta(p.shape, p.condition_shape, p.x_shape, p.y_shape),
            self._buf(condition), self._buf(x), self._buf(y), out.data)
        return out
