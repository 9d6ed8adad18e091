"""The pytest plugin: ``hwbench_backend`` runs a user's test once per backend, from a sample
test file run by ``pytester``; unavailable backends skip with the reason.

The sample runs in a subprocess: an in-process pytester run restores ``sys.modules``
afterwards, and pyopencl (nanobind) aborts the interpreter when it is imported twice."""

from __future__ import annotations

from importlib.metadata import distributions

pytest_plugins = ("pytester",)

SAMPLE = '''
import numpy as np


def test_gemm_on_every_backend(hwbench_backend):
    be = hwbench_backend
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((4, 2), dtype=np.float32)
    c = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b)))
    assert c.shape == (3, 2) and np.isfinite(c).all()


def test_backend_is_shared_within_the_session(hwbench_backend, request):
    seen = request.config.stash.setdefault(KEY, {})
    seen.setdefault(hwbench_backend.full_name, id(hwbench_backend))
    assert seen[hwbench_backend.full_name] == id(hwbench_backend)


import pytest
KEY = pytest.StashKey[dict]()
'''


def _plugin_args() -> list[str]:
    """Nothing when pytest loads the plugin through its entry point (installed), else -p."""
    from hwbench.pytest_plugin import FIXTURE  # noqa: F401 - importable either way

    return [] if _entry_point_installed() else ["-p", "hwbench.pytest_plugin"]


def _entry_point_installed() -> bool:
    return any(ep.group == "pytest11" and ep.value == "hwbench.pytest_plugin"
               for dist in distributions() for ep in dist.entry_points)


def test_plugin_is_registered_as_a_pytest11_entry_point():
    assert _entry_point_installed(), "pip install -e . registers [project.entry-points.pytest11]"


def test_fixture_parametrizes_over_every_backend_and_skips_absent_ones(pytester):
    # (backend_names() is not called here: pytester restores sys.modules after the test,
    # and a second import of pyopencl aborts the interpreter)
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs",
                                          "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    ran = outcomes.get("passed", 0) + outcomes.get("skipped", 0)
    assert ran >= 4 and ran % 2 == 0  # both tests, once per backend name
    result.stdout.fnmatch_lines(["*test_gemm_on_every_backend?numpy? PASSED*",
                                 "*test_gemm_on_every_backend?cpu? *"])


def test_backend_list_option_and_a_missing_device_skips_with_its_reason(pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs",
                                          "--hwbench-backends=numpy,numpy:nosuchdevice",
                                          "-k", "gemm")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*backend numpy:nosuchdevice unavailable: device "
                                 "'nosuchdevice' not found*"])


def test_unknown_backend_name_is_an_error_not_a_skip(pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "--hwbench-backends=nosuch")
    assert result.ret != 0
    assert "unknown backend 'nosuch'" in result.stdout.str() + result.stderr.str()
