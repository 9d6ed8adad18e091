"""``hwbench run --dim NAME=N`` applies to each selected model that has a symbolic
dimension NAME (issue 15: ``--model vit_b16,gpt2 --dim sequence=32`` failed the whole run
on ViT, which has no ``sequence``), is refused only when no selected model has it, and the
rows record the dims each model ran with."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.graph.onnx_inputs import input_symbols
from hwbench.harness.suites import model_suite
from hwbench.models.generated import DEFAULT_DIMS
from hwbench.models.symbols import model_dims, model_symbols

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(15)


def _save(path, nodes, inputs, outputs, inits, external=False) -> str:
    graph = helper.make_graph(nodes, "dims", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path), save_as_external_data=external, size_threshold=0)
    return str(path)


def sequence_model(path, external=False) -> str:
    """x (batch, sequence, 4) @ w (4, 3): a "transformer" with one symbol besides batch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 3])
    w = RNG.standard_normal((4, 3)).astype(np.float32)
    return _save(path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [x], [y], [("w", w)],
                 external)


def image_model(path) -> str:
    """image (batch, 2, height, width) -> GlobalAveragePool -> Flatten: no ``sequence``."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 2, "height", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["p"]),
             helper.make_node("Flatten", ["p"], ["y"])]
    return _save(path, nodes, [x], [y], [])


@pytest.mark.parametrize("external", [False, True])
def test_input_symbols_reads_the_files_inputs_as_onnx_does(tmp_path, external):
    path = sequence_model(tmp_path / "seq.onnx", external)
    loaded = onnx.load(path, load_external_data=False)
    expected = {d.dim_param for v in loaded.graph.input for d in v.type.tensor_type.shape.dim
                if d.dim_param}
    assert input_symbols(path) == expected == {"batch", "sequence"}
    assert input_symbols(image_model(tmp_path / "image.onnx")) == {"batch", "height", "width"}


@pytest.mark.parametrize("content", [b"", b"\xff\xff\xff\xff", b"\x3a\x40abc"])
def test_input_symbols_refuses_a_file_that_is_not_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ArgumentError, match="bad.onnx: not a valid ONNX model"):
        input_symbols(path)


def test_model_symbols_of_the_zoo_kinds():
    assert model_symbols("mlp") == frozenset()
    assert model_symbols("vit_b16") == {"batch"}
    assert model_symbols("gpt2") == {"batch", *DEFAULT_DIMS["gpt2"]} == {"batch", "sequence"}


def test_a_dim_applies_to_each_model_that_has_it():
    cases = model_suite.plan(["vit_b16", "gpt2", "mlp"], [1, 2], ["fp32"], {"sequence": 32})
    by_model = {case.model: dict(case.dims) for case in cases}
    assert by_model == {"vit_b16": {}, "gpt2": {"sequence": 32}, "mlp": {}}
    # The generated transformers' defaults hold where --dim does not size them.
    assert model_dims(["bert_base", "vit_b16"], {}) == {
        "bert_base": DEFAULT_DIMS["bert_base"], "vit_b16": {}}


def test_a_dim_no_selected_model_has_is_refused_naming_each_models_symbols():
    with pytest.raises(ArgumentError, match=r"--dim\): 'sequence' is no symbolic dimension "
                                            r"of any selected model \(vit_b16: batch; mlp: "
                                            r"none\)"):
        model_suite.plan(["vit_b16", "mlp"], [1], ["fp32"], {"sequence": 32})
    with pytest.raises(ArgumentError, match="'heigth', 'sequenc'"):
        model_dims(["gpt2"], {"sequenc": 3, "heigth": 4})


def test_hwbench_run_sizes_each_model_with_its_own_dims(tmp_path, capsys):
    seq = sequence_model(tmp_path / "seq.onnx")
    image = image_model(tmp_path / "image.onnx")
    argv = ["run", "--backend", "numpy", "--batch", "2", "--repeats", "1", "--min-time",
            "0", "--max-time", "0.05", "--no-roofline", "--output", str(tmp_path / "out")]
    dims = ["--dim", "sequence=5", "--dim", "height=6", "--dim", "width=3"]
    assert main([*argv, "--model", f"{seq},{image},mlp", *dims]) == 0
    (result,) = (tmp_path / "out").glob("models-*.json")
    rows = {row["model"]: row for row in json.loads(result.read_text())["rows"]}
    assert all(row["status"] == "ok" for row in rows.values()), rows
    assert rows[seq]["dims"] == {"sequence": 5}
    assert rows[image]["dims"] == {"height": 6, "width": 3}
    assert "dims" not in rows["mlp"]
    capsys.readouterr()
    assert main([*argv, "--no-save", "--model", f"{image},mlp", *dims]) == 2
    out = capsys.readouterr().out
    assert "--dim" in out and "'sequence' is no symbolic dimension of any selected" in out
