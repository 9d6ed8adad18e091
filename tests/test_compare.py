"""``hwbench compare``: flags a planted 2× slowdown, stays quiet on noise and on itself.

Synthetic result files pin the rule down exactly; real runs (a kernel timed twice in this
process, and pytest-benchmark runs through ``pytester``) check it on this machine's noise,
with a kernel monkeypatched to do its work two or three times as the planted slowdown.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from hwbench.cli import main
from hwbench.errors import ArgumentError, ResultsError
from hwbench.harness.results import compare
from hwbench.harness.results.result_files import new_result, write_json_atomic

pytest_plugins = ("pytester",)

REFERENCE = {"version": 1, "threads": 2,
             "gemm": {"seconds": 2e-3, "gflops": 134.0, "spread": 0.01},
             "stream": {"seconds": 2e-2, "gbytes_per_s": 10.0, "spread": 0.01}}
ENV = {"hwbench": "0.1.0", "host": "vm", "cpu": "AMD EPYC", "cores_available": 2,
       "machine": "x86_64", "python": "3.11.7", "numpy": "2.4.6",
       "reference_workload": REFERENCE}


def _row(op: str, case: str, backend: str, seconds: np.ndarray, **extra) -> dict:
    samples = [float(s) for s in seconds]
    return {"op": op, "case": case, "backend": backend, "status": "ok", "flops": 10 ** 9,
            "bytes": 10 ** 6, "rel_error": 3e-7, "timing": {"samples": samples},
            "seconds": float(np.median(samples)), **extra}


def _kernels_file(path: Path, rows: list[dict], env: dict | None = None) -> Path:
    result = new_result("kernels", copy.deepcopy(env or ENV), threads=2,
                        backends={"numpy": {"backend": "numpy", "numpy": "2.4.6"}})
    result["rows"] = rows
    return write_json_atomic(path, result)


def _noisy(median: float, n: int = 40, seed: int = 0, spread: float = 0.08) -> np.ndarray:
    """Timings as they come on a shared VM: log-normal, with a few 3× outliers."""
    rng = np.random.default_rng(seed)
    out = median * rng.lognormal(0.0, spread, n)
    out[rng.choice(n, 3, replace=False)] *= 3
    return out


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    """Baseline, a second draw of the same timings, and one with gemm planted 2× slower."""
    def make(name: str, seed: int, gemm_factor: float = 1.0, **gemm_extra) -> Path:
        rows = [_row("gemm", "gemm_256^3", "numpy", gemm_factor * _noisy(1e-3, seed=seed),
                     **gemm_extra),
                _row("sigmoid", "sigmoid_65536", "numpy", _noisy(5e-5, seed=seed + 100)),
                _row("conv2d", "small_3x3_c64", "cpu", _noisy(2e-3, seed=seed + 200))]
        return _kernels_file(tmp_path / f"{name}.json", rows)

    return {"old": make("old", 0), "again": make("again", 1), "slow": make("slow", 2, 2.0),
            "fast": make("fast", 3, 0.5),
            "inexact": make("inexact", 4, rel_error=5e-3)}


# -- the rule, on synthetic files ----------------------------------------------------------
def test_a_run_compared_with_itself_reports_nothing(runs):
    result = compare.compare_paths(runs["old"], runs["old"])
    assert len(result.changes) == 3
    assert {c.verdict for c in result.changes} == {"same"}
    assert all(c.ratio == 1.0 for c in result.changes)
    assert not result.failed


def test_two_draws_of_the_same_noise_report_no_regression(runs):
    result = compare.compare_paths(runs["old"], runs["again"])
    assert not result.regressions and not result.improvements
    assert not result.failed


def test_planted_2x_slowdown_is_flagged_and_fails(runs, capsys):
    result = compare.compare_paths(runs["old"], runs["slow"])
    [slow] = result.regressions
    assert slow.key == "gemm gemm_256^3 on numpy"
    assert 1.7 < slow.ratio < 2.3 and slow.band[0] > 1.1 and slow.p_value < compare.ALPHA
    assert result.failed
    assert main(["compare", str(runs["old"]), str(runs["slow"])]) == 1
    out = capsys.readouterr().out
    assert "SLOWER" in out and "FAIL" in out


def test_a_generous_threshold_lets_a_2x_slowdown_through_only_when_asked(runs):
    assert compare.compare_paths(runs["old"], runs["slow"], ["median:150%"]).failed is False
    assert compare.compare_paths(runs["old"], runs["slow"], ["median:50%"]).failed is True

def test_a_regression_that_repeats_in_the_confirming_run_still_fails(runs, tmp_path, capsys):
    """``--confirm``: a planted slowdown shows in both runs, so it still fails."""
    rows = json.loads(runs["slow"].read_text())["rows"]
    rows[0]["timing"]["samples"] = [float(s) for s in 2.0 * _noisy(1e-3, seed=7)]
    slow_again = _kernels_file(tmp_path / "slow-again.json", rows)
    result = compare.compare_paths(runs["old"], runs["slow"], confirm_with=[str(slow_again)])
    assert [c.key for c in result.regressions] == ["gemm gemm_256^3 on numpy"]
    assert result.failed
    assert main(["compare", str(runs["old"]), str(runs["slow"]), "--confirm",
                 str(slow_again)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_slowdown_the_confirming_run_does_not_repeat_is_noise(runs, capsys):
    """A burst of load that slowed one run's benchmark does not fail CI: the re-run
    (another draw of the baseline's timings) does not show it."""
    result = compare.compare_paths(runs["old"], runs["slow"], confirm_with=[str(runs["again"])])
    assert not result.regressions and not result.failed
    [once] = result.unconfirmed
    assert once.key == "gemm gemm_256^3 on numpy"
    assert main(["compare", str(runs["old"]), str(runs["slow"]), "--confirm",
                 str(runs["again"])]) == 0
    out = capsys.readouterr().out
    assert "slower once" in out and "not again in again.json" in out


def test_an_improvement_is_marked_and_does_not_fail(runs, capsys):
    result = compare.compare_paths(runs["old"], runs["fast"])
    assert [c.key for c in result.improvements] == ["gemm gemm_256^3 on numpy"]
    assert not result.failed
    assert main(["compare", str(runs["old"]), str(runs["fast"])]) == 0
    assert "faster" in capsys.readouterr().out


def test_accuracy_changes_are_shown_and_fail_only_when_asked(runs, capsys):
    result = compare.compare_paths(runs["old"], runs["inexact"])
    assert not result.failed  # accuracy is not checked by default
    [change] = [c for c in result.changes if c.key.startswith("gemm")]
    [rel] = [a for a in change.accuracy if a.name == "rel_error"]
    assert rel.old == 3e-7 and rel.new == 5e-3 and rel.verdict == "changed"
    assert compare.compare_paths(runs["old"], runs["inexact"], ["accuracy:100%"]).failed
    assert main(["compare", str(runs["old"]), str(runs["inexact"]),
                 "--fail-on", "accuracy:100%"]) == 1
    assert "rel_error" in capsys.readouterr().out


def test_float32_rounding_differences_are_not_accuracy_regressions():
    changes = compare.compare_accuracy({"rel_error": 2e-7}, {"rel_error": 9e-7}, 0.1)
    assert changes[0].verdict == "same"


def test_a_new_mismatch_of_an_exact_kernel_is_worse():
    [change] = compare.compare_accuracy({"mismatches": 0}, {"mismatches": 3}, 0.5)
    assert change.verdict == "worse"


def test_top1_drop_past_the_limit_is_worse():
    [change] = compare.compare_accuracy({"top1": 0.98}, {"top1": 0.90}, 0.05)
    assert change.verdict == "worse" and change.worse_by == pytest.approx(0.0816, abs=1e-3)


def test_a_kernel_that_starts_failing_is_a_regression(tmp_path, runs):
    payload = json.loads(runs["again"].read_text())
    payload["rows"][0] = {**payload["rows"][0], "status": "error",
                          "reason": "NativeLibraryError: boom"}
    broken = write_json_atomic(tmp_path / "broken.json", payload)
    result = compare.compare_paths(runs["old"], broken)
    assert [c.verdict for c in result.regressions] == ["broken"] and result.failed


def test_different_machines_and_libraries_are_said(tmp_path, runs, capsys):
    env = {**ENV, "cpu": "Intel Xeon", "numpy": "2.5.0"}
    rows = json.loads(runs["again"].read_text())["rows"]
    other = _kernels_file(tmp_path / "other.json", rows, env)
    notes = compare.compare_paths(runs["old"], other).notes
    assert any("DIFFERENT MACHINES" in n and "Intel Xeon" in n for n in notes)
    assert any("numpy 2.4.6 -> 2.5.0" in n for n in notes)
    main(["compare", str(runs["old"]), str(other)])
    assert "DIFFERENT MACHINES" in capsys.readouterr().out


def test_different_openmp_wait_policies_are_said(tmp_path, runs):
    rows = json.loads(runs["again"].read_text())["rows"]
    files = [_kernels_file(tmp_path / f"{policy}.json", rows, {**ENV, "openmp_wait": record})
             for policy, record in (("old", {"OMP_WAIT_POLICY": "PASSIVE"}),  # older files
                                    ("new", {"policy": "active", "env": {}}))]
    notes = compare.compare_paths(*files).notes
    assert any("OpenMP wait policies: passive -> active" in n for n in notes)
    assert not any("OpenMP" in n for n in compare.compare_paths(files[0], files[0]).notes)


def test_normalized_scores_cancel_a_uniformly_faster_machine(tmp_path, runs):
    """A machine twice as fast at everything, reference workload included."""
    payload = json.loads(runs["again"].read_text())
    for row in payload["rows"]:
        row["timing"]["samples"] = [s / 2 for s in row["timing"]["samples"]]
        row["seconds"] /= 2
    ref = payload["environment"]["reference_workload"]
    ref["gemm"]["seconds"] /= 2
    ref["stream"]["seconds"] /= 2
    fast_machine = write_json_atomic(tmp_path / "fast-machine.json", payload)
    raw = compare.compare_paths(runs["old"], fast_machine)
    assert len(raw.improvements) == 3  # raw times: the machine, not the code
    normalized = compare.compare_paths(runs["old"], fast_machine, normalized=True)
    assert not normalized.regressions and not normalized.improvements



def test_normalized_cache_resident_work_ignores_dram_bandwidth(tmp_path):
    """A memory-bound kernel of 768 KiB runs from the caches: a run whose DRAM reference
    (the stream job) was faster must not make its unchanged time look slower, while a
    kernel moving 192 MiB is still scored against DRAM."""
    def run(name: str, stream_seconds: float, seed: int) -> Path:
        env = copy.deepcopy(ENV)
        env["reference_workload"]["stream"]["seconds"] = stream_seconds
        rows = [dict(_row("sigmoid_backward", "small", "cpu", _noisy(3e-5, seed=seed)),
                     flops=3 * 65536, bytes=3 * 4 * 65536),
                dict(_row("sigmoid_backward", "large", "cpu", _noisy(2e-2, seed=seed + 1)),
                     flops=3 * 2 ** 24, bytes=3 * 4 * 2 ** 24)]
        return _kernels_file(tmp_path / f"{name}.json", rows, env)

    old, dram_faster = run("old", 2e-2, 0), run("new", 1e-2, 2)
    result = compare.compare_paths(old, dram_faster, normalized=True)
    assert [r.key for r in result.regressions] == ["sigmoid_backward large on cpu"]

def test_normalized_needs_a_reference_workload(tmp_path, runs, capsys):
    env = {k: v for k, v in ENV.items() if k != "reference_workload"}
    rows = json.loads(runs["again"].read_text())["rows"]
    bare = _kernels_file(tmp_path / "bare.json", rows, env)
    with pytest.raises(ResultsError, match="no reference workload"):
        compare.compare_paths(runs["old"], bare, normalized=True)
    assert main(["compare", "--normalized", str(runs["old"]), str(bare)]) == 2


def test_samples_missing_falls_back_to_quartiles():
    old = compare.Entry("k", (), 1.0, 0.95, 1.05)
    assert compare.compare_entries(old, compare.Entry("k", (), 2.0, 1.9, 2.1),
                                   compare.Thresholds()).verdict == "regression"
    change = compare.compare_entries(old, compare.Entry("k", (), 1.12, 1.0, 1.25),
                                     compare.Thresholds())
    assert change.method == "quartiles" and change.verdict == "same"


@pytest.mark.parametrize("spec", ["median", "median:10", "p99:10%", "median:0%", "median:1x"])
def test_bad_fail_on_is_refused_with_the_reason(spec):
    with pytest.raises(ArgumentError, match="--fail-on"):
        compare.parse_fail_on([spec])


def test_fail_on_parses_percent_and_factor():
    assert compare.parse_fail_on(["median:10%", "accuracy:2x"]) == compare.Thresholds(0.1, 1.0)
    assert compare.parse_fail_on(None) == compare.Thresholds(0.1, None)


def test_models_results_compare_by_model_batch_precision_backend(tmp_path):
    def models(path: Path, factor: float) -> Path:
        result = new_result("models", dict(ENV), threads=2, backends={})
        result["rows"] = [{"model": "lenet", "batch": 8, "precision": "fp32",
                           "backend": "cpu", "status": "ok", "top1": 0.98, "rel_error": 1e-7,
                           "timing": {"samples": list(factor * _noisy(1e-4))},
                           "seconds": factor * 1e-4}]
        return write_json_atomic(path, result)

    result = compare.compare_paths(models(tmp_path / "a.json", 1),
                                   models(tmp_path / "b.json", 2))
    assert [c.key for c in result.regressions] == ["lenet b8 fp32 on cpu"]


def test_unreadable_input_is_an_error(tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    with pytest.raises(ResultsError, match="neither"):
        compare.load_run(bogus)


# -- real runs on this machine -------------------------------------------------------------
# This 2-core VM is shared with other test runs: a whole benchmark sometimes runs 10-30 %
# slower than the one before it (measured: sigmoid 1.04-1.06x between idle back-to-back
# runs, more under load), which no within-run statistic can tell from a regression. Real
# runs are therefore compared with the CI step's generous threshold; a planted 2x still
# fails it, and the exact rule is pinned down by the synthetic files above.
NOISY_MACHINE = ["median:50%"]


def _real_run(path: Path) -> Path:
    """Two cheap kernels on numpy, timed by the shared loop in this process."""
    from threadpoolctl import threadpool_limits

    from hwbench.backends import get_backend
    from hwbench.harness.suites import kernel_suite
    from hwbench.kernels.shapes import square_gemm

    be = get_backend("numpy", threads=1)
    specs = [kernel_suite.CaseSpec("sigmoid", 1 << 18), kernel_suite.CaseSpec(
        "gemm", square_gemm(128))]
    result = new_result("kernels", dict(ENV), threads=1, backends={"numpy": be.info()})
    with threadpool_limits(limits=1, user_api="blas"):  # see PLANTED_SUITE
        for i, spec in enumerate(specs):
            case = kernel_suite.make_case(spec, 0, i)
            result["rows"].append(kernel_suite.run_case(be, case, repeats=30, min_time=0.15,
                                                        max_time=0.5))
    return write_json_atomic(path, result)


def skip_if_the_machine_hid_it(comparison, name: str) -> None:
    """Skip, saying why, when the measuring runs flagged the planted benchmark (a busy
    machine, a wide spread): hwbench then calls it inconclusive on purpose, never slower,
    so this test can only tell a real verdict on a quiet machine (CI's is)."""
    for change in comparison.inconclusive:
        if name in change.key:
            pytest.skip(f"the machine was too busy to judge {name}: the run flagged it "
                        f"({', '.join(change.flags)}); re-run on a quiet machine")


def test_real_back_to_back_runs_pass_and_a_doubled_kernel_fails(tmp_path, monkeypatch):
    from hwbench.backends.numpy_backend import NumpyBackend

    # A discarded run first: glibc's malloc settles (its mmap threshold grows after the
    # first large frees), else the first run's page faults hide half of a 2x slowdown.
    _real_run(tmp_path / "settle.json")
    first = _real_run(tmp_path / "first.json")
    second = _real_run(tmp_path / "second.json")
    quiet = compare.compare_paths(first, second, NOISY_MACHINE)
    if quiet.regressions:  # a neighbour's burst between two runs, unflagged: once more
        second = _real_run(tmp_path / "again.json")
        quiet = compare.compare_paths(first, second, NOISY_MACHINE)
    assert not quiet.regressions, compare.summary_lines(quiet)  # a false verdict twice

    original = NumpyBackend._sigmoid

    def twice(self, p, x):  # the planted slowdown: the same work, done twice
        original(self, p, x)
        return original(self, p, x)

    monkeypatch.setattr(NumpyBackend, "_sigmoid", twice)
    slowed = _real_run(tmp_path / "slowed.json")
    flagged = compare.compare_paths(second, slowed, NOISY_MACHINE)
    skip_if_the_machine_hid_it(flagged, "sigmoid sigmoid_262144 on numpy")
    assert [c.key for c in flagged.regressions] == ["sigmoid sigmoid_262144 on numpy"], (
        compare.summary_lines(flagged))
    assert flagged.failed


PLANTED_SUITE = '''
import os

import pytest
from threadpoolctl import threadpool_limits

from hwbench.backends import get_backend
from hwbench.backends.numpy_backend import NumpyBackend
from hwbench.harness.suites import kernel_suite
from hwbench.harness.suites.benchmarking import bench_kernel

if os.environ.get("HWBENCH_PLANT_SLOWDOWN"):
    original = NumpyBackend._sigmoid

    def thrice(self, p, x):  # 3x, not 2x: a first run ~1.4x slow (cold) once hid a 2x
        original(self, p, x)
        original(self, p, x)
        return original(self, p, x)

    NumpyBackend._sigmoid = thrice


@pytest.fixture(autouse=True)
def one_blas_thread():
    # On a loaded 2-core VM, OpenBLAS's second thread made 128^3 GEMMs stall for whole
    # scheduler slices (43 us -> 16 ms for a run): noise far beyond what a test can take.
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_sigmoid(benchmark):
    case = kernel_suite.make_case(kernel_suite.CaseSpec("sigmoid", 1 << 18))
    bench_kernel(benchmark, get_backend("numpy", threads=1), case, budget=0.3)


def test_gemm(benchmark):
    from hwbench.kernels.shapes import square_gemm
    case = kernel_suite.make_case(kernel_suite.CaseSpec("gemm", square_gemm(128)))
    bench_kernel(benchmark, get_backend("numpy", threads=1), case, budget=0.3)
'''


def test_pytest_benchmark_compare_and_hwbench_compare_flag_a_planted_slowdown(
        pytester, monkeypatch):
    pytester.makepyfile(test_planted=PLANTED_SUITE)
    storage = pytester.path / "storage"
    common = ["-p", "no:cacheprovider", "-q", f"--benchmark-storage={storage}",
              "--benchmark-save-data"]
    base = pytester.runpytest_inprocess(*common, "--benchmark-autosave")
    base.assert_outcomes(passed=2)
    again = pytester.runpytest_inprocess(*common, "--benchmark-autosave")
    again.assert_outcomes(passed=2)

    # In a subprocess: pytest-benchmark fails a run by raising from its terminal summary.
    monkeypatch.setenv("HWBENCH_PLANT_SLOWDOWN", "1")
    planted = pytester.runpytest_subprocess(*common, "--benchmark-autosave",
                                            "--benchmark-compare=0001",
                                            "--benchmark-compare-fail=median:50%")
    assert planted.ret != 0  # pytest-benchmark's own compare fails the run ...
    failures = [line for line in planted.outlines + planted.errlines
                if "has failed PercentageRegressionCheck" in line]
    # (pytest-benchmark compares bare medians: noise may flag test_gemm too, so only the
    # planted one is required)
    assert any("test_sigmoid" in line for line in failures), failures

    files = sorted(storage.rglob("*.json"))
    assert len(files) == 3
    payload = json.loads(files[0].read_text())
    assert payload["hwbench"]["reference_workload"]["gemm"]["seconds"] > 0
    extra = payload["benchmarks"][0]["extra_info"]
    assert {"backend", "backend_info", "rate", "rel_error", "flops"} <= set(extra)

    # ... and so does hwbench compare, on the same files; back-to-back runs do not.
    assert not compare.compare_paths(files[0], files[0]).regressions
    assert not compare.compare_paths(files[0], files[1], NOISY_MACHINE).regressions
    flagged = compare.compare_paths(files[0], files[2], NOISY_MACHINE)
    skip_if_the_machine_hid_it(flagged, "test_sigmoid")
    assert [c.key.split("::")[-1] for c in flagged.regressions] == ["test_sigmoid"]
    assert main(["compare", str(files[0]), str(files[2]), "--fail-on", "median:50%"]) == 1
    assert main(["compare", "--normalized", str(files[0]), str(files[1]),
                 "--fail-on", "median:50%"]) == 0
