"""Which convolutions the cpu backend runs as one GEMM per image and group
(``_pointwise_conv``), shared by the kernel and its prepared replay
(``prepared_kernels.py``)."""

from __future__ import annotations

from typing import Any

from hwbench.backends.cpu.layouts import BLOCKED_TAG, conv_tags, nhwc_small_groups
from hwbench.kernels import spec

POINTWISE_MIN_PIXELS = 128
BLOCK = 16  # nChw16c's channel block: oneDNN's grouped kernels need one per group


def is_pointwise(p: spec.ConvProblem) -> bool:
    """A 1×1/stride-1/unpadded conv on images big enough for the GEMM path to win.

    Measured on Zen 4 (GFLOP/s, GEMM path vs blocked conv with reorders): 56×56 206–217
    vs 86–181, 14×14 200 vs 188, but 7×7 148 vs 205: with only 49 columns the GEMM is
    too skinny, so small images stay on the convolution primitive. A grouped one
    qualifies too (one GEMM per group), unless it is depthwise (a GEMM of one channel).
    """
    shape_ok = (p.r, p.s, p.stride, p.dilation) == (1, 1, (1, 1), (1, 1))
    return (shape_ok and not any(p.padding) and p.h * p.w >= POINTWISE_MIN_PIXELS
            and (p.groups == 1 or p.c // p.groups > 1))


def small_groups(p: spec.ConvProblem) -> bool:
    """Grouped with fewer channels per group than one nChw16c block (ShuffleNet v1's
    first grouped conv: 6 in, 28 out per group): oneDNN has no blocked kernel for that
    and falls back to ``gemm:jit``. Measured on the 2-core Zen 4 VM, one thread, batch
    1, 24→112 in 4 groups at 56×56: 2,046 µs on the primitive against 141 µs as four
    GEMMs and their epilogue. Groups of whole blocks or more (ShuffleNet's 34 and 68
    channels: ``brgconv_1x1``) stay on the primitive, which was faster there (123 vs
    137 µs at 272 channels, 14×14) once the GEMM path's epilogue and reorders count."""
    return p.groups > 1 and min(p.c, p.k) // p.groups < BLOCK


def runs_as_gemm(be: Any, p: spec.ConvProblem, blocked_input: bool) -> bool:
    """Whether ``be`` (a ``CpuBackend``) runs this conv on the GEMM path: an ungrouped
    pointwise conv on plain input (a blocked one would need a reorder the conv primitive
    avoids), and a pointwise conv of small groups whatever its input (converting it
    still wins)."""
    if not (be.pointwise_as_gemm and is_pointwise(p)):
        return False
    if small_groups(p):  # unless the primitive runs them NHWC (``nhwc_small_groups``)
        return not (be.conv_layout == "blocked" and nhwc_small_groups(p))
    blocked = blocked_input or (conv_tags(p, be.conv_layout)[1] == BLOCKED_TAG
                                and be.keep_blocked)
    return p.groups == 1 and not blocked
