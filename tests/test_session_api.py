"""The public model API: ``hwbench.load_model``, ``Model`` and ``hwbench.Session``."""

from __future__ import annotations

import numpy as np
import pytest

import hwbench
from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.models import zoo

pytest.importorskip("onnx", reason="the zoo's model files ship in the onnx wheel")

SMALL = "shufflenet"  # the fastest zoo model: 0.14 GFLOP


@pytest.fixture(scope="module")
def model():
    return hwbench.load_model(SMALL).randomized(seed=3)


@pytest.fixture(scope="module")
def session(model):
    return hwbench.Session(model, backend="numpy")


@pytest.fixture
def feeds(model):
    x = np.random.default_rng(0).standard_normal(model.input_shapes[model.inputs[0]],
                                                 dtype=np.float32)
    return {model.inputs[0]: x}


def test_load_model_describes_inputs_and_outputs(model):
    assert model.name == SMALL
    assert model.inputs == ["gpu_0/data_0"]
    assert model.input_shapes == {"gpu_0/data_0": (1, 3, 224, 224)}
    assert model.outputs == ["gpu_0/softmax_1"]
    assert model.batch == 1


def test_session_describes_inputs_like_onnxruntime(session):
    (arg,) = session.get_inputs()
    assert (arg.name, arg.shape, arg.type) == ("gpu_0/data_0", [1, 3, 224, 224],
                                               "tensor(float)")
    (out,) = session.get_outputs()
    assert (out.name, out.shape) == ("gpu_0/softmax_1", [1, 1000])


def test_session_run_returns_outputs_in_graph_order(session, feeds):
    outs = session.run(feeds)
    assert isinstance(outs, list) and len(outs) == 1
    (probs,) = outs
    assert probs.shape == (1, 1000) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
    (again,) = session.run(feeds, output_names=["gpu_0/softmax_1"])
    np.testing.assert_array_equal(again, probs)
    assert set(session.last_timings) == {"transfer_in_s", "compute_s", "transfer_out_s"}


def test_profiled_session_times_every_op_type(model, feeds):
    sess = hwbench.Session(model, backend="numpy", profile=True, time_transfers=True)
    sess.run(feeds)
    assert set(sess.op_seconds) == set(sess.graph.op_counts())
    assert all(t > 0 for t in sess.op_seconds.values())
    assert sum(sess.op_seconds.values()) <= sess.last_timings["compute_s"]


def test_to_onnx_runs_in_onnxruntime_with_the_same_weights(model, session, feeds):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference here")
    proto = model.to_onnx()
    import onnx

    onnx.checker.check_model(proto)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    ref_sess = ort.InferenceSession(proto.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
    (ref,) = ref_sess.run(None, feeds)
    (got,) = session.run(feeds)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4


@pytest.mark.parametrize(("make_feeds", "pattern"), [
    (lambda x: {}, r"missing input\(s\) \['gpu_0/data_0'\]"),
    (lambda x: {"gpu_0/data_0": x, "extra": x}, r"unknown input\(s\) \['extra'\]"),
    (lambda x: {"gpu_0/data_0": x[:, :2]}, r"input 'gpu_0/data_0' must have shape"),
    (lambda x: {"gpu_0/data_0": x.tolist()}, r"input 'gpu_0/data_0' must be a NumPy array"),
    (lambda x: [x], r"argument 'feeds' must be a dict"),
])
def test_bad_feeds_raise_argument_error_naming_the_input(session, feeds, make_feeds, pattern):
    with pytest.raises(ArgumentError, match=pattern):
        session.run(make_feeds(feeds["gpu_0/data_0"]))


def test_wrong_dtype_feed_raises_dtype_error_naming_the_input(session, feeds):
    x = feeds["gpu_0/data_0"].astype(np.float64)
    with pytest.raises(DTypeError, match=r"input 'gpu_0/data_0' must have dtype float32"):
        session.run({"gpu_0/data_0": x})


def test_unknown_output_name_is_refused(session, feeds):
    with pytest.raises(ArgumentError, match="unknown output"):
        session.run(feeds, output_names=["nope"])


@pytest.mark.parametrize("names", [None, ["gpu_0/softmax_1"]])
def test_onnxruntime_argument_order_is_refused_saying_feeds_go_first(session, feeds, names):
    # onnxruntime's run(output_names, feeds); hwbench's Session.run takes feeds first
    with pytest.raises(ArgumentError, match=r"feeds first: run\(feeds, output_names"):
        session.run(names, feeds)


def test_unknown_precision_is_refused_naming_the_argument(model):
    with pytest.raises(UnsupportedError, match="argument 'precision'.*fp16"):
        hwbench.Session(model, backend="numpy", precision="fp16")


def test_unknown_model_name_lists_the_zoo():
    with pytest.raises(ArgumentError, match="alexnet"):
        hwbench.load_model("no_such_model")


def test_backend_options_need_a_backend_name(model):
    with pytest.raises(ArgumentError, match="backend options"):
        hwbench.Session(model, backend=hwbench.get_backend("numpy"), threads=1)


@pytest.fixture(scope="module")
def alexnets():
    """AlexNet at batch 1 and, through load_model(batch=4), at batch 4: same weights."""
    m1 = hwbench.load_model("alexnet").randomized(seed=5)
    m4 = hwbench.load_model("alexnet", batch=4).randomized(seed=5)
    return m1, m4


def test_alexnet_batch4_has_the_batch1_weights(alexnets):
    m1, m4 = alexnets
    assert m4.input_shapes == {"data_0": (4, 3, 224, 224)}
    same = [k for k, v in m1.graph.initializers.items() if v.dtype == np.float32]
    assert len(same) == 16
    assert all(np.array_equal(m1.graph.initializers[k], m4.graph.initializers[k]) for k in same)


@pytest.mark.parametrize("backend_name", ["numpy", "cpu"])
def test_alexnet_batch4_equals_four_single_images(alexnets, backend_name):
    ok, why = hwbench.backends.backend_class(backend_name).available()
    if not ok:
        pytest.skip(f"backend {backend_name} unavailable: {why}")
    m1, m4 = alexnets
    be = hwbench.get_backend(backend_name)
    x = np.random.default_rng(2).standard_normal((4, 3, 224, 224), dtype=np.float32)
    (batched,) = hwbench.Session(m4, backend=be).run({"data_0": x})
    s1 = hwbench.Session(m1, backend=be)
    singles = np.concatenate([s1.run({"data_0": x[i:i + 1]})[0] for i in range(4)])
    assert batched.shape == (4, 1000)
    assert np.abs(batched - singles).max() / np.abs(singles).max() < 1e-5
    # each row is its own image's answer, not a mix: rows differ from each other
    assert np.abs(singles[0] - singles[1]).max() > 1e-3 * np.abs(singles).max()


def test_shufflenet_batch2_rewrites_its_channel_shuffles():
    """ShuffleNet reshapes to 5-D (1, 4, C/4, H, W), transposes and reshapes back 16 times:
    every one of those targets must follow the new batch."""
    m1 = hwbench.load_model("shufflenet").randomized(seed=4)
    m2 = m1.with_batch(2)
    be = hwbench.get_backend("numpy")
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224), dtype=np.float32)
    (batched,) = hwbench.Session(m2, backend=be).run({m1.inputs[0]: x})
    s1 = hwbench.Session(m1, backend=be)
    singles = np.concatenate([s1.run({m1.inputs[0]: x[i:i + 1]})[0] for i in range(2)])
    assert np.abs(batched - singles).max() / np.abs(singles).max() < 1e-5


def test_zoo_reference_input_is_what_onnx_feeds():
    x = zoo.reference_input((1, 3, 2, 2))
    np.testing.assert_array_equal(x.ravel(), np.arange(12, dtype=np.float32) / 12)


def test_cpu_session_reorders_conv_weights_once():
    """The weights are uploaded once per session, so the cpu backend's per-array cache of
    reordered conv weights is filled by the first run and only reused afterwards."""
    ok, why = hwbench.backends.backend_class("cpu").available()
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")
    be = hwbench.get_backend("cpu")
    if getattr(be, "frozen", None) is None:
        pytest.skip("this cpu backend keeps no packed-weight cache")
    m = hwbench.load_model("squeezenet")
    sess = hwbench.Session(m, backend=be)
    x = {m.inputs[0]: zoo.reference_input(m.input_shapes[m.inputs[0]])}
    sess.run(x)
    packed = be.frozen.snapshot()
    assert packed, "no conv weights were reordered and cached"
    sess.run(x)
    again = be.frozen.snapshot()
    assert again.keys() == packed.keys()
    assert all(again[k] is packed[k] for k in packed)


def test_randomize_weights_is_seeded_and_keeps_variances_positive():
    graph = hwbench.load_model("resnet50").graph
    before = {k: v.copy() for k, v in graph.initializers.items()}
    a, b = zoo.randomize_weights(graph, 7), zoo.randomize_weights(graph, 7)
    c = zoo.randomize_weights(graph, 8)
    floats = [k for k, v in graph.initializers.items() if v.dtype == np.float32]
    assert all(np.array_equal(a.initializers[k], b.initializers[k]) for k in floats)
    assert all(not np.array_equal(a.initializers[k], c.initializers[k]) for k in floats)
    variances = [n.inputs[4] for n in graph.nodes if n.op_type == "BatchNormalization"]
    assert len(variances) == 53
    assert all(a.initializers[v].min() > 0 for v in variances)
    assert all(np.array_equal(graph.initializers[k], before[k]) for k in before)  # untouched


def test_nan_feed_is_refused_naming_the_input(session, feeds):
    """Sessions skip per-kernel NaN screening of activations; the feeds are screened."""
    name = next(iter(feeds))
    bad = feeds[name].copy()
    bad.flat[3] = np.nan
    with pytest.raises(ArgumentError, match=repr(name)):
        session.run({**feeds, name: bad})
    assert session.backend.check_finite is False
