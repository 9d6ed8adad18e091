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


PRECISION_SAMPLE = '''
import numpy as np
import pytest


def _gemm_error(be):
    rng = np.random.default_rng(0)
    x = rng.random((8, 64), dtype=np.float32)
    w = rng.random((64, 10), dtype=np.float32)
    y = be.to_numpy(be.gemm(be.asarray(x), be.asarray(w)))
    return float(np.max(np.abs(y - x @ w) / np.abs(x @ w)))


def test_any_precision(hwbench_backend):
    assert _gemm_error(hwbench_backend) < 0.05


@pytest.mark.hwbench_precision("fp32")
def test_needs_fp32(hwbench_backend):
    assert _gemm_error(hwbench_backend) < 1e-4
'''


def test_default_fixture_includes_backends_whose_float_math_is_int8(pytester):
    # without the marker, systolic runs like any other backend (its quantized GEMM meets
    # the loose tolerance), and the fp32 test is where its int8 error would fail
    pytester.makepyfile(test_sample=PRECISION_SAMPLE)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs",
                                          "-v", "--hwbench-backends=numpy,systolic",
                                          "-k", "any_precision")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_any_precision?systolic? PASSED*"])


def test_precision_marker_skips_int8_backends_with_the_reason(pytester):
    pytester.makepyfile(test_sample=PRECISION_SAMPLE)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs",
                                          "-v", "--hwbench-backends=numpy,systolic")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines([
        "*test_needs_fp32?numpy? PASSED*",
        "*test_needs_fp32?systolic? SKIPPED*",
        "*systolic computes float GEMM and conv in int8; this test asks fp32*",
    ])


def test_precision_marker_with_an_unknown_precision_is_an_error(pytester):
    pytester.makepyfile(test_sample='''
import pytest

@pytest.mark.hwbench_precision("fp31")
def test_x(hwbench_backend):
    pass
''')
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "--hwbench-backends=numpy")
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert "hwbench_precision: argument 'precision' must be one of" in out and "fp31" in out


def test_precision_order_admits_more_precise_math_and_reads_cuda_math_mode():
    from hwbench.backends.reference import ReferenceBackend
    from hwbench.backends.systolic import SystolicBackend
    from hwbench.pytest_plugin import float_precision, precision_shortfall

    assert float_precision(SystolicBackend) == "int8"
    assert float_precision(ReferenceBackend) == "fp64"
    assert precision_shortfall("fp64", "fp32", "reference") == ""
    assert precision_shortfall("fp32", "tf32", "cpu") == ""
    assert "asks fp32" in precision_shortfall("tf32", "fp32", "cuda")
    assert precision_shortfall("fp32", None, "cpu") == ""

    class TF32Cuda:  # a cuda instance created with math_mode="tf32"
        float_precision = "fp32"
        math_mode = "tf32"

    assert float_precision(TF32Cuda()) == "tf32"


def test_every_runner_reads_the_one_backend_name_list():
    """``--backend all``, the plugin and the suites' conftests list backends and flavours
    from ``hwbench.backends.backend_names``; "known" lists the named flavours whether or
    not they are installed, so that test ids are the same on every machine."""
    import pytest

    from hwbench.backends import NAMED_FLAVOURS, REGISTRY, backend_names, expand_backends
    from hwbench.errors import ArgumentError
    from hwbench.pytest_plugin import backend_names as plugin_names

    known = backend_names("known")
    assert known == ["numpy", "cpu", "cpu:mkl", "systolic", "opencl", "opencl:intel", "cuda"]
    assert set(REGISTRY) | {f"{b}:{f}" for b, fs in NAMED_FLAVOURS.items() for f in fs} \
        == set(known)
    available, listed = backend_names(), backend_names("listed")
    assert expand_backends("all") == available and plugin_names() == listed
    assert [name for name in listed if name in available] == available
    assert set(REGISTRY) <= set(listed)
    with pytest.raises(ArgumentError, match="argument 'scope'"):
        backend_names("everything")
