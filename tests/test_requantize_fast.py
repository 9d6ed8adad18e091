"""The exact requantization's shortcuts (``kernels.quantization.requantize``): an int32
saturation of ``acc + bias`` skipped only where it can change no code, and the int32 ->
float64 product in one pass, stay bit for bit the integer-only (gemmlowp) result."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.kernels import quantization as q

INT32 = np.iinfo(np.int32)


@pytest.mark.parametrize("scale", [1e-9, 3e-7, 4.7e-7, 1e-6, 1e-4, 0.5, 3.0])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_sums_past_int32_saturate_as_the_integer_path_does(scale, dtype):
    rng = np.random.default_rng(int(scale * 1e9) % 1000)
    acc = np.concatenate([np.array([INT32.max, INT32.min, INT32.max - 5, INT32.min + 5, 0, 1,
                                    -1], np.int64),
                          rng.integers(INT32.min, INT32.max, 500)]).astype(np.int32)
    acc = np.tile(acc, (4, 1)).T.copy()  # (N, 4): one bias per column
    bias = np.array([[INT32.max, INT32.min, 12345, -7]], np.int32)
    scales = np.array([[scale, scale * 1.37, scale * 0.5, scale * 2.0]], np.float32)
    fixed = q.quantize_multiplier(scales)
    zero = 3 if dtype is np.int8 else 130
    want = q._requantize_integer(q._saturating_sum(acc, bias), fixed, zero, np.dtype(dtype))
    np.testing.assert_array_equal(q.requantize(acc, fixed, zero, dtype, bias), want)


@pytest.mark.parametrize("shape, axis", [((300, 70), 1), ((3, 40, 9, 9), 1), ((5000,), None)])
def test_products_without_bias_equal_the_integer_path(shape, axis):
    rng = np.random.default_rng(1)
    acc = rng.integers(-2**20, 2**20, shape).astype(np.int32)
    n = 1 if axis is None else shape[axis]
    scales = (rng.uniform(1e-5, 1e-2, n)).astype(np.float32)
    if axis is not None:
        scales = scales.reshape([n if d == axis else 1 for d in range(len(shape))])
    fixed = q.quantize_multiplier(scales)
    np.testing.assert_array_equal(q.requantize(acc, fixed, -5, np.int8),
                                  q._requantize_integer(acc, fixed, -5, np.dtype(np.int8)))
