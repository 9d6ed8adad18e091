"""The binary kernels (``binary``, ``compare``, ``where``) on every backend against the
float64 references, at odd sizes and with broadcasting either way; and bad input raising
the named hwbench error."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels import binary_reference as ref
from hwbench.kernels import spec

SHAPES = [  # (a, b): same shape, b broadcasting, a broadcasting, both, scalars, odd sizes
    ((7,), (7,)),
    ((3, 5, 17), (17,)),
    ((1, 17), (3, 5, 17)),
    ((4, 1, 3), (5, 1)),
    ((), (2, 3)),
    ((33, 9), ()),
    ((2, 1, 3, 1, 5), (1, 4, 1, 6, 1)),
]


def _operands(rng, sa, sb, op):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "pow":  # real results: a positive base (negative ones with integral exponents)
        a = np.abs(a) + np.float32(0.1)
    if op in ("div", "fmod"):
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b).astype(np.float32)
    return a, b


@pytest.mark.parametrize("op", spec.BINARY_OPS)
@pytest.mark.parametrize("sa, sb", SHAPES)
def test_binary_matches_the_float64_reference(backend, rng, op, sa, sb):
    a, b = _operands(rng, sa, sb, op)
    got = backend.to_numpy(backend.binary(backend.asarray(a), backend.asarray(b), op))
    want = ref.binary(a, b, op)
    assert got.dtype == np.float32 and got.shape == want.shape
    # one float32 rounding of the exact result (pow: a few ulp in OpenCL's pow)
    np.testing.assert_allclose(got, want, rtol=4e-7 if op != "pow" else 2e-6, atol=0)


def test_pow_of_negative_base_with_integral_exponent(backend):
    a = np.asarray([-2, -3, -0.5, 2], np.float32)
    b = np.asarray([3, 2, -1, 0.5], np.float32)
    got = backend.to_numpy(backend.binary(backend.asarray(a), backend.asarray(b), "pow"))
    np.testing.assert_allclose(got, ref.binary(a, b, "pow"), rtol=2e-6)


def test_fmod_takes_the_dividends_sign(backend):
    a = np.asarray([-7.5, 7.5, -7.5, 7.5, 0.25], np.float32)
    b = np.asarray([2, -2, -2, 2, 3], np.float32)
    got = backend.to_numpy(backend.binary(backend.asarray(a), backend.asarray(b), "fmod"))
    np.testing.assert_array_equal(got, np.asarray([-1.5, 1.5, -1.5, 1.5, 0.25], np.float32))


@pytest.mark.parametrize("op", spec.COMPARISONS)
@pytest.mark.parametrize("sa, sb", SHAPES)
def test_compare_matches_the_reference(backend, rng, op, sa, sb):
    a = rng.integers(-2, 3, sa).astype(np.float32)  # small integers: many ties
    b = rng.integers(-2, 3, sb).astype(np.float32)
    got = backend.to_numpy(backend.compare(backend.asarray(a), backend.asarray(b), op))
    want = ref.compare(a, b, op)
    assert got.dtype == np.bool_ and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_compare_with_nan_is_false_unscreened():
    be = get_backend("numpy", check_finite=False)
    a, b = np.asarray([np.nan, 1], np.float32), np.asarray([1, np.nan], np.float32)
    for op in spec.COMPARISONS:
        assert not be.compare(a, b, op).any()


@pytest.mark.parametrize("shapes", [((7,), (7,), (7,)), ((3, 1), (1, 5), ()),
                                    ((1, 5, 5), (2, 1, 1), (2, 5, 5)),
                                    ((), (3,), (2, 1)),
                                    ((1, 1, 5, 13), (2, 3, 5, 13), ()),  # a causal mask
                                    ((2, 1, 3, 1), (1, 4, 1, 5), (1,))])  # 4 axes remain
@pytest.mark.parametrize("cdtype", [np.bool_, np.uint8])
def test_where_matches_the_reference(backend, rng, shapes, cdtype):
    sc, sx, sy = shapes
    c = (rng.random(sc) > 0.5).astype(cdtype)
    if cdtype == np.uint8:
        c = c * np.uint8(7)  # any nonzero value is true
    x = rng.standard_normal(sx).astype(np.float32)
    y = rng.standard_normal(sy).astype(np.float32)
    got = backend.to_numpy(backend.where(backend.asarray(c), backend.asarray(x),
                                         backend.asarray(y)))
    want = ref.where(c, x, y)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_where_selects_infinities_exactly(backend):
    """A causal mask: -inf where masked (a select, so no inf*0 NaN)."""
    mask = np.tril(np.ones((4, 4), bool))
    scores = np.arange(16, dtype=np.float32).reshape(4, 4)
    ninf = np.asarray(-np.inf, np.float32)
    got = backend.to_numpy(backend.where(backend.asarray(mask), backend.asarray(scores),
                                         backend.asarray(ninf)))
    np.testing.assert_array_equal(got, np.where(mask, scores, -np.inf))


def test_systolic_counts_binary_ops_on_its_vector_unit():
    be = get_backend("systolic")
    be.counters.reset()
    be.binary(np.ones((3, 4), np.float32), np.ones(4, np.float32), "sub")
    be.compare(np.ones(5, np.float32), np.ones(1, np.float32), "less")
    be.where(np.ones(4, bool), np.ones(4, np.float32), np.zeros(4, np.float32))
    snap = be.counters.snapshot()
    assert [row["op"] for row in snap["layers"]] == ["sub", "less", "where"]
    assert snap["vector_cycles"] > 0 and snap["macs"] == 0


# -- bad input ------------------------------------------------------------------------------
F = np.ones((2, 3), np.float32)


@pytest.mark.parametrize("call, error, match", [
    (lambda be: be.binary(F, F, "add"), ArgumentError, "'op' must be one of"),
    (lambda be: be.binary(F, F, 3), ArgumentError, "'op'"),
    (lambda be: be.binary(F.astype(np.float64), F, "sub"), DTypeError, "'a'"),
    (lambda be: be.binary(F, F.astype(np.int32), "div"), DTypeError, "'b'"),
    (lambda be: be.binary(F, np.ones((4,), np.float32), "max"), ArgumentError,
     "do not broadcast"),
    (lambda be: be.binary(F, np.ones((0,), np.float32), "min"), ArgumentError, "'b'"),
    (lambda be: be.binary([1.0], F, "sub"), ArgumentError, "'a'"),
    (lambda be: be.binary(np.asarray([np.nan, 1, 1], np.float32), F, "sub"), ArgumentError,
     "NaN"),
    (lambda be: be.compare(F, F, "not_equal"), ArgumentError, "'op'"),
    (lambda be: be.compare(F, F.astype(np.int64), "less"), DTypeError, "'b'"),
    (lambda be: be.where(F, F, F), DTypeError, "'condition'"),
    (lambda be: be.where(F > 0, F.astype(np.float16), F), DTypeError, "'x'"),
    (lambda be: be.where(F > 0, F, np.ones(4, np.float32)), ArgumentError,
     "'y' .*do not broadcast"),
    (lambda be: be.where(np.ones((0, 3), bool), F, F), ArgumentError, "'condition'"),
])
def test_bad_input_raises_the_named_error(backend, call, error, match):
    with pytest.raises(error, match=match):
        call(backend)


def test_compare_result_feeds_where_on_the_device(backend, rng):
    """A run-time mask: compare's bool array is where's condition, without the host."""
    a = rng.standard_normal((3, 1, 5)).astype(np.float32)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    zero = np.zeros(1, np.float32)
    mask = backend.compare(backend.asarray(a), backend.asarray(zero), "greater_equal")
    got = backend.to_numpy(backend.where(mask, backend.asarray(x),
                                         backend.binary(backend.asarray(x),
                                                        backend.asarray(a), "max")))
    want = np.where(a >= 0, x, np.maximum(x, a))
    np.testing.assert_array_equal(got, want)
