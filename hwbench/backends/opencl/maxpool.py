"""MaxPool with horizontal stride 1 or 2 (Inception's 3x3/1 pools, ResNet's 3x3/2) as
eight outputs per work-item (``kernels/opencl/maxpool.cl``); other strides keep
``pool.cl``'s one output per work-item."""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.compiler import kernel_source
from hwbench.backends.opencl.gemm import i32, vec8_defines


def applies(p: Any) -> bool:
    return p.stride[1] in (1, 2)


def max_pool8(backend: Any, p: Any, x: Any) -> Any:
    """``p`` (a ``spec.PoolProblem``) on device array ``x``: the pooled array."""
    out = backend._empty(p.output_shape)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    nc = p.n * p.c
    program = backend.compiler.program(
        "maxpool", vec8_defines(backend.dev), {"max_pool8": (1, 8, 1)},
        source=kernel_source("vec8") + "\n" + kernel_source("maxpool"))
    program.launch(
        "max_pool8", (-(-p.out_w // 8), p.out_h, nc), backend._buf(x), i32(p.h), i32(p.w),
        i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(p.padding[0]),
        i32(p.padding[1]), i32(dh), i32(dw), i32(nc), out.data)
    return out
