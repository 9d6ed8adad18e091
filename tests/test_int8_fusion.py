"""``graph.int8_fusion``: DequantizeLinear -> Add -> Relu -> QuantizeLinear becomes one
QLinearAdd with ``fused_relu``, whose codes are the unfused group's on every backend mode
(cpu's by one table lookup)."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.graph.executor import Executor
from hwbench.graph.int8_fusion import fuse_qdq_add_relu
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.passes import optimize
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SHAPE = (1, 8, 6, 6)
PARAMS = dict(sa=np.float32(0.037), za=np.uint8(131), sb=np.float32(0.021), zb=np.uint8(90),
              sy=np.float32(0.043), zy=np.uint8(100))


def _model(tmp_path, relu_is_output=False):
    nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, SHAPE)]
    if relu_is_output:
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, SHAPE))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.UINT8, SHAPE) for n in "ab"],
        outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in PARAMS.items()])
    path = tmp_path / "add_relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.integers(0, 256, SHAPE).astype(np.uint8) for n in "ab"}


def _unfused(be, feeds):
    """The group as separate float steps on ``be`` (what ran before the fusion)."""
    p = PARAMS
    y = be.add(be.dequantize_linear(be.asarray(feeds["a"]), p["sa"], p["za"]),
               be.dequantize_linear(be.asarray(feeds["b"]), p["sb"], p["zb"]))
    return be.to_numpy(be.quantize_linear(be.relu(y), p["sy"], p["zy"]))


def test_the_group_becomes_one_qlinear_add(tmp_path):
    g = optimize(load_onnx(_model(tmp_path)))
    assert [n.op_type for n in g.nodes] == ["QLinearAdd"]
    assert g.nodes[0].attrs["fused_relu"] == 1


def test_a_relu_read_elsewhere_is_not_fused(tmp_path):
    g = fuse_qdq_add_relu(load_onnx(_model(tmp_path, relu_is_output=True)))
    assert "Relu" in [n.op_type for n in g.nodes]
    assert "QLinearAdd" not in [n.op_type for n in g.nodes]


@pytest.mark.parametrize("mode", ["numpy", "cpu", "cpu:float32-requant",
                                  "numpy:onnxruntime-requant", "cpu:onnxruntime-requant"])
@pytest.mark.parametrize("seed", range(3))
def test_fused_codes_are_the_unfused_groups(mode, seed, tmp_path):
    if not availability(mode.split(":")[0])[0]:
        pytest.skip(f"{mode} unavailable")
    be = get_backend(mode)
    feeds = _feeds(seed)
    out = Executor(optimize(load_onnx(_model(tmp_path))), be).run(feeds)
    got = np.asarray(out["y"] if isinstance(out, dict) else out[0])
    reference = "numpy" if "onnxruntime" not in mode else mode
    np.testing.assert_array_equal(got, _unfused(get_backend(reference), feeds))
    assert got.min() >= PARAMS["zy"]  # the Relu is there
