"""pytest-benchmark suite: whole models through ``hwbench.Session`` on every available backend.

Default: the digits models (mlp, lenet, autoencoder) at batch 8 in fp32, LeNet in int8,
and SqueezeNet (the smallest ImageNet model of the zoo) at batch 1; ``--full``: every
default model of ``hwbench run`` at batch 1 and 8. Each records samples/s, GFLOP/s,
top-1 (MSE for the autoencoder) on the digits test split, and the agreement with the
float64 run of the same graph in ``extra_info``.
"""

from __future__ import annotations

import functools

import pytest

from hwbench.errors import UnsupportedError
from hwbench.harness.suites import model_suite
from hwbench.harness.suites.benchmarking import bench_model, model_reference

CI_CASES = [model_suite.ModelCase(m, 8, "fp32") for m in model_suite.DIGITS_MODELS] + [
    model_suite.ModelCase("lenet", 8, "int8"), model_suite.ModelCase("squeezenet", 1, "fp32")]


def model_cases(full: bool) -> list[model_suite.ModelCase]:
    if not full:
        return CI_CASES
    return model_suite.plan(list(model_suite.DEFAULT_MODELS), [1, 8], ["fp32", "int8"])


def pytest_generate_tests(metafunc):
    if "model_case" in metafunc.fixturenames:
        cases = model_cases(metafunc.config.getoption("full", False))
        metafunc.parametrize("model_case", cases, ids=[c.name for c in cases])


@functools.lru_cache(maxsize=32)
def _reference(case: model_suite.ModelCase):
    return model_reference(model_suite.ModelCase(case.model, case.batch, "fp32"))


def test_model(benchmark, backend, model_case):
    benchmark.group = model_case.name
    try:
        info = bench_model(benchmark, backend.full_name, model_case, _reference(model_case))
    except UnsupportedError as exc:
        pytest.skip(f"{backend.full_name} cannot run {model_case.name}: {exc}")
    if model_case.precision == "fp32" and info["backend_info"].get("math_mode") == "fp32":
        assert info["rel_error"] < 1e-3, info
