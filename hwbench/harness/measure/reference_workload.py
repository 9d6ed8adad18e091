"""The fixed reference workload that makes scores comparable across similar machines.

Every run (``hwbench kernels``, ``hwbench run`` and the pytest-benchmark suites) also times
two fixed jobs on the ``numpy`` backend: a 512³ float32 GEMM on one BLAS thread
(compute-bound) and an ``add`` of two 64 MiB float32 arrays (memory-bound). Each job's
figure is its *best* sample: the reference stands for what the machine can do, and on a
busy machine the best sample is the stable one (measured on this project's shared 2-core
VM: the median of a two-thread OpenBLAS GEMM swung from 1.3 to 17 ms with the load, while
its one-thread best sample stays put). A benchmark's
*normalized score* is its time divided by the reference job of its kind — compute-bound
work by the GEMM's time, memory-bound work by the ``add``'s (the kind is decided by its
arithmetic intensity against the reference's own ridge point). A machine twice as fast at
both jobs halves every time and leaves every score where it was, so a baseline from one
machine is usable on a similar one (``hwbench compare --normalized``).

Where that stops being valid: see docs/benchmarks.md ("Machine-independent scores"). In short,
only between machines of the same kind — same ISA and vector width, same accelerator (or
none), the same thread count, no thermal or power throttling that hits one job and not
another — because the reference measures one core type's FMA rate and DRAM bandwidth,
and nothing else (caches, GPU clocks, Python overhead per call) scales with it exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

from hwbench.backends import get_backend
from hwbench.backends.base import default_threads
from hwbench.errors import HwbenchError
from hwbench.harness.running.timing import measure

GEMM_N = 512
STREAM_ELEMENTS = 1 << 24  # 64 MiB per float32 operand: far beyond any cache
VERSION = 1  # bump if the jobs change: scores of different versions are not comparable


TRIALS = 3  # each job is timed this many times; its figure is the best trial's best sample


def numpy_blas_one_thread() -> Any:
    """A context manager that runs NumPy's own BLAS on one thread.

    Selected by internal API: OpenBLAS (NumPy 2's wheels ship it as ``libscipy_openblas``,
    which a limit keyed ``{"openblas": 1}`` does not reach), BLIS or FlexiBLAS. Never MKL:
    limiting it would also set MKL's thread-local count, which then overrides what the
    ``cpu:mkl`` backend asks for in this process.
    """
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController().select(
        internal_api=["openblas", "blis", "flexiblas"]).limit(limits=1)


def blas_threads() -> int | None:
    """The thread count of NumPy's BLAS now (the largest, if several are loaded)."""
    from threadpoolctl import threadpool_info  # as above: only when asked

    counts = [info["num_threads"] for info in threadpool_info()
              if info.get("internal_api") in ("openblas", "blis", "flexiblas")]
    return max(counts) if counts else None


def _best_of_trials(job: Any, synchronize: Any, repeats: int, min_time: float
                    ) -> dict[str, Any]:
    """Best sample over ``TRIALS`` timings of ``job``, with the trials' bests and their
    spread ((max - min) / min): a stable reference has trials that agree."""
    trials = [measure(job, synchronize, repeats=repeats, min_time=min_time, max_time=2.0)
              for _ in range(TRIALS)]
    bests = [t.min for t in trials]
    best = min(bests)
    return {"seconds": best, "median": min(t.median for t in trials),
            "spread": trials[bests.index(best)].spread, "trials": bests,
            "trial_spread": (max(bests) - best) / best}


def measure_reference(threads: int | None = None, min_time: float = 0.1) -> dict[str, Any]:
    """Time the reference jobs; returns each one's best seconds per call, with the rates.

    ``threads`` is recorded (the run's thread count: scores only compare between runs
    with the same); the GEMM itself runs on one BLAS thread, and ``blas_threads`` records
    the count NumPy's BLAS actually had during it. Each job's figure is the best sample
    of ``TRIALS`` trials; ``trials`` and ``trial_spread`` say how well they agreed.
    ~1 s on 2 cores.
    """
    threads = threads or default_threads()
    be = get_backend("numpy", threads=threads, check_finite=False)
    rng = np.random.default_rng(0)
    a = be.asarray(rng.uniform(-1, 1, (GEMM_N, GEMM_N)).astype(np.float32))
    b = be.asarray(rng.uniform(-1, 1, (GEMM_N, GEMM_N)).astype(np.float32))
    x = be.asarray(np.ones(STREAM_ELEMENTS, np.float32))
    y = be.asarray(np.ones(STREAM_ELEMENTS, np.float32))
    with numpy_blas_one_thread():
        gemm_threads = blas_threads()
        gemm = _best_of_trials(lambda: be.gemm(a, b), be.synchronize, 15, min_time)
    stream = _best_of_trials(lambda: be.add(x, y), be.synchronize, 10, min_time)
    gemm_flops = 2 * GEMM_N ** 3
    stream_bytes = 3 * 4 * STREAM_ELEMENTS  # two operands read, one result written
    return {
        "version": VERSION, "threads": threads,
        "gemm": {"what": f"numpy sgemm {GEMM_N}^3, 1 thread, best sample of {TRIALS} trials",
                 **gemm, "blas_threads": gemm_threads,
                 "gflops": gemm_flops / gemm["seconds"] / 1e9},
        "stream": {"what": f"numpy add of 2 x {STREAM_ELEMENTS} float32, best sample of "
                           f"{TRIALS} trials",
                   **stream, "gbytes_per_s": stream_bytes / stream["seconds"] / 1e9},
    }


def measure_reference_isolated(threads: int | None = None) -> dict[str, Any]:
    """``measure_reference`` in a fresh process, as every hwbench measurement runs: the
    thread limits it sets, and whatever it loads, stay out of the caller's process (a
    thread-local MKL count left by threadpoolctl once overrode the cpu:mkl backend's)."""
    code = ("import json, sys; "
            "from hwbench.harness.measure.reference_workload import measure_reference; "
            "print(json.dumps(measure_reference(int(sys.argv[1]) or None)))")
    done = subprocess.run([sys.executable, "-c", code, str(threads or 0)], capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise HwbenchError(f"reference workload failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ridge_point(reference: dict[str, Any]) -> float:
    """FLOP/byte where the reference machine turns from memory- to compute-bound."""
    return reference["gemm"]["gflops"] / reference["stream"]["gbytes_per_s"]


# Memory-bound work that moves less than this stays in the caches, whose speed follows the
# core's, not DRAM's: the stream reference (two 64 MiB arrays) measures DRAM, which moved
# 14.5 -> 19.9 GB/s between two CI runs on the 2-core VM while a 768 KiB sigmoid_backward
# did not, doubling its normalized time. Such work is normalized by the GEMM reference.
CACHE_RESIDENT_BYTES = 8 << 20


def reference_kind(reference: dict[str, Any], flops: float | None, nbytes: float | None) -> str:
    """``"gemm"`` (compute-bound, or small enough to run from the caches) or ``"stream"``
    (memory-bound and at least ``CACHE_RESIDENT_BYTES``) for work of that size; work
    with unknown FLOPs or bytes counts as compute-bound."""
    if not flops or not nbytes or nbytes < CACHE_RESIDENT_BYTES:
        return "gemm"
    return "gemm" if flops / nbytes >= ridge_point(reference) else "stream"


def reference_seconds(reference: dict[str, Any], kind: str) -> float:
    return float(reference[kind]["seconds"])
