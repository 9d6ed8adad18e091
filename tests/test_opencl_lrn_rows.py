"""LRN on the CPU device (``lrn_rows.cl``: a plane per work-item in float8 blocks, then the
plane's tail; beta 0.75 through two square roots, any other beta through exp2/log2)
against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.kernels import reference

pytestmark = needs_backend("opencl")


@pytest.mark.parametrize("shape", [(1, 7, 5, 5), (2, 12, 4, 6), (1, 3, 8, 8)])
@pytest.mark.parametrize("size, alpha, beta, bias", [
    (5, 1e-4, 0.75, 1.0), (3, 0.5, 0.75, 2.0), (5, 0.2, 0.6, 1.5), (1, 1.0, 1.0, 1.0)])
def test_lrn_rows_matches_the_reference(shape, size, alpha, beta, bias):
    be = get_backend("opencl")
    x = (3 * np.random.default_rng(5).standard_normal(shape)).astype(np.float32)
    out = be.to_numpy(be.lrn(be.asarray(x), size, alpha, beta, bias))
    assert_close(out, reference.lrn(x, size, alpha, beta, bias), k=size)
