"""Fixed forms of the prepared plain-array calls a decoder step makes (issue 16): what
``hwbench.graph.step_chain`` runs once every value has memory of its own, fixed when the
chain is built. Each ``fixed_*`` gives a call's ``fixed(args, kwargs)``: for arguments of
the kind the call was built for, (a call of no arguments writing the call's result into
arrays made here, those arrays), else None. The same NumPy function or the same bound
primitive as the call itself (same bits), only with nothing left to look up or check:
a NumPy ufunc with its ``out=``, or a primitive with every argument bound (``raw``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.cpu.bound_primitive import is_plain, raw
from hwbench.backends.cpu.buffer_pool import aligned_empty

Fixed = Callable[[tuple, dict], tuple[Callable[[], Any], Any] | None]
_F32 = np.dtype(np.float32)


def _all_plain(args: tuple, shapes: tuple, dtype: np.dtype = _F32) -> bool:
    return len(args) == len(shapes) and all(
        is_plain(a, s, dtype) for a, s in zip(args, shapes, strict=True))


def fixed_numpy(fn: Callable, shapes: tuple, out_shape: tuple[int, ...],
                views: tuple | None = None) -> Fixed:
    """``fn(*args, out=out)`` (``np.matmul``, ``np.add``, ...) on plain float32
    arguments of ``shapes``, read as ``views`` (the arguments' shapes, then the
    output's; None: as they are), into an output of ``out_shape``."""
    def fixed(args: tuple, kwargs: dict) -> tuple[Callable[[], Any], Any] | None:
        if kwargs or not _all_plain(args, shapes):
            return None
        out = aligned_empty(out_shape, _F32)
        if views is None:
            return functools.partial(fn, *args, out=out), out
        ins = [a.reshape(v) for a, v in zip(args, views, strict=False)]
        return functools.partial(fn, *ins, out=out.reshape(views[-1])), out
    return fixed


def fixed_swapped(fn: Callable, shapes: tuple, out_shape: tuple[int, ...]) -> Fixed:
    """``fixed_numpy``'s form of ``fn(b, a, out=)`` for arguments (a, b): a binary
    kernel that puts its full-shape operand first."""
    straight = fixed_numpy(fn, shapes[::-1], out_shape)

    def fixed(args: tuple, kwargs: dict) -> tuple[Callable[[], Any], Any] | None:
        return straight(tuple(args)[::-1], kwargs) if len(args) == 2 else None
    return fixed


def fixed_transpose(shape: tuple, dtype: np.dtype, perm: tuple, out_shape: tuple,
                    frozen: Any) -> Fixed:
    """The prepared Transpose's copy, ``out[...] = x.transpose(perm)``, as
    ``np.copyto(out, view)`` of a plain activation (a frozen weight: not this call)."""
    def fixed(args: tuple, kwargs: dict) -> tuple[Callable[[], Any], Any] | None:
        if kwargs or len(args) != 1 or not is_plain(args[0], shape, dtype) \
                or args[0] in frozen:
            return None
        out = aligned_empty(out_shape, dtype)
        return functools.partial(np.copyto, out, args[0].transpose(perm)), out
    return fixed


def fixed_concat(shapes: tuple, out_shape: tuple[int, ...], axis: int,
                 dtype: np.dtype) -> Fixed:
    """``np.concatenate(parts, axis, out=)`` of plain parts of ``shapes``."""
    def fixed(args: tuple, kwargs: dict) -> tuple[Callable[[], Any], Any] | None:
        if kwargs or len(args) != 1 or not isinstance(args[0], (list, tuple)) \
                or not _all_plain(tuple(args[0]), shapes, dtype):
            return None
        out = aligned_empty(out_shape, dtype)
        return functools.partial(np.concatenate, list(args[0]), axis=axis, out=out), out
    return fixed


def fixed_primitive(prim: Any, args_of: Callable[[tuple], dict | None],
                    out_shapes: tuple, result: Callable[[tuple], Any]) -> Fixed:
    """``prim`` with every argument bound: ``args_of(args + outputs)`` gives its
    buffers (None: not the traced kind), the outputs made here of ``out_shapes``,
    ``result(outputs)`` what the call returns of them."""
    def fixed(args: tuple, kwargs: dict) -> tuple[Callable[[], Any], Any] | None:
        if kwargs or not prim.dnnl.blocking:
            return None
        outs = tuple(aligned_empty(s, _F32) for s in out_shapes)
        buffers = args_of(tuple(args) + outs)
        if buffers is None:
            return None
        return raw(prim, buffers), result(outs)
    return fixed
