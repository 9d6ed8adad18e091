"""The measured-results tables of README.md and docs/ are rendered from results/, not typed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwbench.errors import ResultsError
from hwbench.harness.results import doc_tables

ROOT = Path(__file__).resolve().parent.parent


def test_every_table_in_the_docs_matches_its_results_file():
    # what CI runs: a retyped figure, or a re-measured file without its page, fails here
    assert doc_tables.stale(ROOT) == []


def test_the_check_command_passes_on_this_checkout():
    done = subprocess.run([sys.executable, "-m", "hwbench.harness.results.doc_tables",
                           "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_docs_use_every_table_and_name_only_known_ones():
    used = {m.group(2) for page in doc_tables.pages(ROOT)
            for m in doc_tables.MARKER.finditer(page.read_text(encoding="utf-8"))}
    assert used == set(doc_tables.TABLES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- results:" in readme  # the headline table is generated too


@pytest.mark.parametrize("name", sorted(doc_tables.MEASURED))
def test_each_table_names_its_hardware_and_its_file(name):
    table = doc_tables.render(name, ROOT)
    assert "AMD EPYC" in table and "amd-epyc-zen4-2core" in table
    assert "from `results/amd-epyc-zen4-2core/" in table
    assert table.count("\n| ") >= 3  # header, rule, at least one row


@pytest.fixture
def copy(tmp_path):
    """A copy of the pages and results this module reads."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "results", tmp_path / "results",
                    ignore=shutil.ignore_patterns("*.png", "benchmarks"))
    return tmp_path


def _edit_result(root: Path, name: str, edit) -> None:
    path = root / "results" / doc_tables.MACHINE / name
    payload = json.loads(path.read_text(encoding="utf-8"))
    edit(payload)
    path.write_text(json.dumps(payload), encoding="utf-8")


def _cpu_gemm(payload):
    return next(r for r in payload["rows"] if r["backend"] == "cpu"
                and r["case"] == "gemm_2048^3")


def test_a_changed_results_file_changes_the_table_and_the_check_fails(copy, capsys):
    before = doc_tables.render("kernels-headline", copy)
    assert "| `gemm_2048^3` | 194 | 220 | 194 | 184 | 94 % | 1.19× |" in before
    _edit_result(copy, "kernels-vm-20261125-082612.json",
                 lambda p: _cpu_gemm(p).update(gflops=110.0, fraction_of_peak=0.47))
    after = doc_tables.render("kernels-headline", copy)
    assert "| `gemm_2048^3` | 194 | 110 | 194 | 184 | 47 % | 0.60× |" in after
    assert doc_tables.main(["--check"], root=copy) == 1
    out = capsys.readouterr().out
    assert "docs/results.md: results:kernels-headline" in out
    assert "README.md: results:kernels-headline" in out
    assert doc_tables.main([], root=copy) == 0  # regenerating brings the pages in line
    assert doc_tables.main(["--check"], root=copy) == 0
    assert "| 110 |" in (copy / "docs" / "results.md").read_text(encoding="utf-8")


def test_a_retyped_figure_fails_the_check(copy):
    page = copy / "docs" / "results.md"
    text = page.read_text(encoding="utf-8")
    assert "| 24.5 |" in text  # resnet50 on cpu in the models-fp32 table, the first one
    page.write_text(text.replace("| 24.5 |", "| 24.6 |", 1), encoding="utf-8")
    assert doc_tables.stale(copy) == ["docs/results.md: results:models-fp32"]


def test_a_model_row_that_failed_shows_a_dash_not_a_figure(copy):
    def fail(payload):
        row = next(r for r in payload["rows"] if r["backend"] == "cpu"
                   and r["model"] == "resnet50" and r["batch"] == 8)
        row.update(status="error", reason="planted")
    _edit_result(copy, "models-vm-20261204-144327.json", fail)
    table = doc_tables.render("models-fp32", copy)
    row = next(line for line in table.splitlines() if line.startswith("| resnet50 "))
    assert row.split(" | ")[2] == "—" and "— |" in row  # cpu cell and cpu / onnxruntime


def test_a_corrupt_results_file_is_refused_by_the_one_reader(copy):
    _edit_result(copy, "models-vm-20261125-130513.json",
                 lambda p: p["rows"][0].update(samples_per_s="fast"))
    with pytest.raises(ResultsError, match="samples_per_s"):
        doc_tables.render("models-int8-fast", copy)


def test_an_unknown_table_name_is_refused():
    with pytest.raises(ResultsError, match="no results table 'nope'"):
        doc_tables.render("nope", ROOT)


def test_flagged_rows_and_a_busy_run_are_marked(copy):
    def flag(payload):
        _cpu_gemm(payload)["flags"] = ["busy-machine"]
        payload["machine_state"] = {"busy": True, "others_share": 0.6, "load_before": [3.0],
                                    "load_after": [3.1], "thresholds": {"others_share": 0.25}}
    _edit_result(copy, "kernels-vm-20261125-082612.json", flag)
    table = doc_tables.render("kernels-headline", copy)
    assert "| `gemm_2048^3` | 194 | 220 ⚠ | 194 | 184 |" in table
    assert "> **Warning:** the machine was busy during this run" in table
    assert "1 row(s) flagged as untrustworthy (busy-machine 1)" in table


# -- models-peers (hwbench/harness/results/peer_tables.py) ----------------------------------

def _peer_source(rows, models=("a", "b"), backends=None):
    from hwbench.harness.results.table_parts import Source

    result = {"models": list(models), "threads": 2, "created": "2026-12-04",
              "environment": {"cpu": "Test CPU", "cores_available": 2},
              "backends": backends or {"cpu": {}, "onnxruntime": {
                  "threads": 2, "inter_op_threads": 1, "execution_mode": "sequential",
                  "graph_optimization_level": "all"}, "torch": {
                  "torch_build": "CPU", "threads": 2, "interop_threads": 1}},
              "rows": rows}
    return Source(Path("results/m/x.json"), result)


def _speed_row(backend, model, batch, speed, status="ok", **extra):
    return {"backend": backend, "model": model, "batch": batch, "precision": "fp32",
            "status": status, "samples_per_s": speed,
            "timing": {"samples": [1.0] * 5}, **extra}


def _peer_rows(a_cpu=10.0):
    rows = []
    for batch in (1, 8):
        rows += [_speed_row("cpu", "a", batch, a_cpu), _speed_row("onnxruntime", "a", batch, 20.0),
                 _speed_row("torch", "a", batch, 5.0),
                 _speed_row("cpu", "b", batch, 40.0), _speed_row("onnxruntime", "b", batch, 20.0)]
    rows.append(_speed_row("torch", "b", 1, 8.0))
    rows.append(_speed_row("torch", "b", 8, None, status="unsupported",
                           reason="torch peer: planted refusal"))
    return rows


def test_peer_table_shows_each_engine_and_the_ratios_computed_from_the_rows(monkeypatch):
    from hwbench.harness.results import peer_tables

    monkeypatch.setattr(peer_tables, "zoo_names", lambda: ["a", "b", "c"])
    lines = peer_tables.models_peers_table(_peer_source(_peer_rows()))
    text = "\n".join(lines)
    assert "| a | 1 | 10.0 | 20.0 | 5.0 | 0.50× | 2.00× |" in text
    assert "| b | 8 | 40.0 | 20.0 | — | 2.00× | — |" in text  # torch refused: a dash
    assert "planted refusal (b b8)" in text  # ... and the reason under the table
    assert "Not in this run: c" in text and "2 of 3 zoo models" in text
    assert "inter-op 1, sequential execution, graph optimization level all" in text
    assert "PyTorch: CPU build, 2 threads (inter-op 1)" in text
    assert "Test CPU, 2 cores" in lines[0]  # the hardware, named
    changed = "\n".join(peer_tables.models_peers_table(_peer_source(_peer_rows(a_cpu=30.0))))
    assert "| a | 1 | 30.0 | 20.0 | 5.0 | 1.50× | 6.00× |" in changed


def test_peer_summary_gives_geometric_means_and_the_worst_model(monkeypatch):
    from hwbench.harness.results import peer_tables

    monkeypatch.setattr(peer_tables, "zoo_names", lambda: ["a", "b"])
    text = "\n".join(peer_tables.models_peers_summary(_peer_source(_peer_rows())))
    # a: 0.5, b: 2.0 -> geometric mean 1.00; the worst is a
    assert "| cpu / onnxruntime | 1 | 2 | 1.00× | a (0.50×) |" in text
    assert "| cpu / torch | 8 | 1 | 2.00× | a (2.00×) |" in text  # b's torch row refused
    assert "every zoo model" in text
    monkeypatch.setattr(peer_tables, "zoo_names", lambda: ["a", "b", "c"])
    assert "2 of 3 zoo models (a subset" in "\n".join(
        peer_tables.models_peers_summary(_peer_source(_peer_rows())))


def test_peer_ratios_give_one_line_a_model_and_mark_those_under_the_goal():
    from hwbench.harness.results import peer_tables

    rows = _peer_rows()
    rows[0]["flags"] = ["wide-spread"]  # a's cpu row at batch 1
    text = "\n".join(peer_tables.models_peers_ratios(_peer_source(rows)))
    # a: 10/s against 20/s -> 0.50x, under the goal: bold, and flagged; 100 ms against 50 ms
    assert "| a | 100 ms | 50.0 ms | **0.50×** ⚠ | **0.50×** | 2.00× ⚠ | 2.00× |" in text
    assert "| b | 25.0 ms | 50.0 ms | 2.00× | 2.00× | 5.00× | — |" in text  # torch refused
    faster = "\n".join(peer_tables.models_peers_ratios(_peer_source(_peer_rows(a_cpu=18.0))))
    assert "| 0.90× | 0.90× |" in faster and "**" not in faster.split("\n\n")[1]


def test_the_committed_peer_tables_follow_their_file(copy):
    from hwbench.harness.results import peer_tables

    name = "models-peers"
    before = doc_tables.render(name, copy)
    file = before.split("from `")[1].split("`")[0]

    def slower(payload):
        for row in payload["rows"]:
            if row["backend"] == peer_tables.OURS and row.get("status") == "ok":
                row["samples_per_s"] /= 3
    _edit_result(copy, Path(file).name, slower)
    assert doc_tables.render(name, copy) != before
    assert "docs/results.md: results:models-peers" in doc_tables.stale(copy)
