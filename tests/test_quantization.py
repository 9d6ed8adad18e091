"""Post-training int8 quantization and the integer kernels under it.

Checks the pieces (weight and activation parameters, Relu folding, calibration data), the
whole (int8 LeNet within MLPerf's 1 point of fp32 on every backend), and the two things
an int8 result is only trustworthy with: exact integer kernels (against the float64
reference, past float32's 2**24) and agreement with onnxruntime running the same
quantized ONNX graph.
"""

from __future__ import annotations

import numpy as np
import pytest

import hwbench
from hwbench.errors import ArgumentError, DTypeError, HwbenchError
from hwbench.graph.quantize import TensorRange, int8_weights, int32_bias, uint8_params
from hwbench.kernels import reference
from hwbench.models.quantization import default_calibration, quantize_model

onnx = pytest.importorskip("onnx", reason="the graph layer reads ONNX (pip install onnx)")


@pytest.fixture(scope="module")
def digits_test():
    return hwbench.datasets.digits("test")


@pytest.fixture(scope="module")
def lenet_int8():
    return quantize_model(hwbench.load_model("lenet", batch=360))


def _top1(backend, model, x, y, precision="fp32") -> float:
    out = hwbench.Session(model, backend=backend, precision=precision).run(
        {model.inputs[0]: x})[0]
    return float(np.mean(out.argmax(1) == y))


# -- the parameters ------------------------------------------------------------------------
def test_weights_are_symmetric_int8_per_output_channel():
    w = np.array([[[[0.5, -1.0]]], [[[0.02, 0.005]]], [[[0.0, 0.0]]]], np.float32)
    q, scales = int8_weights(w)
    assert q.dtype == np.int8 and scales.shape == (3,)
    assert q[0].ravel().tolist() == [64, -127] and q[1].ravel().tolist() == [127, 32]
    assert scales[2] == 1.0 and not q[2].any()  # an all-zero filter stays representable
    np.testing.assert_allclose(q * scales.reshape(-1, 1, 1, 1), w, atol=scales.max() / 2)


@pytest.mark.parametrize("low,high", [(-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)])
def test_activation_range_always_holds_an_exact_zero(low, high):
    scale, zero_point = uint8_params(TensorRange(low, high))
    assert zero_point.dtype == np.uint8 and scale > 0
    # 0.0 quantizes to the zero point and back to exactly 0 (padding, Relu)
    assert np.rint(0.0 / scale) + zero_point == zero_point
    top = (255 - int(zero_point)) * scale
    bottom = (0 - int(zero_point)) * scale
    assert bottom <= min(low, 0) + scale and top >= max(high, 0) - scale


def test_bias_is_int32_at_the_product_of_input_and_weight_scales():
    bias = int32_bias(np.array([1.0, -2.5], np.float32), np.float32(0.1), np.float32([0.5, 2]))
    assert bias.dtype == np.int32 and bias.tolist() == [20, -12]


# -- the rewrite ---------------------------------------------------------------------------
def test_quantized_lenet_is_standard_onnx_with_relu_folded(lenet_int8):
    counts = lenet_int8.graph.op_counts()
    assert lenet_int8.precision == "int8"
    assert counts["QLinearConv"] >= 3 and "Conv" not in counts and "Gemm" not in counts
    assert "Relu" not in counts  # folded: saturation at the zero point is the Relu
    for node in lenet_int8.graph.nodes:
        if node.op_type == "QLinearConv":
            w_scale = lenet_int8.graph.initializers[node.inputs[4]]
            assert w_scale.shape == (lenet_int8.graph.initializers[node.inputs[3]].shape[0],)
    assert lenet_int8.graph.opset >= 10  # QuantizeLinear/QLinearConv exist from opset 10


def test_calibration_uses_the_train_split_never_the_test_split(digits_test):
    samples = default_calibration(hwbench.load_model("lenet"))
    train = hwbench.datasets.digits("train")[0]
    np.testing.assert_array_equal(samples, train[:len(samples)])
    assert not any(np.array_equal(s, t) for s in samples[:20] for t in digits_test[0][:50])


def test_quantized_model_does_not_depend_on_the_batch_size():
    one = quantize_model(hwbench.load_model("lenet", batch=1)).graph.initializers
    many = quantize_model(hwbench.load_model("lenet", batch=32)).graph.initializers
    for name, value in one.items():
        if value.dtype != np.int64:  # Reshape targets carry the batch; nothing else may
            np.testing.assert_array_equal(value, many[name], err_msg=name)


def test_calibration_can_be_given(digits_test):
    model = hwbench.load_model("mlp", batch=16)
    x = digits_test[0]
    default = quantize_model(model)
    narrow = quantize_model(model, calibration=x[:3])
    scales = [n for n in default.graph.initializers if n.endswith("_scale")]
    assert any(not np.array_equal(default.graph.initializers[n], narrow.graph.initializers[n])
               for n in scales)
    feeds = [{model.inputs[0]: x[i:i + 16]} for i in (0, 16)]
    assert quantize_model(model, calibration=feeds).precision == "int8"


@pytest.mark.parametrize("bad", [np.zeros((4, 3), np.float32), np.zeros((0, 1, 8, 8),
                                 np.float32), np.zeros((2, 1, 8, 8), np.float64), [1, 2], []])
def test_bad_calibration_is_refused_naming_it(bad):
    with pytest.raises(ArgumentError, match="calibration"):
        quantize_model(hwbench.load_model("lenet"), calibration=bad)


def test_calibration_without_int8_precision_is_refused():
    with pytest.raises(ArgumentError, match="calibration"):
        hwbench.Session("lenet", backend="numpy", calibration=np.zeros((1, 1, 8, 8)))


# -- accuracy ------------------------------------------------------------------------------
def test_int8_lenet_keeps_mlperf_accuracy_on_every_backend(backend, digits_test):
    x, y = digits_test
    model = hwbench.load_model("lenet", batch=len(x))
    fp32 = _top1(backend, model, x, y)
    int8 = _top1(backend, model, x, y, precision="int8")
    assert fp32 >= 0.97 and int8 >= 0.97
    assert fp32 - int8 <= 0.01, f"int8 {int8:.4f} vs fp32 {fp32:.4f}"


@pytest.mark.parametrize("name", ["mlp", "lenet", "autoencoder"])
def test_int8_models_agree_with_onnxruntime_on_the_same_quantized_graph(name, digits_test):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the same QLinear graph")
    x = digits_test[0][:64]
    model = quantize_model(hwbench.load_model(name, batch=len(x)))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                  providers=["CPUExecutionProvider"]).run(None, {
                                      model.inputs[0]: x})[0]
    ours = hwbench.Session(model, backend="numpy").run({model.inputs[0]: x})[0]
    # Integer parts are exact on both sides; only the final float32 ops may differ.
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_int8_zoo_model_agrees_with_onnxruntime_on_the_same_quantized_graph():
    """SqueezeNet (opset 9: the rewrite raises it to 10) with random weights: Concat,
    MaxPool and GlobalAveragePool between int8 convolutions."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the same QLinear graph")
    model = quantize_model(hwbench.load_model("squeezenet").randomized(seed=1))
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224), dtype=np.float32)
    theirs = ort.InferenceSession(model.to_onnx().SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(
                                      None, {model.inputs[0]: x})[0]
    ours = hwbench.Session(model, backend="numpy").run({model.inputs[0]: x})[0]
    assert ours.argmax() == theirs.argmax()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_int8_results_are_the_same_on_every_backend(backend, digits_test, lenet_int8):
    x = digits_test[0]
    feeds = {lenet_int8.inputs[0]: x}
    want = hwbench.Session(lenet_int8, backend="numpy").run(feeds)[0]
    got = hwbench.Session(lenet_int8, backend=backend).run(feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- the integer kernels -------------------------------------------------------------------
CONVS = [  # (x shape, w shape, stride, padding, dilation, groups)
    ((2, 6, 9, 9), (4, 6, 1, 1), 1, 0, 1, 1),
    ((2, 6, 9, 9), (4, 6, 3, 3), 2, (1, 0, 2, 1), 1, 1),
    ((1, 4, 11, 10), (6, 4, 3, 3), 1, 2, 2, 1),
    ((2, 6, 7, 7), (6, 3, 3, 3), 1, 1, 1, 2),
    ((1, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4),
]


@pytest.mark.parametrize("x_dtype,w_dtype", [(np.uint8, np.int8), (np.int8, np.int8),
                                             (np.uint8, np.uint8)])
@pytest.mark.parametrize("shapes", CONVS)
def test_int8_convolutions_are_exact(backend, rng, shapes, x_dtype, w_dtype):
    xs, ws, stride, padding, dilation, groups = shapes
    xi, wi = np.iinfo(x_dtype), np.iinfo(w_dtype)
    x = rng.integers(xi.min, xi.max + 1, xs).astype(x_dtype)
    w = rng.integers(wi.min, wi.max + 1, ws).astype(w_dtype)
    zx = x_dtype(rng.integers(xi.min, xi.max + 1))
    per_filter = rng.integers(wi.min, wi.max + 1, ws[0]).astype(w_dtype)
    conv = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    for zw in (w_dtype(0), per_filter):
        got = backend.to_numpy(backend.conv2d_int8(backend.asarray(x), backend.asarray(w),
                                                   zx, zw, **conv))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, reference.conv2d_int8(x, w, zx, zw, **conv))
    bias = rng.integers(-50_000, 50_000, ws[0]).astype(np.int32)
    w_scale = rng.uniform(0.001, 0.05, ws[0]).astype(np.float32)
    args = (np.float32(0.03), zx, w_scale, w_dtype(0), np.float32(0.7), np.uint8(128))
    got = backend.to_numpy(backend.qconv2d(
        backend.asarray(x), args[0], zx, backend.asarray(w), w_scale, args[3], args[4],
        args[5], backend.asarray(bias), **conv))
    want = reference.qconv2d(x, args[0], zx, w, w_scale, args[3], args[4], args[5], bias,
                             **conv)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


def test_int8_convolution_stays_exact_past_float32_precision(backend):
    """|acc| = 9,900·255·128 ≈ 3.2e8 > 2**24: a float32 accumulator would round it (the
    bug oneDNN's int8 matmul primitive had; see the int8 GEMM's conformance test)."""
    x = np.full((1, 1100, 3, 3), 255, np.uint8)
    w = np.full((2, 1100, 3, 3), -128, np.int8)
    w[1, ::2] = 127
    got = backend.to_numpy(backend.conv2d_int8(backend.asarray(x), backend.asarray(w),
                                               np.uint8(0), np.int8(0)))
    np.testing.assert_array_equal(got, reference.conv2d_int8(x, w))
    assert abs(int(got[0, 0, 0, 0])) > 2**24


def test_quantize_and_dequantize_per_axis_round_trip(backend, rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    scale = np.float32([0.01, 0.02, 0.05])
    zp = np.uint8([128, 100, 140])
    q = backend.quantize_linear(backend.asarray(x), scale, zp, axis=1)
    back = backend.to_numpy(backend.dequantize_linear(q, scale, zp, axis=1))
    assert backend.to_numpy(q).dtype == np.uint8
    inside = np.abs(x) < scale.reshape(1, 3, 1, 1) * 100  # away from saturation
    err = np.abs(back - x)[inside]
    assert err.max() <= (scale.max() / 2) * 1.0001


@pytest.mark.parametrize("call,match,error", [
    (lambda be: be.conv2d_int8(be.asarray(np.zeros((1, 2, 4, 4), np.float32)),
                               be.asarray(np.zeros((1, 2, 1, 1), np.int8))), "'x'", DTypeError),
    (lambda be: be.conv2d_int8(be.asarray(np.zeros((1, 2, 4, 4), np.uint8)),
                               be.asarray(np.zeros((3, 2, 1, 1), np.int8)), 0,
                               np.zeros(2, np.int8)), "'w_zero_point'", ArgumentError),
    (lambda be: be.conv2d_int8(be.asarray(np.zeros((1, 2, 4, 4), np.uint8)),
                               be.asarray(np.zeros((3, 2, 1, 1), np.int8)), 300),
     "'x_zero_point'", ArgumentError),
    (lambda be: be.qconv2d(be.asarray(np.zeros((1, 2, 4, 4), np.uint8)), np.float32(-1), 0,
                           be.asarray(np.zeros((3, 2, 1, 1), np.int8)), np.float32(1), 0,
                           np.float32(1), np.uint8(0)), "'x_scale'", ArgumentError),
    (lambda be: be.qconv2d(be.asarray(np.zeros((1, 2, 4, 4), np.uint8)), np.float32(1), 0,
                           be.asarray(np.zeros((3, 2, 1, 1), np.int8)), np.float32(1), 0,
                           np.float32(1), np.uint8(0),
                           be.asarray(np.zeros(3, np.float32))), "'bias'", DTypeError),
    (lambda be: be.quantize_linear(be.asarray(np.zeros((2, 3), np.float32)),
                                   np.float32([1, 2]), np.uint8([0, 0]), axis=1),
     "'scale'", ArgumentError),
    (lambda be: be.dequantize_linear(be.asarray(np.zeros(4, np.uint16)), np.float32(1)),
     "'x'", DTypeError),
])
def test_bad_integer_arguments_are_named(backend, call, match, error):
    with pytest.raises(error, match=match):
        call(backend)


@pytest.mark.parametrize("name,error", [("test_quantizelinear_int16", DTypeError),
                                        ("test_dequantizelinear_uint16", DTypeError),
                                        ("test_quantizelinear_blocked_asymmetric",
                                         HwbenchError)])
def test_wider_and_blocked_quantization_is_refused_clearly(onnx_node_cases, name, error):
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import fold_constants, set_output_shapes
    from hwbench.models import Model

    case = onnx_node_cases[name]
    graph = set_output_shapes(fold_constants(load_onnx(case.model)))
    inputs, _ = case.data_sets[0]
    with pytest.raises(error):
        session = hwbench.Session(Model(name, graph), backend="numpy")
        session.run(dict(zip(graph.input_names, inputs, strict=True)))


def test_onnxruntime_qdq_models_run_on_the_integer_kernels(tmp_path, digits_test):
    """A model quantized by onnxruntime's own tool (QDQ format: DequantizeLinear -> Conv ->
    QuantizeLinear) has its convolutions fused into QLinearConv and agrees with onnxruntime."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime's quantizer writes the model")
    quantization = pytest.importorskip("onnxruntime.quantization",
                                       reason="onnxruntime without its quantization tools")
    source, target = tmp_path / "lenet.onnx", tmp_path / "lenet-qdq.onnx"
    model = hwbench.load_model("lenet", batch=1)
    onnx.save(model.to_onnx(), source)
    train = hwbench.datasets.digits("train")[0]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{model.inputs[0]: train[i:i + 1]} for i in range(32)])

        def get_next(self):
            return next(self.feeds, None)

    quantization.quantize_static(str(source), str(target), Reader(),
                                 quant_format=quantization.QuantFormat.QDQ, per_channel=True,
                                 weight_type=quantization.QuantType.QInt8,
                                 activation_type=quantization.QuantType.QUInt8)
    qdq = hwbench.load_model(target)
    assert qdq.precision == "int8"
    session = hwbench.Session(qdq, backend="numpy")
    counts = session.graph.op_counts()
    assert counts["QLinearConv"] >= 2 and "Conv" not in counts
    theirs = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    x = digits_test[0][:20]
    for i in range(len(x)):
        ours = session.run({qdq.inputs[0]: x[i:i + 1]})[0]
        want = theirs.run(None, {qdq.inputs[0]: x[i:i + 1]})[0]
        assert ours.argmax() == want.argmax()
        np.testing.assert_allclose(ours, want, atol=2 / 255)  # onnxruntime rounds in float


def test_calibrates_a_graph_that_cannot_change_its_batch(tmp_path) -> None:
    """A constant concatenated at batch 1 (ViT's class token) pins the graph's batch:
    calibration then runs the samples at that batch, one run each, and the ranges cover
    every sample (min/max over all eight, not the first's)."""
    from onnx import TensorProto, helper, numpy_helper

    from hwbench.models.quantization import calibration_ranges

    rng = np.random.default_rng(0)
    token = numpy_helper.from_array(rng.standard_normal((1, 2)).astype(np.float32), "token")
    w = numpy_helper.from_array(rng.standard_normal((6, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Concat", ["token", "x"], ["t"], axis=1),
         helper.make_node("MatMul", ["t", "w"], ["y"])], "pinned",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [token, w])
    path = tmp_path / "pinned.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = hwbench.load_model(str(path))
    with pytest.raises(HwbenchError):
        model.with_batch(8)  # what calibration asked for before
    samples = default_calibration(model)
    assert len(samples) > 1
    ranges = calibration_ranges(model)
    tokens = np.broadcast_to(numpy_helper.to_array(token), (len(samples), 2))
    y = np.concatenate([tokens, samples], axis=1) @ numpy_helper.to_array(w)
    assert ranges["y"].low == pytest.approx(y.min(), rel=1e-5)
    assert ranges["y"].high == pytest.approx(y.max(), rel=1e-5)
    (out,) = hwbench.Session(quantize_model(model), backend="numpy").run({"x": samples[:1]})
    assert out.shape == (1, 3)
