"""Tensor data movement at run time (ONNX Slice, Gather, Expand, Pad, Tile): argument
checks, output shapes and byte counts.

Every op here is one *axis-wise take*: output element ``(o_0, ..., o_r)`` is the input
element ``(t_0[o_0], ..., t_r[o_r])`` of one per-axis index table each, or ``fill`` where
any table holds -1 (Pad's constant border). The checks build those tables on the host
with exact integer arithmetic (clamped Slice bounds, normalized Gather indices, broadcast
and tiled positions, reflected and edge borders), so a backend implements one kernel,
``_take``, and gets every op with ONNX's exact semantics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.kernels.spec.arguments import (
    LAYOUT_DTYPES,
    array_shape,
    check_axis,
    check_dtype,
    check_nonempty,
    check_real,
)

PAD_MODES = ("constant", "reflect", "edge", "wrap")
MAX_RANK = 8  # the OpenCL/CUDA kernels' index arithmetic holds this many axes


@dataclass(frozen=True, eq=False)
class TakeProblem:
    """One axis-wise take: ``tables[a]`` (int64, -1 = ``fill``) indexes axis ``a`` of the
    input viewed as ``in_shape`` (the same elements in C order: Expand pads the rank with
    leading 1s); the result is laid out as ``take_shape`` and returned as ``shape`` (Gather
    with N-d indices takes along their flattened list)."""

    op: str
    in_shape: tuple[int, ...]
    take_shape: tuple[int, ...]
    shape: tuple[int, ...]
    tables: tuple[np.ndarray, ...]
    fill: float = 0.0
    itemsize: int = 4
    axis: int | None = None  # Gather's: every other table is whole, no fill

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def has_fill(self) -> bool:
        return any(bool((t < 0).any()) for t in self.tables)

    def in_strides(self) -> tuple[int, ...]:
        """Element strides of the C-contiguous input viewed as ``in_shape``."""
        strides, step = [], 1
        for extent in reversed(self.in_shape):
            strides.append(step)
            step *= extent
        return tuple(reversed(strides))

    def basic_slices(self) -> tuple[slice, ...] | None:
        """The take as one basic slice per axis (Slice; an arithmetic progression with no
        fill), or None where some table is not one."""
        out = []
        for table in self.tables:
            start = int(table[0])
            step = int(table[1] - table[0]) if len(table) > 1 else 1
            if step == 0 or table.min() < 0 or not np.array_equal(
                    table, start + step * np.arange(len(table))):
                return None
            stop = start + step * len(table)
            out.append(slice(start, None if stop < 0 else stop, step))
        return tuple(out)

    def apply(self, x: Any, xp: Any = np) -> Any:
        """The take with array module ``xp`` (NumPy, or CuPy) on ``x``: a fresh
        C-contiguous array of ``shape``."""
        x = x.reshape(self.in_shape)
        if self.axis is not None:  # one take (an embedding lookup: 2 µs, not 25)
            table = xp.asarray(self.tables[self.axis])
            return xp.ascontiguousarray(xp.take(x, table, axis=self.axis)).reshape(self.shape)
        slices = self.basic_slices()
        if slices is not None:
            return x[slices].copy().reshape(self.shape)
        out = x[xp.ix_(*(xp.asarray(np.maximum(t, 0)) for t in self.tables))]
        for axis, table in enumerate(self.tables):
            border = np.flatnonzero(table < 0)
            if border.size:
                out[(slice(None),) * axis + (xp.asarray(border),)] = self.fill
        return xp.ascontiguousarray(out).reshape(self.shape)

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return self.itemsize * self.size

    @property
    def bytes(self) -> int:
        return 2 * self.itemsize * self.size


def _ints(value: Any, name: str, op: str, length: int | None = None) -> tuple[int, ...]:
    """A 1-D list of ints (tuple, list or host integer array)."""
    if isinstance(value, np.ndarray):
        if value.ndim > 1 or value.dtype.kind not in "iu":
            raise ArgumentError(f"{op}: argument '{name}' must be a 1-D integer array, got "
                                f"shape {value.shape} dtype {value.dtype}")
        value = value.ravel().tolist()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise ArgumentError(f"{op}: argument '{name}' must be a sequence of ints, got {value!r}")
    if length is not None and len(value) != length:
        raise ArgumentError(f"{op}: argument '{name}' must hold {length} ints, got "
                            f"{len(value)}: {tuple(value)}")
    return tuple(int(v) for v in value)


def _source(x: Any, op: str) -> tuple[tuple[int, ...], np.dtype]:
    shape = array_shape(x, "x", op)
    check_nonempty(shape, "x", op)
    dtype = check_dtype(x, LAYOUT_DTYPES, "x", op)
    if len(shape) > MAX_RANK:
        raise UnsupportedError(f"{op}: argument 'x' has rank {len(shape)}; at most "
                               f"{MAX_RANK} axes are supported")
    return shape, dtype


def _problem(op: str, in_shape, tables, dtype, fill=0.0, shape=None,
             axis: int | None = None) -> TakeProblem:
    take_shape = tuple(len(t) for t in tables)
    shape = take_shape if shape is None else tuple(shape)
    if math.prod(take_shape) == 0:
        raise UnsupportedError(f"{op}: the result has a zero-size dimension (shape {shape}); "
                               f"hwbench's kernels do not produce empty arrays")
    tables = tuple(np.ascontiguousarray(t, np.int64) for t in tables)
    return TakeProblem(op, tuple(in_shape), take_shape, shape, tables, float(fill),
                       dtype.itemsize, axis)


def _axes(axes: Any, count: int, rank: int, op: str) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(count))
    listed = _ints(axes, "axes", op, count)
    out = tuple(check_axis(a, rank, op, "axes") for a in listed)
    if len(set(out)) != len(out):
        raise ArgumentError(f"{op}: argument 'axes' {listed} names an axis twice")
    return out


def slice_range(dim: int, start: int, end: int, step: int) -> range:
    """ONNX Slice's positions along one axis of length ``dim``: negative bounds count from
    the end, then bounds are clamped ([0, dim] forward, [-1, dim - 1] backward)."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


def check_slice(x: Any, starts: Any, ends: Any, axes: Any = None,
                steps: Any = None) -> TakeProblem:
    """Validate ONNX Slice (opset >= 10): ``starts``/``ends`` per listed axis (all axes in
    order when ``axes`` is None), ``steps`` non-zero (1 when None)."""
    op = "slice"
    shape, dtype = _source(x, op)
    begin = _ints(starts, "starts", op)
    stop = _ints(ends, "ends", op, len(begin))
    picked = _axes(axes, len(begin), len(shape), op)
    step = (1,) * len(begin) if steps is None else _ints(steps, "steps", op, len(begin))
    if 0 in step:
        raise ArgumentError(f"{op}: argument 'steps' {step} holds 0")
    tables = [np.arange(d) for d in shape]
    for axis, b, e, s in zip(picked, begin, stop, step, strict=True):
        r = slice_range(shape[axis], b, e, s)
        tables[axis] = np.arange(r.start, r.stop, r.step)
    return _problem(op, shape, tables, dtype)


def check_gather(x: Any, indices: Any, axis: Any = 0) -> TakeProblem:
    """Validate ONNX Gather: ``indices`` is a host NumPy integer array (or ints), each in
    [-dim, dim) of ``x``'s ``axis`` (negative ones count from the end); the result has
    shape ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]``."""
    op = "gather"
    shape, dtype = _source(x, op)
    ax = check_axis(axis, len(shape), op)
    if hasattr(indices, "shape") and not isinstance(indices, (np.ndarray, np.generic)):
        raise ArgumentError(
            f"{op}: argument 'indices' must be a host NumPy integer array (indices are read "
            f"on the host to be bounds-checked), got a {type(indices).__module__}."
            f"{type(indices).__qualname__}")
    try:
        idx = np.asarray(indices)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{op}: argument 'indices' is not an integer array: {exc}") from exc
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: argument 'indices' must have an integer dtype, got {idx.dtype}")
    dim = shape[ax]
    flat = idx.astype(np.int64).ravel()
    bad = flat[(flat < -dim) | (flat >= dim)]
    if bad.size:
        raise ArgumentError(f"{op}: argument 'indices' holds {int(bad[0])}, out of range "
                            f"[{-dim}, {dim}) for axis {ax} of x.shape={shape}")
    tables = [np.arange(d) for d in shape]
    tables[ax] = np.where(flat < 0, flat + dim, flat)
    out = shape[:ax] + tuple(int(d) for d in idx.shape) + shape[ax + 1:]
    return _problem(op, shape, tables, dtype, shape=out, axis=ax)


def check_expand(x: Any, shape: Any) -> TakeProblem:
    """Validate ONNX Expand: ``x`` broadcast with ``shape`` (bidirectionally, as NumPy)."""
    op = "expand"
    sx, dtype = _source(x, op)
    target = _ints(shape, "shape", op)
    if any(d < 1 for d in target):
        raise ArgumentError(f"{op}: argument 'shape' {target} must hold positive ints")
    rank = max(len(sx), len(target))
    if rank > MAX_RANK:
        raise UnsupportedError(f"{op}: a rank-{rank} result; at most {MAX_RANK} axes")
    padded = (1,) * (rank - len(sx)) + sx
    want = (1,) * (rank - len(target)) + target
    tables = []
    for d, (have, need) in enumerate(zip(padded, want, strict=True)):
        if have != need and 1 not in (have, need):
            raise ArgumentError(f"{op}: argument 'shape' {target} does not broadcast with "
                                f"x.shape={sx} (axis {d}: {have} vs {need})")
        out = max(have, need)
        tables.append(np.arange(out) if have == out else np.zeros(out, np.int64))
    return _problem(op, padded, tables, dtype)


def check_pad(x: Any, pads: Any, mode: Any = "constant", value: Any = 0.0) -> TakeProblem:
    """Validate ONNX Pad: ``pads`` = (begin per axis..., end per axis...), negative ones
    crop; ``mode`` constant (``value`` fills), reflect, edge or wrap."""
    op = "pad"
    shape, dtype = _source(x, op)
    rank = len(shape)
    amounts = _ints(pads, "pads", op, 2 * rank)
    if mode not in PAD_MODES:
        raise ArgumentError(f"{op}: argument 'mode' must be one of {PAD_MODES}, got {mode!r}")
    fill = check_real(value, "value", op)
    if dtype.kind != "f" and fill != int(fill):
        raise ArgumentError(f"{op}: argument 'value' {fill} is not a {dtype} value")
    tables = []
    for d, dim in enumerate(shape):
        before, after = amounts[d], amounts[rank + d]
        kept = np.arange(max(-before, 0), dim - max(-after, 0))
        if kept.size == 0:
            raise ArgumentError(f"{op}: argument 'pads' {amounts} crops all of axis {d} "
                                f"(x.shape={shape})")
        widths = (max(before, 0), max(after, 0))
        if mode == "constant":
            tables.append(np.pad(kept, widths, constant_values=-1))
        elif mode == "reflect" and kept.size == 1 and max(widths) > 0:
            raise ArgumentError(f"{op}: mode 'reflect' needs 2 or more values along axis {d} "
                                f"(x.shape={shape}, pads {amounts})")
        else:
            tables.append(np.pad(kept, widths, mode=mode))
    return _problem(op, shape, tables, dtype, fill=fill)


def check_tile(x: Any, repeats: Any) -> TakeProblem:
    """Validate ONNX Tile: ``repeats`` holds one positive count per axis of ``x``."""
    op = "tile"
    shape, dtype = _source(x, op)
    reps = _ints(repeats, "repeats", op, len(shape))
    if any(r < 1 for r in reps):
        raise ArgumentError(f"{op}: argument 'repeats' {reps} must hold positive ints")
    return _problem(op, shape, [np.tile(np.arange(d), r) for d, r in zip(shape, reps,
                                                                        strict=True)], dtype)
