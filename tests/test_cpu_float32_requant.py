"""The cpu backend's opt-in float32 requantization (``requantization="float32"``, spelled
``cpu:float32-requant``): int8 convolutions and GEMMs fused in oneDNN's primitives.

Its contract: every 8-bit result is the exact one (the shared fixed-point requantization)
or 1 LSB away, the default stays exact, and every result records which mode ran.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qconv_draws import draw_qconv

import hwbench
from hwbench.backends import expand_backends, get_backend
from hwbench.backends.cpu import ChannelsLastArray, CpuBackend
from hwbench.errors import ArgumentError
from hwbench.kernels import reference

pytestmark = pytest.mark.skipif(not CpuBackend.available()[0],
                                reason=f"cpu backend unavailable: {CpuBackend.available()[1]}")


@pytest.fixture(scope="module")
def digits_test():
    return hwbench.datasets.digits("test")


@pytest.fixture(scope="module")
def exact():
    return get_backend("cpu")


@pytest.fixture(scope="module")
def fast():
    return get_backend("cpu", requantization="float32")


def _within_one_lsb(got: np.ndarray, want: np.ndarray) -> int:
    """Asserts same shape and dtype and |got - want| <= 1; returns how many differ."""
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"{int(diff.max())} LSB off at {np.argmax(diff)}"
    return int(np.count_nonzero(diff))


def _fused_primitives(be, kind: str) -> int:
    """How many fused oneDNN primitives of ``kind`` the backend built (None: fell back)."""
    return sum(1 for key, prim in be._primitives.items() if key[0] == kind and prim is not None)


def _unsaturated_y_scale(x_scale, w_scale, reduction: int) -> np.float32:
    """A y_scale that puts typical outputs ~30 LSB from the zero point (not saturated)."""
    typical = np.sqrt(reduction) * 80.0 * 70.0 * float(x_scale) * float(np.mean(w_scale))
    return np.float32(typical / 30.0)


def _random_qconv(rng, xs, ws, stride, padding, dilation, groups, x_dtype, y_dtype,
                  per_filter=True, with_bias=True):
    xi = np.iinfo(x_dtype)
    x = rng.integers(xi.min, xi.max + 1, xs).astype(x_dtype)
    w = rng.integers(-127, 128, ws).astype(np.int8)
    zx = x_dtype(rng.integers(xi.min, xi.max + 1))
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    w_scale = np.asarray(rng.uniform(0.001, 0.05, ws[0] if per_filter else None), np.float32)
    reduction = ws[1] * ws[2] * ws[3]
    y_scale = _unsaturated_y_scale(x_scale, w_scale, reduction)
    yi = np.iinfo(y_dtype)
    zy = y_dtype(rng.integers(yi.min // 2 + 64, yi.max // 2 + 64))
    bias = rng.integers(-20_000, 20_000, ws[0]).astype(np.int32) if with_bias else None
    args = (x, x_scale, zx, w, w_scale, np.int8(0), y_scale, zy, bias)
    conv = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return args, conv


def _qconv(be, args, conv):
    x, sx, zx, w, sw, zw, sy, zy, bias = args
    return be.to_numpy(be.qconv2d(be.asarray(x), sx, zx, be.asarray(w), sw, zw, sy, zy,
                                  None if bias is None else be.asarray(bias), **conv))


# -- the kernels: within 1 LSB of exact ----------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_float32_requant_qconv_is_within_one_lsb_of_exact(exact, fast, data):
    """Random convolutions: strides, asymmetric padding, dilation, groups (depthwise too),
    int8/uint8 input and output with random zero points, per-filter or one w scale."""
    g = draw_qconv(data, max_c_per_group=5, max_hw=9)
    args, conv = _random_qconv(
        g["rng"], g["x_shape"], g["w_shape"], g["stride"], g["padding"], g["dilation"],
        g["groups"], g["x_dtype"], g["y_dtype"],
        per_filter=data.draw(st.booleans(), label="per filter"),
        with_bias=data.draw(st.booleans(), label="bias"))
    want = _qconv(exact, args, conv)
    np.testing.assert_array_equal(want, reference.qconv2d(*args[:8], args[8], **conv))
    _within_one_lsb(_qconv(fast, args, conv), want)


def test_float32_requant_qconv_runs_fused_and_rarely_differs(exact, fast):
    """A ResNet-sized layer: oneDNN's int8 convolution ran (no fallback), and the float32
    requantization differs from exact only near ties, a tiny fraction of values."""
    rng = np.random.default_rng(7)
    args, conv = _random_qconv(rng, (2, 64, 28, 28), (64, 64, 3, 3), 1, 1, 1, 1, np.uint8,
                               np.uint8)
    before = _fused_primitives(fast, "qconv")
    got = _qconv(fast, args, conv)
    assert _fused_primitives(fast, "qconv") == before + 1
    want = _qconv(exact, args, conv)
    saturated = np.mean((want == 0) | (want == 255))
    assert saturated < 0.2, "the test's scales should leave most outputs unsaturated"
    assert _within_one_lsb(got, want) <= want.size // 1000


def test_float32_requant_handles_exact_ties(exact, fast, rng):
    """Power-of-two scales make many accumulators land exactly on k + 1/2: exact rounds
    them to even; the fused kernel may not, but stays within 1 LSB."""
    x = rng.integers(0, 256, (1, 8, 6, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, (4, 8, 3, 3)).astype(np.int8)
    args = (x, np.float32(0.5), np.uint8(3), w, np.float32(2.0**-6), np.int8(0),
            np.float32(1.0), np.uint8(127), None)  # odd: rint(v + zp) != rint(v) + zp
    _within_one_lsb(_qconv(fast, args, {"padding": 1}), _qconv(exact, args, {"padding": 1}))


def test_float32_requant_falls_back_to_exact_where_onednn_cannot(exact, fast, rng):
    """A per-filter w zero point (not the symmetric one): oneDNN's primitive cannot take
    it, so the exact path runs and the result is the exact one."""
    x = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 4, 3, 3)).astype(np.int8)
    zw = np.array([0, 2, -1], np.int8)
    args = (x, np.float32(0.02), np.uint8(9), w, np.float32(0.01), zw, np.float32(0.05),
            np.uint8(100))
    got = fast.to_numpy(fast.qconv2d(fast.asarray(x), *args[1:3], fast.asarray(w), *args[4:]))
    want = exact.to_numpy(exact.qconv2d(exact.asarray(x), *args[1:3], exact.asarray(w),
                                        *args[4:]))
    np.testing.assert_array_equal(got, want)


def test_float32_requant_reads_uint8_weights_with_zero_point_128(exact, fast, rng):
    x = rng.integers(0, 256, (1, 4, 6, 6)).astype(np.uint8)
    w = rng.integers(0, 256, (5, 4, 3, 3)).astype(np.uint8)
    args = (np.float32(0.02), np.uint8(7), None, np.float32(0.01), np.uint8(128),
            np.float32(0.6), np.uint8(120))
    got, want = (be.to_numpy(be.qconv2d(be.asarray(x), args[0], args[1], be.asarray(w),
                                        *args[3:], padding=1)) for be in (fast, exact))
    _within_one_lsb(got, want)


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("b_dtype,zb", [(np.int8, 0), (np.uint8, 128)])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("m,k,n", [(1, 7, 5), (64, 300, 32), (33, 1000, 130)])
def test_float32_requant_qgemm_is_within_one_lsb_of_exact(exact, fast, rng, m, k, n,
                                                          a_dtype, b_dtype, zb, per_column):
    ai, bi = np.iinfo(a_dtype), np.iinfo(b_dtype)
    a = rng.integers(ai.min, ai.max + 1, (m, k)).astype(a_dtype)
    b = rng.integers(bi.min, bi.max + 1, (k, n)).astype(b_dtype)
    za = a_dtype(rng.integers(ai.min, ai.max + 1))
    a_scale = np.float32(0.02)
    b_scale = np.asarray(rng.uniform(0.002, 0.01, n if per_column else None), np.float32)
    y_scale = _unsaturated_y_scale(a_scale, b_scale, k)
    args = (a_scale, za, b_scale, b_dtype(zb), y_scale, np.uint8(128))
    before = _fused_primitives(fast, "qmatmul")
    got, want = (be.to_numpy(be.qgemm(be.asarray(a), args[0], args[1], be.asarray(b),
                                      *args[2:])) for be in (fast, exact))
    assert _fused_primitives(fast, "qmatmul") == before + 1
    _within_one_lsb(got, want)


def test_float32_requant_onnx_node_tests_pass_within_one_lsb(fast, onnx_node_cases):
    """The onnx wheel's QLinearConv and QLinearMatMul node tests (which the exact mode
    passes bit for bit) pass within 1 LSB."""
    from test_onnx_node import NODE_TESTS, run_node

    for name in NODE_TESTS["QLinearConv"] + NODE_TESTS["QLinearMatMul"]:
        case = onnx_node_cases[name]
        for inputs, expected in case.data_sets:
            _within_one_lsb(run_node(fast, case.model.graph.node[0], list(inputs)),
                            expected[0])


# -- the glue between int8 convolutions stays channels-last, values unchanged -------------
def test_channels_last_activations_keep_their_values_through_the_float_ops(rng):
    """Dequantize, add, relu, max pool and quantize on ChannelsLastArray (what a session
    runs between int8 convolutions) give exactly what they give on NCHW arrays."""
    plain = get_backend("cpu")
    blocked = get_backend("cpu", keep_blocked=True)
    x = rng.integers(0, 256, (2, 5, 7, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, (16, 5, 3, 3)).astype(np.int8)
    outputs = []
    for be in (plain, blocked):
        y = be.qconv2d(be.asarray(x), np.float32(0.02), np.uint8(9), be.asarray(w),
                       np.float32(0.01), np.int8(0), np.float32(0.05), np.uint8(100),
                       padding=1)
        assert isinstance(y, ChannelsLastArray) == (be is blocked)
        f = be.dequantize_linear(y, np.float32(0.05), np.uint8(100))
        g = be.relu(be.add(f, be.dequantize_linear(y, np.float32(0.04), np.uint8(90))))
        p = be.max_pool2d(g, 3, 2, 1)
        q = be.quantize_linear(p, np.float32(0.03), np.uint8(0))
        a = be.quantize_linear(g, np.full(16, 0.03, np.float32), np.zeros(16, np.uint8), 1)
        outputs.append([be.to_numpy(v) for v in (f, g, p, q, a)])
    for got, want in zip(*outputs[::-1], strict=True):
        np.testing.assert_array_equal(got, want)


# -- whole models --------------------------------------------------------------------------
def test_float32_requant_int8_lenet_keeps_its_accuracy(digits_test):
    x, y = digits_test
    model = hwbench.load_model("lenet", batch=len(x))
    top1 = {}
    for mode in ("exact", "float32"):
        sess = hwbench.Session(model, backend="cpu", precision="int8", requantization=mode)
        top1[mode] = float(np.mean(sess.run({model.inputs[0]: x})[0].argmax(1) == y))
    assert top1["float32"] >= 0.97
    assert abs(top1["float32"] - top1["exact"]) <= 1 / len(x) + 1e-9, top1


# -- naming the mode ------------------------------------------------------------------------
def test_exact_requantization_is_the_default_and_every_mode_is_recorded(exact, fast):
    assert exact.info()["requantization"] == "exact"
    assert exact.info()["math_mode"] == "fp32"
    assert fast.info()["requantization"] == "float32"
    assert "float32-requant" in fast.info()["math_mode"]
    assert fast.full_name == "cpu:float32-requant"
    spelled = get_backend("cpu:float32-requant")
    assert spelled.requantization == "float32" and spelled.full_name == fast.full_name
    assert get_backend("cpu:mkl+float32-requant").info()["flavour"] == "mkl"


def test_the_mode_is_a_math_mode_not_a_device():
    """The name's device part is split: the flavour is the device, float32-requant the
    requantization; the full name spells both as users write them."""
    onednn_fast = get_backend("cpu:onednn+float32-requant")
    assert (onednn_fast.device, onednn_fast.flavour) == (None, "onednn")
    assert onednn_fast.full_name == "cpu:float32-requant"
    mkl_fast = get_backend("cpu:mkl+float32-requant")
    assert (mkl_fast.device, mkl_fast.requantization) == ("mkl", "float32")
    assert mkl_fast.full_name == "cpu:mkl+float32-requant"
    assert get_backend("cpu:mkl", requantization="float32").full_name == mkl_fast.full_name
    assert get_backend("cpu:mkl").full_name == "cpu:mkl"


def test_backend_all_does_not_add_the_float32_requant_mode():
    assert not any("float32-requant" in name for name in expand_backends("all"))


@pytest.mark.parametrize("kwargs,match", [
    ({"requantization": "fast"}, "argument 'requantization' must be one of"),
    ({"requantization": 32}, "argument 'requantization' must be one of"),
])
def test_bad_requantization_is_refused_naming_it(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        get_backend("cpu", **kwargs)


@pytest.mark.parametrize("name", ["cpu:float32", "cpu:mkl+fast", "cpu:float32-requant+mkl"])
def test_bad_cpu_spelling_is_refused_naming_the_backend(name):
    with pytest.raises(ArgumentError, match="argument 'backend'"):
        get_backend(name)


def test_contradicting_requantization_is_refused():
    with pytest.raises(ArgumentError, match="argument 'requantization'"):
        get_backend("cpu:float32-requant", requantization="exact")


def test_float32_requant_quantize_and_dequantize_stay_within_one_lsb(rng):
    """Between int8 convolutions the fast mode (de)quantizes with oneDNN reorders: the
    float32 values match exactly, and quantized codes are within 1 LSB."""
    exact_be = get_backend("cpu", keep_blocked=True)
    fast_be = get_backend("cpu", keep_blocked=True, requantization="float32")
    q = ChannelsLastArray(rng.integers(0, 256, (2, 7, 5, 16)).astype(np.uint8))
    x = ChannelsLastArray(rng.standard_normal((2, 7, 5, 16)).astype(np.float32) * 3)
    for scale, zero_point in [(np.float32(0.05), np.uint8(100)), (np.float32(0.3), np.int8(-3)),
                              (np.float32(1 / 3), np.uint8(0))]:
        got, want = (be.to_numpy(be.dequantize_linear(q, scale, np.uint8(17)))
                     for be in (fast_be, exact_be))
        np.testing.assert_array_equal(got, want)
        got, want = (be.to_numpy(be.quantize_linear(x, scale, zero_point))
                     for be in (fast_be, exact_be))
        _within_one_lsb(got, want)


@pytest.mark.parametrize("zero", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("groups", [1, 8])
def test_zero_points_of_zero_build_a_primitive_without_them(exact, zero, groups):
    """A src or dst zero point of 0 (every conv after a ReLU) gets a primitive built
    without it (no compensation), and the padded border still reads as zero."""
    fast = get_backend("cpu", requantization="float32")
    rng = np.random.default_rng(groups)
    args, conv = _random_qconv(rng, (1, 16, 9, 9), (16, 16 // groups, 3, 3), 1, 1, 1,
                               groups, np.uint8, np.uint8)
    x, sx, zx, w, sw, zw, sy, zy, bias = args
    zx, zy = (np.uint8(0) if z else v for z, v in zip(zero, (zx, zy), strict=True))
    args = (x, sx, zx, w, sw, zw, sy, zy, bias)
    got, want = _qconv(fast, args, conv), _qconv(exact, args, conv)
    assert _within_one_lsb(got, want) <= want.size // 100
    keys = [key for key, prim in fast._primitives.items()
            if key[0] == "qconv" and prim is not None]
    assert [key[4] for key in keys] == [(not zero[0], not zero[1])]
