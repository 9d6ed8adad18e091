"""The opencl backend's fast paths against the float64 reference, at and around each
path's thresholds: MatMul on the GEMM engine (batch folded into the rows, grouped
products, the packed kernel's column-tile edge, the broadcast fallback)."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import backend_class, get_backend

try:
    OK, WHY = backend_class("opencl").available()
except ImportError as exc:  # pragma: no cover
    OK, WHY = False, str(exc)
pytestmark = pytest.mark.skipif(not OK, reason=f"opencl backend unavailable: {WHY}")


@pytest.fixture(scope="module")
def be():
    return get_backend("opencl")


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _tile_n(be) -> int:
    return be.gemm_engine.packed_tile()[1] if be.gemm_engine.kernel == "sgemm_packed" else 16


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 5, 7), (7, 9)),               # b without batch: folded into rows
    ((2, 3, 5, 7), (1, 7, 9)),         # b's unit batch: folded
    ((4, 7), (7,)),                    # 1-D b
    ((7,), (7, 9)),                    # 1-D a
    ((3, 5, 7), (3, 7, 9)),            # same batch: grouped
    ((2, 3, 1, 7), (2, 3, 7, 9)),      # grouped, m = 1
    ((2, 3, 5, 7), (3, 7, 9)),         # a's batch only: the fallback kernel
    ((1, 5, 7), (3, 7, 9)),            # b's batch only: the fallback kernel
])
def test_matmul_batch_forms_match_the_reference(be, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = _rand(rng, a_shape), _rand(rng, b_shape)
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=a_shape[-1])


@pytest.mark.parametrize("dn", [-1, 0, 1])
@pytest.mark.parametrize("batched", [False, True])
def test_matmul_at_the_column_tile_edge(be, dn, batched):
    """n one below, at and one past the packed kernel's column tile (the scratch + copy
    path, the direct one, and the scratch again)."""
    n = _tile_n(be) + dn
    rng = np.random.default_rng(1)
    a = _rand(rng, (3, 6, 33) if batched else (2, 6, 33))
    b = _rand(rng, (3, 33, n) if batched else (33, n))
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=33)


def test_matmul_grouped_result_does_not_leak_between_groups(be):
    """Each group's product lands in its own slot (distinct scales per group)."""
    rng = np.random.default_rng(2)
    a = _rand(rng, (4, 3, 8)) * np.arange(1, 5, dtype=np.float32)[:, None, None]
    b = _rand(rng, (4, 8, 5))
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=8)
