"""The cpu backend's run-time data movement (Slice, Gather, Expand, Pad, Tile).

Native on oneDNN where it has the operation: a step-1 Slice is one reorder from a box of
the input (``dnnl_memory_desc_create_submemory``) to a plain output, and a constant Pad
(or a crop) is one reorder of the (cropped) input into a box of the filled output.
oneDNN has no gather, broadcast, mirrored or stepped copy, so Gather, Expand, Tile,
stepped or backward slices and reflect/edge/wrap Pad run the axis-wise take of
``spec.TakeProblem`` with NumPy on the plain host array, as the backend's transpose does.
A oneDNN blocked array is reordered to plain first (``_plain``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.cpu import channel_shuffle
from hwbench.backends.cpu.layouts import BlockedArray, ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, MAX_NDIMS, NUMPY_TO_DNNL_DT
from hwbench.backends.cpu.primitives import reorder
from hwbench.backends.prepared_steps import prepared_gather, prepared_rnn
from hwbench.kernels import spec


def _forward_run(table: np.ndarray) -> int | None:
    """The first input where ``table`` is consecutive inputs (a step-1 slice), else None."""
    first = int(table[0])
    if first < 0 or not np.array_equal(table, first + np.arange(table.size)):
        return None
    return first


def _bordered_run(table: np.ndarray) -> tuple[int, int, int] | None:
    """(position, first input, length) where ``table`` is fill (-1) around one run of
    consecutive inputs (a constant pad or crop of one axis), else None."""
    inside = np.flatnonzero(table >= 0)
    if inside.size == 0 or inside[-1] != inside[0] + inside.size - 1:
        return None
    first = _forward_run(table[inside[0]:inside[-1] + 1])
    return None if first is None else (int(inside[0]), first, int(inside.size))


def channel_table(p: spec.TakeProblem, x) -> np.ndarray | None:
    """The channel table of a take from a ``ChannelsLastArray`` that indexes its channels
    (axis 1) only, every other axis whole and no fill (ShuffleNet's channel Gather and
    Slices of int8 codes), else None."""
    if type(x) is not ChannelsLastArray or p.in_shape != x.shape or p.take_shape != p.shape:
        return None
    if len(p.shape) != 4 or any(_forward_run(p.tables[a]) != 0 or p.tables[a].size != p.shape[a]
                                for a in (0, 2, 3)):
        return None
    return None if bool((p.tables[1] < 0).any()) else p.tables[1]


def channel_copier(table: np.ndarray, channels: int):
    """``copy(nhwc, out)``: ``out[..., j] = nhwc[..., table[j]]`` as a slice of the last
    axis (a run of channels), one strided copy per group (a channel shuffle: 2x faster
    than a take), or one take along it."""
    first = _forward_run(table)
    groups = 0 if first is not None else channel_shuffle.shuffle_groups(table, channels)
    if first is not None:
        end = first + table.size
        return lambda nhwc, out: np.copyto(out, nhwc[..., first:end])
    if groups:
        per = table.size // groups

        def shuffle(nhwc: np.ndarray, out: np.ndarray) -> None:
            interleaved = out.reshape(out.shape[:3] + (per, groups))
            for g in range(groups):
                np.copyto(interleaved[..., g], nhwc[..., g * per:(g + 1) * per])
        return shuffle
    return lambda nhwc, out: np.take(nhwc, table, axis=3, out=out)


class TensorOpsKernels:
    """Mixed into ``CpuBackend`` (its oneDNN handle, primitive cache, buffers, ``_plain``)."""

    def _prepared_step(self, step: Any, args: list[Any], out: Any, problem: Any) -> Any:
        """A compiled plan's replay of a node whose checks read run-time values
        (``Plan._host_step``): Gather of plain arrays (``prepared_steps``), an RNN's
        traced sequence lengths (also there), else None."""
        if step.node.domain or not getattr(self, "fast_replay", True):
            return None
        if step.node.op_type == "Gather":
            return prepared_gather(self, step, args, out)
        if step.node.op_type in ("RNN", "GRU", "LSTM"):
            return prepared_rnn(self, step, args, out, problem)
        return None

    def _take(self, p: spec.TakeProblem, x) -> np.ndarray | ChannelsLastArray | BlockedArray:
        table = channel_table(p, x)
        if table is not None:
            return self._take_channels(table, x)
        groups = channel_shuffle.float_shuffle_groups(p, x)
        if groups and (moved := channel_shuffle.shuffle(self, x, groups)) is not None:
            return moved
        return p.apply(np.asarray(self._plain(x)))

    def _take_channels(self, table: np.ndarray, x: ChannelsLastArray) -> ChannelsLastArray:
        """Channels of a channels-last array, kept channels-last (``channel_copier``),
        where a plain result would cost a transpose here and another before the next
        int8 convolution."""
        nhwc = x.nhwc
        out = self._buffers.empty(nhwc.shape[:3] + (table.size,), nhwc.dtype)
        channel_copier(table, nhwc.shape[3])(nhwc, out)
        return ChannelsLastArray(out)

    def _box_copy(self, p: spec.TakeProblem, x: np.ndarray, dims: tuple[int, ...],
                  src_at: tuple[int, ...], dst_at: tuple[int, ...], fill: bool) -> np.ndarray:
        """The ``dims`` box of ``x`` at ``src_at`` copied by one oneDNN reorder into the
        output (``take_shape``; filled first when ``fill``) at ``dst_at``."""
        d = self.dnnl
        d.set_num_threads(self._threads_now)

        def build():
            src = d.submemory_desc(d.memory_desc(p.in_shape, x.dtype), dims, src_at)
            dst = d.submemory_desc(d.memory_desc(p.take_shape, x.dtype), dims, dst_at)
            return reorder(d, src, dst)

        prim = self._primitive(("box_copy", p.in_shape, p.take_shape, dims, src_at, dst_at,
                                x.dtype.str), build)
        if prim is None:  # the same layout both sides (the whole input): a plain copy
            return self._take(p, x)
        out = self._buffers.empty(p.take_shape, x.dtype)
        if fill:
            out.fill(p.fill)
        prim.execute({ARG_SRC: x, ARG_DST: out})
        return out.reshape(p.shape)

    def _slice(self, p: spec.TakeProblem, x) -> np.ndarray | ChannelsLastArray:
        table = channel_table(p, x)
        if table is not None:
            return self._take_channels(table, x)
        x = np.ascontiguousarray(self._plain(x)).reshape(p.in_shape)
        firsts = [_forward_run(t) for t in p.tables]
        if None in firsts or x.dtype not in NUMPY_TO_DNNL_DT or len(p.take_shape) > MAX_NDIMS:
            return self._take(p, x)  # a stepped or backward slice: no oneDNN descriptor
        return self._box_copy(p, x, p.take_shape, tuple(firsts), (0,) * x.ndim, False)

    def _pad(self, p: spec.TakeProblem, x) -> np.ndarray:
        x = np.ascontiguousarray(self._plain(x)).reshape(p.in_shape)
        runs = [_bordered_run(t) for t in p.tables]
        if None in runs or x.dtype not in NUMPY_TO_DNNL_DT or len(p.take_shape) > MAX_NDIMS:
            return self._take(p, x)  # a mirrored or repeated border: no oneDNN primitive
        return self._box_copy(p, x, tuple(n for _, _, n in runs),
                              tuple(first for _, first, _ in runs),
                              tuple(begin for begin, _, _ in runs), p.has_fill)
