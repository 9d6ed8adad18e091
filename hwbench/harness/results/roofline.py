"""Roofline: each backend's measured compute and bandwidth ceilings, with the models on them.

The ceilings are measured (``harness.measure.ceilings``) in each backend's worker process
and saved per backend in the results file (``backends[name]["ceilings"]``), so this module
draws a plot, and says the ceilings, from the file alone.

A model row sits at (arithmetic intensity, achieved GFLOP/s): FLOPs over the bytes one
inference must move (``hwbench.graph.statistics.graph_bytes``); its backend's roof there is
``min(peak, bandwidth × intensity)``.

matplotlib is imported only when a plot is drawn, and only its object API with the Agg
canvas is used: no pyplot state, no interactive backend, nothing changed for a caller
that has its own matplotlib session.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.errors import HwbenchError, ResultsError
from hwbench.files import write_atomic
from hwbench.harness.suites.model_suite import model_work
from hwbench.models import load_model

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


def attainable(peak_gflops: float, gbytes_per_s: float, intensity: float) -> float:
    """The roof at ``intensity`` FLOP/byte: ``min(peak, bandwidth × intensity)`` GFLOP/s."""
    return min(peak_gflops, gbytes_per_s * intensity)


def ridge_point(peak_gflops: float, gbytes_per_s: float) -> float:
    """FLOP/byte where the bandwidth roof meets the compute roof (bound changes there)."""
    return peak_gflops / gbytes_per_s


def roofline_path(results_path: str | os.PathLike) -> Path:
    """Where a results file's plot goes: ``roofline-<its stem>.png`` beside it."""
    path = Path(results_path)
    return path.with_name(f"roofline-{path.stem}.png")


@dataclass(frozen=True)
class Point:
    """One model row on the plot: ``intensity`` in FLOP/byte, ``gflops`` achieved."""

    backend: str
    model: str
    batch: int
    precision: str
    intensity: float
    gflops: float


def ceilings_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Backend -> its measured ceilings, for the backends of ``result`` that have them."""
    out = {}
    for name, info in (result.get("backends") or {}).items():
        ceilings = info.get("ceilings") if isinstance(info, dict) else None
        if isinstance(ceilings, dict) and _positive(ceilings.get("gflops")) and _positive(
                ceilings.get("gbytes_per_s")):
            out[name] = ceilings
    return out


def points_of(result: dict[str, Any]) -> tuple[list[Point], list[str]]:
    """The plottable rows of a model-run ``result``, and why each other ok row was left out.

    Rows written before intensities were recorded get theirs from the model itself
    (loaded by name at the row's batch size), so older result files still plot.
    """
    if result.get("schema") != "hwbench.models":
        raise ResultsError(f"a roofline places model rows; this file's schema is "
                           f"{result.get('schema')!r}, not 'hwbench.models'")
    points, skipped = [], []
    work_cache: dict[tuple[str, int], float] = {}
    for row in result.get("rows", []):
        if row.get("status") != "ok":
            continue
        label = f"{row.get('backend')} {row.get('model')}/b{row.get('batch')}"
        if not _positive(row.get("gflops")):
            skipped.append(f"{label}: no GFLOP/s")
            continue
        intensity = row.get("intensity")
        if intensity is None:
            try:
                intensity = _model_intensity(row["model"], int(row["batch"]), work_cache)
            except (HwbenchError, OSError, KeyError, ValueError) as exc:
                skipped.append(f"{label}: no intensity recorded, and the model gave none "
                               f"({type(exc).__name__}: {exc})")
                continue
        if not _positive(intensity):
            skipped.append(f"{label}: intensity {intensity!r}")
            continue
        points.append(Point(str(row["backend"]), str(row["model"]), int(row["batch"]),
                            str(row.get("precision", "fp32")), float(intensity),
                            float(row["gflops"])))
    return points, skipped


def _model_intensity(model: str, batch: int, cache: dict[tuple[str, int], float]) -> float:
    if (model, batch) not in cache:
        cache[(model, batch)] = model_work(load_model(model, batch=batch)).intensity
    return cache[(model, batch)]


def _positive(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclass
class RooflinePlot:
    """What ``plot_roofline`` drew (its data, and what matplotlib holds, for checking)."""

    path: Path
    points: list[Point]
    ceilings: dict[str, dict[str, Any]]
    fma_peak: float | None
    skipped: list[str] = field(default_factory=list)
    drawn_points: int = 0  # markers on the axes, counted from matplotlib's collections
    drawn_roofs: int = 0  # backend rooflines drawn


def plot_roofline(result: dict[str, Any], path: str | os.PathLike) -> RooflinePlot:
    """Draw ``result``'s roofline to ``path`` (PNG, written atomically).

    Per backend (one colour): its roof ``min(peak, bandwidth × intensity)`` and its rows as
    points; one marker per model, marker size by batch, hollow for int8. The host's
    measured FMA peak, if the file has one, is a dashed line. A file without ceilings
    (older runs, ``--no-roofline``) still plots its points; one with no placeable row
    raises ``ResultsError``.
    """
    points, skipped = points_of(result)
    if not points:
        why = "; ".join(skipped[:3]) or "no row with status ok"
        raise ResultsError(f"nothing to place on a roofline: {why}")
    ceilings = ceilings_of(result)
    env = result.get("environment") or {}
    peak = env.get("fma_peak")
    fma = peak.get("gflops") if isinstance(peak, dict) else None
    fma = fma if _positive(fma) else None

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    backends = list(dict.fromkeys([*ceilings, *(p.backend for p in points)]))
    models = list(dict.fromkeys(p.model for p in points))
    colour = {name: f"C{i % 10}" for i, name in enumerate(backends)}
    marker = {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(models)}
    xs = [p.intensity for p in points] + [ridge_point(c["gflops"], c["gbytes_per_s"])
                                          for c in ceilings.values()]
    lo, hi = min(xs) / 3, max(xs) * 3

    fig = Figure(figsize=(11, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    grid = np.geomspace(lo, hi, 256)
    roofs = []
    for name, c in ceilings.items():
        roof = [attainable(c["gflops"], c["gbytes_per_s"], x) for x in grid]
        roofs += ax.plot(grid, roof, color=colour[name], lw=1.8,
                         label=f"{name}: {c['gflops']:.0f} GFLOP/s, "
                               f"{c['gbytes_per_s']:.1f} GB/s")
    if fma is not None:
        ax.axhline(fma, color="black", ls="--", lw=1, label=f"host FMA peak {fma:.0f} GFLOP/s")
    for p in points:
        hollow = p.precision != "fp32"
        ax.scatter([p.intensity], [p.gflops], marker=marker[p.model],
                   s=30 + 30 * math.log2(max(p.batch, 1)), zorder=3,
                   edgecolors=colour[p.backend], linewidths=1.2,
                   facecolors="none" if hollow else colour[p.backend])
    for name in backends:  # backends without ceilings still need a legend entry
        if name not in ceilings:
            ax.plot([], [], color=colour[name], lw=0, marker="o", label=f"{name}: no ceilings")
    # Legends outside the axes (constrained layout makes room): points never hide.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="backend: measured roof")
    handles = [Line2D([], [], color="grey", lw=0, marker=marker[m], label=m) for m in models]
    fig.legend(handles=handles, loc="outside right lower", fontsize=8, title="model")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP/byte: model FLOPs / bytes of weights + "
                  "activations written and read once)")
    ax.set_ylabel("achieved GFLOP/s (10⁹ FLOP/s)")
    ax.grid(True, which="both", alpha=0.25)
    # left-aligned: centred over the whole figure, a long title ran under the legends
    fig.suptitle(_title(result), fontsize=11, x=0.01, ha="left")
    note = "marker size: batch size; hollow: int8 (GOP/s against the fp32 roofs)"
    if not ceilings:
        note += "; no ceilings in this file (run without --no-roofline)"
    ax.set_title(note, fontsize=8)
    drawn = sum(len(collection.get_offsets()) for collection in ax.collections)


    out = write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    return RooflinePlot(out, points, ceilings, fma, skipped, drawn, len(roofs))


def _title(result: dict[str, Any]) -> str:
    env = result.get("environment") or {}
    host = f"{env.get('host', '?')}: {env.get('cpu', '?')}, {env.get('cores_available', '?')} cores"
    devices = sorted({str(info["device_name"]) for info in (result.get("backends") or {}).values()
                      if isinstance(info, dict) and info.get("device_name")})
    when = f" ({result['created'][:10]})" if result.get("created") else ""
    return f"hwbench roofline — {host}" + (f"; {', '.join(devices)}" if devices else "") + when


def ceiling_lines(result: dict[str, Any]) -> list[str]:
    """One line per backend saying its ceilings (or why it has none), for the console."""
    lines = []
    for name, info in (result.get("backends") or {}).items():
        c = info.get("ceilings") if isinstance(info, dict) else None
        if not isinstance(c, dict):
            continue
        if "error" in c:
            lines.append(f"{name}: no ceilings ({c['error']})")
        elif name in ceilings_of(result):
            lines.append(f"{name}: {c['gflops']:.1f} GFLOP/s (GEMM {c['gemm_n']}³), "
                         f"{c['gbytes_per_s']:.1f} GB/s ({c['stream_op']}), ridge at "
                         f"{ridge_point(c['gflops'], c['gbytes_per_s']):.1f} FLOP/byte")
    return lines


__all__ = ["Point", "RooflinePlot", "attainable", "ceiling_lines", "ceilings_of",
           "plot_roofline", "points_of", "ridge_point", "roofline_path"]
