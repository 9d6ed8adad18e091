"""The ops whole CNNs need (pooling, softmax, add/mul, concat, LRN, reshape/transpose) on
every available backend against the float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import tolerances
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbench.backends.base import Backend
from hwbench.errors import UnsupportedError
from hwbench.kernels import reference, spec

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)


def assert_close(result, ref, k: int = 1):
    """float32 results within the shared tolerance (k: the length of the reduction)."""
    tolerances.assert_close(result, ref, k, dtype=np.float32)


def run(be, op, *arrays, **kwargs):
    return be.to_numpy(getattr(be, op)(*[be.asarray(a) for a in arrays], **kwargs))


def data(rng, shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


# -- pooling ---------------------------------------------------------------------------------
POOL_CASES = [
    # (x shape, kwargs shared by max and avg)
    ((1, 1, 1, 1), dict(kernel=1)),
    ((2, 3, 7, 9), dict(kernel=3)),
    ((2, 3, 7, 9), dict(kernel=(7, 9))),                                # kernel = image
    ((1, 2, 5, 5), dict(kernel=3, padding=1, stride=2)),
    ((2, 3, 7, 9), dict(kernel=(2, 3), stride=(2, 3), padding=(1, 0, 1, 1))),  # asymmetric
    ((1, 2, 11, 10), dict(kernel=2, stride=3)),                         # stride > kernel
    ((1, 2, 11, 10), dict(kernel=2, stride=3, ceil_mode=True)),
    ((1, 3, 8, 8), dict(kernel=3, stride=2, ceil_mode=True)),           # overhang of 1
    ((1, 3, 8, 8), dict(kernel=3, stride=2, ceil_mode=False)),
    ((1, 3, 8, 7), dict(kernel=3, stride=3, padding=1, ceil_mode=True)),
    ((1, 1, 2, 2), dict(kernel=1, stride=2, ceil_mode=True)),           # ONNX drops a window
    ((2, 3, 7, 9), dict(kernel=(2, 3), stride=(2, 3), padding=(1, 0, 2, 1), ceil_mode=True)),
    ((1, 4, 14, 14), dict(kernel=3, stride=2, padding=(0, 0, 1, 1), ceil_mode=True)),
    ((2, 16, 13, 13), dict(kernel=3, stride=2)),                        # AlexNet/SqueezeNet-like
]


@pytest.mark.parametrize("shape,kwargs", POOL_CASES)
def test_max_pool2d_matches_reference(backend, rng, shape, kwargs):
    x = data(rng, shape)
    out = run(backend, "max_pool2d", x, **kwargs)
    ref = reference.max_pool2d(x, **kwargs)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out, ref.astype(np.float32))  # a max is exact


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 2, 9, 9), dict(kernel=2, dilation=2)),
    ((1, 2, 9, 8), dict(kernel=3, dilation=(2, 3), padding=2)),
    ((2, 3, 10, 10), dict(kernel=2, stride=3, dilation=2, padding=1, ceil_mode=True)),
    ((1, 1, 4, 4), dict(kernel=2, dilation=2, ceil_mode=True)),
])
def test_max_pool2d_dilation(backend, rng, shape, kwargs):
    x = data(rng, shape)
    np.testing.assert_array_equal(run(backend, "max_pool2d", x, **kwargs),
                                  reference.max_pool2d(x, **kwargs).astype(np.float32))


def test_max_pool2d_padding_never_wins(backend):
    x = np.full((1, 1, 3, 3), -5.0, np.float32)
    out = run(backend, "max_pool2d", x, kernel=3, padding=1)
    np.testing.assert_array_equal(out, np.full((1, 1, 3, 3), -5.0, np.float32))


@pytest.mark.parametrize("shape,kwargs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool2d_matches_reference(backend, rng, shape, kwargs, count_include_pad):
    x = data(rng, shape)
    out = run(backend, "avg_pool2d", x, count_include_pad=count_include_pad, **kwargs)
    ref = reference.avg_pool2d(x, count_include_pad=count_include_pad, **kwargs)
    kernel = kwargs["kernel"]
    assert_close(out, ref, int(np.prod(kernel if isinstance(kernel, tuple) else (kernel,) * 2)))


def test_avg_pool2d_divisors_follow_onnx(backend):
    """Ones in: every output is (pixels inside) / divisor, so the divisor is visible."""
    x = np.ones((1, 1, 4, 4), np.float32)
    # kernel 3, stride 2, padding 1, ceil mode: windows start at -1, 1, 3 (the last one
    # reaches one pixel past the end padding, which never counts).
    exclude = run(backend, "avg_pool2d", x, kernel=3, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_allclose(exclude, np.ones((1, 1, 3, 3)), rtol=1e-6)
    include = run(backend, "avg_pool2d", x, kernel=3, stride=2, padding=1, ceil_mode=True,
                  count_include_pad=True)
    taps_h = np.array([2, 3, 1]) / np.array([3, 3, 2])  # inside / (inside + explicit pad)
    np.testing.assert_allclose(include[0, 0], np.outer(taps_h, taps_h), rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 16, 7, 7), (3, 2, 1, 13)])
def test_global_avg_pool2d(backend, rng, shape):
    x = data(rng, shape, 3.0) + np.float32(10.0)
    out = run(backend, "global_avg_pool2d", x)
    assert out.shape == shape[:2] + (1, 1)
    assert_close(out, reference.global_avg_pool2d(x), shape[2] * shape[3])


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 4), h=st.integers(1, 12), w=st.integers(1, 12),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       pads=st.tuples(*[st.integers(0, 2)] * 4), dil=st.integers(1, 2), ceil=st.booleans(),
       include=st.booleans())
def test_pooling_random_shapes(backend, n, c, h, w, kh, kw, sh, sw, pads, dil, ceil, include):
    rng = np.random.default_rng(n + 3 * c + 17 * h + 101 * w + 7 * kh + 13 * kw)
    x = data(rng, (n, c, h, w))
    common = dict(kernel=(kh, kw), stride=(sh, sw), padding=pads, ceil_mode=ceil)
    try:
        spec.check_max_pool2d(x, dilation=dil, **common)
    except ValueError:
        return  # kernel larger than the padded image, or padding-only windows: bad input
    np.testing.assert_array_equal(
        run(backend, "max_pool2d", x, dilation=dil, **common),
        reference.max_pool2d(x, dilation=dil, **common).astype(np.float32))
    try:
        spec.check_avg_pool2d(x, **common)
    except ValueError:
        return
    assert_close(run(backend, "avg_pool2d", x, count_include_pad=include, **common),
                 reference.avg_pool2d(x, count_include_pad=include, **common), kh * kw)


def test_pool_problem_counts_work():
    p = spec.check_max_pool2d(np.zeros((2, 3, 8, 8), np.float32), 3, 2, 1)
    assert p.output_shape == (2, 3, 4, 4)
    assert p.flops == 2 * 3 * 4 * 4 * 9
    assert p.bytes == 4 * (2 * 3 * 8 * 8 + 2 * 3 * 4 * 4)


@pytest.mark.parametrize("size,kernel,stride,pads,ceil,expected", [
    (4, 3, 2, (0, 0), True, 2), (4, 3, 2, (0, 0), False, 1),
    (2, 1, 2, (0, 0), True, 1),            # onnx test_maxpool_2d_ceil_output_size_reduce_by_one
    (7, 2, 2, (1, 2), True, 4),            # the window starting in the end padding is dropped
    (8, 2, 2, (1, 1), True, 5), (32, 5, 3, (0, 0), False, 10),
])
def test_pool_output_size_follows_onnx(size, kernel, stride, pads, ceil, expected):
    p = spec.check_avg_pool2d(np.zeros((1, 1, size, size), np.float32), kernel, stride,
                              (pads[0], pads[0], pads[1], pads[1]), ceil)
    assert (p.out_h, p.out_w) == (expected, expected)


# -- softmax ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [
    ((7,), 0), ((3, 5), 0), ((3, 5), 1), ((3, 5), -1), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1),
    ((2, 3, 4, 5), 0), ((2, 1000), 1), ((1, 1), -1), ((4, 3, 2), -2),
])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_softmax_is_stable_and_matches_reference(backend, rng, shape, axis, scale):
    x = data(rng, shape, scale)
    out = run(backend, "softmax", x, axis=axis)
    assert np.isfinite(out).all()
    assert_close(out, reference.softmax(x, axis), shape[axis])
    np.testing.assert_allclose(out.sum(axis=axis), 1.0, rtol=1e-5)


def test_softmax_default_axis_is_last(backend, rng):
    x = data(rng, (3, 4, 5))
    assert_close(run(backend, "softmax", x), reference.softmax(x, -1), 5)


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), axis_seed=st.integers(0, 99),
       scale=st.sampled_from([1.0, 100.0, 1000.0]))
def test_softmax_random_shapes(backend, shape, axis_seed, scale):
    axis = axis_seed % len(shape) - (len(shape) if axis_seed % 2 else 0)
    x = data(np.random.default_rng(axis_seed + 7 * len(shape)), tuple(shape), scale)
    assert_close(run(backend, "softmax", x, axis=axis), reference.softmax(x, axis),
                 shape[axis])


# -- add / mul -------------------------------------------------------------------------------
BINARY_SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((3, 1, 1), (2, 3, 4, 5)),                      # a broadcasts: (C,1,1) + (N,C,H,W)
    ((2, 3, 4, 5), (3, 1, 1)),                      # b broadcasts
    ((1,), (4, 6)),                                 # (1,) + (N, C)
    ((4, 6), (6,)),
    ((2, 1, 4, 1), (1, 3, 1, 5)),                   # both sides broadcast
    ((), (3, 2)),                                   # a scalar
    ((), ()),
    ((7,), (7,)),
    ((1, 1, 1, 1), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("shape_a,shape_b", BINARY_SHAPES)
def test_add_and_mul_broadcast_like_numpy(backend, rng, op, shape_a, shape_b):
    a, b = data(rng, shape_a), data(rng, shape_b)
    out = run(backend, op, a, b)
    assert isinstance(out, np.ndarray)
    assert_close(out, getattr(reference, op)(a, b))


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       mask_a=st.integers(0, 15), mask_b=st.integers(0, 15), drop_a=st.integers(0, 3),
       op=st.sampled_from(["add", "mul"]))
def test_add_and_mul_random_broadcasting(backend, shape, mask_a, mask_b, drop_a, op):
    shape_a = tuple(1 if mask_a >> i & 1 else d for i, d in enumerate(shape))
    shape_b = tuple(1 if mask_b >> i & 1 else d for i, d in enumerate(shape))
    shape_a = shape_a[min(drop_a, len(shape_a) - 1):]
    rng = np.random.default_rng(mask_a * 16 + mask_b)
    a, b = data(rng, shape_a), data(rng, shape_b)
    assert_close(run(backend, op, a, b), getattr(reference, op)(a, b))


def test_binary_problem_counts_work():
    p = spec.check_binary(np.zeros((3, 1, 1), np.float32), np.zeros((2, 3, 4, 5), np.float32),
                          "add")
    assert p.shape == (2, 3, 4, 5)
    assert p.flops == 120
    assert p.bytes == 4 * (3 + 120 + 120)


# -- concat ----------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_concat(backend, rng, axis, count):
    base = (2, 3, 4, 5)
    shapes = []
    for i in range(count):
        shape = list(base)
        shape[axis] = i + 1
        shapes.append(tuple(shape))
    arrays = [data(rng, s) for s in shapes]
    out = backend.to_numpy(backend.concat([backend.asarray(a) for a in arrays], axis))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, reference.concat(arrays, axis).astype(np.float32))


@pytest.mark.parametrize("shapes,axis", [
    ([(8, 64, 28, 28), (8, 32, 28, 28)], 1),   # large enough for the cpu concat primitive
    ([(2, 3), (2, 3)], -2), ([(5,), (1,), (2,)], 0), ((((1, 1, 1, 1),) * 3), 3),
])
def test_concat_sizes_and_tuples(backend, rng, shapes, axis):
    arrays = [data(rng, s) for s in shapes]
    out = backend.to_numpy(backend.concat(tuple(backend.asarray(a) for a in arrays), axis))
    np.testing.assert_array_equal(out, np.concatenate(arrays, axis))


# -- LRN -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("channels", [2, 7])
@pytest.mark.parametrize("alpha,beta,bias", [(1e-4, 0.75, 1.0), (0.5, 0.75, 2.0),
                                             (0.02, 0.5, 1.5)])
def test_lrn_matches_reference(backend, rng, size, channels, alpha, beta, bias):
    x = data(rng, (2, channels, 3, 4), 3.0)
    out = run(backend, "lrn", x, size=size, alpha=alpha, beta=beta, bias=bias)
    assert_close(out, reference.lrn(x, size, alpha, beta, bias), 4 * size)


def test_lrn_divides_alpha_by_size_like_onnx(backend):
    """One lit channel: its own window sums x² = 4 over `size` channels."""
    x = np.zeros((1, 5, 1, 1), np.float32)
    x[0, 2] = 2.0
    out = run(backend, "lrn", x, size=5, alpha=1.0, beta=1.0, bias=1.0)
    np.testing.assert_allclose(out[0, 2, 0, 0], 2.0 / (1.0 + 1.0 / 5 * 4.0), rtol=1e-6)


# -- reshape / transpose ---------------------------------------------------------------------
@pytest.mark.parametrize("shape_in,shape", [
    ((2, 3, 4, 5), (2, -1)), ((2, 3, 4, 5), (-1,)), ((2, 3, 4, 5), (6, 20)),
    ((2, 12), (2, 3, 2, 2)), ((1, 1, 1, 1), (1,)), ((6,), [1, -1, 3]),
])
def test_reshape(backend, rng, shape_in, shape):
    x = data(rng, shape_in)
    out = backend.to_numpy(backend.reshape(backend.asarray(x), shape))  # shape stays a tuple
    np.testing.assert_array_equal(out, reference.reshape(x, shape))


@pytest.mark.parametrize("shape,perm", [
    ((2, 3, 4, 5), (0, 2, 3, 1)), ((2, 3, 4, 5), (3, 2, 1, 0)), ((2, 3), (1, 0)),
    ((2, 3, 4), (0, 1, 2)), ((2, 3, 4), None), ((1, 5, 1), [2, 1, 0]),
])
def test_transpose_is_exact_and_contiguous(backend, rng, shape, perm):
    x = data(rng, shape)
    result = backend.transpose(backend.asarray(x), perm)
    out = backend.to_numpy(result)
    np.testing.assert_array_equal(out, reference.transpose(x, perm))
    if isinstance(result, np.ndarray):
        assert result.flags.c_contiguous


def test_layout_ops_chain_into_kernels(backend, rng):
    """A transposed then reshaped tensor feeds the next kernel like any other."""
    x = data(rng, (2, 4, 3, 5))
    t = backend.transpose(backend.asarray(x), (0, 2, 3, 1))           # NHWC
    flat = backend.reshape(t, (2 * 3 * 5, 4))
    out = backend.to_numpy(backend.softmax(flat, axis=1))
    ref = reference.softmax(x.transpose(0, 2, 3, 1).reshape(-1, 4), 1)
    assert_close(out, ref, 4)


# -- the defaults a backend inherits -----------------------------------------------------------
class _GemmOnly(Backend):
    """A backend written before these ops existed: it must still construct and say which
    op it lacks."""

    name = "gemm-only"

    @classmethod
    def available(cls):
        return True, ""

    def asarray(self, x):
        return np.array(x)

    def to_numpy(self, x):
        return np.asarray(x)

    def empty(self, shape, dtype=np.float32):
        return np.empty(shape, dtype)

    _gemm = _conv2d = _sigmoid = _sigmoid_backward = _relu = _gemm_int8 = _qgemm = None


@pytest.mark.parametrize("op,args", [
    ("max_pool2d", (np.ones((1, 1, 2, 2), np.float32), 2)),
    ("avg_pool2d", (np.ones((1, 1, 2, 2), np.float32), 2)),
    ("global_avg_pool2d", (np.ones((1, 1, 2, 2), np.float32),)),
    ("softmax", (np.ones((2, 2), np.float32),)),
    ("add", (np.ones(2, np.float32), np.ones(2, np.float32))),
    ("mul", (np.ones(2, np.float32), np.ones(2, np.float32))),
    ("concat", ([np.ones(2, np.float32)], 0)),
    ("lrn", (np.ones((1, 1, 2, 2), np.float32), 3)),
    ("reshape", (np.ones(4, np.float32), (2, 2))),
    ("transpose", (np.ones((2, 3), np.float32), (1, 0))),
])
def test_backend_without_an_op_raises_unsupported(op, args):
    with pytest.raises(UnsupportedError, match=f"gemm-only: {op} is not implemented"):
        getattr(_GemmOnly(), op)(*args)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32])
def test_layout_ops_keep_integer_dtypes(backend, dtype):
    """Quantized graphs move int8 tensors through the same layout ops."""
    x = (np.arange(24) % 100).astype(dtype).reshape(2, 3, 4)
    t = backend.to_numpy(backend.transpose(backend.asarray(x), (2, 0, 1)))
    r = backend.to_numpy(backend.reshape(backend.asarray(x), (4, -1)))
    assert t.dtype == r.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t, x.transpose(2, 0, 1))
    np.testing.assert_array_equal(r, x.reshape(4, 6))
