"""The ctypes MKL binding against float64 / exact int64 NumPy references.

Why so many layouts and zero points: every one of them takes a different route to MKL (a folded
transpose, a copy, a bit-flipped dtype, offsets applied by MKL or corrected on the host, K cut
into chunks), and a mistake in any of them is a wrong answer or a segfault, not an exception.
"""

from __future__ import annotations

import ctypes
import itertools
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwbench.backends.cpu import mkl as mkl_module
from hwbench.backends.cpu.mkl import load_mkl, mkl_available
from hwbench.errors import ArgumentError, BackendUnavailableError, DTypeError, NativeLibraryError

_AVAILABLE, _WHY = mkl_available()
if not _AVAILABLE:
    pytest.skip(f"MKL is not available: {_WHY}", allow_module_level=True)

SIZES = [(1, 1, 1), (7, 13, 5), (65, 3, 129)]  # (M, K, N)
INT_DTYPES = (np.int8, np.uint8)


@pytest.fixture(scope="module")
def mkl():
    return load_mkl()


def _stored(op: np.ndarray, trans: bool, fortran: bool) -> np.ndarray:
    """The array to pass so that ``op(x) == op`` for the given flag and memory order."""
    x = op.T.copy() if trans else op.copy()
    return np.asfortranarray(x) if fortran else x


def _check_sgemm(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """float32 accumulation error grows ~sqrt(K) for random data; scale by |A| @ |B|."""
    ref = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    k = a.shape[1]
    assert c.dtype == np.float32 and c.shape == ref.shape
    assert np.all(np.abs(c - ref) <= 1e-5 * np.sqrt(k) * scale + 1e-30)


@pytest.mark.parametrize("m,k,n", SIZES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("fortran", [False, True], ids=["C", "F"])
def test_sgemm_matches_float64(mkl, m, k, n, trans_a, trans_b, fortran):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    c = mkl.sgemm(_stored(a, trans_a, fortran), _stored(b, trans_b, fortran), trans_a, trans_b)
    _check_sgemm(c, a, b)


def test_sgemm_copies_strided_and_byteswapped_inputs(mkl):
    rng = np.random.default_rng(1)
    big = rng.uniform(-1, 1, (40, 30)).astype(np.float32)
    a = big[::2, 1::3]  # neither C- nor F-contiguous
    b = rng.uniform(-1, 1, (10, 9)).astype(">f4")
    _check_sgemm(mkl.sgemm(a, b, False, False), a, b.astype(np.float32))


def test_sgemm_out(mkl):
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, (4, 5)).astype(np.float32)
    out = np.full((6, 5), np.nan, dtype=np.float32)
    assert mkl.sgemm(a, b, False, False, out=out) is out  # written in place
    _check_sgemm(out, a, b)
    strided = np.zeros((6, 10), dtype=np.float32)[:, ::2]
    assert mkl.sgemm(a, b, False, False, out=strided) is strided  # via a temporary
    _check_sgemm(strided, a, b)
    sq = rng.uniform(-1, 1, (5, 5)).astype(np.float32)
    expected = sq.astype(np.float64) @ sq.astype(np.float64)
    mkl.sgemm(sq, sq, False, False, out=sq)  # out aliases both inputs
    np.testing.assert_allclose(sq, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ArgumentError):
        mkl.sgemm(a, b, False, False, out=np.empty((5, 6), np.float32))
    with pytest.raises(DTypeError):
        mkl.sgemm(a, b, False, False, out=np.empty((6, 5), np.float64))


def test_sgemm_empty_dimensions(mkl):
    zeros = mkl.sgemm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), False, False)
    assert np.array_equal(zeros, np.zeros((3, 4), np.float32))
    empty = mkl.sgemm(np.ones((0, 2), np.float32), np.ones((2, 4), np.float32), False, False)
    assert empty.shape == (0, 4)


def test_sgemm_rejects_what_would_read_out_of_bounds(mkl):
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ArgumentError):
        mkl.sgemm(a, np.ones((3, 2), np.float32), False, False)
    with pytest.raises(DTypeError):
        mkl.sgemm(a.astype(np.float64), np.ones((4, 2), np.float32), False, False)
    with pytest.raises(ArgumentError):
        mkl.sgemm(np.ones(4, np.float32), np.ones((4, 2), np.float32), False, False)


def test_xerbla_becomes_native_library_error(mkl):
    """A parameter MKL rejects (lda < K) must raise, not print and carry on."""
    a = np.ones((4, 4), np.float32)
    c = np.full((4, 4), 7.0, np.float32)
    ptr = a.ctypes.data
    mkl._lib.cblas_sgemm(101, 111, 111, 4, 4, 4, 1.0, ptr, 1, ptr, 4, 0.0, c.ctypes.data, 4)
    with pytest.raises(NativeLibraryError, match="cblas_sgemm rejected parameter 9"):
        mkl._check("sgemm")
    mkl._check("sgemm")  # reported once only
    assert np.all(c == 7.0)  # MKL returned without computing


def _int_reference(a, b, za, zb) -> np.ndarray:
    za = np.asarray(za, np.int64).reshape(-1, 1) if np.ndim(za) else np.int64(za)
    zb = np.asarray(zb, np.int64).reshape(1, -1) if np.ndim(zb) else np.int64(zb)
    return (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)


def _random_int(rng, dtype, shape) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _check_int(mkl, a, b, za, zb) -> None:
    c = mkl.gemm_s8u8s32(a, b, za, zb)
    assert c.dtype == np.int32 and c.shape == (a.shape[0], b.shape[1])
    assert np.array_equal(c, _int_reference(a, b, za, zb))


EXTREME_ZP = {np.int8: (-128, -1, 0, 1, 127), np.uint8: (0, 1, 128, 129, 255)}


@pytest.mark.parametrize("a_dtype,b_dtype", list(itertools.product(INT_DTYPES, repeat=2)))
def test_gemm_s8u8s32_scalar_zero_points(mkl, a_dtype, b_dtype):
    """Every zero point, including those whose -zp does not fit MKL's int8 offset."""
    rng = np.random.default_rng(3)
    a = _random_int(rng, a_dtype, (5, 17))
    b = _random_int(rng, b_dtype, (17, 6))
    a[0] = np.iinfo(a_dtype).max  # extreme rows/columns as well as random ones
    a[1] = np.iinfo(a_dtype).min
    b[:, 0] = np.iinfo(b_dtype).max
    b[:, 1] = np.iinfo(b_dtype).min
    for za, zb in itertools.product(EXTREME_ZP[a_dtype], EXTREME_ZP[b_dtype]):
        _check_int(mkl, a, b, a_dtype(za), b_dtype(zb))


@pytest.mark.parametrize("a_dtype,b_dtype", list(itertools.product(INT_DTYPES, repeat=2)))
@pytest.mark.parametrize("k", [1, 3, 17])
def test_gemm_s8u8s32_vector_zero_points(mkl, a_dtype, b_dtype, k):
    rng = np.random.default_rng(k)
    a = _random_int(rng, a_dtype, (7, k))
    b = _random_int(rng, b_dtype, (k, 5))
    za = _random_int(rng, a_dtype, (7,))
    zb = _random_int(rng, b_dtype, (5,))
    _check_int(mkl, a, b, za, zb)  # per-row and per-column
    _check_int(mkl, a, b, za, b_dtype(3))  # per-row only
    _check_int(mkl, a, b, a_dtype(0), zb)  # per-column only
    _check_int(mkl, a, b, np.full(7, za[0]), np.full(5, zb[0]))  # uniform vectors


@pytest.mark.parametrize("a_dtype,b_dtype", list(itertools.product(INT_DTYPES, repeat=2)))
def test_gemm_s8u8s32_layouts(mkl, a_dtype, b_dtype):
    """F-contiguous operands become transposes; strided ones are copied."""
    rng = np.random.default_rng(4)
    a = np.asfortranarray(_random_int(rng, a_dtype, (9, 11)))
    b = _random_int(rng, b_dtype, (22, 12))[::2, ::2]
    _check_int(mkl, a, b, a_dtype(5), b_dtype(7))
    _check_int(mkl, a, np.asfortranarray(b), a_dtype(5), _random_int(rng, b_dtype, (6,)))


def test_gemm_s8u8s32_long_k_never_saturates(mkl):
    """K > the chunk: raw products overflow int32 although the true result fits."""
    k = 100_003  # 255 * 127 * k > 2**31 > 127 * 127 * k
    a = np.full((2, k), 127, np.int8)  # becomes 255 as uint8
    b = np.full((k, 3), 127, np.int8)
    _check_int(mkl, a, b, np.int8(0), np.int8(0))  # offsets applied by MKL
    _check_int(mkl, a, b, np.array([0, 1], np.int8), np.int8(0))  # corrected on the host
    _check_int(mkl, np.asfortranarray(a), np.asfortranarray(b), np.int8(-1), np.int8(2))


def test_gemm_s8u8s32_empty_dimensions(mkl):
    a = np.ones((3, 0), np.uint8)
    b = np.ones((0, 2), np.int8)
    assert np.array_equal(mkl.gemm_s8u8s32(a, b, 1, 1), np.zeros((3, 2), np.int32))
    empty = mkl.gemm_s8u8s32(np.ones((0, 4), np.int8), np.ones((4, 2), np.int8), 0, 0)
    assert empty.shape == (0, 2)


def test_gemm_s8u8s32_rejects_bad_arguments(mkl):
    a = np.ones((3, 4), np.uint8)
    b = np.ones((4, 2), np.int8)
    with pytest.raises(ArgumentError):
        mkl.gemm_s8u8s32(a, b, 256, 0)  # outside uint8
    with pytest.raises(ArgumentError):
        mkl.gemm_s8u8s32(a, b, np.zeros(4, np.uint8), 0)  # wrong per-row length
    with pytest.raises(ArgumentError):
        mkl.gemm_s8u8s32(a, np.ones((3, 2), np.int8), 0, 0)
    with pytest.raises(DTypeError):
        mkl.gemm_s8u8s32(a.astype(np.int16), b, 0, 0)
    with pytest.raises(DTypeError):
        mkl.gemm_s8u8s32(a, b, 0.5, 0)


@st.composite
def _int_gemm_case(draw):
    a_dtype = draw(st.sampled_from(INT_DTYPES))
    b_dtype = draw(st.sampled_from(INT_DTYPES))
    m, k, n = (draw(st.integers(1, 24)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = _random_int(rng, a_dtype, (m, k))
    b = _random_int(rng, b_dtype, (k, n))
    za = _random_int(rng, a_dtype, (m,) if draw(st.booleans()) else ())
    zb = _random_int(rng, b_dtype, (n,) if draw(st.booleans()) else ())
    if draw(st.booleans()):
        a = np.asfortranarray(a)
    if draw(st.booleans()):
        b = np.asfortranarray(b)
    return a, b, za, zb


@settings(max_examples=30, deadline=None, database=None)
@given(_int_gemm_case())
def test_gemm_s8u8s32_property(mkl, case):
    _check_int(mkl, *case)


def test_threads(mkl):
    before = mkl.max_threads()
    try:
        mkl.set_num_threads(1)
        assert mkl.max_threads() == 1
    finally:
        mkl.set_num_threads(before)
    assert mkl.max_threads() == before
    with pytest.raises(ArgumentError):
        mkl.set_num_threads(0)


def test_threads_win_over_a_thread_local_count_left_by_threadpoolctl(mkl):
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="scikit-learn brings it")
    before = mkl.max_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        pass  # restores MKL through MKL_Set_Num_Threads_Local: a local count remains
    try:
        mkl.set_num_threads(1)
        assert mkl.max_threads() == 1
    finally:
        mkl.set_num_threads(before)


def test_loaded_once_with_gnu_openmp(mkl):
    assert load_mkl() is mkl
    assert mkl.version and mkl.path
    assert mkl.threading_layer == 3  # MKL_THREADING_GNU
    if sys.platform.startswith("linux"):
        mkl.sgemm(np.ones((64, 64), np.float32), np.ones((64, 64), np.float32), False, False)
        with open("/proc/self/maps") as maps:
            loaded = maps.read()
        assert "libiomp5" not in loaded  # Intel's OpenMP would run beside libgomp
        assert "libgomp" in loaded


def test_explicit_library_that_cannot_load(monkeypatch, tmp_path):
    """HWBENCH_MKL_LIBRARY wins, and a bad one says how to get MKL (no silent fallback)."""
    bogus = tmp_path / "libmkl_rt.so.3"
    bogus.write_bytes(b"not a shared object")
    monkeypatch.setenv(mkl_module.MKL_LIBRARY_ENV, str(bogus))
    assert mkl_module._candidates() == [str(bogus)]
    with pytest.raises(BackendUnavailableError, match="pip install"):
        load_mkl.__wrapped__()


def test_lp64_int_is_32_bits():
    """The prototypes pass MKL_INT as c_int; LP64 only holds if that is 32 bits."""
    assert ctypes.sizeof(ctypes.c_int) == 4
