"""The ``hwbench`` command, run in-process through ``hwbench.cli.main`` (once as ``-m``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hwbench.harness.running.isolation as isolation
from hwbench.cli import main
from hwbench.harness.results.result_files import read_result
from hwbench.harness.suites.kernel_suite import count_cases

FAST = ["--shapes", "small", "--repeats", "2", "--min-time", "0", "--max-time", "0.05",
        "--no-peak"]


def _cpu_available() -> bool:
    from hwbench.backends import backend_class

    return backend_class("cpu").available()[0]


def _only_file(folder: Path) -> Path:
    entries = sorted(folder.iterdir())  # hidden temporary files included
    assert len(entries) == 1, entries
    assert entries[0].suffix == ".json"
    return entries[0]


# -- list ----------------------------------------------------------------------------------
def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert {"numpy", "cpu"} <= set(by_name)
    for row in rows:
        assert isinstance(row["available"], bool)
        assert row["available"] or row["reason"], f"{row['name']} unavailable with no reason"
    assert by_name["numpy"]["available"] is True
    assert by_name["numpy"]["versions"]["numpy"] == np.__version__


def test_list_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "cpu" in out


def test_list_json_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "hwbench.cli", "list", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = [row["name"] for row in json.loads(proc.stdout)]
    assert "numpy" in names and "cpu" in names


# -- kernels -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernels_run(tmp_path_factory):
    """One real two-backend run (worker processes and all), shared by the tests below."""
    if not _cpu_available():
        pytest.skip("the cpu backend is unavailable")
    out = tmp_path_factory.mktemp("kernels")
    code = main(["kernels", "--backend", "numpy,cpu", "--op", "gemm,sigmoid", "--threads", "1",
                 *FAST, "--output", str(out)])
    return code, out


def test_kernels_exits_0_and_writes_one_file(kernels_run):
    code, out = kernels_run
    assert code == 0
    path = _only_file(out)
    payload = read_result(path)  # checks schema prefix and version
    assert payload["schema"] == "hwbench.kernels"
    assert payload["version"] == 1
    assert payload.get("interrupted") is None


def test_kernels_rows(kernels_run):
    _, out = kernels_run
    payload = json.loads(_only_file(out).read_text())
    rows = payload["rows"]
    per_backend = count_cases(("gemm", "sigmoid"), "small")
    assert len(rows) == 2 * per_backend
    assert sorted(payload["ops"]) == ["gemm", "sigmoid"]
    for name in ("numpy", "cpu"):
        mine = [r for r in rows if r["backend"] == name]
        assert len(mine) == per_backend
        assert {r["op"] for r in mine} == {"gemm", "sigmoid"}
    for row in rows:
        assert row["status"] == "ok", row
        assert row["gflops"] > 0
        assert row["seconds"] > 0
        assert len(row["timing"]["samples"]) >= 2
        assert row["rel_error"] < 1e-4


def test_kernels_environment_and_backend_info(kernels_run):
    _, out = kernels_run
    payload = json.loads(_only_file(out).read_text())
    env = payload["environment"]
    assert env["cpu"]
    assert env["python"] == sys.version.split()[0]
    assert env["fma_peak"] is None  # --no-peak
    info = payload["backends"]
    assert set(info) == {"numpy", "cpu"}
    assert info["numpy"]["numpy"] == np.__version__
    assert "onednn" in info["cpu"]
    assert "failed_backends" not in payload


def test_kernels_records_threads(kernels_run):
    _, out = kernels_run
    payload = json.loads(_only_file(out).read_text())
    assert payload["threads"] == 1
    assert {b["threads"] for b in payload["backends"].values()} == {1}


def test_unknown_backend_exits_2(tmp_path, capsys):
    code = main(["kernels", "--backend", "numpy,nope", *FAST, "--output", str(tmp_path)])
    assert code == 2
    out = capsys.readouterr().out
    assert "nope" in out and "backend" in out
    assert list(tmp_path.iterdir()) == []


def test_unknown_op_exits_2(tmp_path, capsys):
    code = main(["kernels", "--backend", "numpy", "--op", "nope", *FAST,
                 "--output", str(tmp_path)])
    assert code == 2
    assert "nope" in capsys.readouterr().out


def test_bad_shapes_choice_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["kernels", "--shapes", "enormous"])
    assert info.value.code == 2
    assert "enormous" in capsys.readouterr().err


def test_run_help_describes_the_model_harness(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Run whole models" in out and "--precision" in out and "--model" in out


# -- interrupt -----------------------------------------------------------------------------
FAKE_ROW = {"backend": "numpy", "op": "gemm", "case": "interrupted_case_marker",
            "status": "ok", "seconds": 1e-3, "gflops": 1.0, "gbytes_per_s": 1.0,
            "rel_error": 0.0, "timing": {"spread": 0.0}}


def test_interrupt_saves_partial_results_and_exits_130(tmp_path, monkeypatch):
    calls = []

    def interrupted(jobs, total, timeout, prepare=None):
        calls.append([job["backend"] for job in jobs])
        yield {"type": "info", "backend": "numpy", "info": {"backend": "numpy", "threads": 1}}
        yield {"type": "row", "backend": "numpy", "index": 0, "row": dict(FAKE_ROW)}
        raise KeyboardInterrupt

    monkeypatch.setattr(isolation, "run_side_by_side", interrupted)
    code = main(["kernels", "--backend", "numpy,cpu", "--op", "gemm", *FAST,
                 "--output", str(tmp_path)])
    assert code == 130
    assert calls == [["numpy", "cpu"]]
    payload = read_result(_only_file(tmp_path))
    assert payload["interrupted"] is True
    assert [row["case"] for row in payload["rows"]] == ["interrupted_case_marker"]
    assert payload["backends"]["numpy"]["threads"] == 1


def test_interrupt_before_any_row_still_saves(tmp_path, monkeypatch):
    def interrupted_at_once(jobs, total, timeout, prepare=None):
        raise KeyboardInterrupt
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(isolation, "run_side_by_side", interrupted_at_once)
    code = main(["kernels", "--backend", "numpy", "--op", "gemm", *FAST,
                 "--output", str(tmp_path)])
    assert code == 130
    payload = read_result(_only_file(tmp_path))
    assert payload["interrupted"] is True and payload["rows"] == []


def test_kernels_record_the_machine_state_and_row_flags(kernels_run):
    _, out = kernels_run
    payload = json.loads(_only_file(out).read_text())
    state = payload["machine_state"]
    assert isinstance(state["busy"], bool)
    assert set(state["thresholds"]) == {"others_share", "steal_share"}
    assert len(state["load_before"]) == 3 and len(state["load_after"]) == 3
    for row in payload["rows"]:
        assert set(row["flags"]) <= {"busy-machine", "wide-spread", "bimodal",
                                     "peak-unreliable"}
        assert row["check_finite"] == "once, outside the timing"
        assert ("busy-machine" in row["flags"]) == row["machine_state"]["busy"]


def test_kernels_with_the_torch_peer(tmp_path):
    """The torch peer runs every kernel it has on its own tensors (the shared foreign-array
    check once refused them: every torch row failed on the H200 at 35cf4f2)."""
    pytest.importorskip("torch", reason="torch is a peer (pip install 'hwbench[peers]')")
    code = main(["kernels", "--backend", "numpy", "--peers", "torch",
                 "--op", "gemm,conv2d,sigmoid,sigmoid_backward", "--threads", "1", *FAST,
                 "--output", str(tmp_path)])
    assert code == 0
    rows = [r for r in json.loads(_only_file(tmp_path).read_text())["rows"]
            if r["backend"] == "torch"]
    assert rows and {r["op"] for r in rows} == {"gemm", "conv2d", "sigmoid", "sigmoid_backward"}
    for row in rows:
        assert row["status"] == "ok", row
        assert row["rel_error"] < 1e-4, row
