"""ChannelAffine: DenseNet's BatchNormalization (Mul, Add by per-channel constants) and
Relu before a conv as one node (``graph/channel_affine_fusion.py``) on backends that run
it in one pass (opencl's ``channel_affine``), the same values as the ops."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from backend_marks import needs_backend
from onnx import TensorProto, helper, numpy_helper

from hwbench.backends import get_backend
from hwbench.graph.channel_affine_fusion import fuse_channel_affine
from hwbench.graph.executor import Executor
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import optimize
from hwbench.models.session import Session

needs_opencl = needs_backend("opencl")
SHAPE = (2, 6, 5, 7)  # 35 pixels a plane: four float8 blocks and a tail of three


def _model(tmp_path, tail: str = "relu", extra_output: str = "") -> str:
    """x -> Conv -> Concat with x -> Mul (scale) -> Add (shift) -> [Relu] -> Conv 1x1."""
    rng = np.random.default_rng(7)
    params = {"w0": rng.standard_normal((6, 6, 3, 3)).astype(np.float32) * 0.2,
              "scale": rng.uniform(0.5, 2, (12, 1, 1)).astype(np.float32),
              "shift": rng.uniform(-1, 1, (1, 12, 1, 1)).astype(np.float32),
              "w1": rng.standard_normal((4, 12, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["x", "a"], ["c"], axis=1),
             helper.make_node("Mul", ["scale", "c"], ["m"]),
             helper.make_node("Add", ["m", "shift"], ["b"])]
    last = "b"
    if tail == "relu":
        nodes.append(helper.make_node("Relu", ["b"], ["r"]))
        last = "r"
    nodes.append(helper.make_node("Conv", [last, "w1"], ["y"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 4, 5, 7))]
    if extra_output:
        outputs.append(helper.make_tensor_value_info(extra_output, TensorProto.FLOAT,
                                                     (2, 12, 5, 7)))
    graph = helper.make_graph(
        nodes, "bn_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        outputs, [numpy_helper.from_array(v, k) for k, v in params.items()])
    path = tmp_path / f"bn_{tail}_{extra_output}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _x(seed: int) -> dict:
    return {"x": np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)}


@pytest.mark.parametrize("tail", ["relu", "none"])
def test_the_chain_becomes_one_node_that_the_ops_run_elsewhere(tmp_path, tail):
    path = _model(tmp_path, tail)
    fused = fuse_channel_affine(optimize(load_onnx(path)))
    ops = [n.op_type for n in fused.nodes]
    assert ops.count("ChannelAffine") == 1 and not {"Mul", "Add", "Relu"} & set(ops)
    node = next(n for n in fused.nodes if n.op_type == "ChannelAffine")
    assert node.attrs["relu"] == int(tail == "relu") and node.inputs[2]
    for backend in ("numpy", "cpu"):  # no channel_affine there: the ops, bit for bit
        want = Executor(optimize(load_onnx(path)), get_backend(backend)).run(_x(1))[0]
        got = Executor(fused, get_backend(backend)).run(_x(1))[0]
        assert got.tobytes() == want.tobytes()


def test_a_value_read_twice_ends_the_chain(tmp_path):
    """The Mul's product a graph output too: nothing fused (a lone Mul saves nothing); the
    Add's: the Mul and Add fused, writing it, the Relu left as it is."""
    fused = fuse_channel_affine(optimize(load_onnx(_model(tmp_path, "relu", "m"))))
    assert "ChannelAffine" not in {n.op_type for n in fused.nodes}
    fused = fuse_channel_affine(optimize(load_onnx(_model(tmp_path, "relu", "b"))))
    node = next(n for n in fused.nodes if n.op_type == "ChannelAffine")
    assert node.outputs == ["b"] and node.attrs["relu"] == 0
    assert [n.op_type for n in fused.nodes].count("Relu") == 1


def test_only_backends_that_fuse_it_get_the_node(tmp_path):
    path = _model(tmp_path)
    assert "ChannelAffine" not in {n.op_type for n in Session(path, "numpy").graph.nodes}


@needs_opencl
def test_opencl_runs_the_node_in_one_kernel_with_the_ops_values(tmp_path):
    path = _model(tmp_path)
    sess = Session(path, "opencl")
    assert "ChannelAffine" in {n.op_type for n in sess.graph.nodes}
    unfused = Executor(optimize(load_onnx(path)), get_backend("opencl"))
    for seed in range(3):  # traced, then replayed (recorded from the second replay on)
        got, want = sess.run(_x(seed))[0], unfused.run(_x(seed))[0]
        assert got.tobytes() == want.tobytes()
        assert np.count_nonzero(got != sess.run(_x(seed + 1))[0])  # not stale outputs


@needs_opencl
@pytest.mark.parametrize("shift, relu", [(True, True), (True, False), (False, True)])
def test_opencl_channel_affine_is_the_mul_add_relu_bit_for_bit(shift, relu):
    be = get_backend("opencl")
    rng = np.random.default_rng(2)
    x = be.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    scale = be.asarray(rng.uniform(0.5, 2, (6, 1, 1)).astype(np.float32))
    term = be.asarray(rng.uniform(-1, 1, (6, 1, 1)).astype(np.float32)) if shift else None
    want = be.mul(x, scale)
    want = be.add(want, term) if shift else want
    want = be.relu(want) if relu else want
    got = be.channel_affine(x, scale, term, relu)
    assert be.to_numpy(got).tobytes() == be.to_numpy(want).tobytes()
    assert be.channel_affine(x, be.asarray(np.ones(5, np.float32)), None, relu) is None
