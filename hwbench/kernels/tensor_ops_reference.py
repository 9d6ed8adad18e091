"""float64 references for the run-time data-movement ops (ONNX Slice, Gather, Expand,
Pad, Tile), written from ONNX's definitions with NumPy's own slicing, ``take``,
``broadcast_to``, ``pad`` and ``tile``: independent of the index tables the kernels use."""

from __future__ import annotations

import numpy as np


def slice_ref(x, starts, ends, axes=None, steps=None) -> np.ndarray:
    x = np.asarray(x, np.float64)
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        start, end, step = int(start), int(end), int(step)
        # Python's slice clamps as ONNX does, except a start before the first element when
        # stepping backwards (ONNX clamps it to 0, Python reads it as empty)
        if step < 0 and start < -x.shape[axis]:
            start = 0
        index[axis] = slice(start, end, step)
    return x[tuple(index)].copy()


def gather_ref(x, indices, axis=0) -> np.ndarray:
    return np.take(np.asarray(x, np.float64), np.asarray(indices, np.int64), axis=axis)


def expand_ref(x, shape) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
    return np.broadcast_to(x, out).copy()


def pad_ref(x, pads, mode="constant", value=0.0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    rank = x.ndim
    crop = tuple(slice(max(-int(pads[d]), 0), x.shape[d] - max(-int(pads[rank + d]), 0))
                 for d in range(rank))
    widths = [(max(int(pads[d]), 0), max(int(pads[rank + d]), 0)) for d in range(rank)]
    if mode == "constant":
        return np.pad(x[crop], widths, mode="constant", constant_values=value)
    return np.pad(x[crop], widths, mode=mode)


def tile_ref(x, repeats) -> np.ndarray:
    return np.tile(np.asarray(x, np.float64), tuple(int(r) for r in repeats))
