"""Shared fixtures: every backend this machine has, each skipped with the reason if absent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hwbench.backends import backend_names, get_backend
from hwbench.pytest_plugin import availability

# --node-test-record FILE: which ONNX node tests passed on which backend (node_test_record.py)
pytest_plugins = ["node_test_record"]

# Every backend name the conformance suite runs, including flavours (cpu:mkl, opencl:intel:
# hwbench.backends.NAMED_FLAVOURS), each skipped with the reason where it is absent.
BACKEND_NAMES = backend_names("known")


@pytest.fixture(params=BACKEND_NAMES, scope="session")
def backend(request):
    """A backend instance, or a skip that says what is missing."""
    ok, why = availability(request.param)
    if not ok:
        pytest.skip(f"backend {request.param} unavailable: {why}")
    return get_backend(request.param)


@pytest.fixture(scope="session")
def onnx_node_cases():
    """The onnx wheel's node tests by name, generated once per session (~5 s)."""
    pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {case.name: case for case in load_model_tests(kind="node")}


@pytest.fixture(scope="module")
def node_tests(onnx_node_cases, request):
    """The node tests a module lists in ``ALL_NAMES``, all of which must exist."""
    missing = [name for name in request.module.ALL_NAMES if name not in onnx_node_cases]
    assert not missing, f"onnx wheel lacks node tests {missing}"
    return onnx_node_cases


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
