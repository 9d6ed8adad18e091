"""The two inputs of ``hwbench compare`` as one shape: a ``Run`` of ``Entry`` rows.

Reads hwbench's own results (``hwbench.kernels``, ``hwbench.models``) and pytest-benchmark
JSON (``--benchmark-json`` files and ``--benchmark-storage`` folders), and says which rows
cannot be compared (invalid timings, flags, a busy machine) before any statistics see them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.errors import ResultsError
from hwbench.files import read_json
from hwbench.harness.results.result_files import read_result
from hwbench.harness.running import omp_wait

# accuracy figures: name -> True if higher is better
ACCURACY_FIGURES = {"rel_error": False, "mismatches": False, "top1": True,
                    "top1_agreement": True, "mse": False, "fid": False}


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
    payload = read_json(path, "results", error=ResultsError)
    if isinstance(payload, dict) and str(payload.get("schema", "")).startswith("hwbench."):
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
               "threads": str(result.get("threads", "?")),
               "omp_wait": omp_wait.recorded_policy(env.get("openmp_wait"))}
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

