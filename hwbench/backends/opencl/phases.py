"""Stride-2 convolutions on ``conv_implicit`` (``kernels/opencl/conv_phases.cl``): the
input split into its four phases (rows and columns by parity), each of which a stride-2
conv reads as a stride-1 conv reads its input, so no column matrix is written.

First layers (ResNet's 3 -> 64 7x7/2 at 224: a 147 x 12544 column matrix, 7.4 MB per
image, for a 0.6 MB input) and the wider 3x3/2 downsampling convs otherwise went through
im2col, written once and read back per block of 48 output channels; ``pays`` keeps im2col
where its matrix is small (3x3/2 convs of few taps).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import check_int32, i32

# When the phases beat im2col. im2col's column matrix is R * S / 4 times the input (a
# stride-2 conv), so the split saves most for big kernels. Measured on PoCL (busy 2-core
# Zen 4, CPU seconds, one thread, batch 1 and 8; on / off): 7x7/2 3 -> 64 @224 (147 taps)
# 1.25-1.4x, 5x5/2 3 -> 32 @224 (75) 1.15-1.35x; 3x3/2: 3 -> 32 and 3 -> 64 @224 (27 taps)
# 0.8-0.85x, 8 -> 64 @112 (72) 0.85x, 16 -> 64 @112 (144) 0.92-0.96x, 32 -> 64 @56 (288)
# 1.12-1.16x, 64 -> 128 @56 (576) 1.0-1.04x, 128 -> 128 @56 (1152) 1.06-1.13x.
MIN_KERNEL = 25   # R * S from which the split pays at any channel count
MIN_TAPS = 256    # C * R * S from which it pays for smaller kernels (3x3)


def applies(p: Any) -> bool:
    """Stride 2 both ways, no dilation: ``phase_split``'s geometry."""
    return tuple(p.stride) == (2, 2) and tuple(p.dilation) == (1, 1)


def pays(p: Any) -> bool:
    """Whether the phases beat im2col for ``applies``' ``p`` (``MIN_KERNEL``, ``MIN_TAPS``)."""
    return p.r * p.s >= MIN_KERNEL or p.c * p.r * p.s >= MIN_TAPS


def plane_size(p: Any) -> tuple[int, int]:
    """(HP2, WP2): a phase plane tall and wide enough for every tap of every output."""
    return p.out_h + (p.r - 1) // 2, p.out_w + (p.s - 1) // 2


@functools.lru_cache(maxsize=256)
def tap_offsets(c: int, r: int, s: int, hp2: int, wp2: int) -> np.ndarray:
    """koff[k] for k = (c, r, s): where tap k's row of the column matrix starts in an
    image's phase planes (``phase_split``'s layout; not increasing in k)."""
    cc, rr, ss = np.meshgrid(np.arange(c), np.arange(r), np.arange(s), indexing="ij")
    plane = cc * 4 + (rr % 2) * 2 + ss % 2
    return (plane * (hp2 * wp2) + (rr // 2) * wp2 + ss // 2).astype(np.int32).reshape(-1)


def split_input(prog: Any, scratch: Any, p: Any, x: Any) -> tuple[Any, int, int]:
    """``p``'s input as phase planes (``prog`` has conv_phases.cl): (buffer, HP2, WP2);
    an image is ``4 * p.c`` planes."""
    hp2, wp2 = plane_size(p)
    planes = p.n * p.c
    check_int32("conv2d", planes * 4 * hp2 * wp2)
    xs = scratch.get("conv_phases", 4 * planes * 4 * hp2 * wp2)
    prog.launch("phase_split", (1, 2 * hp2, planes), x, i32(p.h), i32(p.w), i32(hp2),
                i32(wp2), i32(p.padding[0]), i32(p.padding[1]), i32(planes), xs)
    return xs, hp2, wp2
