"""A oneDNN primitive bound to a plan's own memory objects, and the fresh outputs its
replays write: the pieces every prepared cpu call shares (``prepared_kernels``, the int8
and RNN replays), kept apart so each builder module stays small."""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.buffer_pool import SMALL_BYTES, aligned_empty
from hwbench.backends.cpu.chain_links import Link, plain
from hwbench.backends.cpu.layouts import BlockedArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SCRATCHPAD, ARG_SRC, ExecArg, Primitive
from hwbench.backends.memory import aligned_bytes

_F32 = np.dtype(np.float32)
_ndarray = np.ndarray


class BoundPrimitive:
    """A primitive with the plan's own memory objects: ``fixed`` arguments' data handles
    set once (the arrays kept alive here), the scratchpad its own, the exec-arg array
    built once; ``run(*addresses)`` sets the ``varying`` arguments and executes."""

    def __init__(self, prim: Primitive, fixed: dict[int, np.ndarray],
                 varying: tuple[int, ...]) -> None:
        d = prim.dnnl
        lib = d.lib
        self.prim, self.dnnl = prim, d
        self.memories: list[ctypes.c_void_p] = []
        self.scratchpad = aligned_bytes(max(prim.sizes[ARG_SCRATCHPAD], 1))
        buffers = {**fixed, ARG_SCRATCHPAD: self.scratchpad}
        if set(buffers) | set(varying) != set(prim.mds):
            raise AssertionError(f"arguments {sorted(prim.mds)} are not all bound")
        self.kept = list(buffers.values())
        mems = {}
        for arg, md in prim.mds.items():
            mem = ctypes.c_void_p()
            d.check(lib.dnnl_memory_create(ctypes.byref(mem), md.handle, d.engine, None),
                    f"memory_create(arg={arg})")
            self.memories.append(mem)
            mems[arg] = mem
        for arg, buf in buffers.items():
            if not buf.flags.c_contiguous or buf.nbytes < prim.sizes[arg]:
                raise AssertionError(f"oneDNN argument {arg}: a {buf.nbytes}-byte buffer "
                                     f"for a {prim.sizes[arg]}-byte descriptor")
            d.check(lib.dnnl_memory_set_data_handle(mems[arg], address(buf)),
                    "memory_set_data_handle")
        self.args = (ExecArg * len(mems))(*[ExecArg(a, m) for a, m in mems.items()])
        self.varying = [mems[a] for a in varying]
        self.sizes = [prim.sizes[a] for a in varying]

    def runner(self) -> Callable[..., None]:
        """``run(*addresses)``: the varying arguments' data, in ``varying`` order (each
        buffer already checked by the caller to hold its descriptor's bytes)."""
        d = self.dnnl
        set_handle, wait = d.lib.dnnl_memory_set_data_handle, d.lib.dnnl_stream_wait
        # execute's four arguments fixed as ctypes objects, called through the prototype
        # without argtypes (``OneDNN.execute_ready``): no conversion a call (~0.3 µs)
        execute, stream = d.execute_ready, d.stream
        prim, n, args = self.prim.prim, ctypes.c_int(len(self.args)), \
            ctypes.c_void_p(ctypes.addressof(self.args))
        blocking, check = d.blocking, d.check
        mems = self.varying
        last = [0] * len(mems)  # the addresses the memories hold (only this call sets them)
        if len(mems) == 2:
            m0, m1 = mems

            def run(a0: int, a1: int) -> None:
                if a0 != last[0]:
                    set_handle(m0, a0)
                    last[0] = a0
                if a1 != last[1]:
                    set_handle(m1, a1)
                    last[1] = a1
                status = execute(prim, stream, n, args) or not blocking and wait(stream)
                if status:
                    check(status, "primitive_execute")
            run.bound = self  # its memories live as long as the call
            return run

        def run_any(*addresses: int) -> None:
            for i, a in enumerate(addresses):
                if a != last[i]:
                    set_handle(mems[i], a)
                    last[i] = a
            status = execute(prim, stream, n, args) or not blocking and wait(stream)
            if status:
                check(status, "primitive_execute")
        run_any.bound = self
        return run_any

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        if not _finalizing():
            for mem in self.memories:
                self.dnnl.lib.dnnl_memory_destroy(mem)
            self.memories = []


def raw(p: Any, buffers: dict[int, np.ndarray]) -> Callable[[], int]:
    """``p`` executed on ``buffers`` (every argument, the scratchpad aside), fixed for
    good: a ``dnnl_primitive_execute`` call of no arguments returning its status
    (``call.check(status, what)`` raises for a failure); for a blocking runtime only."""
    bound = BoundPrimitive(p, buffers, ())
    d = p.dnnl
    call = functools.partial(d.execute_ready, p.prim, d.stream,
                             ctypes.c_int(len(bound.args)),
                             ctypes.c_void_p(ctypes.addressof(bound.args)))
    call.bound = bound  # type: ignore[attr-defined]  # its memories live with it
    call.check = d.check  # type: ignore[attr-defined]  # for a non-zero status
    return call


def binder(prim: Any, fixed: dict[int, np.ndarray],
           before: tuple[Any, int] | None = None
           ) -> Callable[[np.ndarray, np.ndarray], list[Callable[[], int]]] | None:
    """``chain_links.Link.bind`` for ``prim`` reading ``ARG_SRC`` and writing
    ``ARG_DST``, its other arguments ``fixed``; ``before``: (a one-input reorder
    primitive, its output bytes) run first into a buffer of the binding's own. Each
    binding has memories and a scratchpad of its own (a prepared call's ``run`` keeps
    the addresses it set: sharing them would leave it stale). None on a oneDNN runtime
    whose execute does not finish before it returns (``OneDNN.blocking``)."""
    if not prim.dnnl.blocking:
        return None

    def bind(src: np.ndarray, dst: np.ndarray) -> list[Callable[[], int]]:
        calls = []
        if before is not None:
            tmp = aligned_empty((before[1],), np.uint8)
            calls.append(raw(before[0], {ARG_SRC: src, ARG_DST: tmp}))
            src = tmp
        return [*calls, raw(prim, {**fixed, ARG_SRC: src, ARG_DST: dst})]
    return bind


def is_plain(x: Any, shape: tuple[int, ...], dtype: np.dtype = _F32) -> bool:
    """A C-contiguous, aligned NumPy array of ``shape`` and ``dtype`` (float32 unless
    named): what oneDNN reads as is."""
    if type(x) is not _ndarray or x.dtype != dtype or x.shape != shape:
        return False
    flags = x.flags
    return flags.c_contiguous and flags.aligned


REUSED = 4  # small outputs a call site keeps for reuse


def out_factory(backend: Any, shape: tuple[int, ...] | int,
                 dtype: Any = np.float32) -> Callable[[], tuple[np.ndarray, int]]:
    """``new()`` -> (an output nothing else holds, its address). Large ones come from the
    backend's buffer pool; small ones from this call site's own few arrays, one reused
    only when nothing but the list holds it (``sys.getrefcount``, the pool's rule: a
    caller's reference or any view of it keeps it out), else a fresh ``np.empty``; a
    reused one's address is known and, being the last one set, not set again."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    if int(np.prod(shape)) * dtype.itemsize >= SMALL_BYTES:
        pool = backend._buffers

        def pooled() -> tuple[np.ndarray, int]:
            out = pool.empty(shape, dtype)
            return out, address(out)
        return pooled
    arrays: list[np.ndarray] = []
    addresses: list[int] = []
    refcount = sys.getrefcount

    def new() -> tuple[np.ndarray, int]:
        for i in range(len(arrays)):
            if refcount(arrays[i]) == 2:  # the list's reference and the argument
                return arrays[i], addresses[i]
        out = np.empty(shape, dtype)
        if len(arrays) < REUSED:
            arrays.append(out)
            addresses.append(address(out))
            return out, addresses[-1]
        return out, address(out)
    return new


def blocked_result(buffer: np.ndarray, shape: tuple[int, ...], md: Any, to_plain: Any) -> Any:
    """``BlockedArray(buffer, shape, md, to_plain)`` without re-querying the layout's
    size (the buffer was made for it)."""
    out = object.__new__(BlockedArray)
    out.buffer, out.shape, out.dtype = buffer, shape, _F32
    out.md, out._to_plain = md, to_plain
    return out


def plain_call(be: Any, prim: Any, in_shape: tuple, out_shape: tuple, kernel: Callable,
                p: Any) -> Callable:
    """One-input ``prim`` replayed on plain arrays of ``in_shape`` into a fresh plain
    output of ``out_shape``; any other input goes to ``kernel`` itself."""
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, out_shape)

    def call(x):
        if not is_plain(x, in_shape):
            return kernel(p, x)
        out, a_out = new_out()
        run(address(x), a_out)
        return out
    call.link = Link(run, plain(in_shape), plain(out_shape), binder(prim, {}))
    return call


def blocked_call(be: Any, prim: Any, src_md: Any, dst_md: Any, shape: tuple[int, ...],
                 to_plain: Any, kernel: Callable, p: Any) -> Callable:
    """One-input ``prim`` replayed on a blocked activation of layout ``src_md`` into a
    fresh blocked output of ``dst_md`` (logical ``shape``): the layout checked by identity
    first, then by value; any other input goes to ``kernel`` itself."""
    run = BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST)).runner()
    new_out = out_factory(be, dst_md.size, np.uint8)

    def call(x):
        if type(x) is not BlockedArray or not (x.md is src_md or x.md == src_md):
            return kernel(p, x)
        out, a_out = new_out()
        run(address(x.buffer), a_out)
        return blocked_result(out, shape, dst_md, to_plain)
    return call


def blocked_parts(arrays: Any, mds: list[Any]) -> bool:
    """Every one of ``arrays`` a blocked activation of its traced layout in ``mds`` (by
    identity first, then by value): what a prepared concat reads as it is."""
    return len(arrays) == len(mds) and all(
        type(x) is BlockedArray and (x.md is md or x.md == md)
        for x, md in zip(arrays, mds, strict=True))
