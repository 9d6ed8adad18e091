"""Argument checks shared by every op family's ``check_*``: arrays, ranks, dtypes,
attribute pairs, axes and padding, each naming the argument and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.quantization import (
    QUANTIZED_DTYPES,
)

FLOAT32 = np.dtype(np.float32)
INT8_DTYPES = QUANTIZED_DTYPES


def array_shape(x: Any, name: str, op: str) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        raise ArgumentError(f"{op}: argument '{name}' must be an array, got {type(x).__name__}")
    return tuple(int(d) for d in shape)


def check_rank(shape: tuple[int, ...], rank: int, name: str, op: str) -> None:
    if len(shape) != rank:
        raise ArgumentError(
            f"{op}: argument '{name}' must have rank {rank}, got shape {shape} (rank {len(shape)})"
        )
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")


def dtype_of(x: Any) -> np.dtype:
    """NumPy dtype of any backend's array (CuPy and NumPy share dtypes; torch spells them
    ``torch.float32``)."""
    try:
        return np.dtype(x.dtype)
    except TypeError:
        return np.dtype(str(x.dtype).rsplit(".", 1)[-1])


def check_dtype(x: Any, allowed: tuple[np.dtype, ...], name: str, op: str) -> np.dtype:
    if not hasattr(x, "dtype"):  # not an array at all (a str, a list): say so
        array_shape(x, name, op)
    try:
        dtype = dtype_of(x)
    except TypeError as exc:  # a ``dtype`` attribute NumPy cannot read (no numeric dtype)
        raise DTypeError(f"{op}: argument '{name}' has no numeric dtype: "
                         f"{getattr(x, 'dtype', None)!r} ({exc})") from exc
    if dtype not in allowed:
        names = " or ".join(str(d) for d in allowed)
        raise DTypeError(f"{op}: argument '{name}' must have dtype {names}, got {dtype}")
    return dtype


def int_pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
            raise ArgumentError(f"{op}: argument '{name}' must hold integers, got {value!r}")
        pair = (int(pair[0]), int(pair[1]))
    else:
        raise ArgumentError(
            f"{op}: argument '{name}' must be an int or an (h, w) pair, got {value!r}")
    if min(pair) < minimum:
        raise ArgumentError(f"{op}: argument '{name}' must be >= {minimum}, got {value!r}")
    return pair


def normalize_padding(padding: Any, op: str = "conv2d") -> tuple[int, int, int, int]:
    """int, (h, w) or ONNX's (h_begin, w_begin, h_end, w_end) -> the ONNX 4-tuple."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in padding):
            raise ArgumentError(f"{op}: argument 'padding' must hold integers, got {padding!r}")
        pads = tuple(int(p) for p in padding)
        if min(pads) < 0:
            raise ArgumentError(f"{op}: argument 'padding' must be >= 0, got {padding!r}")
        return pads  # type: ignore[return-value]
    ph, pw = int_pair(padding, "padding", op, minimum=0)
    return (ph, pw, ph, pw)


# What the data-movement kernels (reshape, transpose, concat, slice/gather/expand/pad/tile)
# move: they only copy or pick values, so any of these element types. int64: token ids and
# masks moved at run time; the 8- and 16-bit integers: quantized codes; bool: masks.
LAYOUT_DTYPES = (FLOAT32, np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32),
                 np.dtype(np.int64), np.dtype(np.int16), np.dtype(np.uint16),
                 np.dtype(np.bool_))


def check_flag(value: Any, name: str, op: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{op}: argument '{name}' must be a bool, got {value!r}")
    return bool(value)


def check_axis(axis: Any, rank: int, op: str, name: str = "axis") -> int:
    """An ONNX axis in [-rank, rank) -> its non-negative value."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ArgumentError(f"{op}: argument '{name}' must be an int, got {axis!r}")
    if not -rank <= int(axis) < rank:
        raise ArgumentError(
            f"{op}: argument '{name}'={int(axis)} is out of range for rank {rank} "
            f"(expected {-rank} <= {name} < {rank})")
    return int(axis) % rank


def check_nonempty(shape: tuple[int, ...], name: str, op: str) -> None:
    if any(d == 0 for d in shape):
        raise ArgumentError(f"{op}: argument '{name}' has a zero-size dimension: shape {shape}")


def check_real(value: Any, name: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{op}: argument '{name}' must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ArgumentError(f"{op}: argument '{name}' must be finite, got {value!r}")
    return float(value)


def broadcast(shapes: tuple[tuple[int, ...], ...], names: tuple[str, ...],
              op: str) -> tuple[int, ...]:
    """The NumPy broadcast of ``shapes``, or an ArgumentError naming the arguments and the
    dimension where they differ."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for i in range(rank):
        dims = {p[i] for p in padded} - {1}
        if len(dims) > 1:
            detail = ", ".join(f"'{n}' {tuple(s)}" for n, s in zip(names, shapes, strict=True))
            sizes = " and ".join(f"{p[i]} in {n}" for n, p in zip(names, padded, strict=True))
            raise ArgumentError(f"{op}: arguments {detail} do not broadcast: dimension "
                                f"{i - rank} is {sizes}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)

