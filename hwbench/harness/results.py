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
from hwbench.files import write_atomic, write_new

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
    """Load a result file, checking that it is one of ours and of a version we read."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"cannot read results from {path}: {exc}") from exc
    if not isinstance(payload, dict) or not str(payload.get("schema", "")).startswith("hwbench."):
        raise ResultsError(f"{path} is not an hwbench result file (no 'schema' field)")
    if payload.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path} has result version {payload.get('version')}; this hwbench reads "
            f"version {SCHEMA_VERSION}"
        )
    return payload


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
