"""pytest-benchmark glue for whole-model peers: onnxruntime timed as ``bench_model`` times
a hwbench backend, and the speed ratio of the two measured side by side in one process.

``bench_onnxruntime`` records what ``bench_model`` records (the model, its work, the
agreement with the float64 reference, the peer's settings), so ``hwbench compare`` reads
both alike. ``interleaved_ratio`` times two callables in alternating rounds and returns
the ratio of their medians: a load that comes and goes falls on both, so the ratio holds
where either time alone would not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.harness.suites import model_suite
from hwbench.harness.suites.benchmarking import BUDGET_SECONDS, _median, _pedantic
from hwbench.harness.suites.peers import OnnxRuntimePeer
from hwbench.version import __version__


def bench_onnxruntime(benchmark: Any, case: Any, threads: int,
                      reference: dict[str, np.ndarray] | None = None,
                      budget: float = BUDGET_SECONDS) -> dict[str, Any]:
    """A ``model_suite.ModelCase`` (fp32) on onnxruntime, recorded as ``bench_model``
    records a backend's run."""
    peer = OnnxRuntimePeer(threads=threads)
    model = model_suite.load_case_model(case)
    batches, labels, _ = model_suite.case_feeds(model, case)
    session = peer.session(model)
    benchmark.extra_info.update(hwbench=__version__, backend=peer.name,
                                backend_info=peer.info())
    outputs = model_suite.run_outputs(session, model.outputs, batches)
    work = model_suite.model_work(model)
    benchmark.extra_info.update(model=case.model, batch=case.batch, precision=case.precision,
                                flops=work.flops, bytes=work.bytes, unit="GFLOP/s")
    benchmark.extra_info.update(model_suite.accuracy_all(outputs, reference, labels,
                                                         model_suite.task_of(case.model)))
    feeds = batches[0]
    _pedantic(benchmark, lambda: session.run(feeds), peer.synchronize, budget)
    median = _median(benchmark)
    if median:
        benchmark.extra_info.update(seconds=median, rate=work.flops / median / 1e9,
                                    samples_per_s=case.batch / median)
    return dict(benchmark.extra_info)


def interleaved_ratio(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int = 7,
                      min_seconds: float = 2e-3) -> float:
    """median time of ``theirs`` ÷ median time of ``ours`` (above 1: ours is faster),
    from ``rounds`` alternating rounds of each, a round repeating its call to last at least
    ``min_seconds``. Both have run once already (warm)."""
    def per_call(fn: Callable[[], Any], calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    calls = [max(1, int(min_seconds / max(per_call(fn, 1), 1e-7))) for fn in (ours, theirs)]
    mine, peer = [], []
    for _ in range(rounds):
        mine.append(per_call(ours, calls[0]))
        peer.append(per_call(theirs, calls[1]))
    return statistics.median(peer) / statistics.median(mine)
