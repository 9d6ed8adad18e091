"""Pooling on CPU devices as one output row per work-item (``kernels/opencl/pool_rows.cl``).

``pool.cl`` ran one output per work-item and ``maxpool.cl`` eight; here each work-item
walks a row in float8 blocks, and a plane's global average is a float8 sum (pool.cl's
work-items each read their own plane: strided across the work-group PoCL vectorizes).
Kernel times on PoCL 3.0, one thread, 2-core Zen 4 (busy), pool.cl / maxpool.cl -> here
(with compares in place of PoCL's out-of-line select/min): AveragePool 2x2/2 at 128x56x56
0.74 -> 0.17 ms, 3x3/1 at 256x28x28 2.34 -> 0.64, 576x14x14 1.26 -> 0.61 (Inception v2);
GlobalAveragePool 672x14x14 0.079 -> 0.010, 32x112x112 0.33 -> 0.04; MaxPool 3x3/2 at
64x112x112 0.75 -> 0.46, 3x3/1 at 576x14x14 0.86 -> 0.53. GPUs keep ``pool.cl`` and
``maxpool.cl`` (work-items are cheap there).
"""

from __future__ import annotations

from typing import Any

from hwbench.backends.opencl.compiler import Program, kernel_source
from hwbench.backends.opencl.gemm import i32, pad_defines, pad_local, pad_planes, vec8_defines

LOCAL = (1, 16, 1)  # dimension 0 is 1: each work-item walks its row
FILLS = {"max": "-INFINITY", "avg": "0.0f"}  # pool_padded's border, per kind


def _program(backend: Any) -> Program:
    return backend.compiler.program(
        "pool_rows", vec8_defines(backend.dev),
        {"max_pool_rows": LOCAL, "avg_pool_rows": LOCAL, "global_avg_pool8": LOCAL[:2]},
        source="\n".join(kernel_source(name) for name in ("vec8", "pool_window", "pool_rows")))


def _padded_program(backend: Any, kind: str) -> Program:
    return backend.compiler.program(
        "pool_rows", {**vec8_defines(backend.dev), **pad_defines(backend.dev),
                      "PAD_FILL": FILLS[kind]},
        {"pool_padded": LOCAL, "pad_planes": pad_local(backend.dev)},
        source="\n".join(kernel_source(name) for name in ("vec8", "pool_window", "pool_rows",
                                                            "pad")))


def padded_geometry(p: Any) -> tuple[int, int] | None:
    """(HP, WP) of the planes ``pool_padded`` reads for ``p``: its padding and ceil mode's
    overhang written out, and columns to spare for the last block of eight; None where
    the unpadded kernels serve (no block at an edge, or horizontal strides past 2, or a
    dilated average, which those do not take either)."""
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    if sw > 2 or (p.kind == "avg" and (dh, dw) != (1, 1)):
        return None
    span = (8 if sw == 1 else 16) + (kw - 1) * dw  # columns one block reads
    last = 8 * ((p.out_w - 1) // 8) * sw - p.padding[1]  # where the last block starts
    if not any(p.padding) and last + span <= p.w:
        return None  # every block inside its row already
    hp = max(p.h + p.padding[0] + p.padding[2], (p.out_h - 1) * sh + (kh - 1) * dh + 1)
    return hp, max(p.w + p.padding[1] + p.padding[3], last + p.padding[1] + span)


def _pool_padded(backend: Any, p: Any, x: Any, hp: int, wp: int) -> Any:
    out = backend._empty(p.output_shape)
    prog = _padded_program(backend, p.kind)
    xp = backend.gemm_engine.scratch.get("pool_pad", 4 * p.n * p.c * hp * wp)
    pad_planes(prog, p, backend._buf(x), xp, hp, wp)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    pt, pl, pb, pr = p.padding
    nc = p.n * p.c
    prog.launch("pool_padded", (1, p.out_h, nc), xp, i32(hp), i32(wp), i32(p.out_h),
                i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(dh), i32(dw),
                i32(p.kind == "avg"), i32(p.h), i32(p.w), i32(pt), i32(pl), i32(pb), i32(pr),
                i32(p.count_include_pad), i32(nc), out.data)
    return out


def max_pool(backend: Any, p: Any, x: Any) -> Any:
    """ONNX MaxPool of device array ``x`` (``p``: its checked ``spec.PoolProblem``)."""
    geometry = padded_geometry(p)
    if geometry is not None:
        return _pool_padded(backend, p, x, *geometry)
    out = backend._empty(p.output_shape)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    nc = p.n * p.c
    _program(backend).launch(
        "max_pool_rows", (1, p.out_h, nc), backend._buf(x), i32(p.h), i32(p.w),
        i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(p.padding[0]),
        i32(p.padding[1]), i32(dh), i32(dw), i32(nc), out.data)
    return out


def avg_pool(backend: Any, p: Any, x: Any) -> Any:
    """ONNX AveragePool of device array ``x``; the divisor as ``pool.cl``'s."""
    geometry = padded_geometry(p)
    if geometry is not None:
        return _pool_padded(backend, p, x, *geometry)
    out = backend._empty(p.output_shape)
    (kh, kw), (sh, sw) = p.kernel, p.stride
    pt, pl, pb, pr = p.padding
    nc = p.n * p.c
    _program(backend).launch(
        "avg_pool_rows", (1, p.out_h, nc), backend._buf(x), i32(p.h), i32(p.w),
        i32(p.out_h), i32(p.out_w), i32(kh), i32(kw), i32(sh), i32(sw), i32(pt), i32(pl),
        i32(pb), i32(pr), i32(p.count_include_pad), i32(nc), out.data)
    return out


def global_avg_pool(backend: Any, p: Any, x: Any) -> Any:
    """ONNX GlobalAveragePool of device array ``x``: a plane per work-item, float8 sums."""
    out = backend._empty((p.n, p.c, 1, 1))
    nc = p.n * p.c
    _program(backend).launch("global_avg_pool8", (1, nc), backend._buf(x), i32(p.h * p.w),
                             i32(nc), out.data)
    return out
