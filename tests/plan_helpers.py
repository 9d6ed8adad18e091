"""What the plan and chained-run tests share: the plan's prepared calls, outputs checked
byte for byte, a one-input session's seeded feeds, and a small squeeze-and-excitation
graph."""

from __future__ import annotations

import numpy as np

import hwbench


def prepared(sess: hwbench.Session) -> list:
    """The prepared kernel calls of the session's plan, in the plan's order."""
    ns = sess.executor.plan._fn.__globals__
    return [ns[k] for k in sorted((k for k in ns if k.startswith("K")), key=lambda k: int(k[1:]))]


def run_both(sess: hwbench.Session, feeds: dict) -> None:
    """The plan's outputs against the normal path's, byte for byte."""
    expected = sess.executor.run(feeds)
    same_bytes(sess.run(feeds), expected)


def same_bytes(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Every output of the same dtype, shape and bytes."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


def one_input_feeds(sess: hwbench.Session, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard normal float32 feeds for a one-input session's input."""
    v = sess.graph.inputs[0]
    x = np.random.default_rng(seed).standard_normal(tuple(v.shape)).astype(np.float32)
    return {v.name: x}


def se_model(path, tail: list, out_channels: int = 24) -> hwbench.Model:
    """Conv -> c1 (blocked, 40 channels, 20x20) -> GlobalAveragePool -> 1x1 Conv ->
    Sigmoid -> g; Mul(c1, g) -> m; then ``tail``'s nodes, ending in y (``out_channels``
    of 20x20; w3, (24, 40, 1, 1), is there for a tail's 1x1 conv)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c1"], ["p"]),
        helper.make_node("Conv", ["p", "w2", "b2"], ["c2"]),
        helper.make_node("Sigmoid", ["c2"], ["g"]),
        helper.make_node("Mul", ["c1", "g"], ["m"]),
        *(helper.make_node(*n) for n in tail),
    ]
    graph = helper.make_graph(
        nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_channels, 20, 20])],
        [init("w1", (40, 8, 3, 3)), init("b1", (40,)), init("w2", (40, 40, 1, 1)),
         init("b2", (40,)), init("w3", (24, 40, 1, 1))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(path))
    return hwbench.load_model(str(path))
