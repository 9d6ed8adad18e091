"""The model harness: case planning, FLOP counting, accuracy, and `hwbench run` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.harness.suites import model_suite as M
from hwbench.kernels.shapes import resnet50_convs, resnet50_fc, total_flops

pytest.importorskip("onnx", reason="the graph layer reads ONNX (pip install onnx)")


def test_plan_and_model_names():
    cases = M.plan(["mlp", "alexnet"], [8, 1], ["fp32", "int8"])
    assert [c.name for c in cases][:3] == ["mlp/b1/fp32", "mlp/b8/fp32", "mlp/b1/int8"]
    assert len(cases) == 8
    assert M.expand_models("default") == list(M.DEFAULT_MODELS)
    assert "densenet121" in M.expand_models("all") and "lenet" in M.expand_models("all")
    with pytest.raises(ArgumentError, match="'model'"):
        M.expand_models("alexnet,nosuchnet")
    with pytest.raises(ArgumentError, match="'precision'"):
        M.plan(["mlp"], [1], ["fp64"])
    with pytest.raises(ArgumentError, match="'batch'"):
        M.plan(["mlp"], [0], ["fp32"])


def test_resnet50_flops_match_the_shape_tables():
    import hwbench

    model = hwbench.load_model("resnet50", batch=2)
    expected = total_flops(resnet50_convs(2)) + resnet50_fc(2).flops
    assert M.model_flops(model) == expected


def test_accuracy_figures():
    ref = np.array([[0.1, 0.9], [0.8, 0.2]])
    out = np.array([[0.2, 0.8], [0.3, 0.7]], np.float32)
    acc = M.accuracy(out, ref, None)
    assert acc["top1_agreement"] == 0.5
    assert acc["rel_error"] == pytest.approx(0.5 / 0.9)
    labels = np.arange(10) % 10
    logits = np.eye(10, dtype=np.float32)
    assert M.accuracy(logits, None, labels)["top1"] == 1.0
    squeezed = M.accuracy(out.reshape(2, 2, 1, 1), ref.reshape(2, 2, 1, 1), None)
    assert squeezed["top1_agreement"] == 0.5  # (N, C, 1, 1) outputs are classifiers too


def test_hwbench_run_end_to_end(tmp_path):
    code = main(["run", "--backend", "numpy,cpu", "--model", "squeezenet", "--batch", "1,2",
                 "--repeats", "2", "--min-time", "0", "--max-time", "0.5", "--output",
                 str(tmp_path), "--markdown", str(tmp_path / "s.md"), "--csv",
                 str(tmp_path / "s.csv")])
    assert code == 0
    text = (tmp_path / "s.md").read_text()
    rows_table = text.split("\n\n| ratio |")[0]  # the backends' ratio table ends it
    table = [line for line in rows_table.splitlines()
             if line.startswith("|")]  # a busy machine adds warning lines below it
    assert len(table) == 2 + 4
    assert "| cpu ÷ numpy | fp32 | 1 | 1 |" in text  # one model at each batch
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 4
    (path,) = tmp_path.glob("models-*.json")
    result = json.loads(path.read_text())
    assert result["schema"] == "hwbench.models"
    rows = {(r["backend"], r["batch"]): r for r in result["rows"]}
    assert set(rows) == {("numpy", 1), ("numpy", 2), ("cpu", 1), ("cpu", 2)}
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["rel_error"] < 1e-4
        assert row["samples_per_s"] > 0 and row["gflops"] > 0
    assert {"latency_p50", "latency_p99"} <= set(rows[("cpu", 1)])
    assert "latency_p50" not in rows[("cpu", 2)]
    assert all(row["intensity"] > 0 for row in rows.values())
    assert result["backends"]["cpu"]["ceilings"]["gflops"] > 0  # measured in its worker
    assert (tmp_path / f"roofline-{path.stem}.png").is_file()
    assert isinstance(result["machine_state"]["busy"], bool)
    assert all(isinstance(row["flags"], list) for row in rows.values())


def test_hwbench_run_digits_models_report_their_accuracy(tmp_path):
    pytest.importorskip("sklearn", reason="the digits data ships in scikit-learn")
    code = main(["run", "--backend", "numpy,cpu", "--model", "lenet,autoencoder", "--batch",
                 "8", "--precision", "fp32,int8", "--repeats", "2", "--min-time", "0",
                 "--max-time", "0.2", "--output", str(tmp_path), "--no-roofline",
                 "--markdown", str(tmp_path / "s.md")])
    assert code == 0
    (path,) = tmp_path.glob("models-*.json")
    rows = {(r["backend"], r["model"], r["precision"]): r
            for r in json.loads(path.read_text())["rows"]}
    for backend in ("numpy", "cpu"):
        lenet, ae = rows[(backend, "lenet", "fp32")], rows[(backend, "autoencoder", "fp32")]
        assert lenet["top1"] >= 0.97 and lenet["top1_agreement"] == 1.0
        assert "top1" not in ae and "top1_agreement" not in ae
        assert 0 < ae["mse"] < 0.05
        assert lenet["rel_error"] < 1e-4 and ae["rel_error"] < 1e-4
        lenet8, ae8 = rows[(backend, "lenet", "int8")], rows[(backend, "autoencoder", "int8")]
        assert lenet8["status"] == "ok" and ae8["status"] == "ok"
        assert lenet["top1"] - lenet8["top1"] <= 0.01  # MLPerf: int8 keeps >= 99 %
        assert 1e-4 < lenet8["rel_error"] < 0.2  # quantized: not float-exact, but close
        assert ae8["mse"] < ae["mse"] * 1.05
    # the same quantized model everywhere: int8 outputs agree across backends
    assert rows[("numpy", "lenet", "int8")]["top1"] == rows[("cpu", "lenet", "int8")]["top1"]
    summary = (tmp_path / "s.md").read_text()
    assert "int8 drop" in summary.splitlines()[0]


def test_markdown_and_csv_summaries():
    from hwbench.harness.results.summary import COLUMNS, to_csv, to_markdown

    rows = [
        {"backend": "cpu", "model": "lenet", "batch": 1, "precision": "fp32", "status": "ok",
         "latency_p50": 0.002, "latency_p90": 0.0025, "latency_p99": 0.003,
         "samples_per_s": 500.0, "gflops": 0.7, "top1": 0.98, "rel_error": 1e-6,
         "top1_agreement": 1.0},
        {"backend": "numpy", "model": "lenet", "batch": 1, "precision": "int8",
         "status": "unsupported", "reason": "int8 | not yet"},
    ]
    md = to_markdown(rows).splitlines()
    assert len(md) == 4 and md[0].count("|") == len(COLUMNS) + 1
    # (tokens/s is empty: lenet has no sequence axis)
    assert "| lenet | 1 | fp32 | cpu | ok | 2 | 2.5 | 3 | 500 |  | 0.7 | 0.98 |" in md[2]
    assert "unsupported: int8 \\| not yet" in md[3]
    lines = to_csv(rows).splitlines()
    assert lines[0].startswith("model,batch,precision,backend,status,latency_p50_ms")
    assert lines[1].startswith("lenet,1,fp32,cpu,ok,2.0,2.5,3.0,500.0,,0.7,0.98")


def test_int8_drop_is_fp32_minus_int8_on_the_same_backend_model_and_batch():
    from hwbench.harness.results.summary import int8_drop

    base = {"model": "lenet", "batch": 8, "status": "ok"}
    rows = [{**base, "backend": "cpu", "precision": "fp32", "top1": 0.981},
            {**base, "backend": "cpu", "precision": "int8", "top1": 0.975},
            {**base, "backend": "numpy", "precision": "fp32", "top1": 0.5},
            {**base, "backend": "numpy", "precision": "int8", "top1": 0.98},
            {**base, "backend": "cpu", "precision": "int8", "batch": 1, "top1": 0.9},
            {**base, "model": "ae", "backend": "cpu", "precision": "fp32", "mse": 0.0184},
            {**base, "model": "ae", "backend": "cpu", "precision": "int8", "mse": 0.0190}]
    assert int8_drop(rows[1], rows) == pytest.approx(0.6)
    assert int8_drop(rows[3], rows) == pytest.approx(-48.0)  # better than fp32: negative
    assert int8_drop(rows[4], rows) is None  # no fp32 row at batch 1
    assert int8_drop(rows[0], rows) is None  # only int8 rows have a drop
    assert int8_drop(rows[6], rows) == pytest.approx(0.06)  # MSE up: a positive drop


@pytest.mark.parametrize("peer", ["onnxruntime", "torch"])
def test_hwbench_run_with_a_peer(tmp_path, peer):
    pytest.importorskip(peer, reason=f"{peer} is a peer (pip install 'hwbench[peers]')")
    code = main(["run", "--backend", "numpy", "--peers", peer, "--model", "resnet50",
                 "--batch", "1", "--repeats", "1", "--min-time", "0", "--max-time", "0.2",
                 "--output", str(tmp_path), "--no-roofline"])
    assert code == 0
    (path,) = tmp_path.glob("models-*.json")
    result = json.loads(path.read_text())
    rows = {r["backend"]: r for r in result["rows"]}
    assert rows[peer]["status"] == "ok", rows[peer]
    assert rows[peer]["rel_error"] < 1e-4 and rows[peer]["top1_agreement"] == 1.0
    assert result["backends"][peer]["threads"] >= 1


def test_onnxruntime_runs_the_same_quantized_graph_as_its_int8_row(tmp_path):
    pytest.importorskip("onnxruntime", reason="a peer (pip install 'hwbench[peers]')")
    code = main(["run", "--backend", "numpy", "--peers", "onnxruntime", "--model", "lenet",
                 "--batch", "8", "--precision", "int8", "--repeats", "1", "--min-time", "0",
                 "--max-time", "0.1", "--output", str(tmp_path), "--no-roofline"])
    assert code == 0
    (path,) = tmp_path.glob("models-*.json")
    rows = {r["backend"]: r for r in json.loads(path.read_text())["rows"]}
    assert rows["onnxruntime"]["status"] == "ok", rows["onnxruntime"]
    assert rows["onnxruntime"]["top1"] == rows["numpy"]["top1"]
    assert rows["onnxruntime"]["rel_error"] == pytest.approx(rows["numpy"]["rel_error"],
                                                             rel=1e-3)


def test_smaller_batches_feed_a_prefix_of_larger_ones_so_one_reference_serves_all(tmp_path):
    import hwbench

    model = hwbench.load_model("squeezenet", batch=3)
    one = M.case_inputs(model.with_batch(1), M.ModelCase("squeezenet", 1, "fp32"))[0][0]
    three = M.case_inputs(model, M.ModelCase("squeezenet", 3, "fp32"))[0][0]
    np.testing.assert_array_equal(one, three[:1])
    paths = M.reference_outputs(M.ModelCase("lenet", 1, "fp32"), str(tmp_path), [1, 8])
    b1, b8 = (M.load_reference(paths[b])["output"] for b in (1, 8))
    assert b1.shape == b8.shape == (360, 10)  # the digits test split, at either batch
    np.testing.assert_array_equal(b1, b8)


@pytest.mark.parametrize("model", ["mlp", "autoencoder"])
def test_a_digits_batch_larger_than_the_test_split_cycles_it_and_scores_the_distinct_images(
        tmp_path, model):
    """Issue 13: batch 361+ on the 360-image split ended in 'need at least one array to
    concatenate'. The batch repeats the split; accuracy stays over the 360 images."""
    pytest.importorskip("sklearn", reason="the digits data ships in scikit-learn")
    from hwbench.datasets import digits

    images = len(digits("test")[0])
    case = M.ModelCase(model, images + 41, "fp32")
    (batch,), labels = M.case_inputs(M.load_case_model(case), case)
    assert batch.shape[0] == images + 41 and len(labels) == images
    np.testing.assert_array_equal(batch[images:], batch[:41])  # image i is i mod 360
    paths = M.reference_outputs(case, str(tmp_path), [1, case.batch])
    (ref_b1,), (ref_big,) = (M.load_reference(paths[b]).values() for b in (1, case.batch))
    assert len(ref_big) == images
    np.testing.assert_array_equal(ref_b1, ref_big)
    job = {"backend": "numpy", "options": {"threads": 1},
           "timing": {"repeats": 1, "min_time": 0, "max_time": 0.05}}
    row = M.make_runner(job).run(case, paths[case.batch])
    assert row["status"] == "ok" and row["inputs_cycled"] is True
    assert row["accuracy_samples"] == images and row["rel_error"] < 1e-4
    assert row["top1"] >= 0.9 if model == "mlp" else 0 < row["mse"] < 0.05
