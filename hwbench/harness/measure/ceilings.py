"""Each backend's measured compute and bandwidth ceilings: what its own kernels reach.

Why measured, and through the backend's own kernels: a spec-sheet roofline says what the
silicon could do; this one says what each backend *reaches* on it — a large float32 GEMM
for the compute ceiling (GFLOP/s), a large streaming ``add`` for the bandwidth ceiling
(GB/s) — so a model's point below its backend's roof is the headroom that backend
leaves, not the chip. The ceilings are measured in each backend's worker process (see
``worker``), with the shared timing loop, and saved per backend in the results file
(``backends[name]["ceilings"]``); ``results.roofline`` draws them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hwbench.errors import UnsupportedError
from hwbench.harness.running.timing import measure
from hwbench.kernels import spec

# GEMM sizes tried in order; the next is tried only while it should take at most
# GEMM_CALL_BUDGET seconds a call (8× the current size's time: an upper bound, since
# efficiency grows with size). 2048³ is ~0.2 s on this project's 2-core CI VM.
GEMM_SIZES = (512, 1024, 2048, 4096, 8192)
GEMM_CALL_BUDGET = 0.5
GEMM_TIMING = {"warmup": 1, "repeats": 3, "min_time": 0.0, "max_time": 1.0}
# The streaming op: add of two 64 MiB float32 arrays (far beyond any cache); bytes =
# 3 × 64 MiB (two read, one written), as STREAM counts it (write-allocate not counted).
STREAM_ELEMENTS = 1 << 24
STREAM_TIMING = {"warmup": 2, "repeats": 5, "min_time": 0.0, "max_time": 1.0}


def measure_ceilings(backend: Any, gemm_sizes: tuple[int, ...] = GEMM_SIZES,
                     stream_elements: int = STREAM_ELEMENTS) -> dict[str, Any]:
    """``backend``'s compute ceiling (``gflops``: the best sample's GFLOP/s of a float32
    GEMM over ``gemm_sizes`` — a ceiling is what the backend *can* reach, so the best
    sample, with each size's median beside it) and bandwidth ceiling (``gbytes_per_s``:
    GB/s of ``add`` on ``stream_elements`` float32 values, median of the samples),
    measured through its own kernels. ``seconds``: how long all this took.

    Make the backend with ``check_finite=False`` (as ``session_backend`` does): NaN
    screening on every call would be counted as kernel time. Raises ``UnsupportedError``
    for a backend (or peer) without ``gemm`` and ``add`` kernels.
    """
    name = getattr(backend, "full_name", getattr(backend, "name", type(backend).__name__))
    for method in ("asarray", "gemm", "add", "synchronize"):
        if not callable(getattr(backend, method, None)):
            raise UnsupportedError(f"{name}: no '{method}' to measure roofline ceilings with")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    out = _gemm_ceiling(backend, gemm_sizes, rng)
    out.update(_stream_ceiling(backend, stream_elements, rng))
    out["seconds"] = time.perf_counter() - start
    return out


def _gemm_ceiling(backend: Any, sizes: tuple[int, ...], rng: np.random.Generator
                  ) -> dict[str, Any]:
    """Best-sample GFLOP/s over the square GEMM sizes that fit the time budget."""
    best: tuple[float, int] | None = None
    medians: dict[str, float] = {}  # GFLOP/s per size n, median of the samples
    for n in sizes:
        a_host = rng.random((n, n), dtype=np.float32)
        flops = spec.check_gemm(a_host, a_host).flops
        a, b = backend.asarray(a_host), backend.asarray(a_host.T.copy())
        timing = measure(lambda a=a, b=b: backend.gemm(a, b), backend.synchronize,
                         **GEMM_TIMING)
        medians[str(n)] = flops / timing.median / 1e9
        if best is None or flops / timing.min / 1e9 > best[0]:
            best = (flops / timing.min / 1e9, n)
        del a, b
        if timing.median * 8 > GEMM_CALL_BUDGET:
            break
    if best is None:
        raise UnsupportedError("measure_ceilings: no GEMM size given")
    return {"gflops": best[0], "gemm_n": best[1], "gemm_gflops_median": medians}


def _stream_ceiling(backend: Any, elements: int, rng: np.random.Generator) -> dict[str, Any]:
    """Median GB/s of ``add`` on two ``elements``-long float32 arrays (bytes as spec counts)."""
    x_host = rng.random(elements, dtype=np.float32)
    traffic = spec.check_binary(x_host, x_host, "add").bytes
    x, y = backend.asarray(x_host), backend.asarray(x_host[::-1].copy())
    del x_host
    stream = measure(lambda: backend.add(x, y), backend.synchronize, **STREAM_TIMING)
    return {"gbytes_per_s": traffic / stream.median / 1e9, "stream_op": "add",
            "stream_bytes": traffic, "stream_spread": stream.spread}


__all__ = ["measure_ceilings"]
