"""``hwbench sweep``: specs, stable point ids, local and Ray execution, retries, resume."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hwbench.backends.systolic.config import load_config
from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.harness.suites import simulate
from hwbench.harness.sweep import report as sweep_report
from hwbench.harness.sweep.point import (
    FAILED,
    OK,
    REFUSED,
    execute_point,
    node_resources,
    point_resources,
)
from hwbench.harness.sweep.ray import ray_installed
from hwbench.harness.sweep.runner import SweepResults, results_path, run_sweep
from hwbench.harness.sweep.spec import Point, load_spec, point_id

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sweeps"
GEMM_CSV = "Layer, M, N, K,\nfc1, 64, 256, 512,\nfc2, 300, 100, 700,\n"


def _spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _small_grid(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "gemm.csv").write_text(GEMM_CSV, encoding="utf-8")
    return _spec(tmp_path, f"""
[sweep]
name = "small"
[simulate]
config = "tpu-v1"
arrays = ["32x32", "128x64"]
dataflows = ["ws", "os"]
models = ["alexnet"]
topologies = ["gemm.csv"]
{extra}
""")


# -- specs --------------------------------------------------------------------------------------
def test_example_specs_expand_to_their_grids():
    zoo = load_spec(EXAMPLES / "systolic-zoo.toml")
    assert len(zoo.points) == 8 * 3 * 4 * 2 * 4 >= 500
    assert len({p.id for p in zoo.points}) == len(zoo.points)
    fleet = load_spec(EXAMPLES / "fleet.toml")
    assert len(fleet.points) == 4 * 2 * 2 * 2
    assert {p.kind for p in fleet.points} == {"run"}


def test_point_ids_are_stable_and_depend_on_file_content_not_path(tmp_path):
    # pinned: a changed hashing scheme would orphan every saved sweep's points
    assert point_id("run", {"backend": "numpy", "model": "lenet"}) == "7623a5c4ccbd883e"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = load_spec(_small_grid(tmp_path / "a"))
    again = load_spec(_small_grid(tmp_path / "a"))
    moved = load_spec(_small_grid(tmp_path / "b"))
    assert [p.id for p in first.points] == [p.id for p in again.points]
    assert [p.id for p in first.points] == [p.id for p in moved.points]
    (tmp_path / "b" / "gemm.csv").write_text(GEMM_CSV + "fc3, 8, 8, 8,\n", encoding="utf-8")
    changed = load_spec(tmp_path / "b" / "spec.toml")
    topo = [p.id for p in changed.points if "topology" in p.params["workload"]]
    assert topo and not set(topo) & {p.id for p in first.points}


@pytest.mark.parametrize("text, message", [
    ("[simulate\n", r"spec.toml: not valid TOML"),
    ("[simulat]\nmodels = ['alexnet']", r"unknown table \[simulat\] \(did you mean \[simulate\]"),
    ("[simulate]\nmodels = ['alexnet']\narray = ['8x8']",
     r"\[simulate\] unknown key 'array' \(did you mean 'arrays'\?\)"),
    ("[simulate]\narrays = ['8x8']", r"\[simulate\] key 'models': .*needs 'models'"),
    ("[simulate]\nmodels = ['alexnet']\narrays = ['8by8']", r"\[simulate\] key 'arrays'"),
    ("[simulate]\nmodels = ['alexnet']\ndataflows = ['xs']",
     r"\[simulate\] key 'dataflows': must be among ws, os, is, got 'xs'"),
    ("[simulate]\nmodels = ['alexnet']\nbuffers = ['12 parsecs']", r"key 'buffers'"),
    ("[simulate]\nmodels = ['alexnet']\nbuffers = [{ifmap = '1MiB'}]",
     r"key 'buffers': a table must give exactly ifmap, weight and ofmap"),
    ("[simulate]\nmodels = ['alexnet']\nbandwidths = ['fast']", r"key 'bandwidths'"),
    ("[simulate]\nmodels = ['no-such-net']", r"key 'models': 'no-such-net' is neither"),
    ("[simulate]\nmodels = ['alexnet']\nconfig = 'missing.cfg'", r"key 'config': cannot read"),
    ("[simulate]\nmodels = ['alexnet']\narrays = []", r"key 'arrays': is an empty list"),
    ("[simulate]\nmodels = ['alexnet']\nbatches = [0]", r"key 'batches': must be positive"),
    ("[run]\nbackends = ['tpu']\nmodels = ['lenet']", r"\[run\] key 'backends': .*'tpu'"),
    ("[run]\nbackends = ['numpy']\nmodels = ['lenet']\nprecisions = ['fp8']",
     r"\[run\] key 'precisions'"),
    ("[run]\nmodels = ['lenet']", r"\[run\] key 'backends': is required"),
    ("[sweep]\nname = 'a/b'\n[run]\nbackends = ['numpy']\nmodels = ['lenet']",
     r"\[sweep\] key 'name'"),
    ("[sweep]\ntimeout = -1\n[run]\nbackends = ['numpy']\nmodels = ['lenet']",
     r"\[sweep\] key 'timeout'"),
    ("[sweep]\nname = 'x'", r"no grid"),
])
def test_spec_errors_name_the_file_and_key(tmp_path, text, message):
    path = _spec(tmp_path, text)
    with pytest.raises(ArgumentError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_set_overrides_build_a_spec_without_a_file():
    spec = load_spec(None, ["simulate.models=['alexnet']", "simulate.arrays=['8x8','16x16']",
                            "simulate.dataflows=os", "sweep.name=flags"])
    assert spec.name == "flags" and len(spec.points) == 2
    assert {p.params["dataflow"] for p in spec.points} == {"os"}
    with pytest.raises(ArgumentError, match="TABLE.KEY=VALUE"):
        load_spec(None, ["arrays=['8x8']"])


def test_resources_map_hardware_to_ray():
    resources = node_resources()
    assert resources["hwbench_numpy"] == 1 and resources["hwbench_timing_slot"] == 1
    cuda = Point("run", {"backend": "cuda"})
    assert point_resources(cuda) == {"num_cpus": 1, "num_gpus": 1,
                                     "resources": {"hwbench_cuda": 1}}
    gpu = point_resources(Point("run", {"backend": "opencl:GPU"}))
    assert gpu["resources"] == {"hwbench_opencl_gpu": 1} and gpu["num_gpus"] == 0
    numpy = point_resources(Point("run", {"backend": "numpy"}))
    assert numpy["resources"] == {"hwbench_numpy": 1, "hwbench_timing_slot": 1}


def test_node_resources_command_prints_json_for_ray_start(capsys):
    assert main(["node-resources"]) == 0
    assert json.loads(capsys.readouterr().out)["hwbench_numpy"] == 1


def test_pareto_front_keeps_only_undominated_points():
    points = [(1, 10), (2, 5), (2, 7), (4, 5), (8, 1), (8, 1)]
    assert sweep_report.pareto_front(points) == {0, 1, 4}
    assert sweep_report.pareto_front([(1, 1), (2, 3), (3, 2)], maximize_y=True) == {0, 1}


# -- local execution ----------------------------------------------------------------------------
def test_local_sweep_points_equal_hwbench_simulate(tmp_path, capsys):
    spec = load_spec(_small_grid(tmp_path))
    run = run_sweep(spec, tmp_path / "out", executor="local", workers=2)
    rows = {row["id"]: row for row in run.results.payload["rows"]}
    assert len(rows) == len(spec.points) == 8
    for point in spec.points:
        row = rows[point.id]
        assert row["status"] == OK, row["reason"]
        p, work = point.params, point.params["workload"]
        args = ["simulate", "--array", p["array"], "--dataflow", p["dataflow"],
                "--output", str(tmp_path / "cli")]
        args += (["--model", work["model"]] if "model" in work
                 else ["--topology", str(tmp_path / "gemm.csv")])
        assert main(args) == 0
        config = load_config("tpu-v1").with_overrides(dataflow=p["dataflow"], array=p["array"])
        report = tmp_path / "cli" / "simulate" / f"{row['result']['workload']}-{config.name}"
        cli = json.loads((report / "simulate.json").read_text())
        assert row["result"]["summary"] == cli["summary"]
        assert row["host"] and row["node"] in run.results.payload["nodes"]
    capsys.readouterr()


def test_buffer_and_bandwidth_axes_change_the_config_as_run_simulation_sees_it(tmp_path):
    spec = load_spec(None, ["simulate.models=['alexnet']", "simulate.arrays=['64x64']",
                            "simulate.buffers=[{ifmap='2MiB', weight='256KiB', ofmap='1MiB'}]",
                            "simulate.bandwidths=['10GB/s', 'unlimited']"])
    for point in spec.points:
        outcome = execute_point(point, 60)
        assert outcome["status"] == OK, outcome["reason"]
        config = replace(load_config("tpu-v1").with_overrides(array="64x64"),
                         ifmap_buffer_bytes=2 << 20, weight_buffer_bytes=256 << 10,
                         ofmap_buffer_bytes=1 << 20,
                         dram_bytes_per_s=None if point.params["bandwidth"] == "unlimited"
                         else 10e9)
        direct = simulate.run_simulation(config, model="alexnet")
        summary = {**direct.summary, "config": outcome["result"]["summary"]["config"]}
        assert outcome["result"]["summary"] == summary


def test_infeasible_config_is_refused_without_retry(tmp_path):
    spec = load_spec(None, ["simulate.models=['alexnet']", "simulate.arrays=['64x64']",
                            "simulate.buffers=['4KiB']", "simulate.dataflows=['ws']"])
    run = run_sweep(spec, tmp_path, executor="local", workers=1)
    (row,) = run.results.payload["rows"]
    assert row["status"] == REFUSED and row["attempts"] == 1
    assert "cannot fit even one tile" in row["reason"]


def _logging(log: str, point: Point, timeout: float, *, interrupt: str = "",
             crash: str = "", flaky: str = "") -> dict:
    """A task body for tests: notes each execution in ``log``; raises KeyboardInterrupt at
    point ``interrupt``, kills its process at ``crash``, fails ``flaky``'s first try."""
    folder = Path(log)
    tries = len(list(folder.glob(f"{point.id}.*")))
    (folder / f"{point.id}.{tries}").touch()
    if point.id == interrupt:
        raise KeyboardInterrupt
    if point.id == crash:
        os._exit(3)
    if point.id == flaky and tries == 0:
        raise RuntimeError("flaky")
    return execute_point(point, timeout)


def _executed(log: Path) -> list[str]:
    return [path.name.split(".")[0] for path in log.iterdir()]


def test_resume_after_interrupt_redoes_only_unfinished_points(tmp_path):
    spec = load_spec(_small_grid(tmp_path))
    first_log, second_log = tmp_path / "log1", tmp_path / "log2"
    first_log.mkdir()
    second_log.mkdir()
    stop = spec.points[4].id
    run = run_sweep(spec, tmp_path / "out", executor="local", workers=2,
                    execute=functools.partial(_logging, str(first_log), interrupt=stop))
    assert run.interrupted
    path = results_path(tmp_path / "out", "small")
    assert json.loads(path.read_text())["interrupted"] is True
    finished = SweepResults.open(path, {"created": ""}, resume=True).finished()
    assert stop not in finished and 0 < len(finished) < len(spec.points)
    with pytest.raises(Exception, match="--resume"):
        run_sweep(spec, tmp_path / "out", executor="local")
    again = run_sweep(spec, tmp_path / "out", executor="local", workers=2, resume=True,
                      execute=functools.partial(_logging, str(second_log)))
    assert not again.interrupted and again.skipped == len(finished)
    assert sorted(_executed(second_log)) == sorted(p.id for p in spec.points
                                                   if p.id not in finished)
    payload = json.loads(path.read_text())
    assert sorted(row["id"] for row in payload["rows"]) == sorted(p.id for p in spec.points)
    assert all(row["status"] == OK for row in payload["rows"])
    assert not path.with_suffix(".jsonl").exists()


def test_cli_resume_of_a_partial_results_file(tmp_path, capsys):
    spec_path = _small_grid(tmp_path)
    out = tmp_path / "out"
    base = ["sweep", str(spec_path), "--output", str(out), "--executor", "local",
            "--workers", "2"]
    assert main(base) == 0
    path = out / "sweep-small.json"
    for suffix in (".csv", ".md"):
        assert path.with_suffix(suffix).stat().st_size > 0
    assert (out / "pareto-small.png").stat().st_size > 0
    payload = json.loads(path.read_text())
    kept = payload["rows"][::2]
    payload["rows"] = kept  # as if the sweep had stopped after these
    path.write_text(json.dumps(payload))
    capsys.readouterr()
    assert main(base) == 2
    assert "--resume" in capsys.readouterr().out
    assert main(base + ["--resume"]) == 0
    out_text = capsys.readouterr().out
    assert f"{8 - len(kept)} point(s) run, {len(kept)} finished before" in out_text
    rows = json.loads(path.read_text())["rows"]
    assert len(rows) == 8 and len({row["id"] for row in rows}) == 8
    for row in kept:  # untouched: not run again
        assert next(r for r in rows if r["id"] == row["id"]) == row


def test_failed_points_are_retried_once_then_recorded_with_the_reason(tmp_path):
    spec = load_spec(_small_grid(tmp_path))
    log = tmp_path / "log"
    log.mkdir()
    crash, flaky = spec.points[1].id, spec.points[2].id
    run = run_sweep(spec, tmp_path / "out", executor="local", workers=2,
                    execute=functools.partial(_logging, str(log), crash=crash, flaky=flaky))
    rows = {row["id"]: row for row in run.results.payload["rows"]}
    assert len(rows) == len(spec.points)
    assert rows[crash]["status"] == FAILED and rows[crash]["attempts"] == 2
    assert "worker process died" in rows[crash]["reason"]
    assert rows[flaky]["status"] == OK and rows[flaky]["attempts"] == 2
    assert all(rows[p.id]["status"] == OK for p in spec.points if p.id != crash)
    assert run.results.payload["failed"] == [crash]
    assert run.failed == [spec.points[1].label]


def test_run_points_measure_models_in_an_isolated_worker(tmp_path):
    spec = load_spec(_spec(tmp_path, """
[run]
backends = ["numpy", "cuda:7"]
models = ["mlp"]
repeats = 2
min_time = 0
max_time = 0.05
"""))
    run = run_sweep(spec, tmp_path / "out", executor="local", workers=1)
    rows = {row["params"]["backend"]: row for row in run.results.payload["rows"]}
    assert rows["numpy"]["status"] == OK, rows["numpy"]["reason"]
    result = rows["numpy"]["result"]
    assert result["samples_per_s"] > 0 and result["top1"] > 0.9 and "rel_error" in result
    assert rows["cuda:7"]["status"] in (REFUSED, OK)  # refused here: no cuda, no retry
    if rows["cuda:7"]["status"] == REFUSED:
        assert rows["cuda:7"]["attempts"] == 1
    assert "numpy" in sweep_report.to_markdown(run.results.payload)


def test_omp_wait_is_an_axis_the_workers_get_and_the_rows_record(tmp_path, monkeypatch):
    from hwbench.harness.running import omp_wait

    for key in omp_wait.KEYS:
        monkeypatch.delenv(key, raising=False)
    text = """
[run]
backends = ["numpy"]
models = ["mlp"]
repeats = 1
min_time = 0
max_time = 0.01
"""
    plain = load_spec(_spec(tmp_path, text))
    assert [sorted(p.params) for p in plain.points] == [  # no axis: the ids as before
        ["backend", "batch", "model", "precision", "threads", "timing"]]
    spec = load_spec(_spec(tmp_path, text + 'omp_wait = ["passive", "active"]\n', "w.toml"))
    assert [p.params["omp_wait"] for p in spec.points] == ["passive", "active"]
    assert len({p.id for p in spec.points} | {plain.points[0].id}) == 3
    assert spec.points[1].label == "numpy mlp b1 fp32 omp active"
    run = run_sweep(spec, tmp_path / "out", executor="local", workers=1)
    rows = {row["params"]["omp_wait"]: row for row in run.results.payload["rows"]}
    for policy in ("passive", "active"):
        assert rows[policy]["status"] == OK, rows[policy]["reason"]
        result = rows[policy]["result"]
        assert result["omp_wait"] == policy and "--omp-wait " + policy in result["omp_wait_why"]
        # what the worker's libgomp read: the policy's own variables, nothing else
        assert result["backend_info"]["openmp_wait_env"] == omp_wait.SETTINGS[policy]
    with pytest.raises(ArgumentError, match=r"\[run\] key 'omp_wait': must be among auto, "
                                            r"passive, active, got 'spin'"):
        load_spec(_spec(tmp_path, text + 'omp_wait = ["spin"]\n', "bad.toml"))


# -- Ray ----------------------------------------------------------------------------------------
def _slow(log: str, point: Point, timeout: float) -> dict:
    """Note the worker's pid, linger so the test can kill it, then run the point."""
    (Path(log) / f"{os.getpid()}-{point.id}").touch()
    time.sleep(0.4)
    return execute_point(point, timeout)


@pytest.mark.skipif(not ray_installed(), reason="Ray is not installed (pip install "
                                                "'hwbench[cluster]')")
def test_ray_sweep_loses_no_point_when_a_worker_is_killed(tmp_path):
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    spec = load_spec(_small_grid(tmp_path, 'buffers = ["1MiB", "4MiB"]'))
    log = tmp_path / "pids"
    log.mkdir()
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = sorted(log.iterdir(), key=lambda p: p.stat().st_mtime)
            if len(busy) >= 3:  # mid-sweep: a worker that is running a point
                pid = int(busy[-1].name.split("-")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        killer = threading.Thread(target=kill_one_worker, daemon=True)
        killer.start()
        run = run_sweep(spec, tmp_path / "out", executor="ray",
                        execute=functools.partial(_slow, str(log)))
        killer.join()
    finally:
        ray.shutdown()
    assert killed, "no worker was killed"
    # the killed worker's point ran again elsewhere: more executions than points
    assert len(list(log.iterdir())) > len(spec.points)
    ids = [row["id"] for row in run.results.payload["rows"]]
    assert sorted(ids) == sorted(p.id for p in spec.points)  # every point exactly once
    assert all(row["status"] == OK for row in run.results.payload["rows"])
    assert all(row["node"] and "/" in row["node"] for row in run.results.payload["rows"])
    assert run.results.payload["executor"]["kind"] == "ray"


def test_a_point_past_its_timeout_fails_with_the_reason(monkeypatch):
    from hwbench.harness.sweep import point as sweep_point

    monkeypatch.setattr(sweep_point, "simulate_point", lambda point: time.sleep(30))
    (point,) = load_spec(None, ["simulate.models=['alexnet']"]).points
    start = time.monotonic()
    outcome = execute_point(point, 0.3)
    assert outcome["status"] == FAILED and outcome["reason"] == "timed out after 0.3 s"
    assert time.monotonic() - start < 10


def test_without_ray_the_sweep_runs_locally_and_says_ray_would_spread_it(tmp_path,
                                                                           monkeypatch):
    from hwbench.harness.sweep import ray as sweep_ray

    monkeypatch.setattr(sweep_ray, "ray_installed", lambda: False)
    spec = load_spec(None, ["simulate.models=['alexnet']", "simulate.arrays=['16x16']"])
    run = run_sweep(spec, tmp_path, workers=1)
    assert run.executor == "local" and run.results.payload["rows"][0]["status"] == OK
    assert any("pip install 'hwbench[cluster]'" in note for note in run.notes)
    with pytest.raises(ArgumentError, match="Ray is not installed"):
        run_sweep(spec, tmp_path / "other", executor="ray")
