"""The opencl backend's fast paths against the float64 reference, at and around each
path's thresholds: MatMul on the GEMM engine (batch folded into the rows, grouped
products, the packed kernel's column-tile edge, the broadcast fallback)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend

pytestmark = needs_backend("opencl")


@pytest.fixture(scope="module")
def be():
    return get_backend("opencl")


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _tile_n(be) -> int:
    return be.gemm_engine.packed_tile()[1] if be.gemm_engine.kernel == "sgemm_packed" else 16


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 5, 7), (7, 9)),               # b without batch: folded into rows
    ((2, 3, 5, 7), (1, 7, 9)),         # b's unit batch: folded
    ((4, 7), (7,)),                    # 1-D b
    ((7,), (7, 9)),                    # 1-D a
    ((3, 5, 7), (3, 7, 9)),            # same batch: grouped
    ((2, 3, 1, 7), (2, 3, 7, 9)),      # grouped, m = 1
    ((2, 3, 5, 7), (3, 7, 9)),         # a's batch only: the fallback kernel
    ((1, 5, 7), (3, 7, 9)),            # b's batch only: the fallback kernel
])
def test_matmul_batch_forms_match_the_reference(be, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = _rand(rng, a_shape), _rand(rng, b_shape)
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=a_shape[-1])


@pytest.mark.parametrize("dn", [-1, 0, 1])
@pytest.mark.parametrize("batched", [False, True])
def test_matmul_at_the_column_tile_edge(be, dn, batched):
    """n one below, at and one past the packed kernel's column tile (the scratch + copy
    path, the direct one, and the scratch again)."""
    n = _tile_n(be) + dn
    rng = np.random.default_rng(1)
    a = _rand(rng, (3, 6, 33) if batched else (2, 6, 33))
    b = _rand(rng, (3, 33, n) if batched else (33, n))
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=33)


def test_matmul_grouped_result_does_not_leak_between_groups(be):
    """Each group's product lands in its own slot (distinct scales per group)."""
    rng = np.random.default_rng(2)
    a = _rand(rng, (4, 3, 8)) * np.arange(1, 5, dtype=np.float32)[:, None, None]
    b = _rand(rng, (4, 8, 5))
    out = be.to_numpy(be.matmul(be.asarray(a), be.asarray(b)))
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), k=8)


BROADCASTS = [
    ((1, 56, 56, 96), (96,)),          # a row vector: (rows, C)
    ((2, 8, 5, 7), (1, 8, 1, 1)),      # a per-channel NCHW bias: (N, C, HW), 3 dims
    ((2, 8, 5, 7), (8, 5, 7)),         # the batch broadcast: (N, C*H*W)
    ((3, 4, 5), (3, 1, 5)),            # a middle axis broadcast
    ((3, 4, 5), ()),                   # a scalar
    ((1,), (1, 1, 1)),                 # every extent 1
    ((4, 1, 6), (1, 5, 1)),            # both broadcast: an outer product (2 dims)
    ((2, 3, 4, 5), (1, 3, 1, 5)),      # four dims left: the general kernel
]


def test_collapse_merges_axes_each_operand_steps_through_as_one():
    from hwbench.backends.opencl.broadcast import collapse
    assert collapse((2, 8, 5, 7), (2, 8, 5, 7), (1, 8, 1, 1)) == ((2, 8, 35), ((280, 35, 1),
                                                                              (0, 1, 0)))
    assert collapse((1, 56, 56, 96), (1, 56, 56, 96), (96,)) == ((3136, 96), ((96, 1),
                                                                             (0, 1)))
    assert collapse((2, 3, 4, 5), (2, 3, 4, 5), (1, 3, 1, 5))[0] == (2, 3, 4, 5)
    assert collapse((4, 4), (4, 4), (4, 4)) == ((16,), ((1,), (1,)))


@pytest.mark.parametrize("a_shape,b_shape", BROADCASTS)
@pytest.mark.parametrize("swap", [False, True])
def test_add_and_mul_broadcast_match_numpy(be, a_shape, b_shape, swap):
    rng = np.random.default_rng(3)
    a, b = _rand(rng, a_shape), _rand(rng, b_shape)
    if swap:
        a, b = b, a
    for op, ref in (("add", np.add), ("mul", np.multiply)):
        out = be.to_numpy(getattr(be, op)(be.asarray(a), be.asarray(b)))
        np.testing.assert_array_equal(out, ref(a, b))  # one rounding each: exact


@pytest.mark.parametrize("op", ["sub", "div", "pow", "max", "min", "fmod"])
@pytest.mark.parametrize("a_shape,b_shape", [((2, 8, 5, 7), (1, 8, 1, 1)),
                                             ((2, 3, 4, 5), (1, 3, 1, 5))])
def test_binary_ops_broadcast_match_the_reference(op, a_shape, b_shape):
    be = get_backend("opencl", check_finite=False)  # NaN goes in: Max/Min propagate it
    rng = np.random.default_rng(4)
    a, b = _rand(rng, a_shape), _rand(rng, b_shape)
    if op in ("pow", "fmod", "div"):
        a, b = np.abs(a) + 0.5, np.abs(b) + 0.5
    a.flat[0] = np.nan if op in ("max", "min") else a.flat[0]
    numpy = get_backend("numpy", check_finite=False)
    ref = np.power(a, b) if op == "pow" else numpy.binary(a, b, op)
    out = be.to_numpy(be.binary(be.asarray(a), be.asarray(b), op))
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=0, equal_nan=True)


PERMS = [
    ((1, 96, 7, 7), (0, 2, 3, 1)),       # NCHW -> NHWC: a 2-D transpose after collapsing
    ((2, 3, 4, 5), (0, 2, 3, 1)),        # (N, C, HW) -> (N, HW, C): 3 axes
    ((2, 3, 4, 5), (3, 2, 1, 0)),        # a full reversal: 4 axes, the general gather
    ((2, 1, 4, 1), (3, 2, 0, 1)),        # unit axes dropped
    ((6, 5), (1, 0)),
    ((6, 5), (0, 1)),                    # the identity: one contiguous copy
    ((2, 3, 4), (1, 0, 2)),
    ((1, 3, 4, 6, 6), (0, 2, 1, 3, 4)),  # a channel shuffle: rows of 36 (strided3_rows)
    ((2, 5, 16), (1, 0, 2)),             # rows of exactly one 16-element chunk
]


def test_transpose_collapse():
    from hwbench.backends.opencl.permute import collapse
    assert collapse((1, 96, 56, 56), (0, 2, 3, 1)) == ((3136, 96), (1, 3136))
    assert collapse((2, 3, 4, 5), (0, 2, 3, 1)) == ((2, 20, 3), (60, 1, 20))
    assert collapse((2, 3, 4, 5), (0, 1, 2, 3)) == ((120,), (1,))
    assert len(collapse((2, 3, 4, 5), (3, 2, 1, 0))[0]) == 4


@pytest.mark.parametrize("shape,perm", PERMS)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_transpose_matches_numpy(be, shape, perm, dtype):
    x = (np.arange(np.prod(shape)) % 120 - 60).astype(dtype).reshape(shape)
    out = be.to_numpy(be.transpose(be.asarray(x), perm))
    np.testing.assert_array_equal(out, np.transpose(x, perm))


@pytest.mark.parametrize("w_in", [7, 8, 9, 16, 17, 35, 41])
@pytest.mark.parametrize("rs,stride,padding,dilation", [
    (3, 1, 1, 1), (7, 1, 3, 1), (3, 2, 1, 1), (5, (3, 1), (2, 1, 0, 2), 1), (3, 1, 2, 2),
    (1, 1, 0, 1), (5, 2, 2, 1), (3, (1, 2), 1, 2),
])
@pytest.mark.parametrize("plane_max", [None, 0])
def test_depthwise_matches_the_reference(be, monkeypatch, w_in, rs, stride, padding,
                                         dilation, plane_max):
    """Around the eight-output block (OW 7..17), both horizontal stride forms (vload8;
    two vload8's even lanes), vertical strides, asymmetric padding and dilation. On CPUs
    every plane here runs as a plane per work-item (``depthwise_plane``), and with
    ``PLANE_MAX_FLOATS`` 0 through the padded input: rows wider than
    ``direct.ROWS_MIN_OW`` (35, 41) a row per work-item, the others eight outputs."""
    from hwbench.backends.opencl import direct
    from hwbench.kernels import reference
    if plane_max is not None:
        monkeypatch.setattr(direct, "PLANE_MAX_FLOATS", plane_max)
    rng = np.random.default_rng(5)
    c = 6
    x = _rand(rng, (2, c, 11, w_in))
    w = _rand(rng, (c, 1, rs, rs))
    ref = reference.conv2d(x, w, None, stride, padding, dilation, c)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), None, stride, padding, dilation,
                                groups=c))
    assert_close(out, ref, k=rs * rs)


@pytest.mark.parametrize("width", [5, 13, 16])
def test_depthwise_epilogue_bias_residual_relu(be, width):
    """Rows of under eight, of a partial and of whole blocks: in a plane per work-item a
    row's last block spills into the next row (written after it), the residual read
    there too; only the plane's last row stores part of a block."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(6)
    x, w, bias = _rand(rng, (2, 5, 9, width)), _rand(rng, (5, 1, 3, 3)), _rand(rng, (5,))
    res = _rand(rng, (2, 5, 9, width))
    ref = np.maximum(reference.conv2d(x, w, bias, 1, 1, 1, 5) + res, 0)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), be.asarray(bias), 1, 1,
                                groups=5, residual=be.asarray(res), activation="relu"))
    assert_close(out, ref, k=9)


def test_depthwise_scratch_reuse_across_sizes(be):
    """A small conv after a large one reuses the (larger) padded scratch correctly."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(7)
    for shape in ((1, 4, 30, 30), (1, 4, 5, 6), (2, 3, 9, 9)):
        x, w = _rand(rng, shape), _rand(rng, (shape[1], 1, 3, 3))
        out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), None, 1, 1, groups=shape[1]))
        assert_close(out, reference.conv2d(x, w, None, 1, 1, 1, shape[1]), k=9)


def test_depthwise_plane_work_groups():
    """16 planes a work-group, fewer where that leaves PoCL's threads under 8 groups."""
    from hwbench.backends.opencl import direct
    assert direct.plane_local(8 * 192) == 16
    assert direct.plane_local(128) == 16
    assert direct.plane_local(96) == 8
    assert direct.plane_local(16) == 2
    assert direct.plane_local(3) == 1


def test_depthwise_path_choice():
    from hwbench.backends.opencl import direct
    from hwbench.kernels import spec
    x, w = np.zeros((1, 8, 9, 9), np.float32), np.zeros((8, 1, 3, 3), np.float32)
    assert direct.is_depthwise(spec.check_conv2d(x, w, None, 1, 1, 1, 8))
    assert direct.is_depthwise(spec.check_conv2d(x, w, None, (2, 1), 1, 1, 8))
    assert direct.is_depthwise(spec.check_conv2d(x, w, None, 2, 1, 1, 8))
    assert not direct.is_depthwise(spec.check_conv2d(x, w, None, 3, 1, 1, 8))
    w2 = np.zeros((8, 2, 3, 3), np.float32)
    assert not direct.is_depthwise(spec.check_conv2d(x, w2, None, 1, 1, 1, 4))


@pytest.mark.parametrize("hw", [(1, 7), (2, 4), (3, 3), (4, 4), (1, 17), (5, 5)])
@pytest.mark.parametrize("size,beta,bias", [(5, 0.75, 1.0), (3, 0.5, 2.0), (1, 1.0, 0.5)])
def test_lrn_matches_the_reference(be, hw, size, beta, bias):
    """Pixels per channel around the eight-pixel block (7, 8, 9, 16, 17, 25),
    windows of 1, 3, 5; exp2(beta * log2(base)) against the float64 power."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(8)
    x = _rand(rng, (2, 6, *hw)) * 3
    out = be.to_numpy(be.lrn(be.asarray(x), size, 1e-2, beta, bias))
    np.testing.assert_allclose(out, reference.lrn(x, size, 1e-2, beta, bias), rtol=2e-6,
                               atol=1e-7)


def test_small_gemm_thresholds():
    from hwbench.backends.opencl import small_gemm as sg
    assert sg.rows_per_item(1, 4096, 9216, dot=True) == 1
    assert sg.rows_per_item(2, 4096, 9216, dot=True) == 2
    assert sg.rows_per_item(3, 4096, 9216, dot=True) == 3
    assert sg.rows_per_item(8, 4096, 9216, dot=True) == 8
    assert sg.rows_per_item(16, 4096, 9216, dot=True) == 8   # two work-items' rows
    assert sg.rows_per_item(17, 4096, 9216, dot=True) is None
    assert sg.rows_per_item(1, 4096, 9216, dot=False) is None
    assert sg.rows_per_item(32, 64, 63, dot=False) == 4      # just below 2**17
    assert sg.rows_per_item(32, 64, 64, dot=False) is None   # at 2**17: packed
    assert sg.rows_per_item(3, 5, 7, dot=False) == 3


@pytest.mark.parametrize("m,n,k", [
    (1, 1, 1), (1, 9, 7), (1, 8, 8), (2, 17, 33), (3, 40, 40), (8, 8, 8), (9, 15, 16),
    (32, 64, 63), (32, 64, 64), (1, 300, 700), (2, 129, 1030), (3, 129, 1030),
    (8, 129, 1030), (13, 129, 1030), (16, 65, 1030), (17, 65, 1030),
])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("bias_shape", [None, "n", "m1", "mn"])
def test_gemm_small_and_skinny_match_the_reference(be, m, n, k, ta, tb, bias_shape):
    """Shapes at and around SMALL_MACS and SKINNY_ROWS, every transpose (the dot kernel
    takes (False, True)), k around the eight-float slices, every bias broadcast."""
    rng = np.random.default_rng(m * 1000 + n + k)
    a = _rand(rng, (k, m) if ta else (m, k))
    b = _rand(rng, (n, k) if tb else (k, n))
    bias = {None: None, "n": (n,), "m1": (m, 1), "mn": (m, n)}[bias_shape]
    bias = None if bias is None else _rand(rng, bias)
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    if bias is not None:
        ref = ref + bias
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b),
                              None if bias is None else be.asarray(bias), ta, tb))
    assert_close(out, ref, k=k)


@pytest.mark.parametrize("m,small", [(8, False), (1, True)])
def test_small_products_with_packed_weights_run_packed_from_eight_rows(be, monkeypatch, m,
                                                                       small):
    """A constant weight's kept panels: LeNet's 8x120x84 one packed launch, not
    gemm_small; a single row stays on gemm_small. Both match the reference."""
    from hwbench.backends.opencl import packed_weights
    from hwbench.backends.opencl import small_gemm as sg
    rng = np.random.default_rng(9)
    a, b, bias = _rand(rng, (m, 120)), _rand(rng, (120, 84)), _rand(rng, (84,))
    weights = packed_weights.freeze(be.asarray(b))
    calls, real = [], sg.gemm_small
    monkeypatch.setattr(sg, "gemm_small", lambda *args: calls.append(args) or real(*args))
    for _ in range(2):  # the first call packs the panels, the second reuses them
        out = be.to_numpy(be.gemm(be.asarray(a), weights, be.asarray(bias)))
        assert_close(out, a.astype(np.float64) @ b + bias, k=120)
    assert bool(calls) == small


@pytest.mark.parametrize("m,n,k,activation,tb", [
    (8, 84, 120, "relu", False), (1, 64, 64, "sigmoid", False), (64, 64, 64, "tanh", False),
    (8, 16, 24, "silu", False), (2, 40, 64, "relu", True), (16, 300, 700, "tanh", True),
])
def test_gemm_applies_its_activation_as_it_stores(be, monkeypatch, m, n, k, activation, tb):
    """On the packed engine gemm_small (its dot kernel too: ``tb``) and sgemm_packed_out
    apply the activation in their epilogue: no elementwise kernel after the product."""
    if be.gemm_engine.kernel != "sgemm_packed":
        pytest.skip("the tiled engine applies activations after the product")

    def elementwise(*_: object) -> None:
        raise AssertionError("an elementwise kernel ran after the GEMM")

    for name in ("_relu", "_sigmoid", "_unary_op", "_mul"):
        monkeypatch.setattr(be, name, elementwise)
    rng = np.random.default_rng(10)
    a, b, bias = _rand(rng, (m, k)), _rand(rng, (k, n)), _rand(rng, (n,))
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(np.ascontiguousarray(b.T) if tb else b),
                              be.asarray(bias), trans_b=tb, activation=activation))
    y = a.astype(np.float64) @ b + bias
    ref = {"relu": np.maximum(y, 0), "sigmoid": 1 / (1 + np.exp(-y)), "tanh": np.tanh(y),
           "silu": y / (1 + np.exp(-y))}[activation]
    assert_close(out, ref, k=k)


@pytest.mark.parametrize("shapes,axis", [
    ([(1, 3, 4, 4), (1, 5, 4, 4), (1, 1, 4, 4)], 1),   # one outer block: buffer copies
    ([(2, 3, 4), (2, 5, 4)], 1),                         # two: rect copies (CPUs)
    ([(3, 2), (3, 7)], -1),
    ([(4,), (1,), (3,)], 0),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
def test_concat_matches_numpy(be, shapes, axis, dtype):
    arrays = [(np.arange(np.prod(s)) + 10 * i).astype(dtype).reshape(s)
              for i, s in enumerate(shapes)]
    out = be.to_numpy(be.concat([be.asarray(a) for a in arrays], axis))
    np.testing.assert_array_equal(out, np.concatenate(arrays, axis))


@pytest.mark.parametrize("w_in", [5, 8, 9, 16, 19, 33, 40])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil", [
    (3, 1, 1, 1, False), (3, (2, 1), 1, 1, False), (2, 1, 0, 1, False),
    (3, 1, (0, 2, 1, 0), 2, False), (3, 1, 1, 1, True), (3, 2, 1, 1, True),
    (3, 2, 1, 1, False), (2, 2, 0, 1, False), (3, 2, (0, 1, 0, 2), 2, False),
    (3, 3, 1, 1, False),  # the last: pool.cl
])
def test_max_pool_matches_the_reference(be, w_in, kernel, stride, padding, dilation, ceil):
    """Horizontal stride 1 and 2 (eight outputs per work-item: interior blocks as float8,
    edge blocks lane by lane) around the block width, and stride 3 on pool.cl."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(10)
    x = _rand(rng, (2, 3, 7, w_in)) - 2.0  # mostly negative: padding must never win
    ref = reference.max_pool2d(x, kernel, stride, padding, dilation, ceil)
    out = be.to_numpy(be.max_pool2d(be.asarray(x), kernel, stride, padding, dilation, ceil))
    np.testing.assert_array_equal(out, ref.astype(np.float32))


@pytest.mark.parametrize("w_in", [5, 8, 16, 19, 33, 40])
@pytest.mark.parametrize("kernel,stride,padding,ceil,include", [
    (2, 2, 0, False, False), (3, 1, 1, False, False), (3, 1, 1, False, True),
    (3, 2, 1, True, False), (3, 2, 1, True, True), ((1, 3), (1, 2), (0, 1, 0, 2), False, True),
    (3, 3, 1, False, False),  # stride 3: lane by lane
])
def test_avg_pool_matches_the_reference(be, w_in, kernel, stride, padding, ceil, include):
    """pool_rows.cl's average (CPUs: float8 blocks inside the row, the edges lane by lane)
    with either divisor, ceil mode's overhang and asymmetric padding."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(11)
    x = _rand(rng, (2, 3, 7, w_in))
    ref = reference.avg_pool2d(x, kernel, stride, padding, ceil, include)
    out = be.to_numpy(be.avg_pool2d(be.asarray(x), kernel, stride, padding, ceil, include))
    k = np.prod(kernel) if isinstance(kernel, tuple) else kernel * kernel
    assert_close(out, ref, k=int(k))


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (7, 7), (3, 5), (14, 14), (28, 28)])
def test_global_avg_pool_matches_the_reference(be, hw):
    """float8 partial sums over each plane, then the tail (49 = six blocks and one)."""
    from hwbench.kernels import reference
    x = _rand(np.random.default_rng(12), (2, 5, *hw))
    out = be.to_numpy(be.global_avg_pool2d(be.asarray(x)))
    assert_close(out, reference.global_avg_pool2d(x), k=hw[0] * hw[1])


@pytest.mark.parametrize("n,c,k", [(1, 96, 4), (1, 4, 96), (2, 240, 960), (3, 16, 8),
                                   (1, 7, 5)])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("activation", [None, "silu", "sigmoid", "relu", "hardsigmoid"])
def test_pixel_conv_matches_the_reference(be, n, c, k, with_bias, activation):
    """1x1 convs of 1x1 images (squeeze-and-excitation) as one GEMM: small, dot and
    packed sizes, with and without bias, the SE blocks' activations applied as the one
    small launch stores (the packed size, 2x240x960, keeps the conv path)."""
    from hwbench.kernels import reference
    rng = np.random.default_rng(11)
    x, w = _rand(rng, (n, c, 1, 1)), _rand(rng, (k, c, 1, 1))
    bias = _rand(rng, (k,)) if with_bias else None
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w),
                                None if bias is None else be.asarray(bias),
                                activation=activation))
    ref = reference.activation64(reference.conv2d(x, w, bias), activation)
    assert_close(out, ref, k=c)


def test_pixel_conv_choice():
    from hwbench.backends.opencl.small_gemm import is_pixel_conv
    from hwbench.kernels import spec
    x, w = np.zeros((1, 8, 1, 1), np.float32), np.zeros((4, 8, 1, 1), np.float32)
    p = spec.check_conv2d(x, w)
    assert is_pixel_conv(p, None, 0)
    assert is_pixel_conv(p, None, 4)  # + SiLU: one gemm_small_dot launch
    assert not is_pixel_conv(p, x, 0)
    assert not is_pixel_conv(spec.check_conv2d(np.zeros((1, 8, 2, 1), np.float32), w),
                             None, 0)
    assert not is_pixel_conv(spec.check_conv2d(x, w, padding=1), None, 0)
    big_x = np.zeros((64, 512, 1, 1), np.float32)
    big = spec.check_conv2d(big_x, np.zeros((512, 512, 1, 1), np.float32))
    assert is_pixel_conv(big, None, 0)  # the packed GEMM
    assert not is_pixel_conv(big, None, 4)  # ... which has no activation: the conv path


@pytest.mark.parametrize("shape,dtype", [((2, 3, 5), np.float32), ((7,), np.int32),
                                         ((), np.float32), ((4, 0), np.float32)])
def test_empty_settled_shape_same_array(be, shape, dtype):
    """``empty`` of a shape seen before (the settled fast path) gives the array the
    checked path gives: shape, dtype, strides, flags, its own buffer."""
    first, again = be.empty(shape, dtype), be.empty(shape, dtype)
    checked = be.dev.cl.array.empty(be.dev.queue, shape, np.dtype(dtype))
    for x in (first, again):
        assert (x.shape, x.dtype, x.strides, x.size, x.nbytes, x.offset) == \
            (checked.shape, checked.dtype, checked.strides, checked.size, checked.nbytes, 0)
        assert x.flags.c_contiguous and x.queue is be.dev.queue and x.events == []
    if checked.size:
        assert first.data.int_ptr != again.data.int_ptr
        host = np.arange(checked.size, dtype=dtype).reshape(shape)
        again.set(host)
        first.fill(dtype(-1))
        assert np.array_equal(again.get(), host)
        if dtype is np.float32:  # a kernel reads it
            assert np.array_equal(be.to_numpy(be.add(again, again)), host + host)


@pytest.mark.parametrize("old,new", [((2, 3, 4), (6, 4)), ((1, 6, 1, 4), (24, 1)),
                                     ((6, 4), (6, 4)), ((5,), (1, 5, 1))])
def test_reshape_settled_view(be, old, new):
    """A reshape seen before (the settled path) gives pyopencl's view: same buffer, shape,
    strides, flags and events list; the values read through it are the input's."""
    host = np.arange(np.prod(old), dtype=np.float32).reshape(old)
    x = be.asarray(host)
    want = x.reshape(new)
    for _ in range(2):
        got = be.reshape(x, new)
        assert (got.shape, got.strides, got.dtype, got.offset) == \
            (want.shape, want.strides, want.dtype, 0)
        assert got.base_data is x.base_data and got.events is x.events
        assert got.flags.c_contiguous == want.flags.c_contiguous
        assert np.array_equal(be.to_numpy(got), host.reshape(new))


@pytest.mark.parametrize("n", [8, 13, 4096 + 5])
def test_gelu_erfc_fit_matches_the_reference(n):
    """unary.cl's float8 GELU (an erfc fit, scripts/gelu_erfc_fit.py) over [-10, 10] and
    the tail lanes: within ONNX's node-test tolerance everywhere (a negative input's GELU
    is all erfc: relative accuracy matters there), +inf stays +inf."""
    from scipy.special import erf

    be = get_backend("opencl", check_finite=False)
    x = np.linspace(-10.0, 10.0, n).astype(np.float32)
    out = be.to_numpy(be.unary(be.asarray(x), "gelu")).astype(np.float64)
    x64 = x.astype(np.float64)
    ref = 0.5 * x64 * (1.0 + erf(x64 / np.sqrt(2.0)))
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-7)
    assert_close(out, ref)
    special = np.array([np.inf, 1e30, -1e30, 0.0, 3.0, -3.0, -5.0, 5.0], np.float32)
    got = be.to_numpy(be.unary(be.asarray(special), "gelu"))
    assert got[0] == np.inf and got[1] == np.float32(1e30) and got[2] == 0.0 and got[3] == 0.0


@pytest.mark.parametrize("length", [1, 7, 8, 13, 197])
def test_softmax_rows_match_the_reference(length):
    """softmax_rows.cl (last axis, a row per work-item, float8 passes and the tail):
    against float64, a causal mask's -inf entries give 0, a row of only -inf gives NaN and
    a NaN spreads through its row only (normalization.cl's results there)."""
    be = get_backend("opencl", check_finite=False)
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((3, 5, length)) * 4).astype(np.float32)
    x[0, 1, length // 2:] = -np.inf
    x[1, 2, :] = -np.inf
    x[2, 3, 0] = np.nan
    out = be.to_numpy(be.softmax(be.asarray(x), -1))
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all -inf row's max
        e = np.exp(x64 - np.nanmax(x64, axis=-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
    assert np.isnan(out[1, 2]).all() and np.isnan(out[2, 3]).all()
    keep = ~np.isnan(ref)
    np.testing.assert_allclose(out[keep], ref[keep], rtol=1e-5, atol=1e-7)
    if length // 2:
        assert (out[0, 1, length // 2:] == 0.0).all()


@pytest.mark.parametrize("shape", [(2, 5, 3, 3), (2, 5, 14, 14), (2, 3, 25, 23), (3, 4, 1, 700)])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_of_whole_trailing_planes_matches_numpy(be, shape, axis):
    """Trailing axes taken whole merge into one row (``tensor_ops.collapsed``): rows of 9
    (``take``), 196 (``take_rows``), 575 and 700 (``take_rows8``, a ragged last eight)."""
    rng = np.random.default_rng(axis)
    x = _rand(rng, shape)
    idx = np.array([shape[axis] - 1, 0, *range(shape[axis])], np.int64)
    out = be.to_numpy(be.gather(be.asarray(x), idx, axis))
    np.testing.assert_array_equal(out, np.take(x, idx, axis))


def test_slice_of_whole_trailing_planes_matches_numpy(be):
    """A run of channels with the planes after them whole: one contiguous row per image."""
    x = _rand(np.random.default_rng(3), (2, 6, 20, 30))
    out = be.to_numpy(be.slice(be.asarray(x), [1, 0], [4, 30], [1, 3]))
    np.testing.assert_array_equal(out, x[:, 1:4, :, :])


def test_whole_trailing_axes_collapse_into_one_row():
    from hwbench.backends.opencl.tensor_ops import collapsed, row_runs
    from hwbench.kernels.spec import TakeProblem
    idx = np.array([2, 0, 1])
    p = TakeProblem("gather", (8, 3, 14, 14), (8, 3, 14, 14), (8, 3, 14, 14),
                    (np.arange(8), idx, np.arange(14), np.arange(14)), axis=1)
    shape, tables, strides = collapsed(p)
    assert shape == (8, 3, 196) and strides == [588, 196, 1] and row_runs(tables)
    np.testing.assert_array_equal(tables[-1], np.arange(196))
    part = TakeProblem("slice", (8, 3, 14, 14), (8, 3, 14, 10), (8, 3, 14, 10),
                       (np.arange(8), np.arange(3), np.arange(14), np.arange(2, 12)))
    assert collapsed(part)[0] == (8, 3, 14, 10)  # the last axis not whole: kept
