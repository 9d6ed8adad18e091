"""Versioned result files, written atomically so that an interrupted run loses nothing.

A result file is JSON: ``{"schema": "hwbench.<kind>", "version": N, "environment": {...},
"rows": [...]}``, written with ``hwbench.files.write_atomic`` so that a reader sees the
old file or the new one, never half of one. A run's file is created exclusively
(``create_result_file``): no run ever replaces another's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.errors import ResultsError
from hwbench.files import read_json, write_atomic, write_new

SCHEMA_VERSION = 1


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (create parent folders)."""

    def dump(fh) -> None:
        json.dump(payload, fh, indent=1, sort_keys=False, default=to_jsonable)
        fh.write("\n")

    return write_atomic(path, dump)


def create_json(path: str | os.PathLike, payload: Any, unique: bool = True) -> Path:
    """Write ``payload`` as a *new* JSON file: never over another (a taken name becomes
    ``stem-2.json``, ... with ``unique``, else ``ResultsError``); returns the path written.
    Later saves of the same run go to that path with ``write_json_atomic``."""

    def dump(fh) -> None:
        json.dump(payload, fh, indent=1, sort_keys=False, default=to_jsonable)
        fh.write("\n")

    return write_new(path, dump, unique=unique)


def to_jsonable(value: Any) -> Any:
    """``json.dump``'s fallback for NumPy arrays and scalars, sets and anything else."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def new_result(kind: str, environment: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"schema": f"hwbench.{kind}", "version": SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment,
            **fields, "rows": []}


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    """Load a result file, checking that it is one of ours, of a version we read, and that
    its rows hold what every reader (compare, report, roofline, sweep) relies on."""
    payload = read_json(path, "results", error=ResultsError)
    if not isinstance(payload, dict) or not str(payload.get("schema", "")).startswith("hwbench."):
        raise ResultsError(f"{path} is not an hwbench result file (no 'schema' field)")
    if payload.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path} has result version {payload.get('version')}; this hwbench reads "
            f"version {SCHEMA_VERSION}"
        )
    problems = result_problems(payload)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ResultsError(f"{path} is not a valid result file: {'; '.join(problems[:3])}{more}")
    for row in payload.get("rows", []):
        _upgrade_failure_status(row)
    return payload


# What an error row's reason started with when hwbench refused the case on purpose.
_LEGACY_REFUSALS = ("ArgumentError", "DTypeError", "BackendUnavailableError", "UnsupportedError")


def _upgrade_failure_status(row: dict[str, Any]) -> None:
    """Give an error row written before rows carried ``refused`` (``row_status``) the
    ``status`` and ``refused`` it would get now. Those files recorded an unsupported kernel
    as ``status: error`` with the exception's name first in ``reason``: this is the one
    place that reads it back, once, so every reader sees the same rows as for a new file."""
    if row.get("status") != "error" or "refused" in row:
        return
    reason = str(row.get("reason", ""))
    if reason.startswith("UnsupportedError:"):
        row["status"] = "unsupported"
    row["refused"] = reason.startswith(tuple(f"{name}:" for name in _LEGACY_REFUSALS))


# Figures a row may carry: each must be a JSON number when present (NaN allowed: a
# measurement that came out NaN is data for compare to flag, not a corrupt file).
NUMERIC_FIELDS = ("seconds", "latency_p50", "latency_p90", "latency_p99", "samples_per_s",
                  "gflops", "gbytes_per_s", "flops", "bytes", "intensity", "rel_error",
                  "max_abs_error", "mismatches", "top1", "top1_agreement", "mse",
                  "fraction_of_peak", "accuracy_seconds", "accuracy_samples", "batch",
                  "simulated_seconds", "simulated_tops", "simulated_cycles",
                  "simulated_utilization", "simulated_samples_per_s", "tokens_per_s",
                  "sequence", "exact_match", "cer", "latency_per_token", "fid", "fid_fp64",
                  "fid_vs_fp64", "max_abs_diff", "classes_made", "class_entropy_bits")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def result_problems(payload: dict[str, Any]) -> list[str]:
    """What is wrong with a result file's structure, one line per problem naming the row
    (empty when it is sound): the one schema check behind ``read_result``."""
    problems = [f"'{key}' is {type(payload[key]).__name__}, expected an object"
                for key in ("environment", "backends")
                if key in payload and not isinstance(payload[key], dict)]
    rows = payload.get("rows", [])
    if not isinstance(rows, list):
        return [*problems, f"'rows' is {type(rows).__name__}, expected a list"]
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(f"row {index}: is {type(row).__name__}, expected an object")
            continue
        label = f"row {index} ({_row_label(row)})"
        for key in ("status", "backend", "model", "op", "case", "precision", "reason"):
            if key in row and not isinstance(row[key], str):
                problems.append(f"{label}: '{key}' is {_shown(row[key])}, expected a string")
        for key in NUMERIC_FIELDS:
            if key in row and not _is_number(row[key]):
                problems.append(f"{label}: '{key}' is {_shown(row[key])}, expected a number")
        timing = row.get("timing")
        if timing is None:
            continue
        if not isinstance(timing, dict):
            problems.append(f"{label}: 'timing' is {_shown(timing)}, expected an object")
            continue
        samples = timing.get("samples", [])
        if not isinstance(samples, list) or not all(_is_number(s) for s in samples):
            problems.append(f"{label}: 'timing.samples' must be a list of numbers")
        for key in ("median", "min", "max", "iqr", "spread"):
            if key in timing and not _is_number(timing[key]):
                problems.append(f"{label}: 'timing.{key}' is {_shown(timing[key])}, "
                                f"expected a number")
    return problems


def _row_label(row: dict[str, Any]) -> str:
    what = row.get("model", row.get("op", "?"))
    return f"{str(what)[:40]} on {str(row.get('backend', '?'))[:40]}"


def _shown(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {str(value)[:20]!r}"


def default_result_path(folder: str | os.PathLike, kind: str) -> Path:
    """The name a new result file asks for (``create_result_file`` makes it unique)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    host = os.uname().nodename.split(".")[0] or "host"
    return Path(folder) / f"{kind}-{host}-{stamp}.json"


def create_result_file(folder: str | os.PathLike, kind: str, payload: dict[str, Any]) -> Path:
    """Create this run's result file in ``folder`` now, exclusively, with what ``payload``
    holds so far; return its path (two runs started in the same second get
    ``...-HHMMSS.json`` and ``...-HHMMSS-2.json``). The run then saves to that path."""
    return create_json(default_result_path(folder, kind), payload)
