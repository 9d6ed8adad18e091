"""pool.cl (one output per work-item: the kernels GPUs run) with the window loops it shares
with pool_rows.cl (``pool_window.cl``), run here on the CPU device by making the backend
take its GPU paths, against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.kernels import reference

pytestmark = needs_backend("opencl")


@pytest.fixture(scope="module")
def gpu_paths():
    be = get_backend("opencl")
    be.dev.is_cpu = False  # (a fresh backend: nothing was compiled for the CPU form yet)
    return be


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil", [
    (3, 3, 1, 1, False), (3, 3, (0, 2, 1, 0), 2, True), (2, 3, 0, 1, False)])
def test_pool_cl_max_matches_the_reference(gpu_paths, kernel, stride, padding, dilation, ceil):
    be = gpu_paths
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 11)).astype(np.float32) - 2.0
    out = be.to_numpy(be.max_pool2d(be.asarray(x), kernel, stride, padding, dilation, ceil))
    np.testing.assert_array_equal(out, reference.max_pool2d(x, kernel, stride, padding,
                                                            dilation, ceil).astype(np.float32))


@pytest.mark.parametrize("kernel, stride, padding, ceil, include", [
    (3, 1, 1, False, False), (3, 2, 1, True, True), ((1, 3), (1, 2), (0, 1, 0, 2), False, True)])
def test_pool_cl_average_matches_the_reference(gpu_paths, kernel, stride, padding, ceil,
                                               include):
    be = gpu_paths
    x = np.random.default_rng(4).standard_normal((2, 3, 9, 11)).astype(np.float32)
    out = be.to_numpy(be.avg_pool2d(be.asarray(x), kernel, stride, padding, ceil, include))
    assert_close(out, reference.avg_pool2d(x, kernel, stride, padding, ceil, include), k=9)


def test_normalization_cl_lrn_matches_the_reference(gpu_paths):
    """The GPU form of LRN (eight pixels per work-item; CPUs run ``lrn_rows.cl``)."""
    be = gpu_paths
    x = (3 * np.random.default_rng(6).standard_normal((2, 7, 5, 5))).astype(np.float32)
    out = be.to_numpy(be.lrn(be.asarray(x), 5, 0.5, 0.75, 2.0))
    assert_close(out, reference.lrn(x, 5, 0.5, 0.75, 2.0), k=5)
