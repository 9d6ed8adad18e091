"""Flat summaries of a model run for people and spreadsheets: Markdown and CSV.

The JSON result keeps everything (samples, environment); these keep one line per
backend × model × batch × precision with the figures a reader compares.
"""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = (
    ("model", "model"), ("batch", "batch"), ("precision", "precision"),
    ("backend", "backend"), ("status", "status"),
    ("latency_p50_ms", "p50 (ms)"), ("latency_p90_ms", "p90 (ms)"),
    ("latency_p99_ms", "p99 (ms)"), ("samples_per_s", "samples/s"), ("gflops", "GFLOP/s"),
    ("top1", "top-1"), ("mse", "MSE"), ("accuracy_samples", "accuracy over (samples)"),
    ("rel_error", "rel. error vs fp64"),
    ("top1_agreement", "top-1 agreement vs fp64"), ("int8_drop", "int8 drop (points)"),
)


def _score(row: dict[str, Any]) -> tuple[str, float] | None:
    """The accuracy figure an int8 row is compared on: top-1 on labels, else top-1
    agreement with the float64 reference, else reconstruction MSE (lower is better)."""
    for key in ("top1", "top1_agreement", "mse"):
        if row.get(key) is not None:
            return key, float(row[key])
    return None


def int8_drop(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """fp32's accuracy minus int8's, in percentage points, for an int8 row whose fp32 twin
    (same backend, model and batch) is in ``rows``; for MSE, int8's minus fp32's ×100
    (so a positive drop is always worse). MLPerf's bar: at most 1 point."""
    if row.get("precision") != "int8" or row.get("status") != "ok":
        return None
    mine = _score(row)
    for other in rows:
        if (other.get("precision") == "fp32" and other.get("status") == "ok"
                and all(other.get(k) == row.get(k) for k in ("backend", "model", "batch"))):
            theirs = _score(other)
            if mine and theirs and mine[0] == theirs[0]:
                sign = -1.0 if mine[0] == "mse" else 1.0
                return sign * 100.0 * (theirs[1] - mine[1])
    return None


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat dict per result row, with the COLUMNS keys (missing figures are None)."""
    out = []
    for row in rows:
        flat = {key: row.get(key) for key, _ in COLUMNS}
        flat["int8_drop"] = int8_drop(row, rows)
        for p in ("50", "90", "99"):
            value = row.get(f"latency_p{p}")
            flat[f"latency_p{p}_ms"] = None if value is None else value * 1e3
        if row.get("status") != "ok":
            flat["status"] = f"{row.get('status')}: {row.get('reason', '')}"
        out.append(flat)
    return sorted(out, key=lambda r: (str(r["model"]), str(r["precision"]), r["batch"] or 0,
                                      str(r["backend"])))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    flat = summary_rows(rows)
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    for row in flat:
        cells = [_fmt(row[key]).replace("|", "\\|") for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _ in COLUMNS])
    writer.writeheader()
    for row in summary_rows(rows):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
