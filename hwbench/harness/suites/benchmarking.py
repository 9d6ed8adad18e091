"""pytest-benchmark glue: a kernel case or a model session, timed by pytest-benchmark.

pytest-benchmark does the timing, statistics, storage and comparison; this module only
says what to run (``benchmark.pedantic``: warm-up rounds, then rounds of ``iterations``
calls, each call followed by ``backend.synchronize()``) and what to record beside it in
``benchmark.extra_info``: GFLOP/s (GOP/s for int8), the accuracy against the float64 (or
exact integer) reference, the backend's device and library versions. ``hwbench compare``
and ``hwbench report`` read those fields back.

Used by ``benchmarks/`` and usable from anyone's own pytest-benchmark suite::

    def test_my_gemm(benchmark, hwbench_backend):      # the plugin's fixture
        case = kernel_suite.make_case(kernel_suite.CaseSpec("gemm", square_gemm(256)))
        bench_kernel(benchmark, hwbench_backend, case)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.backends.base import default_threads
from hwbench.harness.measure.reference_workload import measure_reference
from hwbench.harness.running.machine_state import Monitor
from hwbench.harness.running.timing import sample_flags
from hwbench.harness.suites import model_suite
from hwbench.harness.suites.kernel_suite import (
    accuracy,
    row_flags,
    row_machine_state,
    screen_mode,
    screening_off,
)
from hwbench.models import Session
from hwbench.version import __version__

ROUND_SECONDS = 1e-3  # a round shorter than this is dominated by timer noise
MIN_ROUNDS = 7  # enough samples for the rank test of `hwbench compare`
MAX_ROUNDS = 200
BUDGET_SECONDS = 0.15  # of timed rounds per benchmark (the CI pass must stay short)
WARMUP_ROUNDS = 2


def plan_rounds(one_call: float, budget: float = BUDGET_SECONDS) -> tuple[int, int]:
    """(rounds, iterations) for a call lasting ``one_call`` seconds: rounds of at least
    ``ROUND_SECONDS``, as many as ``budget`` allows within [MIN_ROUNDS, MAX_ROUNDS]."""
    one_call = max(one_call, 1e-7)
    iterations = max(1, min(10_000, math.ceil(ROUND_SECONDS / one_call)))
    rounds = int(budget / (one_call * iterations))
    return max(MIN_ROUNDS, min(MAX_ROUNDS, rounds)), iterations


def _record_backend(benchmark: Any, backend: Any) -> None:
    info = {k: v for k, v in backend.info().items() if isinstance(v, (str, int, float, bool))
            or v is None}
    benchmark.extra_info.update(hwbench=__version__, backend=backend.full_name,
                                backend_info=info)


def _pedantic(benchmark: Any, call: Callable[[], Any], synchronize: Callable[[], None],
              budget: float) -> None:
    """Time ``call`` (+ synchronize) with pytest-benchmark; ``call`` has run once already.

    Records beside it, as ``hwbench kernels`` rows do, the machine's state during the
    timing and the ``flags`` of its rounds (``busy-machine``, ``wide-spread``, ``bimodal``).
    """
    def target() -> None:
        call()
        synchronize()

    start = time.perf_counter()  # one call, only to choose rounds × iterations
    target()
    rounds, iterations = plan_rounds(time.perf_counter() - start, budget)
    with Monitor() as monitor:
        benchmark.pedantic(target, rounds=rounds, iterations=iterations,
                           warmup_rounds=WARMUP_ROUNDS)
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    data = list(getattr(getattr(stats, "stats", None), "data", None) or [])
    benchmark.extra_info.update(machine_state=row_machine_state(monitor.state),
                                flags=row_flags(sample_flags(data), monitor.state))


def _median(benchmark: Any) -> float | None:
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    return stats.stats.median if stats is not None else None


def bench_kernel(benchmark: Any, backend: Any, case: Any, budget: float = BUDGET_SECONDS
                 ) -> dict[str, Any]:
    """Check ``case`` (a ``kernel_suite.Case``) on ``backend`` against its reference, then
    time it with ``benchmark``; returns (and records) the extra info."""
    _record_backend(benchmark, backend)
    int8 = case.op in ("gemm_int8", "qgemm")
    benchmark.extra_info.update(op=case.op, case=case.name, params=case.params,
                                flops=case.flops, bytes=case.bytes,
                                unit="GOP/s" if int8 else "GFLOP/s",
                                check_finite=screen_mode(backend))
    call = case.bind(backend)
    result = backend.to_numpy(call())  # the checked call screens the inputs, once
    backend.synchronize()
    benchmark.extra_info.update(accuracy(result, case.reference, case.exact))
    with screening_off(backend):  # no backend's timing includes the screen
        _pedantic(benchmark, call, backend.synchronize, budget)
    median = _median(benchmark)
    if median:
        benchmark.extra_info.update(seconds=median, rate=case.flops / median / 1e9,
                                    gbytes_per_s=case.bytes / median / 1e9)
    return dict(benchmark.extra_info)


def model_reference(case: Any) -> dict[str, np.ndarray]:
    """The float64 outputs (by name) of a ``model_suite.ModelCase`` over all its batches."""
    with model_suite.reference_folder() as folder:
        return model_suite.load_reference(model_suite.reference_outputs(case, folder)[case.batch])


def bench_model(benchmark: Any, backend_name: str, case: Any,
                reference: dict[str, np.ndarray] | None = None,
                budget: float = BUDGET_SECONDS
                ) -> dict[str, Any]:
    """Run a ``model_suite.ModelCase`` on ``backend_name`` through a ``Session``: accuracy
    over all its input batches (top-1 / MSE on the digits test split, agreement with the
    float64 ``reference``), then one batch timed with ``benchmark``."""
    model = model_suite.load_case_model(case)
    batches, labels, _ = model_suite.case_feeds(model, case)
    session = Session(model, backend=backend_name, precision=case.precision)
    _record_backend(benchmark, session.backend)
    outputs = model_suite.run_outputs(session, model.outputs, batches)
    work = model_suite.model_work(session.model)
    benchmark.extra_info.update(model=case.model, batch=case.batch, precision=case.precision,
                                flops=work.flops, bytes=work.bytes,
                                unit="GOP/s" if case.precision == "int8" else "GFLOP/s")
    benchmark.extra_info.update(model_suite.accuracy_all(outputs, reference, labels,
                                                         model_suite.task_of(case.model)))
    feeds = batches[0]
    _pedantic(benchmark, lambda: session.run(feeds), session.backend.synchronize, budget)
    median = _median(benchmark)
    if median:
        benchmark.extra_info.update(seconds=median, rate=work.flops / median / 1e9,
                                    samples_per_s=case.batch / median)
    return dict(benchmark.extra_info)


def run_record(threads: int | None = None) -> dict[str, Any]:
    """What a benchmark JSON's top-level ``hwbench`` field holds: the reference workload
    (for ``hwbench compare --normalized``), the thread count and library versions."""
    threads = threads or default_threads()
    return {"reference_workload": measure_reference(threads), "threads": threads,
            "versions": {"hwbench": __version__, "numpy": np.__version__}}
