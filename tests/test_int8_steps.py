"""onnxruntime's int8 QOperator nodes as a compiled plan replays them in the
``cpu:float32-requant`` mode (``backends/cpu/int8_steps.py``): QLinearAdd, QLinearConcat
(with and without a folded channel shuffle), QLinearGlobalAveragePool and QGemm become
bound host steps whose codes are the op function's bit for bit, and any argument they
were not built for runs the op function."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import optimize
from hwbench.models.session import session_backend
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")

SHAPE = (2, 3, 7, 7)
SHUFFLE = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15]  # 2 groups of 8


def _graph(tmp_path):
    """Quantize -> two convs (each read twice: not fused into the Add) -> QLinearAdd,
    QLinearConcat, a shuffled QLinearConcat, QLinearGlobalAveragePool, QGemm."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    p = {"sq": np.float32(0.03), "zq": np.uint8(128), "sw": np.float32(0.01),
         "zw": np.int8(0), "w1": rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8),
         "w2": rng.integers(-127, 128, (8, 3, 1, 1)).astype(np.int8),
         "sa": np.float32(0.05), "sb": np.float32(0.04), "z0": np.uint8(0),
         "sy": np.float32(0.08), "zy": np.uint8(0), "sg": np.float32(0.02),
         "wg": rng.integers(-127, 128, (5, 8)).astype(np.int8), "swg": np.float32(0.02),
         "sh": np.float32(0.1), "zh": np.uint8(100)}
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sq", "zq"], ["q"]),
        helper.make_node("QLinearConv", ["q", "sq", "zq", "w1", "sw", "zw", "sa", "z0"], ["a"],
                         pads=[1, 1, 1, 1]),
        helper.make_node("QLinearConv", ["q", "sq", "zq", "w2", "sw", "zw", "sb", "z0"], ["b"]),
        helper.make_node("QLinearAdd", ["a", "sa", "z0", "b", "sb", "z0", "sy", "zy"], ["s"],
                         domain=ms),
        helper.make_node("QLinearConcat", ["sy", "zy", "a", "sa", "z0", "b", "sb", "z0"],
                         ["cat"], axis=1, domain=ms),
        helper.make_node("QLinearConcat", ["sy", "zy", "a", "sa", "z0", "b", "sb", "z0"],
                         ["shuffled"], axis=1, domain=ms),
        helper.make_node("QLinearGlobalAveragePool", ["s", "sy", "zy", "sg", "zy"], ["g"],
                         domain=ms),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("QGemm", ["f", "sg", "zy", "wg", "swg", "zw", "", "sh", "zh"], ["y"],
                         transB=1, domain=ms),
    ]
    outs = [helper.make_tensor_value_info(n, TensorProto.UINT8, shape) for n, shape in
            (("y", [2, 5]), ("cat", [2, 16, 7, 7]), ("shuffled", [2, 16, 7, 7]))]
    graph = helper.make_graph(
        nodes, "steps", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)], outs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in p.items()])
    path = tmp_path / "steps.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid(ms, 1)]), path)
    g = optimize(load_onnx(str(path)))
    shuffled = next(n for n in g.nodes if n.outputs[0] == "shuffled")
    shuffled.attrs["gather_channels"] = SHUFFLE  # as ``shuffle_fold`` leaves ShuffleNet's
    return g


def _feeds(seed: int) -> dict:
    return {"x": np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)}


def _host_steps(ex: Executor) -> dict:
    ns = ex.plan._fn.__globals__
    return {k: (ex._steps[int(k[1:])], ns[k]) for k in ns if k[0] == "H" and k[1:].isdigit()}


def test_the_qoperator_nodes_replay_bound_and_bit_for_bit(tmp_path):
    g = _graph(tmp_path)
    ex = Executor(g, session_backend("cpu:float32-requant", threads=2))
    for seed in range(4):  # traced, then the bound steps
        want = ex.run(_feeds(seed))
        got = ex.replay(_feeds(seed))
        for a, b in zip(got, want, strict=True):
            assert a.tobytes() == b.tobytes()
    kinds = sorted(step.node.op_type for step, _ in _host_steps(ex).values())
    assert kinds == ["QGemm", "QLinearAdd", "QLinearConcat", "QLinearConcat",
                     "QLinearGlobalAveragePool"]
    cat = Executor(g, session_backend("cpu:float32-requant", threads=2)).run(_feeds(0))
    assert np.array_equal(cat[2], cat[1][:, SHUFFLE])  # the folded shuffle, applied


def test_a_bound_step_runs_the_op_function_on_other_arguments(tmp_path):
    g = _graph(tmp_path)
    be = session_backend("cpu:float32-requant", threads=2)
    ex = Executor(g, be)
    ex.replay(_feeds(0))
    add_step, add = next(v for v in _host_steps(ex).values() if v[0].node.op_type == "QLinearAdd")
    rng = np.random.default_rng(9)
    codes = [rng.integers(0, 256, (2, 8, 7, 7)).astype(np.uint8) for _ in range(2)]
    inputs = [ex._params.get(n, ex._weights.get(n)) for n in add_step.node.inputs]
    nhwc = [ChannelsLastArray(np.ascontiguousarray(c.transpose(0, 2, 3, 1))) for c in codes]
    for a, b in ((nhwc[0], nhwc[1]), (codes[0], codes[1])):  # bound, then NCHW: op function
        args = list(inputs)
        args[0], args[3] = a, b
        got = add(*args)
        want = add_step.fn(be, list(args), add_step)
        assert type(got) is type(want)
        assert be.to_numpy(got).tobytes() == be.to_numpy(want).tobytes()
    other = list(inputs)
    other[0], other[3] = nhwc
    other[6] = np.float32(0.5)  # another output scale: not what the step was built for
    got, want = add(*other), add_step.fn(be, list(other), add_step)
    assert be.to_numpy(got).tobytes() == be.to_numpy(want).tobytes()
