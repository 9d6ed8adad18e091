"""One benchmark's verdict: the ``--fail-on`` thresholds and the statistics that decide
whether a change is a regression, an improvement, noise or too thin to judge (the rule is
set out in ``hwbench.harness.results.compare``'s docstring)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.harness.results.benchmark_runs import ACCURACY_FIGURES, Entry

ALPHA = 0.01  # significance level of the rank test
CONFIDENCE = 0.95  # of the bootstrap band
MAX_SAMPLES = 400  # more are subsampled (evenly) for the bootstrap: its cost is n × resamples
RESAMPLES = 2000
DEFAULT_FAIL_ON = ("median:10%",)
# Relative errors against float64 below this are float32 rounding (2**-24 ≈ 6e-8 per op,
# grown by reductions): a change among such values is not an accuracy regression.
REL_ERROR_FLOOR = 1e-5


@dataclass(frozen=True)
class Thresholds:
    """``median``: allowed slowdown as a fraction (0.1 = 10 %); ``accuracy``: allowed
    worsening of an accuracy figure as a fraction. ``None``: not checked."""

    median: float | None = 0.10
    accuracy: float | None = None


def parse_fail_on(specs: list[str] | tuple[str, ...] | None) -> Thresholds:
    """``["median:10%", "accuracy:2x"]`` -> Thresholds(0.1, 1.0). ``N%`` is a fraction,
    ``Nx`` a factor (``2x`` = twice as slow = 100 %)."""
    specs = list(specs) if specs else list(DEFAULT_FAIL_ON)
    found: dict[str, float] = {}
    for text in specs:
        match = re.fullmatch(r"\s*(median|accuracy)\s*:\s*([0-9.]+(?:e-?[0-9]+)?)\s*(%|x)\s*",
                             text)
        if not match:
            raise ArgumentError(
                f"argument '--fail-on': {text!r} is not METRIC:LIMIT with METRIC median or "
                f"accuracy and LIMIT like 10% or 2x (e.g. median:10%, accuracy:100%)")
        metric, number, unit = match.groups()
        value = float(number) / 100 if unit == "%" else float(number) - 1
        if not math.isfinite(value):
            raise ArgumentError(f"argument '--fail-on': {text!r} is not a finite limit")
        if value <= 0:
            raise ArgumentError(f"argument '--fail-on': {text!r} allows no change at all; "
                                f"give a positive limit (e.g. {metric}:10%)")
        found[metric] = value
    return Thresholds(found.get("median"), found.get("accuracy"))


# -- statistics ------------------------------------------------------------------------------
@dataclass
class Change:
    """One benchmark in both runs."""

    key: str
    old: Entry
    new: Entry
    ratio: float  # new median / old median (times: above 1 is slower)
    band: tuple[float, float]  # the noise band of the ratio
    p_value: float | None  # Mann-Whitney, two-sided; None without samples
    method: str  # "samples", "ranges", "quartiles", "threshold only", "status" or "invalid"
    # "regression", "improvement", "same", "broken", "fixed", "unconfirmed", "undecided"
    # (past the threshold by median, too few samples to tell), "inconclusive" (flagged
    # rows or a busy machine) or "invalid" (timings that are not positive numbers)
    verdict: str
    accuracy: list[AccuracyChange] = field(default_factory=list)
    flags: tuple[str, ...] = ()  # why it is inconclusive

    @property
    def accuracy_regressed(self) -> bool:
        return any(a.verdict == "worse" for a in self.accuracy)


@dataclass
class AccuracyChange:
    name: str
    old: float
    new: float
    worse_by: float  # fraction; negative: better
    verdict: str  # "worse" (past the threshold), "changed", "same"


def _subsample(samples: tuple[float, ...]) -> np.ndarray:
    data = np.asarray(samples, dtype=np.float64)
    if len(data) > MAX_SAMPLES:  # every k-th sample, in time order (no randomness)
        data = data[np.linspace(0, len(data) - 1, MAX_SAMPLES).round().astype(int)]
    return data


def ratio_band(old: tuple[float, ...], new: tuple[float, ...]) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of median(new) / median(old), each run's samples
    resampled on their own (seeded: the same files always give the same band)."""
    from scipy.stats import bootstrap  # scipy.stats takes ~0.5 s to import: only when used

    a, b = _subsample(old), _subsample(new)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        ratio = float(b[0] / a[0])
        return ratio, ratio

    def statistic(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    res = bootstrap((a, b), statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                    method="percentile", vectorized=True, rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def rank_test(old: tuple[float, ...], new: tuple[float, ...]) -> float:
    """Two-sided Mann-Whitney U p-value: are the two runs' samples one distribution?"""
    from scipy.stats import mannwhitneyu  # as in ratio_band: a slow import, when used

    a, b = np.asarray(old), np.asarray(new)
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def smallest_p_value(n: int, m: int) -> float:
    """The smallest two-sided p-value Mann-Whitney's exact test can give for n against m
    samples (all distinct, one side entirely above the other): 2 / C(n + m, n)."""
    return min(1.0, 2 / math.comb(n + m, n))


def compare_entries(old: Entry, new: Entry, thresholds: Thresholds,
                    inconclusive: tuple[str, ...] = ()) -> Change:
    """Apply the module's rule to one benchmark. ``inconclusive``: why its timings cannot
    be trusted (flags, a busy machine): the speed verdict becomes "inconclusive"."""
    invalid = [e.status for e in (old, new) if e.status.startswith("invalid")]
    if invalid:
        return Change(old.key, old, new, math.nan, (math.nan, math.nan), None, "invalid",
                      "invalid", flags=tuple(invalid))
    if old.status != "ok" or new.status != "ok":
        verdict = ("broken" if old.status == "ok" else "fixed" if new.status == "ok"
                   else "same")
        return Change(old.key, old, new, math.nan, (math.nan, math.nan), None, "status",
                      verdict)
    ratio = new.median / old.median if old.median > 0 else math.inf
    p_value = None
    if old.samples and new.samples and smallest_p_value(
            len(old.samples), len(new.samples)) < ALPHA:
        method = "samples"
        band = ratio_band(old.samples, new.samples)
        p_value = rank_test(old.samples, new.samples)
        significant = p_value < ALPHA
    elif old.samples and new.samples:  # too few for the rank test: every sample must agree
        method = "ranges"
        band = (min(new.samples) / max(old.samples), max(new.samples) / min(old.samples))
        significant = True
    elif old.q3 > old.q1 or new.q3 > new.q1:
        method = "quartiles"
        band = (new.q1 / old.q3, new.q3 / old.q1) if old.q1 > 0 else (ratio, math.inf)
        significant = True  # the band's own overlap test stands in for the rank test
    else:
        method = "threshold only"
        band = (ratio, ratio)
        significant = True
    limit = thresholds.median if thresholds.median is not None else DEFAULT_MARK
    verdict = "same"
    if significant and band[0] > 1 + limit:
        verdict = "regression"
    elif significant and band[1] < 1 / (1 + limit):
        verdict = "improvement"
    elif method == "ranges" and not 1 / (1 + limit) <= ratio <= 1 + limit:
        verdict = "undecided"  # past the threshold by median; the ranges overlap
    if inconclusive:
        verdict = "inconclusive"
    change = Change(old.key, old, new, ratio, band, p_value, method, verdict,
                    flags=inconclusive)
    change.accuracy = compare_accuracy(old.accuracy, new.accuracy, thresholds.accuracy)
    return change


DEFAULT_MARK = 0.10  # marks regressions in the table when no median threshold fails


def compare_accuracy(old: dict[str, float], new: dict[str, float],
                     limit: float | None) -> list[AccuracyChange]:
    """Each accuracy figure both sides have: how much worse (a fraction) the new one is.

    ``rel_error``/``mse``: new / old − 1 (a relative error under ``REL_ERROR_FLOOR`` on
    both sides counts as unchanged); ``top1``/``top1_agreement``: the relative drop;
    ``mismatches`` (exact kernels): any new mismatch is worse, whatever the limit.
    """
    out = []
    for name, higher_is_better in ACCURACY_FIGURES.items():
        if name not in old or name not in new:
            continue
        a, b = old[name], new[name]
        if name == "rel_error" and a <= REL_ERROR_FLOOR and b <= REL_ERROR_FLOOR:
            worse = 0.0
        elif higher_is_better:
            worse = (a - b) / a if a > 0 else (0.0 if b >= a else math.inf)
        else:
            worse = b / a - 1 if a > 0 else (0.0 if b <= a else math.inf)
        if name == "mismatches":
            verdict = "worse" if b > a else ("changed" if b != a else "same")
        elif limit is not None and worse > limit:
            verdict = "worse"
        else:
            verdict = "same" if a == b or worse == 0.0 else "changed"
        out.append(AccuracyChange(name, a, b, worse, verdict))
    return out

