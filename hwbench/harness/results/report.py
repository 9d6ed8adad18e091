"""``hwbench report RESULTS...``: a Markdown report and a self-contained HTML one.

Reads hwbench results (kernels, models) and pytest-benchmark JSON (files, or storage
folders holding many saved runs). Writes into one folder:

- ``report.md``: tables per backend (kernels, pytest-benchmark runs) and per model
  (``hwbench run``), the roofline of each models run, and history plots; images are PNG
  files beside it;
- ``report.html``: the same content with every image embedded as a base64 data URI and
  the style inline, so the one file can be mailed or attached to a CI run.

History: when several runs of the same kind are given (a storage folder of autosaved
pytest-benchmark runs, or several results files), one plot per backend shows every
benchmark's median time across the runs relative to its first run (1.0 = unchanged,
above = slower), with the geometric mean of them all in bold.

matplotlib is imported only to draw, with the Agg canvas and the object API (as in
``roofline``); the tables are built once and written twice, as Markdown and as HTML.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwbench.errors import ArgumentError, HwbenchError, ResultsError
from hwbench.files import read_json, write_atomic
from hwbench.harness.results import compare
from hwbench.harness.results.result_files import read_result
from hwbench.harness.results.roofline import plot_roofline
from hwbench.harness.results.summary import trust_lines
from hwbench.harness.running.timing import format_seconds

MAX_HISTORY_LINES = 40  # per plot: more lines are unreadable; the geometric mean has all


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG)


@dataclass
class Report:
    markdown: Path
    html: Path
    images: list[Path]
    sections: list[Section]
    notes: list[str]


@dataclass
class HistoryPlot:
    path: Path
    lines: int  # benchmarks drawn (one line each), the geometric mean not counted
    runs: int


# -- reading ---------------------------------------------------------------------------------
def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.rglob("*.json"))
    if not path.exists():
        raise ResultsError(f"{path} does not exist")
    return [path]


def _load(path: Path) -> tuple[str, dict[str, Any]] | None:
    """(kind, payload) or None for JSON that is neither hwbench nor pytest-benchmark."""
    payload = read_json(path, "results", error=ResultsError)
    if isinstance(payload, dict) and str(payload.get("schema", "")).startswith("hwbench."):
        return str(payload["schema"]), read_result(path)  # its rows checked, once for all
    if isinstance(payload, dict) and "benchmarks" in payload and "machine_info" in payload:
        return "pytest-benchmark", payload
    return None


# -- formatting ------------------------------------------------------------------------------
def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return format_seconds(value)


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(
        value, bool) else ""


def _accuracy(row: dict[str, Any]) -> str:
    """Figures that are not numbers (a hand-edited pytest-benchmark extra_info) are left
    out rather than formatted."""
    if "mismatches" in row:
        return f"{row['mismatches']} mismatches"
    parts = []
    for key, show in (("top1", lambda v: f"top-1 {100 * v:.1f}%"),
                      ("mse", lambda v: f"MSE {v:.4f}"),
                      ("exact_match", lambda v: f"exact match {100 * v:.1f}%"),
                      ("fid", lambda v: f"FID {v:.1f}"),
                      ("rel_error", lambda v: f"{v:.1e} vs fp64")):
        value = _number(row.get(key))
        if value is not None:
            parts.append(show(value))
    return ", ".join(parts)


def _environment_line(env: dict[str, Any], when: str) -> str:
    return (f"{when[:19]} — {env.get('host', '?')}: {env.get('cpu', '?')}, "
            f"{env.get('cores_available', '?')} cores, Python {env.get('python', '?')}, "
            f"NumPy {env.get('numpy', '?')}, hwbench {env.get('hwbench', '?')}")


# -- sections --------------------------------------------------------------------------------
def _warnings(result: dict[str, Any]) -> list[str]:
    """``summary.trust_lines`` of a result: busy machine, flagged rows, unreliable peak."""
    rows = [r for r in result.get("rows", []) if isinstance(r, dict)]
    machine = result.get("machine_state")
    peak = (result.get("environment") or {}).get("fma_peak")
    return [f"Warning: {line}" for line in trust_lines(
        rows, machine if isinstance(machine, dict) else None,
        peak if isinstance(peak, dict) else None)]


def _marked(text: Any, row: dict[str, Any]) -> str:
    """A flagged row's cell, marked (the section's warnings say what the flags are)."""
    flags = row.get("flags")
    return f"{text} ⚠ {', '.join(map(str, flags))}" if isinstance(flags, list) and flags else (
        str(text))


def _kernels_section(path: Path, result: dict[str, Any]) -> Section:
    section = Section(f"Kernels: {path.name}", [_environment_line(
        result.get("environment") or {}, str(result.get("created", ""))), *_warnings(result)])
    by_backend: dict[str, list[list[str]]] = {}
    for row in result.get("rows", []):
        cells = [row.get("op", "?"), _marked(row.get("case", "?"), row)]
        if row.get("status") != "ok":
            cells += ["", "", "", "", str(row.get("reason", row.get("status")))[:60]]
        else:
            unit = "GOP/s" if row.get("op") in ("gemm_int8", "qgemm") else "GFLOP/s"
            spread = (row.get("timing") or {}).get("spread")
            cells += [_seconds(row.get("seconds")),
                      f"{100 * spread:.1f}%" if isinstance(spread, float) else "",
                      f"{_num(row.get('gflops'))} {unit}", _num(row.get("gbytes_per_s")),
                      _accuracy(row)]
        by_backend.setdefault(str(row.get("backend", "?")), []).append(cells)
    for backend, rows in by_backend.items():
        section.tables.append(Table(f"backend {backend}", ["op", "case", "median", "spread",
                                                          "rate", "GB/s", "accuracy"], rows))
    return section


def _models_section(path: Path, result: dict[str, Any], folder: Path,
                    notes: list[str]) -> Section:
    section = Section(f"Models: {path.name}", [_environment_line(
        result.get("environment") or {}, str(result.get("created", ""))), *_warnings(result)])
    by_model: dict[str, list[list[str]]] = {}
    for row in result.get("rows", []):
        head = [_marked(row.get("backend", "?"), row), str(row.get("batch", "?")),
                str(row.get("precision", "?"))]
        if row.get("status") != "ok":
            cells = head + ["", "", "", str(row.get("reason", row.get("status")))[:60]]
        else:
            cells = head + [_seconds(row.get("latency_p50")), _num(row.get("samples_per_s")),
                            _num(row.get("gflops")), _accuracy(row)]
        by_model.setdefault(str(row.get("model", "?")), []).append(cells)
    for model, rows in by_model.items():
        section.tables.append(Table(f"model {model}", ["backend", "batch", "precision",
                                                      "p50 (batch 1)", "samples/s", "GFLOP/s",
                                                      "accuracy"], rows))
    png = folder / f"roofline-{path.stem}.png"
    try:
        plot_roofline(result, png)
    except HwbenchError as exc:
        notes.append(f"no roofline plot for {path.name}: {exc}")
    else:
        section.images.append((f"Roofline of {path.name}", png))
    return section


def _number(value: Any) -> float | None:
    """``value`` if it is a JSON number (not a bool), else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None


def _pytest_benchmark_section(path: Path, payload: dict[str, Any],
                              notes: list[str]) -> Section | None:
    """The newest pytest-benchmark run's tables; a benchmark without a numeric median is
    left out with a note naming the file and the benchmark (None if none is left)."""
    info = payload.get("machine_info") if isinstance(payload.get("machine_info"), dict) else {}
    cpu_info = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    cpu = cpu_info.get("brand_raw") or info.get("processor", "?")
    section = Section(f"pytest-benchmark run: {path.name}", [
        f"{str(payload.get('datetime', ''))[:19]} — {info.get('node', '?')}: {cpu}, "
        f"Python {info.get('python_version', '?')}, commit "
        f"{str((payload.get('commit_info') or {}).get('id', '?'))[:10]}"])
    by_backend: dict[str, list[list[str]]] = {}
    benchmarks = payload.get("benchmarks")
    if not isinstance(benchmarks, list):
        notes.append(f"skipped {path}: 'benchmarks' is {type(benchmarks).__name__}, expected "
                     f"a list")
        return None
    for index, bench in enumerate(benchmarks):
        bench = bench if isinstance(bench, dict) else {}
        stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
        extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
        median, iqr = _number(stats.get("median")), _number(stats.get("iqr"))
        data = stats.get("data", [])
        if median is None or not isinstance(data, list) or any(_number(v) is None
                                                                 for v in data):
            field = "'stats.median'" if median is None else "'stats.data'"
            notes.append(f"skipped {path}: benchmark {index} ({str(bench.get('name', '?'))[:60]})"
                         f": {field} is not numeric")
            continue
        what = extra.get("case") or extra.get("model") or bench.get("name", "?")
        if extra.get("model"):
            what = f"{what} b{extra.get('batch')} {extra.get('precision')}"
        rate = f"{_num(extra.get('rate'))} {extra.get('unit', '')}" if "rate" in extra else ""
        by_backend.setdefault(str(extra.get("backend", "?")), []).append([
            str(extra.get("op", "model" if extra.get("model") else "")), str(what),
            _seconds(median), f"{100 * iqr / median:.1f}%" if iqr is not None and median
            else "", str(stats.get("rounds", "")), rate, _accuracy(extra)])
    for backend, rows in by_backend.items():
        section.tables.append(Table(f"backend {backend}", ["op", "benchmark", "median",
                                                          "IQR/median", "rounds", "rate",
                                                          "accuracy"], rows))
    return section if section.tables else None


def plot_history(runs: list[compare.Run], backend: str, path: Path) -> HistoryPlot:
    """Median time of each ``backend`` benchmark across ``runs`` (in order), relative to
    the first run that has it; the geometric mean over benchmarks in bold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = history_keys(runs, backend)
    fig = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(runs)))
    drawn = 0
    logs: list[list[float]] = [[] for _ in runs]
    for key in keys:
        ys: list[float] = []
        first = None
        for i, run in enumerate(runs):
            entry = run.entries.get(key)
            if entry is None or entry.status != "ok" or not entry.median > 0:
                ys.append(math.nan)
                continue
            first = first or entry.median
            ys.append(entry.median / first)
            logs[i].append(math.log(entry.median / first))
        if drawn < MAX_HISTORY_LINES:
            ax.plot(xs, ys, marker="o", lw=0.8, ms=3, alpha=0.6,
                    label=_short(key) if len(keys) <= 10 else None)
            drawn += 1
    geo = [math.exp(sum(v) / len(v)) if v else math.nan for v in logs]
    ax.plot(xs, geo, color="black", lw=2.5, marker="s", label="geometric mean")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(xs, [_run_label(run) for run in runs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("median time / first run (above 1: slower)")
    ax.set_title(f"{backend}: {len(keys)} benchmarks over {len(runs)} runs"
                 + (f" ({drawn} drawn)" if drawn < len(keys) else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="upper left")
    out = write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    return HistoryPlot(out, drawn, len(runs))


def history_keys(runs: list[compare.Run], backend: str) -> list[str]:
    """``backend``'s benchmarks measured in at least two of ``runs`` (a history)."""
    seen: dict[str, int] = {}
    for run in runs:
        for key, entry in run.entries.items():
            if entry.backend == backend and entry.status == "ok":
                seen[key] = seen.get(key, 0) + 1
    return sorted(k for k, n in seen.items() if n >= 2)


def _short(key: str) -> str:
    key = key.split("::")[-1]
    return key if len(key) <= 50 else key[:47] + "..."


def _run_label(run: compare.Run) -> str:
    return (run.created[:16].replace("T", " ") or run.path.stem)[:19]


def _history_section(runs_by_kind: dict[str, list[compare.Run]], folder: Path,
                     notes: list[str]) -> Section | None:
    section = Section("History")
    for kind, runs in runs_by_kind.items():
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: (r.created, str(r.path)))
        backends = sorted({e.backend for run in runs for e in run.entries.values()
                           if e.backend})
        for backend in backends:
            if not history_keys(runs, backend):
                continue
            png = folder / f"history-{_slug(kind)}-{_slug(backend)}.png"
            plot = plot_history(runs, backend, png)
            section.images.append((f"{kind} on {backend}: median time across {plot.runs} runs"
                                   f" ({plot.lines} benchmarks)", png))
    if not section.images:
        notes.append("no history plot: give two or more runs of one kind (e.g. a "
                     "pytest-benchmark storage folder with autosaved runs)")
        return None
    section.text.append("Each line is one benchmark's median time relative to its first run; "
                        "the bold line is their geometric mean.")
    return section


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# -- writing ---------------------------------------------------------------------------------
def build_sections(paths: list[str | os.PathLike], folder: Path,
                   notes: list[str]) -> list[Section]:
    files = [f for p in paths for f in _json_files(Path(p))]
    sections: list[Section] = []
    runs_by_kind: dict[str, list[compare.Run]] = {}
    latest_benchmark: tuple[str, Path, dict[str, Any]] | None = None
    for path in files:
        try:
            loaded = _load(path)
        except ResultsError as exc:  # unreadable, or rows that fail the schema check
            notes.append(f"skipped: {exc}")
            continue
        if loaded is None:
            notes.append(f"skipped {path}: neither hwbench results nor pytest-benchmark JSON")
            continue
        kind, payload = loaded
        try:
            runs_by_kind.setdefault(kind, []).append(compare.load_run(path))
        except ResultsError as exc:
            notes.append(f"skipped {path}: {exc}")
            continue
        if kind == "hwbench.kernels":
            sections.append(_kernels_section(path, payload))
        elif kind == "hwbench.models":
            sections.append(_models_section(path, payload, folder, notes))
        else:  # tables for the newest pytest-benchmark run only; the rest is history
            stamp = str(payload.get("datetime", ""))
            if latest_benchmark is None or stamp >= latest_benchmark[0]:
                latest_benchmark = (stamp, path, payload)
    if latest_benchmark is not None:
        newest = _pytest_benchmark_section(latest_benchmark[1], latest_benchmark[2], notes)
        if newest is not None:
            sections.append(newest)
    history = _history_section(runs_by_kind, folder, notes)
    if history is not None:
        sections.append(history)
    if not sections:
        raise ResultsError("nothing to report: no hwbench or pytest-benchmark results in "
                           + ", ".join(str(p) for p in paths)
                           + "".join(f"\n  {note}" for note in notes))
    return sections


def to_markdown(sections: list[Section], folder: Path) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["# hwbench report", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        lines += [*(f"{t}" for t in s.text), ""] if s.text else []
        for t in s.tables:
            lines += [f"### {t.caption}", "", "| " + " | ".join(t.headers) + " |",
                      "|" + "|".join(" --- " for _ in t.headers) + "|"]
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
            lines.append("")
        for caption, png in s.images:
            lines += [f"![{caption}]({os.path.relpath(png, folder)})", ""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;
padding:3px 8px;font-size:13px}th{background:#f0f0f0}td{text-align:right}
td:first-child,td:nth-child(2){text-align:left}img{max-width:100%;border:1px solid #ddd}
figure{margin:1em 0}figcaption{font-size:13px;color:#555}"""


def to_html(sections: list[Section]) -> str:
    """One file: the style inline and every PNG as a data URI (nothing fetched)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>hwbench report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>hwbench report</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>")
        parts += [f"<p>{esc(t)}</p>" for t in s.text]
        for t in s.tables:
            parts.append(f"<table><caption>{esc(t.caption)}</caption><thead><tr>"
                         + "".join(f"<th>{esc(h)}</th>" for h in t.headers)
                         + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                      for row in t.rows]
            parts.append("</tbody></table>")
        for caption, png in s.images:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(paths: list[str | os.PathLike], output: str | os.PathLike) -> Report:
    """Write ``report.md``, ``report.html`` and the PNGs into the folder ``output``."""
    folder = Path(output)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file of that name: FileExistsError
        raise ArgumentError(f"argument 'output': cannot create the folder {folder}: "
                            f"{exc.strerror or exc}") from None
    notes: list[str] = []
    sections = build_sections(list(paths), folder, notes)
    md_text, html_text = to_markdown(sections, folder), to_html(sections)
    md = write_atomic(folder / "report.md", lambda fh: fh.write(md_text))
    page = write_atomic(folder / "report.html", lambda fh: fh.write(html_text))
    images = [png for s in sections for _, png in s.images]
    return Report(md, page, images, sections, notes)


__all__ = ["HistoryPlot", "Report", "Section", "Table", "build_sections", "plot_history",
           "to_html", "to_markdown", "write_report"]
