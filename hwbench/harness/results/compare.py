"""``hwbench compare OLD NEW``: what got slower or less accurate, without crying wolf on noise.

Reads hwbench's own results (``hwbench.kernels``, ``hwbench.models``) and pytest-benchmark
JSON (``--benchmark-json`` files and ``--benchmark-storage`` folders). Per benchmark both
files have, it reports the ratio of medians (new time / old time: above 1 is slower) with
a noise band taken from the stored per-repeat samples, and the accuracy figures side by
side.

The rule, written for a noisy shared machine: a change is a *regression* only when both
  1. it is statistically significant: Mann-Whitney's rank test over the two runs'
     samples gives p < ``ALPHA`` (no assumption of normal timings: they never are), and
  2. it exceeds the threshold with confidence: the whole noise band — the 95 % bootstrap
     interval of the ratio of medians (resampling each run's samples) — lies above
     ``1 + threshold``.
An *improvement* is the mirror image (band below ``1 / (1 + threshold)``). Run-to-run
noise widens the band and weakens the test, so it makes the rule more careful, not more
alarmed. Files without samples (pytest-benchmark without ``--benchmark-save-data``) fall
back to the interquartile ranges: the band is [new q1 / old q3, new q3 / old q1].

Too few samples for the rank test: with n and m samples Mann-Whitney's smallest possible
p-value is 2 / C(n + m, n) (0.1 for 3 against 3), so below about 5 a side it can never
reach ``ALPHA`` and the rule above would pass a 90× slowdown. Such pairs are judged by
their ranges instead (method "ranges"): the band is [min new / max old, max new / min old],
so a change counts only when *every* new sample is past the threshold from *every* old one.
A median past the threshold whose ranges overlap is "undecided": shown loudly and failing
``--fail-on`` (re-run with more repeats), never passed as "same".

Timings that are not positive finite numbers (NaN, null, a string) make a benchmark
"invalid": shown, counted and failing ``--fail-on``, never compared. Rows the measuring
run flagged (a row's ``"flags": [...]``, e.g. "busy-machine", "wide-spread", "bimodal";
or a row's own ``"machine_state"`` with ``"busy": true``, as pytest-benchmark's
``extra_info`` carries it) and every row of a result whose ``"machine_state": {"busy":
true}`` are "inconclusive": shown with their ratio and the flags, counted, never a
regression or an improvement. "peak-unreliable" concerns the % of peak, not the timings:
it does not make a row inconclusive.

``--normalized`` divides every time by its run's reference workload (see
``reference_workload``) before comparing, so that runs from two similar machines compare.

The statistics are scipy's (``mannwhitneyu``, ``bootstrap``); scipy ships with
scikit-learn, a dependency of hwbench.

The work is split by concern: ``benchmark_runs`` reads the two inputs, ``verdicts`` holds the
statistics and the rule, ``comparison`` compares two runs, ``compare_table`` shows it.
"""

from __future__ import annotations

from pathlib import Path

from hwbench.harness.results.benchmark_runs import (
    ACCURACY_FIGURES,
    TIMING_NEUTRAL_FLAGS,
    Entry,
    Run,
    load_run,
    newest_json,
    row_key,
    timing_problem,
)
from hwbench.harness.results.compare_table import VERDICT_STYLE, summary_lines, table
from hwbench.harness.results.comparison import (
    Comparison,
    compare_runs,
    confirm,
    environment_notes,
    inconclusive_reasons,
    normalizer,
)
from hwbench.harness.results.verdicts import (
    ALPHA,
    CONFIDENCE,
    DEFAULT_FAIL_ON,
    DEFAULT_MARK,
    MAX_SAMPLES,
    REL_ERROR_FLOOR,
    RESAMPLES,
    AccuracyChange,
    Change,
    Thresholds,
    compare_accuracy,
    compare_entries,
    parse_fail_on,
    rank_test,
    ratio_band,
    smallest_p_value,
)


def compare_paths(old: str | Path, new: str | Path, fail_on: list[str] | None = None,
                  normalized: bool = False, confirm_with: list[str] | None = None
                  ) -> Comparison:
    """``old`` against ``new``; with ``confirm_with``, a regression must also show in
    each of those runs (compared with ``old`` the same way) to count."""
    thresholds = parse_fail_on(fail_on)
    baseline = load_run(old)
    result = compare_runs(baseline, load_run(new), thresholds, normalized)
    if confirm_with:
        confirm(result, [compare_runs(baseline, load_run(path), thresholds, normalized)
                         for path in confirm_with])
    return result


__all__ = ["ACCURACY_FIGURES", "ALPHA", "CONFIDENCE", "DEFAULT_FAIL_ON", "DEFAULT_MARK",
           "MAX_SAMPLES", "REL_ERROR_FLOOR", "RESAMPLES", "TIMING_NEUTRAL_FLAGS",
           "VERDICT_STYLE", "AccuracyChange", "Change", "Comparison", "Entry", "Run",
           "Thresholds", "compare_accuracy", "compare_entries", "compare_paths", "compare_runs",
           "confirm", "environment_notes", "inconclusive_reasons", "load_run", "newest_json",
           "normalizer", "parse_fail_on", "rank_test", "ratio_band", "row_key",
           "smallest_p_value", "summary_lines", "table", "timing_problem"]
