"""``hwbench tune``: search a device's GEMM tile parameters and store the winner.

Every candidate of the device's GEMM kernel (``tile_params.candidates``; ``op="gemm_int8"``:
its int8 GEMM kernel) is built (probed in a child process first, so a candidate that
crashes the device compiler is skipped), checked against NumPy on the tuning problem
(the int8 one exactly), and timed with profiling events; the fastest correct one is
stored per device and driver (``tile_params.store``). A time budget bounds the search: the
defaults come first, so a cut-short search still stores something no worse than them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.backends.opencl import tile_params
from hwbench.backends.opencl.backend import OpenclBackend
from hwbench.errors import ArgumentError, HwbenchError


@dataclass(frozen=True)
class Trial:
    params: dict[str, int]
    gflops: float | None  # GFLOP/s (int8: GOP/s); None: failed to build, or a wrong result
    note: str = ""


OPS = ("gemm", "gemm_int8")


@dataclass(frozen=True)
class Problem:
    """The tuning problem of one op: operands, and the exact or float64 answer."""

    a: np.ndarray
    b: np.ndarray
    want: np.ndarray
    tolerance: float  # 0: exact

    def run(self, be: OpenclBackend, da: Any, db: Any) -> Any:
        if self.a.dtype == np.float32:
            return be.gemm(da, db)
        return be.gemm_int8(da, db, np.uint8(ZERO_POINTS[0]), np.int8(ZERO_POINTS[1]))


ZERO_POINTS = (3, -5)  # the int8 problem's (uint8 A, int8 B) zero points


def problem(op: str, size: int) -> Problem:
    rng = np.random.default_rng(0)
    if op == "gemm_int8":
        a = rng.integers(0, 256, (size, size)).astype(np.uint8)
        b = rng.integers(-128, 128, (size, size)).astype(np.int8)
        want = (a.astype(np.int64) - ZERO_POINTS[0]) @ (b.astype(np.int64) - ZERO_POINTS[1])
        return Problem(a, b, want, 0.0)
    a = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    b = rng.uniform(-1, 1, (size, size)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    return Problem(a, b, want, 1e-5 * np.sqrt(size) * float(np.max(np.abs(want))))


def search(device: str | None = None, size: int = 1024, budget_s: float = 300.0,
           repeats: int = 3, report: Callable[[Trial], None] | None = None,
           store: bool = True, op: str = "gemm") -> tuple[OpenclBackend, list[Trial]]:
    """Time every candidate of ``op``'s kernel ("gemm": float32, "gemm_int8": the exact
    int8 GEMM; the rate is then GOP/s) on a ``size``³ problem within ``budget_s`` seconds;
    store the best (unless ``store`` is False). Returns the default-parameter backend and
    the trials."""
    if size < 16 or size > 8192:
        raise ArgumentError(f"argument 'size' must be in [16, 8192], got {size}")
    if op not in OPS:
        raise ArgumentError(f"argument 'op' must be one of {OPS}, got {op!r}")
    base = OpenclBackend(device, check_finite=False)
    engine = base.gemm_engine if op == "gemm" else base.int8_engine
    kernel = engine.kernel
    task = problem(op, size)
    trials: list[Trial] = []
    start = time.monotonic()
    for params in tile_params.candidates(kernel, base.dev.max_work_group_size,
                                    base.dev.local_mem_size):
        if trials and time.monotonic() - start > budget_s:
            break
        trial = _time_one(device, op, kernel, params, task, repeats)
        trials.append(trial)
        if report is not None:
            report(trial)
    timed = [t for t in trials if t.gflops is not None]
    if store and timed:
        best = max(timed, key=lambda t: t.gflops or 0.0)
        tile_params.store(base.dev.cache_key, kernel, best.params, best.gflops or 0.0,
                     (size, size, size))
    return base, trials


def _time_one(device: str | None, op: str, kernel: str, params: dict[str, int],
              task: Problem, repeats: int) -> Trial:
    options = {"gemm_kernel" if op == "gemm" else "int8_kernel": kernel,
               "gemm_params" if op == "gemm" else "int8_params": params}
    try:
        be = OpenclBackend(device, check_finite=False, **options)
        # B not frozen (``packed_weights``): each timed call packs it, as it always did
        da, db = be.asarray(task.a), be._to_device(task.b)
        out = be.to_numpy(task.run(be, da, db))
        if not float(np.max(np.abs(out - task.want))) <= task.tolerance:
            return Trial(params, None, "wrong result")
        seconds = min(be.device_seconds(task.run, be, da, db)[1] for _ in range(repeats))
    except HwbenchError as exc:
        return Trial(params, None, str(exc).splitlines()[0][:120])
    m, k = task.a.shape
    return Trial(params, 2.0 * m * task.b.shape[1] * k / seconds / 1e9)
