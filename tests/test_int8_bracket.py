"""The exact mode's bracketed QLinearConv (``backends/cpu/int8_bracket.py``): two fused
oneDNN int8 convolutions whose float32 biases are moved down and up by a written error
bound, the rare positions where their codes differ recomputed exactly. Its contract is the
exact mode's: the codes are the ``numpy`` backend's bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qconv_draws import draw_qconv

from hwbench.backends import get_backend
from hwbench.backends.cpu import CpuBackend
from hwbench.backends.cpu import int8_bracket as bracket

pytestmark = pytest.mark.skipif(not CpuBackend.available()[0],
                                reason=f"cpu backend unavailable: {CpuBackend.available()[1]}")


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


@pytest.fixture(scope="module")
def ref():
    return get_backend("numpy")


@pytest.fixture
def fixups(monkeypatch):
    """Counts the calls and positions the bracket recomputed exactly, and the layers it
    declined (``_bracket`` returned None: no oneDNN implementation, outside the bound)."""
    seen = {"calls": 0, "positions": 0, "codes": 0, "declined": 0}
    differing, build = bracket.differing, bracket._bracket

    def declines(*args):
        br = build(*args)
        seen["declined"] += br is None
        return br

    monkeypatch.setattr(bracket, "_bracket", declines)

    def spy(lo, hi):
        flat = differing(lo, hi)
        seen["calls"] += 1
        seen["positions"] += flat.size
        seen["codes"] += lo.size
        return flat

    monkeypatch.setattr(bracket, "differing", spy)
    return seen


def _qconv(be, args, conv):
    x, sx, zx, w, sw, zw, sy, zy, bias = args
    return be.to_numpy(be.qconv2d(be.asarray(x), sx, zx, be.asarray(w), sw, zw, sy, zy,
                                  None if bias is None else be.asarray(bias), **conv))


def _case(rng, xs, ws, x_dtype, y_dtype, *, spread=30.0, w_max=127, bias_max=20_000,
          per_filter=True, uint8_w=False):
    """Random QLinearConv arguments; typical outputs ``spread`` LSB from the zero point
    (small: few saturate; large: many do)."""
    xi, yi = np.iinfo(x_dtype), np.iinfo(y_dtype)
    x = rng.integers(xi.min, xi.max + 1, xs).astype(x_dtype)
    w = rng.integers(-w_max, w_max + 1, ws).astype(np.int8)
    zw = np.int8(0)
    if uint8_w:
        w, zw = (w.astype(np.int16) + 128).astype(np.uint8), np.uint8(128)
    zx = x_dtype(rng.integers(xi.min, xi.max + 1))
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = np.asarray(rng.uniform(0.001, 0.05, ws[0] if per_filter else None), np.float32)
    typical = np.sqrt(ws[1] * ws[2] * ws[3]) * 80.0 * max(w_max, 1) * 0.55 * float(x_scale) \
        * float(np.mean(w_scale))
    y_scale = np.float32(typical / spread)
    zy = y_dtype(rng.integers(yi.min // 2 + 64, yi.max // 2 + 64))
    bias = rng.integers(-bias_max, bias_max + 1, ws[0]).astype(np.int32) if bias_max else None
    return (x, x_scale, zx, w, w_scale, zw, y_scale, zy, bias)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bracket_is_bit_identical_to_numpy(cpu, ref, fixups, data):
    """Random convolutions: strides, asymmetric padding, dilation, groups and depthwise,
    int8/uint8 input and output with random zero points, uint8 weights with zero point
    128, biases large and small, outputs mostly inside or mostly saturated."""
    g = draw_qconv(data, max_c_per_group=6, max_hw=10)
    args = _case(g["rng"], g["x_shape"], g["w_shape"], g["x_dtype"], g["y_dtype"],
                 spread=data.draw(st.sampled_from([3.0, 30.0, 300.0]), label="spread"),
                 bias_max=data.draw(st.sampled_from([0, 200, 2_000_000]), label="bias"),
                 per_filter=data.draw(st.booleans(), label="per filter"),
                 uint8_w=data.draw(st.booleans(), label="uint8 w"))
    conv = {key: g[key] for key in ("stride", "padding", "dilation", "groups")}
    calls, declined = fixups["calls"], fixups["declined"]
    np.testing.assert_array_equal(_qconv(cpu, args, conv), _qconv(ref, args, conv))
    assert fixups["calls"] == calls + 1 or fixups["declined"] == declined + 1


def test_bracket_recomputes_ties_built_on_purpose(cpu, ref, fixups):
    """Power-of-two scales put many values exactly on k + 1/2 (and an odd output zero
    point makes rint(v) + zy differ from rint(v + zy)): the fused convs cannot decide
    them, the exact fix-up does, and every code is numpy's."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (1, 8, 6, 6)).astype(np.uint8)
    w = rng.integers(-8, 9, (4, 8, 3, 3)).astype(np.int8)
    bias = rng.integers(-64, 64, 4).astype(np.int32)
    args = (x, np.float32(0.5), np.uint8(3), w, np.float32(1.0), np.int8(0),
            np.float32(1.0), np.uint8(127), bias)  # scale 1/2: every odd acc + bias a tie
    got = _qconv(cpu, args, {"padding": 1})
    np.testing.assert_array_equal(got, _qconv(ref, args, {"padding": 1}))
    assert fixups["positions"] > got.size // 10, "ties should need the exact fix-up"


def test_bracket_without_its_fixup_would_be_wrong(cpu, ref, monkeypatch):
    """The same ties with the fix-up skipped: the lower run's codes alone are not exact
    (so the tests above can fail)."""
    monkeypatch.setattr(bracket, "differing", lambda lo, hi: np.zeros(0, np.int64))
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (1, 8, 6, 6)).astype(np.uint8)
    w = rng.integers(-8, 9, (4, 8, 3, 3)).astype(np.int8)
    args = (x, np.float32(0.5), np.uint8(3), w, np.float32(1.0), np.int8(0),
            np.float32(1.0), np.uint8(127), None)
    assert not np.array_equal(_qconv(cpu, args, {"padding": 1}),
                              _qconv(ref, args, {"padding": 1}))


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
def test_bracket_large_accumulators(cpu, ref, fixups, x_dtype):
    """512 channels of 3x3 filters at full int8 range: accumulator terms pass 2**24, where
    oneDNN's float32 conversion rounds; the bound widens for that and stays exact."""
    rng = np.random.default_rng(5)
    args = _case(rng, (1, 512, 5, 5), (8, 512, 3, 3), x_dtype, np.uint8, spread=40.0)
    w8 = args[3]
    assert 2 * 256 * int(np.where(w8 > 0, w8, 0).astype(np.int64).sum(axis=(1, 2, 3)).max()) \
        >= bracket.EXACT_INTEGERS
    np.testing.assert_array_equal(_qconv(cpu, args, {"padding": 1}),
                                  _qconv(ref, args, {"padding": 1}))
    assert fixups["calls"] == 1


@pytest.mark.parametrize("x_dtype,zx_nonzero", [(np.uint8, True), (np.uint8, False),
                                                (np.int8, True)])
def test_bracket_runs_on_depthwise_and_dense_layers(cpu, ref, fixups, x_dtype, zx_nonzero):
    """MobileNet-like shapes (a depthwise 3x3, stride 2, and a 1x1), each bracketed (not
    declined) and numpy's bit for bit."""
    rng = np.random.default_rng(11)
    for ws, conv in (((32, 1, 3, 3), {"padding": 1, "stride": 2, "groups": 32}),
                     ((24, 32, 1, 1), {})):
        args = list(_case(rng, (1, 32, 15, 15), ws, x_dtype, np.uint8, spread=20.0))
        if not zx_nonzero:
            args[2] = x_dtype(0)
        np.testing.assert_array_equal(_qconv(cpu, tuple(args), conv),
                                      _qconv(ref, tuple(args), conv))
    assert fixups["calls"] == 2 and fixups["declined"] == 0


def test_bracket_is_rare_and_ran_on_a_resnet_layer(cpu, ref, fixups):
    """A ResNet-sized layer: the bracket ran, and few codes needed the exact fix-up."""
    rng = np.random.default_rng(7)
    args = _case(rng, (1, 64, 28, 28), (64, 64, 3, 3), np.uint8, np.uint8)
    got = _qconv(cpu, args, {"padding": 1})
    np.testing.assert_array_equal(got, _qconv(ref, args, {"padding": 1}))
    assert fixups["calls"] == 1 and fixups["positions"] <= got.size // 1000


def test_bracket_bound_covers_the_float32_steps():
    """Δ exceeds the sum of one rounding per float32 step at the largest value that can
    still round inside the output range, and grows where accumulator terms pass 2**24."""
    w = np.ones((2, 4, 1, 1), np.int8)
    scale = np.full(2, 0.01, np.float32)
    exact = scale.astype(np.float64)
    delta, _ = bracket.error_bound(w, scale, exact, np.zeros(2))
    assert np.all(delta > 2.0**-24 * (257 + 2 * 258))
    big = np.full((1, 40_000, 1, 1), 127, np.int8)  # 256·Σw⁺ > 2**23
    small = np.full(1, 1e-5, np.float32)
    wide, _ = bracket.error_bound(big, small, small.astype(np.float64), np.zeros(1))
    assert wide[0] > 2.0**-24 * 2 * 256 * 127 * 40_000 * float(small[0])
    plain, _ = bracket.error_bound(big, small, small.astype(np.float64), np.zeros(1), True)
    assert plain[0] < wide[0]  # a u8 src without zero point: the accumulator alone
    assert bracket.error_bound(big, np.ones(1, np.float32), np.ones(1), np.zeros(1)) is None


def test_bracket_falls_back_where_it_does_not_apply(cpu, ref, fixups):
    """Per-filter weight zero points: not oneDNN's symmetric one, so the int32 path runs
    (the bracket never did), and the codes are still numpy's."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 4, 3, 3)).astype(np.int8)
    args = (x, np.float32(0.02), np.uint8(9), w, np.float32(0.01),
            np.array([0, 2, -1], np.int8), np.float32(0.05), np.uint8(100), None)
    np.testing.assert_array_equal(_qconv(cpu, args, {}), _qconv(ref, args, {}))
    assert fixups["calls"] == 0


def test_requantize_few_is_the_integer_requantization(rng):
    """The fix-up's Python-int requantization against the shared NumPy one: random and
    tie totals (t·m an odd multiple of 2**(shift-1)), negative ones, shifts up to 70."""
    from hwbench.kernels.quantization import FixedPointMultiplier, _requantize_integer

    n = 4000
    shifts = rng.integers(1, 71, n)
    multipliers = rng.integers(2**30, 2**31, n)
    totals = rng.integers(-2**31, 2**31, n)
    ties = rng.random(n) < 0.3  # t·2**30 / 2**31 = t/2: every odd t a tie
    multipliers[ties], shifts[ties] = 2**30, 31
    totals[ties] = 2 * rng.integers(-300, 300, int(ties.sum())) + 1
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        for zy in (0, 3, -7 if dtype == np.int8 else 128):
            got = bracket.requantize_few(totals.tolist(), multipliers.tolist(),
                                         shifts.tolist(), zy, info.min, info.max)
            want = _requantize_integer(totals, FixedPointMultiplier(multipliers, shifts), zy,
                                       np.dtype(dtype))
            np.testing.assert_array_equal(np.array(got, dtype), want)


@pytest.mark.parametrize("size", [0, 5, 8, 64, 1001])
def test_differing_finds_every_difference(rng, size):
    a = rng.integers(0, 256, size).astype(np.uint8)
    b = a.copy()
    where = rng.choice(size, min(size, 7), replace=False) if size else np.zeros(0, int)
    b[where] += 1
    np.testing.assert_array_equal(bracket.differing(a, b), np.sort(where))


def _near_tie_cases(seed: int, count: int):
    """Scales ``2**-m·(1 ± 2**-e)``: every odd ``acc + bias`` lands ``~|acc|·2**-e`` from a
    tie, inside float32's rounding error for large ``e`` (where float32 requantization
    goes wrong)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        c, k, r = int(rng.integers(1, 64)), int(rng.integers(1, 16)), int(rng.choice([1, 3]))
        xd, yd = rng.choice([np.uint8, np.int8]), rng.choice([np.uint8, np.int8])
        xi, yi = np.iinfo(xd), np.iinfo(yd)
        x = rng.integers(xi.min, xi.max + 1, (1, c, 8, 8)).astype(xd)
        wmax = int(rng.choice([3, 20, 127]))
        w = rng.integers(-wmax, wmax + 1, (k, c, r, r)).astype(np.int8)
        zx = xd(rng.integers(xi.min, xi.max + 1)) if rng.random() < 0.7 else xd(0)
        e, m = int(rng.integers(14, 23)), int(rng.integers(1, 12))
        w_scale = np.float32(2.0 ** -m * (1 + rng.choice([-1, 1]) * 2.0 ** -e))
        bias = rng.integers(-2**12, 2**12, k).astype(np.int32) if rng.random() < 0.5 else None
        args = (x, np.float32(1.0), zx, w, w_scale, np.int8(0), np.float32(1.0),
                yd(rng.integers(yi.min, yi.max + 1)), bias)
        yield args, {"padding": r // 2}


def test_bracket_is_exact_within_float32_error_of_ties(cpu, ref):
    """Values closer to a tie than float32's error, on purpose: the exact mode is numpy's
    bit for bit, where the float32-requant mode's single rounding misses some (so these
    cases can tell)."""
    fast = get_backend("cpu", requantization="float32")
    missed = 0
    for args, conv in _near_tie_cases(5, 120):
        want = _qconv(ref, args, conv)
        np.testing.assert_array_equal(_qconv(cpu, args, conv), want)
        missed += not np.array_equal(_qconv(fast, args, conv), want)
    assert missed > 0
