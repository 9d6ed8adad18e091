"""Constant GEMM weights' B panels, packed once (issue 16: GPT-2 at batch 1 on PoCL).

The packed SGEMM (``gemm.Gemm``) packs its B operand into column panels on every call.
For few rows by a weight (GPT-2 at batch 1, sequence 32) that pack is a third of the
call: device time, PoCL 2 threads, busy: 32x768x2304 pack_b 0.40 of 1.45 ms, 32x3072x768
0.63 of 1.61 ms, the LM head 32x768x50257 13.7 of 42 ms. An array that
``OpenclBackend.asarray`` copied from the host is never written again (no opencl kernel
writes its inputs; a plan's feeds come through ``asarray_feed``, which does not freeze
them, and a recorded run rewrites only those): such arrays are frozen here, and the
panels of one, per packing layout, live as long as it does (dropped with it), up to
``MAX_BYTES`` in all; past that B is packed per call as before. A frozen array refuses
writes (``constant_arrays``): user code holding it cannot make its panels stale.
"""

from __future__ import annotations

import weakref
from typing import Any

from hwbench.backends.opencl.constant_arrays import make_constant

MAX_BYTES = 2 << 30  # panels held at once, all frozen arrays together
_frozen: dict[int, tuple[weakref.ref, dict[Any, Any]]] = {}
_held = [0]  # bytes of panels held


def freeze(array: Any) -> Any:
    """``array`` (a device array that will never be written) marked constant: its
    panels may be kept (``panels_of``), made read-only. Returns it."""
    make_constant(array)
    key = id(array)

    def gone(_: Any, key: int = key) -> None:
        entry = _frozen.pop(key, None)
        if entry is not None:
            _held[0] -= sum(buf.size for buf in entry[1].values())

    _frozen[key] = (weakref.ref(array, gone), {})
    return array


def panels_of(array: Any) -> dict[Any, Any] | None:
    """The dict of ``array``'s kept panels by layout, if it is frozen; else None."""
    entry = _frozen.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    return entry[1]


def reserve(nbytes: int) -> bool:
    """Whether ``nbytes`` more panels may be kept (then counted as held); a negative
    ``nbytes`` gives back a reservation whose panels were never made."""
    if nbytes > 0 and _held[0] + nbytes > MAX_BYTES:
        return False
    _held[0] += nbytes
    return True


def held_bytes() -> int:
    """Bytes of panels kept now (``tests/test_opencl_packed_weights.py``)."""
    return _held[0]
