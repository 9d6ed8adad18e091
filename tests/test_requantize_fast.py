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


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape, axis, with_bias", [
    ((112 * 112, 96), 1, True),  # per column, many chunks: the bias and scale tiled
    ((6000, 24), 1, False),
    ((2, 40, 70, 70), 1, True),  # per row (NCHW channels): broadcast, not tiled
    ((700, 64), 1, True),  # one chunk and a part: not tiled, not shared
])
def test_tiled_and_shared_chunks_equal_the_integer_path(shape, axis, with_bias, threads):
    """The per-chunk float64 steps with tiled operands, shared among threads, give the
    gemmlowp integer codes, ties and saturation included (shifts past 44 take the
    near-tie fix-up)."""
    rng = np.random.default_rng(sum(shape) + threads)
    acc = rng.integers(-2**22, 2**22, shape).astype(np.int32)
    acc.reshape(-1)[:64] = [INT32.max, INT32.min, 0, 1, -1, 2**21, -2**21, 7] * 8
    n = shape[axis]
    scales = rng.uniform(1e-7, 1e-2, n).astype(np.float32)
    scales[:3] = [2.0**-10, 2.0**-20, 1e-9]  # exact halves, and a shift past 44
    scales = scales.reshape([n if d == axis else 1 for d in range(len(shape))])
    fixed = q.quantize_multiplier(scales)
    bias = None
    if with_bias:
        bias = rng.integers(-2**20, 2**20, n).astype(np.int32)
        bias = bias.reshape([n if d == axis else 1 for d in range(len(shape))])
    want = q._requantize_integer(acc if bias is None else q._saturating_sum(acc, bias),
                                 fixed, 7, np.dtype(np.uint8))
    got = q.requantize(acc, fixed, 7, np.uint8, bias, threads=threads)
    np.testing.assert_array_equal(got, want)
