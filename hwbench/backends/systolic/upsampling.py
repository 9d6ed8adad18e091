"""The systolic backend's upsampling family: ConvTranspose's GEMM on the array (quantized
on the fly, as its conv2d), col2im's scatter-add and Resize's interpolation on the vector
unit."""

from __future__ import annotations

import math

import numpy as np

from hwbench.kernels import spec, upsampling_reference
from hwbench.kernels.conv_transpose_lowering import finish, gemm_operands


class UpsamplingKernels:
    """``_conv_transpose2d`` and ``_resize`` of ``SystolicBackend``."""

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> np.ndarray:
        """Per group, ``colsᵀ = x_gᵀ · W_g`` on the array (the weights as its int8 operand,
        one scale per (filter, tap) column), then col2im and the bias on the vector unit."""
        a, b = gemm_operands(np.asarray(x), np.asarray(w), p)
        g, cg, taps = p.groups, p.c // p.groups, a.shape[2]
        pixels = p.n * p.h * p.w
        one = spec.GemmProblem(pixels, taps, cg)
        cols = np.stack([self._gemm(one, np.ascontiguousarray(b[gi].T), a[gi], None).T
                         for gi in range(g)])
        self._vector("col2im", cols.size)
        if bias is not None:
            self._vector("bias", math.prod(p.output_shape))
        return finish(cols, bias, p)

    def _resize(self, p: spec.ResizeProblem, x) -> np.ndarray:
        """Each axis pass on the vector unit: 2 ops per tap per output value."""
        for t, shape in zip(p.tables, p.pass_shapes(), strict=True):
            self._vector("resize", math.prod(shape), 2 * t.taps)
        return upsampling_reference.resize(x, p, np.float32)

