"""The kernel layer itself: references, quantization math, im2col and argument contracts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwbench.errors import ArgumentError
from hwbench.kernels import quantization as q
from hwbench.kernels import reference, spec
from hwbench.kernels.im2col import col2output, im2col

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def onnx_conv(x, w, strides, pads, dilations, group):
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=list(strides), pads=list(pads),
                            dilations=list(dilations), group=group)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, None),
                      helper.make_tensor_value_info("w", TensorProto.DOUBLE, None)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ReferenceEvaluator(model).run(None, {"x": x, "w": w})[0]


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(c=st.integers(1, 3), groups=st.integers(1, 2), h=st.integers(3, 8), w=st.integers(3, 8),
       r=st.integers(1, 3), stride=st.integers(1, 2), dil=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 2)] * 4))
def test_reference_conv_agrees_with_onnx_reference_evaluator(c, groups, h, w, r, stride, dil,
                                                             pads):
    rng = np.random.default_rng(h * 31 + w)
    x = rng.standard_normal((2, c * groups, h, w))
    wt = rng.standard_normal((2 * groups, c, r, r))
    ours = reference.conv2d(x, wt, None, stride, pads, dil, groups)
    theirs = onnx_conv(x, wt, (stride, stride), pads, (dil, dil), groups)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_im2col_lowering_equals_reference_conv():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6))
    wt = rng.standard_normal((6, 2, 3, 2))
    p = spec.check_conv2d(x.astype(np.float32), wt.astype(np.float32), None, (2, 1),
                          (1, 0, 2, 1), (1, 2), 2)
    cols = im2col(x, p)
    assert cols.shape == (2, 2 * 3 * 2, 2 * p.out_h * p.out_w)
    y = col2output(np.matmul(wt.reshape(2, 3, -1), cols), p)
    np.testing.assert_allclose(y, reference.conv2d(x, wt, None, (2, 1), (1, 0, 2, 1), (1, 2), 2),
                               rtol=1e-12)


def test_reference_gemm_int8_equals_int64_matmul():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (13, 300)).astype(np.uint8)
    b = rng.integers(-128, 128, (300, 9)).astype(np.int8)
    exact = (a.astype(np.int64) - 7) @ (b.astype(np.int64) + 3)
    np.testing.assert_array_equal(reference.gemm_int8(a, b, 7, -3), exact)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(scale=st.floats(2.0**-30, 2.0**20, width=32))
def test_quantize_multiplier_represents_float32_scales_exactly(scale):
    fixed = q.quantize_multiplier(np.float32(scale))
    assert 2**30 <= int(fixed.multiplier) < 2**31
    exact = Fraction(int(fixed.multiplier), 2 ** int(fixed.right_shift))
    assert exact == Fraction(float(np.float32(scale)))


def _exact_requantize(acc: int, scale: np.float32, zp: int, dtype) -> int:
    value = Fraction(acc) * Fraction(float(scale))
    floor = value.numerator // value.denominator
    rem = value - floor
    rounded = floor + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and floor % 2) else 0)
    info = np.iinfo(dtype)
    return int(min(max(rounded + zp, info.min), info.max))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(acc=st.integers(-(2**31), 2**31 - 1), scale=st.floats(2.0**-27, 2.0, width=32),
       zp=st.integers(-128, 127))
def test_requantize_is_exact_round_half_even_and_saturating(acc, scale, zp):
    fixed = q.quantize_multiplier(np.float32(scale))
    want = _exact_requantize(acc, np.float32(scale), zp, np.int8)
    got = q.requantize(np.array([acc], np.int32), fixed, zp, np.int8)
    assert int(got[0]) == want
    integer = q._requantize_integer(np.array([acc], np.int32), fixed, zp, np.dtype(np.int8))
    assert int(integer[0]) == want


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(shift_scale=st.integers(-30, 1), mantissa=st.integers(2**23, 2**24 - 1),
       acc=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=50),
       zp=st.integers(0, 255))
def test_requantize_equals_the_integer_path_at_every_shift(shift_scale, mantissa, acc, zp):
    """The float64 path (with its near-tie fix-up past FLOAT64_EXACT_MAX_SHIFT) rounds
    exactly like gemmlowp's all-integer form, ties and near-ties included."""
    scale = np.float32(mantissa * 2.0 ** (shift_scale - 24))
    fixed = q.quantize_multiplier(scale)
    # Add exact ties and near-ties: acc values whose product lands on k + 1/2.
    values = np.array(acc, np.int64)
    unit = int(fixed.right_shift)
    tie = (1 << (unit - 1)) // int(fixed.multiplier) if unit <= 62 else 0
    extra = np.array([tie, tie + 1, -tie, 2 * tie + 1, 3], np.int64)
    values = np.clip(np.concatenate([values, extra]), -(2**31), 2**31 - 1).astype(np.int32)
    for dtype in (np.uint8, np.int8):
        z = zp if dtype == np.uint8 else zp - 128
        np.testing.assert_array_equal(q.requantize(values, fixed, z, np.dtype(dtype)),
                                      q._requantize_integer(values, fixed, z, np.dtype(dtype)))


@pytest.mark.parametrize("shape,axis", [((300, 700), 1), ((700, 300), 0), ((3, 40, 50, 60), 1),
                                        ((3, 40, 50, 60), None), ((5, 7), 1)])
def test_chunked_requantize_with_bias_equals_the_integer_path(shape, axis):
    """Many chunks, per-row and per-column scales and biases, shifts past 44."""
    rng = np.random.default_rng(7)
    acc = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    n = 1 if axis is None else shape[axis]
    fixed = q.quantize_multiplier(rng.uniform(2.0**-40, 2.0**-20, n).astype(np.float32))
    bias = rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32)
    if axis is None:
        fixed, bias = q.quantize_multiplier(np.float32(3e-9)), None
    else:
        fixed, bias = fixed.along(axis, len(shape)), q.along_axis(bias, axis, len(shape))
    assert int(np.max(fixed.right_shift)) > q.FLOAT64_EXACT_MAX_SHIFT
    summed = acc if bias is None else np.clip(acc.astype(np.int64) + bias, -(2**31),
                                              2**31 - 1)
    np.testing.assert_array_equal(q.requantize(acc, fixed, 5, np.uint8, bias),
                                  q._requantize_integer(summed, fixed, 5, np.dtype(np.uint8)))


def test_requantize_ties_go_to_even():
    fixed = q.quantize_multiplier(np.float32(0.5))
    acc = np.array([1, 3, 5, -1, -3, 7], np.int32)  # x/2 = 0.5, 1.5, 2.5, -0.5, -1.5, 3.5
    np.testing.assert_array_equal(q.requantize(acc, fixed, 0, np.int8), [0, 2, 2, 0, -2, 4])


def test_requantize_per_column_scales():
    fixed = q.quantize_multiplier(np.array([0.5, 0.25], np.float32))
    acc = np.array([[10, 10], [-6, 6]], np.int32)
    # 2.5 -> 2 and 1.5 -> 2 (ties to even), -3 + 1 saturates to 0
    np.testing.assert_array_equal(q.requantize(acc, fixed, 1, np.uint8), [[6, 3], [0, 3]])


def test_quantize_and_dequantize_follow_onnx():
    x = np.array([-1.0, 0.0, 0.25, 0.75, 2.5, 1000.0], np.float32)
    qx = q.quantize(x, np.float32(0.5), np.uint8(10), np.uint8)
    np.testing.assert_array_equal(qx, [8, 10, 10, 12, 15, 255])
    np.testing.assert_array_equal(q.dequantize(qx, np.float32(0.5), np.uint8(10)),
                                  [-1.0, 0.0, 0.0, 1.0, 2.5, 122.5])


def test_bad_scales_are_refused():
    for bad in (0.0, -1.0, np.nan, np.inf, 2.0**31):
        with pytest.raises(ArgumentError):
            q.quantize_multiplier(bad)


def test_int32_accumulation_bound():
    # |a - za| <= 255 and |b - zb| <= 255: K * 65025 must stay <= 2**31 - 1.
    assert q.int32_accumulation_is_safe(33025, np.uint8, 0, np.int8, -128)
    assert not q.int32_accumulation_is_safe(33026, np.uint8, 0, np.int8, -128)
    # zb = 0 for int8: |b| <= 128, so K may reach floor((2**31 - 1) / (255 * 128)) = 65793.
    assert q.int32_accumulation_is_safe(65793, np.uint8, 0, np.int8, 0)
    assert not q.int32_accumulation_is_safe(65794, np.uint8, 0, np.int8, 0)


def test_zero_point_correction_matches_direct_product():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (5, 8)).astype(np.uint8)
    b = rng.integers(-128, 128, (8, 3)).astype(np.int8)
    za = rng.integers(0, 256, 5).astype(np.uint8)
    raw = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    got = q.zero_point_correction(raw, a, b, za, np.int8(-4))
    np.testing.assert_array_equal(got, (a.astype(np.int64) - za[:, None]) @ (b + 4))


@pytest.mark.parametrize("auto_pad,expected", [("SAME_UPPER", (0, 0, 1, 1)),
                                                ("SAME_LOWER", (1, 1, 0, 0)),
                                                ("VALID", (0, 0, 0, 0))])
def test_onnx_auto_pad(auto_pad, expected):
    assert spec.onnx_conv_padding(auto_pad, None, (6, 6), (3, 3), (2, 2), (1, 1)) == expected


def test_problem_flop_counts():
    a = np.zeros((3, 4), np.float32)
    b = np.zeros((4, 5), np.float32)
    assert spec.check_gemm(a, b).flops == 2 * 3 * 4 * 5
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    p = spec.check_conv2d(x, w, None, 1, 1, 1, 2)
    assert p.output_shape == (2, 6, 8, 8)
    assert p.flops == 2 * 2 * 6 * 8 * 8 * 2 * 3 * 3


def test_reference_backend_serves_every_int8_conv_op():
    """ReferenceBackend exposes each op kernels/reference.py implements: the int8 convs
    raised UnsupportedError there once."""
    from hwbench.backends.reference import ReferenceBackend

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 3, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    be = ReferenceBackend()
    np.testing.assert_array_equal(be.conv2d_int8(x, w, 7, 0, padding=1),
                                  reference.conv2d_int8(x, w, 7, 0, padding=1))
    args = (x, np.float32(0.02), np.uint8(7), w, np.float32(0.01), np.int8(0),
            np.float32(0.05), np.uint8(128))
    np.testing.assert_array_equal(be.qconv2d(*args, padding=1),
                                  reference.qconv2d(*args, padding=1))
