"""The tables ``hwbench kernels`` and ``hwbench run`` print: one line per (case, backend).

Every cell holding a string from a user, a file or an exception is literal text (``cell``):
rich would read ``[cuda]`` or ``[/x]`` in it as markup.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hwbench.harness.results.summary import int8_drop
from hwbench.harness.running.timing import format_seconds
from hwbench.harness.suites.kernel_suite import OPS

FLAG_MARK = "⚠"  # beside a figure that cannot be trusted; the notes under the table say why


def cell(value: Any, style: str = "") -> Text:
    """A table cell shown literally."""
    return Text(str(value), style=style)


def flagged(text: str, row: dict[str, Any]) -> str:
    """``text`` with a visible marker when the row carries flags (listed in the notes)."""
    return f"{escape(text)} [yellow]{FLAG_MARK}[/]" if row.get("flags") else escape(text)


def _not_ok_cell(row: dict[str, Any]) -> Any:
    """What a row that did not run shows: 'unsupported', else the start of its reason."""
    if row.get("status") == "unsupported":
        return "unsupported"
    return cell(str(row.get("reason", ""))[:40], "red")


def kernels_table(rows: list[dict[str, Any]], peak: dict[str, Any] | None,
                  order: list[str]) -> Table:
    """One line per (case, backend), backends side by side for each case."""
    rank = {name: i for i, name in enumerate(order)}
    first_seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        first_seen.setdefault(row.get("case", ""), i)
    rows = sorted(rows, key=lambda r: (OPS.index(r["op"]) if r.get("op") in OPS else 99,
                                       first_seen.get(r.get("case", ""), 0),
                                       rank.get(r["backend"], 99)))
    table = Table(title="hwbench kernels" + (
        f" — FMA peak {peak['gflops']:.0f} GFLOP/s"
        + ("" if peak.get("reliable", True) else " (unreliable)") if peak else ""))
    modes = sorted({str(r["check_finite"]) for r in rows if r.get("check_finite")})
    if modes:  # whether any timing could include a NaN screen: none does
        table.caption = f"NaN/inf screen of the inputs: {' / '.join(modes)} (every backend)"
    for column, justify in (("backend", "left"), ("op", "left"), ("case", "left"),
                            ("median", "right"), ("spread", "right"), ("GFLOP/s", "right"),
                            ("% peak", "right"), ("GB/s", "right"), ("error", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if row.get("status") != "ok":
            table.add_row(cell(row["backend"]), cell(row.get("op", "?")),
                          cell(row.get("case", "?")), "—", "", "", "", "", _not_ok_cell(row))
            continue
        err = (f"{row['mismatches']} diff" if "mismatches" in row
               else f"{row['rel_error']:.1e}")
        frac = row.get("fraction_of_peak")
        table.add_row(
            flagged(row["backend"], row), cell(row["op"]), cell(row["case"]),
            format_seconds(row["seconds"]),
            f"{100 * row['timing']['spread']:.1f}%", f"{row['gflops']:.1f}",
            f"{100 * frac:.0f}%" if frac else "", f"{row['gbytes_per_s']:.1f}", err)
    return table


def _accuracy_text(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The accuracy cell of a model row: top-1 or mse, the int8 drop, a simulator's time."""
    if "top1" in row:
        acc = f"top-1 {100 * row['top1']:.1f}%"
    elif "mse" in row:
        acc = f"mse {row['mse']:.4f}"
    elif "exact_match" in row:  # the translator: whole sentences right, character errors
        acc = f"exact {100 * row['exact_match']:.1f}%, CER {100 * row['cer']:.2f}%"
    elif "fid" in row:  # the BEGAN: FID on LeNet features, digits LeNet reads in its images
        acc = f"FID {row['fid']:.1f}, {row['classes_made']} digits"
    else:
        acc = ""
    if row.get("inputs_cycled"):  # a batch larger than the test split repeats it
        acc += f" over {row.get('accuracy_samples')} images"
    drop = int8_drop(row, rows)
    if drop is not None:
        acc += (f" (FID {drop:+.2f} vs fp32)" if "fid" in row
                else f" ({drop:+.2f} pt vs fp32)")
    if "simulated_seconds" in row:  # a simulated accelerator: its own time beside
        sim = (f"sim {format_seconds(row['simulated_seconds'])}, "
               f"{row['simulated_tops']:.2f} TOP/s")
        acc = f"{acc}; {sim}" if acc else sim
    return acc


def backend_text(row: dict[str, Any]) -> str:
    """The row's backend, and the device it chose where it chose one per model
    (plain ``opencl`` on PoCL: "opencl [basic]"; ``opencl/device_choice.py``)."""
    chosen = [part.split("-")[0] for part in str(row.get("device") or "").split("; ")
              if "(chosen:" in part]
    backend = str(row.get("backend", "?"))
    return f"{backend} [{'+'.join(chosen)}]" if chosen else backend


def run_table(rows: list[dict[str, Any]], order: list[str]) -> Table:
    """One line per (model, batch, precision, backend), backends side by side."""
    rank = {name: i for i, name in enumerate(order)}
    rows = sorted(rows, key=lambda r: (r.get("model", ""), r.get("precision", ""),
                                       r.get("batch", 0), rank.get(r.get("backend"), 99)))
    table = Table(title="hwbench run")
    for column, justify in (("model", "left"), ("batch", "right"), ("prec.", "left"),
                            ("backend", "left"), ("p50", "right"), ("p99", "right"),
                            ("samples/s", "right"), ("GFLOP/s", "right"),
                            ("accuracy", "right"), ("vs fp64", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        head = tuple(cell(row.get(key, "?")) for key in ("model", "batch", "precision", "backend"))
        if row.get("status") != "ok":
            table.add_row(*head, "—", "", "", "", "", _not_ok_cell(row))
            continue
        p50 = format_seconds(row["latency_p50"]) if "latency_p50" in row else ""
        p99 = format_seconds(row["latency_p99"]) if "latency_p99" in row else ""
        agree = f"{row['rel_error']:.1e}" if "rel_error" in row else ""
        if "top1_agreement" in row:
            agree += f" ({100 * row['top1_agreement']:.0f}% top-1)"
        if "fid_vs_fp64" in row:  # the BEGAN's images: their FID beside fp64's images'
            agree += f" (FID {row['fid_vs_fp64']:+.2f})"
        rate = f"{row['samples_per_s']:.1f}"
        if "tokens_per_s" in row:  # a sequence model: tokens per second too
            rate += f" ({row['tokens_per_s']:,.0f} tok/s)"
        table.add_row(*head[:3], flagged(backend_text(row), row), p50, p99,
                      rate, f"{row.get('gflops', 0):.1f}",
                      _accuracy_text(row, rows), agree)
    return table
