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
    inputs = {k: backend.asarray(v) for k, v in case.inputs.items()}
    kernel = getattr(backend, case.op)
    if case.op == "qgemm":
        s = case.static
        args = (inputs["a"], s["a_scale"], s["a_zero_point"], inputs["b"], s["b_scale"],
                s["b_zero_point"], s["y_scale"], s["y_zero_point"])

        def call():
            kernel(*args)
            backend.synchronize()
    else:
        def call():
            kernel(**inputs, **case.static)
            backend.synchronize()
    benchmark.extra_info.update(backend.info())
    benchmark.extra_info.update(op=case.op, flops=case.flops, bytes=case.bytes)
    benchmark(call)
    benchmark.extra_info["gflops"] = case.flops / benchmark.stats.stats.median / 1e9
