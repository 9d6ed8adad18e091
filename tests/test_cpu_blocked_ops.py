"""The cpu backend's blocked layout beyond plain convolutions (``keep_blocked=True``, as
Sessions run): depthwise convs and channel counts that are no multiple of 16 stay
blocked, and Mul/Add of blocked activations (an SE gate, a residual) stay blocked."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.cpu import BlockedArray
from hwbench.kernels import reference


@pytest.fixture
def be():
    return get_backend("cpu", keep_blocked=True)


@pytest.mark.parametrize("c", [32, 24], ids=["whole-blocks", "padded"])
def test_pointwise_depthwise_pointwise_stays_blocked(be, rng, c):
    """An inverted residual (1x1 expand, 3x3 depthwise, 1x1 project + shortcut): every
    output blocked, even with channels padded to a block, and each matches float64."""
    x = rng.standard_normal((2, c, 10, 10)).astype(np.float32)
    e = 3 * c
    w1 = (rng.standard_normal((e, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    w2 = (rng.standard_normal((e, 1, 3, 3)) / 3).astype(np.float32)
    w3 = (rng.standard_normal((c, e, 1, 1)) / np.sqrt(e)).astype(np.float32)
    b2 = rng.standard_normal(e).astype(np.float32)
    x0 = be.conv2d(be.asarray(x), be.asarray(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)))
    y1 = be.conv2d(x0, be.asarray(w1), activation="relu6")
    y2 = be.conv2d(y1, be.asarray(w2), be.asarray(b2), padding=1, groups=e,
                   activation="hardswish")
    y3 = be.conv2d(y2, be.asarray(w3), residual=x0)
    for y in (x0, y1, y2, y3):
        assert isinstance(y, BlockedArray)
    r1 = reference.conv2d(x, w1, activation="relu6")
    r2 = reference.conv2d(r1, w2, b2, padding=1, groups=e, activation="hardswish")
    r3 = reference.conv2d(r2, w3, residual=x)
    assert_close(be.to_numpy(y1), r1, c)
    assert_close(be.to_numpy(y2), r2, 9 * c)
    assert_close(be.to_numpy(y3), r3, 9 * e)


@pytest.mark.parametrize("c", [32, 40], ids=["whole-blocks", "padded"])
@pytest.mark.parametrize("gate_kind", ["blocked", "plain", "per-channel"])
def test_squeeze_excitation_mul_stays_blocked(be, rng, c, gate_kind):
    x = rng.standard_normal((2, c, 6, 6)).astype(np.float32)
    eye = be.asarray(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1))
    xb = be.conv2d(be.asarray(x), eye)
    gate = rng.random((2 if gate_kind != "per-channel" else 1, c, 1, 1)).astype(np.float32)
    if gate_kind == "blocked":  # as the SE block's conv -> sigmoid makes it
        g = be.conv2d(be.asarray(gate), eye)
        assert isinstance(g, BlockedArray)
    else:
        g = be.asarray(gate)
    for out in (be.mul(xb, g), be.mul(g, xb)):
        assert isinstance(out, BlockedArray)
        np.testing.assert_allclose(be.to_numpy(out), x * gate, rtol=1e-6, atol=1e-6)
    # then a conv reads it as it is
    w = (rng.standard_normal((c, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    assert_close(be.to_numpy(be.conv2d(be.mul(xb, g), be.asarray(w))),
                 reference.conv2d(x * gate, w), c)


def test_add_of_two_blocked_stays_blocked_and_other_shapes_go_plain(be, rng):
    a, b = (rng.standard_normal((1, 40, 5, 5)).astype(np.float32) for _ in range(2))
    eye = be.asarray(np.eye(40, dtype=np.float32).reshape(40, 40, 1, 1))
    ab, bb = be.conv2d(be.asarray(a), eye), be.conv2d(be.asarray(b), eye)
    out = be.add(ab, bb)
    assert isinstance(out, BlockedArray)
    np.testing.assert_allclose(be.to_numpy(out), a + b, rtol=1e-6, atol=1e-6)
    row = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)  # broadcast over channels
    plain = be.mul(ab, be.asarray(row))
    assert isinstance(plain, np.ndarray)
    np.testing.assert_allclose(plain, a * row, rtol=1e-6, atol=1e-6)


def test_direct_calls_get_plain_arrays(rng):
    be = get_backend("cpu")
    x = rng.standard_normal((1, 32, 6, 6)).astype(np.float32)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    out = be.conv2d(be.asarray(x), be.asarray(w), padding=1, groups=32)
    assert isinstance(out, np.ndarray)
    assert_close(out, reference.conv2d(x, w, padding=1, groups=32), 9)


def test_conv_reads_a_blocked_input_of_another_layout(be, rng):
    """ShuffleNet's grouped 1x1 conv (34 channels per group: oneDNN picks the layout) keeps
    its output in that layout; the depthwise conv after it reorders it once, directly."""
    x = rng.standard_normal((2, 136, 7, 7)).astype(np.float32)
    w1 = (rng.standard_normal((136, 34, 1, 1)) / 6).astype(np.float32)
    w2 = (rng.standard_normal((136, 1, 3, 3)) / 3).astype(np.float32)
    y1 = be.conv2d(be.asarray(x), be.asarray(w1), groups=4, activation="relu")
    y2 = be.conv2d(y1, be.asarray(w2), padding=1, groups=136)
    y3 = be.conv2d(y1, be.asarray(w2), padding=1, groups=136)  # the cached reorder again
    r1 = reference.conv2d(x, w1, groups=4, activation="relu")
    r2 = reference.conv2d(r1, w2, padding=1, groups=136)
    assert_close(be.to_numpy(y1), r1, 34)
    assert_close(be.to_numpy(y2), r2, 9 * 34)
    np.testing.assert_array_equal(be.to_numpy(y2), be.to_numpy(y3))


def test_one_pixel_activation_times_a_plain_operand_of_its_shape(be, rng):
    """At H = W = 1 a plain operand of the full shape is a gate too (ConvNeXt's head)."""
    x = rng.standard_normal((2, 40, 1, 1)).astype(np.float32)
    y = rng.standard_normal((2, 40, 1, 1)).astype(np.float32)
    xb = be.conv2d(be.asarray(x), be.asarray(np.eye(40, dtype=np.float32).reshape(40, 40, 1, 1)))
    for out in (be.mul(xb, be.asarray(y)), be.add(be.asarray(y), xb)):
        assert isinstance(out, BlockedArray)
    np.testing.assert_allclose(be.to_numpy(be.mul(xb, be.asarray(y))), x * y, rtol=1e-6)
    np.testing.assert_allclose(be.to_numpy(be.add(xb, be.asarray(y))), x + y, rtol=1e-6)


@pytest.mark.parametrize("layout", ["blocked", "nchw"])
@pytest.mark.parametrize("blocked_input", [False, True], ids=["plain-in", "blocked-in"])
def test_small_groups_pointwise_runs_nhwc_or_as_one_gemm_per_group(rng, blocked_input,
                                                                   layout):
    """ShuffleNet's first grouped 1x1 conv (6 channels in and 28 out per group, fewer
    than one nChw16c block): in a session's layout the primitive NHWC in and out
    (``layouts.nhwc_small_groups``), a blocked input reordered to NHWC once; with NCHW
    convs the GEMM path, plain out. Either way its residual and activation epilogue
    match float64; 16 per group stays a blocked primitive."""
    from hwbench.backends.cpu.layouts import nhwc_small_groups
    from hwbench.backends.cpu.pointwise import runs_as_gemm
    from hwbench.kernels import spec

    be = get_backend("cpu", keep_blocked=True, conv_layout=layout)
    x = rng.standard_normal((2, 24, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((112, 6, 1, 1)) / 3).astype(np.float32)
    bias = rng.standard_normal(112).astype(np.float32)
    res = rng.standard_normal((2, 112, 12, 12)).astype(np.float32)
    xd = be.asarray(x)
    if blocked_input:
        xd = be.conv2d(xd, be.asarray(np.eye(24, dtype=np.float32).reshape(24, 24, 1, 1)))
        assert isinstance(xd, BlockedArray) == (layout == "blocked")
    small = spec.ConvProblem(2, 24, 12, 12, 112, 1, 1, groups=4)
    assert nhwc_small_groups(small)
    assert runs_as_gemm(be, small, blocked_input) == (layout == "nchw")
    whole_blocks = spec.ConvProblem(2, 64, 12, 12, 64, 1, 1, groups=4)
    assert not runs_as_gemm(be, whole_blocks, blocked_input)
    assert not nhwc_small_groups(whole_blocks)
    y = be.conv2d(xd, be.asarray(w), be.asarray(bias), groups=4, residual=be.asarray(res),
                  activation="relu")
    if layout == "nchw":
        assert isinstance(y, np.ndarray)
    else:
        assert isinstance(y, BlockedArray)
        assert y.md == be.dnnl.memory_desc((2, 112, 12, 12), "f32", tag="acdb")
    want = reference.conv2d(x, w, bias, groups=4, residual=res, activation="relu")
    assert_close(be.to_numpy(y), want, 6)


@pytest.mark.parametrize("c", [32, 24], ids=["whole-blocks", "padded"])
def test_lrn_of_a_blocked_activation_stays_blocked(be, rng, c):
    """Inception v1's conv -> LRN -> max pool: the LRN reads and writes nChw16c (its
    window over the logical channels only, padding or not) and matches float64."""
    x = rng.standard_normal((2, c, 9, 9)).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    y = be.conv2d(be.asarray(x), be.asarray(w), padding=1, activation="relu")
    z = be.lrn(y, 5, alpha=1e-2, beta=0.75, bias=1.0)
    assert isinstance(y, BlockedArray) and isinstance(z, BlockedArray)
    want = reference.lrn(reference.conv2d(x, w, padding=1, activation="relu"), 5, alpha=1e-2,
                         beta=0.75, bias=1.0)
    assert_close(be.to_numpy(z), want, 9 * c)
    assert_close(be.to_numpy(be.max_pool2d(z, 3, 2)), reference.max_pool2d(want, 3, 2), 9 * c)
