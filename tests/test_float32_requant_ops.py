"""QLinearAdd and QLinearConcat in the ``cpu:float32-requant`` mode (``_qadd_fused``,
``_qconcat_fused``): one oneDNN binary or reorder per op in float32, the exact codes (the
``cpu`` default's tables) or 1 LSB away, and the exact path wherever they do not apply."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")


def _held(x: np.ndarray) -> ChannelsLastArray:
    return ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def _plain(x) -> np.ndarray:
    return x.nhwc.transpose(0, 3, 1, 2) if isinstance(x, ChannelsLastArray) else np.asarray(x)


def _within_one_lsb(got, want) -> None:
    got, want = _plain(got).astype(np.int64), _plain(want).astype(np.int64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1
    assert np.count_nonzero(got != want) <= max(2, got.size // 1000)


def _used(be, kind: str) -> int:
    return sum(1 for key in be._primitives if key[0] == kind)


@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8, np.uint8), (np.int8, np.uint8, np.int8)])
@pytest.mark.parametrize("seed", range(6))
def test_add_is_the_exact_codes_or_one_lsb_away(held, dtypes, seed):
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(seed)
    codes = [rng.integers(np.iinfo(t).min, np.iinfo(t).max + 1, (2, 16, 9, 9)).astype(t)
             for t in dtypes[:2]]
    scales = [np.float32(10.0 ** rng.uniform(-3, -1)) for _ in range(3)]
    zeros = [t(rng.integers(np.iinfo(t).min, np.iinfo(t).max + 1)) for t in dtypes]
    a, b = (_held(c) if held else c for c in codes)
    relu = bool(seed % 2)
    args = (a, scales[0], zeros[0], b, scales[1], zeros[1], scales[2], zeros[2], relu)
    got, want = fast.qlinear_binary("add", *args), exact.qlinear_binary("add", *args)
    assert _used(fast, "qadd") == 1 and _used(exact, "qadd") == 0
    assert isinstance(got, ChannelsLastArray) == held
    assert got.dtype == want.dtype == np.dtype(dtypes[2])
    _within_one_lsb(got, want)
    if relu:
        assert _plain(got).min() >= zeros[2]


def test_add_of_other_shapes_or_layouts_runs_the_exact_table():
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    a = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    params = (np.float32(0.02), np.uint8(3), np.float32(0.03), np.uint8(5), np.float32(0.04),
              np.uint8(7))
    for x, y in [(a, a[:, :, :1]), (_held(a), a)]:
        args = (x, *params[:2], y, *params[2:4], *params[4:])
        np.testing.assert_array_equal(_plain(fast.qlinear_binary("add", *args)),
                                      _plain(exact.qlinear_binary("add", *args)))
    assert _used(fast, "qadd") == 0


@pytest.mark.parametrize("seed", range(6))
def test_concat_on_channels_is_the_exact_codes_or_one_lsb_away(seed):
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(seed)
    parts = [_held(rng.integers(0, 256, (2, c, 7, 6)).astype(np.uint8)) for c in (16, 8, 24)]
    y_scale = np.float32(10.0 ** rng.uniform(-3, -1))
    # one input at the output's scale: copied, bit for bit
    params = [(np.float32(10.0 ** rng.uniform(-3, -1)), np.uint8(0)), (y_scale, np.uint8(0)),
              (np.float32(10.0 ** rng.uniform(-3, -1)), np.uint8(0))]
    got = fast.qlinear_concat(parts, params, y_scale, np.uint8(0), 1)
    want = exact.qlinear_concat(parts, params, y_scale, np.uint8(0), 1)
    assert _used(fast, "requant-into") == 3 and _used(exact, "requant-into") == 0
    assert isinstance(got, ChannelsLastArray)
    _within_one_lsb(got, want)
    np.testing.assert_array_equal(got.nhwc[..., 16:24], parts[1].nhwc)
    assert np.count_nonzero(got.nhwc == 255) > 0  # saturated codes too


def test_concat_with_a_zero_point_runs_the_exact_table():
    """This oneDNN's reorder ignores zero points into a strided dst: those stay exact."""
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(0)
    parts = [_held(rng.integers(0, 256, (1, 4, 3, 3)).astype(np.uint8)) for _ in range(2)]
    for params, y_zero in [([(np.float32(.02), np.uint8(10)), (np.float32(.03), np.uint8(0))],
                            np.uint8(0)),
                           ([(np.float32(.02), np.uint8(0))] * 2, np.uint8(3))]:
        got = fast.qlinear_concat(parts, params, np.float32(.025), y_zero, 1)
        want = exact.qlinear_concat(parts, params, np.float32(.025), y_zero, 1)
        np.testing.assert_array_equal(got.nhwc, want.nhwc)
    assert _used(fast, "requant-into") == 0
