"""Each backend's speed ÷ the first's in one model run (``backend_ratios``): the
geometric mean issue 16's opencl ÷ cpu goal is stated in, in ``hwbench run``'s summary."""

from __future__ import annotations

import json
import math

import pytest

from hwbench.errors import ArgumentError
from hwbench.harness.results import backend_ratios
from hwbench.harness.results.summary import to_markdown


def _row(backend: str, model: str, batch: int, speed: float | None,
         status: str = "ok") -> dict:
    return {"backend": backend, "model": model, "batch": batch, "precision": "fp32",
            "status": status, "samples_per_s": speed}


ROWS = [_row("cpu", "a", 1, 100.0), _row("opencl", "a", 1, 50.0),
        _row("cpu", "b", 1, 10.0), _row("opencl", "b", 1, 8.0),
        _row("cpu", "c", 1, 4.0), _row("opencl", "c", 1, None, status="failed"),
        _row("cpu", "a", 8, 400.0), _row("opencl", "a", 8, 400.0)]


def test_geomean_over_models_both_backends_ran() -> None:
    groups = backend_ratios.ratio_groups(ROWS)
    assert [(g.base, g.backend, g.batch) for g in groups] == [("cpu", "opencl", 1),
                                                               ("cpu", "opencl", 8)]
    b1 = groups[0]
    assert b1.ratios == {"a": 0.5, "b": 0.8}  # c failed on opencl: left out
    assert b1.geomean == pytest.approx(math.sqrt(0.5 * 0.8))
    assert b1.worst == "a"
    assert groups[1].geomean == pytest.approx(1.0)


def test_base_is_the_first_backend_given() -> None:
    groups = backend_ratios.ratio_groups(ROWS, ["opencl", "cpu"])
    assert groups[0].ratios == {"a": 2.0, "b": 1.25}


def test_one_backend_has_no_ratios() -> None:
    rows = [r for r in ROWS if r["backend"] == "cpu"]
    assert backend_ratios.ratio_groups(rows) == []
    assert backend_ratios.ratio_markdown(rows) == ""
    assert "÷" not in to_markdown(rows)


def test_rows_must_be_a_list() -> None:
    with pytest.raises(ArgumentError, match="rows"):
        backend_ratios.ratio_groups({"rows": ROWS}, ["cpu", "opencl"])  # type: ignore[arg-type]


def test_summary_and_lines_carry_the_ratio() -> None:
    text = to_markdown(ROWS)
    assert "| opencl ÷ cpu | fp32 | 1 | 2 | 0.632 | a (0.50) |" in text
    lines = backend_ratios.ratio_lines(ROWS)
    assert lines[0].startswith("opencl ÷ cpu samples/s, fp32 batch 1: geometric mean 0.632 "
                               "over 2 model(s); lowest a 0.50")


def test_main_reads_a_saved_run(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"rows": ROWS, "backends": {"cpu": {}, "opencl": {}}}))
    monkeypatch.setattr("hwbench.harness.results.result_files.read_result",
                        lambda name: json.loads(open(name).read()))
    assert backend_ratios.main([str(path)]) == 0
    assert "geometric mean 0.632 over 2" in capsys.readouterr().out


def test_hwbench_run_prints_and_writes_the_ratio(tmp_path, capsys) -> None:
    from hwbench.cli import main

    summary = tmp_path / "summary.md"
    code = main(["run", "--backend", "numpy,cpu", "--model", "mlp", "--batch", "1",
                 "--threads", "1", "--no-roofline", "--no-save", "--repeats", "1",
                 "--min-time", "0", "--max-time", "0.01", "--markdown", str(summary)])
    assert code == 0
    assert "ratio: cpu ÷ numpy samples/s, fp32 batch 1: geometric mean" in capsys.readouterr().out
    assert "| cpu ÷ numpy | fp32 | 1 | 1 |" in summary.read_text()
