"""End to end: transformers with token ids, masks and token types through ``hwbench run``
on every host backend (ids within the embedding table, every output scored against the
float64 reference, per-position top-1 on logits, tokens per second), the CLI's table and
CSV, a user's .onnx file with int64 ids, and int8 on these models."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
from tolerances import FP32_TOL, QUANTIZED_FLOAT_TOL

from hwbench.backends import backend_class
from hwbench.harness.suites import model_suite as M
from hwbench.models import sample_inputs as model_inputs
from hwbench.pytest_plugin import availability

SEQUENCE = 8
BACKENDS = ["numpy", "cpu", "cpu:mkl", "opencl", "systolic"]
JOB = {"options": {"threads": None}, "timing": {"repeats": 1, "min_time": 0, "max_time": 0.05}}
INT8_MODEL_TOL = 0.15  # a whole int8 transformer's logits vs float64, relative to max|ref|
WIDEST = 3072  # the longest accumulation in bert_base/gpt2 (the MLP's inner width)


def _tolerance(backend: str) -> float:
    if backend_class(backend.split(":")[0]).float_precision == "int8":
        return QUANTIZED_FLOAT_TOL  # systolic: float matmuls quantized on the fly
    return FP32_TOL * math.sqrt(WIDEST)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    cases = M.plan(["bert_base", "gpt2"], [1, 2], ["fp32"], {"sequence": SEQUENCE})
    return cases, {(c.model, c.batch): M.reference_outputs(c, str(folder), [1, 2])[c.batch]
                   for c in cases}


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformers_run_on_every_backend(references, backend):
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"{backend} unavailable: {why}")
    cases, paths = references
    runner = M.make_runner({**JOB, "backend": backend})
    for case in cases:
        row = runner.run(case, paths[(case.model, case.batch)])
        assert row["status"] == "ok", row
        assert row["rel_error"] <= _tolerance(backend), (case.name, row["rel_error"])
        assert row["sequence"] == SEQUENCE
        assert row["tokens_per_s"] == pytest.approx(row["samples_per_s"] * SEQUENCE)
        if case.model == "gpt2":  # logits [B, S, vocab]: top-1 over every position
            assert row["top1_agreement"] == 1.0, (case.name, row["top1_agreement"])
            assert row["input_ids_range"] == {"input_ids": [0, 50257]}
        else:  # two outputs, both scored; its ids stay within BERT's vocabulary
            assert set(row["rel_error_by_output"]) == {"last_hidden_state", "pooler_output"}
            assert row["rel_error"] == max(row["rel_error_by_output"].values())
            assert row["input_ids_range"] == {"input_ids": [0, 30522]}


def test_bert_inputs_by_role_and_a_prefix_at_every_batch():
    model = M.load_case_model(M.ModelCase("bert_base", 3, "fp32", (("sequence", 5),)))
    three, _, plan = M.case_feeds(model, M.ModelCase("bert_base", 3, "fp32"))
    one, _, _ = M.case_feeds(model.with_batch(1), M.ModelCase("bert_base", 1, "fp32"))
    feeds = three[0]
    assert plan.roles == {"input_ids": "ids", "attention_mask": "ones",
                          "token_type_ids": "zeros"}
    assert feeds["input_ids"].dtype == np.int64 and feeds["input_ids"].shape == (3, 5)
    assert 0 <= feeds["input_ids"].min() and feeds["input_ids"].max() < 30522
    assert len(np.unique(feeds["input_ids"])) > 5  # drawn, not constant
    np.testing.assert_array_equal(feeds["attention_mask"], 1)
    np.testing.assert_array_equal(feeds["token_type_ids"], 0)
    for name in feeds:
        np.testing.assert_array_equal(one[0][name], feeds[name][:1])


def test_an_id_input_that_indexes_no_table_says_so():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from hwbench.graph.onnx_import import load_onnx

    nodes = [helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT)]
    g = helper.make_graph(nodes, "ids", [helper.make_tensor_value_info(
        "ids", TensorProto.INT64, [2, 4])], [helper.make_tensor_value_info(
            "f", TensorProto.FLOAT, [2, 4])])
    graph = load_onnx(helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]))
    feeds, plan = model_inputs.batch_feeds(graph, 2, 1)
    assert plan.vocab == {"ids": model_inputs.FALLBACK_IDS}
    assert "indexes no constant Gather table" in plan.describe()["input_notes"][0]
    assert feeds["ids"].max() < model_inputs.FALLBACK_IDS


def test_accuracy_over_logits_is_per_position():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 3, 11))
    out = ref.copy()
    out[1, 2] = -out[1, 2]  # one position's argmax changes
    acc = M.accuracy(out.astype(np.float32), ref, None, name="logits")
    assert acc["top1_agreement"] == pytest.approx(5 / 6)
    assert "top1_agreement" not in M.accuracy(out, ref, None, name="last_hidden_state")


def _small_gpt2(path):
    onnx = pytest.importorskip("onnx")
    from hwbench.models.generated import GENERATED

    # symbolic batch and sequence, int64 input_ids, as torch.onnx.export writes GPT-2
    onnx.save(GENERATED["gpt2"](layers=2, hidden=64, heads=4, vocab=997, n_positions=64),
              str(path))
    return path


def test_cli_on_a_users_gpt2_file_with_int64_ids(tmp_path):
    from hwbench.cli import main

    path = _small_gpt2(tmp_path / "gpt2-small.onnx")
    out = tmp_path / "rows.csv"
    code = main(["run", "--backend", "numpy,opencl" if availability("opencl")[0] else "numpy",
                 "--model", str(path), "--dim", "sequence=16", "--batch", "1,3",
                 "--repeats", "1", "--max-time", "0.05", "--no-save", "--csv", str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and all(r["status"] == "ok" for r in rows), rows
    for r in rows:
        assert float(r["rel_error"]) <= FP32_TOL * math.sqrt(WIDEST)
        assert float(r["top1_agreement"]) == 1.0
        assert float(r["tokens_per_s"]) == pytest.approx(16 * float(r["samples_per_s"]))


def test_int8_on_a_transformer_is_correct_or_refused_by_name(tmp_path):
    path = str(_small_gpt2(tmp_path / "gpt2-small.onnx"))
    case = M.ModelCase(path, 2, "int8", (("sequence", 8),))
    ref = M.reference_outputs(dataclasses.replace(case, precision="fp32"), str(tmp_path))[2]
    row = M.make_runner({**JOB, "backend": "numpy"}).run(case, ref)
    if row["status"] != "ok":
        assert row["status"] == "unsupported" and row["reason"], row
        return
    # quantization noise, never garbage: the int8 matmuls of a 2-layer GPT-2 with random
    # weights land within ~7 % of max|logit|, and the next token mostly agrees
    assert row["rel_error"] <= INT8_MODEL_TOL, row["rel_error"]
    assert row["top1_agreement"] >= 0.8, row["top1_agreement"]
