"""The cpu backend's prepared int8 kernels (``cpu/int8_prepared.py``) and the int8 work a
session no longer repeats per run: a compiled plan's fused QLinearConv and MaxPool on
codes give the normal path's codes bit for bit, fall back to the kernel on arguments they
were not built for, and QGemm's weights are packed once, not once per run."""

from __future__ import annotations

import numpy as np
import pytest

import hwbench
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime", reason="onnxruntime's quantize_static makes the model")
_ok, _why = availability("cpu")
pytestmark = pytest.mark.skipif(not _ok, reason=f"cpu backend unavailable: {_why}")

SHAPE = (2, 3, 20, 20)


def _quantized(tmp_path, fmt: str) -> hwbench.Model:
    """Conv+Relu, MaxPool, depthwise Conv+Relu, 1x1 Conv, Add, GlobalAveragePool, Flatten,
    Gemm, quantized by onnxruntime (per-channel int8 weights, uint8 activations)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    rng = np.random.default_rng(3)
    inits = []

    def w(name, shape, scale=0.3):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    nodes = [
        helper.make_node("Conv", ["x", w("w1", (16, 3, 3, 3)), w("b1", (16,))], ["c1"],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", w("w2", (16, 1, 3, 3)), w("b2", (16,))], ["c2"],
                         pads=[1, 1, 1, 1], group=16),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", w("w3", (16, 16, 1, 1)), w("b3", (16,))], ["c3"]),
        helper.make_node("Add", ["c3", "p1"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", w("w4", (10, 16)), w("b4", (10,))], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_int8", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [SHAPE[0], 10])], inits)
    float_path, path = tmp_path / "float.onnx", tmp_path / f"{fmt}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(float_path))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"x": _feed(s)} for s in (10, 11)])

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(str(float_path), str(path), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    return hwbench.load_model(str(path))


def _feed(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)


def _prepared(sess: hwbench.Session) -> list:
    ns = sess.executor.plan._fn.__globals__
    return [ns[k] for k in sorted((k for k in ns if k.startswith("K")), key=lambda k: int(k[1:]))]


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
@pytest.mark.parametrize("backend", ["cpu:float32-requant", "cpu"])
def test_int8_replay_is_the_normal_path_bit_for_bit(tmp_path, fmt, backend):
    model = _quantized(tmp_path, fmt)
    fast = hwbench.Session(model, backend, threads=2)
    plain = hwbench.Session(model, backend, threads=2)
    plain.executor.backend.fast_replay = False
    for seed in range(4):  # the traced run, the run that builds the fast paths, two more
        feeds = {"x": _feed(seed)}
        expected = fast.executor.run(feeds)[0]
        got, other = fast.run(feeds)[0], plain.run(feeds)[0]
        assert got.tobytes() == expected.tobytes() == other.tobytes()
    kinds = [(k.kernel.__name__, k.fast()) for k in _prepared(fast)]
    pools = [f for name, f in kinds if name == "_max_pool2d_codes"]
    convs = [f for name, f in kinds if name == "_qconv2d"]
    assert pools == [True]  # on the first conv's channels-last codes
    if backend == "cpu:float32-requant":
        # every conv bound; the 1x1 conv and the Add as one QLinearConvAdd node
        # (``qconv_add_fusion``), it, the pooling and the Gemm as bound host steps
        assert len(convs) == 2 and all(convs)
        assert _host_steps(fast) == ["QLinearConvAdd", "QLinearGlobalAveragePool", "QGemm"]
    else:  # the exact mode: its depthwise and 1x1 convs on the kernel's own path
        assert len(convs) >= 3 and convs[1:3] == [False, False]
        assert _host_steps(fast) == []


def _host_steps(sess: hwbench.Session) -> list[str]:
    """The op types of the nodes a plan replays as a backend's host step (``H<k>``)."""
    ns = sess.executor.plan._fn.__globals__
    steps = sorted(int(k[1:]) for k in ns if k[0] == "H" and k[1:].isdigit())
    return [sess.executor._steps[k].node.op_type for k in steps]


def test_a_fast_qconv_runs_the_kernel_on_other_arguments():
    from hwbench.backends.cpu.prepared import builder_for
    from hwbench.kernels import spec
    from hwbench.models.session import session_backend

    be = session_backend("cpu:float32-requant", threads=2)
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (2, 9, 9, 16), dtype=np.uint8)  # NHWC
    x = ChannelsLastArray(codes)
    w = be.asarray(rng.integers(-127, 128, (8, 16, 3, 3), dtype=np.int8))
    bias = be.asarray(rng.integers(-5000, 5000, 8, dtype=np.int32))
    zx, zw, zy = np.uint8(131), np.zeros(8, np.int8), np.uint8(7)
    sx, sw, sy = np.float32(0.02), (rng.random(8) * 0.01 + 0.001).astype(np.float32), \
        np.float32(0.05)
    expected = be.to_numpy(be.qconv2d(x, sx, zx, w, sw, zw, sy, zy, bias, padding=1))
    p, zx_c, zw_c = spec.check_conv2d_int8(x, w, zx, zw, 1, 1, 1, 1, bias, op="qconv2d")
    fixed, zy_c = spec.check_requantization(sx, sw, sy, zy, p.k, ("x_scale", "w_scale"),
                                            "qconv2d")
    args = (x, w, zx_c, zw_c, bias, fixed, zy_c)
    be._begin_kernel("qconv2d", p)
    fast = builder_for(be._qconv2d)(be, p, be._qconv2d, args, {})
    assert fast is not None
    assert be.to_numpy(fast(*args)).tobytes() == expected.tobytes()
    again = fast(ChannelsLastArray(codes.copy()), *args[1:])  # new codes, same layout
    assert isinstance(again, ChannelsLastArray)
    assert be.to_numpy(again).tobytes() == expected.tobytes()
    nchw = np.ascontiguousarray(codes.transpose(0, 3, 1, 2))  # not channels-last: kernel
    assert be.to_numpy(fast(nchw, *args[1:])).tobytes() == expected.tobytes()
    other_w = be.asarray(np.asarray(w) // 2)  # other weights: the kernel, their codes
    want = be.to_numpy(be.qconv2d(x, sx, zx, other_w, sw, zw, sy, zy, bias, padding=1))
    assert be.to_numpy(fast(x, other_w, *args[2:])).tobytes() == want.tobytes()


@pytest.mark.parametrize("backend", ["cpu:float32-requant", "cpu"])
def test_qgemm_weights_are_packed_once(tmp_path, monkeypatch, backend):
    from hwbench.backends.cpu.backend import CpuBackend

    model = _quantized(tmp_path, "qop")
    assert "QGemm" in {n.op_type for n in model.graph.nodes}
    sess = hwbench.Session(model, backend, threads=2)
    sess.run({"x": _feed(0)})
    packs = []  # what a kernel derived from an array (packed, moved to int8) after run 1
    derive = CpuBackend._once_per_array
    monkeypatch.setattr(CpuBackend, "_once_per_array", lambda self, w, tag, build: derive(
        self, w, tag, lambda a: packs.append(tag) or build(a)))
    for seed in range(1, 4):
        sess.run({"x": _feed(seed)})
    assert not packs  # B's transposed, reshaped copy is the same frozen array every run


def test_a_session_quantizes_its_nchw_input_straight_to_channels_last_codes():
    from hwbench.kernels.quantization import quantize
    from hwbench.models.session import session_backend

    be = session_backend("cpu:float32-requant", threads=2)
    x = (np.random.default_rng(2).standard_normal((2, 3, 17, 23)) * 4).astype(np.float32)
    for zero in (np.uint8(121), np.int8(-3)):
        y = be.quantize_linear(x, np.float32(0.0173), zero)
        assert isinstance(y, ChannelsLastArray) and y.dtype == zero.dtype
        ref = quantize(x, np.float32(0.0173), zero, zero.dtype)
        diff = be.to_numpy(y).astype(np.int16) - ref.astype(np.int16)
        assert np.abs(diff).max() <= 1  # the mode's bound (1/scale multiplied, not divided)
    exact = session_backend("cpu", threads=2)
    assert type(exact.quantize_linear(x, np.float32(0.0173), np.uint8(9))) is np.ndarray


@pytest.mark.parametrize("index", [[5, 0, 3, 3, 1], [0, 3, 1, 4, 2, 5], [1, 2, 3], [4, 5],
                                   [0, 2, 4, 1, 3, 5]])
def test_channels_of_channels_last_codes_stay_channels_last(index):
    """Gather and Slice of channels (a shuffle of 2 or 3 groups, a run, any order) on
    channels-last codes: channels-last results with NumPy's values."""
    from hwbench.models.session import session_backend

    be = session_backend("cpu", threads=2)
    nchw = np.random.default_rng(len(index)).integers(0, 256, (2, 6, 5, 7), dtype=np.uint8)
    x = ChannelsLastArray(np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)))
    y = be.gather(x, np.array(index), axis=1)
    assert isinstance(y, ChannelsLastArray)
    assert np.array_equal(be.to_numpy(y), nchw[:, index])
    z = be.slice(x, [1], [4], [1])
    assert isinstance(z, ChannelsLastArray) and np.array_equal(be.to_numpy(z), nchw[:, 1:4])


def test_fully_connected_qconvs_on_one_pixel_nchw_codes_replay_bound():
    """hwbench's own int8 MLP (QLinearConv 1x1 on (N, K, 1, 1) codes a Reshape made
    plain): NCHW codes of one pixel are the NHWC bytes, so the bound conv reads them as
    they are; the codes are the normal path's bit for bit."""
    from hwbench.models.sample_inputs import batch_feeds

    model = hwbench.quantize_model(hwbench.load_model("mlp", batch=4))
    fast = hwbench.Session(model, "cpu:float32-requant", threads=2)
    plain = hwbench.Session(model, "cpu:float32-requant", threads=2)
    plain.executor.backend.fast_replay = False
    for seed in range(3):
        feeds, _ = batch_feeds(model.graph, 4, seed=seed)
        got, want = fast.run(feeds)[0], plain.run(feeds)[0]
        assert got.tobytes() == want.tobytes()
    convs = [k.fast() for k in _prepared(fast) if k.kernel.__name__ == "_qconv2d"]
    assert convs == [True, True]
