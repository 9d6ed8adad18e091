"""The ``onnxruntime-requant`` math mode (``backends.onnxruntime_requant``): every int8
op, on one-node models with random codes and scales, gives onnxruntime's codes bit for
bit, on every available backend; the mode is named, recorded and refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install '.[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

BACKENDS = ["numpy", "cpu", "opencl", "systolic", "cuda"]
MS = "com.microsoft"


def _backend(name: str):
    ok, why = availability(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    return get_backend(f"{name}:onnxruntime-requant")


def _both(node, feeds: dict, inits: dict, out_shape, out_type, backend, tmp_path):
    """(onnxruntime's output, the backend's in the mode) of ``node`` alone."""
    inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype),
                                            v.shape) for k, v in feeds.items()]
    init = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    graph = helper.make_graph([node], "one", inputs,
                              [helper.make_tensor_value_info("y", out_type, out_shape)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    path = tmp_path / "one.onnx"
    onnx.save(model, path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, feeds)[0]
    got = Executor(load_onnx(str(path)), backend).run(feeds)[0]
    return want, np.asarray(got)


def _scale(draw, low=1e-3, high=0.1) -> np.float32:
    return np.float32(draw(st.floats(low, high)))


def _codes(rng, shape, dtype=np.uint8) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


SETTINGS = settings(max_examples=6, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_qlinear_conv_is_onnxruntimes(backend, data, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    c, k = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    x, w = _codes(rng, (2, c, 9, 7)), _codes(rng, (k, c, 3, 3), np.int8)
    ws = rng.uniform(1e-3, 2e-2, k).astype(np.float32)
    bias = rng.integers(-5000, 5000, k).astype(np.int32)
    inits = dict(xs=_scale(data.draw), xz=np.uint8(data.draw(st.integers(0, 255))), w=w,
                 ws=ws, wz=np.zeros(k, np.int8), ys=_scale(data.draw, 1e-3, 0.05),
                 yz=np.uint8(data.draw(st.integers(0, 255))), b=bias)
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], pads=[1, 1, 1, 1])
    want, got = _both(node, {"x": x}, inits, (2, k, 9, 7), TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["QLinearMatMul", "QGemm"])
@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_qlinear_matmul_and_qgemm_are_onnxruntimes(backend, op, data, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m, k, n = 3, data.draw(st.integers(1, 300)), data.draw(st.integers(1, 20))
    a, b = _codes(rng, (m, k)), _codes(rng, (k, n), np.int8)
    common = dict(sa=_scale(data.draw), za=np.uint8(data.draw(st.integers(0, 255))), b=b,
                  sb=rng.uniform(1e-3, 2e-2, n).astype(np.float32), zb=np.zeros(n, np.int8))
    out = dict(sy=_scale(data.draw, 1e-2, 0.5), zy=np.uint8(data.draw(st.integers(0, 255))))
    if op == "QGemm":
        common["c"] = rng.integers(-3000, 3000, n).astype(np.int32)
        names = ["a", "sa", "za", "b", "sb", "zb", "c", "sy", "zy"]
        node = helper.make_node(op, names, ["y"], domain=MS)
    else:
        node = helper.make_node(op, ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    want, got = _both(node, {"a": a}, {**common, **out}, (m, n), TensorProto.UINT8, be,
                      tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data(), scalar_b=st.booleans())
def test_qlinear_add_and_mul_are_onnxruntimes(backend, op, data, scalar_b, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = (2, 5, 7, 9)
    feeds = {"a": _codes(rng, shape), "b": _codes(rng, (1,) if scalar_b else shape)}
    inits = {k: _scale(data.draw) for k in ("sa", "sb", "sc")}
    inits.update({k: np.uint8(data.draw(st.integers(0, 255))) for k in ("za", "zb", "zc")})
    node = helper.make_node(op, ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                            domain=MS)
    want, got = _both(node, feeds, inits, shape, TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["QLinearSigmoid", "QLinearLeakyRelu",
                                "QLinearGlobalAveragePool", "QLinearAveragePool",
                                "QLinearSoftmax"])
@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_qlinear_unary_ops_are_onnxruntimes(backend, op, data, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = _codes(rng, (2, 6, 7, 5))
    inits = dict(xs=_scale(data.draw, 1e-3, 0.1), xz=np.uint8(data.draw(st.integers(0, 255))),
                 ys=_scale(data.draw, 1e-3, 0.1), yz=np.uint8(data.draw(st.integers(0, 255))))
    attrs, shape = {}, x.shape
    if op == "QLinearLeakyRelu":
        attrs["alpha"] = data.draw(st.floats(0.01, 0.5))
    if op == "QLinearGlobalAveragePool":
        attrs["channels_last"], shape = 0, (2, 6, 1, 1)
    if op == "QLinearAveragePool":
        include = data.draw(st.booleans())
        attrs.update(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                     count_include_pad=int(include))
        shape = (2, 6, 4, 3)
    if op == "QLinearSoftmax":
        attrs.update(axis=-1, opset=13)
        inits.update(ys=np.float32(1 / 256), yz=np.uint8(0))
    node = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    want, got = _both(node, {"x": x}, inits, shape, TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_qlinear_concat_and_quantize_are_onnxruntimes(backend, data, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a, b = _codes(rng, (2, 3, 4, 5)), _codes(rng, (2, 2, 4, 5))
    inits = dict(ys=_scale(data.draw), yz=np.uint8(data.draw(st.integers(0, 255))),
                 sa=_scale(data.draw), za=np.uint8(data.draw(st.integers(0, 255))),
                 sb=_scale(data.draw), zb=np.uint8(data.draw(st.integers(0, 255))))
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "sa", "za", "b", "sb", "zb"],
                            ["y"], domain=MS, axis=1)
    want, got = _both(node, {"a": a, "b": b}, inits, (2, 5, 4, 5), TensorProto.UINT8, be,
                      tmp_path)
    np.testing.assert_array_equal(got, want)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    node = helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["y"])
    want, got = _both(node, {"x": x}, {"sa": inits["sa"], "za": inits["za"]}, x.shape,
                      TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["numpy", "cpu", "cpu:mkl", "opencl", "systolic"])
def test_the_mode_is_named_and_recorded(backend):
    base = backend.split(":")[0]
    if not availability(base)[0]:
        pytest.skip(f"backend {base} unavailable")
    be = get_backend(f"{backend}{'+' if ':' in backend else ':'}onnxruntime-requant")
    assert be.full_name.endswith("onnxruntime-requant")
    assert be.info()["requantization"] == "onnxruntime"
    assert get_backend(base, requantization="onnxruntime").full_name == \
        f"{base}:onnxruntime-requant"
    assert "onnxruntime" not in get_backend(base).full_name  # the default stays exact


@pytest.mark.parametrize("name", ["numpy:onnxruntime-requnt", "numpy:+onnxruntime-requant"])
def test_a_bad_mode_name_is_refused_naming_the_argument(name):
    with pytest.raises(ArgumentError, match="argument 'backend'"):
        get_backend(name)


def test_a_contradicting_requantization_option_is_refused():
    if not availability("cpu")[0]:
        pytest.skip("cpu unavailable")
    with pytest.raises(ArgumentError, match="argument 'requantization'"):
        get_backend("cpu:onnxruntime-requant", requantization="float32")


@pytest.mark.parametrize("name", ["numpy:onnxruntime-requant", "cpu:mkl+onnxruntime-requant"])
def test_availability_reads_the_mode_as_no_device(name):
    base_ok = availability(name.partition(":")[0])[0]
    if name.startswith("cpu:mkl"):
        base_ok = availability("cpu:mkl")[0]
    assert availability(name)[0] == base_ok


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_dynamic_quantize_and_matmul_integer_are_onnxruntimes(backend, data, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = (rng.standard_normal((4, 33)) * data.draw(st.floats(0.01, 10))
         + data.draw(st.floats(-3, 3))).astype(np.float32)
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)]
    outs = [helper.make_tensor_value_info("y", TensorProto.UINT8, x.shape),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, ()),
            helper.make_tensor_value_info("z", TensorProto.UINT8, ())]
    model = helper.make_model(helper.make_graph([node], "dq", inputs, outs),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "dq.onnx"
    onnx.save(model, path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})
    got = Executor(load_onnx(str(path)), be).run({"x": x})
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(g), w)
    b = _codes(rng, (33, 7), np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b", "za"], ["y"])
    want, got = _both(node, {"a": want[0]}, {"b": b, "za": want[2]}, (4, 7), TensorProto.INT32,
                      be, tmp_path)
    np.testing.assert_array_equal(got, want)


# -- cases chosen where the roundings differ, so that these tests can fail -------------
def _near_tie_columns(rng, count: int):
    """(b codes, b scales) of ``count`` QLinearMatMul columns (A: every uint8 code, K=1,
    zero points 0, a_scale 1, y_scale 1) where float32 requantization gives another code
    than the exact product for at least one code of A."""
    codes = np.arange(256, dtype=np.float64)
    found_b, found_s = [], []
    while len(found_b) < count:
        b = int(rng.integers(1, 128))
        s = np.float32(rng.uniform(0.001, 0.05))
        acc = codes * b
        f32 = np.rint((acc.astype(np.float32) * s).astype(np.float64))
        exact = np.rint(acc * np.float64(s))
        if np.any((f32 != exact) & (exact <= 255)):
            found_b.append(b)
            found_s.append(s)
    return np.array(found_b, np.int8), np.array(found_s, np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_requantization_near_ties_is_onnxruntimes_not_exact(backend, tmp_path):
    be = _backend(backend)
    rng = np.random.default_rng(15)
    b, sb = _near_tie_columns(rng, 8)
    a = np.arange(256, dtype=np.uint8).reshape(256, 1)
    inits = dict(sa=np.float32(1), za=np.uint8(0), b=b.reshape(1, -1), sb=sb,
                 zb=np.zeros(len(b), np.int8), sy=np.float32(1), zy=np.uint8(0))
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"],
                            ["y"])
    want, got = _both(node, {"a": a}, inits, (256, len(b)), TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)
    exact = get_backend(backend).qgemm(a, np.float32(1), np.uint8(0), inits["b"], sb,
                                       np.int8(0), np.float32(1), np.uint8(0))
    assert np.any(np.asarray(exact) != want)  # the case tells the two modes apart


def _add_variants(a, b, sa, sb, sc, za, zb, zc):
    """QLinearAdd's float32 value with and without the FMA in its constant part."""
    f = np.float32
    ra, rb = f(sa) / f(sc), f(sb) / f(sc)
    fused = f(np.float64(ra) * np.float64(za) + np.float64(rb * f(zb)))
    plain = ra * f(za) + rb * f(zb)
    out = []
    for part in (fused, plain):
        fixed = f(zc) - part
        inner = (b.astype(np.float64) * np.float64(rb) + np.float64(fixed)).astype(f)
        y = (a.astype(np.float64) * np.float64(ra) + inner.astype(np.float64)).astype(f)
        out.append(np.clip(np.rint(y), 0, 255))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_qlinear_add_near_ties_is_onnxruntimes(backend, tmp_path):
    """Every pair of codes, at scales where the FMA in the constant part moves a code."""
    be = _backend(backend)
    rng = np.random.default_rng(15)
    a, b = (g.astype(np.uint8) for g in np.meshgrid(np.arange(256), np.arange(256)))
    while True:
        sa, sb, sc = (np.float32(rng.uniform(0.01, 0.1)) for _ in range(3))
        za, zb, zc = (np.uint8(rng.integers(0, 256)) for _ in range(3))
        fused, plain = _add_variants(a, b, sa, sb, sc, za, zb, zc)
        if np.any(fused != plain):
            break
    inits = dict(sa=sa, za=za, sb=sb, zb=zb, sc=sc, zc=zc)
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                            ["y"], domain=MS)
    want, got = _both(node, {"a": a, "b": b}, inits, a.shape, TensorProto.UINT8, be,
                      tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_qlinear_mul_adds_the_zero_point_before_rounding(backend, tmp_path):
    """Scales of 1/16 make half the products ties (177.5): onnxruntime rounds the value
    plus zc (178.5 -> 178), not the value before adding zc (178 + 1); hypothesis found it."""
    be = _backend(backend)
    rng = np.random.default_rng(0)
    shape = (2, 5, 7, 9)
    feeds = {"a": _codes(rng, shape), "b": _codes(rng, shape)}
    inits = {k: np.float32(0.0625) for k in ("sa", "sb", "sc")}
    inits.update(za=np.uint8(0), zb=np.uint8(0), zc=np.uint8(1))
    node = helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                            ["y"], domain=MS)
    want, got = _both(node, feeds, inits, shape, TensorProto.UINT8, be, tmp_path)
    np.testing.assert_array_equal(got, want)
