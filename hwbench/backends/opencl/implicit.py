"""Stride-1 convolutions on the packed (CPU) engine without a column matrix
(``kernels/opencl/conv_implicit.cl``).

``Gemm.conv2d`` writes im2col's column matrix (R * S times the input) into the packed
B panels, then the GEMM reads it back: for a conv with few output channels (one block
of GEMM rows: DenseNet's 3x3 growth convs, 128 -> 32) each panel is read once, so the
copy cost about as much as the product. With stride 1 a row of that matrix is the
(padded) input itself, shifted: the GEMM reads it in place.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import numpy as np

from hwbench.backends.opencl import phases
from hwbench.backends.opencl.compiler import Program, kernel_source
from hwbench.backends.opencl.gemm import (
    check_int32,
    i32,
    pad_defines,
    pad_local,
    padded_input,
    round_up,
    vec8_defines,
)

SOURCES = ("vec8", "activation", "gemm_packed", "gemm_packed_out", "pad", "conv_implicit",
           "conv_phases")


MAX_ROWS = 128    # output channels above which the packed B panels' reuse wins (below)
COPY_COST = 16    # a column-matrix element written and read back, in FMAs of a GEMM row
# ... and each work-item of im2col_rows (one output row of one tap), besides its copies:
# BEGAN's first conv (32 -> 32, 3x3, 4x4, batch 8: 4-float rows) on PoCL ``basic``, kernel
# time: im2col_rows 79 µs (~8 ns a work-item) + the packed GEMM 28, conv_implicit 58.
ROW_COST = 128


def padded_width(p: Any) -> int:
    """WP: the width of the planes the kernel reads (``gemm.padded_input``'s; stride 2:
    a phase plane's, ``phases.plane_size``)."""
    if phases.applies(p):
        return phases.plane_size(p)[1]
    return max(p.w + p.padding[1] + p.padding[3],
               (p.out_w - 1) * p.stride[1] + (p.s - 1) * p.dilation[1] + 1)


def applies(engine: Any, p: Any) -> bool:
    """Whether ``conv_implicit`` serves ``p`` (a ``ConvProblem``) better than im2col + the
    packed GEMM: the packed engine, one group, stride 1 (or 2: ``phases``), and its cost
    model. Each image's columns fill whole panels of 16 (OH * WP of them), where the column
    matrix packs all images' OH * OW together; that matrix costs ~``COPY_COST`` FMAs per
    element and row of A. Measured on PoCL (2-core Zen 4, busy), device time, the 160
    stride-1 conv shapes of DenseNet-121, Inception v1/v2 and SqueezeNet: at batch 1 all
    implicit was 15 % faster in sum (DenseNet's 3x3 128 -> 32: 1.5-2.7x), batch 8 18 %; with
    more than ``MAX_ROWS`` output channels (each panel reused by three or more row blocks)
    the packed panels won as often as they lost. Short output rows make each copy dear
    (``ROW_COST``)."""
    if (engine.kernel != "sgemm_packed" or p.groups != 1 or p.k > MAX_ROWS
            or not (tuple(p.stride) == (1, 1)
                    or engine.phase_split and phases.applies(p) and phases.pays(p))):
        return False
    columns = p.out_h * padded_width(p)
    if columns < 16:
        return False
    implicit = p.n * round_up(columns, 16)
    packed = round_up(p.n * p.out_h * p.out_w, 16)
    return implicit * p.k <= packed * (p.k + COPY_COST) + im2col_rows(p) * ROW_COST


def im2col_rows(p: Any) -> int:
    """Work-items per tap of ``Gemm.conv2d``'s im2col_rows: an output row each, or one
    per image where an unpadded 1x1 conv's planes are its rows."""
    if p.r == p.s == 1 and tuple(p.stride) == (1, 1) and not any(p.padding):
        return p.n
    return p.n * p.out_h


def program(engine: Any) -> Program:
    """conv_implicit.cl with the packed GEMM's tile parameters (and pad.cl,
    conv_phases.cl)."""
    params = engine.params
    wide = int(bool(params.get("WIDE")) and engine.device.avx512)
    return engine.compiler.program(
        "conv_implicit", {**params, "WIDE": wide, **vec8_defines(engine.device),
                          **pad_defines(engine.device)},
        {"conv_implicit": (1, 1, 1), "pad_planes": pad_local(engine.device),
         "phase_split": (1, 16, 1)},
        source="\n".join(kernel_source(name) for name in SOURCES))


@functools.lru_cache(maxsize=256)
def tap_offsets(c: int, r: int, s: int, hp: int, wp: int, dh: int, dw: int) -> np.ndarray:
    """koff[k] for k = (c, r, s): where row k of an image's column matrix starts in its
    HP x WP planes (increasing in k, so the last is the largest)."""
    cc, rr, ss = np.meshgrid(np.arange(c), np.arange(r), np.arange(s), indexing="ij")
    return (cc * (hp * wp) + rr * (dh * wp) + ss * dw).astype(np.int32).reshape(-1)


# Per engine, the koff tables on its device by geometry (uploaded once per conv shape).
_TABLES: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], Any]] = \
    weakref.WeakKeyDictionary()


def table(engine: Any, key: tuple[int, ...]) -> tuple[Any, int]:
    """The device buffer of ``tap_offsets(*key)`` (a key of 5: ``phases.tap_offsets``')
    and its largest offset."""
    tables = _TABLES.setdefault(engine, {})
    found = tables.get(key)
    if found is None:
        koff = tap_offsets(*key) if len(key) == 7 else phases.tap_offsets(*key)
        cl = engine.device.cl
        buf = cl.Buffer(engine.device.context, cl.mem_flags.READ_ONLY
                        | cl.mem_flags.COPY_HOST_PTR, hostbuf=koff)
        found = tables[key] = (buf, int(koff.max()))
    return found


def conv2d(engine: Any, p: Any, x: Any, w: Any, out: Any, bias: Any, residual: Any,
           act: int) -> None:
    """out = act(conv(x, w) + bias + residual) (``act``: activation.cl's code) for
    ``applies``' ``p``, on the packed engine ``engine`` (a ``gemm.Gemm``)."""
    prog = program(engine)
    if phases.applies(p):
        xp, hp, wp = phases.split_input(prog, engine.scratch, p, x)
        key: tuple[int, ...] = (p.c, p.r, p.s, hp, wp)
        x_img = 4 * p.c * hp * wp
    else:
        xp, hp, wp = padded_input(prog, engine.scratch, p, x)
        key = (p.c, p.r, p.s, hp, wp, *p.dilation)
        x_img = p.c * hp * wp
    taps = p.c * p.r * p.s
    ohw, np_cols = p.out_h * p.out_w, p.out_h * wp
    check_int32("conv2d", p.n * x_img, p.n * p.k * ohw, p.k * taps)
    koff, koff_max = table(engine, key)
    mblk, nblk, row_blocks, col_blocks = engine.out_blocks(p.k, np_cols, p.n)
    prog.launch("conv_implicit", (row_blocks, col_blocks, p.n), i32(p.k), i32(np_cols),
                i32(taps), w, xp, i32(x_img), i32(p.n * x_img),
                koff, i32(koff_max), i32(wp),
                i32(p.out_w), i32(row_blocks), i32(col_blocks), out, i32(p.k * ohw),
                i32(ohw), bias if bias is not None else out, i32(bias is not None),
                residual if residual is not None else out, i32(residual is not None),
                i32(act), i32(mblk), i32(nblk))
