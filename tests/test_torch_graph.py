"""PyTorch as a whole-model peer (hwbench/harness/suites/torch_graph.py): the ONNX graph
converted to torch calls gives onnxruntime's outputs on the same graph, including the
attribute corners (asymmetric pads, Softmax before opset 13, Reshape's 0, negative Gather
indices, Split sizes), and refuses what it cannot run with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.errors import UnsupportedError
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.onnx_import import to_onnx

torch = pytest.importorskip("torch", reason="a peer (pip install 'hwbench[peers]')")
ort = pytest.importorskip("onnxruntime", reason="a peer (pip install 'hwbench[peers]')")

from hwbench.harness.suites.torch_graph import TorchGraph, TorchModelPeer  # noqa: E402


def _both(graph: Graph, feeds: dict[str, np.ndarray]) -> tuple[list, list]:
    session = ort.InferenceSession(to_onnx(graph).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return TorchGraph(graph, torch).run(feeds), session.run(None, feeds)


def _close(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_conv_net_with_asymmetric_pads_matches_onnxruntime():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((10, 4 * 3 * 3)).astype(np.float32)
    nodes = [Node("Conv", ["x", "w", "b"], ["c"], {"pads": [0, 1, 1, 0], "strides": [2, 2]}),
             Node("Relu", ["c"], ["r"]),
             Node("MaxPool", ["r"], ["m"], {"kernel_shape": [2, 2], "pads": [0, 0, 1, 1],
                                             "strides": [2, 2]}),
             Node("AveragePool", ["m"], ["a"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
             Node("Flatten", ["a"], ["f"], {"axis": 1}),
             Node("Gemm", ["f", "fc"], ["g"], {"transB": 1}),
             Node("Softmax", ["g"], ["y"])]
    graph = Graph("net", [ValueInfo("x", (2, 3, 11, 11))], [ValueInfo("y", (2, 10))],
                  {"w": w, "b": b, "fc": fc}, nodes, 11)
    _close(*_both(graph, {"x": rng.standard_normal((2, 3, 11, 11)).astype(np.float32)}))


def test_softmax_before_opset_13_normalizes_over_the_flattened_trailing_axes():
    graph = Graph("s", [ValueInfo("x", (2, 3, 4))], [ValueInfo("y", (2, 3, 4))], {},
                  [Node("Softmax", ["x"], ["y"], {"axis": 1})], 11)
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    (ours,), theirs = _both(graph, {"x": x})
    _close([ours], theirs)
    np.testing.assert_allclose(ours.reshape(2, -1).sum(1), 1.0, rtol=1e-5)


def test_tensor_ops_reshape_zero_gather_negative_split_and_layer_norm():
    rng = np.random.default_rng(2)
    table = rng.standard_normal((7, 6)).astype(np.float32)
    nodes = [Node("Gather", ["table", "ids"], ["e"]),                    # (2, 3, 6)
             Node("LayerNormalization", ["e", "g", "beta"], ["n"], {"axis": -1}),
             Node("Reshape", ["n", "shape"], ["r"]),                     # (2, 3, 2, 3)
             Node("Split", ["r", "sizes"], ["s1", "s2"], {"axis": 3}),
             Node("Transpose", ["s2"], ["t"], {"perm": [0, 2, 1, 3]}),
             Node("Mul", ["s1", "s1"], ["sq"])]
    graph = Graph("t", [ValueInfo("ids", (2, 3), np.dtype(np.int64))],
                  [ValueInfo("t", (2, 2, 3, 2)), ValueInfo("sq", (2, 3, 2, 1))],
                  {"table": table, "g": np.ones(6, np.float32) * 2,
                   "beta": np.full(6, 0.5, np.float32),
                   "shape": np.array([0, 0, 2, 3], np.int64),
                   "sizes": np.array([1, 2], np.int64)}, nodes, 17)
    ids = np.array([[0, -1, 3], [6, -7, 2]], np.int64)
    _close(*_both(graph, {"ids": ids}))


def test_ops_without_a_conversion_and_int8_are_refused_with_the_reason():
    graph = Graph("q", [ValueInfo("x", (2, 2))], [ValueInfo("y", (2, 2))], {},
                  [Node("NoSuchOp", ["x"], ["y"])], 17)
    with pytest.raises(UnsupportedError, match="no PyTorch conversion for NoSuchOp"):
        TorchGraph(graph, torch)
    with pytest.raises(UnsupportedError, match="fp32 only"):
        TorchModelPeer(threads=1).session(object(), "int8")


def test_the_peer_records_its_build_threads_and_mode():
    info = TorchModelPeer(threads=1).info()
    assert info["threads"] == 1 and info["torch"] == torch.__version__
    assert info["torch_build"] in ("CPU",) or info["torch_build"].startswith(("CUDA", "ROCm"))
    assert "eager" in info["mode"]


def test_the_lenet_model_matches_onnxruntime_on_the_same_weights():
    import hwbench

    model = hwbench.load_model("lenet", batch=4)
    x = np.random.default_rng(3).standard_normal(model.input_shapes[model.inputs[0]])
    _close(*_both(model.graph, {model.inputs[0]: x.astype(np.float32)}))


def test_vit_b16_runs_at_batch_8_built_at_that_batch_with_the_same_weights():
    # its class token is folded into a batch-1 constant: with_batch refuses, so the suite
    # builds the graph at batch 8 (same seeded weights: sample 0 gives batch 1's output)
    from hwbench.harness.suites import model_suite as M

    one = M.load_case_model(M.ModelCase("vit_b16", 1, "fp32"))
    eight = M.load_case_model(M.ModelCase("vit_b16", 8, "fp32"))
    assert eight.batch == 8
    x = np.random.default_rng(4).standard_normal((8, 3, 224, 224)).astype(np.float32)
    (first,) = TorchGraph(one.graph, torch).run({one.inputs[0]: x[:1]})
    (all8,) = TorchGraph(eight.graph, torch).run({eight.inputs[0]: x})
    np.testing.assert_allclose(all8[:1], first, rtol=1e-4, atol=1e-5)


def _lstm_graph(rng, hidden: int = 5, features: int = 3, steps: int = 4, batch: int = 3):
    """One ONNX LSTM with ``sequence_lens`` and initial states, random weights."""
    def weights(*shape):
        return rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    nodes = [Node("LSTM", ["x", "W", "R", "B", "lengths", "h0", "c0"], ["y", "y_h", "y_c"],
                  {"hidden_size": hidden})]
    return Graph("lstm", [ValueInfo("x", (steps, batch, features)),
                          ValueInfo("lengths", (batch,), np.dtype(np.int32)),
                          ValueInfo("h0", (1, batch, hidden)), ValueInfo("c0", (1, batch, hidden))],
                 [ValueInfo("y", (steps, 1, batch, hidden)), ValueInfo("y_h", (1, batch, hidden)),
                  ValueInfo("y_c", (1, batch, hidden))],
                 {"W": weights(1, 4 * hidden, features), "R": weights(1, 4 * hidden, hidden),
                  "B": weights(1, 8 * hidden)}, nodes, 13)


def test_lstm_with_sequence_lengths_and_initial_states_matches_onnxruntime():
    # ONNX gates (i, o, f, c) into torch.nn.LSTM's (i, f, g, o): a wrong order fails here;
    # lengths 4, 2, 1: zeros past each end and the last valid step's states
    rng = np.random.default_rng(5)
    graph = _lstm_graph(rng)
    feeds = {"x": rng.standard_normal((4, 3, 3)).astype(np.float32),
             "lengths": np.array([4, 2, 1], np.int32),
             "h0": rng.standard_normal((1, 3, 5)).astype(np.float32),
             "c0": rng.standard_normal((1, 3, 5)).astype(np.float32)}
    ours, theirs = _both(graph, feeds)
    _close(ours, theirs)
    assert np.all(ours[0][2:, :, 2] == 0.0) and np.any(ours[0][1, :, 1] != 0.0)
    reversed_graph = _lstm_graph(np.random.default_rng(5))
    reversed_graph.nodes[0].attrs["direction"] = "reverse"
    with pytest.raises(UnsupportedError, match="LSTM other than one forward layer"):
        TorchGraph(reversed_graph, torch)


def test_nearest_resize_elu_and_squeeze_match_onnxruntime():
    nodes = [Node("Elu", ["x"], ["e"], {"alpha": 0.7}),
             Node("Resize", ["e", "", "scales"], ["r"], {"mode": "nearest"}),
             Node("Squeeze", ["r", "axes"], ["y"])]
    graph = Graph("up", [ValueInfo("x", (2, 1, 3, 4))], [ValueInfo("y", (2, 6, 8))],
                  {"scales": np.array([1, 1, 2, 2], np.float32),
                   "axes": np.array([1], np.int64)}, nodes, 13)
    x = np.random.default_rng(6).standard_normal((2, 1, 3, 4)).astype(np.float32)
    _close(*_both(graph, {"x": x}))
    graph.nodes[1].attrs["mode"] = "linear"
    with pytest.raises(UnsupportedError, match="Resize other than nearest"):
        TorchGraph(graph, torch)
