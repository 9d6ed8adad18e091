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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, ResultsError
from hwbench.harness.measure import reference_workload
from hwbench.harness.running.timing import format_seconds

ALPHA = 0.01  # significance level of the rank test
CONFIDENCE = 0.95  # of the bootstrap band
MAX_SAMPLES = 400  # more are subsampled (evenly) for the bootstrap: its cost is n × resamples
RESAMPLES = 2000
DEFAULT_FAIL_ON = ("median:10%",)
# Relative errors against float64 below this are float32 rounding (2**-24 ≈ 6e-8 per op,
# grown by reductions): a change among such values is not an accuracy regression.
REL_ERROR_FLOOR = 1e-5
# accuracy figures: name -> True if higher is better
ACCURACY_FIGURES = {"rel_error": False, "mismatches": False, "top1": True,
                    "top1_agreement": True, "mse": False}


# -- loading ---------------------------------------------------------------------------------
@dataclass
class Entry:
    """One benchmark of one run: seconds per call, per repeat, and what it computed."""

    key: str
    samples: tuple[float, ...]
    median: float
    q1: float
    q3: float
    flops: float | None = None
    bytes: float | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    status: str = "ok"  # "ok", why it did not run ("error: ..."), or "invalid: ..." (bad timings)
    backend: str = ""
    flags: tuple[str, ...] = ()  # what the measuring run flagged ("busy-machine", "bimodal")


@dataclass
class Run:
    """One results file (or the newest file of a pytest-benchmark storage folder)."""

    path: Path
    kind: str  # "hwbench.kernels", "hwbench.models" or "pytest-benchmark"
    entries: dict[str, Entry]
    machine: dict[str, str]  # what the hardware and OS are
    versions: dict[str, str]  # library versions ("numpy", "cpu/onednn", ...)
    reference: dict[str, Any] | None  # the reference workload (calibration)
    created: str = ""
    busy: bool = False  # the run's machine_state says the machine was busy: all inconclusive


def newest_json(folder: Path) -> Path:
    """The newest JSON under ``folder``: pytest-benchmark's storage names files
    ``NNNN_commit_date.json`` under a per-machine subfolder, so the name order is the
    save order."""
    files = sorted(folder.rglob("*.json"), key=lambda p: (p.name, str(p)))
    if not files:
        raise ResultsError(f"{folder} holds no .json results")
    return files[-1]


def load_run(path: str | Path) -> Run:
    """Read hwbench results or pytest-benchmark JSON (a folder: its newest file)."""
    path = Path(path)
    if path.is_dir():
        path = newest_json(path)
    from hwbench.files import read_json

    payload = read_json(path, "results", error=ResultsError)
    if isinstance(payload, dict) and str(payload.get("schema", "")).startswith("hwbench."):
        from hwbench.harness.results.result_files import read_result

        return _hwbench_run(path, read_result(path))
    if isinstance(payload, dict) and "benchmarks" in payload and "machine_info" in payload:
        return _pytest_benchmark_run(path, payload)
    raise ResultsError(f"{path} is neither an hwbench result file nor pytest-benchmark JSON")


def _quartiles(samples: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=np.float64), [25, 50, 75])
    return float(q1), float(median), float(q3)


def _accuracy_of(source: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name in ACCURACY_FIGURES:
        value = source.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
                value):
            out[name] = float(value)
    return out


def row_key(row: dict[str, Any]) -> str:
    """The identity of an hwbench result row across runs."""
    if "model" in row:
        return (f"{row['model']} b{row.get('batch')} {row.get('precision', 'fp32')} "
                f"on {row.get('backend')}")
    return f"{row.get('op')} {row.get('case')} on {row.get('backend')}"


def _number(value: Any) -> float | None:
    """A JSON number as a float (NaN kept: the caller rejects it), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def timing_problem(samples: list[float], median: float) -> str | None:
    """Why these timings cannot be compared (NaN, infinite, not positive), or None."""
    values = [*samples, median]
    if any(math.isnan(v) for v in values):
        return "NaN timing"
    if any(math.isinf(v) for v in values):
        return "infinite timing"
    if any(v <= 0 for v in values):
        return "timing not positive"
    return None


def _row_timing(row: dict[str, Any]) -> tuple[list[float], str | None]:
    """A row's samples (may be empty: then its "seconds" is the median), or why they
    cannot be read."""
    timing = row.get("timing")
    if timing is None:
        timing = {}
    if not isinstance(timing, dict):
        return [], f"'timing' is {type(timing).__name__}, not an object"
    raw = timing.get("samples") or []
    if not isinstance(raw, list):
        return [], f"'timing.samples' is {type(raw).__name__}, not a list"
    samples = [_number(s) for s in raw]
    if any(s is None for s in samples):
        bad = next(s for s, v in zip(raw, samples, strict=True) if v is None)
        return [], f"non-numeric sample {bad!r:.40}"
    if not samples and _number(row.get("seconds")) is None:
        return [], f"'seconds' is {row.get('seconds')!r:.40} and there are no samples"
    return [s for s in samples if s is not None], None


# Flags that say nothing about a row's timings (the FMA peak its "% of peak" divides by
# was unreliable): shown, but they do not make the speed comparison inconclusive.
TIMING_NEUTRAL_FLAGS = frozenset({"peak-unreliable"})


def _flags(value: Any, state: Any = None) -> tuple[str, ...]:
    """A row's flags as strings (a row-level ``machine_state`` with ``busy`` adds
    "busy-machine")."""
    if not value:
        flags: tuple[str, ...] = ()
    elif isinstance(value, str):
        flags = (value,)
    elif isinstance(value, (list, tuple)):
        flags = tuple(str(v) for v in value)
    else:
        flags = (str(value),)
    if _machine_busy(state) and "busy-machine" not in flags:
        flags += ("busy-machine",)
    return flags


def _object(value: Any, what: str, path: Path) -> dict[str, Any]:
    """An optional JSON object (absent: empty), else ``ResultsError`` naming it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: {what} is {type(value).__name__}, expected an object")
    return value


def _positive(value: Any) -> float | None:
    """A FLOP or byte count: a positive finite number, else None (unknown)."""
    number = _number(value)
    return number if number is not None and math.isfinite(number) and number > 0 else None


def _reference(value: Any) -> dict[str, Any] | None:
    """A run's reference workload if it has every figure normalizing reads, else None
    (``--normalized`` then says the run has none)."""
    try:
        figures = (value["gemm"]["seconds"], value["gemm"]["gflops"],
                   value["stream"]["seconds"], value["stream"]["gbytes_per_s"])
    except (TypeError, KeyError):
        return None
    if not all(_positive(f) for f in figures):
        return None
    return value


def _machine_busy(state: Any) -> bool:
    return isinstance(state, dict) and state.get("busy") is True


def _invalid(key: str, reason: str, backend: Any, flags: tuple[str, ...] = ()) -> Entry:
    return Entry(key, (), math.nan, math.nan, math.nan, status=f"invalid: {reason}",
                 backend=str(backend or ""), flags=flags)


def _hwbench_run(path: Path, result: dict[str, Any]) -> Run:
    entries: dict[str, Entry] = {}
    rows = result.get("rows", [])
    if not isinstance(rows, list):
        raise ResultsError(f"{path}: 'rows' is {type(rows).__name__}, not a list")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ResultsError(f"{path}: row {index} is {type(row).__name__}, not an object")
        key = row_key(row)
        if row.get("status") != "ok":
            if row.get("status") != "unsupported":  # set from the exception's type
                entries[key] = Entry(key, (), math.nan, math.nan, math.nan,
                                     status=f"error: {row.get('reason', row.get('status'))}",
                                     backend=str(row.get("backend", "")))
            continue
        flags = _flags(row.get("flags"), row.get("machine_state"))
        samples, problem = _row_timing(row)
        if problem is None:
            problem = timing_problem(samples, samples[0] if samples else float(row["seconds"]))
        if problem is not None:
            entries[key] = _invalid(key, problem, row.get("backend"), flags)
            continue
        if samples:
            q1, median, q3 = _quartiles(samples)
        else:
            q1 = median = q3 = float(row["seconds"])
        entries[key] = Entry(key, tuple(samples), median, q1, q3, _positive(row.get("flops")),
                             _positive(row.get("bytes")), _accuracy_of(row),
                             backend=str(row.get("backend", "")), flags=flags)
    env = _object(result.get("environment"), "'environment'", path)
    machine = {"host": str(env.get("host", "?")), "cpu": str(env.get("cpu", "?")),
               "cores": str(env.get("cores_available", "?")), "arch": str(env.get("machine", "?")),
               "threads": str(result.get("threads", "?"))}
    versions = {k: str(env[k]) for k in ("hwbench", "python", "numpy") if k in env}
    for name, info in _object(result.get("backends"), "'backends'", path).items():
        if isinstance(info, dict):
            versions.update(_backend_versions(name, info))
    return Run(path, str(result["schema"]), entries, machine, versions,
               _reference(env.get("reference_workload")), str(result.get("created", "")),
               busy=_machine_busy(result.get("machine_state")))


# Keys of a backend's info() that are settings or measurements, not library versions.
_NOT_VERSIONS = {"backend", "device", "threads", "math_mode", "check_finite", "ceilings",
                 "screened_inputs"}


def _backend_versions(name: str, info: dict[str, Any]) -> dict[str, str]:
    return {f"{name}/{k}": str(v) for k, v in info.items()
            if k not in _NOT_VERSIONS and isinstance(v, (str, int, float)) and
            not isinstance(v, bool)}


def _pytest_benchmark_run(path: Path, payload: dict[str, Any]) -> Run:
    entries: dict[str, Entry] = {}
    versions: dict[str, str] = {}
    benchmarks = payload.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise ResultsError(f"{path}: 'benchmarks' is {type(benchmarks).__name__}, expected "
                           "a list")
    for index, bench in enumerate(benchmarks):
        bench = _object(bench, f"benchmark {index}", path)
        stats = bench.get("stats") or {}
        extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
        key = str(bench.get("fullname") or bench.get("name"))
        backend = str(extra.get("backend_name") or extra.get("backend") or "")
        flags = _flags(extra.get("flags"), extra.get("machine_state"))
        if not isinstance(stats, dict):
            entries[key] = _invalid(key, f"'stats' is {type(stats).__name__}", backend, flags)
            continue
        data = stats.get("data") or []
        samples = [_number(s) for s in data] if isinstance(data, list) else [None]
        median = _number(stats.get("median"))
        if any(s is None for s in samples) or (not samples and median is None):
            entries[key] = _invalid(key, "non-numeric stats (median or data)", backend, flags)
            continue
        if samples:
            problem = timing_problem(samples, samples[0])  # type: ignore[arg-type]
        else:
            q1 = _number(stats.get("q1", median))
            q3 = _number(stats.get("q3", median))
            q1 = median if q1 is None else q1
            q3 = median if q3 is None else q3
            problem = timing_problem([q1, q3], median)  # type: ignore[arg-type]
        if problem is not None:
            entries[key] = _invalid(key, problem, backend, flags)
            continue
        if samples:
            q1, median, q3 = _quartiles(samples)  # type: ignore[arg-type]
        entries[key] = Entry(key, tuple(samples), median, q1, q3,  # type: ignore[arg-type]
                             _positive(extra.get("flops")), _positive(extra.get("bytes")),
                             _accuracy_of(extra), backend=backend, flags=flags)
        backend_info = extra.get("backend_info")
        if isinstance(backend_info, dict):
            versions.update(_backend_versions(backend or "?", backend_info))
    info = payload.get("machine_info") if isinstance(payload.get("machine_info"), dict) else {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    hw = payload.get("hwbench") if isinstance(payload.get("hwbench"), dict) else {}
    machine = {"host": str(info.get("node", "?")),
               "cpu": str(cpu.get("brand_raw") or info.get("processor") or "?"),
               "cores": str(cpu.get("count", "?")), "arch": str(info.get("machine", "?")),
               "threads": str(hw.get("threads", "?"))}
    versions["python"] = str(info.get("python_version", "?"))
    if isinstance(hw.get("versions"), dict):
        versions.update({k: str(v) for k, v in hw["versions"].items()})
    return Run(path, "pytest-benchmark", entries, machine, versions,
               _reference(hw.get("reference_workload")), str(payload.get("datetime", "")),
               busy=_machine_busy(hw.get("machine_state")))


# -- thresholds ------------------------------------------------------------------------------
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
    from scipy.stats import bootstrap

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
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(old), np.asarray(new)
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def smallest_p_value(n: int, m: int) -> float:
    """The smallest two-sided p-value Mann-Whitney's exact test can give for n against m
    samples (all distinct, one side entirely above the other): 2 / C(n + m, n)."""
    return min(1.0, 2 / math.comb(n + m, n))


def _scaled(entry: Entry, scale: float) -> Entry:
    return Entry(entry.key, tuple(s / scale for s in entry.samples), entry.median / scale,
                 entry.q1 / scale, entry.q3 / scale, entry.flops, entry.bytes, entry.accuracy,
                 entry.status, entry.backend, entry.flags)


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


# -- comparing two runs ----------------------------------------------------------------------
@dataclass
class Comparison:
    old: Run
    new: Run
    thresholds: Thresholds
    normalized: bool
    changes: list[Change]
    only_old: list[str]
    only_new: list[str]
    notes: list[str]  # different machines, library versions, ...
    confirmed_by: list[str] = field(default_factory=list)  # re-runs a regression must repeat in

    @property
    def unconfirmed(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "unconfirmed"]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in ("regression", "broken")]

    @property
    def undecided(self) -> list[Change]:
        """Past the threshold by median, but too few samples to tell it from noise."""
        return [c for c in self.changes if c.verdict == "undecided"]

    @property
    def inconclusive(self) -> list[Change]:
        """Flagged rows or a busy machine: shown, never counted as slower or faster."""
        return [c for c in self.changes if c.verdict == "inconclusive"]

    @property
    def invalid(self) -> list[Change]:
        """Timings that are not positive numbers (NaN, null, non-numeric) on a side."""
        return [c for c in self.changes if c.verdict == "invalid"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in ("improvement", "fixed")]

    @property
    def accuracy_regressions(self) -> list[Change]:
        return [c for c in self.changes if c.accuracy_regressed]

    @property
    def failed(self) -> bool:
        """True if a regression passes a ``--fail-on`` threshold (the exit status)."""
        speed = self.thresholds.median is not None and bool(self.regressions or self.undecided)
        # exact kernels with new mismatches fail only when accuracy is checked
        accuracy = self.thresholds.accuracy is not None and bool(self.accuracy_regressions)
        # nothing to compare, or timings that cannot be compared, never pass
        return speed or accuracy or bool(self.invalid) or not self.changes

    def failure_text(self) -> str:
        """What failed, for the CLI's FAIL line."""
        parts = [f"{len(self.regressions)} slower", f"{len(self.accuracy_regressions)} less "
                 "accurate past --fail-on"]
        if self.undecided:
            parts.append(f"{len(self.undecided)} past the threshold with too few samples "
                         "to judge")
        if self.invalid:
            parts.append(f"{len(self.invalid)} with invalid timings")
        if not self.changes:
            parts.append("no benchmark in both runs")
        return ", ".join(parts)


def environment_notes(old: Run, new: Run) -> list[str]:
    """What differs between the two runs' machines and libraries, one line each."""
    notes = []
    hw = [k for k in ("cpu", "arch", "cores", "threads") if old.machine.get(k) !=
          new.machine.get(k) and "?" not in (old.machine.get(k), new.machine.get(k))]
    if hw:
        notes.append("DIFFERENT MACHINES: " + "; ".join(
            f"{k} {old.machine.get(k)!r} -> {new.machine.get(k)!r}" for k in hw)
            + " — raw times compare the machines, not the code (try --normalized)")
    elif old.machine.get("host") != new.machine.get("host"):
        notes.append(f"different hosts of the same kind: {old.machine.get('host')} -> "
                     f"{new.machine.get('host')}")
    changed = [k for k in sorted(set(old.versions) & set(new.versions))
               if old.versions[k] != new.versions[k]]
    if changed:
        notes.append("different library versions: " + "; ".join(
            f"{k} {old.versions[k]} -> {new.versions[k]}" for k in changed))
    if old.kind != new.kind:
        notes.append(f"different kinds of results: {old.kind} vs {new.kind}")
    return notes


def normalizer(run: Run, reference_for_kind: dict[str, Any]):
    """entry -> the run's reference seconds for that entry's kind of work."""
    if not run.reference:
        raise ResultsError(
            f"{run.path} has no reference workload timing, so it cannot be normalized "
            f"(runs of this hwbench record one; re-run, or compare without --normalized)")
    if run.reference.get("version") != reference_for_kind.get("version"):
        raise ResultsError(f"{run.path}: reference workload version "
                           f"{run.reference.get('version')} differs from "
                           f"{reference_for_kind.get('version')}: scores do not compare")

    def seconds(entry: Entry) -> float:
        kind = reference_workload.reference_kind(reference_for_kind, entry.flops, entry.bytes)
        return reference_workload.reference_seconds(run.reference, kind)

    return seconds


def compare_runs(old: Run, new: Run, thresholds: Thresholds | None = None,
                 normalized: bool = False) -> Comparison:
    thresholds = thresholds or Thresholds()
    common = [k for k in old.entries if k in new.entries]
    notes = environment_notes(old, new)
    if normalized:
        if not old.reference:  # say which side lacks it
            normalizer(old, {})
        scale_old = normalizer(old, old.reference)
        scale_new = normalizer(new, old.reference)  # classify both sides alike
        notes.append(
            "normalized: times divided by each run's reference workload (old: sgemm "
            f"{old.reference['gemm']['gflops']:.0f} GFLOP/s, add "
            f"{old.reference['stream']['gbytes_per_s']:.1f} GB/s; new: "
            f"{new.reference['gemm']['gflops']:.0f} GFLOP/s, "  # type: ignore[index]
            f"{new.reference['stream']['gbytes_per_s']:.1f} GB/s)")  # type: ignore[index]
    changes = []
    for key in common:
        a, b = old.entries[key], new.entries[key]
        if normalized and a.status == "ok" and b.status == "ok":
            a, b = _scaled(a, scale_old(a)), _scaled(b, scale_new(b))
        changes.append(compare_entries(a, b, thresholds, inconclusive_reasons(old, new, key)))
    only_old = [k for k in old.entries if k not in new.entries]
    only_new = [k for k in new.entries if k not in old.entries]
    if not common:
        notes.append("no benchmark is in both runs (different suites or backends?)")
    return Comparison(old, new, thresholds, normalized, changes, only_old, only_new, notes)


def inconclusive_reasons(old: Run, new: Run, key: str) -> tuple[str, ...]:
    """Why ``key``'s timings cannot be trusted: flags of its row in either run, and a
    busy machine on either side (``machine_state.busy``)."""
    reasons = [f"{flag} (old)" for flag in old.entries[key].flags
               if flag not in TIMING_NEUTRAL_FLAGS]
    reasons += [f"{flag} (new)" for flag in new.entries[key].flags
                if flag not in TIMING_NEUTRAL_FLAGS]
    reasons += [f"busy machine ({side})" for side, run in (("old", old), ("new", new))
                if run.busy]
    return tuple(dict.fromkeys(reasons))


def confirm(comparison: Comparison, confirming: list[Comparison]) -> None:
    """Keep a speed regression only where every ``confirming`` comparison (the same
    baseline against an independent re-run) finds it too; elsewhere it becomes
    "unconfirmed". A slowdown in the code repeats; a neighbour's burst of load on a shared
    machine seldom hits the same benchmark twice (measured on the 2-core CI VM: idle
    back-to-back runs differ up to 2x on a few short, multi-threaded benchmarks)."""
    for other in confirming:
        again = {c.key for c in other.regressions + other.undecided}
        for change in comparison.changes:
            if change.verdict in ("regression", "undecided") and change.key not in again:
                change.verdict = "unconfirmed"
    comparison.confirmed_by = [other.new.path.name for other in confirming]


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


# -- showing it ------------------------------------------------------------------------------
def _time(value: float, normalized: bool) -> str:
    if not math.isfinite(value):
        return "—"
    if normalized:
        return f"{value:.4g}×ref"
    return format_seconds(value)


VERDICT_STYLE = {"regression": "[bold red]SLOWER[/]", "improvement": "[bold green]faster[/]",
                 "same": "", "broken": "[bold red]BROKEN[/]", "fixed": "[green]fixed[/]",
                 "unconfirmed": "[yellow]slower once[/]",
                 "undecided": "[bold red]UNDECIDED: too few samples[/]",
                 "inconclusive": "[yellow]inconclusive[/]",
                 "invalid": "[bold red]INVALID timing[/]"}


def _accuracy_text(change: Change) -> str:
    parts = []
    for a in change.accuracy:
        if a.verdict == "same":
            continue
        style = "bold red" if a.verdict == "worse" else "yellow"
        fmt = "{:.0f}" if a.name == "mismatches" else "{:.3g}"
        parts.append(f"[{style}]{a.name} {fmt.format(a.old)} -> {fmt.format(a.new)}[/]")
    if not parts and change.accuracy:
        first = change.accuracy[0]
        return f"{first.name} {first.new:.2g}" if first.name != "mismatches" else (
            f"{first.new:.0f} mismatches")
    return "; ".join(parts)


def table(comparison: Comparison, show: str = "all"):
    """A rich table: one line per benchmark (``show="changed"``: only flagged ones)."""
    from rich.markup import escape
    from rich.table import Table

    title = (f"hwbench compare: {comparison.old.path.name} -> {comparison.new.path.name}"
             + (" (normalized)" if comparison.normalized else ""))
    out = Table(title=title)
    for column, justify in (("benchmark", "left"), ("old", "right"), ("new", "right"),
                            ("new/old", "right"), ("noise band", "right"), ("p", "right"),
                            ("accuracy", "left"), ("", "left")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in comparison.changes:
        flagged = c.verdict != "same" or any(a.verdict != "same" for a in c.accuracy)
        if show == "changed" and not flagged:
            continue
        if c.method in ("status", "invalid"):
            out.add_row(escape(c.key), escape(c.old.status[:40]) if c.old.status != "ok" else "ok",
                        escape(c.new.status[:40]) if c.new.status != "ok" else "ok", "", "", "", "",
                        VERDICT_STYLE[c.verdict])
            continue
        band = "" if c.method == "threshold only" else f"{c.band[0]:.2f}–{c.band[1]:.2f}"
        p = "" if c.p_value is None else (f"{c.p_value:.0e}" if c.p_value < 1e-3
                                          else f"{c.p_value:.3f}")
        flags = f" ({escape(', '.join(c.flags))})" if c.flags else ""
        out.add_row(escape(c.key), _time(c.old.median, comparison.normalized),
                    _time(c.new.median, comparison.normalized), f"{c.ratio:.2f}×", band, p,
                    _accuracy_text(c), VERDICT_STYLE[c.verdict] + flags + (
                        " [red]less accurate[/]" if c.accuracy_regressed else ""))
    return out


def summary_lines(comparison: Comparison) -> list[str]:
    t = comparison.thresholds
    limit = t.median if t.median is not None else DEFAULT_MARK
    lines = list(comparison.notes)
    methods = sorted({c.method for c in comparison.changes} - {"status", "invalid"})
    lines.append(
        f"{len(comparison.changes)} benchmarks in both runs; {len(comparison.regressions)} "
        f"slower, {len(comparison.improvements)} faster beyond {100 * limit:.0f}% "
        f"(band {100 * CONFIDENCE:.0f}% bootstrap, Mann-Whitney p < {ALPHA}; noise from: "
        f"{', '.join(methods) or '—'}); {len(comparison.accuracy_regressions)} less accurate"
        + (f" beyond {100 * t.accuracy:.0f}%" if t.accuracy is not None else
           " (accuracy not checked: --fail-on accuracy:N%)"))
    if comparison.inconclusive:
        busy = [side for side, run in (("old", comparison.old), ("new", comparison.new))
                if run.busy]
        lines.append(f"INCONCLUSIVE: {len(comparison.inconclusive)} benchmark(s) flagged by "
                     "the measuring run" + (f" (busy machine: {', '.join(busy)} run)" if busy
                                            else "") + ": shown, never counted as slower or "
                     "faster; re-run them on a quiet machine")
    if comparison.undecided:
        lines.append(f"UNDECIDED: {len(comparison.undecided)} benchmark(s) past "
                     f"{100 * limit:.0f}% by median, but their samples overlap and are too "
                     "few for the rank test (it needs about 5 per side): re-run with more "
                     "repeats; this fails --fail-on")
    if comparison.invalid:
        lines.append(f"INVALID: {len(comparison.invalid)} benchmark(s) with timings that are "
                     "not positive numbers (NaN, null, non-numeric): "
                     + ", ".join(c.key for c in comparison.invalid[:5])
                     + (" ..." if len(comparison.invalid) > 5 else "") + "; this fails")
    if comparison.confirmed_by:
        lines.append(f"{len(comparison.unconfirmed)} slower here but not again in "
                     f"{', '.join(comparison.confirmed_by)}: not counted (noise repeats "
                     "seldom, a regression always)")
    if comparison.only_old:
        lines.append(f"only in old ({len(comparison.only_old)}): "
                     + ", ".join(comparison.only_old[:5]) + (" ..." if len(
                         comparison.only_old) > 5 else ""))
    if comparison.only_new:
        lines.append(f"only in new ({len(comparison.only_new)}): "
                     + ", ".join(comparison.only_new[:5]) + (" ..." if len(
                         comparison.only_new) > 5 else ""))
    return lines


__all__ = ["Change", "Comparison", "Entry", "Run", "Thresholds", "compare_entries",
           "compare_paths", "compare_runs", "confirm", "inconclusive_reasons", "load_run",
           "parse_fail_on", "rank_test", "ratio_band", "smallest_p_value", "summary_lines",
           "table", "timing_problem"]
