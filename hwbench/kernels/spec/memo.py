"""Validation results remembered per argument values, for the int8 ops a graph calls
with the same scales and zero points every run.

Validating QLinearConv's arguments and deriving its requantization multiplier again on
every call cost about as much as MobileNet's int8 kernels themselves. ``memoized``
returns the result computed before for equal facts: shapes and dtypes given in ``key``,
and small arrays (scales, zero points) compared by value, bytes and all, so nothing
depends on an array not changing. Results are kept as read-only copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LIMIT = 4096  # entries before the memo starts over
SMALL = 4096  # elements: a larger array is not keyed by value (the call is not remembered)
_MEMO: dict[tuple, Any] = {}


def value_key(a: Any) -> tuple | None:
    """A hashable key for a small array's (or a Python/NumPy scalar's) exact value, or
    None when it has none."""
    if isinstance(a, (np.ndarray, np.generic)):
        if a.size > SMALL or a.dtype.hasobject:
            return None
        return (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())
    if type(a) in (int, float, bool):
        return (type(a), a)
    return None


def typed(v: Any) -> Any:
    """``v`` with the type of each part: ``True == 1`` and ``1.0 == 1`` hash alike, but an
    argument check may accept one and reject the other."""
    if isinstance(v, (tuple, list)):
        return (type(v), tuple(typed(x) for x in v))
    return (type(v), v)


def _kept(result: Any) -> Any:
    """``result`` with its arrays (top level of a tuple) copied read-only."""
    if isinstance(result, tuple):
        return tuple(_kept(r) for r in result)
    if isinstance(result, np.ndarray):
        copy = np.array(result, copy=True)
        copy.flags.writeable = False
        return copy
    return result


def memoized(kind: str, key: tuple, values: Sequence[Any], compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered under ``kind``, ``key`` (hashable facts such as shapes)
    and the values of ``values`` (see ``value_key``); computed afresh and not kept when
    one has no value key or ``key`` is not hashable. Exceptions are never remembered."""
    keys = [value_key(v) for v in values]
    if any(k is None for k in keys):
        return compute()
    full = (kind, key, tuple(keys))
    try:
        hit = _MEMO.get(full)
    except TypeError:  # an unhashable part: nothing to remember it by
        return compute()
    if hit is None:
        hit = _kept(compute())
        if len(_MEMO) >= LIMIT:
            _MEMO.clear()
        _MEMO[full] = hit
    return hit
