"""The opencl backend's normalization and reductions family, in ``reductions.cl``:
LayerNormalization (one work-group per row, two passes in float32), ReduceX (one
work-item per output value, any set of axes through a stride table) and N-D batched
MatMul (on the GEMM engine, see ``matmul``; other batch broadcasts one work-item per
output value, batch dimensions broadcast through a stride table)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import i32
from hwbench.backends.opencl.matmul import matmul_on_engine
from hwbench.errors import UnsupportedError
from hwbench.kernels import spec

INT_LIMIT = 2**31 - 1  # reductions.cl indexes rows, counts and strides with int


def _fits_int(op: str, *sizes: int) -> None:
    if max(sizes) > INT_LIMIT:
        raise UnsupportedError(f"opencl: {op} of {max(sizes)} values: reductions.cl indexes "
                               f"with 32-bit ints (at most {INT_LIMIT})")

LN_LOCAL = 64  # reductions.cl's LN_LOCAL: work-items per LayerNormalization row
REDUCE_CODES = {"sum": 0, "mean": 1, "max": 2, "min": 3, "prod": 4, "l1": 5, "l2": 6,
                "sum_square": 7, "log_sum": 8, "log_sum_exp": 9}
LAUNCHES = {"layer_norm": (LN_LOCAL,), "reduce": (64,), "batched_matmul": (16, 4, 1)}


def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))


class ReductionKernels:
    """``_layer_norm``, ``_reduce`` and ``_matmul`` mixed into ``OpenclBackend``."""

    def _reductions(self) -> Any:
        return self._program("reductions", LAUNCHES)

    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias) -> Any:
        _fits_int("layer_norm", p.rows * LN_LOCAL, p.cols)
        out = self._empty(p.shape)
        scale_buf = self._buf(scale)
        if p.stats:
            mean, inv = self._empty(p.stats_shape), self._empty(p.stats_shape)
            mean_buf, inv_buf = mean.data, inv.data
        else:
            mean_buf = inv_buf = out.data  # not written (stats 0)
        self._reductions().launch(
            "layer_norm", (p.rows * LN_LOCAL,), self._buf(x), scale_buf,
            scale_buf if bias is None else self._buf(bias), i32(bias is not None),
            i32(p.cols), i32(p.rows), np.float32(p.epsilon), i32(p.stats), out.data,
            mean_buf, inv_buf)
        return (out, mean, inv) if p.stats else out

    def _reduce(self, p: spec.ReduceProblem, x) -> Any:
        _fits_int("reduce", p.size)
        out = self._empty(p.output_shape)
        strides = _strides(p.shape)
        kept = [i for i in range(len(p.shape)) if i not in p.axes]
        meta = (*(p.shape[i] for i in kept), *(strides[i] for i in kept),
                *(p.shape[i] for i in p.axes), *(strides[i] for i in p.axes))
        n_out = math.prod(p.output_shape)
        self._reductions().launch(
            "reduce", (n_out,), self._buf(x), i32(n_out), i32(len(kept)), i32(len(p.axes)),
            i32(p.reduced), i32(REDUCE_CODES[p.op]), self._meta_buffer(meta or (0,)),
            out.data)
        return out

    def _matmul(self, p: spec.MatmulProblem, a, b) -> Any:
        out = self._empty(p.output_shape)
        if matmul_on_engine(self.gemm_engine, p, self._buf(a), self._buf(b), out.data):
            return out
        _fits_int("matmul", p.batches * p.m * p.k, p.batches * p.k * p.n, p.batches * p.m * p.n)
        a_step, b_step = _strides(p.a_batch), _strides(p.b_batch)
        meta = (*p.batch,
                *(0 if d == 1 else s * p.m * p.k for d, s in zip(p.a_batch, a_step,
                                                                  strict=True)),
                *(0 if d == 1 else s * p.k * p.n for d, s in zip(p.b_batch, b_step,
                                                                  strict=True)))
        self._reductions().launch(
            "batched_matmul", (p.n, p.m, p.batches), self._buf(a), self._buf(b), i32(p.m),
            i32(p.n), i32(p.k), i32(p.batches), i32(len(p.batch)), self._meta_buffer(meta),
            out.data)
        return out
