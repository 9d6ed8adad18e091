"""Data addresses of NumPy arrays for ctypes calls, cheaper than ``a.ctypes.data``.

``a.ctypes.data`` builds a ``numpy._ctypes`` object on every use: ~1.2 µs, several
times per kernel call, which made it a visible share of a small model's run. Here:

- a writeable array: ``ctypes.addressof(c_char.from_buffer(a))`` (~0.4 µs);
- a read-only view (the backend's frozen weights, the same objects every run): the
  address is remembered per object (weakly: the entry goes when the array does), ~0.1
  µs; a view cannot be resized in place, so its address cannot change;
- anything else (non-contiguous, empty, read-only owner): ``a.ctypes.data``.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

_char = ctypes.c_char
_addressof = ctypes.addressof
_frozen: dict[int, tuple[weakref.ref, int]] = {}


def address(a: np.ndarray) -> int:
    """The address of ``a``'s first element (what ``a.ctypes.data`` gives)."""
    if a.flags.writeable:
        try:
            return _addressof(_char.from_buffer(a))
        except (TypeError, ValueError, BufferError):  # not contiguous, or empty
            return a.ctypes.data
    key = id(a)
    entry = _frozen.get(key)
    if entry is not None and entry[0]() is a:
        return entry[1]
    data = a.ctypes.data
    if not a.flags.owndata and a.size:
        _frozen[key] = (weakref.ref(a, lambda _, key=key: _frozen.pop(key, None)), data)
    return data
