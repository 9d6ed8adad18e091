"""``hwbench run`` on the task models: the BEGAN generator's rows (FID, digits made,
agreement with the float64 images) on the backends and onnxruntime, the int8 drop of
both task models, and ``--model all`` holding them."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.harness.results.summary import int8_drop, to_markdown
from hwbench.harness.results.tables import _accuracy_text
from hwbench.harness.suites import began_suite, model_suite, translator_suite
from hwbench.models import began
from hwbench.pytest_plugin import availability

pytest.importorskip("sklearn", reason="the digits data ships in scikit-learn")

TIMING = {"repeats": 1, "min_time": 0, "max_time": 0.05}


def _row(engine: str, case: model_suite.ModelCase, reference: str) -> dict:
    peer = engine in ("onnxruntime", "torch")
    job = {"backend": engine, "peer": peer, "options": {"threads": 1}, "timing": TIMING}
    return model_suite.make_runner(job).run(case, reference)


@pytest.fixture(scope="module")
def began_reference(tmp_path_factory):
    (case,) = model_suite.plan(["began"], [8], ["fp32"])
    folder = str(tmp_path_factory.mktemp("began"))
    return model_suite.reference_outputs(case, folder, [8])[8]


def _engines() -> list[str]:
    engines = ["numpy"]
    if availability("cpu")[0]:
        engines.append("cpu")
    for peer in ("onnxruntime", "torch"):  # peers where installed
        try:
            __import__(peer)
            engines.append(peer)
        except ImportError:
            pass
    return engines


def test_began_rows_report_fid_and_digits_and_agree_with_numpy(began_reference):
    (case,) = model_suite.plan(["began"], [8], ["fp32"])
    rows = {engine: _row(engine, case, began_reference) for engine in _engines()}
    mine = rows["numpy"]
    assert mine["status"] == "ok" and mine["accuracy_samples"] == began_suite.IMAGES
    # the same z as began.sample: the FID hwbench train recorded for the shipped weights
    assert mine["fid"] == pytest.approx(began.load_meta()["metrics"]["generated"]["fid"],
                                        rel=0.02)
    assert 1 <= mine["classes_made"] <= 10 and mine["class_entropy_bits"] > 0.5
    for engine, row in rows.items():
        assert row["status"] == "ok", (engine, row.get("reason"))
        assert row["rel_error"] < 1e-4 and row["max_abs_diff"] < 1e-4, engine
        assert row["fid"] == pytest.approx(mine["fid"], abs=0.05), engine
        assert abs(row["fid_vs_fp64"]) < 0.05 and row["fid_fp64"] > 0, engine
        assert row["samples_per_s"] > 0 and row["flops"] > 0 and row["intensity"] > 0
        assert row["classes_made"] == mine["classes_made"], engine
    assert "FID" in _accuracy_text(mine, list(rows.values()))


def test_began_generates_what_began_sample_does():
    from hwbench.backends import get_backend

    model = began_suite.case_model(4)
    reference = began.sample(get_backend("numpy"), began.load()[0], n=8)
    session = model_suite.make_runner(
        {"backend": "numpy", "options": {"threads": 1}, "timing": TIMING}
    ).session(model, model_suite.ModelCase("began", 4, "fp32"))
    z = began_suite.latents(8, model.input_shapes["z"][1])
    images = np.concatenate([session.run({"z": half})[0] for half in np.split(z, 2)])
    np.testing.assert_allclose(images, reference, rtol=1e-5, atol=1e-6)
    assert began_suite.image_count(8) == 1000 and began_suite.image_count(3) == 1002


def test_began_int8_reports_its_fid_rise_over_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(began_suite, "IMAGES", 200)  # fewer images: a quicker int8 pass
    fp32, int8 = model_suite.plan(["began"], [8], ["fp32", "int8"])
    reference = model_suite.reference_outputs(fp32, str(tmp_path), [8])[8]
    rows = [_row("numpy", case, reference) for case in (fp32, int8)]
    assert rows[1]["status"] == "ok" and rows[1]["precision"] == "int8"
    # quantized on uniform z: a few per cent off the float64 images, FID within 5
    assert 1e-4 < rows[1]["rel_error"] < 0.2
    drop = int8_drop({**rows[1], "backend": "numpy"}, [{**r, "backend": "numpy"} for r in rows])
    assert drop == pytest.approx(rows[1]["fid"] - rows[0]["fid"]) and abs(drop) < 5.0
    text = _accuracy_text({**rows[1], "backend": "numpy"},
                          [{**r, "backend": "numpy"} for r in rows])
    assert "vs fp32" in text and "FID" in text
    assert "| began |" in to_markdown([{**r, "backend": "numpy"} for r in rows])


def test_translator_int8_row_reports_exact_match_and_its_drop(tmp_path, monkeypatch):
    monkeypatch.setattr(translator_suite, "ACCURACY_SENTENCES", 24)
    cases = model_suite.plan(["translator"], [24], ["fp32", "int8"])
    reference = model_suite.reference_outputs(cases[0], str(tmp_path), [24])[24]
    rows = [{**_row("numpy", case, reference), "backend": "numpy"} for case in cases]
    assert all(row["status"] == "ok" for row in rows)
    assert rows[1]["exact_match"] >= 0.9 and rows[1]["top1_agreement"] >= 0.95
    drop = int8_drop(rows[1], rows)
    assert drop == pytest.approx(100 * (rows[0]["exact_match"] - rows[1]["exact_match"]))


def test_model_all_holds_the_task_models_and_they_take_no_dims():
    every = model_suite.expand_models("all")
    assert "translator" in every and "began" in every
    assert "began" not in model_suite.expand_models("default")
    assert model_suite.expand_models("began,lenet") == ["began", "lenet"]
    cases = model_suite.plan(["translator", "began"], [1], ["fp32"])
    assert [c.dims for c in cases] == [(), ()]


def test_a_higher_fid_is_a_worse_accuracy_for_compare_and_reads_in_reports():
    from hwbench.harness.results.report import _accuracy
    from hwbench.harness.results.verdicts import compare_accuracy

    (change,) = compare_accuracy({"fid": 100.0}, {"fid": 110.0}, 0.05)
    assert change.verdict == "worse" and change.worse_by == pytest.approx(0.1)
    assert compare_accuracy({"fid": 100.0}, {"fid": 90.0}, 0.05)[0].verdict == "changed"
    assert _accuracy({"fid": 148.7, "rel_error": 1e-6}) == "FID 148.7, 1.0e-06 vs fp64"


def test_the_simulated_accelerator_reports_its_own_time_for_the_generator(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(began_suite, "IMAGES", 64)
    (case,) = model_suite.plan(["began"], [8], ["fp32"])
    reference = model_suite.reference_outputs(case, str(tmp_path), [8])[8]
    row = _row("systolic", case, reference)
    assert row["status"] == "ok" and row["simulated_seconds"] > 0
    assert row["simulated_samples_per_s"] == pytest.approx(8 / row["simulated_seconds"])
    assert 1e-4 < row["rel_error"] < 0.1  # its matmuls and convolutions run in int8
