"""QLinearConcat, QLinearAdd, QLinearMul, QLinearSigmoid and QLinearLeakyRelu on 8-bit
codes by lookup tables (issue 16).

Each output code of QLinearConcat is a function of one input code (dequantize with the
input's scale and zero point, quantize with the output's), and each of QLinearAdd's and
QLinearMul's (per-tensor parameters) a function of two: 256 or 65,536 possible
arguments. The table is filled once per parameters by the ``numpy`` backend's own
``dequantize_linear`` -> ``add``/``mul`` -> ``quantize_linear`` on every code (pair), so
a lookup gives the reference's codes bit for bit in every requantization mode, in one
pass instead of dequantize, operate and quantize. Where a concat's table is the identity
(same scale, zero point and dtype: ``(q - z)·s / s`` rounds back to ``q``) the input's
codes are copied. Channels-last inputs stay channels-last: a concat on channels writes
each input straight into its slice of the output, with no transpose.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import numpy as np

from hwbench.backends.cpu.layouts import ChannelsLastArray, nhwc_axis

_TABLES_KEPT = 256


def _key(value: np.ndarray) -> tuple[str, bytes]:
    value = np.asarray(value)
    return value.dtype.str, value.tobytes()


@lru_cache(maxsize=1)
def _reference():
    from hwbench.backends.numpy_backend import NumpyBackend  # the reference's kernels
    return NumpyBackend()


@lru_cache(maxsize=_TABLES_KEPT)
def _table(in_dtype: str, x_scale: tuple, x_zero: tuple, y_scale: tuple,
           y_zero: tuple) -> np.ndarray | None:
    """The 256 output codes, indexed by the input code's byte; None for the identity."""
    def value(key: tuple) -> np.ndarray:
        return np.frombuffer(key[1], np.dtype(key[0])).reshape(())

    ref = _reference()
    codes = np.arange(256, dtype=np.uint8).view(np.dtype(in_dtype))
    out = ref.to_numpy(ref.quantize_linear(
        ref.dequantize_linear(codes, value(x_scale), value(x_zero)),
        value(y_scale), value(y_zero)))
    if out.dtype == codes.dtype and np.array_equal(out, codes):
        return None
    out = np.ascontiguousarray(out)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=_TABLES_KEPT)
def _pair_table(kind: str, a_dtype: str, a_scale: tuple, a_zero: tuple, b_dtype: str,
                b_scale: tuple, b_zero: tuple, y_scale: tuple, y_zero: tuple,
                relu: bool = False) -> np.ndarray:
    """The 65,536 output codes of ``kind`` ("add", "mul"; then Relu where ``relu``),
    indexed by ``a's byte · 256 + b's byte``."""
    def value(key: tuple) -> np.ndarray:
        return np.frombuffer(key[1], np.dtype(key[0])).reshape(())

    ref = _reference()
    codes = np.arange(256, dtype=np.uint8)
    a = ref.dequantize_linear(codes.view(np.dtype(a_dtype)).reshape(256, 1),
                              value(a_scale), value(a_zero))
    b = ref.dequantize_linear(codes.view(np.dtype(b_dtype)).reshape(1, 256),
                              value(b_scale), value(b_zero))
    y = getattr(ref, kind)(a, b)
    out = ref.to_numpy(ref.quantize_linear(ref.relu(y) if relu else y, value(y_scale),
                                           value(y_zero)))
    out = np.ascontiguousarray(out).reshape(-1)
    out.flags.writeable = False
    return out


def _scalar_key(value) -> tuple[str, bytes]:
    return _key(np.asarray(value).reshape(()))


def qlinear_binary(be, kind: str, a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero,
                   relu: bool = False):
    """QLinearAdd (``kind`` "add") or QLinearMul ("mul") of broadcastable 8-bit codes
    with per-tensor parameters, then Relu where ``relu`` (before quantizing), as codes of
    ``y_zero``'s dtype (a ``ChannelsLastArray`` when both inputs are, of one shape); None
    where this path does not serve."""
    if any(np.size(v) != 1 for v in (a_scale, a_zero, b_scale, b_zero, y_scale, y_zero)):
        return None
    if a.dtype not in (np.uint8, np.int8) or b.dtype not in (np.uint8, np.int8):
        return None
    table = _pair_table(kind, np.dtype(a.dtype).str, _scalar_key(a_scale),
                        _scalar_key(a_zero), np.dtype(b.dtype).str, _scalar_key(b_scale),
                        _scalar_key(b_zero), _scalar_key(y_scale), _scalar_key(y_zero), bool(relu))
    channels_last = isinstance(a, ChannelsLastArray) and isinstance(b, ChannelsLastArray) \
        and a.shape == b.shape
    if channels_last:
        a, b = a.nhwc, b.nhwc
    else:
        a, b = np.asarray(be.to_numpy(a)), np.asarray(be.to_numpy(b))
    shape = np.broadcast_shapes(a.shape, b.shape)
    # The index a·256 + b as uint16 by uint16-only ufuncs: 1.5x faster in all than
    # building it as intp (NumPy's mixed-type loops cast through a buffer).
    index = be._buffers.empty(shape, np.uint16)
    np.copyto(index, a.view(np.uint8))
    np.left_shift(index, 8, out=index)
    np.bitwise_or(index, b.view(np.uint8), out=index)
    out = be._buffers.empty(shape, np.asarray(y_zero).dtype)
    table.take(index, None, out, "clip")  # indices < 65,536
    return ChannelsLastArray(out) if channels_last else out


_LITTLE_ENDIAN = sys.byteorder == "little"
PAIRED_MIN = 1 << 12  # codes: fewer are looked up one by one


@lru_cache(maxsize=64)
def _paired(table: bytes) -> np.ndarray:
    """The 65,536 code pairs of a 256-entry table, as uint16 indexed by two input codes
    read as one little-endian uint16: ``table[lo] | table[hi] << 8``."""
    codes = np.frombuffer(table, np.uint8)
    i = np.arange(65536)
    out = codes[i & 255].astype(np.uint16) | (codes[i >> 8].astype(np.uint16) << 8)
    out.flags.writeable = False
    return out


def lookup_call(table: np.ndarray, codes: np.ndarray, out: np.ndarray) -> Callable[[], Any]:
    """``lookup(table, codes, out)`` for these arrays for good, as one ``ndarray.take``
    call with every argument bound (a chain's link: ``chain_links.table_bind``)."""
    flat, dst = codes.reshape(-1).view(np.uint8), out.reshape(-1)
    if _LITTLE_ENDIAN and table.dtype.itemsize == 1 and codes.size >= PAIRED_MIN \
            and codes.size % 2 == 0:
        pairs = _paired(table.view(np.uint8).tobytes())
        return partial(pairs.take, flat.view(np.uint16), None, dst.view(np.uint16), "clip")
    return partial(table.take, flat, None, dst, "clip")


def lookup(table: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
    """``out = table[codes]`` for 8-bit codes into a C-contiguous ``out``: contiguous codes
    of even count two at a time through the table of pairs (half the lookups: 2x faster,
    55x55x64 codes 154 -> 82 µs), the same codes. ``ndarray.take`` rather than
    ``np.take``: its dispatch cost ~2 µs a call on the busy VM, the method ~0.8."""
    flat = codes.view(np.uint8)
    if _LITTLE_ENDIAN and table.dtype.itemsize == 1 and codes.size >= PAIRED_MIN \
            and codes.size % 2 == 0 and codes.flags.c_contiguous:
        pairs = _paired(table.view(np.uint8).tobytes())
        pairs.take(flat.reshape(-1).view(np.uint16), None, out.reshape(-1).view(np.uint16),
                   "clip")  # indices < 65,536
    else:
        table.take(flat, None, out, "clip")  # indices < 256


def _map(be, codes: np.ndarray, table: np.ndarray | None, out: np.ndarray) -> None:
    if table is None:
        out[...] = codes
    elif out.flags.c_contiguous:
        lookup(table, codes, out)
    else:  # a slice of the concat's output
        part = be._buffers.empty(codes.shape, out.dtype)
        lookup(table, codes, part)
        np.copyto(out, part)


def qlinear_concat(be, parts: list, params: list, y_scale: np.ndarray,
                   y_zero: np.ndarray, axis: int):
    """``parts`` (8-bit codes, NCHW or ``ChannelsLastArray``) with their per-tensor
    ``(scale, zero_point)`` in ``params``, concatenated on ``axis`` into codes of
    ``y_zero``'s dtype; None where this path does not serve (per-channel parameters,
    codes of another dtype) and the caller's general path must."""
    if any(np.size(s) != 1 or np.size(z) != 1 for s, z in params) or np.size(y_scale) != 1 \
            or np.size(y_zero) != 1:
        return None
    if any(p.dtype not in (np.uint8, np.int8) for p in parts):
        return None
    ys, yz = _key(np.asarray(y_scale).reshape(())), _key(np.asarray(y_zero).reshape(()))
    tables = [_table(np.dtype(p.dtype).str, _key(np.asarray(s).reshape(())),
                     _key(np.asarray(z).reshape(())), ys, yz)
              for p, (s, z) in zip(parts, params, strict=True)]
    dtype = np.asarray(y_zero).dtype
    channels_last = all(isinstance(p, ChannelsLastArray) for p in parts)
    if channels_last:
        arrays, ax = [p.nhwc for p in parts], nhwc_axis(axis)
    else:
        arrays, ax = [np.asarray(be.to_numpy(p)) for p in parts], axis
    shape = list(arrays[0].shape)
    shape[ax] = sum(a.shape[ax] for a in arrays)
    out = be._buffers.empty(tuple(shape), dtype)
    start = 0
    for codes, table in zip(arrays, tables, strict=True):
        index = [slice(None)] * len(shape)
        index[ax] = slice(start, start + codes.shape[ax])
        _map(be, codes, table, out[tuple(index)])
        start += codes.shape[ax]
    return ChannelsLastArray(out) if channels_last else out


_UNARY_TABLES: dict[tuple, np.ndarray] = {}


def unary_table(fn, key: tuple, dtype: np.dtype, x_scale, x_zero, y_scale,
                y_zero) -> np.ndarray | None:
    """The 256 output codes of an elementwise quantized op for codes of ``dtype``: ``fn``
    (see ``qlinear_unary``) filled it once, on the ``numpy`` backend; ``fn`` None: the
    table kept, or None (a plan's replay finds what its traced run filled)."""
    full = (key, np.dtype(dtype).str, _scalar_key(x_scale), _scalar_key(x_zero),
            _scalar_key(y_scale), _scalar_key(y_zero))
    table = _UNARY_TABLES.get(full)
    if table is None and fn is not None:
        ref = _reference()
        x = np.arange(256, dtype=np.uint8).view(dtype)
        y = ref.quantize_linear(fn(ref, ref.dequantize_linear(x, np.asarray(x_scale),
                                                               np.asarray(x_zero))),
                                np.asarray(y_scale), np.asarray(y_zero))
        table = np.ascontiguousarray(ref.to_numpy(y))
        table.flags.writeable = False
        if len(_UNARY_TABLES) >= _TABLES_KEPT:
            _UNARY_TABLES.clear()
        _UNARY_TABLES[full] = table
    return table


def qlinear_unary(be, fn, key: tuple, codes, x_scale, x_zero, y_scale, y_zero):
    """An elementwise quantized op (QLinearSigmoid, QLinearLeakyRelu): ``fn(backend,
    floats)`` on the dequantized codes, quantized, through a 256-entry table that ``fn``
    fills once on the ``numpy`` backend; ``key`` names ``fn`` (op and attributes). None
    where this path does not serve."""
    if any(np.size(v) != 1 for v in (x_scale, x_zero, y_scale, y_zero)) or \
            codes.dtype not in (np.uint8, np.int8):
        return None
    table = unary_table(fn, key, codes.dtype, x_scale, x_zero, y_scale, y_zero)
    held = isinstance(codes, ChannelsLastArray)
    array = codes.nhwc if held else np.asarray(be.to_numpy(codes))
    out = be._buffers.empty(array.shape, table.dtype)
    lookup(table, np.ascontiguousarray(array), out)
    return ChannelsLastArray(out) if held else out
