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
    ("top1", "top-1"), ("mse", "MSE"), ("rel_error", "rel. error vs fp64"),
    ("top1_agreement", "top-1 agreement vs fp64"),
)


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat dict per result row, with the COLUMNS keys (missing figures are None)."""
    out = []
    for row in rows:
        flat = {key: row.get(key) for key, _ in COLUMNS}
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
