"""Small generative and segmentation-style nets through ``hwbench.Session`` on every
backend, against onnxruntime: a DCGAN-style generator (ConvTranspose + BatchNormalization
+ LeakyRelu, Tanh out) and a U-Net-style net (Conv, MaxPool, Resize up, Concat skip, and a
final Resize to a fixed size). Float backends agree within 1e-4 of the largest output;
the systolic backend quantizes its GEMMs to int8 (tolerances.QUANTIZED_FLOAT_TOL)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from tolerances import QUANTIZED_FLOAT_TOL, quantizes_float_math  # noqa: E402

from hwbench.graph.onnx_import import load_onnx  # noqa: E402
from hwbench.models import Model, Session  # noqa: E402


def _model(nodes, inits: dict[str, np.ndarray], x_shape, out_shape) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def generator(rng) -> tuple[onnx.ModelProto, np.ndarray]:
    """z (2, 16, 1, 1) -> (2, 3, 16, 16), as DCGAN's generator (smaller)."""
    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    inits = {"w1": w(16, 8, 4, 4), "w2": w(8, 4, 4, 4), "w3": w(4, 3, 4, 4), "b3": w(3)}
    nodes = []
    prev = "x"
    for i, (wname, stride, pad) in enumerate((("w1", 1, 0), ("w2", 2, 1), ("w3", 2, 1))):
        inputs = [prev, wname] + (["b3"] if wname == "w3" else [])
        nodes.append(helper.make_node("ConvTranspose", inputs, [f"ct{i}"], strides=[stride] * 2,
                                      pads=[pad] * 4, kernel_shape=[4, 4]))
        prev = f"ct{i}"
        if wname == "w3":
            break
        c = inits[wname].shape[1]
        for name, value in (("scale", 1 + 0.1 * rng.standard_normal(c)),
                            ("bias", 0.1 * rng.standard_normal(c)),
                            ("mean", 0.1 * rng.standard_normal(c)),
                            ("var", 0.5 + rng.random(c))):
            inits[f"bn{i}_{name}"] = value.astype(np.float32)
        nodes.append(helper.make_node(
            "BatchNormalization", [prev] + [f"bn{i}_{n}" for n in ("scale", "bias", "mean",
                                                                      "var")], [f"bn{i}"]))
        nodes.append(helper.make_node("LeakyRelu", [f"bn{i}"], [f"lr{i}"], alpha=0.2))
        prev = f"lr{i}"
    nodes.append(helper.make_node("Tanh", [prev], ["y"]))
    z = rng.standard_normal((2, 16, 1, 1)).astype(np.float32)
    return _model(nodes, inits, z.shape, (2, 3, 16, 16)), z


def unet(rng) -> tuple[onnx.ModelProto, np.ndarray]:
    """x (1, 3, 9, 10) -> (1, 2, 17, 23): an encoder level, a Resize up (PyTorch's nearest
    export: asymmetric, floor), a skip Concat, and a final linear Resize to a fixed size."""
    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    inits = {"w1": w(4, 3, 3, 3), "b1": w(4), "w2": w(6, 4, 3, 3), "w3": w(2, 10, 3, 3),
             "up_scales": np.array([1, 1, 2, 2], np.float32),
             "out_sizes": np.array([1, 2, 17, 23], np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["e1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["e2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e2"], ["r2"]),
        helper.make_node("Resize", ["r2", "", "up_scales"], ["u2"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Pad", ["u2", "pads"], ["u2p"]),
        helper.make_node("Concat", ["r1", "u2p"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["d1"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["d1", "", "", "out_sizes"], ["y"], mode="linear"),
    ]
    inits["pads"] = np.array([0, 0, 0, 0, 0, 0, 1, 0], np.int64)  # 8x10 up to r1's 9x10
    x = rng.standard_normal((1, 3, 9, 10)).astype(np.float32)
    return _model(nodes, inits, x.shape, (1, 2, 17, 23)), x


@pytest.mark.parametrize("build", [generator, unet])
def test_net_matches_onnxruntime(backend, rng, build):
    model, x = build(rng)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"x": x})
    (got,) = Session(Model(build.__name__, load_onnx(model)), backend=backend).run({"x": x})
    assert got.shape == want.shape and got.dtype == np.float32
    err = float(np.max(np.abs(got - want))) / float(np.max(np.abs(want)))
    assert err <= (QUANTIZED_FLOAT_TOL if quantizes_float_math(backend) else 1e-4), err


def _one_node(op: str, opset: int, inits: dict, x: np.ndarray, out_shape, inputs, **attrs):
    node = helper.make_node(op, ["x", *inputs], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


OPSET_CASES = {  # name -> (op, opset, initializers, inputs, output shape, attributes)
    "upsample9_nearest": ("Upsample", 9, {"s": np.array([1, 1, 2, 3], np.float32)}, ["s"],
                          (1, 2, 6, 15), {"mode": "nearest"}),
    "upsample9_linear": ("Upsample", 9, {"s": np.array([1, 1, 2, 1.5], np.float32)}, ["s"],
                         (1, 2, 6, 7), {"mode": "linear"}),
    "resize10_nearest": ("Resize", 10, {"s": np.array([1, 1, 1.7, 2], np.float32)}, ["s"],
                         (1, 2, 5, 10), {"mode": "nearest"}),
    "resize10_linear": ("Resize", 10, {"s": np.array([1, 1, 2, 0.6], np.float32)}, ["s"],
                        (1, 2, 6, 3), {"mode": "linear"}),
    "resize11_sizes_empty_scales": (
        "Resize", 11, {"roi": np.zeros(0, np.float32), "s": np.zeros(0, np.float32),
                       "z": np.array([1, 2, 7, 4], np.int64)}, ["roi", "s", "z"],
        (1, 2, 7, 4), {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}),
    "resize13_pytorch_half_pixel": (
        "Resize", 13, {"s": np.array([1, 1, 2, 2], np.float32)}, ["", "s"], (1, 2, 6, 10),
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
    "resize18_antialias_axes": (
        "Resize", 18, {"z": np.array([2, 3], np.int64)}, ["", "", "z"], (1, 2, 2, 3),
        {"mode": "linear", "antialias": 1, "axes": [2, 3]}),
}


@pytest.mark.parametrize("name", sorted(OPSET_CASES))
def test_resize_and_upsample_at_each_opset_match_onnxruntime(backend, rng, name):
    """Resize and Upsample as exporters write them at each opset (Upsample 9 and Resize 10:
    asymmetric, nearest rounding down; opset 11-12: an empty scales beside sizes)."""
    op, opset, inits, inputs, out_shape, attrs = OPSET_CASES[name]
    x = rng.standard_normal((1, 2, 3, 5)).astype(np.float32)
    model = _one_node(op, opset, inits, x, out_shape, inputs, **attrs)
    (want,) = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, {"x": x})
    (got,) = Session(Model(name, load_onnx(model)), backend=backend).run({"x": x})
    assert got.shape == want.shape == out_shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
