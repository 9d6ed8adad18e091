"""``layer_norm`` on every backend against the float64 reference (with and without bias,
with the Mean/InvStdDev statistics), and its argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels import normalization_reference as ref
from hwbench.kernels.spec import check_layer_norm

CASES = [((7,), -1), ((3, 5), 1), ((3, 5), 0), ((2, 3, 5, 7), 2), ((2, 3, 5, 7), -3),
         ((5, 1000), -1), ((129, 65), 1), ((2, 17, 64), -1), ((1, 1, 3), 0)]


@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_norm_matches_reference(backend, rng, with_bias):
    for shape, axis in CASES:
        x = (3 + 2 * rng.standard_normal(shape)).astype(np.float32)  # mean far from 0
        norm = shape[axis % len(shape):]
        scale = rng.standard_normal(norm).astype(np.float32)
        bias = rng.standard_normal(norm).astype(np.float32) if with_bias else None
        dev = backend.asarray
        got = backend.to_numpy(backend.layer_norm(
            dev(x), dev(scale), None if bias is None else dev(bias), axis=axis, epsilon=1e-3))
        assert got.dtype == np.float32
        assert_close(got, ref.layer_norm(x, scale, bias, axis, 1e-3), k=int(np.prod(norm)))


def test_layer_norm_statistics(backend, rng):
    x = rng.standard_normal((2, 3, 50)).astype(np.float32)
    scale = np.ones((1, 3, 50), np.float32)  # leading 1s are allowed
    y, mean, inv = (backend.to_numpy(o) for o in backend.layer_norm(
        backend.asarray(x), backend.asarray(scale), axis=1, stats=True))
    want = ref.layer_norm(x, scale, None, 1, 1e-5, stats=True)
    for got, expected in zip((y, mean, inv), want, strict=True):
        assert got.shape == expected.shape
        assert_close(got, expected, k=150)
    assert mean.shape == (2, 1, 1)


@pytest.mark.parametrize("call,error,match", [
    (lambda be, x, s: be.layer_norm(x.astype(np.float64), s), DTypeError, "'x'"),
    (lambda be, x, s: be.layer_norm(x, s.astype(np.float64)), DTypeError, "'scale'"),
    (lambda be, x, s: be.layer_norm(x, s, axis=2), ArgumentError, "'axis'=2 is out of range"),
    (lambda be, x, s: be.layer_norm(x, s, axis=0), ArgumentError, "'scale' must have"),
    (lambda be, x, s: be.layer_norm(x, s, np.ones(3, np.float32)), ArgumentError,
     "'bias' must have the normalized shape"),
    (lambda be, x, s: be.layer_norm(x, np.ones((2, 4), np.float32)), ArgumentError,
     "'scale' must have"),
    (lambda be, x, s: be.layer_norm(x, None), ArgumentError, "'scale' is required"),
    (lambda be, x, s: be.layer_norm(x, s, epsilon=-1.0), ArgumentError, "'epsilon'"),
    (lambda be, x, s: be.layer_norm(x, s, epsilon=float("nan")), ArgumentError, "'epsilon'"),
    (lambda be, x, s: be.layer_norm(x, s, stats=1), ArgumentError, "'stats'"),
    (lambda be, x, s: be.layer_norm(np.float32(1), s), ArgumentError, "rank >= 1"),
])
def test_bad_input_raises_named_error(backend, call, error, match):
    x = np.ones((3, 4), np.float32)
    s = np.ones(4, np.float32)
    with pytest.raises(error, match=match):
        call(backend, x, s)


def test_layer_norm_problem_counts():
    p = check_layer_norm(np.zeros((2, 3, 4), np.float32), np.zeros((3, 4), np.float32), axis=1)
    assert (p.rows, p.cols, p.stats_shape, p.flops) == (2, 12, (2, 1, 1), 8 * 24)
