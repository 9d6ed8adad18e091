"""``reduce`` and ``matmul`` on every backend against the float64 references, and their
argument checks (each bad input raises the named hwbench error before any native call)."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels import reductions_reference as ref
from hwbench.kernels.spec import REDUCE_OPS, check_matmul, check_reduce

SHAPES_AXES = [((7,), None), ((3, 5), (1,)), ((3, 5), (0,)), ((2, 3, 5, 7), (0, 2)),
               ((2, 3, 5, 7), (-1, 1)), ((4, 1, 33), (1, 2)), ((2, 3, 4), ()),
               ((130, 3), (0,)), ((1, 1000), (-1,))]


def _data(rng, shape, op):
    x = rng.standard_normal(shape).astype(np.float32)
    if op in ("log_sum", "prod"):  # a positive sum for log; products near 1
        x = (np.abs(x) + 0.5).astype(np.float32) if op == "log_sum" else \
            (1 + 0.05 * x).astype(np.float32)
    if op == "log_sum_exp":
        x *= np.float32(40)  # exp would overflow without the max taken out
    return x


@pytest.mark.parametrize("op", list(REDUCE_OPS))
@pytest.mark.parametrize("keepdims", [True, False])
def test_reduce_matches_reference(backend, rng, op, keepdims):
    for shape, axes in SHAPES_AXES:
        x = _data(rng, shape, op)
        got = backend.to_numpy(backend.reduce(backend.asarray(x), op, axes, keepdims=keepdims))
        want = ref.reduce(x, op, axes, keepdims)
        assert got.dtype == np.float32
        count = x.size // max(want.size, 1)
        assert_close(got, want, k=count)


def test_reduce_noop_with_empty_axes_copies(backend, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    got = backend.to_numpy(backend.reduce(backend.asarray(x), "sum", [],
                                          noop_with_empty_axes=True))
    np.testing.assert_array_equal(got, x)
    everything = backend.to_numpy(backend.reduce(backend.asarray(x), "sum", []))
    assert everything.shape == (1, 1)
    assert_close(everything, ref.reduce(x, "sum"), k=12)


MATMUL_SHAPES = [((5, 7), (7, 4)), ((3, 5, 7), (3, 7, 4)), ((2, 3, 5, 7), (2, 3, 7, 4)),
                 ((1, 3, 5, 7), (2, 1, 7, 4)), ((5, 7), (3, 7, 4)), ((2, 4, 17, 8), (2, 4, 8, 17)),
                 ((7,), (7,)), ((7,), (2, 7, 3)), ((2, 3, 5, 7), (7,)), ((1, 33), (33, 1))]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul_matches_reference(backend, rng, a_shape, b_shape):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    out = backend.matmul(backend.asarray(a), backend.asarray(b))
    assert not isinstance(out, np.generic)  # a device array even for 1-D @ 1-D
    got = backend.to_numpy(out)
    want = ref.matmul(a, b)
    assert got.shape == want.shape == check_matmul(a, b).output_shape
    assert got.dtype == np.float32
    assert_close(got, want, k=a_shape[-1], backend=backend)


@pytest.mark.parametrize("call,error,match", [
    (lambda be, x: be.reduce(x.astype(np.float64), "sum"), DTypeError, "'x'.*float32"),
    (lambda be, x: be.reduce(x, "median"), ArgumentError, "'op'"),
    (lambda be, x: be.reduce(x, "sum", (2,)), ArgumentError, "'axes'=2 is out of range"),
    (lambda be, x: be.reduce(x, "sum", (1, -1)), ArgumentError, "'axes' names an axis twice"),
    (lambda be, x: be.reduce(x, "sum", "0"), ArgumentError, "'axes'"),
    (lambda be, x: be.reduce(x, "sum", keepdims=1), ArgumentError, "'keepdims'"),
    (lambda be, x: be.reduce(np.zeros((0, 3), np.float32), "sum"), ArgumentError,
     "'x' has a zero-size"),
    (lambda be, x: be.matmul(x, x), ArgumentError, "inner dimensions differ"),
    (lambda be, x: be.matmul(np.zeros((2, 3, 4), np.float32), np.zeros((3, 4, 5), np.float32)),
     ArgumentError, "batch dimensions .* do not broadcast"),
    (lambda be, x: be.matmul(x, x.T.astype(np.float16)), DTypeError, "'b'"),
    (lambda be, x: be.matmul(np.float32(1), x), ArgumentError, "'a' must have rank >= 1"),
    (lambda be, x: be.matmul([[1.0]], x), ArgumentError, "'a' must be an array"),
])
def test_bad_input_raises_named_error(backend, call, error, match):
    x = np.ones((3, 4), np.float32)
    with pytest.raises(error, match=match):
        call(backend, x)


def test_reduce_problem_shapes_and_counts():
    x = np.zeros((2, 3, 4), np.float32)
    p = check_reduce(x, "mean", (-1, 0), keepdims=False)
    assert (p.axes, p.output_shape, p.kept_shape, p.reduced) == ((0, 2), (3,), (1, 3, 1), 8)
    assert p.flops == 24 and check_reduce(x, "l2").flops == 48
    assert check_reduce(x, "sum", [], noop_with_empty_axes=True).output_shape == (2, 3, 4)
    m = check_matmul(np.zeros((2, 1, 5, 7), np.float32), np.zeros((3, 7, 4), np.float32))
    assert (m.batch, m.output_shape, m.flops) == ((2, 3), (2, 3, 5, 4), 2 * 6 * 5 * 4 * 7)


def test_systolic_runs_batched_matmul_on_its_array_and_reductions_on_its_vector_unit():
    from hwbench.backends import get_backend

    be = get_backend("systolic")
    be.reset_counters()
    be.matmul(np.ones((2, 3, 5, 7), np.float32), np.ones((1, 3, 7, 4), np.float32))
    be.reduce(np.ones((2, 3), np.float32), "sum")
    rows = {row["op"]: row for row in be.simulated_counters()["layers"]}
    assert rows["gemm"]["calls"] == 6 and rows["gemm"]["macs"] == 5 * 7 * 4  # per call
    assert rows["reduce"]["calls"] == 1 and rows["reduce"]["macs"] == 0


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@pytest.mark.parametrize("keepdims", [True, False])
def test_cpu_reduce_of_channels_last_activations(rng, op, keepdims):
    """cpu reduces a ChannelsLastArray's float32 NHWC memory in place of an NCHW copy
    where the kept axes keep their order (sum/mean over H and W, or over C); others (an
    order that would change, max) take the NCHW path; all match the float64 reference."""
    from hwbench.backends import get_backend
    from hwbench.backends.cpu import reductions
    from hwbench.backends.cpu.layouts import ChannelsLastArray
    from hwbench.pytest_plugin import availability

    if not availability("cpu")[0]:
        pytest.skip("cpu backend unavailable")
    be = get_backend("cpu")
    x = rng.standard_normal((2, 19, 7, 5)).astype(np.float32)
    held = ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    for axes, in_place in [((2, 3), True), ((1,), True), ((1, 2, 3), True), ((0, 2, 3), True),
                           ((2,), False), ((3,), False)]:
        p = check_reduce(x, op, list(axes), keepdims)
        taken = reductions._reduce_channels_last(p, held)
        assert (taken is not None) == (in_place and op != "max")
        got = np.asarray(be.reduce(held, op, list(axes), keepdims=keepdims))
        want = ref.reduce(x, op, list(axes), keepdims)
        assert got.shape == want.shape and got.dtype == np.float32
        assert_close(got, want, k=x.size // want.size)
