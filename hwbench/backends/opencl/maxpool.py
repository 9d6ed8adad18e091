"""MaxPool with unit horizontal stride (Inception's 3x3/1 pools) as eight outputs per
work-item (``kernels/opencl/maxpool.cl``); other strides keep ``pool.cl``'s one output
per work-item."""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.gemm import i32


def applies(p: Any) -> bool:
    return p.stride[1] == 1


def max_pool8(backend: Any, p: Any, x: Any) -> Any:
    """``p`` (a ``spec.PoolProblem``) on device array ``x``: the pooled array."""
    out = backend.empty(p.output_shape)
    (kh, kw), (sh, _), (dh, dw) = p.kernel, p.stride, p.dilation
    nc = p.n * p.c
    backend.compiler.program("maxpool", {}, {"max_pool8": (1, 8, 1)}).launch(
        "max_pool8", (-(-p.out_w // 8), p.out_h, nc), backend._buf(x), i32(p.h), i32(p.w),
        i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(p.padding[0]),
        i32(p.padding[1]), i32(dh), i32(dw), i32(nc), out.data)
    return out
