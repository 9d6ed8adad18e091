"""ConvTranspose lowered to one GEMM per group plus col2im, the lowering every backend
without a native transposed convolution shares (the device backends run the same index
arithmetic in their own kernels).

ConvTranspose is the data gradient of a convolution (``ConvTransposeProblem.gradient_of``):
``cols_g = W_gᵀ · x_g`` gives, per input pixel, every tap's contribution, laid out as
``im2col``'s columns of that convolution; ``col2im`` sums them into the uncropped output;
the pads then crop (or, negative, extend) it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwbench.kernels.im2col import col2im
from hwbench.kernels.spec.upsampling import ConvTransposeProblem
from hwbench.kernels.upsampling_reference import window


def gemm_operands(x: np.ndarray, w: np.ndarray,
                  p: ConvTransposeProblem) -> tuple[np.ndarray, np.ndarray]:
    """Per group: ``a`` (groups, C/g, K/g·R·S) (used transposed) and ``b`` (groups, C/g, N·H·W)."""
    g, cg = p.groups, p.c // p.groups
    b = np.ascontiguousarray(
        np.asarray(x).reshape(p.n, g, cg, p.h * p.w).transpose(1, 2, 0, 3)
    ).reshape(g, cg, p.n * p.h * p.w)
    a = np.asarray(w).reshape(g, cg, (p.k // g) * p.r * p.s)
    return a, b


def conv_transpose_by_gemm(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                           p: ConvTransposeProblem,
                           gemm_t: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                           ) -> np.ndarray:
    """``gemm_t(a, b)`` = ``aᵀ @ b`` in float32 (default NumPy's); returns NCHW float32."""
    a, b = gemm_operands(x, w, p)
    gemm_t = gemm_t or (lambda a_, b_: np.matmul(a_.T, b_))
    cols = np.stack([gemm_t(a[gi], b[gi]) for gi in range(p.groups)])
    return finish(cols, bias, p)


def finish(cols: np.ndarray, bias: np.ndarray | None, p: ConvTransposeProblem) -> np.ndarray:
    """col2im of the GEMMs' columns, the window, the bias: NCHW float32."""
    out = np.ascontiguousarray(window(col2im(cols, p.gradient_of), p), dtype=np.float32)
    if bias is not None:
        out += np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return out
