"""Activation layouts the cpu backend keeps between kernels instead of plain NCHW.

``BlockedArray``: float32 in oneDNN's blocked nChw16c (convolutions, pooling, concat);
``ChannelsLastArray``: an int8 model's NHWC activations. Each says its logical NCHW
``shape``; ``CpuBackend._plain`` converts either for every other reader.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, Primitive
from hwbench.kernels import spec

# Activation layouts a convolution may run in (oneDNN format tags). "blocked" is
# nChw16c where the channels allow it: measured on Zen 4 at ResNet-50's 3x3 layers,
# batch 8, including the reorders from and to NCHW, it ran 4-9 % faster than letting
# oneDNN pick ("any" chose NHWC, brgconv) and 40-70 % faster than plain NCHW (gemm:jit).
CONV_LAYOUTS = {"blocked": "aBcd16b", "any": "any", "nhwc": "acdb", "nchw": "abcd"}
BLOCKED_TAG = CONV_LAYOUTS["blocked"]
NHWC_DEPTHWISE = True  # ``nhwc_depthwise`` (a switch for A/B measurements)
NHWC_TAG = CONV_LAYOUTS["nhwc"]
NHWC_SMALL_GROUPS = True  # ``nhwc_small_groups`` (a switch for A/B measurements)


class BlockedArray:
    """A float32 NCHW activation held in a oneDNN blocked layout between cpu kernels.

    With ``keep_blocked=True`` a convolution returns one of these instead of reordering
    its output back to NCHW, and the next convolution (or pooling) reads it as it is:
    ResNet-50 then runs with no reorders between layers. ``shape`` and ``dtype`` are the
    logical ones (what the spec checks see); ``md`` is the exact memory descriptor the
    buffer is laid out by (format, blocking, channel padding): a kernel reads the buffer
    as it is only where its own descriptor for that argument is equal, and converts it
    otherwise. Every kernel that needs plain memory, and ``to_numpy``, converts it with
    one reorder (``CpuBackend._plain``).
    """

    __slots__ = ("buffer", "shape", "dtype", "md", "_to_plain")

    def __init__(self, buffer: np.ndarray, shape: tuple[int, ...], md: onednn.MemoryDesc,
                 to_plain: Primitive | None) -> None:
        if buffer.nbytes < md.size:
            raise AssertionError(f"a {buffer.nbytes}-byte buffer for a {md.size}-byte layout")
        self.buffer = buffer          # raw bytes, sized for the blocked descriptor
        self.shape = tuple(shape)
        self.dtype = spec.FLOAT32
        self.md = md                  # the layout of ``buffer``
        self._to_plain = to_plain     # reorder primitive: this layout -> NCHW

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def plain(self, out: np.ndarray) -> np.ndarray:
        """Reorder into ``out`` (a C-contiguous float32 array of ``shape``)."""
        if self._to_plain is None:  # the layout is plain already
            np.copyto(out.reshape(-1), self.buffer.reshape(-1).view(np.float32)[:out.size])
        else:
            self._to_plain.execute({ARG_SRC: self.buffer, ARG_DST: out})
        return out

    def __repr__(self) -> str:
        return f"<BlockedArray {self.shape} float32 blocked>"


class ChannelsLastArray:
    """An NCHW activation held channels-last (NHWC) in an int8 model's session.

    The int8 convolution is one GEMM of pixel-major patches (or oneDNN's int8 primitive),
    whose product comes out NHWC; in a session (``keep_blocked``) it stays so, and the
    next int8 convolution reads it directly (a 1×1 one needs no copy at all). The float
    ops between int8 convolutions (DequantizeLinear, Add, Relu, MaxPool, QuantizeLinear)
    keep it NHWC too (8-bit or float32): they are elementwise or layout-aware, so no
    transpose runs between layers. ``shape`` is the logical NCHW one;
    ``CpuBackend._plain`` transposes for every other reader.
    """

    __slots__ = ("nhwc", "shape", "dtype")

    def __init__(self, nhwc: np.ndarray) -> None:
        self.nhwc = nhwc
        n, h, w, c = nhwc.shape
        self.shape = (n, c, h, w)
        self.dtype = nhwc.dtype

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return self.nhwc.size

    def __repr__(self) -> str:
        return f"<ChannelsLastArray {self.shape} {self.dtype} NHWC>"


def conv_tags(p: spec.ConvProblem, layout: str) -> tuple[str, str]:
    """The (src, dst) activation format tags a convolution's primitive is created with.

    "blocked" (channels padded to multiples of 16) needs 16 output channels or more and
    no groups (or one per channel: a depthwise conv), else oneDNN chooses; a
    first layer with few input channels (RGB) reads plain NCHW and writes blocked, which
    oneDNN's jit kernel does directly.
    """
    if layout != "blocked":
        return CONV_LAYOUTS[layout], CONV_LAYOUTS[layout]
    if nhwc_small_groups(p):
        return NHWC_TAG, NHWC_TAG
    if p.groups > 1:  # depthwise: oneDNN's jit kernel reads nChw16c
        return (BLOCKED_TAG, BLOCKED_TAG) if p.groups == p.c == p.k else ("any", "any")
    if p.k < 16:
        return "any", "any"
    # Channels not a multiple of 16 (MobileNet's 24, EfficientNet's 40, 80, 112) are
    # padded to whole blocks: still one jit kernel, and no reorders between layers.
    return (BLOCKED_TAG, BLOCKED_TAG) if p.c >= 16 else ("abcd", BLOCKED_TAG)


def nhwc_small_groups(p: spec.ConvProblem) -> bool:
    """A grouped 1×1 conv with fewer channels per group than one nChw16c block
    (ShuffleNet v1's first: 6 in, 28 out per group) runs NHWC in and out: oneDNN's
    ``jit:avx512_core`` kernel serves it there, where on nChw16c or NCHW it falls back to
    ``gemm:jit``. One thread, busy Zen 4, 24→112 in 4 groups at 56×56 with its Relu:
    82 µs against 276 µs (``gemm:jit``) and ~200 µs as four GEMMs and their epilogue;
    48→96 in 8 groups 91 against 236 µs. (Grouped 3×3 convs of small groups stay as
    they were: 64→64 in 8 groups ran 373 µs NHWC against 297 µs.)"""
    return NHWC_SMALL_GROUPS and 1 < p.groups < p.c and (p.r, p.s) == (1, 1) \
        and min(p.c, p.k) // p.groups < 16


def nhwc_depthwise(be: Any, p: spec.ConvProblem, x: Any) -> bool:
    """Whether the depthwise conv ``p`` reads ``x`` as NHWC and writes NHWC: ``x`` is an
    NHWC ``BlockedArray`` (ShuffleNet's shuffle output, whose next grouped 1x1 conv also
    reads NHWC): no reorder to nChw16c before it, none back after."""
    if not NHWC_DEPTHWISE or type(x) is not BlockedArray or not p.groups == p.c == p.k > 1:
        return False
    nchw = tuple(x.shape)
    return x.md == be._primitive(("nhwc_md", nchw),
                                 lambda: be.dnnl.memory_desc(nchw, "f32", tag="acdb"))


def nhwc_axis(axis: int | None) -> int | None:
    """An NCHW axis's position in NHWC (None: per tensor)."""
    return None if axis is None else (0, 3, 1, 2)[axis]
