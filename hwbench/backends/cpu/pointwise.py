"""Which convolutions the cpu backend runs as one GEMM per image (``_pointwise_conv``),
shared by the kernel and its prepared replay (``prepared_kernels.py``)."""

from __future__ import annotations

from hwbench.kernels import spec

POINTWISE_MIN_PIXELS = 128


def is_pointwise(p: spec.ConvProblem) -> bool:
    """A 1×1/stride-1/unpadded conv on images big enough for the GEMM path to win.

    Measured on Zen 4 (GFLOP/s, GEMM path vs blocked conv with reorders): 56×56 206–217
    vs 86–181, 14×14 200 vs 188, but 7×7 148 vs 205: with only 49 columns the GEMM is
    too skinny, so small images stay on the convolution primitive.
    """
    shape_ok = (p.r, p.s, p.stride, p.dilation, p.groups) == (1, 1, (1, 1), (1, 1), 1)
    return shape_ok and not any(p.padding) and p.h * p.w >= POINTWISE_MIN_PIXELS
