"""``hwbench compare``'s output: the rich table, one line per benchmark, and the summary
lines under it."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from hwbench.harness.results.comparison import Comparison
from hwbench.harness.results.verdicts import ALPHA, CONFIDENCE, DEFAULT_MARK, Change
from hwbench.harness.running.timing import format_seconds


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
