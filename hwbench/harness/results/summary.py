"""Flat summaries of a model run for people and spreadsheets: Markdown and CSV.

The JSON result keeps everything (samples, environment); these keep one line per
backend × model × batch × precision with the figures a reader compares.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from hwbench.harness.results.backend_ratios import ratio_markdown

COLUMNS = (
    ("model", "model"), ("batch", "batch"), ("precision", "precision"),
    ("backend", "backend"), ("status", "status"),
    ("latency_p50_ms", "p50 (ms)"), ("latency_p90_ms", "p90 (ms)"),
    ("latency_p99_ms", "p99 (ms)"), ("samples_per_s", "samples/s"),
    ("tokens_per_s", "tokens/s"), ("gflops", "GFLOP/s"), ("top1", "top-1"),
    ("mse", "MSE"), ("exact_match", "exact match"), ("cer", "CER"),
    ("fid", "FID"), ("classes_made", "digits made"),
    ("latency_per_token", "s per token"), ("accuracy_samples", "accuracy over (samples)"),
    ("rel_error", "rel. error vs fp64"),
    ("top1_agreement", "top-1 agreement vs fp64"),
    ("int8_drop", "int8 drop (points; FID: its rise)"),
    ("flags", "flags"),
)
ROW_FLAGS = ("busy-machine", "wide-spread", "bimodal", "peak-unreliable")


def _share(value: Any) -> str:
    return f"{100 * value:.0f}%" if isinstance(value, (int, float)) else "n/a"


def trust_lines(rows: list[dict[str, Any]], machine: dict[str, Any] | None = None,
                peak: dict[str, Any] | None = None) -> list[str]:
    """Warnings for a table or summary: the machine was busy, how many rows carry which
    flag, the FMA peak is unreliable. Empty when every figure can be trusted."""
    lines = []
    if isinstance(machine, dict) and machine.get("busy_because") == "rows":
        lines.append(f"the machine was busy while {machine.get('busy_rows')} of this run's "
                     "rows were timed: figures may be far slower than this machine can do")
    elif isinstance(machine, dict) and machine.get("busy"):
        load = machine.get("load_before") or []
        after = machine.get("load_after") or []
        thresholds = machine.get("thresholds") or {}
        lines.append(
            "the machine was busy during this run: other processes used "
            f"{_share(machine.get('others_share'))} of the CPU (busy from "
            f"{_share(thresholds.get('others_share'))}), steal "
            f"{_share(machine.get('steal_share'))}, load average "
            f"{load[0] if load else 'n/a'} before, {after[0] if after else 'n/a'} after: "
            "figures may be far slower than this machine can do")
    counts = {flag: 0 for flag in ROW_FLAGS}
    flagged = 0
    for row in rows:
        flags = row.get("flags") or []
        flagged += bool(flags)
        for flag in flags:
            counts[flag] = counts.get(flag, 0) + 1
    if flagged:
        detail = ", ".join(f"{flag} {n}" for flag, n in counts.items() if n)
        lines.append(f"{flagged} row(s) flagged as untrustworthy ({detail})")
    if isinstance(peak, dict) and not peak.get("reliable", True):
        lines.append(f"the FMA peak is unreliable ({peak.get('reason') or 'trials disagree'}): "
                     "% of peak figures are not to be trusted")
    return lines


def _score(row: dict[str, Any]) -> tuple[str, float] | None:
    """The accuracy figure an int8 row is compared on: top-1 on labels (exact match for
    the translator, the FID for the BEGAN: lower is better), else top-1 agreement with
    the float64 reference, else reconstruction MSE (lower is better)."""
    for key in ("top1", "exact_match", "fid", "top1_agreement", "mse"):
        if row.get(key) is not None:
            return key, float(row[key])
    return None


def int8_drop(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """fp32's accuracy minus int8's, in percentage points, for an int8 row whose fp32 twin
    (same backend, model and batch) is in ``rows``; for MSE, int8's minus fp32's ×100,
    for the FID int8's minus fp32's (so a positive drop is always worse). MLPerf's bar:
    at most 1 point."""
    if row.get("precision") != "int8" or row.get("status") != "ok":
        return None
    mine = _score(row)
    for other in rows:
        if (other.get("precision") == "fp32" and other.get("status") == "ok"
                and all(other.get(k) == row.get(k) for k in ("backend", "model", "batch"))):
            theirs = _score(other)
            if mine and theirs and mine[0] == theirs[0]:
                if mine[0] == "fid":  # a distance, not a share: its own units
                    return mine[1] - theirs[1]
                sign = -1.0 if mine[0] == "mse" else 1.0
                return sign * 100.0 * (theirs[1] - mine[1])
    return None


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat dict per result row, with the COLUMNS keys (missing figures are None)."""
    out = []
    for row in rows:
        flat = {key: row.get(key) for key, _ in COLUMNS}
        flat["int8_drop"] = int8_drop(row, rows)
        flat["flags"] = ", ".join(row.get("flags") or []) or None
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


def to_markdown(rows: list[dict[str, Any]], machine: dict[str, Any] | None = None) -> str:
    """The Markdown table, then (with two backends or more) each one's speed ÷ the first's
    (``backend_ratios``), then a warning line per ``trust_lines`` entry."""
    flat = summary_rows(rows)
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    for row in flat:
        cells = [_fmt(row[key]).replace("|", "\\|") for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    ratios = ratio_markdown(rows)
    if ratios:
        lines += ["", ratios.rstrip("\n")]
    warnings = [f"> **Warning:** {line}" for line in trust_lines(rows, machine)]
    return "\n".join(lines + ([""] + warnings if warnings else [])) + "\n"


def to_csv(rows: list[dict[str, Any]], machine: dict[str, Any] | None = None) -> str:
    """CSV rows, each with its ``flags``; ``machine`` is accepted for symmetry with
    ``to_markdown`` (a CSV has no place for free text: the flags column carries it)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _ in COLUMNS])
    writer.writeheader()
    for row in summary_rows(rows):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
