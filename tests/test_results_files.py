"""No result is ever lost to another run (issue 13, defect 4).

Two ``hwbench`` runs started in the same second once printed one path and the second
overwrote the first. Results files are now created exclusively: every writer gets a file
of its own, and the CLI prints the path actually written.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
from pathlib import Path

import pytest

from hwbench.cli import main
from hwbench.errors import ResultsError
from hwbench.files import make_new_folder, write_new
from hwbench.harness.results import result_files as results_module
from hwbench.harness.results.result_files import create_json, create_result_file, read_result

WRITERS = 12


@pytest.fixture
def same_second(monkeypatch):
    """Every result file name asks for the same time stamp (runs in one second)."""
    monkeypatch.setattr(results_module.time, "strftime", lambda fmt, *a: "20260101-120000")


def test_same_second_result_files_get_distinct_names(tmp_path, same_second):
    paths = [create_result_file(tmp_path, "models", {"run": i}) for i in range(3)]
    assert len(set(paths)) == 3
    assert [json.loads(p.read_text())["run"] for p in paths] == [0, 1, 2]
    assert paths[1].name.endswith("-120000-2.json")


def test_concurrent_threads_never_share_a_file(tmp_path, same_second):
    barrier = threading.Barrier(WRITERS)
    written: list[Path] = []

    def writer(i: int) -> None:
        barrier.wait()
        written.append(create_result_file(tmp_path, "kernels", {"writer": i, "pad": "x" * 5000}))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(written)) == WRITERS
    found = sorted(json.loads(p.read_text())["writer"] for p in tmp_path.glob("*.json"))
    assert found == list(range(WRITERS))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def _process_writer(args: tuple[str, int]) -> str:
    folder, i = args
    return str(create_json(Path(folder) / "same.json", {"writer": i}))


def test_concurrent_processes_never_share_a_file(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        written = pool.map(_process_writer, [(str(tmp_path), i) for i in range(WRITERS)])
    assert len(set(written)) == WRITERS
    assert sorted(json.loads(Path(p).read_text())["writer"] for p in written) == list(
        range(WRITERS))


def test_an_existing_file_is_never_replaced(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("precious")
    assert write_new(target, lambda fh: fh.write("new")) == tmp_path / "a-2.json"
    assert target.read_text() == "precious"
    with pytest.raises(ResultsError, match="exists"):
        write_new(target, lambda fh: fh.write("new"), unique=False)
    assert target.read_text() == "precious"


def test_new_folders_are_numbered(tmp_path):
    assert make_new_folder(tmp_path / "r") == tmp_path / "r"
    assert make_new_folder(tmp_path / "r") == tmp_path / "r-2"


def _kernels(output: Path) -> list[str]:
    return ["kernels", "--backend", "numpy", "--op", "sigmoid", "--shapes", "small",
            "--repeats", "1", "--min-time", "0", "--max-time", "0.01", "--no-peak",
            "--output", str(output)]


def test_two_kernels_runs_in_one_second_keep_both_files(tmp_path, same_second, capsys):
    printed = []
    for _ in range(2):
        assert main(_kernels(tmp_path)) == 0
        printed += re.findall(r"results: (\S+\.json)", capsys.readouterr().out)
    assert len(printed) == 2 and printed[0] != printed[1]
    for path in printed:
        assert len(read_result(path)["rows"]) == 2  # each file holds its own run, complete


def test_two_simulations_of_one_workload_keep_both_reports(tmp_path, capsys):
    args = ["simulate", "--model", "lenet", "--config", "tpu-v1", "--output", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    reports = re.findall(r"reports: (\S+COMPUTE_REPORT\.csv)", out)
    assert len(reports) == 2 and reports[0] != reports[1]
    assert all(Path(r).is_file() for r in reports)


def test_two_trainings_to_the_default_path_keep_both_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for seed in ("1", "2"):
        assert main(["train", "--model", "mlp", "--epochs", "1", "--seed", seed]) == 0
    written = re.findall(r"weights: (\S+\.npz)", capsys.readouterr().out)
    assert written == ["results/weights/mlp.npz", "results/weights/mlp-2.npz"]
    assert all((tmp_path / w).is_file() for w in written)


def test_a_sweep_never_takes_over_another_sweeps_file(tmp_path):
    from hwbench.harness.sweep.runner import SweepResults

    header = {"schema": "hwbench.sweep", "version": 1, "created": "now", "nodes": {}}
    first = SweepResults.open(tmp_path / "sweep-x.json", header, resume=False)
    assert first.path.is_file()  # claimed at once, before any point runs
    with pytest.raises(ResultsError, match="--resume"):
        SweepResults.open(tmp_path / "sweep-x.json", header, resume=False)


def test_two_tunes_at_once_keep_both_winners(tmp_path, monkeypatch):
    """``hwbench tune`` updates one cache file: two at once (gemm and gemm_int8, or two
    devices) once kept only the last writer's entry."""
    import time

    from hwbench.backends.opencl import tile_params

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    read = tile_params._read

    def slow_read(path):  # widen the read-modify-write window
        data = read(path)
        time.sleep(0.2)
        return data

    monkeypatch.setattr(tile_params, "_read", slow_read)
    stores = [threading.Thread(target=tile_params.store, args=(f"device{i}", "sgemm_packed",
                                                              {"MR": 4}, 1.0, (64, 64, 64)))
              for i in range(4)]
    for t in stores:
        t.start()
    for t in stores:
        t.join()
    devices = json.loads(tile_params.tuning_file().read_text())["devices"]
    assert sorted(devices) == [f"device{i}" for i in range(4)]
