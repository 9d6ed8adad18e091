"""The cpu backend's fast int8 paths, each against the numpy reference.

Exact mode: grouped and depthwise int8 convolutions (ConvInteger, QLinearConv) run as one
oneDNN int8 convolution with an s32 dst where the float32 conversion inside it is
provably exact (``int8_direct``); the results must equal the reference bit for bit, and
filters outside the bound must fall back (still exact).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.cpu import CpuBackend
from hwbench.backends.cpu.int8_direct import float_path_exact

pytestmark = pytest.mark.skipif(not CpuBackend.available()[0],
                                reason=f"cpu backend unavailable: {CpuBackend.available()[1]}")

CASES = [  # (x shape, w shape, stride, padding, dilation, groups)
    ((1, 8, 9, 9), (8, 1, 3, 3), 1, 1, 1, 8),          # depthwise
    ((2, 16, 12, 10), (16, 1, 3, 3), 2, 1, 1, 16),     # depthwise, strided
    ((1, 12, 11, 11), (12, 1, 5, 5), 1, 2, 2, 12),     # depthwise 5x5, dilated
    ((2, 12, 8, 8), (24, 3, 3, 3), 1, (0, 1, 2, 1), 1, 4),  # grouped, 2 filters/group
    ((1, 8, 7, 7), (16, 1, 3, 3), 1, 1, 1, 8),         # depthwise, multiplier 2
]


def _pair():
    return get_backend("numpy"), get_backend("cpu")


def _direct_used(cpu) -> int:
    return sum(1 for key, prim in cpu._primitives.items()
               if key[0] == "qconv-s32" and prim is not None)


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("w_dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("case", CASES)
def test_grouped_conv_int8_exact(case, x_dtype, w_dtype):
    (xs, ws, stride, padding, dilation, groups) = case
    rng = np.random.default_rng(hash((case[0], case[1])) % 2 ** 32)
    ref, cpu = _pair()
    xi, wi = np.iinfo(x_dtype), np.iinfo(w_dtype)
    x = rng.integers(xi.min, xi.max + 1, xs).astype(x_dtype)
    w = rng.integers(wi.min + (wi.min < 0), wi.max + 1, ws).astype(w_dtype)
    zx = x_dtype(rng.integers(xi.min, xi.max + 1))
    zw = w_dtype(0 if w_dtype == np.int8 else 128)
    conv = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    want = ref.to_numpy(ref.conv2d_int8(ref.asarray(x), ref.asarray(w), zx, zw, **conv))
    got = cpu.to_numpy(cpu.conv2d_int8(cpu.asarray(x), cpu.asarray(w), zx, zw, **conv))
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int32
    assert _direct_used(cpu) == 1

    # QLinearConv: per-filter scales and a bias, requantized exactly.
    sx = np.float32(0.02)
    sw = rng.uniform(0.001, 0.02, ws[0]).astype(np.float32)
    sy = np.float32(np.sqrt(ws[1] * ws[2] * ws[3]) * 80 * 60 * 0.02 * 0.01 / 30)
    zy = np.uint8(rng.integers(100, 150))
    bias = rng.integers(-20_000, 20_000, ws[0]).astype(np.int32)
    args = lambda be: (be.asarray(x), sx, zx, be.asarray(w), sw, zw, sy, zy,  # noqa: E731
                       be.asarray(bias))
    want = ref.to_numpy(ref.qconv2d(*args(ref), **conv))
    got = cpu.to_numpy(cpu.qconv2d(*args(cpu), **conv))
    np.testing.assert_array_equal(got, want)
    assert 0 < np.count_nonzero((want > 0) & (want < 255))  # not all saturated


def test_per_filter_weight_zero_point_falls_back_exactly():
    rng = np.random.default_rng(3)
    ref, cpu = _pair()
    x = rng.integers(0, 256, (1, 6, 6, 6)).astype(np.uint8)
    w = rng.integers(-128, 128, (6, 1, 3, 3)).astype(np.int8)
    zw = np.arange(6, dtype=np.int8) - 3  # not symmetric: oneDNN's conv cannot take it
    want = ref.to_numpy(ref.conv2d_int8(ref.asarray(x), ref.asarray(w), 7, zw, padding=1,
                                        groups=6))
    got = cpu.to_numpy(cpu.conv2d_int8(cpu.asarray(x), cpu.asarray(w), 7, zw, padding=1,
                                       groups=6))
    np.testing.assert_array_equal(got, want)
    assert _direct_used(cpu) == 0


def test_float_path_bound():
    small = np.full((4, 1, 3, 3), -128, np.int8)  # 512 * 9 * 128 far below 2**24
    assert float_path_exact(small)
    big = np.full((2, 256, 3, 3), 127, np.int8)  # 512 * 2304 * 127 > 2**24
    assert not float_path_exact(big)
    # The bound is Σ|w| < 2**24 / 512 = 32768 per filter: 258·127 = 32766 in, 259·127 out.
    assert float_path_exact(np.full((3, 258, 1, 1), 127, np.int8))
    worst = np.zeros((3, 259, 1, 1), np.int8)
    worst[1] = -127  # one filter over the bound is enough
    assert not float_path_exact(worst)


def test_grouped_conv_beyond_bound_falls_back_exactly():
    """Filters too large for the float path's bound: the old per-group path, still exact."""
    rng = np.random.default_rng(5)
    ref, cpu = _pair()
    x = rng.integers(0, 256, (1, 512, 3, 3)).astype(np.uint8)
    w = np.full((4, 256, 3, 3), 127, np.int8)  # Σ|w| = 2304·127 per filter
    conv = {"padding": 1, "groups": 2}
    want = ref.to_numpy(ref.conv2d_int8(ref.asarray(x), ref.asarray(w), 3, 0, **conv))
    got = cpu.to_numpy(cpu.conv2d_int8(cpu.asarray(x), cpu.asarray(w), 3, 0, **conv))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["cpu", "cpu:float32-requant"])
def test_remembered_checks_follow_values_not_objects(name):
    """qconv2d's validation is remembered (``spec.memo``) by value: changing a zero point
    or scale in place between calls changes the result like a fresh call, and bad
    arguments still raise after a good call with the same shapes."""
    from hwbench.errors import ArgumentError

    rng = np.random.default_rng(11)
    ref, cpu = get_backend("numpy"), get_backend(name)
    lsb = 0 if name == "cpu" else 1  # float32-requant: within 1 LSB of exact
    x = rng.integers(0, 256, (1, 8, 6, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, (8, 1, 3, 3)).astype(np.int8)
    zx, sw = np.array(100, np.uint8), np.full(8, 0.01, np.float32)
    sx, sy, zy = np.float32(0.02), np.float32(0.05), np.uint8(128)
    bias = rng.integers(-3000, 3000, 8).astype(np.int32)

    def both(be):
        return be.to_numpy(be.qconv2d(be.asarray(x), sx, zx, be.asarray(w), sw, np.int8(0),
                                      sy, zy, be.asarray(bias), padding=1, groups=8))

    def check(got, want):
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= lsb

    first = both(cpu)
    check(first, both(ref))
    zx[...] = 30
    sw[3] = 0.03
    again = both(cpu)
    check(again, both(ref))
    assert np.abs(first.astype(np.int64) - again.astype(np.int64)).max() > 1
    with pytest.raises(ArgumentError, match="y_zero_point"):
        cpu.qconv2d(cpu.asarray(x), sx, zx, cpu.asarray(w), sw, np.int8(0), sy,
                    np.int32(1), None, padding=1, groups=8)
    with pytest.raises(ArgumentError, match="w_scale"):
        cpu.qconv2d(cpu.asarray(x), sx, zx, cpu.asarray(w), sw[:3], np.int8(0), sy, zy,
                    None, padding=1, groups=8)
