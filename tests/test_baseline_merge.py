"""The CI baseline as the median of N recordings (``baseline_merge``): the median recording
per benchmark by normalized median, its stats rescaled to one reference so that ``hwbench
compare --normalized`` reads the merged file as that recording; refusals of mixed inputs.

Synthetic pytest-benchmark JSON in the shape ``scripts/ci-benchmarks.sh --benchmark-json``
writes (stats with data, extra_info, the top-level ``hwbench`` reference workload).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from hwbench.cli import main as hwbench_main
from hwbench.errors import ResultsError
from hwbench.harness.results import baseline_merge
from hwbench.harness.results.benchmark_runs import load_run, newest_json
from hwbench.harness.results.comparison import compare_runs
from hwbench.harness.results.result_files import new_result, write_json_atomic

GEMM_FLOPS = 2 * 512 ** 3
ADD_BYTES = 3 * 4 * (1 << 24)
COMPUTE = "benchmarks/test_kernel_benchmarks.py::test_kernel[gemm-numpy]"
MEMORY = "benchmarks/test_kernel_benchmarks.py::test_kernel[add-numpy]"
PEER = "benchmarks/test_peer_ratios.py::test_peer_ratio[lenet-cpu]"


def _bench(fullname: str, median: float, flops: float = 1e9, nbytes: float = 1e6,
           **extra) -> dict:
    """One pytest-benchmark entry with 20 samples around ``median`` (exactly its median)."""
    data = [float(v) for v in median * np.linspace(0.9, 1.1, 21)[np.arange(21) != 10]]
    data.insert(10, median)
    q1, med, q3 = (float(v) for v in np.percentile(data, [25, 50, 75]))
    mean = float(np.mean(data))
    return {"group": None, "name": fullname.split("::")[1], "fullname": fullname,
            "params": None, "param": None,
            "extra_info": {"hwbench": "0.1.0", "backend": "numpy", "flops": flops,
                           "bytes": nbytes, "unit": "GFLOP/s", "rel_error": 1e-7,
                           "seconds": med, "rate": flops / med / 1e9,
                           "gbytes_per_s": nbytes / med / 1e9,
                           "backend_info": {"backend": "numpy", "numpy": "2.4.6"}, **extra},
            "options": {"timer": "perf_counter"},
            "stats": {"min": min(data), "max": max(data), "mean": mean,
                      "stddev": float(np.std(data)), "rounds": len(data), "median": med,
                      "iqr": q3 - q1, "q1": q1, "q3": q3, "iqr_outliers": 0,
                      "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": min(data),
                      "hd15iqr": max(data), "ops": 1 / mean, "total": float(sum(data)),
                      "data": data, "iterations": 1}}


def _recording(path: Path, benches: list[dict], gflops: float = 100.0, gbps: float = 20.0,
               host: str = "vm", commit: str = "c0ffee", version: int = 1) -> Path:
    reference = {"version": version, "threads": 1,
                 "gemm": {"seconds": GEMM_FLOPS / gflops / 1e9, "gflops": gflops},
                 "stream": {"seconds": ADD_BYTES / gbps / 1e9, "gbytes_per_s": gbps}}
    payload = {"machine_info": {"node": host, "machine": "x86_64", "system": "Linux",
                                "python_implementation": "CPython", "python_version": "3.11.7",
                                "cpu": {"brand_raw": "AMD EPYC", "count": 2, "bits": 64}},
               "commit_info": {"id": commit, "dirty": False},
               "benchmarks": copy.deepcopy(benches),
               "datetime": f"2026-12-04T16:00:0{path.stem[-1]}+00:00", "version": "5.3.1",
               "hwbench": {"reference_workload": reference, "threads": 1,
                           "versions": {"hwbench": "0.1.0", "numpy": "2.4.6"}}}
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def _merged(tmp_path: Path, recordings: list[Path]) -> tuple[dict, Path]:
    out = tmp_path / "merged.json"
    baseline_merge.save(baseline_merge.merge(recordings), out)
    return json.loads(out.read_text(encoding="utf-8")), out


def _by_name(payload: dict) -> dict[str, dict]:
    return {b["fullname"]: b for b in payload["benchmarks"]}


def test_the_recording_with_the_median_median_is_picked(tmp_path):
    medians = [1e-3, 5e-3, 2e-3, 4e-3, 3e-3]
    paths = [_recording(tmp_path / f"r{i}", [_bench(COMPUTE, m)]) for i, m in enumerate(medians)]
    payload, _ = _merged(tmp_path, paths)
    bench = _by_name(payload)[COMPUTE]
    assert bench["extra_info"]["baseline_merge"]["from"] == "r4"
    assert bench["stats"]["median"] == pytest.approx(3e-3, rel=1e-12)
    assert bench["extra_info"]["baseline_merge"]["spread"] == pytest.approx(4.0)


def test_an_even_count_takes_the_slower_middle_recording(tmp_path):
    paths = [_recording(tmp_path / f"r{i}", [_bench(COMPUTE, m)])
             for i, m in enumerate([1e-3, 4e-3, 2e-3, 3e-3])]
    payload, _ = _merged(tmp_path, paths)
    assert _by_name(payload)[COMPUTE]["extra_info"]["baseline_merge"]["from"] == "r3"


def _machines(tmp_path: Path) -> list[Path]:
    """Three recordings on a fast, a middle and a slow moment of the machine: by raw median
    r1 is the middle one of both benchmarks, by normalized median r2 (compute: medians x
    GFLOP/s 200, 300, 250) and r0 (memory: medians x GB/s 0.06, 0.08, 0.05)."""
    return [_recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3),
                                         _bench(MEMORY, 1.5e-3, 1e6, 1e9)],
                       gflops=200.0, gbps=40.0),
            _recording(tmp_path / "r1", [_bench(COMPUTE, 3e-3), _bench(MEMORY, 4e-3, 1e6, 1e9)],
                       gflops=100.0, gbps=20.0),
            _recording(tmp_path / "r2", [_bench(COMPUTE, 5e-3), _bench(MEMORY, 5e-3, 1e6, 1e9)],
                       gflops=50.0, gbps=10.0)]


def test_recordings_are_judged_by_normalized_medians_and_rescaled_to_one_reference(tmp_path):
    payload, _ = _merged(tmp_path, _machines(tmp_path))
    assert payload["hwbench"]["reference_workload"]["gemm"]["gflops"] == 100.0  # r1's
    compute, memory = _by_name(payload)[COMPUTE], _by_name(payload)[MEMORY]
    assert compute["extra_info"]["baseline_merge"]["from"] == "r2"
    assert memory["extra_info"]["baseline_merge"]["from"] == "r0"
    # r2's 5 ms on a 50 GFLOP/s moment is 2.5 ms at r1's 100 GFLOP/s; every time alike
    assert compute["stats"]["median"] == pytest.approx(2.5e-3, rel=1e-12)
    assert compute["stats"]["data"] == pytest.approx([s / 2 for s in _bench(COMPUTE, 5e-3)
                                                      ["stats"]["data"]], rel=1e-12)
    assert compute["stats"]["q1"] < compute["stats"]["median"] < compute["stats"]["q3"]
    assert compute["stats"]["ops"] == pytest.approx(2 / _bench(COMPUTE, 5e-3)["stats"]["mean"])
    assert compute["extra_info"]["seconds"] == pytest.approx(2.5e-3)
    # r0's 1.5 ms of memory-bound work at 40 GB/s is 3 ms at r1's 20 GB/s
    assert memory["stats"]["median"] == pytest.approx(3e-3, rel=1e-12)


def test_compare_normalized_reads_the_merged_file_as_the_picked_recording(tmp_path):
    paths = _machines(tmp_path)
    _, merged = _merged(tmp_path, paths)
    base = load_run(merged)
    compute = [200.0, 300.0, 250.0]  # r2 was picked
    memory = [0.06, 0.08, 0.05]  # r0 was picked
    for i, path in enumerate(paths):
        ratios = {c.key: c.ratio for c in compare_runs(base, load_run(path), normalized=True
                                                       ).changes}
        assert ratios[COMPUTE] == pytest.approx(compute[i] / compute[2], rel=1e-9)
        assert ratios[MEMORY] == pytest.approx(memory[i] / memory[0], rel=1e-9)
    same = compare_runs(base, load_run(paths[2]), normalized=True)
    assert {c.key: c.ratio for c in same.changes}[COMPUTE] == pytest.approx(1.0, rel=1e-12)


def test_hwbench_compare_loads_the_merged_file(tmp_path, capsys):
    paths = _machines(tmp_path)
    _, merged = _merged(tmp_path, paths)
    assert hwbench_main(["compare", "--normalized", "--fail-on", "median:75%", str(merged),
                         str(paths[1])]) == 0
    out = capsys.readouterr().out
    assert "normalized" in out and "test_kernel[gemm-numpy]" in out


def test_ratio_vs_onnxruntime_is_the_median_over_recordings(tmp_path):
    ratios = [1.0, 2.0, 3.0, 0.5, 5.0]
    paths = [_recording(tmp_path / f"r{i}", [_bench(PEER, 1e-3 * (i + 1),
                                                    ratio_vs_onnxruntime=r)])
             for i, r in enumerate(ratios)]
    payload, _ = _merged(tmp_path, paths)
    bench = _by_name(payload)[PEER]
    assert bench["extra_info"]["ratio_vs_onnxruntime"] == 2.0
    assert bench["extra_info"]["baseline_merge"]["from"] == "r2"  # whose own ratio was 3.0


def test_a_benchmark_missing_from_some_recordings_is_the_median_of_the_rest(tmp_path):
    extra = [None, 4e-3, None, 1e-3, 2e-3]
    ratios = [None, 1.0, None, 2.0, 3.0]  # the median, 2.0, is not the picked r4's
    paths = [_recording(tmp_path / f"r{i}", [_bench(COMPUTE, 1e-3)] +
                        ([_bench(PEER, m, ratio_vs_onnxruntime=r)] if m else []))
             for i, (m, r) in enumerate(zip(extra, ratios, strict=True))]
    bench = _by_name(_merged(tmp_path, paths)[0])[PEER]
    assert bench["extra_info"]["baseline_merge"] == {"from": "r4", "of": 3,
                                                     "spread": pytest.approx(3.0)}
    assert bench["extra_info"]["ratio_vs_onnxruntime"] == 2.0


def test_flagged_rows_are_picked_only_where_every_recording_flagged_them(tmp_path):
    busy = {"flags": ["busy-machine"]}
    paths = [_recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3), _bench(MEMORY, 1e-3, **busy)]),
             _recording(tmp_path / "r1", [_bench(COMPUTE, 2e-3, **busy),
                                          _bench(MEMORY, 2e-3, **busy)]),
             _recording(tmp_path / "r2", [_bench(COMPUTE, 3e-3), _bench(MEMORY, 3e-3, **busy)])]
    merged = _by_name(_merged(tmp_path, paths)[0])
    assert merged[COMPUTE]["extra_info"]["baseline_merge"]["from"] == "r2"  # of r0, r2
    assert merged[MEMORY]["extra_info"]["baseline_merge"]["from"] == "r1"


def test_a_benchmark_no_recording_timed_validly_is_left_out_and_said(tmp_path):
    broken = _bench(MEMORY, 1e-3)
    broken["stats"]["data"] = [float("nan")] * 3
    paths = [_recording(tmp_path / f"r{i}", [_bench(COMPUTE, 1e-3), broken]) for i in range(3)]
    payload, _ = _merged(tmp_path, paths)
    assert list(_by_name(payload)) == [COMPUTE]
    assert payload["hwbench"]["baseline_merge"]["dropped"] == [MEMORY]


def test_provenance_names_the_sources_the_method_and_the_count(tmp_path):
    payload, _ = _merged(tmp_path, _machines(tmp_path))
    info = payload["hwbench"]["baseline_merge"]
    assert info["recordings"] == 3 and info["reference_from"] == "r1"
    assert [s["file"] for s in info["sources"]] == ["r0", "r1", "r2"]
    assert [s["sgemm_gflops"] for s in info["sources"]] == [200.0, 100.0, 50.0]
    assert [s["add_gbytes_per_s"] for s in info["sources"]] == [40.0, 20.0, 10.0]
    assert "median" in info["method"]
    assert payload["datetime"] == "2026-12-04T16:00:02+00:00"  # the newest source's
    assert payload["commit_info"]["id"] == "c0ffee"


@pytest.mark.parametrize("odd, why", [
    ({"host": "other-vm"}, "another machine"),
    ({"commit": "deadbeef"}, "commit"),
    ({"version": 2}, "reference workload version"),
])
def test_mixed_recordings_are_refused(tmp_path, odd, why):
    paths = [_recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3)]),
             _recording(tmp_path / "r1", [_bench(COMPUTE, 1e-3)], **odd)]
    with pytest.raises(ResultsError, match=why):
        baseline_merge.merge(paths)


def test_other_library_versions_are_refused(tmp_path):
    other = _bench(COMPUTE, 1e-3)
    other["extra_info"]["backend_info"]["numpy"] = "2.5.0"
    paths = [_recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3)]),
             _recording(tmp_path / "r1", [other])]
    with pytest.raises(ResultsError, match="numpy/numpy 2.5.0"):
        baseline_merge.merge(paths)


def test_recordings_without_a_reference_workload_or_none_at_all_are_refused(tmp_path):
    path = _recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3)])
    payload = json.loads(path.read_text(encoding="utf-8"))
    del payload["hwbench"]
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ResultsError, match="argument 'recordings'.*no reference workload"):
        baseline_merge.merge([path])
    with pytest.raises(ResultsError, match="no recording"):
        baseline_merge.merge([])
    with pytest.raises(ResultsError, match="is a folder"):
        baseline_merge.merge([tmp_path])


def test_the_cli_saves_the_next_numbered_file_that_newest_json_picks(tmp_path, capsys):
    storage = tmp_path / "benchmarks"
    folder = storage / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    old = _recording(folder / "0003_abc_20261125_130651.json", [_bench(COMPUTE, 1e-3)])
    paths = _machines(tmp_path)
    assert baseline_merge.main([*map(str, paths), "--storage", str(storage)]) == 0
    saved = newest_json(storage)
    assert saved != old and saved.parent == folder
    assert saved.name.startswith("0004_c0ffee_") and saved.suffix == ".json"
    assert str(saved) in capsys.readouterr().out
    assert load_run(saved).entries[COMPUTE].median == pytest.approx(2.5e-3)


def test_the_cli_reports_a_refusal_without_a_traceback(tmp_path, capsys):
    paths = [_recording(tmp_path / "r0", [_bench(COMPUTE, 1e-3)]),
             _recording(tmp_path / "r1", [_bench(COMPUTE, 1e-3)], host="elsewhere")]
    assert baseline_merge.main([*map(str, paths), "-o", str(tmp_path / "m.json")]) == 2
    assert "another machine" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_hwbench_results_files_are_refused(tmp_path):
    kernels = write_json_atomic(tmp_path / "kernels.json", new_result(
        "kernels", {"host": "vm"}, threads=1, backends={}))
    with pytest.raises(ResultsError, match="not pytest-benchmark JSON"):
        baseline_merge.merge([kernels])
