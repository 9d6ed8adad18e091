"""What a prepared cpu call computes, as a write from one address into another (a
``Link``), so that ``hwbench.graph.chain`` can run a tiny graph's calls back to back
through buffers it owns (issue 16).

A prepared call (``prepared_kernels``) checks its arguments, takes an output from its
factory, reads two addresses and runs its bound primitive: at mlp's 64×64 Gemm that is
~1 µs of Python around ~1.2 µs of oneDNN. A link is the last part alone: ``into(src,
dst)`` with the layouts it was built for (``src``, ``dst``: a plain float32 array's shape,
a blocked oneDNN layout, or 8-bit codes of an int8 graph, plain or channels-last) and the
bytes ``dst`` needs. A view (a Reshape of a plain
array) has ``into=None``: the same memory read as another shape.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.buffer_pool import aligned_empty

# ("plain", shape), ("blocked", MemoryDesc), ("codes" | "nhwc", (shape, dtype string))
Kind = tuple[str, Any]
_F32 = np.dtype(np.float32)


def plain(shape: tuple[int, ...], dtype: Any = _F32) -> Kind:
    """A C-contiguous array of ``shape`` (float32, else ``codes``' kind for its dtype)."""
    shape = tuple(int(d) for d in shape)
    return ("plain", shape) if np.dtype(dtype) == _F32 else codes(shape, dtype)


def codes(shape: tuple[int, ...], dtype: Any) -> Kind:
    """A C-contiguous array of ``shape`` and another dtype than float32 (an int8 graph's
    8-bit codes, NCHW or flat)."""
    return ("codes", (tuple(int(d) for d in shape), np.dtype(dtype).str))


def nhwc(shape: tuple[int, ...], dtype: Any) -> Kind:
    """A ``ChannelsLastArray``'s C-contiguous NHWC buffer of ``shape`` (N, H, W, C)."""
    return ("nhwc", (tuple(int(d) for d in shape), np.dtype(dtype).str))


def blocked(md: Any) -> Kind:
    """A buffer in oneDNN layout ``md`` (a ``BlockedArray``'s)."""
    return ("blocked", md)


def kind_bytes(kind: Kind) -> int:
    """Bytes a buffer of ``kind`` needs."""
    if kind[0] == "plain":
        return 4 * math.prod(kind[1])
    if kind[0] in ("codes", "nhwc"):
        return math.prod(kind[1][0]) * np.dtype(kind[1][1]).itemsize
    return int(kind[1].size)


def as_plain(kind: Kind) -> Kind:
    """``kind`` as the plain float32 kind of the same bytes where there is one (a
    channels-last float32 buffer of one channel or one pixel is its NCHW array: BEGAN's
    int8 images), else ``kind``."""
    if kind[0] == "nhwc" and kind[1][1] == _F32.str:
        n, h, w, c = kind[1][0]
        if c == 1 or h * w == 1:
            return ("plain", (n, c, h, w))
    return kind


def array_of(kind: Kind) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of the array holding a value of ``kind`` (a channels-last one's
    NHWC buffer), or None for a blocked layout."""
    if kind[0] == "plain":
        return kind[1], _F32
    if kind[0] in ("codes", "nhwc"):
        return kind[1][0], np.dtype(kind[1][1])
    return None


def reads(x: Any, kind: Kind) -> np.ndarray | None:
    """The C-contiguous array a link built for ``kind`` reads for value ``x`` (a
    ``ChannelsLastArray``'s buffer for "nhwc"), or None where ``x`` is not of ``kind``."""
    from hwbench.backends.cpu.layouts import ChannelsLastArray

    found = array_of(kind)
    if found is None or (kind[0] == "nhwc") != (type(x) is ChannelsLastArray):
        return None
    a = x.nhwc if kind[0] == "nhwc" else x
    ok = type(a) is np.ndarray and a.shape == found[0] and a.dtype == found[1] \
        and a.flags.c_contiguous and a.flags.aligned
    return a if ok else None


def value_of(array: np.ndarray, kind: Kind) -> Any:
    """The value a step hands on for ``array`` holding a value of ``kind``."""
    from hwbench.backends.cpu.layouts import ChannelsLastArray

    return ChannelsLastArray(array) if kind[0] == "nhwc" else array


def same_kind(a: Kind, b: Kind) -> bool:
    """Whether a value of kind ``a`` is what a link built for ``b`` reads (a layout by
    identity first, then by value: a oneDNN call, only while a chain is built)."""
    return a[0] == b[0] and (a[1] is b[1] or a[1] == b[1])


class Link:
    """``into(src_address, dst_address)`` writes what the prepared call would return,
    from an input of kind ``src`` into ``nbytes`` of kind ``dst``; ``into=None``: a
    view, ``dst`` the same memory as ``src``. ``bind(src_buffer, dst_buffer)``, where
    there is one: the same write between two buffers fixed for good, as a list of
    ``dnnl_primitive_execute`` calls with every argument bound, each returning its
    status (``call.check(status, what)`` raises for a failure), or a call without
    ``check`` whose result is no status (a table lookup's ``np.take``): no Python frame,
    no address test (~0.15 µs a call)."""

    __slots__ = ("into", "src", "dst", "nbytes", "bind")
    address = staticmethod(address)
    same_kind = staticmethod(same_kind)
    as_plain = staticmethod(as_plain)
    array_of, reads, value_of = map(staticmethod, (array_of, reads, value_of))

    def __init__(self, into: Callable[[int, int], None] | None, src: Kind, dst: Kind,
                 bind: Callable[[np.ndarray, np.ndarray], list[Callable[[], int]]] | None
                 = None) -> None:
        self.into, self.src, self.dst, self.bind = into, src, dst, bind
        self.nbytes = kind_bytes(dst)


def sgemm_into(sgemm: Callable, check: Callable, args: tuple, bias: Any,
               shape: tuple[int, int]) -> Callable[[int, int], None]:
    """The plain ``_gemm``'s call (``dnnl_sgemm``, beta=1 over the bias) into memory:
    ``args`` are its ctypes arguments with None where A and C go; the bias broadcast
    to (m, n) once (the values ``out[...] = bias`` writes) and copied in first."""
    ca, cb, m, n, k, alpha, _, lda, addr_b, ldb, beta, _, ldc = args
    full = None
    if bias is not None:
        full = np.empty(shape, np.float32)
        full[...] = bias
    memmove, nbytes = ctypes.memmove, 0 if full is None else full.nbytes
    src = 0 if full is None else address(full)

    def into(a: int, out: int) -> None:
        if nbytes:
            memmove(out, src, nbytes)
        status = sgemm(ca, cb, m, n, k, alpha, a, lda, addr_b, ldb, beta, out, ldc)
        if status:
            check(status, "dnnl_sgemm")
    into.kept = full  # type: ignore[attr-defined]
    return into


def reorder_then(reorder: Callable[[int, int], None], run: Callable[[int, int], None],
                 nbytes: int) -> Callable[[int, int], None]:
    """``run`` on ``reorder``'s result, through ``nbytes`` of the link's own: a
    convolution whose input comes in another blocked layout than its own."""
    tmp = aligned_empty((nbytes,), np.uint8)
    at = address(tmp)

    def into(a: int, out: int) -> None:
        reorder(a, at)
        run(at, out)
    into.kept = tmp  # type: ignore[attr-defined]
    return into


def _array_at(at: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` at address ``at`` (memory a chain owns)."""
    nbytes = math.prod(shape) * dtype.itemsize
    return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(at), dtype).reshape(shape)


def table_into(table: np.ndarray, shape: tuple[int, ...],
               dtype: np.dtype) -> Callable[[int, int], None]:
    """``into`` of an 8-bit table lookup (``int8_tables.lookup``) of ``shape`` codes of
    ``dtype`` (~3 µs more a call to view the addresses: a chain binds it where it can)."""
    from hwbench.backends.cpu.int8_tables import lookup

    def into(a: int, out: int) -> None:
        lookup(table, _array_at(a, shape, dtype), _array_at(out, shape, table.dtype))
    return into


def table_bind(table: np.ndarray, shape: tuple[int, ...], dtype: np.dtype
               ) -> Callable[[np.ndarray, np.ndarray], list[Callable[[], Any]]]:
    """``Link.bind`` of the same lookup: one ``np.take`` on views of the two buffers, its
    arguments bound once (``int8_tables.lookup_call``): no ``check``, its result is
    no status."""
    from hwbench.backends.cpu.int8_tables import lookup_call

    def bind(src: np.ndarray, dst: np.ndarray) -> list[Callable[[], Any]]:
        n = math.prod(shape)  # raw bytes (a chain's buffers) or typed arrays (a step chain's)
        a = src.reshape(-1).view(np.uint8)[:n * dtype.itemsize].view(dtype).reshape(shape)
        y = dst.reshape(-1).view(np.uint8)[:n * table.dtype.itemsize].view(table.dtype)
        return [lookup_call(table, a, y.reshape(shape))]
    return bind
