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

from hwbench.backends.opencl.compiler import Compiler, kernel_source
from hwbench.backends.opencl.gemm import (
    check_int32,
    i32,
    pad_defines,
    pad_local,
    pad_planes,
    vec8_defines,
)

DIRECT_MAX_KG = 4  # output channels per group below which the conv runs direct
# ... where each output's sum is short, or the conv is grouped: a dense conv with a long
# sum runs one scalar chain per output direct. BEGAN's last conv (32 -> 1 channel, 3x3,
# 8x8, batch 8: 288 taps) on PoCL ``basic``: conv_direct 155-210 µs, pad_planes +
# conv_implicit 39 µs (kernel time, 2-core Zen 4, busy). Sums of up to 64 taps stay
# direct (not measured between).
DENSE_DIRECT_MAX_TAPS = 64
DEPTHWISE_STRIDES = (1, 2)  # horizontal strides depthwise.cl serves
# On CPUs, output rows wider than this run as a row per work-item (depthwise_rows):
# PoCL 3.0, one thread, kernel time: 144x56x56 3x3 0.38 -> 0.31 ms, 96x112x112 3x3/2
# 0.40 -> 0.28, 192x28x28 0.162 -> 0.142; narrower rows ran slower so (960x7x7 0.067 ->
# 0.108, 576x14x14 0.135 -> 0.151) and keep eight outputs per work-item.
ROWS_MIN_OW = 16
# On CPUs, a plane whose padded input takes at most this many floats runs as a plane per
# work-item, padded in private memory (depthwise_plane.cl): PoCL 3.0, 2 threads, device
# time at batch 8 with SiLU, against pad_planes + depthwise / depthwise_rows:
# 672x14x14 5x5 4.8 -> 1.8 ms, 1152x7x7 3x3 1.7 -> 0.9 ms, 240x28x28 5x5 3.3 -> 2.7 ms,
# 96x112x112 3x3/2 7.9 -> 6.8 ms; MobileNet-size planes (114x121 floats) fit.
PLANE_MAX_FLOATS = 16384
PLANE_MIN_GROUPS = 8  # work-groups per launch at least (planes of one batch-1 layer: few)


def prefers_direct(p: Any) -> bool:
    """Whether ``p`` (a ``ConvProblem``) runs faster direct than lowered to GEMM."""
    if p.k // p.groups >= DIRECT_MAX_KG:
        return False
    return p.groups > 1 or p.c * p.r * p.s <= DENSE_DIRECT_MAX_TAPS


def direct_local(out_w: int) -> tuple[int, int, int]:
    """``conv_direct``'s work-group: 64 work-items, as wide as the output row up to 16
    (a narrower row in a 16-wide group leaves the rest of each row's items idle: BEGAN's
    8-wide last conv on PoCL ``basic`` 210 -> 155 µs at (8, 8, 1))."""
    wide = min(1 << max(int(out_w) - 1, 0).bit_length(), 16)
    return wide, 64 // wide, 1


def is_depthwise(p: Any) -> bool:
    """One input and one output channel per group, horizontal stride 1 or 2:
    ``depthwise.cl``. Stride 2 (two vload8, even lanes) against ``conv_direct``, PoCL on
    the busy 2-core Zen 4, MobileNet v2's 3x3/2 layers: 96x112x112 9.4 -> 2.4 ms,
    144x56x56 3.0 -> 1.6 ms, 576x14x14 0.56 -> 0.36 ms."""
    return p.groups == p.c == p.k and p.groups > 1 and p.stride[1] in DEPTHWISE_STRIDES


def conv2d_direct(compiler: Compiler, p: Any, x: Any, w: Any, out: Any, bias: Any,
                  residual: Any, relu: int, scratch: Any = None) -> None:
    """out = act(conv(x, w) + bias + residual) (``relu``: activation.cl's code, 0 none),
    NCHW, one work-item per output value;
    a depthwise conv (given ``scratch``, a ``gemm.Scratch``) through ``depthwise``."""
    if scratch is not None and is_depthwise(p):
        depthwise(compiler, p, x, w, out, bias, residual, relu, scratch)
        return
    check_int32("conv2d", p.n * p.c * p.h * p.w, p.n * p.k * p.out_h * p.out_w)
    program = compiler.program("conv_direct", {}, {"conv_direct": direct_local(p.out_w)},
                               source=kernel_source("activation") + "\n"
                               + kernel_source("conv_direct"))
    (sh, sw), (dh, dw) = p.stride, p.dilation
    program.launch("conv_direct", (p.out_w, p.out_h, p.n * p.k), x, w, i32(p.n), i32(p.c),
                   i32(p.h), i32(p.w), i32(p.k), i32(p.c // p.groups), i32(p.k // p.groups),
                   i32(p.r), i32(p.s), i32(p.out_h), i32(p.out_w), i32(sh), i32(sw),
                   i32(p.padding[0]), i32(p.padding[1]), i32(dh), i32(dw),
                   bias if bias is not None else x, i32(bias is not None),
                   residual if residual is not None else x, i32(residual is not None),
                   i32(relu), out)


def depthwise(compiler: Compiler, p: Any, x: Any, w: Any, out: Any, bias: Any,
              residual: Any, relu: int, scratch: Any) -> None:
    """The input padded once into scratch, then ``depthwise.cl``'s unrolled window.
    Measured on PoCL (2-core Zen 4, busy, best of 12): MobileNet v2's 3x3 at 144x56x56
    6.4 -> 2.1 ms, ConvNeXt's 7x7 at 96x56x56 20 -> 6.7 ms against ``conv_direct``'s
    bounds-checked loops."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pl = p.padding[0], p.padding[1]
    hp = max(p.h + pt + p.padding[2], (p.out_h - 1) * sh + (p.r - 1) * dh + 1)
    blocks = -(-p.out_w // 8)  # eight outputs per work-item: the last block read whole
    wp = max(p.w + pl + p.padding[3], (8 * blocks - 1) * sw + (p.s - 1) * dw + 1 + 8)
    planes = p.n * p.c
    check_int32("conv2d", planes * hp * wp, p.n * p.k * p.out_h * p.out_w)
    defines = {"R": p.r, "S": p.s, "SH": sh, "SW": sw, "DH": dh, "DW": dw,
               **pad_defines(compiler.device), **vec8_defines(compiler.device)}
    if compiler.device.is_cpu and hp * wp <= PLANE_MAX_FLOATS:
        depthwise_plane(compiler, p, x, w, out, bias, residual, relu,
                        {**defines, "IN_H": p.h, "IN_W": p.w, "PAD_T": pt, "PAD_L": pl,
                         "PLANE_HP": hp, "PLANE_WP": wp, "OUT_H": p.out_h,
                         "OUT_W": p.out_w})
        return
    program = compiler.program("depthwise", defines, {"pad_planes": pad_local(compiler.device),
                                                      "depthwise": (1, 8, 1),
                                                      "depthwise_rows": (1, 16, 1)},
                               source="\n".join(kernel_source(name) for name in (
                                   "vec8", "activation", "pad", "depthwise")))
    xp = scratch.get("depthwise_pad", 4 * planes * hp * wp)
    pad_planes(program, p, x, xp, hp, wp)
    rows = compiler.device.is_cpu and p.out_w > ROWS_MIN_OW
    program.launch("depthwise_rows" if rows else "depthwise",
                   (1 if rows else blocks, p.out_h, planes), xp, i32(hp), i32(wp), w,
                   i32(p.k), i32(p.out_h), i32(p.out_w), i32(planes),
                   bias if bias is not None else x, i32(bias is not None),
                   residual if residual is not None else x, i32(residual is not None),
                   i32(relu), out)


def plane_local(planes: int) -> int:
    """depthwise_plane's work-group: 16 planes, fewer where that leaves under
    ``PLANE_MIN_GROUPS`` work-groups for PoCL's threads to share (a batch-1 layer of 16-32
    channels)."""
    local = 16
    while local > 1 and planes < local * PLANE_MIN_GROUPS:
        local //= 2
    return local


def depthwise_plane(compiler: Compiler, p: Any, x: Any, w: Any, out: Any, bias: Any,
                    residual: Any, relu: int, defines: dict[str, int]) -> None:
    """``depthwise_plane.cl``: a plane per work-item, its padding in private memory
    (``defines``: the window's and the plane's sizes); no pad_planes pass, and PoCL's cost
    per work-item paid once per plane."""
    planes = p.n * p.c
    program = compiler.program("depthwise_plane", defines,
                               {"depthwise_plane": (1, 1, plane_local(planes))},
                               source="\n".join(kernel_source(name) for name in (
                                   "vec8", "activation", "depthwise", "depthwise_plane")))
    program.launch("depthwise_plane", (1, 1, planes), x, w, i32(p.k), i32(planes),
                   bias if bias is not None else x, i32(bias is not None),
                   residual if residual is not None else x, i32(residual is not None),
                   i32(relu), out)
