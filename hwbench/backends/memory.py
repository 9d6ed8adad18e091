"""How many bytes an allocation may take here, and the refusal when it cannot fit.

A kernel, a session or the simulator estimates the bytes it is about to allocate and asks
``require`` first, so that a size that cannot fit ends in an ``OutOfMemoryError`` giving
the figure needed and what is free, instead of NumPy's allocation error deep inside a
kernel, or minutes of swapping until the kernel's OOM killer ends the process.

Free host memory is the least of: ``MemAvailable`` in ``/proc/meminfo``; the cgroup's
limit minus its usage (v2 ``memory.max``/``memory.current``, or v1's files); and the
address-space limit (``ulimit -v``) minus this process's size. Reading them costs tens of
microseconds, so requests under ``SMALL_BYTES`` are never checked: a small kernel call
pays one comparison.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwbench.errors import OutOfMemoryError

# Requests below this are never checked (reading /proc would cost more than they do).
SMALL_BYTES = 64 << 20

_CGROUP_V2 = Path("/sys/fs/cgroup")
_CGROUP_V1 = Path("/sys/fs/cgroup/memory")


@dataclass(frozen=True)
class Budget:
    """Free bytes and where the figure comes from (for the refusal's message)."""

    free: int
    source: str


def format_bytes(n: float) -> str:
    """``1.1 TiB``, ``512 MiB``, ``96 B``: binary units, three significant figures."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover - the loop always returns


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) -> None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    """The cgroup's limit minus its usage, None where no limit is set (or not Linux)."""
    for limit_file, usage_file in ((_CGROUP_V2 / "memory.max", _CGROUP_V2 / "memory.current"),
                                   (_CGROUP_V1 / "memory.limit_in_bytes",
                                    _CGROUP_V1 / "memory.usage_in_bytes")):
        limit = _read_int(limit_file)
        if limit is None or limit >= 1 << 60:  # v1 spells "no limit" as a huge number
            continue
        usage = _read_int(usage_file) or 0
        return max(0, limit - usage)
    return None


def _address_space_free() -> int | None:
    """``ulimit -v`` minus this process's virtual size, None without a limit."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    size = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    size = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - size)


def host_budget() -> Budget | None:
    """Free host memory now, or None where the OS does not say (then nothing is refused)."""
    figures = {"MemAvailable": _meminfo_available(), "the cgroup's memory limit":
               _cgroup_free(), "the address-space limit (ulimit -v)": _address_space_free()}
    known = {name: value for name, value in figures.items() if value is not None}
    if not known:
        return None
    source = min(known, key=known.__getitem__)
    return Budget(known[source], source)


def require(nbytes: int, what: str, *, fits: str | Callable[[int], str] = "",
            budget: Budget | None = None,
            single_limit: tuple[int, str] | None = None) -> None:
    """Raise ``OutOfMemoryError`` when ``what`` (needing ``nbytes``) cannot fit.

    ``budget``: free bytes (default: ``host_budget()``); ``single_limit``: the largest one
    allocation may be and what sets it (an OpenCL device's ``max_mem_alloc_size``), checked
    against ``nbytes`` too. ``fits`` ends the message: what size would fit, in the caller's
    terms ("batch <= 12"), or a function of the bytes available that says it.
    """
    if nbytes < SMALL_BYTES:
        return
    hint = fits if isinstance(fits, str) else ""
    if single_limit is not None and nbytes > single_limit[0]:
        hint = hint or (fits(single_limit[0]) if callable(fits) else "")
        raise OutOfMemoryError(
            f"{what} needs {format_bytes(nbytes)} in one allocation, more than "
            f"{single_limit[1]} allows ({format_bytes(single_limit[0])})"
            + (f"; {hint}" if hint else ""))
    budget = budget if budget is not None else host_budget()
    if budget is None or nbytes <= budget.free:
        return
    hint = hint or (fits(budget.free) if callable(fits) else "")
    raise OutOfMemoryError(
        f"{what} needs {format_bytes(nbytes)}, but only {format_bytes(budget.free)} is free "
        f"here ({budget.source})" + (f"; {hint}" if hint else ""))


def largest_fitting(per_unit: int, fixed: int, budget: Budget | None) -> int:
    """How many units of ``per_unit`` bytes fit beside ``fixed`` bytes in ``budget``."""
    if budget is None or per_unit <= 0:
        return 0
    return max(0, (budget.free - fixed) // per_unit)


def nbytes_of(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of a dense array of ``shape`` (Python ints: no overflow)."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def aligned_bytes(nbytes: int, alignment: int = 4096) -> np.ndarray:
    """A byte buffer starting on an ``alignment`` boundary (default: a page, as oneDNN's
    own allocator gives scratchpads)."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset:offset + nbytes]


def trim(backend: object) -> None:
    """Hand back what ``backend`` keeps for reuse and no live array holds (its
    ``trim_memory``, where it has one: a device memory pool's free blocks, grown scratch
    buffers). A session's build and its plan's traced run call it, so that a process
    running model after model (a ``hwbench run`` worker) holds what the current model
    needs, not the most that any model before it took."""
    release = getattr(backend, "trim_memory", None)
    if release is not None:
        release()
