"""The CLI checks its options before anything runs and never exits 0 when nothing ran
(issue 13, defects 5 and 7).

Every test here that reaches a measurement replaces the measuring with a stand-in that
fails the test if it is called: an option that must be refused up front is refused before
any worker starts, not after an hour of measuring.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from hwbench.cli import checks as cli_checks
from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.harness.running import isolation


@pytest.fixture
def nothing_may_run(monkeypatch):
    """Measuring, training, tuning or simulating anything fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("it ran although an option was bad")

    from hwbench.backends.opencl import autotune
    from hwbench.harness.suites import simulate
    from hwbench.harness.sweep import runner as sweep
    from hwbench.models import digits

    monkeypatch.setattr(isolation, "run_side_by_side", refuse)
    monkeypatch.setattr(digits, "train", refuse)
    monkeypatch.setattr(autotune, "search", refuse)
    monkeypatch.setattr(simulate, "run_simulation", refuse)
    monkeypatch.setattr(sweep, "run_local", refuse)
    from hwbench.harness.measure import peak, reference_workload

    monkeypatch.setattr(reference_workload, "measure_reference_isolated", refuse)
    monkeypatch.setattr(peak, "measure_fma_peak", refuse)


def _refused(capsys, argv: list[str], option: str) -> str:
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert option in out, out
    return out


KERNELS = ["kernels", "--backend", "numpy", "--op", "sigmoid", "--no-peak", "--no-save"]
RUN = ["run", "--backend", "numpy", "--model", "mlp", "--no-roofline", "--no-save"]


# -- defect 7: numbers -------------------------------------------------------------------------
@pytest.mark.parametrize("argv,option", [
    ([*KERNELS, "--timeout", "0"], "--timeout"),
    ([*KERNELS, "--timeout", "-5"], "--timeout"),
    ([*KERNELS, "--timeout", "nan"], "--timeout"),
    ([*KERNELS, "--repeats", "0"], "--repeats"),
    ([*KERNELS, "--repeats", "-3"], "--repeats"),
    ([*KERNELS, "--max-time", "nan"], "--max-time"),
    ([*KERNELS, "--max-time", "inf"], "--max-time"),
    ([*KERNELS, "--max-time", "0"], "--max-time"),
    ([*KERNELS, "--min-time", "-1"], "--min-time"),
    ([*KERNELS, "--min-time", "nan"], "--min-time"),
    ([*KERNELS, "--seed", "-1"], "--seed"),
    ([*KERNELS, "--batch", "0"], "--batch"),
    ([*KERNELS, "--threads", "0"], "--threads"),
    ([*RUN, "--timeout", "0"], "--timeout"),
    ([*RUN, "--repeats", "0"], "--repeats"),
    ([*RUN, "--max-time", "nan"], "--max-time"),
    ([*RUN, "--batch", "1,0"], "--batch"),
    ([*RUN, "--batch", ","], "--batch"),
    (["train", "--model", "mlp", "--epochs", "0"], "--epochs"),
    (["train", "--model", "mlp", "--seed", "-1"], "--seed"),
    (["train", "--model", "mlp", "--threads", "0"], "--threads"),
    (["tune", "--size", "0"], "--size"),
    (["tune", "--budget", "nan"], "--budget"),
    (["tune", "--budget", "-0.5"], "--budget"),
    (["simulate", "--model", "lenet", "--batch", "0"], "--batch"),
    (["sweep", "--set", "simulate.models=['lenet']", "--timeout", "nan"], "--timeout"),
    (["sweep", "--set", "simulate.models=['lenet']", "--timeout", "inf"], "--timeout"),
    (["sweep", "--set", "simulate.models=['lenet']", "--workers", "0"], "--workers"),
])
def test_bad_numbers_are_refused_before_anything_runs(capsys, nothing_may_run, tmp_path,
                                                      argv, option):
    _refused(capsys, [*argv, *(["--output", str(tmp_path / "out")] if argv[0] in (
        "sweep",) else [])], option)


@pytest.mark.parametrize("value,kind", [(1, "count"), (0, "seed"), (0.0, "seconds0"),
                                        (1e-9, "seconds"), (None, "count"), ((1, 8), "counts")])
def test_good_numbers_pass(value, kind):
    cli_checks.check_number(value, "--x", kind)


# -- defect 5: destinations --------------------------------------------------------------------
def _destinations(tmp_path: Path) -> list[tuple[list[str], str]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    beneath = str(blocker / "sub")  # a folder that can never be created
    results = tmp_path / "models.json"
    results.write_text("{}")
    return [
        ([*KERNELS[:-1], "--output", str(blocker)], "--output"),
        ([*KERNELS[:-1], "--output", beneath], "--output"),
        ([*RUN[:-1], "--output", beneath], "--output"),
        ([*RUN, "--markdown", str(blocker / "s.md")], "--markdown"),
        ([*RUN, "--csv", str(tmp_path)], "--csv"),
        (["simulate", "--model", "lenet", "--output", beneath], "--output"),
        (["sweep", "--set", "simulate.models=['lenet']", "--output", beneath], "--output"),
        (["report", str(results), "-o", str(blocker)], "-o/--output"),
        (["roofline", str(results), "-o", str(blocker / "r.png")], "-o/--output"),
        (["train", "--model", "mlp", "--output", str(blocker / "w.npz")], "--output"),
        (["train", "--model", "mlp", "--output", str(tmp_path)], "--output"),
    ]


@pytest.mark.parametrize("case", range(11))
def test_unwritable_destinations_are_refused_before_anything_runs(capsys, nothing_may_run,
                                                                  tmp_path, case):
    argv, option = _destinations(tmp_path)[case]
    out = _refused(capsys, argv, option)
    assert "Traceback" not in out


def test_report_into_an_existing_file_is_an_error_not_a_traceback(tmp_path, capsys):
    data = Path(__file__).parent / "data"
    results = next(iter(sorted(data.rglob("*.json"))), None)
    target = tmp_path / "report.txt"
    target.write_text("x")
    argv = ["report", str(results or target), "-o", str(target)]
    out = _refused(capsys, argv, "-o/--output")
    assert "is a file" in out and target.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path, capsys, nothing_may_run):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _refused(capsys, [*KERNELS[:-1], "--output", str(locked / "results")], "--output")
    finally:
        locked.chmod(0o755)


def test_checks_create_nothing(tmp_path):
    cli_checks.check_folder(tmp_path / "a" / "b", "--output")
    cli_checks.check_file(tmp_path / "c" / "d.md", "--markdown")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArgumentError, match="'--output'"):
        cli_checks.check_folder(__file__, "--output")


# -- defect 7: nothing ran ---------------------------------------------------------------------
def _fake_rows(monkeypatch, statuses: list[str], fatal: list[str] = ()):
    def side_by_side(jobs, total, timeout, prepare=None):
        for name in fatal:
            yield {"type": "fatal", "backend": name, "reason": "BackendUnavailableError: no"}
        yield {"type": "info", "backend": "numpy", "info": {}}
        for index, status in enumerate(statuses[:total]):
            row = {"status": status, "seconds": 1e-3, "gflops": 1.0, "gbytes_per_s": 1.0,
                   "rel_error": 0.0, "timing": {"spread": 0.0, "samples": [1e-3]}}
            if status != "ok":
                row = {"status": status, "reason": "RuntimeError: broke"}
            yield {"type": "row", "backend": "numpy", "index": index, "row": row}

    monkeypatch.setattr(isolation, "run_side_by_side", side_by_side)


def test_a_kernels_run_where_every_row_failed_exits_non_zero(monkeypatch, capsys):
    _fake_rows(monkeypatch, ["error", "error"])
    assert main([*KERNELS, "--op", "sigmoid"]) == 1
    assert "nothing ran: 2 row(s) failed" in capsys.readouterr().out


def test_a_partly_failed_run_still_passes_and_says_how_many_failed(monkeypatch, capsys):
    _fake_rows(monkeypatch, ["ok", "error"])
    assert main([*KERNELS, "--op", "sigmoid"]) == 0
    assert "1 of 2 row(s) failed" in capsys.readouterr().out


def test_every_backend_unavailable_exits_non_zero(monkeypatch, capsys):
    _fake_rows(monkeypatch, [], fatal=["numpy"])
    assert main(KERNELS) == 1
    assert "nothing ran" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cuda_without_cupy_exits_non_zero(capsys):
    argv = ["kernels", "--backend", "cuda", "--op", "sigmoid", "--no-peak", "--no-save",
            "--repeats", "1", "--max-time", "0.01"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "nothing ran" in out and "backend(s) could not start" in out


def test_an_opencl_device_that_does_not_exist_exits_non_zero(capsys):
    argv = ["run", "--backend", "opencl:7", "--model", "mlp", "--batch", "1", "--no-save",
            "--no-roofline", "--repeats", "1", "--max-time", "0.01"]
    assert main(argv) == 1
    assert "nothing ran" in capsys.readouterr().out


def test_a_sweep_whose_every_point_is_refused_exits_non_zero(tmp_path, capsys):
    argv = ["sweep", "--executor", "local", "--workers", "1", "--no-plot", "--output",
            str(tmp_path), "--set", "simulate.models=['alexnet']", "--set",
            "simulate.arrays=['64x64']", "--set", "simulate.buffers=['4KiB']"]
    assert main(argv) == 1
    assert "nothing ran" in capsys.readouterr().out


def test_write_report_into_a_file_raises_an_hwbench_error(tmp_path):
    from hwbench.harness.results.report import write_report

    target = tmp_path / "report"
    target.write_text("x")
    with pytest.raises(ArgumentError, match="output"):
        write_report([], target)


@pytest.mark.parametrize("spec", ["median:1e999%", "accuracy:1e999x"])
def test_an_infinite_fail_on_limit_is_refused(capsys, spec, tmp_path):
    from hwbench.harness.results import compare

    with pytest.raises(ArgumentError, match="finite"):
        compare.parse_fail_on([spec])


def test_every_row_is_saved_as_it_is_produced(monkeypatch, tmp_path):
    """The results file holds each row before the next case starts (a killed run keeps
    what it measured): the file is created up front, then rewritten after every row."""
    seen: list[int] = []

    def side_by_side(jobs, total, timeout, prepare=None):
        yield {"type": "info", "backend": "numpy", "info": {}}
        for index in range(total):
            (path,) = tmp_path.glob("kernels-*.json")
            seen.append(len(json.loads(path.read_text())["rows"]))
            yield {"type": "row", "backend": "numpy", "index": index, "row": {
                "status": "error", "reason": "RuntimeError: x"} if index else {
                "status": "ok", "seconds": 1e-3, "gflops": 1.0, "gbytes_per_s": 1.0,
                "rel_error": 0.0, "timing": {"spread": 0.0, "samples": [1e-3]}}}

    from hwbench.harness.measure import reference_workload

    monkeypatch.setattr(reference_workload, "measure_reference_isolated", lambda threads: {
        "gemm": {"gflops": 1.0}, "stream": {"gbytes_per_s": 1.0}})
    monkeypatch.setattr(isolation, "run_side_by_side", side_by_side)
    assert main([*KERNELS[:-1], "--output", str(tmp_path), "--op", "sigmoid,gemm"]) == 0
    assert seen == list(range(len(seen))) and len(seen) >= 3
