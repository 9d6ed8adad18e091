"""The chained run of small int8 graphs in ``cpu:float32-requant`` (``graph/chain.py`` with
the links of ``backends/cpu/int8_links.py``, ``int8_prepared`` and ``int8_steps``): taken
for the digits models' int8 graphs, and bit for bit the normal path's results (the op
functions, every check) on any input, saturating and tied ones included: QuantizeLinear
as a oneDNN division (not a reciprocal's product), DequantizeLinear as a table of NumPy's
values, Reshape of channels-last codes, QLinearSigmoid/QLinearLeakyRelu tables."""

from __future__ import annotations

import numpy as np
import pytest
from plan_helpers import same_bytes  # shapes, dtypes and bytes of every output

import hwbench
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.models.session import session_backend
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")
MODE = "cpu:float32-requant"


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("name", ["mlp", "lenet", "autoencoder"])
def test_digits_int8_graphs_run_chained_bit_for_bit(name: str, batch: int) -> None:
    sess = hwbench.Session(hwbench.load_model(name, batch=batch), backend=MODE,
                           precision="int8")
    v = sess.graph.inputs[0]
    rng = np.random.default_rng(batch)
    feeds = [rng.random(tuple(v.shape), np.float32),  # digits' range
             (4 * rng.standard_normal(tuple(v.shape))).astype(np.float32)]  # saturating
    sess.run({v.name: feeds[0]}), sess.run({v.name: feeds[0]})
    assert sess.executor.chained
    for x in feeds:
        got = sess.run({v.name: x})
        same_bytes(got, sess.executor.run({v.name: x}))  # the op functions, every check
        same_bytes(got, sess.executor.plan.replay([x.copy()]))  # the plan's prepared calls


def _model(tmp_path, nodes: list, params: dict, shape: tuple, out_shape: tuple) -> str:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "int8-chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]),
              path)
    return str(path)


def _chained_and_normal(path: str, feeds: list[np.ndarray]) -> None:
    ex = Executor(load_onnx(path), session_backend(MODE, threads=2))
    ex.replay({"x": feeds[0]}), ex.replay({"x": feeds[0]})
    assert ex.chained
    for x in feeds:
        same_bytes(ex.replay({"x": x}), ex.run({"x": x}))


def _tied(rng: np.random.Generator, shape: tuple, scale: np.float32) -> np.ndarray:
    """Values whose ``x / scale`` is exactly half an odd or even integer (ties: round half
    to even decides), others near them, and saturating ones."""
    k = rng.integers(-300, 300, shape).astype(np.float32)
    x = ((k + np.float32(0.5)) * scale).astype(np.float32)
    x.reshape(-1)[::3] = (rng.standard_normal(x.size)[::3] * 200 * scale).astype(np.float32)
    return x


@pytest.mark.parametrize("dtype,zero,scale", [(np.uint8, 128, 0.125), (np.uint8, 0, 0.0371),
                                              (np.int8, -3, 0.25), (np.int8, 0, 0.0071)])
@pytest.mark.parametrize("shape", [(1, 64), (8, 4096)])
def test_quantize_and_dequantize_links_are_numpys(tmp_path, dtype, zero, scale, shape) -> None:
    """QuantizeLinear -> DequantizeLinear of a plain array: both run as links in a chain,
    the NumPy kernels' values on ties, saturation and plain values, where a product by
    the reciprocal scale would round some of them elsewhere."""
    from onnx import helper

    s, z = np.float32(scale), np.asarray(zero, dtype)
    path = _model(tmp_path, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])],
                  {"s": s, "z": z}, shape, shape)
    rng = np.random.default_rng(3)
    feeds = [_tied(rng, shape, s) for _ in range(2)]
    if scale not in (0.125, 0.25):  # a power of two's reciprocal product is the division
        apart = _apart(s, zero, dtype)  # where a product by 1/scale rounds elsewhere
        assert apart.size > 0
        feeds.append(np.resize(apart, shape).astype(np.float32))
    _chained_and_normal(path, feeds)


def _apart(s: np.float32, zero: int, dtype: type) -> np.ndarray:
    """float32 values next to ties of ``x / s`` whose ``rint(x / s)`` and
    ``rint(x * (1 / s))`` differ, both codes inside ``dtype``'s range (not saturated)."""
    info = np.iinfo(dtype)
    k = np.arange(info.min - zero, info.max - zero, dtype=np.float32) + np.float32(0.5)
    tie = (k * s).astype(np.float32)
    x = np.concatenate([tie, np.nextafter(tie, np.float32(np.inf)),
                        np.nextafter(tie, np.float32(-np.inf))])
    a, b = np.rint(x / s) + zero, np.rint(x * (np.float32(1) / s)) + zero
    inside = (np.minimum(a, b) >= info.min) & (np.maximum(a, b) <= info.max)
    return x[(a != b) & inside]


def test_nchw_quantize_reshape_of_channels_last_codes(tmp_path) -> None:
    """An NCHW input quantized to NHWC codes (the mode's transpose, then scaling reorder),
    flattened (channels-last codes back to NCHW order: one reorder), dequantized."""
    from onnx import helper

    shape = (2, 3, 5, 4)
    path = _model(tmp_path, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                             helper.make_node("Reshape", ["q", "flat"], ["f"]),
                             helper.make_node("DequantizeLinear", ["f", "s", "z"], ["y"])],
                  {"s": np.float32(0.03), "z": np.uint8(7),
                   "flat": np.array([2, 60], np.int64)}, shape, (2, 60))
    rng = np.random.default_rng(5)
    _chained_and_normal(path, [(rng.standard_normal(shape) * 3).astype(np.float32)
                               for _ in range(3)])


@pytest.mark.parametrize("shape", [(3, 40), (4, 2048)])
def test_qlinear_sigmoid_and_leaky_relu_tables_in_a_chain(tmp_path, shape) -> None:
    """QLinearSigmoid and QLinearLeakyRelu (host steps with a link: the traced run's
    256-entry tables, by pairs of codes from 4,096 on) between quantize and dequantize."""
    from onnx import helper

    ms = "com.microsoft"
    path = _model(tmp_path, [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("QLinearSigmoid", ["q", "s", "z", "s2", "z2"], ["a"], domain=ms),
        helper.make_node("QLinearLeakyRelu", ["a", "s2", "z2", "s3", "z3"], ["b"], domain=ms,
                         alpha=0.1),
        helper.make_node("DequantizeLinear", ["b", "s3", "z3"], ["y"])],
        {"s": np.float32(0.05), "z": np.uint8(128), "s2": np.float32(1 / 256),
         "z2": np.uint8(0), "s3": np.float32(0.004), "z3": np.uint8(10)}, shape, shape)
    rng = np.random.default_rng(8)
    _chained_and_normal(path, [(rng.standard_normal(shape) * 4).astype(np.float32)
                               for _ in range(3)])


def test_began_int8_runs_chained_bit_for_bit() -> None:
    """BEGAN's int8 generator: its first fused conv reads the Gemm's NCHW codes (through
    one reorder), its Elu, nearest Resize, QuantizeLinear and Sigmoid keep channels-last
    float32; every step a prepared call or bound host step with a link (no op function),
    chained, and the op functions' bits."""
    from hwbench.harness.suites import began_suite

    model = began_suite.case_model(2)
    sess = hwbench.Session(model, backend=MODE, precision="int8",
                           calibration=began_suite.calibration(model))
    hidden = int(model.input_shapes["z"][1])
    feeds = [{"z": began_suite.latents(2, hidden, seed)} for seed in (1, 2, 3)]
    sess.run(feeds[0]), sess.run(feeds[0])
    source = sess.executor.plan.source
    assert " = F" not in source, source  # no step left to its op function
    assert sess.executor.chained  # its images: one channel, the NCHW bytes
    for f in feeds:
        got = sess.run(f)
        same_bytes(got, sess.executor.run(f))
        be = sess.executor.backend
        same_bytes(got, [be.to_numpy(v) for v in sess.executor.plan.replay([f["z"].copy()])])


@pytest.mark.parametrize("options", [{}, {"nearest_mode": "round_prefer_ceil"},
                                     {"mode": "linear"}])
def test_resize_of_channels_last_float32_is_the_nchw_resize(options) -> None:
    """A nearest Resize of a channels-last float32 activation stays channels-last (the
    same picks: the NCHW resize's values); any other goes the NCHW way."""
    from hwbench.backends import get_backend
    from hwbench.backends.cpu.layouts import ChannelsLastArray

    be = get_backend("cpu")
    x = np.random.default_rng(2).standard_normal((2, 5, 4, 3)).astype(np.float32)
    scales = np.array([1, 1, 2, 2], np.float32)
    want = be.to_numpy(be.resize(be.asarray(x), scales, **options))
    held = be.resize(ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1))),
                     scales, **options)
    nearest = options.get("mode", "nearest") == "nearest"
    assert (type(held) is ChannelsLastArray) == nearest
    got = held.nhwc.transpose(0, 3, 1, 2) if nearest else be.to_numpy(held)
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def test_translator_int8_runs_step_chained_bit_for_bit() -> None:
    """The translator's int8 encoder and decoder step (several feeds and outputs: the
    step chain, ``graph/step_chain.py``) take the int8 links too (codes, channels-last
    codes, the dequantize table), and give the op functions' bits at every token."""
    from hwbench.harness.suites import translator_suite
    from hwbench.models.translator import export

    encoder_model, step_model = translator_suite.case_models(2)
    encoder = hwbench.Session(encoder_model, backend=MODE, precision="int8")
    step = hwbench.Session(step_model, backend=MODE, precision="int8")
    sources, _ = translator_suite._sentences(2)
    feeds = export.source_feeds(sources[:2], translator_suite.SEQUENCE)
    seen: list[dict] = []

    def recorded(f: dict) -> list:
        seen.append({k: np.array(v) for k, v in f.items()})
        return step.run(f)
    export.decode(encoder.run, step.run, feeds), export.decode(encoder.run, recorded, feeds)
    assert encoder.executor.step_chained and step.executor.step_chained
    same_bytes(encoder.run(feeds), encoder.executor.run(feeds))
    for f in seen:
        same_bytes(step.run(f), step.executor.run(f))
