"""Data addresses of NumPy arrays for ctypes calls, cheaper than ``a.ctypes.data``.

``a.ctypes.data`` builds a ``numpy._ctypes`` object on every use: ~1.2 µs, several
times per kernel call, which made it a visible share of a small model's run. Here:

- an exact ``np.ndarray``: its C struct's ``data`` field, read in place (~0.1 µs): NumPy's
  ``PyArrayObject`` begins with the object header, then ``char *data`` (what
  ``PyArray_DATA`` returns). The offset is checked against ``a.ctypes.data`` on views
  at import; where it does not match (another interpreter build), the ways below;
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


def _data_field_offset() -> int | None:
    """Where ``PyArrayObject``'s data pointer sits from the object's address, if it is
    right after the object header on this build (checked on views, whose data is not
    their base's start, and on a read-only one); else None."""
    offset = object.__basicsize__  # sizeof(PyObject): the header, then ``data``
    base = np.arange(16, dtype=np.float32)
    frozen = np.frombuffer(base.tobytes(), np.float32)[3:]
    probes = [base, base[5:], base.reshape(4, 4)[1:, ::2], frozen]
    try:
        if all(_void_at(id(p) + offset).value == p.ctypes.data for p in probes):
            return offset
    except (ValueError, OSError):  # pragma: no cover - an unreadable address
        pass
    return None  # pragma: no cover - another layout: the slower ways


_void_at = ctypes.c_void_p.from_address
_ndarray = np.ndarray
_OFFSET = _data_field_offset()


def address(a: np.ndarray) -> int:
    """The address of ``a``'s first element (what ``a.ctypes.data`` gives)."""
    if type(a) is _ndarray and _OFFSET is not None:
        data = _void_at(id(a) + _OFFSET).value
        if data:
            return data
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
