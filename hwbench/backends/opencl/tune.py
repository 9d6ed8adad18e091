"""``hwbench tune``: search a device's GEMM tile parameters and store the winner.

Every candidate of the device's GEMM kernel (``tuning.candidates``) is built (probed
in a child process first, so a candidate that crashes the device compiler is skipped),
checked against NumPy on the tuning problem, and timed with profiling events; the
fastest correct one is stored per device and driver (``tuning.store``). A time budget
bounds the search: the defaults come first, so a cut-short search still stores
something no worse than them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.backends.opencl import tuning
from hwbench.backends.opencl.backend import OpenclBackend
from hwbench.errors import ArgumentError, HwbenchError


@dataclass(frozen=True)
class Trial:
    params: dict[str, int]
    gflops: float | None  # None: failed to build, or gave a wrong result
    note: str = ""


def search(device: str | None = None, size: int = 1024, budget_s: float = 300.0,
           repeats: int = 3, report: Callable[[Trial], None] | None = None,
           store: bool = True) -> tuple[OpenclBackend, list[Trial]]:
    """Time every candidate on a ``size``³ SGEMM within ``budget_s`` seconds; store the
    best (unless ``store`` is False). Returns the default-parameter backend and the trials."""
    if size < 16 or size > 8192:
        raise ArgumentError(f"argument 'size' must be in [16, 8192], got {size}")
    base = OpenclBackend(device, check_finite=False)
    kernel = base.gemm_engine.kernel
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    b = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tolerance = 1e-5 * np.sqrt(size) * float(np.max(np.abs(want)))
    trials: list[Trial] = []
    start = time.monotonic()
    for params in tuning.candidates(kernel, base.dev.max_work_group_size,
                                    base.dev.local_mem_size):
        if trials and time.monotonic() - start > budget_s:
            break
        trial = _time_one(device, kernel, params, a, b, want, tolerance, repeats)
        trials.append(trial)
        if report is not None:
            report(trial)
    timed = [t for t in trials if t.gflops is not None]
    if store and timed:
        best = max(timed, key=lambda t: t.gflops or 0.0)
        tuning.store(base.dev.cache_key, kernel, best.params, best.gflops or 0.0,
                     (size, size, size))
    return base, trials


def _time_one(device: str | None, kernel: str, params: dict[str, int], a: np.ndarray,
              b: np.ndarray, want: np.ndarray, tolerance: float, repeats: int) -> Trial:
    try:
        be = OpenclBackend(device, check_finite=False, gemm_kernel=kernel, gemm_params=params)
        da, db = be.asarray(a), be.asarray(b)
        out = be.to_numpy(be.gemm(da, db))
        if not float(np.max(np.abs(out - want))) <= tolerance:
            return Trial(params, None, "wrong result")
        seconds = min(_device_seconds(be, da, db) for _ in range(repeats))
    except HwbenchError as exc:
        return Trial(params, None, str(exc).splitlines()[0][:120])
    return Trial(params, 2.0 * a.shape[0] * b.shape[1] * a.shape[1] / seconds / 1e9)


def _device_seconds(be: OpenclBackend, da: Any, db: Any) -> float:
    return be.device_seconds(be.gemm, da, db)[1]
