"""Direct convolution, for the convs that lowering to GEMM serves badly.

A group with fewer output channels than ``DIRECT_MAX_KG`` (a depthwise conv has one) is a
GEMM with that many rows, padded to the GEMM tile's height, after writing a column
matrix R*S times the input's size. Computing each output in place is faster there:
measured on PoCL (2-core Zen 4) for ShuffleNet's depthwise 3x3 layers, 6-7x faster
than im2col + the packed SGEMM (1.6 ms vs 10.8 ms at 136x28x28), while a grouped 1x1
with 34 channels per group is 4.4x slower direct, so it stays on the GEMM.
"""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.compiler import Compiler
from hwbench.backends.opencl.gemm import check_int32, i32

DIRECT_MAX_KG = 4  # output channels per group below which the conv runs direct


def prefers_direct(p: Any) -> bool:
    """Whether ``p`` (a ``ConvProblem``) runs faster direct than lowered to GEMM."""
    return p.k // p.groups < DIRECT_MAX_KG


def conv2d_direct(compiler: Compiler, p: Any, x: Any, w: Any, out: Any, bias: Any,
                  residual: Any, relu: bool) -> None:
    """out = relu?(conv(x, w) + bias + residual), NCHW, one work-item per output value."""
    check_int32("conv2d", p.n * p.c * p.h * p.w, p.n * p.k * p.out_h * p.out_w)
    program = compiler.program("conv_direct", {}, {"conv_direct": (16, 4, 1)})
    (sh, sw), (dh, dw) = p.stride, p.dilation
    program.launch("conv_direct", (p.out_w, p.out_h, p.n * p.k), x, w, i32(p.n), i32(p.c),
                   i32(p.h), i32(p.w), i32(p.k), i32(p.c // p.groups), i32(p.k // p.groups),
                   i32(p.r), i32(p.s), i32(p.out_h), i32(p.out_w), i32(sh), i32(sw),
                   i32(p.padding[0]), i32(p.padding[1]), i32(dh), i32(dw),
                   bias if bias is not None else x, i32(bias is not None),
                   residual if residual is not None else x, i32(residual is not None),
                   i32(relu), out)
