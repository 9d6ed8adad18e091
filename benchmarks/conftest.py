"""Benchmarks: pytest-benchmark suites and the speed targets, checked as ratios.

Run with ``python -m pytest benchmarks`` (not part of the unit-test run). Backends that
are absent are skipped with the reason, as in tests/.
"""

from __future__ import annotations

import pytest

from hwbench.backends import backend_names, get_backend
from hwbench.pytest_plugin import availability

NAMES = backend_names("known")  # with flavours (cpu:mkl, opencl:intel), installed or not


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="benchmark the whole DeepBench and ResNet-50 sets and every default "
                          "model (default: a CI-sized subset)")


@pytest.fixture(params=NAMES, scope="session")
def backend(request):
    ok, why = availability(request.param)
    if not ok:
        pytest.skip(f"backend {request.param} unavailable: {why}")
    return get_backend(request.param)
