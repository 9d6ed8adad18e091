"""Benchmarks: pytest-benchmark suites and the speed targets, checked as ratios.

Run with ``python -m pytest benchmarks`` (not part of the unit-test run). Backends that
are absent are skipped with the reason, as in tests/.
"""

from __future__ import annotations

import pytest

from hwbench.backends import REGISTRY, backend_class, get_backend

NAMES = ["numpy", "cpu", "cpu:mkl"] + [n for n in REGISTRY if n not in ("numpy", "cpu")]
NAMES.insert(NAMES.index("opencl") + 1, "opencl:intel")  # Intel's CPU runtime, if installed


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="benchmark the whole DeepBench and ResNet-50 sets and every default "
                          "model (default: a CI-sized subset)")


@pytest.fixture(params=NAMES, scope="session")
def backend(request):
    base = request.param.split(":")[0]
    cls = backend_class(base)
    ok, why = cls.available()
    if ok and request.param == "opencl:intel":
        from hwbench.backends.opencl import runtime

        why = runtime.intel_cpu_status()
        ok = not why
    elif ok and ":" in request.param and request.param.split(":")[1] not in cls.devices():
        ok, why = False, f"device {request.param} not found"
    if not ok:
        pytest.skip(f"backend {request.param} unavailable: {why}")
    return get_backend(request.param)
