"""Every available backend against the float64 / exact-integer references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import assert_close

from hwbench.kernels import reference

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)




def run(be, op, *arrays, **kwargs):
    return be.to_numpy(getattr(be, op)(*[be.asarray(a) for a in arrays], **kwargs))


# -- gemm --------------------------------------------------------------------------------
GEMM_SHAPES = [(1, 1, 1), (1, 1000, 2048), (7, 13, 5), (65, 3, 129), (33, 17, 3), (128, 96, 64)]


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_matches_float64_reference(backend, rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    out = run(backend, "gemm", a, b, trans_a=trans_a, trans_b=trans_b)
    assert out.dtype == np.float32
    assert_close(out, reference.gemm(a, b, None, trans_a, trans_b), k, backend=backend)


@pytest.mark.parametrize("bias_shape", [(5,), (1, 5), (3, 5), (3, 1), (1,), ()])
def test_gemm_bias_broadcasts_like_onnx(backend, rng, bias_shape):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    bias = np.asarray(rng.standard_normal(bias_shape), dtype=np.float32)
    out = run(backend, "gemm", a, b, bias)
    assert_close(out, reference.gemm(a, b, bias), 4, backend=backend)


def test_gemm_accepts_non_contiguous_and_fortran_inputs(backend, rng):
    big = rng.standard_normal((40, 30)).astype(np.float32)
    a = big[::2, ::3]  # strided view, no unit stride
    b = np.asfortranarray(rng.standard_normal((10, 9)).astype(np.float32))
    out = backend.to_numpy(backend.gemm(a, b)) if backend.name in ("numpy", "cpu") else run(
        backend, "gemm", a, b)
    assert_close(out, reference.gemm(a, b), 10, backend=backend)


@SETTINGS
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 70),
       trans_a=st.booleans(), trans_b=st.booleans())
def test_gemm_random_shapes(backend, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
    out = run(backend, "gemm", a, b, trans_a=trans_a, trans_b=trans_b)
    assert_close(out, reference.gemm(a, b, None, trans_a, trans_b), k, backend=backend)


# -- conv2d ------------------------------------------------------------------------------
CONV_CASES = [
    # (n, c, h, w, k, r, s, stride, padding, dilation, groups)
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
    (1, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1),
    (2, 4, 9, 8, 6, 3, 3, 2, (1, 0, 2, 1), (2, 1), 2),
    (1, 8, 6, 6, 8, 3, 3, 1, 1, 1, 8),          # depthwise
    (3, 5, 11, 5, 7, 5, 2, (2, 1), (2, 0), 1, 1),
    (1, 16, 14, 14, 32, 1, 1, 1, 0, 1, 1),      # 1x1 (cpu: one GEMM per image)
    (3, 8, 12, 12, 4, 1, 1, 1, 0, 1, 1),        # 1x1, batch > 1
    (1, 3, 15, 15, 8, 7, 7, 2, 3, 1, 1),        # stem-like
    (2, 6, 10, 10, 4, 3, 3, 1, 2, 2, 2),        # dilated + grouped
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_matches_float64_reference(backend, rng, case, with_bias):
    n, c, h, w, k, r, s, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32) if with_bias else None
    args = [x, wt] + ([bias] if with_bias else [])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = run(backend, "conv2d", *args, **kw)
    ref = reference.conv2d(x, wt, bias, **kw)
    assert out.shape == ref.shape
    assert_close(out, ref, c // groups * r * s, backend=backend)


def test_conv2d_reused_weights_stay_correct_when_input_changes(backend, rng):
    """The cpu backend caches reordered weights; the cache must key on the weights only."""
    wt = backend.asarray(rng.standard_normal((8, 4, 3, 3)).astype(np.float32))
    for _ in range(3):
        x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
        out = backend.to_numpy(backend.conv2d(backend.asarray(x), wt, padding=1))
        assert_close(out, reference.conv2d(x, backend.to_numpy(wt), padding=1), 36,
                     backend=backend)


@pytest.mark.parametrize("shape", [(3,), (4, 4), (300, 300)])
def test_cpu_device_arrays_cannot_be_made_writable(backend, shape):
    """The cpu backend caches reordered weights per array, so its arrays must be immutable."""
    if backend.name != "cpu":
        pytest.skip("only the cpu backend caches per-array state")
    x = backend.asarray(np.ones(shape, np.float32))
    with pytest.raises(ValueError):
        x[...] = 2.0
    with pytest.raises(ValueError):
        x.flags.writeable = True
    np.testing.assert_array_equal(x, 1.0)


def test_conv2d_weights_cache_sees_different_weights(backend, rng):
    x = backend.asarray(rng.standard_normal((1, 4, 8, 8)).astype(np.float32))
    for _ in range(3):
        wt = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
        out = backend.to_numpy(backend.conv2d(x, backend.asarray(wt), padding=1))
        assert_close(out, reference.conv2d(backend.to_numpy(x), wt, padding=1), 36,
                     backend=backend)


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9),
       kg=st.integers(1, 4), r=st.integers(1, 4), s=st.integers(1, 4), stride=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 2)] * 4), dil=st.integers(1, 2), groups=st.integers(1, 3))
def test_conv2d_random_shapes(backend, n, c, h, w, kg, r, s, stride, pads, dil, groups):
    c = c * groups
    if h + pads[0] + pads[2] < dil * (r - 1) + 1 or w + pads[1] + pads[3] < dil * (s - 1) + 1:
        return  # empty output: covered by the bad-input tests
    rng = np.random.default_rng(n + 7 * c + 31 * h + 131 * w)
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    wt = rng.uniform(-1, 1, (kg * groups, c // groups, r, s)).astype(np.float32)
    kw = dict(stride=stride, padding=pads, dilation=dil, groups=groups)
    out = run(backend, "conv2d", x, wt, **kw)
    assert_close(out, reference.conv2d(x, wt, None, **kw), c // groups * r * s, backend=backend)


# -- elementwise -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4, 5), (100_003,)])
def test_sigmoid_forward_and_backward(backend, rng, shape):
    x = (rng.standard_normal(shape) * 6).astype(np.float32)
    x.flat[0] = 88.0  # exp(-x) underflows: sigmoid must saturate to 1, not NaN
    if x.size > 1:
        x.flat[1] = -104.0  # exp(-x) overflows float32
    y = run(backend, "sigmoid", x)
    assert np.all(np.isfinite(y))
    assert_close(y, reference.sigmoid(x), backend=backend)
    dy = rng.standard_normal(shape).astype(np.float32)
    dx = run(backend, "sigmoid_backward", y, dy)
    assert_close(dx, reference.sigmoid_backward(y, dy))


def test_relu(backend, rng):
    x = rng.standard_normal((4, 33)).astype(np.float32)
    np.testing.assert_array_equal(run(backend, "relu", x), np.maximum(x, 0))


# -- int8 --------------------------------------------------------------------------------
INT8_RANGE = {np.uint8: (0, 256), np.int8: (-128, 128)}


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("b_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 7, 3), (17, 9, 33), (64, 48, 129)])
def test_gemm_int8_is_exact(backend, rng, a_dtype, b_dtype, m, n, k):
    a = rng.integers(*INT8_RANGE[a_dtype], (m, k)).astype(a_dtype)
    b = rng.integers(*INT8_RANGE[b_dtype], (k, n)).astype(b_dtype)
    lo_a, hi_a = INT8_RANGE[a_dtype]
    lo_b, hi_b = INT8_RANGE[b_dtype]
    for za, zb in [(0, 0), (lo_a, hi_b - 1), (hi_a - 1, lo_b), ((lo_a + hi_a) // 2, 3)]:
        za_v, zb_v = a_dtype(za), b_dtype(zb)
        out = run(backend, "gemm_int8", a, b, a_zero_point=za_v, b_zero_point=zb_v)
        assert out.dtype == np.int32
        int64_ref = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
        np.testing.assert_array_equal(out, int64_ref)


def test_gemm_int8_per_row_and_per_column_zero_points(backend, rng):
    a = rng.integers(0, 256, (6, 11)).astype(np.uint8)
    b = rng.integers(-128, 128, (11, 4)).astype(np.int8)
    za = rng.integers(0, 256, 6).astype(np.uint8)
    zb = rng.integers(-128, 128, 4).astype(np.int8)
    out = run(backend, "gemm_int8", a, b, a_zero_point=za, b_zero_point=zb)
    ref = (a.astype(np.int64) - za[:, None]) @ (b.astype(np.int64) - zb[None, :])
    np.testing.assert_array_equal(out, ref)


@SETTINGS
@given(m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 300),
       a_signed=st.booleans(), b_signed=st.booleans(), za=st.integers(0, 255),
       zb=st.integers(0, 255))
def test_gemm_int8_random(backend, m, n, k, a_signed, b_signed, za, zb):
    rng = np.random.default_rng(m + 100 * n + 10_000 * k)
    a_dtype = np.int8 if a_signed else np.uint8
    b_dtype = np.int8 if b_signed else np.uint8
    za = a_dtype(za - 128 if a_signed else za)
    zb = b_dtype(zb - 128 if b_signed else zb)
    a = rng.integers(*INT8_RANGE[a_dtype], (m, k)).astype(a_dtype)
    b = rng.integers(*INT8_RANGE[b_dtype], (k, n)).astype(b_dtype)
    out = run(backend, "gemm_int8", a, b, a_zero_point=za, b_zero_point=zb)
    np.testing.assert_array_equal(
        out, (a.astype(np.int64) - int(za)) @ (b.astype(np.int64) - int(zb)))


@pytest.mark.parametrize("y_dtype", [np.uint8, np.int8])
def test_qgemm_matches_reference_and_saturates(backend, rng, y_dtype):
    a = rng.integers(0, 256, (9, 40)).astype(np.uint8)
    b = rng.integers(-128, 128, (40, 7)).astype(np.int8)
    zy = y_dtype(3)
    args = (np.float32(0.05), np.uint8(120), np.float32(0.02), np.int8(-2), np.float32(0.1), zy)
    out = backend.to_numpy(backend.qgemm(backend.asarray(a), args[0], args[1],
                                         backend.asarray(b), args[2], args[3], args[4], zy))
    ref = reference.qgemm(a, args[0], args[1], b, args[2], args[3], args[4], zy)
    assert out.dtype == np.dtype(y_dtype)
    np.testing.assert_array_equal(out, ref)
    info = np.iinfo(y_dtype)
    assert (out == info.max).any() or (out == info.min).any(), "case should saturate"


@pytest.mark.parametrize("k", [8500, 33025])
def test_gemm_int8_stays_exact_past_float32_precision(backend, k):
    """Sums beyond 2**24 must not pass through float32 anywhere (K at the int32 bound)."""
    a = np.full((3, k), 255, np.uint8)
    a[1] = 0
    b = np.full((k, 2), -128, np.int8)
    b[:, 1] = 127
    for za, zb in [(0, 0), (0, -128), (128, 0)]:
        if not (a.astype(np.int64) - za).max() * 255 * k < 2**31:
            continue
        out = run(backend, "gemm_int8", a, b, a_zero_point=np.uint8(za),
                  b_zero_point=np.int8(zb))
        want = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
        np.testing.assert_array_equal(out, want)
