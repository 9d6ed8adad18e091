"""How close float32 results must be to the float64 references (shared by the tests)."""

from __future__ import annotations

import numpy as np

FP32_TOL = 2e-6  # relative to max|ref|, per sqrt(K) of accumulation length


def assert_close(result, ref, k: int = 1, dtype=None) -> None:
    """Max |result − ref| / max |ref| within FP32_TOL·√K (K: the accumulation length);
    with ``dtype``, the result must also have that dtype."""
    if dtype is not None:
        assert np.asarray(result).dtype == dtype
    result = np.asarray(result, dtype=np.float64)
    assert result.shape == ref.shape
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    err = float(np.max(np.abs(result - ref))) / scale
    assert err <= FP32_TOL * max(1.0, np.sqrt(k)), f"relative error {err:.2e}"
