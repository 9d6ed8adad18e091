"""A sweep's results for people: flat CSV and Markdown tables, and the Pareto plot.

One line per point, with the node it ran on (host, CPU), so that a sweep over a fleet of
machines is one table. Simulator points also say whether they are on their workload's
Pareto front of total cycles against array area (rows × cols): no other configuration of
that workload is both smaller and faster. The plot (matplotlib's object API on the Agg
canvas, imported only here) shows, per workload, cycles against area and TOP/s against
on-chip buffer bytes, each front drawn as a line through its points.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from hwbench.files import write_atomic
from hwbench.harness.sweep.spec import format_rate, format_size

SIMULATE_COLUMNS = (
    ("id", "id"), ("workload", "workload"), ("batch", "batch"), ("array", "array"),
    ("area", "area (PEs)"), ("dataflow", "dataflow"), ("ifmap_buffer", "ifmap buf"),
    ("weight_buffer", "weight buf"), ("ofmap_buffer", "ofmap buf"),
    ("buffer_bytes", "on-chip bytes"), ("bandwidth", "bandwidth"), ("cycles", "cycles"),
    ("stall_cycles", "stall cycles"), ("seconds", "time (s)"), ("tops", "TOP/s"),
    ("utilization", "utilization"), ("dram_bytes", "DRAM bytes"),
    ("pareto", "Pareto (cycles vs area)"), ("status", "status"), ("host", "host"),
    ("cpu", "cpu"), ("attempts", "attempts"),
)
RUN_COLUMNS = (
    ("id", "id"), ("backend", "backend"), ("model", "model"), ("batch", "batch"),
    ("precision", "precision"), ("device", "device"), ("latency_p50_ms", "p50 (ms)"),
    ("samples_per_s", "samples/s"), ("gflops", "GFLOP/s"), ("top1", "top-1"),
    ("rel_error", "rel. error vs fp64"), ("status", "status"), ("host", "host"),
    ("cpu", "cpu"), ("attempts", "attempts"),
)


def _status(row: dict[str, Any]) -> str:
    status = row.get("status", "?")
    return status if status == "ok" else f"{status}: {row.get('reason', '')}"


def _node_cpu(payload: dict[str, Any], row: dict[str, Any]) -> str | None:
    node = payload.get("nodes", {}).get(row.get("node") or "", {})
    return node.get("environment", {}).get("cpu")


def simulate_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per simulator point (``SIMULATE_COLUMNS``), figures from the result
    where the point finished and from its parameters where it did not."""
    out = []
    for row in payload["rows"]:
        if row.get("kind") != "simulate":
            continue
        p, result = row["params"], row.get("result") or {}
        config, summary = result.get("config", {}), result.get("summary", {})
        work = p["workload"]
        flat: dict[str, Any] = {
            "id": row["id"], "workload": result.get("workload") or work.get("model") or
            Path(work.get("topology", "?")).stem, "batch": work.get("batch"),
            "array": summary.get("array") or p["array"], "dataflow": summary.get("dataflow")
            or p["dataflow"], "status": _status(row), "host": row.get("host"),
            "cpu": _node_cpu(payload, row), "attempts": row.get("attempts")}
        if config:
            flat.update(area=config["rows"] * config["cols"],
                        ifmap_buffer=config["ifmap_buffer_bytes"],
                        weight_buffer=config["weight_buffer_bytes"],
                        ofmap_buffer=config["ofmap_buffer_bytes"],
                        bandwidth=config["dram_bytes_per_s"])
            flat["buffer_bytes"] = (flat["ifmap_buffer"] + flat["weight_buffer"]
                                    + flat["ofmap_buffer"])
        elif p["array"]:  # not simulated: what it asked for
            rows_, cols_ = (int(x) for x in p["array"].split("x"))
            flat["area"] = rows_ * cols_
        if not config and p["buffers"]:
            flat.update(ifmap_buffer=p["buffers"]["ifmap"], weight_buffer=p["buffers"]["weight"],
                        ofmap_buffer=p["buffers"]["ofmap"])
        for key in ("cycles", "stall_cycles", "seconds", "tops", "utilization", "dram_bytes"):
            flat[key] = summary.get(key)
        out.append(flat)
    for indices in _by_workload(out).values():
        front = pareto_front([(out[i]["area"], out[i]["cycles"]) for i in indices])
        for j, i in enumerate(indices):
            out[i]["pareto"] = j in front
    return out


def _by_workload(rows: list[dict[str, Any]]) -> dict[tuple, list[int]]:
    """Indices of the finished points, grouped by (workload, batch)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row["status"] == "ok" and row.get("cycles") is not None:
            groups[(row["workload"], row["batch"])].append(i)
    return groups


def run_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in payload["rows"]:
        if row.get("kind") != "run":
            continue
        p, result = row["params"], row.get("result") or {}
        info = result.get("backend_info") or {}
        p50 = result.get("latency_p50")
        out.append({
            "id": row["id"], "backend": result.get("backend") or p["backend"],
            "model": p["model"], "batch": p["batch"], "precision": p["precision"],
            "device": info.get("device_name") or info.get("device"),
            "latency_p50_ms": None if p50 is None else p50 * 1e3,
            "samples_per_s": result.get("samples_per_s"), "gflops": result.get("gflops"),
            "top1": result.get("top1"), "rel_error": result.get("rel_error"),
            "status": _status(row), "host": row.get("host"), "cpu": _node_cpu(payload, row),
            "attempts": row.get("attempts")})
    return out


def pareto_front(points: list[tuple[float, float]], maximize_y: bool = False) -> set[int]:
    """Indices of the points no other point dominates: smaller x (or equal) and smaller y
    (larger with ``maximize_y``), one of the two strictly. Of equal points, the first."""
    sign = -1.0 if maximize_y else 1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], sign * points[i][1], i))
    front: set[int] = set()
    best = float("inf")
    for i in order:
        y = sign * points[i][1]
        if y < best:
            front.add(i)
            best = y
    return front


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key.endswith("_buffer") or key == "buffer_bytes":
        return format_size(int(value))
    if key == "bandwidth":
        return format_rate(value)
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and key in ("cycles", "stall_cycles", "dram_bytes", "area"):
        return f"{value:,}"
    return str(value)


def to_csv(payload: dict[str, Any]) -> str:
    """Every point, simulator columns then run columns (raw numbers; blank where absent)."""
    keys = list(dict.fromkeys([k for k, _ in SIMULATE_COLUMNS] + [k for k, _ in RUN_COLUMNS]))
    kinds = [row.get("kind") for row in payload["rows"]]
    if "run" not in kinds:
        keys = [k for k, _ in SIMULATE_COLUMNS]
    elif "simulate" not in kinds:
        keys = [k for k, _ in RUN_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for flat in simulate_rows(payload) + run_rows(payload):
        writer.writerow({k: "" if flat.get(k) is None else flat.get(k) for k in keys})
    return buffer.getvalue()


def to_markdown(payload: dict[str, Any]) -> str:
    parts = [f"# Sweep {payload.get('name', '')}\n"]
    for title, columns, rows in (("Simulator points", SIMULATE_COLUMNS, simulate_rows(payload)),
                                 ("Run points", RUN_COLUMNS, run_rows(payload))):
        if not rows:
            continue
        parts.append(f"\n## {title} ({len(rows)})\n\n")
        parts.append("| " + " | ".join(t for _, t in columns) + " |\n")
        parts.append("|" + "|".join(" --- " for _ in columns) + "|\n")
        for flat in rows:
            cells = [_fmt(k, flat.get(k)).replace("|", "\\|") for k, _ in columns]
            parts.append("| " + " | ".join(cells) + " |\n")
    return "".join(parts)


def write_summaries(payload: dict[str, Any], json_path: Path) -> list[Path]:
    """``sweep-NAME.csv`` and ``.md`` beside the JSON (atomically)."""
    written = []
    for suffix, render in ((".csv", to_csv), (".md", to_markdown)):
        text = render(payload)
        written.append(write_atomic(json_path.with_suffix(suffix),
                                    lambda fh, text=text: fh.write(text)))
    return written


def plot_pareto(payload: dict[str, Any], path: Path) -> Path | None:
    """The Pareto PNG of the simulator points (None if none finished): per workload, total
    cycles against array area and TOP/s against on-chip buffer bytes, log scales, colour per
    dataflow, each front a line through its (circled) points."""
    rows = simulate_rows(payload)
    groups = _by_workload(rows)
    if not groups:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    colors = {"ws": "tab:blue", "os": "tab:orange", "is": "tab:green"}
    fig = Figure(figsize=(11, 3.6 * len(groups)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (workload, batch), (ax_area, ax_buf) in zip(sorted(groups, key=str), axes, strict=True):
        indices = groups[(workload, batch)]
        title = f"{workload}" + (f" (batch {batch})" if batch else "")
        for ax, xkey, ykey, maximize, xlabel, ylabel in (
                (ax_area, "area", "cycles", False, "array area (PEs = rows × cols)",
                 "total cycles"),
                (ax_buf, "buffer_bytes", "tops", True, "on-chip buffer bytes (ifmap + weight"
                 " + ofmap)", "TOP/s")):
            xs = [rows[i][xkey] for i in indices]
            ys = [rows[i][ykey] for i in indices]
            for flow, color in colors.items():
                sel = [j for j, i in enumerate(indices) if rows[i]["dataflow"] == flow]
                if sel:
                    ax.scatter([xs[j] for j in sel], [ys[j] for j in sel], s=14, alpha=0.6,
                               color=color, label=flow)
            front = sorted(pareto_front(list(zip(xs, ys, strict=True)), maximize),
                           key=lambda j: xs[j])
            ax.plot([xs[j] for j in front], [ys[j] for j in front], color="black", lw=1.2,
                    label="Pareto front")
            ax.scatter([xs[j] for j in front], [ys[j] for j in front], s=60,
                       facecolors="none", edgecolors="black", lw=1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    return write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)


def pareto_path(json_path: Path) -> Path:
    return json_path.with_name(f"pareto-{json_path.stem.removeprefix('sweep-')}.png")
