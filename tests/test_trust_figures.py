"""Figures that say when they cannot be trusted (issue 13).

The flag rules on synthetic samples; machine_state from fake /proc contents and, once, on
a machine made busy by child processes this test starts and always kills; the reference
workload's one-thread BLAS limit; kernel timings that never include the NaN screen; the
OpenMP wait policy libgomp actually runs with; the FMA peak's reliability; the warnings
in the summaries. No test asserts a wall-clock time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.harness.measure import reference_workload
from hwbench.harness.measure.peak import judge_trials
from hwbench.harness.results import summary
from hwbench.harness.running import machine_state
from hwbench.harness.running.timing import Timing, sample_flags
from hwbench.harness.suites import kernel_suite
from hwbench.pytest_plugin import availability

ROOT = Path(__file__).resolve().parents[1]


# -- flag rules on synthetic samples ----------------------------------------------------------
def test_clean_samples_carry_no_flag():
    assert sample_flags([1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01, 1.00, 0.99, 1.03]) == []


def test_widely_spread_samples_are_flagged_wide():
    samples = [1.0, 1.2, 1.5, 1.8, 2.1, 1.1, 1.9, 1.4, 2.4, 1.6]  # IQR/median ~0.45
    assert "wide-spread" in sample_flags(samples)


def test_a_stall_ten_times_the_median_is_flagged_wide():
    samples = [1.0] * 98 + [88.0] * 2  # LeNet's batch-1 p99 of 88 ms against a 0.25 ms p50
    assert Timing(tuple(samples), 1, 0).percentile(99) == 88.0
    assert sample_flags(samples) == ["wide-spread"]
    assert sample_flags([1.0] * 9 + [88.0]) == ["wide-spread"]  # few samples: the max


def test_one_stall_among_thousands_of_calls_flags_nothing():
    samples = [1.0 + 0.01 * (i % 7) for i in range(2000)] + [460.0]  # a page fault, say
    assert sample_flags(samples) == []


def test_two_clusters_are_flagged_bimodal():
    samples = [1.0, 1.01, 0.99, 1.02, 1.0, 16.0, 16.1, 15.9, 16.0, 16.2]
    assert "bimodal" in sample_flags(samples)


def test_two_tight_clusters_with_a_small_iqr_are_still_bimodal():
    samples = [1.0] * 12 + [3.0] * 3  # the IQR misses it, the gap does not
    assert sample_flags(samples) == ["bimodal"]


def test_one_outlier_is_not_a_second_mode():
    assert "bimodal" not in sample_flags([1.0] * 9 + [3.0])


def test_too_few_samples_are_never_called_bimodal():
    assert "bimodal" not in sample_flags([1.0, 1.0, 3.0, 3.0])


def test_timing_records_its_flags():
    timing = Timing((1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0), calls_per_sample=1,
                    warmup_calls=1)
    assert timing.to_dict()["flags"] == timing.flags == ["wide-spread", "bimodal"]


# -- machine_state from fake /proc ------------------------------------------------------------
def _fake_proc(folder: Path, cpu: list[int], processes: dict[int, tuple[str, int, int, int]],
               load: str = "3.10 2.50 1.00 3/120 999") -> Path:
    """A /proc with /proc/stat's cpu line, loadavg and PID/stat per (comm, ppid, own, reaped)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stat").write_text("cpu  " + " ".join(map(str, cpu)) + "\ncpu0 1 2 3 4\n"
                                 "intr 12345\n")
    (folder / "loadavg").write_text(load + "\n")
    for pid, (comm, ppid, own, reaped) in processes.items():
        (folder / str(pid)).mkdir(exist_ok=True)
        # fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        # utime stime cutime cstime ...
        rest = ["S", ppid] + [0] * 9 + [own, 0, reaped, 0] + [0] * 30
        (folder / str(pid) / "stat").write_text(f"{pid} ({comm}) " + " ".join(map(str, rest)))
    (folder / "self").mkdir(exist_ok=True)  # not a pid: ignored
    return folder


def test_parse_cpu_times_reads_the_aggregate_line_with_steal():
    times = machine_state.parse_cpu_times("cpu  10 1 5 100 2 1 1 7 0 0\ncpu0 5 0 2 50\n")
    assert times.busy == 10 + 1 + 5 + 1 + 1 and times.steal == 7 and times.has_steal
    assert times.total == 10 + 1 + 5 + 100 + 2 + 1 + 1 + 7


def test_parse_cpu_times_without_a_steal_column():
    times = machine_state.parse_cpu_times("cpu 10 1 5 100\n")
    assert not times.has_steal and times.steal == 0
    assert machine_state.parse_cpu_times("intr 1 2\n") is None
    assert machine_state.parse_cpu_times("cpu a b c d\n") is None


def test_parse_process_stat_survives_parentheses_and_spaces_in_the_name():
    line = "42 (evil) name) S 7 0 0 0 0 0 0 0 0 0 11 13 17 19 0 0"
    assert machine_state.parse_process_stat(line) == (7, 24, 36)
    assert machine_state.parse_process_stat("garbage") is None


def test_tree_jiffies_sums_the_descendants_only(tmp_path):
    proc = _fake_proc(tmp_path / "proc", [0] * 8, {
        100: ("hwbench", 1, 50, 5), 101: ("worker", 100, 30, 0), 102: ("helper", 101, 20, 0),
        200: ("python", 1, 999, 0), 201: ("child of other", 200, 77, 0)})
    assert machine_state.tree_jiffies(100, proc) == 50 + 5 + 30 + 20
    assert machine_state.tree_jiffies(101, proc) == 50
    assert machine_state.tree_jiffies(12345, proc) is None


def test_machine_state_counts_other_processes_share(tmp_path):
    ours = {100: ("hwbench", 1, 0, 0)}
    before = machine_state.snapshot(100, _fake_proc(tmp_path / "a", [100, 0, 0, 900, 0, 0, 0,
                                                                       0], ours))
    # 1000 jiffies pass on the machine: 600 busy, of which ours 200 -> others 400 (40 %);
    # steal 50 (5 %).
    ours_after = {100: ("hwbench", 1, 150, 50)}
    after = machine_state.snapshot(100, _fake_proc(
        tmp_path / "b", [600, 50, 50, 1250, 0, 0, 0, 50], ours_after, "4.00 3.00 1.00 1/1 1"))
    state = machine_state.machine_state(before, after)
    assert state["others_share"] == pytest.approx(0.4)
    assert state["steal_share"] == pytest.approx(0.05)
    assert state["busy"] is True
    assert state["load_before"] == [3.1, 2.5, 1.0] and state["load_after"] == [4.0, 3.0, 1.0]
    assert state["thresholds"] == {"others_share": machine_state.BUSY_OTHERS_SHARE,
                                   "steal_share": machine_state.BUSY_STEAL_SHARE}


def test_machine_state_quiet_machine_and_steal_alone(tmp_path):
    ours = {100: ("hwbench", 1, 0, 0)}
    before = machine_state.snapshot(100, _fake_proc(tmp_path / "a", [0] * 8, ours))
    quiet = machine_state.snapshot(100, _fake_proc(
        tmp_path / "b", [500, 0, 0, 500, 0, 0, 0, 0], {100: ("hwbench", 1, 480, 0)}))
    assert machine_state.machine_state(before, quiet)["busy"] is False
    stolen = machine_state.snapshot(100, _fake_proc(
        tmp_path / "c", [100, 0, 0, 700, 0, 0, 0, 200], {100: ("hwbench", 1, 100, 0)}))
    state = machine_state.machine_state(before, stolen)
    assert state["others_share"] == 0 and state["steal_share"] == pytest.approx(0.2)
    assert state["busy"] is True


def test_machine_state_without_proc_says_nothing_and_is_not_busy(tmp_path):
    empty = tmp_path / "none"
    state = machine_state.machine_state(machine_state.snapshot(1, empty),
                                        machine_state.snapshot(1, empty))
    assert state["busy"] is False and state["others_share"] is None
    assert state["load_before"] is None


def test_a_run_with_a_busy_row_is_busy():
    state = machine_state.merge({"busy": False}, [{"flags": ["busy-machine"]}, {"flags": []}])
    assert state["busy"] is True and state["busy_rows"] == 1
    lines = summary.trust_lines([], state)
    assert lines and "1 of this run's rows" in lines[0] and "0%" not in lines[0]


def test_one_busy_row_among_many_flags_that_row_not_the_run():
    rows = [{"flags": ["busy-machine"]}] + [{"flags": []} for _ in range(9)]
    state = machine_state.merge({"busy": False, "others_share": 0.0}, rows)
    assert state["busy"] is False and state["busy_rows"] == 1
    assert not any("machine was busy" in line for line in summary.trust_lines(rows, state))
    assert machine_state.merge({"busy": True}, rows)["busy_because"] == "window"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_a_machine_with_a_busy_loop_per_core_is_reported_busy():
    """Busy children of this test (others, seen from the monitor's own process tree)."""
    loops = []
    try:
        for _ in range(len(os.sched_getaffinity(0))):
            loops.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        done = subprocess.run([sys.executable, "-m", "hwbench.harness.running.machine_state",
                               "1.0"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    finally:
        for proc in loops:
            proc.kill()
        for proc in loops:
            proc.wait()
    state = json.loads(done.stdout)
    assert state["busy"] is True
    assert state["others_share"] >= machine_state.BUSY_OTHERS_SHARE


# -- the reference workload's thread limit -----------------------------------------------------
def test_reference_gemm_runs_on_one_blas_thread(monkeypatch):
    """Checked during the real GEMM job: threadpoolctl sees NumPy's BLAS at 1 thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    outside = [i["num_threads"] for i in threadpoolctl.threadpool_info()
               if i.get("internal_api") == "openblas"]
    if not outside or max(outside) < 2:
        pytest.skip(f"NumPy's OpenBLAS runs on {outside or 'no'} thread(s) here already")
    seen = []
    real_measure = reference_workload.measure

    def spying_measure(job, *args, **kwargs):
        seen.append(max(i["num_threads"] for i in threadpoolctl.threadpool_info()
                        if i.get("internal_api") == "openblas"))
        return real_measure(job, *args, **{**kwargs, "repeats": 1, "min_time": 0})

    monkeypatch.setattr(reference_workload, "measure", spying_measure)
    monkeypatch.setattr(reference_workload, "STREAM_ELEMENTS", 1 << 10)
    result = reference_workload.measure_reference()
    assert seen and seen[0] == 1  # the GEMM is timed first
    gemm_calls = reference_workload.TRIALS
    assert seen[:gemm_calls] == [1] * gemm_calls  # the GEMM's trials: one thread each
    assert result["gemm"]["blas_threads"] == 1
    assert len(result["gemm"]["trials"]) == reference_workload.TRIALS
    assert result["gemm"]["trial_spread"] >= 0
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info()
             if i.get("internal_api") == "openblas"]
    assert after == outside  # the limit is lifted afterwards


# -- no timing includes the NaN screen --------------------------------------------------------
def _count_screens(be, monkeypatch) -> list[int]:
    calls = []
    real = type(be)._all_finite

    def counting(self, x):
        calls.append(1)
        return real(self, x)

    monkeypatch.setattr(type(be), "_all_finite", counting)
    return calls


def test_kernel_timing_excludes_the_nan_screen(monkeypatch):
    be = get_backend("numpy")
    calls = _count_screens(be, monkeypatch)
    case = kernel_suite.make_case(kernel_suite.CaseSpec("sigmoid_backward", 1 << 10))
    row = kernel_suite.run_case(be, case, repeats=3, min_time=0, max_time=0.5)
    assert row["status"] == "ok" and row["timing"]["calls_per_sample"] > 1
    assert len(calls) == 2  # y and dy, screened once by the checked call, never when timed
    assert row["check_finite"] == kernel_suite.SCREEN_OUTSIDE_TIMING
    assert be.check_finite is True  # restored
    assert set(row["machine_state"]) == {"busy", "others_share", "steal_share"}
    assert isinstance(row["flags"], list)


@pytest.mark.skipif(not availability("opencl")[0], reason="needs the opencl backend (PoCL)")
def test_opencl_kernel_timing_excludes_its_device_screen(monkeypatch):
    be = get_backend("opencl")
    screens = []
    real = type(be)._flags

    def counting(self, n):
        screens.append(n)
        return real(self, n)

    monkeypatch.setattr(type(be), "_flags", counting)
    case = kernel_suite.make_case(kernel_suite.CaseSpec("sigmoid_backward", 1 << 10))
    row = kernel_suite.run_case(be, case, repeats=3, min_time=0, max_time=0.5)
    assert row["status"] == "ok" and len(screens) == 1


def test_kernel_rows_say_when_nothing_is_screened(monkeypatch):
    be = get_backend("numpy", check_finite=False)
    calls = _count_screens(be, monkeypatch)
    case = kernel_suite.make_case(kernel_suite.CaseSpec("sigmoid", 1 << 10))
    row = kernel_suite.run_case(be, case, repeats=2, min_time=0, max_time=0.5)
    assert calls == [] and row["check_finite"] == kernel_suite.SCREEN_OFF


def test_screening_off_reaches_a_wrapped_backend():
    outer, inner = get_backend("numpy"), get_backend("numpy")
    outer.inner = inner
    with kernel_suite.screening_off(outer):
        assert outer.check_finite is False and inner.check_finite is False
    assert outer.check_finite is True and inner.check_finite is True


def test_busy_rows_are_flagged():
    assert kernel_suite.row_flags(["bimodal"], {"busy": True}) == ["busy-machine", "bimodal"]
    assert kernel_suite.row_flags([], {"busy": False}) == []


# -- OpenMP's wait policy ---------------------------------------------------------------------
def test_wait_policy_defaults_to_passive_and_yields_to_the_user():
    from hwbench.backends.cpu.onednn import set_openmp_wait_policy
    from hwbench.harness.running.isolation import worker_env

    assert set_openmp_wait_policy({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert set_openmp_wait_policy({"OMP_WAIT_POLICY": "ACTIVE"}) == {"OMP_WAIT_POLICY": "ACTIVE"}
    assert "OMP_WAIT_POLICY" not in set_openmp_wait_policy({"GOMP_SPINCOUNT": "10000"})
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        assert worker_env("cpu", 2)["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.skipif(not availability("cpu")[0], reason="needs the cpu backend (onednn wheel)")
def test_libgomp_loaded_by_the_cpu_backend_does_not_spin():
    """What libgomp itself reports (omp_display_env) after the backend loaded it."""
    code = ("import ctypes; from hwbench.backends import get_backend; get_backend('cpu'); "
            "ctypes.CDLL('libgomp.so.1').omp_display_env(1)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT)}, check=True)
    assert "GOMP_SPINCOUNT = '0'" in done.stderr, done.stderr[-800:]


@pytest.mark.skipif(not availability("cpu")[0], reason="needs the cpu backend (onednn wheel)")
def test_small_problems_run_on_one_thread_and_large_ones_on_all():
    """With sleeping (PASSIVE) OpenMP threads a tiny kernel pays for waking the others:
    the cpu backend runs it on one thread, and a large one on every thread it was given;
    libgomp's own count says which was used, and both give the reference's answer."""
    from hwbench.kernels.reference import gemm as reference_gemm

    be = get_backend("cpu", threads=2, check_finite=False)
    gomp = be.dnnl._gomp
    rng = np.random.default_rng(0)
    side = 2
    while 2 * side**3 < be.small_problem[0]:  # the smallest square gemm over the line
        side *= 2
    for n, threads in ((16, 1), (side // 4, 1), (side, 2)):
        a = rng.standard_normal((n, n), dtype=np.float32)
        got = be.to_numpy(be.gemm(be.asarray(a), be.asarray(a)))
        assert gomp.omp_get_max_threads() == threads, n
        np.testing.assert_allclose(got, reference_gemm(a, a), rtol=1e-4, atol=1e-3 * n)
    assert "1 thread below" in be.info()["small_problems"]


def test_spinning_threads_are_told_apart_from_sleeping_ones():
    from hwbench.backends.cpu.onednn import spins

    assert not spins({"OMP_WAIT_POLICY": "PASSIVE"}) and not spins({"GOMP_SPINCOUNT": "0"})
    assert spins({"OMP_WAIT_POLICY": "active"}) and spins({})  # libgomp's own default spins
    assert spins({"GOMP_SPINCOUNT": "10k", "OMP_WAIT_POLICY": "PASSIVE"})  # the count wins
    assert spins({"GOMP_SPINCOUNT": "infinite"})
    assert not spins({"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "0"})  # so here


@pytest.mark.skipif(not availability("cpu")[0], reason="needs the cpu backend (onednn wheel)")
def test_with_spinning_threads_only_tiny_problems_stay_on_one_thread(monkeypatch):
    """A spinning libgomp thread costs no wake-up, so a batch-1 conv of a few MFLOP (a
    MobileNet layer) runs on every thread, as onnxruntime's spinning pool runs it."""
    from hwbench.backends.cpu import SPINNING_SMALL_PROBLEM_FLOPS
    from hwbench.kernels import spec

    be = get_backend("cpu", threads=2, check_finite=False)
    conv = spec.ConvProblem(1, 32, 28, 28, 192, 1, 1)  # 9.6 MFLOP, 602 KB out
    tiny = spec.ConvProblem(1, 8, 8, 8, 8, 1, 1)
    assert tiny.flops < SPINNING_SMALL_PROBLEM_FLOPS < conv.flops
    monkeypatch.setattr(be.dnnl, "spinning", False)
    assert (be.threads_for(conv), be.threads_for(tiny)) == (1, 1)
    monkeypatch.setattr(be.dnnl, "spinning", True)
    assert (be.threads_for(conv), be.threads_for(tiny)) == (2, 1)
    assert "spinning" in be.info()["small_problems"]


# -- the FMA peak ------------------------------------------------------------------------------
def test_peak_trials_must_agree():
    assert judge_trials([100.0, 99.0, 60.0]) == (True, "")
    reliable, reason = judge_trials([100.0, 80.0, 60.0])
    assert not reliable and "disagree" in reason
    assert not judge_trials([100.0])[0]


def test_a_row_above_the_peak_marks_the_peak_unreliable():
    from hwbench.harness.measure.peak_trust import add_peak_fraction as _add_peak_fraction

    peak = {"gflops": 100.0, "reliable": True, "reason": ""}
    below = {"backend": "cpu", "op": "gemm", "case": "a", "status": "ok", "gflops": 90.0,
             "flags": []}
    above = {"backend": "cpu", "op": "gemm", "case": "b", "status": "ok", "gflops": 140.0,
             "flags": []}
    _add_peak_fraction(below, peak)
    assert peak["reliable"] and below["flags"] == []
    _add_peak_fraction(above, peak)
    assert peak["reliable"] is False and "140%" in peak["reason"]
    assert above["flags"] == ["peak-unreliable"]


# -- warnings in the summaries -----------------------------------------------------------------
def test_summaries_warn_about_a_busy_machine_and_flagged_rows():
    rows = [{"model": "lenet", "batch": 1, "precision": "fp32", "backend": "cpu",
             "status": "ok", "latency_p50": 2.5e-4, "flags": ["busy-machine", "wide-spread"]},
            {"model": "lenet", "batch": 8, "precision": "fp32", "backend": "cpu",
             "status": "ok", "flags": []}]
    machine = {"busy": True, "others_share": 0.8, "steal_share": None,
               "load_before": [3.0, 2.0, 1.0], "load_after": [3.5, 2.0, 1.0],
               "thresholds": {"others_share": 0.25, "steal_share": 0.1}}
    text = summary.to_markdown(rows, machine)
    assert "machine was busy" in text and "80%" in text
    assert "1 row(s) flagged" in text and "busy-machine 1" in text
    assert "busy-machine, wide-spread" in summary.to_csv(rows)
    assert "Warning" not in summary.to_markdown(rows[1:], {"busy": False})


def test_the_kernels_table_marks_flagged_rows():
    from rich.console import Console

    from hwbench.harness.results.tables import kernels_table as _table

    rows = [{"backend": "cpu", "op": "gemm", "case": "gemm_64^3", "status": "ok",
             "seconds": 1e-5, "gflops": 50.0, "gbytes_per_s": 1.0, "rel_error": 1e-7,
             "timing": {"spread": 0.5}, "flags": ["wide-spread"],
             "check_finite": kernel_suite.SCREEN_OUTSIDE_TIMING}]
    console = Console(width=200, record=True)
    console.print(_table(rows, {"gflops": 10.0, "reliable": False}, ["cpu"]))
    text = console.export_text()
    assert "⚠" in text and "(unreliable)" in text
    assert kernel_suite.SCREEN_OUTSIDE_TIMING in text


def test_a_gemm_ceiling_above_the_peak_marks_the_peak_unreliable():
    from hwbench.harness.measure.peak_trust import (
        check_peak_against_ceilings as _check_peak_against_ceilings,
    )

    peak = {"gflops": 100.0, "reliable": True, "reason": ""}
    _check_peak_against_ceilings(peak, {"cuda": {"ceilings": {"gflops": 9000.0}},
                                        "cpu": {"ceilings": {"gflops": 90.0}}})
    assert peak["reliable"] is True  # a GPU may exceed the host's peak
    _check_peak_against_ceilings(peak, {"cpu": {"ceilings": {"gflops": 149.0}}})
    assert peak["reliable"] is False and "149%" in peak["reason"]


def test_pytest_benchmark_rows_record_machine_state_flags_and_screen_mode(benchmark,
                                                                          monkeypatch):
    from hwbench.harness.suites.benchmarking import bench_kernel

    be = get_backend("numpy", threads=1)
    calls = _count_screens(be, monkeypatch)
    case = kernel_suite.make_case(kernel_suite.CaseSpec("sigmoid", 1 << 10))
    info = bench_kernel(benchmark, be, case, budget=0.02)
    assert len(calls) == 1  # the checked call only: the timed rounds do not screen
    assert info["check_finite"] == kernel_suite.SCREEN_OUTSIDE_TIMING
    assert isinstance(info["machine_state"]["busy"], bool)
    assert isinstance(info["flags"], list)
