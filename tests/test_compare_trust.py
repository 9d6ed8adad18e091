"""``hwbench compare`` never passes what it cannot judge (issue 13, defect 6).

A slowdown far outside both runs' spread is flagged whatever the sample count (3 samples a
side once printed "0 slower" for an 89.8x slowdown); a median past the threshold that too
few samples cannot confirm is "undecided" and fails; NaN, null and non-numeric timings are
"invalid" and fail; rows the measuring run flagged, or a run on a busy machine, are
"inconclusive": shown and counted, never a regression or an improvement.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwbench.cli import main
from hwbench.harness.results import compare
from hwbench.harness.results.result_files import new_result, write_json_atomic

ENV = {"hwbench": "0.1.0", "host": "vm", "cpu": "AMD EPYC", "cores_available": 2,
       "machine": "x86_64", "python": "3.11.7", "numpy": "2.4.6"}


def _row(case: str, samples, **extra) -> dict:
    row = {"op": "gemm", "case": case, "backend": "numpy", "status": "ok",
           "timing": {"samples": list(samples)}}
    finite = [s for s in samples if isinstance(s, float) and math.isfinite(s)]
    row["seconds"] = float(np.median(finite)) if finite else math.nan  # as a run writes it
    row.update(extra)
    return row


def _file(path: Path, rows: list[dict], **top) -> str:
    result = new_result("kernels", copy.deepcopy(ENV), threads=2, backends={})
    result["rows"] = rows
    result.update(top)
    write_json_atomic(path, result)
    return str(path)


BASE = [1.00e-3, 1.03e-3, 0.98e-3]


def _pair(tmp_path: Path, old_rows: list[dict], new_rows: list[dict], **new_top
          ) -> tuple[str, str]:
    return (_file(tmp_path / "old.json", old_rows),
            _file(tmp_path / "new.json", new_rows, **new_top))


def _cli(capsys, *args: str) -> tuple[int, str]:
    status = main(["compare", *args])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("factor", [89.8, 3.0])
def test_a_large_slowdown_with_three_samples_a_side_fails(tmp_path, capsys, factor):
    old, new = _pair(tmp_path, [_row("g", BASE)],
                     [_row("g", [factor * s for s in (1.0e-3, 0.98e-3, 1.02e-3)])])
    status, out = _cli(capsys, "--fail-on", "median:10%", old, new)
    assert status == 1
    assert "1 slower" in out and "SLOWER" in out
    change = compare.compare_paths(old, new, ["median:10%"]).changes[0]
    assert change.verdict == "regression" and change.method == "ranges"


def test_a_large_speedup_with_three_samples_a_side_is_an_improvement(tmp_path):
    old, new = _pair(tmp_path, [_row("g", BASE)], [_row("g", [s / 4 for s in BASE])])
    result = compare.compare_paths(old, new)
    assert [c.verdict for c in result.changes] == ["improvement"] and not result.failed


def test_few_overlapping_samples_past_the_threshold_are_undecided_and_fail(tmp_path, capsys):
    old, new = _pair(tmp_path, [_row("g", [1.0e-3, 1.01e-3, 1.5e-3])],
                     [_row("g", [1.2e-3, 1.3e-3, 1.25e-3])])
    status, out = _cli(capsys, old, new)
    assert status == 1
    assert "UNDECIDED" in out and "too few samples" in out


def test_few_samples_of_the_same_speed_pass(tmp_path, capsys):
    old, new = _pair(tmp_path, [_row("g", BASE)], [_row("g", [1.01e-3, 0.99e-3, 1.02e-3])])
    status, out = _cli(capsys, old, new)
    assert status == 0 and "0 slower" in out


def test_a_confirming_run_without_the_undecided_change_clears_it(tmp_path, capsys):
    old, new = _pair(tmp_path, [_row("g", [1.0e-3, 1.01e-3, 1.5e-3])],
                     [_row("g", [1.2e-3, 1.3e-3, 1.25e-3])])
    again = _file(tmp_path / "again.json", [_row("g", BASE)])
    status, _ = _cli(capsys, "--confirm", again, old, new)
    assert status == 0


@pytest.mark.parametrize("bad", [
    [math.nan, math.nan, math.nan],
    [1e-3, math.nan, 1e-3],
    [math.inf, 1e-3, 1e-3],
    [0.0, 1e-3, 1e-3],
    ["fast", 1e-3, 1e-3],
    [None, 1e-3, 1e-3],
])
def test_invalid_samples_are_reported_and_fail(tmp_path, capsys, bad):
    old, new = _pair(tmp_path, [_row("g", BASE), _row("h", BASE)],
                     [_row("g", bad), _row("h", BASE)])
    status, out = _cli(capsys, "--fail-on", "median:10%", old, new)
    assert "nan×" not in out and "Traceback" not in out
    if all(isinstance(s, float) for s in bad):  # numbers, but not timings: compare's to flag
        assert status == 1 and "INVALID" in out
        verdicts = {c.key: c.verdict for c in compare.compare_paths(old, new).changes}
        assert verdicts == {"gemm g on numpy": "invalid", "gemm h on numpy": "same"}
    else:  # not numbers: reported as invalid, or refused as a malformed file naming the row
        _invalid_or_refused(status, out)


def _invalid_or_refused(status: int, out: str) -> None:
    assert (status == 1 and "INVALID" in out) or (status == 2 and "row 0" in out), out


@pytest.mark.parametrize("row", [
    {"op": "gemm", "case": "g", "backend": "numpy", "status": "ok", "seconds": None},
    {"op": "gemm", "case": "g", "backend": "numpy", "status": "ok", "seconds": "1 ms"},
    {"op": "gemm", "case": "g", "backend": "numpy", "status": "ok", "seconds": 1e-3,
     "timing": "fast"},
    {"op": "gemm", "case": "g", "backend": "numpy", "status": "ok", "seconds": 1e-3,
     "timing": {"samples": "1e-3"}},
])
def test_null_or_malformed_timings_are_invalid_not_a_traceback(tmp_path, capsys, row):
    old, new = _pair(tmp_path, [_row("g", BASE)], [row])
    status, out = _cli(capsys, old, new)
    assert "Traceback" not in out
    _invalid_or_refused(status, out)


def test_nan_timings_in_pytest_benchmark_json_are_invalid(tmp_path, capsys):
    def bench(path: Path, median) -> str:
        path.write_text(json.dumps({"machine_info": {}, "benchmarks": [
            {"fullname": "t::x", "stats": {"median": median, "data": []}}]}))
        return str(path)

    status, out = _cli(capsys, bench(tmp_path / "a.json", 1e-3),
                       bench(tmp_path / "b.json", None))
    assert status == 1 and "INVALID" in out
    path = tmp_path / "c.json"  # json writes NaN as a bare token, which it reads back
    path.write_text('{"machine_info": {}, "benchmarks": [{"fullname": "t::x", '
                    '"stats": {"median": NaN, "data": []}}]}')
    status, out = _cli(capsys, bench(tmp_path / "a.json", 1e-3), str(path))
    assert status == 1 and "INVALID" in out


@pytest.mark.parametrize("where", ["old", "new"])
def test_flagged_rows_are_inconclusive_not_regressions(tmp_path, capsys, where):
    slow = [_row("g", [2 * s for s in BASE] * 3), _row("h", BASE * 3)]
    base = [_row("g", BASE * 3), _row("h", BASE * 3)]
    (slow if where == "new" else base)[0]["flags"] = ["busy-machine", "wide-spread"]
    old, new = _pair(tmp_path, base, slow)
    status, out = _cli(capsys, old, new)
    assert status == 0
    assert "INCONCLUSIVE: 1 benchmark" in out and "0 slower" in out
    assert f"busy-machine ({where})" in out
    result = compare.compare_paths(old, new)
    assert [c.verdict for c in result.changes] == ["inconclusive", "same"]
    assert not result.regressions and not result.improvements


def test_flagged_improvement_is_not_counted_either(tmp_path):
    old, new = _pair(tmp_path, [_row("g", BASE * 3)],
                     [_row("g", [s / 3 for s in BASE] * 3, flags=["bimodal"])])
    result = compare.compare_paths(old, new)
    assert [c.verdict for c in result.changes] == ["inconclusive"]
    assert not result.improvements


def test_a_busy_machine_makes_every_row_inconclusive(tmp_path, capsys):
    rows = [_row("g", [3 * s for s in BASE]), _row("h", BASE)]
    old, new = _pair(tmp_path, [_row("g", BASE), _row("h", BASE)], rows,
                     machine_state={"busy": True, "load_before": 3.1})
    status, out = _cli(capsys, old, new)
    assert status == 0
    assert "INCONCLUSIVE: 2 benchmark" in out and "busy machine: new run" in out
    not_busy = _file(tmp_path / "quiet.json", rows, machine_state={"busy": False})
    assert main(["compare", old, not_busy]) == 1


def test_broken_rows_stay_broken_even_when_flagged(tmp_path):
    failed = {"op": "gemm", "case": "g", "backend": "numpy", "status": "error",
              "reason": "RuntimeError: boom", "flags": ["busy-machine"]}
    old, new = _pair(tmp_path, [_row("g", BASE)], [failed])
    assert [c.verdict for c in compare.compare_paths(old, new).changes] == ["broken"]


def test_no_benchmark_in_both_runs_fails(tmp_path, capsys):
    old, new = _pair(tmp_path, [_row("g", BASE)], [_row("h", BASE)])
    status, out = _cli(capsys, old, new)
    assert status == 1 and "no benchmark in both runs" in out


@pytest.mark.parametrize("n,m", [(1, 1), (2, 3), (3, 3), (4, 4), (3, 5), (5, 5), (6, 4)])
def test_smallest_p_value_is_what_mann_whitney_gives_for_disjoint_samples(n, m):
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(np.arange(n) + 100.0, np.arange(m), alternative="two-sided",
                     method="exact").pvalue
    assert compare.smallest_p_value(n, m) == pytest.approx(p)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(1, 12), seed=st.integers(0, 2 ** 16),
       gap=st.floats(1.2, 100.0), spread=st.floats(0.0, 0.5))
def test_disjoint_by_more_than_the_threshold_is_flagged_whatever_the_counts(
        n, m, seed, gap, spread):
    """Every new sample more than 10 % slower than every old one: always a regression
    (and the mirror image: always an improvement)."""
    rng = np.random.default_rng(seed)
    old = 1e-3 * (1 + spread * rng.random(n))
    new = old.max() * gap * (1 + spread * rng.random(m))

    def entry(samples: np.ndarray) -> compare.Entry:
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        return compare.Entry("k", tuple(samples), float(median), float(q1), float(q3))

    thresholds = compare.Thresholds(0.1)
    assert compare.compare_entries(entry(old), entry(new), thresholds).verdict == "regression"
    assert compare.compare_entries(entry(new), entry(old), thresholds).verdict == "improvement"


# -- any malformed field: a verdict or an hwbench error, never a traceback -------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10 ** 12) | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6)
ROW_FIELDS = ["op", "case", "backend", "status", "seconds", "timing", "flags", "flops",
              "bytes", "rel_error", "top1", "mismatches", "model", "batch", "precision",
              "reason"]
TOP_FIELDS = ["environment", "backends", "rows", "machine_state", "threads", "created"]
REFERENCE = {"version": 1, "threads": 2,
             "gemm": {"seconds": 2e-3, "gflops": 134.0, "spread": 0.01},
             "stream": {"seconds": 2e-2, "gbytes_per_s": 10.0, "spread": 0.01}}


@settings(max_examples=150, deadline=None)
@given(where=st.sampled_from(["row", "top", "samples", "env", "pytest"]),
       field_index=st.integers(0, 100), value=JSON_VALUES, normalized=st.booleans(),
       side=st.booleans())
def test_any_malformed_field_gives_a_verdict_or_an_hwbench_error(
        tmp_path_factory, where, field_index, value, normalized, side):
    from hwbench.errors import HwbenchError

    folder = tmp_path_factory.mktemp("fuzz")
    rows = [_row("g", [1e-3, 1.1e-3, 0.9e-3, 1.05e-3, 0.95e-3], flops=10 ** 9,
                 bytes=10 ** 6, rel_error=1e-7),
            _row("h", [2e-3, 2.1e-3, 1.9e-3, 2.05e-3, 1.95e-3], flops=10 ** 6, bytes=10 ** 8)]
    result = new_result("kernels", {**ENV, "reference_workload": REFERENCE}, threads=2,
                        backends={"numpy": {"numpy": "2.4.6"}})
    result["rows"] = rows
    if where == "row":
        rows[0][ROW_FIELDS[field_index % len(ROW_FIELDS)]] = value
    elif where == "top":
        result[TOP_FIELDS[field_index % len(TOP_FIELDS)]] = value
    elif where == "samples":
        rows[0]["timing"]["samples"][field_index % 5] = value
    elif where == "env":
        result["environment"][["reference_workload", "cpu", "host"][field_index % 3]] = value
    good = folder / "good.json"
    write_json_atomic(good, new_result("kernels", {**ENV, "reference_workload": REFERENCE},
                                       threads=2, backends={}) | {"rows": copy.deepcopy(
                                           [_row("g", BASE * 2, flops=10 ** 9, bytes=10 ** 6),
                                            _row("h", BASE * 2, flops=10 ** 6,
                                                 bytes=10 ** 8)])})
    bad = folder / "bad.json"
    if where == "pytest":
        bad.write_text(json.dumps({"machine_info": {}, "benchmarks": [
            {"fullname": "t::x", "stats": {"median": 1e-3, "data": [1e-3, 2e-3]},
             "extra_info": {}},
            {"fullname": "t::y", **{["stats", "extra_info", "fullname"][field_index % 3]:
                                    value}}]}))
    else:
        bad.write_text(json.dumps(result, default=str))
    pair = (bad, good) if side else (good, bad)
    try:
        comparison = compare.compare_paths(*pair, normalized=normalized)
    except HwbenchError:
        return
    compare.summary_lines(comparison)
    from rich.console import Console

    Console(file=open(os.devnull, "w")).print(compare.table(comparison))


def test_a_busy_machine_state_on_a_pytest_benchmark_entry_makes_it_inconclusive(tmp_path):
    """pytest-benchmark entries carry machine_state and flags in extra_info."""
    def bench(path: Path, median: float, **extra) -> str:
        path.write_text(json.dumps({"machine_info": {}, "benchmarks": [
            {"fullname": "t::x", "stats": {"median": median, "data": []},
             "extra_info": extra}]}))
        return str(path)

    old = bench(tmp_path / "a.json", 1e-3)
    busy = bench(tmp_path / "b.json", 3e-3, machine_state={"busy": True})
    assert [c.verdict for c in compare.compare_paths(old, busy).changes] == ["inconclusive"]
    quiet = bench(tmp_path / "c.json", 3e-3, machine_state={"busy": False})
    assert [c.verdict for c in compare.compare_paths(old, quiet).changes] == ["regression"]


def test_an_unreliable_peak_does_not_make_the_timing_inconclusive(tmp_path):
    old, new = _pair(tmp_path, [_row("g", BASE)],
                     [_row("g", [3 * s for s in BASE], flags=["peak-unreliable"])])
    change = compare.compare_paths(old, new).changes[0]
    assert change.verdict == "regression" and change.new.flags == ("peak-unreliable",)
