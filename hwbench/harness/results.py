"""Versioned result files, written atomically so that an interrupted run loses nothing.

A result file is JSON: ``{"schema": "hwbench.<kind>", "version": N, "environment": {...},
"rows": [...]}``. Writing goes to a temporary file in the same folder, is fsynced, then
renamed over the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.errors import ResultsError

SCHEMA_VERSION = 1


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (create parent folders)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ResultsError(f"cannot write results to {target}: {exc}") from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, sort_keys=False, default=to_jsonable)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    stamp = time.strftime("%Y%m%d-%H%M%S")
    host = os.uname().nodename.split(".")[0] or "host"
    return Path(folder) / f"{kind}-{host}-{stamp}.json"
