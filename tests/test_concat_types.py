"""Concat moves any layout element type on every backend (issue 15: the op check at load
said Concat takes int8/uint8/int32/int64, but the concat kernel refused all but float32 at
run time, e.g. a run-time Concat of int64 token ids or of uint8 codes)."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.errors import DTypeError
from hwbench.kernels.spec import LAYOUT_DTYPES, check_concat
from hwbench.pytest_plugin import availability

BACKENDS = ["numpy", "cpu", "opencl", "systolic", "cuda"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.dtype(t).name for t in LAYOUT_DTYPES])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_moves_every_layout_type(backend, dtype, axis):
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"{backend} unavailable: {why}")
    be = get_backend(backend)
    rng = np.random.default_rng(abs(axis) + len(dtype))
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    draw = (lambda s: rng.integers(info.min, info.max, s, dtype=dtype, endpoint=True)) \
        if info else (lambda s: rng.standard_normal(s).astype(dtype))
    shapes = [(2, 3, 5), (2, 3, 5), (2, 3, 5)]
    shapes[1] = tuple(4 if d == axis % 3 else n for d, n in enumerate(shapes[1]))
    parts = [draw(s) for s in shapes]
    out = be.to_numpy(be.concat([be.asarray(p) for p in parts], axis))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, np.concatenate(parts, axis))


def test_concat_of_large_int_arrays_on_cpu_skips_the_float32_primitive():
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"cpu unavailable: {why}")
    be = get_backend("cpu")
    parts = [np.arange(70000, dtype=np.int64).reshape(100, 700) + k for k in range(2)]
    np.testing.assert_array_equal(be.to_numpy(be.concat(parts, 1)),
                                  np.concatenate(parts, 1))


def test_concat_refuses_mixed_types_naming_the_item():
    with pytest.raises(DTypeError, match=r"item 1 has dtype float32, item 0 int8: every "
                                         r"item must have one dtype"):
        check_concat([np.zeros((2, 2), np.int8), np.zeros((2, 2), np.float32)], 0)
    assert check_concat([np.zeros((2, 2), np.uint8)] * 2, 0).output_bytes == 8
