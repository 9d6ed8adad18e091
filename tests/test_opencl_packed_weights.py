"""The opencl GEMM's B panels of a constant weight packed once (``packed_weights``):
an array ``asarray`` copied from the host keeps its panels for its life, a plan's feeds
(``asarray_feed``, rewritten by a recorded run) never do, and the results are the
per-call packing's bit for bit."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend

pytestmark = needs_backend("opencl")


@pytest.fixture(scope="module")
def be():
    backend = get_backend("opencl", check_finite=False)
    if backend.gemm_engine.kernel != "sgemm_packed":
        pytest.skip("panels are the packed (CPU) engine's")
    return backend


@pytest.fixture
def launches(monkeypatch):
    """The names of the kernels launched while the test runs."""
    from hwbench.backends.opencl import compiler
    names: list[str] = []
    launch = compiler.Program.launch

    def counted(self, name, *args, **kwargs):
        names.append(name)
        return launch(self, name, *args, **kwargs)

    monkeypatch.setattr(compiler.Program, "launch", counted)
    return names


def _operands(m=32, k=64, n=100, seed=0):  # past gemm_small: the packed engine
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(np.float32),
            rng.standard_normal((k, n)).astype(np.float32),
            rng.standard_normal(n).astype(np.float32))


@pytest.mark.parametrize("trans_b", [False, True])
def test_a_weight_is_packed_once(be, launches, trans_b):
    a, b, bias = _operands()
    b = np.ascontiguousarray(b.T) if trans_b else b
    da, db, dbias = be.asarray(a), be.asarray(b), be.asarray(bias)
    plain = be._to_device(b)  # the same values, not frozen: packed per call
    want = be.to_numpy(be.gemm(da, plain, dbias, trans_b=trans_b))
    for _ in range(3):
        got = be.to_numpy(be.gemm(da, db, dbias, trans_b=trans_b))
        np.testing.assert_array_equal(got, want)
    assert launches.count("pack_b") == 2  # the plain call's and the weight's first
    ref = a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64) + bias
    assert_close(want, ref, k=a.shape[1])


def test_feeds_are_not_frozen(be):
    from hwbench.backends.opencl import packed_weights, uploads
    small = np.ones((4, 4), np.float32)
    big = np.ones((uploads.ASYNC_UPLOAD_BYTES // 4 + 1,), np.float32)
    assert packed_weights.panels_of(be.asarray_feed(small)) is None
    assert packed_weights.panels_of(be.asarray_feed(big)) is None
    assert packed_weights.panels_of(be.asarray(small)) is not None


def test_panels_go_with_the_weight(be):
    from hwbench.backends.opencl import packed_weights
    a, b, _ = _operands(seed=1)
    da, db = be.asarray(a), be.asarray(b)
    before = packed_weights.held_bytes()
    be.gemm(da, db)
    assert packed_weights.held_bytes() > before
    del db
    gc.collect()
    assert packed_weights.held_bytes() == before


def test_panels_within_the_limit(be, launches, monkeypatch):
    from hwbench.backends.opencl import packed_weights
    monkeypatch.setattr(packed_weights, "MAX_BYTES", packed_weights.held_bytes())
    a, b, _ = _operands(seed=2)
    da, db = be.asarray(a), be.asarray(b)
    first = be.to_numpy(be.gemm(da, db))
    second = be.to_numpy(be.gemm(da, db))
    np.testing.assert_array_equal(first, second)
    assert launches.count("pack_b") == 2  # none kept: packed on every call


def test_a_weight_refuses_writes_that_would_leave_its_panels_stale(be):
    """User code holding an ``asarray`` array cannot write it (its panels would be the old
    values': a silent wrong answer before ``constant_arrays``); views stay read-only,
    arrays with new memory (a copy, ``x + 1``) are ordinary, and the gemm is right."""
    from hwbench.errors import ArgumentError
    a, b, _ = _operands(seed=3)
    da, db = be.asarray(a), be.asarray(b)
    want = be.to_numpy(be.gemm(da, db))  # panels kept
    writes = [lambda: db.set(b + 1), lambda: db.fill(np.float32(1)),
              lambda: db.__setitem__(0, 1.0), lambda: db.__iadd__(1),
              lambda: db.__imul__(2), lambda: db.reshape(-1).fill(np.float32(0))]
    for write in writes:
        with pytest.raises(ArgumentError, match="asarray"):
            write()
    np.testing.assert_array_equal(be.to_numpy(be.gemm(da, db)), want)
    with pytest.raises(ArgumentError, match="asarray"):
        db.map_to_host(flags=be.dev.cl.map_flags.WRITE)
    mapped = db.map_to_host()  # read: allowed, as a read-only NumPy array
    np.testing.assert_array_equal(mapped, b)
    with pytest.raises(ValueError):
        mapped[0, 0] = 1.0
    del mapped
    copy, plus = db.copy(), db + 1
    copy.fill(np.float32(2))
    plus += 1
    np.testing.assert_array_equal(plus.get(), (b + 1) + 1)
    np.testing.assert_array_equal(be.to_numpy(be.gemm(da, copy)),
                                  be.to_numpy(be.gemm(da, be._to_device(np.full_like(b, 2)))))
    out = be.gemm(da, db)  # a kernel's output is written by later kernels: not constant
    out.fill(np.float32(0))
    np.testing.assert_array_equal(be.to_numpy(be.gemm(da, db)), want)


def test_panels_that_fail_to_allocate_are_not_counted(be, monkeypatch):
    """A weight's panels whose allocation fails give their reservation back (it was kept
    for good: the 2 GiB cap shrank with every failure)."""
    from hwbench.backends.opencl import gemm, packed_weights
    from hwbench.errors import OutOfMemoryError
    a, b, _ = _operands(seed=4)
    da, db = be.asarray(a), be.asarray(b)
    before = packed_weights.held_bytes()

    made = gemm.device_buffer

    def fails(device, nbytes, what):
        if what != "weight panels":  # (scratch as before)
            return made(device, nbytes, what)
        raise OutOfMemoryError(f"allocating {nbytes} bytes of {what}")

    monkeypatch.setattr(gemm, "device_buffer", fails)
    with pytest.raises(OutOfMemoryError):
        be.gemm(da, db)
    assert packed_weights.held_bytes() == before


def test_a_weight_elsewhere_is_named_as_the_opencl_backends(be):
    """Another backend refusing an ``asarray`` array says the opencl backend made it (its
    read-only class keeps pyopencl's module, which ``array_maker`` reads)."""
    from hwbench.errors import ForeignArrayError
    x = be.asarray(np.ones((4, 4), np.float32))
    with pytest.raises(ForeignArrayError, match="made by the 'opencl' backend"):
        get_backend("numpy").gemm(x, x)
