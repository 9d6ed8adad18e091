"""pytest-benchmark suite: every kernel of the interface at the ``small`` shapes.

``python -m pytest benchmarks/test_kernel_benchmarks.py --benchmark-autosave`` stores a
run; ``--benchmark-compare --benchmark-compare-fail=median:10%`` compares with it.
"""

from __future__ import annotations

import pytest

from hwbench.harness import kernel_suite

CASES = list(kernel_suite.build_cases(kernel_suite.OPS, "small"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{c.name}" for c in CASES])
def test_kernel(benchmark, backend, case):
    kernel_call = case.bind(backend)

    def call():
        kernel_call()
        backend.synchronize()
    benchmark.extra_info.update(backend.info())
    benchmark.extra_info.update(op=case.op, flops=case.flops, bytes=case.bytes)
    benchmark(call)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["gflops"] = case.flops / benchmark.stats.stats.median / 1e9
