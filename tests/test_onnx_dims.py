"""ONNX files with symbolic dimensions (exported with a dynamic batch or image size):
``load_model(path, batch=, dims=)`` and ``hwbench run --batch --dim``, checked against
onnxruntime on the same file (issue 13: such files could not be loaded at all)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hwbench
from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.pytest_plugin import availability

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(13)
CONV_W = (0.1 * RNG.standard_normal((4, 3, 3, 3))).astype(np.float32)


def _save(path, nodes, inputs, outputs, inits) -> str:
    graph = helper.make_graph(nodes, "dynamic", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def dynamic_batch_model(path, batch_dim) -> str:
    """Conv -> Relu -> Flatten -> Gemm on (batch_dim, 3, 8, 8); batch_dim a symbol's name,
    None (unset) or -1 (both: an unknown size)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 3, 8, 8])
    if batch_dim == -1:
        x.type.tensor_type.shape.dim[0].dim_value = -1
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])
    w = (0.1 * RNG.standard_normal((4 * 6 * 6, 5))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "wg"], ["y"])]
    return _save(path, nodes, [x], [y], [("w", CONV_W), ("wg", w)])


def symbolic_image_model(path) -> str:
    """Input ("batch", 3, "height", "width"): three symbols; conv, pool, gemm."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])
    w = (0.1 * RNG.standard_normal((4, 5))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "wg"], ["y"])]
    return _save(path, nodes, [x], [y], [("w", CONV_W), ("wg", w)])


def _onnxruntime(path, feeds):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the independent check")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("batch_dim", ["batch_size", "N", None, -1])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_dynamic_batch_model_loads_at_the_batch_given_and_agrees_with_onnxruntime(
        tmp_path, batch_dim, backend):
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")
    path = dynamic_batch_model(tmp_path / "dyn.onnx", batch_dim)
    model = hwbench.load_model(path, batch=4)
    assert model.input_shapes == {"x": (4, 3, 8, 8)} and model.batch == 4
    x = RNG.standard_normal((4, 3, 8, 8)).astype(np.float32)
    got = hwbench.Session(model, backend=backend).run({"x": x})[0]
    np.testing.assert_allclose(got, _onnxruntime(path, {"x": x}), rtol=1e-4, atol=1e-5)
    assert model.with_batch(2).input_shapes == {"x": (2, 3, 8, 8)}


def test_a_dynamic_batch_model_without_batch_names_the_dimension_and_the_argument(tmp_path):
    path = dynamic_batch_model(tmp_path / "dyn.onnx", "batch_size")
    with pytest.raises(ArgumentError, match=r"input 'x': its batch dimension \(0\) is "
                                            r"symbolic \('batch_size'\); pass batch=N"):
        hwbench.load_model(path)


def test_other_symbolic_dims_take_a_size_by_name(tmp_path):
    path = symbolic_image_model(tmp_path / "image.onnx")
    model = hwbench.load_model(path, batch=2, dims={"height": 5, "width": 7})
    assert model.input_shapes == {"image": (2, 3, 5, 7)}
    x = RNG.standard_normal((2, 3, 5, 7)).astype(np.float32)
    got = hwbench.Session(model, backend="numpy").run({"image": x})[0]
    np.testing.assert_allclose(got, _onnxruntime(path, {"image": x}), rtol=1e-4, atol=1e-6)
    # the batch symbol may be sized by name too, if it agrees with batch=
    same = hwbench.load_model(path, dims={"batch": 2, "height": 5, "width": 7})
    assert same.input_shapes == model.input_shapes


@pytest.mark.parametrize("kwargs, message", [
    ({"batch": 2}, r"dimension 2 is symbolic \('height'\); give its size with "
                   r"dims=\{'height': N\} \(CLI: --dim height=N\); input 'image': dimension 3"),
    ({"batch": 2, "dims": {"height": 5}}, r"dimension 3 is symbolic \('width'\)"),
    ({"batch": 2, "dims": {"height": 5, "width": 7, "sequence": 3}},
     r"argument 'dims': 'sequence' is no symbolic dimension .*batch, height, width"),
    ({"batch": 2, "dims": {"batch": 3, "height": 5, "width": 7}}, r"batch=2 but dims gives"),
    ({"batch": 2, "dims": {"height": 0, "width": 7}}, r"'height' must be a positive int"),
    ({"batch": 2, "dims": {"height": 5.0, "width": 7}}, r"'height' must be a positive int"),
    ({"batch": 2, "dims": {"height": True, "width": 7}}, r"'height' must be a positive int"),
    ({"batch": 2, "dims": [("height", 5)]}, r"argument 'dims' must be a dict"),
    ({"batch": 0, "dims": {"height": 5, "width": 7}}, r"argument 'batch' must be a positive"),
    ({"batch": "2", "dims": {"height": 5, "width": 7}}, r"argument 'batch' must be a positive"),
])
def test_a_missing_or_bad_dimension_value_names_it(tmp_path, kwargs, message):
    path = symbolic_image_model(tmp_path / "image.onnx")
    with pytest.raises(ArgumentError, match=message):
        hwbench.load_model(path, **kwargs)


def test_dims_on_a_static_model_are_refused_as_unknown_names():
    with pytest.raises(ArgumentError, match="'sequence' is no symbolic dimension"):
        hwbench.load_model("mlp", dims={"sequence": 3})


def test_hwbench_run_takes_batch_and_dim_for_a_symbolic_model(tmp_path, capsys):
    path = symbolic_image_model(tmp_path / "image.onnx")
    argv = ["run", "--backend", "numpy", "--model", path, "--batch", "1,3", "--repeats", "1",
            "--min-time", "0", "--max-time", "0.05", "--no-roofline", "--output",
            str(tmp_path / "out")]
    assert main([*argv, "--dim", "height=6", "--dim", "width=5"]) == 0
    (result,) = (tmp_path / "out").glob("models-*.json")
    rows = json.loads(result.read_text())["rows"]
    assert sorted(r["batch"] for r in rows) == [1, 3]
    assert all(r["status"] == "ok" and r["rel_error"] < 1e-5 for r in rows), rows
    capsys.readouterr()
    assert main([*argv, "--dim", "height=6", "--no-save"]) == 2
    assert "dimension 3 is symbolic ('width')" in capsys.readouterr().out


def test_hwbench_simulate_takes_batch_and_dim_for_a_symbolic_model(tmp_path, capsys):
    path = symbolic_image_model(tmp_path / "image.onnx")
    argv = ["simulate", "--model", path, "--batch", "2", "--no-save"]
    assert main([*argv, "--dim", "height=16", "--dim", "width=16"]) == 0
    assert "image on tpu-v1" in capsys.readouterr().out
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "dimension 2 is symbolic ('height')" in out and "--dim width=N" in out
