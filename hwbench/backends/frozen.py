"""Arrays a backend froze in its own ``asarray``, and what it derived from each, cached.

A backend may keep work it did on an input (weights reordered or quantized, a NaN
screen's verdict) only if that input can never change afterwards. Being read-only is not
enough: a read-only *view* changes with its base (``np.broadcast_to(row, shape)``), and
an array that owns its memory can be made writable again (``root.flags.writeable =
True``). So only arrays the backend copied itself qualify, and their memory is exposed
through ``ReadOnlyMemory``, whose array interface says "read-only": NumPy then refuses
``WRITEABLE=True`` on every array in the chain, which has no writable base to fall back
on. ``FrozenArrays`` records those arrays by identity (a weak reference, so a dropped
array's id, reused by a new one, never hits) and forgets what was derived from an array
when the array goes.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from hwbench.backends.memory import aligned_bytes

ALIGNMENT = 64  # bytes: one cache line, one AVX-512 register
# Smaller copies are not aligned (as ``cpu.aligned_empty``): alignment pays only for large
# operands, and a small array is frozen as an immutable ``bytes`` object, the cheapest
# read-only owner (~2 us against ~6 us through ``ReadOnlyMemory``).
SMALL_BYTES = 1 << 16


class ReadOnlyMemory:
    """Aligned bytes that NumPy can read but never write.

    The writable allocation is held privately; what NumPy sees (``__array_interface__``)
    is flagged read-only, so an array made from it (and every view of that) can never be
    made writable: NumPy allows ``WRITEABLE=True`` only where some base is writable.
    """

    __slots__ = ("_owner",)

    def __init__(self, owner: np.ndarray) -> None:
        if owner.dtype != np.uint8 or owner.ndim != 1 or not owner.flags.c_contiguous:
            raise ValueError("ReadOnlyMemory wraps a contiguous 1-D uint8 array")
        self._owner = owner

    @property
    def __array_interface__(self) -> dict[str, Any]:
        # No buffer protocol: NumPy's writability check finds no writable buffer here.
        return {"shape": self._owner.shape, "typestr": "|u1", "version": 3,
                "data": (self._owner.ctypes.data, True)}


def frozen_copy(x: Any, alignment: int = ALIGNMENT) -> np.ndarray:
    """A C-contiguous copy of ``x`` that nothing in NumPy can write, ``alignment``-aligned
    from ``SMALL_BYTES`` up.

    Object arrays (which no kernel takes) get an ordinary read-only copy: NumPy cannot
    view bytes as objects, and such an array is never registered as frozen.
    """
    src = x if type(x) is np.ndarray else np.asarray(x)
    dtype = src.dtype
    if dtype.hasobject:
        out = np.array(src, copy=True)
        out.flags.writeable = False
        return out
    if src.nbytes < SMALL_BYTES:  # bytes are immutable and refuse a writable buffer
        return np.ndarray(src.shape, dtype, src.tobytes())
    nbytes = math.prod(src.shape) * dtype.itemsize
    owner = aligned_bytes(nbytes, alignment)
    out = owner.view(src.dtype).reshape(src.shape)
    out[...] = src
    return np.asarray(ReadOnlyMemory(owner)).view(src.dtype).reshape(src.shape)


def can_be_made_writable(x: np.ndarray) -> bool:
    """True when NumPy would let ``x`` (or any array in its ``.base`` chain) become
    writable: such an array can change between two kernel calls."""
    array: Any = x
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return True
        try:
            array.setflags(write=True)
        except ValueError:
            pass
        else:  # it could: put it back and say so
            array.setflags(write=False)
            return True
        array = array.base
    return False


class FrozenArrays:
    """The arrays one backend froze (``freeze``) and the values it derived from each.

    ``derived(x, tag, build)`` returns ``build(x)``, computed once per frozen ``x`` and
    ``tag`` (a reordered filter, int8 weights, "all finite"), and computed on every call
    for any other array: only a frozen array provably holds the same values next time.
    """

    def __init__(self) -> None:
        self._arrays: dict[int, weakref.ref] = {}
        self._derived: dict[int, dict[Hashable, Any]] = {}

    def freeze(self, x: Any) -> np.ndarray:
        """``frozen_copy(x)``, registered: results derived from it may be cached."""
        out = frozen_copy(x)
        if out.dtype.hasobject:
            return out
        key = id(out)
        self._arrays[key] = weakref.ref(out, lambda _ref, key=key: self._forget(key))
        return out

    def __contains__(self, x: object) -> bool:
        ref = self._arrays.get(id(x))
        return ref is not None and ref() is x

    def derived(self, x: Any, tag: Hashable, build: Callable[[Any], Any]) -> Any:
        """``build(x)``, kept per (frozen ``x``, ``tag``) for as long as ``x`` lives."""
        if x not in self:
            return build(x)
        values = self._derived.setdefault(id(x), {})
        try:
            return values[tag]
        except KeyError:
            value = values[tag] = build(x)
            return value

    def cached(self, x: Any) -> dict[Hashable, Any]:
        """What is kept for ``x`` by tag (empty for an array that is not frozen)."""
        return dict(self._derived.get(id(x), {})) if x in self else {}

    def snapshot(self) -> dict[tuple[int, Hashable], Any]:
        """Every kept value by (id of its frozen array, tag)."""
        return {(key, tag): value for key, values in self._derived.items()
                for tag, value in values.items()}

    def sizes(self) -> dict[str, int]:
        """How many frozen arrays are alive and how many derived values are kept."""
        return {"frozen": len(self._arrays),
                "derived": sum(len(v) for v in self._derived.values())}

    def _forget(self, key: int) -> None:
        self._arrays.pop(key, None)
        self._derived.pop(key, None)


__all__ = ["ALIGNMENT", "FrozenArrays", "ReadOnlyMemory", "can_be_made_writable", "frozen_copy"]
