"""``shuffle_fold.fold_channel_shuffles``: a channel shuffle (Reshape -> Transpose ->
Reshape) folded into the convs that read it, exactly, on every backend; left alone where
the shuffled value has a reader that cannot absorb it; the zoo's ShuffleNet with
``densify=True``."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.graph import Executor, optimize
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.shuffle_fold import fold_channel_shuffles


def _conv(x, w, b, y, group=1, pads=0):
    return Node("Conv", [x, w, b], [y], {"group": group, "pads": [pads] * 4,
                                         "kernel_shape": None})


def _shuffle(x, y, n, groups, c, h, w, perm=(0, 2, 1, 3, 4)):
    return [Node("Reshape", [x, f"{y}_split_shape"], [f"{y}_split"]),
            Node("Transpose", [f"{y}_split"], [f"{y}_t"], {"perm": list(perm)}),
            Node("Reshape", [f"{y}_t", f"{y}_shape"], [y])], {
        f"{y}_split_shape": np.array([n, groups, c // groups, h, w], np.int64),
        f"{y}_shape": np.array([n, c, h, w], np.int64)}


def _graph(rng, tail, n=2, c=12, hw=5, groups=3, outputs=("out",), extra_out=()):
    """x -> 1x1 conv -> Relu -> shuffle(groups) -> ``tail`` (nodes reading "s")."""
    inits = {"w0": rng.standard_normal((c, c, 1, 1)), "b0": rng.standard_normal(c)}
    nodes = [_conv("x", "w0", "b0", "c0"), Node("Relu", ["c0"], ["r0"])]
    shuffle, consts = _shuffle("r0", "s", n, groups, c, hw, hw)
    nodes += shuffle
    inits.update(consts)
    more_nodes, more_inits = tail(rng, c)
    nodes += more_nodes
    inits.update(more_inits)
    for node in nodes:  # kernel_shape from the weight
        if node.op_type == "Conv":
            node.attrs["kernel_shape"] = list(inits[node.inputs[1]].shape[2:])
            node.attrs["pads"] = [node.attrs["kernel_shape"][0] // 2] * 4
    inits = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in inits.items()}
    return Graph("shuffle", [ValueInfo("x", (n, c, hw, hw))],
                 [ValueInfo(o, (None,)) for o in (*outputs, *extra_out)], inits, nodes, 13)


def _depthwise_then_dense(rng, c):
    return ([_conv("s", "wd", "bd", "d", group=c), Node("Clip", ["d"], ["dr"],
                                                        {"min": 0.0, "max": 6.0}),
             _conv("dr", "w1", "b1", "out")],
            {"wd": rng.standard_normal((c, 1, 3, 3)), "bd": rng.standard_normal(c),
             "w1": rng.standard_normal((7, c, 1, 1)), "b1": rng.standard_normal(7)})


def _two_dense_readers(rng, c):
    return ([_conv("s", "w1", "b1", "a"), _conv("s", "w2", "b2", "b"),
             Node("Add", ["a", "b"], ["out"])],
            {"w1": rng.standard_normal((6, c, 3, 3)), "b1": rng.standard_normal(6),
             "w2": rng.standard_normal((6, c, 1, 1)), "b2": rng.standard_normal(6)})


def _grouped_reader(rng, c):
    return ([_conv("s", "wg", "bg", "out", group=3)],
            {"wg": rng.standard_normal((9, c // 3, 1, 1)), "bg": rng.standard_normal(9)})


def _add_reader(rng, c):
    return ([_conv("s", "w1", "b1", "a"), Node("Add", ["a", "s"], ["out"])],
            {"w1": rng.standard_normal((c, c, 1, 1)), "b1": rng.standard_normal(c)})


def _unfolded(graph, feeds):
    """The graph as written (no passes), on numpy: what every folded run must equal."""
    return Executor(graph, get_backend("numpy")).run(feeds)


def _counts(graph):
    return graph.op_counts()


@pytest.mark.parametrize("tail", [_depthwise_then_dense, _two_dense_readers],
                         ids=["depthwise-clip-dense", "two-dense-readers"])
def test_shuffle_folds_into_convs_with_the_same_results(backend, rng, tail):
    graph = _graph(rng, tail)
    x = rng.standard_normal((2, 12, 5, 5)).astype(np.float32)
    folded = optimize(graph)
    assert _counts(graph)["Transpose"] == 1
    assert _counts(folded)["Transpose"] == 0 and _counts(folded)["Reshape"] == 0
    assert _counts(folded)["Conv"] == _counts(graph)["Conv"]
    (want,) = _unfolded(graph, {"x": x})
    (got,) = Executor(folded, backend).run({"x": x})
    assert_close(got, want, 12 * 9, backend=backend)


@pytest.mark.parametrize("tail", [_add_reader, _grouped_reader], ids=["add", "grouped"])
def test_shuffle_stays_where_a_reader_cannot_absorb_it(rng, tail):
    graph = _graph(rng, tail)
    assert _counts(fold_channel_shuffles(graph.copy()))["Transpose"] == 1
    folded = optimize(graph)  # what is left becomes one Gather of the channels
    assert _counts(folded)["Gather"] == 1 and "Reshape" not in _counts(folded)
    assert "Transpose" not in _counts(folded)
    x = rng.standard_normal((2, 12, 5, 5)).astype(np.float32)
    (want,) = _unfolded(graph, {"x": x})
    (got,) = Executor(folded, get_backend("numpy")).run({"x": x})
    assert_close(got, want, 12)


def test_shuffle_stays_when_its_value_is_a_graph_output(rng):
    graph = _graph(rng, _depthwise_then_dense, extra_out=("s",))
    assert _counts(fold_channel_shuffles(graph.copy()))["Transpose"] == 1
    folded = optimize(graph)
    assert _counts(folded)["Gather"] == 1
    x = rng.standard_normal((2, 12, 5, 5)).astype(np.float32)
    for got, want in zip(Executor(folded, get_backend("numpy")).run({"x": x}),
                         _unfolded(graph, {"x": x}), strict=True):
        assert_close(got, want, 12 * 9)


def test_a_transpose_that_moves_the_batch_is_no_shuffle(rng):
    graph = _graph(rng, _depthwise_then_dense, n=3, groups=3)
    graph.nodes[3].attrs["perm"] = [1, 0, 2, 3, 4]  # (N, g) swapped: not a channel shuffle
    folded = fold_channel_shuffles(graph.copy())
    assert _counts(folded)["Transpose"] == 1


def test_grouped_reader_becomes_dense_with_densify(backend, rng):
    graph = _graph(rng, _grouped_reader)
    folded = fold_channel_shuffles(graph.copy(), densify=True)  # before optimize: a Gather
    assert _counts(folded)["Transpose"] == 0
    conv = next(n for n in folded.nodes if n.outputs == ["out"])
    assert conv.attrs.get("group", 1) == 1
    x = rng.standard_normal((2, 12, 5, 5)).astype(np.float32)
    (want,) = _unfolded(graph, {"x": x})
    (got,) = Executor(folded, backend).run({"x": x})
    assert_close(got, want, 12, backend=backend)


def test_zoo_shufflenet_folds_every_shuffle_with_the_same_results(rng, monkeypatch):
    from hwbench.graph import passes
    from hwbench.models import load_model
    monkeypatch.setattr(passes, "shuffles_as_gathers", lambda g: g)  # keep them 3 nodes
    graph = optimize(load_model("shufflenet", batch=1).graph)
    # The zoo file's weights make every class equally likely: random ones test the fold.
    for name, value in list(graph.initializers.items()):
        if value.dtype == np.float32 and value.ndim >= 1:
            graph.initializers[name] = (rng.standard_normal(value.shape) * 0.3).astype(
                np.float32)
    # The logits are the output (Softmax after random weights may saturate).
    softmax = next(n for n in graph.nodes if n.op_type == "Softmax")
    graph.nodes.remove(softmax)
    graph.outputs = [ValueInfo(softmax.inputs[0], (1, 1000))]
    assert _counts(graph)["Transpose"] == 16
    folded = fold_channel_shuffles(graph.copy(), densify=True)
    assert _counts(folded)["Transpose"] == 0
    assert _counts(folded)["Reshape"] == _counts(graph)["Reshape"] - 32
    assert _counts(fold_channel_shuffles(graph.copy()))["Transpose"] == 16  # grouped readers
    feeds = {graph.inputs[0].name: rng.standard_normal(graph.inputs[0].shape).astype(
        np.float32)}
    cpu = get_backend("cpu")
    (want,) = Executor(graph, cpu).run(feeds)
    (got,) = Executor(folded, cpu).run(feeds)
    assert float(np.std(want)) > 0
    assert_close(got, want, 544)


def test_torchvision_shufflenet_v2_folds_the_shuffles_before_strided_units(tmp_path):
    """ShuffleNet v2 splits most shuffled values in two (Slice: one half goes on
    unchanged, so they stay); the shuffle ending each stage feeds the next stage's
    strided unit (a depthwise and a 1x1 conv) or the last 1x1 conv, and folds.
    test_torch_exports checks the model's results against onnxruntime on every backend."""
    import sys
    import types

    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install '.[peers]')")
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    models = pytest.importorskip("torchvision.models", reason="needs torchvision")
    from torch_exports_common import export

    from hwbench.models import load_model

    model = models.shufflenet_v2_x0_5(weights=None).eval()
    path = export(torch, model, (torch.zeros(1, 3, 64, 64),), str(tmp_path / "s.onnx"),
                  "torchscript", ["input"])
    graph = load_model(path).graph
    assert _counts(graph)["Transpose"] == 16
    assert _counts(fold_channel_shuffles(graph.copy()))["Transpose"] == 13
    optimized = _counts(optimize(graph))  # the 13 left are one Gather each
    assert "Transpose" not in optimized and optimized["Gather"] == 13


def _codes_shuffle_graph(rng, n=2, c=12, hw=5, groups=2) -> Graph:
    """x -> QuantizeLinear -> QLinearConv (channels-last codes on cpu) -> shuffle of the
    codes -> two channel Slices -> QLinearConcat -> DequantizeLinear: ShuffleNet's int8
    block, whose shuffle Slices read (no fold)."""
    w = rng.integers(-100, 100, (c, c, 1, 1), dtype=np.int8)
    inits = {"s": np.float32(0.05), "z": np.uint8(120), "ws": np.float32(0.01),
             "wz": np.int8(0), "w": w, "ys": np.float32(0.06), "yz": np.uint8(125),
             "a": np.array([0], np.int64), "m": np.array([c // 2], np.int64),
             "e": np.array([c], np.int64), "ax": np.array([1], np.int64)}
    shuffle, consts = _shuffle("q1", "sh", n, groups, c, hw, hw)
    inits.update(consts)
    nodes = [Node("QuantizeLinear", ["x", "s", "z"], ["q0"]),
             Node("QLinearConv", ["q0", "s", "z", "w", "ws", "wz", "ys", "yz"], ["q1"],
                  {"kernel_shape": [1, 1]}),
             *shuffle,
             Node("Slice", ["sh", "a", "m", "ax"], ["lo"]),
             Node("Slice", ["sh", "m", "e", "ax"], ["hi"]),
             Node("QLinearConcat", ["ys", "yz", "hi", "ys", "yz", "lo", "ys", "yz"], ["cat"],
                  {"axis": 1}, domain="com.microsoft"),
             Node("DequantizeLinear", ["cat", "ys", "yz"], ["out"])]
    return Graph("codes_shuffle", [ValueInfo("x", (n, c, hw, hw))], [ValueInfo("out", (None,))],
                 inits, nodes, 13)


@pytest.mark.parametrize("backend", ["numpy", "cpu", "cpu:float32-requant"])
def test_a_shuffle_of_codes_slices_read_becomes_one_gather(backend):
    from hwbench.models.session import session_backend

    graph = _codes_shuffle_graph(np.random.default_rng(4))
    optimized = optimize(graph)
    assert "Transpose" not in optimized.op_counts() and optimized.op_counts()["Gather"] == 1
    x = np.random.default_rng(5).standard_normal((2, 12, 5, 5)).astype(np.float32)
    want = Executor(graph, session_backend(backend)).run({"x": x})[0]  # the three nodes
    session = Executor(optimized, session_backend(backend))  # cpu: channels-last codes
    for seed in range(4):  # traced, fast paths built, replayed; a new input
        if seed == 3:
            x = np.random.default_rng(6).standard_normal((2, 12, 5, 5)).astype(np.float32)
            want = Executor(graph, session_backend(backend)).run({"x": x})[0]
        assert session.replay({"x": x})[0].tobytes() == want.tobytes()
    if backend != "numpy":  # the Gather and both Slices replay as channel copies
        ns = session.plan._fn.__globals__
        fast = [ns[k].kernel.__name__ for k in ns if k.startswith("K") and ns[k].fast()]
        assert sorted(n for n in fast if n in ("_gather", "_slice")) == \
            ["_gather", "_slice", "_slice"]


def _concat_shuffle_graph(rng, n=2, c=6, hw=5) -> Graph:
    """x -> QuantizeLinear -> two QLinearConvs (output scales apart) -> QLinearConcat ->
    channel shuffle -> two Slices -> QLinearConcat -> DequantizeLinear: ShuffleNet v2's
    unit end, whose shuffle reads a concat."""
    inits = {"s": np.float32(0.05), "z": np.uint8(0), "ws": np.float32(0.01),
             "wz": np.int8(0), "w1": rng.integers(-100, 100, (c, c, 1, 1), dtype=np.int8),
             "w2": rng.integers(-100, 100, (c, c, 1, 1), dtype=np.int8),
             "ys": np.float32(0.06), "ys2": np.float32(0.037), "yz": np.uint8(0),
             "a": np.array([0], np.int64), "m": np.array([c], np.int64),
             "e": np.array([2 * c], np.int64), "ax": np.array([1], np.int64)}
    shuffle, consts = _shuffle("cat", "sh", n, 2, 2 * c, hw, hw)
    inits.update(consts)
    conv = [Node("QLinearConv", ["q0", "s", "z", f"w{i}", "ws", "wz", ys, "yz"], [f"q{i}"],
                 {"kernel_shape": [1, 1]}) for i, ys in ((1, "ys"), (2, "ys2"))]
    nodes = [Node("QuantizeLinear", ["x", "s", "z"], ["q0"]), *conv,
             Node("QLinearConcat", ["ys", "yz", "q1", "ys", "yz", "q2", "ys2", "yz"],
                  ["cat"], {"axis": 1}, domain="com.microsoft"),
             *shuffle,
             Node("Slice", ["sh", "a", "m", "ax"], ["lo"]),
             Node("Slice", ["sh", "m", "e", "ax"], ["hi"]),
             Node("QLinearConcat", ["ys", "yz", "hi", "ys", "yz", "lo", "ys", "yz"], ["c2"],
                  {"axis": 1}, domain="com.microsoft"),
             Node("DequantizeLinear", ["c2", "ys", "yz"], ["out"])]
    return Graph("concat_shuffle", [ValueInfo("x", (n, c, hw, hw))],
                 [ValueInfo("out", (None,))], inits, nodes, 13)


@pytest.mark.parametrize("backend", ["numpy", "cpu", "cpu:float32-requant"])
def test_a_shuffle_of_a_concat_goes_into_the_concat(backend):
    """concat_shuffles: the Gather becomes the concat's gather_channels, the same codes;
    cpu:float32-requant writes each input to its interleaved channels (one reorder
    each, the second requantized), the same codes as concatenating then shuffling."""
    from hwbench.models.session import session_backend

    graph = _concat_shuffle_graph(np.random.default_rng(7))
    optimized = optimize(graph)
    counts = optimized.op_counts()
    assert "Gather" not in counts and "Transpose" not in counts
    cats = [n for n in optimized.nodes if n.op_type == "QLinearConcat"]
    assert [len(n.attrs.get("gather_channels", ())) for n in cats] == [12, 0]
    be = session_backend(backend)
    session = Executor(optimized, be)
    for seed in range(3):  # traced, then replayed; a new input
        x = np.random.default_rng(8 + seed // 2).standard_normal((2, 6, 5, 5))
        x = x.astype(np.float32)
        want = Executor(graph, session_backend(backend)).run({"x": x})[0]
        assert session.replay({"x": x})[0].tobytes() == want.tobytes()
    if backend == "cpu:float32-requant":
        interleaved = [k for k in be._primitives if k[0] == "requant-into" and k[-2] == 2]
        assert len(interleaved) == 2
    if backend == "cpu":  # the exact table's output shuffled by the plan's channel copy
        assert any(k[0] == "channel-copier" for k in be._primitives)
